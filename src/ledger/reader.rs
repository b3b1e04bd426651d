//! Read-only access: queries, proofs, artefact state, cursors, the entry stream for verify.
//!
//! Readers open their own `SQLITE_OPEN_READ_ONLY` connection, so they work while the daemon
//! or another `collect` writes (WAL lets readers see the last committed state).

use std::collections::HashMap;

use evident_collectors::{Fingerprint, Known};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::Serialize;

use super::leaf::hex;
use super::merkle::{Hash, HashReader, MerkleError};
use super::state::StateDir;
use super::writer::Cosignature;
use super::writer::{entry_count, read_stored_hash};
use super::{LedgerError, schema};

/// One entry as `query` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryRow {
    /// Leaf index.
    pub index: u64,
    /// Artefact kind.
    pub kind: String,
    /// Collector name.
    pub source: String,
    /// Artefact URI.
    pub uri: String,
    /// Title.
    pub title: Option<String>,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// When it was recorded (RFC 3339 UTC).
    pub collected_at: String,
    /// Effective date, when the artefact states one.
    pub effective_date: Option<String>,
    /// The source's own last-modified time.
    pub source_updated_at: Option<String>,
    /// Content size in bytes.
    pub size: Option<u64>,
    /// Whether the content is in the blob store.
    pub has_blob: bool,
    /// Controls and clauses.
    pub controls: Vec<String>,
}

/// An entry's columns (all but the leaf) as `query` and `verify` read them, borrowed from
/// the row: nothing is copied.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'r> {
    /// Leaf index.
    pub index: u64,
    /// Artefact kind column.
    pub kind: &'r str,
    /// Source column.
    pub source: &'r str,
    /// URI column.
    pub uri: &'r str,
    /// Title column.
    pub title: Option<&'r str>,
    /// The raw digest column.
    pub sha256: &'r [u8],
    /// Collection time column.
    pub collected_at: &'r str,
    /// Effective date column.
    pub effective_date: Option<&'r str>,
    /// Source time column.
    pub source_updated_at: Option<&'r str>,
    /// Size column (as stored: verify reports a negative one).
    pub size: Option<i64>,
    /// Whether the content is in the blob store.
    pub has_blob: bool,
    /// Controls column (comma-separated).
    pub controls: &'r str,
}

/// Reads [`ROW_COLUMNS`], which a statement selects first, as a [`RowRef`].
pub(super) fn row_ref<'r>(r: &'r Row<'_>) -> rusqlite::Result<RowRef<'r>> {
    let text = |i: usize| -> rusqlite::Result<&'r str> { Ok(r.get_ref(i)?.as_str()?) };
    let opt =
        |i: usize| -> rusqlite::Result<Option<&'r str>> { Ok(r.get_ref(i)?.as_str_or_null()?) };
    Ok(RowRef {
        index: r.get::<_, i64>(0)? as u64,
        kind: text(1)?,
        source: text(2)?,
        uri: text(3)?,
        title: opt(4)?,
        sha256: r.get_ref(5)?.as_blob()?,
        collected_at: text(6)?,
        effective_date: opt(7)?,
        source_updated_at: opt(8)?,
        size: r.get(9)?,
        has_blob: r.get(10)?,
        controls: text(11)?,
    })
}

/// An entry as `verify` reads it: every column and the leaf, borrowed from the row.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'r> {
    /// The columns.
    pub row: RowRef<'r>,
    /// Leaf bytes.
    pub leaf: &'r [u8],
    /// A v2 leaf's metadata record (`entry_meta`), unless erased.
    pub meta: Option<&'r [u8]>,
}

impl<'r> std::ops::Deref for EntryRef<'r> {
    type Target = RowRef<'r>;
    fn deref(&self) -> &RowRef<'r> {
        &self.row
    }
}

/// Whether an entry is still the artefact's current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The newest version of its URI, not removed: coverage counts it.
    Current,
    /// A newer version of the same URI was recorded.
    Superseded,
    /// The artefact was removed from its source after this version.
    Removed,
    /// This entry records a removal.
    Removal,
}

impl State {
    /// The printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Current => "current",
            State::Superseded => "superseded",
            State::Removed => "removed",
            State::Removal => "removal",
        }
    }
}

pub(super) const ROW_COLUMNS: &str = "idx, kind, source, uri, title, sha256, collected_at, effective_date, \
                           source_updated_at, size, has_blob, controls";

fn entry_row(r: &Row<'_>) -> rusqlite::Result<EntryRow> {
    let sha: Vec<u8> = r.get(5)?;
    let controls: String = r.get(11)?;
    Ok(EntryRow {
        index: r.get::<_, i64>(0)? as u64,
        kind: r.get(1)?,
        source: r.get(2)?,
        uri: r.get(3)?,
        title: r.get(4)?,
        sha256: hex(&sha),
        collected_at: r.get(6)?,
        effective_date: r.get(7)?,
        source_updated_at: r.get(8)?,
        size: r.get::<_, Option<i64>>(9)?.map(|s| s as u64),
        has_blob: r.get(10)?,
        controls: controls
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Which entries coverage counts.
#[derive(Debug, Clone)]
pub struct Counting {
    /// Only entries below this index (a bundle's checkpoint size).
    pub below: u64,
    /// Only entries from this time on (a bundle's `--since`), RFC 3339.
    pub collected_since: Option<String>,
    /// Whether `collected_since` applies to the evidence date (`--by effective`) rather
    /// than the collection time.
    pub by_evidence_date: bool,
    /// Also count every item up to the coverage time, which scans all of a control's
    /// items; only `soa` and `export` show it.
    pub totals: bool,
    /// Also count versions that were superseded or removed by the coverage time
    /// (`--include-history`); by default only current evidence counts.
    pub history: bool,
}

impl Counting {
    /// Every entry, with or without totals.
    pub fn all(totals: bool) -> Self {
        Counting {
            below: u64::MAX,
            collected_since: None,
            by_evidence_date: false,
            totals,
            history: false,
        }
    }

    /// The same, also counting superseded and removed versions when `history`.
    pub fn with_history(mut self, history: bool) -> Self {
        self.history = history;
        self
    }
}

/// A collector's last run, as the next run needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    /// When it finished (RFC 3339 UTC).
    pub finished_at: String,
    /// Its error, if it failed.
    pub error: Option<String>,
    /// Items it could not record.
    pub failed: u64,
    /// When the newest run that appended a `collector_run` entry finished.
    pub entry_at: Option<String>,
}

/// One row of the run history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRow {
    /// The run.
    #[serde(flatten)]
    pub run: super::writer::RunRecord,
    /// Its `collector_run` entry, when it appended one.
    pub entry: Option<u64>,
}

/// What the evidence index holds for one control up to a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidenceStats {
    /// Items dated within the window.
    pub in_window: u64,
    /// Items dated up to the end of the window, when asked for (it scans every item).
    pub total: Option<u64>,
    /// The newest item: index, date, basis.
    pub newest: Option<(u64, String, String)>,
}

/// Which entries an export reads: those dated in `[since, until)` (RFC 3339 strings; by
/// evidence date or by collection) and mapped to `controls` when given, and the `extra`
/// ones whatever their date or controls.
pub struct Window<'a> {
    /// From this time on.
    pub since: &'a str,
    /// Before this time.
    pub until: &'a str,
    /// Whether the times apply to the evidence date rather than the collection time.
    pub by_evidence_date: bool,
    /// Only entries mapped to these controls.
    pub controls: Option<&'a [&'a str]>,
    /// Entries read whatever the rest says.
    pub extra: &'a std::collections::BTreeSet<u64>,
}

/// A read-only view of the ledger.
#[derive(Debug)]
pub struct Reader {
    pub(super) conn: Connection,
    /// `query`'s plan for each control set, as last measured (see `ledger::query`).
    pub(super) plans: std::cell::RefCell<super::query::Plans>,
}

impl Reader {
    /// Opens the ledger of `state` read-only.
    pub fn open(state: &StateDir) -> Result<Reader, LedgerError> {
        let conn = schema::open_read(&state.db_path()).map_err(|e| match e {
            LedgerError::NotInitialised(_) => LedgerError::NotInitialised(state.dir().to_owned()),
            e => e,
        })?;
        Ok(Reader {
            conn,
            plans: Default::default(),
        })
    }

    /// A second read-only connection to the same ledger (verify reads on two cores).
    pub fn reopen(&self) -> Result<Reader, LedgerError> {
        let path = self
            .conn
            .path()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| LedgerError::Corrupt("the ledger has no file to reopen".into()))?;
        Ok(Reader {
            conn: schema::open_read(std::path::Path::new(path))?,
            plans: Default::default(),
        })
    }

    /// Runs `f` inside one read transaction, so every query in it sees the same snapshot
    /// even while a writer appends (verify compares counts read by different statements).
    pub fn snapshot<T, E: From<LedgerError>>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, E>,
    ) -> Result<T, E> {
        // Inside another snapshot already: that one holds.
        if !self.conn.is_autocommit() {
            return f(self);
        }
        // Cached statements: an API page is a snapshot, and parsing these showed in profiles.
        self.conn
            .prepare_cached("BEGIN")
            .and_then(|mut st| st.execute([]))
            .map_err(|e| E::from(LedgerError::from(e)))?;
        let out = f(self);
        // A connection left inside its transaction would read this snapshot for ever (and
        // be taken for a nested snapshot above): end it one way or the other.
        let committed = self
            .conn
            .prepare_cached("COMMIT")
            .and_then(|mut st| st.execute([]));
        if committed.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        out
    }

    /// Number of entries.
    pub fn size(&self) -> Result<u64, LedgerError> {
        Ok(entry_count(&self.conn)?)
    }

    /// The newest checkpoint: (size, signed note).
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()?)
    }

    /// Every checkpoint, smallest first.
    pub fn checkpoints(&self) -> Result<Vec<(u64, String)>, LedgerError> {
        let mut st = self
            .conn
            .prepare("SELECT size, note FROM checkpoints ORDER BY size")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the checkpoint of `size` was signed (RFC 3339 UTC), if there is one.
    pub fn checkpoint_signed_at(&self, size: u64) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT signed_at FROM checkpoints WHERE size = ?1",
                [size as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The RFC 3161 token stored for the checkpoint of `size`.
    pub fn timestamp(&self, size: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT token FROM timestamps WHERE size = ?1",
                [size as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The cosignatures stored for the checkpoint of `size`, by witness name.
    pub fn cosignatures(&self, size: u64) -> Result<Vec<Cosignature>, LedgerError> {
        let mut st = self.conn.prepare_cached(
            "SELECT size, witness, line, time FROM cosignatures WHERE size = ?1 ORDER BY witness",
        )?;
        let rows = st.query_map([size as i64], |r| {
            Ok(Cosignature {
                size: r.get::<_, i64>(0)? as u64,
                witness: r.get(1)?,
                line: r.get(2)?,
                time: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The largest checkpoint size `witness` has cosigned (0 when none): what it last saw.
    pub fn witnessed_size(&self, witness: &str) -> Result<u64, LedgerError> {
        let size: Option<i64> = self.conn.query_row(
            "SELECT max(size) FROM cosignatures WHERE witness = ?1",
            [witness],
            |r| r.get(0),
        )?;
        Ok(size.unwrap_or(0) as u64)
    }

    /// The newest checkpoint cosigned by at least `quorum` of `witnesses`, with those
    /// cosignature lines appended to the note.
    pub fn latest_witnessed(
        &self,
        witnesses: &[&str],
        quorum: usize,
    ) -> Result<Option<(u64, String)>, LedgerError> {
        let names = serde_json::to_string(witnesses).unwrap_or_else(|_| "[]".into());
        let found: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT c.size, c.note FROM checkpoints c \
                 WHERE (SELECT count(*) FROM cosignatures s WHERE s.size = c.size \
                        AND s.witness IN (SELECT value FROM json_each(?1))) >= ?2 \
                 ORDER BY c.size DESC LIMIT 1",
                params![names, quorum as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((size, note)) = found else {
            return Ok(None);
        };
        let lines: String = self
            .cosignatures(size as u64)?
            .into_iter()
            .filter(|c| witnesses.contains(&c.witness.as_str()))
            .map(|c| c.line)
            .collect();
        Ok(Some((size as u64, note + &lines)))
    }

    /// Every stored RFC 3161 token: (checkpoint size, token), smallest first.
    pub fn timestamps(&self) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        let mut st = self
            .conn
            .prepare("SELECT size, token FROM timestamps ORDER BY size")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Streams the entries below index `below`, collected (or, `by_evidence_date`, dated by
    /// [`ENTRY_DATE_SQL`](super::evidence::ENTRY_DATE_SQL)) in `[since, until)` (RFC 3339
    /// strings) and, when `controls` is given, mapped to one of them; in index order.
    pub fn for_each_in_scope(
        &self,
        below: u64,
        w: &Window<'_>,
        mut f: impl FnMut(EntryRow, Vec<u8>) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let (since, until, controls) = (w.since, w.until, w.controls);
        let filter = match controls {
            Some(c) => format!(
                " AND idx IN (SELECT idx FROM evidence WHERE control IN ({}))",
                vec!["?"; c.len()].join(",")
            ),
            None => String::new(),
        };
        let date = if w.by_evidence_date {
            super::evidence::ENTRY_DATE_SQL
        } else {
            "collected_at"
        };
        // Extra entries join the window as a JSON array (SQLite's json_each), whatever
        // their number.
        let extra_json = serde_json::to_string(w.extra).unwrap_or_else(|_| "[]".to_owned());
        let mut st = self.conn.prepare(&format!(
            "SELECT {ROW_COLUMNS}, leaf FROM entries WHERE idx < ? AND (({date} >= ? \
             AND {date} < ?{filter}) OR idx IN (SELECT value FROM json_each(?))) ORDER BY idx"
        ))?;
        let below = below.min(i64::MAX as u64) as i64;
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&below, &since, &until];
        for c in controls.unwrap_or_default() {
            params.push(c);
        }
        params.push(&extra_json);
        let mut rows = st.query(params.as_slice())?;
        while let Some(r) = rows.next()? {
            f(entry_row(r)?, r.get(12)?)?;
        }
        Ok(())
    }

    /// The artefacts of `source` still present, keyed by URI. A current version whose
    /// metadata was erased is not among them: no collector can see it under the name the
    /// erasure left (`evident:artefact:…`), so it is never recorded as removed; a version
    /// recorded later under its real URI takes its place (the writer finds it by artefact).
    pub fn known_for_source(&self, source: &str) -> Result<HashMap<String, Known>, LedgerError> {
        self.known_where(source, "NOT LIKE")
    }

    /// The current versions of `source` whose metadata was erased, keyed by the URI the
    /// erasure left (`evident:artefact:<hex>`): what the recorder compares a source's item
    /// with once no real URI matches, so an unchanged item is not recorded again.
    pub fn erased_known_for_source(
        &self,
        source: &str,
    ) -> Result<HashMap<String, Known>, LedgerError> {
        self.known_where(source, "LIKE")
    }

    /// The artefacts of `source` whose URI is (`LIKE`) or is not (`NOT LIKE`) an erased one.
    fn known_where(
        &self,
        source: &str,
        erased: &str,
    ) -> Result<HashMap<String, Known>, LedgerError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT a.uri, a.sha256, a.size, a.mtime_ns, a.inode, a.version, e.controls, \
             a.ctime_ns, a.dev FROM artefacts a LEFT JOIN entries e ON e.idx = a.idx \
             WHERE a.source = ?1 AND a.uri {erased} 'evident:artefact:%'"
        ))?;
        let rows = st.query_map([source], |r| {
            Ok((r.get::<_, String>(0)?, known_from_row(r, 1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// What the ledger holds for one URI.
    pub fn known(&self, uri: &str) -> Result<Option<Known>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT a.sha256, a.size, a.mtime_ns, a.inode, a.version, e.controls, \
                 a.ctime_ns, a.dev FROM artefacts a LEFT JOIN entries e ON e.idx = a.idx WHERE a.uri = ?1",
                [uri],
                |r| known_from_row(r, 0),
            )
            .optional()?)
    }

    /// The artefact's current version: its newest entry's index, digest and source.
    pub fn current_version(
        &self,
        uri: &str,
    ) -> Result<Option<(u64, [u8; 32], String)>, LedgerError> {
        let row: Option<(i64, Vec<u8>, String)> = self
            .conn
            .query_row(
                "SELECT idx, sha256, source FROM artefacts WHERE uri = ?1",
                [uri],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(row.and_then(|(i, h, s)| Some((i as u64, h.try_into().ok()?, s))))
    }

    /// Whether entry `index` (of artefact kind `kind`) is still current now, and what
    /// superseded or removed it.
    pub fn entry_state(&self, index: u64, kind: &str) -> Result<(State, Option<u64>), LedgerError> {
        let row: Option<(i64, bool)> = self
            .conn
            .query_row(
                "SELECT by_idx, removal FROM superseded WHERE idx = ?1",
                [index as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            _ if super::evidence::is_removal(kind) => (State::Removal, row.map(|r| r.0 as u64)),
            Some((by, true)) => (State::Removed, Some(by as u64)),
            Some((by, false)) => (State::Superseded, Some(by as u64)),
            None => (State::Current, None),
        })
    }

    /// The newest `limit` runs of `collectors` (all when empty), newest first.
    pub fn runs(&self, collectors: &[String], limit: u32) -> Result<Vec<RunRow>, LedgerError> {
        let filter = if collectors.is_empty() {
            String::new()
        } else {
            format!(
                "WHERE collector IN ({})",
                vec!["?"; collectors.len()].join(",")
            )
        };
        let mut st = self.conn.prepare(&format!(
            "SELECT collector, started_at, finished_at, new, unchanged, removed, failed, error, \
             entry FROM runs {filter} ORDER BY id DESC LIMIT {limit}"
        ))?;
        let rows = st.query_map(params_from_iter(collectors), |r| {
            Ok(RunRow {
                run: super::writer::RunRecord {
                    collector: r.get(0)?,
                    started_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    new: r.get::<_, i64>(3)? as u64,
                    unchanged: r.get::<_, i64>(4)? as u64,
                    removed: r.get::<_, i64>(5)? as u64,
                    failed: r.get::<_, i64>(6)? as u64,
                    error: r.get(7)?,
                },
                entry: r.get::<_, Option<i64>>(8)?.map(|e| e as u64),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether any version was superseded or removed by an entry below `below` collected by
    /// `until` (RFC 3339).
    pub fn any_superseded(&self, below: u64, until: &str) -> Result<bool, LedgerError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM superseded WHERE by_idx < ?1 AND at <= ?2)",
            )?
            .query_row(
                rusqlite::params![below.min(i64::MAX as u64) as i64, until],
                |r| r.get(0),
            )?)
    }

    /// The collectors (sources) that have present artefacts, with how many.
    pub fn sources_present(&self) -> Result<Vec<(String, u64)>, LedgerError> {
        let mut st = self
            .conn
            .prepare("SELECT source, COUNT(*) FROM artefacts GROUP BY source ORDER BY source")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// `collector`'s last run, from the run history, if it ever ran.
    pub fn last_run(&self, collector: &str) -> Result<Option<LastRun>, LedgerError> {
        let last = self
            .conn
            .prepare_cached(
                "SELECT finished_at, error, entry, failed FROM runs WHERE collector = ?1 \
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([collector], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, i64>(3)? as u64,
                ))
            })
            .optional()?;
        let Some((finished_at, error, entry, failed)) = last else {
            return Ok(None);
        };
        let entry_at = match entry {
            Some(_) => Some(finished_at.clone()),
            None => self
                .conn
                .prepare_cached(
                    "SELECT finished_at FROM runs WHERE collector = ?1 AND entry IS NOT NULL \
                     ORDER BY id DESC LIMIT 1",
                )?
                .query_row([collector], |r| r.get(0))
                .optional()?,
        };
        Ok(Some(LastRun {
            finished_at,
            error,
            failed,
            entry_at,
        }))
    }

    /// A collector's saved cursor.
    pub fn cursor(&self, collector: &str) -> Result<Option<String>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT cursor FROM cursors WHERE collector = ?1",
                [collector],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// One entry.
    pub fn entry(&self, index: u64) -> Result<Option<EntryRow>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {ROW_COLUMNS} FROM entries WHERE idx = ?1"),
                [index as i64],
                entry_row,
            )
            .optional()?)
    }

    /// The entries below `below` whose kind is `kind` or whose content digest is `sha256`
    /// (either may be absent), in index order. A scan: for the few erasure entries and the
    /// copies of one digest.
    pub fn entries_where(
        &self,
        kind: Option<&str>,
        sha256: Option<&Hash>,
        below: u64,
    ) -> Result<Vec<EntryRow>, LedgerError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {ROW_COLUMNS} FROM entries WHERE idx < ?1 AND (?2 IS NULL OR kind = ?2) \
             AND (?3 IS NULL OR sha256 = ?3) ORDER BY idx"
        ))?;
        let rows = st.query_map(
            rusqlite::params![
                below.min(i64::MAX as u64) as i64,
                kind,
                sha256.map(|h| h.to_vec())
            ],
            entry_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The entries recorded under `uri` (every version, removals included), in order.
    pub fn entries_with_uri(&self, uri: &str) -> Result<Vec<EntryRow>, LedgerError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {ROW_COLUMNS} FROM entries WHERE uri = ?1 ORDER BY idx"
        ))?;
        let rows = st.query_map([uri], entry_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every entry holding content, with when it stopped being current (superseded or
    /// removed), if it did: what retention rules judge.
    pub fn content_entries(&self) -> Result<Vec<(EntryRow, Option<String>)>, LedgerError> {
        let cols: String = ROW_COLUMNS
            .split(',')
            .map(|c| format!("e.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut st = self.conn.prepare(&format!(
            "SELECT {cols}, s.at FROM entries e LEFT JOIN superseded s ON s.idx = e.idx \
             WHERE e.has_blob ORDER BY e.idx"
        ))?;
        let rows = st.query_map([], |r| Ok((entry_row(r)?, r.get::<_, Option<String>>(12)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A v2 entry's metadata record (`ledger::meta`), unless it was erased.
    pub fn meta_record(&self, index: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT record FROM entry_meta WHERE idx = ?1",
                [index as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Calls `f` with the leaf of entry `index`, if there is one.
    pub fn for_each_leaf_at(&self, index: u64, f: impl FnOnce(&[u8])) -> Result<(), LedgerError> {
        let leaf: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT leaf FROM entries WHERE idx = ?1",
                [index as i64],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(l) = leaf {
            f(&l);
        }
        Ok(())
    }

    /// Calls `f` with each entry's index and leaf bytes in `[from, to)`, in order.
    pub fn for_each_leaf_in(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let mut st = self.conn.prepare_cached(
            "SELECT idx, leaf FROM entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
        )?;
        let mut rows = st.query([from as i64, to.min(i64::MAX as u64) as i64])?;
        while let Some(r) = rows.next()? {
            let idx: i64 = r.get(0)?;
            let leaf = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            f(idx as u64, leaf)?;
        }
        Ok(())
    }

    /// Evidence for `control` dated in `(from, until]` and collected by `until` (RFC 3339
    /// strings), from the evidence index, counting only the entries `counting` admits.
    pub fn evidence_stats(
        &self,
        control: &str,
        from: &str,
        until: &str,
        counting: &Counting,
    ) -> Result<EvidenceStats, LedgerError> {
        // Only the conditions that can exclude a row: each costs a comparison per row, and a
        // control can have hundreds of thousands in its window (coverage of every control).
        // Parameters: ?1 control, ?2 lower date bound, ?3 coverage time, ?4 below, ?5 since.
        let mut filter = String::from(
            "control = ?1 AND date > ?2 AND date <= ?3 AND collected_at <= ?3 AND idx < ?4",
        );
        let since = counting.collected_since.as_deref().unwrap_or("");
        if !since.is_empty() {
            filter += if counting.by_evidence_date {
                " AND date >= ?5"
            } else {
                " AND collected_at >= ?5"
            };
        }
        if !counting.history {
            // Still current: no entry the counting admits superseded or removed it.
            filter += " AND NOT EXISTS (SELECT 1 FROM superseded s \
                       WHERE s.idx = evidence.idx AND s.by_idx < ?4 AND s.at <= ?3)";
        }
        let below = counting.below.min(i64::MAX as u64) as i64;
        let bind = |st: &mut rusqlite::Statement<'_>, lower: &str| -> rusqlite::Result<()> {
            st.raw_bind_parameter(1, control)?;
            st.raw_bind_parameter(2, lower)?;
            st.raw_bind_parameter(3, until)?;
            st.raw_bind_parameter(4, below)?;
            if !since.is_empty() {
                st.raw_bind_parameter(5, since)?;
            }
            Ok(())
        };
        let count = |lower: &str| -> Result<u64, LedgerError> {
            let mut st = self
                .conn
                .prepare_cached(&format!("SELECT COUNT(*) FROM evidence WHERE {filter}"))?;
            bind(&mut st, lower)?;
            let mut rows = st.raw_query();
            let n: i64 = match rows.next()? {
                Some(r) => r.get(0)?,
                None => 0,
            };
            Ok(n as u64)
        };
        let newest = {
            let mut st = self.conn.prepare_cached(&format!(
                "SELECT idx, date, basis FROM evidence WHERE {filter} \
                 ORDER BY date DESC, idx DESC LIMIT 1"
            ))?;
            bind(&mut st, "")?;
            let mut rows = st.raw_query();
            match rows.next()? {
                Some(r) => Some((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)),
                None => None,
            }
        };
        let total = counting.totals;
        Ok(EvidenceStats {
            in_window: count(from)?,
            total: match (total, &newest) {
                (false, _) => None,
                (true, None) => Some(0),
                (true, Some(_)) => Some(count("")?),
            },
            newest,
        })
    }

    /// Streams the rows of the evidence index for entries below `below`: control, date,
    /// index, basis, collected_at. Returns how many rows at or above `below` name no entry
    /// (rows for entries appended since are skipped).
    pub fn for_each_evidence(
        &self,
        below: u64,
        mut f: impl FnMut(&str, &str, u64, &str, &str),
    ) -> Result<u64, LedgerError> {
        let mut st = self
            .conn
            .prepare("SELECT control, date, idx, basis, collected_at FROM evidence")?;
        let mut exists = self
            .conn
            .prepare_cached("SELECT 1 FROM entries WHERE idx = ?1")?;
        let mut orphans = 0;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let idx = r.get::<_, i64>(2)? as u64;
            if idx >= below {
                if !exists.exists([idx as i64])? {
                    orphans += 1;
                }
                continue;
            }
            let text = |i: usize| -> Result<&str, LedgerError> {
                Ok(r.get_ref(i)?.as_str().map_err(rusqlite::Error::from)?)
            };
            f(text(0)?, text(1)?, idx, text(3)?, text(4)?);
        }
        Ok(orphans)
    }

    /// Streams the rows of `superseded` whose superseding entry is below `below`: superseded
    /// index, superseding index, removal.
    pub fn for_each_superseded(
        &self,
        below: u64,
        mut f: impl FnMut(u64, u64, bool),
    ) -> Result<(), LedgerError> {
        let mut st = self
            .conn
            .prepare("SELECT idx, by_idx, removal FROM superseded WHERE by_idx < ?1")?;
        let mut rows = st.query([below.min(i64::MAX as u64) as i64])?;
        while let Some(r) = rows.next()? {
            f(
                r.get::<_, i64>(0)? as u64,
                r.get::<_, i64>(1)? as u64,
                r.get(2)?,
            );
        }
        Ok(())
    }

    /// How many `superseded` rows carry a time other than their superseding entry's
    /// collection time (or name an entry that does not exist).
    pub fn superseded_at_mismatches(&self) -> Result<u64, LedgerError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM superseded s LEFT JOIN entries e ON e.idx = s.by_idx \
             WHERE e.collected_at IS NOT s.at",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Streams every entry below index `below` in index order as borrowed [`EntryRef`]s,
    /// without copying a column. No lower bound: a row forged at a negative index is read
    /// (as a huge `u64`), so verify sees it out of order.
    pub fn for_each_entry_ref(
        &self,
        below: u64,
        mut f: impl FnMut(EntryRef<'_>) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let below = below.min(i64::MAX as u64) as i64;
        let mut st = self.conn.prepare(&format!(
            "SELECT {ROW_COLUMNS}, leaf FROM entries WHERE idx < ?1 ORDER BY idx"
        ))?;
        // v2 metadata records, merged in index order alongside (a lookup per entry would
        // cost a million B-tree searches where most ledgers have no record at all).
        let mut mst = self
            .conn
            .prepare("SELECT idx, record FROM entry_meta WHERE idx < ?1 ORDER BY idx")?;
        let mut metas = mst.query([below])?;
        let mut next_meta = || -> rusqlite::Result<Option<(i64, Vec<u8>)>> {
            metas
                .next()?
                .map(|m| Ok((m.get(0)?, m.get(1)?)))
                .transpose()
        };
        let mut meta = next_meta()?;
        let mut rows = st.query([below])?;
        while let Some(r) = rows.next()? {
            let idx: i64 = r.get(0)?;
            while meta.as_ref().is_some_and(|(i, _)| *i < idx) {
                meta = next_meta()?;
            }
            f(EntryRef {
                row: row_ref(r)?,
                leaf: r.get_ref(12)?.as_blob().map_err(rusqlite::Error::from)?,
                meta: meta
                    .as_ref()
                    .filter(|(i, _)| *i == idx)
                    .map(|(_, b)| b.as_slice()),
            })?;
        }
        Ok(())
    }

    /// The ledger's artefact key, when it writes v2 leaves (`ledger::meta`).
    pub fn artefact_key(&self) -> Result<Option<super::meta::ArtefactKey>, LedgerError> {
        super::meta::ArtefactKey::load(&self.conn)
    }

    /// Up to `limit` stored tree hashes from index `start` on, in order. A hash of the
    /// wrong length is returned as zeros, so it fails comparison rather than the read.
    pub fn tree_hashes_from(
        &self,
        start: u64,
        limit: u64,
    ) -> Result<Vec<(u64, Hash)>, LedgerError> {
        let mut st = self.conn.prepare_cached(
            "SELECT sidx, hash FROM tree_hashes WHERE sidx >= ?1 ORDER BY sidx LIMIT ?2",
        )?;
        let rows = st.query_map([start as i64, limit as i64], |r| {
            let h: Vec<u8> = r.get(1)?;
            Ok((
                r.get::<_, i64>(0)? as u64,
                h.try_into().unwrap_or([0u8; 32]),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Number of stored tree hashes.
    pub fn tree_hash_count(&self) -> Result<u64, LedgerError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM tree_hashes", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }
}

fn known_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Known> {
    let sha: Vec<u8> = r.get(at)?;
    let size: Option<i64> = r.get(at + 1)?;
    let mtime: Option<i64> = r.get(at + 2)?;
    let inode: Option<i64> = r.get(at + 3)?;
    let ctime: Option<i64> = r.get(at + 6)?;
    let dev: Option<i64> = r.get(at + 7)?;
    Ok(Known {
        fingerprint: match (size, mtime, inode, ctime, dev) {
            (Some(s), Some(m), Some(i), Some(c), Some(d)) => Some(Fingerprint {
                size: s as u64,
                mtime_ns: m,
                inode: i as u64,
                ctime_ns: c,
                dev: d as u64,
            }),
            _ => None,
        },
        sha256: sha.try_into().unwrap_or([0; 32]),
        version: r.get(at + 4)?,
        controls: r.get(at + 5)?,
    })
}

impl HashReader for Reader {
    fn read_hash(&self, sidx: u64) -> Result<Hash, MerkleError> {
        read_stored_hash(&self.conn, sidx)
    }
}
