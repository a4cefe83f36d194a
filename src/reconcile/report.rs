//! From the loop's state to status: each resource's state and conditions, one environment's
//! status at a time; and the summary of one pass.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::Reconciler;
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
    /// Environment → (when to look again, and how).
    pub next: BTreeMap<String, (Duration, super::Look)>,
    /// The status this pass wrote.
    pub status: Option<(Index, Statuses)>,
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

/// One environment's status: each resource's state and conditions, its notices and ledger.
pub(super) fn build_env(
    r: &Reconciler,
    name: &String,
    env: &crate::manifest::Resource<crate::manifest::EnvironmentSpec>,
) -> EnvStatus {
    let desired = r.desired.as_ref().expect("built with a desired state");
    {
        let suspension = r.suspension(name);
        let active = env.spec.active && suspension.is_none();
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

        for (key, dv) in desired
            .variables
            .get(name)
            .into_iter()
            .flat_map(|m| m.iter())
        {
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
                (None, None, false) if !active => (
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
            rs.desired_digest = Some(format!("hmac-sha256:{}", short(&dv.fingerprint.hex())));
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
            rs.detail = found.map(|d| Box::new(json!({
                "status": d.status.as_str(), "platformStatus": d.platform_status, "commit": d.commit, "branch": d.branch,
                "platformDeploymentId": d.id, "startedAt": d.created_at, "url": d.url,
            })));
            resources.push(rs);
        }

        for d in desired.domains_of(name) {
            let host = &d.spec.name;
            let okey = ObjectKey::new(name, ObjectKind::Domain, host);
            let od = obs.domains.get(host);
            let dns = r.dns_reports.get(host);
            let res = domain_state(od, dns);
            let mut rs = resource(r, &okey, res.state, &res.reason, &res.message, od.is_some());
            rs.observed_id = od.map(|o| o.id.clone());
            rs.url = Some(format!("https://{host}"));
            rs.detail = od.map(|o| -> Box<serde_json::Value> {
                let dns_status = match dns {
                    Some(rep) => rep.dns_status.as_str(),
                    None if o.verified => "verified",
                    None if o.required_records.is_empty() => "pending",
                    None => "configured",
                };
                Box::new(json!({"dnsStatus": dns_status, "dnsChecked": dns.is_some(), "requiredRecords": o.required_records, "checks": dns.map(|d| &d.checks)}))
            });
            resources.push(rs);

            if let Some(cert) = desired.certificate_for(host) {
                let ckey = ObjectKey::new(name, ObjectKind::Certificate, host);
                let pc = od.and_then(|o| o.certificate.as_ref());
                let cs = crate::certs::evaluate(pc, r.probe_of(host), &cert.spec, Utc::now());
                let (state, reason) = match cs.status {
                    crate::certs::CertState::Active => (
                        State::Ready,
                        if cs.level == crate::certs::CertLevel::Ok {
                            "Active"
                        } else {
                            "Expiring"
                        },
                    ),
                    crate::certs::CertState::Pending
                        if r.cert_backoff(host).is_ok_and(|b| b.stuck(Utc::now())) =>
                    {
                        (State::Stalled, "IssuanceStuck")
                    }
                    crate::certs::CertState::Pending => (State::Reconciling, "Pending"),
                    crate::certs::CertState::Expired => (State::Stalled, "Expired"),
                    crate::certs::CertState::Failed if pc.is_some_and(|p| p.retryable) => {
                        (State::Reconciling, "IssueFailed")
                    }
                    crate::certs::CertState::Failed => (State::Stalled, "Failed"),
                };
                let message = if reason == "IssuanceStuck" {
                    let records = od
                        .map(|o| {
                            o.required_records
                                .iter()
                                .map(|x| format!("{} {} → {}", x.record_type, x.name, x.value))
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                        .unwrap_or_default();
                    format!(
                        "no certificate {} h after the domain was verified ({}); check its DNS records ({records}) and the platform's dashboard",
                        crate::certs::retry::STUCK_AFTER.num_hours(),
                        cs.message
                    )
                } else {
                    cs.message.clone()
                };
                let mut rs = resource(r, &ckey, state, reason, &message, state == State::Ready);
                rs.name = cert.meta.name.clone();
                let mut detail = serde_json::to_value(&cs).unwrap_or_default();
                if let Some(obj) = detail.as_object_mut() {
                    obj.insert("domain".into(), json!(host));
                    obj.insert("platformStatus".into(), json!(pc.map(|c| c.status.clone())));
                    obj.insert("warningDays".into(), json!(cert.spec.warning_days));
                    obj.insert("criticalDays".into(), json!(cert.spec.critical_days));
                    obj.insert(
                        "nextIssuanceAttempt".into(),
                        json!(r.cert_backoff(host).ok().and_then(|b| b.next_attempt)),
                    );
                }
                rs.detail = Some(Box::new(detail));
                resources.push(rs);
            }
        }

        if let Some(book) = &r.opts.monitor_book {
            let book = book.lock().expect("book");
            for m in desired.monitors_of(name) {
                let okey = ObjectKey::new(name, ObjectKind::Monitor, m.name());
                let summary = book.summary(m.name(), Utc::now());
                let (state, reason, message) = match &summary {
                    Some(s) if s.latest.is_some() => {
                        let latest = s.latest.as_ref().map(|l| l.outcome.to_string()).unwrap_or_default();
                        let p95 = s.last_5_minutes.p95.map(|d| format!("; p95 {} ms over 5 min", d.as_millis())).unwrap_or_default();
                        let up = s.monthly_uptime.map(|u| format!("; uptime {u:.3} % this month")).unwrap_or_default();
                        let alerts: Vec<&str> = s.alerts.iter().map(|a| a.message.as_str()).collect();
                        let text = if alerts.is_empty() { format!("{latest}{p95}{up}") } else { alerts.join("; ") };
                        match s.status {
                            crate::monitor::Health::Healthy => (State::Ready, "Healthy", text),
                            crate::monitor::Health::Warning => (State::Ready, "Warning", text),
                            crate::monitor::Health::Critical => (State::Stalled, "Critical", text),
                        }
                    }
                    _ => (State::Reconciling, "NoData", "waiting for the first check (checks start once the environment's deployment and domains are Ready)".to_string()),
                };
                let mut rs = resource(
                    r,
                    &okey,
                    state,
                    reason,
                    &message,
                    summary.as_ref().is_some_and(|s| s.latest.is_some()),
                );
                rs.url = Some(m.spec.url.clone());
                rs.detail = summary
                    .and_then(|s| serde_json::to_value(s).ok())
                    .map(Box::new);
                resources.push(rs);
            }
        }

        if r.opts.backups {
            for p in desired
                .backup_policies
                .values()
                .filter(|p| &p.spec.environment == name)
            {
                let okey = ObjectKey::new(name, ObjectKind::Backup, p.name());
                let detail =
                    crate::backup::policy_status(&r.store, p.name(), Some(&p.spec), Utc::now());
                let alert = detail["alert"].as_str().map(String::from);
                let (state, reason, message) = match (
                    &alert,
                    detail["lastCompleted"].is_null(),
                    detail["due"].as_bool() == Some(true),
                ) {
                    (Some(a), _, _) => (State::Stalled, "BackupAlert", a.clone()),
                    (None, _, true) => (
                        State::Reconciling,
                        "Due",
                        "a backup is due and will be taken".to_string(),
                    ),
                    (None, true, false) => (
                        State::Ready,
                        "NoneYet",
                        format!(
                            "no backup yet; the first is due {}",
                            detail["nextDue"].as_str().unwrap_or("later")
                        ),
                    ),
                    (None, false, false) => (
                        State::Ready,
                        "Completed",
                        format!(
                            "last backup {}; next due {}",
                            detail["lastCompleted"]["createdAt"].as_str().unwrap_or("?"),
                            detail["nextDue"].as_str().unwrap_or("?")
                        ),
                    ),
                };
                let mut rs = resource(r, &okey, state, reason, &message, alert.is_none());
                rs.detail = Some(Box::new(detail));
                resources.push(rs);
            }
        }

        // A token the platform rejects (or none) blocks every resource of the environment
        // alike: nothing in it can progress until a person fixes the token.
        if let Some(e) = observe_err.filter(|e| !e.is_retryable()) {
            for x in resources.iter_mut().filter(|x| x.state != State::Ready) {
                x.state = State::Stalled;
                x.conditions = conditions(State::Stalled, e.reason(), &e.to_string());
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
        let (reason, message) = match (active, state) {
            (false, _) if !env.spec.active => (
                "Suspended",
                "active: false — observed, never written".to_string(),
            ),
            (false, _) => (
                "Suspended",
                suspension
                    .map(|s| {
                        format!(
                            "suspended by {} at {} — observed, never written (`tether resume {name}` to write again)",
                            s.by,
                            s.at.format("%Y-%m-%d %H:%M UTC")
                        )
                    })
                    .unwrap_or_default(),
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
        EnvStatus {
            schema_version: SCHEMA_VERSION,
            environment: name.clone(),
            platform: env.spec.platform.to_string(),
            app: env.spec.app.clone(),
            env_type: env.spec.env_type.as_str().into(),
            active,
            suspended: suspension.cloned(),
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
        }
    }
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
        adopted: r.adopted_at.get(key).copied(),
        last_attempted: outcome.map(|o| o.at),
        conditions: conditions(state, reason, message),
        last_error: outcome.and_then(|o| o.error.as_ref().map(|e| e.to_string())),
        compare_method: None,
        drift: r.drift.get(key).cloned().map(Box::new),
        detail: None,
    }
}

/// A domain's state from the platform's word and tether's own DNS check.
fn domain_state(od: Option<&ObservedDomain>, dns: Option<&crate::dns::DnsReport>) -> Res {
    let Some(o) = od else {
        return Res {
            state: State::Reconciling,
            reason: "Pending".into(),
            message: "not yet attached".into(),
        };
    };
    if let Some(rep) = dns {
        if rep.dns_status == crate::dns::DnsStatus::Failed {
            return Res {
                state: State::Stalled,
                reason: "DnsConflict".into(),
                message: rep.summary(),
            };
        }
        if !(rep.propagated || o.required_records.is_empty() && o.verified) {
            return Res {
                state: State::Reconciling,
                reason: "AwaitingDns".into(),
                message: rep.summary(),
            };
        }
    }
    if !o.verified {
        let recs: Vec<String> = o
            .required_records
            .iter()
            .map(|x| format!("{} {} → {}", x.record_type, x.name, x.value))
            .collect();
        let message = match (recs.is_empty(), dns.is_some()) {
            (true, _) => "waiting for the platform to verify it".to_string(),
            (false, true) => "DNS is in place; waiting for the platform to verify it".to_string(),
            (false, false) => format!("waiting for verification; create {}", recs.join("; ")),
        };
        return Res {
            state: State::Reconciling,
            reason: "AwaitingVerification".into(),
            message,
        };
    }
    Res {
        state: State::Ready,
        reason: "Verified".into(),
        message: if dns.is_some() {
            "attached, verified, DNS in place".into()
        } else {
            "attached and verified".into()
        },
    }
}
