//! The bench's output: one Markdown table, a column per size, as BENCHMARKS.md shows it.

use super::Report;

/// Prints the table of every size's figures.
pub(crate) fn print(reports: &[Report]) {
    println!(
        "| figure | {} |",
        reports
            .iter()
            .map(|r| format!("{} resources ({} envs)", r.resources, r.environments))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(reports.len()));
    let row = |name: &str, f: &dyn Fn(&Report) -> String| {
        println!(
            "| {name} | {} |",
            reports.iter().map(f).collect::<Vec<_>>().join(" | ")
        )
    };
    row("cold: all writes done (s)", &|r| {
        format!("{:.2}", r.cold_writes_done_s)
    });
    row("cold: everything Ready (s)", &|r| {
        format!("{:.2}", r.cold_ready_s)
    });
    row("cold: calls in the converging pass / minimum", &|r| {
        format!(
            "{} / {} = {:.3}",
            r.cold_calls_first_pass,
            r.minimum_calls,
            r.cold_calls_first_pass as f64 / r.minimum_calls as f64
        )
    });
    row(
        "cold: calls until Ready (following deploys and domains)",
        &|r| r.cold_calls_total.to_string(),
    );
    row("cold: rate-limit floor of the minimum (s)", &|r| {
        format!("{:.2}", r.floor_s)
    });
    row("baseline: calls (1 read + 1 write per resource)", &|r| {
        format!(
            "{} ({:.1}× tether)",
            r.baseline_calls,
            r.baseline_calls as f64 / r.cold_calls_first_pass as f64
        )
    });
    row("baseline: rate-limit floor (s)", &|r| {
        format!("{:.2}", r.baseline_floor_s)
    });
    row("baseline: latency bound at parallelism 10 (s)", &|r| {
        format!(
            "{:.2} ({:.1}× tether's writes-done)",
            r.baseline_latency_s,
            r.baseline_latency_s / r.cold_writes_done_s.max(1e-9)
        )
    });
    row("resync: writes", &|r| r.resync_writes.to_string());
    row("resync: calls (baseline: reads alone)", &|r| {
        format!("{} ({})", r.resync_calls, r.resources + r.environments)
    });
    row("resync: CPU (s) / wall (s)", &|r| {
        format!("{:.3} / {:.2}", r.resync_cpu_s, r.resync_wall_s)
    });
    row("peak RSS (MiB)", &|r| format!("{:.1}", r.peak_rss_mib));
    let stage_names: Vec<String> = reports
        .first()
        .map(|r| r.stages.0.iter().map(|(n, _, _)| n.clone()).collect())
        .unwrap_or_default();
    for (i, name) in stage_names.iter().enumerate() {
        row(&format!("RSS after {name} / peak so far (MiB)"), &|r| {
            r.stages
                .0
                .get(i)
                .map(|(_, now, peak)| format!("{now:.1} / {peak:.1}"))
                .unwrap_or_default()
        });
    }
    row("edit → first write p50 / p99 (ms)", &|r| {
        format!(
            "{:.0} / {:.0} (n={})",
            r.edit_p50_ms, r.edit_p99_ms, r.edits
        )
    });
    row("restart, warm cache: first pass (s) / writes", &|r| {
        format!("{:.3} / {}", r.restart_first_pass_s, r.restart_writes)
    });
}
