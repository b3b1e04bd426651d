//! The state directory: `evident.db`, `blobs/`, `signing.key`, `verifier.vkey`.
//!
//! `init` creates what is missing and never replaces what exists, so running it twice is
//! harmless. Everything is created private to the owner (directory 0700, files 0600).

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use super::LedgerError;
use super::blobs::BlobStore;
use super::note::{NoteSigner, NoteVerifier};
use super::schema;

/// A state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

/// What `init` did.
#[derive(Debug)]
pub struct InitOutcome {
    /// The log's verifier key.
    pub verifier: NoteVerifier,
    /// False when the ledger already existed and nothing was changed.
    pub created: bool,
}

impl StateDir {
    /// The state directory at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateDir { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("evident.db")
    }

    /// The log's origin, read from a database of any schema this build can migrate.
    pub fn origin(&self) -> Result<String, LedgerError> {
        origin_of(&schema::open_read_any(&self.db_path())?)
    }

    /// The private signing key.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("signing.key")
    }

    /// The public verifier key.
    pub fn vkey_path(&self) -> PathBuf {
        self.dir.join("verifier.vkey")
    }

    /// The blob store.
    pub fn blobs(&self) -> BlobStore {
        BlobStore::new(&self.dir)
    }

    /// Creates the state directory, database and key where missing.
    pub fn init(&self, origin: &str) -> Result<InitOutcome, LedgerError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| LedgerError::io(format!("creating {}", self.dir.display()), e))?;
        if self.db_path().exists() {
            // A second init must not fork the identity: a new key over existing entries
            // would leave the auditor's verifier key unable to check any new checkpoint.
            if !self.key_path().exists() {
                return Err(LedgerError::KeyMissing(self.key_path()));
            }
            let conn = schema::open_read_any(&self.db_path())?;
            return Err(LedgerError::AlreadyInitialised {
                dir: self.dir.display().to_string(),
                origin: origin_of(&conn)?,
            });
        }
        let signer = if self.key_path().exists() {
            // A key restored before its database: keep it, it is the ledger's identity.
            self.signer()?
        } else {
            let s = NoteSigner::generate(origin)?;
            write_new(
                &self.key_path(),
                format!("{}\n", s.private_key_string()).as_bytes(),
            )?;
            s
        };
        if signer.name() != origin {
            return Err(LedgerError::OriginMismatch {
                dir: self.dir.clone(),
                ledger: signer.name().to_owned(),
                config: origin.to_owned(),
            });
        }
        let verifier = signer.verifier();
        // Always the key's own verifier: a leftover file from another key would mislead.
        let _ = fs::remove_file(self.vkey_path());
        write_new(
            &self.vkey_path(),
            format!("{}\n", verifier.key_string()).as_bytes(),
        )?;
        let conn = schema::open_write(&self.db_path(), true)?;
        // SQLite creates the file under the umask, and gives -wal and -shm the same mode.
        fs::set_permissions(self.db_path(), fs::Permissions::from_mode(0o600))
            .map_err(|e| LedgerError::io("making the database private", e))?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('origin', ?1)",
            [origin],
        )?;
        self.check_origin(&conn, origin)?;
        drop(conn);
        self.blobs()
            .create_dirs()
            .map_err(|e| LedgerError::io("creating the blob store", e))?;
        sync_dir(&self.dir)?;
        Ok(InitOutcome {
            verifier,
            created: true,
        })
    }

    /// [`StateDir::init`] when there is no ledger yet; else opens it, checking that its key
    /// is there and its origin is `origin` (`created` is false).
    pub fn open_or_init(&self, origin: &str) -> Result<InitOutcome, LedgerError> {
        if !self.db_path().exists() {
            return self.init(origin);
        }
        let signer = self.signer()?;
        // Any schema this build migrates: the daemon's writer brings it up to date next.
        let conn = schema::open_read_any(&self.db_path())?;
        self.check_origin(&conn, origin)?;
        Ok(InitOutcome {
            verifier: signer.verifier(),
            created: false,
        })
    }

    /// Refuses a writing command run by another user than the state directory's owner
    /// (`sudo evident add` as root would leave root-owned blobs the service cannot read).
    /// A directory that does not exist yet is fine.
    pub fn check_owner(&self) -> Result<(), LedgerError> {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(meta) = fs::metadata(&self.dir) else {
            return Ok(());
        };
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() == me {
            return Ok(());
        }
        Err(LedgerError::WrongUser {
            dir: self.dir.display().to_string(),
            owner: user_name(meta.uid()).unwrap_or_else(|| format!("uid {}", meta.uid())),
        })
    }

    /// Fails unless the ledger's origin is `origin`.
    pub fn check_origin(&self, conn: &Connection, origin: &str) -> Result<(), LedgerError> {
        let stored = origin_of(conn)?;
        if stored != origin {
            return Err(LedgerError::OriginMismatch {
                dir: self.dir.clone(),
                ledger: stored,
                config: origin.to_owned(),
            });
        }
        Ok(())
    }

    /// Loads the signing key.
    pub fn signer(&self) -> Result<NoteSigner, LedgerError> {
        let path = self.key_path();
        let text = fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && self.db_path().exists() {
                LedgerError::KeyMissing(path.clone())
            } else if e.kind() == std::io::ErrorKind::NotFound {
                LedgerError::NotInitialised(self.dir.clone())
            } else {
                LedgerError::io(format!("reading signing key {}", path.display()), e)
            }
        })?;
        if let Ok(meta) = fs::metadata(&path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "signing key is readable by other users; run `chmod 600` on it"
            );
        }
        NoteSigner::parse(&text).map_err(|e| {
            LedgerError::Key(format!("signing key {} is unusable: {e}", path.display()))
        })
    }

    /// Loads the public verifier key.
    pub fn verifier(&self) -> Result<NoteVerifier, LedgerError> {
        let path = self.vkey_path();
        let text = fs::read_to_string(&path)
            .map_err(|e| LedgerError::io(format!("reading verifier key {}", path.display()), e))?;
        NoteVerifier::parse(&text)
            .map_err(|e| LedgerError::Key(format!("verifier key {}: {e}", path.display())))
    }
}

/// Creates a directory (and its parents) with mode 0700, whatever the umask.
pub fn private_dir(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Replaces `path` with `value` as pretty JSON (and a final newline) atomically: a private
/// temporary file beside it, renamed over it, so a reader sees the old or the new content,
/// never a part. A value that does not encode fails the write, never leaving an empty file.
/// `durable` syncs the data first, for files that must survive a crash (tokens), not for
/// ones rewritten often.
pub fn replace_private_json<T: serde::Serialize>(
    path: &Path,
    value: &T,
    durable: bool,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    replace_private(path, &bytes, durable)
}

/// Replaces `path` with `bytes` atomically, as [`replace_private_json`] does.
pub fn replace_private(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // tempfile creates the file 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The origin recorded in a ledger database.
pub fn origin_of(conn: &Connection) -> Result<String, LedgerError> {
    conn.query_row("SELECT value FROM meta WHERE key = 'origin'", [], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| LedgerError::Corrupt("the database records no origin".into()))
}

/// Writes a new private file durably; never replaces an existing one.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), LedgerError> {
    let ctx = || format!("writing {}", path.display());
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| LedgerError::io(ctx(), e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| LedgerError::io(ctx(), e))
}

fn sync_dir(dir: &Path) -> Result<(), LedgerError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LedgerError::io(format!("syncing {}", dir.display()), e))
}

/// The name `/etc/passwd` gives `uid`.
fn user_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}
