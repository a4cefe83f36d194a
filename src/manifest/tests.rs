//! One case per validation rule not covered by `examples/invalid`: each asserts the field path
//! and the message, so removing the rule fails its case.

use super::*;
use crate::secret::Fingerprinter;

const BASE: &str = r#"
apiVersion: tether.dev/v1
kind: Environment
metadata: {name: api}
spec: {platform: railway, app: backend, type: production, railway: {project: p, environment: production, service: api}}
---
apiVersion: tether.dev/v1
kind: Environment
metadata: {name: web}
spec: {platform: vercel, app: web, type: production, vercel: {project: web, target: production}}
---
apiVersion: tether.dev/v1
kind: Environment
metadata: {name: db}
spec: {platform: supabase, app: database, type: production, supabase: {projectRef: abcdefghijklmnopqrst}}
---
apiVersion: tether.dev/v1
kind: Monitor
metadata: {name: web-health}
spec: {environment: web, url: "https://web.example.com/health"}
"#;

fn errors(extra: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.yaml"), BASE).unwrap();
    std::fs::write(dir.path().join("case.yaml"), extra).unwrap();
    let fp = Fingerprinter::from_seed(b"t");
    match load(
        dir.path(),
        &SecretContext {
            keyring: None,
            fingerprinter: &fp,
            key_source: "TETHER_AGE_KEY_FILE",
            decrypt: crate::manifest::Decrypt::All,
        },
    ) {
        Ok(_) => vec![],
        Err(d) => {
            d.0.iter()
                .map(|d| format!("{}: {}", d.path, d.message))
                .collect()
        }
    }
}

fn assert_error(extra: &str, path: &str, needle: &str) {
    let errs = errors(extra);
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(needle)),
        "expected {path}: …{needle}… in {errs:#?}"
    );
}

fn doc(kind: &str, name: &str, spec: &str) -> String {
    format!("apiVersion: tether.dev/v1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec: {spec}\n")
}

#[test]
fn the_base_is_valid() {
    assert_eq!(errors(""), Vec::<String>::new());
}

#[test]
fn environment_rules() {
    assert_error(
        &doc(
            "Environment",
            "x",
            "{platform: railway, app: a, type: staging}",
        ),
        "spec",
        "spec.railway must say which Railway target",
    );
    assert_error(
        &doc(
            "Environment",
            "x",
            "{platform: railway, app: a, type: staging, railway: {project: p, environment: e, service: s}, vercel: {project: v, target: production}}",
        ),
        "spec.vercel",
        "spec.vercel is set but platform is railway",
    );
    assert_error(
        &doc(
            "Environment",
            "x",
            "{platform: vercel, app: a, type: staging, vercel: {project: v, target: production, gitBranch: staging}}",
        ),
        "spec.vercel.gitBranch",
        "only to target: preview",
    );
    assert_error(
        &doc(
            "Environment",
            "x",
            "{platform: railway, app: a, type: staging, railway: {project: '', environment: e, service: s}}",
        ),
        "spec.railway.project",
        "must not be empty",
    );
    assert_error(
        &doc(
            "Environment",
            "Bad_Name",
            "{platform: railway, app: a, type: staging, railway: {project: p, environment: e, service: s}}",
        ),
        "metadata.name",
        "lowercase letters",
    );
    assert_error(
        "apiVersion: tether.dev/v1\nkind: Environment\nmetadata: {name: x, labels: {'a b': c}}\nspec: {platform: railway, app: a, type: staging, railway: {project: p, environment: e, service: s}}\n",
        "metadata.labels.a b",
        "label key",
    );
    assert_error(
        &doc(
            "Environment",
            "x",
            "{platform: heroku, app: a, type: staging}",
        ),
        "spec.platform",
        "unknown variant `heroku`",
    );
}

#[test]
fn variables_and_requirements_rules() {
    assert_error(
        &doc(
            "Variables",
            "v",
            "{environment: db, entries: {BIG: {secret: x, other: y}}}",
        ),
        "spec.entries.BIG",
        "",
    );
    assert_error(
        &doc("Requirements", "r", "{environmentType: production}"),
        "spec",
        "at least one name",
    );
    assert_error(
        &doc(
            "Requirements",
            "r",
            "{environmentType: production, variables: [9X]}",
        ),
        "spec.variables[0]",
        "variable names must match",
    );
    let big = "x".repeat(24_577);
    assert_error(
        &doc(
            "Variables",
            "v",
            &format!("{{environment: db, entries: {{HUGE: {big}}}}}"),
        ),
        "spec.entries.HUGE",
        "at most 24576",
    );
    let web_big = "y".repeat(70_000);
    assert_error(
        &doc(
            "Variables",
            "v",
            &format!("{{environment: web, entries: {{HUGE: {web_big}}}}}"),
        ),
        "spec.entries",
        "Vercel allows 65536",
    );
}

#[test]
fn domain_and_certificate_rules() {
    assert_error(
        &doc(
            "Domain",
            "d",
            "{name: a.example.com, environment: web, port: 80}",
        ),
        "spec.port",
        "only to Railway",
    );
    assert_error(
        &doc(
            "Domain",
            "d",
            "{name: a.example.com, environment: api, port: 0}",
        ),
        "spec.port",
        "between 1 and 65535",
    );
    assert_error(
        &doc(
            "Domain",
            "d",
            "{name: a.example.com, environment: api, target: 'not a host'}",
        ),
        "spec.target",
        "hostname",
    );
    assert_error(
        &doc("Certificate", "c", "{domain: nowhere.example.com}"),
        "spec.domain",
        "no Domain manifest",
    );
    assert_error(
        &format!(
            "{}---\n{}---\n{}",
            doc("Domain", "d", "{name: a.example.com, environment: api}"),
            doc("Certificate", "c1", "{domain: a.example.com}"),
            doc("Certificate", "c2", "{domain: a.example.com}")
        ),
        "spec.domain",
        "already has a Certificate",
    );
    assert_error(
        &format!(
            "{}---\n{}",
            doc("Domain", "d", "{name: a.example.com, environment: api}"),
            doc(
                "Certificate",
                "c",
                "{domain: a.example.com, warningDays: 5, criticalDays: 0}"
            )
        ),
        "spec.criticalDays",
        "at least 1",
    );
}

#[test]
fn deployment_rules() {
    let c = "aaaaaaa";
    assert_error(
        &doc(
            "Deployment",
            "d",
            &format!("{{environment: web, commit: {c}, branch: main}}"),
        ),
        "spec",
        "Vercel builds from git",
    );
    assert_error(
        &doc(
            "Deployment",
            "d",
            &format!("{{environment: db, commit: {c}, branch: main}}"),
        ),
        "spec.environment",
        "tether deploys only Railway and Vercel",
    );
    assert_error(
        &doc(
            "Deployment",
            "d",
            &format!("{{environment: api, commit: {c}, branch: 'a..b'}}"),
        ),
        "spec.branch",
        "not a valid git branch",
    );
    assert_error(
        &doc(
            "Deployment",
            "d",
            &format!("{{environment: api, commit: {c}, branch: main, healthGate: {{window: 2d}}}}"),
        ),
        "spec.healthGate.window",
        "at most 24h",
    );
    assert_error(
        &doc(
            "Deployment",
            "d",
            &format!(
                "{{environment: api, commit: {c}, branch: main, healthGate: {{monitors: [web-health]}}}}"
            ),
        ),
        "spec.healthGate.monitors[0]",
        "watches web, not api",
    );
    assert_error(
        &doc(
            "Deployment",
            "d",
            &format!(
                "{{environment: api, commit: {c}, branch: main, healthGate: {{monitors: [nope]}}}}"
            ),
        ),
        "spec.healthGate.monitors[0]",
        "no Monitor is named",
    );
    assert_error(
        &doc(
            "Deployment",
            "d",
            &format!(
                "{{environment: web, commit: {c}, branch: main, source: {{provider: github, repo: noslash}}}}"
            ),
        ),
        "spec.source.repo",
        "not owner/name",
    );
    assert_error(
        &format!(
            "{}---\n{}",
            doc(
                "Deployment",
                "d1",
                &format!("{{environment: api, commit: {c}, branch: main}}")
            ),
            doc(
                "Deployment",
                "d2",
                &format!("{{environment: api, commit: {c}, branch: main}}")
            )
        ),
        "spec.environment",
        "already has a Deployment",
    );
}

#[test]
fn monitor_rules() {
    let m = |extra: &str| {
        doc(
            "Monitor",
            "m",
            &format!("{{environment: api, url: 'https://a.example.com/h', {extra}}}"),
        )
    };
    assert_error(
        &m("timeout: 2m"),
        "spec.timeout",
        "between 100ms and the interval",
    );
    assert_error(&m("timeout: 10ms"), "spec.timeout", "between 100ms");
    assert_error(&m("interval: 2h"), "spec.interval", "between 5s and 1h");
    assert_error(
        &m("thresholds: {errorRate: {warning: 2, critical: 1}}"),
        "spec.thresholds.errorRate.warning",
        "must come before",
    );
    assert_error(
        &m("slo: {uptime: 120}"),
        "spec.slo.uptime",
        "not a percentage",
    );
    assert_error(&m("slo: {p95: 0s}"), "spec.slo.p95", "longer than zero");
    assert_error(
        &m("expect: {status: [700]}"),
        "spec.expect.status[0]",
        "not an HTTP status code",
    );
    assert_error(
        &m("expect: {jsonPath: {path: $, equals: ok}}"),
        "spec.expect.jsonPath.path",
        "must name a field",
    );
    assert_error(
        &m("maintenanceWindows: [{from: '2026-01-02T00:00:00Z'}]"),
        "spec.maintenanceWindows[0]",
        "either from and to, or weekly",
    );
    assert_error(
        &m("maintenanceWindows: [{from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z'}]"),
        "spec.maintenanceWindows[0].to",
        "end after it starts",
    );
    assert_error(
        &m("maintenanceWindows: [{weekly: {day: sun, start: '02:00', duration: 8d}}]"),
        "spec.maintenanceWindows[0].weekly.duration",
        "between 1s and 7 days",
    );
    assert_error(
        &doc(
            "Monitor",
            "m",
            "{environment: api, url: 'ftp://a.example.com'}",
        ),
        "spec.url",
        "http or https",
    );
    assert_error(&m("interval: soon"), "spec.interval", "is not a duration");
}

#[test]
fn backup_rules() {
    let b = |extra: &str| {
        doc(
            "BackupPolicy",
            "b",
            &format!(
                "{{environment: db, schedule: '0 3 * * *', storage: {{local: {{path: b}}}}, {extra}}}"
            ),
        )
    };
    assert_error(
        &b("databaseUrl: {}"),
        "spec.databaseUrl",
        "exactly one of secret or fromVariable",
    );
    assert_error(
        &b("databaseUrl: {fromVariable: NOPE}"),
        "spec.databaseUrl.fromVariable",
        "has no variable NOPE",
    );
    assert_error(
        &doc(
            "BackupPolicy",
            "b",
            "{environment: api, schedule: '0 3 * * *', storage: {local: {path: b}}, databaseUrl: {fromVariable: X}}",
        ),
        "spec.environment",
        "backup policies are for Supabase",
    );
    assert_error(
        &doc(
            "BackupPolicy",
            "b",
            "{environment: db, schedule: 'daily', storage: {local: {path: b}}, databaseUrl: {fromVariable: X}}",
        ),
        "spec.schedule",
        "five-field cron",
    );
    assert_error(
        &doc(
            "BackupPolicy",
            "b",
            "{environment: db, schedule: '99 3 * * *', storage: {local: {path: b}}, databaseUrl: {fromVariable: X}}",
        ),
        "spec.schedule",
        "not a valid cron",
    );
    assert_error(
        &doc(
            "BackupPolicy",
            "b",
            "{environment: db, schedule: '0 3 * * *', storage: {}, databaseUrl: {fromVariable: X}}",
        ),
        "spec.storage",
        "exactly one of local or s3",
    );
    assert_error(
        &doc(
            "BackupPolicy",
            "b",
            "{environment: db, schedule: '0 3 * * *', storage: {s3: {bucket: Bad_Bucket}}, databaseUrl: {fromVariable: X}}",
        ),
        "spec.storage.s3.bucket",
        "not a valid bucket",
    );
    assert_error(
        &b("databaseUrl: {secret: plaintext}"),
        "spec.databaseUrl.secret",
        "must be age ciphertext",
    );
}

#[test]
fn envelope_rules() {
    assert_error(
        "kind: Environment\nmetadata: {name: x}\nspec: {}\n",
        "",
        "missing field `apiVersion`",
    );
    assert_error(
        "apiVersion: tether.dev/v1\nmetadata: {name: x}\nspec: {}\n",
        "",
        "missing field `kind`",
    );
    assert_error("- a\n- b\n", "", "must be a mapping");
    assert_error(
        "apiVersion: tether.dev/v1\nkind: Domain\nmetadata: {name: x}\n",
        "",
        "missing field `spec`",
    );
}
