//! `evident export`: the audit bundle.

use std::path::PathBuf;

use std::collections::BTreeSet;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::population::read_manifest;
use super::{Ctx, Format, output};
use evident::bundle::export::{Scope, export};
use evident::bundle::sampling::Carried;
use evident::ledger::reader::Reader;
use evident::ledger::state::StateDir;
use evident::ledger::writer::Writer;
use evident::sampling::{self, Population, Sample};
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
    /// Carry this population (`evident population`) with every leaf of the log up to its
    /// checkpoint, so `verify` re-derives it (repeat for several).
    #[arg(long = "population", value_name = "FILE")]
    pub populations: Vec<PathBuf>,
    /// Carry this sample (`evident sample`), its population, and the entries it names with
    /// their content, so `verify` redraws it (repeat for several).
    #[arg(long = "sample", value_name = "FILE")]
    pub samples: Vec<PathBuf>,
}

/// The populations and samples named on the command line, each checked against the
/// ledger, and the entries the bundle must carry for them, into `scope`. A sample's
/// population comes from the ledger's own record of it when not named.
fn carried(state: &StateDir, args: &Args, scope: &mut Scope) -> anyhow::Result<()> {
    let verifier = state.verifier()?;
    let reader = Reader::open(state)?;
    let mut populations: Vec<Carried<Population>> = Vec::new();
    let mut extra = BTreeSet::new();
    for path in &args.populations {
        let bytes = read_manifest(path)?;
        add_population(
            &reader,
            &verifier,
            &bytes,
            &path.display().to_string(),
            &mut populations,
            &mut extra,
        )?;
    }
    let mut samples = Vec::new();
    for path in &args.samples {
        let what = path.display().to_string();
        let bytes = read_manifest(path)?;
        let parsed = Sample::parse(&bytes, &what)?;
        let at = match populations
            .iter()
            .position(|p| p.id == parsed.population.id)
        {
            Some(i) => i,
            None => {
                let stored = population_bytes(state, &parsed.population.id).with_context(|| {
                    format!(
                        "{what} was drawn from population {}, which this ledger's blob store does not hold; give its file with --population",
                        parsed.population.id
                    )
                })?;
                add_population(
                    &reader,
                    &verifier,
                    &stored,
                    &format!("population {}", parsed.population.id),
                    &mut populations,
                    &mut extra,
                )?
            }
        };
        let p = &populations[at];
        let manifest =
            sampling::check_sample(&reader, &verifier, &bytes, &what, &p.manifest, &p.id)?;
        extra.insert(manifest.entry());
        extra.extend(manifest.items.iter().map(sampling::Item::index));
        if let Some(entry) = sampling::recorded_at(
            &reader,
            sampling::SAMPLE_KIND,
            &sampling::manifest_id(&bytes),
        )? {
            extra.insert(entry);
        }
        samples.push(Carried {
            id: sampling::manifest_id(&bytes),
            manifest,
        });
    }
    scope.populations = populations;
    scope.samples = samples;
    scope.extra = extra;
    Ok(())
}

/// Adds a population checked against the ledger (once per id), and its entry; returns
/// its position.
fn add_population(
    reader: &Reader,
    verifier: &evident::ledger::note::NoteVerifier,
    bytes: &[u8],
    what: &str,
    populations: &mut Vec<Carried<Population>>,
    extra: &mut BTreeSet<u64>,
) -> anyhow::Result<usize> {
    let (manifest, id) = sampling::check_population(reader, verifier, bytes, what)?;
    if let Some(i) = populations.iter().position(|p| p.id == id) {
        return Ok(i);
    }
    if let Some(entry) = sampling::recorded_at(reader, sampling::POPULATION_KIND, &id)? {
        extra.insert(entry);
    }
    populations.push(Carried { id, manifest });
    Ok(populations.len() - 1)
}

/// A population manifest as the blob store holds it (recorded by `evident population`).
fn population_bytes(state: &StateDir, id: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let digest = evident::ledger::leaf::parse_hex32(id).context("not a SHA-256")?;
    let mut f = state
        .blobs()
        .open(&digest)?
        .context("not in the blob store")?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
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
    let mut scope = Scope {
        since: args.since,
        until: args.until,
        by_evidence_date: args.by == By::Effective,
        controls,
        history: args.include_history,
        lineage: ctx
            .optional_config()?
            .map(|c| evident::lineage::Rules::new(&c.links, &c.expect)),
        ..Scope::default()
    };
    carried(&state, &args, &mut scope)?;
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
