//! Printing a plan for people (text) and for CI (JSON). Secrets print as `(sensitive value)`.

use std::fmt::Write;

use serde_json::json;

use super::{Action, Detail, Plan, Severity};

/// The plan as text, Terraform style: one line per write or adoption, then notices and a
/// summary line.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let mut env = "";
    for c in plan
        .changes
        .iter()
        .filter(|c| c.action.is_write() || c.adopt)
    {
        if c.key.environment != env {
            env = &c.key.environment;
            let _ = writeln!(out, "{} ({}):", env, c.platform);
        }
        let line = match &c.detail {
            Detail::Variable { value: Some(v), .. } => format!("variable {} = {v}", c.key.name),
            Detail::Variable { value: None, .. } => format!("variable {}", c.key.name),
            Detail::Deployment {
                commit,
                branch,
                from_commit,
                reason,
                target_deployment,
            } => {
                let what = match (c.action, commit, target_deployment) {
                    (Action::Rollback, _, Some(t)) => format!("rollback to deployment {t}"),
                    (_, Some(c), _) => format!(
                        "deploy {}{}",
                        &c[..c.len().min(12)],
                        branch
                            .as_ref()
                            .map(|b| format!(" ({b})"))
                            .unwrap_or_default()
                    ),
                    _ => "redeploy the running commit".to_string(),
                };
                let from = from_commit
                    .as_ref()
                    .map(|f| format!(", was {}", &f[..f.len().min(12)]))
                    .unwrap_or_default();
                format!("{what}: {reason}{from}")
            }
            Detail::Domain { hostname, .. } => format!("domain {hostname}"),
            Detail::Certificate { hostname, reason } => format!("certificate {hostname}: {reason}"),
        };
        match (c.adopt, c.action) {
            (true, Action::Noop) => {
                let _ = writeln!(out, "  @ adopt {line} (already on the platform)");
            }
            (true, _) => {
                let _ = writeln!(out, "  {} adopt and change {line}", c.action.symbol());
            }
            _ => {
                let _ = writeln!(out, "  {} {line}", c.action.symbol());
            }
        }
    }
    for n in &plan.notices {
        let tag = match n.severity {
            Severity::Info => "note",
            Severity::Warning => "warning",
            Severity::Blocked => "blocked",
        };
        let _ = writeln!(out, "{tag}: {}: {}", n.environment, n.message);
    }
    let s = plan.summary();
    let mut also = String::new();
    if s.adopt > 0 {
        let _ = write!(
            also,
            " {} already on the platform will be adopted (tether manages them from the first apply).",
            s.adopt
        );
    }
    if s.placeholders > 0 {
        let _ = write!(
            also,
            " {} placeholder(s) left as they are until filled in: {}.",
            s.placeholders,
            plan.placeholders.join(", ")
        );
    }
    if plan.has_changes() {
        let _ = writeln!(
            out,
            "Plan: {} to create, {} to update, {} to delete, {} to deploy, {} to roll back ({} unchanged).{also}",
            s.create, s.update, s.delete, s.deploy, s.rollback, s.unchanged
        );
    } else {
        let _ = writeln!(
            out,
            "No changes: the platforms match the manifests ({} objects).{also}",
            s.unchanged
        );
    }
    out
}

/// The plan as a JSON document with a schema version and a summary.
pub fn json(plan: &Plan) -> serde_json::Value {
    json!({
        "schemaVersion": 1,
        "summary": plan.summary(),
        "changes": plan.changes,
        "notices": plan.notices,
        "placeholders": plan.placeholders,
    })
}
