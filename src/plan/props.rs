//! Properties of the planner over generated desired and observed states (proptest): no delete
//! of what tether does not manage or on partial knowledge, the blast-radius cap, determinism,
//! no secret in clear, and convergence (applying a plan and planning again writes nothing).
//! `TETHER_FUZZ_CASES` sets the number of cases (default 64).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::*;
use crate::manifest::{DesiredState, VarValue};
use crate::observed::*;
use crate::secret::{Fingerprinter, SecretValue};

/// Every secret's value contains this; no output of the planner may.
const CANARY: &str = "canary-7f3a9c";
const KEYS: [&str; 5] = ["APP_A", "APP_B", "APP_C", "APP_D", "APP_E"];
const VALUES: [&str; 3] = ["one", "two", "three"];

pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("TETHER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fp() -> Fingerprinter {
    Fingerprinter::from_seed(b"plan-properties")
}

/// A value: plain (`one`..) or secret (holding the canary).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Val {
    index: usize,
    secret: bool,
}

impl Val {
    fn text(self) -> String {
        if self.secret {
            format!("{CANARY}-{}", self.index)
        } else {
            VALUES[self.index].to_string()
        }
    }
}

/// One environment: what its manifests say, and what its platform holds.
#[derive(Debug, Clone)]
struct GenEnv {
    platform: Platform,
    active: bool,
    /// Key index → value; None is a placeholder.
    vars: BTreeMap<usize, Option<Val>>,
    /// Hostname indexes (Railway and Vercel only).
    domains: BTreeSet<usize>,
    /// The pinned commit (Railway and Vercel only).
    commit: Option<usize>,
    /// 0: observed in full, 1: observation failed, 2: never observed.
    knowledge: u8,
    /// Key index → (value, or None when unknown; managed by tether; Vercel type index).
    obs_vars: BTreeMap<usize, (Option<Val>, bool, usize)>,
    /// Hostname index → (managed; verified).
    obs_domains: BTreeMap<usize, (bool, bool)>,
    /// The deployment running: commit index, and whether it failed.
    obs_deploy: Option<(usize, bool)>,
}

fn val() -> impl Strategy<Value = Val> {
    (0..VALUES.len(), any::<bool>()).prop_map(|(index, secret)| Val { index, secret })
}

fn gen_env() -> impl Strategy<Value = GenEnv> {
    let platform = prop_oneof![
        Just(Platform::Railway),
        Just(Platform::Vercel),
        Just(Platform::Supabase)
    ];
    (
        platform,
        prop::bool::weighted(0.9),
        prop::collection::btree_map(0..KEYS.len(), prop::option::weighted(0.9, val()), 0..5),
        prop::collection::btree_set(0..3usize, 0..3),
        prop::option::of(0..2usize),
        prop_oneof![4 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        prop::collection::btree_map(
            0..KEYS.len(),
            (prop::option::of(val()), any::<bool>(), 0..4usize),
            0..5,
        ),
        prop::collection::btree_map(0..4usize, (any::<bool>(), any::<bool>()), 0..3),
        prop::option::of((0..2usize, prop::bool::weighted(0.2))),
    )
        .prop_map(
            |(
                platform,
                active,
                vars,
                domains,
                commit,
                knowledge,
                obs_vars,
                obs_domains,
                obs_deploy,
            )| {
                let apps = platform != Platform::Supabase;
                GenEnv {
                    platform,
                    active,
                    vars,
                    domains: if apps { domains } else { BTreeSet::new() },
                    commit: commit.filter(|_| apps),
                    knowledge,
                    obs_vars,
                    obs_domains: if apps { obs_domains } else { BTreeMap::new() },
                    obs_deploy: obs_deploy.filter(|_| apps),
                }
            },
        )
}

fn commit(i: usize) -> String {
    ["a", "b"][i].repeat(40)
}

fn host(env: usize, i: usize) -> String {
    format!("h{i}-e{env}.example.com")
}

/// The manifests of the generated environments, as a user would write them.
fn manifests(envs: &[GenEnv]) -> String {
    let mut y = String::new();
    for (i, e) in envs.iter().enumerate() {
        let target = match e.platform {
            Platform::Railway => {
                format!("railway: {{project: p, environment: e{i}, service: s{i}}}")
            }
            Platform::Vercel => format!("vercel: {{project: web{i}, target: production}}"),
            Platform::Supabase => format!(
                "supabase: {{projectRef: {}}}",
                ((b'a' + i as u8) as char).to_string().repeat(20)
            ),
        };
        y.push_str(&format!(
            "---\napiVersion: tether.dev/v1\nkind: Environment\nmetadata: {{name: e{i}}}\nspec: {{platform: {}, app: app{i}, type: production, active: {}, {target}}}\n",
            e.platform.as_str(), e.active
        ));
        if !e.vars.is_empty() {
            let entries: Vec<String> = e
                .vars
                .iter()
                .map(|(k, v)| match v {
                    // Secrets are written plain here and made secret after loading (no keyring).
                    Some(v) => format!("{}: \"{}\"", KEYS[*k], v.text()),
                    None => format!("{}: {{placeholder: imported}}", KEYS[*k]),
                })
                .collect();
            y.push_str(&format!(
                "---\napiVersion: tether.dev/v1\nkind: Variables\nmetadata: {{name: v{i}}}\nspec: {{environment: e{i}, entries: {{{}}}}}\n",
                entries.join(", ")
            ));
        }
        if let Some(c) = e.commit {
            let source = if e.platform == Platform::Vercel {
                ", source: {provider: github, repo: o/r}"
            } else {
                ""
            };
            y.push_str(&format!(
                "---\napiVersion: tether.dev/v1\nkind: Deployment\nmetadata: {{name: d{i}}}\nspec: {{environment: e{i}, commit: {}, branch: main{source}}}\n",
                commit(c)
            ));
        }
        for h in &e.domains {
            y.push_str(&format!(
                "---\napiVersion: tether.dev/v1\nkind: Domain\nmetadata: {{name: dom{i}-{h}}}\nspec: {{name: {}, environment: e{i}}}\n",
                host(i, *h)
            ));
        }
    }
    y
}

fn desired_of(envs: &[GenEnv]) -> DesiredState {
    let mut d = super::tests::load_text(&manifests(envs), &fp())
        .unwrap_or_else(|e| panic!("the generated manifests are valid:\n{e}"));
    for vars in d.variables.values_mut() {
        for dv in std::sync::Arc::make_mut(vars).values_mut() {
            if dv.value.expose().starts_with(CANARY) {
                dv.value = VarValue::Secret(SecretValue::new(dv.value.expose().to_string()));
            }
        }
    }
    d
}

fn method(platform: Platform, platform_type: Option<&str>) -> CompareMethod {
    match (platform, platform_type) {
        (Platform::Supabase, _) => CompareMethod::Digest,
        (_, Some("encrypted" | "sensitive")) => CompareMethod::LastWrite,
        _ => CompareMethod::Value,
    }
}

fn fingerprint_for(m: CompareMethod, value: &str) -> crate::secret::Fingerprint {
    let (v, d) = fp().both(value);
    if m == CompareMethod::Digest { d } else { v }
}

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).unwrap()
}

fn deployment(id: String, commit: String, ok: bool) -> ObservedDeployment {
    let status = if ok {
        DeployStatus::Success
    } else {
        DeployStatus::Failed
    };
    ObservedDeployment {
        id,
        commit: Some(commit),
        branch: Some("main".into()),
        status,
        platform_status: status.as_str().to_uppercase(),
        created_at: at(),
        url: None,
        active: ok,
        logs_url: None,
    }
}

/// What the platforms hold, and what tether's inventory says it manages; plus an environment
/// no manifest names any more, with managed objects.
fn observed_of(envs: &[GenEnv]) -> ObservedState {
    let mut st = ObservedState::default();
    for (i, e) in envs.iter().enumerate() {
        let name = format!("e{i}");
        let mut o = ObservedEnv {
            knowledge: match e.knowledge {
                0 => Knowledge::Complete,
                1 => Knowledge::Partial("503 from the platform".into()),
                _ => Knowledge::Unknown,
            },
            ..Default::default()
        };
        for (k, (v, managed, t)) in &e.obs_vars {
            let platform_type = (e.platform == Platform::Vercel)
                .then(|| ["plain", "encrypted", "sensitive", "system"][*t].to_string());
            let m = method(e.platform, platform_type.as_deref());
            o.variables.insert(
                KEYS[*k].into(),
                ObservedVar {
                    id: Some(format!("var-{i}-{k}")),
                    fingerprint: v.map(|v| fingerprint_for(m, &v.text())),
                    method: m,
                    platform_type,
                    updated_at: None,
                },
            );
            if *managed {
                st.inventory
                    .insert(ObjectKey::new(&name, ObjectKind::Variable, KEYS[*k]));
            }
        }
        for (h, (managed, verified)) in &e.obs_domains {
            let hostname = host(i, *h);
            o.domains.insert(
                hostname.clone(),
                ObservedDomain {
                    id: format!("dom-{i}-{h}"),
                    hostname: hostname.clone(),
                    verified: *verified,
                    dns_propagated: Some(true),
                    ..Default::default()
                },
            );
            if *managed {
                st.inventory
                    .insert(ObjectKey::new(&name, ObjectKind::Domain, &hostname));
            }
        }
        if let Some((c, failed)) = e.obs_deploy {
            o.deployments
                .push(deployment(format!("dep-{i}"), commit(c), !failed));
        }
        st.environments.insert(name, o);
    }
    let gone = ObservedEnv {
        knowledge: Knowledge::Complete,
        variables: BTreeMap::from([(
            "OLD".to_string(),
            ObservedVar {
                id: None,
                fingerprint: Some(fp().of_value("old")),
                method: CompareMethod::Value,
                platform_type: None,
                updated_at: None,
            },
        )]),
        ..Default::default()
    };
    st.environments.insert("gone".into(), gone);
    st.inventory
        .insert(ObjectKey::new("gone", ObjectKind::Variable, "OLD"));
    st
}

/// What the platforms and the inventory hold once every change of `plan` is applied, as the
/// reconciler applies them (adopting what it finds, recording what it writes).
fn apply(plan: &Plan, desired: &DesiredState, observed: &ObservedState) -> ObservedState {
    let mut o = observed.clone();
    for c in &plan.changes {
        let key = &c.key;
        let env = o.environments.entry(key.environment.clone()).or_default();
        match (&c.detail, c.action) {
            (_, Action::Noop) => {
                if c.adopt {
                    o.inventory.insert(key.clone());
                }
            }
            (Detail::Variable { platform_type, .. }, Action::Create | Action::Update) => {
                let dv = &desired.variables[&key.environment][&key.name];
                let m = method(c.platform, platform_type.as_deref());
                env.variables.insert(
                    key.name.clone(),
                    ObservedVar {
                        id: Some(format!("written-{}", key.name)),
                        fingerprint: Some(if m == CompareMethod::Digest {
                            dv.digest_fingerprint
                        } else {
                            dv.fingerprint
                        }),
                        method: m,
                        platform_type: platform_type.clone(),
                        updated_at: None,
                    },
                );
                o.inventory.insert(key.clone());
            }
            (Detail::Variable { .. } | Detail::Domain { .. }, Action::Delete) => {
                env.variables.remove(&key.name);
                if key.kind == ObjectKind::Domain {
                    env.domains.remove(&key.name);
                }
                o.inventory.remove(key);
            }
            (Detail::Domain { hostname, .. }, Action::Create | Action::Update) => {
                let d = env.domains.entry(hostname.clone()).or_default();
                d.id = format!("new-{hostname}");
                d.hostname = hostname.clone();
                d.verified = true;
                d.dns_propagated = Some(true);
                o.inventory.insert(key.clone());
            }
            (Detail::Deployment { commit, .. }, Action::Deploy) => {
                let commit = commit
                    .clone()
                    .or_else(|| env.active_deployment().and_then(|d| d.commit.clone()))
                    .expect("a redeploy has something to redeploy");
                for d in &mut env.deployments {
                    d.active = false;
                }
                env.deployments
                    .insert(0, deployment(format!("new-{commit}"), commit, true));
                env.redeploy_needed_since = None;
            }
            (detail, action) => panic!("the applier does not know {action:?} {detail:?}"),
        }
    }
    o
}

fn delete_keys(plan: &Plan) -> Vec<&ObjectKey> {
    plan.changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| &c.key)
        .collect()
}

fn check(envs: &[GenEnv], allow_deletes: bool, max_share: f64) -> Result<(), TestCaseError> {
    let desired = desired_of(envs);
    let observed = observed_of(envs);
    let opts = PlanOptions {
        allow_deletes,
        max_delete_share: max_share,
        ..PlanOptions::default()
    };
    let p = plan(&desired, &observed, &opts);

    // Never a delete of what tether did not create or adopt, nor on partial knowledge.
    for k in delete_keys(&p) {
        prop_assert!(observed.inventory.contains(k), "deletes unmanaged {k}");
        prop_assert!(
            allow_deletes,
            "deletes {k} though the manifests did not all load"
        );
        let e = &observed.environments[&k.environment];
        prop_assert_eq!(
            &e.knowledge,
            &Knowledge::Complete,
            "deletes {} unobserved",
            k
        );
    }
    for (i, e) in envs.iter().enumerate() {
        let name = format!("e{i}");
        let writes = p.writes().filter(|c| c.key.environment == name).count();
        // Nothing is written where observation failed, or to a suspended environment.
        if e.knowledge == 1 || !e.active {
            prop_assert_eq!(
                writes,
                0,
                "writes to {} (knowledge {}, active {})",
                name,
                e.knowledge,
                e.active
            );
        }
        // The blast-radius cap.
        let deletes = delete_keys(&p)
            .iter()
            .filter(|k| k.environment == name)
            .count();
        let managed = observed
            .inventory
            .iter()
            .filter(|k| k.environment == name)
            .count()
            .max(1);
        prop_assert!(
            deletes <= 1 || deletes as f64 / managed as f64 <= max_share,
            "{name}: {deletes} of {managed} deleted"
        );
    }
    prop_assert!(p.changes.iter().all(|c| c.key.environment != "gone"));

    // Deterministic, and in apply order.
    prop_assert_eq!(&p, &plan(&desired, &observed, &opts));
    prop_assert!(p.changes.windows(2).all(|w| order(&w[0]) <= order(&w[1])));

    // No secret in clear, in any form the plan is shown or kept.
    for shown in [
        render::text(&p),
        render::json(&p).to_string(),
        serde_json::to_string(&p).unwrap(),
        format!("{p:?}"),
    ] {
        prop_assert!(!shown.contains(CANARY), "a secret in clear: {shown}");
    }

    // Applying the plan and planning again writes nothing.
    let after = apply(&p, &desired, &observed);
    let again = plan(&desired, &after, &opts);
    let left: Vec<String> = again
        .writes()
        .map(|c| format!("{:?} {}", c.action, c.key))
        .collect();
    prop_assert!(
        left.is_empty(),
        "planning again after applying writes {left:?}\nfirst plan: {:?}",
        p.changes
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(64)))]

    #[test]
    fn plans_keep_their_promises(
        envs in prop::collection::vec(gen_env(), 1..6),
        allow_deletes in prop::bool::weighted(0.8),
        max_share in prop_oneof![Just(0.3), Just(0.5), Just(1.0)],
    ) {
        check(&envs, allow_deletes, max_share)?;
    }
}
