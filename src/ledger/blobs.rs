//! The content-addressed blob store: `blobs/sha256/<2 hex>/<64 hex>`.
//!
//! Content is hashed and copied in one streaming pass into a temporary file, which is renamed
//! to its digest. Durability is a batch operation: the recorder writes a batch of blobs, calls
//! [`BlobStore::sync`] once (one `syncfs`, instead of an `fsync` of 3–4 ms per file), and only
//! then lets the writer commit the entries that name them.
//!
//! With content on object storage (`[blobs] url = "s3://…"`, recorded in
//! `blobs/location.toml` so every command finds it), new blobs wait in `blobs/outbox/`;
//! [`BlobStore::sync`] uploads each one (a conditional `PUT`, or a multipart upload in
//! parts, its SHA-256 signed with it so the store refuses a damaged body) and removes it
//! once the store acknowledged it, so an entry still commits only after its content is
//! durable. Reads look in the outbox, then in the local store (what was migrated stays as
//! a cache until removed), then in the bucket, streamed through a temporary file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use evident_collectors::Fingerprint;
use sha2::{Digest, Sha256};

use super::LedgerError;
use super::leaf::hex;
use super::merkle::Hash;
use super::state::private_dir;
use crate::objects::{ObjectBucket, StorageConfig};

/// Uploads in flight at once: a bucket's latency, not its bandwidth, bounds one-by-one PUTs.
pub const UPLOADS_IN_FLIGHT: usize = 8;

/// The file in `blobs/` that says content lives in a bucket.
pub const LOCATION: &str = "location.toml";

/// Bytes read per system call while hashing.
const CHUNK: usize = 256 * 1024;

/// The result of reading one piece of content.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// SHA-256 of the content.
    pub sha256: Hash,
    /// Size in bytes.
    pub size: u64,
    /// Whether the content is now in the blob store (false above the size limit).
    pub stored: bool,
    /// The first bytes, when asked for (front matter).
    pub head: Vec<u8>,
    /// Whether this call added the blob to the store (it was not there before): if its
    /// entry never commits, the blob is an orphan to remove.
    pub fresh: bool,
    /// The file's fingerprint as read.
    pub fingerprint: Option<Fingerprint>,
}

/// Why a file could not be ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Reading the source failed.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        error: io::Error,
    },
    /// Writing the blob store failed.
    #[error("cannot write blob store {path}: {error}")]
    Write {
        /// The blob or temporary path.
        path: PathBuf,
        /// The error.
        #[source]
        error: io::Error,
    },
    /// The file changed while it was read.
    #[error("{0} changed while it was being read; it will be collected on the next run")]
    Changed(PathBuf),
    /// The path no longer leads to the regular file that was scanned (a link, FIFO or
    /// device swapped in, or a directory on the way replaced): nothing was read.
    #[error("{path} skipped: {why}; nothing was read, it will be tried again on the next run")]
    Refused {
        /// The file.
        path: PathBuf,
        /// What it is now.
        why: String,
    },
}

/// The blob directory of a state directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
    /// The state directory, resolved: evidence is never read from inside it.
    state: PathBuf,
    /// The bucket content lives in, when `blobs/location.toml` names one.
    remote: Option<Arc<Remote>>,
}

/// A bucket named by `blobs/location.toml`, opened on first use (commands that never touch
/// content need no credentials).
#[derive(Debug)]
struct Remote {
    location: Result<StorageConfig, String>,
    bucket: OnceLock<Result<ObjectBucket, String>>,
}

impl Remote {
    fn bucket(&self) -> io::Result<&ObjectBucket> {
        self.opened().map_err(|e| io::Error::other(e.to_owned()))
    }

    fn opened(&self) -> Result<&ObjectBucket, &str> {
        let opened = self.bucket.get_or_init(|| {
            let cfg = self.location.as_ref().map_err(Clone::clone)?;
            ObjectBucket::open(
                cfg,
                "[blobs]",
                "s3:PutObject, s3:GetObject and s3:ListBucket on the bucket",
                1 << 20,
            )
            .map_err(|e| e.to_string())
        });
        opened.as_ref().map_err(String::as_str)
    }
}

/// The key of a blob in a bucket: the local layout under the prefix.
pub fn key_for(sha256: &Hash) -> String {
    let h = hex(sha256);
    format!("sha256/{}/{h}", &h[..2])
}

/// Reads `blobs/location.toml`: `None` when content is local.
pub fn read_location(state: &Path) -> Result<Option<StorageConfig>, String> {
    let path = state.join("blobs").join(LOCATION);
    match fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is damaged: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Checks a `[blobs]` section: `file://` (the state directory) or a bucket.
pub fn check_config(cfg: &StorageConfig) -> Result<(), String> {
    cfg.check_settings("[blobs]")?;
    if let Some(l) = &cfg.lease {
        evident_collectors::units::Interval::parse(l)
            .map_err(|e| format!("[blobs] lease {l:?}: {e}"))?;
    }
    if cfg.bucket_url().is_none() && cfg.url != "file://" {
        return Err(format!(
            "[blobs] url {:?}: content lives in the state directory (file://, the default) or \
             in a bucket (s3://bucket/prefix)",
            cfg.url
        ));
    }
    Ok(())
}

/// Brings `blobs/location.toml` in line with the config's `[blobs]` before a writer opens
/// the ledger: a new ledger takes the bucket; a changed endpoint or credential setting is
/// recorded; moving existing content is `evident blobs migrate`'s job, so a config that
/// names another place than the content's is refused.
pub fn apply_config(state: &Path, cfg: Option<&StorageConfig>) -> Result<(), LedgerError> {
    let wanted = cfg.filter(|c| c.bucket_url().is_some());
    let recorded = read_location(state).map_err(LedgerError::Blobs)?;
    match (wanted, recorded) {
        (None, None) => Ok(()),
        (None, Some(r)) => Err(LedgerError::Blobs(format!(
            "this ledger's content lives in {} (moved there by `evident blobs migrate`), but the \
             config has no [blobs] url: add [blobs] url = {:?} (with its endpoint and \
             credential settings)",
            r.url, r.url
        ))),
        (Some(w), Some(r)) if !w.same_place(&r) => Err(LedgerError::Blobs(format!(
            "[blobs] url is {} but this ledger's content lives in {}; copy the objects under \
             sha256/ to the new place with the store's tools and then change the url, or put \
             the url back",
            w.url, r.url
        ))),
        (Some(w), recorded) => {
            if recorded.is_none() && has_local_blobs(state) {
                return Err(LedgerError::Blobs(format!(
                    "[blobs] url is {} but this ledger's content is in {}; run `evident blobs \
                     migrate --to {}` to copy it there (it switches the ledger when done)",
                    w.url,
                    state.join("blobs").display(),
                    w.url
                )));
            }
            if recorded.as_ref() != Some(w) {
                write_location(state, Some(w))
                    .map_err(|e| LedgerError::io("recording [blobs] in the state directory", e))?;
            }
            Ok(())
        }
    }
}

/// Whether the local store holds any blob.
pub fn has_local_blobs(state: &Path) -> bool {
    fs::read_dir(state.join("blobs").join("sha256")).is_ok_and(|rd| {
        rd.flatten()
            .any(|d| fs::read_dir(d.path()).is_ok_and(|mut f| f.next().is_some()))
    })
}

/// Writes (or with `None` removes) `blobs/location.toml`, atomically.
pub fn write_location(state: &Path, location: Option<&StorageConfig>) -> io::Result<()> {
    let dir = state.join("blobs");
    private_dir(&dir)?;
    let path = dir.join(LOCATION);
    let Some(cfg) = location else {
        return match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    };
    let text = toml::to_string(cfg).map_err(io::Error::other)?;
    let tmp = dir.join(format!(".{LOCATION}.{}", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(
        format!(
            "# Where this ledger's content lives; written by `evident blobs migrate` or the\n\
             # daemon from [blobs]. No secret is kept here (secret_env names a variable).\n{text}"
        )
        .as_bytes(),
    )?;
    f.sync_all()?;
    fs::rename(&tmp, &path)?;
    File::open(&dir)?.sync_all()
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl BlobStore {
    /// The store under `state/blobs`; directories are created on first write.
    pub fn new(state: &Path) -> Self {
        let root = state.join("blobs");
        let remote = match read_location(state) {
            Ok(None) => None,
            Ok(Some(cfg)) => Some(Ok(cfg)),
            Err(e) => Some(Err(e)),
        }
        .map(|location| {
            Arc::new(Remote {
                location,
                bucket: OnceLock::new(),
            })
        });
        BlobStore {
            tmp: root.join("tmp"),
            root,
            state: fs::canonicalize(state).unwrap_or_else(|_| state.to_owned()),
            remote,
        }
    }

    /// Where the blob with this digest lives on this host (for a bucket: where a migrated
    /// copy stays).
    pub fn path_for(&self, sha256: &Hash) -> PathBuf {
        let h = hex(sha256);
        self.root.join("sha256").join(&h[..2]).join(h)
    }

    /// Where a new blob waits for its upload.
    fn outbox_for(&self, sha256: &Hash) -> PathBuf {
        self.root.join("outbox").join(hex(sha256))
    }

    /// The bucket content lives in, opened on first use; `None` when content is local.
    pub fn bucket(&self) -> Option<Result<&ObjectBucket, String>> {
        self.remote
            .as_ref()
            .map(|r| r.opened().map_err(str::to_owned))
    }

    /// How long the sequencer lease lasts, when content lives in a bucket.
    pub fn lease_duration(&self) -> Option<std::time::Duration> {
        // A damaged location still means a bucket: the lease is then refused (the bucket
        // cannot be opened), never skipped.
        let remote = self.remote.as_ref()?;
        Some(
            remote
                .location
                .as_ref()
                .ok()
                .and_then(|cfg| cfg.lease.as_deref())
                .and_then(|l| evident_collectors::units::Interval::parse(l).ok())
                .map_or(super::lease::DEFAULT_DURATION, |i| i.0),
        )
    }

    /// The bucket content lives in (`s3://bucket/prefix`), or `None` when it is local.
    pub fn location(&self) -> Option<String> {
        self.remote.as_ref().map(|r| match &r.location {
            Ok(cfg) => cfg.url.clone(),
            Err(e) => e.clone(),
        })
    }

    /// Creates the directory layout, private to the owner.
    pub fn create_dirs(&self) -> io::Result<()> {
        private_dir(&self.tmp)?;
        if self.remote.is_some() {
            private_dir(&self.root.join("outbox"))?;
        }
        private_dir(&self.root.join("sha256"))
    }

    fn temp_file(&self) -> Result<(PathBuf, File), IngestError> {
        let name = format!(
            "{}-{}.tmp",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.tmp.join(name);
        // Read-only from birth: blobs never change, and this open's descriptor may still write.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&path)
            .map_err(|error| IngestError::Write {
                path: path.clone(),
                error,
            })?;
        Ok((path, file))
    }

    /// Moves a finished temporary file into place under its digest.
    fn install(&self, tmp: &Path, sha256: &Hash) -> Result<bool, IngestError> {
        let dest = match self.remote {
            Some(_) => self.outbox_for(sha256),
            None => self.path_for(sha256),
        };
        if self.held_here(sha256) {
            // Same content already stored: content addressing makes this a no-op.
            let _ = fs::remove_file(tmp);
            return Ok(false);
        }
        if let Some(parent) = dest.parent() {
            private_dir(parent).map_err(|error| IngestError::Write {
                path: parent.to_owned(),
                error,
            })?;
        }
        fs::rename(tmp, &dest)
            .map(|()| true)
            .map_err(|error| IngestError::Write { path: dest, error })
    }

    /// A blob written from a stream (a pushed file): hashed as it arrives, installed under
    /// its digest by [`BlobWriter::finish`], removed if dropped before.
    pub fn writer(&self) -> Result<BlobWriter, IngestError> {
        let (path, file) = self.temp_file()?;
        Ok(BlobWriter {
            path,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Removes blobs this process added for entries that never committed (a full disk, a
    /// failed transaction), unless an entry names them after all (another process may have
    /// committed the same content meanwhile). Returns how many were removed.
    pub fn remove_orphans(&self, fresh: &[Hash]) -> usize {
        if fresh.is_empty() {
            return 0;
        }
        let Ok(conn) = super::schema::open_read(&self.state.join("evident.db")) else {
            return 0; // unsure: keep them (an orphan costs space, a lost blob costs evidence)
        };
        let Ok(mut st) =
            conn.prepare("SELECT 1 FROM entries WHERE sha256 = ?1 AND has_blob = 1 LIMIT 1")
        else {
            return 0;
        };
        let mut removed = 0;
        for h in fresh {
            let unnamed = matches!(st.exists([&h[..]]), Ok(false));
            let path = match self.remote {
                // Already uploaded ones stay in the bucket: content addressing makes them
                // harmless, and another process may be about to commit an entry naming one.
                Some(_) => self.outbox_for(h),
                None => self.path_for(h),
            };
            if unnamed && fs::remove_file(path).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Every blob of the local store (`blobs/sha256/`), by name, sorted.
    pub fn local_blobs(&self) -> io::Result<Vec<(Hash, PathBuf)>> {
        let mut out = Vec::new();
        let dirs = match fs::read_dir(self.root.join("sha256")) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for d in dirs {
            for f in fs::read_dir(d?.path())? {
                let f = f?;
                if let Some(h) = f.file_name().to_str().and_then(super::leaf::parse_hex32) {
                    out.push((h, f.path()));
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Whether the blob is already on its way: in the local store, or with a bucket waiting
    /// in the outbox (a local copy left by a migration does not count: it may never have
    /// reached the bucket).
    fn held_here(&self, sha256: &Hash) -> bool {
        match self.remote {
            Some(_) => self.outbox_for(sha256).exists(),
            None => self.path_for(sha256).exists(),
        }
    }

    /// Hashes a file in one streaming pass, storing it when `size <= max_size`.
    /// `expected` is the fingerprint the collector saw; a file that differs from it after
    /// reading changed underneath us and is refused.
    pub fn ingest_file(
        &self,
        path: &Path,
        max_size: u64,
        head_len: usize,
        expected: Option<Fingerprint>,
    ) -> Result<Ingested, IngestError> {
        let read_err = |error| IngestError::Read {
            path: path.to_owned(),
            error,
        };
        let (mut file, before) = self.open_scanned(path)?;
        let fp_before = Fingerprint::of(&before);
        if expected.is_some_and(|e| e != fp_before) {
            return Err(IngestError::Changed(path.to_owned()));
        }
        let store = before.len() <= max_size;
        let mut tmp = if store { Some(self.temp_file()?) } else { None };
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(head_len.min(CHUNK));
        let mut buf = vec![0u8; CHUNK];
        let mut size = 0u64;
        let result = (|| {
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(read_err(e)),
                };
                let chunk = &buf[..n];
                hasher.update(chunk);
                if head.len() < head_len {
                    let take = (head_len - head.len()).min(n);
                    head.extend_from_slice(&chunk[..take]);
                }
                if let Some((p, f)) = tmp.as_mut() {
                    f.write_all(chunk).map_err(|error| IngestError::Write {
                        path: p.clone(),
                        error,
                    })?;
                }
                size += n as u64;
            }
            let after = file.metadata().map_err(read_err)?;
            if size != before.len() || Fingerprint::of(&after) != fp_before {
                return Err(IngestError::Changed(path.to_owned()));
            }
            Ok(())
        })();
        if let Err(e) = result {
            if let Some((p, _)) = tmp {
                let _ = fs::remove_file(p);
            }
            return Err(e);
        }
        let sha256: Hash = hasher.finalize().into();
        let mut fresh = false;
        if let Some((p, f)) = tmp {
            drop(f);
            fresh = self.install(&p, &sha256)?;
        }
        Ok(Ingested {
            sha256,
            size,
            stored: store,
            head,
            fresh,
            fingerprint: Some(fp_before),
        })
    }

    /// Opens the file a collector scanned at `path` (absolute, with no links on the way: the
    /// collectors resolve them when scanning) without following a link in any component:
    /// `O_NOFOLLOW` for the last, the handle's real path for the ones before it. The handle
    /// must be a regular file outside the state directory; `O_NONBLOCK` so a FIFO swapped in
    /// cannot block the open.
    pub fn open_scanned(&self, path: &Path) -> Result<(File, fs::Metadata), IngestError> {
        let refused = |why: String| IngestError::Refused {
            path: path.to_owned(),
            why,
        };
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits() as i32)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return Err(refused("it is now a symbolic link".to_owned()));
            }
            Err(error) => {
                return Err(IngestError::Read {
                    path: path.to_owned(),
                    error,
                });
            }
        };
        let meta = file.metadata().map_err(|error| IngestError::Read {
            path: path.to_owned(),
            error,
        })?;
        if !meta.is_file() {
            return Err(refused(
                "it is not a regular file (a FIFO, socket, device or directory)".to_owned(),
            ));
        }
        let real = fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&file)
        ))
        .map_err(|error| IngestError::Read {
            path: path.to_owned(),
            error,
        })?;
        if real != path {
            return Err(refused(format!(
                "it resolves to {}, not to the path that was scanned (a directory on the way was replaced)",
                real.display()
            )));
        }
        if real.starts_with(&self.state) {
            return Err(refused("it is inside Evident's state directory".to_owned()));
        }
        Ok((file, meta))
    }

    /// Hashes and stores bytes held in memory.
    pub fn ingest_bytes(&self, bytes: &[u8], max_size: u64) -> Result<Ingested, IngestError> {
        let sha256: Hash = Sha256::digest(bytes).into();
        let store = bytes.len() as u64 <= max_size;
        let mut fresh = false;
        if store && !self.held_here(&sha256) {
            let (p, mut f) = self.temp_file()?;
            f.write_all(bytes).map_err(|error| IngestError::Write {
                path: p.clone(),
                error,
            })?;
            drop(f);
            fresh = self.install(&p, &sha256)?;
        }
        Ok(Ingested {
            sha256,
            size: bytes.len() as u64,
            stored: store,
            head: Vec::new(),
            fresh,
            fingerprint: None,
        })
    }

    /// Makes every blob written so far durable: one `syncfs` of the blob filesystem, which
    /// also persists the renames. With a bucket, then uploads what waits in the outbox
    /// (removing each once the store acknowledged it) and confirms that every blob `batch`
    /// names is in the bucket: one another process installed may have gone with its failed
    /// commit, and an entry must never commit without its content.
    pub fn sync(&self, batch: &[Hash]) -> io::Result<()> {
        let dir = File::open(&self.root)?;
        rustix::fs::syncfs(&dir).map_err(io::Error::from)?;
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let mut waiting: Vec<Hash> = match fs::read_dir(self.root.join("outbox")) {
            Ok(rd) => rd
                .flatten()
                .filter_map(|e| super::leaf::parse_hex32(e.file_name().to_str()?))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        waiting.sort_unstable();
        let bucket = remote.bucket()?;
        let items: Vec<(String, PathBuf)> = waiting
            .iter()
            .map(|h| (key_for(h), self.outbox_for(h)))
            .collect();
        let results = bucket.put_files_once(&items, UPLOADS_IN_FLIGHT);
        let mut confirmed = std::collections::HashSet::new();
        for ((h, (_, path)), result) in waiting.iter().zip(&items).zip(results) {
            match result {
                Ok(_) => {
                    confirmed.insert(*h);
                }
                // Gone meanwhile: another process uploaded it, or removed it with its failed
                // commit; the check below tells which for this batch's blobs.
                Err(_) if !path.exists() => continue,
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        for h in batch {
            if confirmed.contains(h) {
                continue;
            }
            match bucket.head(&key_for(h)) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(io::Error::other(format!(
                        "the content {} is neither waiting in {} nor in {}; nothing of this \
                         batch is committed, and the next run records it again",
                        hex(h),
                        self.root.join("outbox").display(),
                        bucket.describe()
                    )));
                }
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
        }
        Ok(())
    }

    /// Opens the blob `sha256` for reading: the local file, or for a bucket a private
    /// temporary copy already unlinked (streamed to disk, never held in memory). `None`
    /// when there is no such blob.
    pub fn open(&self, sha256: &Hash) -> io::Result<Option<File>> {
        let mut local = vec![self.path_for(sha256)];
        if self.remote.is_some() {
            local.insert(0, self.outbox_for(sha256));
        }
        for path in local {
            match OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&path)
            {
                Ok(f) => return Ok(Some(f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let Some(remote) = &self.remote else {
            return Ok(None);
        };
        let bucket = remote.bucket()?;
        private_dir(&self.tmp)?;
        let tmp = self.download_path();
        let got = bucket.download(&key_for(sha256), &tmp);
        let opened = match got {
            Ok(Some(_)) => File::open(&tmp).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(io::Error::other(e.to_string())),
        };
        let _ = fs::remove_file(&tmp);
        opened
    }

    /// Whether any store holds the blob `sha256` (the bucket is asked with a `HEAD`, not a
    /// download).
    pub fn contains(&self, sha256: &Hash) -> io::Result<bool> {
        if self.path_for(sha256).exists()
            || (self.remote.is_some() && self.outbox_for(sha256).exists())
        {
            return Ok(true);
        }
        match &self.remote {
            None => Ok(false),
            Some(remote) => Ok(remote
                .bucket()?
                .head(&key_for(sha256))
                .map_err(|e| io::Error::other(e.to_string()))?
                .is_some()),
        }
    }

    /// Removes the blob `sha256` everywhere it is kept: the local store, the outbox and,
    /// with a bucket, the object (confirmed gone with a `HEAD`). Returns whether any copy
    /// was there. Only for erasure, after the erasure entry is signed into the tree.
    pub fn remove(&self, sha256: &Hash) -> io::Result<bool> {
        let mut found = false;
        let mut local = vec![self.path_for(sha256)];
        if self.remote.is_some() {
            local.push(self.outbox_for(sha256));
        }
        for path in local {
            match fs::remove_file(&path) {
                Ok(()) => found = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(remote) = &self.remote {
            let bucket = remote.bucket()?;
            let key = key_for(sha256);
            let there = bucket
                .head(&key)
                .map_err(|e| io::Error::other(e.to_string()))?
                .is_some();
            if there {
                bucket
                    .delete(&key)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                if bucket
                    .head(&key)
                    .map_err(|e| io::Error::other(e.to_string()))?
                    .is_some()
                {
                    return Err(io::Error::other(format!(
                        "the bucket still holds {key} after DELETE"
                    )));
                }
                found = true;
            }
        }
        if found
            && let Some(dir) = self.path_for(sha256).parent()
            && let Ok(d) = File::open(dir)
        {
            // The unlink is durable before anyone is told the content is gone.
            d.sync_all()?;
        }
        Ok(found)
    }

    /// A fresh name in `blobs/tmp` for a blob read from the bucket (pid-prefixed, so
    /// `clean_tmp` leaves a running process's alone).
    fn download_path(&self) -> PathBuf {
        self.tmp.join(format!(
            "{}-{}.get",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Re-hashes several blobs; from a bucket, [`UPLOADS_IN_FLIGHT`] downloads at a time
    /// (a store's latency, not its bandwidth, bounds one-by-one reads). Results in order.
    pub fn rehash_many(&self, digests: &[Hash]) -> Vec<io::Result<Option<Hash>>> {
        let Some(remote) = &self.remote else {
            return digests.iter().map(|d| self.rehash(d)).collect();
        };
        let mut out: Vec<Option<io::Result<Option<Hash>>>> = digests
            .iter()
            .map(|d| {
                // What verify must prove is in the bucket is read from the bucket, not from
                // a local copy a migration left (which the operator may remove next).
                let waiting = self.outbox_for(d);
                waiting
                    .is_file()
                    .then(|| self.rehash_file(&waiting).map(Some))
            })
            .collect();
        let wanted: Vec<usize> = (0..digests.len()).filter(|i| out[*i].is_none()).collect();
        if wanted.is_empty() {
            return out.into_iter().flatten().collect();
        }
        let bucket = match remote.bucket() {
            Ok(b) => b,
            Err(e) => {
                let msg = e.to_string();
                return out
                    .into_iter()
                    .map(|r| r.unwrap_or_else(|| Err(io::Error::other(msg.clone()))))
                    .collect();
            }
        };
        let wanted_digests: Vec<Hash> = wanted.iter().map(|&i| digests[i]).collect();
        for (&i, r) in wanted.iter().zip(self.rehash_in(bucket, &wanted_digests)) {
            out[i] = Some(r);
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(io::Error::other("not read"))))
            .collect()
    }

    /// Re-hashes the objects `bucket` holds for `digests` (downloaded to private temporary
    /// files, several at a time): what each object's content hashes to, `Ok(None)` for an
    /// object the bucket lacks. Results in order.
    pub fn rehash_in(
        &self,
        bucket: &ObjectBucket,
        digests: &[Hash],
    ) -> Vec<io::Result<Option<Hash>>> {
        if let Err(e) = private_dir(&self.tmp) {
            let msg = e.to_string();
            return digests
                .iter()
                .map(|_| Err(io::Error::other(msg.clone())))
                .collect();
        }
        let items: Vec<(String, PathBuf)> = digests
            .iter()
            .map(|d| (key_for(d), self.download_path()))
            .collect();
        let got = bucket.download_many(&items, UPLOADS_IN_FLIGHT);
        items
            .iter()
            .zip(got)
            .map(|((_, tmp), r)| {
                let out = match r {
                    Ok(Some(_)) => self.rehash_file(tmp).map(Some),
                    Ok(None) => Ok(None),
                    Err(e) => Err(io::Error::other(e.to_string())),
                };
                let _ = fs::remove_file(tmp);
                out
            })
            .collect()
    }

    /// Re-hashes a stored blob. `Ok(None)` when it is missing.
    pub fn rehash(&self, sha256: &Hash) -> io::Result<Option<Hash>> {
        self.copy_out(sha256, &mut io::sink())
    }

    /// Streams the blob `sha256` into `out`, hashing what it reads: the content's actual
    /// digest (the caller compares it with the name), or `None` when there is no such blob.
    pub fn copy_out(&self, sha256: &Hash, out: &mut dyn Write) -> io::Result<Option<Hash>> {
        match self.open(sha256)? {
            Some(f) => copy_hashing(f, out).map(Some),
            None => Ok(None),
        }
    }

    /// The SHA-256 of the file at `path` (a blob about to leave for a bucket).
    pub fn rehash_file(&self, path: &Path) -> io::Result<Hash> {
        copy_hashing(File::open(path)?, &mut io::sink())
    }

    /// Removes temporary files left by interrupted processes. Files of processes still
    /// running (another `collect`, the daemon) are left alone: their names start with the pid.
    pub fn clean_tmp(&self) {
        let Ok(rd) = fs::read_dir(&self.tmp) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.split('-').next())
                .unwrap_or("");
            let alive = !pid.is_empty() && Path::new("/proc").join(pid).exists();
            if !alive {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Copies `from` into `out`, hashing it on the way.
fn copy_hashing(mut from: File, out: &mut dyn Write) -> io::Result<Hash> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state directory and a separate, resolved evidence directory.
    fn dirs() -> (tempfile::TempDir, tempfile::TempDir, PathBuf) {
        let state = tempfile::tempdir().unwrap();
        let ev = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(ev.path()).unwrap();
        (state, ev, real)
    }

    #[test]
    fn ingest_streams_stores_and_dedups() {
        let (d, _ev, root) = dirs();
        let store = BlobStore::new(d.path());
        store.create_dirs().unwrap();
        let f = root.join("a.md");
        let content = vec![b'x'; 3 * CHUNK + 17];
        fs::write(&f, &content).unwrap();
        let got = store.ingest_file(&f, u64::MAX, 10, None).unwrap();
        assert_eq!(got.sha256, <[u8; 32]>::from(Sha256::digest(&content)));
        assert_eq!(got.head, vec![b'x'; 10]);
        assert!(got.stored);
        assert_eq!(fs::read(store.path_for(&got.sha256)).unwrap(), content);
        // A stale temp file of a dead process is cleaned; our own would not be.
        fs::write(d.path().join("blobs/tmp/999999999-0.tmp"), b"stale").unwrap();
        store.clean_tmp();
        // Again: deduplicated, no temp files left behind.
        store.ingest_file(&f, u64::MAX, 0, None).unwrap();
        assert_eq!(fs::read_dir(d.path().join("blobs/tmp")).unwrap().count(), 0);
        assert_eq!(store.rehash(&got.sha256).unwrap(), Some(got.sha256));
        store.sync(&[]).unwrap();

        // Above the limit: hashed, not stored.
        fs::write(&f, b"bigger").unwrap();
        let big = store.ingest_file(&f, 3, 0, None).unwrap();
        assert!(!big.stored);
        assert_eq!(store.rehash(&big.sha256).unwrap(), None);
    }

    #[test]
    fn a_file_that_changed_since_the_scan_is_refused() {
        let (d, _ev, root) = dirs();
        let store = BlobStore::new(d.path());
        store.create_dirs().unwrap();
        let f = root.join("a.md");
        fs::write(&f, b"one").unwrap();
        let fp = Fingerprint::of(&fs::metadata(&f).unwrap());
        fs::write(&f, b"three").unwrap();
        assert!(matches!(
            store.ingest_file(&f, u64::MAX, 0, Some(fp)),
            Err(IngestError::Changed(_))
        ));
    }

    #[test]
    fn an_edit_that_restores_size_and_mtime_is_still_seen() {
        let (d, _ev, root) = dirs();
        let store = BlobStore::new(d.path());
        store.create_dirs().unwrap();
        let f = root.join("a.md");
        fs::write(&f, b"one").unwrap();
        let meta = fs::metadata(&f).unwrap();
        let fp = Fingerprint::of(&meta);
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&f, b"two").unwrap();
        // Put the old mtime back, as `touch -r` or an archiver would.
        let t = fs::File::options().write(true).open(&f).unwrap();
        t.set_modified(meta.modified().unwrap()).unwrap();
        let now = Fingerprint::of(&fs::metadata(&f).unwrap());
        assert_eq!((now.size, now.mtime_ns), (fp.size, fp.mtime_ns));
        assert_ne!(now, fp, "ctime must tell the two apart");
        assert!(matches!(
            store.ingest_file(&f, u64::MAX, 0, Some(fp)),
            Err(IngestError::Changed(_))
        ));
    }

    #[test]
    fn links_fifos_and_swapped_directories_are_never_read() {
        let (d, _ev, root) = dirs();
        let store = BlobStore::new(d.path());
        store.create_dirs().unwrap();
        let secret = d.path().join("signing.key");
        fs::write(&secret, b"SECRET").unwrap();
        // The scanned file is replaced by a link to the key.
        let f = root.join("a.md");
        std::os::unix::fs::symlink(&secret, &f).unwrap();
        let e = store.ingest_file(&f, u64::MAX, 0, None).unwrap_err();
        assert!(matches!(e, IngestError::Refused { .. }), "{e}");
        // A FIFO: refused at once, never blocks.
        let fifo = root.join("b.md");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = store.ingest_file(&fifo, u64::MAX, 0, None).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        // A directory on the way swapped for a link to elsewhere.
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("c.md"), b"outside").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("sub")).unwrap();
        let e = store
            .ingest_file(&root.join("sub/c.md"), u64::MAX, 0, None)
            .unwrap_err();
        assert!(e.to_string().contains("resolves to"), "{e}");
        // And the state directory itself is never a source.
        let real_secret = fs::canonicalize(&secret).unwrap();
        let e = store
            .ingest_file(&real_secret, u64::MAX, 0, None)
            .unwrap_err();
        assert!(e.to_string().contains("state directory"), "{e}");
        assert_eq!(
            fs::read_dir(d.path().join("blobs/sha256")).unwrap().count(),
            0
        );
    }
}

/// A blob being written from a stream; see [`BlobStore::writer`].
#[derive(Debug)]
pub struct BlobWriter {
    path: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    /// Appends a chunk.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), IngestError> {
        let file = self.file.as_mut().ok_or_else(|| IngestError::Write {
            path: self.path.clone(),
            error: io::Error::other("the blob was already finished"),
        })?;
        file.write_all(chunk).map_err(|error| IngestError::Write {
            path: self.path.clone(),
            error,
        })?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Installs the blob under its digest (durable at the store's next `sync`).
    pub fn finish(mut self, store: &BlobStore) -> Result<Ingested, IngestError> {
        drop(self.file.take());
        let sha256: Hash = std::mem::take(&mut self.hasher).finalize().into();
        let fresh = store.install(&self.path, &sha256);
        // Installed or removed by install: nothing left for drop to clean.
        self.path = PathBuf::new();
        Ok(Ingested {
            sha256,
            size: self.size,
            stored: true,
            head: Vec::new(),
            fresh: fresh?,
            fingerprint: None,
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}
