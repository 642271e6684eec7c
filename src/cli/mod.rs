//! The `permitsync` command line (binary only): parse, open the store, run one
//! command, render its outcome. Errors print `error: <message>` on stderr and
//! exit 1; usage errors are clap's (exit 2). Logs go to stderr (`RUST_LOG`,
//! default `warn`; `serve --log-format json` for JSON lines; colour only on a
//! terminal); stdout carries command output only.

mod args;
mod backup_cmds;
mod commands;
mod config;
mod identity_cmds;
mod migrate;
mod node_cmds;
mod node_http;
mod output;
mod serve_args;
mod timestamp;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use args::LogFormat;
use config::Parsed;

/// Run the command line and return the process exit code.
pub fn main() -> ExitCode {
    let parsed = match config::parse() {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(io::stderr(), "error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let format = match &parsed.cli.command {
        args::Command::Serve(a) => a.log_format,
        _ => LogFormat::Text,
    };
    init_logging(format);
    match run(parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(error = ?e, "command failed");
            let _ = writeln!(io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(parsed: Parsed) -> anyhow::Result<()> {
    let Parsed { cli, sources } = parsed;
    match cli.command {
        args::Command::Serve(a) => {
            let checked = node_cmds::check(&cli.require_gas, &a)?;
            if a.check_config {
                let text = config::effective(
                    &cli.data,
                    cli.device.as_deref(),
                    &cli.require_gas,
                    &a,
                    &sources,
                )?;
                let mut out = io::stdout().lock();
                out.write_all(text.as_bytes())?;
                writeln!(out, "# configuration ok")?;
                return Ok(());
            }
            return node_cmds::serve(&cli.data, cli.device, &cli.require_gas, a, checked);
        }
        args::Command::Status(a) => return node_cmds::status(a, cli.json),
        args::Command::Backup(a) => return backup_cmds::backup(&cli.data, a, cli.json),
        args::Command::Restore(a) => return backup_cmds::restore_cmd(&cli.data, a, cli.json),
        args::Command::Sync(a) => {
            return node_cmds::sync_once(&cli.data, cli.device, &cli.require_gas, a, cli.json)
        }
        args::Command::Migrate(a) => return migrate::migrate(a, cli.json),
        args::Command::Authority(args::AuthorityCmd::Init { out }) => {
            return identity_cmds::authority_init(&out, cli.json, &mut io::stdout().lock());
        }
        args::Command::Identity => {
            let store = commands::open_store(&cli.data, cli.device, &cli.require_gas)?;
            return identity_cmds::identity(&store, cli.json, &mut io::stdout().lock());
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

/// Logs on stderr at `RUST_LOG` (default `warn`), as text or JSON lines;
/// colour only when stderr is a terminal and `NO_COLOR` is unset.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let colour = io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(colour);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// `permitsync list | head` closing the pipe early is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
