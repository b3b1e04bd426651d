//! The team service: the HTTP API (`/v1`), metrics and health, served by `evident run`
//! beside the collectors and by `evident serve` read-only over a state directory.
//!
//! Handlers never touch the writer's connection: reads go through a small pool of read-only
//! connections on blocking threads ([`Readers`]), so a slow client or a dense query cannot
//! stall a collector or a commit. Pushes go through the same recorder and writer as the
//! collectors ([`push`]).

pub mod auth;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod listen;
pub mod push;
pub mod session;
pub mod tokens;
pub mod v1;

use std::sync::{Arc, Mutex};

pub use self::error::ApiError;
use self::tokens::{TokenCache, TokenStore};
use crate::coverage::Policies;
use crate::ledger::reader::Reader;
use crate::ledger::state::StateDir;
use crate::metrics::Metrics;

pub use crate::config::api::{ApiConfig, DEFAULT_LISTEN, DEFAULT_MAX_BODY, DEFAULT_RATE_LIMIT};

/// The API's reading side: [`READERS`] threads, each taking the next job from one queue,
/// and a pool of read-only connections (opening one reads the schema, which costs more than
/// most API queries, and each holds its own page cache). Under load a thread finds the next
/// job waiting and never sleeps between requests, where a blocking task per request put a
/// thread to sleep and woke it for every one (a fifth of the CPU in context switches);
/// requests beyond the threads wait in line, first come first served, without a thread or a
/// connection each, which keeps the latency even and the memory flat under many clients.
pub struct Readers {
    state: StateDir,
    idle: Mutex<Vec<Reader>>,
    /// The job queue: threads start with the first job.
    queue: Mutex<Option<std::sync::mpsc::SyncSender<ReadJob>>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("state", &self.state)
            .finish()
    }
}

/// One request's reading, run on a reading thread.
pub type ReadJob = Box<dyn FnOnce() + Send>;

/// Reading threads and connections kept open: twice the cores of the machines we run on.
pub const READERS: usize = 4;

/// Jobs that may wait for a reading thread: twice the connections the server accepts, so
/// only a pile-up of work (abandoned requests are skipped, not run) fills it; a request
/// that finds it full is told to retry (503) rather than queue without bound.
pub const READ_QUEUE: usize = 2 * listen::MAX_CONNECTIONS;

impl Readers {
    /// A pool over the ledger of `state`.
    pub fn new(state: StateDir) -> Self {
        Readers {
            state,
            idle: Mutex::new(Vec::new()),
            queue: Mutex::new(None),
        }
    }

    /// Runs `f` with a pooled reader on this (blocking) thread.
    pub fn with<T>(&self, f: impl FnOnce(&Reader) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
        let reader = match pooled {
            Some(r) => r,
            None => Reader::open(&self.state)?,
        };
        let out = f(&reader);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < READERS
        {
            idle.push(reader);
        }
        out
    }

    /// Queues `job` for the next free reading thread, starting the threads the first time.
    /// The threads end when the pool is dropped (the queue closes).
    pub fn submit(&self, job: ReadJob) -> Result<(), ApiError> {
        let mut queue = self
            .queue
            .lock()
            .map_err(|_| ApiError::internal("the reading queue's lock is poisoned"))?;
        if queue.is_none() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<ReadJob>(READ_QUEUE);
            let rx = Arc::new(Mutex::new(rx));
            for i in 0..READERS {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("api-reader-{i}"))
                    .spawn(move || reading_thread(&rx))
                    .map_err(ApiError::internal)?;
            }
            *queue = Some(tx);
        }
        let tx = queue
            .as_ref()
            .ok_or_else(|| ApiError::internal("the reading threads did not start"))?;
        tx.try_send(job).map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(_) => ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    format!("{READ_QUEUE} reads are waiting already; retry in a moment"),
                )
            },
            std::sync::mpsc::TrySendError::Disconnected(_) => {
                ApiError::internal("the reading threads have stopped")
            }
        })
    }
}

fn reading_thread(rx: &Mutex<std::sync::mpsc::Receiver<ReadJob>>) {
    loop {
        // The lock is held only while waiting: the job runs after it is released.
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A panic fails its request (its answer channel drops), not the thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// What the daemon hands the API so it can write: the open ledger and the checkpoint task.
#[derive(Debug, Clone)]
pub struct WriteSide {
    /// The ledger (writer and blob store) the collectors use.
    pub ledger: Arc<crate::runner::Ledger>,
    /// Wakes the checkpoint task (`?wait=checkpoint`).
    pub checkpoint_now: Arc<tokio::sync::Notify>,
    /// Each new checkpoint size, for `?wait=checkpoint`.
    pub checkpoints: tokio::sync::watch::Receiver<u64>,
    /// Where pushes wait to be recorded together.
    pub push_queue: push::PushQueue,
}

/// A collector as the API lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CollectorInfo {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its schedule (crontab line), if any.
    pub schedule: Option<String>,
}

/// What the API takes from the config; replaced when the daemon reloads it.
#[derive(Debug, Default)]
pub struct Settings {
    /// Freshness and applicability policies.
    pub policies: Policies,
    /// Collectors from the config.
    pub collectors: Vec<CollectorInfo>,
    /// Mapping rules for pushed evidence.
    pub mapper: Arc<crate::mapping::Mapper>,
    /// RFC 3161 anchoring, for exports.
    pub anchoring: Option<crate::anchor::AnchorConfig>,
}

impl Settings {
    /// The settings of `config` (the defaults without one), mapping with `mapper`.
    pub fn new(
        config: Option<&crate::config::Config>,
        mapper: Arc<crate::mapping::Mapper>,
    ) -> Self {
        Settings {
            policies: config.map(Policies::from_config).unwrap_or_default(),
            collectors: config
                .map(|c| {
                    c.collectors
                        .iter()
                        .map(|c| CollectorInfo {
                            name: c.name.clone(),
                            kind: c.source.kind().to_owned(),
                            schedule: c.schedule.as_ref().map(|s| s.text.clone()),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            mapper,
            anchoring: config.and_then(|c| c.anchoring.clone()),
        }
    }
}

/// Everything a request handler can reach.
#[derive(Debug)]
pub struct Api {
    /// The state directory served.
    pub state: StateDir,
    /// Its blob store, opened once (with a bucket: one client for every request).
    pub blobs: crate::ledger::blobs::BlobStore,
    /// Read-only connections.
    pub readers: Readers,
    /// The tokens.
    pub tokens: TokenCache,
    settings: std::sync::RwLock<Arc<Settings>>,
    /// Live collector status, when a daemon serves.
    pub status: Option<Arc<crate::status::Status>>,
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// Per-token request budget.
    pub limiter: auth::RateLimiter,
    /// Settings.
    pub config: ApiConfig,
    /// Present under `evident run`; `None` under `evident serve` (read-only).
    pub write: Option<WriteSide>,
    /// Whether the server speaks TLS (cookies are then `Secure`).
    pub tls: bool,
    /// Dashboard sessions.
    pub sessions: session::Sessions,
    origin: std::sync::OnceLock<String>,
}

impl Api {
    /// The API over `state` with `config`'s settings (or the defaults when there is no
    /// config, as under `evident serve --state-dir`).
    pub fn new(
        state: StateDir,
        config: Option<&crate::config::Config>,
        settings: Settings,
        write: Option<WriteSide>,
        status: Option<Arc<crate::status::Status>>,
    ) -> Api {
        let api_config = config.map(|c| c.api.clone()).unwrap_or_default();
        Api {
            readers: Readers::new(state.clone()),
            tokens: TokenCache::new(TokenStore::new(state.dir())),
            settings: std::sync::RwLock::new(Arc::new(settings)),
            metrics: status
                .as_ref()
                .map_or_else(|| Arc::new(Metrics::new()), |s| s.metrics.clone()),
            status,
            limiter: auth::RateLimiter::new(api_config.rate_limit()),
            tls: api_config.tls_cert.is_some(),
            config: api_config,
            write,
            blobs: state.blobs(),
            state,
            sessions: session::Sessions::default(),
            origin: std::sync::OnceLock::new(),
        }
    }
}

impl Api {
    /// The config-derived settings now.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// The ledger's origin (read once).
    pub fn origin(&self) -> String {
        if let Some(o) = self.origin.get() {
            return o.clone();
        }
        match self.state.origin() {
            Ok(o) => self.origin.get_or_init(|| o).clone(),
            Err(_) => String::new(),
        }
    }

    /// Replaces them (a reload).
    pub fn reconfigure(&self, settings: Settings) {
        if let Ok(mut s) = self.settings.write() {
            *s = Arc::new(settings);
        }
    }
}

/// The whole router: `/v1`, `/metrics`, health.
pub fn router(api: Arc<Api>) -> axum::Router {
    v1::router(api)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// While every reading thread is busy, a read whose request was dropped (timed out,
    /// client gone) is skipped when its turn comes, not run; and a full queue answers 503
    /// at once instead of growing.
    #[tokio::test]
    async fn abandoned_reads_are_skipped_and_a_full_queue_says_busy() {
        let d = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(d.path().join("s"));
        state.init("readers.test/log").expect("init");
        let api = Arc::new(Api::new(state, None, Settings::default(), None, None));
        let (open_tx, open_rx) = std::sync::mpsc::channel::<()>();
        let open_rx = Arc::new(Mutex::new(open_rx));
        let busy = Arc::new(AtomicUsize::new(0));
        for _ in 0..READERS {
            let (open_rx, busy) = (open_rx.clone(), busy.clone());
            api.readers
                .submit(Box::new(move || {
                    busy.fetch_add(1, Ordering::SeqCst);
                    let _ = open_rx.lock().map(|rx| rx.recv());
                }))
                .expect("queued");
        }
        while busy.load(Ordering::SeqCst) < READERS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let abandoned = v1::read(&api, move |_, _| {
            r.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(50), abandoned)
                .await
                .is_err(),
            "no thread was free to answer"
        );
        for _ in 1..READ_QUEUE {
            api.readers.submit(Box::new(|| {})).expect("room left");
        }
        let full = api
            .readers
            .submit(Box::new(|| {}))
            .expect_err("the queue is full");
        assert_eq!(full.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(full.retry_after, Some(1));

        for _ in 0..READERS {
            open_tx.send(()).expect("a thread waits");
        }
        // Once the threads have made room, a read goes through behind the rest.
        let size = loop {
            match v1::read(&api, |_, r| Ok(r.size()?)).await {
                Err(e) if e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                other => break other.expect("read"),
            }
        };
        assert_eq!(size, 0);
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the abandoned read ran");
    }
}
