//! Populations and samples in a bundle (issue 17): export writes each population manifest
//! with every leaf of the log up to its checkpoint, and each sample manifest; `verify`
//! re-runs each population's filter over those leaves, proves they are the whole log of
//! that checkpoint, and redraws each sample.
//!
//! Members: `populations/<id>.json` (the manifest, named by its SHA-256),
//! `populations/<id>.leaves` (leaf `i` on line `i + 1`, verbatim: leaves are compact JSON
//! and hold no newline), `samples/<id>.json`. The entries a sample names, and the
//! `population` entry its seed follows, travel as ordinary entries with inclusion proofs.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufWriter, Read, Write};

use sha2::{Digest, Sha256};

use super::sink::Sink;
use super::{MAX_SMALL_MEMBER, population_leaves_path, population_path, sample_path};
use crate::ledger::LedgerError;
use crate::ledger::leaf::{hex, parse_hex32};
use crate::ledger::merkle::Hash;
use crate::ledger::note::{Checkpoint, NoteVerifier};
use crate::ledger::reader::Reader;
use crate::sampling::population::Replay;
use crate::sampling::sample::check_seed;
use crate::sampling::{EVIDENT_SOURCE, POPULATION_KIND, Population, SAMPLE_KIND, Sample};

/// A sample's population id as a digest.
fn p_id(s: &Sample) -> Hash {
    parse_hex32(&s.population.id).unwrap_or([0; 32])
}

/// A population or sample manifest going into a bundle, checked against the ledger.
#[derive(Debug, Clone)]
pub struct Carried<T> {
    /// Its id (SHA-256 of its canonical bytes).
    pub id: String,
    /// The manifest.
    pub manifest: T,
}

/// Writes the population and sample members; returns how many leaves they carry.
pub(super) fn write(
    reader: &Reader,
    sink: &mut Sink,
    populations: &[Carried<Population>],
    samples: &[Carried<Sample>],
) -> Result<u64, LedgerError> {
    let io = |what: String| {
        move |error: io::Error| LedgerError::Io {
            context: what,
            error,
        }
    };
    let mut leaves = 0;
    for p in populations {
        sink.add(&population_path(&p.id), &p.manifest.to_bytes())
            .map_err(io(format!("writing population {}", p.id)))?;
        let size = p
            .manifest
            .size()
            .map_err(|e| LedgerError::Corrupt(format!("population {}: {e}", p.id)))?;
        let path = sink.scratch().join("population.leaves");
        let mut out = BufWriter::with_capacity(
            1 << 16,
            std::fs::File::create(&path).map_err(io("creating a scratch file".into()))?,
        );
        reader.for_each_leaf_in(0, size, |_, leaf| {
            out.write_all(leaf)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(io("writing the population's leaves".into()))
        })?;
        out.flush()
            .map_err(io("writing the population's leaves".into()))?;
        drop(out);
        sink.add_file(&population_leaves_path(&p.id), &path)
            .map_err(io(format!("writing population {}'s leaves", p.id)))?;
        std::fs::remove_file(&path).ok();
        leaves += size;
    }
    for s in samples {
        sink.add(&sample_path(&s.id), &s.manifest.to_bytes())
            .map_err(io(format!("writing sample {}", s.id)))?;
    }
    Ok(leaves)
}

/// What a bundle's populations and samples showed, gathered during the pass.
#[derive(Default)]
pub(super) struct Checker {
    populations: BTreeMap<Hash, Read1>,
    samples: Vec<(String, Hash, Sample)>,
    /// Entries of kind `population`: index → subject digest.
    population_entries: HashMap<u64, Hash>,
    /// Subject digests of the `sample` entries carried.
    sample_entries: std::collections::HashSet<Hash>,
    /// Leaves members read before their manifest (already reported).
    early: std::collections::HashSet<Hash>,
    /// Problems found while reading, reported by `finish` with the rest.
    problems: Vec<String>,
}

/// A population manifest read, and what replaying its leaves found.
struct Read1 {
    path: String,
    population: Population,
    replayed: Option<(Vec<String>, u64)>,
}

/// Populations and samples verified, for the report.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SamplingCounts {
    /// Populations re-derived from the carried leaves.
    pub populations: u64,
    /// Samples redrawn.
    pub samples: u64,
    /// Each sample's seed, as the report prints it.
    pub seeds: Vec<String>,
}

impl Checker {
    /// A manifest member read whole (`populations/<id>.json` or `samples/<id>.json`);
    /// returns the bytes of memory it keeps.
    pub(super) fn manifest(
        &mut self,
        path: &str,
        sample: bool,
        name: Hash,
        digest: Hash,
        bytes: &[u8],
    ) -> usize {
        if digest != name {
            self.problems.push(format!(
                "{path}: content hashes to {}, not to its name (altered or swapped)",
                hex(&digest)
            ));
            return 0;
        }
        let kept = bytes.len() * 2;
        if sample {
            match Sample::parse(bytes, path) {
                Ok(s) => self.samples.push((path.to_owned(), name, s)),
                Err(e) => self.problems.push(e.to_string()),
            }
        } else {
            match Population::parse(bytes, path) {
                Ok(population) => {
                    self.populations.insert(
                        name,
                        Read1 {
                            path: path.to_owned(),
                            population,
                            replayed: None,
                        },
                    );
                }
                Err(e) => self.problems.push(e.to_string()),
            }
        }
        kept
    }

    /// An entry the bundle carries: kept when it records a population or a sample.
    pub(super) fn entry(&mut self, index: u64, source: &str, kind: &str, subject: Hash) {
        if source != EVIDENT_SOURCE {
            return;
        }
        if kind == POPULATION_KIND {
            self.population_entries.insert(index, subject);
        } else if kind == SAMPLE_KIND {
            self.sample_entries.insert(subject);
        }
    }

    /// Streams `populations/<id>.leaves` through its population's replay; returns the
    /// member's SHA-256 and size read. The manifest must come first (export writes it so).
    pub(super) fn leaves(
        &mut self,
        path: &str,
        name: Hash,
        r: &mut dyn Read,
    ) -> io::Result<(Hash, u64)> {
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        let Some(p) = self.populations.get_mut(&name) else {
            self.early.insert(name);
            self.problems.push(format!(
                "{path} comes before its manifest populations/{}.json, or has none; re-export the bundle",
                hex(&name)
            ));
            loop {
                let n = r.read(&mut buf)?;
                if n == 0 {
                    return Ok((hasher.finalize().into(), total));
                }
                hasher.update(&buf[..n]);
                total += n as u64;
            }
        };
        let (size, root) = match Checkpoint::parse_text(&p.population.checkpoint) {
            Ok(c) => (c.size, c.root),
            Err(_) => (0, [0; 32]),
        };
        let mut replay = Replay::new(&p.population);
        let mut line: Vec<u8> = Vec::new();
        let mut overlong = false;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            total += n as u64;
            for chunk in buf[..n].split_inclusive(|b| *b == b'\n') {
                if line.len() as u64 + chunk.len() as u64 <= MAX_SMALL_MEMBER {
                    line.extend_from_slice(chunk);
                } else {
                    overlong = true;
                }
                if chunk.ends_with(b"\n") {
                    line.pop();
                    if overlong {
                        // A leaf over the entry limit cannot be ours; counting it keeps the
                        // tree size honest, so the root check fails too.
                        replay.leaf(b"");
                        overlong = false;
                    } else {
                        replay.leaf(&line);
                    }
                    line.clear();
                }
            }
        }
        if !line.is_empty() {
            self.problems
                .push(format!("{path}: the last leaf has no final newline"));
        }
        p.replayed = Some(replay.finish(&root, size));
        Ok((hasher.finalize().into(), total))
    }

    /// The checks that need every member: each population replayed and drawn from a
    /// checkpoint the bundle proves (`checkpoints`: the bundle's checkpoint and every
    /// earlier one it carries, by size), each sample's population carried and recorded in
    /// an entry the bundle carries, its seed sound and its draw the same. Returns the
    /// problems, and the counts of what verified.
    pub(super) fn finish(
        mut self,
        key: &NoteVerifier,
        checkpoints: &BTreeMap<u64, &str>,
    ) -> (Vec<String>, u64, SamplingCounts) {
        let mut problems = std::mem::take(&mut self.problems);
        let mut more = 0;
        let mut counts = SamplingCounts::default();
        let mut verified = std::collections::HashSet::new();
        for (id, p) in &self.populations {
            let before = problems.len();
            let mut beyond = 0;
            match &p.replayed {
                None if self.early.contains(id) => {}
                None => problems.push(format!(
                    "{}: the bundle carries no populations/{}.leaves, so its completeness cannot be checked",
                    p.path,
                    hex(id)
                )),
                Some((found, unlisted)) => {
                    problems.extend(found.iter().map(|f| format!("{}: {f}", p.path)));
                    beyond = *unlisted;
                }
            }
            more += beyond;
            match Checkpoint::open(&p.population.checkpoint, key) {
                Err(e) => problems.push(format!(
                    "{}: its checkpoint is not signed by the key you gave: {e}",
                    p.path
                )),
                Ok(cp) if checkpoints.get(&cp.size) != Some(&p.population.checkpoint.as_str()) => {
                    problems.push(format!(
                        "{}: its checkpoint {} is not one this bundle proves (the bundle's checkpoint or an earlier one)",
                        p.path, cp.size
                    ));
                }
                Ok(_) => {}
            }
            if problems.len() == before && beyond == 0 {
                counts.populations += 1;
                verified.insert(*id);
            }
        }
        for (path, name, s) in &self.samples {
            let before = problems.len();
            let Some(p) = parse_hex32(&s.population.id).and_then(|id| self.populations.get(&id))
            else {
                problems.push(format!(
                    "{path}: its population {} is not in the bundle",
                    s.population.id
                ));
                continue;
            };
            let entry = s.entry();
            match self.population_entries.get(&entry) {
                Some(subject) if hex(subject) == s.population.id => {}
                Some(_) => problems.push(format!(
                    "{path}: entry {entry} records another population, not {}",
                    s.population.id
                )),
                None => problems.push(format!(
                    "{path}: the bundle does not carry entry {entry}, the population's record in the log"
                )),
            }
            if let Err(e) = check_seed(
                &s.seed,
                entry,
                checkpoints.iter().map(|(n, c)| (*n, *c)),
                key,
            ) {
                problems.push(format!("{path}: {e}"));
            }
            if let Some(d) = s.redraw_differs(&p.population) {
                problems.push(format!("{path}: {d}"));
            }
            // Recorded in the log, so every draw, redraws included, is there to see.
            if !self.sample_entries.contains(name) {
                problems.push(format!(
                    "{path}: the bundle carries no `sample` entry recording it; a sample not in the log could be one of many drawn"
                ));
            }
            if problems.len() == before && verified.contains(&p_id(s)) {
                counts.samples += 1;
                counts.seeds.push(
                    match s
                        .seed
                        .checkpoint
                        .as_deref()
                        .and_then(|n| Checkpoint::parse_text(n).ok())
                    {
                        Some(cp) => format!("checkpoint {}", cp.size),
                        None => format!("text {:?} (as random as whoever chose it)", s.seed.value),
                    },
                );
            }
        }
        (problems, more, counts)
    }
}
