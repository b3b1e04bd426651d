//! Locks in the state directory: one `evident run` per ledger (`daemon.lock`, held for its
//! life), and one writer per job (`locks/<job>.lock`, held for one collector run, one `add`,
//! one checkpoint or export). Two processes running the same collector at once would both
//! see the same "known" set and record everything twice; with the job lock the second waits,
//! then finds it all recorded. `flock` locks die with their process, even by SIGKILL.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use rustix::fs::{FlockOperation, flock};

/// The job lock of signing (and anchoring) a checkpoint, shared with `export`.
pub const CHECKPOINT_JOB: &str = "checkpoint";

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
        #[source]
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
        match try_lock(&path).map_err(io)? {
            Ok(file) => Ok(StateLock { _file: file }),
            Err(pid) => Err(LockError::Held {
                dir: dir.display().to_string(),
                pid,
            }),
        }
    }
}

/// Opens (creating, mode 0600) and `flock`s `path` without waiting: the locked file with
/// this process's pid written in it, or the pid its holder wrote.
fn try_lock(path: &Path) -> std::io::Result<Result<File, String>> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        return Ok(Err(pid.trim().to_owned()));
    }
    write_pid(&mut file)?;
    Ok(Ok(file))
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())
}

/// How a writer lock is taken when another process holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Say so once on stderr, then wait for it.
    Yes,
    /// Refuse at once (`--no-wait`).
    No,
}

/// A job's writer lock, released on drop.
#[derive(Debug)]
pub struct JobLock {
    _file: File,
}

/// Why a job lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum JobLockError {
    /// Held by another process and `--no-wait` was given.
    #[error(
        "{what} is in progress in another Evident process (pid {pid}) on {dir}; \
         not started (--no-wait). Run again without --no-wait to wait for it"
    )]
    Busy {
        /// The job, in words.
        what: String,
        /// The state directory.
        dir: String,
        /// The holder's pid as it wrote it.
        pid: String,
    },
    /// The lock file cannot be opened or locked.
    #[error("cannot lock {path}: {error}")]
    Io {
        /// The lock file.
        path: String,
        /// The error.
        #[source]
        error: std::io::Error,
    },
}

/// The job name of a collector's runs.
pub fn collector_job(name: &str) -> String {
    format!("collector-{name}")
}

/// The lock file name of a job: its name with anything but `[A-Za-z0-9_-]` as `_`.
fn job_file(job: &str) -> String {
    let safe: String = job
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.lock")
}

/// Takes the writer lock of `job` (`collector-docs`, `add`, `checkpoint`) in `dir`; `what`
/// names it in messages. Waiting blocks the calling thread (call it off an async runtime).
pub fn job_lock(dir: &Path, job: &str, what: &str, wait: Wait) -> Result<JobLock, JobLockError> {
    let locks = dir.join("locks");
    let path = locks.join(job_file(job));
    let io = |error| JobLockError::Io {
        path: path.display().to_string(),
        error,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&locks)
        .map_err(io)?;
    let mut file = match try_lock(&path).map_err(io)? {
        Ok(file) => return Ok(JobLock { _file: file }),
        Err(pid) if wait == Wait::No => {
            return Err(JobLockError::Busy {
                what: what.to_owned(),
                dir: dir.display().to_string(),
                pid,
            });
        }
        Err(pid) => {
            tracing::warn!(
                "waiting: {what} is in progress in another Evident process (pid {pid}); it goes on when that one is done (--no-wait refuses instead)"
            );
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io)?
        }
    };
    loop {
        match flock(&file, FlockOperation::LockExclusive) {
            Ok(()) => break,
            Err(rustix::io::Errno::INTR) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(io(e.into())),
        }
    }
    write_pid(&mut file).map_err(io)?;
    Ok(JobLock { _file: file })
}
