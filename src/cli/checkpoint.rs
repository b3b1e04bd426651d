//! `evident checkpoint`: sign a checkpoint of the current tree.

use serde::Serialize;

use super::{Ctx, Format, output};
use crate::ledger::writer::Writer;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Sign a C2SP checkpoint (origin, tree size, root hash, Ed25519 signature) of the \
current tree and print it. When the tree has not grown since the last checkpoint, the existing \
one is printed: a log never signs two checkpoints of one size.\n\n\
Keep a copy outside this server (send it to your auditor): `evident verify --checkpoint FILE` \
later proves the ledger still extends it.";

/// Options of `evident checkpoint`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Out {
    size: u64,
    new: bool,
    checkpoint: String,
}

pub fn run(ctx: &mut Ctx, _args: Args) -> anyhow::Result<()> {
    super::private_umask();
    let state = ctx.state()?;
    let origin = ctx.origin(&state)?;
    let writer = Writer::open(&state, &origin)?;
    let cp = writer.checkpoint()?;
    if ctx.cli.format == Format::Json {
        return output::json(&Out {
            size: cp.size,
            new: cp.new,
            checkpoint: cp.note,
        });
    }
    if !ctx.cli.quiet && !cp.new {
        eprintln!(
            "the tree has not grown since checkpoint {}; printing it",
            cp.size
        );
    }
    print!("{}", cp.note);
    Ok(())
}
