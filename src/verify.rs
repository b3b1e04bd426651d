//! Verification of the live ledger: recompute everything, trust nothing stored.
//!
//! One pass over the entries recomputes every leaf hash and the whole stored tree (the same
//! append that the writer performs, compared hash by hash against `tree_hashes`), checks each
//! derived column against the leaf it came from, compares the recomputed root with every
//! signed checkpoint, and re-hashes every blob. Problems name the entry and what differs.

use std::collections::HashSet;
use std::hash::{Hash as _, Hasher as _};

use serde::Serialize;

use crate::findings::{Checks, Finding, Findings};
use crate::ledger::LedgerError;
use crate::ledger::blobs::BlobStore;
use crate::ledger::erasures::{CONTENT_ERASED, META_ERASED};
use crate::ledger::evidence::{counts_as_evidence, evidence_date};
use crate::ledger::leaf::{LeafStr, LeafView, hex, parse_hex32};
use crate::ledger::merkle::{Frontier, Hash, leaf_hash, stored_hash_count};
use crate::ledger::meta::{ArtefactKey, MetaRecord};
use crate::ledger::note::{Checkpoint, NoteVerifier, encode_hash};
use crate::ledger::reader::{EntryRef, Reader};

/// The checks `verify` makes, in the order it reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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

impl Checks for Check {
    const ALL: &'static [Check] = &[
        Check::Entries,
        Check::Tree,
        Check::Columns,
        Check::Checkpoints,
        Check::Blobs,
    ];

    fn label(self) -> &'static str {
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
pub type Problem = Finding<Check>;

/// The outcome of a verification.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// Distinct blobs re-hashed.
    pub blobs: u64,
    /// Blobs absent because a signed erasure entry erased them (`evident erase`).
    pub erased: u64,
    /// Every erasure the log records: which entry, by which erasure entry, when and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub erasures: Vec<crate::ledger::erasures::Erasure>,
    /// RFC 3161 timestamps whose token verified against its checkpoint.
    pub timestamps: u64,
    /// Everything found wrong (`problems`, `unlisted`).
    #[serde(flatten)]
    pub findings: Findings<Check>,
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
        self.findings.add(check, index, what);
    }

    /// How many problems `check` found.
    pub fn count(&self, check: Check) -> u64 {
        self.findings.count(check)
    }

    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.findings.ok()
    }

    /// Adds the entries another pass checked and the problems it found.
    fn merge(&mut self, other: Report) {
        self.entries += other.entries;
        self.findings.merge(other.findings);
    }
}

/// An order-independent digest of derived-index rows: their count and two sums of keyed
/// 64-bit hashes (SipHash under per-process random keys, so rows cannot be chosen to cancel
/// or collide), so the table is compared with the entries in one pass over each.
#[derive(Debug, Default, PartialEq, Eq)]
struct EvidenceDigest {
    rows: u64,
    sum: [u64; 2],
}

/// The two keys every digest of one process uses.
fn digest_keys() -> &'static [std::hash::RandomState; 2] {
    static KEYS: std::sync::OnceLock<[std::hash::RandomState; 2]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| [std::hash::RandomState::new(), std::hash::RandomState::new()])
}

impl EvidenceDigest {
    fn add(&mut self, control: &str, date: &str, idx: u64, basis: &str, collected: &str) {
        self.fold(|h| (control, date, idx, basis, collected).hash(h));
    }

    fn add_superseded(&mut self, idx: u64, by: u64, removal: bool) {
        self.fold(|h| (idx, by, removal).hash(h));
    }

    fn fold(&mut self, row: impl Fn(&mut std::hash::DefaultHasher)) {
        use std::hash::BuildHasher;
        for (sum, key) in self.sum.iter_mut().zip(digest_keys()) {
            let mut h = key.build_hasher();
            row(&mut h);
            *sum = sum.wrapping_add(h.finish());
        }
        self.rows += 1;
    }
}

/// Every version of every URI, to recompute which entries were superseded without sorting
/// the URIs themselves: (URI hash, index << 1 | removal) pairs, 16 bytes an entry, sorted
/// once at the end. The hash is keyed per process, so URIs cannot be chosen to collide.
/// In a ledger that writes v2 leaves, versions group by artefact (the HMAC of the URI
/// column, which for an erased entry names the artefact itself), so an erased version stays
/// in its artefact's history.
#[derive(Default)]
struct Versions {
    hasher: std::hash::RandomState,
    pairs: Vec<(u64, u64)>,
    key: Option<ArtefactKey>,
}

impl Versions {
    fn add(&mut self, index: u64, kind: &str, uri: &str) {
        use std::hash::BuildHasher;
        if !crate::ledger::evidence::is_run(kind) {
            let removal = crate::ledger::evidence::is_removal(kind);
            let group = match &self.key {
                Some(k) => self.hasher.hash_one(k.of(uri)),
                None => self.hasher.hash_one(uri),
            };
            self.pairs.push((group, index << 1 | u64::from(removal)));
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
    let promises = signed_checkpoints(&mut report, reader, verifier, external)?;
    check_timestamps(&mut report, reader)?;

    // Recompute the stored tree and compare it with `tree_hashes`, in one merged pass.
    let total = reader.size()?;
    let bar = crate::progress::bar(
        total,
        "verifying [{bar:30}] {pos}/{len} entries eta {eta}",
        progress && total > 10_000,
    );

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
    // Two passes over the entries at once, each on its own connection and core. Here, each
    // leaf against its columns (the row pass, which parses every leaf); on a second thread,
    // the tree (leaf hashes, every stored node, checkpoint roots) and the derived indexes
    // recomputed from the columns the row pass checks, against the stored ones. Both stop at
    // `total`, the size of this snapshot; rows below it never change (append-only), so the
    // second connection's later snapshot holds the same ones. The two take about as long
    // (1M entries: ~2.1 s each, docs/performance.md).
    let tree_reader = reader.reopen()?;
    let key = reader.artefact_key()?;
    let (tree, derived, (blob_digests, meta_erased)) = std::thread::scope(|scope| {
        let promises = &promises;
        let key = &key;
        let tree = scope.spawn(move || {
            tree_reader.snapshot(|r| {
                let mut tree = TreeCheck::new(r, promises, next_promise);
                let mut derived = Derived::default();
                derived.versions.key = key.clone();
                r.for_each_entry_ref(total, |row| {
                    derived.row(&row);
                    tree.leaf(row.index, leaf_hash(row.leaf))
                })?;
                derived.orphans = r.for_each_evidence(total, |control, date, idx, basis, at| {
                    derived.stored_evidence.add(control, date, idx, basis, at)
                })?;
                r.for_each_superseded(total, |idx, by, removal| {
                    derived.stored_superseded.add_superseded(idx, by, removal)
                })?;
                Ok::<_, LedgerError>((tree.finish(), derived))
            })
        });
        let rows = (|| {
            let mut rows = RowCheck {
                key: key.clone(),
                ..RowCheck::default()
            };
            reader.for_each_entry_ref(total, |e| {
                rows.entry(&e, &mut report);
                bar.inc(1);
                Ok(())
            })?;
            rows.end(total, &mut report);
            Ok::<_, LedgerError>((rows.blob_digests, rows.meta_erased))
        })();
        let tree = tree
            .join()
            .map_err(|_| LedgerError::Corrupt("the tree check panicked".into()))?;
        let (tree, derived) = tree?;
        Ok::<_, LedgerError>((tree, derived, rows?))
    })?;
    report.merge(tree.report);
    let TreeDone {
        frontier,
        next_promise,
        gap_seen,
        ..
    } = tree;
    let Derived {
        evidence,
        versions,
        stored_evidence,
        stored_superseded,
        orphans,
    } = derived;
    check_promises(&mut report, &promises[next_promise..], &frontier);
    check_stored_count(&mut report, reader, &frontier, gap_seen)?;
    bar.finish_and_clear();

    check_indexes(
        &mut report,
        reader,
        evidence,
        versions,
        stored_evidence,
        stored_superseded,
        orphans,
    )?;
    // Content erased by a signed erasure entry is absent by design, not missing.
    // Only erasures a signed checkpoint covers: `evident erase` signs one before removing.
    let signed = promises
        .iter()
        .map(|p| p.0)
        .filter(|s| *s <= frontier.size())
        .max()
        .unwrap_or(0);
    let erasures = crate::ledger::erasures::all(reader, blobs, signed)?;
    let erased = erased_content(&mut report, &erasures, &meta_erased);
    report.erasures = erasures.into_values().collect();
    check_blobs(&mut report, blobs, blob_digests, &erased);
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

/// The entries whose content a signed erasure erased (absent by design, not missing); and
/// each v2 entry whose metadata record is absent must have a signed erasure of it.
fn erased_content(
    report: &mut Report,
    erasures: &std::collections::BTreeMap<u64, crate::ledger::erasures::Erasure>,
    meta_erased: &[u64],
) -> HashSet<u64> {
    for &idx in meta_erased {
        if !erasures.get(&idx).is_some_and(|e| e.lists(META_ERASED)) {
            report.problem(
                Check::Columns,
                Some(idx),
                "its metadata record (title, URI) is missing, and no signed erasure records \
                 erasing it"
                    .to_owned(),
            );
        }
    }
    erasures
        .values()
        .filter(|e| e.lists(CONTENT_ERASED))
        .map(|e| e.entry)
        .collect()
}

/// Every stored and external checkpoint whose signature verifies: the roots they promise,
/// by size (a bad signature is a problem, and promises nothing).
fn signed_checkpoints(
    report: &mut Report,
    reader: &Reader,
    verifier: &NoteVerifier,
    external: &[String],
) -> Result<Vec<(u64, Hash, String)>, LedgerError> {
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
    Ok(promises)
}

/// Stored timestamps must still be over the checkpoint they were issued for.
fn check_timestamps(report: &mut Report, reader: &Reader) -> Result<(), LedgerError> {
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
    Ok(())
}

/// The checkpoints not met while walking the tree: one of exactly its size must have its
/// root (size 0 promises the empty root); a larger one covers entries that are gone.
fn check_promises(report: &mut Report, promises: &[(u64, Hash, String)], frontier: &Frontier) {
    for (size, root, what) in promises {
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
    }
}

/// `tree_hashes` must hold exactly the hashes a tree of this size stores (a gap already
/// reported makes the count meaningless).
fn check_stored_count(
    report: &mut Report,
    reader: &Reader,
    frontier: &Frontier,
    gap_seen: bool,
) -> Result<(), LedgerError> {
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
    Ok(())
}

/// The evidence index behind `coverage`, and the record of superseded versions behind
/// "current evidence only", must be exactly what the entries imply.
fn check_indexes(
    report: &mut Report,
    reader: &Reader,
    evidence: EvidenceDigest,
    versions: Versions,
    stored_evidence: EvidenceDigest,
    stored_superseded: EvidenceDigest,
    orphans: u64,
) -> Result<(), LedgerError> {
    if stored_evidence != evidence || orphans > 0 {
        report.problem(
            Check::Columns,
            None,
            format!(
                "the evidence index behind `coverage` differs from the entries ({} rows expected, \
                 {} stored, {orphans} for no entry): coverage and the SoA may be wrong, the \
                 entries themselves are not",
                evidence.rows, stored_evidence.rows
            ),
        );
    }

    // So must the record of superseded versions behind "current evidence only".
    let implied = versions.superseded();
    let wrong_time = reader.superseded_at_mismatches()?;
    if stored_superseded != implied || wrong_time > 0 {
        report.problem(
            Check::Columns,
            None,
            format!(
                "the record of superseded and removed versions differs from the entries ({} rows \
                 expected, {} stored, {wrong_time} with the wrong time): coverage may count the \
                 wrong versions, the entries themselves are not affected",
                implied.rows, stored_superseded.rows
            ),
        );
    }

    Ok(())
}

/// Re-hashes each distinct blob once.
fn check_blobs(
    report: &mut Report,
    blobs: &BlobStore,
    digests: Vec<(u64, Hash)>,
    erased: &HashSet<u64>,
) {
    // Each distinct digest once, named by a holder whose content was not erased if there is
    // one: a blob may be absent only when every entry holding it had its content erased.
    let mut at: std::collections::HashMap<Hash, usize> = std::collections::HashMap::new();
    let mut unique: Vec<(u64, Hash, bool)> = Vec::new();
    for (idx, d) in digests {
        let gone = erased.contains(&idx);
        match at.get(&d) {
            Some(&i) => {
                let u = &mut unique[i];
                if u.2 && !gone {
                    u.0 = idx;
                }
                u.2 &= gone;
            }
            None => {
                at.insert(d, unique.len());
                unique.push((idx, d, gone));
            }
        }
    }
    // In small groups, so a bucket is read several blobs at a time while only a few wait
    // on disk.
    for group in unique.chunks(2 * crate::ledger::blobs::UPLOADS_IN_FLIGHT) {
        let hashes: Vec<Hash> = group.iter().map(|(_, d, _)| *d).collect();
        for ((idx, digest, all_erased), got) in group.iter().zip(blobs.rehash_many(&hashes)) {
            report.blobs += 1;
            let (idx, digest) = (*idx, *digest);
            match got {
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
                Ok(None) if *all_erased => {
                    report.blobs -= 1;
                    report.erased += 1;
                }
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
    }
}

/// What a row's metadata is: a v1 leaf's own, a v2 leaf's record, or erased.
#[derive(Debug, PartialEq, Eq)]
enum Meta {
    InLeaf,
    Record,
    Erased,
}

/// Compares the columns derived from a leaf with the leaf itself (and, for a v2 leaf, with
/// the metadata record it commits to). Says whether a v2 leaf's record is gone.
fn check_row(e: &EntryRef<'_>, key: Option<&ArtefactKey>, report: &mut Report) -> Meta {
    let idx = e.index;
    let st = match LeafView::parse(e.leaf) {
        Ok(st) => st,
        Err(err) => {
            report.problem(
                Check::Columns,
                Some(idx),
                format!("leaf is not a valid evidence statement: {err}"),
            );
            return Meta::InLeaf;
        }
    };
    let record = match e.meta.map(|b| (MetaRecord::parse(b), b)) {
        Some((Ok(r), b)) => Some((r, b)),
        Some((Err(err), _)) => {
            report.problem(
                Check::Columns,
                Some(idx),
                format!("its metadata record is malformed: {err}"),
            );
            return Meta::Record;
        }
        None => None,
    };
    let meta = match (st.is_v2(), &record) {
        (false, None) => Meta::InLeaf,
        (false, Some(_)) => {
            report.problem(
                Check::Columns,
                Some(idx),
                "a metadata record sits beside a v1 leaf, which commits to none".to_owned(),
            );
            Meta::InLeaf
        }
        (true, Some(_)) => Meta::Record,
        (true, None) => Meta::Erased,
    };
    let (uri, title) = match crate::ledger::meta::shown(
        &st,
        record.as_ref().map(|(r, _)| r),
        record.as_ref().map(|(_, b)| *b),
    ) {
        Ok(shown) => shown,
        Err(err) => {
            report.problem(Check::Columns, Some(idx), err);
            return meta;
        }
    };
    if st.is_v2() {
        // The artefact must be this URI's under the ledger's key: else versions of other
        // URIs could be grouped as one (or one split in two).
        match (key, &record) {
            (None, _) => report.problem(
                Check::Columns,
                Some(idx),
                "a v2 leaf in a ledger without an artefact key".to_owned(),
            ),
            (Some(k), Some((r, _)))
                if Some(k.of(&r.uri).as_str())
                    != st.predicate.artefact.as_ref().map(LeafStr::as_str) =>
            {
                report.problem(
                    Check::Columns,
                    Some(idx),
                    "its leaf's artefact is not its URI's under this ledger's key".to_owned(),
                );
            }
            _ => {}
        }
    }
    let p = &st.predicate;
    let text = LeafStr::or_empty;
    let mut diff = |col: &str, stored: &str, leaf: &str| {
        if stored != leaf {
            report.problem(
                Check::Columns,
                Some(idx),
                format!("column {col} says {stored:?} but the leaf says {leaf:?}"),
            );
        }
    };
    diff("kind", e.kind, p.kind.as_str());
    diff("source", e.source, p.source.as_str());
    diff("uri", e.uri, &uri);
    let sha = st.subject_sha256.as_str();
    if parse_hex32(sha).as_ref().map(|h| &h[..]) != Some(e.sha256) {
        diff("sha256", &hex(e.sha256), sha);
    }
    diff("collected_at", e.collected_at, p.collected_at.as_str());
    let column = || e.controls.split(',').filter(|c| !c.is_empty());
    if !column().eq(p.controls.iter().map(LeafStr::as_str)) {
        let leaf: Vec<&str> = p.controls.iter().map(LeafStr::as_str).collect();
        diff(
            "controls",
            &column().collect::<Vec<_>>().join(","),
            &leaf.join(","),
        );
    }
    diff("title", e.title.unwrap_or(""), title.unwrap_or(""));
    diff(
        "effective_date",
        e.effective_date.unwrap_or(""),
        text(&p.effective_date),
    );
    // The evidence date comes from these columns too (the tree pass derives the index from
    // the columns this pass holds to the leaf).
    diff(
        "source_updated_at",
        e.source_updated_at.unwrap_or(""),
        text(&p.source_updated_at),
    );
    // Parsed as the writer parses it.
    let size = e.size.map(|s| s as u64);
    if p.size.as_ref().and_then(|s| s.as_str().parse::<u64>().ok()) != size {
        let stored = size.map(|s| s.to_string()).unwrap_or_default();
        diff("size", &stored, text(&p.size));
    }
    meta
}

/// The row pass: each entry's leaf against its columns, in order, and the blobs to re-hash.
#[derive(Default)]
struct RowCheck {
    position: u64,
    gap_seen: bool,
    blob_digests: Vec<(u64, Hash)>,
    /// The ledger's artefact key (v2 leaves).
    key: Option<ArtefactKey>,
    /// v2 entries whose metadata record is gone: each needs a signed erasure.
    meta_erased: Vec<u64>,
}

impl RowCheck {
    /// Reports the entries from where this pass stands up to `next` (exclusive) as missing.
    fn missing(&self, next: u64, report: &mut Report) {
        report.problem(
            Check::Entries,
            Some(self.position),
            format!(
                "entries {}..{} are missing (deleted rows); later entries cannot sit at their indexes",
                self.position,
                next - 1
            ),
        );
    }

    /// Reports entries missing at the end of the range (`end` exclusive).
    fn end(&self, end: u64, report: &mut Report) {
        if self.position < end && !self.gap_seen {
            self.missing(end, report);
        }
    }

    fn entry(&mut self, e: &EntryRef<'_>, report: &mut Report) {
        let idx = e.index;
        // Read back from SQLite's signed integer: no writer puts a row below 0.
        let signed = idx as i64;
        if signed < 0 {
            self.gap_seen = true;
            report.problem(
                Check::Entries,
                None,
                format!(
                    "a row sits at index {signed}: indexes start at 0, so it was put there by hand"
                ),
            );
            report.entries += 1;
            return;
        }
        if idx != self.position && !self.gap_seen {
            self.gap_seen = true;
            if idx > self.position {
                self.missing(idx, report);
            } else {
                report.problem(
                    Check::Entries,
                    Some(idx),
                    "entry index out of order".to_owned(),
                );
            }
        }
        self.position += 1;
        if check_row(e, self.key.as_ref(), report) == Meta::Erased {
            self.meta_erased.push(idx);
        }
        if e.has_blob
            && let Ok(d) = Hash::try_from(e.sha256)
        {
            self.blob_digests.push((idx, d));
        }
        report.entries += 1;
    }
}

/// The derived indexes as the entries' columns imply them (the row pass checks the columns
/// against the leaves) and as stored.
#[derive(Default)]
struct Derived {
    evidence: EvidenceDigest,
    versions: Versions,
    stored_evidence: EvidenceDigest,
    stored_superseded: EvidenceDigest,
    /// Stored evidence rows that name no entry.
    orphans: u64,
}

impl Derived {
    fn row(&mut self, row: &EntryRef<'_>) {
        self.versions.add(row.index, row.kind, row.uri);
        if counts_as_evidence(row.kind) {
            let (date, basis) =
                evidence_date(row.effective_date, row.source_updated_at, row.collected_at);
            for c in row.controls.split(',').filter(|c| !c.is_empty()) {
                self.evidence
                    .add(c, &date, row.index, basis.as_str(), row.collected_at);
            }
        }
    }
}

/// The tree pass: the tree recomputed leaf by leaf and compared, node by node, with
/// `tree_hashes` (read a page at a time alongside), and with every checkpoint's root as the
/// tree reaches its size.
struct TreeCheck<'r> {
    cursor: HashCursor<'r>,
    promises: &'r [(u64, Hash, String)],
    done: TreeDone,
    expected: Vec<(u64, Hash, Option<u64>)>, // (sidx, hash, leaf idx)
}

/// What the tree pass leaves for the checks after it.
struct TreeDone {
    frontier: Frontier,
    next_promise: usize,
    gap_seen: bool,
    report: Report,
}

impl<'r> TreeCheck<'r> {
    fn new(reader: &'r Reader, promises: &'r [(u64, Hash, String)], next_promise: usize) -> Self {
        TreeCheck {
            cursor: HashCursor {
                reader,
                page: Vec::new().into_iter(),
                next: 0,
            },
            promises,
            done: TreeDone {
                frontier: Frontier::default(),
                next_promise,
                gap_seen: false,
                report: Report::default(),
            },
            expected: Vec::new(),
        }
    }

    fn leaf(&mut self, idx: u64, lh: Hash) -> Result<(), LedgerError> {
        let d = &mut self.done;
        let position = d.frontier.size();
        // A gap or disorder is reported by the row pass; stored nodes no longer line up.
        d.gap_seen |= idx != position;
        let base = crate::ledger::merkle::stored_hash_index(0, position);
        for (i, h) in d.frontier.append(lh).into_iter().enumerate() {
            self.expected
                .push((base + i as u64, h, (i == 0).then_some(idx)));
        }
        if !d.gap_seen {
            for (sidx, h, leaf) in self.expected.drain(..) {
                match self.cursor.next_for(sidx)? {
                    Some(stored) if stored == h => {}
                    Some(_) => match leaf {
                        Some(i) => d.report.problem(Check::Tree, Some(i), "leaf bytes do not match the stored tree (the entry was altered or moved)"),
                        None => d.report.problem(Check::Tree, None, format!("stored tree hash {sidx} differs from the recomputed tree")),
                    },
                    None => d.report.problem(Check::Tree, leaf, format!("stored tree hash {sidx} is missing")),
                }
            }
        } else {
            self.expected.clear();
        }
        let promises = self.promises;
        while d.next_promise < promises.len() && promises[d.next_promise].0 == d.frontier.size() {
            let (size, root, what) = &promises[d.next_promise];
            if &d.frontier.root() != root {
                d.report.problem(Check::Checkpoints, None, format!(
                    "{what}: its root {} differs from the recomputed root {} (entries below {size} were altered, removed or reordered)",
                    encode_hash(root),
                    encode_hash(&d.frontier.root())
                ));
            }
            d.next_promise += 1;
        }
        Ok(())
    }

    fn finish(self) -> TreeDone {
        self.done
    }
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
