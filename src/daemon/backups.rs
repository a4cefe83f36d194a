//! The daemon's backup task: Supabase's own backups recorded, tether's taken, verified and
//! pruned on the policies' schedules.

use std::time::Duration;

use crate::backup::BackupRunner;
use crate::control::{Action, Answer, Request};
use crate::manifest::DesiredState;
use crate::provider::Providers;
use crate::store::Store;

/// The backup task: the one writer of the backups tree. Every `every` (and when the manifests
/// change) it records Supabase's own backups and takes, verifies and prunes tether's.
pub(super) fn spawn_backups(
    store: Store,
    providers: Providers,
    mut rx: tokio::sync::watch::Receiver<Option<std::sync::Arc<DesiredState>>>,
    every: Duration,
    mut orders: tokio::sync::mpsc::Receiver<Request>,
) -> tokio::task::JoinHandle<()> {
    use crate::backup::{BackupEvent, PgDump, platform::PlatformTarget};
    tokio::spawn(async move {
        let mut runner = BackupRunner::new(store, std::sync::Arc::new(PgDump::new()));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = rx.changed() => if changed.is_err() { return },
                Some(order) = orders.recv() => {
                    let desired = rx.borrow().clone();
                    let answer = match desired {
                        Some(d) => carry_out(&mut runner, &d, &order.action).await,
                        None => Answer::refused("the manifests are not loaded yet"),
                    };
                    let _ = order.reply.send(answer);
                    continue;
                }
            }
            let Some(desired) = rx.borrow().clone() else {
                continue;
            };
            for p in desired.backup_policies.values() {
                let Some(env) = desired.environments.get(&p.spec.environment) else {
                    continue;
                };
                let (Some(provider), Some(sb)) =
                    (providers.get(env.spec.platform), env.spec.supabase.as_ref())
                else {
                    continue;
                };
                match provider.backups(env).await {
                    Ok(Some(b)) => {
                        let target = PlatformTarget {
                            policy: p.name(),
                            environment: env.name(),
                            database: &p.spec.database,
                            project_ref: &sb.project_ref,
                        };
                        if let Err(e) = runner.record_platform(&target, &b) {
                            tracing::warn!(policy = p.name(), error = %e, "cannot record Supabase's backups");
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(policy = p.name(), error = %e, "cannot list Supabase's backups")
                    }
                }
            }
            for event in runner.tick(&desired, chrono::Utc::now()).await {
                match &event {
                    BackupEvent::Completed { record } => {
                        tracing::info!(policy = %record.policy, id = %record.id, size = record.size_bytes, "backup taken and verified")
                    }
                    BackupEvent::Failed { record } => {
                        tracing::warn!(policy = %record.policy, error = record.error.as_deref().unwrap_or(""), "backup failed")
                    }
                    BackupEvent::Alert { policy, message } => {
                        tracing::warn!(policy = %policy, "{message}")
                    }
                    other => tracing::info!(event = ?other, "backups"),
                }
            }
        }
    })
}

/// `backup now ENV` (every policy covering it, or the policy of that name) and `backup verify
/// ID`, answered with what was done and the records.
async fn carry_out(runner: &mut BackupRunner, desired: &DesiredState, action: &Action) -> Answer {
    use crate::backup::BackupError;
    let now = chrono::Utc::now();
    let (done, failures) = match action {
        Action::BackupNow { environment } => {
            let policies: Vec<String> = desired
                .backup_policies
                .iter()
                .filter(|(name, p)| &p.spec.environment == environment || *name == environment)
                .map(|(name, _)| name.clone())
                .collect();
            if policies.is_empty() {
                return Answer::refused(format!(
                    "no backup policy covers environment {environment}"
                ));
            }
            let (mut done, mut failures) = (Vec::new(), Vec::new());
            for p in policies {
                match runner.backup_now(desired, &p, true, now).await {
                    Ok(r) => done.push(r),
                    Err(e) => failures.push(format!("{p}: {e}")),
                }
            }
            (done, failures)
        }
        Action::BackupVerify { id } => match runner.verify(desired, id, now).await {
            Ok(r) => (vec![r], vec![]),
            Err(e @ BackupError::UnknownBackup(_)) => return Answer::refused(e.to_string()),
            Err(e) => (vec![], vec![format!("{id}: {e}")]),
        },
        _ => return Answer::refused("not a backup action"),
    };
    let lines: Vec<String> = done
        .iter()
        .map(|r| {
            format!(
                "{} {} of {}: {} bytes, sha256 {}, verified {}",
                r.backup_type,
                r.id,
                r.policy,
                r.size_bytes.unwrap_or(0),
                r.checksum
                    .as_deref()
                    .map(|c| &c[..c.len().min(16)])
                    .unwrap_or("-"),
                r.verified_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "never".into())
            )
        })
        .chain(failures.iter().map(|f| format!("failed: {f}")))
        .collect();
    Answer {
        ok: failures.is_empty(),
        message: lines.join("\n"),
        event: None,
        data: Some(serde_json::json!({ "backups": done, "failures": failures })),
    }
}
