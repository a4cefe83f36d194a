//! The write-ahead intent journal: before a create or a deploy, an intent is stored and
//! flushed; after a crash, an environment with a pending intent is observed afresh before it
//! is planned, so the object is found (and adopted) rather than created twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::observed::ObjectKey;
use crate::store::{Store, StoreError, trees};

/// A write tether started and has not yet recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub id: String,
    pub key: ObjectKey,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub started_at: DateTime<Utc>,
}

/// Records an intent durably (flushed before the request is sent).
pub fn begin(
    store: &Store,
    key: &ObjectKey,
    action: &str,
    commit: Option<&str>,
) -> Result<Intent, StoreError> {
    let intent = Intent {
        id: ulid::Ulid::new().to_string(),
        key: key.clone(),
        action: action.to_string(),
        commit: commit.map(String::from),
        started_at: Utc::now(),
    };
    store.put(trees::JOURNAL, &intent.id, &intent)?;
    store.flush()?;
    Ok(intent)
}

/// Marks an intent resolved.
pub fn finish(store: &Store, intent: &Intent) -> Result<(), StoreError> {
    store.remove(trees::JOURNAL, &intent.id)
}

/// Intents left by a crash.
pub fn pending(store: &Store) -> Result<Vec<Intent>, StoreError> {
    Ok(store
        .scan::<Intent>(trees::JOURNAL, "")?
        .into_iter()
        .map(|(_, i)| i)
        .collect())
}

/// Fault injection for crash tests: when `TETHER_CRASH_AT` names this point, the process aborts
/// here, as a power cut would (no destructors, no flush).
pub fn crash_point(name: &str) {
    if std::env::var("TETHER_CRASH_AT").is_ok_and(|v| v == name) {
        eprintln!("TETHER_CRASH_AT={name}: aborting");
        std::process::abort();
    }
}
