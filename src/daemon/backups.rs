//! The daemon's backup task: Supabase's own backups recorded, tether's taken, verified and
//! pruned on the policies' schedules.

use std::time::Duration;

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
) -> tokio::task::JoinHandle<()> {
    use crate::backup::{BackupEvent, BackupRunner, PgDump, platform::PlatformTarget};
    tokio::spawn(async move {
        let mut runner = BackupRunner::new(store, std::sync::Arc::new(PgDump::new()));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = rx.changed() => if changed.is_err() { return },
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
