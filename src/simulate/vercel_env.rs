//! Vercel project environment variables: list, bulk create/upsert, edit and delete.

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::http::{ApiRequest, Ctx, Reply, vercel_error};
use super::state::SimState;
use super::vercel::{VercelEnv, bad_request};

/// A variable as the API shows it: plain values in clear, encrypted ones as ciphertext,
/// sensitive ones empty.
fn env_json(e: &VercelEnv) -> Value {
    let value = match e.kind.as_str() {
        "sensitive" => String::new(),
        "encrypted" => {
            let digest = Sha256::digest(format!("{}:{}", e.id, e.value).as_bytes());
            base64::engine::general_purpose::STANDARD.encode(digest)
        }
        _ => e.value.clone(),
    };
    json!({
        "id": e.id, "key": e.key, "value": value, "type": e.kind, "target": e.target,
        "gitBranch": e.git_branch, "createdAt": e.created_at.timestamp_millis(),
        "updatedAt": e.updated_at.timestamp_millis(), "decrypted": e.kind == "plain",
    })
}

/// `GET /v1/projects/{p}/env/{id}`: one variable with its value decrypted, except a sensitive
/// one, whose value is never returned.
pub(crate) fn get_env(state: &SimState, p: &str, id: &str) -> Result<Reply, Reply> {
    let p = &state.vercel.projects[state.vercel.project(p)?];
    let e = p.envs.iter().find(|e| e.id == id).ok_or_else(|| {
        vercel_error(
            404,
            "not_found",
            &format!("Environment variable {id} not found"),
        )
    })?;
    let mut out = env_json(e);
    if e.kind != "sensitive" {
        out["value"] = json!(e.value);
        out["decrypted"] = json!(e.kind == "encrypted");
    }
    Ok(Reply::ok(out))
}

/// A project's variables, newest first, 100 a page: a longer list says `pagination.next`,
/// which a client sends back as `until` for the next page.
pub(crate) fn list_env(state: &SimState, p: &str, req: &ApiRequest) -> Result<Reply, Reply> {
    let p = &state.vercel.projects[state.vercel.project(p)?];
    let items = p
        .envs
        .iter()
        .map(|e| (e.created_at.timestamp_millis(), env_json(e)))
        .collect();
    let (envs, pagination) = super::vercel_domains::paginate(items, req, 100);
    Ok(Reply::ok(json!({ "envs": envs, "pagination": pagination })))
}

/// A variable as a request describes it, checked.
struct NewEnv {
    key: String,
    value: String,
    kind: String,
    target: Vec<String>,
    git_branch: Option<String>,
}

const TARGETS: [&str; 3] = ["production", "preview", "development"];

fn parse_env(v: &Value) -> Result<NewEnv, Reply> {
    let field = |k: &str| v.get(k).filter(|x| !x.is_null());
    let key = field("key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad_request(&format!(
            "Invalid request: `key` {key:?} must be letters, digits and underscores"
        )));
    }
    let Some(value) = field("value").and_then(Value::as_str) else {
        return Err(bad_request(
            "Invalid request: missing required property `value`.",
        ));
    };
    let kind = match field("type").and_then(Value::as_str) {
        None => {
            return Err(bad_request(
                "Invalid request: missing required property `type`.",
            ));
        }
        Some("secret") => {
            return Err(bad_request(
                "Invalid request: `type` `secret` is no longer supported.",
            ));
        }
        Some(t @ ("plain" | "encrypted" | "sensitive" | "system")) => t.to_string(),
        Some(t) => {
            return Err(bad_request(&format!(
                "Invalid request: `type` {t:?} is not valid."
            )));
        }
    };
    let target = parse_target(field("target"))?;
    let git_branch = field("gitBranch")
        .and_then(Value::as_str)
        .map(str::to_string);
    check_env(&kind, &target, git_branch.as_deref())?;
    Ok(NewEnv {
        key,
        value: value.to_string(),
        kind,
        target,
        git_branch,
    })
}

fn parse_target(v: Option<&Value>) -> Result<Vec<String>, Reply> {
    let list: Vec<String> = match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    if list.is_empty() {
        return Err(bad_request(
            "Invalid request: missing required property `target`.",
        ));
    }
    if let Some(bad) = list.iter().find(|t| !TARGETS.contains(&t.as_str())) {
        return Err(bad_request(&format!(
            "Invalid request: target {bad:?} is not valid."
        )));
    }
    Ok(list)
}

fn check_env(kind: &str, target: &[String], git_branch: Option<&str>) -> Result<(), Reply> {
    if kind == "sensitive" && target.iter().any(|t| t == "development") {
        return Err(bad_request(
            "Sensitive Environment Variables cannot target development.",
        ));
    }
    if git_branch.is_some() && target != ["preview"] {
        return Err(bad_request(
            "`gitBranch` is only allowed for the preview target alone.",
        ));
    }
    Ok(())
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let (a, b): (BTreeSet<&String>, BTreeSet<&String>) = (a.iter().collect(), b.iter().collect());
    a == b
}

fn conflict(key: &str, target: &[String], git_branch: Option<&str>) -> Value {
    json!({
        "code": "ENV_CONFLICT", "key": key, "envVarKey": key, "target": target, "gitBranch": git_branch,
        "message": format!("A variable with the name `{key}` already exists for the target {}{}.",
            target.join(", "), git_branch.map(|b| format!(" on branch {b}")).unwrap_or_default()),
    })
}

/// Whether `e` collides with a variable of this key, target and branch.
fn collides(e: &VercelEnv, key: &str, target: &[String], git_branch: Option<&str>) -> bool {
    e.key == key
        && e.git_branch.as_deref() == git_branch
        && e.target.iter().any(|t| target.contains(t))
}

pub(crate) fn create_env(
    state: &mut SimState,
    ctx: &Ctx,
    req: &ApiRequest,
    p: &str,
) -> Result<Reply, Reply> {
    let pi = state.vercel.project(p)?;
    let upsert = req.query("upsert") == Some("true");
    let (items, single): (Vec<&Value>, bool) = match &req.body {
        Some(Value::Array(a)) if !a.is_empty() => (a.iter().collect(), false),
        Some(v @ Value::Object(_)) => (vec![v], true),
        _ => {
            return Err(bad_request(
                "Invalid request: the body must be a variable or a non-empty array of them.",
            ));
        }
    };
    let parsed = items
        .into_iter()
        .map(parse_env)
        .collect::<Result<Vec<_>, _>>()?;
    if !upsert {
        let envs = &state.vercel.projects[pi].envs;
        for (i, n) in parsed.iter().enumerate() {
            let earlier = parsed[..i].iter().any(|o| {
                o.key == n.key
                    && o.git_branch == n.git_branch
                    && o.target.iter().any(|t| n.target.contains(t))
            });
            if earlier
                || envs
                    .iter()
                    .any(|e| collides(e, &n.key, &n.target, n.git_branch.as_deref()))
            {
                return Err(Reply::json(
                    400,
                    json!({ "error": conflict(&n.key, &n.target, n.git_branch.as_deref()) }),
                ));
            }
        }
    }
    let (mut created, mut failed) = (Vec::new(), Vec::new());
    for n in parsed {
        let branch = n.git_branch.as_deref();
        let envs = &state.vercel.projects[pi].envs;
        if let Some(i) = envs
            .iter()
            .position(|e| collides(e, &n.key, &n.target, branch) && same_set(&e.target, &n.target))
        {
            let e = &mut state.vercel.projects[pi].envs[i];
            e.value = n.value;
            e.kind = n.kind;
            e.updated_at = ctx.now;
            created.push(env_json(e));
        } else if envs.iter().any(|e| collides(e, &n.key, &n.target, branch)) {
            failed.push(json!({ "error": conflict(&n.key, &n.target, branch) }));
        } else {
            let created_at = state.stamp(ctx.now);
            let e = VercelEnv {
                id: format!("env_{}", state.next()),
                key: n.key,
                value: n.value,
                kind: n.kind,
                target: n.target,
                git_branch: n.git_branch,
                created_at,
                updated_at: ctx.now,
            };
            created.push(env_json(&e));
            state.vercel.projects[pi].envs.push(e);
        }
    }
    let mut out = json!({ "failed": failed });
    if single {
        if let Some(c) = created.into_iter().next() {
            out["created"] = c;
        }
    } else {
        out["created"] = Value::Array(created);
    }
    Ok(Reply::json(201, out))
}

pub(crate) fn edit_env(
    state: &mut SimState,
    ctx: &Ctx,
    req: &ApiRequest,
    p: &str,
    id: &str,
) -> Result<Reply, Reply> {
    let pi = state.vercel.project(p)?;
    let Some(body) = req.body.as_ref().filter(|b| b.is_object()) else {
        return Err(bad_request("Invalid request: the body must be an object."));
    };
    let envs = &state.vercel.projects[pi].envs;
    let Some(i) = envs.iter().position(|e| e.id == id) else {
        return Err(vercel_error(
            404,
            "not_found",
            &format!("Environment Variable {id} not found"),
        ));
    };
    let mut merged = env_to_value(&envs[i]);
    if let (Some(m), Some(b)) = (merged.as_object_mut(), body.as_object()) {
        for (k, v) in b {
            m.insert(k.clone(), v.clone());
        }
    }
    let n = parse_env(&merged)?;
    let others = envs.iter().enumerate().filter(|(j, _)| *j != i);
    if others
        .clone()
        .any(|(_, e)| collides(e, &n.key, &n.target, n.git_branch.as_deref()))
    {
        return Err(Reply::json(
            400,
            json!({ "error": conflict(&n.key, &n.target, n.git_branch.as_deref()) }),
        ));
    }
    let e = &mut state.vercel.projects[pi].envs[i];
    (e.key, e.value, e.kind, e.target, e.git_branch) =
        (n.key, n.value, n.kind, n.target, n.git_branch);
    e.updated_at = ctx.now;
    Ok(Reply::ok(env_json(e)))
}

/// The stored variable as a request body (value in clear), for merging an edit into.
fn env_to_value(e: &VercelEnv) -> Value {
    json!({ "key": e.key, "value": e.value, "type": e.kind, "target": e.target, "gitBranch": e.git_branch })
}

pub(crate) fn delete_env(state: &mut SimState, p: &str, id: &str) -> Result<Reply, Reply> {
    let pi = state.vercel.project(p)?;
    let envs = &mut state.vercel.projects[pi].envs;
    let Some(i) = envs.iter().position(|e| e.id == id) else {
        return Err(vercel_error(
            404,
            "not_found",
            &format!("Environment Variable {id} not found"),
        ));
    };
    let e = envs.remove(i);
    Ok(Reply::ok(env_json(&e)))
}

pub(crate) fn batch_delete_env(
    state: &mut SimState,
    req: &ApiRequest,
    p: &str,
) -> Result<Reply, Reply> {
    let pi = state.vercel.project(p)?;
    let ids: Vec<String> = req
        .body
        .as_ref()
        .and_then(|b| b.get("ids"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > 1000 {
        return Err(bad_request(
            "Invalid request: `ids` must hold 1 to 1000 ids.",
        ));
    }
    let envs = &mut state.vercel.projects[pi].envs;
    let removed: Vec<String> = envs
        .iter()
        .filter(|e| ids.contains(&e.id))
        .map(|e| e.id.clone())
        .collect();
    envs.retain(|e| !ids.contains(&e.id));
    Ok(Reply::ok(
        json!({ "deleted": removed.len(), "ids": removed }),
    ))
}
