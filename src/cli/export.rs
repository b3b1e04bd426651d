//! `evident export`: the audit bundle.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::{Ctx, Format, output};
use evident::bundle::export::{Scope, export};
use evident::ledger::reader::Reader;
use evident::ledger::state::StateDir;
use evident::ledger::writer::Writer;
use evident::witness::client::witness_checkpoint;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Write the audit bundle an external auditor verifies offline: the verifier key, \
a signed checkpoint of the current tree, every earlier checkpoint with a consistency proof, \
the entries in scope verbatim with their inclusion proofs, their content (blobs), the entry \
index, coverage.csv, soa.csv, an HTML report, OSCAL Assessment Results, SHA256SUMS and a \
README telling the auditor how to check it all by hand.\n\n\
OUT ending in .tar.gz or .tgz writes a tarball; anything else a new (or empty) directory. \
Two exports of the same ledger state and scope are byte-identical. Exporting appends nothing \
to the ledger except a checkpoint when the tree grew since the last one. Coverage in the \
bundle is computed as of that checkpoint's signing time (or the end of --until, if earlier).\n\n\
--since and --until select by the evidence's own date (--by effective, the default: the \
effective date from front matter or a sidecar, else the source's last-modified time, else when \
it was collected; what coverage reasons by), or by when Evident recorded it (--by collected). \
A first import today of documents effective in Q3 is in the Q3 bundle by effective date and \
in none by collection date.\n\n\
Coverage, the SoA, the report and the OSCAL findings count only current evidence: a version \
superseded by a newer one of the same URI, or removed from its source, no longer counts \
(the bundle still holds it). --include-history counts them too.\n\n\
Examples:\n  evident export --out audit-2026.tar.gz\n  evident export --out q3.tar.gz --since 2026-07-01 --until 2026-09-30\n  evident export --out a6/ --controls A.6";

/// Which date scopes an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// The evidence's own date: effective date, else the source's time, else collection.
    Effective,
    /// When Evident recorded it.
    Collected,
}

/// Options of `evident export`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The bundle: FILE.tar.gz (or .tgz), or a directory.
    #[arg(long, short, value_name = "FILE.tar.gz|DIR")]
    pub out: PathBuf,
    /// Only entries dated on or after this date (YYYY-MM-DD or RFC 3339); see --by.
    #[arg(long, value_parser = evident::when::parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// Only entries dated on or before this date (YYYY-MM-DD, the whole day, or RFC 3339).
    #[arg(long, value_parser = evident::when::parse_until)]
    pub until: Option<DateTime<Utc>>,
    /// Which date --since/--until apply to.
    #[arg(long, value_enum, default_value_t = By::Effective)]
    pub by: By,
    /// Only these controls or clauses (ids or prefixes, comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub controls: Vec<String>,
    /// Count superseded and removed versions in coverage, the SoA, the report and OSCAL.
    #[arg(long)]
    pub include_history: bool,
}

/// With `[[witnesses]]`, the checkpoint the bundle carries is signed and cosigned first,
/// so the bundle travels with the cosignatures an auditor's `verify --witness` asks for.
fn witness_first(ctx: &mut Ctx, state: &StateDir, origin: &str) -> anyhow::Result<()> {
    let Some(config) = ctx.optional_config()?.cloned() else {
        return Ok(());
    };
    if config.witnesses.is_empty() {
        return Ok(());
    }
    let writer = Writer::open(state, origin)?;
    let cp = writer.checkpoint()?;
    let reader = Reader::open(state)?;
    let t = witness_checkpoint(
        &reader,
        &writer,
        &config.witnesses,
        config.witness_quorum(),
        (cp.size, &cp.note),
    )?;
    for w in &t.asked {
        if let (Err(e), false) = (&w.outcome, ctx.cli.quiet) {
            eprintln!("warning: {e}");
        }
    }
    if !t.witnessed() && !ctx.cli.quiet {
        eprintln!(
            "warning: checkpoint {} is cosigned by {} witnesses, fewer than the quorum of {}; \
             the bundle carries what there is",
            cp.size, t.cosigned, t.quorum
        );
    }
    Ok(())
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    super::private_umask();
    let controls = if args.controls.is_empty() {
        None
    } else {
        Some(evident::catalog::Catalog::get().select_all(&args.controls)?)
    };
    let policies = ctx.policies()?;
    let anchoring = ctx.anchoring()?;
    let state = ctx.state()?;
    let origin = ctx.origin(&state)?;
    let _lock = ctx.job_lock(
        &state,
        super::checkpoint::CHECKPOINT_JOB,
        "a checkpoint or export",
    )?;
    let scope = Scope {
        since: args.since,
        until: args.until,
        by_evidence_date: args.by == By::Effective,
        controls,
        history: args.include_history,
    };
    witness_first(ctx, &state, &origin)?;
    let summary = export(
        &state,
        &origin,
        &policies,
        anchoring.as_ref(),
        &scope,
        &args.out,
        ctx.progress(),
    )?;
    if ctx.cli.format == Format::Json {
        return output::json(&summary);
    }
    if !ctx.cli.quiet {
        if summary.new_checkpoint {
            eprintln!("signed checkpoint {}", summary.checkpoint_size);
        }
        if let Some(e) = &summary.anchor_error {
            eprintln!("warning: the bundle has no RFC 3161 timestamp: {e}");
        }
        if summary.missing_blobs > 0 {
            eprintln!(
                "warning: {} blob(s) are missing from the blob store; they are marked in index.csv (run `evident verify`)",
                summary.missing_blobs
            );
        }
    }
    println!(
        "wrote {} ({}): checkpoint {}, {} entries, {} blobs, {} without content, {} earlier checkpoints, coverage as of {}",
        summary.out.display(),
        summary.format,
        summary.checkpoint_size,
        summary.entries,
        summary.blobs,
        summary.absent,
        summary.earlier_checkpoints,
        summary.as_of
    );
    Ok(())
}
