//! Rules across documents (references, duplicates, requirements, one domain per environment),
//! decryption of secrets, and assembly of the `DesiredState`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::desired::{DesiredState, DesiredVar, Resource, VarValue};
use super::diagnostic::Diagnostic;
use super::kinds::*;
use super::load::{Doc, Parsed};
use super::recipients::Rules;
use super::rules;
use super::secrets::{Placeholder, SecretContext, SecretSummary, Site, open};

/// Vercel's limit on all of a deployment's variables together.
const VERCEL_TOTAL_LIMIT: usize = 64 * 1024;
/// Supabase's limit on one secret's value.
const SUPABASE_VALUE_LIMIT: usize = 24_576;

/// Applies the cross-document rules and builds the desired state, or returns every problem.
pub fn build(
    docs: &[&Doc],
    secrets: &SecretContext,
    rules: &Rules,
    previous: Option<&DesiredState>,
) -> Result<DesiredState, Vec<Diagnostic>> {
    let mut errs = Vec::new();
    let mut summary = SecretSummary::default();
    let keys = Keys {
        secrets,
        rules,
        previous,
    };
    for &d in docs {
        super::check::document(d, &mut errs);
    }
    // No kind+name twice.
    let mut seen: BTreeMap<(Kind, String), &Doc> = BTreeMap::new();
    for &d in docs {
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
    for &d in docs {
        if let Parsed::Environment(r) = &d.parsed {
            st.environments
                .entry(r.meta.name.clone())
                .or_insert_with(|| r.clone());
        }
    }
    let envs = st.environments.clone();
    let envs = &envs;
    let env_ref =
        |d: &Doc, env: &str, errs: &mut Vec<Diagnostic>| -> Option<&Resource<EnvironmentSpec>> {
            let found = envs.get(env);
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

    let (vars, var_docs) = collect_variables(docs, &st, &keys, &mut summary, &env_ref, &mut errs);
    st.variables = share_unchanged(vars, keys.previous);
    requirements(docs, &st, &var_docs, &mut errs);

    // Domains: references resolve, one environment per hostname.
    let mut hostnames: BTreeMap<String, &Doc> = BTreeMap::new();
    for &d in docs {
        let Parsed::Domain(r) = &d.parsed else {
            continue;
        };
        if let Some(env) = env_ref(d, &r.spec.environment, &mut errs) {
            if r.spec.port.is_some() && env.spec.platform != Platform::Railway {
                errs.push(d.error("spec.port", "port applies only to Railway environments"));
            }
            if shared_only(env) {
                errs.push(d.error("spec.environment", shared_only_message(env)));
            }
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
    for &d in docs {
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
    for &d in docs {
        if let Parsed::Monitor(r) = &d.parsed {
            env_ref(d, &r.spec.environment, &mut errs);
            st.monitors.insert(r.meta.name.clone(), r.clone());
        }
    }
    let mut deployed: BTreeMap<String, &Doc> = BTreeMap::new();
    for &d in docs {
        let Parsed::Deployment(r) = &d.parsed else {
            continue;
        };
        if let Some(env) = env_ref(d, &r.spec.environment, &mut errs) {
            if shared_only(env) {
                errs.push(d.error("spec.environment", shared_only_message(env)));
            }
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
    for &d in docs {
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
        if let Some(why) = &r.spec.database_url.placeholder {
            summary.placeholders.push(Placeholder {
                environment: r.spec.environment.clone(),
                key: format!("BackupPolicy {} databaseUrl", r.meta.name),
                why: why.clone(),
                at: d.error("spec.databaseUrl.placeholder", format!(
                    "backup policy {}'s database URL is a placeholder ({why}): replace it with secret: (tether secret set) or fromVariable:",
                    r.meta.name
                )),
            });
        }
        if let Some(ct) = &r.spec.database_url.secret {
            let what = format!("backup policy {}'s databaseUrl", r.meta.name);
            let env = envs.get(&r.spec.environment);
            let site = Site {
                doc: d,
                field: "spec.databaseUrl.secret",
                env_name: &r.spec.environment,
                env,
                key: "databaseUrl",
                what: &what,
                needed: None,
            };
            match open(ct, &site, secrets, rules, &mut summary) {
                Ok(v) => {
                    st.backup_urls.insert(r.meta.name.clone(), v);
                }
                Err(m) => errs.push(d.error("spec.databaseUrl.secret", m)),
            }
        }
        st.backup_policies.insert(r.meta.name.clone(), r.clone());
    }
    super::alerts::collect(docs, &mut st, secrets, rules, &mut summary, &mut errs);
    for &d in docs {
        if let Parsed::Requirements(r) = &d.parsed {
            st.requirements.insert(r.meta.name.clone(), r.clone());
        }
    }

    if errs.is_empty() {
        summary.warnings.sort();
        st.secrets = summary;
        Ok(st)
    } else {
        errs.sort();
        errs.dedup();
        Err(errs)
    }
}

/// Resolves an `environment:` reference, reporting it when it does not resolve.
type EnvRef<'a> =
    dyn Fn(&Doc, &str, &mut Vec<Diagnostic>) -> Option<&'a Resource<EnvironmentSpec>> + 'a;

/// A Railway environment without a service: its shared variables, nothing else.
fn shared_only(env: &Resource<EnvironmentSpec>) -> bool {
    env.spec
        .railway
        .as_ref()
        .is_some_and(|t| t.service.is_none())
}

fn shared_only_message(env: &Resource<EnvironmentSpec>) -> String {
    format!(
        "{} names no Railway service, so it holds the environment's shared variables only: attach domains and deployments to a service's environment",
        env.meta.name
    )
}

type VarIndex<'d> = BTreeMap<String, BTreeMap<String, (&'d Doc, bool)>>;

/// The secret context and the creation rules, together.
struct Keys<'a> {
    secrets: &'a SecretContext<'a>,
    rules: &'a Rules,
    /// The last state loaded with the same fingerprint key: an unchanged value keeps its
    /// fingerprints instead of being hashed again.
    previous: Option<&'a DesiredState>,
}

fn collect_variables<'d>(
    docs: &[&'d Doc],
    st: &DesiredState,
    keys: &Keys,
    summary: &mut SecretSummary,
    env_ref: &EnvRef<'_>,
    errs: &mut Vec<Diagnostic>,
) -> (BTreeMap<String, BTreeMap<String, DesiredVar>>, VarIndex<'d>) {
    let mut out: BTreeMap<String, BTreeMap<String, DesiredVar>> = BTreeMap::new();
    let mut index: VarIndex = BTreeMap::new();
    for d in docs {
        let Parsed::Variables(r) = &d.parsed else {
            continue;
        };
        let targets = r.spec.targets();
        if targets.len() != 1 && (r.spec.environment.is_some() || targets.is_empty()) {
            errs.push(d.error(
                "spec.environment",
                "name the environment (environment: NAME) or the environments that share these variables (environments: [A, B]), not both".to_string(),
            ));
            continue;
        }
        for env_name in targets {
            let env_name = &env_name.to_string();
            let env = env_ref(d, env_name, errs);
            let platform = env.as_ref().map(|e| e.spec.platform);
            collect_entries(
                d, r, env_name, platform, st, keys, summary, &mut out, &mut index, errs,
            );
        }
    }
    // An environment none of whose entries made it (placeholders, errors) has no map, as before
    // the maps were made up front.
    out.retain(|_, vars| !vars.is_empty());
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

/// Each environment's variables, as the state in force holds them when they are equal: the
/// two states then share one map, so a reload after an edit to one file leaves one
/// environment's worth of new variables live, not every environment's.
fn share_unchanged(
    vars: BTreeMap<String, BTreeMap<String, DesiredVar>>,
    previous: Option<&DesiredState>,
) -> BTreeMap<String, Arc<BTreeMap<String, DesiredVar>>> {
    vars.into_iter()
        .map(|(env, map)| {
            let shared = previous
                .and_then(|p| p.variables.get(&env))
                .filter(|old| ***old == map)
                .cloned()
                .unwrap_or_else(|| Arc::new(map));
            (env, shared)
        })
        .collect()
}

/// One Variables document's entries for one of its environments.
#[allow(clippy::too_many_arguments)]
fn collect_entries<'d>(
    d: &'d Doc,
    r: &Resource<VariablesSpec>,
    env_name: &String,
    platform: Option<Platform>,
    st: &DesiredState,
    keys: &Keys,
    summary: &mut SecretSummary,
    out: &mut BTreeMap<String, BTreeMap<String, DesiredVar>>,
    index: &mut VarIndex<'d>,
    errs: &mut Vec<Diagnostic>,
) {
    {
        // Looked up once per document and environment, not once per entry.
        let slot = index.entry(env_name.clone()).or_default();
        let vars = out.entry(env_name.clone()).or_default();
        for (key, src) in &r.spec.entries {
            // The field's path, made only when an error or a secret needs it.
            let path = || format!("spec.entries.{key}");
            if rules::variable_name(key, None).is_ok()
                && let Err(e) = rules::variable_name(key, platform)
            {
                errs.push(d.error(&path(), e));
            }
            if let Some((first, _)) = slot.get(key) {
                errs.push(d.error(
                    &path(),
                    format!("{key} is already set for {env_name} at {}", first.source),
                ));
                continue;
            }
            slot.insert(key.clone(), (d, !matches!(src, ValueSource::Plain(_))));
            let value = match src {
                ValueSource::Placeholder(why) => {
                    summary.placeholders.push(Placeholder {
                        environment: env_name.clone(),
                        key: key.clone(),
                        why: why.clone(),
                        at: d.error(&path(), format!("{env_name}/{key} is a placeholder ({why}): fill it in with `tether secret set {env_name} {key}`")),
                    });
                    continue;
                }
                ValueSource::Plain(v) => VarValue::Plain(v.clone()),
                ValueSource::Secret(ct) => match open(
                    ct,
                    &Site {
                        doc: d,
                        field: &path(),
                        env_name,
                        env: st.environments.get(env_name),
                        key,
                        what: &format!("{env_name}/{key}"),
                        needed: None,
                    },
                    keys.secrets,
                    keys.rules,
                    summary,
                ) {
                    Ok(v) => VarValue::Secret(v),
                    Err(m) => {
                        errs.push(d.error(&path(), m));
                        continue;
                    }
                },
            };
            if platform == Some(Platform::Supabase) && value.expose().len() > SUPABASE_VALUE_LIMIT {
                errs.push(d.error(
                    &path(),
                    format!("Supabase secrets are at most {SUPABASE_VALUE_LIMIT} characters"),
                ));
            }
            let before = keys
                .previous
                .and_then(|p| p.variables.get(env_name)?.get(key))
                .filter(|b| b.value.expose() == value.expose());
            let (fingerprint, digest_fingerprint) = match before {
                Some(b) => (b.fingerprint, b.digest_fingerprint),
                None => keys.secrets.fingerprinter.both(value.expose()),
            };
            vars.insert(
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
}

fn requirements(docs: &[&Doc], st: &DesiredState, vars: &VarIndex, errs: &mut Vec<Diagnostic>) {
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
