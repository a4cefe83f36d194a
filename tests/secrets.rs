//! Secrets: interop with the `age` command both ways, `tether secret` keygen/set/rotate/reveal,
//! and the errors validate gives for missing, wrong and corrupted keys.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::harness::{age_tool, copy_dir, demo_keyring, identity, identity_files, root};
use tether::secret::{encrypt, parse_recipients};

fn age_bin(name: &str) -> String {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!("`{name}` is missing: install the Debian package age (scripts/install-test-deps does)");
}

fn tether(dir: &Path, args: &[&str], stdin: Option<&str>, key: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.args(args)
        .current_dir(dir)
        .env_remove("TETHER_AGE_KEY_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = key {
        c.env("TETHER_AGE_KEY_FILE", k);
    }
    let mut child = c.spawn().unwrap();
    let mut sin = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        sin.write_all(s.as_bytes()).unwrap();
    }
    drop(sin);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn age_interop_both_ways() {
    let ring = demo_keyring();
    let recipient = ring.recipients()[0].clone();
    // The age tool encrypts; tether decrypts.
    let out = age_tool(
        &["-e", "-a", "-r", &recipient].map(std::ffi::OsStr::new),
        b"from the age tool",
    );
    assert!(out.status.success());
    assert_eq!(
        ring.decrypt(&text(&out.stdout)).unwrap().expose(),
        "from the age tool"
    );
    // tether encrypts; the age tool decrypts.
    let ct = encrypt("from tether", &parse_recipients(&[recipient]).unwrap()).unwrap();
    let out = age_tool(
        &[
            "-d".as_ref(),
            "-i".as_ref(),
            identity_files()[0].as_os_str(),
        ],
        ct.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from tether");
}

#[test]
fn keygen_writes_a_private_identity_that_age_keygen_agrees_with() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tether(
        tmp.path(),
        &["secret", "keygen", "--output", "id.txt"],
        None,
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let recipient = text(&out.stdout).trim().to_string();
    assert!(recipient.starts_with("age1"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(tmp.path().join("id.txt"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let y = Command::new(age_bin("age-keygen"))
        .args(["-y", "id.txt"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(
        text(&y.stdout).trim(),
        recipient,
        "age-keygen derives the same recipient"
    );
    let again = tether(
        tmp.path(),
        &["secret", "keygen", "--output", "id.txt"],
        None,
        None,
    );
    assert_eq!(again.status.code(), Some(1), "never overwrites an identity");
}

#[test]
fn set_reveal_and_rotate_keep_the_files_comments_and_order() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    copy_dir(&root().join("examples/vocilia"), &m);
    let file = m.join("backend/variables.yaml");
    let before = std::fs::read_to_string(&file).unwrap();
    // A new secret, and an existing plain value turned secret.
    let out = tether(
        tmp.path(),
        &[
            "secret",
            "set",
            "prod-backend",
            "WEBHOOK_TOKEN",
            "--manifests",
            "m",
        ],
        Some("tok-123\n"),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!(
            "set prod-backend/WEBHOOK_TOKEN in {}, encrypted to age1clyxyw…36f9nm (rule production (selector tier=production))",
            Path::new("m/backend/variables.yaml").display()
        )
    );
    let out = tether(
        tmp.path(),
        &[
            "secret",
            "set",
            "prod-backend",
            "LOG_LEVEL",
            "--manifests",
            "m",
        ],
        Some("info"),
        None,
    );
    assert!(out.status.success());
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(
        after.starts_with("# yaml-language-server: $schema="),
        "the schema line stays"
    );
    assert!(!after.contains("tok-123"));
    // Only prod-backend's document changed: the others are byte for byte the same.
    let tail = |s: &str| s[s.find("name: staging-backend").unwrap()..].to_string();
    assert_eq!(tail(&before), tail(&after));
    let reveal = |k: &str| {
        tether(
            tmp.path(),
            &["secret", "reveal", "prod-backend", k, "--manifests", "m"],
            None,
            Some(&identity()),
        )
    };
    assert_eq!(text(&reveal("WEBHOOK_TOKEN").stdout), "tok-123\n");
    assert_eq!(text(&reveal("LOG_LEVEL").stdout), "info\n");
    let v = tether(tmp.path(), &["validate", "m"], None, Some(&identity()));
    assert!(v.status.success(), "{}", text(&v.stderr));

    // Rotate with a second recipient for production: both production identities can now
    // read every production secret, and every ciphertext is new.
    let id2 = tmp.path().join("id2.txt");
    let out = tether(
        tmp.path(),
        &["secret", "keygen", "--output", id2.to_str().unwrap()],
        None,
        None,
    );
    let r2 = text(&out.stdout).trim().to_string();
    let cfg = std::fs::read_to_string(m.join(".tether.yaml")).unwrap();
    let first = "      - age1clyxyw7feckat2hjj34zuqj4sqrq4lqxtlx8n829qdm9rk9tva9q36f9nm\n";
    assert!(cfg.contains(first));
    let cfg = cfg.replacen(first, &format!("{first}      - {r2}\n"), 1);
    std::fs::write(m.join(".tether.yaml"), cfg).unwrap();
    let before = std::fs::read_to_string(m.join("admin/variables.yaml")).unwrap();
    let out = tether(
        tmp.path(),
        &["secret", "rotate", "--manifests", "m"],
        None,
        Some(&identity()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "re-encrypted 30 of 30 secrets in 8 files to their rules' recipients"
    );
    assert_ne!(
        before,
        std::fs::read_to_string(m.join("admin/variables.yaml")).unwrap(),
        "rotate gives every secret a new ciphertext"
    );
    let v = tether(
        tmp.path(),
        &["validate", "--decrypt", "m"],
        None,
        Some(&identity()),
    );
    assert!(v.status.success(), "{}", text(&v.stderr));
    assert_eq!(text(&v.stderr), "", "no warnings after a rotate");
    assert_eq!(
        text(
            &tether(
                tmp.path(),
                &[
                    "secret",
                    "reveal",
                    "prod-database",
                    "STRIPE_WEBHOOK_SECRET",
                    "--manifests",
                    "m"
                ],
                None,
                Some(&id2)
            )
            .stdout
        ),
        "whsec_demo_prod_7f3a9c\n"
    );
}

#[test]
fn validate_names_missing_wrong_and_corrupted_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    copy_dir(&root().join("examples/vocilia"), &m);
    let out = tether(
        tmp.path(),
        &["validate", "m"],
        None,
        Some(&tmp.path().join("nope.txt")),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read the age identity file"),
        "{}",
        text(&out.stderr)
    );
    let other = tmp.path().join("other.txt");
    tether(
        tmp.path(),
        &["secret", "keygen", "--output", other.to_str().unwrap()],
        None,
        None,
    );
    // An identity that opens nothing: validate counts the secrets as not decrypted; with
    // --decrypt each one is an error naming its rule.
    let out = tether(tmp.path(), &["validate", "m"], None, Some(&other));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!(
            "\n28 secrets not decrypted (no identity in TETHER_AGE_KEY_FILE ({}) opens them)",
            other.display()
        )),
        "{}",
        text(&out.stdout)
    );
    let out = tether(
        tmp.path(),
        &["validate", "--decrypt", "m"],
        None,
        Some(&other),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("m/backend/variables.yaml:15:5: spec.entries.DATABASE_URL: no identity in TETHER_AGE_KEY_FILE ({}) can decrypt prod-backend/DATABASE_URL; rule production (selector tier=production) encrypts it to age1clyxyw…36f9nm", other.display())), "{err}");
    let f = m.join("backend/variables.yaml");
    let t = std::fs::read_to_string(&f).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    let corrupt: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 18 {
                format!("{}{}\n", &l[..8], l[8..].chars().rev().collect::<String>())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&f, corrupt).unwrap();
    let out = tether(tmp.path(), &["validate", "m"], None, Some(&identity()));
    let err = text(&out.stderr);
    assert!(err.contains("m/backend/variables.yaml:15:5: spec.entries.DATABASE_URL: the ciphertext of prod-backend/DATABASE_URL is corrupted"), "{err}");
}
