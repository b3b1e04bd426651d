//! The `evident` binary: parse the command line, set up logging, run, map errors to exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use evident::cli::{Cli, LogFormat, exit_code, run};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Logs to stderr as text or JSON, or to the journal with structured fields when systemd
/// connected stderr to it (`JOURNAL_STREAM`). `EVIDENT_LOG` overrides the level.
fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter =
        || EnvFilter::try_from_env("EVIDENT_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let text = || {
        tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .with_target(false)
    };
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    match cli.log_format {
        LogFormat::Json => text().json().init(),
        LogFormat::Auto if journal => match tracing_journald::layer() {
            Ok(layer) => tracing_subscriber::registry()
                .with(filter())
                .with(layer.with_syslog_identifier("evident".into()))
                .init(),
            // The journal adds its own timestamps.
            Err(_) => text().without_time().with_ansi(false).init(),
        },
        LogFormat::Auto | LogFormat::Text => {
            text().with_ansi(std::io::stderr().is_terminal()).init()
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            let msg = evident::cli::error_text(&e);
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            ExitCode::from(code)
        }
    }
}
