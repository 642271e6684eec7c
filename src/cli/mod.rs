//! The `permitsync` command line (binary only): parse, open the store, run one
//! command, render its outcome. Errors print `error: <message>` on stderr and
//! exit 1; usage errors are clap's (exit 2). Logs go to stderr (`RUST_LOG`,
//! default `warn`); stdout carries command output only.

mod args;
mod commands;
mod node_cmds;
mod output;
mod timestamp;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use args::Cli;

/// Run the command line and return the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(error = ?e, "command failed");
            let _ = writeln!(io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        args::Command::Serve(a) => {
            return node_cmds::serve(&cli.data, cli.device, &cli.require_gas, a)
        }
        args::Command::Status(a) => return node_cmds::status(a, cli.json),
        args::Command::Sync(a) => {
            return node_cmds::sync_once(&cli.data, cli.device, &cli.require_gas, a, cli.json)
        }
        _ => {}
    }
    let store = commands::open_store(&cli.data, cli.device, &cli.require_gas)?;
    let outcome = commands::run(&store, cli.command)?;
    let mut out = io::stdout().lock();
    output::render(&outcome, cli.json, &mut out, &mut io::stderr())?;
    out.flush()?;
    Ok(())
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .try_init();
}

/// `permitsync list | head` closing the pipe early is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
