//! The pure planner: `plan(&DesiredState, &ObservedState) -> Plan`. No I/O, deterministic order.

mod change;
#[cfg(test)]
pub(crate) mod props;
pub mod render;
#[cfg(test)]
mod tests;

pub use change::*;

use crate::manifest::{DesiredState, EnvironmentSpec, Platform, Resource};
use crate::observed::{
    CompareMethod, DeployStatus, Knowledge, ObjectKey, ObjectKind, ObservedEnv, ObservedState,
};

/// Knobs of the planner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanOptions {
    /// False when anything in this pass failed to load or decrypt: no deletes at all.
    pub allow_deletes: bool,
    /// Refuse an environment's deletes when they exceed this share of its managed objects
    /// (and there is more than one).
    pub max_delete_share: f64,
    /// The time of the pass (None: quiet periods count as over).
    pub now: Option<chrono::DateTime<chrono::Utc>>,
    /// After variable writes, wait this long without further writes before the one redeploy.
    pub redeploy_quiet: std::time::Duration,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            allow_deletes: true,
            max_delete_share: 0.30,
            now: None,
            redeploy_quiet: std::time::Duration::ZERO,
        }
    }
}

/// Plans the changes that converge `observed` to `desired`.
pub fn plan(desired: &DesiredState, observed: &ObservedState, opts: &PlanOptions) -> Plan {
    plan_envs(desired, observed, opts, None)
}

/// Like [`plan`], for the environments in `only` alone (None: every one); environments no
/// manifest names any more are always reported.
pub fn plan_envs(
    desired: &DesiredState,
    observed: &ObservedState,
    opts: &PlanOptions,
    only: Option<&std::collections::BTreeSet<String>>,
) -> Plan {
    let empty = ObservedEnv::default();
    let mut plan = Plan::default();
    for (name, env) in &desired.environments {
        if only.is_some_and(|o| !o.contains(name)) {
            continue;
        }
        let obs = observed.environments.get(name).unwrap_or(&empty);
        if !env.spec.active {
            plan.notices.push(notice(
                name,
                Severity::Info,
                "Suspended",
                "active: false; observed, never written",
            ));
            // Only an operator's own rollback goes through (one asked for while the
            // environment is suspended; a manifest's active: false refuses it earlier).
            if obs
                .rollback_to
                .as_ref()
                .is_some_and(|(_, why)| why.starts_with(crate::observed::MANUAL_ROLLBACK))
            {
                let mut changes = Vec::new();
                deployments(desired, env, obs, opts, &mut changes, &mut plan.notices);
                plan.changes.extend(changes);
            }
            continue;
        }
        if let Knowledge::Partial(reason) = &obs.knowledge {
            plan.notices.push(notice(
                name,
                Severity::Warning,
                "ObserveFailed",
                &format!(
                    "not planned: observing {} failed: {reason}",
                    env.spec.platform.title()
                ),
            ));
            continue;
        }
        let mut changes = Vec::new();
        variables(desired, env, obs, observed, &mut changes);
        domains(desired, env, obs, observed, &mut changes);
        let refused = gate_deletes(name, obs, observed, opts, &mut changes, &mut plan.notices);
        // After the gate: a redeploy follows only variable writes that will happen.
        deployments(desired, env, obs, opts, &mut changes, &mut plan.notices);
        if refused {
            // A plan beyond the cap is refused whole: the creates of a mistaken manifest (a
            // renamed key, a wrong environment) would be as wrong as its deletes, and they
            // would dilute the share until a later pass let the deletes through.
            changes.retain(|c| !c.action.is_write());
        }
        // What exists and tether has not managed yet is adopted, not created.
        // A refused plan adopts nothing either: adopting would dilute the share as well.
        for c in &mut changes {
            c.adopt = !refused
                && matches!(c.action, Action::Noop | Action::Update)
                && !observed.inventory.contains(&c.key);
        }
        let held: Vec<&str> = desired
            .secrets
            .placeholders
            .iter()
            .filter(|p| &p.environment == name)
            .map(|p| p.key.as_str())
            .collect();
        if !held.is_empty() {
            plan.notices.push(notice(
                name,
                Severity::Warning,
                "Placeholder",
                &format!(
                    "{} left as on the platform: a placeholder until a person fills it in ({})",
                    plural(held.len(), "value"),
                    held.join(", ")
                ),
            ));
            plan.placeholders
                .extend(held.iter().map(|k| format!("{name}/{k}")));
        }
        plan.changes.extend(changes);
    }
    for name in observed.environments.keys() {
        if !desired.environments.contains_key(name)
            && observed.inventory.iter().any(|k| &k.environment == name)
        {
            plan.notices.push(notice(name, Severity::Info, "Orphaned", "no Environment manifest names it any more; its objects are left in place and no longer managed"));
        }
    }
    plan.changes.sort_by(|a, b| order(a).cmp(&order(b)));
    plan.notices.sort();
    plan
}

fn notice(env: &str, severity: Severity, reason: &str, message: &str) -> Notice {
    Notice {
        environment: env.into(),
        severity,
        reason: reason.into(),
        message: message.into(),
    }
}

/// The phase a change is applied in: the database and its secrets, then app variables, then
/// deployments, then domains, then certificates.
pub fn phase(c: &Change) -> u8 {
    match (c.key.kind, c.platform) {
        (ObjectKind::Variable, Platform::Supabase) => 0,
        (ObjectKind::Variable, _) => 1,
        (ObjectKind::Deployment, _) => 2,
        (ObjectKind::Domain, _) => 3,
        (ObjectKind::Certificate | ObjectKind::Backup | ObjectKind::Monitor, _) => 4,
    }
}

fn order(c: &Change) -> (u8, &str, Action, &str) {
    (phase(c), &c.key.environment, c.action, &c.key.name)
}

fn variables(
    desired: &DesiredState,
    env: &Resource<EnvironmentSpec>,
    obs: &ObservedEnv,
    observed: &ObservedState,
    out: &mut Vec<Change>,
) {
    let name = env.name();
    let platform = env.spec.platform;
    let wanted = desired.variables.get(name);
    for (key, dv) in wanted.into_iter().flat_map(|m| m.iter()) {
        let secret = dv.value.is_secret();
        let platform_type = env
            .spec
            .vercel
            .as_ref()
            .map(|v| v.var_type(secret).to_string());
        let current = obs.variables.get(key);
        // A secret Vercel already keeps unreadable (encrypted or sensitive) stays as it is.
        let kept = |ov: &crate::observed::ObservedVar| {
            secret && matches!(ov.platform_type.as_deref(), Some("encrypted" | "sensitive"))
        };
        let type_changed = current.is_some_and(|ov| {
            platform_type.is_some() && ov.platform_type != platform_type && !kept(ov)
        });
        let action = match current {
            None => Action::Create,
            Some(ov) => {
                let want = match ov.method {
                    CompareMethod::Digest => &dv.digest_fingerprint,
                    CompareMethod::Value | CompareMethod::LastWrite => &dv.fingerprint,
                };
                let same_value = ov.fingerprint.as_ref() == Some(want);
                let same_type =
                    platform_type.is_none() || ov.platform_type == platform_type || kept(ov);
                if same_value && same_type {
                    Action::Noop
                } else {
                    Action::Update
                }
            }
        };
        out.push(Change {
            adopt: false,
            action,
            key: ObjectKey::new(name, ObjectKind::Variable, key),
            platform,
            detail: Detail::Variable {
                value: (action != Action::Noop).then(|| dv.value.clone()),
                secret,
                platform_type,
                type_changed,
                fingerprint: Some(dv.fingerprint),
                id: current.and_then(|c| c.id.clone()),
            },
        });
    }
    for (key, ov) in &obs.variables {
        let k = ObjectKey::new(name, ObjectKind::Variable, key);
        if wanted.is_some_and(|w| w.contains_key(key))
            || !observed.inventory.contains(&k)
            || desired.secrets.is_placeholder(name, key)
        {
            continue;
        }
        out.push(Change {
            adopt: false,
            action: Action::Delete,
            key: k,
            platform,
            detail: Detail::Variable {
                value: None,
                secret: false,
                platform_type: None,
                type_changed: false,
                fingerprint: None,
                id: ov.id.clone(),
            },
        });
    }
}

fn deployments(
    desired: &DesiredState,
    env: &Resource<EnvironmentSpec>,
    obs: &ObservedEnv,
    opts: &PlanOptions,
    out: &mut Vec<Change>,
    notices: &mut Vec<Notice>,
) {
    let name = env.name();
    let platform = env.spec.platform;
    if platform == Platform::Supabase {
        return;
    }
    let active = obs.active_deployment();
    let from_commit = active.and_then(|d| d.commit.clone());
    if let Some((to, reason)) = &obs.rollback_to {
        out.push(Change {
            adopt: false,
            action: Action::Rollback,
            key: ObjectKey::new(name, ObjectKind::Deployment, name),
            platform,
            detail: Detail::Deployment {
                commit: None,
                branch: None,
                from_commit,
                reason: reason.clone(),
                target_deployment: Some(to.clone()),
            },
        });
        return;
    }
    // Variables written in this pass, or earlier and not yet built: one redeploy follows, once
    // the writes have been quiet for `redeploy_quiet` and no build is running (so five quick
    // edits cost one build, and no build runs with stale variables).
    let vars_changed = out
        .iter()
        .any(|c| c.key.kind == ObjectKind::Variable && c.action.is_write());
    let since = if vars_changed {
        opts.now
    } else {
        obs.redeploy_needed_since
    };
    let redeploy_wanted = vars_changed || obs.redeploy_needed_since.is_some();
    let quiet_over = match (since, opts.now) {
        (Some(s), Some(now)) => {
            now - s >= chrono::Duration::from_std(opts.redeploy_quiet).unwrap_or_default()
        }
        _ => true,
    };
    let building = obs
        .deployments
        .iter()
        .take(3)
        .any(|d| d.status.in_progress());
    let wait_notice = |notices: &mut Vec<Notice>| {
        let why = if building {
            "a build is running"
        } else {
            "waiting for variable writes to settle"
        };
        notices.push(notice(
            name,
            Severity::Info,
            "RedeployPending",
            &format!("variables changed; one redeploy follows ({why})"),
        ));
    };
    let Some(dep) = desired.deployment_of(name) else {
        if redeploy_wanted && active.is_some() {
            if quiet_over && !building {
                out.push(deploy_change(
                    name,
                    platform,
                    None,
                    None,
                    from_commit,
                    "variables changed",
                ));
            } else {
                wait_notice(notices);
            }
        }
        return;
    };
    let commit = &dep.spec.commit;
    let same = |c: &Option<String>| {
        c.as_deref()
            .is_some_and(|c| c.starts_with(commit.as_str()) || commit.starts_with(c))
    };
    if obs
        .held_commits
        .iter()
        .any(|h| h.starts_with(commit.as_str()) || commit.starts_with(h.as_str()))
    {
        notices.push(notice(name, Severity::Warning, "CommitHeld", &format!(
            "commit {} is held after a rollback; it will not be deployed again until the manifest names another commit",
            short(commit)
        )));
        return;
    }
    let newest_for_commit = obs.deployments.iter().find(|d| same(&d.commit));
    let key_commit = Some(commit.clone());
    match newest_for_commit {
        None => out.push(deploy_change(
            name,
            platform,
            key_commit,
            Some(dep.spec.branch.clone()),
            from_commit,
            "the pinned commit changed",
        )),
        Some(d) if d.status == DeployStatus::Failed || d.status == DeployStatus::Cancelled => {
            notices.push(notice(
                name,
                Severity::Blocked,
                "DeployFailed",
                &format!(
                    "the deploy of {} ended {} ({}); fix the build and pin a new commit",
                    short(commit),
                    d.status.as_str(),
                    d.platform_status
                ),
            ));
        }
        Some(_) if redeploy_wanted && quiet_over && !building => out.push(deploy_change(
            name,
            platform,
            key_commit,
            Some(dep.spec.branch.clone()),
            from_commit,
            "variables changed",
        )),
        Some(d) => {
            if redeploy_wanted {
                wait_notice(notices);
            }
            out.push(Change {
                adopt: false,
                action: Action::Noop,
                key: ObjectKey::new(name, ObjectKind::Deployment, name),
                platform,
                detail: Detail::Deployment {
                    commit: d.commit.clone(),
                    branch: d.branch.clone(),
                    from_commit: None,
                    reason: d.status.as_str().into(),
                    target_deployment: None,
                },
            })
        }
    }
}

fn deploy_change(
    env: &str,
    platform: Platform,
    commit: Option<String>,
    branch: Option<String>,
    from_commit: Option<String>,
    reason: &str,
) -> Change {
    Change {
        adopt: false,
        action: Action::Deploy,
        key: ObjectKey::new(env, ObjectKind::Deployment, env),
        platform,
        detail: Detail::Deployment {
            commit,
            branch,
            from_commit,
            reason: reason.into(),
            target_deployment: None,
        },
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn short(c: &str) -> &str {
    &c[..c.len().min(7)]
}

fn domains(
    desired: &DesiredState,
    env: &Resource<EnvironmentSpec>,
    obs: &ObservedEnv,
    observed: &ObservedState,
    out: &mut Vec<Change>,
) {
    let name = env.name();
    let platform = env.spec.platform;
    let wanted: Vec<_> = desired.domains_of(name).collect();
    for d in &wanted {
        let current = obs.domains.get(&d.spec.name);
        // Ask the platform to verify (or, on Supabase, to move the hostname on) only once DNS
        // is in place: tether confirms propagation before it asks for a certificate.
        let dns_ok = current.is_some_and(|c| c.dns_propagated != Some(false));
        let cert_active = current
            .and_then(|c| c.certificate.as_ref())
            .is_some_and(|c| {
                matches!(
                    c.status.to_ascii_lowercase().as_str(),
                    "active" | "valid" | "issued"
                )
            });
        let nudge = match (current, platform) {
            (Some(c), Platform::Vercel) => !c.verified && dns_ok,
            (Some(_), Platform::Supabase) => !cert_active && dns_ok,
            _ => false,
        };
        out.push(Change {
            adopt: false,
            action: match (current, nudge) {
                (None, _) => Action::Create,
                (Some(_), true) => Action::Update,
                (Some(_), false) => Action::Noop,
            },
            key: ObjectKey::new(name, ObjectKind::Domain, &d.spec.name),
            platform,
            detail: Detail::Domain {
                hostname: d.spec.name.clone(),
                port: d.spec.port,
                id: current.map(|c| c.id.clone()),
            },
        });
        // Certificates: retry issuance where the platform allows it, once DNS is in place and
        // the backoff (hours, doubling) is over.
        if let (Some(c), Some(_)) = (current, desired.certificate_for(&d.spec.name)) {
            let pc = c.certificate.as_ref();
            let failed_retryable =
                pc.is_some_and(|p| p.retryable && p.status.to_ascii_uppercase().contains("FAILED"));
            let vercel_missing =
                platform == Platform::Vercel && pc.is_some_and(|p| p.status == "pending");
            let retry = c.verified
                && dns_ok
                && c.issue_due
                && (failed_retryable && platform == Platform::Railway || vercel_missing);
            if retry {
                out.push(Change {
                    adopt: false,
                    action: Action::Update,
                    key: ObjectKey::new(name, ObjectKind::Certificate, &d.spec.name),
                    platform,
                    detail: Detail::Certificate {
                        hostname: d.spec.name.clone(),
                        reason: if vercel_missing {
                            "issue the certificate".into()
                        } else {
                            "retry issuance".into()
                        },
                    },
                });
            }
        }
    }
    for (host, od) in &obs.domains {
        let k = ObjectKey::new(name, ObjectKind::Domain, host);
        if wanted.iter().any(|d| &d.spec.name == host) || !observed.inventory.contains(&k) {
            continue;
        }
        out.push(Change {
            adopt: false,
            action: Action::Delete,
            key: k,
            platform,
            detail: Detail::Domain {
                hostname: host.clone(),
                port: None,
                id: Some(od.id.clone()),
            },
        });
    }
}

/// Withholds deletes on partial knowledge, and refuses them beyond the blast-radius cap
/// (true: the environment's plan is refused).
fn gate_deletes(
    env: &str,
    obs: &ObservedEnv,
    observed: &ObservedState,
    opts: &PlanOptions,
    changes: &mut Vec<Change>,
    notices: &mut Vec<Notice>,
) -> bool {
    let deletes = changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .count();
    if deletes == 0 {
        return false;
    }
    let why = if !opts.allow_deletes {
        Some((
            Severity::Warning,
            "DeletesWithheld",
            format!(
                "{deletes} delete(s) withheld: the manifests did not all load and decrypt in this pass"
            ),
        ))
    } else if obs.knowledge != Knowledge::Complete {
        Some((
            Severity::Warning,
            "DeletesWithheld",
            format!("{deletes} delete(s) withheld: the environment was not fully observed"),
        ))
    } else {
        let managed = observed
            .inventory
            .iter()
            .filter(|k| k.environment == env)
            .count()
            .max(1);
        let share = deletes as f64 / managed as f64;
        (deletes > 1 && share > opts.max_delete_share).then(|| (Severity::Blocked, "BlastRadius", format!(
            "refused to delete {deletes} of {managed} managed objects ({:.0}% > the {:.0}% cap), and nothing else in {env} is written: check the manifests, or raise --max-delete-share",
            share * 100.0, opts.max_delete_share * 100.0
        )))
    };
    let Some((sev, reason, msg)) = why else {
        return false;
    };
    changes.retain(|c| c.action != Action::Delete);
    notices.push(notice(env, sev, reason, &msg));
    sev == Severity::Blocked
}
