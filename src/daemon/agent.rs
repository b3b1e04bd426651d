//! The agent's forwarding loop: drains the local ledger to the centre every `[agent]
//! interval`, backing off after failures (each failure logged once, and its end), until the
//! daemon stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::agent::Forwarder;

/// The longest wait between two attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Runs `fwd` every `every` until `stop` is set.
pub fn spawn(fwd: Forwarder, stop: Arc<AtomicBool>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = every;
        let mut failing: Option<String> = None;
        loop {
            match fwd.drain(&stop).await {
                Ok(done) => {
                    if done.sent + done.already > 0 {
                        tracing::info!(
                            sent = done.sent,
                            already = done.already,
                            pending = done.pending,
                            "forwarded to the centre"
                        );
                    }
                    if failing.take().is_some() {
                        tracing::info!("the centre answers again; forwarding resumed");
                    }
                    wait = every;
                }
                Err(e) => {
                    let message = e.to_string();
                    if failing.as_deref() != Some(message.as_str()) {
                        tracing::warn!("{message}; entries wait in this agent's ledger");
                    }
                    failing = Some(message);
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
            // Wakes once a second to see a stop: a stopping daemon must not wait out a
            // five-minute backoff.
            let until = Instant::now() + wait;
            loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(left.min(Duration::from_secs(1))).await;
            }
        }
    })
}
