//! `evident show N`: an entry's stored content (or, with `--meta`, its leaf).

use std::io::Write;

use super::{Ctx, Exit};
use evident::ledger::leaf::{hex, parse_hex32};
use evident::ledger::reader::Reader;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Write the content stored for entry INDEX to stdout or --out FILE, \
re-hashed on the way: a blob that no longer matches the entry's SHA-256 is refused (exit 3) \
and no file is left. With --meta, write the entry's leaf instead: the in-toto Statement the \
Merkle tree commits to, byte for byte.\n\n\
Examples:\n  evident show 42 --out minutes.pdf\n  evident show 42 --meta | jq .predicate\n  \
evident query A.6.2.7 --format json | jq '.[0].index'   # find an index";

/// Options of `evident show`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Entry index (as `query` shows it).
    pub index: u64,
    /// Write to this file (new; refused if it exists) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// The entry's leaf (in-toto Statement JSON) instead of its content.
    #[arg(long)]
    pub meta: bool,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let state = ctx.state()?;
    let reader = Reader::open(&state)?;
    let size = reader.size()?;
    let entry = reader.entry(args.index)?.ok_or_else(|| Exit {
        code: 1,
        message: format!("there is no entry {} (the ledger holds {size})", args.index),
    })?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(
            std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(p)
                .map_err(|e| Exit {
                    code: 1,
                    message: format!("cannot create {}: {e} (show never overwrites)", p.display()),
                })?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let written = if args.meta {
        let mut leaf = Vec::new();
        reader.for_each_leaf_at(args.index, |b| leaf = b.to_vec())?;
        out.write_all(&leaf).map_err(anyhow::Error::from)
    } else {
        copy_content(&state, &reader, &entry, &mut out)
    };
    let written = written.and_then(|()| out.flush().map_err(anyhow::Error::from));
    if written.is_err()
        && let Some(p) = &args.out
    {
        drop(out);
        let _ = std::fs::remove_file(p);
    }
    written
}

/// Streams the entry's blob into `out`, checking it hashes to the entry's digest.
fn copy_content(
    state: &evident::ledger::state::StateDir,
    reader: &Reader,
    entry: &evident::ledger::reader::EntryRow,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let no_content = || Exit {
        code: 1,
        message: format!(
            "entry {} ({}, {}) has no stored content: it is a removal, metadata only, or was \
             above max_file_size; `evident show {} --meta` prints its leaf",
            entry.index, entry.kind, entry.uri, entry.index
        ),
    };
    let want = parse_hex32(&entry.sha256).ok_or_else(no_content)?;
    if !entry.has_blob {
        return Err(no_content().into());
    }
    let blobs = state.blobs();
    if let Some(e) = evident::ledger::erasures::of(reader, &blobs, entry.index)? {
        return Err(Exit {
            code: 1,
            message: format!(
                "the content of entry {} was {}; `evident show {} --meta` prints its leaf",
                entry.index,
                e.describe(),
                entry.index
            ),
        }
        .into());
    }
    let got = blobs.copy_out(&want, out)?.ok_or_else(|| Exit {
        code: 3,
        message: format!(
            "the blob of entry {} is missing from {}; run `evident verify`",
            entry.index,
            blobs
                .location()
                .unwrap_or_else(|| blobs.path_for(&want).display().to_string())
        ),
    })?;
    if got != want {
        return Err(Exit {
            code: 3,
            message: format!(
                "the blob of entry {} hashes to {}, not {}: altered; run `evident verify`",
                entry.index,
                hex(&got),
                entry.sha256
            ),
        }
        .into());
    }
    Ok(())
}
