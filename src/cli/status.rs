//! `evident status`: the collectors, the ledger, the checkpoint and coverage at a glance.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::remote::{ServerArgs, check};
use super::{Ctx, Format, output};
use evident::api::v1::{Live, StatusOut, status_of};
use evident::ledger::reader::Reader;
use evident::status::{STATUS_FILE, StatusFile};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Show each collector (last run, outcome, next run, failures in a row, last \
error), the ledger's size, the newest checkpoint's age and whether it is timestamped, and the \
coverage summary.\n\n\
Locally it reads the state directory, and what the running daemon reports about its \
collectors (daemon-status.json, rewritten on every change); with no daemon running, the run \
history. With --server it asks a remote server's /v1/status (a read token in EVIDENT_TOKEN).\n\n\
Examples:\n  evident status\n  evident status --format json | jq .collectors\n  \
evident status --server https://evident.example.org";

/// Options of `evident status`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A remote server instead of the local state directory.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The running daemon's status file, if a live daemon wrote it.
fn daemon_file(dir: &std::path::Path) -> Option<StatusFile> {
    let text = std::fs::read_to_string(dir.join(STATUS_FILE)).ok()?;
    let f: StatusFile = serde_json::from_str(&text).ok()?;
    let pid = rustix::process::Pid::from_raw(i32::try_from(f.pid).ok()?)?;
    rustix::process::test_kill_process(pid).ok()?;
    Some(f)
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let (out, daemon) = if args.server.server.is_some() {
        (remote(&args.server)?, None)
    } else {
        let state = ctx.state()?;
        let config = ctx.optional_config()?.cloned();
        let settings = evident::api::Settings::new(config.as_ref(), Arc::default());
        let daemon = daemon_file(state.dir());
        let live: Live = daemon
            .as_ref()
            .map(|d| d.collectors.clone())
            .unwrap_or_default();
        let reader = Reader::open(&state)?;
        let out = status_of(&settings, &live, daemon.is_some(), &reader)
            .map_err(|e| anyhow::anyhow!(e.message))?;
        (out, daemon)
    };
    if ctx.cli.format == Format::Json {
        return output::json(&out);
    }
    print(ctx.cli.format, &out, daemon.as_ref())
}

fn remote(server: &ServerArgs) -> anyhow::Result<StatusOut> {
    let base = server.base()?;
    let token = server.token("read")?;
    let client = server.client(Duration::from_secs(30))?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(async {
            let resp = client
                .get(format!("{base}/v1/status"))
                .bearer_auth(token)
                .send()
                .await
                .map_err(|e| super::remote::unreachable(&base, &e))?;
            let resp = check(resp, "status").await?;
            resp.json::<StatusOut>().await.context("reading the status")
        })
}

fn ago(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

fn print(format: super::Format, s: &StatusOut, daemon: Option<&StatusFile>) -> anyhow::Result<()> {
    if format == Format::Table {
        match daemon {
            Some(d) => eprintln!(
                "daemon: running (pid {}, since {}){}",
                d.pid,
                d.started_at,
                d.api_url
                    .as_ref()
                    .map_or(String::new(), |u| format!("; API {u}"))
            ),
            None if s.collecting => eprintln!("daemon: running"),
            None => eprintln!("daemon: not running (collector states from the run history)"),
        }
        let checkpoint = match (s.checkpoint_size, s.checkpoint_age_seconds) {
            (Some(size), Some(age)) => format!(
                "checkpoint at {size}, signed {}{}",
                ago(age),
                if s.checkpoint_timestamped {
                    ", timestamped"
                } else {
                    ", not timestamped"
                }
            ),
            (Some(size), None) => format!("checkpoint at {size}"),
            _ => "no checkpoint yet".to_owned(),
        };
        let unsigned = s.entries.saturating_sub(s.checkpoint_size.unwrap_or(0));
        eprintln!(
            "ledger: {} entries; {checkpoint}{}",
            s.entries,
            if unsigned > 0 {
                format!(" ({unsigned} not yet covered)")
            } else {
                String::new()
            }
        );
        let cov: Vec<String> = s.coverage.iter().map(|(k, v)| format!("{k} {v}")).collect();
        eprintln!("coverage: {}", cov.join(", "));
    }
    let rows: Vec<Vec<String>> = s
        .collectors
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.kind.clone(),
                if c.live.running {
                    "running".to_owned()
                } else {
                    c.live.last_run_at.clone().unwrap_or_else(|| "never".into())
                },
                c.live.last_outcome.map_or("", |o| o.as_str()).to_owned(),
                c.live.next_run_at.clone().unwrap_or_default(),
                c.live.consecutive_failures.to_string(),
                c.live.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::rows_hiding(
        format,
        &[
            "collector",
            "kind",
            "last_run",
            "outcome",
            "next_run",
            "failures",
            "last_error",
        ],
        &rows,
        &["kind", "next_run"],
    )
}
