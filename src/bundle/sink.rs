//! Where bundle members go: a deterministic `.tar.gz` or a fresh directory, with every
//! member's SHA-256 recorded on the way for `SHA256SUMS`.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::ledger::leaf::hex;

enum Target {
    Tar {
        builder: Box<tar::Builder<Deflater>>,
        partial: PathBuf,
        out: PathBuf,
    },
    Dir {
        root: PathBuf,
    },
}

/// Writes members in the order given and remembers their digests.
pub struct Sink {
    target: Target,
    /// `SHA256SUMS` lines, kept in a temporary file so memory stays flat.
    sums: BufWriter<File>,
    sums_file: tempfile::NamedTempFile,
    /// Scratch space inside the target's directory for members assembled at the end.
    scratch: tempfile::TempDir,
    mtime: u64,
    /// Bytes of member content written.
    pub bytes: u64,
    /// Members written.
    pub members: u64,
}

/// A reader that hashes what passes through it.
pub(super) struct Hashing<R> {
    pub(super) inner: R,
    pub(super) hasher: Sha256,
    pub(super) count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Bytes handed to the compression thread at a time.
const HANDOFF: usize = 1 << 20;

/// Gzip on a thread of its own: the tar stream is handed over in 1 MiB buffers, so
/// deflating (half of an export's CPU) runs beside the proofs, hashing and tar framing on
/// the other core (100k entries, 10k blobs: 5.4 s → 3.5 s at level 6). One gzip member.
struct Deflater {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    worker: Option<JoinHandle<io::Result<File>>>,
}

impl Deflater {
    fn new(file: File) -> io::Result<Self> {
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let worker = std::thread::Builder::new()
            .name("export-gzip".into())
            .spawn(move || {
                let out = BufWriter::with_capacity(1 << 20, file);
                // Level 2: on the benchmark bundle within 2 % of level 6's size in 0.85× the
                // time; evidence (PDFs, office files, images) is mostly compressed already.
                let mut gz = GzEncoder::new(out, Compression::new(2));
                for chunk in rx {
                    gz.write_all(&chunk)?;
                }
                gz.finish()?.into_inner().map_err(|e| e.into_error())
            })?;
        Ok(Deflater {
            buf: Vec::with_capacity(HANDOFF),
            tx: Some(tx),
            worker: Some(worker),
        })
    }

    /// Closes the hand-off and waits for the compression thread: the file, or its error.
    fn join(&mut self) -> io::Result<File> {
        drop(self.tx.take());
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(io::Error::other("the compression thread panicked")),
        }
    }

    fn hand_off(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(HANDOFF));
        if self.tx.as_ref().is_some_and(|tx| tx.send(chunk).is_ok()) {
            return Ok(());
        }
        // The thread has stopped: its error says why.
        Err(self
            .join()
            .err()
            .unwrap_or_else(|| io::Error::other("the compression thread stopped")))
    }

    /// Compresses what is left and returns the file, not yet synced.
    fn finish(mut self) -> io::Result<File> {
        self.hand_off()?;
        self.join()
    }
}

impl Write for Deflater {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= HANDOFF {
            self.hand_off()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Deflater {
    /// An abandoned export waits for its thread, so nothing writes after it is removed.
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// A regular file's ustar header with fixed owner, mode and time.
fn header(path: &str, size: u64, mtime: u64) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

impl Sink {
    /// A sink for `out`: a `.tar.gz` written beside it and renamed into place by
    /// [`Sink::finish`], or a directory that must not exist yet or be empty. `mtime` is the
    /// modification time every tar member carries.
    pub fn create(out: &Path, tarball: bool, mtime: u64) -> io::Result<Sink> {
        let scratch_dir = if tarball {
            out.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        } else {
            out.to_path_buf()
        };
        let target = if tarball {
            let name = out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let partial = scratch_dir.join(format!(".{name}.partial"));
            let file = File::create(&partial)?;
            Target::Tar {
                builder: Box::new(tar::Builder::new(Deflater::new(file)?)),
                partial,
                out: out.to_path_buf(),
            }
        } else {
            match std::fs::read_dir(out) {
                Ok(mut d) => {
                    if d.next().is_some() {
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!(
                                "{} exists and is not empty; export into a new directory",
                                out.display()
                            ),
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir_all(out)?,
                Err(e) => return Err(e),
            }
            Target::Dir {
                root: out.to_path_buf(),
            }
        };
        // Scratch files live in the target's own directory, never elsewhere.
        let scratch = tempfile::Builder::new()
            .prefix(".evident-export")
            .tempdir_in(&scratch_dir)?;
        let sums_file = tempfile::Builder::new()
            .prefix("sums")
            .tempfile_in(scratch.path())?;
        let sums = BufWriter::new(sums_file.reopen()?);
        Ok(Sink {
            target,
            sums,
            sums_file,
            scratch,
            mtime,
            bytes: 0,
            members: 0,
        })
    }

    /// A private scratch directory inside the target's directory, removed with the sink.
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// Adds a member from memory.
    pub fn add(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.add_reader(path, data.len() as u64, data).map(|_| ())
    }

    /// Adds a member of `size` bytes read from `reader`; fails if it yields another length.
    /// Returns the member's SHA-256.
    pub fn add_reader(&mut self, path: &str, size: u64, reader: impl Read) -> io::Result<[u8; 32]> {
        let mut r = Hashing {
            inner: reader.take(size),
            hasher: Sha256::new(),
            count: 0,
        };
        match &mut self.target {
            Target::Tar { builder, .. } => {
                builder.append(&header(path, size, self.mtime)?, &mut r)?;
            }
            Target::Dir { root } => {
                let dest = root.join(path);
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut f = File::options().write(true).create_new(true).open(&dest)?;
                io::copy(&mut r, &mut f)?;
                f.flush()?;
            }
        }
        if r.count != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path}: expected {size} bytes, read {}", r.count),
            ));
        }
        let digest: [u8; 32] = r.hasher.finalize().into();
        writeln!(self.sums, "{}  {path}", hex(&digest))?;
        self.bytes += size;
        self.members += 1;
        Ok(digest)
    }

    /// Adds a file's content as a member; returns its SHA-256.
    pub fn add_file(&mut self, path: &str, file: &Path) -> io::Result<[u8; 32]> {
        let f = File::open(file)?;
        let size = f.metadata()?.len();
        self.add_reader(path, size, f)
    }

    /// Writes `SHA256SUMS` and, after it, `sig_name` made by `sign` from the SHA-256 of
    /// the sums; then closes the bundle (a tarball is synced and renamed into place).
    pub fn finish(
        mut self,
        sums_name: &str,
        sig_name: &str,
        sign: impl FnOnce(&[u8; 32]) -> io::Result<Vec<u8>>,
    ) -> io::Result<()> {
        self.sums.flush()?;
        let sums_path = self.sums_file.path().to_path_buf();
        let mut r = Hashing {
            inner: File::open(&sums_path)?,
            hasher: Sha256::new(),
            count: 0,
        };
        let size = io::copy(&mut r, &mut io::sink())?;
        let sig = sign(&r.hasher.finalize().into())?;
        // Neither lists itself: both go past the hashing sink.
        let Sink {
            target,
            sums_file,
            scratch,
            mtime,
            ..
        } = self;
        match target {
            Target::Tar {
                mut builder,
                partial,
                out,
            } => {
                builder.append(&header(sums_name, size, mtime)?, File::open(&sums_path)?)?;
                builder.append(&header(sig_name, sig.len() as u64, mtime)?, sig.as_slice())?;
                let file = builder.into_inner()?.finish()?;
                file.sync_all()?;
                std::fs::rename(&partial, &out)?;
                drop(sums_file);
            }
            Target::Dir { root } => {
                sums_file
                    .persist(root.join(sums_name))
                    .map_err(|e| e.error)?;
                let mut f = File::options()
                    .write(true)
                    .create_new(true)
                    .open(root.join(sig_name))?;
                f.write_all(&sig)?;
            }
        }
        drop(scratch);
        Ok(())
    }

    /// Removes what an unfinished export wrote.
    pub fn abandon(self) {
        match &self.target {
            Target::Tar { partial, .. } => {
                let _ = std::fs::remove_file(partial);
            }
            Target::Dir { root } => {
                let _ = std::fs::remove_dir_all(root);
            }
        }
    }
}
