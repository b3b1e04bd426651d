//! Populations and samples an auditor can check, not take on trust (issue 17).
//!
//! A *population* is every entry of the log, up to a signed checkpoint, that matches a
//! filter (controls, kinds, sources, a period of evidence dates). Its manifest lists them
//! in canonical JSON, so its SHA-256 is a commitment anyone can recompute; a bundle carries
//! every leaf up to that checkpoint, so `verify` re-runs the filter over the whole log and
//! must get the same list: no matching entry can have been left out.
//!
//! A *sample* is drawn from a population by sorting its items by
//! `SHA-256("evident-sample-v1\n" ‖ population id ‖ "\n" ‖ seed ‖ "\n" ‖ index)` and taking
//! the first `size`. The seed is the auditor's text, or the root of the first checkpoint
//! signed after the population was recorded in the log, which nobody could know when the
//! population was fixed. `docs/sampling.md` shows how to redo both with stock tools.

pub mod population;
pub mod sample;

pub use population::{Filter, Item, Matcher, Period, Population};

use crate::ledger::note::{Checkpoint, NoteVerifier};
use crate::ledger::reader::Reader;
pub use sample::{Sample, SeedSpec};

/// The kind of the entry that records a population in the log.
pub const POPULATION_KIND: &str = "population";
/// The kind of the entry that records a sample in the log.
pub const SAMPLE_KIND: &str = "sample";
pub use crate::ledger::erasures::EVIDENT_SOURCE;

/// The URI of the entry recording the population or sample with manifest digest `id`.
pub fn entry_uri(kind: &str, id: &str) -> String {
    format!("evident://{kind}/{id}")
}

/// Errors of drawing or checking a population or sample.
#[derive(Debug, thiserror::Error)]
pub enum SamplingError {
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// A manifest is not what Evident writes.
    #[error("{what} is not an Evident {kind} manifest: {why}")]
    Manifest {
        /// Where it came from.
        what: String,
        /// `population` or `sample`.
        kind: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A manifest disagrees with the ledger.
    #[error("{0}")]
    Mismatch(String),
}

/// Canonical JSON of a manifest: compact, keys in code-point order (the structs declare
/// their fields sorted), no numbers, one trailing newline.
pub(crate) fn canonical<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Structs of strings and vectors of them always serialise.
    let mut v = serde_json::to_vec(value).unwrap_or_default();
    v.push(b'\n');
    v
}

/// Lowercase hex SHA-256 of `bytes`: a manifest's id.
pub fn manifest_id(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    crate::ledger::leaf::hex(&sha2::Sha256::digest(bytes))
}

/// A population manifest checked against this ledger: drawn from a checkpoint of this log
/// (`verifier`), and exactly what the ledger's entries up to it give for its filter. Returns
/// it with its id.
pub fn check_population(
    reader: &Reader,
    verifier: &NoteVerifier,
    bytes: &[u8],
    what: &str,
) -> Result<(Population, String), SamplingError> {
    let p = Population::parse(bytes, what)?;
    let cp = Checkpoint::open(&p.checkpoint, verifier).map_err(|e| {
        SamplingError::Mismatch(format!(
            "{what} was not drawn from this log (its checkpoint: {e})"
        ))
    })?;
    let again = Population::draw(reader, &p.checkpoint, &cp, p.filter.clone())?;
    if again != p {
        return Err(SamplingError::Mismatch(format!(
            "{what} is not what this ledger's entries up to {} give for its filter: edited, or another ledger's",
            cp.size
        )));
    }
    Ok((p, manifest_id(bytes)))
}

/// The index of the entry that recorded the population or sample `id` (`kind`), if any.
pub fn recorded_at(reader: &Reader, kind: &str, id: &str) -> Result<Option<u64>, SamplingError> {
    let want = crate::ledger::leaf::parse_hex32(id);
    Ok(reader
        .current_version(&entry_uri(kind, id))?
        .filter(|(_, digest, _)| Some(*digest) == want)
        .map(|(idx, _, _)| idx))
}

/// A sample manifest checked against this ledger and its population (`population`, id
/// `population_id`): the population is the one recorded at the sample's entry, the seed
/// is sound, and the draw gives the same items.
pub fn check_sample(
    reader: &Reader,
    verifier: &NoteVerifier,
    bytes: &[u8],
    what: &str,
    population: &Population,
    population_id: &str,
) -> Result<Sample, SamplingError> {
    let s = Sample::parse(bytes, what)?;
    let mismatch = |why: String| SamplingError::Mismatch(format!("{what}: {why}"));
    if s.population.id != population_id {
        return Err(mismatch(format!(
            "it was drawn from population {}, not {population_id}",
            s.population.id
        )));
    }
    if recorded_at(reader, POPULATION_KIND, population_id)? != Some(s.entry()) {
        return Err(mismatch(format!(
            "this ledger does not record its population at entry {}",
            s.population.entry
        )));
    }
    let checkpoints = reader.checkpoints()?;
    sample::check_seed(
        &s.seed,
        s.entry(),
        checkpoints.iter().map(|(n, note)| (*n, note.as_str())),
        verifier,
    )
    .map_err(mismatch)?;
    if let Some(d) = s.redraw_differs(population) {
        return Err(mismatch(d));
    }
    Ok(s)
}
