//! Witnesses (`c2sp.org/tlog-witness`, `c2sp.org/tlog-cosignature`): parties that cosign a
//! log's checkpoints only when each extends the last one they saw, so the log cannot show
//! two histories. [`client`] asks the `[[witnesses]]` after each checkpoint and stores their
//! cosignatures beside it; [`book`] and [`serve`] are the witness side (`evident witness`);
//! [`protocol`] is the request both speak.

pub mod book;
pub mod client;
pub mod protocol;
pub mod serve;

use std::path::PathBuf;

use crate::ledger::LedgerError;
use crate::ledger::note::NoteError;

/// Errors of witnessing, on either side.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// A setting that cannot work.
    #[error("{0}")]
    Config(String),
    /// A witness answered with an error, or not at all.
    #[error("witness {witness}: {message}")]
    Remote {
        /// The witness's name.
        witness: String,
        /// What happened.
        message: String,
    },
    /// A key or note problem.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The witness's own database failed.
    #[error("witness database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `witness init` over an existing witness.
    #[error("{} already holds a witness key; nothing changed", .0.display())]
    Exists(PathBuf),
    /// A directory without a witness key.
    #[error("{} holds no witness key: run `evident witness init --dir {} --name NAME` first", .0.display(), .0.display())]
    NotAWitness(PathBuf),
    /// A lock was poisoned by a panic elsewhere.
    #[error("witness state lock poisoned")]
    Poisoned,
}
