//! Monitors inside the daemon: the runner that checks each Monitor on its interval, the book
//! that keeps the results (persisted to the store after each pass), and the health gate's view
//! of them.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::manifest::{DesiredState, MonitorSpec, Resource};
use crate::monitor::{CheckResult, MonitorBook, MonitorRunner, TargetFn};
use crate::reconcile::{GateReading, HealthSource};
use crate::store::Store;

/// The daemon's monitoring: runner, book and the channel between them.
pub struct Watchdog {
    pub book: Arc<Mutex<MonitorBook>>,
    runner: Option<MonitorRunner>,
    rx: mpsc::Receiver<(String, CheckResult)>,
    tx: mpsc::Sender<(String, CheckResult)>,
    target: TargetFn,
    store: Store,
}

fn monitors(d: &DesiredState) -> Vec<Resource<MonitorSpec>> {
    d.monitors.values().cloned().collect()
}

/// Environments worth checking: those whose deployment serves and whose domains are attached
/// and verified (checking an app before it exists would only record failures against its SLO).
pub fn servable(
    envs: &[std::sync::Arc<crate::status::EnvStatus>],
) -> std::collections::BTreeSet<String> {
    envs.iter()
        .filter(|e| {
            e.resources
                .iter()
                .filter(|r| r.kind == "deployment" || r.kind == "domain")
                .all(|r| r.state == crate::status::State::Ready)
        })
        .map(|e| e.environment.clone())
        .collect()
}

impl Watchdog {
    /// Loads the book from the store (before any result is recorded).
    pub fn new(store: Store, desired: &DesiredState, target: TargetFn) -> Watchdog {
        let mut book = MonitorBook::new(&monitors(desired));
        if let Err(e) = book.load(&store, Utc::now()) {
            tracing::warn!(error = %e, "cannot read past monitoring data; starting afresh");
        }
        let (tx, rx) = mpsc::channel(1024);
        Watchdog {
            book: Arc::new(Mutex::new(book)),
            runner: None,
            rx,
            tx,
            target,
            store,
        }
    }

    /// Starts (or updates) checking the monitors of `desired` whose environment is in `servable`.
    pub fn apply(&mut self, desired: &DesiredState, servable: &std::collections::BTreeSet<String>) {
        self.book
            .lock()
            .expect("book")
            .set_monitors(&monitors(desired));
        let list: Vec<_> = monitors(desired)
            .into_iter()
            .filter(|m| servable.contains(&m.spec.environment))
            .collect();
        match &mut self.runner {
            Some(r) => r.update(list),
            None => {
                self.runner = Some(MonitorRunner::start(
                    list,
                    self.target.clone(),
                    self.tx.clone(),
                ))
            }
        }
    }

    /// The next check result.
    pub async fn next(&mut self) -> Option<(String, CheckResult)> {
        self.rx.recv().await
    }

    /// The environment a monitor checks.
    pub fn environment_of(&self, monitor: &str) -> Option<String> {
        let book = self.book.lock().expect("book");
        book.spec(monitor).map(|s| s.environment.clone())
    }

    pub fn record(&self, monitor: &str, result: CheckResult) {
        self.book.lock().expect("book").record(monitor, result);
    }

    /// Drops what memory no longer needs and writes the rest to the store.
    pub fn persist(&self, now: DateTime<Utc>) {
        let mut b = self.book.lock().expect("book");
        b.prune(now);
        if let Err(e) = b.persist(&self.store) {
            tracing::warn!(error = %e, "cannot save monitoring data");
        }
    }

    /// The health gate's source.
    pub fn health(&self) -> Arc<dyn HealthSource> {
        Arc::new(BookHealth(self.book.clone()))
    }

    pub fn stop(&mut self) {
        if let Some(mut r) = self.runner.take() {
            r.stop();
        }
    }
}

/// Reads the health gate from the monitor book: passing when every check of every gated
/// monitor since the deploy passed, failing at the first failure, no data before any check.
pub struct BookHealth(pub Arc<Mutex<MonitorBook>>);

impl HealthSource for BookHealth {
    fn reading(
        &self,
        monitors: &[String],
        since: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> GateReading {
        let book = self.0.lock().expect("book");
        let mut any = false;
        for m in monitors {
            let seen = book.since(m, since);
            if seen.checks == 0 {
                return GateReading::NoData;
            }
            any = true;
            let failed = seen.failed;
            if failed > 0 {
                let why = book
                    .latest(m)
                    .map(|r| r.outcome.to_string())
                    .unwrap_or_default();
                return GateReading::Failing(format!(
                    "monitor {m}: {failed} of {} checks failed since the deploy ({why})",
                    seen.checks
                ));
            }
        }
        if any {
            GateReading::Passing
        } else {
            GateReading::NoData
        }
    }
}
