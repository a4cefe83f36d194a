//! The benchmark harness works at 100 resources (the full run is `cargo run --release --bin
//! tether-bench`, recorded in BENCHMARKS.md; it is not part of CI).

use std::process::Command;

#[test]
fn the_benchmark_runs_at_100_resources() {
    let out = Command::new(env!("CARGO_BIN_EXE_tether-bench"))
        .args(["--sizes", "100", "--edits", "3"])
        .output()
        .expect("run tether-bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("| {name}")))
            .unwrap_or_else(|| panic!("no row {name}:\n{text}"))
            .to_string()
    };
    assert!(
        row("cold: calls in the converging pass / minimum").contains("= 1.000"),
        "{text}"
    );
    assert_eq!(row("resync: writes"), "| resync: writes | 0 |");
    assert!(row("restart, warm cache").ends_with("/ 0 |"), "{text}");
    assert!(row("edit → first write").contains("(n=3)"), "{text}");
}
