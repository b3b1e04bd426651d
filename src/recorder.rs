//! The recorder: turns a collector's observations into ledger entries.
//!
//! For each chunk of observations it hashes content in parallel (streaming, one read per file
//! that also fills the blob store), makes the chunk's blobs durable with one sync, skips
//! artefacts whose URI and digest are unchanged, maps controls, builds the leaves and hands
//! the chunk to the writer, which commits it while the next chunk is hashed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use chrono::{DateTime, NaiveDate, Utc};
use evident_collectors::hints::document_hints;
use evident_collectors::media::has_front_matter;
use evident_collectors::{Batch, Content, ItemProblem, Known, Observation};
use indicatif::ProgressBar;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::config::ControlId;
use crate::ledger::LedgerError;
use crate::ledger::blobs::{BlobStore, Ingested};
use crate::ledger::erasures::EVIDENT_SOURCE;
use crate::ledger::evidence::counts_as_evidence;
use crate::ledger::leaf::{ERASED_URI, EntryStatement, PREDICATE_TYPE, Predicate, RunSummary, hex};
use crate::ledger::merkle::Hash;
use crate::ledger::reader::LastRun;
use crate::ledger::writer::{ArtefactChange, NewEntry, RunRecord, Touch, WriteBatch, Writer};
use crate::ledger::{now_rfc3339, rfc3339};
use crate::mapping::{Mapper, Subject};

/// The source name of evidence added by hand (`evident add`); a push may not claim it.
pub const MANUAL: &str = "manual";

/// Entries per transaction.
const CHUNK_ENTRIES: usize = 1000;
/// Bytes of new content per chunk: bounds what one sync has to flush.
const CHUNK_BYTES: u64 = 64 << 20;
/// How much of a text document is kept to read its front matter.
const HEAD_LEN: usize = 64 * 1024;
pub use evident_collectors::sources::DEFAULT_MAX_FILE_SIZE;

/// What the recorder needs to know about the source of a batch.
#[derive(Debug, Clone)]
pub struct SourceSettings<'a> {
    /// Collector instance name (`manual` for `evident add`).
    pub name: &'a str,
    /// Collector kind.
    pub kind: &'a str,
    /// Controls for everything it finds.
    pub controls: &'a [ControlId],
    /// Above this size only the hash is kept.
    pub max_file_size: u64,
    /// The API token that pushed the batch, recorded in each entry (`submittedBy`).
    pub submitted_by: Option<&'a str>,
}

/// Whether a run needs its own `collector_run` entry: it recorded something, it is the
/// collector's first, its outcome (ok, partly failed, failed) differs from the last run's, or
/// the last run entry is older than `heartbeat`. Otherwise the run history is enough, and the
/// ledger does not grow by a proof per idle run. The outcome is compared by kind, not by
/// text: an error that names a request ID or a count would otherwise differ on every run.
fn entry_due(stats: &RunStats, last: Option<&LastRun>, heartbeat: std::time::Duration) -> bool {
    let Some(last) = last else {
        return true;
    };
    let outcome = |error: bool, failed: u64| (failed > 0, error && failed == 0);
    if stats.new > 0
        || stats.removed > 0
        || outcome(stats.error.is_some(), stats.failed)
            != outcome(last.error.is_some(), last.failed)
    {
        return true;
    }
    let beat = chrono::Duration::from_std(heartbeat).unwrap_or(chrono::Duration::MAX);
    match last
        .entry_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        Some(t) => Utc::now() - t.with_timezone(&Utc) >= beat,
        None => true,
    }
}

/// Counts for one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunStats {
    /// Collector name.
    pub collector: String,
    /// Entries added for new or changed artefacts.
    pub new: u64,
    /// Artefacts found unchanged.
    pub unchanged: u64,
    /// Artefacts found gone.
    pub removed: u64,
    /// Requests sent to the source (API collectors).
    pub requests: u64,
    /// Items that could not be recorded.
    pub failed: u64,
    /// Problems, in the order met.
    #[serde(skip)]
    pub problems: Vec<ItemProblem>,
    /// The run's fatal error, when the collector failed as a whole.
    pub error: Option<String>,
    /// Whether that error may go away on a retry (network, 5xx) or needs a fix (config).
    #[serde(skip)]
    pub retryable: bool,
    /// When the source said it will take requests again (an exhausted rate limit).
    #[serde(skip)]
    pub retry_after: Option<std::time::Duration>,
    /// Whether the run stopped early because of a shutdown.
    #[serde(skip)]
    pub interrupted: bool,
    /// Indexes of the entries appended for artefacts.
    #[serde(skip)]
    pub indexes: Vec<u64>,
}

impl RunStats {
    fn problem(&mut self, item: impl Into<String>, message: impl Into<String>, failed: bool) {
        let p = ItemProblem {
            item: item.into(),
            message: message.into(),
            failed,
        };
        if failed {
            self.failed += 1;
            tracing::debug!(item = %p.item, "{}", p.message);
        } else {
            tracing::debug!(item = %p.item, "{}", p.message);
        }
        self.problems.push(p);
    }
}

/// Records observations into the ledger.
#[derive(Debug)]
pub struct Recorder<'a> {
    writer: &'a Writer,
    blobs: &'a BlobStore,
    mapper: &'a Mapper,
    progress: bool,
    stop: Option<Arc<AtomicBool>>,
}

/// An observation with its content read.
struct Prepared {
    obs: Observation,
    ingested: Option<Ingested>,
}

impl<'a> Recorder<'a> {
    /// A recorder writing through `writer` into `blobs`. `progress` shows a bar on a terminal.
    pub fn new(
        writer: &'a Writer,
        blobs: &'a BlobStore,
        mapper: &'a Mapper,
        progress: bool,
    ) -> Self {
        Recorder {
            writer,
            blobs,
            mapper,
            progress,
            stop: None,
        }
    }

    /// Stops after the chunk in flight once `stop` is set: a shutdown finishes the batch it
    /// is committing and leaves the rest (unrecorded, so the next run finds it again).
    pub fn with_stop(mut self, stop: Option<Arc<AtomicBool>>) -> Self {
        self.stop = stop;
        self
    }

    fn stopping(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// Records a collector's batch. `known` is what the ledger held for this source when
    /// the collector ran. Item failures are counted, not returned: only ledger errors are.
    pub fn record(
        &self,
        src: &SourceSettings<'_>,
        known: &HashMap<String, Known>,
        batch: Batch,
    ) -> Result<RunStats, LedgerError> {
        let mut stats = RunStats {
            collector: src.name.to_owned(),
            unchanged: batch.unchanged,
            requests: batch.requests,
            ..RunStats::default()
        };
        if let Some(e) = &batch.failure {
            tracing::debug!(collector = %src.name, retryable = e.is_retryable(), "{e}");
            stats.error = Some(e.to_string());
            stats.retryable = e.is_retryable();
            stats.retry_after = e.retry_after();
        }
        for p in batch.problems {
            stats.problem(p.item, p.message, p.failed);
        }
        let observations = allowed(src, batch.observations, &mut stats);
        let bar = self.progress_bar(src.name, &observations);
        let mut observations = observations.into_iter().peekable();
        let mut cursor = batch.cursor.map(|c| (src.name.to_owned(), c.0));
        // A committer thread makes each chunk's blobs durable (one syncfs) and commits its
        // entries while this thread already hashes the next chunk; order is preserved
        // because there is one committer.
        let (tx, rx) = mpsc::sync_channel::<(WriteBatch, bool, Vec<Hash>)>(1);
        let committed = std::thread::scope(|scope| {
            let committer = scope.spawn(move || -> Result<Vec<u64>, LedgerError> {
                let mut appended = Vec::new();
                let mut rx = rx.into_iter();
                while let Some((mut wb, sync, fresh)) = rx.next() {
                    let stored = wb.stored_digests();
                    let discard = std::mem::take(&mut wb.discard);
                    let done = if sync {
                        self.blobs
                            .sync(&stored)
                            .map_err(|e| LedgerError::io("syncing the blob store", e))
                    } else {
                        Ok(())
                    }
                    .and_then(|()| self.writer.append(wb));
                    match done {
                        Ok(a) => {
                            appended.extend(indexes(a));
                            // Every earlier holder's content was erased (the store lacked
                            // it), so nothing else needs these bytes.
                            for d in discard.iter().filter(|d| !stored.contains(d)) {
                                if let Err(e) = self.blobs.remove(d) {
                                    tracing::warn!(
                                        "removing re-read content of an erased version: {e}"
                                    );
                                }
                            }
                        }
                        Err(e) => {
                            // Nothing of this chunk or those queued behind it commits: their
                            // new blobs would be orphans filling the disk that failed.
                            let mut orphans = fresh;
                            orphans.extend(rx.flat_map(|(_, _, f)| f));
                            let n = self.blobs.remove_orphans(&orphans);
                            tracing::debug!(removed = n, "removed blobs of uncommitted entries");
                            return Err(e);
                        }
                    }
                }
                Ok(appended)
            });
            while observations.peek().is_some() {
                if self.stopping() {
                    stats.interrupted = true;
                    cursor = None; // the rest was not recorded: do not move the cursor past it
                    break;
                }
                let mut chunk = Vec::new();
                let mut bytes = 0u64;
                while let Some(o) =
                    observations.next_if(|_| chunk.len() < CHUNK_ENTRIES && bytes < CHUNK_BYTES)
                {
                    bytes += o.fingerprint.map_or(0, |f| f.size);
                    chunk.push(o);
                }
                let prepared = self.prepare(src, chunk, &bar, &mut stats);
                let sync = prepared
                    .iter()
                    .any(|p| p.ingested.as_ref().is_some_and(|i| i.stored));
                let fresh: Vec<Hash> = prepared
                    .iter()
                    .filter_map(|p| p.ingested.as_ref().filter(|i| i.fresh).map(|i| i.sha256))
                    .collect();
                let mut wb = self.build(src, known, prepared, &mut stats);
                if observations.peek().is_none() {
                    wb.cursor = cursor.take();
                }
                if tx.send((wb, sync, fresh)).is_err() {
                    break; // the committer failed; its error is returned below
                }
            }
            if let Some(c) = cursor.take() {
                let _ = tx.send((
                    WriteBatch {
                        cursor: Some(c),
                        ..WriteBatch::default()
                    },
                    false,
                    Vec::new(),
                ));
            }
            drop(tx);
            committer.join().unwrap_or_else(|_| {
                Err(LedgerError::WriterGone(
                    "the committer thread panicked".into(),
                ))
            })
        });
        bar.finish_and_clear();
        stats.indexes = committed?;
        Ok(stats)
    }

    /// Records a finished run in the run history, and appends the `collector_run` entry that
    /// proves it happened when [`entry_due`]. Returns that entry's index.
    pub fn finish_run(
        &self,
        src: &SourceSettings<'_>,
        stats: &RunStats,
        started_at: DateTime<Utc>,
        last: Option<&LastRun>,
        heartbeat: std::time::Duration,
    ) -> Result<Option<u64>, LedgerError> {
        let finished_at = now_rfc3339();
        let started = rfc3339(started_at);
        // Bounded: a run record is permanent, and what a server said is summarised upstream
        // (status, vendor code and message, credentials masked), never kept whole.
        let error = stats
            .error
            .as_deref()
            .map(|e| truncate(e, 500))
            .or_else(|| {
                let failed: Vec<&ItemProblem> =
                    stats.problems.iter().filter(|p| p.failed).collect();
                failed.first().map(|p| {
                    truncate(
                        &format!(
                            "{} item(s) failed; first: {}: {}",
                            failed.len(),
                            p.item,
                            p.message
                        ),
                        300,
                    )
                })
            });
        let history = RunRecord {
            collector: src.name.to_owned(),
            started_at: started.clone(),
            finished_at: finished_at.clone(),
            new: stats.new,
            unchanged: stats.unchanged,
            removed: stats.removed,
            failed: stats.failed,
            error: error.clone(),
        };
        if !entry_due(stats, last, heartbeat) {
            self.writer.append(WriteBatch {
                run: Some(history),
                ..WriteBatch::default()
            })?;
            return Ok(None);
        }
        #[derive(Serialize)]
        struct Record<'r> {
            collector: &'r str,
            kind: &'r str,
            started_at: &'r str,
            finished_at: &'r str,
            stats: &'r RunStats,
            problems: &'r [ItemProblem],
        }
        let problems: Vec<ItemProblem> = stats.problems[..stats.problems.len().min(100)]
            .iter()
            .map(|p| ItemProblem {
                item: truncate(&p.item, 500),
                message: truncate(&p.message, 500),
                failed: p.failed,
            })
            .collect();
        let bounded = RunStats {
            error: error.clone(),
            problems: Vec::new(),
            ..stats.clone()
        };
        let record = Record {
            collector: src.name,
            kind: src.kind,
            started_at: &started,
            finished_at: &finished_at,
            stats: &bounded,
            problems: &problems,
        };
        let bytes = serde_json::to_vec(&record).unwrap_or_default();
        let ingested = self.blobs.ingest_bytes(&bytes, u64::MAX).map_err(|e| {
            LedgerError::io(
                "storing the run record",
                std::io::Error::other(e.to_string()),
            )
        })?;
        self.blobs
            .sync(&[ingested.sha256])
            .map_err(|e| LedgerError::io("syncing the blob store", e))?;
        let uri = format!("run://{}/{}", src.name, started);
        let statement = EntryStatement::new(
            PREDICATE_TYPE,
            &uri,
            &hex(&ingested.sha256),
            Predicate {
                collected_at: finished_at.clone(),
                controls: Vec::new(),
                kind: "collector_run".into(),
                media_type: Some("application/json".into()),
                run: Some(RunSummary {
                    error: self.leaf_error(stats, error),
                    failed: stats.failed.to_string(),
                    finished_at,
                    new: stats.new.to_string(),
                    removed: stats.removed.to_string(),
                    started_at: started,
                    unchanged: stats.unchanged.to_string(),
                }),
                size: Some(ingested.size.to_string()),
                source: src.name.to_owned(),
                title: Some(format!("{} run of collector {}", src.kind, src.name)),
                uri: Some(uri.clone()),
                ..Predicate::default()
            },
        );
        let appended = self
            .writer
            .append(WriteBatch {
                entries: vec![NewEntry::new(statement, true, ArtefactChange::None)],
                run: Some(history),
                ..WriteBatch::default()
            })
            .inspect_err(|_| {
                if ingested.fresh {
                    self.blobs.remove_orphans(&[ingested.sha256]);
                }
            })?;
        Ok(Some(appended.first))
    }

    /// A run's error as its leaf carries it: whole in a v1 ledger; in a v2 ledger only how
    /// many items failed, since an error can quote an item's path or title (the run record,
    /// erasable content, has it whole).
    fn leaf_error(&self, stats: &RunStats, error: Option<String>) -> Option<String> {
        if self.writer.leaf_v2().is_none() {
            return error;
        }
        error.map(|_| match stats.error {
            Some(_) => "the run failed; its run record says why".to_owned(),
            None => format!("{} item(s) failed; its run record names them", stats.failed),
        })
    }

    fn progress_bar(&self, name: &str, obs: &[Observation]) -> ProgressBar {
        let total: u64 = obs
            .iter()
            .map(|o| o.fingerprint.map_or(0, |f| f.size))
            .sum();
        let bar = crate::progress::bar(
            total,
            "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            self.progress && total > 0,
        );
        bar.set_prefix(name.to_owned());
        bar
    }

    /// Reads and hashes a chunk on all cores, keeping the chunk's order.
    fn prepare(
        &self,
        src: &SourceSettings<'_>,
        chunk: Vec<Observation>,
        bar: &ProgressBar,
        stats: &mut RunStats,
    ) -> Vec<Prepared> {
        let n = chunk.len();
        let slots: Vec<Mutex<Option<Result<Prepared, ItemProblem>>>> =
            (0..n).map(|_| Mutex::new(None)).collect();
        let items: Vec<Mutex<Option<Observation>>> =
            chunk.into_iter().map(|o| Mutex::new(Some(o))).collect();
        let next = AtomicUsize::new(0);
        let workers = std::thread::available_parallelism()
            .map_or(2, |p| p.get())
            .clamp(1, 8)
            .min(n.max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let Some(obs) = items[i].lock().ok().and_then(|mut o| o.take()) else {
                            continue;
                        };
                        let r = self.read_content(src, obs);
                        if let Ok(p) = &r {
                            bar.inc(p.ingested.as_ref().map_or(0, |i| i.size));
                        }
                        if let Ok(mut slot) = slots[i].lock() {
                            *slot = Some(r);
                        }
                    }
                });
            }
        });
        let mut out = Vec::with_capacity(n);
        for slot in slots {
            match slot.into_inner().ok().flatten() {
                Some(Ok(p)) => out.push(p),
                Some(Err(p)) => stats.problem(p.item, p.message, p.failed),
                None => stats.problem("?", "internal error: an item was not processed", true),
            }
        }
        out
    }

    fn read_content(
        &self,
        src: &SourceSettings<'_>,
        obs: Observation,
    ) -> Result<Prepared, ItemProblem> {
        let head_len = if has_front_matter(obs.media_type.as_deref()) {
            HEAD_LEN
        } else {
            0
        };
        let ingested = match &obs.content {
            Content::File(path) => Some(
                self.blobs
                    .ingest_file(path, src.max_file_size, head_len, obs.fingerprint)
                    .map_err(|e| ItemProblem {
                        item: obs.uri.clone(),
                        failed: !matches!(
                            e,
                            crate::ledger::blobs::IngestError::Changed(_)
                                | crate::ledger::blobs::IngestError::Refused { .. }
                        ),
                        message: e.to_string(),
                    })?,
            ),
            Content::Bytes(b) => {
                let mut i =
                    self.blobs
                        .ingest_bytes(b, src.max_file_size)
                        .map_err(|e| ItemProblem {
                            item: obs.uri.clone(),
                            message: e.to_string(),
                            failed: true,
                        })?;
                if head_len > 0 {
                    i.head = b[..b.len().min(head_len)].to_vec();
                }
                Some(i)
            }
            Content::Digest { sha256, size } => Some(Ingested {
                sha256: *sha256,
                size: *size,
                stored: false,
                head: Vec::new(),
                fresh: false,
                fingerprint: None,
            }),
            Content::Stored {
                sha256,
                size,
                fresh,
            } => Some(Ingested {
                sha256: *sha256,
                size: *size,
                stored: true,
                head: Vec::new(),
                fresh: *fresh,
                fingerprint: None,
            }),
            Content::Gone { .. } => None,
        };
        Ok(Prepared { obs, ingested })
    }

    /// What the ledger holds for `uri`; an item whose current version had its metadata
    /// erased is known by its artefact.
    fn prior<'k>(&self, known: &'k HashMap<String, Known>, uri: &str) -> Option<&'k Known> {
        known.get(uri).or_else(|| {
            let key = self.writer.leaf_v2()?;
            known.get(&format!("{ERASED_URI}{}", key.of(uri)))
        })
    }

    /// The entry for `statement`: a v2 leaf when the ledger writes them (`ledger::meta`).
    /// Evident's own records keep v1 leaves: they hold no personal data, and other proofs
    /// read their URIs from the leaf.
    fn entry(
        &self,
        src: &SourceSettings<'_>,
        statement: EntryStatement,
        has_blob: bool,
        artefact: ArtefactChange,
    ) -> Result<NewEntry, LedgerError> {
        match self.writer.leaf_v2().filter(|_| src.name != EVIDENT_SOURCE) {
            None => Ok(NewEntry::new(statement, has_blob, artefact)),
            Some(key) => NewEntry::v2(statement, key, has_blob, artefact),
        }
    }

    /// Builds the write batch for a prepared chunk: skips unchanged artefacts, maps controls.
    fn build(
        &self,
        src: &SourceSettings<'_>,
        known: &HashMap<String, Known>,
        prepared: Vec<Prepared>,
        stats: &mut RunStats,
    ) -> WriteBatch {
        let mut wb = WriteBatch::default();
        let collected_at = now_rfc3339();
        for Prepared { obs, ingested } in prepared {
            if !matches!(obs.content, Content::Gone { .. }) && ingested.is_none() {
                continue;
            }
            let hints = ingested
                .as_ref()
                .filter(|i| !i.head.is_empty())
                .map(|i| document_hints(&i.head))
                .unwrap_or_default();
            if let Some(w) = &hints.warning {
                stats.problem(&obs.uri, w.clone(), false);
            }
            let mut hint_ids: Vec<&'static str> = Vec::new();
            for raw in obs.control_hints.iter().chain(&hints.controls) {
                match Catalog::get().resolve(raw) {
                    Ok(id) => hint_ids.push(id),
                    Err(e) => stats.problem(&obs.uri, format!("{e}; the hint was ignored"), false),
                }
            }
            let effective_date = obs
                .effective_date
                .map(|d| d.to_string())
                .or_else(|| hinted_date(&obs.uri, hints.effective_date.as_deref()?, stats));
            let title = obs
                .title
                .clone()
                .or(hints.title)
                .or_else(|| last_segment(obs.path.as_deref().unwrap_or(&obs.uri)));
            let subject = Subject {
                collector: src.name,
                kind: &obs.kind,
                path: obs.path.as_deref(),
                uri: &obs.uri,
                title: title.as_deref(),
            };
            let defaults = crate::mapping::defaults::suggested(&obs.suggest);
            let controls = self
                .mapper
                .controls(&subject, src.controls, &hint_ids, &defaults);
            let prior = self.prior(known, &obs.uri);
            let (sha256, size, has_blob, artefact) = match (&obs.content, &ingested) {
                (Content::Gone { last_sha256 }, _) => {
                    stats.removed += 1;
                    (*last_sha256, None, false, ArtefactChange::Removed)
                }
                (_, Some(i)) => {
                    // Same URI, same digest and the same controls: no entry. (Other
                    // controls with the same digest, from an edited sidecar or rule, are a
                    // re-mapping and get an entry.)
                    let same = prior.filter(|k| {
                        k.sha256 == i.sha256
                            && k.controls
                                .as_deref()
                                .is_none_or(|c| c == controls.join(","))
                    });
                    if let Some(k) = same {
                        // Remember the new stat or change marker so the next run does not
                        // read it again.
                        stats.unchanged += 1;
                        if i.fresh {
                            // The store lacked it: the known version's content was erased.
                            wb.discard.push(i.sha256);
                        }
                        let fingerprint = i.fingerprint.filter(|fp| k.fingerprint != Some(*fp));
                        let version = obs
                            .version
                            .clone()
                            .filter(|v| k.version.as_ref() != Some(v));
                        if fingerprint.is_some() || version.is_some() {
                            wb.touches.push(Touch {
                                uri: obs.uri.clone(),
                                fingerprint,
                                version,
                            });
                        }
                        continue;
                    }
                    stats.new += 1;
                    (
                        i.sha256,
                        Some(i.size),
                        i.stored,
                        ArtefactChange::Present {
                            fingerprint: i.fingerprint,
                            version: obs.version.clone(),
                        },
                    )
                }
                (_, None) => continue,
            };
            let statement = EntryStatement::new(
                PREDICATE_TYPE,
                &obs.uri,
                &hex(&sha256),
                Predicate {
                    collected_at: collected_at.clone(),
                    controls,
                    effective_date,
                    kind: obs.kind.clone(),
                    media_type: obs.media_type.clone(),
                    run: None,
                    size: size.map(|s| s.to_string()),
                    source: src.name.to_owned(),
                    source_updated_at: obs.updated_at.map(rfc3339),
                    submitted_by: src.submitted_by.map(str::to_owned),
                    title,
                    uri: Some(obs.uri.clone()),
                    ..Predicate::default()
                },
            );
            match self.entry(src, statement, has_blob, artefact) {
                Ok(e) => wb.entries.push(e),
                Err(e) => stats.problem(&obs.uri, e.to_string(), true),
            }
        }
        wb
    }
}

/// The observations a source may report: not under Evident's own kinds (run records and
/// removal markers) or URI scheme; the others become failed items.
fn allowed(
    src: &SourceSettings<'_>,
    observations: Vec<Observation>,
    stats: &mut RunStats,
) -> Vec<Observation> {
    // Run records and removal markers are Evident's own kinds: an artefact reported under
    // one (a command collector's JSON) would be miscounted by coverage and verify.
    // So is the `evident:` URI scheme: `evident:artefact:<hex>` names an erased entry's
    // artefact, and a source claiming it would join that artefact's history.
    let (observations, reserved): (Vec<Observation>, Vec<Observation>) =
        observations.into_iter().partition(|o| {
            (matches!(o.content, Content::Gone { .. }) || counts_as_evidence(&o.kind))
                && (src.name == EVIDENT_SOURCE || !reserved_uri(&o.uri))
        });
    for o in reserved {
        let why = if reserved_uri(&o.uri) {
            "URIs starting with \"evident:\" are Evident's own; report the artefact under \
             its source's URI"
                .to_owned()
        } else {
            format!(
                "kind {:?} is reserved for Evident's own run and removal records; \
                 report the artefact under another kind",
                o.kind
            )
        };
        stats.problem(o.uri, why, true);
    }
    observations
}

/// A document's own `effective_date:` hint, when it is a date (else a problem of `uri`).
fn hinted_date(uri: &str, raw: &str, stats: &mut RunStats) -> Option<String> {
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => Some(d.to_string()),
        Err(_) => {
            stats.problem(
                uri,
                format!("effective date {raw:?} is not YYYY-MM-DD; ignored"),
                false,
            );
            None
        }
    }
}

/// Whether `uri` is in Evident's own `evident:` scheme (any case, as URI schemes go).
fn reserved_uri(uri: &str) -> bool {
    uri.get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("evident:"))
}

fn indexes(a: crate::ledger::writer::Appended) -> impl Iterator<Item = u64> {
    a.first..a.first + a.count
}

fn last_segment(s: &str) -> Option<String> {
    s.rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_evident_uri_scheme_is_reserved() {
        assert!(super::reserved_uri("evident:artefact:00"));
        assert!(super::reserved_uri("EVIDENT://erasure/3"));
        assert!(!super::reserved_uri("file:///evident:notes.md"));
        assert!(!super::reserved_uri("evid"));
    }
}
