//! The witness side of `c2sp.org/tlog-witness`: for each log it follows (by origin and
//! key), the latest checkpoint it cosigned, kept in its own SQLite file. A checkpoint is
//! cosigned only if it extends that one (a consistency proof from the recorded size); a
//! rollback or another tree under the same origin and key is refused with the spec's status
//! code and recorded, with the offending checkpoint, as evidence.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;

use crate::ledger::merkle::verify_consistency;
use crate::ledger::note::{Checkpoint, KeyKind, NoteSigner, NoteVerifier, encode_hash};

use super::WitnessError;
use super::protocol::{AddCheckpoint, SIZE_TYPE};

const SCHEMA: &str = r#"
CREATE TABLE logs (
    origin       TEXT PRIMARY KEY,
    size         INTEGER NOT NULL,
    root         BLOB NOT NULL,
    note         TEXT NOT NULL,
    cosignature  TEXT NOT NULL,
    at           INTEGER NOT NULL
) STRICT;
CREATE TABLE refusals (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    origin  TEXT NOT NULL,
    status  INTEGER NOT NULL,
    reason  TEXT NOT NULL,
    note    TEXT NOT NULL,
    UNIQUE (origin, note)
) STRICT;
"#;

/// Refused checkpoints kept as evidence at most (anyone can replay a public checkpoint with
/// a wrong proof; the table must not grow without bound).
const MAX_REFUSALS: i64 = 10_000;

/// The key file in a witness directory.
pub const KEY_FILE: &str = "witness.key";
/// The verifier key file in a witness directory.
pub const VKEY_FILE: &str = "witness.vkey";

/// An HTTP answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

impl Answer {
    fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// One log a witness follows, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Followed {
    /// The log's origin.
    pub origin: String,
    /// The latest size cosigned.
    pub size: u64,
    /// Its root, base64.
    pub root: String,
    /// When it was cosigned (seconds since the epoch).
    pub cosigned_at: u64,
}

/// A checkpoint the witness refused after its signature verified: evidence of a fork or a
/// rollback (or of a client that lost track of the witness's size).
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// When (seconds since the epoch).
    pub at: u64,
    /// The log's origin.
    pub origin: String,
    /// The status code answered.
    pub status: u16,
    /// Why.
    pub reason: String,
    /// The checkpoint as submitted.
    pub checkpoint: String,
}

/// A witness: its key, the logs it follows, and what it cosigned.
pub struct Book {
    conn: Mutex<Connection>,
    signer: NoteSigner,
    logs: Vec<NoteVerifier>,
}

impl std::fmt::Debug for Book {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Book({})", self.signer.name())
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WitnessError + '_ {
    move |source| WitnessError::Io {
        path: path.to_owned(),
        source,
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Book {
    /// Makes a witness directory with a new cosigner key named `name`; returns its
    /// verifier key (what logs put in `[[witnesses]] vkey`).
    pub fn init(dir: &Path, name: &str) -> Result<NoteVerifier, WitnessError> {
        let key_path = dir.join(KEY_FILE);
        if key_path.exists() {
            return Err(WitnessError::Exists(dir.to_owned()));
        }
        crate::ledger::state::private_dir(dir).map_err(io(dir))?;
        let signer = NoteSigner::generate_as(name, KeyKind::Cosigner)?;
        write_private(&key_path, &(signer.private_key_string() + "\n"))?;
        let vkey = signer.verifier();
        write_private(&dir.join(VKEY_FILE), &(vkey.key_string() + "\n"))?;
        Self::connect(dir)?;
        Ok(vkey)
    }

    /// Opens a witness directory, following `logs` (their verifier keys).
    pub fn open(dir: &Path, logs: Vec<NoteVerifier>) -> Result<Book, WitnessError> {
        let key_path = dir.join(KEY_FILE);
        let text = std::fs::read_to_string(&key_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                WitnessError::NotAWitness(dir.to_owned())
            } else {
                WitnessError::Io {
                    path: key_path.clone(),
                    source: e,
                }
            }
        })?;
        let signer = NoteSigner::parse(&text)?;
        if let Some(bad) = logs.iter().find(|l| l.kind() != KeyKind::Note) {
            return Err(WitnessError::Config(format!(
                "{} is a cosigner key; a witness follows logs by their checkpoint keys",
                bad.key_string()
            )));
        }
        Ok(Book {
            conn: Mutex::new(Self::connect(dir)?),
            signer,
            logs,
        })
    }

    fn connect(dir: &Path) -> Result<Connection, WitnessError> {
        let mut conn = Connection::open(dir.join("witness.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Migrations::new(vec![M::up(SCHEMA)])
            .to_latest(&mut conn)
            .map_err(|e| WitnessError::Config(format!("witness database: {e}")))?;
        Ok(conn)
    }

    /// The witness's verifier key.
    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    /// Handles an `add-checkpoint` request body, as the spec orders the checks.
    pub fn add_checkpoint(&self, body: &[u8]) -> Answer {
        let req = match AddCheckpoint::parse(body) {
            Ok(r) => r,
            Err(e) => return Answer::text(400, format!("malformed request: {e}\n")),
        };
        let origin = req.checkpoint.split('\n').next().unwrap_or_default();
        let keys: Vec<&NoteVerifier> = self.logs.iter().filter(|k| k.name() == origin).collect();
        if keys.is_empty() {
            return Answer::text(404, format!("unknown log origin {origin:?}\n"));
        }
        let Some(cp) = keys
            .iter()
            .find_map(|k| Checkpoint::open(&req.checkpoint, k).ok())
        else {
            return Answer::text(
                403,
                "no signature by a key this witness trusts for the log\n",
            );
        };
        if req.old > cp.size {
            return Answer::text(400, "old size is larger than the checkpoint's\n");
        }
        let Ok(conn) = self.conn.lock() else {
            return Answer::text(500, "witness state unavailable\n");
        };
        match self.decide(&conn, &req, &cp) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("witness: {e}");
                Answer::text(500, "witness storage failed\n")
            }
        }
    }

    /// The checks against the recorded state and the update, in one transaction (the spec's
    /// atomicity: two requests must not roll each other back).
    fn decide(
        &self,
        conn: &Connection,
        req: &AddCheckpoint,
        cp: &Checkpoint,
    ) -> Result<Answer, WitnessError> {
        let tx = conn.unchecked_transaction()?;
        let known: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT size, root FROM logs WHERE origin = ?1",
                [&cp.origin],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (size, root) = known.map_or((0, None), |(s, r)| (s as u64, Some(r)));
        if req.old != size {
            return Ok(Answer {
                status: 409,
                content_type: SIZE_TYPE,
                body: format!("{size}\n"),
            });
        }
        if size == cp.size && !req.proof.is_empty() {
            return Ok(Answer::text(
                400,
                "a proof between equal sizes must be empty\n",
            ));
        }
        let consistent = match &root {
            None => req.proof.is_empty(),
            Some(r) if size == cp.size => r.as_slice() == cp.root,
            Some(r) => <[u8; 32]>::try_from(r.as_slice())
                .is_ok_and(|old| verify_consistency(size, cp.size, &req.proof, &old, &cp.root)),
        };
        if !consistent {
            let (status, reason) = if size == cp.size {
                (
                    409,
                    format!("a different tree of size {size} was cosigned before: a fork"),
                )
            } else {
                (
                    422,
                    format!(
                        "the consistency proof from size {size} does not verify: the log forked \
                         or the proof is wrong"
                    ),
                )
            };
            // Once per (origin, note), and up to a bound.
            tx.execute(
                "INSERT OR IGNORE INTO refusals (at, origin, status, reason, note) \
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE (SELECT count(*) FROM refusals) < ?6",
                params![
                    now() as i64,
                    cp.origin,
                    status,
                    reason,
                    req.checkpoint,
                    MAX_REFUSALS
                ],
            )?;
            tx.commit()?;
            tracing::warn!(origin = %cp.origin, size = cp.size, "witness refused a checkpoint: {reason}");
            return Ok(Answer::text(status, reason + "\n"));
        }
        let text = &req.checkpoint[..req.checkpoint.rfind("\n\n").map_or(0, |i| i + 1)];
        let time = now();
        let line = self.signer.cosign(text, time)?;
        tx.execute(
            "INSERT INTO logs (origin, size, root, note, cosignature, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (origin) DO UPDATE SET size = ?2, root = ?3, note = ?4, cosignature = ?5, at = ?6",
            params![cp.origin, cp.size as i64, cp.root.to_vec(), req.checkpoint, line, time as i64],
        )?;
        tx.commit()?;
        Ok(Answer::text(200, line))
    }

    /// The latest checkpoint cosigned for `origin`, with this witness's cosignature.
    pub fn latest(&self, origin: &str) -> Result<Option<String>, WitnessError> {
        let conn = self.conn.lock().map_err(|_| WitnessError::Poisoned)?;
        Ok(conn
            .query_row(
                "SELECT note, cosignature FROM logs WHERE origin = ?1",
                [origin],
                |r| Ok(r.get::<_, String>(0)? + &r.get::<_, String>(1)?),
            )
            .optional()?)
    }

    /// Every log followed, with its latest cosigned size.
    pub fn followed(&self) -> Result<Vec<Followed>, WitnessError> {
        let conn = self.conn.lock().map_err(|_| WitnessError::Poisoned)?;
        let mut st = conn.prepare("SELECT origin, size, root, at FROM logs ORDER BY origin")?;
        let rows = st.query_map([], |r| {
            let root: Vec<u8> = r.get(2)?;
            Ok(Followed {
                origin: r.get(0)?,
                size: r.get::<_, i64>(1)? as u64,
                root: encode_hash(&root.try_into().unwrap_or([0; 32])),
                cosigned_at: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every refused checkpoint whose signature verified, oldest first.
    pub fn refusals(&self) -> Result<Vec<Refusal>, WitnessError> {
        let conn = self.conn.lock().map_err(|_| WitnessError::Poisoned)?;
        let mut st =
            conn.prepare("SELECT at, origin, status, reason, note FROM refusals ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok(Refusal {
                at: r.get::<_, i64>(0)? as u64,
                origin: r.get(1)?,
                status: r.get::<_, i64>(2)? as u16,
                reason: r.get(3)?,
                checkpoint: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn write_private(path: &PathBuf, text: &str) -> Result<(), WitnessError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(text.as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::merkle::{Frontier, consistency_proof, leaf_hash};
    use crate::ledger::note::NoteSigner;

    const ORIGIN: &str = "log.example/aims";

    /// A log's stored hashes and frontier after `n` leaves numbered from `salt`.
    fn tree(n: u64, salt: u64) -> (Vec<[u8; 32]>, Frontier) {
        let mut f = Frontier::default();
        let mut stored = Vec::new();
        for i in 0..n {
            stored.extend(f.append(leaf_hash(&(i + salt).to_le_bytes())));
        }
        (stored, f)
    }

    fn note(log: &NoteSigner, f: &Frontier) -> String {
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size: f.size(),
            root: f.root(),
        };
        log.sign(&cp.text()).unwrap()
    }

    fn body(old: u64, proof: &[[u8; 32]], note: &str) -> Vec<u8> {
        AddCheckpoint {
            old,
            proof: proof.to_vec(),
            checkpoint: note.to_owned(),
        }
        .encode()
        .into_bytes()
    }

    #[test]
    fn the_spec_status_codes() {
        let dir = tempfile::tempdir().unwrap();
        let w = Book::init(dir.path(), "witness.example/w1").unwrap();
        assert!(matches!(
            Book::init(dir.path(), "x"),
            Err(WitnessError::Exists(_))
        ));
        let log = NoteSigner::from_seed(ORIGIN, &[7; 32]).unwrap();
        let book = Book::open(dir.path(), vec![log.verifier()]).unwrap();
        let (_, f5) = tree(5, 0);
        let (s8, f8) = tree(8, 0);
        let n5 = note(&log, &f5);
        let n8 = note(&log, &f8);

        // First contact: from size 0, no proof; the answer is a cosignature by the witness.
        let a = book.add_checkpoint(&body(0, &[], &n5));
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(w.open_at(&format!("{n5}{}", a.body)).unwrap().1.is_some());
        // A stale old size: 409 with the witness's size, as text/x.tlog.size.
        let a = book.add_checkpoint(&body(0, &[], &n8));
        assert_eq!(
            (a.status, a.content_type, a.body.as_str()),
            (409, SIZE_TYPE, "5\n")
        );
        // The right old size with a valid proof: cosigned.
        let proof = consistency_proof(&s8, 5, 8).unwrap();
        assert_eq!(book.add_checkpoint(&body(5, &proof, &n8)).status, 200);
        // The same checkpoint again is fine; a rollback to 5 is not.
        assert_eq!(book.add_checkpoint(&body(8, &[], &n8)).status, 200);
        assert_eq!(book.add_checkpoint(&body(8, &[], &n5)).status, 400);
        assert_eq!(book.add_checkpoint(&body(5, &[], &n5)).status, 409);

        // A fork: the same origin and key, another tree of the same size, then a larger one.
        let (s9, f9) = tree(9, 100);
        let (_, f8b) = tree(8, 100);
        let fork8 = note(&log, &f8b);
        let a = book.add_checkpoint(&body(8, &[], &fork8));
        assert_eq!(a.status, 409, "{}", a.body);
        let bad_proof = consistency_proof(&s9, 8, 9).unwrap();
        let a = book.add_checkpoint(&body(8, &bad_proof, &note(&log, &f9)));
        assert_eq!(a.status, 422, "{}", a.body);
        // Replaying them is not new evidence, and a public checkpoint replayed with a proof
        // between equal sizes is not a fork (anyone could send it): 400, nothing kept.
        assert_eq!(book.add_checkpoint(&body(8, &[], &fork8)).status, 409);
        assert_eq!(book.add_checkpoint(&body(8, &proof[..1], &n8)).status, 400);
        let refused = book.refusals().unwrap();
        assert_eq!(refused.len(), 2);
        assert!(refused[0].reason.contains("fork") && refused[0].checkpoint == fork8);
        // What it follows did not move.
        let followed = book.followed().unwrap();
        assert_eq!((followed.len(), followed[0].size), (1, 8));
        assert_eq!(
            book.latest(ORIGIN)
                .unwrap()
                .unwrap()
                .matches('\u{2014}')
                .count(),
            2
        );

        // Unknown origin, another key, malformed bodies.
        let stranger = NoteSigner::from_seed("other.example/log", &[8; 32]).unwrap();
        let cp = Checkpoint {
            origin: "other.example/log".into(),
            size: 5,
            root: f5.root(),
        };
        assert_eq!(
            book.add_checkpoint(&body(0, &[], &stranger.sign(&cp.text()).unwrap()))
                .status,
            404
        );
        let impostor = NoteSigner::from_seed(ORIGIN, &[9; 32]).unwrap();
        assert_eq!(
            book.add_checkpoint(&body(8, &[], &note(&impostor, &f9)))
                .status,
            403
        );
        assert_eq!(book.add_checkpoint(b"old x\n\n").status, 400);
        assert_eq!(book.add_checkpoint(&body(9, &[], &n8)).status, 400);
    }
}
