//! The bench's second process: the daemon restarted on the cold run's store, as a restarted
//! daemon is, then manifest edits timed from the save to the simulator receiving the write.

use super::*;

/// What the restarted daemon's process measured.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Restarted {
    pub first_pass_s: f64,
    pub writes: usize,
    pub edit_p50_ms: f64,
    pub edit_p99_ms: f64,
    pub edits: usize,
    pub peak_rss_mib: f64,
    pub stages: Stages,
}

/// `--restart-child`: the daemon restarted on a warm store, then the edits.
pub(crate) async fn run_restart(
    args: &Args,
    n: usize,
    dir: &Path,
    sim: std::net::SocketAddr,
) -> Restarted {
    let mut stages = Stages::default();
    stages.mark("start");
    let manifests = dir.join("m");
    let opts = options(args, dir);
    // The cold run's store lets go of its lock a moment after it is dropped.
    let store = (0..200)
        .find_map(|_| {
            Store::open(&dir.join("state"))
                .inspect_err(|_| std::thread::sleep(Duration::from_millis(10)))
                .ok()
        })
        .expect("the store opens");
    let tokens = tether::simulate::SimTokens::default();
    let providers = simulated_providers_at(sim, &tokens, &rates(), Policy::REQUEST);
    let sim = RemoteSim::connect(sim);
    // Restart with a warm cache, then edits, through the daemon itself.
    sim.clear_requests().await;
    let cfg = DaemonConfig::embedded(manifests.clone(), dir.join("state"), opts.clone());
    let index = dir.join("status/index.json");
    let _ = std::fs::remove_file(&index);
    let t2 = Instant::now();
    let daemon = tokio::spawn(tether::daemon::run(
        cfg,
        store.clone(),
        Platforms::Given(providers.clone()),
    ));
    loop {
        let done = std::fs::read_to_string(&index)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .is_some_and(|v| v["firstPassDone"] == true);
        if done || t2.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let restart = t2.elapsed();
    eprintln!("tether-bench: {n}: restart {:.1} s", restart.as_secs_f64());
    let after_restart = sim.fold_since(0, call).await;
    let restart_writes = after_restart.iter().filter(|c| c.write).count();
    // The harness's own reads of the request log are incremental from here on, so its memory
    // does not grow with the log.
    let mut seen = after_restart.len();
    drop(after_restart);
    stages.mark("the restart's first pass");
    // Edits to a Supabase environment's variable: one write each, no deploy. Only writes to that
    // project count (the restarted daemon may still be verifying domains elsewhere).
    let edited_ref = letters(2, 20);
    let file = manifests.join("env-2.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    let mut lat = Vec::new();
    for k in 0..args.edits {
        let ours = |r: &RecordedRequest| is_write(r) && r.path.contains(&edited_ref);
        seen += sim.requests_since(seen).await.len();
        std::fs::write(
            &file,
            original.replace("VAR_00: value-2-0", &format!("VAR_00: edit-{k}")),
        )
        .unwrap();
        let t = Instant::now();
        tracing::debug!("tether-bench: edit {k} saved");
        loop {
            let new = sim.requests_since(seen).await;
            seen += new.len();
            if new.iter().any(ours) {
                tracing::debug!("tether-bench: edit {k} written");
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                panic!("edit {k} was not applied within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    daemon.abort();
    stages.mark("the edits");
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |q: f64| {
        lat.get(
            ((lat.len() as f64 * q).ceil() as usize)
                .saturating_sub(1)
                .min(lat.len().saturating_sub(1)),
        )
        .copied()
        .unwrap_or(0.0)
    };
    Restarted {
        first_pass_s: restart.as_secs_f64(),
        writes: restart_writes,
        edit_p50_ms: pct(0.5),
        edit_p99_ms: pct(0.99),
        edits: lat.len(),
        peak_rss_mib: peak_rss_mib(),
        stages,
    }
}
