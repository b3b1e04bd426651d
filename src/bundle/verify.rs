//! `evident verify BUNDLE`: check an audit bundle offline, without the ledger, trusting
//! nothing in it but what the auditor's own key and kept checkpoint prove.
//!
//! One streaming pass reads the members in archive order (a directory in a fixed order):
//! every member is hashed for `SHA256SUMS`; leaves are reduced to their leaf hash and subject
//! digest, proofs are checked as soon as their leaf is known, blobs are hashed against their
//! names. Nothing is extracted and nothing is written. Paths that could escape a directory
//! (`..`, absolute), links, devices and oversized members are refused before they are read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::archive::read_tar;
use super::members::{Member, MemberSink, classify, read_dir};
use super::sampling::{Checker, SamplingCounts};
use super::sink::Hashing;
use super::{
    INDEX_HEADER, MAX_CONSISTENCY_MEMBER, MAX_DOCUMENT_MEMBER, MAX_INDEX_RECORD, MAX_NOTE_MEMBER,
    MAX_SMALL_MEMBER, MAX_SUMS_LINE, SUMS, SUMS_NOTE_HEAD, SUMS_SIG, consistency_path,
    index_prefix, meta_path,
};
use crate::anchor::tsp;
use crate::findings::{Checks, Findings};
use crate::ledger::erasures::{ERASURE_KIND, EVIDENT_SOURCE, erased_index};
use crate::ledger::leaf::{LeafStr, LeafView, hex, parse_hex32};
use crate::ledger::merkle::{Hash, leaf_hash, verify_consistency, verify_inclusion};
use crate::ledger::meta::MetaRecord;
use crate::ledger::note::{Checkpoint, NoteVerifier, TlogProof, canonical_u64, decode_hash};

/// The smallest read buffer for a member.
const BLOCK_MIN: usize = 512;

/// The checks, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleCheck {
    /// Members are regular files with safe paths and sane sizes, and the archive is whole.
    Archive,
    /// `SHA256SUMS` matches every member.
    Sums,
    /// The checkpoint is signed by the auditor's key.
    Checkpoint,
    /// Every entry has a valid inclusion proof against the checkpoint.
    Inclusion,
    /// Every blob matches its name and its entry's digest; the index agrees.
    Blobs,
    /// Earlier checkpoints are signed and proven prefixes of this tree.
    Consistency,
    /// The RFC 3161 timestamp, when the bundle has one, is over the checkpoint and signed.
    Timestamp,
    /// The tree extends the checkpoint the auditor kept.
    Previous,
    /// The checkpoint is cosigned by the auditor's witness quorum.
    Witnesses,
    /// Every population is what its filter gives over the whole log of its checkpoint, and
    /// every sample is what its seed draws.
    Sampling,
}

impl Checks for BundleCheck {
    const ALL: &'static [BundleCheck] = &[
        BundleCheck::Archive,
        BundleCheck::Sums,
        BundleCheck::Checkpoint,
        BundleCheck::Inclusion,
        BundleCheck::Blobs,
        BundleCheck::Consistency,
        BundleCheck::Timestamp,
        BundleCheck::Previous,
        BundleCheck::Witnesses,
        BundleCheck::Sampling,
    ];

    fn label(self) -> &'static str {
        match self {
            BundleCheck::Archive => "archive",
            BundleCheck::Sums => "sha256sums",
            BundleCheck::Checkpoint => "checkpoint",
            BundleCheck::Inclusion => "inclusion",
            BundleCheck::Blobs => "blobs",
            BundleCheck::Consistency => "consistency",
            BundleCheck::Timestamp => "timestamp",
            BundleCheck::Previous => "previous",
            BundleCheck::Witnesses => "witnesses",
            BundleCheck::Sampling => "sampling",
        }
    }
}

/// The outcome of verifying a bundle.
#[derive(Debug, Default, Serialize)]
pub struct BundleReport {
    /// Members read.
    pub members: u64,
    /// Entries with a verified inclusion proof.
    pub entries: u64,
    /// Blobs checked.
    pub blobs: u64,
    /// Earlier checkpoints with a verified consistency proof.
    pub consistency: u64,
    /// The checkpoint: size and base64 root, when it verified.
    pub checkpoint: Option<crate::verify::CheckpointRef>,
    /// Whether a previous checkpoint was given and checked.
    pub previous: Option<u64>,
    /// The RFC 3161 time of the checkpoint, when the bundle carries a verified timestamp.
    pub timestamp: Option<String>,
    /// Which CA certificates the timestamp's signer was checked against.
    pub timestamp_ca: Option<&'static str>,
    /// Whether that CA was the auditor's own (`--tsa-ca`), not one the bundle carries.
    pub timestamp_trusted: bool,
    /// The witnesses whose cosignature of the checkpoint verified (with `--witness`).
    pub cosigned_by: Vec<String>,
    /// Populations re-derived and samples redrawn.
    pub sampling: SamplingCounts,
    /// Failures (`problems`, `unlisted`).
    #[serde(flatten)]
    pub findings: Findings<BundleCheck>,
}

impl BundleReport {
    fn fail(&mut self, check: BundleCheck, what: impl Into<String>) {
        self.findings.add(check, None, what);
    }

    /// Failures of `check`.
    pub fn count(&self, check: BundleCheck) -> u64 {
        self.findings.count(check)
    }

    /// True when every check passed.
    pub fn ok(&self) -> bool {
        self.findings.ok()
    }
}

/// Options of a bundle verification.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The verifier key the auditor holds.
    pub key: NoteVerifier,
    /// A signed checkpoint the auditor kept from an earlier audit.
    pub previous: Option<String>,
    /// Largest blob accepted.
    pub max_member: u64,
    /// The TSA CA certificates (PEM) the auditor trusts; default: the bundle's tsa/ca.pem.
    pub tsa_ca: Option<String>,
    /// Most decompressed bytes a `.tar.gz` may expand to.
    pub max_total: u64,
    /// Most memory the pass may keep (leaves, proofs, checkpoints, paths); past it the bundle
    /// is refused with exit 3, not read on.
    pub max_memory: u64,
    /// Witness cosigner keys whose cosignatures count, and how many must have cosigned.
    pub witnesses: (Vec<NoteVerifier>, usize),
}

impl VerifyOptions {
    /// Default of [`VerifyOptions::max_total`]: 64 GiB.
    pub const DEFAULT_MAX_TOTAL: u64 = 64 << 30;
    /// Default of [`VerifyOptions::max_memory`]: 160 MiB of kept state, so the process
    /// stays under 256 MiB on any input.
    pub const DEFAULT_MAX_MEMORY: u64 = 160 << 20;
}

/// Errors that stop verification before it can judge the bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bundle cannot be opened at all.
    #[error("cannot open bundle {path}: {error}")]
    Open {
        /// The bundle.
        path: PathBuf,
        /// The error.
        #[source]
        error: io::Error,
    },
}

/// The state gathered during the pass, one part per check.
struct State<'a> {
    opts: &'a VerifyOptions,
    report: BundleReport,
    budget: Budget,
    sums: SumsState,
    cp: CheckpointState,
    index: IndexState,
    inclusion: InclusionState,
    consistency: ConsistencyState,
    timestamp: TimestampState,
    /// Blobs whose content matched their name.
    blobs: HashSet<Hash>,
    /// Populations and samples.
    sampled: Checker,
    /// Erasure entries carried: erasure entry → the entry it erased.
    erasures: HashMap<u64, u64>,
    /// v2 leaves (kept whole: their index.csv prefix needs their metadata record, which
    /// may come later) and the metadata records carried (`meta/<index>.json`).
    v2: V2State,
}

/// v2 leaves and their metadata records.
#[derive(Default)]
struct V2State {
    leaves: BTreeMap<u64, Vec<u8>>,
    records: HashMap<u64, Vec<u8>>,
}

/// Memory the pass keeps (estimated), against `VerifyOptions::max_memory`.
#[derive(Default)]
struct Budget {
    retained: u64,
    over: bool,
}

/// `SHA256SUMS` and its signature, against every member.
#[derive(Default)]
struct SumsState {
    /// Member path → (SHA-256, listed in SHA256SUMS).
    members: HashMap<String, (Hash, bool)>,
    /// Whether SHA256SUMS was read.
    seen: bool,
    /// SHA256SUMS lines naming members not read yet.
    pending: Vec<(usize, String, Hash)>,
    sig: Option<String>,
}

/// The checkpoint, its note and the verifier key the bundle carries.
#[derive(Default)]
struct CheckpointState {
    checkpoint: Option<Checkpoint>,
    note: Option<String>,
    cosignatures: Option<String>,
    vkey: Option<String>,
}

/// `index.csv`, reduced to what is checked.
#[derive(Default)]
struct IndexState {
    seen: bool,
    rows: Vec<IndexRow>,
}

/// Entries and their inclusion proofs.
#[derive(Default)]
struct InclusionState {
    /// Entry index → (leaf hash, subject digest, SHA-256 of its index.csv prefix).
    leaves: HashMap<u64, (Hash, Hash, Hash)>,
    proven: HashSet<u64>,
    /// Entries whose proof member was read and parsed.
    proofs: HashSet<u64>,
    /// Proofs read before their entry or the checkpoint.
    pending: Vec<TlogProof>,
}

/// Earlier checkpoints and their consistency proofs.
#[derive(Default)]
struct ConsistencyState {
    earlier: BTreeMap<u64, String>,
    proofs: BTreeMap<u64, (u64, Vec<Hash>)>,
}

/// The RFC 3161 token and the CA the bundle carries for it.
#[derive(Default)]
struct TimestampState {
    tsr: Option<Vec<u8>>,
    ca: Option<String>,
}

/// One row of index.csv: its row number, entry, digest and content member digest.
struct IndexRow {
    row: usize,
    index: u64,
    sha: Hash,
    /// SHA-256 of the row's first ten fields, re-encoded.
    prefix: Hash,
    /// `Some(digest)` when the content is listed as `blobs/sha256/<digest>`.
    blob: Option<Option<Hash>>,
    /// The erasure entry the content column names, when it says the content was erased.
    erased_by: Option<u64>,
    /// The content column says the exporter's store lacked the content.
    missing: bool,
}

/// A reader that refuses a CSV record longer than [`MAX_INDEX_RECORD`] before the `csv`
/// crate buffers it.
struct RecordCap<R> {
    inner: R,
    read: u64,
    /// Where the record being read started, set after each record.
    record_start: std::cell::Cell<u64>,
}

impl<R: Read> Read for RecordCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read - self.record_start.get() > MAX_INDEX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a record runs past {MAX_INDEX_RECORD} bytes (an unbalanced quote?)"),
            ));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<'a> State<'a> {
    fn new(opts: &'a VerifyOptions) -> Self {
        State {
            opts,
            report: BundleReport::default(),
            budget: Budget::default(),
            sums: SumsState::default(),
            cp: CheckpointState::default(),
            index: IndexState::default(),
            inclusion: InclusionState::default(),
            consistency: ConsistencyState::default(),
            timestamp: TimestampState::default(),
            blobs: HashSet::new(),
            sampled: Checker::default(),
            erasures: HashMap::new(),
            v2: V2State::default(),
        }
    }

    fn limit(&self, m: &Member) -> u64 {
        match m {
            Member::Blob(_) => self.opts.max_member,
            Member::Document
            | Member::Index
            | Member::Sums
            | Member::Population(_)
            | Member::Sample(_) => MAX_DOCUMENT_MEMBER,
            Member::PopulationLeaves(_) => self.opts.max_total,
            Member::Checkpoint
            | Member::Cosignatures
            | Member::Earlier(_)
            | Member::SumsSig
            | Member::Vkey
            | Member::Proof(_) => MAX_NOTE_MEMBER,
            Member::Consistency(..) => MAX_CONSISTENCY_MEMBER,
            Member::Entry(_) | Member::Meta(_) | Member::Tsr | Member::TsaCa => MAX_SMALL_MEMBER,
        }
    }

    /// Counts memory the pass keeps; past the budget the bundle is refused, not read on.
    fn charge(&mut self, bytes: usize) -> io::Result<()> {
        self.budget.retained += bytes as u64;
        if self.budget.retained > self.opts.max_memory && !self.budget.over {
            self.budget.over = true;
            self.report.fail(
                BundleCheck::Archive,
                format!(
                    "verifying this bundle would keep more than {} MiB in memory (too many entries, proofs or checkpoints); \
                     refused. Export smaller bundles (--since/--until) or raise --max-memory",
                    self.opts.max_memory >> 20
                ),
            );
        }
        if self.budget.over {
            return Err(io::Error::other("memory budget exceeded"));
        }
        Ok(())
    }

    /// Reads one member; `Err` only when the archive itself cannot be read further.
    fn ingest(&mut self, path: &str, size: u64, r: &mut dyn Read) -> io::Result<()> {
        self.report.members += 1;
        if self.sums.members.contains_key(path) {
            self.report.fail(
                BundleCheck::Archive,
                format!("{path} appears twice in the bundle"),
            );
        }
        let Some(kind) = classify(path) else {
            self.report.fail(
                BundleCheck::Archive,
                format!("unexpected member {path}: not part of an Evident bundle"),
            );
            return Ok(());
        };
        let limit = self.limit(&kind);
        if size > limit {
            self.report.fail(
                BundleCheck::Archive,
                format!("{path} is {size} bytes, over the {limit}-byte limit for such members; refused unread"),
            );
            return Ok(());
        }
        self.charge(path.len() + 96)?;
        if matches!(kind, Member::Index) {
            return self.ingest_index(path, size, r);
        }
        if let Member::PopulationLeaves(name) = kind {
            let (digest, total) = self.sampled.leaves(path, name, &mut r.take(size))?;
            if total != size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{path} ends after {total} of {size} bytes"),
                ));
            }
            self.mark_member(path, digest);
            return Ok(());
        }
        let (digest, kept) = self.read_member(path, size, limit, &kind, r)?;
        self.take(path, kind, digest, kept)
    }

    /// Reads a member whole: its digest, and its bytes when a check keeps them (not blobs,
    /// documents or SHA256SUMS, whose lines are checked as they stream).
    fn read_member(
        &mut self,
        path: &str,
        size: u64,
        limit: u64,
        kind: &Member,
        r: &mut dyn Read,
    ) -> io::Result<(Hash, Vec<u8>)> {
        let keep = !matches!(kind, Member::Blob(_) | Member::Document | Member::Sums);
        let lines = matches!(kind, Member::Sums);
        let mut hasher = Sha256::new();
        let mut kept = Vec::new();
        let mut partial: Vec<u8> = Vec::new();
        let mut line_no = 0usize;
        // Sized to the member (most are entries and proofs of a few hundred bytes).
        let mut buf = vec![
            0u8;
            usize::try_from(size)
                .unwrap_or(usize::MAX)
                .clamp(BLOCK_MIN, 1 << 16)
        ];
        let mut total = 0u64;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if keep {
                kept.extend_from_slice(&buf[..n]);
            }
            if lines {
                for chunk in buf[..n].split_inclusive(|b| *b == b'\n') {
                    if partial.len() <= MAX_SUMS_LINE {
                        partial.extend_from_slice(chunk);
                    }
                    if chunk.ends_with(b"\n") {
                        line_no += 1;
                        self.sums_text_line(line_no, &mut partial)?;
                    }
                }
            }
            total += n as u64;
            if total > limit {
                break;
            }
        }
        if total != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path} ends after {total} of {size} bytes"),
            ));
        }
        if lines && !partial.is_empty() {
            partial.push(b'\n');
            self.sums_text_line(line_no + 1, &mut partial)?;
        }
        let digest: Hash = hasher.finalize().into();
        self.mark_member(path, digest);
        Ok((digest, kept))
    }

    /// Hands a member read whole to the check that wants it.
    fn take(&mut self, path: &str, kind: Member, digest: Hash, kept: Vec<u8>) -> io::Result<()> {
        // Borrowed: most members are read once and dropped; owners copy what they keep.
        let text = || std::str::from_utf8(&kept).ok();
        if let Member::Proof(i) = &kind {
            self.inclusion.proofs.insert(*i);
        }
        match kind {
            Member::Checkpoint => match text() {
                Some(t) => {
                    match Checkpoint::open(t, &self.opts.key) {
                        Ok(cp) => self.cp.checkpoint = Some(cp),
                        Err(e) => self.report.fail(
                            BundleCheck::Checkpoint,
                            format!(
                                "checkpoint is not signed by the key you gave ({}): {e}",
                                self.opts.key.name()
                            ),
                        ),
                    }
                    self.cp.note = Some(t.to_owned());
                }
                None => self
                    .report
                    .fail(BundleCheck::Checkpoint, "checkpoint is not UTF-8 text"),
            },
            Member::Vkey => self.cp.vkey = text().map(str::to_owned),
            Member::Sums => self.sums.seen = true,
            Member::Index => {} // read by ingest_index, above
            Member::Earlier(m) => {
                if let Some(t) = text() {
                    let t = t.to_owned();
                    self.charge(t.len() + 64)?;
                    self.consistency.earlier.insert(m, t);
                }
            }
            Member::Consistency(m, n) => {
                let parsed: Option<Vec<Hash>> =
                    text().and_then(|t| t.lines().map(decode_hash).collect());
                match parsed {
                    Some(p) => {
                        self.charge(p.len() * 32 + 64)?;
                        self.consistency.proofs.insert(m, (n, p));
                    }
                    None => self.report.fail(
                        BundleCheck::Consistency,
                        format!("{path} is not one base64 hash a line"),
                    ),
                }
            }
            Member::Entry(i) => self.take_entry(path, i, &kept)?,
            Member::Meta(i) => {
                self.charge(kept.len() + 64)?;
                self.v2.records.insert(i, kept);
            }
            Member::Proof(i) => match text().map(TlogProof::parse) {
                Some(Ok(p)) if p.index == i => {
                    if self.cp.checkpoint.is_some() && self.inclusion.leaves.contains_key(&i) {
                        self.check_proof(&p);
                    } else {
                        self.charge(kept.len() + 64)?;
                        self.inclusion.pending.push(p);
                    }
                }
                Some(Ok(p)) => self.report.fail(
                    BundleCheck::Inclusion,
                    format!("{path} is the proof of entry {}, not {i}", p.index),
                ),
                Some(Err(e)) => self
                    .report
                    .fail(BundleCheck::Inclusion, format!("{path}: {e}")),
                None => self
                    .report
                    .fail(BundleCheck::Inclusion, format!("{path} is not UTF-8 text")),
            },
            Member::Blob(name) => {
                self.report.blobs += 1;
                if digest != name {
                    self.report.fail(
                        BundleCheck::Blobs,
                        format!(
                            "{path}: content hashes to {}, not to its name (altered or swapped)",
                            hex(&digest)
                        ),
                    );
                } else {
                    self.blobs.insert(name);
                }
            }
            Member::Tsr => self.timestamp.tsr = Some(kept),
            Member::Cosignatures => self.cp.cosignatures = text().map(str::to_owned),
            Member::SumsSig => self.sums.sig = text().map(str::to_owned),
            Member::TsaCa => self.timestamp.ca = text().map(str::to_owned),
            Member::Document | Member::PopulationLeaves(_) => {}
            Member::Population(name) => {
                let kept = self.sampled.manifest(path, false, name, digest, &kept);
                self.charge(kept)?;
            }
            Member::Sample(name) => {
                let kept = self.sampled.manifest(path, true, name, digest, &kept);
                self.charge(kept)?;
            }
        }
        Ok(())
    }

    /// An entry's leaf: its hash, subject and index prefix for the later checks, and what
    /// it records for populations, samples and erasures.
    fn take_entry(&mut self, path: &str, i: u64, kept: &[u8]) -> io::Result<()> {
        match LeafView::parse(kept) {
            Ok(st) => {
                self.charge(128)?;
                let subject = parse_hex32(st.subject_sha256.as_str()).unwrap_or([0; 32]);
                let (source, kind) = (st.predicate.source.as_str(), st.predicate.kind.as_str());
                self.sampled.entry(i, source, kind, subject);
                if kind == ERASURE_KIND
                    && source == EVIDENT_SOURCE
                    && let Some(target) = erased_index(st.uri())
                {
                    self.erasures.insert(i, target);
                }
                // A v2 leaf's prefix waits for its metadata record (`check_v2`).
                let prefix = if st.is_v2() {
                    self.charge(kept.len() + 64)?;
                    self.v2.leaves.insert(i, kept.to_vec());
                    [0; 32]
                } else {
                    Sha256::digest(index_prefix(i, &st, (st.uri(), title_of(&st)))).into()
                };
                self.inclusion
                    .leaves
                    .insert(i, (leaf_hash(kept), subject, prefix));
            }
            Err(e) => self.report.fail(
                BundleCheck::Inclusion,
                format!("{path} is not an Evident entry: {e}"),
            ),
        }
        Ok(())
    }

    fn mark_member(&mut self, path: &str, digest: Hash) {
        self.sums.members.insert(path.to_owned(), (digest, false));
    }

    /// One line of SHA256SUMS (cut at the length no real line reaches).
    fn sums_text_line(&mut self, n: usize, partial: &mut Vec<u8>) -> io::Result<()> {
        if partial.len() > MAX_SUMS_LINE {
            partial.clear();
            self.report.fail(
                BundleCheck::Sums,
                format!("SHA256SUMS line {n}: longer than {MAX_SUMS_LINE} bytes"),
            );
            return Ok(());
        }
        let line = String::from_utf8_lossy(partial)
            .trim_end_matches('\n')
            .to_owned();
        partial.clear();
        let parsed = line
            .split_once("  ")
            .and_then(|(h, p)| Some((parse_hex32(h)?, p.to_owned())));
        match parsed {
            Some((want, path)) => self.sum_line(n, path, want)?,
            None => self.report.fail(
                BundleCheck::Sums,
                format!("SHA256SUMS line {n}: not `<64 hex>  <path>`"),
            ),
        }
        Ok(())
    }

    /// index.csv, streamed through the `csv` crate (linear time) with a bound per record.
    fn ingest_index(&mut self, path: &str, size: u64, r: &mut dyn Read) -> io::Result<()> {
        self.index.seen = true;
        let hashing = Hashing {
            inner: RecordCap {
                inner: r.take(size),
                read: 0,
                record_start: std::cell::Cell::new(0),
            },
            hasher: Sha256::new(),
            count: 0,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(hashing);
        let mut rec = csv::StringRecord::new();
        let mut row = 0usize;
        loop {
            match rdr.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    row += 1;
                    self.index_record(row, &rec)?;
                }
                Err(e) => match e.kind() {
                    csv::ErrorKind::Io(_) => {
                        let e = match e.into_kind() {
                            csv::ErrorKind::Io(e) => e,
                            _ => io::Error::other("index.csv"),
                        };
                        if e.kind() != io::ErrorKind::InvalidData {
                            return Err(e);
                        }
                        self.report.fail(
                            BundleCheck::Blobs,
                            format!("index.csv after row {row}: {e}"),
                        );
                        break;
                    }
                    _ => {
                        row += 1;
                        self.report.fail(
                            BundleCheck::Blobs,
                            format!("index.csv row {row}: not UTF-8 CSV"),
                        );
                    }
                },
            }
            let pos = rdr.position().byte();
            rdr.get_ref().inner.record_start.set(pos);
        }
        let mut hashing = rdr.into_inner();
        // Whatever follows a refused record is still part of the member's digest.
        io::copy(&mut hashing, &mut io::sink())?;
        if hashing.count != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path} ends after {} of {size} bytes", hashing.count),
            ));
        }
        let digest: Hash = hashing.hasher.finalize().into();
        self.mark_member(path, digest);
        Ok(())
    }

    /// One record of index.csv.
    fn index_record(&mut self, n: usize, row: &csv::StringRecord) -> io::Result<()> {
        if n == 1 {
            if crate::csv::line(row.iter()) != INDEX_HEADER {
                self.report
                    .fail(BundleCheck::Blobs, "index.csv: the header is not Evident's");
            }
            return Ok(());
        }
        let prefix: Hash = match row.len() {
            11 => Sha256::digest(crate::csv::line(row.iter().take(10))).into(),
            _ => [0; 32],
        };
        let parsed = (
            row.get(0).and_then(canonical_u64),
            row.get(9).and_then(parse_hex32),
            row.get(10),
        );
        match parsed {
            (Some(index), Some(sha), Some(content)) if row.len() == 11 => {
                self.charge(160)?;
                self.index.rows.push(IndexRow {
                    row: n,
                    index,
                    sha,
                    prefix,
                    // A blob member, or one of the reasons export gives; anything else is an
                    // edit (a flipped byte in the member name must not read as a reason).
                    blob: match content.strip_prefix("blobs/sha256/") {
                        // The member name exactly as export writes it: lowercase hex.
                        Some(hex) if hex.bytes().any(|b| b.is_ascii_uppercase()) => Some(None),
                        Some(hex) => Some(parse_hex32(hex)),
                        None if super::export::ABSENCE_REASONS.contains(&content) => None,
                        None if super::export::erased_by(content).is_some() => None,
                        None => Some(None),
                    },
                    erased_by: super::export::erased_by(content),
                    missing: content == super::export::ABSENCE_REASONS[2],
                });
            }
            _ => self
                .report
                .fail(BundleCheck::Blobs, format!("index.csv row {n}: malformed")),
        }
        Ok(())
    }

    fn sum_line(&mut self, n: usize, path: String, want: Hash) -> io::Result<()> {
        match self.sums.members.get_mut(&path) {
            Some((got, listed)) => {
                *listed = true;
                if *got != want {
                    let got = hex(got);
                    self.report.fail(
                        BundleCheck::Sums,
                        format!("{path}: SHA-256 is {got}, SHA256SUMS says {}", hex(&want)),
                    );
                }
            }
            None => {
                self.charge(path.len() + 96)?;
                self.sums.pending.push((n, path, want));
            }
        }
        Ok(())
    }

    fn check_proof(&mut self, p: &TlogProof) {
        let (Some(cp), Some(note)) = (&self.cp.checkpoint, &self.cp.note) else {
            return;
        };
        let Some((leaf, _, _)) = self.inclusion.leaves.get(&p.index) else {
            return;
        };
        if &p.checkpoint != note {
            self.report.fail(
                BundleCheck::Inclusion,
                format!(
                    "proofs/{}.tlog-proof ends with another checkpoint than ./checkpoint",
                    p.index
                ),
            );
        } else if !verify_inclusion(leaf, p.index, cp.size, &p.path, &cp.root) {
            self.report.fail(
                BundleCheck::Inclusion,
                format!(
                    "entry {}: the inclusion proof proofs/{}.tlog-proof does not lead from entries/{}.json to the checkpoint root (entry or proof altered)",
                    p.index, p.index, p.index
                ),
            );
        } else {
            self.inclusion.proven.insert(p.index);
        }
    }

    fn finish(mut self) -> BundleReport {
        for p in std::mem::take(&mut self.inclusion.pending) {
            if self.inclusion.leaves.contains_key(&p.index) {
                self.check_proof(&p);
            }
        }
        self.check_presence();
        self.check_sums();
        self.check_v2();
        self.check_index();
        self.check_consistency();
        self.check_timestamp();
        self.check_witnesses();
        self.check_previous();
        self.check_sampling();
        self.report.entries = self.inclusion.proven.len() as u64;
        if let (Some(cp), true) = (
            &self.cp.checkpoint,
            self.report.count(BundleCheck::Checkpoint) == 0,
        ) {
            self.report.checkpoint = Some(crate::verify::CheckpointRef {
                size: cp.size,
                root: crate::ledger::note::encode_hash(&cp.root),
            });
        }
        self.report
    }

    /// Each v2 leaf against its metadata record: the record must be the one the leaf
    /// commits to, and then gives the URI and title index.csv shows; a leaf without its
    /// record shows `evident:artefact:<artefact>` and needs a proven erasure entry of it.
    /// A record without its v2 leaf in the bundle is refused.
    fn check_v2(&mut self) {
        let leaves = std::mem::take(&mut self.v2.leaves);
        let mut records = std::mem::take(&mut self.v2.records);
        for (i, leaf) in &leaves {
            let Ok(st) = LeafView::parse(leaf) else {
                continue; // named by take_entry
            };
            let bytes = records.remove(i);
            let record = match bytes.as_deref().map(MetaRecord::parse) {
                Some(Ok(r)) => Some(r),
                Some(Err(e)) => {
                    self.report.fail(
                        BundleCheck::Blobs,
                        format!("{}: not a metadata record: {e}", meta_path(*i)),
                    );
                    continue;
                }
                None => None,
            };
            let shown = match crate::ledger::meta::shown(&st, record.as_ref(), bytes.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    self.report
                        .fail(BundleCheck::Blobs, format!("{}: {e}", meta_path(*i)));
                    continue;
                }
            };
            if record.is_none() {
                let proven = self
                    .erasures
                    .iter()
                    .any(|(by, of)| of == i && self.inclusion.proven.contains(by));
                if !proven {
                    self.report.fail(
                        BundleCheck::Blobs,
                        format!(
                            "entry {i}'s metadata record ({}) is not in the bundle, and no \
                             erasure entry proven in it records erasing it",
                            meta_path(*i)
                        ),
                    );
                }
            }
            let prefix: Hash = Sha256::digest(index_prefix(*i, &st, (&shown.0, shown.1))).into();
            if let Some(l) = self.inclusion.leaves.get_mut(i) {
                l.2 = prefix;
            }
        }
        for i in records.keys() {
            self.report.fail(
                BundleCheck::Blobs,
                format!("{} belongs to no v2 entry of the bundle", meta_path(*i)),
            );
        }
    }

    /// Populations and samples, once every member is read.
    fn check_sampling(&mut self) {
        let mut checkpoints: BTreeMap<u64, &str> = self
            .consistency
            .earlier
            .iter()
            .map(|(m, note)| (*m, note.as_str()))
            .collect();
        if let (Some(cp), Some(note)) = (&self.cp.checkpoint, &self.cp.note) {
            checkpoints.insert(cp.size, note.as_str());
        }
        let (problems, more, counts) =
            std::mem::take(&mut self.sampled).finish(&self.opts.key, &checkpoints);
        for p in problems {
            self.report.findings.add(BundleCheck::Sampling, None, p);
        }
        self.report
            .findings
            .add_unlisted(BundleCheck::Sampling, more);
        self.report.sampling = counts;
    }

    fn check_presence(&mut self) {
        match &self.cp.vkey {
            Some(k) if k.trim() == self.opts.key.key_string() => {}
            Some(k) => self.report.fail(
                BundleCheck::Checkpoint,
                format!(
                    "log.vkey ({}) differs from the key you gave ({}); trust only yours",
                    k.trim(),
                    self.opts.key.key_string()
                ),
            ),
            None => self
                .report
                .fail(BundleCheck::Archive, "log.vkey is missing"),
        }
        if self.cp.note.is_none() {
            self.report
                .fail(BundleCheck::Checkpoint, "the bundle has no checkpoint");
        }
        let mut missing_proofs: Vec<u64> = self
            .inclusion
            .leaves
            .keys()
            .filter(|i| !self.inclusion.proven.contains(i))
            .copied()
            .collect();
        missing_proofs.sort_unstable();
        for i in missing_proofs {
            if !self.inclusion.proofs.contains(&i) {
                self.report.fail(
                    BundleCheck::Inclusion,
                    format!("entry {i} has no proof (proofs/{i}.tlog-proof is missing)"),
                );
            }
        }
        let mut orphan: Vec<u64> = self
            .inclusion
            .proofs
            .iter()
            .filter(|i| {
                !self.inclusion.leaves.contains_key(i)
                    && !self.sums.members.contains_key(&super::entry_path(**i))
            })
            .copied()
            .collect();
        orphan.sort_unstable();
        for i in orphan {
            self.report.fail(
                BundleCheck::Inclusion,
                format!("proofs/{i}.tlog-proof has no entry (entries/{i}.json is missing)"),
            );
        }
    }

    fn check_sums(&mut self) {
        if !self.sums.seen {
            self.report.fail(BundleCheck::Sums, "SHA256SUMS is missing");
            return;
        }
        let sums_digest = self.sums.members.get(SUMS).map(|(h, _)| *h);
        match (self.sums.sig.take(), sums_digest) {
            (None, _) => self.report.fail(
                BundleCheck::Sums,
                "SHA256SUMS.sig is missing: the checksums are not signed",
            ),
            (Some(note), Some(digest)) => match self.opts.key.open(&note) {
                Ok(text) if text == format!("{SUMS_NOTE_HEAD}\n{}\n", hex(&digest)) => {}
                Ok(_) => self.report.fail(
                    BundleCheck::Sums,
                    "SHA256SUMS.sig signs other checksums: SHA256SUMS was altered after export",
                ),
                Err(e) => self.report.fail(
                    BundleCheck::Sums,
                    format!("SHA256SUMS.sig is not signed by the key you gave: {e}"),
                ),
            },
            (Some(_), None) => {}
        }
        for (n, path, want) in std::mem::take(&mut self.sums.pending) {
            if self.sums.members.contains_key(&path) {
                // Charged when it was read; the pass is over, so nothing more can be.
                let _ = self.sum_line(n, path, want);
            } else {
                self.report.fail(
                    BundleCheck::Sums,
                    format!("{path} is listed in SHA256SUMS but missing from the bundle"),
                );
            }
        }
        let mut unlisted: Vec<String> = self
            .sums
            .members
            .iter()
            .filter(|(p, (_, listed))| p.as_str() != SUMS && p.as_str() != SUMS_SIG && !listed)
            .map(|(p, _)| p.clone())
            .collect();
        unlisted.sort();
        for p in unlisted {
            self.report.fail(
                BundleCheck::Sums,
                format!("{p} is not listed in SHA256SUMS"),
            );
        }
    }

    fn check_index(&mut self) {
        if !self.index.seen {
            self.report.fail(BundleCheck::Blobs, "index.csv is missing");
            return;
        }
        let mut seen = HashSet::new();
        for r in std::mem::take(&mut self.index.rows) {
            let (n, i, sha) = (r.row, r.index, r.sha);
            seen.insert(i);
            match self.inclusion.leaves.get(&i) {
                Some((_, _, prefix)) if prefix != &r.prefix => self.report.fail(
                    BundleCheck::Blobs,
                    format!("index.csv row {n}: entry {i} is described otherwise than its leaf says (kind, source, URI, title, dates, controls or digest altered)"),
                ),
                Some((_, subject, _)) if subject != &sha => self.report.fail(
                    BundleCheck::Blobs,
                    format!(
                        "index.csv row {n}: entry {i} records SHA-256 {}, the index says {}",
                        hex(subject),
                        hex(&sha)
                    ),
                ),
                Some(_) => {}
                None => self.report.fail(
                    BundleCheck::Blobs,
                    format!("index.csv lists entry {i}, which the bundle does not hold"),
                ),
            }
            match r.blob {
                Some(Some(b)) if b != sha => self.report.fail(
                    BundleCheck::Blobs,
                    format!("index.csv row {n}: its content member is not the entry's digest"),
                ),
                Some(None) => self.report.fail(
                    BundleCheck::Blobs,
                    format!("index.csv row {n}: malformed content member"),
                ),
                Some(Some(b)) => {
                    let member = super::blob_path(&hex(&b));
                    if !self.blobs.contains(&b) && !self.sums.members.contains_key(&member) {
                        self.report.fail(
                            BundleCheck::Blobs,
                            format!("{member} (content of entry {i}) is missing from the bundle"),
                        );
                    }
                }
                None => {}
            }
            if r.missing {
                self.report.fail(
                    BundleCheck::Blobs,
                    format!(
                        "entry {i}'s content is not in the bundle: the operator's blob store lacked it when it was exported (index.csv row {n}); ask for it, or for a signed erasure"
                    ),
                );
            }
            if let Some(e) = r.erased_by
                && (self.erasures.get(&e) != Some(&i) || !self.inclusion.proven.contains(&e))
            {
                self.report.fail(
                    BundleCheck::Blobs,
                    format!(
                        "index.csv row {n}: entry {i}'s content is said erased by entry {e}, but the bundle carries no proven erasure entry {e} of entry {i}"
                    ),
                );
            }
        }
        let mut unlisted: Vec<u64> = self
            .inclusion
            .leaves
            .keys()
            .filter(|i| !seen.contains(i))
            .copied()
            .collect();
        unlisted.sort_unstable();
        for i in unlisted {
            self.report.fail(
                BundleCheck::Blobs,
                format!("entry {i} is not listed in index.csv"),
            );
        }
    }

    fn check_consistency(&mut self) {
        let Some(cp) = self.cp.checkpoint.clone() else {
            return;
        };
        for (m, note) in std::mem::take(&mut self.consistency.earlier) {
            let old = match Checkpoint::open(&note, &self.opts.key) {
                Ok(o) if o.size == m => o,
                Ok(o) => {
                    self.report.fail(
                        BundleCheck::Consistency,
                        format!("checkpoints/{m} is a checkpoint of size {}", o.size),
                    );
                    continue;
                }
                Err(e) => {
                    self.report.fail(
                        BundleCheck::Consistency,
                        format!("checkpoints/{m} is not signed by the key you gave: {e}"),
                    );
                    continue;
                }
            };
            match self.consistency.proofs.get(&m) {
                Some((n, proof)) if *n == cp.size => {
                    if verify_consistency(m, cp.size, proof, &old.root, &cp.root) {
                        self.report.consistency += 1;
                    } else {
                        self.report.fail(
                            BundleCheck::Consistency,
                            format!("{}: tree {m} is not a prefix of tree {} (history rewritten, or the proof altered)", consistency_path(m, cp.size), cp.size),
                        );
                    }
                }
                _ => self.report.fail(
                    BundleCheck::Consistency,
                    format!(
                        "checkpoints/{m} has no proof {}",
                        consistency_path(m, cp.size)
                    ),
                ),
            }
            self.consistency.earlier.insert(m, note);
        }
        let orphans: Vec<u64> = self
            .consistency
            .proofs
            .keys()
            .filter(|m| !self.consistency.earlier.contains_key(m))
            .copied()
            .collect();
        for m in orphans {
            if !self.sums.members.contains_key(&format!("checkpoints/{m}")) {
                self.report.fail(
                    BundleCheck::Consistency,
                    format!("consistency proof from {m} has no checkpoints/{m}"),
                );
            }
        }
    }

    fn check_timestamp(&mut self) {
        let Some(tsr) = self.timestamp.tsr.take() else {
            return;
        };
        let Some(note) = self.cp.note.clone() else {
            return;
        };
        let (pem, which) = match (&self.opts.tsa_ca, &self.timestamp.ca) {
            (Some(mine), _) => (Some(mine.clone()), "the CA you gave (--tsa-ca)"),
            (None, Some(bundled)) => (Some(bundled.clone()), "the bundle's tsa/ca.pem"),
            (None, None) => (None, "no CA (pass --tsa-ca to check the TSA's chain)"),
        };
        let certs = pem.as_deref().map(tsp::pem_certs);
        match tsp::verify(&tsr, note.as_bytes(), certs.as_deref(), None) {
            Ok(stamp) => {
                self.report.timestamp = Some(stamp.time);
                self.report.timestamp_ca = Some(which);
                self.report.timestamp_trusted = self.opts.tsa_ca.is_some();
            }
            Err(e) => self
                .report
                .fail(BundleCheck::Timestamp, format!("checkpoint.tsr: {e}")),
        }
    }

    /// The checkpoint with `checkpoint.cosignatures` against the auditor's witness policy.
    fn check_witnesses(&mut self) {
        let (keys, quorum) = &self.opts.witnesses;
        if keys.is_empty() {
            return;
        }
        let Some(note) = &self.cp.note else { return };
        let cosigned = note.clone() + self.cp.cosignatures.as_deref().unwrap_or_default();
        match crate::ledger::note::check_quorum(&cosigned, keys, *quorum) {
            Ok(names) => self.report.cosigned_by = names,
            Err(e) => self.report.fail(BundleCheck::Witnesses, e),
        }
    }

    fn check_previous(&mut self) {
        let Some(prev) = self.opts.previous.clone() else {
            return;
        };
        let old = match Checkpoint::open(&prev, &self.opts.key) {
            Ok(o) => o,
            Err(e) => {
                self.report.fail(
                    BundleCheck::Previous,
                    format!("your previous checkpoint is not signed by the key you gave: {e}"),
                );
                return;
            }
        };
        self.report.previous = Some(old.size);
        let Some(cp) = self.cp.checkpoint.clone() else {
            self.report.fail(
                BundleCheck::Previous,
                "no verified checkpoint to compare yours with",
            );
            return;
        };
        if old.size > cp.size {
            self.report.fail(
                BundleCheck::Previous,
                format!("your previous checkpoint has {} entries, this tree only {}: entries were removed", old.size, cp.size),
            );
            return;
        }
        if old.size == 0 {
            // Every tree extends the empty one; its root is fixed.
            if old.root != crate::ledger::merkle::empty_root() {
                self.report.fail(
                    BundleCheck::Previous,
                    "your previous checkpoint has size 0 but not the empty tree's root",
                );
            }
            return;
        }
        if old.size == cp.size {
            if old.root != cp.root {
                self.report.fail(BundleCheck::Previous, format!("your previous checkpoint and this one both have size {} but different roots: the log forked", cp.size));
            }
            return;
        }
        match self.consistency.proofs.get(&old.size) {
            Some((n, proof)) if *n == cp.size => {
                if !verify_consistency(old.size, cp.size, proof, &old.root, &cp.root) {
                    self.report.fail(
                        BundleCheck::Previous,
                        format!("this tree of size {} does not extend your checkpoint of size {} (root {}): the history you saw was rewritten", cp.size, old.size, crate::ledger::note::encode_hash(&old.root)),
                    );
                }
            }
            _ => self.report.fail(
                BundleCheck::Previous,
                format!("the bundle has no consistency proof from your checkpoint's size {} ({} is missing)", old.size, consistency_path(old.size, cp.size)),
            ),
        }
    }
}

impl MemberSink for State<'_> {
    fn member(&mut self, path: &str, size: u64, r: &mut dyn Read) -> io::Result<()> {
        self.ingest(path, size, r)
    }

    fn refuse(&mut self, why: String) {
        self.report.fail(BundleCheck::Archive, why);
    }
}

/// Verifies a `.tar.gz` bundle read from `r` (the fuzz target's entry point).
pub fn verify_tar(r: impl Read + Send, opts: &VerifyOptions) -> BundleReport {
    let mut st = State::new(opts);
    read_tar(r, opts.max_total, &mut st);
    st.finish()
}

/// Verifies the bundle at `path` (a `.tar.gz` or a directory).
pub fn verify_bundle(
    path: &Path,
    opts: &VerifyOptions,
    progress: bool,
) -> Result<BundleReport, BundleError> {
    let open_err = |error| BundleError::Open {
        path: path.to_owned(),
        error,
    };
    let mut st = State::new(opts);
    let meta = std::fs::symlink_metadata(path).map_err(open_err)?;
    let bar = crate::progress::bar(
        meta.len(),
        "verifying {bar:40} {bytes}/{total_bytes} ({eta} left)",
        progress && meta.is_file(),
    );
    if meta.is_dir() {
        read_dir(path, &mut st).map_err(open_err)?;
    } else if meta.is_file() {
        let file = File::open(path).map_err(open_err)?;
        let counted = bar.wrap_read(file);
        read_tar(counted, opts.max_total, &mut st);
    } else {
        return Err(open_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file or directory",
        )));
    }
    bar.finish_and_clear();
    Ok(st.finish())
}

/// A v1 leaf's title, as index.csv shows it.
fn title_of<'l>(st: &'l LeafView<'_>) -> Option<&'l str> {
    st.predicate.title.as_ref().map(LeafStr::as_str)
}
