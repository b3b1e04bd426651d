//! `evident proof`: an entry's inclusion proof against the latest checkpoint.

use anyhow::Context as _;
use serde::Serialize;

use super::{Ctx, Exit, Format, output};
use crate::ledger::merkle::{inclusion_proof, leaf_hash, verify_inclusion};
use crate::ledger::note::{Checkpoint, TlogProof};
use crate::ledger::reader::Reader;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Print the c2sp.org/tlog-proof@v1 receipt of entry INDEX: the audit path from its \
leaf to the root of the latest signed checkpoint, followed by that checkpoint. Anyone with the \
verifier key and the entry's bytes can check it without the ledger.\n\n\
If the entry is newer than the latest checkpoint, run `evident checkpoint` first.\n\n\
Examples:\n  evident proof 42\n  evident proof 42 --format json";

/// Options of `evident proof`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Entry index (as `query` shows it).
    pub index: u64,
}

#[derive(Serialize)]
struct Out {
    index: u64,
    checkpoint_size: u64,
    proof: String,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let state = ctx.state()?;
    let reader = Reader::open(&state)?;
    let size = reader.size()?;
    if args.index >= size {
        return Err(Exit {
            code: 1,
            message: format!("there is no entry {} (the ledger holds {size})", args.index),
        }
        .into());
    }
    let (cp_size, note) = reader
        .latest_checkpoint()?
        .filter(|(s, _)| *s > args.index)
        .ok_or_else(|| Exit {
            code: 1,
            message: format!(
                "entry {} is not covered by a checkpoint yet; run `evident checkpoint` first",
                args.index
            ),
        })?;
    let path = inclusion_proof(&reader, args.index, cp_size)?;
    // Trust nothing stored: check the receipt before handing it out.
    let verifier = state.verifier()?;
    let cp = Checkpoint::open(&note, &verifier)
        .context("the latest checkpoint does not verify; run `evident verify`")?;
    let mut leaf = None;
    reader.for_each_leaf_at(args.index, |bytes| leaf = Some(leaf_hash(bytes)))?;
    let leaf = leaf.context("entry vanished")?;
    if !verify_inclusion(&leaf, args.index, cp.size, &path, &cp.root) {
        return Err(Exit {
            code: 3,
            message: format!(
                "entry {} does not verify against checkpoint {cp_size}; run `evident verify`",
                args.index
            ),
        }
        .into());
    }
    let receipt = TlogProof {
        index: args.index,
        path,
        checkpoint: note,
    }
    .encode();
    if ctx.cli.format == Format::Json {
        return output::json(&Out {
            index: args.index,
            checkpoint_size: cp_size,
            proof: receipt,
        });
    }
    print!("{receipt}");
    Ok(())
}
