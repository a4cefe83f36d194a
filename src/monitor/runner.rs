//! Runs every monitor on its interval, one task each, and sends the results on a channel.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::Url;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::check::{CheckResult, run_check};
use crate::manifest::{MonitorSpec, Resource};

/// Maps a monitor's URL to the URL requested (identity, or the simulator's app endpoint).
pub type TargetFn = Arc<dyn Fn(&str) -> Url + Send + Sync>;
/// A check in progress.
pub type CheckFuture = Pin<Box<dyn Future<Output = CheckResult> + Send>>;
/// Runs one check: the HTTP check by default; tests and benchmarks may replace it.
pub type Checker = Arc<dyn Fn(Arc<MonitorSpec>, Url) -> CheckFuture + Send + Sync>;

struct Task {
    spec: MonitorSpec,
    url: Url,
    handle: JoinHandle<()>,
}

/// The running monitors. Dropping it stops them.
pub struct MonitorRunner {
    checker: Checker,
    target: TargetFn,
    tx: mpsc::Sender<(String, CheckResult)>,
    tasks: BTreeMap<String, Task>,
}

impl MonitorRunner {
    /// Starts one task per monitor, checking over HTTP with one shared client.
    pub fn start(
        monitors: Vec<Resource<MonitorSpec>>,
        target: TargetFn,
        tx: mpsc::Sender<(String, CheckResult)>,
    ) -> MonitorRunner {
        let client = reqwest::Client::builder()
            .user_agent(concat!("tether-monitor/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .unwrap_or_default();
        let checker: Checker = Arc::new(move |spec: Arc<MonitorSpec>, url: Url| {
            let client = client.clone();
            Box::pin(async move { run_check(&client, &spec, &url).await }) as CheckFuture
        });
        MonitorRunner::start_with(monitors, target, tx, checker)
    }

    /// Like [`MonitorRunner::start`] with another way to check.
    pub fn start_with(
        monitors: Vec<Resource<MonitorSpec>>,
        target: TargetFn,
        tx: mpsc::Sender<(String, CheckResult)>,
        checker: Checker,
    ) -> MonitorRunner {
        let mut runner = MonitorRunner {
            checker,
            target,
            tx,
            tasks: BTreeMap::new(),
        };
        runner.update(monitors);
        runner
    }

    /// Applies new manifests: starts new monitors, stops removed ones, and restarts only those
    /// whose spec or target changed.
    pub fn update(&mut self, monitors: Vec<Resource<MonitorSpec>>) {
        let mut wanted: BTreeMap<String, MonitorSpec> = monitors
            .into_iter()
            .map(|m| (m.meta.name, m.spec))
            .collect();
        self.tasks.retain(|name, task| {
            let url = (self.target)(&task.spec.url);
            let keep = wanted.get(name) == Some(&task.spec) && url == task.url;
            if keep {
                wanted.remove(name);
            } else {
                task.handle.abort();
            }
            keep
        });
        for (name, spec) in wanted {
            let url = (self.target)(&spec.url);
            let handle = tokio::spawn(run_monitor(
                name.clone(),
                Arc::new(spec.clone()),
                url.clone(),
                self.checker.clone(),
                self.tx.clone(),
            ));
            self.tasks.insert(name, Task { spec, url, handle });
        }
    }

    /// The names of the running monitors.
    pub fn running(&self) -> Vec<String> {
        self.tasks.keys().cloned().collect()
    }

    /// Stops every monitor (a check in flight is abandoned).
    pub fn stop(&mut self) {
        for (_, task) in std::mem::take(&mut self.tasks) {
            task.handle.abort();
        }
    }
}

impl Drop for MonitorRunner {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn run_monitor(
    name: String,
    spec: Arc<MonitorSpec>,
    url: Url,
    checker: Checker,
    tx: mpsc::Sender<(String, CheckResult)>,
) {
    let period = spec.interval.as_duration().max(Duration::from_millis(10));
    // A random first offset spreads the checks of many monitors; within 5 s at most, so a
    // daemon that starts has results soon.
    let offset = period
        .min(Duration::from_secs(5))
        .mul_f64(rand::rng().random::<f64>());
    let mut ticks = tokio::time::interval_at(Instant::now() + offset, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let result = checker(spec.clone(), url.clone()).await;
        if tx.send((name.clone(), result)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Metadata, Source};
    use crate::monitor::Outcome;
    use chrono::Utc;

    fn monitor(name: &str, interval: &str) -> Resource<MonitorSpec> {
        let spec = serde_json::from_value(serde_json::json!({
            "environment": "prod", "url": format!("https://{name}.example/health"),
            "interval": interval, "timeout": "1s"
        }))
        .unwrap();
        Resource {
            meta: Metadata {
                name: name.into(),
                labels: Default::default(),
                annotations: Default::default(),
            },
            spec,
            source: Source::new("monitors.yaml", 1),
        }
    }

    fn instant_ok() -> Checker {
        Arc::new(|_, _| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                CheckResult {
                    at: Utc::now(),
                    latency: Duration::from_millis(30),
                    status_code: Some(200),
                    outcome: Outcome::Ok,
                }
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn checks_run_on_their_interval_and_restart_only_when_changed() {
        let (tx, mut rx) = mpsc::channel(1024);
        let target: TargetFn = Arc::new(|u: &str| Url::parse(u).unwrap());
        let mut runner = MonitorRunner::start_with(
            vec![monitor("a", "10s"), monitor("b", "30s")],
            target,
            tx,
            instant_ok(),
        );
        tokio::time::sleep(Duration::from_secs(300)).await;
        let mut counts = BTreeMap::<String, u32>::new();
        while let Ok((name, _)) = rx.try_recv() {
            *counts.entry(name).or_default() += 1;
        }
        // 300 s: 30 (or 29, by the random offset) checks every 10 s, 10 (or 9) every 30 s.
        assert!((29..=30).contains(&counts["a"]), "{counts:?}");
        assert!((9..=10).contains(&counts["b"]), "{counts:?}");

        let b_handle_id = runner.tasks["b"].handle.id();
        runner.update(vec![
            monitor("a", "20s"),
            monitor("b", "30s"),
            monitor("c", "5s"),
        ]);
        assert_eq!(runner.running(), ["a", "b", "c"]);
        assert_eq!(runner.tasks["b"].handle.id(), b_handle_id, "b unchanged");
        runner.update(vec![monitor("c", "5s")]);
        assert_eq!(runner.running(), ["c"]);
        runner.stop();
        assert!(runner.running().is_empty());
    }
}
