//! Backups end to end: a real PostgreSQL (and moto's S3 server) for dump, checksum, verify,
//! restore and failures; the in-memory dumper for two simulated years of GFS retention.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use sha2::{Digest, Sha256};
use support::postgres::{PASSWORD, Postgres};
use tether::backup::{
    BackupEvent, BackupRecord, BackupRunner, BackupStatus, BackupType, DbUrl, Dumper, MemoryDumper,
    PgDump, Storage, verify,
};
use tether::manifest::{
    BackupPolicySpec, DatabaseUrl, DesiredState, DesiredVar, LocalStorage, Metadata, Resource,
    Retention, S3Storage, Source, Storage as StorageSpec, VarValue,
};
use tether::secret::{Fingerprint, SecretValue};
use tether::store::Store;

const POLICY: &str = "prod-database";
const ENV: &str = "prod-database";
const WRONG: &str = "Wrong-Pw-9@z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn local(dir: &Path) -> StorageSpec {
    StorageSpec {
        local: Some(LocalStorage {
            path: dir.display().to_string(),
        }),
        s3: None,
    }
}

fn spec(storage: StorageSpec) -> BackupPolicySpec {
    BackupPolicySpec {
        environment: ENV.into(),
        database: "app".into(),
        database_url: DatabaseUrl {
            secret: Some("(age ciphertext)".into()),
            from_variable: None,
            placeholder: None,
        },
        schedule: "0 3 * * *".into(),
        retention: Retention::default(),
        storage,
    }
}

/// A desired state with one policy whose inline URL is `url`.
fn desired(spec: BackupPolicySpec, url: &str) -> DesiredState {
    let mut d = DesiredState::default();
    d.backup_policies.insert(
        POLICY.into(),
        Resource {
            meta: Metadata {
                name: POLICY.into(),
                labels: Default::default(),
                annotations: Default::default(),
            },
            spec,
            source: Source::new("database/backup.yaml", 1),
        },
    );
    d.backup_urls
        .insert(POLICY.into(), SecretValue::new(url.into()));
    d
}

/// Collects every log line (all levels) written on this thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> (tracing::subscriber::DefaultGuard, Logs) {
        let logs = Logs::default();
        let w = logs.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || w.clone())
            .finish();
        (tracing::subscriber::set_default(sub), logs)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Fails if a password (plain or percent-encoded) appears in `what`.
fn assert_no_password(label: &str, what: &str) {
    for p in [PASSWORD, WRONG] {
        let enc = p.replace('@', "%40").replace('/', "%2F");
        assert!(
            !what.contains(p) && !what.contains(&enc),
            "a password leaked into {label}"
        );
    }
}

/// Every regular file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Records, logs and the store's files hold no password.
fn assert_clean(records: &[BackupRecord], logs: &Logs, state_dir: Option<&Path>) {
    assert_no_password("records", &serde_json::to_string(records).unwrap());
    assert_no_password("logs", &logs.text());
    for f in state_dir.map(files).unwrap_or_default() {
        let bytes = std::fs::read(&f).unwrap();
        assert_no_password("the store", &String::from_utf8_lossy(&bytes));
    }
}

fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

fn completed(events: &[BackupEvent], logs: &Logs) -> BackupRecord {
    match events.first() {
        Some(BackupEvent::Completed { record }) => record.clone(),
        other => panic!(
            "expected a completed backup, got {other:?}\n{}",
            logs.text()
        ),
    }
}

fn failed(events: &[BackupEvent]) -> BackupRecord {
    match events.first() {
        Some(BackupEvent::Failed { record }) => record.clone(),
        other => panic!("expected a failed backup, got {other:?}"),
    }
}

/// Row count and an order-independent digest of a table's contents.
async fn table_digest(conninfo: &str, table: &str) -> (i64, String) {
    let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) \
                 FROM {table} t"
            ),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn backup_checksum_verify_and_restore_round_trip() {
    let (_guard, logs) = Logs::capture();
    let pg = Postgres::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = desired(spec(local(&tmp.path().join("b"))), &pg.url("postgres"));
    let state = tmp.path().join("state");
    let store = Store::open(&state).unwrap();
    let mut r = BackupRunner::new(store.clone(), Arc::new(PgDump::in_dir(&pg.bin)));
    let now = t("2026-03-01T03:00:00Z");

    let events = r.tick(&d, now).await;
    let rec = completed(&events, &logs);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(rec.backup_type, BackupType::Monthly);
    assert_eq!(rec.status, BackupStatus::Completed);
    assert_eq!(rec.database, "app");
    assert_eq!(rec.environment, ENV);
    assert_eq!(rec.restore_point, Some(now));
    assert_eq!(rec.expires_at, Some(now + Duration::days(730)));
    assert!(rec.verified_at.is_some() && rec.error.is_none());
    assert!(
        rec.location
            .ends_with("/b/prod-database/2026/03/prod-database-20260301T030000Z-monthly.dump"),
        "{}",
        rec.location
    );
    let file = Path::new(&rec.location);
    let bytes = std::fs::read(file).unwrap();
    assert!(bytes.starts_with(b"PGDMP"), "a custom-format archive");
    assert_eq!(rec.size_bytes, Some(bytes.len() as u64));
    assert_eq!(rec.checksum.as_deref(), Some(sha256_file(file).as_str()));

    // Nothing more is due today.
    assert!(r.tick(&d, now + Duration::hours(2)).await.is_empty());

    let later = now + Duration::hours(1);
    let v = r.verify(&d, &rec.id, later).await.unwrap();
    assert_eq!(v.verified_at, Some(later));

    pg.create_db("scratch");
    r.restore_into(&d, &rec.id, &pg.url("scratch"))
        .await
        .unwrap();
    for (table, rows) in [("customers", 300), ("orders", 2000)] {
        let src = table_digest(&pg.conninfo("app"), table).await;
        assert_eq!(src.0, rows);
        assert_eq!(
            table_digest(&pg.conninfo("scratch"), table).await,
            src,
            "{table}"
        );
    }
    let big = pg.psql("scratch", "SELECT count(*) FROM big_orders");
    assert_eq!(
        big.trim(),
        pg.psql("app", "SELECT count(*) FROM big_orders").trim()
    );

    let st = r.status(POLICY, later);
    assert_eq!(st["lastCompleted"]["id"], rec.id.as_str());
    assert_eq!(st["lastVerified"], "2026-03-01T04:00:00Z");
    assert_eq!(st["nextDue"], "2026-03-02T03:00:00Z");
    assert_eq!(st["alert"], serde_json::Value::Null);
    assert_eq!(r.records(Some(ENV)).unwrap().len(), 1);
    assert!(r.records(Some("other")).unwrap().is_empty());

    store.flush().unwrap();
    assert_no_password("status", &st.to_string());
    assert_clean(&r.records(None).unwrap(), &logs, Some(&state));
}

#[tokio::test]
async fn corruption_is_caught_by_the_checksum_and_truncation_by_pg_restore() {
    let pg = Postgres::start();
    let tmp = tempfile::tempdir().unwrap();
    let storage_spec = local(&tmp.path().join("b"));
    let d = desired(spec(storage_spec.clone()), &pg.url("app"));
    let dumper = PgDump::in_dir(&pg.bin);
    let mut r = BackupRunner::new(Store::temporary(), Arc::new(dumper.clone()));
    let (_guard, logs) = Logs::capture();
    let rec = completed(&r.tick(&d, t("2026-03-02T03:00:00Z")).await, &logs);
    let file = PathBuf::from(&rec.location);
    let good = std::fs::read(&file).unwrap();

    // A few flipped bytes in the middle: the checksum catches it.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 4] {
        *b ^= 0xff;
    }
    std::fs::write(&file, &bad).unwrap();
    let e = r
        .verify(&d, &rec.id, t("2026-03-02T05:00:00Z"))
        .await
        .unwrap_err()
        .to_string();
    let want = format!(
        "verification failed: checksum mismatch: expected {}, found {}",
        rec.checksum.as_deref().unwrap(),
        hex::encode(Sha256::digest(&bad))
    );
    assert_eq!(e, want);
    let after = r.find(&rec.id).unwrap();
    assert_eq!(after.error.as_deref(), Some(want.as_str()));
    assert_eq!(after.verified_at, rec.verified_at, "not re-verified");

    // Truncated, with a record that matches the truncated bytes: pg_restore must read it all
    // to notice (`pg_restore --list` does not).
    let cut = &good[..good.len() - 100];
    std::fs::write(&file, cut).unwrap();
    let listed = std::process::Command::new(pg.bin.join("pg_restore"))
        .arg("--list")
        .arg(&file)
        .output()
        .unwrap();
    assert!(listed.status.success(), "--list passes a truncated archive");
    let mut forged = rec.clone();
    forged.checksum = Some(hex::encode(Sha256::digest(cut)));
    forged.size_bytes = Some(cut.len() as u64);
    let storage = Storage::open(&storage_spec).unwrap();
    let e = verify::verify(&storage, &dumper, &forged, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("pg_restore failed: "), "{e}");
    std::fs::write(&file, &good).unwrap();
    verify::verify(&storage, &dumper, &rec, None).await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_a_failed_record_and_older_backups_stay() {
    let (_guard, logs) = Logs::capture();
    let pg = Postgres::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let state = tmp.path().join("state");
    let store = Store::open(&state).unwrap();
    let mut r = BackupRunner::new(store.clone(), Arc::new(PgDump::in_dir(&pg.bin)));
    let good = desired(spec(local(&dir)), &pg.url("app"));
    let old = completed(&r.tick(&good, t("2026-01-06T03:00:00Z")).await, &logs);

    // Two months later, past the old backup's 30 days, the password is wrong.
    let bad = desired(spec(local(&dir)), &pg.url_with("app", WRONG));
    let now = t("2026-03-03T03:00:00Z");
    let events = r.tick(&bad, now).await;
    let rec = failed(&events);
    let e = rec.error.clone().unwrap();
    assert!(
        e.starts_with(&format!(
            "pg_dump failed: connection to server at \"127.0.0.1\", port {} failed:",
            pg.port
        )) && e.ends_with("FATAL: password authentication failed for user \"postgres\""),
        "{e}"
    );
    assert_eq!((rec.size_bytes, rec.checksum.as_ref()), (None, None));
    assert!(!Path::new(&rec.location).exists(), "no partial object");
    assert!(events.iter().any(|ev| matches!(ev,
        BackupEvent::Alert { message, .. }
            if message == &format!("the backup expected at 2026-03-03 03:00 UTC failed: {e}"))));

    // The older backup is expired by date but is the newest completed one: it stays.
    let kept = r.find(&old.id).unwrap();
    assert_eq!(kept.status, BackupStatus::Completed);
    assert_eq!(files(&dir), vec![PathBuf::from(&old.location)]);
    let err = r
        .backup_now(&bad, POLICY, true, now + Duration::hours(1))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), e);
    assert_eq!(files(&dir).len(), 1);

    store.flush().unwrap();
    assert_no_password("status", &r.status(POLICY, now).to_string());
    assert_clean(&r.records(None).unwrap(), &logs, Some(&state));
}

#[tokio::test]
async fn an_older_pg_dump_is_refused_with_the_client_to_install() {
    let pg = Postgres::start();
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("bin");
    std::fs::create_dir(&fake).unwrap();
    let script = fake.join("pg_dump");
    std::fs::write(&script, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 14.0'\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(pg.bin.join("psql"), fake.join("psql")).unwrap();
    let dumper = PgDump::in_dir(&fake);
    let want = format!(
        "the database runs PostgreSQL {m} but this pg_dump is 14: install postgresql-client-{m} \
         (the container image in deploy/ carries 15 and 17)",
        m = pg.major
    );
    let db = DbUrl::parse(&pg.url("app"), None).unwrap();
    assert_eq!(dumper.client_major().await.unwrap(), 14);
    assert_eq!(dumper.server_major(&db).await.unwrap(), pg.major);
    assert_eq!(dumper.preflight(&db).await.unwrap_err().to_string(), want);

    let dir = tmp.path().join("b");
    let mut r = BackupRunner::new(Store::temporary(), Arc::new(dumper));
    let d = desired(spec(local(&dir)), &pg.url("app"));
    let rec = failed(&r.tick(&d, t("2026-03-02T03:00:00Z")).await);
    assert_eq!(rec.error.as_deref(), Some(want.as_str()));
    assert!(files(&dir).is_empty());

    // Several clients (TETHER_PG_BIN_DIRS): the one matching the server is chosen, not the
    // newest (a fake 99 that cannot dump) nor an older one.
    let newer = tmp.path().join("bin99");
    std::fs::create_dir(&newer).unwrap();
    let script = newer.join("pg_dump");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = --version ] && echo 'pg_dump (PostgreSQL) 99.0' && exit 0\n\
         echo 'pg_dump: error: not this one' >&2; exit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    for tool in ["psql", "pg_restore"] {
        std::os::unix::fs::symlink(pg.bin.join(tool), newer.join(tool)).unwrap();
    }
    let several = PgDump::in_dirs([newer, pg.bin.clone(), fake]);
    let mut r = BackupRunner::new(Store::temporary(), Arc::new(several));
    let (_guard, logs) = Logs::capture();
    let rec = completed(&r.tick(&d, t("2026-03-02T03:00:00Z")).await, &logs);
    assert_eq!(files(&dir), vec![PathBuf::from(&rec.location)]);
}

/// A temporary directory in memory when the machine has one: thousands of archives are
/// written with fsync, which a disk makes slow.
fn fast_tempdir() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

/// A URL for the in-memory dumper: nothing connects to it.
const MEMORY_URL: &str = "postgres://postgres:Memory-Pw@db.invalid:5432/postgres";

#[tokio::test]
async fn two_simulated_years_keep_exactly_the_expected_backups() {
    let tmp = fast_tempdir();
    let dir = tmp.path().join("b");
    let d = desired(spec(local(&dir)), MEMORY_URL);
    let dumper = Arc::new(MemoryDumper::new());
    let mut r = BackupRunner::new(Store::temporary(), dumper.clone());
    let start = t("2026-01-01T12:00:00Z");
    let end = start + Duration::days(730);
    let by_hand = [
        start + Duration::days(100) + Duration::hours(12),
        start + Duration::days(500) + Duration::hours(12),
    ];
    // A pass every twelve hours; the 03:00 firing is taken by the 12:00 pass.
    let (mut now, mut last) = (start, start);
    let mut taken: Vec<(DateTime<Utc>, bool)> = Vec::new();
    while now < end {
        for ev in r.tick(&d, now).await {
            match ev {
                BackupEvent::Completed { record } => taken.push((record.created_at, false)),
                BackupEvent::Pruned { .. } => {}
                other => panic!("{now}: {other:?}"),
            }
        }
        if by_hand.contains(&now) {
            let m = r.backup_now(&d, POLICY, true, now).await.unwrap();
            assert_eq!(m.backup_type, BackupType::Manual);
            taken.push((m.created_at, true));
        }
        last = now;
        now += Duration::hours(12);
    }
    assert_eq!(taken.len(), 730 + 2);

    // The expected set, from the tiers' definitions: 30 days for dailies, 182 for Sundays,
    // 730 for the 1st of a month, 365 by hand; and the newest backup whatever its age.
    let keep_days = |c: DateTime<Utc>, manual: bool| match () {
        _ if manual => 365,
        _ if c.day() == 1 => 730,
        _ if c.weekday() == Weekday::Sun => 182,
        _ => 30,
    };
    let newest = taken.iter().map(|(c, _)| *c).max().unwrap();
    let expected: BTreeSet<DateTime<Utc>> = taken
        .iter()
        .filter(|(c, m)| *c + Duration::days(keep_days(*c, *m)) > last || *c == newest)
        .map(|(c, _)| *c)
        .collect();

    let records = r.records(None).unwrap();
    assert_eq!(records.len(), taken.len());
    let kept: BTreeSet<DateTime<Utc>> = records
        .iter()
        .filter(|r| r.status == BackupStatus::Completed)
        .map(|r| r.created_at)
        .collect();
    assert_eq!(kept, expected);
    assert!(
        records
            .iter()
            .all(|r| matches!(r.status, BackupStatus::Completed | BackupStatus::Expired))
    );
    let on_disk: BTreeSet<PathBuf> = files(&dir).into_iter().collect();
    let want: BTreeSet<PathBuf> = records
        .iter()
        .filter(|r| r.status == BackupStatus::Completed)
        .map(|r| PathBuf::from(&r.location))
        .collect();
    assert_eq!(on_disk, want);

    let count = |ty: BackupType| {
        records
            .iter()
            .filter(|r| r.status == BackupStatus::Completed && r.backup_type == ty)
            .count()
    };
    // About a month of dailies, the Sundays of about six months, the firsts of two years.
    assert!(
        (24..=30).contains(&count(BackupType::Daily)),
        "{}",
        count(BackupType::Daily)
    );
    assert!(
        (24..=27).contains(&count(BackupType::Weekly)),
        "{}",
        count(BackupType::Weekly)
    );
    assert_eq!(count(BackupType::Monthly), 24);
    assert_eq!(count(BackupType::Manual), 1);
    assert_eq!(dumper.dumps() as usize, taken.len());
    assert_eq!(r.status(POLICY, last)["alert"], serde_json::Value::Null);
}

#[tokio::test]
async fn nothing_is_pruned_while_listing_the_store_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    std::fs::create_dir_all(dir.join(POLICY)).unwrap();
    // A symbolic link to itself makes listing the policy's folder fail.
    let trap = dir.join(POLICY).join("loop");
    std::os::unix::fs::symlink("loop", &trap).unwrap();
    let d = desired(spec(local(&dir)), MEMORY_URL);
    let mut r = BackupRunner::new(Store::temporary(), Arc::new(MemoryDumper::new()));
    let mut now = t("2026-01-05T06:00:00Z");
    let mut skipped = 0;
    for _ in 0..45 {
        for ev in r.tick(&d, now).await {
            match ev {
                BackupEvent::Completed { .. } => {}
                BackupEvent::PruneSkipped { reason, .. } => {
                    assert!(
                        reason.starts_with("listing the store failed, so nothing was pruned: "),
                        "{reason}"
                    );
                    skipped += 1;
                }
                other => panic!("{now}: {other:?}"),
            }
        }
        now += Duration::days(1);
    }
    assert!(skipped >= 14, "{skipped}");
    let records = r.records(None).unwrap();
    assert_eq!(records.len(), 45);
    assert!(records.iter().all(|r| r.status == BackupStatus::Completed));
    assert_eq!(files(&dir).len(), 45);

    std::fs::remove_file(&trap).unwrap();
    let events = r.tick(&d, now).await;
    let pruned = events
        .iter()
        .filter(|e| matches!(e, BackupEvent::Pruned { .. }))
        .count();
    let due = records
        .iter()
        .filter(|r| r.backup_type == BackupType::Daily && r.created_at + Duration::days(30) <= now)
        .count();
    assert_eq!(pruned, due);
    assert_eq!(pruned, 14);
    assert_eq!(files(&dir).len(), 46 - pruned);
}

#[tokio::test]
async fn a_failed_dump_leaves_no_partial_object_and_progress_is_reported() {
    let (_guard, logs) = Logs::capture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let d = desired(spec(local(&dir)), MEMORY_URL);
    let dumper = Arc::new(MemoryDumper::new());
    // Past the writer's 10 MiB buffer, so the upload is a multipart one.
    dumper.set_size(12 << 20);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let mut r = BackupRunner::new(Store::temporary(), dumper.clone())
        .with_progress(Arc::new(move |p| s.lock().unwrap().push(p.clone())));
    let ok = completed(&r.tick(&d, t("2026-01-05T03:00:00Z")).await, &logs);
    assert!(ok.size_bytes.unwrap() > 12 << 20);
    let progress = seen.lock().unwrap().clone();
    assert!(
        progress
            .iter()
            .any(|p| p.phase == tether::backup::Phase::Dumping && p.bytes >= 12 << 20)
    );
    assert!(
        progress
            .iter()
            .any(|p| p.phase == tether::backup::Phase::Verifying)
    );
    assert!(logs.text().contains("backup progress"));

    dumper.set_failure(Some(("connection to server was lost", 11 << 20)));
    let events = r.tick(&d, t("2026-01-06T03:00:00Z")).await;
    let rec = failed(&events);
    assert_eq!(
        rec.error.as_deref(),
        Some("pg_dump failed: connection to server was lost")
    );
    assert_eq!(files(&dir), vec![PathBuf::from(&ok.location)]);
    assert_eq!(r.find(&ok.id).unwrap().status, BackupStatus::Completed);

    // An archive that does not read back is no backup: failed, and its object removed.
    dumper.set_failure(None);
    dumper.set_size(1000);
    dumper.set_truncate(true);
    let rec = failed(&r.tick(&d, t("2026-01-07T03:00:00Z")).await);
    assert_eq!(
        rec.error.as_deref(),
        Some("verification failed: pg_restore failed: could not read from input file: end of file")
    );
    assert_eq!(files(&dir), vec![PathBuf::from(&ok.location)]);
}

#[tokio::test]
async fn status_shows_the_last_backup_the_next_due_and_alerts() {
    let tmp = tempfile::tempdir().unwrap();
    let d = desired(spec(local(&tmp.path().join("b"))), MEMORY_URL);
    let dumper = Arc::new(MemoryDumper::new());
    let mut r = BackupRunner::new(Store::temporary(), dumper.clone());
    let (_g, logs) = Logs::capture();
    let first = completed(&r.tick(&d, t("2026-01-05T06:00:00Z")).await, &logs);

    dumper.set_failure(Some(("boom", 0)));
    let events = r.tick(&d, t("2026-01-06T06:00:00Z")).await;
    failed(&events);
    let alert = "the backup expected at 2026-01-06 03:00 UTC failed: pg_dump failed: boom";
    assert!(events.contains(&BackupEvent::Alert {
        policy: POLICY.into(),
        message: alert.into()
    }));
    let st = r.status(POLICY, t("2026-01-06T06:05:00Z"));
    assert_eq!(st["status"], "alert");
    assert_eq!(st["alert"], alert);
    assert_eq!(st["nextDue"], "2026-01-06T06:10:00Z");
    assert_eq!(st["lastCompleted"]["id"], first.id.as_str());
    assert_eq!(st["failed"], 1);

    dumper.set_failure(None);
    let retry_too_soon = r.tick(&d, t("2026-01-06T06:05:00Z")).await;
    assert!(
        !retry_too_soon
            .iter()
            .any(|e| matches!(e, BackupEvent::Completed { .. }))
    );
    let events = r.tick(&d, t("2026-01-06T06:10:00Z")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    completed(&events, &logs);
    assert_eq!(r.status(POLICY, t("2026-01-06T07:00:00Z"))["status"], "ok");

    let st = r.status(POLICY, t("2026-01-09T07:00:00Z"));
    assert_eq!(
        st["alert"],
        "the backup expected at 2026-01-09 03:00 UTC is missing"
    );
    assert_eq!(st["due"], true);
    assert_eq!(st["nextDue"], "2026-01-09T03:00:00Z");
}

#[tokio::test]
async fn interrupted_backups_are_failed_on_start_and_platform_backups_are_recorded() {
    use tether::backup::platform::PlatformTarget;
    use tether::provider::supabase::{Backups, PlatformBackup};
    let store = Store::temporary();
    let tmp = tempfile::tempdir().unwrap();
    let d = desired(spec(local(&tmp.path().join("b"))), MEMORY_URL);
    let mut first = BackupRunner::new(store.clone(), Arc::new(MemoryDumper::new()));
    let (_g, logs) = Logs::capture();
    let mut rec = completed(&first.tick(&d, t("2026-01-05T06:00:00Z")).await, &logs);
    rec.status = BackupStatus::InProgress;
    store
        .put(tether::store::trees::BACKUPS, &rec.store_key(), &rec)
        .unwrap();
    drop(first);
    let mut r = BackupRunner::new(store, Arc::new(MemoryDumper::new()));
    let after = r.find(&rec.id).unwrap();
    assert_eq!(after.status, BackupStatus::Failed);
    assert_eq!(
        after.error.as_deref(),
        Some("interrupted: tether stopped while this backup was running")
    );

    let target = PlatformTarget {
        policy: POLICY,
        environment: ENV,
        database: "postgres",
        project_ref: "abcdefgh",
    };
    let listing = |ids: &[i64]| Backups {
        pitr_enabled: false,
        backups: ids
            .iter()
            .map(|&id| PlatformBackup {
                id,
                physical: true,
                status: "COMPLETED".into(),
                inserted_at: Some(t("2026-01-01T00:00:00Z") + Duration::days(id)),
            })
            .collect(),
        earliest_restore_point: None,
        latest_restore_point: None,
    };
    r.record_platform(&target, &listing(&[1, 2])).unwrap();
    r.record_platform(&target, &listing(&[2, 3])).unwrap();
    let theirs: Vec<(String, BackupStatus)> = r
        .records(Some(ENV))
        .unwrap()
        .into_iter()
        .filter(|r| r.id.starts_with("supabase-"))
        .map(|r| (r.id, r.status))
        .collect();
    assert_eq!(
        theirs,
        vec![
            ("supabase-1".into(), BackupStatus::Expired),
            ("supabase-2".into(), BackupStatus::Completed),
            ("supabase-3".into(), BackupStatus::Completed),
        ]
    );
    assert_eq!(
        r.status(POLICY, t("2026-01-05T07:00:00Z"))["platformBackups"],
        3
    );
}

/// moto's S3-compatible server on a free loopback port; killed on drop.
struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let on_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join("moto_server").is_file()))
            .unwrap_or(false);
        let mut cmd = if on_path {
            std::process::Command::new("moto_server")
        } else {
            let mut c = std::process::Command::new("python3");
            c.args(["-m", "moto.server"]);
            c
        };
        let child = cmd
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto's S3 server: run scripts/install-test-deps (pip install 'moto[server]')");
        let moto = Moto { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn s3_backups_verify_restore_and_leave_nothing_behind_on_failure() {
    let (_guard, logs) = Logs::capture();
    let moto = Moto::start();
    let pg = Postgres::start();
    let http = reqwest::Client::new();
    let made = http
        .put(format!("{}/tether-backups", moto.endpoint()))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{}", made.status());
    let s3 = StorageSpec {
        local: None,
        s3: Some(S3Storage {
            bucket: "tether-backups".into(),
            prefix: Some("vocilia/prod".into()),
            region: "us-east-1".into(),
            endpoint: Some(moto.endpoint()),
        }),
    };
    let env: tether::backup::EnvFn = Arc::new(|k| {
        matches!(k, "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY").then(|| "testing".to_string())
    });
    // The URL comes from the environment's DATABASE_URL variable this time.
    let mut sp = spec(s3.clone());
    sp.database_url = DatabaseUrl {
        secret: None,
        from_variable: Some("DATABASE_URL".into()),
        placeholder: None,
    };
    let with_url = |url: String| {
        let mut d = desired(sp.clone(), "");
        d.backup_urls.clear();
        std::sync::Arc::make_mut(d.variables.entry(ENV.into()).or_default()).insert(
            "DATABASE_URL".into(),
            DesiredVar {
                value: VarValue::Secret(SecretValue::new(url)),
                fingerprint: Fingerprint::from_hex(&"f".repeat(64)).unwrap(),
                digest_fingerprint: Fingerprint::from_hex(&"e".repeat(64)).unwrap(),
                source: Source::new("database/secrets.yaml", 1),
            },
        );
        d
    };
    let d = with_url(pg.url("postgres"));
    let mut r = BackupRunner::new(Store::temporary(), Arc::new(PgDump::in_dir(&pg.bin)))
        .with_env(env.clone());
    let rec = completed(&r.tick(&d, t("2026-03-02T03:00:00Z")).await, &logs);
    let key = "vocilia/prod/prod-database/2026/03/prod-database-20260302T030000Z-daily.dump";
    assert_eq!(rec.location, format!("s3://tether-backups/{key}"));
    let storage = Storage::open_with(&s3, &|k| env(k)).unwrap();
    let (mut reader, size) = storage
        .reader(&storage.key_of(&rec.location).unwrap())
        .await
        .unwrap();
    let mut body = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut body)
        .await
        .unwrap();
    assert_eq!(rec.size_bytes, Some(size));
    assert_eq!(rec.checksum, Some(hex::encode(Sha256::digest(&body))));
    r.verify(&d, &rec.id, t("2026-03-02T04:00:00Z"))
        .await
        .unwrap();
    pg.create_db("scratch");
    r.restore_into(&d, &rec.id, &pg.url("scratch"))
        .await
        .unwrap();
    assert_eq!(
        table_digest(&pg.conninfo("scratch"), "orders").await,
        table_digest(&pg.conninfo("app"), "orders").await
    );

    // A wrong password, and a dump that dies mid-way through a multipart upload: neither
    // leaves an object or an unfinished upload.
    let bad = with_url(pg.url_with("postgres", WRONG));
    let f = failed(&r.tick(&bad, t("2026-03-03T03:00:00Z")).await);
    assert!(f.error.as_deref().unwrap().starts_with("pg_dump failed: "));
    let mem = Arc::new(MemoryDumper::new());
    mem.set_size(12 << 20);
    mem.set_failure(Some(("connection to server was lost", 11 << 20)));
    let mut r2 = BackupRunner::new(Store::temporary(), mem).with_env(env.clone());
    failed(&r2.tick(&d, t("2026-03-04T03:00:00Z")).await);
    let objects = storage.list(POLICY).await.unwrap();
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(
        objects[0].location.as_ref(),
        "prod-database/2026/03/prod-database-20260302T030000Z-daily.dump"
    );
    let uploads = http
        .get(format!("{}/tether-backups?uploads", moto.endpoint()))
        .send()
        .await
        .unwrap();
    assert!(uploads.status().is_success());
    let uploads = uploads.text().await.unwrap();
    assert!(uploads.contains("ListMultipartUploadsResult"), "{uploads}");
    assert!(!uploads.contains("<UploadId>"), "{uploads}");

    let mut all = r.records(None).unwrap();
    all.extend(r2.records(None).unwrap());
    assert_clean(&all, &logs, None);
}
