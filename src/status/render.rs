//! `tether status` for a terminal: one table per environment.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{EnvStatus, Index};

/// The status as tables.
pub fn text(index: &Index, envs: &[EnvStatus]) -> String {
    let mut out = String::new();
    let m = &index.manifests;
    match (&m.revision, m.valid) {
        (Some(r), true) => out.push_str(&format!("manifests: valid, revision {r}\n")),
        (r, false) => {
            out.push_str(&format!(
                "manifests: INVALID{} — the last good revision stays in force{}\n",
                r.as_ref()
                    .map(|r| format!(" (revision {r})"))
                    .unwrap_or_default(),
                m.applied_revision
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
            for e in &m.errors {
                out.push_str(&format!("  {e}\n"));
            }
        }
        (None, true) => out.push_str("manifests: valid\n"),
    }
    let s = index.summary;
    out.push_str(&format!(
        "{} resources: {} Ready, {} Reconciling, {} Stalled (updated {})\n\n",
        s.resources,
        s.ready,
        s.reconciling,
        s.stalled,
        index.generated_at.format("%Y-%m-%d %H:%M:%S UTC")
    ));
    for e in envs {
        out.push_str(&format!(
            "{} ({}, {} {}) — {}\n",
            e.environment,
            e.platform,
            e.app,
            e.env_type,
            e.state.as_str()
        ));
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED);
        t.set_header(vec!["kind", "name", "state", "synced", "message"]);
        for r in &e.resources {
            let msg = r
                .conditions
                .iter()
                .find(|c| c.status == "True" && c.kind != "Ready")
                .or_else(|| r.conditions.first())
                .map(|c| c.message.clone())
                .unwrap_or_default();
            t.add_row(vec![
                r.kind.clone(),
                r.name.clone(),
                r.state.as_str().to_string(),
                if r.synced { "yes".into() } else { "no".into() },
                msg,
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
        for n in &e.notices {
            out.push_str(&format!("  {:?}: {}\n", n.severity, n.message));
        }
        out.push('\n');
    }
    out
}
