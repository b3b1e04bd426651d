//! `evident config check`: validate the config and exit; with `--connect`, also reach every
//! API source with its credentials, and the timestamp authority.

use anyhow::Context as _;

use super::{Ctx, Exit};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Validate the config and exit: every key (unknown keys are errors, named \
with file:line:column), every schedule (in crontab's own syntax; lines that never fire are \
refused), every collector's settings, folders that must exist, the ledger kept out of every \
evidence folder, and `command` programs that exist but cannot run. Prints each collector's \
next three runs. Exit 0 valid, 2 invalid.\n\n\
With --connect, also reach every source with its credentials (one cheap request each) and the \
timestamp authority: exit 1 when one cannot be reached or refuses.\n\n\
Examples:\n  evident --config /etc/evident/evident.toml config check\n  \
sudo -u evident evident --config /etc/evident/evident.toml config check --connect";

/// Options of `evident config check`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Also contact every source with its credentials (one cheap request each), so a wrong
    /// URL or token shows before the daemon starts.
    #[arg(long)]
    pub connect: bool,
}

/// What parsing cannot know: folders that must exist now, and the ledger's own files kept
/// out of every evidence folder.
fn check_places(cfg: &evident::config::Config) -> Vec<String> {
    let state = std::fs::canonicalize(&cfg.ledger.path).unwrap_or_else(|_| cfg.ledger.path.clone());
    let mut problems = Vec::new();
    for c in &cfg.collectors {
        if let evident_collectors::sources::SourceConfig::Command(cmd) = &c.source
            && cmd.program.exists()
            && let Err(e) = evident_collectors::sources::command::find_program(&cmd.program)
        {
            problems.push(format!("collector `{}`: {e}", c.name));
        }
        let evident_collectors::sources::SourceConfig::Filesystem(fs) = &c.source else {
            continue;
        };
        match std::fs::canonicalize(&fs.root) {
            Ok(root) if !root.is_dir() => problems.push(format!(
                "collector `{}`: root {} is not a directory; set `root` to the folder to collect",
                c.name,
                fs.root.display()
            )),
            Ok(root) if state.starts_with(&root) => problems.push(format!(
                "collector `{}`: the state directory {} is inside its root {}; keep the ledger \
                 (database, signing key, blobs) outside every evidence folder: move `[ledger] path` \
                 or narrow `root`",
                c.name,
                cfg.ledger.path.display(),
                fs.root.display()
            )),
            Ok(_) => {}
            Err(e) => problems.push(format!(
                "collector `{}`: root {}: {e}; create the folder or fix `root`",
                c.name,
                fs.root.display()
            )),
        }
    }
    problems
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let quiet = ctx.cli.quiet;
    let cfg = ctx.config()?.clone();
    let problems = check_places(&cfg);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        return Err(Exit {
            code: 2,
            message: format!(
                "{}: {} problem(s) (see above)",
                cfg.file.display(),
                problems.len()
            ),
        }
        .into());
    }
    if !quiet {
        println!(
            "{}: valid ({} collector(s), {} rule(s), ledger {} in {})",
            cfg.file.display(),
            cfg.collectors.len(),
            cfg.rules.len(),
            cfg.ledger.origin,
            cfg.ledger.path.display()
        );
    }
    if !quiet {
        let now = chrono::Utc::now();
        for c in &cfg.collectors {
            let when = match &c.schedule {
                Some(s) => {
                    let next: Vec<String> = s
                        .after(&now)
                        .take(3)
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                        .collect();
                    format!("{} -> next runs {}", s.text, next.join(", "))
                }
                None => "no schedule: once at daemon start".to_owned(),
            };
            println!("  {} ({}): {when}", c.name, c.source.kind());
        }
    }
    if !args.connect {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let cx = evident_collectors::CollectContext::default();
    let mut failed = 0;
    for c in &cfg.collectors {
        let outcome = match c.source.build(&c.name, &c.common()) {
            Ok(collector) => rt.block_on(collector.check(&cx)),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) if !quiet => println!("{}: ok", c.name),
            Ok(()) => {}
            Err(e) => {
                failed += 1;
                eprintln!("error: collector {}: {e}", c.name);
            }
        }
    }
    drop(rt);
    if let Some(a) = &cfg.anchoring {
        match a.probe() {
            Ok(stamp) if !quiet => println!(
                "anchoring: ok ({} answered, time {})",
                a.tsa_url, stamp.time
            ),
            Ok(_) => {}
            Err(e) => {
                failed += 1;
                eprintln!("error: anchoring: {e}");
            }
        }
    }
    if failed > 0 {
        return Err(Exit {
            code: 1,
            message: format!("{failed} source(s) cannot be reached (see above)"),
        }
        .into());
    }
    Ok(())
}
