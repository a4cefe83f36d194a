//! The benchmark behind BENCHMARKS.md: cold converge, steady-state resync, manifest edit to
//! first platform write, and warm restart, at 100, 1,000 and 10,000 resources against the
//! simulator (in a process of its own) with a per-call latency and each platform's rate
//! limits, beside the same work done as a Terraform provider does it (one call per resource,
//! every resource read before planning), computed by the same harness.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use serde::{Deserialize, Serialize};
use tether::daemon::{DaemonConfig, Loader, Platforms, simulated_providers_at};
use tether::manifest::{DesiredState, Platform};
use tether::provider::Rate;
use tether::provider::limits::scope as endpoint_key;
use tether::reconcile::{Look, Options, Reconciler};
use tether::retry::Policy;
use tether::simulate::RecordedRequest;
use tether::store::Store;

mod memory;
mod restart;
mod sim;
mod table;
use memory::{Stages, peak_rss_mib};
use restart::{Restarted, run_restart};
use sim::RemoteSim;

/// tether-bench: converge, resync, edit and restart timings at several sizes.
#[derive(Debug, Parser)]
struct Args {
    /// Resource counts to run (20 resources per environment, spread over the three platforms).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    sizes: Vec<usize>,
    /// Latency the simulator adds to every API call, in ms.
    #[arg(long, default_value_t = 30)]
    latency_ms: u64,
    /// Manifest edits to time.
    #[arg(long, default_value_t = 50)]
    edits: usize,
    /// Environments of one platform worked on at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Internal: serve the simulator for the manifests in this folder.
    #[arg(long, hide = true)]
    serve_sim: Option<std::path::PathBuf>,
    /// Internal: run one size in this process and print JSON.
    #[arg(long, hide = true)]
    child: Option<usize>,
    /// Internal: restart the daemon on the state in `--dir` against the simulator at `--sim`,
    /// time the edits, and print JSON.
    #[arg(long, hide = true)]
    restart_child: Option<usize>,
    #[arg(long, hide = true)]
    dir: Option<std::path::PathBuf>,
    #[arg(long, hide = true)]
    sim: Option<std::net::SocketAddr>,
    /// Only time reading the manifests again after one file changed, this many times (at the
    /// largest of --sizes).
    #[arg(long)]
    reloads: Option<usize>,
}

const PER_ENV: usize = 20;

/// Published limits used by the client and for the floors: Railway Pro (50/s and 10,000/h per
/// token), Supabase 120/min per project and endpoint, Vercel 600/min per endpoint.
fn rates() -> BTreeMap<Platform, Vec<Rate>> {
    BTreeMap::from([
        (
            Platform::Railway,
            vec![Rate::per_second(50), Rate::per_hour(10_000)],
        ),
        (Platform::Supabase, vec![Rate::per_minute(120)]),
        (Platform::Vercel, vec![Rate::per_minute(600)]),
    ])
}

fn platform_of(i: usize) -> Platform {
    [Platform::Railway, Platform::Vercel, Platform::Supabase][i % 3]
}

fn letters(mut i: usize, len: usize) -> String {
    let mut s = vec![b'a'; len];
    for c in s.iter_mut().rev() {
        *c = b'a' + (i % 26) as u8;
        i /= 26;
    }
    String::from_utf8(s).expect("ascii")
}

/// One file per environment: the Environment, 18 variables, a deployment and a domain (20
/// variables on Supabase).
fn generate(dir: &Path, n: usize) -> usize {
    let envs = (n / PER_ENV).max(3);
    for i in 0..envs {
        let p = platform_of(i);
        let target = match p {
            Platform::Railway => {
                format!("railway: {{project: bench, environment: production, service: svc-{i}}}")
            }
            Platform::Vercel => format!("vercel: {{project: web-{i}, target: production}}"),
            Platform::Supabase => format!("supabase: {{projectRef: {}}}", letters(i, 20)),
        };
        let nvars = if p == Platform::Supabase {
            PER_ENV
        } else {
            PER_ENV - 2
        };
        let vars: String = (0..nvars)
            .map(|k| format!("    VAR_{k:02}: value-{i}-{k}\n"))
            .collect();
        let mut text = format!(
            "apiVersion: tether.dev/v1\nkind: Environment\nmetadata: {{name: env-{i}}}\nspec: {{platform: {p}, app: app{i}, type: production, {target}}}\n---\napiVersion: tether.dev/v1\nkind: Variables\nmetadata: {{name: env-{i}}}\nspec:\n  environment: env-{i}\n  entries:\n{vars}"
        );
        if p != Platform::Supabase {
            let src = if p == Platform::Vercel {
                ", source: {provider: github, repo: bench/web}"
            } else {
                ""
            };
            text.push_str(&format!("---\napiVersion: tether.dev/v1\nkind: Deployment\nmetadata: {{name: env-{i}}}\nspec: {{environment: env-{i}, commit: \"{:040x}\", branch: main{src}}}\n", i + 1));
            text.push_str(&format!("---\napiVersion: tether.dev/v1\nkind: Domain\nmetadata: {{name: d{i}}}\nspec: {{name: d{i}.bench.example, environment: env-{i}}}\n"));
        }
        std::fs::write(dir.join(format!("env-{i}.yaml")), text).expect("write manifest");
    }
    envs
}

/// The fewest calls a cold converge needs: one read per kind of object per environment, one
/// batched write per kind, the Railway name lookup once and the Vercel project lookup per project.
fn minimum(envs: usize) -> BTreeMap<Platform, usize> {
    let mut m = BTreeMap::new();
    for i in 0..envs {
        let (reads, writes) = match platform_of(i) {
            Platform::Railway => (3, 3),
            Platform::Vercel => (4, 3),
            Platform::Supabase => (2, 1),
        };
        *m.entry(platform_of(i)).or_default() += reads + writes;
    }
    *m.entry(Platform::Railway).or_default() += 2;
    m
}

/// Time the published limits impose on a set of calls: per platform (Railway) or per endpoint
/// (Supabase, Vercel), what exceeds the burst at the steady rate; platforms run in parallel.
fn floor(calls: &BTreeMap<(Platform, String), usize>) -> f64 {
    let rates = rates();
    let mut per_bucket: BTreeMap<(Platform, String), usize> = BTreeMap::new();
    for ((p, key), n) in calls {
        let k = match p {
            Platform::Railway => String::new(),
            _ => key.clone(),
        };
        *per_bucket.entry((*p, k)).or_default() += n;
    }
    let mut worst: BTreeMap<Platform, f64> = BTreeMap::new();
    for ((p, _), n) in per_bucket {
        for r in &rates[&p] {
            let over = n.saturating_sub(r.count as usize) as f64;
            let t = over * r.per.as_secs_f64() / r.count as f64;
            let w = worst.entry(p).or_default();
            *w = w.max(t);
        }
    }
    worst.values().cloned().fold(0.0, f64::max)
}

fn key_of(r: &RecordedRequest) -> (Platform, String) {
    let p = match r.platform {
        tether::simulate::SimPlatform::Railway => Platform::Railway,
        tether::simulate::SimPlatform::Vercel => Platform::Vercel,
        tether::simulate::SimPlatform::Supabase => Platform::Supabase,
    };
    let method: reqwest::Method = r.method.parse().unwrap_or(reqwest::Method::GET);
    (p, endpoint_key(p, &method, &r.path))
}

fn is_write(r: &RecordedRequest) -> bool {
    if r.path == "/graphql/v2" {
        r.body
            .as_ref()
            .and_then(|b| b["query"].as_str())
            .is_some_and(|q| q.trim_start().starts_with("mutation"))
    } else {
        r.method != "GET"
    }
}

/// What the harness keeps of one recorded request.
struct Call {
    key: (Platform, String),
    write: bool,
}

fn call(r: &RecordedRequest) -> Call {
    Call {
        key: key_of(r),
        write: is_write(r),
    }
}

fn counts(calls: &[Call]) -> BTreeMap<(Platform, String), usize> {
    let mut m = BTreeMap::new();
    for c in calls {
        *m.entry(c.key.clone()).or_default() += 1;
    }
    m
}

/// CPU seconds used by this process so far (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name; 100 ticks/s.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

#[derive(Debug, Serialize, Deserialize)]
struct Report {
    resources: usize,
    environments: usize,
    cold_writes_done_s: f64,
    cold_ready_s: f64,
    cold_calls_first_pass: usize,
    cold_calls_total: usize,
    minimum_calls: usize,
    floor_s: f64,
    baseline_calls: usize,
    baseline_floor_s: f64,
    baseline_latency_s: f64,
    resync_writes: usize,
    resync_calls: usize,
    resync_cpu_s: f64,
    resync_wall_s: f64,
    edit_p50_ms: f64,
    edit_p99_ms: f64,
    edits: usize,
    restart_first_pass_s: f64,
    restart_writes: usize,
    peak_rss_mib: f64,
    stages: Stages,
}

/// Terraform's way: every resource read before planning (one call each, plus the environment),
/// then one create per resource; parallelism 10.
fn baseline(envs: usize, latency: Duration) -> (usize, f64, f64) {
    let mut calls: BTreeMap<(Platform, String), usize> = BTreeMap::new();
    for i in 0..envs {
        let p = platform_of(i);
        let vars = if p == Platform::Supabase {
            PER_ENV
        } else {
            PER_ENV - 2
        };
        let ep = |s: &str| (p, s.to_string());
        match p {
            Platform::Railway => *calls.entry(ep("")).or_default() += 1 + 2 * PER_ENV,
            Platform::Vercel => {
                *calls.entry(ep("GET /v9/projects/*")).or_default() += 1;
                *calls.entry(ep("GET /v1/projects/*/env/*")).or_default() += vars;
                *calls.entry(ep("POST /v10/projects/*/env")).or_default() += vars;
                *calls.entry(ep("deployments")).or_default() += 2;
                *calls.entry(ep("domains")).or_default() += 2;
            }
            Platform::Supabase => {
                *calls.entry(ep(&format!("GET {i}/secrets"))).or_default() += vars;
                *calls.entry(ep(&format!("POST {i}/secrets"))).or_default() += vars;
            }
        }
    }
    let total: usize = calls.values().sum();
    (
        total,
        floor(&calls),
        total as f64 * latency.as_secs_f64() / 10.0,
    )
}

/// A scratch directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(n: usize) -> TempDir {
        let p = std::env::temp_dir().join(format!("tether-bench-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch directory");
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn run_one(args: &Args, n: usize) -> Report {
    let tmp = TempDir::new(n);
    let manifests = tmp.path().join("m");
    std::fs::create_dir_all(&manifests).unwrap();
    let envs = generate(&manifests, n);
    let store = Store::open(&tmp.path().join("state")).unwrap();
    // The key the daemon itself will use on this store (a random one kept in it).
    let fp = tether::daemon::fingerprinter(None, &store).unwrap();
    let mut loader = Loader::new(&manifests, None, fp.clone(), "none".into());
    let mut stages = Stages::default();
    stages.mark("start");
    let desired: DesiredState = loader.reload().unwrap().expect("valid manifests");
    stages.mark("loading the manifests");
    let latency = Duration::from_millis(args.latency_ms);
    let exe = std::env::current_exe().expect("own path");
    let sim = RemoteSim::start(&exe, &manifests, latency);
    let tokens = tether::simulate::SimTokens::default();
    let providers = simulated_providers_at(sim.addr, &tokens, &rates(), Policy::REQUEST);
    let opts = options(args, tmp.path());
    let mut rec =
        Reconciler::new(store.clone(), providers.clone(), fp.clone(), opts.clone()).unwrap();
    // The harness keeps only the names: the reconciler holds the one desired state, as in the
    // daemon.
    let names: Vec<String> = desired.environments.keys().cloned().collect();
    rec.set_desired(Ok(desired));
    let all = |fresh: bool| -> BTreeMap<String, bool> {
        names.iter().map(|k| (k.clone(), fresh)).collect()
    };

    // Cold converge.
    let t0 = Instant::now();
    // The harness keeps only the latest pass's report (a report holds every environment's
    // status, so an older one kept beside it would count as tether's memory).
    let mut report = rec.pass(&all(false)).await.unwrap();
    let writes_done = t0.elapsed();
    let first_reqs = sim.fold_since(0, call).await;
    let mut guard = 0;
    while report.counts.ready < report.counts.resources && guard < 400 {
        guard += 1;
        // What the daemon would do: look again, as the pass asked, at what is due soonest.
        let soon: BTreeMap<String, Look> = report
            .next
            .iter()
            .filter(|(_, (d, _))| *d <= opts.follow * 3)
            .map(|(k, (_, l))| (k.clone(), *l))
            .collect();
        tokio::time::sleep(opts.follow).await;
        report = rec.pass_with(&soon).await.unwrap();
    }
    let ready = t0.elapsed();
    stages.mark("the cold converge");
    assert_eq!(
        report.counts.ready, report.counts.resources,
        "the benchmark did not converge"
    );
    let total_calls = sim.fold_since(0, |_| ()).await.len();
    let min = minimum(envs);
    let min_total: usize = min.values().sum();
    let mut min_calls: BTreeMap<(Platform, String), usize> = counts(&first_reqs);
    // The floor is the floor of the minimum: scale the first pass's per-endpoint counts down to it.
    let scale = min_total as f64 / first_reqs.len().max(1) as f64;
    for v in min_calls.values_mut() {
        *v = ((*v as f64) * scale).round() as usize;
    }
    let floor_s = floor(&min_calls);
    let cold_calls_first_pass = first_reqs.len();
    drop(first_reqs);
    drop(report);

    // Steady state: a resync of converged state.
    sim.clear_requests().await;
    let cpu0 = cpu_seconds();
    let t1 = Instant::now();
    let r = rec.pass(&all(true)).await.unwrap();
    let resync_wall = t1.elapsed();
    let resync_cpu = cpu_seconds() - cpu0;
    let resync_reqs = sim.fold_since(0, call).await;
    let resync_writes = resync_reqs.iter().filter(|c| c.write).count();
    assert_eq!(r.writes, 0);
    drop(rec);
    drop(r);
    stages.mark("the resync");

    eprintln!(
        "tether-bench: {n}: cold {:.1} s, ready {:.1} s",
        writes_done.as_secs_f64(),
        ready.as_secs_f64(),
    );
    // Restart with a warm cache, then edits, through the daemon itself, in a process of its
    // own as a restarted daemon is (so its memory is its own, not the cold run's leftovers).
    let cold_peak = peak_rss_mib();
    drop(providers);
    drop(store);
    // TETHER_BENCH_WRAP runs the restart under a profiler, e.g. "heaptrack -o /tmp/restart".
    let wrap: Vec<String> = std::env::var("TETHER_BENCH_WRAP")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let mut child = match wrap.split_first() {
        Some((tool, tool_args)) => {
            let mut c = std::process::Command::new(tool);
            c.args(tool_args).arg(&exe);
            c
        }
        None => std::process::Command::new(&exe),
    };
    let out = child
        .args([
            "--restart-child",
            &n.to_string(),
            "--edits",
            &args.edits.to_string(),
            "--concurrency",
            &args.concurrency.to_string(),
            "--sim",
            &sim.addr.to_string(),
        ])
        .arg("--dir")
        .arg(tmp.path())
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run the restart");
    assert!(out.status.success(), "the restart failed");
    let line = String::from_utf8_lossy(&out.stdout);
    let restarted: Restarted =
        serde_json::from_str(line.lines().rfind(|l| l.starts_with('{')).unwrap_or(""))
            .expect("restart report");
    stages.0.extend(
        restarted
            .stages
            .0
            .iter()
            .map(|(name, now, peak)| (format!("restart: {name}"), *now, *peak)),
    );
    let (baseline_calls, baseline_floor_s, baseline_latency_s) = baseline(envs, latency);
    drop(sim);
    Report {
        resources: n,
        environments: envs,
        cold_writes_done_s: writes_done.as_secs_f64(),
        cold_ready_s: ready.as_secs_f64(),
        cold_calls_first_pass,
        cold_calls_total: total_calls,
        minimum_calls: min_total,
        floor_s,
        baseline_calls,
        baseline_floor_s,
        baseline_latency_s,
        resync_writes,
        resync_calls: resync_reqs.len(),
        resync_cpu_s: resync_cpu,
        resync_wall_s: resync_wall.as_secs_f64(),
        edit_p50_ms: restarted.edit_p50_ms,
        edit_p99_ms: restarted.edit_p99_ms,
        edits: restarted.edits,
        restart_first_pass_s: restarted.first_pass_s,
        restart_writes: restarted.writes,
        peak_rss_mib: cold_peak.max(restarted.peak_rss_mib),
        stages,
    }
}

fn options(args: &Args, dir: &Path) -> Options {
    Options {
        per_platform_concurrency: args.concurrency,
        follow: Duration::from_millis(250),
        redeploy_quiet: Duration::ZERO,
        status_dir: Some(dir.join("status")),
        ..Options::default()
    }
}

/// The daemon's allocator and settings (src/main.rs, .cargo/config.toml), so the figures are
/// the daemon's.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let args = Args::parse();
    if let Some(dir) = &args.serve_sim {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(sim::serve(dir, Duration::from_millis(args.latency_ms)));
        return;
    }
    // Logs only when asked for (RUST_LOG=tether=info), to see where a slow size spends time.
    if (args.child.is_some() || args.restart_child.is_some())
        && let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env()
    {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    if let Some(times) = args.reloads {
        let n = args.sizes.iter().copied().max().unwrap_or(10_000);
        let tmp = TempDir::new(n);
        generate(tmp.path(), n);
        let fp = tether::secret::Fingerprinter::from_seed(b"bench");
        let mut loader = Loader::new(tmp.path(), None, fp, "none".into());
        let mut in_force = loader.reload().expect("a first load").expect("valid");
        let file = tmp.path().join("env-2.yaml");
        let original = std::fs::read_to_string(&file).unwrap();
        let t = Instant::now();
        for k in 0..times {
            std::fs::write(&file, original.replace("value-2-0", &format!("edit-{k}"))).unwrap();
            in_force = loader
                .reload_after(Some(&in_force))
                .expect("a change")
                .expect("valid");
        }
        println!(
            "reload after one file changed, {n} resources: {:.1} ms",
            t.elapsed().as_secs_f64() * 1000.0 / times as f64
        );
        return;
    }
    if let (Some(n), Some(dir), Some(sim)) = (args.restart_child, &args.dir, args.sim) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt.block_on(run_restart(&args, n, dir, sim));
        println!("{}", serde_json::to_string(&r).unwrap());
        return;
    }
    if let Some(n) = args.child {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt.block_on(run_one(&args, n));
        println!("{}", serde_json::to_string(&r).unwrap());
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let mut reports = Vec::new();
    for &n in &args.sizes {
        eprintln!("tether-bench: {n} resources…");
        let out = std::process::Command::new(&exe)
            .args([
                "--child",
                &n.to_string(),
                "--latency-ms",
                &args.latency_ms.to_string(),
                "--edits",
                &args.edits.to_string(),
                "--concurrency",
                &args.concurrency.to_string(),
            ])
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run a size");
        if !out.status.success() {
            std::process::exit(1);
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let r: Report =
            serde_json::from_str(line.lines().rfind(|l| l.starts_with('{')).unwrap_or(""))
                .expect("child report");
        reports.push(r);
    }
    table::print(&reports);
}
