//! Vercel deployments: create (or redeploy), list, get, promote and roll back.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::http::{ApiRequest, Ctx, Reply, vercel_error};
use super::state::{DeployStatus, Lifecycle, SimState, hex_of, plus_ms};
use super::vercel::{VercelDeployment, VercelState, bad_request};
use super::vercel_domains::paginate;

fn ready_state(s: DeployStatus) -> &'static str {
    match s {
        DeployStatus::Queued => "QUEUED",
        DeployStatus::Building | DeployStatus::Deploying => "BUILDING",
        DeployStatus::Success => "READY",
        DeployStatus::Failed => "ERROR",
        DeployStatus::Removed => "DELETED",
    }
}

/// The fields the list and the single-deployment answers share.
fn deployment_fields(v: &VercelState, d: &VercelDeployment) -> Map<String, Value> {
    let project = v.projects.iter().find(|p| p.id == d.project_id);
    let aliased =
        project.is_some_and(|p| p.production_deployment.as_deref() == Some(d.id.as_str()));
    let life = &d.lifecycle;
    let state = ready_state(life.status);
    let ready = (life.status == DeployStatus::Success)
        .then(|| life.finished_at.map(|t| t.timestamp_millis()));
    let substate = match (life.status, aliased) {
        (DeployStatus::Success, true) => json!("PROMOTED"),
        (DeployStatus::Success, false) => json!("STAGED"),
        _ => Value::Null,
    };
    let alias_assigned = if aliased {
        project
            .and_then(|p| p.alias_assigned_at)
            .map(|t| t.timestamp_millis())
    } else {
        None
    };
    let mut m = Map::new();
    m.insert("name".into(), json!(d.name));
    m.insert("projectId".into(), json!(d.project_id));
    m.insert(
        "url".into(),
        json!(format!("{}-{}.vercel.app", d.name, hex_of(&[&d.id], 9))),
    );
    m.insert(
        "createdAt".into(),
        json!(life.created_at.timestamp_millis()),
    );
    m.insert(
        "buildingAt".into(),
        json!(plus_ms(life.created_at, life.queued_ms).timestamp_millis()),
    );
    m.insert("ready".into(), json!(ready.flatten()));
    m.insert("state".into(), json!(state));
    m.insert("readyState".into(), json!(state));
    m.insert("readySubstate".into(), substate);
    m.insert("target".into(), json!(d.target));
    m.insert("meta".into(), json!(d.meta));
    m.insert("aliasAssigned".into(), json!(alias_assigned));
    m.insert("aliasError".into(), Value::Null);
    m.insert("inspectorUrl".into(), Value::Null);
    m.insert("creator".into(), json!({ "uid": "sim-user" }));
    if life.status == DeployStatus::Failed {
        m.insert("errorCode".into(), json!("BUILD_FAILED"));
        m.insert("errorMessage".into(), json!("The build failed"));
    }
    let candidate = life.status == DeployStatus::Success
        && d.target.as_deref() == Some("production")
        && !aliased;
    m.insert("isRollbackCandidate".into(), json!(candidate));
    m
}

/// A deployment as `GET /v13/deployments/{id}` and the create answer show it.
fn deployment_json(v: &VercelState, d: &VercelDeployment) -> Value {
    let mut m = deployment_fields(v, d);
    let aliased = m.get("aliasAssigned").is_some_and(|a| !a.is_null());
    let alias: Vec<String> = match v.projects.iter().find(|p| p.id == d.project_id) {
        Some(p) if aliased => std::iter::once(format!("{}.vercel.app", p.name))
            .chain(
                p.domains
                    .iter()
                    .filter(|x| x.git_branch.is_none())
                    .map(|x| x.name.clone()),
            )
            .collect(),
        _ => Vec::new(),
    };
    m.insert("id".into(), json!(d.id));
    m.insert("alias".into(), json!(alias));
    m.insert("gitSource".into(), d.git_source());
    m.insert("regions".into(), json!(["iad1"]));
    Value::Object(m)
}

pub(crate) fn list_deployments(state: &SimState, req: &ApiRequest) -> Result<Reply, Reply> {
    let v = &state.vercel;
    let project = req
        .query("projectId")
        .map(|p| v.find(p).map(|i| v.projects[i].id.clone()));
    let states: Option<Vec<&str>> = req
        .query("state")
        .map(|s| s.split(',').map(str::trim).collect());
    let items = v
        .deployments
        .iter()
        .filter(|d| {
            project
                .as_ref()
                .is_none_or(|p| p.as_deref() == Some(d.project_id.as_str()))
        })
        .filter(|d| match req.query("target") {
            Some("preview") => d.target.is_none(),
            Some(t) => d.target.as_deref() == Some(t),
            None => true,
        })
        .filter(|d| {
            states
                .as_ref()
                .is_none_or(|s| s.contains(&ready_state(d.lifecycle.status)))
        })
        .filter(|d| {
            req.query("sha")
                .is_none_or(|s| super::state::same_commit(s, &d.commit()))
        })
        .filter(|d| req.query("branch").is_none_or(|b| b == d.branch()))
        .map(|d| {
            let mut m = deployment_fields(v, d);
            m.insert("uid".into(), json!(d.id));
            (d.lifecycle.created_at.timestamp_millis(), Value::Object(m))
        })
        .collect();
    let (deployments, pagination) = paginate(items, req, 20);
    Ok(Reply::ok(
        json!({ "deployments": deployments, "pagination": pagination }),
    ))
}

pub(crate) fn get_deployment(state: &SimState, id: &str) -> Result<Reply, Reply> {
    let v = &state.vercel;
    let d = v
        .deployments
        .iter()
        .find(|d| d.id == id || deployment_fields(v, d)["url"] == id);
    let d =
        d.ok_or_else(|| vercel_error(404, "not_found", &format!("Deployment {id} not found")))?;
    Ok(Reply::ok(deployment_json(v, d)))
}

pub(crate) fn create_deployment(
    state: &mut SimState,
    ctx: &Ctx,
    req: &ApiRequest,
) -> Result<Reply, Reply> {
    let Some(body) = req.body.as_ref().filter(|b| b.is_object()) else {
        return Err(bad_request("Invalid request: the body must be an object."));
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let target_of = |t: Option<String>| t.filter(|t| t != "preview");
    let (pi, meta, target) = if let Some(from) = text("deploymentId") {
        let d = state.vercel.deployments.iter().find(|d| d.id == from);
        let d = d.ok_or_else(|| {
            vercel_error(404, "not_found", &format!("Deployment {from} not found"))
        })?;
        let pi = state.vercel.project(&d.project_id)?;
        let target = if body.get("target").is_some() {
            target_of(text("target"))
        } else {
            d.target.clone()
        };
        (pi, d.meta.clone(), target)
    } else {
        let Some(project) = text("project").or_else(|| text("name")) else {
            return Err(bad_request(
                "Invalid request: missing required property `name`.",
            ));
        };
        let pi = state.vercel.project(&project)?;
        let Some(src) = body.get("gitSource").filter(|g| g.is_object()) else {
            return Err(bad_request(
                "Invalid request: `gitSource` or `deploymentId` is required.",
            ));
        };
        let Some(git_ref) = src.get("ref").and_then(Value::as_str) else {
            return Err(bad_request("Invalid request: `gitSource.ref` is required."));
        };
        let provider = src
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("github")
            .to_string();
        let n = state.next_id.to_string();
        let sha = src.get("sha").and_then(Value::as_str).map(str::to_string);
        let sha = sha.unwrap_or_else(|| hex_of(&["head", git_ref, &n], 40));
        let mut meta = BTreeMap::new();
        meta.insert(format!("{provider}CommitSha"), sha);
        meta.insert(format!("{provider}CommitRef"), git_ref.to_string());
        for (key, field) in [("Org", "org"), ("Repo", "repo")] {
            if let Some(v) = src.get(field).and_then(Value::as_str) {
                meta.insert(format!("{provider}Commit{key}"), v.to_string());
            }
        }
        (pi, meta, target_of(text("target")))
    };
    let commit = super::vercel::meta_ending(&meta, "CommitSha");
    let fails = state.is_failing(&commit);
    let created = state.stamp(ctx.now);
    let d = VercelDeployment {
        id: format!("dpl_{}", state.next()),
        project_id: state.vercel.projects[pi].id.clone(),
        name: state.vercel.projects[pi].name.clone(),
        auto_promote: target.as_deref() == Some("production"),
        target,
        meta,
        lifecycle: Lifecycle::new(created, &ctx.timings, fails),
    };
    state.vercel.deployments.push(d.clone());
    Ok(Reply::ok(deployment_json(&state.vercel, &d)))
}

/// Promote and rollback: point the project's production domains at a READY deployment now.
pub(crate) fn alias(state: &mut SimState, ctx: &Ctx, p: &str, id: &str) -> Result<Reply, Reply> {
    let pi = state.vercel.project(p)?;
    let project_id = state.vercel.projects[pi].id.clone();
    let d = state
        .vercel
        .deployments
        .iter()
        .find(|d| d.id == id && d.project_id == project_id);
    let d = d.ok_or_else(|| {
        vercel_error(
            404,
            "not_found",
            &format!("Deployment {id} not found in this project"),
        )
    })?;
    if d.lifecycle.status != DeployStatus::Success {
        return Err(vercel_error(
            409,
            "deployment_not_ready",
            &format!("Deployment {id} is not READY"),
        ));
    }
    let p = &mut state.vercel.projects[pi];
    p.production_deployment = Some(id.to_string());
    p.alias_assigned_at = Some(ctx.now);
    Ok(Reply::empty(201))
}
