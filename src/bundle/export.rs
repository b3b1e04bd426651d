//! `evident export`: write the audit bundle for a window and a set of controls.
//!
//! One pass over the entries in scope, in index order, writes each leaf, its inclusion proof
//! and (once per digest) its blob straight into the bundle, while the entry index, the OSCAL
//! observations and the report's tables are gathered in scratch files or bounded buffers.
//! Memory therefore does not grow with the ledger: what is kept per entry is a 16-byte
//! observation id per control (for OSCAL's findings) and one digest per distinct blob.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::oscal::{self, Observations};
use super::report::{self, ControlEvidence, ReportInput};
use super::sampling::Carried;
use super::sink::Sink;
use super::{
    CHECKPOINT, COSIGNATURES, INDEX, INDEX_HEADER, SUMS, SUMS_NOTE_HEAD, SUMS_SIG, TSA_CA,
    TSA_CERTS, TSR, VKEY, blob_path, consistency_path, entry_path, index_prefix, is_tarball,
    meta_path, proof_path, readme,
};
use crate::anchor::{AnchorConfig, Anchored, tsp};
use crate::coverage::{self, Policies};
use crate::csv;
use crate::ledger::LedgerError;
use crate::ledger::blobs::BlobStore;
use crate::ledger::leaf::{LeafView, hex, parse_hex32};
use crate::ledger::merkle::{
    Hash, HashReader, MerkleError, consistency_proof, inclusion_proof, tree_hash,
};
use crate::ledger::meta::MetaRecord;
use crate::ledger::note::{Checkpoint, TlogProof, encode_hash};
use crate::ledger::reader::{Counting, EntryRow, Reader, Window};
use crate::ledger::rfc3339;
use crate::ledger::state::StateDir;
use crate::ledger::writer::Writer;
use crate::sampling::{Population, Sample};
use crate::soa;

/// Rows per control the HTML report lists (the newest); the rest are counted.
pub const REPORT_ROWS_PER_CONTROL: usize = 200;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Entries from this time on.
    pub since: Option<DateTime<Utc>>,
    /// Entries before this time (exclusive end).
    pub until: Option<DateTime<Utc>>,
    /// Whether `since`/`until` apply to the evidence date (effective date, else the source's
    /// time, else collection: what coverage reasons by) rather than the collection time.
    pub by_evidence_date: bool,
    /// Only entries mapped to these controls (and coverage of only these).
    pub controls: Option<Vec<&'static str>>,
    /// Whether coverage also counts superseded and removed versions.
    pub history: bool,
    /// Populations to carry, each with every leaf up to its checkpoint (checked against
    /// the ledger by the caller: `sampling::check_population`).
    pub populations: Vec<Carried<Population>>,
    /// Samples to carry (their populations among `populations`).
    pub samples: Vec<Carried<Sample>>,
    /// Entries carried whatever the window and controls: what samples name, and the
    /// population entries their seeds follow.
    pub extra: std::collections::BTreeSet<u64>,
    /// Link rules and expectations: their gaps go into coverage, the report and OSCAL,
    /// and the entries with gaps into the bundle.
    pub lineage: Option<crate::lineage::Rules>,
}

/// Errors of an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The ledger could not be read or signed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Writing the bundle failed.
    #[error("writing the bundle {path}: {error}")]
    Write {
        /// The bundle.
        path: PathBuf,
        /// The error.
        #[source]
        error: io::Error,
    },
    /// The ledger holds nothing yet.
    #[error("the ledger is empty; collect or add evidence before exporting")]
    Empty,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// The bundle.
    pub out: PathBuf,
    /// `tar.gz` or `directory`.
    pub format: &'static str,
    /// Size of the tree the bundle's checkpoint signs.
    pub checkpoint_size: u64,
    /// Whether the export signed that checkpoint (the tree had grown).
    pub new_checkpoint: bool,
    /// Earlier checkpoints included with consistency proofs.
    pub earlier_checkpoints: u64,
    /// Entries in scope.
    pub entries: u64,
    /// Distinct blobs included.
    pub blobs: u64,
    /// Entries whose content is not in the bundle (listed with the reason in index.csv).
    pub absent: u64,
    /// Blobs the ledger says it holds but the blob store lacks.
    pub missing_blobs: u64,
    /// The time coverage is computed for.
    pub as_of: String,
    /// Members written.
    pub members: u64,
    /// Bytes of member content.
    pub bytes: u64,
    /// The RFC 3161 time of the checkpoint, when the bundle carries a timestamp.
    pub timestamp: Option<String>,
    /// Why anchoring failed, when it was configured and did.
    pub anchor_error: Option<String>,
}

/// Reads stored hashes through a cache: consecutive inclusion proofs share most nodes.
struct CachedHashes<'a> {
    reader: &'a Reader,
    cache: RefCell<HashMap<u64, Hash>>,
}

impl HashReader for CachedHashes<'_> {
    fn read_hash(&self, sidx: u64) -> Result<Hash, MerkleError> {
        if let Some(h) = self.cache.borrow().get(&sidx) {
            return Ok(*h);
        }
        let h = self.reader.read_hash(sidx)?;
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= 1 << 16 {
            cache.clear();
        }
        cache.insert(sidx, h);
        Ok(h)
    }
}

/// What index.csv's `content` column says when the content is not in the bundle: an
/// event, content not kept, content missing from the store. The verifier accepts nothing else.
pub const ABSENCE_REASONS: [&str; 3] = [
    "none: this kind of entry records an event, not content",
    "withheld: content not kept (above max_file_size or metadata only); the entry records its hash",
    "missing: the blob store lacks it (run `evident verify` on the ledger)",
];

/// What index.csv's `content` column says of erased content:
/// `erased: on D by entry E (REASON)`.
pub fn erased_text(e: &crate::ledger::erasures::Erasure) -> String {
    let day: String = e.at.chars().take(10).collect();
    let reason = e.record.as_ref().map_or("", |r| r.reason.as_str());
    format!("erased: on {day} by entry {} ({reason})", e.by_entry)
}

/// The erasure entry an index.csv `content` column names, when it says the content was
/// erased.
pub fn erased_by(content: &str) -> Option<u64> {
    let rest = content.strip_prefix("erased: on ")?;
    let (_, after) = rest.split_once(" by entry ")?;
    let (n, reason) = after.split_once(' ')?;
    reason.starts_with('(').then_some(())?;
    reason.ends_with(')').then_some(())?;
    crate::ledger::note::canonical_u64(n)
}

/// Why an entry's content is not in the bundle, or `None` when it is.
fn absence(row: &EntryRow, in_store: bool) -> Option<&'static str> {
    if !crate::ledger::evidence::counts_as_evidence(&row.kind) {
        Some(ABSENCE_REASONS[0])
    } else if !row.has_blob {
        Some(ABSENCE_REASONS[1])
    } else if !in_store {
        Some(ABSENCE_REASONS[2])
    } else {
        None
    }
}

/// Writes the bundle for `scope` to `out`. Signs a checkpoint first when the tree grew
/// since the last one; appends nothing else.
pub fn export(
    state: &StateDir,
    origin: &str,
    policies: &Policies,
    anchoring: Option<&AnchorConfig>,
    scope: &Scope,
    out: &Path,
    progress: bool,
) -> Result<Summary, ExportError> {
    let writer = Writer::open(state, origin)?;
    let signed = writer.checkpoint()?;
    if signed.size == 0 {
        return Err(ExportError::Empty);
    }
    let reader = Reader::open(state)?;
    let mut anchor_error = None;
    let anchored = match anchoring {
        Some(a) => match a.ensure(state, &writer, signed.size, &signed.note) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!("the bundle goes without a timestamp: {e}");
                anchor_error = Some(e.to_string());
                None
            }
        },
        // A token stored while anchoring was configured still travels with the checkpoint.
        None => match reader.timestamp(signed.size)? {
            Some(token) => tsp::verify(&token, signed.note.as_bytes(), None, None)
                .ok()
                .map(|stamp| Anchored {
                    token,
                    stamp,
                    ca_pem: String::new(),
                }),
            None => None,
        },
    };
    drop(writer);
    let verifier = state.verifier()?;
    let cp = Checkpoint::open(&signed.note, &verifier).map_err(LedgerError::from)?;
    let signed_at = reader
        .checkpoint_signed_at(cp.size)?
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            LedgerError::Corrupt(format!("checkpoint {} has no signing time", cp.size))
        })?;
    let as_of = match scope.until {
        Some(u) => (u - chrono::Duration::seconds(1)).min(signed_at),
        None => signed_at,
    };
    let signer = state.signer()?;
    let tarball = is_tarball(out);
    let write_err = |error: io::Error| ExportError::Write {
        path: out.to_owned(),
        error,
    };
    let mut sink =
        Sink::create(out, tarball, as_of.timestamp().max(0) as u64).map_err(write_err)?;
    let result = reader.snapshot(|reader| {
        write_bundle(
            reader,
            &mut sink,
            &Bundle {
                blobs: &state.blobs(),
                origin,
                note: &signed.note,
                cp: &cp,
                vkey: &verifier.key_string(),
                policies,
                scope,
                as_of,
                anchored: anchored.as_ref(),
            },
            progress,
        )
    });
    match result {
        Ok(mut summary) => {
            summary.members = sink.members + 2;
            summary.bytes = sink.bytes;
            sink.finish(SUMS, SUMS_SIG, |digest| {
                signer
                    .sign(&format!("{SUMS_NOTE_HEAD}\n{}\n", hex(digest)))
                    .map(String::into_bytes)
                    .map_err(io::Error::other)
            })
            .map_err(write_err)?;
            summary.out = out.to_owned();
            summary.format = if tarball { "tar.gz" } else { "directory" };
            summary.new_checkpoint = signed.new;
            summary.timestamp = anchored.map(|a| a.stamp.time);
            summary.anchor_error = anchor_error;
            Ok(summary)
        }
        Err(e) => {
            sink.abandon();
            Err(match e {
                ExportError::Write { error, .. } => write_err(error),
                e => e,
            })
        }
    }
}

struct Bundle<'a> {
    blobs: &'a BlobStore,
    origin: &'a str,
    note: &'a str,
    cp: &'a Checkpoint,
    vkey: &'a str,
    policies: &'a Policies,
    scope: &'a Scope,
    as_of: DateTime<Utc>,
    anchored: Option<&'a Anchored>,
}

impl Bundle<'_> {
    /// The scope in words, for the README.
    fn scope_text(&self) -> String {
        let how = if self.scope.by_evidence_date {
            "dated (effective date, else source time, else collection)"
        } else {
            "collected"
        };
        let window = match (self.scope.since, self.scope.until) {
            (None, None) => "all entries".to_owned(),
            (Some(s), None) => format!("entries {how} from {}", rfc3339(s)),
            (None, Some(u)) => format!("entries {how} before {}", rfc3339(u)),
            (Some(s), Some(u)) => format!(
                "entries {how} from {} until before {}",
                rfc3339(s),
                rfc3339(u)
            ),
        };
        match &self.scope.controls {
            Some(c) => format!("{window} mapped to {}", c.join(", ")),
            None => window,
        }
    }
}

fn io_err(error: io::Error) -> ExportError {
    ExportError::Write {
        path: PathBuf::new(),
        error,
    }
}

fn scratch_file(dir: &Path, name: &str) -> Result<(PathBuf, BufWriter<File>), ExportError> {
    let path = dir.join(name);
    let f = File::create(&path).map_err(io_err)?;
    Ok((path, BufWriter::with_capacity(1 << 16, f)))
}

/// The members before the entries: README, verifier key, checkpoint, the RFC 3161 token
/// with its certificates, and each earlier checkpoint with its consistency proof; returns
/// how many earlier checkpoints.
fn write_head(
    reader: &Reader,
    sink: &mut Sink,
    b: &Bundle<'_>,
    hashes: &CachedHashes<'_>,
) -> Result<u64, ExportError> {
    let n = b.cp.size;
    sink.add(
        "README.txt",
        readme::text(b.origin, n, &b.scope_text(), b.as_of).as_bytes(),
    )
    .map_err(io_err)?;
    sink.add(VKEY, format!("{}\n", b.vkey).as_bytes())
        .map_err(io_err)?;
    sink.add(CHECKPOINT, b.note.as_bytes()).map_err(io_err)?;
    if let Some(a) = b.anchored {
        sink.add(TSR, &a.token).map_err(io_err)?;
        let certs = tsp::certificates(&a.token).unwrap_or_default();
        sink.add(TSA_CERTS, tsp::to_pem(&certs).as_bytes())
            .map_err(io_err)?;
        if !a.ca_pem.is_empty() {
            sink.add(TSA_CA, a.ca_pem.as_bytes()).map_err(io_err)?;
        }
    }
    // Whatever the witnesses cosigned of this checkpoint (the export may have signed it just
    // now, before any witness saw it: then there is none, and `verify --witness` says so).
    let cosignatures: String = reader
        .cosignatures(n)?
        .into_iter()
        .map(|c| c.line)
        .collect();
    if !cosignatures.is_empty() {
        sink.add(COSIGNATURES, cosignatures.as_bytes())
            .map_err(io_err)?;
    }
    let mut earlier = 0;
    for (m, note) in reader.checkpoints()? {
        // RFC 9162 defines consistency proofs only for 0 < m < n (Go's tlog and
        // transparency-dev refuse `0-N`); the empty tree needs none.
        if m == 0 || m >= n {
            continue;
        }
        let proof = consistency_proof(hashes, m, n).map_err(LedgerError::from)?;
        let lines: String = proof.iter().map(|h| encode_hash(h) + "\n").collect();
        sink.add(&format!("checkpoints/{m}"), note.as_bytes())
            .map_err(io_err)?;
        sink.add(&consistency_path(m, n), lines.as_bytes())
            .map_err(io_err)?;
        earlier += 1;
    }
    Ok(earlier)
}

/// `coverage.csv`, `soa.csv` and the HTML report.
fn write_reports(
    sink: &mut Sink,
    b: &Bundle<'_>,
    (cov, erased): (
        &coverage::Coverage,
        &BTreeMap<u64, crate::ledger::erasures::Erasure>,
    ),
    per_control: &BTreeMap<String, ControlEvidence>,
    summary: &Summary,
) -> Result<(), ExportError> {
    let n = b.cp.size;
    let (headers, rows) = coverage::rows(cov, true);
    sink.add("coverage.csv", csv::text(&headers, &rows).as_bytes())
        .map_err(io_err)?;
    let statement = soa::statement(cov, b.policies);
    let (headers, rows) = soa::rows(&statement);
    sink.add("soa.csv", csv::text(&headers, &rows).as_bytes())
        .map_err(io_err)?;
    let html = report::render(&ReportInput {
        origin: b.origin,
        checkpoint_size: n,
        root: &encode_hash(&b.cp.root),
        as_of: &summary.as_of,
        since: b.scope.since.map(rfc3339),
        until: b.scope.until.map(rfc3339),
        coverage: cov,
        evidence: per_control,
        entries: summary.entries,
        blobs: summary.blobs,
        populations: &b.scope.populations,
        samples: &b.scope.samples,
        erased,
    });
    sink.add("report/index.html", html.as_bytes())
        .map_err(io_err)?;
    Ok(())
}

/// An entry's content in the bundle: its blob member (copied once per digest, re-hashed on
/// the way so a damaged blob never leaves), or why it is absent; and whether it is there.
fn content_of(
    sink: &mut Sink,
    b: &Bundle<'_>,
    row: &EntryRow,
    (seen, erased): (
        &mut HashSet<Hash>,
        &BTreeMap<u64, crate::ledger::erasures::Erasure>,
    ),
    summary: &mut Summary,
) -> Result<(String, bool), LedgerError> {
    let idx = row.index;
    let io = |e: io::Error| LedgerError::Io {
        context: format!("writing entry {idx} into the bundle"),
        error: e,
    };
    let digest = parse_hex32(&row.sha256).unwrap_or([0; 32]);
    // Opened once per digest: from a bucket, each open is a download.
    let wanted = row.has_blob
        && crate::ledger::evidence::counts_as_evidence(&row.kind)
        && !seen.contains(&digest);
    let blob = if wanted {
        b.blobs.open(&digest).map_err(|e| LedgerError::Io {
            context: format!("reading the content of entry {idx} ({})", row.sha256),
            error: e,
        })?
    } else {
        None
    };
    let in_store = seen.contains(&digest) || blob.is_some();
    if !in_store && let Some(e) = erased.get(&idx) {
        summary.absent += 1;
        return Ok((erased_text(e), false));
    }
    let absent = absence(row, in_store);
    let content = match absent {
        Some(reason) => {
            summary.absent += 1;
            if reason.starts_with("missing") {
                summary.missing_blobs += 1;
                tracing::warn!(entry = idx, sha256 = %row.sha256, "blob missing from the store; marked in index.csv");
            }
            reason.to_owned()
        }
        None => {
            let member = blob_path(&row.sha256);
            if let Some(f) = blob {
                seen.insert(digest);
                let size = f.metadata().map_err(io)?.len();
                let got = sink.add_reader(&member, size, f).map_err(io)?;
                // Trust nothing stored: a damaged blob must not leave in a bundle.
                if got != digest {
                    return Err(LedgerError::Corrupt(format!(
                        "blob {} (entry {idx}) in the blob store hashes to {}; run `evident verify`",
                        row.sha256,
                        hex(&got)
                    )));
                }
                summary.blobs += 1;
            }
            member
        }
    };
    Ok((content, absent.is_none()))
}

/// Coverage over what the bundle holds only, so the auditor can check every item it names.
fn scoped_coverage(reader: &Reader, b: &Bundle<'_>) -> Result<coverage::Coverage, ExportError> {
    let n = b.cp.size;
    let ids: Vec<&'static str> = match &b.scope.controls {
        Some(c) => c.clone(),
        None => crate::catalog::Catalog::get()
            .all()
            .map(|r| r.id.as_str())
            .collect(),
    };
    let counting = Counting {
        below: n,
        collected_since: b.scope.since.map(rfc3339),
        by_evidence_date: b.scope.by_evidence_date,
        totals: true,
        history: b.scope.history,
    };
    let cov = coverage::compute(reader, b.policies, &ids, b.as_of, &counting)?
        .with_erasures(reader, b.blobs)?;
    Ok(match &b.scope.lineage {
        Some(rules) => cov.with_gaps(reader, b.blobs, rules, n)?,
        None => cov,
    })
}

/// The first ten fields of entry `idx`'s `index.csv` row, from its leaf (not the derived
/// columns: what the auditor recomputes); a v2 leaf's metadata record travels beside it
/// (`meta/<idx>.json`) and gives the URI and title, unless it was erased.
fn index_row(
    reader: &Reader,
    sink: &mut Sink,
    idx: u64,
    leaf: &[u8],
) -> Result<String, LedgerError> {
    let corrupt = |what: String| LedgerError::Corrupt(format!("{what}; run `evident verify`"));
    let st = LeafView::parse(leaf)
        .map_err(|e| corrupt(format!("entry {idx} is not a valid leaf: {e}")))?;
    let meta = reader.meta_record(idx)?;
    let record = match &meta {
        Some(b) => Some(
            MetaRecord::parse(b)
                .map_err(|e| corrupt(format!("entry {idx}'s metadata record is malformed: {e}")))?,
        ),
        None => None,
    };
    let shown = crate::ledger::meta::shown(&st, record.as_ref(), meta.as_deref())
        .map_err(|e| corrupt(format!("entry {idx}: {e}")))?;
    if let Some(b) = &meta {
        sink.add(&meta_path(idx), b)
            .map_err(|error| LedgerError::Io {
                context: format!("writing entry {idx}'s metadata record into the bundle"),
                error,
            })?;
    }
    Ok(index_prefix(idx, &st, (&shown.0, shown.1)))
}

/// The entries a bundle carries whatever its window: what its samples name, the entries
/// with gaps, and every erasure entry (an absent blob is accepted only with its signed
/// erasure); and the erasures by erased entry.
fn carried_entries(
    reader: &Reader,
    b: &Bundle<'_>,
    cov: &coverage::Coverage,
) -> Result<
    (
        BTreeSet<u64>,
        BTreeMap<u64, crate::ledger::erasures::Erasure>,
    ),
    LedgerError,
> {
    let mut extra = b.scope.extra.clone();
    extra.extend(cov.violations.iter().map(|v| v.index));
    let erased = crate::ledger::erasures::all(reader, b.blobs, b.cp.size)?;
    extra.extend(erased.values().map(|e| e.by_entry));
    Ok((extra, erased))
}

fn write_bundle(
    reader: &Reader,
    sink: &mut Sink,
    b: &Bundle<'_>,
    progress: bool,
) -> Result<Summary, ExportError> {
    let n = b.cp.size;
    let hashes = CachedHashes {
        reader,
        cache: RefCell::new(HashMap::new()),
    };
    // Trust nothing stored: the tree must still have the signed root.
    let root = tree_hash(&hashes, n).map_err(LedgerError::from)?;
    if root != b.cp.root {
        return Err(LedgerError::Corrupt(format!(
            "the stored tree of size {n} does not match its signed checkpoint; run `evident verify`"
        ))
        .into());
    }
    let cov = scoped_coverage(reader, b)?;
    let (extra, erased) = carried_entries(reader, b, &cov)?;
    let since = b.scope.since.map(rfc3339).unwrap_or_default();
    let until = b
        .scope
        .until
        .map(rfc3339)
        .unwrap_or_else(|| "\u{10FFFF}".to_owned());

    let earlier = write_head(reader, sink, b, &hashes)?;
    super::sampling::write(reader, sink, &b.scope.populations, &b.scope.samples)?;

    let scratch = sink.scratch().to_path_buf();
    let (index_path, mut index) = scratch_file(&scratch, "index.csv")?;
    writeln!(index, "{INDEX_HEADER}").map_err(io_err)?;
    let mut obs = Observations::create(&scratch, b.origin, &extra).map_err(io_err)?;
    let mut per_control: BTreeMap<String, ControlEvidence> = BTreeMap::new();
    let mut seen: HashSet<Hash> = HashSet::new();
    let mut summary = Summary {
        checkpoint_size: n,
        earlier_checkpoints: earlier,
        as_of: rfc3339(b.as_of),
        ..Summary::default()
    };
    let bar = crate::progress::bar(
        n,
        "exporting {bar:40} {pos}/{len} entries ({per_sec}, {eta} left)",
        progress,
    );
    let mut first_collected: Option<String> = None;
    let window = Window {
        since: &since,
        until: &until,
        by_evidence_date: b.scope.by_evidence_date,
        controls: b.scope.controls.as_deref(),
        extra: &extra,
    };
    reader.for_each_in_scope(n, &window, |row, leaf| {
        let idx = row.index;
        first_collected.get_or_insert_with(|| row.collected_at.clone());
        let io = |e: io::Error| LedgerError::Io {
            context: format!("writing entry {idx} into the bundle"),
            error: e,
        };
        sink.add(&entry_path(idx), &leaf).map_err(io)?;
        let path = inclusion_proof(&hashes, idx, n)?;
        let receipt = TlogProof {
            index: idx,
            path,
            checkpoint: b.note.to_owned(),
        }
        .encode();
        sink.add(&proof_path(idx), receipt.as_bytes()).map_err(io)?;
        let (content, present) = content_of(sink, b, &row, (&mut seen, &erased), &mut summary)?;
        let prefix = index_row(reader, sink, idx, &leaf)?;
        writeln!(
            index,
            "{prefix},{}",
            csv::line(std::iter::once(content.as_str()))
        )
        .map_err(io)?;
        let uuid = obs
            .add(&row, &leaf, present.then_some(content.as_str()))
            .map_err(io)?;
        for c in &row.controls {
            let e = per_control.entry(c.clone()).or_default();
            e.observations.push(uuid);
            e.total += 1;
            e.rows.push_back((row.clone(), present));
            if e.rows.len() > REPORT_ROWS_PER_CONTROL {
                e.rows.pop_front();
            }
        }
        summary.entries += 1;
        bar.set_position(idx + 1);
        Ok(())
    })?;
    bar.finish_and_clear();
    index.flush().map_err(io_err)?;
    drop(index);
    sink.add_file(INDEX, &index_path).map_err(io_err)?;

    write_reports(sink, b, (&cov, &erased), &per_control, &summary)?;
    let start = b
        .scope
        .since
        .map(rfc3339)
        .or(first_collected)
        .unwrap_or_else(|| summary.as_of.clone());
    let oscal_path = obs
        .finish(&oscal::Header {
            origin: b.origin,
            checkpoint_size: n,
            root: &encode_hash(&b.cp.root),
            as_of: &summary.as_of,
            start: &start,
            coverage: &cov,
            evidence: &per_control,
            populations: &b.scope.populations,
            samples: &b.scope.samples,
        })
        .map_err(io_err)?;
    sink.add_file("oscal/assessment-results.json", &oscal_path)
        .map_err(io_err)?;
    Ok(summary)
}
