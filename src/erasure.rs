//! Erasure that keeps the proofs (issue 17, `docs/erasure.md`): an entry's content (and a
//! v2 leaf's metadata record: title, URI, submitter) is removed from every store after a
//! signed erasure entry records what, when, why and by whom; the leaf keeps the content's
//! digest and the metadata's commitment, so the tree and every proof stay valid.
//!
//! What is recorded, and how to read it back, is `ledger::erasures`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::retention::RetentionRule;
use crate::ledger::LedgerError;
use crate::ledger::blobs::BlobStore;
use crate::ledger::erasures::{
    CONTENT_ERASED, ERASURE_KIND, EVIDENT_SOURCE, META_ERASED, Record, entry_uri, of,
};
use crate::ledger::evidence::is_removal;
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
    /// Whether its content is erased (it has some in the store).
    pub content: bool,
    /// Whether its metadata record (a v2 leaf's title, URI, submitter) is erased too.
    pub metadata: bool,
    /// Why.
    pub reason: String,
    /// Already recorded as erased (a crash or an error left the content or the metadata):
    /// only remove it.
    pub finish_only: bool,
}

impl Target {
    fn new(reader: &Reader, row: EntryRow, reason: &str) -> Result<Target, ErasureError> {
        Ok(Target {
            index: row.index,
            content: row.has_blob && !is_removal(&row.kind),
            metadata: reader.meta_record(row.index)?.is_some(),
            uri: row.uri,
            title: row.title,
            sha256: row.sha256,
            reason: reason.to_owned(),
            finish_only: false,
        })
    }
}

/// Whether `row` is one of Evident's own records (a population, sample or erasure).
fn own_record(row: &EntryRow) -> bool {
    row.source == EVIDENT_SOURCE
        && matches!(
            row.kind.as_str(),
            ERASURE_KIND | POPULATION_KIND | SAMPLE_KIND
        )
}

/// Checks that entry `row` can be erased: content it holds, or a v2 leaf's metadata
/// (`metadata`), not Evident's own records.
fn erasable(row: &EntryRow, metadata: bool) -> Result<(), String> {
    let kind = row.kind.as_str();
    if own_record(row) {
        return Err(format!(
            "entry {} is Evident's own {kind} record; it holds no personal data and other proofs rest on it",
            row.index
        ));
    }
    if (is_removal(kind) || !row.has_blob) && !metadata {
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
        let metadata = reader.meta_record(i)?.is_some();
        erasable(&row, metadata).map_err(ErasureError::Refused)?;
        let digest = parse_hex32(&row.sha256).unwrap_or([0; 32]);
        let mut copies: Vec<EntryRow> = Vec::new();
        // Copies share the content; an entry without content in the store shares nothing.
        let holders = if row.has_blob {
            reader.entries_where(None, Some(&digest), size)?
        } else {
            Vec::new()
        };
        for c in holders {
            if own_record(&c) {
                return Err(ErasureError::Refused(format!(
                    "entry {i}'s content is also the content of entry {}, Evident's own {} record, which other proofs rest on; it cannot be erased",
                    c.index, c.kind
                )));
            }
            // A copy already recorded as erased goes with the shared blob anyway.
            if c.index != i
                && c.has_blob
                && erasable(&c, false).is_ok()
                && !entries.contains(&c.index)
                && of(reader, blobs, c.index)?.is_none()
            {
                copies.push(c);
            }
        }
        // A v2 entry's other versions hold the same title and URI in their own records.
        if metadata {
            for v in reader.entries_with_uri(&row.uri)? {
                if v.index != i
                    && !entries.contains(&v.index)
                    && !copies.iter().any(|c| c.index == v.index)
                    && reader.meta_record(v.index)?.is_some()
                {
                    copies.push(v);
                }
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
                    "entry {i}'s content or URI is also held by entries {}: content is stored once, and other versions of a document keep its title and URI; add --with-copies to erase them all",
                    list.join(", ")
                )));
            }
            rows.extend(copies);
        }
        for row in rows {
            let index = row.index;
            let mut t = Target::new(reader, row, reason)?;
            if let Some(e) = of(reader, blobs, index)? {
                let digest = parse_hex32(&t.sha256).unwrap_or([0; 32]);
                t.content = t.content
                    && blobs.contains(&digest).map_err(|e| ErasureError::Remove {
                        entry: index,
                        sha256: t.sha256.clone(),
                        error: e,
                    })?;
                if !t.content && !t.metadata {
                    if entries.contains(&index) {
                        return Err(ErasureError::Refused(format!(
                            "entry {index} was already {}",
                            e.describe()
                        )));
                    }
                    continue;
                }
                t.finish_only = true;
            }
            out.insert(index, t);
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
        if erasable(&row, false).is_err() || erased.contains_key(&row.index) {
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
            due.insert(row.index, Target::new(reader, row, &rule.reason)?);
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

/// What the log records as erased but the stores hold again (an older backup or bucket
/// restored): each as a target that only removes, recording nothing new.
pub fn replay(reader: &Reader, blobs: &BlobStore) -> Result<Vec<Target>, ErasureError> {
    let erasures = crate::ledger::erasures::all(reader, blobs, reader.size()?)?;
    let mut out = Vec::new();
    for e in erasures.values() {
        let (Some(row), Some(record)) = (reader.entry(e.entry)?, &e.record) else {
            continue;
        };
        let mut t = Target::new(reader, row, &record.reason)?;
        let digest = parse_hex32(&t.sha256).unwrap_or([0; 32]);
        // The bytes may be another entry's again (recorded after the erasure): they stay
        // while any holder's content was not erased.
        let shared = reader
            .entries_where(None, Some(&digest), reader.size()?)?
            .iter()
            .any(|c| {
                c.has_blob
                    && !erasures
                        .get(&c.index)
                        .is_some_and(|e| e.lists(CONTENT_ERASED))
            });
        t.content = t.content
            && e.lists(CONTENT_ERASED)
            && !shared
            && blobs
                .contains(&digest)
                .map_err(|error| ErasureError::Remove {
                    entry: t.index,
                    sha256: t.sha256.clone(),
                    error,
                })?;
        t.metadata = t.metadata && e.lists(META_ERASED);
        t.finish_only = true;
        if t.content || t.metadata {
            out.push(t);
        }
    }
    Ok(out)
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
    /// Whether its metadata record, title and URI were erased (a v2 leaf's).
    pub metadata: bool,
    /// False when another process's read kept the database's write-ahead log from being
    /// reset: the old text stays in it until that reader ends (`Writer::erase_meta`).
    pub log_truncated: bool,
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
            what: [(t.content, CONTENT_ERASED), (t.metadata, META_ERASED)]
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, w)| w.to_owned())
                .collect(),
        };
        let mut bytes = serde_json::to_vec(&record).unwrap_or_default();
        bytes.push(b'\n');
        let mut o = evident_collectors::Observation::new(
            entry_uri(t.index),
            ERASURE_KIND,
            evident_collectors::Content::Bytes(bytes),
        );
        o.title = Some(format!(
            "Erasure of the {} of entry {}",
            match (t.content, t.metadata) {
                (true, true) => "content and metadata",
                (false, true) => "metadata",
                _ => "content",
            },
            t.index
        ));
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
        let removed = t.content
            && ledger
                .blobs
                .remove(&digest)
                .map_err(|error| ErasureError::Remove {
                    entry: t.index,
                    sha256: t.sha256.clone(),
                    error,
                })?;
        let (metadata, log_truncated) = if t.metadata {
            ledger.writer.erase_meta(t.index)?
        } else {
            (false, true)
        };
        done.push(Erased {
            index: t.index,
            by_entry,
            removed,
            metadata,
            log_truncated,
        });
    }
    Ok(done)
}
