//! One run of one collector, end to end: what `evident collect` and the daemon share; and
//! the same recording for a batch no collector produced (`evident add`).
//!
//! Reads what the ledger knows about the collector's artefacts and its cursor, awaits the
//! collector, then records the batch and the run (its `collector_run` entry when one is due)
//! on a blocking thread (the recorder hashes files and waits for commits, which must not
//! stall an async runtime).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use evident_collectors::{Batch, CollectContext, Cursor};

use crate::config::CollectorConfig;
use crate::ledger::LedgerError;
use crate::ledger::blobs::BlobStore;
use crate::ledger::reader::Reader;
use crate::ledger::state::StateDir;
use crate::ledger::writer::Writer;
use crate::mapping::Mapper;
use crate::recorder::{DEFAULT_MAX_FILE_SIZE, Recorder, RunStats, SourceSettings};

/// What every run needs: the open ledger.
#[derive(Debug)]
pub struct Ledger {
    /// The state directory.
    pub state: StateDir,
    /// The one writer.
    pub writer: Writer,
    /// The blob store.
    pub blobs: BlobStore,
}

impl Ledger {
    /// Opens the ledger in `state` for writing as `config` describes it: its origin, and
    /// where its content lives (`[blobs]`, recorded in the state directory on first use).
    pub fn open_configured(
        state: StateDir,
        config: &crate::config::Config,
    ) -> Result<Ledger, LedgerError> {
        crate::ledger::blobs::apply_config(state.dir(), config.blobs.as_ref())?;
        crate::ledger::meta::apply_leaf_version(&state, config.ledger.leaf_version)?;
        Ledger::open(state, &config.ledger.origin)
    }

    /// Opens the ledger in `state` for writing, checking its origin.
    pub fn open(state: StateDir, origin: &str) -> Result<Ledger, LedgerError> {
        let writer = Writer::open(&state, origin)?;
        let blobs = state.blobs();
        blobs
            .create_dirs()
            .map_err(|e| LedgerError::io("creating the blob store", e))?;
        blobs.clean_tmp();
        Ok(Ledger {
            state,
            writer,
            blobs,
        })
    }
}

/// How a run should behave.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Ignore cursors and stat caches.
    pub full: bool,
    /// Draw a progress bar.
    pub progress: bool,
    /// Set to stop after the chunk in flight (shutdown).
    pub stop: Option<Arc<AtomicBool>>,
    /// How often a run that changes nothing still appends its `collector_run` entry.
    pub heartbeat: std::time::Duration,
}

/// Runs collector `cfg` once and records what it found. A collector failure is part of the
/// returned stats (`error`); only ledger failures are errors.
pub async fn run_collector(
    ledger: &Arc<Ledger>,
    cfg: &CollectorConfig,
    mapper: &Arc<Mapper>,
    opts: &RunOptions,
) -> Result<RunStats, LedgerError> {
    let started = chrono::Utc::now();
    let reader = Reader::open(&ledger.state)?;
    let known = Arc::new(reader.known_for_source(&cfg.name)?);
    // The recorder also sees the current versions whose metadata was erased (collectors
    // do not: they would report them removed under the erased name).
    let erased = reader.erased_known_for_source(&cfg.name)?;
    let for_recorder = if erased.is_empty() {
        known.clone()
    } else {
        let mut all = (*known).clone();
        all.extend(erased);
        Arc::new(all)
    };
    let last = reader.last_run(&cfg.name)?;
    let cursor = if opts.full {
        None
    } else {
        reader.cursor(&cfg.name)?.map(Cursor)
    };
    drop(reader);
    let cx = CollectContext {
        known: known.clone(),
        full: opts.full,
        private_paths: vec![ledger.state.dir().to_owned()],
    };
    let outcome = match cfg.source.build(&cfg.name, &cfg.common()) {
        Ok(collector) => collector.collect(&cx, cursor.as_ref()).await,
        Err(e) => Err(e),
    };
    let (ledger, cfg, mapper, opts) = (ledger.clone(), cfg.clone(), mapper.clone(), opts.clone());
    tokio::task::spawn_blocking(move || {
        let src = SourceSettings {
            name: &cfg.name,
            kind: cfg.source.kind(),
            controls: &cfg.controls,
            max_file_size: cfg.max_file_size.map_or(DEFAULT_MAX_FILE_SIZE, |s| s.0),
            submitted_by: None,
        };
        let recorder = Recorder::new(&ledger.writer, &ledger.blobs, &mapper, opts.progress)
            .with_stop(opts.stop.clone());
        let stats = match outcome {
            Ok(batch) => recorder.record(&src, &for_recorder, batch)?,
            Err(e) => {
                tracing::debug!(collector = %cfg.name, retryable = e.is_retryable(), "{e}");
                RunStats {
                    collector: cfg.name.clone(),
                    error: Some(e.to_string()),
                    retryable: e.is_retryable(),
                    retry_after: e.retry_after(),
                    ..RunStats::default()
                }
            }
        };
        recorder.finish_run(&src, &stats, started, last.as_ref(), opts.heartbeat)?;
        Ok(stats)
    })
    .await
    .map_err(|e| LedgerError::WriterGone(format!("recording task failed: {e}")))?
}

/// Records Evident's own records (populations, samples, erasures) as source `evident`: no
/// controls, no mapping rules, in one batch.
pub fn record_own(
    ledger: &Ledger,
    observations: Vec<evident_collectors::Observation>,
) -> Result<RunStats, LedgerError> {
    let src = SourceSettings {
        name: crate::ledger::erasures::EVIDENT_SOURCE,
        kind: crate::ledger::erasures::EVIDENT_SOURCE,
        controls: &[],
        max_file_size: u64::MAX,
        submitted_by: None,
    };
    record_batch(
        ledger,
        &src,
        &Mapper::new(Vec::new()),
        evident_collectors::Batch {
            observations,
            ..evident_collectors::Batch::default()
        },
        false,
    )
}

/// Records a batch that no collector produced (`evident add`) as source `src`: looks up what
/// the ledger holds for its URIs (so unchanged files are skipped), then records it as a
/// collector's batch is recorded. Item failures are in the stats; only ledger failures are
/// errors.
pub fn record_batch(
    ledger: &Ledger,
    src: &SourceSettings<'_>,
    mapper: &Mapper,
    batch: Batch,
    progress: bool,
) -> Result<RunStats, LedgerError> {
    let reader = Reader::open(&ledger.state)?;
    let mut known = std::collections::HashMap::new();
    for o in &batch.observations {
        if let Some(k) = reader.known(&o.uri)? {
            known.insert(o.uri.clone(), k);
        }
    }
    Recorder::new(&ledger.writer, &ledger.blobs, mapper, progress).record(src, &known, batch)
}
