//! Rules across documents (references, duplicates, requirements, one domain per environment),
//! decryption of secrets, and assembly of the `DesiredState`.

use std::collections::{BTreeMap, BTreeSet};

use super::desired::{DesiredState, DesiredVar, Resource, VarValue};
use super::diagnostic::Diagnostic;
use super::kinds::*;
use super::load::{Doc, Parsed};
use super::rules;
use crate::secret::{Fingerprinter, Keyring, SecretError};

/// What decryption needs: the keyring (absent when no identity is configured) and the key for
/// fingerprints. `key_source` names where the identity came from, for messages.
pub struct SecretContext<'a> {
    pub keyring: Option<&'a Keyring>,
    pub fingerprinter: &'a Fingerprinter,
    pub key_source: &'a str,
    /// With no keyring: check each ciphertext's structure instead of decrypting it, and count
    /// it here (`validate` without a key). None: a secret without a keyring is an error.
    pub undecrypted: Option<&'a std::cell::Cell<usize>>,
}

/// Vercel's limit on all of a deployment's variables together.
const VERCEL_TOTAL_LIMIT: usize = 64 * 1024;
/// Supabase's limit on one secret's value.
const SUPABASE_VALUE_LIMIT: usize = 24_576;

/// Applies the cross-document rules and builds the desired state, or returns every problem.
pub fn build(docs: Vec<Doc>, secrets: &SecretContext) -> Result<DesiredState, Vec<Diagnostic>> {
    let mut errs = Vec::new();
    for d in &docs {
        super::check::document(d, &mut errs);
    }
    // No kind+name twice.
    let mut seen: BTreeMap<(Kind, String), &Doc> = BTreeMap::new();
    for d in &docs {
        let key = (d.parsed.kind(), d.parsed.meta().name.clone());
        if let Some(first) = seen.get(&key) {
            errs.push(d.error(
                "metadata.name",
                format!(
                    "{} {:?} is defined twice; the first is at {}",
                    key.0, key.1, first.source
                ),
            ));
        } else {
            seen.insert(key, d);
        }
    }

    let mut st = DesiredState::default();
    for d in &docs {
        if let Parsed::Environment(r) = &d.parsed {
            st.environments
                .entry(r.meta.name.clone())
                .or_insert_with(|| r.clone());
        }
    }
    let envs = st.environments.clone();
    let env_ref =
        |d: &Doc, env: &str, errs: &mut Vec<Diagnostic>| -> Option<Resource<EnvironmentSpec>> {
            let found = envs.get(env).cloned();
            if found.is_none() {
                let known: Vec<&str> = envs.keys().map(String::as_str).collect();
                errs.push(d.error(
                    "spec.environment",
                    format!(
                        "environment {env:?} is not defined by any Environment manifest{}",
                        if known.is_empty() {
                            String::new()
                        } else {
                            format!(" (known: {})", known.join(", "))
                        }
                    ),
                ));
            }
            found
        };

    let (vars, var_docs) = collect_variables(&docs, &st, secrets, &env_ref, &mut errs);
    st.variables = vars;
    requirements(&docs, &st, &var_docs, &mut errs);

    // Domains: references resolve, one environment per hostname.
    let mut hostnames: BTreeMap<String, &Doc> = BTreeMap::new();
    for d in &docs {
        let Parsed::Domain(r) = &d.parsed else {
            continue;
        };
        if let Some(env) = env_ref(d, &r.spec.environment, &mut errs)
            && r.spec.port.is_some()
            && env.spec.platform != Platform::Railway
        {
            errs.push(d.error("spec.port", "port applies only to Railway environments"));
        }
        if let Some(first) = hostnames.get(&r.spec.name) {
            let Parsed::Domain(f) = &first.parsed else {
                unreachable!()
            };
            errs.push(d.error("spec.name", format!(
                "{} is already attached to environment {} at {}; a domain belongs to exactly one environment",
                r.spec.name, f.spec.environment, first.source
            )));
        } else {
            hostnames.insert(r.spec.name.clone(), d);
        }
        st.domains.insert(r.meta.name.clone(), r.clone());
    }
    let mut certified: BTreeMap<String, &Doc> = BTreeMap::new();
    for d in &docs {
        let Parsed::Certificate(r) = &d.parsed else {
            continue;
        };
        if !hostnames.contains_key(&r.spec.domain) {
            errs.push(d.error(
                "spec.domain",
                format!("no Domain manifest has name {}", r.spec.domain),
            ));
        }
        if let Some(first) = certified.insert(r.spec.domain.clone(), d) {
            errs.push(d.error(
                "spec.domain",
                format!(
                    "{} already has a Certificate at {}",
                    r.spec.domain, first.source
                ),
            ));
        }
        st.certificates.insert(r.meta.name.clone(), r.clone());
    }
    for d in &docs {
        if let Parsed::Monitor(r) = &d.parsed {
            env_ref(d, &r.spec.environment, &mut errs);
            st.monitors.insert(r.meta.name.clone(), r.clone());
        }
    }
    let mut deployed: BTreeMap<String, &Doc> = BTreeMap::new();
    for d in &docs {
        let Parsed::Deployment(r) = &d.parsed else {
            continue;
        };
        if let Some(env) = env_ref(d, &r.spec.environment, &mut errs) {
            if env.spec.platform == Platform::Supabase {
                errs.push(d.error(
                    "spec.environment",
                    format!(
                        "{} is a Supabase environment; tether deploys only Railway and Vercel apps",
                        env.meta.name
                    ),
                ));
            }
            if env.spec.platform == Platform::Vercel && r.spec.source.is_none() {
                errs.push(d.error(
                    "spec",
                    "Vercel builds from git: add source: {provider: github, repo: owner/name}",
                ));
            }
        }
        if let Some(first) = deployed.insert(r.spec.environment.clone(), d) {
            errs.push(d.error(
                "spec.environment",
                format!(
                    "environment {} already has a Deployment at {}",
                    r.spec.environment, first.source
                ),
            ));
        }
        for (i, m) in r.spec.health_gate.monitors.iter().enumerate() {
            match st.monitors.get(m) {
                None => errs.push(d.error(
                    &format!("spec.healthGate.monitors[{i}]"),
                    format!("no Monitor is named {m:?}"),
                )),
                Some(mon) if mon.spec.environment != r.spec.environment => errs.push(d.error(
                    &format!("spec.healthGate.monitors[{i}]"),
                    format!(
                        "monitor {m} watches {}, not {}",
                        mon.spec.environment, r.spec.environment
                    ),
                )),
                _ => {}
            }
        }
        st.deployments.insert(r.meta.name.clone(), r.clone());
    }
    for d in &docs {
        let Parsed::BackupPolicy(r) = &d.parsed else {
            continue;
        };
        if let Some(env) = env_ref(d, &r.spec.environment, &mut errs)
            && env.spec.platform != Platform::Supabase
        {
            errs.push(d.error(
                "spec.environment",
                format!(
                    "{} runs on {}; backup policies are for Supabase databases",
                    env.meta.name, env.spec.platform
                ),
            ));
        }
        if let Some(v) = &r.spec.database_url.from_variable
            && !st
                .variables
                .get(&r.spec.environment)
                .is_some_and(|m| m.contains_key(v))
        {
            errs.push(d.error(
                "spec.databaseUrl.fromVariable",
                format!("environment {} has no variable {v}", r.spec.environment),
            ));
        }
        if let Some(ct) = &r.spec.database_url.secret {
            let what = format!("backup policy {}'s databaseUrl", r.meta.name);
            match decrypt(ct, secrets, &what) {
                Ok(v) => {
                    st.backup_urls.insert(r.meta.name.clone(), v);
                }
                Err(m) => errs.push(d.error("spec.databaseUrl.secret", m)),
            }
        }
        st.backup_policies.insert(r.meta.name.clone(), r.clone());
    }
    for d in &docs {
        if let Parsed::Requirements(r) = &d.parsed {
            st.requirements.insert(r.meta.name.clone(), r.clone());
        }
    }

    if errs.is_empty() {
        Ok(st)
    } else {
        errs.sort();
        errs.dedup();
        Err(errs)
    }
}

/// Resolves an `environment:` reference, reporting it when it does not resolve.
type EnvRef<'a> =
    dyn Fn(&Doc, &str, &mut Vec<Diagnostic>) -> Option<Resource<EnvironmentSpec>> + 'a;

type VarIndex<'d> = BTreeMap<String, BTreeMap<String, (&'d Doc, bool)>>;

fn collect_variables<'d>(
    docs: &'d [Doc],
    st: &DesiredState,
    secrets: &SecretContext,
    env_ref: &EnvRef<'_>,
    errs: &mut Vec<Diagnostic>,
) -> (BTreeMap<String, BTreeMap<String, DesiredVar>>, VarIndex<'d>) {
    let mut out: BTreeMap<String, BTreeMap<String, DesiredVar>> = BTreeMap::new();
    let mut index: VarIndex = BTreeMap::new();
    for d in docs {
        let Parsed::Variables(r) = &d.parsed else {
            continue;
        };
        let env_name = &r.spec.environment;
        let env = env_ref(d, env_name, errs);
        let platform = env.as_ref().map(|e| e.spec.platform);
        for (key, src) in &r.spec.entries {
            let path = format!("spec.entries.{key}");
            if rules::variable_name(key, None).is_ok()
                && let Err(e) = rules::variable_name(key, platform)
            {
                errs.push(d.error(&path, e));
            }
            let slot = index.entry(env_name.clone()).or_default();
            if let Some((first, _)) = slot.get(key) {
                errs.push(d.error(
                    &path,
                    format!("{key} is already set for {env_name} at {}", first.source),
                ));
                continue;
            }
            slot.insert(key.clone(), (d, src.is_secret()));
            let value = match src {
                ValueSource::Plain(v) => VarValue::Plain(v.clone()),
                ValueSource::Secret(ct) => match decrypt(ct, secrets, &format!("{env_name}/{key}"))
                {
                    Ok(v) => VarValue::Secret(v),
                    Err(m) => {
                        errs.push(d.error(&path, m));
                        continue;
                    }
                },
            };
            if platform == Some(Platform::Supabase) && value.expose().len() > SUPABASE_VALUE_LIMIT {
                errs.push(d.error(
                    &path,
                    format!("Supabase secrets are at most {SUPABASE_VALUE_LIMIT} characters"),
                ));
            }
            let (fingerprint, digest_fingerprint) = secrets.fingerprinter.both(value.expose());
            out.entry(env_name.clone()).or_default().insert(
                key.clone(),
                DesiredVar {
                    value,
                    fingerprint,
                    digest_fingerprint,
                    source: d.source.clone(),
                },
            );
        }
    }
    for (env_name, vars) in &out {
        let is_vercel = st
            .environments
            .get(env_name)
            .is_some_and(|e| e.spec.platform == Platform::Vercel);
        let total: usize = vars
            .iter()
            .map(|(k, v)| k.len() + v.value.expose().len())
            .sum();
        if is_vercel && total > VERCEL_TOTAL_LIMIT {
            let (d, _) = index[env_name].values().next().copied().expect("non-empty");
            errs.push(d.error("spec.entries", format!("{env_name}'s variables take {total} bytes; Vercel allows {VERCEL_TOTAL_LIMIT} per deployment")));
        }
    }
    (out, index)
}

fn decrypt(
    ct: &str,
    secrets: &SecretContext,
    what: &str,
) -> Result<crate::secret::SecretValue, String> {
    if !ct
        .trim_start()
        .starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
    {
        return Err(format!(
            "{what} must be age ciphertext (-----BEGIN AGE ENCRYPTED FILE-----); write it with `tether secret set`"
        ));
    }
    if let (None, Some(count)) = (secrets.keyring, secrets.undecrypted) {
        crate::secret::check_structure(ct)
            .map_err(|m| format!("the ciphertext of {what} is corrupted: {m}"))?;
        count.set(count.get() + 1);
        // Not decrypted: an empty stand-in (never applied: only `validate` reads this way).
        return Ok(crate::secret::SecretValue::new(String::new()));
    }
    let Some(ring) = secrets.keyring else {
        return Err(format!(
            "{what} is a secret, but no age identity is configured: set TETHER_AGE_KEY_FILE or pass --age-key-file"
        ));
    };
    ring.decrypt(ct).map_err(|e| match e {
        SecretError::NoMatchingIdentity { .. } => {
            format!("no identity in {} can decrypt {what}", secrets.key_source)
        }
        SecretError::Malformed(m) => format!("the ciphertext of {what} is corrupted: {m}"),
        SecretError::NotText => format!("{what} does not decrypt to text"),
        other => format!("{what}: {other}"),
    })
}

fn requirements(docs: &[Doc], st: &DesiredState, vars: &VarIndex, errs: &mut Vec<Diagnostic>) {
    for d in docs {
        let Parsed::Requirements(r) = &d.parsed else {
            continue;
        };
        let s = &r.spec;
        let matching = st.environments.values().filter(|e| {
            e.spec.env_type == s.environment_type
                && s.platform.is_none_or(|p| p == e.spec.platform)
                && s.app.as_ref().is_none_or(|a| *a == e.spec.app)
        });
        for env in matching {
            let have = vars.get(&env.meta.name);
            let mut missing: BTreeSet<&str> = BTreeSet::new();
            for (field, list) in [("variables", &s.variables), ("secrets", &s.secrets)] {
                for (i, name) in list.iter().enumerate() {
                    match have.and_then(|h| h.get(name)) {
                        None if missing.insert(name) => {
                            errs.push(d.error(&format!("spec.{field}[{i}]"), format!(
                                    "environment {} ({}) has no {name}, which {} requires of {} environments",
                                    env.meta.name, env.source, r.meta.name, s.environment_type.as_str()
                                )));
                        }
                        Some((vd, is_secret)) if field == "secrets" && !is_secret => {
                            errs.push(vd.error(&format!("spec.entries.{name}"), format!(
                                "{}/{name} must be a secret ({} marks it so): encrypt it with `tether secret set {} {name}`",
                                env.meta.name, r.meta.name, env.meta.name
                            )));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}
