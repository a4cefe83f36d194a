//! Renders Railway's state as GraphQL answers: projects, custom domains, deployments.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::graphql::opt_str;
use super::railway::{RailwayDeployment, RailwayDomain, RailwayProject, RailwayState};
use super::state::{DeployStatus, Named, hex_of, plus_ms};

pub(crate) fn connection(nodes: Vec<Value>) -> Value {
    let edges: Vec<Value> = nodes.into_iter().map(|n| json!({ "node": n })).collect();
    json!({ "edges": edges })
}

pub(crate) fn project_json(p: &RailwayProject) -> Value {
    let named = |v: &[Named]| {
        connection(
            v.iter()
                .map(|n| json!({ "id": n.id, "name": n.name }))
                .collect(),
        )
    };
    json!({ "id": p.id, "name": p.name, "environments": named(&p.environments), "services": named(&p.services) })
}

/// `projects(first, after)`: a Relay connection whose cursors are project ids.
pub(crate) fn projects(r: &RailwayState, args: &Map<String, Value>) -> Value {
    let first = args
        .get("first")
        .and_then(Value::as_u64)
        .unwrap_or(50)
        .max(1) as usize;
    let start = match opt_str(args, "after") {
        Some(after) => r
            .projects
            .iter()
            .position(|p| p.id == after)
            .map_or(r.projects.len(), |i| i + 1),
        None => 0,
    };
    let page: Vec<&RailwayProject> = r.projects.iter().skip(start).take(first).collect();
    let edges: Vec<Value> = page
        .iter()
        .map(|p| json!({ "node": project_json(p), "cursor": p.id }))
        .collect();
    let has_next = start + page.len() < r.projects.len();
    json!({ "edges": edges, "pageInfo": { "hasNextPage": has_next, "endCursor": page.last().map(|p| p.id.clone()) } })
}

pub(crate) fn name_of<'a>(v: &'a [Named], id: &str) -> &'a str {
    v.iter()
        .find(|n| n.id == id)
        .map_or("app", |n| n.name.as_str())
}

pub(crate) fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The `*.up.railway.app` domain every service instance has.
pub(crate) fn service_domain(p: &RailwayProject, env: &str, service: &str) -> Value {
    let h = hex_of(&["service-domain", env, service], 32);
    let id = format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    );
    let domain = format!(
        "{}-{}-{}.up.railway.app",
        slug(name_of(&p.services, service)),
        slug(name_of(&p.environments, env)),
        &h[..4]
    );
    json!({ "id": id, "domain": domain, "suffix": "up.railway.app" })
}

/// A custom domain as `domains` and `customDomainCreate` return it, status as of `now`.
pub(crate) fn domain_json(d: &RailwayDomain, now: DateTime<Utc>) -> Value {
    let verified_at = plus_ms(d.created_at, d.verify_ms);
    let verified = now >= verified_at;
    let (host, zone) = d.domain.split_once('.').unwrap_or((d.domain.as_str(), ""));
    let target = format!("{}.up.railway.app", hex_of(&["cname", &d.id], 8));
    let token = format!("railway-verify={}", hex_of(&["verify", &d.id], 32));
    let record = |kind: &str, hostlabel: String, fqdn: String, value: &str, purpose: &str| {
        json!({
            "recordType": format!("DNS_RECORD_TYPE_{kind}"), "hostlabel": hostlabel, "fqdn": fqdn, "zone": zone,
            "requiredValue": value, "currentValue": if verified { value } else { "" },
            "status": if verified { "DNS_RECORD_STATUS_PROPAGATED" } else { "DNS_RECORD_STATUS_REQUIRES_UPDATE" },
            "purpose": format!("DNS_RECORD_PURPOSE_{purpose}"),
        })
    };
    let verify_host = format!("_railway-verify.{}", d.domain);
    let records = vec![
        record(
            "CNAME",
            host.to_string(),
            d.domain.clone(),
            &target,
            "TRAFFIC_ROUTE",
        ),
        record(
            "TXT",
            format!("_railway-verify.{host}"),
            verify_host.clone(),
            &token,
            "UNSPECIFIED",
        ),
    ];
    let issued_at = plus_ms(
        d.cert_requested_at
            .map_or(verified_at, |r| r.max(verified_at)),
        d.cert_ms,
    );
    let (cert_status, error, retryable, certs) = if !verified {
        ("VALIDATING_OWNERSHIP", Value::Null, Value::Null, vec![])
    } else if d.cert_failed {
        (
            "ISSUE_FAILED",
            json!("Certificate issuance failed: the ACME challenge could not be validated"),
            json!(true),
            vec![],
        )
    } else if now >= issued_at {
        let cert = json!({
            "issuedAt": issued_at, "expiresAt": issued_at + chrono::Duration::days(90), "domainNames": [d.domain],
            "fingerprintSha256": hex_of(&["cert", &d.id, &issued_at.to_rfc3339()], 64), "keyType": "KEY_TYPE_ECDSA",
        });
        ("VALID", Value::Null, Value::Null, vec![cert])
    } else {
        ("ISSUING", Value::Null, Value::Null, vec![])
    };
    json!({
        "id": d.id, "domain": d.domain, "projectId": d.project_id, "environmentId": d.environment_id,
        "serviceId": d.service_id, "targetPort": d.target_port, "createdAt": d.created_at, "syncStatus": "ACTIVE",
        "status": {
            "verified": verified, "verificationDnsHost": verify_host, "verificationToken": token,
            "certificateStatus": format!("CERTIFICATE_STATUS_TYPE_{cert_status}"),
            "certificateErrorMessage": error, "certificateRetryable": retryable,
            "dnsRecords": records, "certificates": certs, "cdnProvider": Value::Null,
        },
    })
}

pub(crate) fn deployment_json(r: &RailwayState, d: &RailwayDeployment) -> Value {
    let service = r
        .projects
        .iter()
        .find(|p| p.id == d.project_id)
        .map_or("app", |p| name_of(&p.services, &d.service_id));
    let static_url = format!("{}-{}.up.railway.app", slug(service), hex_of(&[&d.id], 6));
    let status = d.lifecycle.status;
    json!({
        "id": d.id, "status": status, "createdAt": d.lifecycle.created_at,
        "projectId": d.project_id, "environmentId": d.environment_id, "serviceId": d.service_id,
        "url": format!("https://{static_url}"), "staticUrl": static_url,
        "canRollback": matches!(status, DeployStatus::Success | DeployStatus::Removed),
        "canRedeploy": status.is_terminal(), "meta": d.meta,
    })
}

/// `deployments(input, first)`: newest first, filtered by scope and `status {in, notIn}`.
pub(crate) fn deployments(r: &RailwayState, i: &Map<String, Value>, first: usize) -> Value {
    let want = |key: &str, v: &str| opt_str(i, key).is_none_or(|w| w == v);
    let list = |key: &str| -> Option<Vec<String>> {
        let v = i.get("status")?.get(key)?.as_array()?;
        Some(
            v.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        )
    };
    let (only, not) = (list("in"), list("notIn"));
    let mut picked: Vec<(usize, &RailwayDeployment)> = r
        .deployments
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            want("projectId", &d.project_id)
                && want("environmentId", &d.environment_id)
                && want("serviceId", &d.service_id)
        })
        .filter(|(_, d)| {
            let s = serde_json::to_value(d.lifecycle.status).ok();
            let s = s
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            only.as_ref().is_none_or(|o| o.contains(&s))
                && !not.as_ref().is_some_and(|n| n.contains(&s))
        })
        .collect();
    picked.sort_by_key(|(i, d)| std::cmp::Reverse((d.lifecycle.created_at, *i)));
    let total = picked.len();
    picked.truncate(first);
    let edges: Vec<Value> = picked
        .iter()
        .map(|(_, d)| json!({ "node": deployment_json(r, d), "cursor": d.id }))
        .collect();
    let end = picked.last().map(|(_, d)| d.id.clone());
    json!({ "edges": edges, "pageInfo": { "hasNextPage": total > first, "endCursor": end } })
}
