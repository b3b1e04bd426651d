//! `evident backup`: a consistent copy of a state directory, taken while the daemon writes.
//!
//! The database is copied with SQLite's online backup API in one step, inside one read
//! transaction, so the copy is one committed state of the ledger (WAL readers never block
//! the writer). Blobs are written before the entries that name them commit, so every blob
//! the copied entries name is already on disk: each is copied and re-hashed on the way (a
//! rotten blob stops the backup rather than being copied). Then the signing key and the
//! verifier key. Restore: stop the daemon, put the directory where `[ledger] path` points
//! (or point it there), run `evident verify`, start the daemon.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use rusqlite::{Connection, MAIN_DB, OpenFlags};

use super::LedgerError;
use super::leaf::hex;
use super::merkle::Hash;
use super::state::StateDir;

/// What a backup copied.
#[derive(Debug, Default, serde::Serialize)]
pub struct BackupSummary {
    /// The backup directory.
    pub dir: String,
    /// Entries in the copied ledger.
    pub entries: u64,
    /// The largest signed checkpoint in it.
    pub checkpoint: Option<u64>,
    /// Blobs copied (and re-hashed).
    pub blobs: u64,
    /// Bytes of blob content copied.
    pub bytes: u64,
    /// Blobs not copied because a signed erasure entry erased them.
    pub erased: u64,
    /// The bucket the content stays in, when it is not on this host (nothing to copy: the
    /// backup names the same bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_in: Option<String>,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> LedgerError {
    let what = what.into();
    move |e| LedgerError::io(what, e)
}

/// Backs up `state` into `dest`, which must not exist or be empty. `progress` is called
/// with (blobs done, blobs total).
pub fn backup(
    state: &StateDir,
    dest: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<BackupSummary, LedgerError> {
    if !state.db_path().exists() {
        return Err(LedgerError::NotInitialised(state.dir().to_owned()));
    }
    let key = fs::read(state.key_path()).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            LedgerError::KeyMissing(state.key_path())
        } else {
            LedgerError::io(format!("reading {}", state.key_path().display()), e)
        }
    })?;
    let vkey = fs::read(state.vkey_path())
        .map_err(io_err(format!("reading {}", state.vkey_path().display())))?;
    match fs::read_dir(dest).map(|mut d| d.next().is_some()) {
        Ok(true) => {
            return Err(LedgerError::io(
                format!("backing up into {}", dest.display()),
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "it exists and is not empty; back up into a new directory",
                ),
            ));
        }
        Ok(false) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(LedgerError::io(format!("opening {}", dest.display()), e)),
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dest)
        .map_err(io_err(format!("creating {}", dest.display())))?;
    let target = StateDir::new(dest);

    // One step of the online backup API: a single consistent snapshot.
    let src = Connection::open_with_flags(
        state.db_path(),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| LedgerError::open(&state.db_path(), e))?;
    src.busy_timeout(std::time::Duration::from_secs(30))?;
    let mut dst =
        Connection::open(target.db_path()).map_err(|e| LedgerError::open(&target.db_path(), e))?;
    fs::set_permissions(
        target.db_path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .map_err(io_err("making the backup database private"))?;
    {
        let b = rusqlite::backup::Backup::new_with_names(&src, MAIN_DB, &mut dst, MAIN_DB)?;
        b.step(-1)?;
    }
    drop(src);

    let entries: i64 = dst.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))?;
    let checkpoint: Option<i64> =
        dst.query_row("SELECT MAX(size) FROM checkpoints", [], |r| r.get(0))?;
    let digests: Vec<Hash> = dst
        .prepare("SELECT DISTINCT sha256 FROM entries WHERE has_blob = 1")?
        .query_map([], |r| r.get::<_, Vec<u8>>(0))?
        .filter_map(|r| r.ok().and_then(|v| Hash::try_from(v.as_slice()).ok()))
        .collect();
    // Content erased by a signed erasure entry is absent by design (docs/erasure.md).
    let erased: std::collections::HashSet<Hash> = dst
        .prepare(ERASED_DIGESTS_SQL)?
        .query_map([], |r| r.get::<_, Vec<u8>>(0))?
        .filter_map(|r| r.ok().and_then(|v| Hash::try_from(v.as_slice()).ok()))
        .collect();
    drop(dst);

    let from = state.blobs();
    if let Some(url) = from.location() {
        // Content addressing: the bucket holds every blob an entry names (each uploaded
        // before its entry committed), so the backup shares it rather than copying it.
        let location = super::blobs::read_location(state.dir()).map_err(LedgerError::Blobs)?;
        super::blobs::write_location(dest, location.as_ref())
            .map_err(io_err("recording the bucket in the backup"))?;
        write_private(&target.key_path(), &key)?;
        write_private(&target.vkey_path(), &vkey)?;
        return Ok(BackupSummary {
            dir: dest.display().to_string(),
            entries: entries as u64,
            checkpoint: checkpoint.map(|c| c as u64),
            content_in: Some(url),
            ..BackupSummary::default()
        });
    }
    let to = target.blobs();
    to.create_dirs()
        .map_err(io_err("creating the backup's blob store"))?;
    let mut summary = BackupSummary {
        dir: dest.display().to_string(),
        entries: entries as u64,
        checkpoint: checkpoint.map(|c| c as u64),
        ..BackupSummary::default()
    };
    let total = digests.len() as u64;
    for (i, h) in digests.iter().enumerate() {
        // The blob store's own one-pass hash and copy; the digest must be the blob's name.
        let path = from.path_for(h);
        if erased.contains(h) && !path.exists() {
            summary.erased += 1;
            continue;
        }
        let real = fs::canonicalize(&path).map_err(io_err(format!(
            "reading blob {} (named by an entry)",
            path.display()
        )))?;
        let got = to
            .ingest_file(&real, u64::MAX, 0, None)
            .map_err(|e| LedgerError::io("copying a blob", io::Error::other(e.to_string())))?;
        if &got.sha256 != h {
            to.remove_orphans(&[got.sha256]);
            return Err(LedgerError::Corrupt(format!(
                "blob {} hashes to {}, not to its name; run `evident verify` before backing up",
                path.display(),
                hex(&got.sha256)
            )));
        }
        summary.bytes += got.size;
        summary.blobs += 1;
        progress(i as u64 + 1, total);
    }
    to.sync(&[])
        .map_err(io_err("syncing the backup's blob store"))?;
    write_private(&target.key_path(), &key)?;
    write_private(&target.vkey_path(), &vkey)?;
    Ok(summary)
}

/// The digests of content erased by erasure entries (`ledger::erasures`).
const ERASED_DIGESTS_SQL: &str = "SELECT DISTINCT e.sha256 FROM entries x JOIN entries e \
     ON x.uri = 'evident://erasure/' || e.idx AND e.idx < x.idx \
     WHERE x.kind = 'erasure' AND x.source = 'evident'";

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), LedgerError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(format!("writing {}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err(format!("writing {}", path.display())))
}
