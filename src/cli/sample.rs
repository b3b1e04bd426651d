//! `evident sample`: draw a sample of a population that nobody could have chosen in advance.

use std::path::PathBuf;

use serde::Serialize;

use super::population::{open_ledger, read_manifest, record_manifest, write_manifest};
use super::{Ctx, Exit, Format, output};
use evident::ledger::note::{Checkpoint, encode_hash};
use evident::ledger::reader::Reader;
use evident::sampling::sample::Seed;
use evident::sampling::{
    POPULATION_KIND, SAMPLE_KIND, Sample, SeedSpec, check_population, manifest_id, recorded_at,
};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Draw a deterministic sample of a population (`evident population`). Each item is \
ranked by SHA-256(\"evident-sample-v1\\n\" + population id + \"\\n\" + seed + \"\\n\" + index) and \
the --size smallest keys are drawn, in that order: the same population, seed and size always \
give the same sample, a larger size extends a smaller one, and `evident verify` on a bundle \
redraws it.\n\n\
The seed is the auditor's own text (--seed), or by default the root hash of the first \
checkpoint signed after the population was recorded in the log: no one could know it when the \
population was fixed, so no one could pick the sample in advance. Every population and \
sample drawn is itself recorded in the log, so redrawing until a sample pleases shows.\n\n\
The population file is checked against the ledger first (signed by this log, and exactly what \
its entries give for the filter); the sample is recorded as a `sample` entry and written to \
--out.\n\n\
Examples:\n  evident sample --population population-3f2a9c41b7d0.json --size 25\n  \
evident sample --population releases-q3.json --size 25 --seed \"ACME audit 2026-10-14\" --out sample.json";

/// Options of `evident sample`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The population manifest (`evident population` wrote it).
    #[arg(long, value_name = "FILE")]
    pub population: PathBuf,
    /// How many items to draw (all of them when the population is smaller).
    #[arg(long, value_name = "N")]
    pub size: u64,
    /// The auditor's seed text (default: the root of the first checkpoint signed after the
    /// population was recorded).
    #[arg(long, value_name = "TEXT")]
    pub seed: Option<String>,
    /// Where to write the sample manifest (default: sample-<id prefix>.json here).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Out<'a> {
    id: &'a str,
    file: String,
    entry: u64,
    new_entry: bool,
    population: &'a str,
    seed: &'a Seed,
    sample: &'a [evident::sampling::Item],
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    super::private_umask();
    if args.size == 0 {
        return Err(Exit {
            code: 2,
            message: "--size 0 draws nothing; give the number of items to test".into(),
        }
        .into());
    }
    let what = args.population.display().to_string();
    let bytes = read_manifest(&args.population)?;
    let spec = match &args.seed {
        Some(s) if s.is_empty() => {
            return Err(Exit {
                code: 2,
                message: "--seed is empty; give the auditor's text, or leave it out for a checkpoint seed".into(),
            }
            .into());
        }
        Some(s) => SeedSpec::Text(s.clone()),
        None => SeedSpec::Checkpoint,
    };
    let state = ctx.state()?;
    let _lock = ctx.job_lock(&state, "sampling", "an `evident population` or `sample`")?;
    let verifier = state.verifier()?;
    let reader = Reader::open(&state)?;
    let (population, population_id) = check_population(&reader, &verifier, &bytes, &what)?;
    let entry = recorded_at(&reader, POPULATION_KIND, &population_id)?.ok_or_else(|| Exit {
        code: 3,
        message: format!(
            "{what} matches this ledger but is not recorded in it; run `evident population` with its filter to record it"
        ),
    })?;
    let ledger = open_ledger(ctx, &state)?;
    let seed = match spec {
        SeedSpec::Text(value) => Seed {
            checkpoint: None,
            kind: "text".to_owned(),
            value,
        },
        SeedSpec::Checkpoint => {
            let first = reader
                .checkpoints()?
                .into_iter()
                .filter(|(size, _)| *size > entry)
                .min_by_key(|(size, _)| *size);
            // None yet: the tree holds the population entry, so a checkpoint now is after it.
            let note = match first {
                Some((_, note)) => note,
                None => ledger.writer.checkpoint()?.note,
            };
            let cp = Checkpoint::open(&note, &verifier)?;
            Seed {
                value: encode_hash(&cp.root),
                checkpoint: Some(note),
                kind: "checkpoint".to_owned(),
            }
        }
    };
    let sample = Sample::draw(&population, &population_id, entry, args.size, seed);
    let sample_bytes = sample.to_bytes();
    let id = manifest_id(&sample_bytes);
    let file = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("sample-{}.json", &id[..12])));
    write_manifest(&file, &sample_bytes)?;
    let title = format!(
        "Sample of {} from population {} ({} seed)",
        sample.items.len(),
        &population_id[..12],
        sample.seed.kind
    );
    let (sample_entry, new_entry) =
        record_manifest(&ledger, &reader, SAMPLE_KIND, &id, title, sample_bytes)?;
    let out = Out {
        id: &id,
        file: file.display().to_string(),
        entry: sample_entry,
        new_entry,
        population: &population_id,
        seed: &sample.seed,
        sample: &sample.items,
    };
    match ctx.cli.format {
        Format::Json => return output::json(&out),
        Format::Table if !ctx.cli.quiet => eprintln!(
            "sample {id}: {} of {} items of population {}, seed {} {:?}; recorded as entry {sample_entry}, written to {}",
            sample.items.len(),
            population.items.len(),
            &population_id[..12],
            sample.seed.kind,
            sample.seed.value,
            out.file
        ),
        _ => {}
    }
    print_items(ctx, &reader, &sample)
}

/// The sample's items as a table. A v2 entry is named by its metadata commitment in the
/// manifest; the table shows its title and URI as the ledger holds them (an export carries
/// them in `meta/`).
fn print_items(ctx: &Ctx, reader: &Reader, sample: &Sample) -> anyhow::Result<()> {
    let shown = |i: &evident::sampling::population::Item| -> (String, String) {
        let row = i
            .uri
            .starts_with(evident::ledger::leaf::META_SUBJECT)
            .then(|| i.index.parse().ok())
            .flatten()
            .and_then(|idx| reader.entry(idx).ok().flatten());
        match row {
            Some(r) => (r.title.unwrap_or_default(), r.uri),
            None => (i.title.clone().unwrap_or_default(), i.uri.clone()),
        }
    };
    output::rows_hiding(
        ctx.cli.format,
        &[
            "draw", "index", "date", "source", "kind", "title", "uri", "sha256",
        ],
        &sample
            .items
            .iter()
            .enumerate()
            .map(|(n, i)| {
                let (title, uri) = shown(i);
                vec![
                    (n + 1).to_string(),
                    i.index.clone(),
                    i.date.clone(),
                    i.source.clone(),
                    i.kind.clone(),
                    title,
                    uri,
                    i.sha256.clone(),
                ]
            })
            .collect::<Vec<_>>(),
        &["sha256", "kind", "uri"],
    )
}
