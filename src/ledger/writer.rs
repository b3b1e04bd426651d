//! The one writer: a thread that owns the write connection and appends whole batches.
//!
//! Each batch is one `BEGIN IMMEDIATE … COMMIT` transaction: entries, their control index,
//! the new Merkle tree hashes, the artefact index and the collector's cursor commit together
//! or not at all. Callers submit a batch and get a ticket; they may hash the next batch while
//! this one commits. The tree's right edge stays in memory, and is reloaded whenever the
//! database grew behind our back (another process appended) or a transaction failed.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use evident_collectors::Fingerprint;
use rusqlite::{Connection, OptionalExtension, params};

use super::evidence::{counts_as_evidence, evidence_date};
use super::leaf::{ERASED_URI, EntryStatement, hex, parse_hex32};
use super::merkle::{
    Frontier, Hash, HashReader, MerkleError, leaf_hash, stored_hash_index, tree_hash,
};
use super::note::{Checkpoint, NoteSigner};
use super::state::StateDir;
use super::{LedgerError, now_rfc3339, schema};

/// What an entry does to the index of present artefacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtefactChange {
    /// Nothing (collector runs, one-off records).
    None,
    /// The artefact is present in this version.
    Present {
        /// Its stat fingerprint, for file sources.
        fingerprint: Option<Fingerprint>,
        /// The source's change marker, for API sources.
        version: Option<String>,
    },
    /// The artefact is gone.
    Removed,
}

/// One entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// The statement the leaf encodes.
    statement: EntryStatement,
    /// The canonical leaf bytes. This and the fields below are computed on the caller's
    /// thread so the writer thread only inserts.
    leaf: Vec<u8>,
    leaf_hash: Hash,
    sha256: Option<Hash>,
    controls: String,
    /// Whether the content is in the blob store.
    has_blob: bool,
    /// Effect on the artefact index.
    artefact: ArtefactChange,
    /// The `uri` and `title` columns: the leaf's, or for a v2 leaf its metadata record's.
    uri: String,
    title: Option<String>,
    /// A v2 leaf's metadata record (canonical bytes) and `artefact`, stored beside it.
    meta: Option<(Vec<u8>, String)>,
}

/// The largest leaf written: what a C2SP `tlog-tiles` entry bundle carries (a 16-bit
/// length), so every entry can be published.
pub const MAX_LEAF: usize = u16::MAX as usize;

/// Shortens the statement's title (free text, ending it with `…`) until its leaf fits in
/// [`MAX_LEAF`]; the other fields are bounded where they are made (URIs, digests, dates).
fn fit(statement: &mut EntryStatement) -> Vec<u8> {
    let leaf = statement.to_leaf_bytes();
    let Some(full) = statement
        .predicate
        .title
        .clone()
        .filter(|_| leaf.len() > MAX_LEAF)
    else {
        return leaf;
    };
    // The longest prefix that fits, by bisection: JSON escapes make the encoded length of a
    // cut hard to predict (one to six bytes per character). Rare, so the encodings are cheap.
    let with = |st: &mut EntryStatement, at: usize| {
        st.predicate.title = Some(format!("{}…", &full[..at]));
        st.to_leaf_bytes()
    };
    let (mut lo, mut hi) = (0, full.len());
    while lo < hi {
        let mut mid = (lo + hi).div_ceil(2);
        while !full.is_char_boundary(mid) {
            mid -= 1;
        }
        if mid <= lo {
            break;
        }
        if with(statement, mid).len() <= MAX_LEAF {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    with(statement, lo)
}

impl NewEntry {
    /// An entry for `statement` (a title too long for a publishable leaf is shortened).
    pub fn new(mut statement: EntryStatement, has_blob: bool, artefact: ArtefactChange) -> Self {
        let leaf = fit(&mut statement);
        let p = &statement.predicate;
        NewEntry {
            leaf_hash: leaf_hash(&leaf),
            sha256: parse_hex32(&statement.subject().digest.sha256),
            controls: p.controls.join(","),
            uri: p
                .uri
                .clone()
                .unwrap_or_else(|| statement.subject().name.clone()),
            title: p.title.clone(),
            meta: None,
            statement,
            leaf,
            has_blob,
            artefact,
        }
    }

    /// An entry for `statement` in a v2 leaf (`ledger::meta`): its title, URI and submitter
    /// go into a metadata record stored beside the leaf, which commits to it.
    pub fn v2(
        statement: EntryStatement,
        key: &super::meta::ArtefactKey,
        has_blob: bool,
        artefact: ArtefactChange,
    ) -> Result<Self, LedgerError> {
        let (v2, record, bytes) = super::meta::to_v2(statement, key)?;
        let mut e = NewEntry::new(v2, has_blob, artefact);
        e.uri = record.uri;
        e.title = record.title;
        e.meta = Some((
            bytes,
            e.statement.predicate.artefact.clone().unwrap_or_default(),
        ));
        Ok(e)
    }

    /// The leaf bytes.
    pub fn leaf(&self) -> &[u8] {
        &self.leaf
    }
}

/// A fingerprint or change-marker refresh for an artefact whose content did not change (a
/// touched file, an API record whose marker moved but whose content is the same).
#[derive(Debug, Clone)]
pub struct Touch {
    /// Artefact URI.
    pub uri: String,
    /// New fingerprint, if it changed.
    pub fingerprint: Option<Fingerprint>,
    /// New change marker, if it changed.
    pub version: Option<String>,
}

/// Everything one transaction writes.
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// Entries, appended in order.
    pub entries: Vec<NewEntry>,
    /// Fingerprint refreshes.
    pub touches: Vec<Touch>,
    /// A collector cursor to save: (collector, cursor).
    pub cursor: Option<(String, String)>,
    /// A finished run for the run history; the batch's last entry, if it has any, is the
    /// run's `collector_run` entry.
    pub run: Option<RunRecord>,
    /// Content read into the store for items found unchanged against a version whose
    /// content was erased: removed once the batch commits, unless one of its entries
    /// holds it (erased bytes must not come back as an orphan).
    pub discard: Vec<Hash>,
}

impl WriteBatch {
    /// The digests of the content its entries name (what must be durable before it
    /// commits).
    pub fn stored_digests(&self) -> Vec<Hash> {
        self.entries
            .iter()
            .filter(|e| e.has_blob)
            .filter_map(|e| e.sha256)
            .collect()
    }
}

/// One collector run, as the run history keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunRecord {
    /// Collector name.
    pub collector: String,
    /// Start (RFC 3339 UTC).
    pub started_at: String,
    /// End (RFC 3339 UTC).
    pub finished_at: String,
    /// Entries added for new or changed artefacts.
    pub new: u64,
    /// Artefacts found unchanged.
    pub unchanged: u64,
    /// Artefacts found gone.
    pub removed: u64,
    /// Items that could not be recorded.
    pub failed: u64,
    /// The run's error, as its `collector_run` entry states it.
    pub error: Option<String>,
}

/// How long runs that appended no entry stay in the run history.
const RUN_HISTORY_DAYS: i64 = 400;

/// Where a committed batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Index of the first entry appended.
    pub first: u64,
    /// Number of entries appended.
    pub count: u64,
    /// Tree size after the commit.
    pub size: u64,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// Tree size.
    pub size: u64,
    /// The signed note.
    pub note: String,
    /// Whether this call signed it (false: it already existed).
    pub new: bool,
}

enum Command {
    Append(
        WriteBatch,
        mpsc::Sender<(Result<Appended, LedgerError>, WriteBatch)>,
    ),
    Checkpoint(mpsc::Sender<Result<SignedCheckpoint, LedgerError>>),
    Timestamp(u64, Vec<u8>, String, mpsc::Sender<Result<(), LedgerError>>),
    Cosignature(Cosignature, mpsc::Sender<Result<(), LedgerError>>),
    EraseMeta(u64, mpsc::Sender<Result<(bool, bool), LedgerError>>),
}

/// A pending commit.
#[derive(Debug)]
pub struct Ticket(Receiver<(Result<Appended, LedgerError>, WriteBatch)>);

impl Ticket {
    /// Waits until the batch is committed (or failed).
    pub fn wait(self) -> Result<Appended, LedgerError> {
        // The batch comes back to be freed here, off the writer thread.
        let (result, _batch) = self
            .0
            .recv()
            .map_err(|_| LedgerError::WriterGone("it exited before answering".into()))?;
        result
    }
}

/// Handle to the writer thread. Dropping it finishes queued work and joins the thread.
#[derive(Debug)]
pub struct Writer {
    tx: Option<SyncSender<Command>>,
    thread: Option<JoinHandle<()>>,
    /// The artefact key, when the ledger writes v2 leaves.
    v2: Option<super::meta::ArtefactKey>,
}

impl Writer {
    /// Opens the ledger in `state` for writing, checking that it belongs to `origin`.
    pub fn open(state: &StateDir, origin: &str) -> Result<Writer, LedgerError> {
        if !state.db_path().exists() {
            return Err(LedgerError::NotInitialised(state.dir().to_owned()));
        }
        let signer = state.signer()?;
        let conn = schema::open_write(&state.db_path(), false)?;
        state.check_origin(&conn, origin)?;
        if signer.name() != origin {
            return Err(LedgerError::OriginMismatch {
                dir: state.dir().to_owned(),
                ledger: signer.name().to_owned(),
                config: origin.to_owned(),
            });
        }
        let v2 = super::meta::ArtefactKey::load(&conn)?;
        if v2.is_some() {
            // Erased metadata must not linger in the file's free pages.
            conn.pragma_update(None, "secure_delete", true)?;
        }
        let mut inner = Inner {
            conn,
            frontier: Frontier::default(),
            signer,
            origin: origin.to_owned(),
            lease: super::lease::Lease::for_ledger(state.dir(), origin),
        };
        inner.reload()?;
        // A small queue: the recorder may run one batch ahead of the commit, no more.
        let (tx, rx) = mpsc::sync_channel::<Command>(1);
        let thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || inner.run(rx))
            .map_err(|e| LedgerError::io("starting the ledger writer thread", e))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            v2,
        })
    }

    /// The artefact key, when the ledger writes v2 leaves (`ledger::meta`).
    pub fn leaf_v2(&self) -> Option<&super::meta::ArtefactKey> {
        self.v2.as_ref()
    }

    /// Erases the metadata of v2 entry `index`: its record, and its title and URI columns
    /// (the URI becomes `evident:artefact:<artefact>`, also in the artefact index when it is
    /// the current version), then truncates the write-ahead log so no copy of the old pages
    /// stays. Says whether anything was erased (not when it already was), and whether the
    /// log could be truncated (not while another process reads an older snapshot: its
    /// pages then keep the old text until that reader ends and the log is checkpointed).
    pub fn erase_meta(&self, index: u64) -> Result<(bool, bool), LedgerError> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::EraseMeta(index, tx))?;
        rx.recv()
            .map_err(|_| LedgerError::WriterGone("it exited before answering".into()))?
    }

    fn send(&self, cmd: Command) -> Result<(), LedgerError> {
        self.tx
            .as_ref()
            .ok_or_else(|| LedgerError::WriterGone("closed".into()))?
            .send(cmd)
            .map_err(|_| LedgerError::WriterGone("the thread has exited".into()))
    }

    /// Queues a batch; the ticket tells when it committed.
    pub fn submit(&self, batch: WriteBatch) -> Result<Ticket, LedgerError> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Append(batch, tx))?;
        Ok(Ticket(rx))
    }

    /// Appends a batch and waits for the commit.
    pub fn append(&self, batch: WriteBatch) -> Result<Appended, LedgerError> {
        self.submit(batch)?.wait()
    }

    /// Signs a checkpoint of the current tree (or returns the one that exists for this size).
    pub fn checkpoint(&self) -> Result<SignedCheckpoint, LedgerError> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Checkpoint(tx))?;
        rx.recv()
            .map_err(|_| LedgerError::WriterGone("it exited before answering".into()))?
    }

    /// Stores a verified RFC 3161 token for the checkpoint of `size` (once per size).
    pub fn store_timestamp(
        &self,
        size: u64,
        token: &[u8],
        tsa_url: &str,
    ) -> Result<(), LedgerError> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Timestamp(
            size,
            token.to_vec(),
            tsa_url.to_owned(),
            tx,
        ))?;
        rx.recv()
            .map_err(|_| LedgerError::WriterGone("it exited before answering".into()))?
    }
}

impl Writer {
    /// Stores a witness's cosignature of the checkpoint of `cosig.size` (kept once per
    /// witness and size; a second is ignored).
    pub fn store_cosignature(&self, cosig: Cosignature) -> Result<(), LedgerError> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Cosignature(cosig, tx))?;
        rx.recv()
            .map_err(|_| LedgerError::WriterGone("it exited before answering".into()))?
    }
}

/// A witness's cosignature of one checkpoint, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// The checkpoint's tree size.
    pub size: u64,
    /// The witness's key name.
    pub witness: String,
    /// The signature line (`— <name> <base64>`, with its newline).
    pub line: String,
    /// When the witness signed it (seconds since the epoch).
    pub time: u64,
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Inner {
    conn: Connection,
    frontier: Frontier,
    signer: NoteSigner,
    origin: String,
    /// With content in a bucket: the sequencer lease taken before each new checkpoint.
    lease: Option<super::lease::Lease>,
}

struct ConnHashes<'a>(&'a Connection);

impl HashReader for ConnHashes<'_> {
    fn read_hash(&self, sidx: u64) -> Result<Hash, MerkleError> {
        read_stored_hash(self.0, sidx)
    }
}

/// Reads one stored hash by index.
pub(crate) fn read_stored_hash(conn: &Connection, sidx: u64) -> Result<Hash, MerkleError> {
    let blob: Option<Vec<u8>> = conn
        .prepare_cached("SELECT hash FROM tree_hashes WHERE sidx = ?1")
        .and_then(|mut st| st.query_row([sidx as i64], |r| r.get(0)).optional())
        .map_err(|e| MerkleError::Storage(e.to_string()))?;
    blob.ok_or(MerkleError::Missing(sidx))?
        .try_into()
        .map_err(|_| MerkleError::Storage(format!("stored hash {sidx} is not 32 bytes")))
}

/// The number of entries in the ledger.
pub(crate) fn entry_count(conn: &Connection) -> Result<u64, rusqlite::Error> {
    conn.prepare_cached("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries")?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

impl Inner {
    fn run(mut self, rx: Receiver<Command>) {
        for cmd in rx {
            match cmd {
                Command::Append(batch, reply) => {
                    let r = self.transact(|s| s.append(&batch));
                    let _ = reply.send((r, batch));
                }
                Command::Checkpoint(reply) => {
                    let r = self.transact(Inner::checkpoint);
                    let _ = reply.send(r);
                }
                Command::Cosignature(c, reply) => {
                    let r = self
                        .conn
                        .execute(
                            "INSERT OR IGNORE INTO cosignatures (size, witness, line, time) \
                             VALUES (?1, ?2, ?3, ?4)",
                            params![c.size as i64, c.witness, c.line, c.time as i64],
                        )
                        .map(|_| ())
                        .map_err(LedgerError::from);
                    let _ = reply.send(r);
                }
                Command::EraseMeta(index, reply) => {
                    let r = self.transact(|s| s.erase_meta(index)).map(|erased| {
                        // Its first column is 1 when a reader kept the log from being reset.
                        let truncated = self
                            .conn
                            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                                r.get::<_, i64>(0)
                            })
                            .is_ok_and(|busy| busy == 0);
                        (erased, truncated)
                    });
                    let _ = reply.send(r);
                }
                Command::Timestamp(size, token, url, reply) => {
                    let r = self
                        .conn
                        .execute(
                            "INSERT OR IGNORE INTO timestamps (size, token, tsa_url, received_at) \
                             VALUES (?1, ?2, ?3, ?4)",
                            params![size as i64, token, url, now_rfc3339()],
                        )
                        .map(|_| ())
                        .map_err(LedgerError::from);
                    let _ = reply.send(r);
                }
            }
        }
    }

    fn reload(&mut self) -> Result<(), LedgerError> {
        let size = entry_count(&self.conn)?;
        self.frontier = Frontier::load(&ConnHashes(&self.conn), size)?;
        Ok(())
    }

    /// Runs `f` in one immediate transaction; on failure rolls back and reloads the frontier.
    fn transact<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let result = (|| {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            if entry_count(&self.conn)? != self.frontier.size() {
                // Another process appended since we last looked.
                self.reload()?;
            }
            let out = f(self)?;
            self.conn.execute_batch("COMMIT")?;
            Ok(out)
        })();
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
            if let Err(e) = self.reload() {
                tracing::error!(error = %e, "reloading the tree after a failed write");
            }
        }
        result
    }

    fn append(&mut self, batch: &WriteBatch) -> Result<Appended, LedgerError> {
        let first = self.frontier.size();
        let c = &self.conn;
        let mut ins_entry = c.prepare_cached(
            "INSERT INTO entries (idx, leaf, kind, source, uri, sha256, collected_at, title, \
             effective_date, source_updated_at, size, has_blob, controls) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        let mut ins_evidence = c.prepare_cached(
            "INSERT INTO evidence (control, date, idx, basis, collected_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut ins_hash =
            c.prepare_cached("INSERT INTO tree_hashes (sidx, hash) VALUES (?1, ?2)")?;
        let mut ins_meta =
            c.prepare_cached("INSERT INTO entry_meta (idx, record) VALUES (?1, ?2)")?;
        for e in &batch.entries {
            let idx = self.frontier.size();
            let st = &e.statement;
            let p = &st.predicate;
            let subject = st.subject();
            let sha = e.sha256.ok_or_else(|| {
                LedgerError::Corrupt(format!(
                    "entry digest {:?} is not hex",
                    subject.digest.sha256
                ))
            })?;
            let uri = e.uri.as_str();
            let leaf = &e.leaf;
            let size: Option<i64> = p.size.as_deref().and_then(|s| s.parse().ok());
            ins_entry.execute(params![
                idx as i64,
                leaf,
                p.kind,
                p.source,
                uri,
                &sha[..],
                p.collected_at,
                e.title,
                p.effective_date,
                p.source_updated_at,
                size,
                e.has_blob,
                e.controls,
            ])?;
            if let Some((record, _)) = &e.meta {
                ins_meta.execute(params![idx as i64, record])?;
            }
            let evidence = counts_as_evidence(&p.kind).then(|| {
                evidence_date(
                    p.effective_date.as_deref(),
                    p.source_updated_at.as_deref(),
                    &p.collected_at,
                )
            });
            if let Some((date, basis)) = &evidence {
                for control in &p.controls {
                    ins_evidence.execute(params![
                        control,
                        date,
                        idx as i64,
                        basis.as_str(),
                        p.collected_at
                    ])?;
                }
            }
            let hashes = self.frontier.append(e.leaf_hash);
            let base = stored_hash_index(0, idx);
            for (i, h) in hashes.iter().enumerate() {
                ins_hash.execute(params![(base + i as u64) as i64, &h[..]])?;
            }
            artefact_change(c, e, idx as i64, &sha)?;
        }
        let size = self.frontier.size();
        record_touches_cursor_and_run(c, batch, (size > first).then(|| size as i64 - 1))?;
        Ok(Appended {
            first,
            count: size - first,
            size,
        })
    }

    fn erase_meta(&mut self, index: u64) -> Result<bool, LedgerError> {
        let c = &self.conn;
        let row: Option<(Vec<u8>, String)> = c
            .query_row(
                "SELECT leaf, uri FROM entries WHERE idx = ?1",
                [index as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((leaf, uri)) = row else {
            return Err(LedgerError::Corrupt(format!("there is no entry {index}")));
        };
        let view = super::leaf::LeafView::parse(&leaf)
            .map_err(|e| LedgerError::Corrupt(format!("entry {index}'s leaf: {e}")))?;
        if !view.is_v2() {
            return Err(LedgerError::Corrupt(format!(
                "entry {index} has a v1 leaf: its title and URI are in the leaf itself"
            )));
        }
        let erased = format!(
            "{ERASED_URI}{}",
            super::leaf::LeafStr::or_empty(&view.predicate.artefact)
        );
        let gone = c.execute("DELETE FROM entry_meta WHERE idx = ?1", [index as i64])?;
        if uri != erased {
            c.execute(
                "UPDATE entries SET uri = ?2, title = NULL WHERE idx = ?1",
                params![index as i64, erased],
            )?;
        }
        // The current version keeps its place in the artefact index under the erased name.
        c.execute(
            "UPDATE artefacts SET uri = ?2 WHERE idx = ?1",
            params![index as i64, erased],
        )?;
        Ok(gone > 0 || uri != erased)
    }

    fn checkpoint(&mut self) -> Result<SignedCheckpoint, LedgerError> {
        let size = self.frontier.size();
        let existing: Option<String> = self
            .conn
            .query_row(
                "SELECT note FROM checkpoints WHERE size = ?1",
                [size as i64],
                |r| r.get(0),
            )
            .optional()?;
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size,
            root: self.frontier.root(),
        };
        let note = self.signer.sign(&cp.text())?;
        if let Some(existing) = existing {
            // Ed25519 is deterministic: the same tree gives the same bytes. Anything else
            // means the stored tree or checkpoint was altered; never sign a second one.
            if existing != note {
                return Err(LedgerError::Corrupt(format!(
                    "a different checkpoint of size {size} is already stored (root {})",
                    hex(&cp.root)
                )));
            }
            return Ok(SignedCheckpoint {
                size,
                note,
                new: false,
            });
        }
        if let Some(lease) = &self.lease {
            // Before the checkpoint exists anywhere: a refused lease leaves nothing signed.
            let conn = &self.conn;
            let signed_before = conn
                .query_row("SELECT 1 FROM checkpoints LIMIT 1", [], |_| Ok(()))
                .optional()?
                .is_some();
            lease.hold(
                &self.signer.verifier(),
                &note,
                size,
                &|s| tree_hash(&ConnHashes(conn), s).map_err(LedgerError::from),
                signed_before,
            )?;
        }
        self.conn.execute(
            "INSERT INTO checkpoints (size, note, signed_at) VALUES (?1, ?2, ?3)",
            params![size as i64, note, now_rfc3339()],
        )?;
        Ok(SignedCheckpoint {
            size,
            note,
            new: true,
        })
    }
}

/// Entry `e`'s effect on the artefact index (at index `idx`, content `sha`): the version it
/// replaces stops being current, and the index names the new one (or forgets a removed one).
fn artefact_change(c: &Connection, e: &NewEntry, idx: i64, sha: &Hash) -> Result<(), LedgerError> {
    if e.artefact == ArtefactChange::None {
        return Ok(());
    }
    let p = &e.statement.predicate;
    let uri = e.uri.as_str();
    let mut upsert = c.prepare_cached(
        "INSERT INTO artefacts (uri, source, sha256, idx, size, mtime_ns, inode, version, \
         ctime_ns, dev) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (uri) DO UPDATE SET \
         source = excluded.source, sha256 = excluded.sha256, idx = excluded.idx, \
         size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode, \
         version = excluded.version, ctime_ns = excluded.ctime_ns, dev = excluded.dev",
    )?;
    let mut remove = c.prepare_cached("DELETE FROM artefacts WHERE uri = ?1")?;
    // The version an artefact change replaces stops being current (coverage counts only
    // current evidence); `evidence::SUPERSEDED_SQL` is the same rule over the entries.
    let mut supersede = c.prepare_cached(
        "INSERT INTO superseded (idx, by_idx, at, removal) VALUES (?1, ?2, ?3, ?4)",
    )?;
    if let Some(old) = previous_version(c, uri, e.meta.as_ref().map(|(_, a)| a.as_str()))? {
        supersede.execute(params![
            old,
            idx,
            p.collected_at,
            e.artefact == ArtefactChange::Removed
        ])?;
    }
    match &e.artefact {
        ArtefactChange::None => {}
        ArtefactChange::Present {
            fingerprint,
            version,
        } => {
            upsert.execute(params![
                uri,
                p.source,
                &sha[..],
                idx,
                fingerprint.map(|f| f.size as i64),
                fingerprint.map(|f| f.mtime_ns),
                fingerprint.map(|f| f.inode as i64),
                version,
                fingerprint.map(|f| f.ctime_ns),
                fingerprint.map(|f| f.dev as i64),
            ])?;
        }
        ArtefactChange::Removed => drop(remove.execute([uri])?),
    }
    Ok(())
}

/// The artefact index's current version of `uri`, which the new version replaces. A v2
/// version (`artefact`) whose last one had its metadata erased finds it under the URI the
/// erasure left (`evident:artefact:<artefact>`), and takes its place there.
fn previous_version(
    c: &Connection,
    uri: &str,
    artefact: Option<&str>,
) -> Result<Option<i64>, LedgerError> {
    let mut previous = c.prepare_cached("SELECT idx FROM artefacts WHERE uri = ?1")?;
    if let Some(i) = previous.query_row([uri], |r| r.get(0)).optional()? {
        return Ok(Some(i));
    }
    let Some(a) = artefact else {
        return Ok(None);
    };
    let erased = format!("{ERASED_URI}{a}");
    let prior = previous.query_row([&erased], |r| r.get(0)).optional()?;
    if prior.is_some() {
        c.prepare_cached("DELETE FROM artefacts WHERE uri = ?1")?
            .execute([&erased])?;
    }
    Ok(prior)
}

/// The rest of a batch after its entries: refreshed fingerprints and markers, the
/// collector's cursor, and its run (pointing at `entry`, the batch's last entry, if any),
/// with the run history trimmed.
fn record_touches_cursor_and_run(
    c: &rusqlite::Connection,
    batch: &WriteBatch,
    entry: Option<i64>,
) -> Result<(), LedgerError> {
    let mut touch = c.prepare_cached(
        "UPDATE artefacts SET size = coalesce(?2, size), mtime_ns = coalesce(?3, mtime_ns), \
         inode = coalesce(?4, inode), version = coalesce(?5, version), \
         ctime_ns = coalesce(?6, ctime_ns), dev = coalesce(?7, dev) WHERE uri = ?1",
    )?;
    for t in &batch.touches {
        let f = t.fingerprint;
        touch.execute(params![
            t.uri,
            f.map(|f| f.size as i64),
            f.map(|f| f.mtime_ns),
            f.map(|f| f.inode as i64),
            t.version,
            f.map(|f| f.ctime_ns),
            f.map(|f| f.dev as i64),
        ])?;
    }
    if let Some((collector, cursor)) = &batch.cursor {
        c.prepare_cached(
            "INSERT INTO cursors (collector, cursor, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (collector) DO UPDATE SET cursor = excluded.cursor, \
             updated_at = excluded.updated_at",
        )?
        .execute(params![collector, cursor, now_rfc3339()])?;
    }
    if let Some(run) = &batch.run {
        c.prepare_cached(
            "INSERT INTO runs (collector, started_at, finished_at, new, unchanged, removed, \
             failed, error, entry) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            run.collector,
            run.started_at,
            run.finished_at,
            run.new as i64,
            run.unchanged as i64,
            run.removed as i64,
            run.failed as i64,
            run.error,
            entry
        ])?;
        let cutoff = chrono::DateTime::parse_from_rfc3339(&run.finished_at)
            .ok()
            .and_then(|t| t.checked_sub_signed(chrono::Duration::days(RUN_HISTORY_DAYS)))
            .map(|t| super::rfc3339(t.with_timezone(&chrono::Utc)));
        if let Some(cutoff) = cutoff {
            c.prepare_cached(
                "DELETE FROM runs WHERE collector = ?1 AND entry IS NULL AND finished_at < ?2",
            )?
            .execute(params![run.collector, cutoff])?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ledger::leaf::{PREDICATE_TYPE, Predicate};
    use crate::ledger::merkle::{
        consistency_proof, inclusion_proof, verify_consistency, verify_inclusion,
    };
    use crate::ledger::reader::Reader;

    fn entry(i: usize) -> NewEntry {
        NewEntry::new(
            EntryStatement::new(
                PREDICATE_TYPE,
                &format!("test://{i}"),
                &hex(&[i as u8; 32]),
                Predicate {
                    collected_at: "2026-11-22T00:00:00Z".into(),
                    controls: vec!["A.6.2.8".into()],
                    kind: "test".into(),
                    source: "prop".into(),
                    ..Predicate::default()
                },
            ),
            false,
            ArtefactChange::None,
        )
    }

    #[test]
    fn a_title_too_long_for_a_tile_is_shortened() {
        for unit in ["a", "\"", "é", "\u{1}"] {
            let mut st = EntryStatement::new(
                PREDICATE_TYPE,
                "test://long",
                &hex(&[1; 32]),
                Predicate {
                    collected_at: "2026-11-22T00:00:00Z".into(),
                    kind: "ticket".into(),
                    source: "prop".into(),
                    title: Some(unit.repeat(70_000)),
                    ..Predicate::default()
                },
            );
            let e = NewEntry::new(st.clone(), false, ArtefactChange::None);
            assert!(e.leaf().len() <= MAX_LEAF, "{unit:?}: {}", e.leaf().len());
            assert!(
                e.leaf().len() > MAX_LEAF - 64,
                "{unit:?}: cut no more than needed"
            );
            let title = e.statement.predicate.title.clone().unwrap();
            assert!(title.ends_with('…') && title.starts_with(unit));
            // A title that fits is kept as it is.
            st.predicate.title = Some(unit.repeat(100));
            let short = NewEntry::new(st.clone(), false, ArtefactChange::None);
            assert_eq!(short.leaf(), st.to_leaf_bytes());
        }
    }

    /// An entry for `uri`: a version (`Present`), its removal, or a collector run.
    fn change(i: usize, uri: usize, op: u8) -> NewEntry {
        change_with(i, uri, op, Vec::new(), None)
    }

    /// The same, with controls and a title (`ledger::query`'s tests).
    pub(crate) fn change_with(
        i: usize,
        uri: usize,
        op: u8,
        controls: Vec<String>,
        title: Option<String>,
    ) -> NewEntry {
        let (kind, artefact) = match op {
            0 => ("document_removed", ArtefactChange::Removed),
            1 => ("collector_run", ArtefactChange::None),
            _ => (
                "document",
                ArtefactChange::Present {
                    fingerprint: None,
                    version: None,
                },
            ),
        };
        NewEntry::new(
            EntryStatement::new(
                PREDICATE_TYPE,
                &format!("test://{uri}"),
                &hex(&[i as u8; 32]),
                Predicate {
                    collected_at: format!("2026-11-22T00:{:02}:{:02}Z", i % 60, i % 60),
                    controls,
                    kind: kind.into(),
                    source: "prop".into(),
                    title,
                    ..Predicate::default()
                },
            ),
            false,
            artefact,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// The writer's record of superseded versions (kept through the artefact index) is
        /// exactly what `SUPERSEDED_SQL` (the migration and verify) derives from the entries,
        /// for any history of versions, removals and re-additions. Removing an artefact the
        /// index does not hold is left out: collectors only report removals of known ones.
        #[test]
        fn superseded_rows_match_the_rule_over_the_entries(
            ops in prop::collection::vec((0usize..4, 0u8..4), 1..60),
        ) {
            let d = tempfile::tempdir().unwrap();
            let state = StateDir::new(d.path().join("s"));
            state.init("prop.test/log").unwrap();
            let writer = Writer::open(&state, "prop.test/log").unwrap();
            let mut present = std::collections::HashSet::new();
            for (i, (uri, op)) in ops.into_iter().enumerate() {
                if op == 0 && !present.remove(&uri) {
                    continue;
                }
                if op >= 2 {
                    present.insert(uri);
                }
                writer.append(WriteBatch { entries: vec![change(i, uri, op)], ..WriteBatch::default() }).unwrap();
            }
            let c = Connection::open(state.db_path()).unwrap();
            let rows = |sql: &str| -> Vec<(i64, i64, String, bool)> {
                let mut st = c.prepare(sql).unwrap();
                let mut v: Vec<_> = st
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                v.sort();
                v
            };
            let stored = rows("SELECT idx, by_idx, at, removal FROM superseded");
            let implied = rows(crate::ledger::evidence::SUPERSEDED_SQL);
            prop_assert_eq!(stored, implied);
        }

        /// Random batch sizes through the real writer and SQLite: after every batch a
        /// checkpoint is signed; every leaf is provably in every later checkpoint and every
        /// checkpoint is provably a prefix of every later one.
        #[test]
        fn appended_batches_prove_inclusion_and_consistency(batches in prop::collection::vec(0usize..9, 1..7)) {
            let d = tempfile::tempdir().unwrap();
            let state = StateDir::new(d.path().join("s"));
            state.init("prop.test/log").unwrap();
            let writer = Writer::open(&state, "prop.test/log").unwrap();
            let verifier = state.verifier().unwrap();
            let mut checkpoints = Vec::new();
            let mut leaves = Vec::new();
            for n in batches {
                let mut batch = WriteBatch::default();
                for _ in 0..n {
                    let e = entry(leaves.len());
                    leaves.push(leaf_hash(e.leaf()));
                    batch.entries.push(e);
                }
                let appended = writer.append(batch).unwrap();
                prop_assert_eq!(appended.size, leaves.len() as u64);
                let cp = writer.checkpoint().unwrap();
                checkpoints.push(Checkpoint::open(&cp.note, &verifier).unwrap());
            }
            let reader = Reader::open(&state).unwrap();
            for (a, old) in checkpoints.iter().enumerate() {
                for new in &checkpoints[a..] {
                    let p = consistency_proof(&reader, old.size, new.size).unwrap();
                    prop_assert!(verify_consistency(old.size, new.size, &p, &old.root, &new.root));
                }
                for (i, leaf) in leaves.iter().enumerate().take(old.size as usize) {
                    let p = inclusion_proof(&reader, i as u64, old.size).unwrap();
                    prop_assert!(verify_inclusion(leaf, i as u64, old.size, &p, &old.root));
                }
            }
        }
    }

    #[test]
    fn another_process_appending_is_noticed() {
        let d = tempfile::tempdir().unwrap();
        let state = StateDir::new(d.path().join("s"));
        state.init("two.writers/log").unwrap();
        let a = Writer::open(&state, "two.writers/log").unwrap();
        let b = Writer::open(&state, "two.writers/log").unwrap();
        a.append(WriteBatch {
            entries: vec![entry(1)],
            ..WriteBatch::default()
        })
        .unwrap();
        b.append(WriteBatch {
            entries: vec![entry(2)],
            ..WriteBatch::default()
        })
        .unwrap();
        a.append(WriteBatch {
            entries: vec![entry(3)],
            ..WriteBatch::default()
        })
        .unwrap();
        let cp_a = a.checkpoint().unwrap();
        let cp_b = b.checkpoint().unwrap();
        assert_eq!(cp_a.size, 3);
        assert_eq!(cp_a.note, cp_b.note, "both writers agree on the tree");
        assert!(!cp_b.new);
        let reader = Reader::open(&state).unwrap();
        let report = crate::verify::verify_ledger(
            &reader,
            &state.blobs(),
            &state.verifier().unwrap(),
            &[],
            false,
        )
        .unwrap();
        assert!(report.ok(), "{:?}", report.findings.problems);
    }
}
