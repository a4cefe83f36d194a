//! Prometheus metrics in the OpenMetrics text format (prometheus-client).
//!
//! Pass counts and durations are kept as they happen ([`Metrics::record_pass`]); everything else
//! is read from the latest [`Snapshot`] at scrape time by a [`Collector`], so it is never stale:
//!
//! | family | labels | what |
//! |---|---|---|
//! | `tether_reconcile_passes_total` | | passes finished |
//! | `tether_reconcile_duration_seconds` | | histogram of pass durations |
//! | `tether_reconcile_writes_total` | | changes attempted |
//! | `tether_reconcile_observed_total` | | environments observed afresh |
//! | `tether_ready` | | 1 once the first pass finished |
//! | `tether_manifests_valid` | | 1 when the latest manifests are valid |
//! | `tether_resources` | `state` | resources of active environments by state |
//! | `tether_environments` | `state` | environments by state |
//! | `tether_api_calls_total`, `tether_api_writes_total`, `tether_api_retries_total`, `tether_api_errors_total` | `platform` | requests to each platform |
//! | `tether_rate_limit_waits_total`, `tether_rate_limit_wait_seconds_total` | `platform` | waits for a rate limit |
//! | `tether_rate_limit_pause_remaining_seconds` | `platform`, `scope` | a pause a platform asked for, while it lasts |
//! | `tether_monitor_up` | `monitor`, `environment` | 1 when the latest check passed |
//! | `tether_monitor_status` | `monitor`, `environment`, `status` | 1 for the current of healthy/warning/critical |
//! | `tether_monitor_p95_seconds` | `monitor`, `environment` | p95 response time over the last 5 minutes |
//! | `tether_monitor_response_seconds` | `monitor`, `environment` | histogram of every check's response time (`_bucket`, `_sum`, `_count`), for any percentile or burn rate over any window |
//! | `tether_monitor_uptime_ratio` | `monitor`, `environment` | uptime of the month so far, 0–1 |
//! | `tether_certificate_days_left` | `domain`, `environment` | whole days until expiry |
//! | `tether_backup_last_success_age_seconds` | `policy`, `environment` | age of the last completed backup |
//! | `tether_backup_alert` | `policy`, `environment` | 1 while a backup is missing or failed |
//! | `tether_deployment_info` | `environment`, `commit`, `status` | the last deployment |
//! | `tether_alert_deliveries_total` | `result` | alert messages `delivered`, `retried` (an attempt to try again) and `failed` (given up) |
//! | `tether_alert_outbox_messages` | | alert messages waiting for delivery |
//!
//! Label values are only names (of environments, monitors, domains, policies, platforms), a
//! state, or a commit: never a variable's value.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family as Series;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::{ApiCounters, Snapshot, view};
use crate::status::{Counts, State};

/// Response-time buckets (seconds) around the data model's levels: 1 s warning and mean
/// objective, 2 s critical and p95 objective.
const RESPONSE_BUCKETS: [f64; 11] = [0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0];

fn response_histogram() -> Histogram {
    Histogram::new(RESPONSE_BUCKETS)
}

/// A monitor's series labels: its name and its environment's.
type MonitorLabels = Vec<(&'static str, String)>;

/// The registry and the metrics kept as things happen (pass counts, check response times).
pub(super) struct Metrics {
    registry: Registry,
    passes: Counter,
    writes: Counter,
    observed: Counter,
    duration: Histogram,
    responses: Series<MonitorLabels, Histogram, fn() -> Histogram>,
    /// (monitor, environment) of each response series, so a removed monitor's go too.
    monitors: Mutex<BTreeSet<(String, String)>>,
}

impl Metrics {
    pub(super) fn new(snapshot: Arc<RwLock<Snapshot>>) -> Metrics {
        let mut registry = Registry::default();
        let (passes, writes, observed) =
            (Counter::default(), Counter::default(), Counter::default());
        // 10 ms doubling to about 82 s.
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "tether_reconcile_passes",
            "Reconcile passes finished",
            passes.clone(),
        );
        registry.register_with_unit(
            "tether_reconcile_duration",
            "How long reconcile passes took",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "tether_reconcile_writes",
            "Changes the reconcile passes attempted",
            writes.clone(),
        );
        registry.register(
            "tether_reconcile_observed",
            "Environments observed afresh by the reconcile passes",
            observed.clone(),
        );
        let responses: Series<MonitorLabels, Histogram, fn() -> Histogram> =
            Series::new_with_constructor(response_histogram);
        registry.register_with_unit(
            "tether_monitor_response",
            "Response time of every monitor check",
            Unit::Seconds,
            responses.clone(),
        );
        registry.register_collector(Box::new(SnapshotCollector { snapshot }));
        Metrics {
            registry,
            passes,
            writes,
            observed,
            duration,
            responses,
            monitors: Mutex::new(BTreeSet::new()),
        }
    }

    /// Counts one check's response time in its monitor's histogram.
    pub(super) fn record_check(&self, monitor: &str, environment: &str, latency: Duration) {
        let labels = vec![
            ("monitor", monitor.to_string()),
            ("environment", environment.to_string()),
        ];
        self.responses
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
        self.monitors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((monitor.to_string(), environment.to_string()));
    }

    /// Drops the response series of monitors not in `keep` (removed from the manifests).
    pub(super) fn keep_monitors(&self, keep: &BTreeSet<(String, String)>) {
        let mut known = self.monitors.lock().unwrap_or_else(PoisonError::into_inner);
        for (m, e) in known.iter().filter(|k| !keep.contains(k)) {
            self.responses
                .remove(&vec![("monitor", m.clone()), ("environment", e.clone())]);
        }
        known.retain(|k| keep.contains(k));
    }

    pub(super) fn record_pass(&self, duration: Duration, writes: usize, observed: usize) {
        self.passes.inc();
        self.writes.inc_by(writes as u64);
        self.observed.inc_by(observed as u64);
        self.duration.observe(duration.as_secs_f64());
    }

    /// The exposition, ending with `# EOF`.
    pub(super) fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// A sample's labels: names and states only (see the module documentation).
pub type Labels = Vec<(&'static str, String)>;

/// A sample's value: counts stay integers in the exposition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

/// One metric family read from a snapshot.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Option<Unit>,
    pub kind: MetricType,
    pub series: Vec<(Labels, Num)>,
}

fn family(name: &'static str, help: &'static str, kind: MetricType) -> Family {
    Family {
        name,
        help,
        unit: None,
        kind,
        series: Vec::new(),
    }
}

fn seconds(mut f: Family) -> Family {
    f.unit = Some(Unit::Seconds);
    f
}

fn int(n: impl TryInto<i64>) -> Num {
    Num::Int(n.try_into().unwrap_or(i64::MAX))
}

impl Family {
    fn with(mut self, series: Vec<(Labels, Num)>) -> Family {
        self.series = series;
        self
    }

    fn encode(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let mut m = enc.encode_descriptor(self.name, self.help, self.unit.as_ref(), self.kind)?;
        for (labels, value) in &self.series {
            let e = m.encode_family(labels)?;
            match (self.kind, *value) {
                (MetricType::Counter, Num::Int(v)) => {
                    ConstCounter::new(v.max(0) as u64).encode(e)?
                }
                (MetricType::Counter, Num::Float(v)) => ConstCounter::new(v).encode(e)?,
                (MetricType::Info, _) => {
                    let mut e = e;
                    e.encode_info(&Labels::new())?
                }
                (_, Num::Int(v)) => ConstGauge::new(v).encode(e)?,
                (_, Num::Float(v)) => ConstGauge::new(v).encode(e)?,
            }
        }
        Ok(())
    }
}

fn by_state(counts: &Counts) -> Vec<(Labels, Num)> {
    [
        (State::Ready, counts.ready),
        (State::Reconciling, counts.reconciling),
        (State::Stalled, counts.stalled),
    ]
    .into_iter()
    .map(|(s, n)| (vec![("state", s.as_str().to_string())], int(n)))
    .collect()
}

/// Every family the snapshot gives, as of `now`.
pub fn families(snap: &Snapshot, now: DateTime<Utc>) -> Vec<Family> {
    use MetricType::{Counter as C, Gauge as G, Info};
    let flag = |b: bool| vec![(Labels::new(), Num::Int(i64::from(b)))];
    let valid = snap.index.as_ref().map(|i| flag(i.manifests.valid));
    let resources = snap.index.as_ref().map(|i| i.summary).unwrap_or_default();
    let mut envs = Counts::default();
    snap.envs.iter().for_each(|e| envs.add(e.state));
    let api = |f: fn(&ApiCounters) -> Num| -> Vec<(Labels, Num)> {
        let label = |p: &String| vec![("platform", p.clone())];
        snap.api.iter().map(|(p, c)| (label(p), f(c))).collect()
    };
    let deliveries = snap.index.as_ref().and_then(|i| i.alerts.clone());
    let mut out = vec![
        family(
            "tether_alert_deliveries",
            "Alert messages: delivered, retried (attempts to try again) and failed (given up).",
            C,
        )
        .with(
            deliveries
                .iter()
                .flat_map(|d| {
                    [
                        ("delivered", d.delivered),
                        ("retried", d.retried),
                        ("failed", d.failed),
                    ]
                })
                .map(|(r, n)| (vec![("result", r.to_string())], int(n)))
                .collect(),
        ),
        family(
            "tether_alert_outbox_messages",
            "Alert messages waiting for delivery.",
            G,
        )
        .with(
            deliveries
                .iter()
                .map(|d| (Labels::new(), int(d.pending)))
                .collect(),
        ),
        family(
            "tether_ready",
            "1 once the first reconcile pass finished.",
            G,
        )
        .with(flag(snap.ready)),
        family(
            "tether_manifests_valid",
            "1 when the latest manifests are valid.",
            G,
        )
        .with(valid.unwrap_or_default()),
        family(
            "tether_resources",
            "Resources of active environments by state.",
            G,
        )
        .with(by_state(&resources)),
        family("tether_environments", "Environments by state.", G).with(by_state(&envs)),
        family("tether_api_calls", "Requests sent to each platform.", C)
            .with(api(|c| int(c.calls))),
        family(
            "tether_api_writes",
            "Writing requests sent to each platform.",
            C,
        )
        .with(api(|c| int(c.writes))),
        family(
            "tether_api_retries",
            "Requests retried after a retryable failure.",
            C,
        )
        .with(api(|c| int(c.retries))),
        family("tether_api_errors", "Failed request attempts.", C).with(api(|c| int(c.errors))),
        family(
            "tether_rate_limit_waits",
            "Waits for a platform's rate limit.",
            C,
        )
        .with(api(|c| int(c.rate_limit_waits))),
        seconds(family(
            "tether_rate_limit_wait",
            "Time spent waiting for rate limits.",
            C,
        ))
        .with(api(|c| Num::Float(c.rate_limit_wait_ms as f64 / 1000.0))),
        seconds(family(
            "tether_rate_limit_pause_remaining",
            "How long a platform has asked tether to wait, per rate-limit scope.",
            G,
        ))
        .with(
            snap.api
                .iter()
                .flat_map(|(p, c)| {
                    c.paused.iter().map(move |x| {
                        let left = (x.until - now).num_milliseconds().max(0) as f64 / 1000.0;
                        (
                            vec![("platform", p.clone()), ("scope", x.scope.clone())],
                            Num::Float(left),
                        )
                    })
                })
                .collect(),
        ),
    ];
    let mut up = family(
        "tether_monitor_up",
        "1 when the monitor's latest check passed.",
        G,
    );
    let mut status = family(
        "tether_monitor_status",
        "1 for the monitor's current status.",
        G,
    );
    let p95_help = "p95 response time over the last 5 minutes.";
    let mut p95 = seconds(family("tether_monitor_p95", p95_help, G));
    let uptime_help = "Uptime of the calendar month so far (0 to 1).";
    let mut uptime = family("tether_monitor_uptime_ratio", uptime_help, G);
    let days_help = "Whole days until the certificate expires.";
    let mut certs = family("tether_certificate_days_left", days_help, G);
    let age_help = "Age of the last completed backup.";
    let mut age = seconds(family("tether_backup_last_success_age", age_help, G));
    let alert_help = "1 while an expected backup is missing or failed.";
    let mut alert = family("tether_backup_alert", alert_help, G);
    let deploy_help = "The last deployment of each environment.";
    let mut deployments = family("tether_deployment", deploy_help, Info);
    for env in &snap.envs {
        let env_label = || ("environment", env.environment.clone());
        for (name, _, m) in view::monitors(env) {
            let labels = vec![("monitor", name), env_label()];
            if let Some(u) = m.up() {
                up.series.push((labels.clone(), Num::Int(i64::from(u))));
            }
            if let Some(s) = &m.status {
                for h in ["healthy", "warning", "critical"] {
                    let mut l = labels.clone();
                    l.push(("status", h.to_string()));
                    status.series.push((l, Num::Int(i64::from(s == h))));
                }
            }
            if let Some(v) = m.last_5_minutes.p95 {
                p95.series.push((labels.clone(), Num::Float(v / 1000.0)));
            }
            if let Some(v) = m.monthly_uptime {
                uptime.series.push((labels, Num::Float(v / 100.0)));
            }
        }
        for (domain, _, c) in view::certificates(env) {
            if let Some(d) = c.days_left {
                certs
                    .series
                    .push((vec![("domain", domain), env_label()], Num::Int(d)));
            }
        }
        for (policy, _, b) in view::backups(env) {
            let labels = vec![("policy", policy), env_label()];
            if let Some(t) = b.last_completed.as_ref().and_then(|l| l.created_at) {
                let secs = (now - t).num_milliseconds().max(0) as f64 / 1000.0;
                age.series.push((labels.clone(), Num::Float(secs)));
            }
            let alerting = b.alert.is_some() || b.error.is_some();
            alert.series.push((labels, Num::Int(i64::from(alerting))));
        }
        if let Some(d) = view::last_deployment(env) {
            let commit = ("commit", d.commit.unwrap_or_default());
            let labels = vec![env_label(), commit, ("status", d.status)];
            deployments.series.push((labels, Num::Int(1)));
        }
    }
    out.extend([up, status, p95, uptime, certs, age, alert, deployments]);
    out
}

/// Reads the latest snapshot on every scrape.
#[derive(Debug)]
struct SnapshotCollector {
    snapshot: Arc<RwLock<Snapshot>>,
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let families = {
            let snap = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
            families(&snap, Utc::now())
        };
        for f in &families {
            f.encode(&mut enc)?;
        }
        Ok(())
    }
}
