//! The one reading of a bundle's `.tar.gz` that every common extractor shares.
//!
//! GNU tar, bsdtar and Python's `tarfile` disagree on many archive shapes: data on a
//! directory member, a GNU long name beside a PAX `path`, a PAX keyword given twice, bytes
//! after the first gzip member or after the end marker, the ustar prefix in a GNU header,
//! old-style regular files whose name ends in `/`. A verifier that reads such a shape one way
//! while `tar -x` reads it another would certify bytes the auditor never extracts. So this
//! reader accepts only the shape `evident export` writes, on which they all agree, and
//! refuses everything else with the member and the rule:
//!
//! - one gzip member and nothing after it;
//! - 512-byte POSIX ustar (or GNU-magic) headers with a valid checksum, no ustar prefix,
//!   no link name, and a plain octal size (no base-256);
//! - type `0` (regular file) or `5` (directory, size 0) only: no PAX or GNU extension
//!   headers, links, devices, FIFOs, sparse or contiguous files;
//! - the end marker (two zero blocks), followed by zero bytes only.
//!
//! The rules were found, and are kept true, by `tests/fixtures/tar_differential.py`: every
//! archive verify accepts must extract identically with all three.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use super::members::{MemberSink, safe_path};

const BLOCK: usize = 512;

/// Directories a bundle may name (tar archives made from an exported directory list them).
const LAYOUT_DIRS: &[&str] = &[
    "",
    "entries",
    "proofs",
    "blobs",
    "blobs/sha256",
    "checkpoints",
    "consistency",
    "report",
    "oscal",
    "tsa",
];

/// Why a header is refused, in words an auditor can act on.
fn type_name(flag: u8) -> &'static str {
    match flag {
        b'1' => "a hard link",
        b'2' => "a symbolic link",
        b'3' | b'4' => "a device file",
        b'6' => "a FIFO",
        b'7' => "a contiguous file (read differently by extractors)",
        b'\0' => "an old-style (pre-POSIX) regular file, which extractors read differently",
        b'x' => "a PAX extended header",
        b'g' => "a PAX global header",
        b'L' => "a GNU long name",
        b'K' => "a GNU long link name",
        b'S' => "a GNU sparse file",
        b'V' => "a volume label",
        b'M' => "a multi-volume continuation",
        _ => "of an unknown type",
    }
}

/// A plain octal number field: optional leading spaces, octal digits, then NUL or space
/// only; a field of NULs alone is 0 (as every extractor reads it).
fn octal(field: &[u8]) -> Option<u64> {
    if field.iter().all(|b| *b == 0) {
        return Some(0);
    }
    let start = field.iter().position(|b| *b != b' ')?;
    let rest = &field[start..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest[..digits].iter().any(|b| *b > b'7') {
        return None;
    }
    if !rest[digits..].iter().all(|b| *b == 0 || *b == b' ') {
        return None;
    }
    let mut n: u64 = 0;
    for b in &rest[..digits] {
        n = n.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// A NUL-terminated text field with nothing but NULs after its end.
fn text_field(field: &[u8]) -> Option<&[u8]> {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    field[end..]
        .iter()
        .all(|b| *b == 0)
        .then_some(&field[..end])
}

/// What one header block says, once it passed every rule.
struct Header {
    path: String,
    size: u64,
    dir: bool,
}

/// Checks one non-zero header block; `Err` says why it is refused and whether reading can
/// go on (the framing is still known) or must stop.
fn header(block: &[u8; BLOCK]) -> Result<Header, (String, bool)> {
    let stored = octal(&block[148..156])
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            (
                "a header's checksum field is not a number".to_owned(),
                false,
            )
        })?;
    let sum: u32 = block[..148]
        .iter()
        .chain(&block[156..])
        .map(|b| u32::from(*b))
        .sum::<u32>()
        + 8 * u32::from(b' ');
    if sum != stored {
        return Err((
            "a header's checksum does not match (corrupt archive)".to_owned(),
            false,
        ));
    }
    let magic = &block[257..265];
    if magic != b"ustar\x0000" && magic != b"ustar  \0" {
        return Err((
            "a header is not POSIX ustar (old V7 or unknown format)".to_owned(),
            false,
        ));
    }
    // Every numeric field plain octal: Python's tarfile silently ends the archive at a header
    // it cannot decode and GNU tar fails on it, so such a header is where they part ways.
    for (field, what) in [
        (&block[100..108], "mode"),
        (&block[108..116], "uid"),
        (&block[116..124], "gid"),
        (&block[136..148], "mtime"),
        (&block[329..337], "devmajor"),
        (&block[337..345], "devminor"),
    ] {
        if octal(field).is_none() {
            return Err((
                format!("a header's {what} is not a plain octal number"),
                false,
            ));
        }
    }
    let size = octal(&block[124..136]).ok_or_else(|| {
        (
            "a header's size is not a plain octal number (base-256 or garbage)".to_owned(),
            false,
        )
    })?;
    let name = text_field(&block[..100]);
    let shown = String::from_utf8_lossy(name.unwrap_or(&block[..100]))
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>();
    let flag = block[156];
    // From here on the size is trusted for framing: the member can be skipped.
    let refuse = |why: String| Err((format!("refused member {shown}: {why}"), true));
    if flag != b'0' && flag != b'5' {
        return refuse(format!(
            "it is {}; bundles hold plain regular files only",
            type_name(flag)
        ));
    }
    let Some(name) = name else {
        return refuse("bytes follow the NUL that ends its name".to_owned());
    };
    if !block[345..500].iter().all(|b| *b == 0) {
        return refuse("its header uses the ustar prefix or GNU extra fields, which extractors read differently".to_owned());
    }
    if !block[157..257].iter().all(|b| *b == 0) {
        return refuse("a regular file or directory with a link name".to_owned());
    }
    let dir = flag == b'5';
    if dir && size != 0 {
        return refuse(format!(
            "a directory with {size} bytes of data, which some extractors read as further members"
        ));
    }
    if !dir && name.ends_with(b"/") {
        return refuse("a regular file whose name ends in '/'".to_owned());
    }
    let path = if dir && matches!(name, b"." | b"./") {
        String::new()
    } else {
        match safe_path(name) {
            Ok(p) => p,
            Err(why) => return refuse(why),
        }
    };
    let path = if dir {
        path.trim_end_matches('/').to_owned()
    } else {
        path
    };
    if dir && !LAYOUT_DIRS.contains(&path.as_str()) {
        return refuse("a directory that is not part of an Evident bundle".to_owned());
    }
    Ok(Header { path, size, dir })
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean end before the first byte.
fn read_block(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Counts decompressed bytes and stops at a cap.
struct Capped<R> {
    inner: R,
    read: u64,
    cap: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read >= self.cap {
            return Err(io::Error::other(format!(
                "the archive decompresses to more than {} bytes (--max-total-size)",
                self.cap
            )));
        }
        let room = usize::try_from(self.cap - self.read).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Decompressed bytes handed over at a time.
const CHUNK: usize = 1 << 20;

/// What the inflating thread hands over, in stream order.
enum Inflated {
    Data(Vec<u8>),
    /// The gzip member ended; whether bytes follow it in the file.
    End(io::Result<bool>),
    Failed(io::Error),
}

/// The decompressed stream, inflated ahead on a second thread (inflating was a quarter of
/// a bundle verify's time, beside hashing and checking on this one). At most four chunks
/// wait, so memory stays bounded whatever the archive claims.
struct Pipe {
    rx: Receiver<Inflated>,
    /// Chunks read, returned for reuse.
    back: Sender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    /// Set once the gzip member has ended.
    end: Option<io::Result<bool>>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.chunk.len() {
                let n = buf.len().min(self.chunk.len() - self.pos);
                buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.end.is_some() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Inflated::Data(d)) => {
                    let used = std::mem::replace(&mut self.chunk, d);
                    let _ = self.back.send(used);
                    self.pos = 0;
                }
                Ok(Inflated::End(trailing)) => self.end = Some(trailing),
                Ok(Inflated::Failed(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("decompression stopped after an error")),
            }
        }
    }
}

/// Inflates the one gzip member of `file` into `tx` until it ends, fails, or the reader
/// hangs up.
fn inflate(file: impl Read, tx: SyncSender<Inflated>, back: Receiver<Vec<u8>>) {
    let mut gz = flate2::bufread::GzDecoder::new(BufReader::with_capacity(1 << 20, file));
    loop {
        let mut chunk = back.try_recv().unwrap_or_default();
        chunk.resize(CHUNK, 0);
        let mut n = 0;
        let ended = loop {
            match gz.read(&mut chunk[n..]) {
                Ok(0) => break Ok(true),
                Ok(k) => {
                    n += k;
                    if n == CHUNK {
                        break Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        chunk.truncate(n);
        if n > 0 && tx.send(Inflated::Data(chunk)).is_err() {
            return;
        }
        let last = match ended {
            Ok(false) => continue,
            Ok(true) => Inflated::End(gz.into_inner().fill_buf().map(|rest| !rest.is_empty())),
            Err(e) => Inflated::Failed(e),
        };
        let _ = tx.send(last);
        return;
    }
}

/// Reads every member of a `.tar.gz` by the rules above, handing regular files to `st`;
/// stops at the first byte that cannot be framed and says where. `max_total` bounds the
/// decompressed bytes.
pub(super) fn read_tar(file: impl Read + Send, max_total: u64, st: &mut dyn MemberSink) {
    let (tx, rx) = sync_channel(4);
    let (back_tx, back_rx) = channel();
    std::thread::scope(|scope| {
        scope.spawn(move || inflate(file, tx, back_rx));
        let mut gz = Capped {
            inner: Pipe {
                rx,
                back: back_tx,
                chunk: Vec::new(),
                pos: 0,
                end: None,
            },
            read: 0,
            cap: max_total,
        };
        read_members(&mut gz, st);
        // Dropping the pipe here lets the thread stop, if it has not, before the scope ends.
    });
}

fn read_members(gz: &mut Capped<Pipe>, st: &mut dyn MemberSink) {
    let mut last = String::from("(start)");
    let mut block = [0u8; BLOCK];
    loop {
        match read_block(gz, &mut block) {
            Ok(true) => {}
            Ok(false) => {
                st.refuse(format!(
                    "the archive ends after {last} without the tar end marker (truncated)"
                ));
                return;
            }
            Err(e) => {
                st.refuse(format!(
                    "the archive is truncated or corrupt after {last}: {e}"
                ));
                return;
            }
        }
        if block.iter().all(|b| *b == 0) {
            break;
        }
        let h = match header(&block) {
            Ok(h) => h,
            Err((why, true)) => {
                st.refuse(why);
                let size = octal(&block[124..136]).unwrap_or(0);
                if let Err(e) = skip(gz, padded(size)) {
                    st.refuse(format!(
                        "the archive is truncated or corrupt after {last}: {e}"
                    ));
                    return;
                }
                continue;
            }
            Err((why, false)) => {
                st.refuse(format!(
                    "{why}, after {last}; the archive cannot be read further"
                ));
                return;
            }
        };
        if h.dir {
            continue;
        }
        let mut data = (&mut *gz).take(h.size);
        if let Err(e) = st.member(&h.path, h.size, &mut data) {
            st.refuse(format!(
                "the archive is truncated or corrupt in {}: {e}",
                h.path
            ));
            return;
        }
        // Whatever the sink left unread, then the padding to the next block.
        let rest = data.limit() + (padded(h.size) - h.size);
        if let Err(e) = skip(gz, rest) {
            st.refuse(format!(
                "the archive is truncated or corrupt in {}: {e}",
                h.path
            ));
            return;
        }
        last = h.path;
    }
    // The end marker is two zero blocks; after it, zeros only (the record padding).
    match read_block(gz, &mut block) {
        Ok(true) if block.iter().all(|b| *b == 0) => {}
        Ok(true) => {
            st.refuse(
                "a single zero block is followed by more data: extractors stop at different places"
                    .to_owned(),
            );
            return;
        }
        Ok(false) | Err(_) => {
            st.refuse(
                "the archive ends with one zero block instead of the two of the tar end marker"
                    .to_owned(),
            );
            return;
        }
    }
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match gz.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if buf[..n].iter().all(|b| *b == 0) => {}
            Ok(_) => {
                st.refuse("non-zero bytes follow the tar end marker: some extractors read them as more members".to_owned());
                return;
            }
            Err(e) => {
                st.refuse(format!("the archive is corrupt after its end marker: {e}"));
                return;
            }
        }
    }
    match gz.inner.end.take() {
        Some(Ok(false)) => {}
        Some(Ok(true)) => st.refuse(
            "bytes follow the first gzip member (a second gzip stream or garbage): gzip and tar would read them, so they are refused".to_owned(),
        ),
        Some(Err(e)) => st.refuse(format!("cannot read the end of the archive: {e}")),
        None => st.refuse("the archive ends without the end of its gzip member".to_owned()),
    }
}

/// `size` rounded up to whole blocks.
fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

fn skip(r: &mut impl Read, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_are_plain() {
        assert_eq!(octal(b"00000001750\0"), Some(1000));
        assert_eq!(octal(b"     1750 \0\0"), Some(1000));
        assert_eq!(octal(b"0000000175x\0"), None);
        assert_eq!(octal(b"\x80\0\0\0\0\0\0\0\0\0\x03\xe8"), None);
        assert_eq!(octal(b"00000000009\0"), None);
        assert_eq!(octal(b"\0\0\0\0\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(octal(b"            "), None);
    }

    #[test]
    fn name_fields_end_at_their_nul() {
        assert_eq!(text_field(b"abc\0\0\0"), Some(&b"abc"[..]));
        assert_eq!(text_field(b"abc\0x\0"), None);
        assert_eq!(text_field(b"abcdef"), Some(&b"abcdef"[..]));
    }
}
