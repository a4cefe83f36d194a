//! Certificates: TLS probes of served certificates, status against thresholds, issuance backoff.

mod platform;
pub mod probe;
pub mod retry;
pub mod status;

pub use platform::platform_state;
pub use probe::{Probe, ProbeError, Verification, probe};
pub use retry::IssuanceBackoff;
pub use status::{CertLevel, CertSource, CertState, CertStatus, evaluate};
