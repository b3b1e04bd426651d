//! The link graph of a ledger up to a tree size: the current version of every artefact
//! with the identifiers it names; chains walked from one entry or identifier
//! ([`Graph::trace`]); and the expectations' gaps ([`Graph::violations`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Read as _;

use serde::Serialize;

use super::{Facts, MAX_CONTENT, Rules};
use crate::ledger::LedgerError;
use crate::ledger::blobs::BlobStore;
use crate::ledger::evidence::{evidence_date, is_removal, is_run};
use crate::ledger::leaf::{LeafStr, LeafView, parse_hex32};
use crate::ledger::reader::Reader;
use crate::sampling::{POPULATION_KIND, SAMPLE_KIND};

/// One artefact's current version.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Its entry.
    pub index: u64,
    /// Its kind.
    pub kind: String,
    /// Its source.
    pub source: String,
    /// Its URI.
    pub uri: String,
    /// Its title.
    pub title: Option<String>,
    /// Its evidence date (effective, else the source's, else collected).
    pub date: String,
    /// Its content's SHA-256.
    pub sha256: String,
    /// The identifiers it names.
    pub identifiers: Vec<String>,
    /// Per expectation: (needs a link, satisfies one).
    #[serde(skip)]
    roles: Vec<(bool, bool)>,
}

/// The graph.
#[derive(Debug, Default)]
pub struct Graph {
    /// Current artefacts, in index order.
    pub nodes: Vec<Node>,
    by_identifier: HashMap<String, Vec<usize>>,
    by_index: HashMap<u64, usize>,
    /// The tree size it was built from.
    pub size: u64,
}

/// One step of a chain.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The node (index into [`Graph::nodes`]).
    #[serde(skip)]
    pub node: usize,
    /// Links from the start.
    pub hops: u32,
    /// The identifier that led here (none for the start).
    pub via: Option<String>,
    /// The node reached from (none for the start).
    #[serde(skip)]
    pub from: Option<usize>,
}

/// An expectation an entry does not meet.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// The expectation's name.
    pub expectation: String,
    /// The controls it evidences.
    pub controls: Vec<String>,
    /// The entry that lacks the link.
    pub index: u64,
    /// Its title, else URI.
    pub title: String,
    /// Its URI.
    pub uri: String,
    /// The entries it does link to (within the expectation's reach), none of which qualifies.
    pub linked: Vec<u64>,
}

impl Graph {
    /// Builds the graph of the ledger's first `below` entries: the current version of each
    /// URI (a removal ends it), with identifiers from `rules` over each leaf and its content
    /// (read through `blobs`, at most [`MAX_CONTENT`] bytes).
    pub fn build(
        reader: &Reader,
        blobs: &BlobStore,
        rules: &Rules,
        below: u64,
    ) -> Result<Graph, LedgerError> {
        // The newest entry per URI, with its leaf: what is current at `below`.
        let mut current: BTreeMap<String, Option<(u64, Vec<u8>)>> = BTreeMap::new();
        reader.for_each_leaf_in(0, below, |i, leaf| {
            let v = LeafView::parse(leaf).map_err(|e| {
                LedgerError::Corrupt(format!(
                    "entry {i} is not a leaf: {e}; run `evident verify`"
                ))
            })?;
            let kind = v.predicate.kind.as_str();
            if is_run(kind) || kind == POPULATION_KIND || kind == SAMPLE_KIND {
                return Ok(());
            }
            current.insert(
                v.uri().to_owned(),
                (!is_removal(kind)).then(|| (i, leaf.to_vec())),
            );
            Ok(())
        })?;
        let mut wanted: Vec<(u64, Vec<u8>)> = current.into_values().flatten().collect();
        wanted.sort_unstable_by_key(|w| w.0);
        let mut g = Graph {
            size: below,
            ..Graph::default()
        };
        for (i, leaf) in wanted {
            let v = LeafView::parse(&leaf)
                .map_err(|e| LedgerError::Corrupt(format!("entry {i} is not a leaf: {e}")))?;
            let content = if rules.needs_content(&v) {
                read_content(blobs, v.subject_sha256.as_str())
            } else {
                None
            };
            let facts = Facts::new(&v, content.as_deref());
            let p = &v.predicate;
            let (date, _) = evidence_date(
                p.effective_date.as_ref().map(LeafStr::as_str),
                p.source_updated_at.as_ref().map(LeafStr::as_str),
                p.collected_at.as_str(),
            );
            let node = Node {
                index: i,
                kind: p.kind.as_str().to_owned(),
                source: p.source.as_str().to_owned(),
                uri: v.uri().to_owned(),
                title: p.title.as_ref().map(|t| t.as_str().to_owned()),
                date,
                sha256: v.subject_sha256.as_str().to_owned(),
                identifiers: rules.identifiers(&facts),
                roles: rules.roles(&facts),
            };
            let at = g.nodes.len();
            for id in &node.identifiers {
                g.by_identifier.entry(id.clone()).or_default().push(at);
            }
            g.by_index.insert(i, at);
            g.nodes.push(node);
        }
        Ok(g)
    }

    /// The nodes an id names: an entry index (its artefact's current version), a URI, or
    /// an identifier (`model:fraud/3`, or a bare value such as `fraud/3` in any namespace).
    pub fn find(&self, reader: &Reader, id: &str) -> Result<Vec<usize>, LedgerError> {
        if let Ok(i) = id.parse::<u64>() {
            if let Some(n) = self.by_index.get(&i) {
                return Ok(vec![*n]);
            }
            // An older version: trace from its artefact's current one.
            return Ok(match reader.entry(i)? {
                Some(row) => self
                    .nodes
                    .iter()
                    .position(|n| n.uri == row.uri)
                    .into_iter()
                    .collect(),
                None => Vec::new(),
            });
        }
        if let Some(n) = self.nodes.iter().position(|n| n.uri == id) {
            return Ok(vec![n]);
        }
        if let Some(v) = self.by_identifier.get(id) {
            return Ok(v.clone());
        }
        let mut found: Vec<usize> = self
            .by_identifier
            .iter()
            .filter(|(k, _)| k.split_once(':').is_some_and(|(_, v)| v == id))
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// The chain around `start`: every node within `depth` links, breadth first, each with
    /// the identifier that reached it; at most `max` nodes.
    pub fn trace(&self, start: &[usize], depth: u32, max: usize) -> Vec<Step> {
        let mut seen: HashSet<usize> = start.iter().copied().collect();
        let mut steps: Vec<Step> = start
            .iter()
            .map(|&node| Step {
                node,
                hops: 0,
                via: None,
                from: None,
            })
            .collect();
        let mut queue: VecDeque<usize> = (0..steps.len()).collect();
        while let Some(s) = queue.pop_front() {
            let (node, hops) = (steps[s].node, steps[s].hops);
            if hops >= depth {
                continue;
            }
            for id in &self.nodes[node].identifiers {
                for &next in self.by_identifier.get(id).into_iter().flatten() {
                    if steps.len() >= max {
                        return steps;
                    }
                    if seen.insert(next) {
                        steps.push(Step {
                            node: next,
                            hops: hops + 1,
                            via: Some(id.clone()),
                            from: Some(node),
                        });
                        queue.push_back(steps.len() - 1);
                    }
                }
            }
        }
        steps
    }

    /// Every current entry an expectation needs linked that is not (within its reach).
    pub fn violations(&self, rules: &Rules) -> Vec<Violation> {
        let mut out = Vec::new();
        for (k, e) in rules.expect.iter().enumerate() {
            let within = e.config.within.unwrap_or(1);
            for (n, node) in self.nodes.iter().enumerate() {
                if !node.roles.get(k).is_some_and(|r| r.0) {
                    continue;
                }
                let reach = self.trace(&[n], within, 10_000);
                let linked: Vec<&Step> = reach.iter().skip(1).collect();
                if linked
                    .iter()
                    .any(|s| self.nodes[s.node].roles.get(k).is_some_and(|r| r.1))
                {
                    continue;
                }
                out.push(Violation {
                    expectation: e.config.name.clone(),
                    controls: e.config.controls.iter().map(|c| c.0.to_owned()).collect(),
                    index: node.index,
                    title: node.title.clone().unwrap_or_else(|| node.uri.clone()),
                    uri: node.uri.clone(),
                    linked: linked.iter().map(|s| self.nodes[s.node].index).collect(),
                });
            }
        }
        out
    }
}

/// An entry's content, at most [`MAX_CONTENT`] bytes; none when the store lacks it.
fn read_content(blobs: &BlobStore, sha256: &str) -> Option<Vec<u8>> {
    let digest = parse_hex32(sha256)?;
    let f = blobs.open(&digest).ok()??;
    let mut buf = Vec::new();
    f.take(MAX_CONTENT).read_to_end(&mut buf).ok()?;
    Some(buf)
}
