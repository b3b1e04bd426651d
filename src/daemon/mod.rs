//! `evident run`: the long-running service.
//!
//! One tokio runtime. Each collector is a task on its schedule ([`job`]); a checkpoint task
//! signs when the tree grew; a watchdog task pings systemd. The main loop waits for signals:
//! SIGTERM/SIGINT stop scheduling, let the chunk in flight commit, sign a checkpoint and
//! exit; SIGHUP reloads the config, restarting only the collectors whose settings changed,
//! and keeps the running config if the new one is invalid.

pub mod agent;
pub mod folder_watch;
pub mod job;
pub mod notify;
pub mod retention;
pub mod signed;

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use evident_collectors::SourceConfig;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use self::job::{JobContext, run_job};
use crate::config::{CollectorConfig, Config};
use crate::ledger::state::StateDir;
use crate::lock::StateLock;
use crate::mapping::Mapper;
use crate::runner::Ledger;
use crate::status::{self, Status};

/// How often alert conditions are evaluated (also after every collector run).
const ALERT_EVERY: Duration = Duration::from_secs(60);

/// How long shutdown waits for runs in flight before signing the final checkpoint.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// A running collector task.
struct Job {
    /// The settings it runs with; a reload restarts it when they differ.
    key: String,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
    /// The folder watch that wakes it, for `watch = true` collectors.
    _watch: Option<folder_watch::FolderWatch>,
}

struct Daemon {
    alerts: crate::alerts::Alerts,
    config_path: PathBuf,
    config: Config,
    cx: Arc<JobContext>,
    jobs: HashMap<String, Job>,
    /// The API, when it serves: a reload gives it the new policies and collectors.
    api: Option<Arc<crate::api::Api>>,
    /// Each signed checkpoint's size, for pushes that wait for one.
    checkpoints: watch::Sender<u64>,
}

/// The identity of a collector's settings together with the rules that map its findings.
fn job_key(c: &CollectorConfig, rules_key: &str) -> String {
    format!("{c:?}|{rules_key}")
}

impl Daemon {
    fn rules_key(config: &Config) -> String {
        format!("{:?}", config.rules)
    }

    /// Starts, restarts or stops jobs so they match `self.config`.
    fn sync_jobs(&mut self) {
        let rules_key = Self::rules_key(&self.config);
        let wanted: HashMap<&str, &CollectorConfig> = self
            .config
            .collectors
            .iter()
            .map(|c| (c.name.as_str(), c))
            .collect();
        let gone: Vec<String> = self
            .jobs
            .keys()
            .filter(|n| !wanted.contains_key(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(job) = self.jobs.remove(&name) {
                let _ = job.stop.send(true);
                self.cx.status.forget(&name);
                tracing::info!(collector = %name, "collector removed");
            }
        }
        for c in &self.config.collectors {
            let key = job_key(c, &rules_key);
            if self.jobs.get(&c.name).is_some_and(|j| j.key == key) {
                continue;
            }
            let previous = self.jobs.remove(&c.name).map(|old| {
                let _ = old.stop.send(true);
                tracing::info!(collector = %c.name, "collector settings changed; restarting it");
                old.handle
            });
            let (stop, rx) = watch::channel(false);
            let (wake, folder_watch) = self.start_watch(c);
            let handle = tokio::spawn(run_job(self.cx.clone(), c.clone(), rx, previous, wake));
            tracing::info!(
                collector = %c.name,
                kind = c.source.kind(),
                schedule = c.schedule.as_ref().map_or("once at start", |s| s.text.as_str()),
                "collector scheduled"
            );
            self.jobs.insert(
                c.name.clone(),
                Job {
                    key,
                    stop,
                    handle,
                    _watch: folder_watch,
                },
            );
        }
    }

    /// Starts the folder watch of a `watch = true` collector; a failure falls back to the
    /// schedule with a warning.
    fn start_watch(
        &self,
        c: &CollectorConfig,
    ) -> (Option<Arc<Notify>>, Option<folder_watch::FolderWatch>) {
        let SourceConfig::Filesystem(fs) = &c.source else {
            return (None, None);
        };
        if !fs.watch {
            return (None, None);
        }
        let wake = Arc::new(Notify::new());
        match folder_watch::watch(&fs.root, self.cx.ledger.state.dir(), wake.clone()) {
            Ok(w) => {
                tracing::info!(collector = %c.name, root = %fs.root.display(), "watching for changes");
                (Some(wake), Some(w))
            }
            Err(e) => {
                tracing::warn!(collector = %c.name, "cannot watch {}: {e}; collecting on schedule only", fs.root.display());
                (None, None)
            }
        }
    }

    /// SIGHUP: read the config again; apply it if valid and compatible.
    fn reload(&mut self) {
        notify::reloading();
        match Config::load(&self.config_path) {
            Err(e) => tracing::error!("config reload refused, the running config stays: {e}"),
            Ok(new)
                if new.ledger.origin != self.config.ledger.origin
                    || new.ledger.path != self.config.ledger.path =>
            {
                tracing::error!(
                    "config reload refused: [ledger] path and origin cannot change while running; restart the service to use another ledger"
                );
            }
            Ok(new) => {
                let rules_changed = Self::rules_key(&new) != Self::rules_key(&self.config)
                    || new.ledger.heartbeat() != self.config.ledger.heartbeat();
                if rules_changed {
                    // Jobs hold the mapper and heartbeat: a new context makes every job
                    // restart with them.
                    self.cx = Arc::new(JobContext {
                        ledger: self.cx.ledger.clone(),
                        mapper: Arc::new(Mapper::new(new.rules.clone())),
                        status: self.cx.status.clone(),
                        stopping: self.cx.stopping.clone(),
                        heartbeat: new.ledger.heartbeat(),
                        queue_full: self.cx.queue_full.clone(),
                    });
                }
                self.alerts.set_targets(new.alerts.clone());
                self.config = new;
                self.sync_jobs();
                if let Some(api) = &self.api {
                    api.reconfigure(crate::api::Settings::new(
                        Some(&self.config),
                        self.cx.mapper.clone(),
                    ));
                }
                tracing::info!(collectors = self.config.collectors.len(), "config reloaded");
            }
        }
        notify::ready(&self.cx.status.line(&self.cx.ledger.state));
    }

    async fn checkpoint(&self) {
        let status = self.cx.status.clone();
        let ledger = self.cx.ledger.clone();
        let after = signed::AfterSigning::from_config(&self.config);
        let signed = tokio::task::spawn_blocking(move || {
            // An export or `evident checkpoint` in progress signs one itself: skip this tick.
            let _lock = match crate::lock::job_lock(
                ledger.state.dir(),
                crate::lock::CHECKPOINT_JOB,
                "a checkpoint or export",
                crate::lock::Wait::No,
            ) {
                Ok(l) => l,
                Err(e) => {
                    tracing::info!("checkpoint skipped: {e}");
                    return Ok(None);
                }
            };
            let cp = ledger.writer.checkpoint()?;
            after.run(&ledger, &status, &cp);
            Ok::<_, crate::ledger::LedgerError>(Some(cp))
        });
        match signed.await {
            Ok(Ok(Some(cp))) => {
                if cp.new {
                    tracing::info!(size = cp.size, "checkpoint signed");
                }
                self.checkpoints.send_replace(cp.size);
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::error!("signing a checkpoint failed: {e}"),
            Err(e) => tracing::error!("checkpoint task failed: {e}"),
        }
    }

    /// Reads the facts the alerts judge, then queues and delivers transitions.
    async fn evaluate_alerts(&mut self) {
        let ledger = self.cx.ledger.clone();
        let policies = crate::coverage::Policies::from_config(&self.config);
        let status = self.cx.status.clone();
        let facts = tokio::task::spawn_blocking(
            move || -> Result<crate::alerts::Facts, crate::ledger::LedgerError> {
                let r = crate::ledger::reader::Reader::open(&ledger.state)?;
                let cov = crate::coverage::all_now(&r, &policies, false)?;
                let size = r.size()?;
                let covered = r.latest_checkpoint()?.map_or(0, |(s, _)| s);
                // The oldest entry no checkpoint covers yet: how long it has waited.
                let uncovered_for = match r.entry(covered)? {
                    Some(e) if covered < size => {
                        chrono::DateTime::parse_from_rfc3339(&e.collected_at)
                            .ok()
                            .and_then(|t| chrono::Utc::now().signed_duration_since(t).to_std().ok())
                    }
                    _ => None,
                };
                let (anchoring_error, self_verify_error) = status.errors();
                Ok(crate::alerts::Facts {
                    controls: cov
                        .controls
                        .iter()
                        .filter(|c| {
                            matches!(
                                c.status,
                                crate::coverage::Status::Stale | crate::coverage::Status::Missing
                            )
                        })
                        .map(|c| (c.id.to_owned(), c.status.as_str(), c.why.clone()))
                        .collect(),
                    collectors: status
                        .snapshot()
                        .into_iter()
                        .map(|(n, c)| (n, c.consecutive_failures, c.last_error))
                        .collect(),
                    uncovered: size.saturating_sub(covered),
                    uncovered_for,
                    anchoring_error,
                    self_verify_error,
                })
            },
        )
        .await;
        match facts {
            Ok(Ok(f)) => {
                self.alerts.observe(&f);
                self.alerts.deliver().await;
            }
            Ok(Err(e)) => tracing::warn!("evaluating alerts failed: {e}"),
            Err(e) => tracing::warn!("the alert task failed: {e}"),
        }
    }

    /// `[ledger] self_verify`: the whole ledger checked as `evident verify` would.
    async fn self_verify(&self) {
        let ledger = self.cx.ledger.clone();
        let status = self.cx.status.clone();
        let outcome =
            tokio::task::spawn_blocking(
                move || -> Result<Option<String>, crate::ledger::LedgerError> {
                    let r = crate::ledger::reader::Reader::open(&ledger.state)?;
                    let verifier = ledger.state.verifier()?;
                    let report =
                        crate::verify::verify_ledger(&r, &ledger.blobs, &verifier, &[], false)?;
                    Ok(report.findings.problems.first().map(|p| {
                        format!("{} problem(s); first: {}", report.findings.total(), p.what)
                    }))
                },
            )
            .await;
        match outcome {
            Ok(Ok(None)) => {
                tracing::info!("self-verification passed");
                status.set_self_verify_error(None);
            }
            Ok(Ok(Some(p))) => {
                tracing::error!(
                    "self-verification FAILED: {p}; run `evident verify` for the full report"
                );
                status.set_self_verify_error(Some(p));
            }
            Ok(Err(e)) => {
                tracing::error!("self-verification could not run: {e}");
                status.set_self_verify_error(Some(e.to_string()));
            }
            Err(e) => tracing::error!("the self-verification task failed: {e}"),
        }
    }

    async fn shutdown(mut self) {
        notify::stopping();
        tracing::info!("stopping: finishing the batch in flight");
        self.cx.stopping.store(true, Ordering::Relaxed);
        let handles: Vec<JoinHandle<()>> = self
            .jobs
            .drain()
            .map(|(_, j)| {
                let _ = j.stop.send(true);
                j.handle
            })
            .collect();
        let all = futures_join(handles);
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!(
                "a collector did not stop within {SHUTDOWN_GRACE:?}; its unrecorded findings will be collected next time"
            );
        }
        self.checkpoint().await;
        release_lease(&self.cx.ledger.state, &self.config.ledger.origin).await;
    }
}

/// Starts the API server when `[api]` enables it. A port already taken fails the start
/// when `[api] listen` was set explicitly, and only warns for the default (two test or
/// development daemons on one host).
async fn start_api(
    config: &Config,
    cx: &Arc<JobContext>,
    write: crate::api::WriteSide,
    stop: watch::Receiver<bool>,
    pushes: tokio::sync::mpsc::Receiver<crate::api::push::PushJob>,
) -> anyhow::Result<Option<Arc<crate::api::Api>>> {
    if !config.api.enabled {
        return Ok(None);
    }
    let tls = match (&config.api.tls_cert, &config.api.tls_key) {
        (Some(c), Some(k)) => Some(crate::api::listen::tls_acceptor(c, k)?),
        _ => None,
    };
    let listener = match crate::api::listen::bind(config.api.listen()).await {
        Ok(l) => l,
        Err(e) if config.api.listen.is_none() => {
            tracing::warn!("the API is off: {e}");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let addr = listener.local_addr().context("reading the API's address")?;
    let api = Arc::new(crate::api::Api::new(
        cx.ledger.state.clone(),
        Some(config),
        crate::api::Settings::new(Some(config), cx.mapper.clone()),
        Some(write),
        Some(cx.status.clone()),
    ));
    let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
    cx.status.set_api_url(Some(url.clone()));
    tokio::spawn(crate::api::push::serve_queue(api.clone(), pushes));
    tracing::info!(url = %url, "API and dashboard listening");
    tokio::spawn(crate::api::listen::serve(
        listener,
        tls,
        crate::api::router(api.clone()),
        stop,
    ));
    Ok(Some(api))
}

async fn futures_join(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

/// Gives the sequencer lease up after the final checkpoint, so a standby can take over at
/// once (docs/scaling.md, failover).
async fn release_lease(state: &StateDir, origin: &str) {
    let (dir, origin) = (state.dir().to_owned(), origin.to_owned());
    let released = tokio::task::spawn_blocking(move || {
        crate::ledger::lease::Lease::for_ledger(&dir, &origin).map(|l| l.release())
    })
    .await;
    match released {
        Ok(Some(Ok(()))) => tracing::info!("released the sequencer lease"),
        Ok(Some(Err(e))) => tracing::warn!("could not release the sequencer lease: {e}"),
        Ok(None) | Err(_) => {}
    }
}

/// Creates or opens the state directory, takes its lock and initialises a new ledger (a
/// service may start on an empty directory); returns the log's verifier key.
fn open_state(
    config: &Config,
    state_override: Option<&Path>,
) -> anyhow::Result<(StateDir, StateLock, String)> {
    let state =
        StateDir::new(state_override.map_or_else(|| config.ledger.path.clone(), Path::to_path_buf));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state.dir())
        .with_context(|| format!("creating the state directory {}", state.dir().display()))?;
    state.check_owner()?;
    let lock = StateLock::acquire(state.dir())?;
    // A no-op on an existing ledger, which also checks the origin.
    let outcome = state.open_or_init(&config.ledger.origin)?;
    if outcome.created {
        tracing::warn!(
            state = %state.dir().display(),
            verifier_key = %outcome.verifier.key_string(),
            "initialised a new ledger; give the verifier key to your auditor (also in verifier.vkey)"
        );
    }
    let key = outcome.verifier.key_string();
    Ok((state, lock, key))
}

/// With `[agent]`, the forwarder and how often it runs; its settings are checked (the
/// token loaded) before the daemon starts.
fn forwarder(
    config: &Config,
    config_path: &Path,
    ledger: &Ledger,
) -> anyhow::Result<Option<agent::Forwarding>> {
    let Some(a) = &config.agent else {
        return Ok(None);
    };
    let base = config_path.parent().unwrap_or(Path::new("."));
    let forwarder = crate::agent::Forwarder::new(ledger.state.clone(), a, base)?;
    Ok(Some(agent::Forwarding {
        forwarder,
        every: a.interval(),
        max_pending: a.max_pending(),
    }))
}

/// Runs the daemon in the foreground until SIGTERM or SIGINT.
pub fn run(config_path: &Path, state_override: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let (state, _lock, verifier_key) = open_state(&config, state_override)?;
    let ledger = Arc::new(Ledger::open_configured(state, &config)?);
    let forwarder = forwarder(&config, config_path, &ledger)?;
    // Two workers: the API's connections (HTTP parsing, JSON) share them with the
    // collectors' requests; ledger work runs on blocking threads either way.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .enable_io()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        let cx = Arc::new(JobContext {
            ledger: ledger.clone(),
            mapper: Arc::new(Mapper::new(config.rules.clone())),
            status: Arc::new(Status::default()),
            stopping: Arc::new(AtomicBool::new(false)),
            heartbeat: config.ledger.heartbeat(),
            queue_full: Arc::new(AtomicBool::new(false)),
        });
        cx.status.keep_file(&ledger.state);
        let checkpoint_every = config.ledger.checkpoint_interval();
        let initial_size = crate::ledger::reader::Reader::open(&ledger.state)
            .and_then(|r| r.latest_checkpoint())
            .ok()
            .flatten()
            .map_or(0, |(s, _)| s);
        let (checkpoints, checkpoints_rx) = watch::channel(initial_size);
        let checkpoint_now = Arc::new(Notify::new());
        let (api_stop, api_stop_rx) = watch::channel(false);
        let (push_queue, pushes) = crate::api::push::PushQueue::new();
        let api = start_api(
            &config,
            &cx,
            crate::api::WriteSide {
                ledger: ledger.clone(),
                checkpoint_now: checkpoint_now.clone(),
                checkpoints: checkpoints_rx,
                push_queue,
            },
            api_stop_rx,
            pushes,
        )
        .await?;
        let mut daemon = Daemon {
            alerts: crate::alerts::Alerts::new(
                config.alerts.clone(),
                ledger.state.dir(),
                &config.ledger.origin,
            ),
            config_path: config_path.to_owned(),
            config,
            cx,
            jobs: HashMap::new(),
            api,
            checkpoints,
        };
        daemon.sync_jobs();
        let _agent = forwarder.map(|f| agent::spawn(f, &daemon.cx));
        let _retention = retention::spawn(&daemon.config.retention, &daemon.cx);
        // Entries recorded before the service started get their proofs now.
        daemon.checkpoint().await;
        let watchdog = notify::watchdog_period().map(|p| p / 2);
        let mut watchdog_tick =
            tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        let mut checkpoint_tick = tokio::time::interval(checkpoint_every);
        checkpoint_tick.tick().await; // the first tick is immediate; the first signing is one interval in
        let mut status_tick = tokio::time::interval(Duration::from_secs(10));
        let mut alert_tick = tokio::time::interval(ALERT_EVERY);
        let self_verify_every = daemon.config.ledger.self_verify.map(|i| i.0);
        let mut self_verify_tick =
            tokio::time::interval(self_verify_every.unwrap_or(Duration::from_secs(86_400)));
        self_verify_tick.tick().await; // the first verification is one interval in
        notify::ready(&daemon.cx.status.line(&ledger.state));
        tracing::info!(
            config = %config_path.display(),
            state = %ledger.state.dir().display(),
            verifier_key = %verifier_key,
            collectors = daemon.jobs.len(),
            checkpoint_interval_s = checkpoint_every.as_secs(),
            "evident is running"
        );
        loop {
            // A queue held back by its target's min_interval goes out when the interval ends.
            let alerts_due = daemon.alerts.next_due();
            tokio::select! {
                _ = term.recv() => break,
                _ = tokio::time::sleep(alerts_due.unwrap_or(Duration::MAX)), if alerts_due.is_some() => daemon.alerts.deliver().await,
                _ = int.recv() => break,
                _ = hup.recv() => daemon.reload(),
                _ = watchdog_tick.tick(), if watchdog.is_some() => notify::watchdog(),
                _ = checkpoint_tick.tick() => daemon.checkpoint().await,
                // A push waits for its proof: sign now rather than at the next tick.
                _ = checkpoint_now.notified() => daemon.checkpoint().await,
                _ = status_tick.tick() => notify::status(&daemon.cx.status.line(&ledger.state)),
                _ = alert_tick.tick(), if !daemon.alerts.is_empty() => daemon.evaluate_alerts().await,
                _ = daemon.cx.status.changed_notify.notified(), if !daemon.alerts.is_empty() => daemon.evaluate_alerts().await,
                _ = self_verify_tick.tick(), if self_verify_every.is_some() => daemon.self_verify().await,
            }
        }
        let _ = api_stop.send(true);
        daemon.shutdown().await;
        let _ = std::fs::remove_file(ledger.state.dir().join(status::STATUS_FILE));
        tracing::info!("stopped");
        anyhow::Ok(())
    });
    // A collector blocked in a system call (a hung mount, a lock held elsewhere) sits in a
    // blocking thread that nothing can cancel; the final checkpoint is signed, so leave it
    // behind instead of waiting past systemd's TimeoutStopSec for a SIGKILL.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
