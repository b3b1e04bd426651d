//! `evident checkpoint`: sign a checkpoint of the current tree.

use serde::Serialize;

use super::{Ctx, Format, output};
use evident::config::Config;
use evident::ledger::reader::Reader;
use evident::ledger::writer::Writer;
use evident::witness::client::{names, witness_checkpoint};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Sign a C2SP checkpoint (origin, tree size, root hash, Ed25519 signature) of the \
current tree and print it. When the tree has not grown since the last checkpoint, the existing \
one is printed: a log never signs two checkpoints of one size.\n\n\
Keep a copy outside this server (send it to your auditor): `evident verify --checkpoint FILE` \
later proves the ledger still extends it.\n\n\
With [anchoring] tsa_url in the config, a new checkpoint is also timestamped by that RFC 3161 \
authority; the token is verified and stored, and exports carry it as checkpoint.tsr. With \
[[witnesses]], the checkpoint is sent to each witness and their cosignatures stored with it; \
with [publish] url, the log's tiles are then published there (see `evident publish`), up to the \
newest checkpoint the witness quorum cosigned.\n\n\
Examples:\n  evident checkpoint\n  evident checkpoint > checkpoint-$(date +%F)   # keep one outside this server";

/// Options of `evident checkpoint`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Out {
    size: u64,
    new: bool,
    checkpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cosignatures: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<evident::tiles::publish::Published>,
}

pub use evident::lock::CHECKPOINT_JOB;

pub fn run(ctx: &mut Ctx, _args: Args) -> anyhow::Result<()> {
    super::private_umask();
    let state = ctx.state()?;
    let origin = ctx.origin(&state)?;
    let _lock = ctx.job_lock(&state, CHECKPOINT_JOB, "a checkpoint or export")?;
    let writer = Writer::open(&state, &origin)?;
    let cp = writer.checkpoint()?;
    let anchoring = ctx.anchoring()?;
    let timestamp = match &anchoring {
        Some(a) => Some(
            a.ensure(&state, &writer, cp.size, &cp.note)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "checkpoint {} is signed, but it could not be anchored: {e}; \
                         the next `evident checkpoint` or export asks again",
                        cp.size
                    )
                })?
                .stamp
                .time,
        ),
        None => None,
    };
    let config = ctx.optional_config()?.cloned();
    let witnesses = config
        .as_ref()
        .map(|c| c.witnesses.clone())
        .unwrap_or_default();
    let quorum = config.as_ref().map_or(0, Config::witness_quorum);
    let witnessed = if witnesses.is_empty() {
        None
    } else {
        let reader = Reader::open(&state)?;
        let t = witness_checkpoint(&reader, &writer, &witnesses, quorum, (cp.size, &cp.note))?;
        for w in &t.asked {
            if let (Err(e), false) = (&w.outcome, ctx.cli.quiet) {
                eprintln!("warning: {e}");
            }
        }
        if !ctx.cli.quiet {
            eprintln!(
                "cosigned by {} of {} witnesses (quorum {}){}",
                t.cosigned,
                witnesses.len(),
                t.quorum,
                if t.witnessed() {
                    ""
                } else {
                    ": not witnessed yet, so not published"
                }
            );
        }
        Some(t.cosigned)
    };
    let published = match config.as_ref().and_then(|c| c.publish.as_ref()) {
        Some(p) => p
            .publish(&state, (&names(&witnesses), quorum))
            .map_err(|e| {
                anyhow::anyhow!(
                    "checkpoint {} is signed, but publishing its tiles to {} failed: {e}; \
                     `evident publish` tries again",
                    cp.size,
                    p.url
                )
            })?,
        None => None,
    };
    if ctx.cli.format == Format::Json {
        return output::json(&Out {
            size: cp.size,
            new: cp.new,
            checkpoint: cp.note,
            timestamp,
            cosignatures: witnessed,
            published,
        });
    }
    if let (Some(p), false) = (&published, ctx.cli.quiet) {
        eprintln!(
            "published: size {}, {} tiles and entry bundles written",
            p.size, p.objects
        );
    }
    if let (Some(t), false) = (&timestamp, ctx.cli.quiet) {
        eprintln!("timestamped by the TSA at {t} (RFC 3161)");
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
