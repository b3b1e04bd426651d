//! One collector's life in the daemon: wait for its schedule, run, back off after failures.
//!
//! A collector has exactly one task, so two runs of it never overlap; ticks that pass while
//! a run is still going are skipped and logged. After a failure the next attempt comes after
//! an exponential backoff with jitter (10 s doubling to an hour), whatever the schedule says;
//! the first success returns the collector to its schedule.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::CollectorConfig;
use crate::lock::collector_job;
use crate::mapping::Mapper;
use crate::recorder::RunStats;
use crate::runner::{Ledger, RunOptions, run_collector};
use crate::status::{Outcome, Status};

/// First retry delay after a failed run.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// How long the daemon waits for one run unless `run_timeout` says otherwise.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(3600);

/// What one attempt ends with.
type Attempt = Result<crate::recorder::RunStats, String>;

/// Everything a job needs.
pub struct JobContext {
    /// The open ledger.
    pub ledger: Arc<Ledger>,
    /// Mapping rules.
    pub mapper: Arc<Mapper>,
    /// Shared status for `STATUS=` lines.
    pub status: Arc<Status>,
    /// Set at shutdown: recorders stop after the chunk in flight.
    pub stopping: Arc<AtomicBool>,
    /// `[ledger] heartbeat`.
    pub heartbeat: Duration,
    /// Set while a remote agent's queue is full (`[agent] max_pending`): runs wait.
    pub queue_full: Arc<AtomicBool>,
}

/// The delay before retry number `failures` (1-based): doubling from 10 s up to an hour,
/// with ±25 % jitter so many failing collectors do not retry in lockstep.
pub fn backoff(failures: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let capped = exp.min(BACKOFF_MAX);
    let mut b = [0u8; 2];
    let r = if getrandom::fill(&mut b).is_ok() {
        u16::from_le_bytes(b)
    } else {
        0x8000
    };
    // factor in [0.75, 1.25)
    let factor = 0.75 + f64::from(r) / f64::from(u16::MAX) / 2.0;
    capped.mul_f64(factor)
}

/// Runs collector `cfg` until `stop` turns true. `previous` is the task this one replaces
/// (after a reload); it is awaited first so the two never run at once.
pub async fn run_job(
    cx: Arc<JobContext>,
    cfg: CollectorConfig,
    mut stop: watch::Receiver<bool>,
    previous: Option<JoinHandle<()>>,
    wake: Option<Arc<Notify>>,
) {
    if let Some(p) = previous {
        let _ = p.await;
    }
    let name = cfg.name.clone();
    let run_timeout = cfg.run_timeout.map_or(DEFAULT_RUN_TIMEOUT, |t| t.0);
    // A run abandoned at its timeout that has not ended yet (blocked in a system call).
    let mut stuck: Option<(JoinHandle<Attempt>, DateTime<Utc>)> = None;
    let due_now = due_at_start(&cx, &cfg).await;
    let run_now = cx.status.trigger_handle(&name);
    let mut first = true;
    let mut failures = 0u32;
    let mut retry_at: Option<DateTime<Utc>> = None;
    loop {
        let now = Utc::now();
        let tick = cfg.schedule.as_ref().and_then(|s| s.after(&now).next());
        // After a failure the backoff decides, even past scheduled ticks: retrying every
        // second because the schedule says so would hammer a broken source.
        let when = match retry_at {
            Some(r) => Some(r),
            None if first && due_now => Some(now),
            None => tick,
        };
        first = false;
        // Without a next time, only a folder event (or the stop) can start a run.
        let delay = when.map(|w| (w - now).to_std().unwrap_or(Duration::ZERO));
        cx.status.next_run(&name, when);
        let folder_event = tokio::select! {
            _ = sleep_or_forever(delay) => false,
            _ = woken(wake.as_deref()) => true,
            // Asked through the API: run now, as a tick would.
            _ = run_now.notified() => false,
            _ = stop.wait_for(|s| *s) => return,
        };
        if folder_event && let Some(w) = wake.as_deref() {
            settle(w).await;
        }
        if cx.queue_full.load(std::sync::atomic::Ordering::Relaxed) {
            // The queue is bounded: the agent's disk must not fill while the centre is
            // away. Not a failure: the next tick runs as usual once it drained.
            tracing::warn!(
                collector = %name,
                "run skipped: this agent's queue is full ([agent] max_pending entries the \
                 centre has not acknowledged)"
            );
            // The next schedule tick (or folder event) decides, not a past retry time.
            retry_at = None;
            continue;
        }
        let started = Utc::now();
        let opts = RunOptions {
            full: false,
            progress: false,
            stop: Some(cx.stopping.clone()),
            heartbeat: cx.heartbeat,
        };
        if let Some((h, since)) = &stuck {
            if h.is_finished() {
                stuck = None;
            } else {
                failures += 1;
                let wait = backoff(failures);
                retry_at = Some(Utc::now() + wait);
                tracing::error!(
                    collector = %name,
                    since = %since.to_rfc3339(),
                    retry_in_s = wait.as_secs(),
                    "collector failed: its run abandoned at the run_timeout is still blocked (a hung file system or device?); not started again until it ends"
                );
                cx.status.ran(
                    &name,
                    Outcome::Failed,
                    Duration::ZERO,
                    Some("the run abandoned at the run_timeout is still blocked"),
                );
                continue;
            }
        }
        cx.status.started(&name);
        let mut attempt = tokio::spawn(attempt(cx.clone(), cfg.clone(), opts));
        let result = match tokio::time::timeout(run_timeout, &mut attempt).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(format!("the run's task failed: {e}")),
            Err(_) => {
                stuck = Some((attempt, started));
                Err(format!(
                    "the run did not finish within {}s (run_timeout); abandoned",
                    run_timeout.as_secs()
                ))
            }
        };
        let finished = Utc::now();
        let took = (finished - started).to_std().unwrap_or_default();
        if let Some(s) = &cfg.schedule {
            let missed = s.after(&started).take_while(|t| *t < finished).count();
            if missed > 0 {
                tracing::info!(
                    collector = %name,
                    skipped = missed,
                    "run took longer than the schedule; skipped {missed} tick(s)"
                );
            }
        }
        retry_at = outcome(&cx, &name, result, took, &mut failures);
    }
}

/// Logs a run's outcome and records it in the live status; after a failure, counts it and
/// returns when to try again.
fn outcome(
    cx: &JobContext,
    name: &str,
    result: Result<RunStats, String>,
    took: Duration,
    failures: &mut u32,
) -> Option<DateTime<Utc>> {
    match result {
        Ok(stats) if stats.error.is_none() => {
            *failures = 0;
            tracing::info!(
                collector = %name,
                new = stats.new,
                unchanged = stats.unchanged,
                removed = stats.removed,
                failed = stats.failed,
                duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                "collected"
            );
            let mut first_problem = None;
            for p in stats.problems.iter().filter(|p| p.failed) {
                tracing::warn!(collector = %name, item = %p.item, "{}", p.message);
                first_problem.get_or_insert_with(|| format!("{}: {}", p.item, p.message));
            }
            let outcome = if stats.failed > 0 {
                Outcome::Partial
            } else {
                Outcome::Ok
            };
            cx.status.ran(name, outcome, took, first_problem.as_deref());
            None
        }
        Ok(stats) => {
            *failures += 1;
            // A rate limit's reset beats our own backoff: retrying earlier is refused.
            let wait = backoff(*failures).max(stats.retry_after.unwrap_or_default());
            let error = stats.error.unwrap_or_default();
            tracing::warn!(
                collector = %name,
                attempt = *failures,
                retry_in_s = wait.as_secs(),
                "collector failed: {error}"
            );
            cx.status.ran(name, Outcome::Failed, took, Some(&error));
            Some(Utc::now() + wait)
        }
        Err(e) => {
            *failures += 1;
            let wait = backoff(*failures);
            tracing::error!(collector = %name, attempt = *failures, retry_in_s = wait.as_secs(), "collector failed: {e}");
            cx.status.ran(name, Outcome::Failed, took, Some(&e));
            Some(Utc::now() + wait)
        }
    }
}

/// Whether a collector runs as soon as the daemon starts: always without a schedule; with
/// one, when it never ran or its last run is older than the schedule's period (a new install
/// with `0 3 * * 1-5` would otherwise stay empty until the next weekday at 03:00).
async fn due_at_start(cx: &Arc<JobContext>, cfg: &CollectorConfig) -> bool {
    let Some(schedule) = &cfg.schedule else {
        return true;
    };
    let state = cx.ledger.state.clone();
    let name = cfg.name.clone();
    let last = tokio::task::spawn_blocking(move || {
        crate::ledger::reader::Reader::open(&state).and_then(|r| r.last_run(&name))
    })
    .await
    .ok()
    .and_then(Result::ok)
    .flatten()
    .and_then(|t| DateTime::parse_from_rfc3339(&t.finished_at).ok())
    .map(|t| t.with_timezone(&Utc));
    let now = Utc::now();
    let mut ticks = schedule.after(&now);
    let period = match (ticks.next(), ticks.next()) {
        (Some(a), Some(b)) => b - a,
        _ => return false,
    };
    match last {
        None => {
            tracing::info!(collector = %cfg.name, "never run before: running it now, then on its schedule");
            true
        }
        Some(t) if now - t > period => {
            tracing::info!(
                collector = %cfg.name,
                last_run = %t.to_rfc3339(),
                "last run is older than the schedule's period: running it now"
            );
            true
        }
        Some(_) => false,
    }
}

/// One run: the collector's writer lock (a `collect` of it in another process finishes
/// first), then collect and record.
async fn attempt(cx: Arc<JobContext>, cfg: CollectorConfig, opts: RunOptions) -> Attempt {
    let dir = cx.ledger.state.dir().to_owned();
    let job = collector_job(&cfg.name);
    let what = format!("a run of collector `{}`", cfg.name);
    let lock = tokio::task::spawn_blocking(move || {
        crate::lock::job_lock(&dir, &job, &what, crate::lock::Wait::Yes)
    })
    .await
    .map_err(|e| format!("the lock task failed: {e}"))?
    .map_err(|e| e.to_string())?;
    let result = run_collector(&cx.ledger, &cfg, &cx.mapper, &opts).await;
    drop(lock);
    result.map_err(|e| format!("recording failed: {e}"))
}

async fn sleep_or_forever(delay: Option<Duration>) {
    match delay {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// How long folder events must be quiet before a woken collector scans.
const SETTLE_QUIET: Duration = Duration::from_millis(200);
/// The longest a burst of events may postpone the scan.
const SETTLE_MAX: Duration = Duration::from_secs(3);

/// Waits until no folder event arrived for [`SETTLE_QUIET`] (at most [`SETTLE_MAX`]), so a
/// burst that outlasts one debounce window (a copy of thousands of files) still causes one
/// scan rather than one per window.
async fn settle(wake: &Notify) {
    let deadline = tokio::time::Instant::now() + SETTLE_MAX;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SETTLE_QUIET) => return,
            _ = tokio::time::sleep_until(deadline) => return,
            _ = wake.notified() => {}
        }
    }
}

async fn woken(wake: Option<&Notify>) {
    match wake {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        for n in 1..6u32 {
            let b = backoff(n).as_secs_f64();
            let nominal = 10.0 * f64::from(1u32 << (n - 1));
            assert!(b >= nominal * 0.74 && b <= nominal * 1.26, "{n}: {b}");
        }
        assert!(backoff(40).as_secs_f64() <= 3600.0 * 1.26);
    }
}
