//! `evident population`: fix the population an auditor samples from, provably complete.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use super::{Ctx, Format, output};
use evident::catalog::Catalog;
use evident::ledger::note::Checkpoint;
use evident::ledger::reader::Reader;
use evident::runner::Ledger;
use evident::sampling::{
    Filter, POPULATION_KIND, Period, Population, entry_uri, manifest_id, recorded_at,
};
use evident_collectors::{Content, Observation};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Fix a population for sampling: every entry of the log, up to a checkpoint signed \
now, whose evidence date falls in --period and that matches the filter (controls, kinds, \
sources). The manifest lists each entry (index, kind, source, URI, title, digest, dates) in \
canonical JSON; its SHA-256 is the population's id, and it is recorded in the log as a \
`population` entry before any sample is drawn from it.\n\n\
Completeness is provable: `evident export --population FILE` carries every leaf of the log up \
to that checkpoint, and `evident verify` on the bundle re-runs the filter over them and must \
get the same list; no matching entry can have been left out.\n\n\
The evidence date is the one coverage reasons by: the effective date when the artefact states \
one, else the source's last-modified time, else when Evident recorded it. Without --kind, \
every kind that is evidence counts (not removal markers, collector runs, or Evident's own \
population and sample records).\n\n\
Examples:\n  evident population --controls A.6.2.5 --period 2026-07-01..2026-09-30\n  \
evident population --kind model_version --source mlflow --period 2026-07-01..2026-09-30 --out releases-q3.json";

/// Options of `evident population`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Entries mapped to any of these controls or clauses (ids or prefixes, comma-separated
    /// or repeated).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub controls: Vec<String>,
    /// Entries of these kinds (e.g. model_version, ci_run, ticket, document; repeat).
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// Entries from these sources (collector names; repeat).
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// The days of evidence dates, both included.
    #[arg(long, value_name = "FROM..UNTIL", value_parser = Period::parse)]
    pub period: Period,
    /// Where to write the manifest (default: population-<id prefix>.json here).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Out<'a> {
    id: &'a str,
    file: String,
    entry: u64,
    new_entry: bool,
    checkpoint: u64,
    count: usize,
    filter: &'a Filter,
}

/// Records a manifest (`population` or `sample`) as an entry of source `evident`, unless
/// this very manifest is recorded already; returns its index and whether it is new.
pub fn record_manifest(
    ledger: &Ledger,
    reader: &Reader,
    kind: &str,
    id: &str,
    title: String,
    bytes: Vec<u8>,
) -> anyhow::Result<(u64, bool)> {
    if let Some(idx) = recorded_at(reader, kind, id)? {
        return Ok((idx, false));
    }
    let mut o = Observation::new(entry_uri(kind, id), kind, Content::Bytes(bytes));
    o.title = Some(title);
    o.media_type = Some("application/json".to_owned());
    let stats = evident::runner::record_own(ledger, vec![o])?;
    if let Some(p) = stats.problems.first() {
        anyhow::bail!("recording the {kind} failed: {}", p.message);
    }
    let idx = stats
        .indexes
        .first()
        .copied()
        .with_context(|| format!("the {kind} was not recorded"))?;
    Ok((idx, true))
}

/// Writes a manifest to `path` whole or not at all.
pub fn write_manifest(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    evident::ledger::state::replace_private(path, bytes, true)
        .with_context(|| format!("writing {}", path.display()))
}

/// The largest manifest read.
const MAX_MANIFEST_FILE: u64 = 1 << 30;

/// Reads a manifest the user named, refusing one larger than 1 GiB before reading it.
pub fn read_manifest(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_MANIFEST_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_MANIFEST_FILE {
        anyhow::bail!(
            "{} is over {} MiB; not a population or sample manifest",
            path.display(),
            MAX_MANIFEST_FILE >> 20
        );
    }
    Ok(bytes)
}

/// Opens the ledger for recording as `add` does: with a config, its `[blobs]` decides
/// where content goes.
pub fn open_ledger(
    ctx: &mut Ctx,
    state: &evident::ledger::state::StateDir,
) -> anyhow::Result<Ledger> {
    let origin = ctx.origin(state)?;
    Ok(match ctx.optional_config()? {
        Some(c) => Ledger::open_configured(state.clone(), c)?,
        None => Ledger::open(state.clone(), &origin)?,
    })
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    super::private_umask();
    let controls: Vec<String> = if args.controls.is_empty() {
        Vec::new()
    } else {
        Catalog::get()
            .select_all(&args.controls)?
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    let mut kinds = args.kinds.clone();
    kinds.sort();
    kinds.dedup();
    let mut sources = args.sources.clone();
    sources.sort();
    sources.dedup();
    let filter = Filter {
        controls,
        kinds,
        period: args.period.clone(),
        sources,
    };
    let state = ctx.state()?;
    let _lock = ctx.job_lock(&state, "sampling", "an `evident population` or `sample`")?;
    let ledger = open_ledger(ctx, &state)?;
    let signed = ledger.writer.checkpoint()?;
    let cp = Checkpoint::open(&signed.note, &state.verifier()?)?;
    let reader = Reader::open(&state)?;
    let population = Population::draw(&reader, &signed.note, &cp, filter)?;
    let bytes = population.to_bytes();
    let id = manifest_id(&bytes);
    let file = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("population-{}.json", &id[..12])));
    write_manifest(&file, &bytes)?;
    let title = format!(
        "Population of {} entries: {}",
        population.items.len(),
        population.describe()
    );
    let (entry, new_entry) = record_manifest(&ledger, &reader, POPULATION_KIND, &id, title, bytes)?;
    // The first checkpoint over the population entry is a sample's default seed: sign it
    // now, so no one can shape it by appending entries before the next one.
    ledger.writer.checkpoint()?;
    let out = Out {
        id: &id,
        file: file.display().to_string(),
        entry,
        new_entry,
        checkpoint: cp.size,
        count: population.items.len(),
        filter: &population.filter,
    };
    if ctx.cli.format == Format::Json {
        return output::json(&out);
    }
    println!(
        "population {id}\n  {} entries match (evidence dated {}) among the {} entries of checkpoint {}\n  \
         recorded as entry {entry}{}; manifest written to {}\n  draw a sample: evident sample --population {} --size 25",
        out.count,
        population.describe(),
        cp.size,
        cp.size,
        if new_entry { "" } else { " (already recorded)" },
        out.file,
        out.file,
    );
    Ok(())
}
