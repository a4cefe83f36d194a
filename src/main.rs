//! The `tether` binary: parses arguments, sets up logging, runs a command, maps errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use tether::cli::{self, Cli, LogFormat};
use tracing_subscriber::EnvFilter;

/// jemalloc returns freed memory to the system, where glibc's malloc keeps a long-running
/// daemon's fragments (see BENCHMARKS.md, memory); its settings are in .cargo/config.toml.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global);
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("error: {e:#}");
            ExitCode::from(cli::exit::ERROR)
        }
    }
}

fn init_logging(g: &cli::Global) {
    let default = match g.verbose {
        0 => "info",
        1 => "tether=debug,info",
        _ => "tether=trace,debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match g.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
