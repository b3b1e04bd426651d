//! Erasure that keeps the proofs (issue 17, `docs/erasure.md`): an entry's content is
//! removed from every store after a signed erasure entry records what, when, why and by
//! whom; the leaf keeps the content's digest, so the tree and every proof stay valid.
//!
//! What is recorded, and how to read it back, is `ledger::erasures`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::retention::RetentionRule;
use crate::ledger::LedgerError;
use crate::ledger::blobs::BlobStore;
use crate::ledger::erasures::{ERASURE_KIND, EVIDENT_SOURCE, Record, entry_uri, of};
use crate::ledger::evidence::{is_removal, is_run};
use crate::ledger::leaf::{hex, parse_hex32};
use crate::ledger::merkle::leaf_hash;
use crate::ledger::reader::{EntryRow, Reader};
use crate::ledger::rfc3339;
use crate::runner::Ledger;
use crate::sampling::{POPULATION_KIND, SAMPLE_KIND};

/// Errors of erasing.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    /// The ledger could not be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A blob could not be removed.
    #[error(
        "removing the content {sha256} of entry {entry}: {error}; the erasure is recorded, run `evident erase {entry}` again to finish it"
    )]
    Remove {
        /// The entry.
        entry: u64,
        /// The digest.
        sha256: String,
        /// The error.
        #[source]
        error: std::io::Error,
    },
    /// Nothing can be erased as asked.
    #[error("{0}")]
    Refused(String),
}

/// One entry to erase.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The entry.
    pub index: u64,
    /// Its URI.
    pub uri: String,
    /// Its title.
    pub title: Option<String>,
    /// Its content's digest.
    pub sha256: String,
    /// Why.
    pub reason: String,
    /// Already recorded as erased (a crash or an error left the content): only remove it.
    pub finish_only: bool,
}

/// Whether `row` is one of Evident's own records (a population, sample or erasure).
fn own_record(row: &EntryRow) -> bool {
    row.source == EVIDENT_SOURCE
        && matches!(
            row.kind.as_str(),
            ERASURE_KIND | POPULATION_KIND | SAMPLE_KIND
        )
}

/// Checks that entry `row` can be erased: content it holds, not Evident's own records.
fn erasable(row: &EntryRow) -> Result<(), String> {
    let kind = row.kind.as_str();
    if own_record(row) {
        return Err(format!(
            "entry {} is Evident's own {kind} record; it holds no personal data and other proofs rest on it",
            row.index
        ));
    }
    if is_run(kind) || is_removal(kind) || !row.has_blob {
        return Err(format!(
            "entry {} holds no content to erase (a {kind} entry{})",
            row.index,
            if row.has_blob {
                ""
            } else {
                " whose content was never kept"
            }
        ));
    }
    Ok(())
}

/// What erasing `entries` would do: each with the other entries holding the same bytes
/// (content is stored once per digest) when `with_copies`, else refused while copies remain.
pub fn plan(
    reader: &Reader,
    blobs: &BlobStore,
    entries: &[u64],
    reason: &str,
    with_copies: bool,
) -> Result<Vec<Target>, ErasureError> {
    if reason.trim().is_empty() {
        return Err(ErasureError::Refused(
            "--reason is empty: say why (name the request or the rule, not the person)".into(),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(ErasureError::Refused(
            "--reason holds a line break or control character: give one line of text".into(),
        ));
    }
    let size = reader.size()?;
    let mut out: BTreeMap<u64, Target> = BTreeMap::new();
    for &i in entries {
        let row = reader.entry(i)?.ok_or_else(|| {
            ErasureError::Refused(format!(
                "there is no entry {i}: the ledger's entries are 0 to {}",
                size.saturating_sub(1)
            ))
        })?;
        erasable(&row).map_err(ErasureError::Refused)?;
        let digest = parse_hex32(&row.sha256).unwrap_or([0; 32]);
        let mut copies: Vec<EntryRow> = Vec::new();
        for c in reader.entries_where(None, Some(&digest), size)? {
            if own_record(&c) {
                return Err(ErasureError::Refused(format!(
                    "entry {i}'s content is also the content of entry {}, Evident's own {} record, which other proofs rest on; it cannot be erased",
                    c.index, c.kind
                )));
            }
            // A copy already recorded as erased goes with the shared blob anyway.
            if c.index != i
                && erasable(&c).is_ok()
                && !entries.contains(&c.index)
                && of(reader, blobs, c.index)?.is_none()
            {
                copies.push(c);
            }
        }
        let mut rows = vec![row];
        if !copies.is_empty() {
            if !with_copies {
                let list: Vec<String> = copies
                    .iter()
                    .map(|c| format!("{} ({})", c.index, c.uri))
                    .collect();
                return Err(ErasureError::Refused(format!(
                    "entry {i}'s content is also the content of entries {}: it is stored once, so erasing it erases theirs; add --with-copies to erase them all",
                    list.join(", ")
                )));
            }
            rows.extend(copies);
        }
        for row in rows {
            let finish_only = match of(reader, blobs, row.index)? {
                Some(e) => {
                    let digest = parse_hex32(&row.sha256).unwrap_or([0; 32]);
                    if !blobs.contains(&digest).map_err(|e| ErasureError::Remove {
                        entry: row.index,
                        sha256: row.sha256.clone(),
                        error: e,
                    })? {
                        if entries.contains(&row.index) {
                            return Err(ErasureError::Refused(format!(
                                "entry {} was already {}",
                                row.index,
                                e.describe()
                            )));
                        }
                        continue;
                    }
                    true
                }
                None => false,
            };
            out.insert(
                row.index,
                Target {
                    index: row.index,
                    uri: row.uri,
                    title: row.title,
                    sha256: row.sha256,
                    reason: reason.to_owned(),
                    finish_only,
                },
            );
        }
    }
    Ok(out.into_values().collect())
}

/// What the retention `rules` make due at `at`: versions no longer current for longer
/// than a rule's `keep` (or, with `current = true`, collected longer ago), not yet erased.
/// A digest other kept entries still hold is not due until they all are.
pub fn due(
    reader: &Reader,
    blobs: &BlobStore,
    rules: &[RetentionRule],
    at: DateTime<Utc>,
) -> Result<Vec<Target>, ErasureError> {
    let erased = crate::ledger::erasures::all(reader, blobs, reader.size()?)?;
    let time = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let mut due: BTreeMap<u64, Target> = BTreeMap::new();
    let mut holders: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (row, ended) in reader.content_entries()? {
        if own_record(&row) {
            // Never due: it keeps its bytes, and every other holder of them.
            holders
                .entry(row.sha256.clone())
                .or_default()
                .push(row.index);
            continue;
        }
        if erasable(&row).is_err() || erased.contains_key(&row.index) {
            continue;
        }
        holders
            .entry(row.sha256.clone())
            .or_default()
            .push(row.index);
        let rule = rules.iter().find(|r| {
            r.source.as_deref().is_none_or(|s| s == row.source)
                && r.kind.as_deref().is_none_or(|k| k == row.kind)
                && (r.controls.is_empty()
                    || r.controls
                        .iter()
                        .any(|c| row.controls.iter().any(|rc| rc == c.0)))
        });
        let Some(rule) = rule else { continue };
        let since = match (&ended, rule.current) {
            (Some(t), _) => time(t),
            (None, true) => time(&row.collected_at),
            (None, false) => None,
        };
        if since.is_some_and(|s| s + rule.keep.0 <= at) {
            due.insert(
                row.index,
                Target {
                    index: row.index,
                    uri: row.uri,
                    title: row.title,
                    sha256: row.sha256,
                    reason: rule.reason.clone(),
                    finish_only: false,
                },
            );
        }
    }
    // Content is stored once per digest: erase it only when every holder is due.
    let kept: std::collections::HashSet<&str> = holders
        .iter()
        .filter(|(_, idx)| idx.iter().any(|i| !due.contains_key(i)))
        .map(|(d, _)| d.as_str())
        .collect();
    Ok(due
        .into_values()
        .filter(|t| !kept.contains(t.sha256.as_str()))
        .collect())
}

/// What [`apply`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Erased {
    /// The erased entry.
    pub index: u64,
    /// Its erasure entry.
    pub by_entry: u64,
    /// Whether a copy of the content was removed (false: it was already gone).
    pub removed: bool,
}

/// Erases `targets`: records an erasure entry for each (one batch), signs a checkpoint
/// over them, then removes each digest's content from every store. `by` is who asked.
pub fn apply(
    ledger: &Ledger,
    targets: &[Target],
    by: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Erased>, ErasureError> {
    let reader = Reader::open(&ledger.state)?;
    let mut observations = Vec::new();
    for t in targets.iter().filter(|t| !t.finish_only) {
        let mut leaf = Vec::new();
        reader.for_each_leaf_at(t.index, |l| leaf = l.to_vec())?;
        let record = Record {
            at: rfc3339(at),
            by: by.to_owned(),
            entry: t.index.to_string(),
            leaf: hex(&leaf_hash(&leaf)),
            reason: t.reason.clone(),
            sha256: t.sha256.clone(),
            what: vec!["content".to_owned()],
        };
        let mut bytes = serde_json::to_vec(&record).unwrap_or_default();
        bytes.push(b'\n');
        let mut o = evident_collectors::Observation::new(
            entry_uri(t.index),
            ERASURE_KIND,
            evident_collectors::Content::Bytes(bytes),
        );
        o.title = Some(format!("Erasure of the content of entry {}", t.index));
        o.media_type = Some("application/json".to_owned());
        observations.push(o);
    }
    if !observations.is_empty() {
        let stats = crate::runner::record_own(ledger, observations)?;
        if let Some(p) = stats.problems.first() {
            return Err(ErasureError::Refused(format!(
                "recording the erasure failed: {}; nothing was removed",
                p.message
            )));
        }
        // Signed before a byte goes: a blob is never missing without a signed erasure.
        ledger.writer.checkpoint()?;
    }
    let reader = Reader::open(&ledger.state)?;
    let mut done = Vec::new();
    for t in targets {
        let by_entry = reader
            .current_version(&entry_uri(t.index))?
            .map(|(i, _, _)| i)
            .ok_or_else(|| {
                ErasureError::Refused(format!("the erasure of entry {} was not recorded", t.index))
            })?;
        let digest = parse_hex32(&t.sha256).unwrap_or([0; 32]);
        let removed = ledger
            .blobs
            .remove(&digest)
            .map_err(|error| ErasureError::Remove {
                entry: t.index,
                sha256: t.sha256.clone(),
                error,
            })?;
        done.push(Erased {
            index: t.index,
            by_entry,
            removed,
        });
    }
    Ok(done)
}
