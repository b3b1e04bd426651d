//! `evident backup DIR`: a consistent copy of the ledger, its blobs and keys.

use serde::Serialize;

use super::{Ctx, Format, output};
use evident::ledger::backup::backup;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Copy the ledger into DIR (new or empty): the database through \
SQLite's online backup API (one consistent state, safe while `evident run` writes), every blob \
its entries name (re-hashed on the way), the signing key and the verifier key. DIR holds the \
signing key: keep it as private as the state directory.\n\n\
Restore: stop the daemon, move DIR to where `[ledger] path` points (or point it at DIR), run \
`evident verify`, start the daemon. Entries recorded after the backup are not in it; \
collectors record what is still there on their next run.\n\n\
Examples:\n  evident --config /etc/evident/evident.toml backup /var/backups/evident/2026-12-02\n  \
evident --state-dir /var/lib/evident backup /mnt/offsite/evident --format json";

/// Options of `evident backup`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The backup directory (must not exist, or be empty).
    #[arg(value_name = "DIR")]
    pub dir: std::path::PathBuf,
}

#[derive(Serialize)]
struct Out<'a> {
    #[serde(flatten)]
    summary: &'a evident::ledger::backup::BackupSummary,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    super::private_umask();
    let state = ctx.state()?;
    let bar = evident::progress::bar(0, "backing up blobs {bar:40} {pos}/{len}", ctx.progress());
    let summary = backup(&state, &args.dir, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if ctx.cli.format == Format::Json {
        return output::json(&Out { summary: &summary });
    }
    if let (false, Some(url)) = (ctx.cli.quiet, &summary.content_in) {
        println!(
            "backed up {} entries and the keys to {}; the content stays in {url} (protect it \
             with the store's own versioning or replication)",
            summary.entries, summary.dir
        );
    } else if !ctx.cli.quiet {
        println!(
            "backed up {} entries (checkpoint {}), {} blobs ({} bytes) and the keys to {}",
            summary.entries,
            summary
                .checkpoint
                .map_or_else(|| "none yet".to_owned(), |c| c.to_string()),
            summary.blobs,
            summary.bytes,
            summary.dir
        );
        println!(
            "check it with: evident --state-dir {} verify",
            args.dir.display()
        );
    }
    Ok(())
}
