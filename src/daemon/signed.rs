//! What follows a signed checkpoint in the daemon: its RFC 3161 timestamp (`[anchoring]`),
//! the witnesses' cosignatures (`[[witnesses]]`), then the tiles (`[publish]`), in that
//! order so the published checkpoint carries its cosignatures. A step that fails is logged
//! when it starts failing and when it recovers, and retried at the next checkpoint tick;
//! the checkpoint itself is already stored and never lost.

use crate::anchor::AnchorConfig;
use crate::config::Config;
use crate::config::witness::WitnessConfig;
use crate::ledger::reader::Reader;
use crate::ledger::writer::SignedCheckpoint;
use crate::runner::Ledger;
use crate::status::Status;
use crate::tiles::PublishConfig;
use crate::witness::client::{names, witness_checkpoint};

/// The steps configured.
#[derive(Debug, Clone)]
pub struct AfterSigning {
    anchoring: Option<AnchorConfig>,
    witnesses: Vec<WitnessConfig>,
    quorum: usize,
    publish: Option<PublishConfig>,
}

impl AfterSigning {
    /// The steps `config` asks for.
    pub fn from_config(config: &Config) -> Self {
        AfterSigning {
            anchoring: config.anchoring.clone(),
            witnesses: config.witnesses.clone(),
            quorum: config.witness_quorum(),
            publish: config.publish.clone(),
        }
    }

    /// Runs the steps for `cp`.
    pub fn run(&self, ledger: &Ledger, status: &Status, cp: &SignedCheckpoint) {
        // A TSA that is down loses nothing: the next checkpoint asks again.
        if let Some(a) = self.anchoring.as_ref().filter(|_| cp.new) {
            match a.ensure(&ledger.state, &ledger.writer, cp.size, &cp.note) {
                Ok(t) => {
                    status.set_anchoring_error(None);
                    tracing::info!(size = cp.size, time = %t.stamp.time, "checkpoint timestamped")
                }
                Err(e) => {
                    status.metrics.anchoring_failures.inc();
                    status.set_anchoring_error(Some(e.to_string()));
                    tracing::warn!(size = cp.size, "anchoring the checkpoint failed: {e}")
                }
            }
        }
        if !self.witnesses.is_empty() {
            self.witness(ledger, cp);
        }
        if let Some(p) = &self.publish {
            publish(p, ledger, status, (&names(&self.witnesses), self.quorum));
        }
    }

    fn witness(&self, ledger: &Ledger, cp: &SignedCheckpoint) {
        let tally = Reader::open(&ledger.state)
            .map_err(Into::into)
            .and_then(|r| {
                witness_checkpoint(
                    &r,
                    &ledger.writer,
                    &self.witnesses,
                    self.quorum,
                    (cp.size, &cp.note),
                )
            });
        let tally = match tally {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(size = cp.size, "witnessing the checkpoint failed: {e}");
                return;
            }
        };
        for w in &tally.asked {
            match &w.outcome {
                Ok(c) => {
                    tracing::info!(size = cp.size, witness = %w.witness, time = c.time, "checkpoint cosigned")
                }
                // Asked again at each tick until it answers: loud only for a new checkpoint.
                Err(e) if cp.new => tracing::warn!(size = cp.size, "{e}"),
                Err(e) => tracing::debug!(size = cp.size, "{e}"),
            }
        }
        if !tally.witnessed() && cp.new {
            tracing::warn!(
                size = cp.size,
                cosigned = tally.cosigned,
                quorum = tally.quorum,
                "checkpoint not witnessed yet: it stays signed and stored, and is published \
                 once enough witnesses cosign it"
            );
        }
    }
}

/// Tiles that fail to publish are written at the next tick: nothing is lost. A failure that
/// persists is logged when it starts and when it ends.
fn publish(p: &PublishConfig, ledger: &Ledger, status: &Status, witnesses: (&[String], usize)) {
    match p.publish(&ledger.state, witnesses) {
        Ok(done) => {
            if status.set_publish_error(None) {
                tracing::info!(to = %p.url, "publishing the tiles works again");
            }
            if let Some(done) = done.filter(|d| d.objects > 0) {
                tracing::info!(
                    size = done.size,
                    objects = done.objects,
                    bytes = done.bytes,
                    to = %p.url,
                    "tiles published"
                );
            }
        }
        Err(e) => {
            if status.set_publish_error(Some(e.to_string())) {
                tracing::warn!(
                    to = %p.url,
                    "publishing the tiles failed (retried at each checkpoint tick): {e}"
                );
            }
        }
    }
}
