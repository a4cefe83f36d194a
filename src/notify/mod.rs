//! Alerts that reach people: incidents read from status open and resolve once each, are routed
//! by the `Alert` manifests to receivers, and wait in a store-backed outbox until delivered.

pub mod commit;
mod email;
pub mod happening;
pub mod incident;
pub mod outbox;
pub mod route;
pub mod send;
mod worker;

pub use incident::{AlertEvent, Incident, Phase};
pub use worker::{Worker, WorkerConfig};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::manifest::{AlertSeverity, AlertSpec, DesiredState, Resource};
use crate::secret::SecretValue;
use crate::status::{EnvStatus, Index};
use crate::store::{Store, StoreError, trees};

/// Errors of the notifier: only the store can fail it (delivery failures are counted, not
/// raised, so a receiver that keeps failing never slows reconciliation).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no Alert named {0} in the manifests")]
    NoSuchAlert(String),
}

/// The alerts and their decrypted secrets, as the worker sends with them.
#[derive(Debug, Clone, Default)]
pub struct Receivers {
    pub alerts: BTreeMap<String, Resource<AlertSpec>>,
    pub secrets: BTreeMap<String, SecretValue>,
    /// Environment name → labels, for routing.
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
    /// `(environment, monitor/NAME)` → the monitor's maintenance windows: no incident of a
    /// monitor opens while it is in one.
    pub maintenance: BTreeMap<(String, String), Vec<crate::manifest::MaintenanceWindow>>,
    /// `(environment, monitor/NAME)` → the monthly uptime objective (percent), for burn rates.
    pub objectives: BTreeMap<(String, String), f64>,
}

impl Receivers {
    pub fn of(d: &DesiredState) -> Receivers {
        Receivers {
            alerts: d.alerts.clone(),
            secrets: d.alert_secrets.clone(),
            labels: crate::manifest::alerts::labels(d),
            maintenance: d
                .monitors
                .values()
                .filter(|m| !m.spec.maintenance_windows.is_empty())
                .map(|m| {
                    (
                        (
                            m.spec.environment.clone(),
                            format!("monitor/{}", m.meta.name),
                        ),
                        m.spec.maintenance_windows.clone(),
                    )
                })
                .collect(),
            objectives: d
                .monitors
                .values()
                .map(|m| {
                    (
                        (
                            m.spec.environment.clone(),
                            format!("monitor/{}", m.meta.name),
                        ),
                        m.spec.slo.uptime,
                    )
                })
                .collect(),
        }
    }
}

/// Counts for status and `/metrics` (kept in the store as `meta/alert-deliveries`).
pub type DeliveryStats = crate::status::AlertDeliveries;

/// Where the counts are kept.
pub(crate) const STATS_KEY: &str = "alert-deliveries";

/// Turns each pass's status into events and queues them for the receivers.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    outbox: outbox::Outbox,
    /// Events for one receiver within this window go in one message.
    window: chrono::Duration,
    /// The status page's base URL, for links.
    link_base: Option<String>,
    receivers: Arc<Mutex<Receivers>>,
    wake: Arc<tokio::sync::Notify>,
    stats: Arc<Mutex<DeliveryStats>>,
}

impl Notifier {
    pub fn new(store: Store, window: std::time::Duration, link_base: Option<String>) -> Self {
        let stats = store
            .get::<DeliveryStats>(trees::META, STATS_KEY)
            .ok()
            .flatten()
            .unwrap_or_default();
        Notifier {
            outbox: outbox::Outbox::new(store.clone()),
            store,
            window: chrono::Duration::from_std(window).unwrap_or_default(),
            link_base,
            receivers: Default::default(),
            wake: Default::default(),
            stats: Arc::new(Mutex::new(stats)),
        }
    }

    /// The alerts in force (after each load).
    pub fn set_receivers(&self, r: Receivers) {
        *self.receivers.lock().expect("receivers") = r;
    }

    pub fn stats(&self) -> DeliveryStats {
        let mut s = self.stats.lock().expect("stats").clone();
        s.pending = self.outbox.all().map(|a| a.len()).unwrap_or_default();
        s
    }

    /// The worker that delivers what this notifier queues.
    pub fn worker(&self, cfg: WorkerConfig) -> Worker {
        Worker::new(
            self.store.clone(),
            self.outbox.clone(),
            self.receivers.clone(),
            self.wake.clone(),
            self.stats.clone(),
            cfg,
        )
    }

    /// After a pass: the incidents the status shows, against those open before; the events
    /// that open or resolve are recorded and queued. Returns them.
    pub fn after_pass(
        &self,
        index: &Index,
        envs: &[std::sync::Arc<EnvStatus>],
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertEvent>, NotifyError> {
        let mut open: Vec<Incident> = envs.iter().flat_map(|e| incident::of_env(e, now)).collect();
        let objectives = self.receivers.lock().expect("receivers").objectives.clone();
        for e in envs {
            for r in e.resources.iter().filter(|r| r.kind == "monitor") {
                let resource = format!("monitor/{}", r.name);
                let key = (e.environment.clone(), resource.clone());
                let (Some(objective), Some(detail)) = (objectives.get(&key), &r.detail) else {
                    continue;
                };
                if let Some((severity, reason)) = incident::burn_rate(detail, *objective) {
                    open.push(Incident {
                        event: "slo.burn_rate".into(),
                        severity,
                        environment: Some(e.environment.clone()),
                        resource,
                        reason,
                        since: now,
                    });
                }
            }
        }
        let errors: Vec<String> = index
            .manifests
            .errors
            .iter()
            .map(|d| d.to_string())
            .collect();
        open.extend(incident::of_manifests(&errors, now));
        let before: BTreeMap<String, Incident> = self
            .store
            .scan::<Incident>(trees::INCIDENTS, "")?
            .into_iter()
            .collect();
        // A monitor in a maintenance window opens nothing (one already open stays open).
        let minute = crate::monitor::uptime::minute_of_ms(now.timestamp_millis());
        let maintenance = self
            .receivers
            .lock()
            .expect("receivers")
            .maintenance
            .clone();
        open.retain(|i| {
            let key = (
                i.environment.clone().unwrap_or_default(),
                i.resource.clone(),
            );
            let quiet = maintenance
                .get(&key)
                .is_some_and(|w| crate::monitor::uptime::in_maintenance(w, minute));
            !quiet || before.contains_key(&i.key())
        });
        let (mut events, keep) =
            incident::diff(&before, open, now, || ulid::Ulid::new().to_string());
        if keep != before {
            self.store.remove_prefix(trees::INCIDENTS, "")?;
            for (k, i) in &keep {
                self.store.put(trees::INCIDENTS, k, i)?;
            }
        }
        // One-off events; a state directory's first pass only learns what is there.
        let seen: happening::Seen = self
            .store
            .scan::<String>(trees::ALERT_SEEN, "")?
            .into_iter()
            .collect();
        let (once, next) = happening::since(envs, &seen, now, || ulid::Ulid::new().to_string());
        if self.store.get::<bool>(trees::META, "alert-seen")?.is_some() {
            events.extend(once);
        } else {
            self.store.put(trees::META, "alert-seen", &true)?;
        }
        if next != seen {
            self.store.remove_prefix(trees::ALERT_SEEN, "")?;
            for (k, v) in &next {
                self.store.put(trees::ALERT_SEEN, k, v)?;
            }
        }
        for e in &mut events {
            e.link = self.link(e.environment.as_deref());
            self.queue(e)?;
        }
        Ok(events)
    }

    /// Queues a test event through every receiver of `alert` (`tether alerts test`).
    pub fn test(&self, alert: &str, now: DateTime<Utc>) -> Result<AlertEvent, NotifyError> {
        if !self
            .receivers
            .lock()
            .expect("receivers")
            .alerts
            .contains_key(alert)
        {
            return Err(NotifyError::NoSuchAlert(alert.into()));
        }
        let e = AlertEvent {
            id: ulid::Ulid::new().to_string(),
            event: "test".into(),
            phase: Phase::Once,
            severity: AlertSeverity::Info,
            environment: None,
            resource: String::new(),
            reason: format!("a test of alert {alert}'s receivers"),
            at: now,
            link: self.link(None),
        };
        let r = self.receivers.lock().expect("receivers").clone();
        for (i, rec) in r.alerts[alert].spec.receivers.iter().enumerate() {
            self.outbox.add(
                alert,
                i,
                rec.kind(),
                e.clone(),
                now,
                chrono::Duration::zero(),
            )?;
        }
        self.store.put(trees::ALERT_EVENTS, &e.id, &e)?;
        self.wake.notify_one();
        Ok(e)
    }

    /// Messages not yet tried once.
    pub fn untried(&self) -> usize {
        self.outbox
            .all()
            .map(|a| a.iter().filter(|d| d.attempts == 0).count())
            .unwrap_or_default()
    }

    /// Makes every waiting message due now (ending grouping windows), and wakes the worker.
    pub fn send_now(&self) -> Result<(), NotifyError> {
        let now = Utc::now();
        for mut d in self.outbox.all()? {
            if d.attempts == 0 && d.next_at > now {
                d.next_at = now;
                self.outbox.put(&d)?;
            }
        }
        self.wake.notify_one();
        Ok(())
    }

    fn link(&self, env: Option<&str>) -> Option<String> {
        let base = self.link_base.as_deref()?.trim_end_matches('/');
        Some(match env {
            Some(e) => format!("{base}/api/environments/{e}"),
            None => format!("{base}/"),
        })
    }

    /// Records `e` and adds it to the outbox of every receiver of every alert that carries it.
    fn queue(&self, e: &AlertEvent) -> Result<(), NotifyError> {
        self.store.put(trees::ALERT_EVENTS, &e.id, e)?;
        self.store.keep_last(trees::ALERT_EVENTS, 1000)?;
        let r = self.receivers.lock().expect("receivers").clone();
        let now = e.at;
        for (name, alert) in &r.alerts {
            if !route::carries(&alert.spec, e, &r.labels) {
                continue;
            }
            for (i, rec) in alert.spec.receivers.iter().enumerate() {
                self.outbox
                    .add(name, i, rec.kind(), e.clone(), now, self.window)?;
            }
        }
        self.wake.notify_one();
        Ok(())
    }
}

/// The events recorded (newest last), for `tether events`.
pub fn recorded(store: &Store) -> Result<Vec<AlertEvent>, StoreError> {
    Ok(store
        .scan::<AlertEvent>(trees::ALERT_EVENTS, "")?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}
