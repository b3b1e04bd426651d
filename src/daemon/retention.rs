//! The daemon's retention job: applies `[[retention.rules]]` on `[retention] schedule`
//! (docs/erasure.md), each erasure signed before any content goes, as `evident erase
//! --retention` does.

use std::sync::atomic::Ordering;

use chrono::Utc;
use tokio::task::JoinHandle;

use super::job::JobContext;
use crate::config::retention::RetentionConfig;
use crate::erasure::{self, ErasureError};
use crate::ledger::reader::Reader;
use crate::runner::Ledger;

/// Starts the job when there are rules (their schedule was checked with the config).
pub fn spawn(config: &RetentionConfig, cx: &JobContext) -> Option<JoinHandle<()>> {
    if config.rules.is_empty() {
        return None;
    }
    let schedule = config.schedule().ok()?;
    let rules = config.rules.clone();
    let (ledger, stop) = (cx.ledger.clone(), cx.stopping.clone());
    Some(tokio::spawn(async move {
        loop {
            let now = Utc::now();
            let Some(next) = schedule.after(&now).next() else {
                return;
            };
            tokio::time::sleep((next - now).to_std().unwrap_or_default()).await;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let (ledger, rules) = (ledger.clone(), rules.clone());
            match tokio::task::spawn_blocking(move || run_once(&ledger, &rules)).await {
                Ok(Ok(0)) => tracing::debug!("retention: nothing due"),
                Ok(Ok(n)) => tracing::info!(
                    erased = n,
                    "retention: erased the content of entries past their retention period"
                ),
                Ok(Err(e)) => tracing::warn!("retention: {e}"),
                Err(e) => tracing::warn!("retention: the job failed: {e}"),
            }
        }
    }))
}

/// One pass: what is due now, erased under the `erase` job lock.
fn run_once(
    ledger: &Ledger,
    rules: &[crate::config::retention::RetentionRule],
) -> Result<usize, ErasureError> {
    let _lock = crate::lock::job_lock(
        ledger.state.dir(),
        "erase",
        "an `evident erase`",
        crate::lock::Wait::No,
    )
    .map_err(|e| ErasureError::Refused(format!("{e}; the next scheduled run tries again")))?;
    let reader = Reader::open(&ledger.state)?;
    let targets = erasure::due(&reader, &ledger.blobs, rules, Utc::now())?;
    drop(reader);
    if targets.is_empty() {
        return Ok(0);
    }
    Ok(erasure::apply(ledger, &targets, "evident retention", Utc::now())?.len())
}
