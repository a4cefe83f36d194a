//! The daemon's side of alerts: a notifier fed after every status write, its delivery task,
//! and a bounded flush of the outbox before the process ends.

use std::time::Duration;

use crate::manifest::DesiredState;
use crate::notify::{Notifier, Receivers, WorkerConfig};
use crate::status::{EnvStatus, Index};
use crate::store::Store;

/// How alerts are grouped, linked and retried.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Events for one receiver within this window go in one message.
    pub window: Duration,
    /// The status page's public base URL for links; the listen address when absent.
    pub status_url: Option<String>,
    pub worker: WorkerConfig,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            window: Duration::from_secs(10),
            status_url: None,
            worker: WorkerConfig::default(),
        }
    }
}

/// The notifier and its delivery task.
pub struct Alerts {
    pub notifier: Notifier,
    task: tokio::task::JoinHandle<()>,
}

impl Alerts {
    pub fn start(store: &Store, cfg: &AlertConfig, listen: Option<std::net::SocketAddr>) -> Alerts {
        let link = cfg
            .status_url
            .clone()
            .or_else(|| listen.map(|a| format!("http://{a}")));
        let notifier = Notifier::new(store.clone(), cfg.window, link);
        let task = tokio::spawn(notifier.worker(cfg.worker.clone()).run());
        Alerts { notifier, task }
    }

    /// After a status write: the alerts in force, then the incidents that opened or resolved.
    pub fn after_status(&self, desired: Option<&DesiredState>, status: &(Index, Vec<EnvStatus>)) {
        if let Some(d) = desired {
            self.notifier.set_receivers(Receivers::of(d));
        }
        match self
            .notifier
            .after_pass(&status.0, &status.1, chrono::Utc::now())
        {
            Ok(events) => {
                for e in events {
                    tracing::info!(
                        event = %e.event,
                        phase = e.phase.as_str(),
                        environment = e.environment.as_deref().unwrap_or("-"),
                        "alert: {} {} {}",
                        e.event,
                        e.phase.as_str(),
                        e.reason
                    );
                }
            }
            Err(err) => tracing::warn!("alerts: {err}"),
        }
    }

    /// Sends what waits (grouping windows cut short) for at most `bound`, so a `--once` run or
    /// a stop does not leave its last messages behind; what is left is sent after a restart.
    pub async fn flush(&self, bound: Duration) {
        let until = tokio::time::Instant::now() + bound;
        if self.notifier.send_now().is_err() {
            return;
        }
        while tokio::time::Instant::now() < until {
            match self.notifier.stats().pending {
                0 => return,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        tracing::warn!(
            "alerts: {} message(s) still waiting after {} s; they are sent after a restart",
            self.notifier.stats().pending,
            bound.as_secs()
        );
    }
}

impl Drop for Alerts {
    fn drop(&mut self) {
        self.task.abort();
    }
}
