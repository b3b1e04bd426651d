//! The `evident` binary: parse the command line, set up logging, run, map errors to exit codes.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, LogFormat, exit_code, run};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Logs to stderr as text or JSON, or to the journal with structured fields when systemd
/// connected stderr to it (`JOURNAL_STREAM`). `EVIDENT_LOG` overrides the level.
fn init_logging(cli: &Cli) {
    // The daemon says what it does at info (start, each run, checkpoints, reloads, stop), so
    // `journalctl -u evident` tells the story; one-shot commands stay quiet but for warnings.
    let daemon = matches!(cli.command, cli::Command::Run(_));
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) if daemon => "info",
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

/// Exit status of a command whose reader went away (`| head`): what a shell reports for a
/// process ended by SIGPIPE, 128 + 13, without a word on stderr.
const CLOSED_PIPE: u8 = 141;

/// `println!` panics when stdout is a closed pipe; end quietly instead, as `cat` would.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(i32::from(CLOSED_PIPE));
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    init_logging(&cli);
    let json_log = cli.log_format == LogFormat::Json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if e.chain().any(|c| {
                let kind = c
                    .downcast_ref::<std::io::Error>()
                    .map(std::io::Error::kind)
                    .or_else(|| {
                        c.downcast_ref::<serde_json::Error>()
                            .and_then(serde_json::Error::io_error_kind)
                    });
                kind == Some(std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(CLOSED_PIPE)
        }
        Err(e) => {
            let code = exit_code(&e);
            let msg = cli::error_text(&e);
            if json_log {
                // Every line JSON, the last one too.
                tracing::error!(exit_code = code, "{msg}");
            } else if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            ExitCode::from(code)
        }
    }
}
