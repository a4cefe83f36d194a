//! The outbox: messages waiting to be delivered, kept in the store so a restart loses none,
//! grouped per receiver within a short window, with their attempts and next try.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::incident::AlertEvent;
use crate::store::{Store, StoreError, trees};

/// One message for one receiver of one alert: the events it carries and its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Time-ordered; also sent as `X-Tether-Delivery` so a receiver can drop a repeat.
    pub id: String,
    pub alert: String,
    /// The receiver's index in the alert's `receivers`.
    pub receiver: usize,
    /// `slack`, `discord`, `webhook`, `email`.
    pub kind: String,
    pub events: Vec<AlertEvent>,
    pub attempts: u32,
    /// Not before this (the end of the grouping window, or the backoff).
    pub next_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The outbox in the store.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
}

impl Outbox {
    pub fn new(store: Store) -> Self {
        Outbox { store }
    }

    /// Adds `event` for a receiver: to the message still gathering for it (not yet tried and
    /// its window not over), else to a new one sent when `window` has passed.
    pub fn add(
        &self,
        alert: &str,
        receiver: usize,
        kind: &str,
        event: AlertEvent,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<(), StoreError> {
        let open = self.all()?.into_iter().find(|d| {
            d.alert == alert && d.receiver == receiver && d.attempts == 0 && d.next_at > now
        });
        let d = match open {
            Some(mut d) => {
                d.events.push(event);
                d
            }
            None => Delivery {
                id: ulid::Ulid::new().to_string(),
                alert: alert.into(),
                receiver,
                kind: kind.into(),
                events: vec![event],
                attempts: 0,
                next_at: now + window,
                last_error: None,
            },
        };
        self.put(&d)
    }

    pub fn put(&self, d: &Delivery) -> Result<(), StoreError> {
        self.store.put(trees::OUTBOX, &d.id, d)
    }

    /// Every waiting message, oldest first.
    pub fn all(&self) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .store
            .scan::<Delivery>(trees::OUTBOX, "")?
            .into_iter()
            .map(|(_, d)| d)
            .collect())
    }

    /// The messages due now, oldest first.
    pub fn due(&self, now: DateTime<Utc>) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|d| d.next_at <= now)
            .collect())
    }

    /// Done with a message: delivered, or given up.
    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.store.remove(trees::OUTBOX, id)
    }

    /// When the next message is due, if any waits.
    pub fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.all()?.iter().map(|d| d.next_at).min())
    }
}
