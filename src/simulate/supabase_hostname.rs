//! Supabase's custom hostname: initialize, reverify, activate, read and remove.

use serde_json::{Value, json};

use super::SimPlatform;
use super::http::{ApiRequest, Ctx, Reply, not_found, supabase_error};
use super::state::{hex_of, ms, plus_ms};
use super::supabase::{SupabaseHostname, SupabaseProject, time};

/// Serves `/v1/projects/{ref}/custom-hostname[/{action}]`.
pub(crate) fn handle(
    p: &mut SupabaseProject,
    next_id: &mut u64,
    ctx: &Ctx,
    req: &ApiRequest,
    method: &str,
    action: &[&str],
) -> Reply {
    match (method, action) {
        ("GET", []) => match &p.custom_hostname {
            Some(h) => Reply::ok(hostname_json(&p.project_ref, h)),
            None => supabase_error(400, "Custom hostname not configured"),
        },
        ("DELETE", []) => match p.custom_hostname.take() {
            Some(_) => Reply::empty(200),
            None => supabase_error(400, "Resource has been removed"),
        },
        ("POST", ["initialize"]) => {
            let host = req
                .body
                .as_ref()
                .and_then(|b| b.get("custom_hostname"))
                .and_then(Value::as_str);
            let host = host
                .unwrap_or_default()
                .trim()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if host.is_empty() || host.len() > 253 || !host.contains('.') || host.starts_with('.') {
                return supabase_error(400, "custom_hostname must be a valid subdomain");
            }
            if p.custom_hostname
                .as_ref()
                .is_none_or(|h| h.hostname != host)
            {
                *next_id += 1;
                let seed = format!("{}/{host}/{}", p.project_ref, next_id);
                let u = hex_of(&["ownership", &seed], 32);
                p.custom_hostname = Some(SupabaseHostname {
                    id: hex_of(&["hostname", &seed], 32),
                    ownership_value: format!(
                        "{}-{}-{}-{}-{}",
                        &u[..8],
                        &u[8..12],
                        &u[12..16],
                        &u[16..20],
                        &u[20..]
                    ),
                    txt_value: hex_of(&["acme", &seed], 40),
                    hostname: host,
                    status: "2_initiated".into(),
                    initialized_at: ctx.now,
                    verify_ms: ms(ctx.timings.domain_verify),
                    cert_ms: ms(ctx.timings.cert_issue),
                });
            }
            hostname_reply(p)
        }
        ("POST", ["reverify"]) => {
            if let Some(h) = p.custom_hostname.as_mut()
                && h.status != "5_services_reconfigured"
            {
                let verified = plus_ms(h.initialized_at, h.verify_ms);
                if ctx.now >= plus_ms(verified, h.cert_ms) {
                    h.status = "4_origin_setup_completed".into();
                } else if ctx.now >= verified {
                    h.status = "3_challenge_verified".into();
                }
            }
            hostname_reply(p)
        }
        ("POST", ["activate"]) => {
            if let Some(h) = p.custom_hostname.as_mut() {
                if h.status == "4_origin_setup_completed" {
                    h.status = "5_services_reconfigured".into();
                } else if h.status != "5_services_reconfigured" {
                    let msg = format!(
                        "Custom hostname is not ready to be activated (status {})",
                        h.status
                    );
                    return supabase_error(400, &msg);
                }
            }
            hostname_reply(p)
        }
        _ => not_found(SimPlatform::Supabase, &req.path),
    }
}

fn hostname_reply(p: &SupabaseProject) -> Reply {
    match &p.custom_hostname {
        Some(h) => Reply::json(201, hostname_json(&p.project_ref, h)),
        None => supabase_error(400, "Resource has been removed"),
    }
}

fn hostname_json(project_ref: &str, h: &SupabaseHostname) -> Value {
    let (result_status, ssl_status) = match h.status.as_str() {
        "2_initiated" => ("pending", "pending_validation"),
        "3_challenge_verified" => ("active", "initializing"),
        _ => ("active", "active"),
    };
    let records = if ssl_status == "active" {
        json!([])
    } else {
        json!([{ "txt_name": format!("_acme-challenge.{}", h.hostname), "txt_value": h.txt_value }])
    };
    json!({
        "status": h.status, "custom_hostname": h.hostname,
        "data": { "success": true, "errors": [], "messages": [], "result": {
            "id": h.id, "hostname": h.hostname, "status": result_status,
            "custom_origin_server": format!("{project_ref}.supabase.co"),
            "ownership_verification": {
                "type": "txt", "name": format!("_cf-custom-hostname.{}", h.hostname), "value": h.ownership_value,
            },
            "ssl": { "status": ssl_status, "validation_records": records },
            "created_at": time(h.initialized_at),
        }},
    })
}
