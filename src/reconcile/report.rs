//! From the loop's state to status: each resource's conditions, each environment's file and
//! the index; and the summary of one pass.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::Reconciler;
use super::record::cert_ok;
use crate::observed::*;
use crate::plan::Severity;
use crate::status::*;

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    pub observed: usize,
    /// Changes attempted.
    pub writes: usize,
    pub api_calls: u64,
    pub duration: Duration,
    pub counts: Counts,
    /// Environment → (when to look again, observe afresh).
    pub next: BTreeMap<String, (Duration, bool)>,
}

fn conditions(state: State, reason: &str, message: &str) -> Vec<Condition> {
    let now = Utc::now();
    let c = |kind: &str, on: bool| Condition {
        kind: kind.into(),
        status: if on { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: now,
    };
    match state {
        State::Ready => vec![c("Ready", true)],
        State::Reconciling => vec![c("Ready", false), c("Reconciling", true)],
        State::Stalled => vec![c("Ready", false), c("Stalled", true)],
    }
}

struct Res {
    state: State,
    reason: String,
    message: String,
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

pub(super) fn build(r: &Reconciler) -> (Index, Vec<EnvStatus>) {
    let now = Utc::now();
    let mut envs = Vec::new();
    let mut summary = Counts::default();
    let mut summaries = Vec::new();
    let Some(desired) = r.desired.as_ref() else {
        let index = Index {
            schema_version: SCHEMA_VERSION,
            generated_at: now,
            manifests: r.manifests.clone(),
            summary,
            environments: vec![],
            first_pass_done: r.first_pass_done,
        };
        return (index, envs);
    };
    for (name, env) in &desired.environments {
        let empty = ObservedEnv::default();
        let obs = r.observed.environments.get(name).unwrap_or(&empty);
        let observe_err = r.observe_errors.get(name);
        let mut resources = Vec::new();
        let error_state = |e: &crate::provider::ProviderError| {
            if e.is_retryable() {
                State::Reconciling
            } else {
                State::Stalled
            }
        };

        for (key, dv) in desired.variables.get(name).into_iter().flatten() {
            let okey = ObjectKey::new(name, ObjectKind::Variable, key);
            let ov = obs.variables.get(key);
            let want = |v: &ObservedVar| {
                if v.method == CompareMethod::Digest {
                    &dv.digest_fingerprint
                } else {
                    &dv.fingerprint
                }
            };
            let synced = ov.is_some_and(|v| v.fingerprint.as_ref() == Some(want(v)));
            let outcome_err = r.outcomes.get(&okey).and_then(|o| o.error.as_ref());
            let (state, reason, message) = match (outcome_err, observe_err, synced) {
                (Some(e), _, _) => (error_state(e), e.reason().to_string(), e.to_string()),
                (None, Some(e), _) => (error_state(e), e.reason().to_string(), e.to_string()),
                (None, None, true) => (
                    State::Ready,
                    "Synced".into(),
                    "the platform has the desired value".into(),
                ),
                (None, None, false) if !env.spec.active => (
                    State::Reconciling,
                    "Suspended".into(),
                    "differs, and the environment is suspended".into(),
                ),
                _ => (
                    State::Reconciling,
                    "Pending".into(),
                    "not yet written".into(),
                ),
            };
            let mut rs = resource(r, &okey, state, &reason, &message, synced);
            rs.desired_digest = Some(format!("hmac-sha256:{}", short(&dv.fingerprint.0)));
            rs.compare_method = ov.map(|v| v.method);
            rs.observed_id = ov.and_then(|v| v.id.clone());
            resources.push(rs);
        }

        if let Some(dep) = desired.deployment_of(name) {
            let okey = ObjectKey::new(name, ObjectKind::Deployment, name);
            let commit = &dep.spec.commit;
            let found = obs.deployments.iter().find(|d| {
                d.commit
                    .as_deref()
                    .is_some_and(|c| c.starts_with(commit.as_str()) || commit.starts_with(c))
            });
            let held = obs
                .held_commits
                .iter()
                .any(|h| h.starts_with(commit.as_str()) || commit.starts_with(h.as_str()));
            let res = match (found, held) {
                (_, true) => Res {
                    state: State::Stalled,
                    reason: "Held".into(),
                    message: format!(
                        "commit {} is held after a rollback; pin another commit",
                        short(commit)
                    ),
                },
                (None, _) => Res {
                    state: State::Reconciling,
                    reason: "Pending".into(),
                    message: format!("deploy of {} pending", short(commit)),
                },
                (Some(d), _) if d.status == DeployStatus::Success && d.active => Res {
                    state: State::Ready,
                    reason: "Deployed".into(),
                    message: format!("{} serving", short(commit)),
                },
                (Some(d), _) if d.status.in_progress() => Res {
                    state: State::Reconciling,
                    reason: "Progressing".into(),
                    message: format!(
                        "{} is {} ({})",
                        short(commit),
                        d.status.as_str(),
                        d.platform_status
                    ),
                },
                (Some(d), _) => Res {
                    state: State::Stalled,
                    reason: "DeployFailed".into(),
                    message: format!(
                        "{} ended {} ({}); pin a new commit",
                        short(commit),
                        d.status.as_str(),
                        d.platform_status
                    ),
                },
            };
            let mut rs = resource(
                r,
                &okey,
                res.state,
                &res.reason,
                &res.message,
                res.state == State::Ready,
            );
            rs.observed_id = found.map(|d| d.id.clone());
            rs.url = found.and_then(|d| d.url.clone());
            rs.desired_digest = Some(format!("commit:{}", short(commit)));
            rs.detail = found.map(|d| json!({
                "status": d.status.as_str(), "platformStatus": d.platform_status, "commit": d.commit, "branch": d.branch,
                "platformDeploymentId": d.id, "startedAt": d.created_at, "url": d.url,
            }));
            resources.push(rs);
        }

        for d in desired.domains_of(name) {
            let host = &d.spec.name;
            let okey = ObjectKey::new(name, ObjectKind::Domain, host);
            let od = obs.domains.get(host);
            let res = match od {
                None => Res {
                    state: State::Reconciling,
                    reason: "Pending".into(),
                    message: "not yet attached".into(),
                },
                Some(o) if !o.verified => {
                    let recs: Vec<String> = o
                        .required_records
                        .iter()
                        .map(|x| format!("{} {} → {}", x.record_type, x.name, x.value))
                        .collect();
                    Res {
                        state: State::Reconciling,
                        reason: "AwaitingVerification".into(),
                        message: if recs.is_empty() {
                            "waiting for the platform to verify it".into()
                        } else {
                            format!("waiting for verification; create {}", recs.join("; "))
                        },
                    }
                }
                Some(_) => Res {
                    state: State::Ready,
                    reason: "Verified".into(),
                    message: "attached and verified".into(),
                },
            };
            let mut rs = resource(r, &okey, res.state, &res.reason, &res.message, od.is_some());
            rs.observed_id = od.map(|o| o.id.clone());
            rs.url = Some(format!("https://{host}"));
            rs.detail = od.map(|o| json!({"dnsStatus": if o.verified { "verified" } else if o.required_records.is_empty() { "pending" } else { "configured" }, "requiredRecords": o.required_records}));
            resources.push(rs);

            if let Some(cert) = desired.certificate_for(host) {
                let ckey = ObjectKey::new(name, ObjectKind::Certificate, host);
                let pc = od.and_then(|o| o.certificate.as_ref());
                let (state, reason, message, status) = match pc {
                    Some(c) if cert_ok(&c.status) => (
                        State::Ready,
                        "Active",
                        format!(
                            "issued{}",
                            c.expires_at
                                .map(|e| format!(", expires {}", e.format("%Y-%m-%d")))
                                .unwrap_or_default()
                        ),
                        "active",
                    ),
                    Some(c) if c.error.is_some() => (
                        State::Reconciling,
                        "IssueFailed",
                        format!("issuance failed: {}", c.error.clone().unwrap_or_default()),
                        "failed",
                    ),
                    _ => (
                        State::Reconciling,
                        "Pending",
                        "waiting for the platform to issue it".to_string(),
                        "pending",
                    ),
                };
                let mut rs = resource(r, &ckey, state, reason, &message, state == State::Ready);
                rs.name = cert.meta.name.clone();
                rs.detail = Some(json!({
                    "domain": host, "status": status, "platformStatus": pc.map(|c| c.status.clone()),
                    "issuedAt": pc.and_then(|c| c.issued_at), "expiresAt": pc.and_then(|c| c.expires_at),
                    "fingerprintSha256": pc.and_then(|c| c.fingerprint_sha256.clone()),
                    "warningDays": cert.spec.warning_days, "criticalDays": cert.spec.critical_days,
                }));
                resources.push(rs);
            }
        }

        let notices: Vec<_> = r
            .last_plan
            .notices
            .iter()
            .filter(|n| &n.environment == name)
            .cloned()
            .collect();
        let worst = resources
            .iter()
            .map(|x| x.state)
            .max()
            .unwrap_or(State::Ready);
        let blocked = notices.iter().any(|n| n.severity == Severity::Blocked);
        let state = if blocked { State::Stalled } else { worst };
        let mut counts = Counts::default();
        for x in &resources {
            counts.add(x.state);
        }
        if env.spec.active {
            summary.resources += counts.resources;
            summary.ready += counts.ready;
            summary.reconciling += counts.reconciling;
            summary.stalled += counts.stalled;
        }
        let (reason, message) = match (env.spec.active, state) {
            (false, _) => (
                "Suspended",
                "active: false — observed, never written".to_string(),
            ),
            (_, State::Ready) => ("Converged", format!("{} resources Ready", counts.ready)),
            (_, State::Reconciling) => (
                "Progressing",
                format!("{} of {} resources Ready", counts.ready, counts.resources),
            ),
            (_, State::Stalled) => (
                "NeedsAttention",
                notices
                    .iter()
                    .find(|n| n.severity == Severity::Blocked)
                    .map(|n| n.message.clone())
                    .unwrap_or_else(|| format!("{} resources Stalled", counts.stalled)),
            ),
        };
        summaries.push(EnvSummary {
            name: name.clone(),
            platform: env.spec.platform.to_string(),
            state,
            counts,
            file: env_file(name),
        });
        envs.push(EnvStatus {
            schema_version: SCHEMA_VERSION,
            environment: name.clone(),
            platform: env.spec.platform.to_string(),
            app: env.spec.app.clone(),
            env_type: env.spec.env_type.as_str().into(),
            active: env.spec.active,
            observed_at: obs.observed_at,
            url: obs.url.clone(),
            state,
            conditions: conditions(state, reason, &message),
            resources,
            notices,
            deployments: r
                .ledger(name)
                .map(|mut l| {
                    l.truncate(20);
                    l
                })
                .unwrap_or_default(),
            hold: r.hold(name).ok().flatten(),
        });
    }
    let index = Index {
        schema_version: SCHEMA_VERSION,
        generated_at: now,
        manifests: r.manifests.clone(),
        summary,
        environments: summaries,
        first_pass_done: r.first_pass_done,
    };
    (index, envs)
}

fn resource(
    r: &Reconciler,
    key: &ObjectKey,
    state: State,
    reason: &str,
    message: &str,
    synced: bool,
) -> ResourceStatus {
    let outcome = r.outcomes.get(key);
    ResourceStatus {
        kind: key.kind.as_str().into(),
        name: key.name.clone(),
        state,
        desired_digest: None,
        observed_id: None,
        url: None,
        synced,
        last_synced: r.synced_at.get(key).copied(),
        last_attempted: outcome.map(|o| o.at),
        conditions: conditions(state, reason, message),
        last_error: outcome.and_then(|o| o.error.as_ref().map(|e| e.to_string())),
        compare_method: None,
        drift: r.drift.get(key).cloned(),
        detail: None,
    }
}
