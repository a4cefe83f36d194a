//! The daemon: loads and watches the manifests, schedules passes (on change, on per-environment
//! resync with jitter, soon while something progresses, after a backoff when it failed), and
//! stops cleanly on SIGTERM/SIGINT.

mod alerts;
mod backups;
mod control;
mod loader;
mod once;
mod platforms;

use once::{in_flight, once_exit, once_timed_out, stopped};
pub use platforms::{Platforms, simulated_providers, simulated_providers_at};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use crate::manifest::{DesiredState, Diagnostics};
use crate::provider::ProviderError;
use crate::reconcile::{Look, Options, PassReport, ReconcileError, Reconciler};
use crate::secret::{Fingerprinter, Keyring};
use crate::status::StatusError;
use crate::store::{Store, StoreError};
use crate::watch::{DirWatch, WatchError};
pub use alerts::AlertConfig;
use alerts::Alerts;
pub use loader::Loader;

/// How long a stop waits for the calls of a pass in flight before it drops them (a dropped
/// write is resolved by the journal at the next start).
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("the manifests are invalid:\n{0}")]
    Invalid(Diagnostics),
    #[error("cannot start the simulator: {0}")]
    Simulator(std::io::Error),
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    #[error("cannot listen on {0}: {1} (pick another address with --listen, or --listen none)")]
    Listen(std::net::SocketAddr, std::io::Error),
}

/// How the daemon ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Stopped by a signal, or `--once` with everything Ready.
    Done,
    /// `--once`: some resources are not Ready; the reason.
    NotReady(String),
    /// `--once`: a platform rejected its token (or none was given), and nothing else could
    /// progress; each token and platform.
    Rejected(String),
}

/// Everything `tether run` was asked for.
pub struct DaemonConfig {
    pub manifests: PathBuf,
    pub state_dir: PathBuf,
    pub opts: Options,
    pub keyring: Option<Keyring>,
    pub key_source: String,
    pub once: bool,
    /// `--once` gives up after this long.
    pub once_timeout: Duration,
    /// How often the backup task checks schedules.
    pub backup_check: Duration,
    /// The environments this daemon owns.
    pub selector: crate::manifest::select::Selector,
    /// Run the Monitor manifests' checks.
    pub monitors: bool,
    /// Serve health probes, metrics, the status API and page here.
    pub listen: Option<std::net::SocketAddr>,
    pub debounce: Duration,
    /// The control API: always on `<state-dir>/control.sock`, and on TCP when asked.
    pub control: crate::control::ControlConfig,
    /// Alert grouping, links and retries.
    pub alerts: AlertConfig,
}

impl DaemonConfig {
    /// A daemon embedded in a program (a benchmark, the soak, a test): the manifests, the state
    /// directory and the reconciler's options; no key, no monitors, no listener, backups checked
    /// hourly, a 100 ms debounce, running until stopped. Set the rest as needed.
    pub fn embedded(manifests: PathBuf, state_dir: PathBuf, opts: Options) -> DaemonConfig {
        DaemonConfig {
            manifests,
            state_dir,
            opts,
            keyring: None,
            key_source: "none".into(),
            once: false,
            once_timeout: Duration::from_secs(600),
            backup_check: Duration::from_secs(3600),
            selector: Default::default(),
            monitors: false,
            listen: None,
            debounce: Duration::from_millis(100),
            control: Default::default(),
            alerts: Default::default(),
        }
    }
}

/// The fingerprint key: from the identity, else a random key kept in the store.
pub fn fingerprinter(
    keyring: Option<&Keyring>,
    store: &Store,
) -> Result<Fingerprinter, StoreError> {
    Ok(match keyring {
        Some(k) => k.fingerprinter(),
        None => Fingerprinter::from_seed(&store.fingerprint_seed()?),
    })
}

/// Runs the daemon until a signal (or, with `--once`, until converged or stuck).
pub async fn run(
    cfg: DaemonConfig,
    store: Store,
    platforms: Platforms,
) -> Result<Exit, DaemonError> {
    let fp = fingerprinter(cfg.keyring.as_ref(), &store)?;
    let mut loader = Loader::new(
        &cfg.manifests,
        cfg.keyring,
        fp.clone(),
        cfg.key_source.clone(),
    );
    // Only the environments this daemon owns are decrypted, observed and written.
    loader.selector = cfg.selector.clone();
    let first = loader.reload().expect("the first load always runs");
    // Borrowed, not cloned: a copy kept here would hold a second desired state for the
    // daemon's whole life.
    let no_manifests = DesiredState::default();
    let desired = match &first {
        Ok(d) => d,
        Err(diags) if cfg.once => return Err(DaemonError::Invalid(diags.clone())),
        Err(_) => &no_manifests,
    };
    let (providers, simulator) = platforms.connect(desired).await?;
    // Monitors check the apps' own URLs, or the simulator's stand-ins for them.
    let target: crate::monitor::TargetFn = match &simulator {
        Some(sim) => {
            let base = format!("http://{}", sim.addr);
            std::sync::Arc::new(move |u: &str| crate::monitor::simulated_target(u, &base))
        }
        None => std::sync::Arc::new(|u: &str| {
            reqwest::Url::parse(u).expect("monitor URLs are validated")
        }),
    };
    let mut watchdog = crate::watchdog::Watchdog::new(store.clone(), desired, target);
    let mut opts = cfg.opts.clone();
    if cfg.monitors {
        opts.health = Some(watchdog.health());
        opts.monitor_book = Some(watchdog.book.clone());
    }
    let mut rec = Reconciler::new(store.clone(), providers.clone(), fp, opts)?;
    rec.set_desired(first);
    // A saved manifest interrupts a pass waiting on observations (they finish in the
    // background), so the edit is planned first. `--once` waits for everything.
    let (edits_waiting, edits_rx) = tokio::sync::watch::channel(false);
    if !cfg.once {
        rec.set_interrupt(edits_rx);
    }
    let mut servable = std::collections::BTreeSet::new();
    if let Some(d) = rec.desired().filter(|_| cfg.monitors) {
        watchdog.apply(d, &servable);
    }
    let (desired_tx, desired_rx) = tokio::sync::watch::channel(rec.desired().cloned());
    let server = crate::server::Server::new();
    let started_at = chrono::Utc::now();
    let mut bound_at = None;
    if let Some(addr) = cfg.listen {
        let bound = server
            .clone()
            .serve(addr, std::future::pending())
            .await
            .map_err(|e| DaemonError::Listen(addr, e))?;
        tracing::info!("serving the status page, /metrics and /api/status on http://{bound}");
        bound_at = Some(bound);
    }
    let mut alert_cfg = cfg.alerts.clone();
    if let Some(sim) = &simulator {
        // Simulated platforms, simulated receivers: messages go to the simulator.
        alert_cfg.worker.redirect = Some(format!("http://{}", sim.addr));
        tracing::info!(
            "alerts go to the simulator under --simulate: GET http://{}/__sim/alerts",
            sim.addr
        );
    }
    let alerts = Alerts::start(&store, &alert_cfg, &cfg.manifests, bound_at);
    let publish = |server: &crate::server::Server,
                   rec: &Reconciler,
                   status: Option<(crate::status::Index, crate::status::Statuses)>,
                   ready: bool| {
        if let Some((index, envs)) = status {
            server.update(crate::server::Snapshot {
                index: Some(index),
                envs,
                api: rec.api_stats(),
                ready,
                started_at,
            });
        }
    };
    let mut refresh = tokio::time::interval(Duration::from_secs(15));
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // `backup now` and `backup verify` from the control API go to the backup task.
    let (backup_orders, orders_rx) = tokio::sync::mpsc::channel(8);
    let backup_orders = cfg.opts.backups.then_some(backup_orders);
    let _backups = cfg.opts.backups.then(|| {
        backups::spawn_backups(
            store.clone(),
            providers.clone(),
            desired_rx,
            cfg.backup_check,
            orders_rx,
        )
    });
    let (mut watch, mut changes) = if cfg.once {
        (None, tokio::sync::mpsc::unbounded_channel().1)
    } else {
        let (w, rx) = DirWatch::start(&cfg.manifests, cfg.debounce)?;
        (Some(w), rx)
    };
    let mut schedule: BTreeMap<String, (Instant, Look)> = BTreeMap::new();
    // Environments to plan again from the cache at once, their manifests having changed.
    let mut replan: std::collections::BTreeSet<String> = Default::default();
    // The first pass plans every environment against the cache (no calls unless something
    // differs); `--once` observes everything afresh, as a CI job wants the truth.
    if let Some(d) = rec.desired() {
        let look = if cfg.once { Look::Full } else { Look::Cache };
        let now = Instant::now();
        for name in d.environments.keys() {
            schedule.insert(name.clone(), (now, look));
        }
    }
    let mut first_pass = !cfg.once;
    // The socket exists before the first status does: whoever reads that status can act.
    let (_control_server, mut inbox) =
        crate::control::ControlServer::start(&cfg.state_dir, &cfg.control, store.clone()).await?;
    let mut control = control::Control::default();
    rec.write_status()?;
    let deadline = Instant::now() + cfg.once_timeout;
    let mut shutdown = std::pin::pin!(shutdown_signal());
    // Manifests read after a change, not yet put in force.
    let mut pending: Option<Result<DesiredState, Diagnostics>> = None;
    loop {
        if let Some(loaded) = pending.take() {
            edits_waiting.send_replace(false);
            match &loaded {
                Ok(d) => tracing::info!(revision = %d.revision, "manifests changed"),
                Err(e) => tracing::warn!(errors = e.len(), "manifests changed and are invalid"),
            }
            let started = std::time::Instant::now();
            let before = rec.desired().cloned();
            rec.set_desired(loaded);
            if let Some(d) = rec.desired().filter(|_| cfg.monitors) {
                watchdog.apply(d, &servable);
            }
            let _ = desired_tx.send(rec.desired().cloned());
            // Only the environments whose manifests changed are planned again now,
            // from the cache; the others keep their schedule (a warm start's spread
            // of fresh observations is not pulled forward by an unrelated edit).
            if let Some(d) = rec.desired() {
                schedule.retain(|k, _| d.environments.contains_key(k));
                replan = d.changed_environments(before.as_deref());
            }
            tracing::debug!(
                changed = replan.len(),
                "new manifests in force in {:?}",
                started.elapsed()
            );
            if replan.is_empty() {
                // Nothing to converge (invalid manifests, or back to the last good
                // ones): the status still says what the manifests are now.
                let status = rec.write_status()?;
                alerts.after_status(rec.desired().map(|d| &**d), &status);
                publish(&server, &rec, Some(status), !first_pass);
            }
        }
        let now = Instant::now();
        // Observations (calls) due now, earliest first and at most one wave of them, so one
        // pass stays short and a saved manifest waits behind little; the rest follow at once.
        let mut ripe: Vec<(&String, &(Instant, Look))> =
            schedule.iter().filter(|(_, (t, _))| *t <= now).collect();
        ripe.sort_by_key(|(_, (t, _))| *t);
        let wave = if cfg.once {
            usize::MAX
        } else {
            cfg.opts.per_platform_concurrency.max(1)
        };
        let mut calling = 0;
        let scheduled: BTreeMap<String, Look> = ripe
            .into_iter()
            .filter(|(_, (_, look))| {
                let calls = *look != Look::Cache;
                calling += usize::from(calls);
                !calls || calling <= wave
            })
            .map(|(k, (_, f))| (k.clone(), *f))
            .collect();
        // A manifest change is planned on its own, ahead of due observations, so the time
        // from a save to its write does not grow with what else is scheduled.
        let (scheduled, due) = if replan.is_empty() {
            (scheduled.clone(), scheduled)
        } else {
            let due: BTreeMap<String, Look> = std::mem::take(&mut replan)
                .into_iter()
                .map(|env| {
                    let look = scheduled.get(&env).copied().unwrap_or(Look::Cache);
                    (env, look)
                })
                .collect();
            let scheduled = scheduled
                .into_iter()
                .filter(|(k, _)| due.contains_key(k))
                .collect();
            (scheduled, due)
        };
        if cfg.once && Instant::now() >= deadline {
            return once_timed_out(&mut rec, &store, &mut watchdog, Vec::new());
        }
        if !due.is_empty() || rec.has_unplanned() {
            let outcome: Result<PassReport, Vec<String>> = {
                let pass = rec.pass_with(&due);
                tokio::pin!(pass);
                loop {
                    tokio::select! {
                        r = &mut pass => break Ok(r?),
                        // `--once --timeout` bounds the pass too: in-flight calls and waits
                        // are given up (a dropped write is resolved by the journal next time).
                        // Control actions wait for the pass to end: one writer, never alongside.
                        Some(req) = inbox.recv() => {
                            control.queued.push(req);
                            continue;
                        }
                        // Counters and rate-limit pauses reach /metrics during a long pass.
                        _ = refresh.tick() => {
                            server.update_api(crate::provider::api_counters(&providers));
                        }
                        _ = tokio::time::sleep_until(deadline), if cfg.once => {
                            break Err(in_flight(&providers));
                        }
                        // Read a change while the pass runs, so it is in force the moment
                        // the pass ends.
                        Some(()) = changes.recv() => {
                            read_change(&mut changes, watch.as_mut(), &mut loader, &desired_tx, &mut pending);
                            if pending.is_some() {
                                edits_waiting.send_replace(true);
                            }
                            continue;
                        }
                    _ = &mut shutdown => {
                        tracing::info!(
                            "stopping: letting in-flight calls finish (at most {} s)",
                            SHUTDOWN_BOUND.as_secs()
                        );
                        let _ = tokio::time::timeout(SHUTDOWN_BOUND, pass).await;
                        watchdog.persist(chrono::Utc::now());
                        watchdog.stop();
                        store.flush()?;
                        return Ok(stopped(cfg.once));
                    }
                    }
                }
            };
            let report = match outcome {
                Ok(r) => r,
                Err(in_flight) => {
                    return once_timed_out(&mut rec, &store, &mut watchdog, in_flight);
                }
            };
            let now = Instant::now();
            for (env, (delay, fresh)) in &report.next {
                // After a warm start, every environment is observed afresh soon (spread
                // over a minute), so drift while tether was down is caught.
                let delay = if first_pass {
                    (*delay).min(Duration::from_secs_f64(rand::random::<f64>() * 60.0))
                } else {
                    *delay
                };
                let at = now + delay;
                // An environment replanned only for a manifest change keeps an earlier
                // observation it had scheduled; one that was due takes what the pass asks.
                let keep = !scheduled.contains_key(env)
                    && schedule.get(env).is_some_and(|(t, _)| *t <= at);
                if !keep {
                    schedule.insert(env.clone(), (at, *fresh));
                }
            }
            first_pass = false;
            control.after_pass(&due, &report);
            for req in std::mem::take(&mut control.queued) {
                control.handle(req, &mut rec, &mut schedule, backup_orders.as_ref())?;
            }
            control.settled();
            watchdog.persist(chrono::Utc::now());
            server.record_pass(report.duration, report.writes, report.observed);
            if let Some(status) = &report.status {
                alerts.after_status(rec.desired().map(|d| &**d), status);
            }
            publish(&server, &rec, report.status.clone(), true);
            let envs = report
                .status
                .as_ref()
                .map(|(_, e)| e.clone())
                .unwrap_or_default();
            let now_servable = crate::watchdog::servable(&envs);
            if now_servable != servable && cfg.monitors {
                servable = now_servable;
                if let Some(d) = rec.desired() {
                    watchdog.apply(d, &servable);
                }
            }
            if cfg.once {
                let (index, _) = rec.write_status()?;
                let rejected = rec.token_errors();
                if let Some(exit) = once_exit(&index, &report, now >= deadline, &rejected) {
                    alerts.flush(SHUTDOWN_BOUND).await;
                    store.flush()?;
                    return Ok(exit);
                }
            }
        }
        let next = schedule
            .values()
            .map(|(t, _)| *t)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let next = if cfg.once { next.min(deadline) } else { next };
        // Manifests read during the pass go into force at once.
        let next = if pending.is_some() {
            Instant::now()
        } else {
            next
        };
        tokio::select! {
            // A saved manifest goes before due observations and monitor results.
            biased;
            _ = &mut shutdown => {
                tracing::info!("stopping");
                alerts.flush(SHUTDOWN_BOUND).await;
                watchdog.persist(chrono::Utc::now());
                watchdog.stop();
                store.flush()?;
                return Ok(stopped(cfg.once));
            }
            Some(()) = changes.recv() => {
                read_change(&mut changes, watch.as_mut(), &mut loader, &desired_tx, &mut pending);
            }
            Some(req) = inbox.recv() => {
                control.handle(req, &mut rec, &mut schedule, backup_orders.as_ref())?;
            }
            // An observation an edit left running finished: planned by the next pass.
            r = rec.observation_finished() => r?,
            Some((monitor, result)) = watchdog.next() => {
                if let Some(env) = watchdog.environment_of(&monitor) {
                    server.record_check(&monitor, &env, result.latency);
                }
                watchdog.record(&monitor, result);
                if cfg.once {
                    let (index, _) = rec.write_status()?;
                    let fake = PassReport::default();
                    let rejected = rec.token_errors();
                    if let Some(exit) = once_exit(&index, &fake, Instant::now() >= deadline, &rejected) {
                        alerts.flush(SHUTDOWN_BOUND).await;
                        watchdog.stop();
                        store.flush()?;
                        return Ok(exit);
                    }
                }
            }
            _ = refresh.tick() => {
                // Monitors' results reach the status files (and the page) between passes too.
                watchdog.persist(chrono::Utc::now());
                let status = rec.write_status()?;
                alerts.after_status(rec.desired().map(|d| &**d), &status);
                publish(&server, &rec, Some(status), !first_pass);
            }
            _ = tokio::time::sleep_until(next) => {}
        }
    }
}

/// Reads the manifests again after a change: `pending` becomes what was read, or stays as it
/// was when nothing changed. A reading not yet in force is freed before the next is built (it
/// is superseded, and two would be live at once); the loader then builds afresh even if the
/// content is back to what that reading held.
fn read_change(
    changes: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
    watch: Option<&mut DirWatch>,
    loader: &mut Loader,
    in_force: &tokio::sync::watch::Sender<Option<std::sync::Arc<DesiredState>>>,
    pending: &mut Option<Result<DesiredState, Diagnostics>>,
) {
    let in_force = in_force.borrow().clone();
    while changes.try_recv().is_ok() {}
    if let Some(w) = watch {
        w.refresh();
    }
    if pending.take().is_some() {
        loader.forget_digest();
    }
    let started = std::time::Instant::now();
    let loaded = loader.reload_after(in_force.as_deref());
    tracing::debug!(
        read = loader.last_refresh().read,
        parsed = loader.last_refresh().parsed,
        "manifests read again in {:?}",
        started.elapsed()
    );
    if loaded.is_some() {
        *pending = loaded;
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
