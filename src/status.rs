//! What the daemon knows about itself: each collector's last run, outcome, failures in a row
//! and next run; the one-line `STATUS=` for systemd; `daemon-status.json` for
//! `evident status`; and the "run now" handle per collector that the API pulls.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::ledger::reader::Reader;
use crate::ledger::state::StateDir;
use crate::metrics::Metrics;

/// The file the daemon keeps its status in, for `evident status`.
pub const STATUS_FILE: &str = "daemon-status.json";

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Everything recorded.
    Ok,
    /// The run finished, but some items could not be recorded.
    Partial,
    /// The run failed as a whole.
    Failed,
}

impl Outcome {
    /// How a run in the run history ended.
    pub fn from_run(run: &crate::ledger::writer::RunRecord) -> Self {
        match (run.failed > 0, run.error.is_some()) {
            (true, _) => Outcome::Partial,
            (false, true) => Outcome::Failed,
            (false, false) => Outcome::Ok,
        }
    }

    /// The printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
        }
    }
}

/// One collector as the daemon sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorState {
    /// A run is in progress.
    pub running: bool,
    /// When the last run finished.
    pub last_run_at: Option<String>,
    /// How it ended.
    pub last_outcome: Option<Outcome>,
    /// How long it took, milliseconds.
    pub last_duration_ms: Option<u64>,
    /// When a run last succeeded (ok or partial).
    pub last_success_at: Option<String>,
    /// Failed runs in a row.
    pub consecutive_failures: u32,
    /// The last failed run's error.
    pub last_error: Option<String>,
    /// When the next run is due (a retry after a failure, or the schedule's next tick).
    pub next_run_at: Option<String>,
}

/// What `daemon-status.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusFile {
    /// The daemon's process id.
    pub pid: u32,
    /// When it started.
    pub started_at: String,
    /// When this file was written.
    pub written_at: String,
    /// Where the API listens (`http://127.0.0.1:8742`), when it does.
    pub api_url: Option<String>,
    /// Per collector.
    pub collectors: BTreeMap<String, CollectorState>,
}

#[derive(Debug, Default)]
struct Inner {
    last_run: Option<(String, String)>,
    collectors: BTreeMap<String, CollectorState>,
    api_url: Option<String>,
    anchoring_error: Option<String>,
    self_verify_error: Option<String>,
    publish_error: Option<String>,
}

/// What the daemon reports about itself.
#[derive(Debug)]
pub struct Status {
    inner: Mutex<Inner>,
    triggers: Mutex<HashMap<String, Arc<Notify>>>,
    /// The metrics collector runs are counted in.
    pub metrics: Arc<Metrics>,
    started_at: String,
    /// Where [`STATUS_FILE`] is kept current, when set.
    file_in: Mutex<Option<StateDir>>,
    /// Wakes the alert evaluation when something it judges changed (a run ended, a
    /// checkpoint was signed or anchored, a self-verification finished).
    pub changed_notify: Notify,
}

impl Default for Status {
    fn default() -> Self {
        Self::new(Arc::new(Metrics::new()))
    }
}

impl Status {
    /// A status that also counts runs in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Status {
            inner: Mutex::new(Inner::default()),
            triggers: Mutex::new(HashMap::new()),
            metrics,
            started_at: crate::ledger::now_rfc3339(),
            file_in: Mutex::new(None),
            changed_notify: Notify::new(),
        }
    }

    /// Records the outcome of the newest anchoring attempt (`None`: it worked).
    pub fn set_anchoring_error(&self, error: Option<String>) {
        if let Ok(mut s) = self.inner.lock() {
            s.anchoring_error = error;
        }
        self.changed_notify.notify_one();
    }

    /// Records the outcome of the newest tile publication (`None`: it worked); true when
    /// that differs from the one before, so a failure that persists is logged once.
    pub fn set_publish_error(&self, error: Option<String>) -> bool {
        self.inner.lock().is_ok_and(|mut s| {
            let changed = s.publish_error != error;
            s.publish_error = error;
            changed
        })
    }

    /// Records the outcome of the newest self-verification (`None`: it passed).
    pub fn set_self_verify_error(&self, error: Option<String>) {
        if let Ok(mut s) = self.inner.lock() {
            s.self_verify_error = error;
        }
        self.changed_notify.notify_one();
    }

    /// The newest anchoring and self-verification errors.
    pub fn errors(&self) -> (Option<String>, Option<String>) {
        self.inner
            .lock()
            .map(|s| (s.anchoring_error.clone(), s.self_verify_error.clone()))
            .unwrap_or_default()
    }

    /// Keeps [`STATUS_FILE`] in `state` current from now on (the daemon; `evident status`
    /// reads it).
    pub fn keep_file(&self, state: &StateDir) {
        if let Ok(mut f) = self.file_in.lock() {
            *f = Some(state.clone());
        }
        self.write(state);
    }

    fn changed(&self) {
        let state = self.file_in.lock().ok().and_then(|f| f.clone());
        if let Some(state) = state {
            self.write(&state);
        }
    }

    fn with(&self, collector: &str, f: impl FnOnce(&mut CollectorState)) {
        if let Ok(mut s) = self.inner.lock() {
            f(s.collectors.entry(collector.to_owned()).or_default());
        }
    }

    /// Records that `collector` finished a run.
    pub fn ran(&self, collector: &str, outcome: Outcome, took: Duration, error: Option<&str>) {
        let now = crate::ledger::now_rfc3339();
        let mut failures = 0;
        self.with(collector, |c| {
            c.running = false;
            c.last_run_at = Some(now.clone());
            c.last_outcome = Some(outcome);
            c.last_duration_ms = Some(took.as_millis() as u64);
            if outcome == Outcome::Failed {
                c.consecutive_failures += 1;
                c.last_error = error.map(str::to_owned);
            } else {
                c.consecutive_failures = 0;
                c.last_success_at = Some(now.clone());
                c.last_error = error.map(str::to_owned);
            }
            failures = c.consecutive_failures;
        });
        if let Ok(mut s) = self.inner.lock() {
            s.last_run = Some((collector.to_owned(), now));
        }
        self.metrics
            .collector_run(collector, outcome.as_str(), took, failures);
        self.changed();
        self.changed_notify.notify_one();
    }

    /// Records that a run of `collector` started.
    pub fn started(&self, collector: &str) {
        self.with(collector, |c| c.running = true);
        self.changed();
    }

    /// Records when `collector` runs next.
    pub fn next_run(&self, collector: &str, at: Option<DateTime<Utc>>) {
        self.with(collector, |c| {
            c.next_run_at = at.map(crate::ledger::rfc3339);
        });
        self.changed();
    }

    /// Where the API listens.
    pub fn set_api_url(&self, url: Option<String>) {
        if let Ok(mut s) = self.inner.lock() {
            s.api_url = url;
        }
        self.changed();
    }

    /// Forgets a collector that was removed by a reload.
    pub fn forget(&self, collector: &str) {
        if let Ok(mut s) = self.inner.lock() {
            s.collectors.remove(collector);
        }
        if let Ok(mut t) = self.triggers.lock() {
            t.remove(collector);
        }
    }

    /// The handle a job waits on for "run now"; created with the job.
    pub fn trigger_handle(&self, collector: &str) -> Arc<Notify> {
        let Ok(mut t) = self.triggers.lock() else {
            return Arc::new(Notify::new());
        };
        t.entry(collector.to_owned())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Starts a run of `collector` now; says why not when it cannot.
    pub fn trigger(&self, collector: &str) -> Result<(), String> {
        let handle = self
            .triggers
            .lock()
            .ok()
            .and_then(|t| t.get(collector).cloned())
            .ok_or_else(|| format!("no collector named {collector:?} runs in this daemon"))?;
        if self.snapshot().get(collector).is_some_and(|c| c.running) {
            return Err(format!(
                "collector {collector:?} is running now; its next run starts when it is done"
            ));
        }
        handle.notify_one();
        Ok(())
    }

    /// Every collector's state.
    pub fn snapshot(&self) -> BTreeMap<String, CollectorState> {
        self.inner
            .lock()
            .map(|s| s.collectors.clone())
            .unwrap_or_default()
    }

    /// The status file's content now.
    pub fn file(&self) -> StatusFile {
        let (collectors, api_url) = self
            .inner
            .lock()
            .map(|s| (s.collectors.clone(), s.api_url.clone()))
            .unwrap_or_default();
        StatusFile {
            pid: std::process::id(),
            started_at: self.started_at.clone(),
            written_at: crate::ledger::now_rfc3339(),
            api_url,
            collectors,
        }
    }

    /// Writes `daemon-status.json` (replaced atomically, private to the daemon's user).
    pub fn write(&self, state: &StateDir) {
        let path = state.dir().join(STATUS_FILE);
        if let Err(e) = crate::ledger::state::replace_private_json(&path, &self.file(), false) {
            tracing::debug!("cannot write {}: {e}", path.display());
        }
    }

    /// `"<n> entries; last run <collector> at <time>; failing: <names|none>"`.
    pub fn line(&self, state: &StateDir) -> String {
        let entries = Reader::open(state)
            .and_then(|r| r.size())
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        let Ok(s) = self.inner.lock() else {
            return format!("{entries} entries");
        };
        let last = s.last_run.as_ref().map_or_else(
            || "no run yet".to_owned(),
            |(c, t)| format!("last run {c} at {t}"),
        );
        let failing: Vec<&str> = s
            .collectors
            .iter()
            .filter(|(_, c)| c.last_outcome == Some(Outcome::Failed))
            .map(|(n, _)| n.as_str())
            .collect();
        let failing = if failing.is_empty() {
            "none".to_owned()
        } else {
            failing.join(", ")
        };
        format!("{entries} entries; {last}; failing: {failing}")
    }
}
