//! The evidence-date index behind `coverage`: one row per (control, entry) with the date
//! that counts for freshness.
//!
//! Freshness asks "how old is the newest evidence for A.6.2.6, and how much falls in the
//! last 30 days?" for every control at once. Answering that from `entries` means reading
//! every leaf; this table keeps the answer one index range away, so `coverage` over a
//! million entries costs a few range scans. It is derived from the leaves like the other
//! columns (`verify` recomputes it) and written in the same transaction.

/// Which of an artefact's dates counts for freshness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DateBasis {
    /// The date the artefact states it takes effect (front matter, sidecar).
    Effective,
    /// The source system's own last-modified time.
    Source,
    /// When Evident recorded it.
    Collected,
}

impl DateBasis {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            DateBasis::Effective => "effective",
            DateBasis::Source => "source",
            DateBasis::Collected => "collected",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "effective" => Some(DateBasis::Effective),
            "source" => Some(DateBasis::Source),
            "collected" => Some(DateBasis::Collected),
            _ => None,
        }
    }
}

/// The date that counts for freshness, as a sortable RFC 3339 UTC string, and its basis:
/// the effective date when the artefact has one (as midnight UTC), else the source's
/// timestamp, else the collection time.
pub fn evidence_date(
    effective: Option<&str>,
    source_updated: Option<&str>,
    collected: &str,
) -> (String, DateBasis) {
    match (effective, source_updated) {
        (Some(d), _) => (format!("{d}T00:00:00Z"), DateBasis::Effective),
        (None, Some(t)) => (t.to_owned(), DateBasis::Source),
        (None, None) => (collected.to_owned(), DateBasis::Collected),
    }
}

/// [`evidence_date`] as SQL over an `entries` row: the date a scope `--by effective` selects.
pub const ENTRY_DATE_SQL: &str = "(CASE WHEN effective_date IS NOT NULL THEN effective_date || 'T00:00:00Z' \
WHEN source_updated_at IS NOT NULL THEN source_updated_at ELSE collected_at END)";

/// Whether an entry of `kind` records a run of a collector.
pub fn is_run(kind: &str) -> bool {
    kind == "collector_run"
}

/// Whether an entry of `kind` records that an artefact was removed.
pub fn is_removal(kind: &str) -> bool {
    kind.ends_with("_removed")
}

/// Whether an entry of `kind` is evidence at all: removal markers and run records are not.
pub fn counts_as_evidence(kind: &str) -> bool {
    !is_run(kind) && !is_removal(kind)
}

/// The SQL that fills the index from existing entries (migration to schema v3); it must
/// agree with [`evidence_date`] and [`counts_as_evidence`], which a unit test checks.
pub const BACKFILL_SQL: &str = "INSERT INTO evidence (control, date, idx, basis, collected_at) \
SELECT ec.control, \
  CASE WHEN e.effective_date IS NOT NULL THEN e.effective_date || 'T00:00:00Z' \
       WHEN e.source_updated_at IS NOT NULL THEN e.source_updated_at \
       ELSE e.collected_at END, \
  e.idx, \
  CASE WHEN e.effective_date IS NOT NULL THEN 'effective' \
       WHEN e.source_updated_at IS NOT NULL THEN 'source' ELSE 'collected' END, \
  e.collected_at \
FROM entry_controls ec JOIN entries e ON e.idx = ec.idx \
WHERE e.kind <> 'collector_run' AND e.kind NOT LIKE '%\\_removed' ESCAPE '\\'";

/// Every entry that is no longer current, as `superseded` rows (idx, by_idx, at, removal):
/// each version of a URI is superseded by the next entry for that URI (a newer version or
/// its removal marker); removal markers and collector runs are never superseded. This is
/// the rule the writer follows through the `artefacts` index, and the one `verify`
/// recomputes from sorted (URI hash, index) pairs (`Versions` in verify.rs).
macro_rules! superseded_select {
    () => {
        "SELECT idx, next_idx, next_at, next_removal FROM ( \
SELECT idx, kind, \
  LEAD(idx) OVER w AS next_idx, \
  LEAD(collected_at) OVER w AS next_at, \
  LEAD(kind GLOB '*_removed') OVER w AS next_removal \
FROM entries WHERE kind <> 'collector_run' \
WINDOW w AS (PARTITION BY uri ORDER BY idx)) \
WHERE next_idx IS NOT NULL AND NOT kind GLOB '*_removed'"
    };
}

/// The `superseded` rows the entries imply (see `superseded_select`).
pub const SUPERSEDED_SQL: &str = superseded_select!();

/// The migration that fills `superseded` for entries written before schema v7.
pub const BACKFILL_SUPERSEDED_SQL: &str = concat!(
    "INSERT INTO superseded (idx, by_idx, at, removal) ",
    superseded_select!()
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQL a `--by effective` scope uses picks the same date as [`evidence_date`].
    #[test]
    fn entry_date_sql_agrees_with_evidence_date() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE entries (effective_date TEXT, source_updated_at TEXT, collected_at TEXT)",
        )
        .unwrap();
        let cases = [
            (
                Some("2026-09-02"),
                Some("2026-10-01T00:00:00Z"),
                "2026-12-02T05:00:00Z",
            ),
            (None, Some("2026-10-01T08:00:00Z"), "2026-12-02T05:00:00Z"),
            (None, None, "2026-12-02T05:00:00Z"),
        ];
        for (e, s, col) in cases {
            c.execute("DELETE FROM entries", []).unwrap();
            c.execute(
                "INSERT INTO entries VALUES (?1, ?2, ?3)",
                rusqlite::params![e, s, col],
            )
            .unwrap();
            let got: String = c
                .query_row(&format!("SELECT {ENTRY_DATE_SQL} FROM entries"), [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(got, evidence_date(e, s, col).0);
        }
    }
}
