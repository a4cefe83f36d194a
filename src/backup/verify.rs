//! Proving a backup restores: read the archive end to end, compare its SHA-256 with the
//! record, and have `pg_restore -f /dev/null` read every block (`--list` would pass a truncated
//! archive). Also restores an archive into another database, for restore drills and tests.

use super::io::{HashingReader, Report};
use super::{BackupError, BackupRecord, BackupSource, BackupStatus, DbUrl, Dumper, Storage};

/// Verifies a completed backup of tether's. A checksum mismatch is reported before anything
/// `pg_restore` says: a corrupted archive is corrupted, whatever else fails.
pub async fn verify(
    storage: &Storage,
    dumper: &dyn Dumper,
    record: &BackupRecord,
    report: Option<Report>,
) -> Result<(), BackupError> {
    let expected = checkable(record)?;
    let key = storage.key_of(&record.location)?;
    let (reader, _size) = storage.reader(&key).await?;
    let mut hashing = HashingReader::new(reader, report);
    let checked = dumper.check_archive(&mut hashing).await;
    // pg_restore may stop early: read the rest so the checksum covers every byte.
    tokio::io::copy(&mut hashing, &mut tokio::io::sink())
        .await
        .map_err(|e| BackupError::io(format!("cannot read {}", record.location), e))?;
    let (found, bytes) = hashing.digest();
    if found != expected {
        return Err(BackupError::Checksum {
            expected: expected.to_string(),
            found,
        });
    }
    if let Some(size) = record.size_bytes
        && size != bytes
    {
        return Err(BackupError::io(
            format!("the archive at {}", record.location),
            format!("it holds {bytes} bytes, the record says {size}"),
        ));
    }
    checked
}

/// Restores a backup into the database at `target` (`pg_restore --no-owner -d`), after the
/// same checksum check as [`verify`].
pub async fn restore_into(
    storage: &Storage,
    dumper: &dyn Dumper,
    record: &BackupRecord,
    target: &DbUrl,
) -> Result<(), BackupError> {
    let expected = checkable(record)?;
    let key = storage.key_of(&record.location)?;
    let (reader, _) = storage.reader(&key).await?;
    let mut hashing = HashingReader::new(reader, None);
    let restored = dumper.restore(&mut hashing, target).await;
    tokio::io::copy(&mut hashing, &mut tokio::io::sink())
        .await
        .map_err(|e| BackupError::io(format!("cannot read {}", record.location), e))?;
    let (found, _) = hashing.digest();
    if found != expected {
        return Err(BackupError::Checksum {
            expected: expected.to_string(),
            found,
        });
    }
    restored
}

fn checkable(record: &BackupRecord) -> Result<&str, BackupError> {
    if record.source != BackupSource::Tether {
        return Err(BackupError::Invalid(format!(
            "backup {} is Supabase's own: restore it from the Supabase dashboard or API",
            record.id
        )));
    }
    if !matches!(record.status, BackupStatus::Completed) {
        return Err(BackupError::Invalid(format!(
            "backup {} is {}: only completed backups can be read",
            record.id, record.status
        )));
    }
    record.checksum.as_deref().ok_or_else(|| {
        BackupError::Invalid(format!("backup {} has no recorded checksum", record.id))
    })
}
