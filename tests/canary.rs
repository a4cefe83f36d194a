//! Zero leakage: a canary secret goes through validate, plan, a full reconcile with injected
//! faults and errors that echo request bodies, status and the secret commands; then every
//! output stream, log line (trace level, JSON), status file and the sled files are searched for
//! the canary, its base64 and its hex.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use support::harness::{copy_dir, fast, identity, once_args, root, sim_env};
use tether::simulate::{Faults, Seed, SimConfig, Simulator};

const CANARY: &str = "canary-7f3e91d2c4b8a605";

fn run(
    dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, String)],
) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.args(args)
        .current_dir(dir)
        .env("TETHER_AGE_KEY_FILE", identity())
        .env("RUST_LOG", "trace")
        .env_remove("TETHER_AGE_KEY")
        .env_remove("TETHER_CRASH_AT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let mut sin = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        sin.write_all(s.as_bytes()).unwrap();
    }
    drop(sin);
    let out = child.wait_with_output().unwrap();
    (out.status.code(), out.stdout, out.stderr)
}

fn forms() -> Vec<(String, Vec<u8>)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let nopad = base64::engine::general_purpose::STANDARD_NO_PAD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    vec![
        ("plain".into(), CANARY.as_bytes().to_vec()),
        ("base64".into(), b64.encode(CANARY).into_bytes()),
        (
            "base64 (no padding)".into(),
            nopad.encode(CANARY).into_bytes(),
        ),
        ("base64url".into(), url.encode(CANARY).into_bytes()),
        ("hex".into(), hex::encode(CANARY).into_bytes()),
        ("HEX".into(), hex::encode_upper(CANARY).into_bytes()),
    ]
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_appears_nowhere() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&root().join("examples/vocilia"), &dir.join("m"));
    // Every event of every environment goes to local Slack, Discord and webhook stand-ins,
    // whose bodies and headers are searched too.
    let (hooks, sink) = support::sink::receiver().await;
    std::fs::remove_file(dir.join("m/alerts/staging.yaml")).unwrap();
    std::fs::write(
        dir.join("m/alerts/production.yaml"),
        format!(
            "apiVersion: tether.dev/v1\nkind: Alert\nmetadata: {{name: everything}}\nspec:\n  receivers:\n    - webhook: {{url: \"http://{hooks}/hook\", hmacKey: \"k\"}}\n    - slack: {{url: \"http://{hooks}/slack\"}}\n    - discord: {{url: \"http://{hooks}/discord\"}}\n"
        ),
    )
    .unwrap();
    let mut captured: Vec<(String, Vec<u8>)> = Vec::new();
    let mut record = |name: &str, (code, out, err): (Option<i32>, Vec<u8>, Vec<u8>)| {
        captured.push((format!("{name} stdout"), out));
        captured.push((format!("{name} stderr"), err));
        code
    };
    // The canary becomes a secret on every platform.
    for (env, key) in [
        ("prod-backend", "JWT_SECRET"),
        ("prod-customer", "SESSION_SECRET"),
        ("prod-database", "STRIPE_WEBHOOK_SECRET"),
        ("staging-backend", "CANARY_ONLY"),
    ] {
        let code = record(
            &format!("secret set {env}"),
            run(
                dir,
                &["secret", "set", env, key, "--manifests", "m"],
                Some(CANARY),
                &[],
            ),
        );
        assert_eq!(code, Some(0));
    }
    assert_eq!(
        record("validate", run(dir, &["validate", "m"], None, &[])),
        Some(0)
    );
    record(
        "validate json",
        run(dir, &["validate", "m", "-o", "json"], None, &[]),
    );
    assert_eq!(
        record(
            "plan",
            run(
                dir,
                &["plan", "m", "--offline", "--state-dir", "state"],
                None,
                &[]
            )
        ),
        Some(2)
    );
    record(
        "plan json",
        run(
            dir,
            &[
                "plan",
                "m",
                "--offline",
                "--state-dir",
                "state",
                "-o",
                "json",
                "--log-format",
                "json",
            ],
            None,
            &[],
        ),
    );

    // A full reconcile against a simulator that faults 30 % of requests, some with errors that
    // quote the request body (and so the secret).
    let keyring = support::harness::demo_keyring();
    let fp = keyring.fingerprinter();
    let desired = tether::manifest::load(
        &dir.join("m"),
        &tether::manifest::SecretContext {
            keyring: Some(&keyring),
            fingerprinter: &fp,
            key_source: "t",
            decrypt: tether::manifest::Decrypt::All,
        },
    )
    .unwrap();
    let config = SimConfig {
        timings: fast(),
        faults: Faults {
            rate: 0.3,
            seed: 3,
            retry_after_secs: 0,
            echo_body: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let sim = Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        config,
        Seed::from_desired(&desired),
    )
    .await
    .unwrap();
    let env = sim_env(&sim);
    let d = dir.to_path_buf();
    let e2 = env.clone();
    let r = tokio::task::spawn_blocking(move || {
        run(
            &d,
            &once_args("90s", &["--follow", "50ms", "--log-format", "json", "-vv"]),
            None,
            &e2,
        )
    })
    .await
    .unwrap();
    assert_eq!(record("run --once (faults)", r), Some(0));
    let echoed = sim
        .requests()
        .iter()
        .filter(|r| r.faulted && r.status == 500)
        .count();
    assert!(echoed > 0, "some errors quoted request bodies");
    // The platforms did receive the canary (tether is not hiding it from them).
    assert!(
        serde_json::to_string(&sim.state())
            .unwrap()
            .contains(CANARY)
    );

    // Drift and a rejected token: more error paths.
    sim.set_faults(Faults::default());
    let d = dir.to_path_buf();
    let mut bad = env.clone();
    bad[3].1 = "wrong-token".into();
    let r = tokio::task::spawn_blocking(move || {
        run(
            &d,
            &once_args("20s", &["--log-format", "json", "-vv"]),
            None,
            &bad,
        )
    })
    .await
    .unwrap();
    record("run --once (bad token)", r);
    record(
        "status",
        run(dir, &["status", "--status-dir", "status"], None, &[]),
    );
    record(
        "status json",
        run(
            dir,
            &["status", "--status-dir", "status", "-o", "json"],
            None,
            &[],
        ),
    );
    record(
        "plan (observing)",
        run(
            dir,
            &["plan", "m", "--state-dir", "state", "-o", "json"],
            None,
            &env,
        ),
    );
    record(
        "rotate",
        run(dir, &["secret", "rotate", "--manifests", "m"], None, &[]),
    );
    // Secrets for teams: validation without a key and with the staging identity only, a
    // rule that changes (a warning, then updatekeys), identities given as text, a plan that
    // cannot open production, and a staging-only daemon.
    let rest = support::harness::identity_files()[1].display().to_string();
    let only_rest = [("TETHER_AGE_KEY_FILE", rest.clone())];
    let no_key = [("TETHER_AGE_KEY_FILE", String::new())];
    assert_eq!(
        record(
            "validate (no key)",
            run(dir, &["validate", "m"], None, &no_key)
        ),
        Some(0)
    );
    assert_eq!(
        record(
            "validate json (staging key)",
            run(dir, &["validate", "m", "-o", "json"], None, &only_rest)
        ),
        Some(0)
    );
    let extra = tmp.path().join("extra.txt");
    let (_, out, _) = run(
        dir,
        &["secret", "keygen", "--output", extra.to_str().unwrap()],
        None,
        &[],
    );
    let extra_recipient = String::from_utf8_lossy(&out).trim().to_string();
    let cfg_path = dir.join("m/.tether.yaml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(&cfg_path, format!("{cfg}  - {extra_recipient}\n")).unwrap();
    let r = run(dir, &["validate", "m"], None, &no_key);
    assert!(String::from_utf8_lossy(&r.2).contains("warning: "));
    assert_eq!(record("validate (rule changed)", r), Some(0));
    assert_eq!(
        record(
            "updatekeys",
            run(
                dir,
                &["secret", "updatekeys", "--manifests", "m"],
                None,
                &[]
            )
        ),
        Some(0)
    );
    let both_keys: String = support::harness::identity_files()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(
        record(
            "validate (TETHER_AGE_KEY)",
            run(
                dir,
                &["validate", "--decrypt", "m"],
                None,
                &[
                    ("TETHER_AGE_KEY_FILE", String::new()),
                    ("TETHER_AGE_KEY", both_keys)
                ]
            )
        ),
        Some(0)
    );
    record(
        "plan (staging key)",
        run(
            dir,
            &["plan", "m", "--offline", "--state-dir", "state"],
            None,
            &only_rest,
        ),
    );
    let d = dir.to_path_buf();
    let mut staging_env = env.clone();
    staging_env.push(("TETHER_AGE_KEY_FILE", rest.clone()));
    let r = tokio::task::spawn_blocking(move || {
        // A shard of its own: its own state and status directories.
        let args: Vec<&str> = once_args(
            "60s",
            &[
                "--follow",
                "50ms",
                "-l",
                "tier=staging",
                "--log-format",
                "json",
                "-vv",
            ],
        )
        .into_iter()
        .map(|a| match a {
            "state" => "state-staging",
            "status" => "status-staging",
            a => a,
        })
        .collect();
        run(&d, &args, None, &staging_env)
    })
    .await
    .unwrap();
    assert_eq!(record("run --once (staging key)", r), Some(0));
    let (code, out, err) = run(
        dir,
        &[
            "secret",
            "reveal",
            "staging-backend",
            "CANARY_ONLY",
            "--manifests",
            "m",
        ],
        None,
        &only_rest,
    );
    assert_eq!(
        (code, String::from_utf8_lossy(&out).trim()),
        (Some(0), CANARY)
    );
    captured.push(("reveal (staging key) stderr".into(), err));

    // reveal is the one command meant to print a value; its stderr is still searched.
    let (code, out, err) = run(
        dir,
        &[
            "secret",
            "reveal",
            "prod-backend",
            "JWT_SECRET",
            "--manifests",
            "m",
        ],
        None,
        &[],
    );
    assert_eq!(
        (code, String::from_utf8_lossy(&out).trim()),
        (Some(0), CANARY)
    );
    captured.push(("reveal stderr".into(), err));

    let sent = sink.got.lock().unwrap().clone();
    assert!(
        sent.iter().any(|g| g.path == "/hook") && sent.len() >= 3,
        "alerts were delivered: {} messages",
        sent.len()
    );
    for g in sent {
        let headers: Vec<u8> = g
            .headers
            .iter()
            .flat_map(|(k, v)| [k.as_str().as_bytes(), b": ", v.as_bytes(), b"\n"].concat())
            .collect();
        captured.push((
            format!("alert message to {}", g.path),
            [g.raw, headers].concat(),
        ));
    }
    let mut files = Vec::new();
    walk(&dir.join("status"), &mut files);
    walk(&dir.join("state"), &mut files);
    walk(&dir.join("status-staging"), &mut files);
    walk(&dir.join("state-staging"), &mut files);
    assert!(
        files.len() > 20,
        "status files and the sled database were written: {files:?}"
    );
    for f in files {
        captured.push((f.display().to_string(), std::fs::read(&f).unwrap()));
    }
    let logs: usize = captured
        .iter()
        .filter(|(n, _)| n.contains("stderr"))
        .map(|(_, b)| b.len())
        .sum();
    assert!(logs > 10_000, "trace logs were captured ({logs} bytes)");
    for (name, bytes) in &captured {
        for (form, needle) in forms() {
            assert!(
                !find(bytes, &needle),
                "the canary ({form}) leaked into {name}"
            );
        }
    }
}
