//! tether-soak: the daemon against the simulator with real-shaped faults, manifest edits every
//! few seconds, abrupt restarts and monitors, for as long as asked; reports writes lost,
//! duplicate writes, panics, RSS and open file descriptors, and fails if any was lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tether::daemon::{DaemonConfig, Platforms};
use tether::reconcile::{Options, Reconciler};
use tether::secret::Keyring;
use tether::simulate::{Faults, Seed, SimConfig, SimTokens, Simulator};
use tether::store::Store;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser, Debug)]
#[command(
    about = "Soak: the daemon under faults, edits and restarts; exits 1 if a write was lost or duplicated, or anything panicked"
)]
struct Args {
    /// How long to run the daemon under faults (then faults stop and it must converge).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Share of API requests that fail (429s, 5xx, dropped connections).
    #[arg(long, default_value_t = 0.2)]
    fault_rate: f64,
    /// A manifest edit every this many milliseconds.
    #[arg(long, default_value_t = 2000)]
    edit_every_ms: u64,
    /// An abrupt restart of the daemon every this many seconds (0: never).
    #[arg(long, default_value_t = 15)]
    restart_every: u64,
    /// The daemon's resync interval in ms: every environment observed afresh this often (the
    /// default daemon's is 5 minutes, so a short one compresses days of resyncs).
    #[arg(long, default_value_t = 2000)]
    resync_ms: u64,
}

/// The variables edited, in turn: (file, the line's key as written, environment).
const EDITED: [(&str, &str, &str); 3] = [
    (
        "backend/variables.yaml",
        "    LOG_LEVEL: info",
        "prod-backend",
    ),
    (
        "customer/variables.yaml",
        "    NEXT_PUBLIC_API_URL: https://api.vocilia.com",
        "prod-customer",
    ),
    (
        "database/secrets.yaml",
        "    EMAIL_FROM: noreply@vocilia.com",
        "prod-database",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn keyring() -> Keyring {
    Keyring::load_all(
        &[
            root().join("examples/demo-age-production.txt"),
            root().join("examples/demo-age-rest.txt"),
        ],
        None,
    )
    .expect("the demo identities")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// One run of the daemon, in its own runtime.
struct Incarnation {
    rt: tokio::runtime::Runtime,
    task: tokio::task::JoinHandle<Result<tether::daemon::Exit, tether::daemon::DaemonError>>,
}

impl Incarnation {
    /// Stops it at once, mid-whatever, as a crash or a kill does (a panic it had is counted by
    /// the hook already).
    fn crash(self) -> bool {
        let stopped = self.task.is_finished();
        if stopped {
            eprintln!("tether-soak: the daemon had stopped on its own");
        }
        self.rt.shutdown_background();
        stopped
    }
}

/// Counts, per place and edited value, the writes of it the simulator answered 2xx (more than
/// one is a duplicate), then empties the simulator's log.
fn tally(
    sim: &tether::simulate::SimHandle,
    written: &mut BTreeMap<(String, String), usize>,
    requests: &mut usize,
) {
    let log = sim.take_requests();
    *requests += log.len();
    for r in log {
        if r.faulted || !(200..300).contains(&r.status) {
            continue;
        }
        let body = r.body.as_ref().map(|b| b.to_string()).unwrap_or_default();
        let mut at = 0;
        while let Some(i) = body[at..].find("soak-") {
            let start = at + i;
            let end = body[start + 5..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(body.len(), |j| start + 5 + j);
            *written
                .entry((r.path.clone(), body[start..end].to_string()))
                .or_default() += 1;
            at = end;
        }
    }
}

fn main() {
    let args = Args::parse();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let failed = rt.block_on(soak(&args));
    rt.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(if failed { 1 } else { 0 });
}

async fn soak(args: &Args) -> bool {
    let tmp = std::env::temp_dir().join(format!("tether-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let manifests = tmp.join("m");
    copy_dir(&root().join("examples/vocilia"), &manifests);
    let ring = keyring();
    let fp = ring.fingerprinter();
    let desired = {
        let ctx = tether::manifest::SecretContext {
            keyring: Some(&ring),
            fingerprinter: &fp,
            key_source: "soak",
            decrypt: tether::manifest::Decrypt::All,
        };
        tether::manifest::load(&manifests, &ctx).expect("vocilia loads")
    };
    let config = SimConfig {
        faults: Faults {
            rate: args.fault_rate,
            seed: 23,
            ..Faults::default()
        },
        ..SimConfig::default()
    };
    let sim = Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        config,
        Seed::from_desired(&desired),
    )
    .await
    .expect("the simulator starts");
    let rates: BTreeMap<_, _> = tether::manifest::Platform::ALL
        .into_iter()
        .map(|p| (p, vec![tether::provider::Rate::per_second(50)]))
        .collect();
    let providers = tether::daemon::simulated_providers(
        &sim,
        &SimTokens::default(),
        &rates,
        tether::retry::Policy::REQUEST,
    );
    let store = Store::open(&tmp.join("state")).expect("the store opens");
    let opts = Options {
        status_dir: Some(tmp.join("status")),
        resync: Duration::from_millis(args.resync_ms),
        follow: Duration::from_millis(250),
        redeploy_quiet: Duration::from_millis(500),
        ..Options::default()
    };
    let cfg = || DaemonConfig {
        keyring: Some(keyring()),
        key_source: "soak".into(),
        monitors: true,
        ..DaemonConfig::embedded(manifests.clone(), tmp.join("state"), opts.clone())
    };
    // Each run of the daemon has a runtime of its own, shut down to stop it: every task it
    // spawned (watcher, monitors, control, alerts) goes with it, as with a process that dies.
    // Its clients are its own too (their connections belong to its runtime).
    let start = || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let clients = tether::daemon::simulated_providers(
            &sim,
            &SimTokens::default(),
            &rates,
            tether::retry::Policy::REQUEST,
        );
        let task = rt.spawn(tether::daemon::run(
            cfg(),
            store.clone(),
            Platforms::Running(clients, sim.clone()),
        ));
        Incarnation { rt, task }
    };
    let (rss0, fds0) = (rss_mib(), open_fds());
    eprintln!(
        "tether-soak: {} s, faults {:.0} %, an edit every {} ms, a restart every {} s, resync {} ms; RSS {rss0:.1} MiB, {fds0} open files",
        args.seconds,
        args.fault_rate * 100.0,
        args.edit_every_ms,
        args.restart_every,
        args.resync_ms
    );
    let mut daemon = start();
    let t0 = Instant::now();
    let mut written: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut requests = 0usize;
    let mut last_value: BTreeMap<usize, String> = BTreeMap::new();
    let (mut edits, mut restarts, mut stopped, mut rss_max) = (0usize, 0usize, 0usize, rss0);
    let mut next_restart = Duration::from_secs(args.restart_every);
    let mut next_report = Duration::from_secs(10);
    while t0.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_millis(args.edit_every_ms)).await;
        let which = edits % EDITED.len();
        let (file, line, _) = EDITED[which];
        let path = manifests.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let key = line.split(':').next().unwrap();
        let current = last_value
            .get(&which)
            .map(|v| format!("{key}: {v}"))
            .unwrap_or_else(|| line.to_string());
        let value = format!("soak-{edits}");
        std::fs::write(
            &path,
            text.replacen(&current, &format!("{key}: {value}"), 1),
        )
        .unwrap();
        last_value.insert(which, value);
        edits += 1;
        if args.restart_every > 0 && t0.elapsed() >= next_restart {
            stopped += usize::from(daemon.crash());
            daemon = start();
            restarts += 1;
            next_restart += Duration::from_secs(args.restart_every);
        }
        // The simulator runs in this process: its request log is tallied and emptied as it
        // goes, so it does not grow the RSS measured.
        tally(&sim, &mut written, &mut requests);
        rss_max = rss_max.max(rss_mib());
        if t0.elapsed() >= next_report {
            eprintln!(
                "tether-soak: {:>4} s: {edits} edits, {restarts} restarts, RSS {:.1} MiB, {} open files",
                t0.elapsed().as_secs(),
                rss_mib(),
                open_fds()
            );
            next_report += Duration::from_secs(10);
        }
    }
    // Faults stop; every last edit must reach its platform.
    sim.set_faults(Faults::default());
    let settle = Instant::now();
    let converged = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let done = tether::status::read_all(&tmp.join("status"))
            .ok()
            .is_some_and(|(index, _)| index.all_ready());
        if done || settle.elapsed() > Duration::from_secs(120) {
            break done;
        }
    };
    stopped += usize::from(daemon.crash());
    // A fresh reconciler on the same store, observing everything: anything it would still
    // write is a change the daemon lost.
    let mut rec = Reconciler::new(store.clone(), providers.clone(), fp.clone(), opts.clone())
        .expect("the store reads");
    let loaded = tether::manifest::load(
        &manifests,
        &tether::manifest::SecretContext {
            keyring: Some(&ring),
            fingerprinter: &fp,
            key_source: "soak",
            decrypt: tether::manifest::Decrypt::All,
        },
    )
    .expect("the edited manifests load");
    let names: BTreeMap<String, bool> = loaded
        .environments
        .keys()
        .map(|k| (k.clone(), true))
        .collect();
    rec.set_desired(Ok(loaded));
    let check = rec.pass(&names).await.expect("the check pass runs");
    let lost = check.writes;
    tally(&sim, &mut written, &mut requests);
    let duplicates = written.values().filter(|n| **n > 1).count();
    let panics = PANICS.load(Ordering::SeqCst);
    let (rss1, fds1) = (rss_mib(), open_fds());
    let report = serde_json::json!({
        "seconds": args.seconds, "faultRate": args.fault_rate, "edits": edits,
        "restarts": restarts, "converged": converged, "writesLost": lost,
        "duplicates": duplicates, "panics": panics, "stoppedOnItsOwn": stopped,
        "rssStartMiB": (rss0 * 10.0).round() / 10.0, "rssMaxMiB": (rss_max * 10.0).round() / 10.0,
        "rssEndMiB": (rss1 * 10.0).round() / 10.0, "openFilesStart": fds0, "openFilesEnd": fds1,
        "requests": requests,
    });
    println!("{report}");
    eprintln!(
        "tether-soak: {edits} edits, {restarts} restarts; converged {converged}; writes lost {lost}, duplicates {duplicates}, panics {panics}; RSS {rss0:.1} → {rss1:.1} MiB (max {rss_max:.1}); open files {fds0} → {fds1}"
    );
    drop(rec);
    drop(store);
    let _ = std::fs::remove_dir_all(&tmp);
    !converged || lost > 0 || duplicates > 0 || panics > 0 || stopped > 0
}
