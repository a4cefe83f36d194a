//! The bench's memory readings: RSS now and at its peak, from /proc/self/status, by stage.

use serde::{Deserialize, Serialize};

/// A figure of this process's memory from /proc/self/status, in MiB.
pub(crate) fn vm_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

pub(crate) fn peak_rss_mib() -> f64 {
    vm_mib("VmHWM:")
}

/// Memory by stage: RSS now and the peak so far, after each step of a size's run.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Stages(pub Vec<(String, f64, f64)>);

impl Stages {
    pub(crate) fn mark(&mut self, stage: &str) {
        let (now, peak) = (vm_mib("VmRSS:"), peak_rss_mib());
        let (anon, file) = (vm_mib("RssAnon:"), vm_mib("RssFile:"));
        eprintln!(
            "tether-bench: after {stage}: RSS {now:.1} MiB (heap and stacks {anon:.1}, program {file:.1}), peak {peak:.1} MiB"
        );
        self.0.push((stage.to_string(), now, peak));
    }
}
