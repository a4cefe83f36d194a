//! `tether import`: a product already running on the simulator (examples/import/product.yaml)
//! is imported, and the plan right after has nothing to do but adopt; placeholders are listed
//! and left alone; a first apply records what it adopted; no secret is written in clear;
//! existing files and name collisions stop the import before it writes anything.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::harness::{once_args, root, sim_env};
use support::spec_check::Specs;
use tether::secret::Keyring;
use tether::simulate::{Seed, SimConfig, SimHandle, Simulator};

/// The values examples/import/product.yaml marks as canaries: secrets on the platforms.
const CANARIES: [&str; 11] = [
    "canary-db-password-prod",
    "canary-db-password-staging",
    "sk_live_canary_stripe_prod",
    "canary-jwt-prod",
    "canary-jwt-staging",
    "canary-signing-key-prod",
    "canary-session-prod",
    "canary-session-staging",
    "canary-webhook-prod",
    "canary-openai-prod",
    "canary-api-token",
];

async fn product(extra: impl FnOnce(&mut Seed)) -> SimHandle {
    let mut seed = Seed::load(&root().join("examples/import/product.yaml")).expect("the seed");
    extra(&mut seed);
    Simulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default(), seed)
        .await
        .expect("simulator")
}

/// `tether ARGS` in `dir`, pointed at the simulator, with the identity file when given.
fn tether(sim: &SimHandle, dir: &Path, args: &[&str], key: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.args(args)
        .current_dir(dir)
        .envs(sim_env(sim))
        .env_remove("TETHER_AGE_KEY")
        .env_remove("VERCEL_TEAM_ID")
        .env(
            "TETHER_AGE_KEY_FILE",
            key.map(|k| k.display().to_string()).unwrap_or_default(),
        )
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    c.output().expect("tether runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `tether import --all --out m --age-recipient RECIPIENT` in `dir`.
fn import_all(sim: &SimHandle, dir: &Path, recipient: &str) -> Output {
    let args = [
        "import",
        "--all",
        "--out",
        "m",
        "--age-recipient",
        recipient,
    ];
    tether(sim, dir, &args, None)
}

/// A scratch folder with a fresh age identity in it: (folder, identity file, recipient).
fn scratch(name: &str) -> (PathBuf, PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("tether-import-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (identity, recipient) = Keyring::generate();
    let key = dir.join("key.txt");
    std::fs::write(&key, identity.as_bytes()).unwrap();
    (dir, key, recipient)
}

/// Every file under `dir`, with its text.
fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(t) = std::fs::read_to_string(&p) {
                out.push((p, t));
            }
        }
    }
    out.sort();
    out
}

fn assert_no_canary(what: &str, text: &str) {
    for c in CANARIES {
        assert!(!text.contains(c), "{what} holds the secret {c} in clear");
    }
}

/// Every request the simulator saw passes the platforms' published schemas.
fn assert_requests_valid(sim: &SimHandle) {
    for r in sim.requests() {
        let platform = format!("{:?}", r.platform).to_ascii_lowercase();
        let body = r.body.as_ref();
        if let Err(e) = Specs::load().check(&platform, &r.method, &r.path, &r.query, body) {
            panic!("{} {} {}: {e:?}", platform, r.method, r.path);
        }
    }
}

/// The lines of a plan that write to a platform (`+`, `~`, `-`, `^`, `<`).
fn writes(plan: &str) -> Vec<String> {
    plan.lines()
        .filter(|l| {
            let t = l.trim_start();
            l.starts_with("  ")
                && ["+ ", "~ ", "- ", "^ ", "< "]
                    .iter()
                    .any(|s| t.starts_with(s))
        })
        .map(|l| l.trim().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_product_plans_nothing_but_adoption_and_is_adopted_on_first_apply() {
    let sim = product(|_| {}).await;
    let (dir, key, recipient) = scratch("all");
    let out = import_all(&sim, &dir, &recipient);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert_no_canary("import's output", &said);
    // Every written file: the $schema line, no secret in clear.
    let written = files(&dir.join("m"));
    for (p, t) in &written {
        assert_no_canary(&p.display().to_string(), t);
        if p.extension().is_some_and(|e| e == "yaml") && !p.ends_with(".tether.yaml") {
            assert!(
                t.starts_with("# yaml-language-server: $schema=../.schema/"),
                "{}",
                p.display()
            );
        }
    }
    // One folder per app, one file per kind.
    for f in [
        "api/environments.yaml",
        "api/variables.yaml",
        "api/domains.yaml",
        "api/certificates.yaml",
        "api/deployments.yaml",
        "api/monitors.yaml",
        "worker/environments.yaml",
        "shared/variables.yaml",
        "acme-web/variables.yaml",
        "acme-db/backup.yaml",
        ".schema/variables.json",
    ] {
        assert!(dir.join("m").join(f).exists(), "{f} was written:\n{said}");
    }
    let read = |f: &str| std::fs::read_to_string(dir.join("m").join(f)).unwrap();
    // Railway: shared variables once, in their own environment; references kept as written.
    let shared = read("shared/environments.yaml");
    assert!(
        shared.contains("name: prod-shared") && !shared.contains("service:"),
        "{shared}"
    );
    let api = read("api/variables.yaml");
    assert!(
        api.contains("DATABASE_URL: ${{shared.DATABASE_URL}}"),
        "{api}"
    );
    assert!(
        !api.contains("STRIPE_SECRET_KEY"),
        "a shared variable is not copied per service"
    );
    assert!(read("shared/variables.yaml").contains("STRIPE_SECRET_KEY:\n      secret: |"));
    // Vercel: a variable of several targets, once, naming them all.
    let web = read("acme-web/variables.yaml");
    assert_eq!(web.matches("NEXT_PUBLIC_ANALYTICS_ID").count(), 1, "{web}");
    assert!(
        web.contains("environments:\n  - prod-acme-web\n  - dev-acme-web\n  - preview-acme-web"),
        "{web}"
    );
    assert!(
        !web.contains("VERCEL_ENV"),
        "system variables are the platform's"
    );
    // Railway's target port comes along with the domain.
    let domains = read("api/domains.yaml");
    assert!(
        domains.contains("  name: api.acme.dev\n  environment: prod-api\n  port: 8080\n"),
        "{domains}"
    );
    // Placeholders, listed at the end of the output.
    for p in [
        "prod-api/SIGNING_KEY: sealed on Railway",
        "prod-acme-web/STRIPE_WEBHOOK_SECRET: sensitive on Vercel",
        "prod-acme-db/OPENAI_API_KEY: a Supabase secret",
        "prod-acme-db/BackupPolicy prod-acme-db databaseUrl",
    ] {
        assert!(said.contains(&format!("  - {p}")), "{p} listed:\n{said}");
    }
    assert!(said.contains("Needs a person: 4 placeholder(s)"), "{said}");

    // Every request import sent is one the platforms' published schemas accept.
    assert_requests_valid(&sim);

    // Right after import: nothing to do but adopt, placeholders aside.
    let plan = tether(&sim, &dir, &["plan", "m"], Some(&key));
    let p = text(&plan);
    assert_eq!(plan.status.code(), Some(0), "{p}");
    assert!(writes(&p).is_empty(), "{p}");
    assert!(
        p.contains("@ adopt variable SESSION_SECRET (already on the platform)"),
        "{p}"
    );
    assert!(p.contains("@ adopt domain api.acme.dev"), "{p}");
    assert!(p.contains("@ adopt deploy 111111111111 (main)"), "{p}");
    assert!(
        p.contains("No changes: the platforms match the manifests"),
        "{p}"
    );
    assert!(
        p.contains("4 placeholder(s) left as they are until filled in"),
        "{p}"
    );
    assert!(
        !p.contains("not compared"),
        "with the key, every value is compared: {p}"
    );
    assert_no_canary("the plan", &p);
    // validate reports every placeholder, at its line, until a person fills it in.
    let v = tether(&sim, &dir, &["validate", "m"], Some(&key));
    let vt = text(&v);
    assert_eq!(v.status.code(), Some(1), "{vt}");
    assert!(vt.contains("acme-web/variables.yaml:") && vt.contains("spec.entries.STRIPE_WEBHOOK_SECRET: prod-acme-web/STRIPE_WEBHOOK_SECRET is a placeholder"), "{vt}");
    assert!(vt.contains("4 placeholders in m need a value"), "{vt}");

    // A person fills the placeholders in (the fixture holds the values).
    for (env, k, value) in [
        ("prod-api", "SIGNING_KEY", "canary-signing-key-prod"),
        (
            "prod-acme-web",
            "STRIPE_WEBHOOK_SECRET",
            "canary-webhook-prod",
        ),
        ("prod-acme-db", "OPENAI_API_KEY", "canary-openai-prod"),
    ] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
        c.args(["secret", "set", "--manifests", "m", env, k])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(value.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let backup = dir.join("m/acme-db/backup.yaml");
    let url = tether::secret::encrypt(
        "postgres://postgres:canary-db-password-prod@db.acmeprodabcdefghijkl.supabase.co:5432/postgres",
        &tether::secret::parse_recipients(std::slice::from_ref(&recipient)).unwrap(),
    )
    .unwrap();
    let indented: String = url.lines().map(|l| format!("      {l}\n")).collect();
    let t = std::fs::read_to_string(&backup).unwrap();
    let start = t.find("    placeholder:").expect("the placeholder");
    let end = start + t[start..].find('\n').unwrap() + 1;
    let filled = format!("{}    secret: |\n{indented}{}", &t[..start], &t[end..]);
    std::fs::write(&backup, filled).unwrap();
    let v = tether(&sim, &dir, &["validate", "m"], Some(&key));
    assert!(v.status.success(), "{}", text(&v));
    // Now tether writes only what it cannot compare: the sealed and the sensitive value (the
    // Supabase secret compares by its digest), and redeploys to pick them up.
    let plan = tether(&sim, &dir, &["plan", "m"], Some(&key));
    let p = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{p}");
    assert_eq!(
        writes(&p),
        [
            "~ adopt and change variable STRIPE_WEBHOOK_SECRET = (sensitive value)",
            "~ adopt and change variable SIGNING_KEY = (sensitive value)",
            // The one build that picks written variables up.
            "^ deploy 444444444444 (main): variables changed, was 444444444444",
            "^ deploy 111111111111 (main): variables changed, was 111111111111",
        ],
        "{p}"
    );

    // The first apply adopts everything and records it in status.
    let run = tether(&sim, &dir, &once_args("120s", &[]), Some(&key));
    let rt = text(&run);
    assert_eq!(run.status.code(), Some(0), "{rt}");
    assert_no_canary("the daemon's log", &rt);
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("status/prod-api.json")).unwrap())
            .unwrap();
    let resources = status["resources"].as_array().unwrap();
    for name in ["PORT", "JWT_SECRET", "api.acme.dev", "prod-api"] {
        let r = resources
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {status}"));
        assert!(
            r["adopted"].is_string(),
            "{name} is recorded as adopted: {r}"
        );
    }
    for (p, t) in files(&dir.join("status")) {
        assert_no_canary(&p.display().to_string(), &t);
    }
    // After it: nothing to adopt, nothing to write; the sealed value is known by tether's
    // last write of it.
    let plan = tether(
        &sim,
        &dir,
        &["plan", "m", "--state-dir", "state"],
        Some(&key),
    );
    let p = text(&plan);
    assert_eq!(plan.status.code(), Some(0), "{p}");
    assert!(!p.contains("@ adopt"), "{p}");

    // A value Vercel holds once for three targets changes in place: one record, same targets.
    let vars = dir.join("m/acme-web/variables.yaml");
    let t = std::fs::read_to_string(&vars).unwrap();
    std::fs::write(
        &vars,
        t.replace(
            "NEXT_PUBLIC_ANALYTICS_ID: UA-1234",
            "NEXT_PUBLIC_ANALYTICS_ID: UA-5678",
        ),
    )
    .unwrap();
    let run = tether(&sim, &dir, &once_args("120s", &[]), Some(&key));
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let state = sim.state();
    let web = state
        .vercel
        .projects
        .iter()
        .find(|p| p.name == "acme-web")
        .unwrap();
    let records: Vec<_> = web
        .envs
        .iter()
        .filter(|e| e.key == "NEXT_PUBLIC_ANALYTICS_ID")
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].value, "UA-5678");
    assert_eq!(records[0].target, ["production", "preview", "development"]);
    // So is every request the daemon sent (sealed names, value-only edits, decrypted reads).
    assert_requests_valid(&sim);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_to_overwrite_and_reports_collisions_and_missing_recipients() {
    // A Railway service and a Vercel project both called web: both would be prod-web.
    let sim = product(|seed| {
        seed.railway[0].services.push("web".into());
        seed.vercel.push(tether::simulate::SeedVercelProject {
            name: "web".into(),
            ..Default::default()
        });
    })
    .await;
    let (dir, _key, recipient) = scratch("refuse");
    let out = import_all(&sim, &dir, &recipient);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("prod-web would name two targets: railway acme/production/web and vercel web (production)"),
        "{said}"
    );
    assert!(!dir.join("m").exists(), "nothing is written");

    // A platform without a token is named, with the option that asked for it.
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["import", "--supabase", "acmeprodabcdefghijkl", "--out", "m"])
        .current_dir(&dir)
        .envs(sim_env(&sim))
        .env_remove("SUPABASE_ACCESS_TOKEN")
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(
            "error: SUPABASE_ACCESS_TOKEN is not set, and --supabase asks to import from Supabase"
        ),
        "{said}"
    );
    // Secrets need recipients: none given, none in the folder.
    let out = tether(
        &sim,
        &dir,
        &["import", "--railway", "acme/production/api", "--out", "m"],
        None,
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("value(s) look secret and must be encrypted, but m has no .tether.yaml naming age recipients"), "{said}");
    assert!(!dir.join("m").exists(), "nothing is written");

    // One service instance: just it, without the environment's shared variables.
    let args = [
        "import",
        "--railway",
        "acme/production/api",
        "--out",
        "m",
        "--age-recipient",
        &recipient,
    ];
    let out = tether(&sim, &dir, &args, None);
    assert!(out.status.success(), "{}", text(&out));
    let envs = std::fs::read_to_string(dir.join("m/api/environments.yaml")).unwrap();
    assert_eq!(envs.matches("kind: Environment").count(), 1, "{envs}");
    assert!(!dir.join("m/shared").exists());
    let before = std::fs::read_to_string(dir.join("m/api/variables.yaml")).unwrap();
    // Again: the files exist, so nothing is written without --force (.tether.yaml exists
    // too, so recipients come from it).
    let args = ["import", "--railway", "acme/production/api", "--out", "m"];
    let out = tether(&sim, &dir, &args, None);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("files already exist in m (use --force to overwrite): api/certificates.yaml, api/deployments.yaml"), "{said}");
    assert_eq!(
        std::fs::read_to_string(dir.join("m/api/variables.yaml")).unwrap(),
        before
    );
    let out = tether(
        &sim,
        &dir,
        &[
            "import",
            "--railway",
            "acme/production/api",
            "--out",
            "m",
            "--force",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_ne!(
        std::fs::read_to_string(dir.join("m/api/variables.yaml")).unwrap(),
        before,
        "rewritten (age ciphertexts differ every time)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_vercel_value_that_looks_secret_is_encrypted_and_made_sensitive() {
    let sim = product(|seed| {
        seed.vercel.push(tether::simulate::SeedVercelProject {
            name: "tools".into(),
            env: vec![tether::simulate::SeedVercelEnv {
                key: "API_TOKEN".into(),
                value: "canary-api-token".into(),
                target: vec!["production".into()],
                ..Default::default()
            }],
            ..Default::default()
        });
    })
    .await;
    let (dir, key, recipient) = scratch("plain");
    let args = [
        "import",
        "--vercel",
        "tools",
        "--out",
        "m",
        "--age-recipient",
        &recipient,
        "--type",
        "production",
    ];
    let out = tether(&sim, &dir, &args, None);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let vars = std::fs::read_to_string(dir.join("m/tools/variables.yaml")).unwrap();
    assert!(vars.contains("API_TOKEN:\n      secret: |"), "{vars}");
    assert_no_canary("tools/variables.yaml", &vars);
    // The value is the same; Vercel keeps it readable, so the plan stores it as sensitive.
    let plan = tether(&sim, &dir, &["plan", "m"], Some(&key));
    let p = text(&plan);
    assert_eq!(
        writes(&p),
        ["~ adopt and change variable API_TOKEN = (sensitive value)"],
        "{p}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
