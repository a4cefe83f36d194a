//! Taking one backup (URL, version check, streamed dump with SHA-256, abort on failure,
//! verification) and the runner's by-hand operations: `backup now`, `verify`, restore.

use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::io::AsyncWriteExt;
use ulid::Ulid;

use super::io::{HashingWriter, Report};
use super::runner::{Phase, Progress};
use super::{
    BackupError, BackupRecord, BackupRunner, BackupSource, BackupStatus, DbUrl, Storage, retention,
    verify,
};
use crate::manifest::{BackupPolicySpec, DesiredState};

/// Progress is logged at info level every this many bytes (and at debug level more often).
const LOG_EVERY: u64 = 64 << 20;

impl BackupRunner {
    /// Takes a backup of `policy` now (`manual`: a by-hand backup, kept by the manual tier).
    /// The record is stored whatever happens; a failure is also returned as the error.
    pub async fn backup_now(
        &mut self,
        desired: &DesiredState,
        policy: &str,
        manual: bool,
        now: DateTime<Utc>,
    ) -> Result<BackupRecord, BackupError> {
        match self.take(desired, policy, manual, now).await {
            (r, None) => Ok(r),
            (_, Some(e)) => Err(e),
        }
    }

    /// Reads a backup end to end and checks it; records when it was verified, or why not.
    pub async fn verify(
        &mut self,
        desired: &DesiredState,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<BackupRecord, BackupError> {
        let mut r = self.find(id)?;
        let spec = self.spec(desired, &r.policy)?;
        let storage = self.storage(&r.policy, &spec.storage)?;
        let report = self.reporter(&r.policy, Phase::Verifying);
        match verify::verify(&storage, &*self.dumper, &r, report).await {
            Ok(()) => {
                r.verified_at = Some(now);
                r.error = None;
                self.save(&r)?;
                tracing::info!(policy = %r.policy, id = %r.id, "backup verified");
                Ok(r)
            }
            Err(e) => {
                let e = BackupError::Verify(Box::new(e));
                r.error = Some(e.to_string());
                self.save(&r)?;
                tracing::warn!(policy = %r.policy, id = %r.id, error = %e, "backup verification failed");
                Err(e)
            }
        }
    }

    /// Restores a backup into the database at `target_url` (a restore drill, or a test).
    pub async fn restore_into(
        &mut self,
        desired: &DesiredState,
        id: &str,
        target_url: &str,
    ) -> Result<(), BackupError> {
        let r = self.find(id)?;
        let spec = self.spec(desired, &r.policy)?;
        let storage = self.storage(&r.policy, &spec.storage)?;
        let target = DbUrl::parse(target_url, None)?;
        verify::restore_into(&storage, &*self.dumper, &r, &target).await
    }

    /// Takes one backup. The record is saved in progress first, then completed (and verified)
    /// or failed; the error, if any, comes back beside it.
    pub(super) async fn take(
        &mut self,
        desired: &DesiredState,
        policy: &str,
        manual: bool,
        now: DateTime<Utc>,
    ) -> (BackupRecord, Option<BackupError>) {
        let started = Instant::now();
        let spec = match self.spec(desired, policy) {
            Ok(s) => s,
            Err(e) => return (placeholder(policy, now), Some(e)),
        };
        let tier = retention::classify(now, manual);
        let mut r = BackupRecord {
            id: Ulid::from_datetime(now.into()).to_string(),
            policy: policy.to_string(),
            environment: spec.environment.clone(),
            database: spec.database.clone(),
            backup_type: tier,
            size_bytes: None,
            location: String::new(),
            status: BackupStatus::InProgress,
            created_at: now,
            completed_at: None,
            expires_at: None,
            restore_point: Some(now),
            checksum: None,
            source: BackupSource::Tether,
            error: None,
            verified_at: None,
        };
        let result = self.run(desired, &spec, &mut r).await;
        let result = match result {
            Ok(()) => self.check_new(&spec, &mut r, started).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            r.status = BackupStatus::Failed;
            r.error = Some(e.to_string());
            r.size_bytes = None;
            r.checksum = None;
            r.expires_at = None;
            r.completed_at = None;
            tracing::warn!(policy, id = %r.id, error = %e, "backup failed; older backups are kept");
        } else {
            tracing::info!(
                policy, id = %r.id, bytes = r.size_bytes.unwrap_or(0),
                location = %r.location, seconds = started.elapsed().as_secs_f64(),
                "backup completed and verified"
            );
        }
        if let Err(e) = self.save(&r) {
            return (r, Some(e));
        }
        (r, result.err())
    }

    /// Dumps into storage; on any failure the upload is aborted so no partial object remains.
    async fn run(
        &mut self,
        desired: &DesiredState,
        spec: &BackupPolicySpec,
        r: &mut BackupRecord,
    ) -> Result<(), BackupError> {
        let storage = self.storage(&r.policy, &spec.storage)?;
        let key = Storage::object_key(&r.policy, r.created_at, r.backup_type);
        r.location = storage.location(&key);
        self.save(r)?;
        let url = database_url(desired, &r.policy, spec)?;
        self.dumper.preflight(&url).await?;
        if storage.exists(&key).await? {
            return Err(BackupError::io(
                format!("cannot write {}", r.location),
                "an archive already exists there",
            ));
        }
        tracing::info!(policy = %r.policy, id = %r.id, location = %r.location, "backup started");
        let report = self.reporter(&r.policy, Phase::Dumping);
        let mut w = HashingWriter::new(storage.writer(&key), report);
        let dumped = match self.dumper.dump(&url, &mut w).await {
            Ok(()) => w
                .shutdown()
                .await
                .map_err(|e| BackupError::io(format!("cannot write {}", r.location), e)),
            Err(e) => {
                if let Err(a) = w.inner_mut().abort().await {
                    tracing::warn!(location = %r.location, error = %a, "cannot abort the upload");
                }
                Err(e)
            }
        };
        if let Err(e) = dumped {
            // Belt and braces: whatever the upload left under this new name goes.
            let _ = storage.delete(&key).await;
            return Err(e);
        }
        let (sum, bytes) = w.digest();
        r.size_bytes = Some(bytes);
        r.checksum = Some(sum);
        Ok(())
    }

    /// Completes the record and verifies the new archive; an archive that fails verification
    /// is deleted (it cannot restore) and the attempt is a failure.
    async fn check_new(
        &mut self,
        spec: &BackupPolicySpec,
        r: &mut BackupRecord,
        started: Instant,
    ) -> Result<(), BackupError> {
        let created = r.created_at;
        let elapsed =
            move || created + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
        r.status = BackupStatus::Completed;
        r.completed_at = Some(elapsed());
        r.expires_at = Some(retention::expiry(
            &spec.retention,
            r.backup_type,
            r.created_at,
        ));
        let storage = self.storage(&r.policy, &spec.storage)?;
        let report = self.reporter(&r.policy, Phase::Verifying);
        match verify::verify(&storage, &*self.dumper, r, report).await {
            Ok(()) => {
                r.verified_at = Some(elapsed());
                Ok(())
            }
            Err(e) => {
                let key = storage.key_of(&r.location)?;
                let _ = storage.delete(&key).await;
                Err(BackupError::Verify(Box::new(e)))
            }
        }
    }

    /// A progress reporter: tracing, and the callback when one is set.
    fn reporter(&self, policy: &str, phase: Phase) -> Option<Report> {
        let cb = self.progress.clone();
        let policy = policy.to_string();
        let mut next_log = LOG_EVERY;
        Some(Box::new(move |bytes| {
            if bytes >= next_log {
                next_log = bytes + LOG_EVERY;
                tracing::info!(policy = %policy, ?phase, bytes, "backup progress");
            } else {
                tracing::debug!(policy = %policy, ?phase, bytes, "backup progress");
            }
            if let Some(cb) = &cb {
                cb(&Progress {
                    policy: policy.clone(),
                    phase,
                    bytes,
                });
            }
        }))
    }
}

/// The policy's database URL: the decrypted inline secret, or the environment's variable.
fn database_url(
    desired: &DesiredState,
    policy: &str,
    spec: &BackupPolicySpec,
) -> Result<DbUrl, BackupError> {
    let raw = if let Some(v) = desired.backup_urls.get(policy) {
        v.expose()
    } else if let Some(why) = &spec.database_url.placeholder {
        return Err(BackupError::config(
            policy,
            format!(
                "the database URL is a placeholder ({why}); give it as a secret or fromVariable"
            ),
        ));
    } else if let Some(name) = &spec.database_url.from_variable {
        desired
            .variables
            .get(&spec.environment)
            .and_then(|m| m.get(name))
            .map(|v| v.value.expose())
            .ok_or_else(|| {
                BackupError::config(
                    policy,
                    format!("environment {} has no variable {name}", spec.environment),
                )
            })?
    } else {
        return Err(BackupError::config(
            policy,
            "the database URL secret was not decrypted (is TETHER_AGE_KEY_FILE set?)",
        ));
    };
    DbUrl::parse(raw, Some(&spec.database)).map_err(|e| BackupError::config(policy, e.to_string()))
}

/// The record of an attempt for a policy that does not exist (never saved).
fn placeholder(policy: &str, now: DateTime<Utc>) -> BackupRecord {
    BackupRecord {
        id: Ulid::from_datetime(now.into()).to_string(),
        policy: policy.to_string(),
        environment: String::new(),
        database: String::new(),
        backup_type: retention::classify(now, true),
        size_bytes: None,
        location: String::new(),
        status: BackupStatus::Failed,
        created_at: now,
        completed_at: None,
        expires_at: None,
        restore_point: None,
        checksum: None,
        source: BackupSource::Tether,
        error: Some(format!("no backup policy is named {policy}")),
        verified_at: None,
    }
}
