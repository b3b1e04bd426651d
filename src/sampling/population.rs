//! A population: its filter, the signed checkpoint it was drawn from, and every entry up to
//! that checkpoint that matches, in index order. Drawing it (`evident population`) and
//! re-checking it from a bundle's leaves (`verify`) run the same [`Matcher`].

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{POPULATION_KIND, SAMPLE_KIND, SamplingError, canonical};
use crate::ledger::LedgerError;
use crate::ledger::evidence::{counts_as_evidence, evidence_date};
use crate::ledger::leaf::{LeafStr, LeafView};
use crate::ledger::merkle::{Frontier, Hash, leaf_hash};
use crate::ledger::note::Checkpoint;
use crate::ledger::reader::Reader;

/// The `type` of a population manifest.
pub const POPULATION_TYPE: &str = "https://evident.dev/population/v1";

/// Problems a re-check lists before it only counts them.
const MAX_PROBLEMS: usize = 20;

/// Inclusive days of evidence dates (`YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// The first day.
    pub from: String,
    /// The last day.
    pub until: String,
}

impl Period {
    /// Parses `FROM..UNTIL` (both `YYYY-MM-DD`, inclusive).
    pub fn parse(s: &str) -> Result<Period, String> {
        let (from, until) = s.split_once("..").ok_or_else(|| {
            format!("{s:?} is not a period; write FROM..UNTIL, e.g. 2026-07-01..2026-09-30")
        })?;
        for d in [from, until] {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .ok()
                .filter(|_| d.len() == 10)
                .ok_or_else(|| format!("{d:?} in period {s:?} is not a date; write YYYY-MM-DD"))?;
        }
        if from > until {
            return Err(format!("period {s:?} ends before it starts"));
        }
        Ok(Period {
            from: from.to_owned(),
            until: until.to_owned(),
        })
    }

    /// Whether day `d` (`YYYY-MM-DD`) falls in the period.
    pub fn contains(&self, d: &str) -> bool {
        self.from.as_str() <= d && d <= self.until.as_str()
    }
}

/// What a population selects. Empty lists select everything of their kind (every evidence
/// kind, every source, every control).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Entries mapped to any of these controls or clauses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    /// Entries of these kinds (default: every kind that is evidence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Entries whose evidence date (effective date, else the source's time, else when it
    /// was collected: what coverage reasons by) falls in these days.
    pub period: Period,
    /// Entries from these sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

/// One entry of a population (or a sample, which adds its draw key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Which date `date` is: `effective`, `source` or `collected`.
    pub basis: String,
    /// When Evident recorded it.
    #[serde(rename = "collectedAt")]
    pub collected_at: String,
    /// The controls its leaf names.
    pub controls: Vec<String>,
    /// The evidence date that put it in the period.
    pub date: String,
    /// Its index in the log.
    pub index: String,
    /// In a sample: the hex draw key that ranked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its kind.
    pub kind: String,
    /// Its content's SHA-256.
    pub sha256: String,
    /// Its source.
    pub source: String,
    /// Its title, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Its URI.
    pub uri: String,
}

impl Item {
    /// The entry's index.
    pub fn index(&self) -> u64 {
        self.index.parse().unwrap_or(u64::MAX)
    }
}

/// The index range a population was drawn over: always the whole log up to its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// The first index.
    pub from: String,
    /// One past the last index: the checkpoint's size.
    pub to: String,
}

/// A population manifest. Its canonical bytes' SHA-256 is its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    /// The signed checkpoint (a C2SP note) it was drawn from.
    pub checkpoint: String,
    /// How many items.
    pub count: String,
    /// What it selects.
    pub filter: Filter,
    /// Every matching entry, in index order.
    pub items: Vec<Item>,
    /// The indices considered.
    pub range: Range,
    /// Always [`POPULATION_TYPE`].
    #[serde(rename = "type")]
    pub type_: String,
}

/// A filter ready to test leaves.
pub struct Matcher<'f> {
    period: &'f Period,
    controls: HashSet<&'f str>,
    kinds: HashSet<&'f str>,
    sources: HashSet<&'f str>,
}

impl<'f> Matcher<'f> {
    /// The matcher of `filter`.
    pub fn new(filter: &'f Filter) -> Self {
        let set = |v: &'f [String]| v.iter().map(String::as_str).collect();
        Matcher {
            period: &filter.period,
            controls: set(&filter.controls),
            kinds: set(&filter.kinds),
            sources: set(&filter.sources),
        }
    }

    /// The item entry `index` makes, when its leaf matches.
    pub fn item(&self, index: u64, leaf: &LeafView<'_>) -> Option<Item> {
        let p = &leaf.predicate;
        let kind = p.kind.as_str();
        let kind_ok = if self.kinds.is_empty() {
            // Records of Evident's own sampling are about evidence, not evidence.
            counts_as_evidence(kind)
                && !(p.source.as_str() == super::EVIDENT_SOURCE
                    && matches!(kind, POPULATION_KIND | SAMPLE_KIND | "erasure"))
        } else {
            self.kinds.contains(kind)
        };
        if !kind_ok
            || (!self.sources.is_empty() && !self.sources.contains(p.source.as_str()))
            || (!self.controls.is_empty()
                && !p
                    .controls
                    .iter()
                    .any(|c| self.controls.contains(c.as_str())))
        {
            return None;
        }
        let (date, basis) = evidence_date(
            p.effective_date.as_ref().map(LeafStr::as_str),
            p.source_updated_at.as_ref().map(LeafStr::as_str),
            p.collected_at.as_str(),
        );
        if !self.period.contains(date.get(..10)?) {
            return None;
        }
        Some(Item {
            basis: basis.as_str().to_owned(),
            collected_at: p.collected_at.as_str().to_owned(),
            controls: p.controls.iter().map(|c| c.as_str().to_owned()).collect(),
            date,
            index: index.to_string(),
            key: None,
            kind: kind.to_owned(),
            sha256: leaf.subject_sha256.as_str().to_owned(),
            source: p.source.as_str().to_owned(),
            title: p.title.as_ref().map(|t| t.as_str().to_owned()),
            uri: leaf.uri().to_owned(),
        })
    }
}

impl Population {
    /// Draws the population of `filter` from the ledger's entries up to the signed
    /// checkpoint `note` (already opened as `cp`). The leaves read are hashed back to the
    /// checkpoint's root, so a tampered database cannot shape the list.
    pub fn draw(
        reader: &Reader,
        note: &str,
        cp: &Checkpoint,
        filter: Filter,
    ) -> Result<Population, SamplingError> {
        let mut check = Recheck::new(&filter);
        let mut items = Vec::new();
        reader.for_each_leaf_in(0, cp.size, |i, leaf| {
            if i != check.frontier.size() {
                return Err(LedgerError::Corrupt(format!(
                    "entry {} is missing from the ledger; run `evident verify`",
                    check.frontier.size()
                )));
            }
            match check.leaf(leaf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => {}
                Err(e) => {
                    return Err(LedgerError::Corrupt(format!(
                        "entry {i}: {e}; run `evident verify`"
                    )));
                }
            }
            Ok(())
        })?;
        if check.frontier.size() != cp.size || check.frontier.root() != cp.root {
            return Err(LedgerError::Corrupt(format!(
                "the ledger's entries up to {} do not hash to that checkpoint's root; run `evident verify`",
                cp.size
            ))
            .into());
        }
        Ok(Population {
            checkpoint: note.to_owned(),
            count: items.len().to_string(),
            filter,
            items,
            range: Range {
                from: "0".to_owned(),
                to: cp.size.to_string(),
            },
            type_: POPULATION_TYPE.to_owned(),
        })
    }

    /// The canonical bytes (what the id hashes).
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }

    /// Parses a manifest strictly: its own type, canonical bytes, a count and range that
    /// agree with it. `what` names it in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Population, SamplingError> {
        let bad = |why: String| SamplingError::Manifest {
            what: what.to_owned(),
            kind: "population",
            why,
        };
        let p: Population = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if p.type_ != POPULATION_TYPE {
            return Err(bad(format!("its type is {:?}", p.type_)));
        }
        let size = p.size().map_err(|e| bad(e.to_string()))?;
        if p.range.from != "0" || p.range.to != size.to_string() {
            return Err(bad(format!(
                "its range {}..{} is not the whole log up to its checkpoint (0..{size})",
                p.range.from, p.range.to
            )));
        }
        if p.count != p.items.len().to_string() {
            return Err(bad(format!(
                "count {} but {} items",
                p.count,
                p.items.len()
            )));
        }
        if p.to_bytes() != bytes {
            return Err(bad(
                "it is not in canonical form (compact JSON, keys sorted, one final newline): edited by hand?".to_owned(),
            ));
        }
        Ok(p)
    }

    /// The size of the checkpoint it was drawn from (its note is not verified here).
    pub fn size(&self) -> Result<u64, crate::ledger::note::NoteError> {
        Checkpoint::parse_text(&self.checkpoint).map(|c| c.size)
    }

    /// The filter in words, for tables and the report.
    pub fn describe(&self) -> String {
        let f = &self.filter;
        let mut s = format!("{}..{}", f.period.from, f.period.until);
        for (label, v) in [
            ("controls", &f.controls),
            ("kinds", &f.kinds),
            ("sources", &f.sources),
        ] {
            if !v.is_empty() {
                s.push_str(&format!(", {label} {}", v.join(" ")));
            }
        }
        s
    }
}

/// Re-runs a filter over a log's leaves in index order: the tree they make and the items
/// that match. The ledger's draw and a bundle's `verify` both use it.
pub struct Recheck<'f> {
    matcher: Matcher<'f>,
    frontier: Frontier,
}

impl<'f> Recheck<'f> {
    /// A re-check of `filter` from index 0.
    pub fn new(filter: &'f Filter) -> Self {
        Recheck {
            matcher: Matcher::new(filter),
            frontier: Frontier::default(),
        }
    }

    /// Takes the next leaf: its item when it matches; an error when it is not a leaf.
    pub fn leaf(&mut self, bytes: &[u8]) -> Result<Option<Item>, String> {
        let index = self.frontier.size();
        self.frontier.append(leaf_hash(bytes));
        let view =
            LeafView::parse(bytes).map_err(|e| format!("entry {index} is not a leaf: {e}"))?;
        Ok(self.matcher.item(index, &view))
    }

    /// Leaves taken so far, and the root of the tree they make.
    pub fn tree(&self) -> (u64, Hash) {
        (self.frontier.size(), self.frontier.root())
    }
}

/// Checks a population against the leaves of a log streamed in index order (a bundle's
/// `populations/<id>.leaves`): every leaf, every match, the tree. Problems are listed up
/// to a bound and counted beyond.
pub struct Replay<'p> {
    population: &'p Population,
    check: Recheck<'p>,
    next: usize,
    /// What disagreed.
    pub problems: Vec<String>,
    /// Problems beyond those listed.
    pub more: u64,
}

impl<'p> Replay<'p> {
    /// A replay of `population`.
    pub fn new(population: &'p Population) -> Self {
        Replay {
            population,
            check: Recheck::new(&population.filter),
            next: 0,
            problems: Vec::new(),
            more: 0,
        }
    }

    fn problem(&mut self, what: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(what);
        } else {
            self.more += 1;
        }
    }

    /// Takes the next leaf of the log.
    pub fn leaf(&mut self, bytes: &[u8]) {
        let item = match self.check.leaf(bytes) {
            Err(e) => return self.problem(e),
            Ok(None) => return,
            Ok(Some(item)) => item,
        };
        let at = item.index();
        // Listed items before this one matched no leaf.
        while let Some(listed) = self.population.items.get(self.next) {
            if listed.index() >= at {
                break;
            }
            let what = not_matched(listed);
            self.problem(what);
            self.next += 1;
        }
        match self.population.items.get(self.next) {
            Some(listed) if listed.index() == at => {
                if *listed != item {
                    self.problem(format!(
                        "entry {at} is listed with details its leaf does not have"
                    ));
                }
                self.next += 1;
            }
            _ => self.problem(format!(
                "entry {at} ({}) matches the filter but the population leaves it out",
                item.uri
            )),
        }
    }

    /// Ends the replay: the leaves must make the population's checkpoint, and every listed
    /// item must have matched. Returns the problems and the count beyond them.
    pub fn finish(mut self, root: &Hash, size: u64) -> (Vec<String>, u64) {
        let (n, got) = self.check.tree();
        if n != size {
            self.problem(format!(
                "the bundle carries {n} leaves; the population's checkpoint has {size}"
            ));
        } else if got != *root {
            self.problem(format!(
                "the {n} leaves carried do not hash to the population's checkpoint root"
            ));
        }
        let rest: Vec<String> = self.population.items[self.next.min(self.population.items.len())..]
            .iter()
            .map(not_matched)
            .collect();
        for r in rest {
            self.problem(r);
        }
        (self.problems, self.more)
    }
}

fn not_matched(listed: &Item) -> String {
    format!(
        "entry {} is listed but no leaf of that index matches the filter",
        listed.index
    )
}
