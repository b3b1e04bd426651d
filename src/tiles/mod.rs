//! The ledger published as C2SP `tlog-tiles` ([`layout`]): written after each checkpoint to
//! a directory a web server serves ([`publish`], [`store`]), and checked from the tiles
//! alone by anyone holding the log's key ([`check`]), as Sunlight, Tessera and Rekor v2 logs
//! are read.

pub mod check;
pub mod layout;
pub mod publish;
pub mod store;

use std::path::PathBuf;

use crate::ledger::LedgerError;

/// Errors of publishing or reading tiles.
#[derive(Debug, thiserror::Error)]
pub enum TileError {
    /// A location that cannot be used.
    #[error("{0}")]
    Url(String),
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An object could not be fetched.
    #[error("fetching {what}: {message}")]
    Fetch {
        /// The URL or file.
        what: String,
        /// Why.
        message: String,
    },
    /// Reading the ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A leaf too long for an entry bundle's 16-bit length.
    #[error(
        "entry {index} is {len} bytes, more than the 65,535 a tlog-tiles entry bundle can carry; \
         the published checkpoint stays where it was"
    )]
    EntryTooLarge {
        /// The entry.
        index: u64,
        /// Its leaf's length.
        len: usize,
    },
    /// What the store already holds conflicts with this ledger.
    #[error("will not publish to {store}: {why}")]
    Published {
        /// The store.
        store: String,
        /// What conflicts, and what to do.
        why: String,
    },
}

/// `[publish]`: where the log's tiles go after each checkpoint: the directory (an absolute
/// path or `file:///dir`) a web server serves, or a bucket and prefix (`s3://bucket/prefix`).
pub type PublishConfig = crate::objects::StorageConfig;

impl PublishConfig {
    /// Checks the URL names a place tiles can be written, without touching it.
    pub fn validate(&self) -> Result<(), String> {
        self.check_settings("[publish]")?;
        if self.lease.is_some() {
            return Err(
                "[publish] lease: the sequencer lease goes in [blobs], beside the content"
                    .to_owned(),
            );
        }
        if self.bucket_url().is_some() {
            return Ok(());
        }
        let path = self.url.strip_prefix("file://").unwrap_or(&self.url);
        if self.url.contains("://") && !self.url.starts_with("file://") {
            return Err(format!(
                "[publish] url {:?}: tiles are published to a directory (an absolute path or \
                 file:///dir) that a web server serves, or to a bucket (s3://bucket/prefix)",
                self.url
            ));
        }
        if !path.starts_with('/') {
            return Err(format!(
                "[publish] url {:?} must be an absolute path (the service's working directory \
                 is not yours)",
                self.url
            ));
        }
        Ok(())
    }

    /// The place this publishes to.
    pub fn store(&self) -> Result<store::Store, TileError> {
        match self.url.strip_prefix("s3://") {
            Some(_) => store::Store::bucket(self),
            None => store::Store::open(&self.url),
        }
    }

    /// Publishes the ledger's latest checkpoint and the tiles it covers; with witnesses
    /// (their key names and the quorum), the latest checkpoint that many cosigned, with
    /// their cosignatures.
    pub fn publish(
        &self,
        state: &crate::ledger::state::StateDir,
        witnesses: (&[String], usize),
    ) -> Result<Option<publish::Published>, TileError> {
        let store = self.store()?;
        let reader = crate::ledger::reader::Reader::open(state)?;
        let (names, quorum) = witnesses;
        let note = if names.is_empty() {
            reader.latest_checkpoint()?
        } else {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            match reader.latest_witnessed(&names, quorum)? {
                Some(n) => Some(n),
                // Nothing witnessed yet: nothing to publish.
                None => return Ok(None),
            }
        };
        match note {
            Some(n) => publish::publish(&reader, &store, &state.verifier()?, Some(n)),
            None => Ok(None),
        }
    }
}
