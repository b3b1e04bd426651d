//! A sample: items of a population ranked by a keyed hash of a seed nobody chose in
//! advance, the first `size` taken. The draw is a pure function of the population's id,
//! the seed and the size, so `verify` and an auditor's shell redo it exactly.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::population::{Item, Population};
use super::{SamplingError, canonical};
use crate::ledger::leaf::hex;
use crate::ledger::note::{Checkpoint, NoteVerifier, encode_hash};

/// The `type` of a sample manifest.
pub const SAMPLE_TYPE: &str = "https://evident.dev/sample/v1";

/// The first line of every draw key's input.
pub const DRAW_DOMAIN: &str = "evident-sample-v1";

/// Which population, and where the log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationRef {
    /// The index of the `population` entry that recorded it.
    pub entry: String,
    /// The population manifest's SHA-256.
    pub id: String,
}

/// The seed of a draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// For a `checkpoint` seed: the signed checkpoint whose root is the seed, the first
    /// signed after the population entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// `text` (the auditor's) or `checkpoint`.
    pub kind: String,
    /// The seed text: the auditor's, or the checkpoint's base64 root.
    pub value: String,
}

/// How the caller wants the seed chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedSpec {
    /// The auditor's own text.
    Text(String),
    /// The root of the first checkpoint signed after the population entry.
    Checkpoint,
}

/// A sample manifest. Its canonical bytes' SHA-256 is its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// The drawn items in draw order, each with its key.
    pub items: Vec<Item>,
    /// The population drawn from.
    pub population: PopulationRef,
    /// The seed.
    pub seed: Seed,
    /// The size asked for (fewer items when the population is smaller).
    pub size: String,
    /// Always [`SAMPLE_TYPE`].
    #[serde(rename = "type")]
    pub type_: String,
}

/// `SHA-256("evident-sample-v1\n" ‖ population id ‖ "\n" ‖ seed ‖ "\n" ‖ index)`: the key
/// that ranks entry `index`; the smallest keys are drawn.
pub fn draw_key(population_id: &str, seed: &str, index: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [DRAW_DOMAIN, "\n", population_id, "\n", seed, "\n", index] {
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

impl Sample {
    /// Draws `size` items of `population` (id `id`, recorded at entry `entry`) with `seed`.
    pub fn draw(population: &Population, id: &str, entry: u64, size: u64, seed: Seed) -> Sample {
        let mut ranked: Vec<([u8; 32], &Item)> = population
            .items
            .iter()
            .map(|i| (draw_key(id, &seed.value, &i.index), i))
            .collect();
        ranked.sort_unstable_by_key(|r| r.0);
        let take = usize::try_from(size).unwrap_or(usize::MAX);
        let items = ranked
            .into_iter()
            .take(take)
            .map(|(key, i)| Item {
                key: Some(hex(&key)),
                ..i.clone()
            })
            .collect();
        Sample {
            items,
            population: PopulationRef {
                entry: entry.to_string(),
                id: id.to_owned(),
            },
            seed,
            size: size.to_string(),
            type_: SAMPLE_TYPE.to_owned(),
        }
    }

    /// The canonical bytes (what the id hashes).
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }

    /// Parses a manifest strictly: its own type, canonical bytes. `what` names it in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Sample, SamplingError> {
        let bad = |why: String| SamplingError::Manifest {
            what: what.to_owned(),
            kind: "sample",
            why,
        };
        let s: Sample = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if s.type_ != SAMPLE_TYPE {
            return Err(bad(format!("its type is {:?}", s.type_)));
        }
        if s.size.parse::<u64>().is_err() || s.population.entry.parse::<u64>().is_err() {
            return Err(bad(
                "its size or population entry is not a number".to_owned()
            ));
        }
        if s.to_bytes() != bytes {
            return Err(bad(
                "it is not in canonical form (compact JSON, keys sorted, one final newline): edited by hand?".to_owned(),
            ));
        }
        Ok(s)
    }

    /// The population entry's index.
    pub fn entry(&self) -> u64 {
        self.population.entry.parse().unwrap_or(u64::MAX)
    }

    /// Whether this sample is the one `population` and its seed and size give: `None` when
    /// it is, else what differs.
    pub fn redraw_differs(&self, population: &Population) -> Option<String> {
        let size = self.size.parse().unwrap_or(0);
        let again = Sample::draw(
            population,
            &self.population.id,
            self.entry(),
            size,
            self.seed.clone(),
        );
        if again.items == self.items {
            return None;
        }
        let first = again
            .items
            .iter()
            .zip(&self.items)
            .position(|(a, b)| a != b)
            .unwrap_or(again.items.len().min(self.items.len()));
        Some(format!(
            "the draw gives {} items, the sample lists {}; they differ from draw {} on",
            again.items.len(),
            self.items.len(),
            first + 1
        ))
    }
}

/// Checks a seed: a text seed is the auditor's and needs nothing; a checkpoint seed must be
/// the first checkpoint of this log (`verifier`) signed over a tree that holds the
/// population entry `entry`, found among `checkpoints` (size, signed note: every checkpoint
/// the log has signed, or a bundle carries), and its value that checkpoint's root.
pub fn check_seed<'a>(
    seed: &Seed,
    entry: u64,
    checkpoints: impl IntoIterator<Item = (u64, &'a str)>,
    verifier: &NoteVerifier,
) -> Result<(), String> {
    match (seed.kind.as_str(), &seed.checkpoint) {
        ("text", None) => Ok(()),
        ("checkpoint", Some(note)) => {
            let cp = Checkpoint::open(note, verifier)
                .map_err(|e| format!("its seed checkpoint is not this log's: {e}"))?;
            if encode_hash(&cp.root) != seed.value {
                return Err("its seed is not its checkpoint's root".to_owned());
            }
            let first = checkpoints
                .into_iter()
                .filter(|(size, _)| *size > entry)
                .min_by_key(|(size, _)| *size);
            match first {
                Some((size, n)) if size == cp.size && n == note => Ok(()),
                Some((size, _)) => Err(format!(
                    "its seed is checkpoint {}, but the first signed after the population entry {entry} is {size}",
                    cp.size
                )),
                None => Err(format!(
                    "no checkpoint here was signed after the population entry {entry}"
                )),
            }
        }
        (kind, _) => Err(format!(
            "its seed kind {kind:?} is not `text` or `checkpoint` (with the checkpoint)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::population::{Filter, Period, Range};

    fn population(n: u64) -> Population {
        let items = (0..n)
            .map(|i| Item {
                basis: "source".into(),
                collected_at: "2026-08-01T00:00:00Z".into(),
                controls: vec!["A.6.2.5".into()],
                date: "2026-08-01T00:00:00Z".into(),
                index: (i * 3).to_string(),
                key: None,
                kind: "model_version".into(),
                sha256: "00".repeat(32),
                source: "mlflow".into(),
                title: None,
                uri: format!("mlflow://m/{i}"),
            })
            .collect::<Vec<_>>();
        Population {
            checkpoint: "x\n1\nAAAA\n".into(),
            count: n.to_string(),
            filter: Filter {
                controls: vec![],
                kinds: vec![],
                period: Period::parse("2026-07-01..2026-09-30").unwrap(),
                sources: vec![],
            },
            items,
            range: Range {
                from: "0".into(),
                to: "1".into(),
            },
            type_: "t".into(),
        }
    }

    fn text(s: &str) -> Seed {
        Seed {
            checkpoint: None,
            kind: "text".into(),
            value: s.into(),
        }
    }

    /// The key is the documented concatenation, checkable with `sha256sum`.
    #[test]
    fn draw_key_is_the_documented_hash() {
        let k = draw_key("abc", "auditor seed", "42");
        let want: [u8; 32] = Sha256::digest(b"evident-sample-v1\nabc\nauditor seed\n42").into();
        assert_eq!(k, want);
    }

    /// Same inputs, same sample; another seed, another sample; the first k of a larger
    /// draw are the draw of size k (a sample can be extended without redrawing).
    #[test]
    fn draws_are_deterministic_seeded_and_extendable() {
        let p = population(200);
        let a = Sample::draw(&p, "id", 600, 25, text("s1"));
        let b = Sample::draw(&p, "id", 600, 25, text("s1"));
        assert_eq!(a, b);
        assert_eq!(a.items.len(), 25);
        let c = Sample::draw(&p, "id", 600, 25, text("s2"));
        assert_ne!(a.items, c.items);
        let big = Sample::draw(&p, "id", 600, 40, text("s1"));
        assert_eq!(big.items[..25], a.items[..]);
        let keys: Vec<_> = a.items.iter().map(|i| i.key.clone().unwrap()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "items come in draw order");
        let mut idx: Vec<_> = a.items.iter().map(Item::index).collect();
        idx.sort_unstable();
        idx.dedup();
        assert_eq!(idx.len(), 25, "no item drawn twice");
        assert!(a.redraw_differs(&p).is_none());
        let mut forged = a.clone();
        forged.items.swap(0, 1);
        assert!(forged.redraw_differs(&p).is_some());
        let small = Sample::draw(&p, "id", 600, 500, text("s1"));
        assert_eq!(
            small.items.len(),
            200,
            "a size above the population takes it all"
        );
    }

    /// A sample round-trips through its canonical bytes and refuses anything else.
    #[test]
    fn manifests_parse_only_in_canonical_form() {
        let s = Sample::draw(&population(10), "id", 30, 3, text("s"));
        let bytes = s.to_bytes();
        assert_eq!(Sample::parse(&bytes, "s.json").unwrap(), s);
        let pretty = serde_json::to_vec_pretty(&s).unwrap();
        assert!(Sample::parse(&pretty, "s.json").is_err());
        let mut extra = bytes.clone();
        extra.insert(1, b' ');
        assert!(Sample::parse(&extra, "s.json").is_err());
    }
}
