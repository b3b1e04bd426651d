//! `evident verify`: check the whole ledger.

use anyhow::Context as _;

use super::{Ctx, Exit, Format, output};
use crate::ledger::note::NoteVerifier;
use crate::ledger::reader::Reader;
use crate::verify::{Check, verify_ledger};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Recompute every leaf hash and the whole Merkle tree from the stored entries, \
compare the tree with every stored checkpoint and its Ed25519 signature, check the columns \
derived from each leaf, and re-hash every blob. Prints what is wrong (entry index, what \
differs) and exits 3 on any mismatch.\n\n\
By default checkpoints are checked with the ledger's own key. Someone who does not trust this \
server passes the key they were given (--key) and the checkpoints they kept (--checkpoint).";

/// Options of `evident verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Verifier key (the line `init` printed, or a file holding it). Default: the ledger's own.
    #[arg(long, value_name = "VKEY|FILE")]
    pub key: Option<String>,
    /// A signed checkpoint kept outside this server; the ledger must still contain its tree.
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub checkpoints: Vec<std::path::PathBuf>,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let state = ctx.state()?;
    let reader = Reader::open(&state)?;
    let verifier = match &args.key {
        Some(k) => {
            let text = if std::path::Path::new(k).is_file() {
                std::fs::read_to_string(k).with_context(|| format!("reading key file {k}"))?
            } else {
                k.clone()
            };
            NoteVerifier::parse(&text).map_err(|e| Exit {
                code: 2,
                message: format!("--key: {e}"),
            })?
        }
        None => state.verifier()?,
    };
    let external = args
        .checkpoints
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("reading checkpoint {}", p.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = verify_ledger(
        &reader,
        &state.blobs(),
        &verifier,
        &external,
        ctx.progress(),
    )?;
    if ctx.cli.format == Format::Json {
        output::json(&report)?;
    } else {
        for check in Check::ALL {
            let what = match check {
                Check::Entries | Check::Tree | Check::Columns => {
                    format!("{} entries", report.entries)
                }
                Check::Checkpoints => format!("{} checkpoints", report.checkpoints),
                Check::Blobs => format!("{} blobs re-hashed", report.blobs),
            };
            let status = match report.count(check) {
                0 => "ok".to_owned(),
                n => format!("FAILED ({n} problem(s))"),
            };
            println!("{:<12} {status:<24} {what}", check.label());
        }
        for p in &report.problems {
            match p.index {
                Some(i) => println!("FAIL entry {i}: {}", p.what),
                None => println!("FAIL {}", p.what),
            }
        }
        if report.unlisted > 0 {
            println!("… and {} more problems", report.unlisted);
        }
        match (&report.checkpoint, report.ok()) {
            (Some((size, root)), true) => {
                println!("OK: ledger verifies up to checkpoint {size} (root {root})")
            }
            (None, true) => println!(
                "OK: ledger is consistent (no checkpoint signed yet; run `evident checkpoint`)"
            ),
            _ => {}
        }
    }
    if !report.ok() {
        return Err(Exit {
            code: 3,
            message: format!(
                "verification failed: {} problem(s)",
                report.problems.len() as u64 + report.unlisted
            ),
        }
        .into());
    }
    Ok(())
}
