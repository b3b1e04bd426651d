//! The SQLite schema, its migrations, and how connections are opened.
//!
//! Append-only tables refuse UPDATE and DELETE through triggers: they catch bugs, while tamper
//! evidence comes from signed checkpoints that others hold. `artefacts` and `cursors` are
//! mutable indexes that can be rebuilt from the entries.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};

use super::LedgerError;

const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One row per Merkle leaf. `leaf` is authoritative; the other columns are derived from it
-- for querying, and `evident verify` checks that they agree.
CREATE TABLE entries (
    idx               INTEGER PRIMARY KEY,
    leaf              BLOB NOT NULL,
    kind              TEXT NOT NULL,
    source            TEXT NOT NULL,
    uri               TEXT NOT NULL,
    sha256            BLOB NOT NULL,
    collected_at      TEXT NOT NULL,
    title             TEXT,
    effective_date    TEXT,
    source_updated_at TEXT,
    size              INTEGER,
    has_blob          INTEGER NOT NULL,
    controls          TEXT NOT NULL
) STRICT;

CREATE TABLE entry_controls (
    control TEXT NOT NULL,
    idx     INTEGER NOT NULL,
    PRIMARY KEY (control, idx)
) STRICT, WITHOUT ROWID;

-- Go sumdb/tlog stored-hash layout: every tree node at one dense index.
CREATE TABLE tree_hashes (
    sidx INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
) STRICT;

CREATE TABLE checkpoints (
    size      INTEGER PRIMARY KEY,
    note      TEXT NOT NULL,
    signed_at TEXT NOT NULL
) STRICT;

-- Mutable: the artefacts currently present, with their last digest and stat fingerprint.
CREATE TABLE artefacts (
    uri      TEXT PRIMARY KEY,
    source   TEXT NOT NULL,
    sha256   BLOB NOT NULL,
    idx      INTEGER NOT NULL,
    size     INTEGER,
    mtime_ns INTEGER,
    inode    INTEGER
) STRICT;
CREATE INDEX artefacts_by_source ON artefacts (source);

-- Mutable: where each collector resumes.
CREATE TABLE cursors (
    collector  TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'entries are append-only'); END;
CREATE TRIGGER entry_controls_no_update BEFORE UPDATE ON entry_controls
BEGIN SELECT RAISE(ABORT, 'entry_controls are append-only'); END;
CREATE TRIGGER entry_controls_no_delete BEFORE DELETE ON entry_controls
BEGIN SELECT RAISE(ABORT, 'entry_controls are append-only'); END;
CREATE TRIGGER tree_hashes_no_update BEFORE UPDATE ON tree_hashes
BEGIN SELECT RAISE(ABORT, 'tree_hashes are append-only'); END;
CREATE TRIGGER tree_hashes_no_delete BEFORE DELETE ON tree_hashes
BEGIN SELECT RAISE(ABORT, 'tree_hashes are append-only'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
"#;

/// Source-side change markers (an MLflow version's state, a CI run's attempt and update
/// time, an ETag): a collector that sees the same marker skips the detail requests.
const V2: &str = "ALTER TABLE artefacts ADD COLUMN version TEXT;";

/// The evidence-date index for coverage (see `evidence.rs`), filled from existing entries.
const V3: &str = r#"
CREATE TABLE evidence (
    control      TEXT NOT NULL,
    date         TEXT NOT NULL,
    idx          INTEGER NOT NULL,
    basis        TEXT NOT NULL,
    collected_at TEXT NOT NULL,
    PRIMARY KEY (control, date, idx)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence
BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END;
CREATE TRIGGER evidence_no_delete BEFORE DELETE ON evidence
BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END;
"#;

/// RFC 3161 timestamp tokens over checkpoints (`[anchoring]`), one per checkpoint size.
const V5: &str = r#"
CREATE TABLE timestamps (
    size         INTEGER PRIMARY KEY,
    token        BLOB NOT NULL,
    tsa_url      TEXT NOT NULL,
    received_at  TEXT NOT NULL
) STRICT;
CREATE TRIGGER timestamps_no_update BEFORE UPDATE ON timestamps
BEGIN SELECT RAISE(ABORT, 'timestamps are append-only'); END;
CREATE TRIGGER timestamps_no_delete BEFORE DELETE ON timestamps
BEGIN SELECT RAISE(ABORT, 'timestamps are append-only'); END;
"#;

/// v6: the stat fingerprint also holds ctime and the device, so an edit that restores size
/// and mtime is still seen. Rows from before have NULLs: re-read once, then refreshed.
const V6: &str = r#"
ALTER TABLE artefacts ADD COLUMN ctime_ns INTEGER;
ALTER TABLE artefacts ADD COLUMN dev INTEGER;
"#;

/// v7: which entries are no longer current (a newer version of the same URI, or its removal),
/// so coverage counts only what is there now. Filled from existing entries by
/// [`super::evidence::SUPERSEDED_SQL`]; the writer adds a row whenever an artefact changes.
const V7: &str = r#"
CREATE TABLE superseded (
    idx     INTEGER PRIMARY KEY,
    by_idx  INTEGER NOT NULL,
    at      TEXT NOT NULL,
    removal INTEGER NOT NULL
) STRICT;
CREATE TRIGGER superseded_no_update BEFORE UPDATE ON superseded
BEGIN SELECT RAISE(ABORT, 'superseded is append-only'); END;
CREATE TRIGGER superseded_no_delete BEFORE DELETE ON superseded
BEGIN SELECT RAISE(ABORT, 'superseded is append-only'); END;
"#;

/// v9: run history, one row per collector run, for status, metrics and the daemon's
/// start-up decisions. A run appends a `collector_run` entry only when it recorded something,
/// its outcome changed, or the heartbeat is due; `entry` names it then. Mutable: old rows
/// without an entry are pruned.
const V9: &str = r#"
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    collector   TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    new         INTEGER NOT NULL,
    unchanged   INTEGER NOT NULL,
    removed     INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    error       TEXT,
    entry       INTEGER
) STRICT;
CREATE INDEX runs_by_collector ON runs (collector, id);
"#;

/// v10: the run history of ledgers from before v9, from their `collector_run` entries.
const V10: &str = r#"
INSERT INTO runs (collector, started_at, finished_at, new, unchanged, removed, failed, error, entry)
SELECT source,
       coalesce(json_extract(j, '$.predicate.run.startedAt'), collected_at),
       collected_at,
       coalesce(CAST(json_extract(j, '$.predicate.run.new') AS INTEGER), 0),
       coalesce(CAST(json_extract(j, '$.predicate.run.unchanged') AS INTEGER), 0),
       coalesce(CAST(json_extract(j, '$.predicate.run.removed') AS INTEGER), 0),
       coalesce(CAST(json_extract(j, '$.predicate.run.failed') AS INTEGER), 0),
       json_extract(j, '$.predicate.run.error'),
       idx
FROM (SELECT idx, source, collected_at, CAST(leaf AS TEXT) AS j FROM entries
      WHERE kind = 'collector_run')
ORDER BY idx;
"#;

/// v11: `entry_controls` goes. The evidence index holds the same (control, entry) pairs for
/// every entry that is evidence, `verify` checks it (it never checked `entry_controls`), and
/// each entry then costs two B-tree inserts fewer (issue 13).
const V11: &str = "DROP TABLE IF EXISTS entry_controls;";

/// v12: witness cosignatures (`c2sp.org/tlog-cosignature`) of checkpoints, one per witness
/// and checkpoint size: the signature line as the witness sent it, and its signed time.
/// (`IF NOT EXISTS`: a ledger rolled back to an older version by hand still migrates.)
const V12: &str = r#"
CREATE TABLE IF NOT EXISTS cosignatures (
    size     INTEGER NOT NULL,
    witness  TEXT NOT NULL,
    line     TEXT NOT NULL,
    time     INTEGER NOT NULL,
    PRIMARY KEY (size, witness)
) STRICT;
CREATE TRIGGER IF NOT EXISTS cosignatures_no_update BEFORE UPDATE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only'); END;
CREATE TRIGGER IF NOT EXISTS cosignatures_no_delete BEFORE DELETE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only'); END;
"#;

/// v13: leaf v2's erasable metadata (`ledger::meta`, docs/erasure.md). Each v2 entry's
/// metadata record sits in `entry_meta`, which erasure deletes from and nothing rewrites.
/// The `entries` row of a v2 leaf may change in one way only: its title and URI erased
/// (the URI becomes `evident:artefact:<artefact>`, the title NULL); every other column, and
/// every column of a v1 row, stays append-only, enforced here as before.
const V13: &str = r#"
CREATE TABLE IF NOT EXISTS entry_meta (
    idx    INTEGER PRIMARY KEY,
    record BLOB NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS entry_meta_no_update BEFORE UPDATE ON entry_meta
BEGIN SELECT RAISE(ABORT, 'metadata records are never rewritten, only erased'); END;
DROP TRIGGER IF EXISTS entries_no_update;
CREATE TRIGGER entries_no_update BEFORE UPDATE OF idx, leaf, kind, source, sha256,
    collected_at, effective_date, source_updated_at, size, has_blob, controls ON entries
BEGIN SELECT RAISE(ABORT, 'entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_erase_metadata_only BEFORE UPDATE OF uri, title ON entries
WHEN json_extract(CAST(OLD.leaf AS TEXT), '$.predicateType')
        IS NOT 'https://evident.dev/evidence-entry/v2'
  OR NEW.uri IS NOT 'evident:artefact:' || json_extract(CAST(OLD.leaf AS TEXT), '$.predicate.artefact')
  OR NEW.title IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'entries are append-only (only a v2 entry''s title and URI may be erased)'); END;
"#;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up(super::evidence::BACKFILL_SQL),
        M::up(V5),
        M::up(V6),
        M::up(V7),
        M::up(super::evidence::BACKFILL_SUPERSEDED_SQL),
        M::up(V9),
        M::up(V10),
        M::up(V11),
        M::up(V12),
        M::up(V13),
    ])
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 13;

fn tune(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(Duration::from_secs(10))?;
    // 8 MiB of page cache (SQLite's default is 2 MiB): batch inserts revisit the same B-tree
    // pages. The cache is the one allocation that grows with the ledger in a long-running
    // daemon (heap profile), so this also bounds the daemon's memory.
    conn.pragma_update(None, "cache_size", -8192)?;
    // FULL: with NORMAL a power cut can roll back committed entries, and the log could then
    // sign a second, different checkpoint of the same size.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

/// Opens (creating if asked) the database for writing and brings the schema up to date.
pub fn open_write(path: &Path, create: bool) -> Result<Connection, LedgerError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut conn =
        Connection::open_with_flags(path, flags).map_err(|e| LedgerError::open(path, e))?;
    // 16 KiB pages for a new ledger (a no-op on an existing one): a 1,000-entry batch then
    // touches and logs fewer pages, ~19 % more entries/s than 4 KiB (docs/performance.md).
    conn.pragma_update(None, "page_size", 16384)
        .map_err(|e| LedgerError::open(path, e))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| LedgerError::open(path, e))?;
    tune(&conn).map_err(|e| LedgerError::open(path, e))?;
    check_version(&conn, path)?;
    migrations()
        .to_latest(&mut conn)
        .map_err(|e| LedgerError::Schema(format!("migrating {}: {e}", path.display())))?;
    Ok(conn)
}

/// Opens the database read-only (queries, verification, proofs).
pub fn open_read(path: &Path) -> Result<Connection, LedgerError> {
    let conn = open_read_any(path)?;
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| LedgerError::open(path, e))?;
    if v < SCHEMA_VERSION {
        return Err(LedgerError::Schema(format!(
            "{} has schema version {v}; run a writing command (`evident collect` or \
             `evident checkpoint`) once to migrate it",
            path.display()
        )));
    }
    Ok(conn)
}

/// Opens the database read-only at any schema this build can migrate: enough to read the
/// origin a writing command needs before it migrates.
pub fn open_read_any(path: &Path) -> Result<Connection, LedgerError> {
    if !path.exists() {
        return Err(LedgerError::NotInitialised(path.to_owned()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| LedgerError::open(path, e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| LedgerError::open(path, e))?;
    check_version(&conn, path)?;
    Ok(conn)
}

fn check_version(conn: &Connection, path: &Path) -> Result<(), LedgerError> {
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| LedgerError::open(path, e))?;
    if v > SCHEMA_VERSION {
        return Err(LedgerError::Schema(format!(
            "{} was written by a newer Evident (schema {v}, this build knows {SCHEMA_VERSION}); upgrade evident",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn append_only_tables_refuse_changes() {
        let d = tempfile::tempdir().unwrap();
        let c = open_write(&d.path().join("t.db"), true).unwrap();
        c.execute("INSERT INTO tree_hashes VALUES (0, x'00')", [])
            .unwrap();
        let e = c
            .execute("UPDATE tree_hashes SET hash = x'01'", [])
            .unwrap_err();
        assert!(e.to_string().contains("append-only"));
        assert!(c.execute("DELETE FROM tree_hashes", []).is_err());
    }

    #[test]
    fn only_a_v2_entry_s_title_and_uri_can_be_erased() {
        let d = tempfile::tempdir().unwrap();
        let c = open_write(&d.path().join("t.db"), true).unwrap();
        let v1 = r#"{"predicate":{"kind":"document"},"predicateType":"https://evident.dev/evidence-entry/v1"}"#;
        let v2 = r#"{"predicate":{"artefact":"ab","kind":"document"},"predicateType":"https://evident.dev/evidence-entry/v2"}"#;
        for (i, leaf) in [v1, v2].iter().enumerate() {
            c.execute(
                "INSERT INTO entries (idx, leaf, kind, source, uri, sha256, collected_at, title, \
                 has_blob, controls) VALUES (?1, ?2, 'document', 's', 'file:///a', x'00', 't', 'A', 1, '')",
                rusqlite::params![i as i64, leaf.as_bytes()],
            )
            .unwrap();
        }
        let erase = |i: i64, uri: &str| {
            c.execute(
                "UPDATE entries SET uri = ?2, title = NULL WHERE idx = ?1",
                rusqlite::params![i, uri],
            )
        };
        assert!(
            erase(0, "evident:artefact:ab").is_err(),
            "a v1 row is fixed"
        );
        assert!(
            erase(1, "file:///b").is_err(),
            "a v2 URI can only be erased"
        );
        assert!(
            c.execute("UPDATE entries SET title = 'B' WHERE idx = 1", [])
                .is_err()
        );
        assert!(
            c.execute("UPDATE entries SET kind = 'x' WHERE idx = 1", [])
                .is_err()
        );
        erase(1, "evident:artefact:ab").unwrap();
        c.execute("INSERT INTO entry_meta VALUES (1, x'00')", [])
            .unwrap();
        assert!(
            c.execute("UPDATE entry_meta SET record = x'01'", [])
                .is_err()
        );
        c.execute("DELETE FROM entry_meta WHERE idx = 1", [])
            .unwrap();
    }
}
