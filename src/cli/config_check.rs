//! `evident config check`: validate the config and exit.

use super::Ctx;

pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let quiet = ctx.cli.quiet;
    let cfg = ctx.config()?;
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
    Ok(())
}
