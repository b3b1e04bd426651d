//! The tamper-evident evidence ledger: Merkle tree, signed checkpoints, leaves, SQLite storage.
//!
//! One writer thread owns the write connection ([`writer`]); everything else reads through
//! read-only connections ([`reader`]). [`state`] knows the state directory's layout and the
//! signing key, [`blobs`] the content store.

pub mod backup;
pub mod blobs;
pub mod erasures;
pub mod evidence;
pub mod leaf;
pub mod lease;
pub mod merkle;
pub mod meta;
pub mod migrate;
pub mod note;
pub mod query;
pub mod reader;
pub mod receipt;
pub mod schema;
pub mod state;
pub mod writer;

#[cfg(test)]
mod crosscheck;
#[cfg(test)]
mod vectors;

use std::path::{Path, PathBuf};

/// Errors of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The ledger exists but its signing key does not.
    #[error(
        "the signing key {0} is missing, but its state directory holds a ledger: restore \
         signing.key from your backup (`evident backup`, see docs/security.md). Checkpoints \
         cannot be signed without it, and `evident init` will not make a new key over \
         existing entries (the auditor's verifier key would no longer match)"
    )]
    KeyMissing(PathBuf),
    /// A writing command run by another user than the one who owns the state directory.
    #[error(
        "the state directory {dir} belongs to {owner}, and this command would leave files \
         there that {owner} cannot use (the service would then fail); run it as that user: \
         sudo -u {owner} evident …"
    )]
    WrongUser {
        /// The state directory.
        dir: String,
        /// Its owner's name (or uid).
        owner: String,
    },
    /// `init` over an existing ledger.
    #[error(
        "{dir} already holds a ledger (origin {origin}); nothing changed. Its verifier key is \
         in {dir}/verifier.vkey. To start a new ledger, choose another state directory \
         (`[ledger] path`) or move this one away first"
    )]
    AlreadyInitialised {
        /// The state directory.
        dir: String,
        /// Its origin.
        origin: String,
    },
    /// There is no ledger yet.
    #[error("no ledger at {0}; run `evident init` first")]
    NotInitialised(PathBuf),
    /// The database cannot be opened.
    #[error("cannot open ledger database {path}: {error}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The error.
        error: rusqlite::Error,
    },
    /// A database operation failed.
    #[error("ledger database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema is from another version.
    #[error("{0}")]
    Schema(String),
    /// The signing key is unusable.
    #[error("{0}")]
    Key(String),
    /// A file operation failed.
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        error: std::io::Error,
    },
    /// The tree could not be read.
    #[error(transparent)]
    Merkle(#[from] merkle::MerkleError),
    /// A signed note could not be made or read.
    #[error(transparent)]
    Note(#[from] note::NoteError),
    /// The config names another log than the one in the state directory.
    #[error(
        "the ledger in {dir} was initialised with origin {ledger:?} but the config says {config:?}; \
         the origin names the log in every checkpoint and cannot change: restore `origin` in the config"
    )]
    OriginMismatch {
        /// State directory.
        dir: PathBuf,
        /// Origin stored in the ledger.
        ledger: String,
        /// Origin in the config.
        config: String,
    },
    /// The writer thread is gone (it failed earlier).
    #[error("the ledger writer stopped: {0}")]
    WriterGone(String),
    /// Stored data is inconsistent.
    #[error("ledger is inconsistent: {0}; run `evident verify`")]
    Corrupt(String),
    /// Where the content lives disagrees with the config, or cannot be reached.
    #[error("{0}")]
    Blobs(String),
}

impl LedgerError {
    pub(crate) fn open(path: &Path, error: rusqlite::Error) -> Self {
        LedgerError::Open {
            path: path.to_owned(),
            error,
        }
    }

    pub(crate) fn io(context: impl Into<String>, error: std::io::Error) -> Self {
        LedgerError::Io {
            context: context.into(),
            error,
        }
    }
}

/// The current time as the ledger writes it: RFC 3339, UTC, whole seconds.
pub fn now_rfc3339() -> String {
    rfc3339(chrono::Utc::now())
}

/// Formats a time as the ledger writes it.
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
