//! The delivery task: sends what is due in the outbox, one message at a time per receiver and
//! at most one a `min_interval`, retries 429, 5xx and timeouts with backoff, and gives up after
//! `max_attempts`. It runs beside the reconciler and never holds it up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;

use super::outbox::{Delivery, Outbox};
use super::send::{Sent, send};
use super::{DeliveryStats, Receivers};
use crate::store::StoreError;

/// How deliveries are retried and spaced.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The first retry waits this long; each next one twice as long.
    pub retry_base: Duration,
    /// No retry waits longer (a Retry-After is honoured up to an hour).
    pub retry_max: Duration,
    /// Attempts before a message is given up on.
    pub max_attempts: u32,
    /// At most one message per receiver this often.
    pub min_interval: Duration,
    /// Under `--simulate`: the simulator's base URL, where every message goes instead of to
    /// its receiver (`/__sim/alerts`).
    pub redirect: Option<String>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            max_attempts: 12,
            min_interval: Duration::from_secs(1),
            redirect: None,
        }
    }
}

/// Delivers the outbox.
pub struct Worker {
    store: crate::store::Store,
    outbox: Outbox,
    receivers: Arc<Mutex<Receivers>>,
    wake: Arc<tokio::sync::Notify>,
    stats: Arc<Mutex<DeliveryStats>>,
    cfg: WorkerConfig,
    client: reqwest::Client,
    last_sent: HashMap<(String, usize), tokio::time::Instant>,
}

impl Worker {
    pub(super) fn new(
        store: crate::store::Store,
        outbox: Outbox,
        receivers: Arc<Mutex<Receivers>>,
        wake: Arc<tokio::sync::Notify>,
        stats: Arc<Mutex<DeliveryStats>>,
        cfg: WorkerConfig,
    ) -> Worker {
        Worker {
            store,
            outbox,
            receivers,
            wake,
            stats,
            cfg,
            client: reqwest::Client::new(),
            last_sent: HashMap::new(),
        }
    }

    /// Delivers until the process ends; waits for the next due message or a new one.
    pub async fn run(mut self) {
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::warn!("alerts: cannot read the outbox: {e}");
            }
            let wait = match self.outbox.next_due() {
                Ok(Some(at)) => (at - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .max(Duration::from_millis(10)),
                _ => Duration::from_secs(60),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Sends every message that is due and whose receiver may be sent to now.
    pub async fn deliver_due(&mut self) -> Result<(), StoreError> {
        for d in self.outbox.due(Utc::now())? {
            let slot = (d.alert.clone(), d.receiver);
            if let Some(last) = self.last_sent.get(&slot) {
                let ready = *last + self.cfg.min_interval;
                if ready > tokio::time::Instant::now() {
                    let mut later = d.clone();
                    later.next_at = Utc::now()
                        + chrono::Duration::from_std(ready - tokio::time::Instant::now())
                            .unwrap_or_default();
                    self.outbox.put(&later)?;
                    continue;
                }
            }
            let receivers = self.receivers.lock().expect("receivers").clone();
            let outcome = match receivers.alerts.get(&d.alert) {
                None => Sent::GiveUp(format!("alert {} is no longer in the manifests", d.alert)),
                Some(alert) => match &self.cfg.redirect {
                    Some(base) => super::send::to_simulator(&self.client, base, alert, &d).await,
                    None => send(&self.client, &receivers, alert, &d).await,
                },
            };
            self.last_sent.insert(slot, tokio::time::Instant::now());
            self.settle(d, outcome)?;
            let mut stats = self.stats.lock().expect("stats").clone();
            stats.pending = self.outbox.all()?.len();
            self.store
                .put(crate::store::trees::META, super::STATS_KEY, &stats)?;
        }
        Ok(())
    }

    fn settle(&self, mut d: Delivery, outcome: Sent) -> Result<(), StoreError> {
        let mut stats = self.stats.lock().expect("stats");
        match outcome {
            Sent::Delivered => {
                self.outbox.remove(&d.id)?;
                stats.delivered += 1;
                tracing::info!(
                    "alerts: delivered {} event(s) to {} receiver {} of alert {}",
                    d.events.len(),
                    d.kind,
                    d.receiver,
                    d.alert
                );
            }
            Sent::Retry { why, after } if d.attempts + 1 < self.cfg.max_attempts => {
                d.attempts += 1;
                let backoff = self
                    .cfg
                    .retry_base
                    .saturating_mul(1 << (d.attempts - 1).min(16))
                    .min(self.cfg.retry_max);
                let wait = after
                    .map(|a| a.min(Duration::from_secs(3600)))
                    .unwrap_or(backoff);
                d.next_at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                tracing::warn!(
                    "alerts: {why}; trying again in {} s (attempt {} of {})",
                    wait.as_secs_f64().ceil(),
                    d.attempts + 1,
                    self.cfg.max_attempts
                );
                d.last_error = Some(why);
                self.outbox.put(&d)?;
                stats.retried += 1;
            }
            Sent::Retry { why, .. } | Sent::GiveUp(why) => {
                self.outbox.remove(&d.id)?;
                stats.failed += 1;
                tracing::warn!("alerts: gave up on a message: {why}");
                stats.last_failure = Some(why);
                stats.last_failure_at = Some(Utc::now());
            }
        }
        Ok(())
    }
}
