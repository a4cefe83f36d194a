//! Secrets for teams: creation rules pick recipients per environment, validate warns about a
//! secret encrypted to the wrong ones, updatekeys moves secrets between rules, a daemon or a
//! reveal needs only the identity of what it touches, and TETHER_AGE_KEY and SSH keys work.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::harness::{age_tool, copy_dir, fast, identity_files, once_args, root, sim_env};
use tether::manifest::edit;
use tether::secret::{Keyring, encrypt, parse_recipients};
use tether::simulate::{Seed, SimConfig, Simulator};

const PROD: &str = "age1clyxyw7feckat2hjj34zuqj4sqrq4lqxtlx8n829qdm9rk9tva9q36f9nm";
const REST: &str = "age1y8qm2j6gn26ywccda9wdldvqyakaekrz4rqplguqey8uuylen9lq270nnz";

fn prod_key() -> PathBuf {
    identity_files()[0].clone()
}

fn rest_key() -> PathBuf {
    identity_files()[1].clone()
}

/// `tether ARGS` in `dir` with exactly the identities given (files, and TETHER_AGE_KEY text).
fn tether(dir: &Path, args: &[&str], files: &[&Path], inline: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.args(args)
        .current_dir(dir)
        .env_remove("TETHER_AGE_KEY_FILE")
        .env_remove("TETHER_AGE_KEY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    if !files.is_empty() {
        let list: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        c.env("TETHER_AGE_KEY_FILE", list.join(","));
    }
    if let Some(k) = inline {
        c.env("TETHER_AGE_KEY", k);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn scratch() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples/vocilia"), &tmp.path().join("m"));
    tmp
}

/// Replaces the ciphertext at `path` of document `doc` in `file`.
fn put_ciphertext(file: &Path, doc: usize, path: &str, ct: &str) {
    let t = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, edit::replace_secret(&t, doc, path, ct).unwrap()).unwrap();
}

fn reveal(dir: &Path, env: &str, key: &str, files: &[&Path]) -> Output {
    tether(
        dir,
        &["secret", "reveal", env, key, "--manifests", "m"],
        files,
        None,
    )
}

/// The lines of a manifest that are not ciphertext: what updatekeys must keep byte for byte.
fn layout(file: &Path) -> Vec<String> {
    let t = std::fs::read_to_string(file).unwrap();
    let mut inside = false;
    let mut out = Vec::new();
    for l in t.lines() {
        if l.contains("-----BEGIN AGE") {
            inside = true;
        }
        if !inside {
            out.push(l.to_string());
        }
        if l.contains("-----END AGE") {
            inside = false;
        }
    }
    out
}

#[test]
fn a_secret_encrypted_to_another_rules_recipients_is_a_warning_naming_file_key_and_recipients() {
    let tmp = scratch();
    let file = tmp.path().join("m/backend/variables.yaml");
    // prod-backend's DATABASE_URL (first document) encrypted to the staging recipient.
    let ct = encrypt(
        "postgres://leaked-to-staging",
        &parse_recipients(&[REST.into()]).unwrap(),
    )
    .unwrap();
    put_ciphertext(&file, 0, "spec.entries.DATABASE_URL.secret", &ct);
    let want = "m/backend/variables.yaml:15:5: spec.entries.DATABASE_URL: prod-backend/DATABASE_URL is not encrypted to the recipients rule production (selector tier=production) names (age1clyxyw…36f9nm)";
    // Without any key: the recipients recorded in the header differ.
    let out = tether(tmp.path(), &["validate", "m"], &[], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("warning: {want}: it is not encrypted to age1clyxyw…36f9nm; it is encrypted to 1 recipient the rule does not name; `tether secret updatekeys` re-encrypts it")), "{err}");
    assert_eq!(err.matches("warning:").count(), 1, "{err}");

    // Written by the age tool (nothing recorded), checked with the staging identity: it
    // opens a production secret, which the rule forbids.
    let ct = text(
        &age_tool(
            &["-e", "-a", "-r", REST].map(std::ffi::OsStr::new),
            b"postgres://by-the-age-tool",
        )
        .stdout,
    );
    put_ciphertext(&file, 0, "spec.entries.DATABASE_URL.secret", &ct);
    let out = tether(tmp.path(), &["validate", "m"], &[&rest_key()], None);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("warning: {want}: the identity of age1y8qm2j…270nnz opens it, but the rule does not name it")),
        "{err}"
    );
    assert!(
        text(&out.stdout).contains("\n1 secret does not record its recipients"),
        "{}",
        text(&out.stdout)
    );
    // The JSON output carries the warning for CI.
    let out = tether(
        tmp.path(),
        &["validate", "m", "--output", "json"],
        &[&rest_key()],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["warnings"][0]["path"], "spec.entries.DATABASE_URL");
    assert_eq!(v["warnings"][0]["line"], 15);
    // The eight other production secrets and production's two alert secrets; the staging
    // identity opens the misplaced one.
    assert_eq!(v["notDecrypted"], 10);
}

#[test]
fn updatekeys_moves_production_secrets_to_a_new_key_keeping_values_and_layout() {
    let tmp = scratch();
    let m = tmp.path().join("m");
    let before = text(&reveal(tmp.path(), "prod-backend", "DATABASE_URL", &[&prod_key()]).stdout);
    assert!(before.starts_with("postgresql://"), "{before}");
    let layouts: Vec<Vec<String>> = ["backend/variables.yaml", "database/backup.yaml"]
        .iter()
        .map(|f| layout(&m.join(f)))
        .collect();
    // Nothing to do while every secret matches its rule; no key needed to find that out.
    let out = tether(
        tmp.path(),
        &["secret", "updatekeys", "--manifests", "m"],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "re-encrypted 0 of 28 secrets in 0 files to their rules' recipients; 28 already match"
    );
    // The production rule gets a new key.
    let new_key = tmp.path().join("new-prod.txt");
    let out = tether(
        tmp.path(),
        &["secret", "keygen", "--output", new_key.to_str().unwrap()],
        &[],
        None,
    );
    let new_recipient = text(&out.stdout).trim().to_string();
    let cfg = std::fs::read_to_string(m.join(".tether.yaml")).unwrap();
    std::fs::write(
        m.join(".tether.yaml"),
        cfg.replace(
            &format!("      - {PROD}"),
            &format!("      - {new_recipient}"),
        ),
    )
    .unwrap();
    // Without the production identity it cannot, and writes nothing.
    let out = tether(
        tmp.path(),
        &["secret", "updatekeys", "--manifests", "m"],
        &[&rest_key()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("m/backend/variables.yaml: spec.entries.DATABASE_URL.secret: cannot re-encrypt it (it is not encrypted to age1"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    // The production identity alone is enough for the production environments.
    let out = tether(
        tmp.path(),
        &[
            "secret",
            "updatekeys",
            "--manifests",
            "m",
            "--selector",
            "tier=production",
        ],
        &[&prod_key()],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "re-encrypted 9 of 9 secrets in 6 files to their rules' recipients"
    );
    // Production's alert receivers belong to no environment: without a selector, the
    // production identity moves them too, and nothing else needs a key.
    let out = tether(
        tmp.path(),
        &["secret", "updatekeys", "--manifests", "m"],
        &[&prod_key()],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "re-encrypted 2 of 28 secrets in 1 files to their rules' recipients; 26 already match"
    );
    // The value is the same; the new identity opens it, the old one no longer does.
    let after = reveal(tmp.path(), "prod-backend", "DATABASE_URL", &[&new_key]);
    assert_eq!(text(&after.stdout), before);
    let old = reveal(tmp.path(), "prod-backend", "DATABASE_URL", &[&prod_key()]);
    assert_eq!(old.status.code(), Some(1));
    assert!(
        text(&old.stderr).contains("can decrypt prod-backend/DATABASE_URL; rule production (selector tier=production) encrypts it to age1"),
        "{}",
        text(&old.stderr)
    );
    // Comments, order and every other line are as they were; staging is untouched.
    for (f, l) in ["backend/variables.yaml", "database/backup.yaml"]
        .iter()
        .zip(&layouts)
    {
        assert_eq!(&layout(&m.join(f)), l, "{f}");
    }
    let out = tether(
        tmp.path(),
        &["validate", "--decrypt", "m"],
        &[&new_key, &rest_key()],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "no warnings once moved");
}

#[test]
fn reveal_with_the_staging_identity_reveals_staging_only() {
    let tmp = scratch();
    let out = reveal(
        tmp.path(),
        "staging-backend",
        "DATABASE_URL",
        &[&rest_key()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("postgresql://"));
    let out = reveal(tmp.path(), "prod-backend", "DATABASE_URL", &[&rest_key()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no identity in TETHER_AGE_KEY_FILE")
            && text(&out.stderr).contains("can decrypt prod-backend/DATABASE_URL; rule production"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn tether_age_key_holds_the_identities_themselves() {
    let tmp = scratch();
    let both = format!(
        "{}{}",
        std::fs::read_to_string(prod_key()).unwrap(),
        std::fs::read_to_string(rest_key()).unwrap()
    );
    let out = tether(
        tmp.path(),
        &["validate", "--decrypt", "m"],
        &[],
        Some(&both),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Together with a file, and a bad one named without showing it.
    let out = tether(
        tmp.path(),
        &["validate", "--decrypt", "m"],
        &[&rest_key()],
        Some(&std::fs::read_to_string(prod_key()).unwrap()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = tether(
        tmp.path(),
        &["validate", "m"],
        &[],
        Some("AGE-SECRET-KEY-1NOTAKEY"),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("TETHER_AGE_KEY has an invalid age identity on line 1"),
        "{err}"
    );
    assert!(!err.contains("NOTAKEY"), "{err}");
}

#[test]
fn an_ssh_ed25519_key_is_a_recipient_and_an_identity() {
    let tmp = scratch();
    let m = tmp.path().join("m");
    let key = tmp.path().join("id_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ops@example", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (openssh-client; scripts/install-test-deps installs it)");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    // Production secrets go to the SSH key as well as the production identity.
    let cfg = std::fs::read_to_string(m.join(".tether.yaml")).unwrap();
    std::fs::write(
        m.join(".tether.yaml"),
        cfg.replace(
            &format!("      - {PROD}\n"),
            &format!("      - {PROD}\n      - \"{}\"\n", public.trim()),
        ),
    )
    .unwrap();
    let out = tether(tmp.path(), &["validate", "m"], &[], None);
    assert!(
        text(&out.stderr).contains("(age1clyxyw…36f9nm, ssh-ed25519 AAAAC3Nz…")
            && text(&out.stderr).contains("): it is not encrypted to ssh-ed25519 AAAAC3Nz"),
        "{}",
        text(&out.stderr)
    );
    let out = tether(
        tmp.path(),
        &["secret", "updatekeys", "--manifests", "m"],
        &[&prod_key()],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "re-encrypted 11 of 28 secrets in 7 files to their rules' recipients; 17 already match"
    );
    // The SSH key alone reveals a production secret, and so does the age tool with it.
    let out = reveal(
        tmp.path(),
        "prod-database",
        "STRIPE_WEBHOOK_SECRET",
        &[&key],
    );
    assert_eq!(
        text(&out.stdout),
        "whsec_demo_prod_7f3a9c\n",
        "{}",
        text(&out.stderr)
    );
    let yaml = std::fs::read_to_string(m.join("database/secrets.yaml")).unwrap();
    let start = yaml.find("-----BEGIN AGE").unwrap();
    let end = yaml[start..]
        .find("-----END AGE ENCRYPTED FILE-----")
        .unwrap()
        + start
        + 32;
    let ct: String = yaml[start..end]
        .lines()
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    let out = age_tool(
        &["-d".as_ref(), "-i".as_ref(), key.as_os_str()],
        ct.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "whsec_demo_prod_7f3a9c");
    // The keyring reports the SSH key's recipient as written in the .pub file.
    let ring = Keyring::load(&key).unwrap();
    let mut fields = public.split_whitespace();
    assert_eq!(
        ring.recipients(),
        vec![format!(
            "{} {}",
            fields.next().unwrap(),
            fields.next().unwrap()
        )]
    );
    // A passphrase-protected key is refused with the reason.
    let locked = tmp.path().join("locked");
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "hunter22", "-f"])
        .arg(&locked)
        .output()
        .unwrap();
    let out = tether(tmp.path(), &["validate", "m"], &[&locked], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("holds an SSH key tether cannot use: it is protected by a passphrase"),
        "{}",
        text(&out.stderr)
    );
}

/// A daemon that manages staging needs only the staging identity; one that manages
/// production with it refuses, naming the environment and the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staging_daemon_converges_staging_with_only_the_staging_identity() {
    let tmp = scratch();
    let d = support::harness::World::vocilia_desired();
    let sim = Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            timings: fast(),
            ..Default::default()
        },
        Seed::from_desired(&d),
    )
    .await
    .unwrap();
    let run = |selector: &'static str| {
        let mut args = once_args("60s", &["--follow", "50ms", "--selector"]);
        args.push(selector);
        let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
        c.args(&args)
            .current_dir(tmp.path())
            .env("TETHER_AGE_KEY_FILE", rest_key())
            .env_remove("TETHER_AGE_KEY")
            .env("RUST_LOG", "warn")
            .envs(sim_env(&sim));
        c
    };
    let mut c = run("tier=staging");
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("status/index.json")).unwrap())
            .unwrap();
    let envs: Vec<String> = index["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(envs.len(), 5, "{envs:?}");
    assert!(envs.iter().all(|e| e.starts_with("staging-")), "{envs:?}");
    // The staging database URL reached Railway as written.
    let staging_url = text(
        &reveal(
            tmp.path(),
            "staging-backend",
            "DATABASE_URL",
            &[&rest_key()],
        )
        .stdout,
    );
    let sent = sim.requests().iter().any(|r| {
        r.body
            .as_ref()
            .is_some_and(|b| b.to_string().contains(staging_url.trim()))
    });
    assert!(sent, "the staging DATABASE_URL was written");
    // Planned against the cache with the staging identity: nothing to do. Without any key the
    // values cannot be compared; the plan says so rather than showing changes.
    let plan = |files: &[&Path]| {
        tether(
            tmp.path(),
            &[
                "plan",
                "m",
                "--offline",
                "--state-dir",
                "state",
                "-l",
                "tier=staging",
            ],
            files,
            None,
        )
    };
    let out = plan(&[&rest_key()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = plan(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("variable values are not compared (the cache was fingerprinted with other age identities than those held now): shown as unchanged"),
        "{}",
        text(&out.stderr)
    );

    let mut c = run("tier=production");
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("can decrypt prod-backend/DATABASE_URL; rule production (selector tier=production) encrypts it to age1clyxyw…36f9nm"),
        "{err}"
    );
}
