//! `evident config check`: validate the config and exit; with `--connect`, also reach every
//! API source with its credentials, and the timestamp authority.

use anyhow::Context as _;

use super::{Ctx, Exit};

/// Options of `evident config check`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Also contact every source with its credentials (one cheap request each), so a wrong
    /// URL or token shows before the daemon starts.
    #[arg(long)]
    pub connect: bool,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let quiet = ctx.cli.quiet;
    let cfg = ctx.config()?.clone();
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
