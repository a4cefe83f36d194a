//! How `run --once` ends: converged, stuck, past its deadline (naming what was in flight), with
//! a rejected token, or stopped by a signal.

use super::{DaemonError, Exit};
use crate::provider::Providers;
use crate::reconcile::{PassReport, Reconciler};
use crate::status::Index;
use crate::store::Store;

/// How a stop by a signal ends: done for the daemon, not converged for `--once` (CI must not
/// read an interrupted run as a converged one).
pub(super) fn stopped(once: bool) -> Exit {
    if once {
        Exit::NotReady("stopped by a signal before converging".into())
    } else {
        Exit::Done
    }
}

/// The calls every client has in flight, in words.
pub(super) fn in_flight(providers: &Providers) -> Vec<String> {
    providers
        .0
        .values()
        .flat_map(|p| p.stats().in_flight())
        .collect()
}

/// `--once` past its deadline: status written, and what was still pending said.
pub(super) fn once_timed_out(
    rec: &mut Reconciler,
    store: &Store,
    watchdog: &mut crate::watchdog::Watchdog,
    in_flight: Vec<String>,
) -> Result<Exit, DaemonError> {
    let (index, _) = rec.write_status()?;
    watchdog.stop();
    store.flush()?;
    let s = index.summary;
    let mut msg = format!(
        "timed out with {} of {} resources Ready ({} Reconciling, {} Stalled)",
        s.ready, s.resources, s.reconciling, s.stalled
    );
    if !in_flight.is_empty() {
        const SHOWN: usize = 8;
        msg.push_str("; still in flight: ");
        msg.push_str(
            &in_flight
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        );
        if in_flight.len() > SHOWN {
            msg.push_str(&format!(" and {} more", in_flight.len() - SHOWN));
        }
    }
    let waiting: Vec<String> = index
        .environments
        .iter()
        .filter(|e| e.state != crate::status::State::Ready)
        .map(|e| e.name.clone())
        .collect();
    if !waiting.is_empty() {
        msg.push_str(&format!("; not converged: {}", waiting.join(", ")));
    }
    tracing::warn!("{msg}");
    let rejected = rec.token_errors();
    if !rejected.is_empty() {
        return Ok(Exit::Rejected(format!("{}; {msg}", rejected.join("; "))));
    }
    Ok(Exit::NotReady(msg))
}

/// `--once` ends when everything is Ready, when nothing can progress without a person, or at
/// the deadline.
pub(super) fn once_exit(
    index: &Index,
    report: &PassReport,
    past_deadline: bool,
    rejected: &[String],
) -> Option<Exit> {
    let s = index.summary;
    if index.all_ready() {
        return Some(Exit::Done);
    }
    if s.reconciling == 0 && !rejected.is_empty() {
        return Some(Exit::Rejected(rejected.join("; ")));
    }
    if s.reconciling == 0 {
        return Some(Exit::NotReady(format!(
            "{} of {} resources are Stalled and need a person (see `tether status`)",
            s.stalled, s.resources
        )));
    }
    if past_deadline {
        return Some(Exit::NotReady(format!(
            "timed out with {} of {} resources Ready ({} Reconciling, {} Stalled)",
            s.ready, s.resources, s.reconciling, s.stalled
        )));
    }
    let _ = report;
    None
}
