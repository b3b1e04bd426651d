//! The `evident` binary: parse the command line, set up logging, run, map errors to exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use evident::cli::{Cli, LogFormat, exit_code, run};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_env("EVIDENT_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // Under systemd stderr goes to the journal, which adds its own timestamps.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Auto if journal => logs.without_time().with_ansi(false).init(),
        LogFormat::Auto | LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            let msg = format!("{e:#}");
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            ExitCode::from(code)
        }
    }
}
