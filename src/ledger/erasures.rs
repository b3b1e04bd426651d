//! Erasures recorded in the log (issue 17, `docs/erasure.md`): which entries' content was
//! erased, when, by whom and why. An erasure entry has kind `erasure`, source `evident`,
//! URI `evident://erasure/<entry>` and a [`Record`] as content; whether entry N is erased
//! is one lookup of that URI in the artefacts index, and every erasure is a scan of the few
//! entries of that kind. The top-level `erasure` module does the erasing.

use std::collections::BTreeMap;
use std::io::Read as _;

use serde::{Deserialize, Serialize};

use super::LedgerError;
use super::blobs::BlobStore;
use super::leaf::parse_hex32;
use super::reader::{EntryRow, Reader};

/// The source of the entries Evident records about its own work (populations, samples,
/// erasures).
pub const EVIDENT_SOURCE: &str = "evident";

/// The kind of an erasure entry.
pub const ERASURE_KIND: &str = "erasure";

/// What an erasure record's `what` lists: the content…
pub const CONTENT_ERASED: &str = "content";
/// …and, for a v2 leaf, its metadata record (title, URI, submitter).
pub const META_ERASED: &str = "metadata";

/// The URI of the erasure entry of entry `index`.
pub fn entry_uri(index: u64) -> String {
    format!("evident://erasure/{index}")
}

/// The entry an erasure entry's URI names.
pub fn erased_index(uri: &str) -> Option<u64> {
    super::note::canonical_u64(uri.strip_prefix("evident://erasure/")?)
}

/// What an erasure entry's content says. Keys in canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// When (RFC 3339 UTC).
    pub at: String,
    /// Who: the operating-system user, or the API token's name.
    pub by: String,
    /// The erased entry's index.
    pub entry: String,
    /// The erased entry's leaf hash (hex).
    pub leaf: String,
    /// Why (free text: name the request, not the person).
    pub reason: String,
    /// The erased content's SHA-256 (hex).
    pub sha256: String,
    /// What was erased: [`CONTENT_ERASED`], and [`META_ERASED`] for a v2 leaf.
    pub what: Vec<String>,
}

/// A recorded erasure.
#[derive(Debug, Clone, Serialize)]
pub struct Erasure {
    /// The erased entry.
    pub entry: u64,
    /// The erasure entry.
    pub by_entry: u64,
    /// When it was recorded.
    pub at: String,
    /// The erased content's digest.
    pub sha256: String,
    /// Its record, when the store still has it.
    pub record: Option<Record>,
}

impl Erasure {
    /// Whether its record lists `what` ([`CONTENT_ERASED`], [`META_ERASED`]).
    pub fn lists(&self, what: &str) -> bool {
        self.record
            .as_ref()
            .is_some_and(|r| r.what.iter().any(|w| w == what))
    }

    /// "erased on D by entry E: REASON".
    pub fn describe(&self) -> String {
        let day: String = self.at.chars().take(10).collect();
        match &self.record {
            Some(r) => format!("erased on {day} by entry {}: {}", self.by_entry, r.reason),
            None => format!("erased on {day} by entry {}", self.by_entry),
        }
    }
}

fn read_record(blobs: &BlobStore, sha256: &str) -> Option<Record> {
    let f = blobs.open(&parse_hex32(sha256)?).ok()??;
    let mut buf = Vec::new();
    f.take(1 << 20).read_to_end(&mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}

/// The erasure an erasure entry's row records, when it names an earlier entry.
fn from_row(
    reader: &Reader,
    blobs: &BlobStore,
    row: &EntryRow,
) -> Result<Option<Erasure>, LedgerError> {
    let Some(entry) = erased_index(&row.uri).filter(|e| *e < row.index) else {
        return Ok(None);
    };
    let Some(erased) = reader.entry(entry)? else {
        return Ok(None);
    };
    // The record must name this entry and its digest; a record gone with its store (or
    // never written by `evident erase`) proves nothing.
    let record = read_record(blobs, &row.sha256)
        .filter(|r| r.entry == entry.to_string() && r.sha256 == erased.sha256);
    if record.is_none() {
        return Ok(None);
    }
    Ok(Some(Erasure {
        entry,
        by_entry: row.index,
        at: row.collected_at.clone(),
        sha256: erased.sha256,
        record,
    }))
}

/// Every erasure recorded in the first `below` entries, by erased entry (the first
/// erasure of an entry counts).
pub fn all(
    reader: &Reader,
    blobs: &BlobStore,
    below: u64,
) -> Result<BTreeMap<u64, Erasure>, LedgerError> {
    let mut out = BTreeMap::new();
    for row in reader.entries_where(Some(ERASURE_KIND), None, below)? {
        if row.source != EVIDENT_SOURCE {
            continue;
        }
        if let Some(e) = from_row(reader, blobs, &row)? {
            out.entry(e.entry).or_insert(e);
        }
    }
    Ok(out)
}

/// The erasure of entry `index`, when one is recorded.
pub fn of(reader: &Reader, blobs: &BlobStore, index: u64) -> Result<Option<Erasure>, LedgerError> {
    let Some((by, _, source)) = reader.current_version(&entry_uri(index))? else {
        return Ok(None);
    };
    if source != EVIDENT_SOURCE {
        return Ok(None);
    }
    match reader.entry(by)? {
        Some(row) => from_row(reader, blobs, &row),
        None => Ok(None),
    }
}
