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

/// A `reconcile --wait` not yet answered.
struct Waiter {
    envs: BTreeSet<String>,
    reply: oneshot::Sender<Answer>,
    event: Event,
}

/// Requests that arrived during a pass, and the waiters.
#[derive(Default)]
pub(super) struct Control {
    pub queued: Vec<Request>,
    waiters: Vec<Waiter>,
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
        let answer = |outcome: String, e: Event| Answer {
            ok: true,
            message: outcome,
            event: Some(e),
        };
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
                rec.write_status()?;
                let _ = reply.send(answer(outcome, e));
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
        Ok(())
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
            let _ = w.reply.send(Answer {
                ok: true,
                message: format!("reconciled {}", envs.join("; ")),
                event: Some(w.event),
            });
        }
    }
}
