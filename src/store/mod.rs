//! The sled database, behind one small interface so it can be swapped in one place. Trees hold
//! observed state, the inventory, the intent journal, the deployment ledger, monitoring samples,
//! backup records and events; values are JSON. One writer: the reconcile loop owns writes.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::observed::{ObjectKey, ObservedEnv, ObservedState};

/// Errors from the store. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("another tether is running on {}", .0.display())]
    Locked(PathBuf),
    #[error("the state store in {} is corrupt ({detail}); move it aside and tether rebuilds it from the platforms", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot use the state directory {}: {detail}", path.display())]
    Io { path: PathBuf, detail: String },
    #[error("the state store in {} holds an unreadable {tree} record {key:?} ({detail}); move it aside and tether rebuilds it", path.display())]
    Decode {
        path: PathBuf,
        tree: &'static str,
        key: String,
        detail: String,
    },
}

/// Names of the trees.
pub mod trees {
    /// Every tree, for tools that walk them all (fuzzing).
    pub const ALL: [&str; 17] = [
        OBSERVED,
        INVENTORY,
        ADOPTED,
        META,
        JOURNAL,
        LEDGER,
        HOLDS,
        CERTS,
        WRITES,
        DRIFT,
        SAMPLES,
        BACKUPS,
        EVENTS,
        OUTBOX,
        INCIDENTS,
        ALERT_SEEN,
        ALERT_EVENTS,
    ];
    pub const OBSERVED: &str = "observed";
    pub const INVENTORY: &str = "inventory";
    /// When tether adopted an object it found on the platform (object key → time).
    pub const ADOPTED: &str = "adopted";
    pub const META: &str = "meta";
    pub const JOURNAL: &str = "journal";
    pub const LEDGER: &str = "ledger";
    pub const HOLDS: &str = "holds";
    pub const CERTS: &str = "certs";
    pub const WRITES: &str = "writes";
    pub const DRIFT: &str = "drift";
    pub const SAMPLES: &str = "samples";
    pub const BACKUPS: &str = "backups";
    pub const EVENTS: &str = "events";
    /// Alert messages waiting for delivery (notify's outbox).
    pub const OUTBOX: &str = "outbox";
    /// The incidents open at the last pass.
    pub const INCIDENTS: &str = "incidents";
    /// What one-off alert events were already sent for (deployments, drift).
    pub const ALERT_SEEN: &str = "alert-seen";
    /// Alert events, the last 1,000.
    pub const ALERT_EVENTS: &str = "alert-events";
}

/// The state database. Cheap to clone (sled's `Db` is shared); open it once per process.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

impl Store {
    /// The page cache sled may keep in memory.
    pub const CACHE_BYTES: u64 = 8 * 1024 * 1024;

    /// Opens (creating) the store under `dir`. A second open of the same directory, from this
    /// process or another, fails with [`StoreError::Locked`].
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
            path: dir.into(),
            detail: e.to_string(),
        })?;
        // sled caches up to 1 GiB of pages by default; tether keeps what it reads often in
        // its own structures, so a small page cache bounds the daemon's memory.
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(Self::CACHE_BYTES)
            .open()
            .map_err(|e| classify(dir, e))?;
        Ok(Store {
            db,
            path: dir.to_path_buf(),
        })
    }

    /// A store in memory, for tests and `plan` without a state directory.
    pub fn temporary() -> Store {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .expect("temporary sled");
        Store {
            db,
            path: PathBuf::from("(memory)"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tree(&self, name: &'static str) -> Result<sled::Tree, StoreError> {
        self.db.open_tree(name).map_err(|e| classify(&self.path, e))
    }

    /// Reads one JSON record.
    pub fn get<T: DeserializeOwned>(
        &self,
        tree: &'static str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let t = self.tree(tree)?;
        match t.get(key.as_bytes()).map_err(|e| classify(&self.path, e))? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.decode(tree, key, e)),
        }
    }

    /// The stored bytes of every record of a tree, by key: for fuzzing the readers with
    /// damaged records (tests), not for tether's own use.
    #[doc(hidden)]
    pub fn raw_records(&self, tree: &'static str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.tree(tree)?
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| classify(&self.path, e))?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    /// Stores bytes as they are under a key: see [`Self::raw_records`].
    #[doc(hidden)]
    pub fn raw_put(&self, tree: &'static str, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.tree(tree)?
            .insert(key.as_bytes(), bytes)
            .map_err(|e| classify(&self.path, e))?;
        Ok(())
    }

    /// Writes one JSON record.
    pub fn put<T: Serialize>(
        &self,
        tree: &'static str,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).expect("records serialize");
        self.tree(tree)?
            .insert(key.as_bytes(), bytes)
            .map_err(|e| classify(&self.path, e))?;
        Ok(())
    }

    pub fn remove(&self, tree: &'static str, key: &str) -> Result<(), StoreError> {
        self.tree(tree)?
            .remove(key.as_bytes())
            .map_err(|e| classify(&self.path, e))?;
        Ok(())
    }

    /// Every record of a tree whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(
        &self,
        tree: &'static str,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let t = self.tree(tree)?;
        let mut out = Vec::new();
        for item in t.scan_prefix(prefix.as_bytes()) {
            let (k, v) = item.map_err(|e| classify(&self.path, e))?;
            let key = String::from_utf8_lossy(&k).into_owned();
            let value = serde_json::from_slice(&v).map_err(|e| self.decode(tree, &key, e))?;
            out.push((key, value));
        }
        Ok(out)
    }

    /// The last `n` records of a tree, in reverse key order (newest first for time-ordered
    /// keys).
    pub fn last<T: DeserializeOwned>(
        &self,
        tree: &'static str,
        n: usize,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let t = self.tree(tree)?;
        let mut out = Vec::new();
        for item in t.iter().rev().take(n) {
            let (k, v) = item.map_err(|e| classify(&self.path, e))?;
            let key = String::from_utf8_lossy(&k).into_owned();
            let value = serde_json::from_slice(&v).map_err(|e| self.decode(tree, &key, e))?;
            out.push((key, value));
        }
        Ok(out)
    }

    /// Keeps the last `keep` records of a tree (in key order) and removes the rest.
    pub fn keep_last(&self, tree: &'static str, keep: usize) -> Result<usize, StoreError> {
        let t = self.tree(tree)?;
        let excess = t.len().saturating_sub(keep);
        let keys: Vec<_> = t
            .iter()
            .keys()
            .take(excess)
            .collect::<Result<_, _>>()
            .map_err(|e| classify(&self.path, e))?;
        for k in &keys {
            t.remove(k).map_err(|e| classify(&self.path, e))?;
        }
        Ok(keys.len())
    }

    /// Removes every record of a tree whose key starts with `prefix`.
    pub fn remove_prefix(&self, tree: &'static str, prefix: &str) -> Result<usize, StoreError> {
        let t = self.tree(tree)?;
        let keys: Vec<_> = t
            .scan_prefix(prefix.as_bytes())
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| classify(&self.path, e))?;
        for k in &keys {
            t.remove(k).map_err(|e| classify(&self.path, e))?;
        }
        Ok(keys.len())
    }

    /// Flushes to disk (on shutdown and after each pass).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| classify(&self.path, e))?;
        Ok(())
    }

    /// The seed for value fingerprints when no age identity is configured: random, made once.
    pub fn fingerprint_seed(&self) -> Result<Vec<u8>, StoreError> {
        if let Some(seed) = self.get::<String>(trees::META, "fingerprint-seed")? {
            return Ok(hex::decode(seed).unwrap_or_default());
        }
        let seed: [u8; 32] = rand::random();
        self.put(trees::META, "fingerprint-seed", &hex::encode(seed))?;
        Ok(seed.to_vec())
    }

    /// The observed state and inventory as cached.
    pub fn observed(&self) -> Result<ObservedState, StoreError> {
        let mut st = ObservedState::default();
        for (name, env) in self.scan::<ObservedEnv>(trees::OBSERVED, "")? {
            st.environments.insert(name, env);
        }
        for (_, key) in self.scan::<ObjectKey>(trees::INVENTORY, "")? {
            st.inventory.insert(key);
        }
        Ok(st)
    }

    pub fn put_observed_env(&self, name: &str, env: &ObservedEnv) -> Result<(), StoreError> {
        self.put(trees::OBSERVED, name, env)
    }

    pub fn remove_observed_env(&self, name: &str) -> Result<(), StoreError> {
        self.remove(trees::OBSERVED, name)
    }

    pub fn add_inventory(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.put(trees::INVENTORY, &key.to_string(), key)
    }

    pub fn remove_inventory(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.remove(trees::INVENTORY, &key.to_string())
    }

    fn decode(&self, tree: &'static str, key: &str, e: serde_json::Error) -> StoreError {
        StoreError::Decode {
            path: self.path.clone(),
            tree,
            key: key.into(),
            detail: e.to_string(),
        }
    }
}

fn classify(dir: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked(dir.into())
        }
        sled::Error::Io(io) => StoreError::Io {
            path: dir.into(),
            detail: io.to_string(),
        },
        sled::Error::Corruption { .. } => StoreError::Corrupt {
            path: dir.into(),
            detail: e.to_string(),
        },
        other => StoreError::Corrupt {
            path: dir.into(),
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::ObjectKind;

    #[test]
    fn second_open_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".tether");
        let first = Store::open(&state).unwrap();
        let err = Store::open(&state).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("another tether is running on {}", state.display())
        );
        drop(first);
    }

    #[test]
    fn observed_and_inventory_round_trip_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.put_observed_env("prod", &ObservedEnv::default()).unwrap();
            s.add_inventory(&ObjectKey::new("prod", ObjectKind::Variable, "A"))
                .unwrap();
            s.flush().unwrap();
        }
        // sled's flusher thread lets go of the lock a moment after the last handle drops.
        let s = (0..100)
            .find_map(|_| {
                Store::open(dir.path())
                    .inspect_err(|_| std::thread::sleep(std::time::Duration::from_millis(20)))
                    .ok()
            })
            .expect("the store opens again");
        let st = s.observed().unwrap();
        assert!(st.environments.contains_key("prod"));
        assert_eq!(st.inventory.len(), 1);
        let seed = s.fingerprint_seed().unwrap();
        assert_eq!(seed, s.fingerprint_seed().unwrap());
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let s = Store::temporary();
        s.tree(trees::OBSERVED)
            .unwrap()
            .insert("prod", &b"not json"[..])
            .unwrap();
        let err = s.observed().unwrap_err().to_string();
        assert!(err.contains("unreadable observed record \"prod\""), "{err}");
    }
}
