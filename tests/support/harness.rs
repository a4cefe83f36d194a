//! A world for end-to-end tests: a copy of the vocilia manifests, a simulator with fast
//! timings, and a reconciler (or the real binary) pointed at it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tether::daemon::{Loader, fingerprinter, simulated_providers};
use tether::reconcile::{Options, PassReport, Reconciler};
use tether::secret::Keyring;
use tether::simulate::{Seed, SimConfig, SimHandle, Simulator, Timings};
use tether::store::Store;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The example's demo identity files: production, then the rest.
pub fn identity_files() -> Vec<PathBuf> {
    vec![
        root().join("examples/demo-age-production.txt"),
        root().join("examples/demo-age-rest.txt"),
    ]
}

/// TETHER_AGE_KEY_FILE naming both demo identities, as the README's first command does.
pub fn identity() -> PathBuf {
    let list: Vec<String> = identity_files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    PathBuf::from(list.join(","))
}

/// A keyring of both demo identities.
pub fn demo_keyring() -> Keyring {
    Keyring::load_all(&identity_files(), None).unwrap()
}

/// Simulator timings short enough for tests (every phase 20 ms).
pub fn fast() -> Timings {
    let d = Duration::from_millis(20);
    Timings {
        queued: d,
        building: d,
        deploying: d,
        domain_verify: d,
        cert_issue: d,
        vercel_self_issue: true,
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
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

pub struct World {
    pub tmp: tempfile::TempDir,
    pub manifests: PathBuf,
    pub sim: SimHandle,
    pub rec: Reconciler,
    pub loader: Loader,
    pub opts: Options,
    pub providers: tether::provider::Providers,
    pub fp: tether::secret::Fingerprinter,
}

impl World {
    /// The vocilia manifests as loaded with the demo identity.
    pub fn vocilia_desired() -> tether::manifest::DesiredState {
        let keyring = demo_keyring();
        let fp = keyring.fingerprinter();
        let ctx = tether::manifest::SecretContext {
            keyring: Some(&keyring),
            fingerprinter: &fp,
            key_source: "t",
            decrypt: tether::manifest::Decrypt::All,
        };
        tether::manifest::load(&root().join("examples/vocilia"), &ctx).unwrap()
    }

    /// vocilia in a temporary folder, a simulator seeded from it, a reconciler on a fresh store.
    pub async fn new(config: SimConfig) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let manifests = tmp.path().join("manifests");
        copy_dir(&root().join("examples/vocilia"), &manifests);
        let store = Store::open(&tmp.path().join("state")).unwrap();
        Self::with_store(tmp, manifests, store, config, None).await
    }

    pub async fn with_store(
        tmp: tempfile::TempDir,
        manifests: PathBuf,
        store: Store,
        mut config: SimConfig,
        sim: Option<SimHandle>,
    ) -> World {
        let keyring = demo_keyring();
        let fp = fingerprinter(Some(&keyring), &store).unwrap();
        let mut loader = Loader::new(
            &manifests,
            Some(keyring),
            fp.clone(),
            "TETHER_AGE_KEY_FILE".into(),
        );
        let desired = loader.reload().unwrap().expect("vocilia is valid");
        if config.timings == Timings::default() {
            config.timings = fast();
        }
        let tokens = config.tokens.clone();
        let sim = match sim {
            Some(s) => s,
            None => Simulator::start(
                "127.0.0.1:0".parse().unwrap(),
                config,
                Seed::from_desired(&desired),
            )
            .await
            .unwrap(),
        };
        let mut providers_rates = BTreeMap::new();
        for p in tether::manifest::Platform::ALL {
            providers_rates.insert(p, vec![tether::provider::Rate::per_second(10_000)]);
        }
        let retry = tether::retry::Policy {
            initial: Duration::from_millis(5),
            max_interval: Duration::from_millis(40),
            multiplier: 2.0,
            max_attempts: 40,
        };
        let providers = simulated_providers(&sim, &tokens, &providers_rates, retry);
        let opts = Options {
            status_dir: Some(tmp.path().join("status")),
            follow: Duration::from_millis(30),
            redeploy_quiet: Duration::ZERO,
            ..Options::default()
        };
        let mut rec = Reconciler::new(store, providers.clone(), fp.clone(), opts.clone()).unwrap();
        rec.set_desired(Ok(desired));
        World {
            tmp,
            manifests,
            sim,
            rec,
            loader,
            opts,
            providers,
            fp,
        }
    }

    /// Feeds the health gate from `h` (rebuilds the reconciler on the same store).
    pub fn set_health(&mut self, h: std::sync::Arc<dyn tether::reconcile::HealthSource>) {
        self.rec_options(|o| o.health = Some(h.clone()));
    }

    /// Changes the reconciler's options (rebuilds it on the same store and cache).
    pub fn rec_options(&mut self, f: impl FnOnce(&mut Options)) {
        let mut opts = self.opts.clone();
        f(&mut opts);
        self.opts = opts.clone();
        let desired = self.rec.desired().cloned();
        let store = self.rec.store().clone();
        let providers = self.providers.clone();
        let fp = self.fp.clone();
        self.rec = Reconciler::new(store, providers, fp, opts).unwrap();
        if let Some(d) = desired {
            self.rec.set_desired(Ok((*d).clone()));
        }
    }

    /// Every environment, observed afresh or from the cache.
    pub fn all(&self, fresh: bool) -> BTreeMap<String, bool> {
        self.rec
            .desired()
            .unwrap()
            .environments
            .keys()
            .map(|k| (k.clone(), fresh))
            .collect()
    }

    /// Passes until every resource is Ready (bounded).
    pub async fn converge(&mut self) -> Vec<PassReport> {
        let mut reports = Vec::new();
        for i in 0..60 {
            let r = self.rec.pass(&self.all(i > 0)).await.unwrap();
            let done = r.counts.ready == r.counts.resources && r.counts.resources > 0;
            reports.push(r);
            if done {
                return reports;
            }
            self.sim.advance(Duration::from_millis(200));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (index, _) = self.rec.write_status().unwrap();
        panic!("did not converge: {:?}\n{:#?}", index.summary, self.stuck());
    }

    /// Every resource not Ready, with its last condition's message.
    pub fn stuck(&mut self) -> Vec<String> {
        let (_, envs) = self.rec.write_status().unwrap();
        envs.iter()
            .flat_map(|e| {
                e.resources
                    .iter()
                    .filter(|r| r.state != tether::status::State::Ready)
                    .map(move |r| {
                        format!(
                            "{}/{}: {:?}",
                            e.environment,
                            r.name,
                            r.conditions.last().map(|c| &c.message)
                        )
                    })
            })
            .collect()
    }

    /// Reloads the manifests after editing them.
    pub fn reload(&mut self) {
        if let Some(l) = self.loader.reload() {
            self.rec.set_desired(l);
        }
    }

    pub fn edit(&mut self, rel: &str, from: &str, to: &str) {
        let p = self.manifests.join(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{rel} lacks {from:?}");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
        self.reload();
    }

    /// Non-GET requests since the log was cleared (GraphQL mutations for Railway).
    pub fn writes(&self) -> Vec<String> {
        self.sim
            .requests()
            .iter()
            .filter(|r| {
                let gql_mutation = r
                    .body
                    .as_ref()
                    .and_then(|b| b["query"].as_str())
                    .is_some_and(|q| q.trim_start().starts_with("mutation"));
                if r.path == "/graphql/v2" {
                    gql_mutation
                } else {
                    r.method != "GET"
                }
            })
            .map(
                |r| match r.body.as_ref().and_then(|b| b["query"].as_str()) {
                    Some(q) if r.path == "/graphql/v2" => q
                        .split(['(', '{'])
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                    _ => format!("{} {}", r.method, r.path),
                },
            )
            .collect()
    }
}

/// The environment that points the `tether` binary at a simulator: each platform's API URL and
/// the token the simulator accepts.
pub fn sim_env(sim: &SimHandle) -> Vec<(&'static str, String)> {
    let t = SimConfig::default().tokens;
    vec![
        ("RAILWAY_API_URL", sim.railway_url()),
        ("RAILWAY_TOKEN", t.railway),
        ("VERCEL_API_URL", sim.vercel_url()),
        ("VERCEL_TOKEN", t.vercel),
        ("SUPABASE_API_URL", sim.supabase_url()),
        ("SUPABASE_ACCESS_TOKEN", t.supabase),
    ]
}

/// `tether run --once` over a scratch folder laid out as `m/`, `state/` and `status/`, with
/// DNS, TLS probes, backups and monitors off and a loopback port the OS picks, giving up after
/// `timeout`; `extra` flags follow.
pub fn once_args(timeout: &'static str, extra: &[&'static str]) -> Vec<&'static str> {
    let mut a = vec![
        "run",
        "--manifests",
        "m",
        "--state-dir",
        "state",
        "--status-dir",
        "status",
        "--once",
        "--no-dns",
        "--no-tls-probe",
        "--no-backups",
        "--no-monitors",
        "--listen",
        "127.0.0.1:0",
        "--timeout",
        timeout,
    ];
    a.extend_from_slice(extra);
    a
}

/// Each platform object exists once, whatever happened.
pub async fn assert_no_duplicates(sim: &SimHandle) {
    use tether::manifest::{Platform, RailwayTarget};
    use tether::secret::SecretValue;
    let t = SimConfig::default().tokens;
    let r = tether::provider::railway::Railway::new(tether::provider::endpoint(
        Platform::Railway,
        &sim.railway_url(),
        SecretValue::new(t.railway),
        vec![],
    ));
    for env in ["production", "staging", "development"] {
        let ids = r
            .resolve(&RailwayTarget {
                project: "vocilia".into(),
                environment: env.into(),
                service: Some("backend".into()),
            })
            .await
            .unwrap();
        assert_eq!(
            r.deployments(&ids).await.unwrap().len(),
            1,
            "one backend deploy in {env}"
        );
        let expected = if env == "development" { 0 } else { 1 };
        assert_eq!(
            r.domains(&ids).await.unwrap().len(),
            expected,
            "backend domains in {env}"
        );
        assert_eq!(
            r.variables(&ids).await.unwrap().len(),
            8,
            "backend variables in {env}"
        );
    }
    let v = tether::provider::vercel::Vercel::new(tether::provider::endpoint(
        Platform::Vercel,
        &sim.vercel_url(),
        SecretValue::new(t.vercel),
        vec![],
    ));
    for app in ["customer", "business", "admin"] {
        let (pid, _) = v.project(&format!("vocilia-{app}")).await.unwrap();
        assert_eq!(v.domains(&pid).await.unwrap().len(), 2, "{app} domains");
        assert_eq!(
            v.deployments(&pid, true, None, 100).await.unwrap().len(),
            1,
            "one {app} production deploy"
        );
        assert_eq!(v.list_env(&pid).await.unwrap().len(), 15, "{app} variables");
    }
}

/// Points vocilia's backup policy (in the copy at `m`) at a local database, its URL encrypted
/// like the real one, its archives in `archives`, on `schedule` (cron).
pub fn local_backup_policy(m: &Path, db_url: &str, archives: &Path, schedule: &str) {
    let file = m.join("database/backup.yaml");
    let ring = demo_keyring();
    let ct = tether::secret::encrypt(
        db_url,
        &tether::secret::parse_recipients(&ring.recipients()).unwrap(),
    )
    .unwrap();
    let text = tether::manifest::edit::replace_secret(
        &std::fs::read_to_string(&file).unwrap(),
        0,
        "spec.databaseUrl.secret",
        &ct,
    )
    .unwrap();
    let text = text
        .replace("database: postgres", "database: vocilia")
        .replace(
            "schedule: \"0 3 * * *\"",
            &format!("schedule: \"{schedule}\""),
        )
        .replace(
            "path: backups/vocilia-prod",
            &format!("path: {}", archives.display()),
        );
    std::fs::write(&file, text).unwrap();
}

/// Runs the `age` command line tool (`/usr/bin/age`, from scripts/install-test-deps) with
/// `input` on stdin.
pub fn age_tool(args: &[&std::ffi::OsStr], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("age")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the age tool (scripts/install-test-deps installs it)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}
