//! Vercel project domains (add, list, verify, remove, DNS config) and certificates.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::http::{ApiRequest, Ctx, Reply, vercel_error};
use super::state::{SimState, hex_of, ms};
use super::vercel::{VercelCert, VercelDomain, VercelProject, bad_request};

/// Pages a list by its items' times (ms), newest first, honouring `limit`, `until` and
/// `since`: `next` is the time of the last item when older ones remain.
pub(crate) fn paginate<T>(
    mut items: Vec<(i64, T)>,
    req: &ApiRequest,
    default_limit: usize,
) -> (Vec<T>, Value) {
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    let num = |k: &str| req.query(k).and_then(|v| v.parse::<i64>().ok());
    let (until, since) = (num("until"), num("since"));
    items.retain(|(t, _)| until.is_none_or(|u| *t < u) && since.is_none_or(|s| *t > s));
    let limit = req
        .query("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default_limit)
        .clamp(1, 100);
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more {
        items.last().map(|(t, _)| *t)
    } else {
        None
    };
    let prev = items.first().map(|(t, _)| *t);
    let count = items.len();
    let page = items.into_iter().map(|(_, x)| x).collect();
    (page, json!({ "count": count, "next": next, "prev": prev }))
}

fn apex(name: &str) -> String {
    let labels: Vec<&str> = name.split('.').collect();
    labels[labels.len().saturating_sub(2)..].join(".")
}

fn domain_json(p: &VercelProject, d: &VercelDomain, now: DateTime<Utc>) -> Value {
    let verified = now >= d.verified_at();
    let mut out = json!({
        "name": d.name, "apexName": apex(&d.name), "projectId": p.id, "redirect": null,
        "redirectStatusCode": null, "gitBranch": d.git_branch, "customEnvironmentId": null,
        "createdAt": d.created_at.timestamp_millis(), "updatedAt": d.created_at.timestamp_millis(),
        "verified": verified,
    });
    if !verified {
        out["verification"] = json!([{
            "type": "TXT", "domain": format!("_vercel.{}", apex(&d.name)),
            "value": format!("vc-domain-verify={},{}", d.name, hex_of(&["vercel-verify", &p.id, &d.name], 20)),
            "reason": "pending_domain_verification",
        }]);
    }
    out
}

fn domain_missing(name: &str) -> Reply {
    vercel_error(
        404,
        "not_found",
        &format!("The domain {name} was not found on this project"),
    )
}

pub(crate) fn list_domains(
    state: &SimState,
    ctx: &Ctx,
    req: &ApiRequest,
    p: &str,
) -> Result<Reply, Reply> {
    let p = &state.vercel.projects[state.vercel.project(p)?];
    let items = p
        .domains
        .iter()
        .map(|d| (d.created_at.timestamp_millis(), domain_json(p, d, ctx.now)))
        .collect();
    let (domains, pagination) = paginate(items, req, 20);
    Ok(Reply::ok(
        json!({ "domains": domains, "pagination": pagination }),
    ))
}

pub(crate) fn add_domain(
    state: &mut SimState,
    ctx: &Ctx,
    req: &ApiRequest,
    p: &str,
) -> Result<Reply, Reply> {
    let pi = state.vercel.project(p)?;
    let body = req.body.as_ref();
    let name = body
        .and_then(|b| b.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if !name.contains('.') || name.starts_with('.') || name.contains(' ') {
        return Err(vercel_error(
            400,
            "invalid_domain",
            &format!("The domain {name:?} is not valid"),
        ));
    }
    for (i, other) in state.vercel.projects.iter().enumerate() {
        if other.domains.iter().any(|d| d.name == name) {
            let status = if i == pi { 400 } else { 409 };
            let msg = format!(
                "The domain {name} is already in use by {}",
                if i == pi {
                    "this project"
                } else {
                    "another project"
                }
            );
            return Err(vercel_error(status, "domain_already_in_use", &msg));
        }
    }
    let domain = VercelDomain {
        name,
        git_branch: body
            .and_then(|b| b.get("gitBranch"))
            .and_then(Value::as_str)
            .map(str::to_string),
        created_at: state.stamp(ctx.now),
        verify_ms: ms(ctx.timings.domain_verify),
        // Never, when Vercel does not issue by itself.
        cert_ms: if ctx.timings.vercel_self_issue {
            ms(ctx.timings.cert_issue)
        } else {
            -1
        },
        cert_issued: false,
    };
    let p = &mut state.vercel.projects[pi];
    let out = domain_json(p, &domain, ctx.now);
    p.domains.push(domain);
    Ok(Reply::ok(out))
}

pub(crate) fn verify_domain(
    state: &SimState,
    ctx: &Ctx,
    p: &str,
    name: &str,
) -> Result<Reply, Reply> {
    let p = &state.vercel.projects[state.vercel.project(p)?];
    let d = p
        .domains
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| domain_missing(name))?;
    if ctx.now < d.verified_at() {
        let msg = format!(
            "Domain _vercel.{} is missing the required TXT record",
            apex(&d.name)
        );
        return Err(vercel_error(400, "missing_txt_record", &msg));
    }
    Ok(Reply::ok(domain_json(p, d, ctx.now)))
}

pub(crate) fn remove_domain(state: &mut SimState, p: &str, name: &str) -> Result<Reply, Reply> {
    let pi = state.vercel.project(p)?;
    let domains = &mut state.vercel.projects[pi].domains;
    let before = domains.len();
    domains.retain(|d| !d.name.eq_ignore_ascii_case(name));
    if domains.len() == before {
        return Err(domain_missing(name));
    }
    Ok(Reply::ok(json!({})))
}

pub(crate) fn domain_config(
    state: &SimState,
    ctx: &Ctx,
    req: &ApiRequest,
    name: &str,
) -> Result<Reply, Reply> {
    let v = &state.vercel;
    let wanted = req.query("projectIdOrName").and_then(|p| v.find(p));
    let found = v.projects.iter().enumerate().find_map(|(i, p)| {
        let d = p
            .domains
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))?;
        wanted.is_none_or(|w| w == i).then_some((p, d))
    });
    let verified = found.is_some_and(|(_, d)| ctx.now >= d.verified_at());
    let seed = found.map_or(name, |(p, _)| p.id.as_str());
    Ok(Reply::ok(json!({
        "configuredBy": if verified { json!("CNAME") } else { Value::Null },
        "acceptedChallenges": ["dns-01", "http-01"],
        "misconfigured": !verified,
        "recommendedIPv4": [{ "rank": 1, "value": ["76.76.21.21"] }],
        "recommendedCNAME": [{ "rank": 1, "value": format!("{}.vercel-dns-017.com", hex_of(&["cname", seed], 16)) }],
    })))
}

fn cert_json(c: &VercelCert) -> Value {
    json!({
        "id": c.id, "cns": c.cns, "createdAt": c.created_at.timestamp_millis(),
        "expiresAt": c.expires_at.timestamp_millis(), "autoRenew": c.auto_renew,
    })
}

pub(crate) fn list_certs(state: &SimState, req: &ApiRequest) -> Result<Reply, Reply> {
    let items = state
        .vercel
        .certs
        .iter()
        .map(|c| (c.created_at.timestamp_millis(), cert_json(c)))
        .collect();
    let (certs, pagination) = paginate(items, req, 100);
    Ok(Reply::ok(
        json!({ "certs": certs, "pagination": pagination }),
    ))
}

pub(crate) fn issue_cert(
    state: &mut SimState,
    ctx: &Ctx,
    req: &ApiRequest,
) -> Result<Reply, Reply> {
    let cns: Vec<String> = req
        .body
        .as_ref()
        .and_then(|b| b.get("cns"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if cns.is_empty() {
        return Err(bad_request(
            "Invalid request: `cns` must name at least one domain.",
        ));
    }
    let created_at = state.stamp(ctx.now);
    let cert = VercelCert {
        id: format!("cert_{}", state.next()),
        cns,
        created_at,
        expires_at: created_at + chrono::Duration::days(90),
        auto_renew: true,
    };
    let out = cert_json(&cert);
    state.vercel.certs.push(cert);
    Ok(Reply::ok(out))
}
