//! The daemon's side of alerts: a notifier fed after every status write, its delivery task,
//! commit statuses on GitHub, and a bounded flush of both before the process ends.

use std::time::Duration;

use crate::manifest::DesiredState;
use crate::notify::commit::{self, GitHub, Poster};
use crate::notify::{Notifier, Receivers, WorkerConfig};
use crate::status::Index;
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
    /// Commit statuses on GitHub, when the manifests are a checkout of a GitHub repository
    /// and GITHUB_TOKEN is set.
    commit: Option<Poster>,
}

impl Alerts {
    pub fn start(
        store: &Store,
        cfg: &AlertConfig,
        manifests: &std::path::Path,
        listen: Option<std::net::SocketAddr>,
    ) -> Alerts {
        let link = cfg
            .status_url
            .clone()
            .or_else(|| listen.map(|a| format!("http://{a}")));
        let notifier = Notifier::new(store.clone(), cfg.window, link.clone());
        let task = tokio::spawn(notifier.worker(cfg.worker.clone()).run());
        let commit = GitHub::detect(manifests, |k| std::env::var(k).ok()).map(|gh| {
            tracing::info!("commit status: on, for {}/{}", gh.owner, gh.repo);
            Poster::start(gh, store.clone(), link, cfg.worker.retry_base)
        });
        Alerts {
            notifier,
            task,
            commit,
        }
    }

    /// After a status write: the alerts in force, then the incidents that opened or resolved.
    pub fn after_status(
        &self,
        desired: Option<&DesiredState>,
        status: &(Index, crate::status::Statuses),
    ) {
        if let Some(d) = desired {
            self.notifier.set_receivers(Receivers::of(d));
        }
        if let (Some(p), Some(s)) = (&self.commit, commit::of(&status.0, &status.1)) {
            p.update(s);
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
                        "event {} {}: {}",
                        e.event,
                        e.phase.as_str(),
                        e.reason
                    );
                }
            }
            Err(err) => tracing::warn!("alerts: {err}"),
        }
    }

    /// Tries what waits once (grouping windows cut short), for at most `bound`, so a `--once`
    /// run or a stop does not leave its last messages behind; retries, and anything left, are
    /// sent after a restart.
    pub async fn flush(&self, bound: Duration) {
        let until = tokio::time::Instant::now() + bound;
        if self.notifier.send_now().is_err() {
            return;
        }
        while tokio::time::Instant::now() < until {
            let statuses = self.commit.as_ref().map(|p| p.pending()).unwrap_or(0);
            match self.notifier.untried() + statuses {
                0 => return,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        tracing::warn!(
            "alerts: {} message(s) not tried within {} s; they are sent after a restart",
            self.notifier.untried(),
            bound.as_secs()
        );
    }
}

impl Drop for Alerts {
    fn drop(&mut self) {
        self.task.abort();
    }
}
