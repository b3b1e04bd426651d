//! `evident runs`: the run history, newest first.

use super::{Ctx, Format, output};
use evident::ledger::reader::Reader;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Show the collectors' recent runs, newest first: when each started \
and finished, what it found (new, unchanged, removed, failed) and its error. Every run is kept \
here; only a run that recorded something, changed outcome (failed, recovered, failed \
only in part) or is due for the heartbeat (`[ledger] heartbeat`, default 1d) also appends a \
`collector_run` entry to the ledger, named in the `entry` column.\n\n\
Examples:\n  evident runs\n  evident runs registry --limit 5\n  evident runs --format json | jq '.[] | select(.error)'";

/// Options of `evident runs`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only these collectors (default: all).
    pub names: Vec<String>,
    /// How many runs to show.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let state = ctx.state()?;
    let reader = Reader::open(&state)?;
    let runs = reader.runs(&args.names, args.limit)?;
    if ctx.cli.format == Format::Json {
        return output::json(&runs);
    }
    if runs.is_empty() && ctx.cli.format == Format::Table {
        if args.names.is_empty() {
            eprintln!("no runs recorded yet: `evident collect` or `evident run` starts them");
        } else {
            eprintln!(
                "no runs of {} recorded (collector names as in the config's [[collectors]] name)",
                args.names.join(", ")
            );
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|row| {
            let r = &row.run;
            vec![
                r.collector.clone(),
                r.started_at.clone(),
                r.finished_at.clone(),
                r.new.to_string(),
                r.unchanged.to_string(),
                r.removed.to_string(),
                r.failed.to_string(),
                row.entry.map(|e| e.to_string()).unwrap_or_default(),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::rows_hiding(
        ctx.cli.format,
        &[
            "collector",
            "started_at",
            "finished_at",
            "new",
            "unchanged",
            "removed",
            "failed",
            "entry",
            "error",
        ],
        &rows,
        &["started_at", "unchanged", "removed", "failed", "entry"],
    )
}
