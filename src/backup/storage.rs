//! Where archives live: a local directory or an S3-compatible bucket, both through
//! `object_store`. Uploads stream through a `BufWriter` that is aborted on failure, so a failed
//! dump leaves no object; names are `<policy>/<YYYY>/<MM>/<policy>-<timestamp>-<type>.dump`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::{BufReader, BufWriter};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::{BackupError, BackupType};
use crate::manifest::Storage as StorageSpec;

/// An archive store, with the base its locations are written against.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// A directory path, or `s3://bucket/prefix`; locations are `<base>/<key>`.
    base: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.base)
    }
}

impl Storage {
    /// Opens the storage a policy names. A local directory is created when missing; S3
    /// credentials come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and
    /// `AWS_SESSION_TOKEN`), never from the manifest.
    pub fn open(spec: &StorageSpec) -> Result<Storage, BackupError> {
        Storage::open_with(spec, &|k| std::env::var(k).ok())
    }

    /// [`Storage::open`] with the environment read through `env` (tests pass credentials).
    pub fn open_with(
        spec: &StorageSpec,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Storage, BackupError> {
        match (&spec.local, &spec.s3) {
            (Some(local), None) => {
                let what = format!("cannot use the backup directory {}", local.path);
                std::fs::create_dir_all(&local.path).map_err(|e| BackupError::io(&what, e))?;
                let dir =
                    std::fs::canonicalize(&local.path).map_err(|e| BackupError::io(&what, e))?;
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| BackupError::io(&what, e))?
                    .with_automatic_cleanup(true)
                    .with_fsync(true);
                Ok(Storage {
                    store: Arc::new(fs),
                    base: dir.display().to_string().trim_end_matches('/').to_string(),
                })
            }
            (None, Some(s3)) => {
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region);
                if let Some(ep) = &s3.endpoint {
                    b = b
                        .with_endpoint(ep)
                        .with_allow_http(ep.starts_with("http://"));
                }
                for (var, set) in [
                    ("AWS_ACCESS_KEY_ID", 0),
                    ("AWS_SECRET_ACCESS_KEY", 1),
                    ("AWS_SESSION_TOKEN", 2),
                ] {
                    if let Some(v) = env(var) {
                        b = match set {
                            0 => b.with_access_key_id(v),
                            1 => b.with_secret_access_key(v),
                            _ => b.with_token(v),
                        };
                    }
                }
                let what = format!("cannot use the S3 bucket {}", s3.bucket);
                let s3_store = b.build().map_err(|e| BackupError::io(&what, e))?;
                let prefix = s3
                    .prefix
                    .as_deref()
                    .unwrap_or("")
                    .trim_matches('/')
                    .to_string();
                let mut base = format!("s3://{}", s3.bucket);
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3_store)
                } else {
                    base = format!("{base}/{prefix}");
                    Arc::new(PrefixStore::new(s3_store, Path::from(prefix.as_str())))
                };
                Ok(Storage { store, base })
            }
            _ => Err(BackupError::Invalid(
                "the backup storage must be exactly one of local or s3".into(),
            )),
        }
    }

    /// Any object store, for tests (`object_store::memory::InMemory`); `base` prefixes
    /// locations.
    pub fn from_store(store: Arc<dyn ObjectStore>, base: impl Into<String>) -> Storage {
        Storage {
            store,
            base: base.into().trim_end_matches('/').to_string(),
        }
    }

    /// The object name of a backup: `<policy>/<YYYY>/<MM>/<policy>-<YYYYMMDDTHHMMSSZ>-<type>.dump`.
    pub fn object_key(policy: &str, created_at: DateTime<Utc>, tier: BackupType) -> Path {
        Path::from(format!(
            "{policy}/{}/{policy}-{}-{tier}.dump",
            created_at.format("%Y/%m"),
            created_at.format("%Y%m%dT%H%M%SZ"),
        ))
    }

    /// Where an object is, for records and people.
    pub fn location(&self, key: &Path) -> String {
        format!("{}/{key}", self.base)
    }

    /// The object key of a location this storage wrote.
    pub fn key_of(&self, location: &str) -> Result<Path, BackupError> {
        location
            .strip_prefix(&self.base)
            .and_then(|k| k.strip_prefix('/'))
            .filter(|k| !k.is_empty())
            .map(Path::from)
            .ok_or_else(|| {
                BackupError::Invalid(format!(
                    "the backup at {location} is not in the policy's storage {}",
                    self.base
                ))
            })
    }

    /// A streaming writer for `key`. Call `shutdown` to complete it, or `abort` on failure.
    pub fn writer(&self, key: &Path) -> BufWriter {
        BufWriter::new(Arc::clone(&self.store), key.clone())
    }

    /// A streaming reader of `key` and its size.
    pub async fn reader(&self, key: &Path) -> Result<(BufReader, u64), BackupError> {
        let meta = self
            .store
            .head(key)
            .await
            .map_err(|e| BackupError::io(format!("cannot read {}", self.location(key)), e))?;
        let size = meta.size;
        Ok((BufReader::new(Arc::clone(&self.store), &meta), size))
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &Path) -> Result<bool, BackupError> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(BackupError::io(
                format!("cannot look up {}", self.location(key)),
                e,
            )),
        }
    }

    /// Deletes `key`; an object already gone is fine.
    pub async fn delete(&self, key: &Path) -> Result<(), BackupError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(BackupError::io(
                format!("cannot delete {}", self.location(key)),
                e,
            )),
        }
    }

    /// Every object under `prefix` (recursively), in name order. Any failure fails the whole
    /// listing: callers must not act on a partial one.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, BackupError> {
        let mut out = Vec::new();
        let mut pending = vec![Path::from(prefix)];
        while let Some(dir) = pending.pop() {
            let page = self
                .store
                .list_with_delimiter(Some(&dir))
                .await
                .map_err(|e| BackupError::io(format!("cannot list {}", self.location(&dir)), e))?;
            out.extend(page.objects);
            pending.extend(page.common_prefixes);
        }
        out.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{LocalStorage, S3Storage};
    use object_store::memory::InMemory;
    use tokio::io::AsyncWriteExt;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn names_and_locations() {
        let key = Storage::object_key("prod-db", t("2026-03-01T03:00:07Z"), BackupType::Monthly);
        assert_eq!(
            key.as_ref(),
            "prod-db/2026/03/prod-db-20260301T030007Z-monthly.dump"
        );
        let s = Storage::from_store(Arc::new(InMemory::new()), "s3://bucket/backups/");
        let loc = s.location(&key);
        assert_eq!(
            loc,
            "s3://bucket/backups/prod-db/2026/03/prod-db-20260301T030007Z-monthly.dump"
        );
        assert_eq!(s.key_of(&loc).unwrap(), key);
        assert!(s.key_of("s3://other/x.dump").is_err());
        assert!(s.key_of("s3://bucket/backups").is_err());
    }

    #[test]
    fn exactly_one_kind_of_storage() {
        let both = StorageSpec {
            local: Some(LocalStorage { path: "x".into() }),
            s3: Some(S3Storage {
                bucket: "b".into(),
                prefix: None,
                region: "us-east-1".into(),
                endpoint: None,
            }),
        };
        assert!(
            Storage::open(&both)
                .unwrap_err()
                .to_string()
                .contains("exactly one")
        );
    }

    #[tokio::test]
    async fn local_storage_round_trip_and_abort() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/backups");
        let s = Storage::open(&StorageSpec {
            local: Some(LocalStorage {
                path: path.display().to_string(),
            }),
            s3: None,
        })
        .unwrap();
        let key = Storage::object_key("p", t("2026-01-05T03:00:00Z"), BackupType::Daily);
        let mut w = s.writer(&key);
        w.write_all(b"archive").await.unwrap();
        w.shutdown().await.unwrap();
        assert!(s.exists(&key).await.unwrap());
        let loc = s.location(&key);
        assert!(std::path::Path::new(&loc).is_file(), "{loc}");
        let (_, size) = s.reader(&key).await.unwrap();
        assert_eq!(size, 7);

        let other = Storage::object_key("p", t("2026-02-05T03:00:00Z"), BackupType::Daily);
        let mut w = s.writer(&other);
        w.write_all(b"half").await.unwrap();
        w.abort().await.unwrap();
        assert!(!s.exists(&other).await.unwrap());

        let listed = s.list("p").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].location, key);
        s.delete(&key).await.unwrap();
        s.delete(&key).await.unwrap();
        assert!(s.list("p").await.unwrap().is_empty());
    }
}
