//! tether: keeps Railway, Vercel and Supabase converged to a git repository of YAML manifests.
#![forbid(unsafe_code)]

pub mod backup;
pub mod certs;
pub mod cli;
pub mod control;
pub mod daemon;
pub mod dns;
pub mod import;
pub mod manifest;
pub mod monitor;
pub mod notify;
pub mod observed;
pub mod plan;
pub mod provider;
pub mod reconcile;
pub mod retry;
pub mod secret;
pub mod server;
pub mod simulate;
pub mod status;
pub mod store;
pub mod watch;
pub mod watchdog;
