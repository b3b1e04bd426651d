//! Collectors for Evident: the [`Collector`] trait, [`Observation`], and the source systems.
//!
//! A collector turns a source system (a folder, a model registry, a CI server…) into
//! observations. It never touches the ledger: the recorder in the `evident` crate hashes,
//! maps and appends what collectors return. That split keeps every collector testable as
//! "real server or fixture in, observations out".

pub mod driver;
pub mod error;
pub mod hints;
pub mod http;
pub mod media;
pub mod observation;
pub mod sidecar;
pub mod sources;
pub mod units;

use std::collections::HashMap;
use std::sync::Arc;

pub use error::CollectError;
pub use observation::{Content, Fingerprint, Known, Observation, Suggest};
pub use sources::SourceConfig;

/// An opaque, collector-defined resume point persisted by the ledger between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

/// A problem with one item that did not stop the run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ItemProblem {
    /// The path or URI concerned.
    pub item: String,
    /// What went wrong and what to do about it.
    pub message: String,
    /// True when the item could not be collected (it counts as failed); false for items
    /// deliberately skipped (a symlink leading outside the root, a loop).
    pub failed: bool,
}

/// What one collection run found.
#[derive(Debug, Default)]
pub struct Batch {
    /// New or changed artefacts, and removals.
    pub observations: Vec<Observation>,
    /// Artefacts seen and known unchanged without reading them.
    pub unchanged: u64,
    /// Items skipped or failed, with reasons.
    pub problems: Vec<ItemProblem>,
    /// Where the next run resumes; `None` leaves the stored cursor as it is.
    pub cursor: Option<Cursor>,
    /// Requests sent to the source (API collectors).
    pub requests: u64,
    /// The run stopped early: what was found before is recorded, and the run is reported
    /// failed with this error (a program that exited non-zero, an exhausted rate limit).
    pub failure: Option<CollectError>,
    /// A scratch directory holding downloaded content ([`Content::File`] paths point into
    /// it); removed when the batch, once recorded, is dropped.
    pub scratch: Option<tempfile::TempDir>,
}

/// What the recorder already knows, handed to a collector so it can skip unchanged work.
#[derive(Debug, Clone, Default)]
pub struct CollectContext {
    /// Artefacts of this collector still present in the ledger, by URI.
    pub known: Arc<HashMap<String, Known>>,
    /// Ignore cursors and caches: look at everything again.
    pub full: bool,
    /// Paths a collector must never read: the ledger's own state directory (reading its
    /// database from the daemon's process would drop SQLite's POSIX locks on close).
    pub private_paths: Vec<std::path::PathBuf>,
}

/// A source of evidence.
#[async_trait::async_trait]
pub trait Collector: Send + Sync + std::fmt::Debug {
    /// The collector kind, as written in `kind = "…"`.
    fn kind(&self) -> &'static str;
    /// The instance name from the config.
    fn name(&self) -> &str;
    /// Collects observations since `cursor`.
    async fn collect(
        &self,
        cx: &CollectContext,
        cursor: Option<&Cursor>,
    ) -> Result<Batch, CollectError>;
    /// Checks that the source is reachable and the credentials work.
    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        Ok(())
    }
}
