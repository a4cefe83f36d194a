//! Fuzzing of what tether reads from disk, as proptest strategies (stable Rust, `cargo test`):
//! manifests (arbitrary bytes, arbitrary YAML, the vocilia manifests with one field mutated),
//! `.tether.yaml`, age ciphertexts and status files read back. Never a panic; every manifest
//! error names its file and line. `TETHER_FUZZ_CASES` sets the cases per property (default 48).

mod support;

use std::path::Path;

use proptest::prelude::*;
use serde::Deserialize;
use serde_yaml::Value;
use support::harness::{copy_dir, demo_keyring, root};
use tether::manifest::{self, Decrypt, DesiredState, Diagnostics, SecretContext};

fn cases() -> u32 {
    std::env::var("TETHER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // Shrinking a manifest can take long; a failure prints its input either way.
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    }
}

fn load(dir: &Path, with_keys: bool) -> Result<DesiredState, Diagnostics> {
    let keyring = demo_keyring();
    let fp = keyring.fingerprinter();
    manifest::load(
        dir,
        &SecretContext {
            keyring: with_keys.then_some(&keyring),
            fingerprinter: &fp,
            key_source: "TETHER_AGE_KEY_FILE",
            decrypt: Decrypt::All,
        },
    )
}

/// Every problem names a file inside the folder and a line in it, and reads as a sentence.
fn check_errors(
    dir: &Path,
    result: &Result<DesiredState, Diagnostics>,
) -> Result<(), TestCaseError> {
    if let Err(Diagnostics(diags)) = result {
        prop_assert!(!diags.is_empty(), "an error with no diagnostic");
        for d in diags {
            prop_assert!(d.file.starts_with(dir), "{d}: not a file of the folder");
            prop_assert!(d.line >= 1, "{d}: no line");
            prop_assert!(!d.message.trim().is_empty(), "{d}: no message");
        }
    }
    Ok(())
}

/// YAML as people and tools write it: the manifest vocabulary, nested.
fn yaml_value() -> impl Strategy<Value = Value> {
    let words = prop_oneof![
        Just("apiVersion"),
        Just("kind"),
        Just("metadata"),
        Just("name"),
        Just("spec"),
        Just("environment"),
        Just("entries"),
        Just("platform"),
        Just("tether.dev/v1"),
        Just("Environment"),
        Just("Variables"),
        Just("Domain"),
        Just("railway"),
        Just("secret"),
        Just("placeholder"),
    ];
    let leaf = prop_oneof![
        words.clone().prop_map(|w| Value::String(w.into())),
        ".{0,12}".prop_map(Value::String),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_map(|f| Value::Number(f.into())),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    leaf.prop_recursive(4, 40, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            prop::collection::vec((words.clone(), inner), 0..6).prop_map(|kv| {
                Value::Mapping(
                    kv.into_iter()
                        .map(|(k, v)| (Value::String(k.into()), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// One change to one node of a manifest.
#[derive(Debug, Clone)]
enum Mutation {
    Text(String),
    Number(i64),
    Float(f64),
    Bool(bool),
    Null,
    EmptyMap,
    EmptyList,
    Long(usize),
    Remove,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        ".{0,20}".prop_map(Mutation::Text),
        any::<i64>().prop_map(Mutation::Number),
        any::<f64>().prop_map(Mutation::Float),
        any::<bool>().prop_map(Mutation::Bool),
        Just(Mutation::Null),
        Just(Mutation::EmptyMap),
        Just(Mutation::EmptyList),
        (1000..200_000usize).prop_map(Mutation::Long),
        Just(Mutation::Remove),
    ]
}

/// The node paths of a document, depth first (a path is the indexes taken at each level).
fn paths(v: &Value, at: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(at.clone());
    let children: Vec<&Value> = match v {
        Value::Mapping(m) => m.values().collect(),
        Value::Sequence(s) => s.iter().collect(),
        _ => vec![],
    };
    for (i, c) in children.into_iter().enumerate() {
        at.push(i);
        paths(c, at, out);
        at.pop();
    }
}

fn mutate(v: &mut Value, path: &[usize], m: &Mutation) {
    let Some((&first, rest)) = path.split_first() else {
        *v = match m {
            Mutation::Text(s) => Value::String(s.clone()),
            Mutation::Number(n) => Value::Number((*n).into()),
            Mutation::Float(f) => Value::Number((*f).into()),
            Mutation::Bool(b) => Value::Bool(*b),
            Mutation::Null | Mutation::Remove => Value::Null,
            Mutation::EmptyMap => Value::Mapping(Default::default()),
            Mutation::EmptyList => Value::Sequence(vec![]),
            Mutation::Long(n) => Value::String("x".repeat(*n)),
        };
        return;
    };
    match v {
        Value::Mapping(map) => {
            if rest.is_empty() && matches!(m, Mutation::Remove) {
                let key = map.keys().nth(first).cloned();
                if let Some(k) = key {
                    map.remove(&k);
                }
            } else if let Some(c) = map.values_mut().nth(first) {
                mutate(c, rest, m);
            }
        }
        Value::Sequence(s) => {
            if rest.is_empty() && matches!(m, Mutation::Remove) && first < s.len() {
                s.remove(first);
            } else if let Some(c) = s.get_mut(first) {
                mutate(c, rest, m);
            }
        }
        _ => {}
    }
}

/// The vocilia manifest files, relative to the example folder.
fn vocilia_files() -> Vec<std::path::PathBuf> {
    let base = root().join("examples/vocilia");
    let mut out = Vec::new();
    let mut stack = vec![base.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml")
                && p.file_name().is_some_and(|n| n != ".tether.yaml")
            {
                out.push(p.strip_prefix(&base).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_as_a_manifest(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fuzz.yaml"), &bytes).unwrap();
        let r = load(dir.path(), false);
        check_errors(dir.path(), &r)?;
    }

    #[test]
    fn arbitrary_yaml_as_a_manifest(docs in prop::collection::vec(yaml_value(), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<String> = docs.iter().map(|d| serde_yaml::to_string(d).unwrap()).collect();
        std::fs::write(dir.path().join("fuzz.yaml"), text.join("---\n")).unwrap();
        let r = load(dir.path(), false);
        check_errors(dir.path(), &r)?;
    }

    #[test]
    fn vocilia_with_one_field_mutated(file in any::<prop::sample::Index>(), node in any::<prop::sample::Index>(), m in mutation()) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        copy_dir(&root().join("examples/vocilia"), &dir);
        let files = vocilia_files();
        let rel = file.get(&files);
        let text = std::fs::read_to_string(dir.join(rel)).unwrap();
        let mut docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| Value::deserialize(d).unwrap())
            .collect();
        let mut all = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            let mut found = Vec::new();
            paths(d, &mut Vec::new(), &mut found);
            all.extend(found.into_iter().map(|p| (i, p)));
        }
        let (doc, path) = node.get(&all).clone();
        mutate(&mut docs[doc], &path, &m);
        let text: Vec<String> = docs.iter().map(|d| serde_yaml::to_string(d).unwrap()).collect();
        std::fs::write(dir.join(rel), text.join("---\n")).unwrap();
        let r = load(&dir, true);
        check_errors(&dir, &r)?;
    }

    #[test]
    fn arbitrary_tether_yaml(bytes in prop::collection::vec(any::<u8>(), 0..600), yaml in yaml_value(), as_yaml in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let content = if as_yaml { serde_yaml::to_string(&yaml).unwrap().into_bytes() } else { bytes };
        std::fs::write(dir.path().join(".tether.yaml"), &content).unwrap();
        match tether::manifest::recipients::Rules::load(dir.path()) {
            Ok(_) => prop_assert!(std::str::from_utf8(&content).is_ok(), "a .tether.yaml that is not text was taken as no rules"),
            Err(diags) => for d in diags {
                prop_assert!(d.file.ends_with(".tether.yaml") && d.line >= 1, "{d}");
            },
        }
    }

    /// A secret whose ciphertext was damaged (a byte changed, cut short, or not age at all) is
    /// an error at its field, never a panic and never a value.
    #[test]
    fn damaged_ciphertexts(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>(), junk in ".{0,200}") {
        let keyring = demo_keyring();
        let ct = tether::secret::encrypt(
            "canary-ciphertext-fuzz",
            &tether::secret::parse_recipients(&keyring.recipients()).unwrap(),
        )
        .unwrap();
        let mut bytes = ct.clone().into_bytes();
        let i = at.index(bytes.len());
        if cut { bytes.truncate(i) } else { bytes[i] = byte }
        let damaged = if junk.len() % 3 == 0 { junk } else { String::from_utf8_lossy(&bytes).into_owned() };
        prop_assume!(damaged != ct);
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "apiVersion: tether.dev/v1\nkind: Environment\nmetadata: {{name: e}}\nspec: {{platform: railway, app: a, type: production, railway: {{project: p, environment: production, service: s}}}}\n---\napiVersion: tether.dev/v1\nkind: Variables\nmetadata: {{name: v}}\nspec:\n  environment: e\n  entries:\n    TOKEN:\n      secret: {}\n",
            serde_json::to_string(&damaged).unwrap()
        );
        std::fs::write(dir.path().join("m.yaml"), yaml).unwrap();
        let r = load(dir.path(), true);
        check_errors(dir.path(), &r)?;
        match r {
            // A byte changed inside the armor's base64 padding or line breaks can still
            // decrypt to the same value; anything that decrypts must be the value itself.
            Ok(d) => prop_assert_eq!(d.variables["e"]["TOKEN"].value.expose(), "canary-ciphertext-fuzz"),
            Err(Diagnostics(diags)) => {
                // At the field, or at the character that makes the file not YAML at all.
                prop_assert!(
                    diags.iter().any(|d| d.path == "spec.entries.TOKEN"
                        || (d.message.starts_with("not valid YAML") && d.line == 13)),
                    "{diags:?}"
                );
                prop_assert!(!diags.iter().any(|d| d.message.contains("canary-ciphertext-fuzz")));
            }
        }
    }

    /// Status files read back (by `tether status`, CI, the control API): garbage is an error
    /// naming the file, never a panic.
    #[test]
    fn status_files_read_back(index in prop::collection::vec(any::<u8>(), 0..400), env in prop::collection::vec(any::<u8>(), 0..400), yaml in yaml_value(), valid_index in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let index = if valid_index {
            let counts = serde_json::json!({"resources": 1, "ready": 1, "reconciling": 0, "stalled": 0});
            serde_json::json!({
                "schemaVersion": 1, "generatedAt": "2026-12-04T00:00:00Z", "firstPassDone": true,
                "environments": [{"name": "e", "file": "e.json", "state": "ready", "platform": "railway", "counts": counts}],
                "summary": counts,
                "manifests": {"valid": true}
            }).to_string().into_bytes()
        } else { index };
        std::fs::write(dir.path().join("index.json"), &index).unwrap();
        let env = if env.len() % 2 == 0 { serde_json::to_vec(&yaml).unwrap() } else { env };
        std::fs::write(dir.path().join("e.json"), &env).unwrap();
        if let Err(e) = tether::status::read_all(dir.path()) {
            let msg = e.to_string();
            let named = if valid_index { "e.json" } else { "index.json" };
            prop_assert!(msg.contains(named), "{msg}");
        }
    }
}

/// The store's records damaged one at a time (random bytes, or cut short), under a daemon
/// restarting on it and running a pass: never a panic, and an unreadable record that stops it
/// is named, tree and key.
#[test]
fn damaged_store_records() {
    use support::harness::World;
    use tether::reconcile::Reconciler;
    use tether::store::trees;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let world = rt.block_on(async {
        let mut w = World::new(tether::simulate::SimConfig::default()).await;
        w.converge().await;
        w
    });
    let store = world.rec.store().clone();
    let desired: DesiredState = (**world.rec.desired().unwrap()).clone();
    let mut records = Vec::new();
    for tree in trees::ALL {
        for (key, bytes) in store.raw_records(tree).unwrap() {
            records.push((tree, key, bytes));
        }
    }
    assert!(
        records.len() > 50,
        "a converged store: {} records",
        records.len()
    );
    let damage = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200).prop_map(Some),
        Just(None),
    ];
    // Undamaged, the restart and its pass succeed.
    rt.block_on(async {
        let mut rec = Reconciler::new(
            store.clone(),
            world.providers.clone(),
            world.fp.clone(),
            world.opts.clone(),
        )
        .unwrap();
        rec.set_desired(Ok(desired.clone()));
        rec.pass(&world.all(false)).await.unwrap();
    });
    let named = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let result = runner.run(
        &(
            any::<prop::sample::Index>(),
            damage,
            any::<prop::sample::Index>(),
        ),
        |(which, bytes, cut)| {
            let (tree, key, original) = which.get(&records);
            let damaged = bytes.unwrap_or_else(|| original[..cut.index(original.len())].to_vec());
            store.raw_put(tree, key, &damaged).unwrap();
            let outcome = rt.block_on(async {
                let mut rec = Reconciler::new(
                    store.clone(),
                    world.providers.clone(),
                    world.fp.clone(),
                    world.opts.clone(),
                )
                .map_err(|e| e.to_string())?;
                rec.set_desired(Ok(desired.clone()));
                rec.pass(&world.all(false))
                    .await
                    .map_err(|e| e.to_string())?;
                rec.write_status().map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            });
            store.raw_put(tree, key, original).unwrap();
            if let Err(msg) = outcome {
                named.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if std::env::var("FUZZ_DEBUG").is_ok() {
                    eprintln!("{tree}/{key}: {msg}");
                }
                prop_assert!(
                    msg.contains(&format!("{tree} record {key:?}")),
                    "damaging {tree}/{key}: {msg}"
                );
            }
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    // Damaged records that stop a restart are met at all (observed, inventory, meta).
    let named = named.into_inner();
    eprintln!(
        "{named} of {} damaged records stopped the restart, named",
        cases()
    );
    assert!(named > 0);
}
