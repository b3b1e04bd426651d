//! `evident collect`: run collectors once and record what they find.

use std::sync::Arc;

use anyhow::Context as _;
use serde::Serialize;

use super::{Ctx, Exit, Format, output};
use evident::ledger::reader::Reader;
use evident::mapping::Mapper;
use evident::recorder::RunStats;
use evident::runner::{Ledger, RunOptions, run_collector};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Run the configured collectors once (all, or those named) and record new, changed \
and removed artefacts in the ledger. Unchanged artefacts add nothing. Every run is kept in the \
run history (`evident runs`); a run also appends a `collector_run` entry, the signed proof that \
collection ran, when it recorded something, its outcome changed (it failed, recovered, or \
failed only in part), or `[ledger] heartbeat` (default 1d) passed since the last one.\n\n\
Exit code 1 when a collector failed or an item could not be recorded; everything else found \
is still recorded. A run of a collector already in progress in another process (the daemon) \
is waited for; --no-wait refuses instead (exit 2).\n\n\
Examples:\n  evident --config config/quickstart.toml collect\n  evident collect registry hub          # only these collectors\n  \
evident collect --full                 # ignore caches and cursors: look at everything again\n  \
evident collect --format json | jq '.collectors[] | {collector, new, failed}'";

/// Options of `evident collect`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Collectors to run (default: all).
    pub names: Vec<String>,
    /// Ignore cursors and stat caches: read and hash everything again.
    #[arg(long)]
    pub full: bool,
}

#[derive(Serialize)]
struct Summary<'a> {
    collectors: &'a [RunStats],
    entries: u64,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    super::private_umask();
    let state = ctx.state()?;
    let progress = ctx.progress();
    let cfg = ctx.config()?.clone();
    for n in &args.names {
        if cfg.collector(n).is_none() {
            let known: Vec<&str> = cfg.collectors.iter().map(|c| c.name.as_str()).collect();
            return Err(Exit {
                code: 2,
                message: format!(
                    "no collector named {n:?} in {}; configured: {}",
                    cfg.file.display(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            }
            .into());
        }
    }
    let selected: Vec<_> = cfg
        .collectors
        .iter()
        .filter(|c| args.names.is_empty() || args.names.contains(&c.name))
        .cloned()
        .collect();
    // Held until every run is recorded: a second `collect` or the daemon waits, then finds
    // everything known instead of recording it twice.
    let _locks = selected
        .iter()
        .map(|c| {
            ctx.job_lock(
                &state,
                &evident::lock::collector_job(&c.name),
                &format!("a run of collector `{}`", c.name),
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ledger = Arc::new(Ledger::open_configured(state, &cfg)?);
    let mapper = Arc::new(Mapper::new(cfg.rules.clone()));
    let opts = RunOptions {
        full: args.full,
        progress,
        stop: None,
        heartbeat: cfg.ledger.heartbeat(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Side by side: a slow or stalled source delays nobody (recording still goes through
    // the one writer, in whole batches).
    let all = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, c) in selected.into_iter().enumerate() {
            let (ledger, mapper, opts) = (ledger.clone(), mapper.clone(), opts.clone());
            set.spawn(async move { (i, run_collector(&ledger, &c, &mapper, &opts).await) });
        }
        let mut all = Vec::new();
        while let Some(done) = set.join_next().await {
            let (i, stats) = done.context("a collector task failed")?;
            all.push((i, stats?));
        }
        all.sort_by_key(|(i, _)| *i);
        anyhow::Ok(all.into_iter().map(|(_, s)| s).collect::<Vec<_>>())
    })?;
    let entries = Reader::open(&ledger.state)?.size()?;
    drop(ledger);
    report(ctx, &all, entries)?;
    let failed = all.iter().any(|s| s.error.is_some() || s.failed > 0);
    if failed {
        return Err(Exit {
            code: 1,
            message: "some evidence could not be collected (see above)".into(),
        }
        .into());
    }
    Ok(())
}

fn report(ctx: &Ctx, all: &[RunStats], entries: u64) -> anyhow::Result<()> {
    for s in all {
        if let Some(e) = &s.error {
            eprintln!("error: collector {}: {e}", s.collector);
        }
        for p in &s.problems {
            let level = if p.failed { "error" } else { "warning" };
            if p.failed || !ctx.cli.quiet {
                eprintln!("{level}: {}: {}: {}", s.collector, p.item, p.message);
            }
        }
    }
    match ctx.cli.format {
        Format::Json => output::json(&Summary {
            collectors: all,
            entries,
        }),
        format => {
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|s| {
                    vec![
                        s.collector.clone(),
                        s.new.to_string(),
                        s.unchanged.to_string(),
                        s.removed.to_string(),
                        s.failed.to_string(),
                        s.requests.to_string(),
                        if s.error.is_some() {
                            "failed".into()
                        } else if s.failed > 0 {
                            "partial".into()
                        } else {
                            "ok".into()
                        },
                    ]
                })
                .collect();
            if ctx.cli.quiet && format == Format::Table {
                return Ok(());
            }
            output::rows_hiding(
                format,
                &[
                    "collector",
                    "new",
                    "unchanged",
                    "removed",
                    "failed",
                    "requests",
                    "status",
                ],
                &rows,
                &["requests", "unchanged", "removed"],
            )?;
            if format == Format::Table {
                println!("ledger: {entries} entries");
            }
            Ok(())
        }
    }
}
