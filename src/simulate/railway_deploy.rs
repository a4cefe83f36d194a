//! Railway deployment mutations: deploy a commit, redeploy, roll back.

use serde_json::{Map, Value, json};

use super::graphql::{GqlError, opt_str, req_str};
use super::http::Ctx;
use super::railway::RailwayDeployment;
use super::state::{DeployStatus, Lifecycle, SimState, hex_of, same_commit};

/// `serviceInstanceDeployV2`: deploys a commit (the running one when none is given); returns the
/// new deployment's id.
pub(crate) fn deploy(
    state: &mut SimState,
    ctx: &Ctx,
    field: &str,
    args: &Map<String, Value>,
) -> Result<Value, GqlError> {
    let now = ctx.now;
    let (s, e) = (
        req_str(args, field, "serviceId")?,
        req_str(args, field, "environmentId")?,
    );
    let p = state.railway.instance(&s, &e)?.id.clone();
    let latest = state.railway.active(&e, &s).map(RailwayDeployment::commit);
    let n = state.next_id;
    let commit = opt_str(args, "commitSha")
        .or(latest)
        .unwrap_or_else(|| hex_of(&["head", &s, &e, &n.to_string()], 40));
    let branch = state
        .railway
        .deployments
        .iter()
        .rev()
        .filter(|d| d.project_id == p && same_commit(&d.commit(), &commit))
        .find_map(|d| d.meta["branch"].as_str().map(str::to_string));
    let short: String = commit.chars().take(7).collect();
    let meta = json!({ "commitHash": commit, "branch": branch, "commitMessage": format!("Deploy {short}") });
    let fails = state.is_failing(&commit);
    let life = Lifecycle::new(state.stamp(now), &ctx.timings, fails);
    Ok(json!(push(state, p, e, s, meta, life)))
}

/// `serviceInstanceRedeploy`: deploys the running (or newest) deployment's commit again.
pub(crate) fn redeploy(
    state: &mut SimState,
    ctx: &Ctx,
    field: &str,
    args: &Map<String, Value>,
) -> Result<Value, GqlError> {
    let now = ctx.now;
    let (s, e) = (
        req_str(args, field, "serviceId")?,
        req_str(args, field, "environmentId")?,
    );
    let p = state.railway.instance(&s, &e)?.id.clone();
    let source = state.railway.active(&e, &s).or_else(|| {
        let mine = state
            .railway
            .deployments
            .iter()
            .filter(|d| d.environment_id == e && d.service_id == s);
        mine.max_by_key(|d| d.lifecycle.created_at)
    });
    let Some(meta) = source.map(|d| d.meta.clone()) else {
        return Err(GqlError::refused("No deployment to redeploy"));
    };
    let fails = state.is_failing(meta["commitHash"].as_str().unwrap_or_default());
    let life = Lifecycle::new(state.stamp(now), &ctx.timings, fails);
    push(state, p, e, s, meta, life);
    Ok(json!(true))
}

/// `deploymentRollback`: a new deployment of the target's image, skipping the build; the running
/// one is REMOVED at once.
pub(crate) fn rollback(
    state: &mut SimState,
    ctx: &Ctx,
    field: &str,
    args: &Map<String, Value>,
) -> Result<Value, GqlError> {
    let now = ctx.now;
    let id = req_str(args, field, "id")?;
    let target = state.railway.deployments.iter().find(|d| d.id == id);
    let target = target
        .ok_or_else(|| GqlError::not_found("Deployment"))?
        .clone();
    if !matches!(
        target.lifecycle.status,
        DeployStatus::Success | DeployStatus::Removed
    ) {
        return Err(GqlError::refused(
            "This deployment cannot be rolled back to",
        ));
    }
    for d in state.railway.deployments.iter_mut() {
        if d.environment_id == target.environment_id
            && d.service_id == target.service_id
            && d.lifecycle.status == DeployStatus::Success
        {
            d.lifecycle.status = DeployStatus::Removed;
        }
    }
    let mut meta = target.meta.clone();
    meta["rollbackOf"] = json!(target.id);
    let life = Lifecycle::quick(state.stamp(now), &ctx.timings);
    push(
        state,
        target.project_id,
        target.environment_id,
        target.service_id,
        meta,
        life,
    );
    Ok(json!(true))
}

fn push(
    state: &mut SimState,
    project_id: String,
    environment_id: String,
    service_id: String,
    meta: Value,
    lifecycle: Lifecycle,
) -> String {
    let id = state.uuid();
    state.railway.deployments.push(RailwayDeployment {
        id: id.clone(),
        project_id,
        environment_id,
        service_id,
        meta,
        lifecycle,
    });
    id
}
