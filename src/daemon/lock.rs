//! The state-directory lock: one `evident run` per ledger.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::{FlockOperation, flock};

/// Held while the daemon runs; the kernel releases it when the process dies, even by SIGKILL.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another daemon holds it.
    #[error(
        "another `evident run` (pid {pid}) is already using the state directory {dir}; \
         stop it first (one daemon per ledger; `query` and `verify` work alongside it)"
    )]
    Held {
        /// The state directory.
        dir: String,
        /// The holder's pid as it wrote it.
        pid: String,
    },
    /// The lock file cannot be opened.
    #[error("cannot open the lock file {path}: {error}")]
    Io {
        /// The lock file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
}

impl StateLock {
    /// Takes `daemon.lock` in `dir` without waiting.
    pub fn acquire(dir: &Path) -> Result<StateLock, LockError> {
        let path = dir.join("daemon.lock");
        let io = |error| LockError::Io {
            path: path.display().to_string(),
            error,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(LockError::Held {
                dir: dir.display().to_string(),
                pid: pid.trim().to_owned(),
            });
        }
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .map_err(io)?;
        Ok(StateLock { _file: file })
    }
}
