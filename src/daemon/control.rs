//! The daemon's side of the control API: requests are handled by the loop between passes
//! (queued while one runs), so the reconcile loop stays the store's one writer; `reconcile
//! --wait` is answered after the pass that observed and converged its environments.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::control::{Action, Answer, Request};
use crate::reconcile::suspend::event;
use crate::reconcile::{Look, PassReport, ReconcileError, Reconciler};
use crate::status::Event;

/// A `reconcile --wait` or a rollback, answered after the pass that covers its environments.
struct Waiter {
    envs: BTreeSet<String>,
    reply: oneshot::Sender<Answer>,
    event: Event,
    /// For a rollback: the deployment it returns to.
    rollback: Option<crate::reconcile::DeploymentRecord>,
}

/// Requests that arrived during a pass, and the waiters.
#[derive(Default)]
pub(super) struct Control {
    pub queued: Vec<Request>,
    waiters: Vec<Waiter>,
    /// Environments rolled back by the pass that just ended: a rollback asked for while it
    /// ran was asked at the same time, and is refused.
    rolled_back: BTreeSet<String>,
}

/// The loop's schedule: environment → (when, how).
pub(super) type Schedule = BTreeMap<String, (Instant, Look)>;

impl Control {
    /// Handles one request now: it is answered at once, or after the pass (`--wait`).
    pub fn handle(
        &mut self,
        req: Request,
        rec: &mut Reconciler,
        schedule: &mut Schedule,
        backups: Option<&tokio::sync::mpsc::Sender<Request>>,
    ) -> Result<(), ReconcileError> {
        let Request {
            action,
            client,
            reply,
        } = req;
        let known: BTreeSet<String> = rec
            .desired()
            .map(|d| d.environments.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(env) = action.environment()
            && !known.contains(env)
        {
            let _ = reply.send(Answer::refused(format!(
                "no environment {env} in the manifests this daemon runs"
            )));
            return Ok(());
        }
        let env = action.environment().map(str::to_string);
        let answer = |outcome: String, e: Event| Answer::done(outcome, e);
        match action {
            Action::Reconcile { wait, .. } => {
                let envs: BTreeSet<String> = match &env {
                    Some(e) => BTreeSet::from([e.clone()]),
                    None => known,
                };
                let now = Instant::now();
                for e in &envs {
                    schedule.insert(e.clone(), (now, Look::Full));
                }
                let what = env.clone().unwrap_or_else(|| "every environment".into());
                let e = event(
                    "reconcile",
                    env.as_deref(),
                    &client,
                    format!("{what}: observe and converge now"),
                );
                rec.record_event(&e)?;
                if wait {
                    self.waiters.push(Waiter {
                        envs,
                        reply,
                        event: e,
                        rollback: None,
                    });
                } else {
                    let msg = format!(
                        "{what} will be observed and converged now (`tether status` shows the outcome)"
                    );
                    let _ = reply.send(answer(msg, e));
                }
            }
            Action::Suspend { environment } => {
                let outcome = if rec.suspend(&environment, &client)? {
                    format!(
                        "{environment} is suspended: tether observes it and shows drift, and writes nothing to it until `tether resume {environment}`"
                    )
                } else {
                    let s = rec.suspension(&environment).expect("suspended");
                    format!(
                        "{environment} was already suspended (by {} at {})",
                        s.by,
                        s.at.format("%Y-%m-%d %H:%M UTC")
                    )
                };
                let e = event("suspend", Some(&environment), &client, outcome.clone());
                rec.record_event(&e)?;
                let _ = reply.send(answer(outcome, e));
            }
            Action::BackupNow { .. } | Action::BackupVerify { .. } => {
                let what = match &action {
                    Action::BackupVerify { id } => format!("verify backup {id}"),
                    _ => format!("back up {} now", env.as_deref().unwrap_or("")),
                };
                let Some(task) = backups else {
                    let msg = "backups are off in this daemon (it runs with --no-backups, or with --simulate, which has no database to dump)";
                    let _ = reply.send(Answer::refused(msg));
                    return Ok(());
                };
                let e = event(action.name(), env.as_deref(), &client, what);
                rec.record_event(&e)?;
                // The backup task takes and verifies backups (it owns their records) and
                // answers when done.
                let order = Request {
                    action,
                    client,
                    reply,
                };
                if let Err(tokio::sync::mpsc::error::TrySendError::Full(order)) =
                    task.try_send(order)
                {
                    let _ = order.reply.send(Answer::refused(
                        "the backup task is busy; try again shortly",
                    ));
                }
            }
            Action::Rollback { environment, to } => {
                // Two at once: the first is carried out, the second refused.
                let in_flight = rec
                    .rollback_pending(&environment)
                    .map(|(target, why)| format!("to {target}: {why}"))
                    .or_else(|| {
                        self.rolled_back
                            .contains(&environment)
                            .then(|| "it was carried out while this one waited".to_string())
                    });
                if let Some(what) = in_flight {
                    let msg = format!(
                        "a rollback of {environment} is already in progress ({what}); this one is refused"
                    );
                    let e = event("rollback", Some(&environment), &client, msg.clone());
                    rec.record_event(&e)?;
                    rec.write_status()?;
                    let _ = reply.send(Answer::refused(msg));
                    return Ok(());
                }
                match rec.request_rollback(&environment, to.as_deref()) {
                    Ok(target) => {
                        schedule.insert(environment.clone(), (Instant::now(), Look::Full));
                        let e = event(
                            "rollback",
                            Some(&environment),
                            &client,
                            format!("roll back to deployment {}", target.deployment_id),
                        );
                        rec.record_event(&e)?;
                        self.waiters.push(Waiter {
                            envs: BTreeSet::from([environment]),
                            reply,
                            event: e,
                            rollback: Some(target),
                        });
                    }
                    Err(err) => {
                        let msg = err.to_string();
                        let e = event("rollback", Some(&environment), &client, msg.clone());
                        rec.record_event(&e)?;
                        let _ = reply.send(Answer::refused(msg));
                    }
                }
            }
            Action::Resume { environment } => {
                let resumed = rec.resume(&environment)?;
                let inactive = rec
                    .desired()
                    .and_then(|d| d.environments.get(&environment))
                    .is_some_and(|x| !x.spec.active);
                let mut outcome = if resumed {
                    schedule.insert(environment.clone(), (Instant::now(), Look::Full));
                    format!("{environment} is resumed: it is observed and converged now")
                } else {
                    format!("{environment} was not suspended")
                };
                if inactive {
                    outcome.push_str(
                        "; its manifest says active: false, which still wins: nothing is written",
                    );
                }
                let e = event("resume", Some(&environment), &client, outcome.clone());
                rec.record_event(&e)?;
                let _ = reply.send(answer(outcome, e));
            }
        }
        // The event (and a suspension) reach the status files now, not at the next pass.
        rec.write_status()?;
        Ok(())
    }

    /// The requests that waited for a pass are handled: forget which environments it rolled
    /// back.
    pub fn settled(&mut self) {
        self.rolled_back.clear();
    }

    /// After a pass over `due`: answers each waiter whose environments it observed.
    pub fn after_pass(&mut self, due: &BTreeMap<String, Look>, report: &PassReport) {
        for w in self.waiters.iter_mut() {
            w.envs
                .retain(|e| due.get(e).is_none_or(|look| *look == Look::Cache));
        }
        let (done, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.envs.is_empty());
        self.waiters = waiting;
        for w in done {
            if let Some(target) = &w.rollback {
                self.rolled_back.extend(w.envs_asked());
                let _ = w.reply.send(rollback_outcome(target, w.event, report));
                continue;
            }
            let envs: Vec<String> = report
                .status
                .as_ref()
                .map(|(index, _)| {
                    index
                        .environments
                        .iter()
                        .filter(|e| w.event.environment.as_ref().is_none_or(|x| *x == e.name))
                        .map(|e| {
                            format!(
                                "{}: {:?}, {} of {} resources Ready",
                                e.name, e.state, e.counts.ready, e.counts.resources
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let message = format!("reconciled {}", envs.join("; "));
            let _ = w.reply.send(Answer::done(message, w.event));
        }
    }
}

impl Waiter {
    /// The environment the action named.
    fn envs_asked(&self) -> Option<String> {
        self.event.environment.clone()
    }
}

/// A rollback's answer, from the status of the pass that carried it out.
fn rollback_outcome(
    target: &crate::reconcile::DeploymentRecord,
    event: Event,
    report: &PassReport,
) -> Answer {
    let env = event.environment.clone().unwrap_or_default();
    let failed = report.status.as_ref().and_then(|(_, envs)| {
        envs.iter()
            .find(|e| e.environment == env)
            .and_then(|e| e.resources.iter().find(|r| r.kind == "deployment"))
            .and_then(|r| r.last_error.clone())
    });
    match failed {
        Some(err) => Answer {
            ok: false,
            message: format!("the rollback of {env} failed: {err}"),
            event: Some(event),
            data: None,
        },
        None => Answer {
            ok: true,
            message: format!(
                "rolled {env} back to deployment {} (commit {}); it stays pinned there until the manifest names another commit",
                target.deployment_id,
                target
                    .commit
                    .as_deref()
                    .map(|c| &c[..c.len().min(12)])
                    .unwrap_or("unknown")
            ),
            event: Some(event),
            data: None,
        },
    }
}
