//! Monitoring: HTTP checks, latency percentiles, error rates and uptime against the SLOs.
//!
//! [`runner::MonitorRunner`] runs each `Monitor` on its interval and sends every
//! [`CheckResult`] on a channel; the daemon records them in a [`MonitorBook`], which keeps
//! minute and hour [`Bucket`]s with mergeable latency histograms, applies the uptime rules
//! ([`uptime`] documents them exactly), answers [`MonitorSummary`]s with alerts and the data
//! model's [`MonitoringData`], and persists to the `samples` tree with bounded retention
//! ([`retention`] documents the disk bound).

pub mod aggregate;
pub mod check;
mod json_path;
pub mod model;
mod persist;
pub mod retention;
pub mod rollup;
pub mod runner;
pub mod summary;
pub mod uptime;

pub use aggregate::{Bucket, Latency, WindowStats};
pub use check::{CheckResult, Outcome, evaluate, run_check, simulated_target};
pub use json_path::json_path;
pub use model::{Health, MetricType, MonitoringData, Unit};
pub use retention::{MonitorBook, Resolution, Sample};
pub use runner::{CheckFuture, Checker, MonitorRunner, TargetFn};
pub use summary::{Alert, AlertKind, DayUptime, HourLatency, MonitorSummary};
pub use uptime::Tally;

use crate::store::StoreError;

/// What can go wrong keeping monitoring data.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "a stored latency histogram is unreadable ({detail}); remove the monitor's samples to start afresh"
    )]
    Histogram { detail: String },
}
