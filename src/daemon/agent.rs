//! The agent's forwarding loop: drains the local ledger to the centre every `[agent]
//! interval`, backing off after failures (each failure logged once, and its end), until the
//! daemon stops.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::job::JobContext;
use crate::agent::Forwarder;

/// The longest wait between two attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What the daemon forwards, how often, and the queue's bound.
#[derive(Debug)]
pub struct Forwarding {
    /// The forwarder.
    pub forwarder: Forwarder,
    /// How often to look for entries.
    pub every: Duration,
    /// Entries waiting for the centre beyond which collectors pause.
    pub max_pending: u64,
}

/// Runs the forwarder until the daemon stops; sets `cx.queue_full` while more than
/// `max_pending` entries wait.
pub fn spawn(f: Forwarding, cx: &JobContext) -> JoinHandle<()> {
    let (stop, full) = (cx.stopping.clone(), cx.queue_full.clone());
    let Forwarding {
        forwarder: fwd,
        every,
        max_pending,
    } = f;
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
            match fwd.pending().await {
                Ok(n) => {
                    let was = full.swap(n > max_pending, Ordering::Relaxed);
                    if was != (n > max_pending) {
                        if was {
                            tracing::info!(
                                pending = n,
                                "the agent's queue drained; collecting resumes"
                            );
                        } else {
                            tracing::warn!(
                                pending = n,
                                max_pending,
                                "the agent's queue is full; collectors pause until the centre takes it"
                            );
                        }
                    }
                }
                Err(e) => tracing::warn!("cannot tell how many entries wait: {e}"),
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
