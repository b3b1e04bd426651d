//! Verification of the live ledger: recompute everything, trust nothing stored.
//!
//! One pass over the entries recomputes every leaf hash and the whole stored tree (the same
//! append that the writer performs, compared hash by hash against `tree_hashes`), checks each
//! derived column against the leaf it came from, compares the recomputed root with every
//! signed checkpoint, and re-hashes every blob. Problems name the entry and what differs.

use std::collections::HashSet;

use serde::Serialize;

use crate::ledger::LedgerError;
use crate::ledger::blobs::BlobStore;
use crate::ledger::evidence::{counts_as_evidence, evidence_date};
use crate::ledger::leaf::{EntryStatement, hex, parse_hex32};
use crate::ledger::merkle::{Frontier, Hash, leaf_hash, stored_hash_count};
use crate::ledger::note::{Checkpoint, NoteVerifier, encode_hash};
use crate::ledger::reader::{EntryRow, RawEntry, Reader};

/// Problems beyond this many of one kind are counted, not listed.
const MAX_LISTED: usize = 50;

/// The checks `verify` makes, in the order it reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Entry indexes are dense and in order.
    Entries,
    /// Leaf hashes and every stored tree node match the recomputed tree.
    Tree,
    /// Columns derived from each leaf agree with it.
    Columns,
    /// Checkpoint signatures, and their roots against the recomputed tree.
    Checkpoints,
    /// Blob contents against their digests.
    Blobs,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 5] = [
        Check::Entries,
        Check::Tree,
        Check::Columns,
        Check::Checkpoints,
        Check::Blobs,
    ];

    /// The label in the summary.
    pub fn label(self) -> &'static str {
        match self {
            Check::Entries => "entries",
            Check::Tree => "tree",
            Check::Columns => "columns",
            Check::Checkpoints => "checkpoints",
            Check::Blobs => "blobs",
        }
    }
}

/// One thing that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Which check found it.
    pub check: Check,
    /// The entry concerned, when there is one.
    pub index: Option<u64>,
    /// What differs.
    pub what: String,
}

/// The outcome of a verification.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// Distinct blobs re-hashed.
    pub blobs: u64,
    /// RFC 3161 timestamps whose token verified against its checkpoint.
    pub timestamps: u64,
    /// Everything found wrong (at most 50 listed; see `unlisted`).
    pub problems: Vec<Problem>,
    /// Problems found but not listed.
    pub unlisted: u64,
    /// Problems per check (listed or not).
    #[serde(skip)]
    counts: [u64; 5],
    /// The newest checkpoint, when it verified.
    pub checkpoint: Option<CheckpointRef>,
}

/// A checkpoint in a report: `{"size": 14, "root": "<base64>"}` (an object, not a tuple,
/// so scripts read it by name; see docs/json.md).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckpointRef {
    /// Tree size.
    pub size: u64,
    /// Root hash, base64.
    pub root: String,
}

impl Report {
    fn problem(&mut self, check: Check, index: Option<u64>, what: impl Into<String>) {
        self.counts[check as usize] += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(Problem {
                check,
                index,
                what: what.into(),
            });
        } else {
            self.unlisted += 1;
        }
    }

    /// How many problems `check` found.
    pub fn count(&self, check: Check) -> u64 {
        self.counts[check as usize]
    }

    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// An order-independent digest of derived-index rows: their count and the XOR of each
/// row's SHA-256, so the table is compared with the entries in one pass over each.
#[derive(Debug, Default, PartialEq, Eq)]
struct EvidenceDigest {
    rows: u64,
    xor: Hash,
}

impl EvidenceDigest {
    fn add(&mut self, control: &str, date: &str, idx: u64, basis: &str, collected: &str) {
        use sha2::{Digest, Sha256};
        self.fold(
            Sha256::new()
                .chain_update(control)
                .chain_update([0])
                .chain_update(date)
                .chain_update([0])
                .chain_update(idx.to_be_bytes())
                .chain_update(basis)
                .chain_update([0])
                .chain_update(collected)
                .finalize()
                .into(),
        );
    }

    fn add_superseded(&mut self, idx: u64, by: u64, removal: bool) {
        use sha2::{Digest, Sha256};
        self.fold(
            Sha256::new()
                .chain_update(idx.to_be_bytes())
                .chain_update(by.to_be_bytes())
                .chain_update([u8::from(removal)])
                .finalize()
                .into(),
        );
    }

    fn fold(&mut self, h: Hash) {
        for (x, b) in self.xor.iter_mut().zip(h) {
            *x ^= b;
        }
        self.rows += 1;
    }
}

/// Every version of every URI, to recompute which entries were superseded without sorting
/// the URIs themselves: (URI hash, index << 1 | removal) pairs, 16 bytes an entry, sorted
/// once at the end. The hash is keyed per process, so URIs cannot be chosen to collide.
#[derive(Default)]
struct Versions {
    hasher: std::hash::RandomState,
    pairs: Vec<(u64, u64)>,
}

impl Versions {
    fn add(&mut self, row: &EntryRow) {
        use std::hash::BuildHasher;
        if row.kind != "collector_run" {
            let removal = row.kind.ends_with("_removed");
            self.pairs.push((
                self.hasher.hash_one(&row.uri),
                row.index << 1 | u64::from(removal),
            ));
        }
    }

    /// The `superseded` rows the entries imply: each version that is not itself a removal is
    /// superseded by the next entry for its URI (see `evidence::SUPERSEDED_SQL`).
    fn superseded(mut self) -> EvidenceDigest {
        self.pairs.sort_unstable();
        let mut d = EvidenceDigest::default();
        for w in self.pairs.windows(2) {
            let ((h1, a), (h2, b)) = (w[0], w[1]);
            if h1 == h2 && a & 1 == 0 {
                d.add_superseded(a >> 1, b >> 1, b & 1 == 1);
            }
        }
        d
    }
}

/// Verifies the whole ledger read through `reader` against `verifier`'s signatures.
/// `external` are checkpoints held elsewhere (an auditor's copy) that must also match.
pub fn verify_ledger(
    reader: &Reader,
    blobs: &BlobStore,
    verifier: &NoteVerifier,
    external: &[String],
    progress: bool,
) -> Result<Report, LedgerError> {
    reader.snapshot(|reader| verify_snapshot(reader, blobs, verifier, external, progress))
}

fn verify_snapshot(
    reader: &Reader,
    blobs: &BlobStore,
    verifier: &NoteVerifier,
    external: &[String],
    progress: bool,
) -> Result<Report, LedgerError> {
    let mut report = Report::default();
    // Checkpoints: signature first, then the roots they promise, by size.
    let mut promises: Vec<(u64, Hash, String)> = Vec::new();
    for (size, note) in reader.checkpoints()? {
        match Checkpoint::open(&note, verifier) {
            Ok(cp) if cp.size == size => {
                promises.push((size, cp.root, format!("checkpoint of size {size}")))
            }
            Ok(cp) => report.problem(
                Check::Checkpoints,
                None,
                format!(
                    "checkpoint row {size} holds a checkpoint of size {}",
                    cp.size
                ),
            ),
            Err(e) => report.problem(
                Check::Checkpoints,
                None,
                format!("checkpoint of size {size}: {e}"),
            ),
        }
    }
    for (i, note) in external.iter().enumerate() {
        match Checkpoint::open(note, verifier) {
            Ok(cp) => promises.push((
                cp.size,
                cp.root,
                format!("external checkpoint {} (size {})", i + 1, cp.size),
            )),
            Err(e) => report.problem(
                Check::Checkpoints,
                None,
                format!("external checkpoint {}: {e}", i + 1),
            ),
        }
    }
    promises.sort_by_key(|p| p.0);
    report.checkpoints = promises.len() as u64;

    // Stored timestamps must still be over the checkpoint they were issued for.
    let notes: std::collections::HashMap<u64, String> = reader.checkpoints()?.into_iter().collect();
    for (size, token) in reader.timestamps()? {
        let verdict = match notes.get(&size) {
            Some(note) => crate::anchor::tsp::verify(&token, note.as_bytes(), None, None)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("there is no checkpoint of that size".to_owned()),
        };
        match verdict {
            Ok(()) => report.timestamps += 1,
            Err(e) => report.problem(
                Check::Checkpoints,
                None,
                format!("RFC 3161 timestamp of checkpoint {size}: {e}"),
            ),
        }
    }

    // Recompute the stored tree and compare it with `tree_hashes`, in one merged pass.
    let total = reader.size()?;
    let bar = crate::progress::bar(
        total,
        "verifying [{bar:30}] {pos}/{len} entries eta {eta}",
        progress && total > 10_000,
    );

    let mut frontier = Frontier::default();
    let mut expected_hashes: Vec<(u64, Hash, Option<u64>)> = Vec::new(); // (sidx, hash, leaf idx)
    let mut next_promise = 0usize;
    // Checkpoints of the empty tree (signed before anything was recorded) promise the empty
    // root; the loop below only meets sizes of at least one entry.
    while next_promise < promises.len() && promises[next_promise].0 == 0 {
        let (_, root, what) = &promises[next_promise];
        if *root != crate::ledger::merkle::empty_root() {
            report.problem(
                Check::Checkpoints,
                None,
                format!("{what}: root of the empty tree is wrong"),
            );
        }
        next_promise += 1;
    }
    let mut gap_seen = false;
    let mut evidence = EvidenceDigest::default();
    let mut versions = Versions::default();
    let mut blob_digests: Vec<(u64, Hash)> = Vec::new();
    let mut hash_cursor = HashCursor {
        reader,
        page: Vec::new().into_iter(),
        next: 0,
    };
    reader.for_each_entry(|e: RawEntry| {
        let position = frontier.size();
        let idx = e.row.index;
        if idx != position && !gap_seen {
            gap_seen = true;
            if idx > position {
                report.problem(Check::Entries, Some(position), format!(
                    "entries {position}..{} are missing (deleted rows); later entries cannot sit at their indexes",
                    idx - 1
                ));
            } else {
                report.problem(Check::Entries, Some(idx), "entry index out of order".to_owned());
            }
        }
        check_row(&e, &mut report);
        versions.add(&e.row);
        if counts_as_evidence(&e.row.kind) {
            let (date, basis) = evidence_date(
                e.row.effective_date.as_deref(),
                e.row.source_updated_at.as_deref(),
                &e.row.collected_at,
            );
            for c in &e.row.controls {
                evidence.add(c, &date, idx, basis.as_str(), &e.row.collected_at);
            }
        }
        let lh = leaf_hash(&e.leaf);
        let base = crate::ledger::merkle::stored_hash_index(0, position);
        for (i, h) in frontier.append(lh).into_iter().enumerate() {
            expected_hashes.push((base + i as u64, h, (i == 0).then_some(idx)));
        }
        if !gap_seen {
            for (sidx, h, leaf) in expected_hashes.drain(..) {
                match hash_cursor.next_for(sidx)? {
                    Some(stored) if stored == h => {}
                    Some(_) => match leaf {
                        Some(i) => report.problem(Check::Tree, Some(i), "leaf bytes do not match the stored tree (the entry was altered or moved)"),
                        None => report.problem(Check::Tree, None, format!("stored tree hash {sidx} differs from the recomputed tree")),
                    },
                    None => report.problem(Check::Tree, leaf, format!("stored tree hash {sidx} is missing")),
                }
            }
        } else {
            expected_hashes.clear();
        }
        while next_promise < promises.len() && promises[next_promise].0 == frontier.size() {
            let (size, root, what) = &promises[next_promise];
            if &frontier.root() != root {
                report.problem(Check::Checkpoints, None, format!(
                    "{what}: its root {} differs from the recomputed root {} (entries below {size} were altered, removed or reordered)",
                    encode_hash(root),
                    encode_hash(&frontier.root())
                ));
            }
            next_promise += 1;
        }
        if e.row.has_blob
            && let Some(d) = parse_hex32(&e.row.sha256)
        {
            blob_digests.push((idx, d));
        }
        report.entries += 1;
        bar.inc(1);
        Ok(())
    })?;
    // Checkpoints of size 0 promise the empty root; larger ones beyond the data are broken.
    while next_promise < promises.len() {
        let (size, root, what) = &promises[next_promise];
        if *size == frontier.size() {
            if &frontier.root() != root {
                report.problem(
                    Check::Checkpoints,
                    None,
                    format!("{what}: root differs from the recomputed root"),
                );
            }
        } else {
            report.problem(Check::Checkpoints, None, format!(
                "{what} covers {size} entries but the ledger holds {} (entries were deleted or truncated)",
                frontier.size()
            ));
        }
        next_promise += 1;
    }
    let stored_count = reader.tree_hash_count()?;
    if !gap_seen && stored_count != stored_hash_count(frontier.size()) {
        report.problem(
            Check::Tree,
            None,
            format!(
                "tree_hashes holds {stored_count} hashes; a tree of {} entries has {}",
                frontier.size(),
                stored_hash_count(frontier.size())
            ),
        );
    }
    bar.finish_and_clear();

    // The evidence index behind `coverage` must be exactly what the entries imply.
    let mut stored = EvidenceDigest::default();
    reader.for_each_evidence(|control, date, idx, basis, collected| {
        stored.add(control, date, idx, basis, collected)
    })?;
    if stored != evidence {
        report.problem(
            Check::Columns,
            None,
            format!(
                "the evidence index behind `coverage` differs from the entries ({} rows expected, \
                 {} stored): coverage and the SoA may be wrong, the entries themselves are not",
                evidence.rows, stored.rows
            ),
        );
    }

    // So must the record of superseded versions behind "current evidence only".
    let mut stored = EvidenceDigest::default();
    reader.for_each_superseded(|idx, by, removal| stored.add_superseded(idx, by, removal))?;
    let implied = versions.superseded();
    let wrong_time = reader.superseded_at_mismatches()?;
    if stored != implied || wrong_time > 0 {
        report.problem(
            Check::Columns,
            None,
            format!(
                "the record of superseded and removed versions differs from the entries ({} rows \
                 expected, {} stored, {wrong_time} with the wrong time): coverage may count the \
                 wrong versions, the entries themselves are not affected",
                implied.rows, stored.rows
            ),
        );
    }

    // Blobs: each distinct digest once.
    let mut seen: HashSet<Hash> = HashSet::new();
    for (idx, digest) in blob_digests {
        if !seen.insert(digest) {
            continue;
        }
        report.blobs += 1;
        match blobs.rehash(&digest) {
            Ok(Some(h)) if h == digest => {}
            Ok(Some(h)) => report.problem(
                Check::Blobs,
                Some(idx),
                format!(
                    "blob {} has been altered: its content hashes to {}",
                    hex(&digest),
                    hex(&h)
                ),
            ),
            Ok(None) => report.problem(
                Check::Blobs,
                Some(idx),
                format!("blob {} is missing from the blob store", hex(&digest)),
            ),
            Err(e) => report.problem(
                Check::Blobs,
                Some(idx),
                format!("blob {} cannot be read: {e}", hex(&digest)),
            ),
        }
    }
    if report.ok()
        && let Some((size, root, _)) = promises.iter().rev().find(|p| p.0 <= frontier.size())
    {
        report.checkpoint = Some(CheckpointRef {
            size: *size,
            root: encode_hash(root),
        });
    }
    Ok(report)
}

/// Compares the columns derived from a leaf with the leaf itself.
fn check_row(e: &RawEntry, report: &mut Report) {
    let idx = e.row.index;
    let st = match EntryStatement::from_leaf(&e.leaf) {
        Ok(st) => st,
        Err(err) => {
            report.problem(
                Check::Columns,
                Some(idx),
                format!("leaf is not a valid evidence statement: {err}"),
            );
            return;
        }
    };
    let p = &st.predicate;
    let subject = st.subject();
    let uri = p.uri.as_deref().unwrap_or(&subject.name);
    let mut diff = |col: &str, stored: &str, leaf: &str| {
        if stored != leaf {
            report.problem(
                Check::Columns,
                Some(idx),
                format!("column {col} says {stored:?} but the leaf says {leaf:?}"),
            );
        }
    };
    diff("kind", &e.row.kind, &p.kind);
    diff("source", &e.row.source, &p.source);
    diff("uri", &e.row.uri, uri);
    diff("sha256", &hex(&e.sha256), &subject.digest.sha256);
    diff("collected_at", &e.row.collected_at, &p.collected_at);
    diff("controls", &e.row.controls.join(","), &p.controls.join(","));
    diff(
        "title",
        e.row.title.as_deref().unwrap_or(""),
        p.title.as_deref().unwrap_or(""),
    );
    diff(
        "effective_date",
        e.row.effective_date.as_deref().unwrap_or(""),
        p.effective_date.as_deref().unwrap_or(""),
    );
}

/// Walks `tree_hashes` in index order alongside the recomputation, a page at a time so
/// memory stays flat however large the ledger.
struct HashCursor<'r> {
    reader: &'r Reader,
    page: std::vec::IntoIter<(u64, Hash)>,
    next: u64,
}

impl HashCursor<'_> {
    const PAGE: u64 = 16_384;

    /// The stored hash at `sidx`; `None` when that index is absent.
    fn next_for(&mut self, sidx: u64) -> Result<Option<Hash>, LedgerError> {
        if self.page.len() == 0 {
            self.page = self
                .reader
                .tree_hashes_from(self.next, Self::PAGE)?
                .into_iter();
        }
        match self.page.next() {
            Some((s, h)) => {
                self.next = s + 1;
                Ok((s == sidx).then_some(h))
            }
            None => Ok(None),
        }
    }
}
