//! `evident proof`: an entry's inclusion proof against the latest checkpoint.

use serde::Serialize;

use super::{Ctx, Exit, Format, output};
use evident::ledger::reader::Reader;
use evident::ledger::receipt::{ReceiptError, receipt};

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
    let r = receipt(&reader, &state.verifier()?, args.index).map_err(|e| match e {
        e @ ReceiptError::DoesNotVerify(_) => anyhow::Error::from(Exit {
            code: 3,
            message: e.to_string(),
        }),
        e @ (ReceiptError::NoEntry { .. } | ReceiptError::NotCovered(_)) => Exit {
            code: 1,
            message: e.to_string(),
        }
        .into(),
        e => e.into(),
    })?;
    let cp_size = r.checkpoint_size;
    let receipt = r.proof.encode();
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
