//! The watcher plus content digests: an editor's save, a checkout of many files, a new
//! sub-folder and an atomic symlink swap each give exactly one pass; editor leftovers none.

mod support;

use std::path::Path;
use std::time::Duration;

use support::harness::{copy_dir, root};
use tether::daemon::Loader;
use tether::watch::DirWatch;
use tokio::sync::mpsc::UnboundedReceiver;

fn loader(dir: &Path) -> Loader {
    let k = support::harness::demo_keyring();
    let fp = k.fingerprinter();
    let mut l = Loader::new(dir, Some(k), fp, "TETHER_AGE_KEY_FILE".into());
    assert!(l.reload().unwrap().is_ok());
    l
}

/// Passes caused by one operation: waits for the first event, then counts digest changes over
/// the following quiet period.
async fn passes(
    rx: &mut UnboundedReceiver<()>,
    w: &mut DirWatch,
    l: &mut Loader,
    expect_event: bool,
) -> usize {
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    if !expect_event {
        // Events may come (the file system changed) but must not change the digest.
        if first.is_err() {
            return 0;
        }
    } else {
        assert!(first.is_ok(), "no file event arrived");
    }
    let mut n = 0;
    w.refresh();
    if l.reload().is_some() {
        n += 1;
    }
    while let Ok(Some(())) = tokio::time::timeout(Duration::from_millis(600), rx.recv()).await {
        w.refresh();
        if l.reload().is_some() {
            n += 1;
        }
    }
    n
}

fn edit(p: &Path, from: &str, to: &str) -> String {
    let t = std::fs::read_to_string(p).unwrap();
    assert!(t.contains(from));
    t.replacen(from, to, 1)
}

#[tokio::test]
async fn each_kind_of_change_gives_exactly_one_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    copy_dir(&root().join("examples/vocilia"), &dir);
    let mut l = loader(&dir);
    let (mut w, mut rx) = DirWatch::start(&dir, Duration::from_millis(100)).unwrap();

    // An editor's save: write a swap file, write the new content to a temp name, rename over.
    let f = dir.join("backend/variables.yaml");
    let new = edit(&f, "LOG_LEVEL: info", "LOG_LEVEL: warn");
    std::fs::write(dir.join("backend/.variables.yaml.swp"), b"swap").unwrap();
    std::fs::write(dir.join("backend/variables.yaml~"), b"backup").unwrap();
    std::fs::write(dir.join("backend/4913"), b"").unwrap();
    std::fs::write(dir.join("backend/.variables.yaml.tmp"), &new).unwrap();
    std::fs::rename(dir.join("backend/.variables.yaml.tmp"), &f).unwrap();
    assert_eq!(
        passes(&mut rx, &mut w, &mut l, true).await,
        1,
        "editor save"
    );

    // Editor leftovers alone change nothing.
    std::fs::write(dir.join("backend/.other.swp"), b"x").unwrap();
    std::fs::remove_file(dir.join("backend/4913")).unwrap();
    assert_eq!(passes(&mut rx, &mut w, &mut l, false).await, 0, "leftovers");

    // A checkout that rewrites many files at once.
    for app in ["customer", "business", "admin"] {
        let p = dir.join(format!("{app}/monitors.yaml"));
        std::fs::write(&p, edit(&p, "interval: 30s", "interval: 45s")).unwrap();
    }
    std::fs::remove_file(dir.join("admin/certificates.yaml")).unwrap();
    std::fs::write(
        dir.join("admin/certificates.yaml"),
        std::fs::read(root().join("examples/vocilia/admin/certificates.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(passes(&mut rx, &mut w, &mut l, true).await, 1, "checkout");

    // A new sub-folder with a manifest in it.
    std::fs::create_dir_all(dir.join("extra/deeper")).unwrap();
    std::fs::write(dir.join("extra/deeper/req.yaml"), "apiVersion: tether.dev/v1\nkind: Requirements\nmetadata: {name: extra}\nspec: {environmentType: staging, variables: [NODE_ENV], platform: railway}\n").unwrap();
    assert_eq!(
        passes(&mut rx, &mut w, &mut l, true).await,
        1,
        "new sub-folder"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_swapped_to_a_new_revision_gives_one_pass_and_is_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let rev1 = tmp.path().join("rev-1");
    let rev2 = tmp.path().join("rev-2");
    copy_dir(&root().join("examples/vocilia"), &rev1);
    copy_dir(&root().join("examples/vocilia"), &rev2);
    let f2 = rev2.join("database/secrets.yaml");
    std::fs::write(
        &f2,
        edit(
            &f2,
            "EMAIL_FROM: noreply@vocilia.com",
            "EMAIL_FROM: team@vocilia.com",
        ),
    )
    .unwrap();
    let link = tmp.path().join("current");
    std::os::unix::fs::symlink("rev-1", &link).unwrap();
    let mut l = loader(&link);
    let (mut w, mut rx) = DirWatch::start(&link, Duration::from_millis(100)).unwrap();
    // git-sync's swap: a new link, renamed over the old one (atomic).
    std::os::unix::fs::symlink("rev-2", tmp.path().join("current.new")).unwrap();
    std::fs::rename(tmp.path().join("current.new"), &link).unwrap();
    assert_eq!(
        passes(&mut rx, &mut w, &mut l, true).await,
        1,
        "symlink swap"
    );
    // The watch now follows the new target.
    let f = link.join("backend/variables.yaml");
    std::fs::write(&f, edit(&f, "LOG_LEVEL: info", "LOG_LEVEL: error")).unwrap();
    assert_eq!(
        passes(&mut rx, &mut w, &mut l, true).await,
        1,
        "edit in the new revision"
    );
}

/// Every manifest file under `dir`, modified an hour ago (so its stamp is trusted).
fn age_files(dir: &Path) {
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            age_files(&p);
        } else {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
    }
}

/// A reload after one file changed reads and parses that file alone, and the rules across
/// files still hold: a name defined again in the edited file is refused, naming both places.
#[test]
fn a_reload_of_one_file_re_reads_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    copy_dir(&root().join("examples/vocilia"), &dir);
    age_files(&dir);
    let mut l = loader(&dir);
    let all = l.last_refresh();
    assert!(all.read > 10, "the first load reads every file: {all:?}");
    assert_eq!(all.parsed, all.read);
    assert!(l.reload().is_none());
    assert_eq!(l.last_refresh().read, 0, "nothing changed, nothing read");

    let full = |dir: &Path| {
        let k = support::harness::demo_keyring();
        let fp = k.fingerprinter();
        Loader::new(dir, Some(k), fp, "t".into())
            .reload()
            .unwrap()
            .unwrap()
    };
    let in_force = full(&dir);
    let vars = dir.join("backend/variables.yaml");
    std::fs::write(&vars, edit(&vars, "LOG_LEVEL: info", "LOG_LEVEL: warn")).unwrap();
    // The state in force lends the fingerprints of unchanged values; the changed one gets its own.
    let d = l
        .reload_after(Some(&in_force))
        .expect("a change")
        .expect("valid");
    assert_eq!(
        (l.last_refresh().read, l.last_refresh().parsed),
        (1, 1),
        "{:?}",
        l.last_refresh()
    );
    let fresh = full(&dir);
    assert_eq!(d.revision, fresh.revision, "the same digest as a full read");
    assert_eq!(
        format!("{:?}", d.environments),
        format!("{:?}", fresh.environments)
    );
    assert_eq!(
        d.variables, fresh.variables,
        "the same values and fingerprints"
    );
    assert_ne!(
        d.variables["prod-backend"]["LOG_LEVEL"].fingerprint,
        in_force.variables["prod-backend"]["LOG_LEVEL"].fingerprint
    );
    // Every environment whose variables did not change shares its map with the state in force
    // (one copy in memory, not two); the edited one has its own.
    let mut shared = 0;
    for (env, vars) in &d.variables {
        let before = &in_force.variables[env];
        assert_eq!(
            std::sync::Arc::ptr_eq(vars, before),
            vars == before,
            "{env}: shared exactly when unchanged"
        );
        shared += usize::from(vars == before);
    }
    assert!(!std::sync::Arc::ptr_eq(
        &d.variables["prod-backend"],
        &in_force.variables["prod-backend"]
    ));
    assert!(
        shared + 2 >= d.variables.len() && shared > 0,
        "{shared} of {}",
        d.variables.len()
    );

    // The same file again within the same second: read again (its stamp is too recent to
    // trust), not parsed again when its bytes are the same.
    std::fs::write(&vars, edit(&vars, "LOG_LEVEL: warn", "LOG_LEVEL: warn")).unwrap();
    assert!(l.reload().is_none());
    assert_eq!((l.last_refresh().read, l.last_refresh().parsed), (1, 0));

    // A cross-file rule, after a one-file reload: the backend's Variables defined twice.
    let extra = dir.join("backend/again.yaml");
    let text = std::fs::read_to_string(&vars).unwrap();
    std::fs::write(&extra, &text).unwrap();
    let err = l.reload().expect("a change").expect_err("a duplicate");
    assert_eq!(l.last_refresh().parsed, 1);
    let shown = err.to_string();
    assert!(
        shown.contains("again.yaml") && shown.contains("is defined twice; the first is at"),
        "{shown}"
    );
    std::fs::remove_file(&extra).unwrap();
    assert!(l.reload().expect("a change").is_ok());
    assert_eq!(
        (l.last_refresh().read, l.last_refresh().removed),
        (1, 1),
        "only the recently written file is read again"
    );
}

/// A change is planned again only where it lands: the environment whose variable, monitor or
/// manifest changed, and every environment when there was no state before.
#[test]
fn only_the_environments_a_change_touches_are_replanned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    copy_dir(&root().join("examples/vocilia"), &dir);
    let mut l = loader(&dir);
    let before = l.reload();
    assert!(before.is_none(), "nothing changed yet");
    let k = support::harness::demo_keyring();
    let fp = k.fingerprinter();
    let mut fresh = Loader::new(&dir, Some(k), fp, "t".into());
    let old = fresh.reload().unwrap().unwrap();
    assert_eq!(old.changed_environments(None).len(), old.environments.len());
    assert!(old.changed_environments(Some(&old)).is_empty());

    let vars = dir.join("customer/variables.yaml");
    let text = std::fs::read_to_string(&vars).unwrap();
    std::fs::write(
        &vars,
        text.replacen("demo-anon-key-prod", "demo-anon-key-prod-2", 1),
    )
    .unwrap();
    let new = fresh.reload().unwrap().unwrap();
    let changed: Vec<String> = new.changed_environments(Some(&old)).into_iter().collect();
    assert_eq!(changed, vec!["prod-customer".to_string()]);

    let mons = dir.join("customer/monitors.yaml");
    let text = std::fs::read_to_string(&mons).unwrap();
    std::fs::write(&mons, text.replacen("interval: 30s", "interval: 45s", 1)).unwrap();
    let newer = fresh.reload().unwrap().unwrap();
    let changed: Vec<String> = newer.changed_environments(Some(&new)).into_iter().collect();
    assert_eq!(changed.len(), 1, "one monitor's environment: {changed:?}");
}

/// A save that lands while a pass is running is applied as soon as that pass ends, not at the
/// daemon's next scheduled wake-up (which, after the first pass, can be a minute away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_during_a_pass_is_applied_when_the_pass_ends() {
    use tether::daemon::{DaemonConfig, Platforms, simulated_providers};
    use tether::simulate::{Seed, SimConfig, Simulator};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("db.yaml");
    let manifest = |v: &str| {
        format!(
            "apiVersion: tether.dev/v1\nkind: Environment\nmetadata: {{name: db}}\nspec: {{platform: supabase, app: db, type: production, supabase: {{projectRef: abcdefghijklmnopqrst}}}}\n---\napiVersion: tether.dev/v1\nkind: Variables\nmetadata: {{name: db}}\nspec:\n  environment: db\n  entries:\n    MODE: {v}\n"
        )
    };
    std::fs::write(&file, manifest("start")).unwrap();
    let store = tether::store::Store::open(&tmp.path().join("state")).unwrap();
    let fp = tether::daemon::fingerprinter(None, &store).unwrap();
    let desired = Loader::new(&dir, None, fp, "none".into())
        .reload()
        .unwrap()
        .unwrap();
    // Every call takes 400 ms, so a pass that writes lasts at least that long.
    let config = SimConfig {
        latency: Duration::from_millis(400),
        ..Default::default()
    };
    let tokens = config.tokens.clone();
    let sim = Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        config,
        Seed::from_desired(&desired),
    )
    .await
    .unwrap();
    let providers = simulated_providers(
        &sim,
        &tokens,
        &Default::default(),
        tether::retry::Policy::REQUEST,
    );
    let status = tmp.path().join("status");
    let cfg = DaemonConfig {
        debounce: Duration::from_millis(50),
        ..DaemonConfig::embedded(
            dir.clone(),
            tmp.path().join("state"),
            tether::reconcile::Options {
                status_dir: Some(status.clone()),
                ..Default::default()
            },
        )
    };
    let daemon = tokio::spawn(tether::daemon::run(cfg, store, Platforms::Given(providers)));
    let wrote = |value: &str| {
        sim.requests().iter().any(|r| {
            r.method == "POST"
                && r.body
                    .as_ref()
                    .is_some_and(|b| b.to_string().contains(value))
        })
    };
    let within = |secs: u64| tokio::time::Instant::now() + Duration::from_secs(secs);
    let deadline = within(30);
    while !wrote("start") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first pass did not write"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Save A starts a pass that waits 400 ms on its write; save B lands in the middle of it.
    std::fs::write(&file, manifest("edit-a")).unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    std::fs::write(&file, manifest("edit-b")).unwrap();
    let deadline = within(4);
    while !wrote("edit-b") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a save made during a pass was not applied when the pass ended (wrote edit-a: {})",
            wrote("edit-a")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.abort();
}
