//! `tether validate`, `tether schema` and `tether plan` through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tether(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .current_dir(root())
        .env(
            "TETHER_AGE_KEY_FILE",
            "examples/demo-age-production.txt,examples/demo-age-rest.txt",
        )
        .env_remove("RUST_LOG")
        .output()
        .expect("run tether")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn vocilia_is_valid() {
    let out = tether(&["validate", "examples/vocilia"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("15 environments"),
        "{}",
        text(&out.stdout)
    );
}

/// `tether validate` without a key, in `dir`.
fn validate_without_a_key(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tether"))
        .arg("validate")
        .args(args)
        .current_dir(dir)
        .env_remove("TETHER_AGE_KEY_FILE")
        .output()
        .unwrap()
}

/// A pull-request check needs no key: the ciphertexts' structure is checked and the secrets
/// are counted as not decrypted; `--decrypt` insists on decrypting them.
#[test]
fn validation_needs_no_key_unless_asked_to_decrypt() {
    let out = validate_without_a_key(&root(), &["examples/vocilia"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains(
            "\n28 secrets not decrypted (no age identity): their ciphertexts are well-formed;"
        ),
        "{said}"
    );
    let out = validate_without_a_key(&root(), &["examples/vocilia", "--decrypt"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("examples/vocilia/backend/variables.yaml:15:5: spec.entries.DATABASE_URL: prod-backend/DATABASE_URL is a secret, but no age identity is configured: set TETHER_AGE_KEY_FILE or TETHER_AGE_KEY; rule production (selector tier=production) encrypts it to age1clyxyw…36f9nm"), "{err}");
    // A broken ciphertext is still an error without the key, at its file, line and field.
    let tmp = tempfile::tempdir().unwrap();
    copy(&root().join("examples/vocilia"), &tmp.path().join("m"));
    let file = tmp.path().join("m/backend/variables.yaml");
    let text_in = std::fs::read_to_string(&file).unwrap();
    // The first line of the first ciphertext holds the age header's start.
    let begin = text_in
        .find("-----BEGIN AGE ENCRYPTED FILE-----\n")
        .unwrap();
    let first = &text_in[begin..].lines().nth(1).unwrap().trim();
    let broken = text_in.replacen(first, "bm90LWFnZQo=", 1);
    assert_ne!(broken, text_in);
    std::fs::write(&file, broken).unwrap();
    let out = validate_without_a_key(tmp.path(), &["m"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("m/backend/variables.yaml:15:5: spec.entries.DATABASE_URL: the ciphertext of prod-backend/DATABASE_URL is corrupted"),
        "{err}"
    );
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Every file in examples/invalid breaks one rule; this is the exact list the loader prints.
#[test]
fn every_broken_rule_is_reported_at_once_with_file_line_and_field() {
    let out = tether(&["validate", "examples/invalid"]);
    assert_eq!(out.status.code(), Some(1));
    let expected = "\
examples/invalid/bad-api-version.yaml:1:1: apiVersion: apiVersion must be tether.dev/v1, found \"tether.dev/v2\"
examples/invalid/bad-commit.yaml:6:3: spec.commit: \"main\" is not a commit sha (7 to 40 hexadecimal characters)
examples/invalid/bad-hostname.yaml:5:3: spec.name: \"shop_front.example.com\" is not a valid hostname
examples/invalid/bad-key.yaml:7:5: spec.entries.1API_KEY: variable names must match [A-Za-z_][A-Za-z0-9_]*
examples/invalid/bad-supabase-ref.yaml:9:5: spec.supabase.projectRef: \"Staging-Project-1\" is not a Supabase project ref (20 lowercase letters)
examples/invalid/certificate-thresholds.yaml:6:3: spec.warningDays: the warning threshold (7 days) must come before the critical one (14 days): make warningDays larger
examples/invalid/domain-twice.yaml:5:3: spec.name: api.example.com is already attached to environment prod-api at examples/invalid/_base.yaml:17; a domain belongs to exactly one environment
examples/invalid/duplicate-name.yaml:3:12: metadata.name: Environment \"prod-api\" is defined twice; the first is at examples/invalid/_base.yaml:3
examples/invalid/duplicate-variable.yaml:9:41: spec.entries.NEXT_PUBLIC_API_URL: NEXT_PUBLIC_API_URL is already set for prod-web at examples/invalid/duplicate-variable.yaml:1
examples/invalid/interval-bounds.yaml:7:3: spec.interval: the interval must be between 5s and 1h, not 1s
examples/invalid/missing-required.yaml:7:15: spec.variables[0]: environment prod-web (examples/invalid/_base.yaml:7) has no NEXT_PUBLIC_SUPABASE_URL, which production-web requires of production environments
examples/invalid/monitor-thresholds.yaml:8:20: spec.thresholds.responseTime.warning: the warning threshold (3s) must come before the critical one (2s)
examples/invalid/not-yaml.yaml:4:5: not valid YAML: did not find expected ',' or '}'
examples/invalid/plaintext-secret.yaml:15:5: spec.entries.JWT_SECRET: prod-api/JWT_SECRET must be a secret (production-api marks it so): encrypt it with `tether secret set prod-api JWT_SECRET`
examples/invalid/reserved-railway.yaml:7:5: spec.entries.RAILWAY_STATIC_URL: names starting with RAILWAY_ are reserved by Railway
examples/invalid/reserved-supabase.yaml:7:5: spec.entries.SUPABASE_URL: names starting with SUPABASE_ are reserved by Supabase
examples/invalid/reserved-vercel.yaml:7:5: spec.entries.VERCEL_URL: names starting with VERCEL_ or NOW_ are reserved by Vercel
examples/invalid/reserved-vercel.yaml:8:5: spec.entries.TZ: TZ is a system variable reserved by Vercel
examples/invalid/retention-zero.yaml:9:5: spec.retention.daily: retention must be positive and at least 1 day, not 0s
examples/invalid/secret-not-ciphertext.yaml:7:5: spec.entries.STRIPE_KEY: prod-db/STRIPE_KEY must be age ciphertext (-----BEGIN AGE ENCRYPTED FILE-----); write it with `tether secret set`
examples/invalid/unknown-field.yaml:6:3: spec.enviroment: unknown field `enviroment`, expected one of `name`, `environment`, `cdn`, `target`, `port`
examples/invalid/unknown-kind.yaml:2:1: kind: unknown kind \"Database\"; expected one of Environment, Variables, Requirements, Domain, Certificate, Deployment, Monitor, BackupPolicy, Alert
examples/invalid/unresolved-reference.yaml:5:3: spec.environment: environment \"prod-mobile\" is not defined by any Environment manifest (known: prod-api, prod-db, prod-web, staging-db)
examples/invalid/wrong-type.yaml:7:3: spec.port: invalid type: string \"eighty\", expected u16
24 errors in examples/invalid; nothing was applied
";
    assert_eq!(text(&out.stderr), expected);
}

#[test]
fn json_output_lists_errors_for_ci() {
    let out = tether(&["validate", "examples/invalid", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"].as_array().unwrap().len(), 24);
    assert_eq!(v["errors"][3]["path"], "spec.entries.1API_KEY");
    assert_eq!(v["errors"][3]["line"], 7);
}

#[test]
fn committed_schemas_match_the_generated_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = tether(&["schema", "--write", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let committed = root().join("manifests/schema");
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names.len(), 10);
    for name in names {
        let fresh = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        let old = std::fs::read_to_string(committed.join(&name)).unwrap_or_default();
        assert!(
            fresh == old,
            "manifests/schema/{} is stale: run `cargo run -- schema --write manifests/schema`",
            name.to_string_lossy()
        );
    }
}

#[test]
fn every_example_manifest_names_its_schema() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml")
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
            {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("examples/vocilia"), &mut files);
    walk(&root().join("manifests/reference"), &mut files);
    assert!(files.len() > 20);
    for f in files {
        let first = std::fs::read_to_string(&f)
            .unwrap()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let schema = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{} lacks the schema line", f.display()));
        assert!(
            f.parent().unwrap().join(schema).is_file(),
            "{}: {schema} does not exist",
            f.display()
        );
    }
}

#[test]
fn schema_of_one_kind_and_unknown_kind() {
    let out = tether(&["schema", "monitor"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["properties"]["kind"]["const"], "Monitor");
    let out = tether(&["schema", "Pod"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown kind \"Pod\""));
}

#[test]
fn plan_lists_a_create_for_every_resource_and_exits_2() {
    let state = tempfile::tempdir().unwrap();
    let out = tether(&[
        "plan",
        "examples/vocilia",
        "--offline",
        "--state-dir",
        state.path().join("s").to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes = v["changes"].as_array().unwrap();
    let count = |action: &str, kind: &str| {
        changes
            .iter()
            .filter(|c| c["action"] == action && c["key"]["kind"] == kind)
            .count()
    };
    // 81 variables and 8 domains in examples/vocilia; 12 deployments.
    assert_eq!(count("create", "variable"), 81);
    assert_eq!(count("create", "domain"), 8);
    assert_eq!(count("deploy", "deployment"), 12);
    assert_eq!(v["summary"]["create"], 89);
    assert!(
        !text(&out.stdout).contains("demo-jwt"),
        "secrets are redacted"
    );
    assert!(text(&out.stdout).contains("(sensitive value)"));
}

#[test]
fn plan_exits_0_without_changes_and_1_on_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("env.yaml"), "apiVersion: tether.dev/v1\nkind: Environment\nmetadata: {name: a}\nspec: {platform: railway, app: api, type: staging, railway: {project: p, environment: e, service: s}}\n").unwrap();
    let state = dir.path().join("state");
    let out = tether(&[
        "plan",
        dir.path().to_str().unwrap(),
        "--offline",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("No changes"));
    let out = tether(&["plan", "examples/invalid"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("bad-key.yaml:7:5"));
}

#[test]
fn help_documents_commands_and_exit_codes() {
    let out = tether(&["--help"]);
    let help = text(&out.stdout);
    for needle in [
        "validate",
        "plan",
        "schema",
        "Exit codes:",
        "2  plan: there are changes",
        "TETHER_AGE_KEY_FILE",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

#[test]
fn reference_manifests_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(root().join("manifests/reference")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    // The environments the reference manifests refer to.
    std::fs::write(dir.path().join("z-environments.yaml"), "\
apiVersion: tether.dev/v1
kind: Environment
metadata: {name: prod-customer}
spec: {platform: vercel, app: customer, type: production, vercel: {project: vocilia-customer, target: production}}
---
apiVersion: tether.dev/v1
kind: Environment
metadata: {name: prod-database}
spec: {platform: supabase, app: database, type: production, supabase: {projectRef: abcdefghijklmnopqrst}}
---
apiVersion: tether.dev/v1
kind: Variables
metadata: {name: db}
spec: {environment: prod-database, entries: {DATABASE_URL: postgres://localhost/postgres}}
").unwrap();
    let out = tether(&["validate", dir.path().to_str().unwrap()]);
    // The backend's DATABASE_URL is required as a secret and the reference leaves it out.
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("has no DATABASE_URL, which production-backend requires"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2, "only the deliberate gap: {err}");
}
