//! `query`: the evidence recorded for some controls, in index order, a page at a time.
//!
//! Two plans answer it, and each page takes the cheaper. The evidence index is keyed by
//! (control, date, index), so the entries of a control in *index* order come from reading
//! all of the control's index rows and sorting them: cheap for a sparse control (1,000
//! rows), 100 ms a page for a dense one (600,000 rows of a 1,000,000-entry ledger). Walking
//! `entries` in index order and keeping the rows that name the control costs the reverse:
//! a few hundred rows for a dense control, the whole table for a sparse one. A page (a
//! `limit`) first counts the control's index rows up to the break-even point, which costs
//! at most a fraction of the sorted plan, and walks `entries` only beyond it. A second index
//! on (control, index) would make both cheap, but costs every append (measured: −15 %
//! entries/s, +10 % database size; `docs/performance.md`).

use rusqlite::{Row, params_from_iter, types::Value};
use serde::Serialize;
use serde::ser::SerializeStruct as _;

use super::LedgerError;
use super::evidence::is_removal;
use super::reader::{EntryRow, Reader, RowRef, State, row_ref};

/// What `query` selects.
#[derive(Debug, Clone, Default)]
pub struct QueryFilter<'a> {
    /// Controls and clauses (already resolved).
    pub controls: Vec<&'a str>,
    /// Collected on or after (RFC 3339).
    pub since: Option<String>,
    /// Collected before (RFC 3339, exclusive); also the time "current" is judged at.
    pub until: Option<String>,
    /// Only current versions.
    pub current_only: bool,
    /// Only entries above this index (the previous page's last).
    pub after: Option<u64>,
    /// At most this many rows.
    pub limit: Option<u64>,
    /// Newest first (the dashboard's control page); `after` then pages downwards.
    pub newest_first: bool,
}

/// One row of `query`, owned: the entry, and whether it is current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryRow {
    /// The entry.
    #[serde(flatten)]
    pub row: EntryRow,
    /// Current, superseded, removed, or a removal marker.
    pub state: State,
    /// The entry that superseded or removed it.
    pub superseded_by: Option<u64>,
}

/// One row of `query` as SQLite holds it, borrowed for the length of the callback: a page
/// is serialised without an allocation per column. Serialises exactly as [`QueryRow`].
#[derive(Debug, Clone, Copy)]
pub struct QueryRef<'r> {
    /// The entry's columns.
    pub row: RowRef<'r>,
    /// Current, superseded, removed, or a removal marker.
    pub state: State,
    /// The entry that superseded or removed it.
    pub superseded_by: Option<u64>,
}

impl<'r> std::ops::Deref for QueryRef<'r> {
    type Target = RowRef<'r>;
    fn deref(&self) -> &RowRef<'r> {
        &self.row
    }
}

impl QueryRef<'_> {
    /// The controls, one by one.
    pub fn control_list(&self) -> impl Iterator<Item = &str> {
        self.controls.split(',').filter(|s| !s.is_empty())
    }

    /// An owned copy.
    pub fn owned(&self) -> QueryRow {
        QueryRow {
            row: EntryRow {
                index: self.index,
                kind: self.kind.to_owned(),
                source: self.source.to_owned(),
                uri: self.uri.to_owned(),
                title: self.title.map(str::to_owned),
                sha256: super::leaf::hex(self.sha256),
                collected_at: self.collected_at.to_owned(),
                effective_date: self.effective_date.map(str::to_owned),
                source_updated_at: self.source_updated_at.map(str::to_owned),
                size: self.size.map(|s| s as u64),
                has_blob: self.has_blob,
                controls: self.control_list().map(str::to_owned).collect(),
            },
            state: self.state,
            superseded_by: self.superseded_by,
        }
    }
}

/// Hex digits written straight into the serializer.
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        for chunk in self.0.chunks(32) {
            for (i, b) in chunk.iter().enumerate() {
                buf[2 * i] = DIGITS[usize::from(b >> 4)];
                buf[2 * i + 1] = DIGITS[usize::from(b & 15)];
            }
            let s = std::str::from_utf8(&buf[..2 * chunk.len()]).map_err(|_| std::fmt::Error)?;
            f.write_str(s)?;
        }
        Ok(())
    }
}

/// A comma-separated list as a sequence.
struct Commas<'a>(&'a str);

impl Serialize for Commas<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.split(',').filter(|c| !c.is_empty()))
    }
}

impl Serialize for QueryRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("QueryRow", 14)?;
        st.serialize_field("index", &self.index)?;
        st.serialize_field("kind", self.kind)?;
        st.serialize_field("source", self.source)?;
        st.serialize_field("uri", self.uri)?;
        st.serialize_field("title", &self.title)?;
        st.serialize_field("sha256", &format_args!("{}", Hex(self.sha256)))?;
        st.serialize_field("collected_at", self.collected_at)?;
        st.serialize_field("effective_date", &self.effective_date)?;
        st.serialize_field("source_updated_at", &self.source_updated_at)?;
        st.serialize_field("size", &self.size.map(|s| s as u64))?;
        st.serialize_field("has_blob", &self.has_blob)?;
        st.serialize_field("controls", &Commas(self.controls))?;
        st.serialize_field("state", &self.state)?;
        st.serialize_field("superseded_by", &self.superseded_by)?;
        st.end()
    }
}

/// `reader::ROW_COLUMNS` of `entries e` (read by `row_ref`), then the supersession (a test
/// holds the two lists together).
const COLUMNS: &str = "e.idx, e.kind, e.source, e.uri, e.title, e.sha256, e.collected_at, \
                       e.effective_date, e.source_updated_at, e.size, e.has_blob, e.controls, \
                       s.by_idx, s.removal";

fn query_ref<'r>(r: &'r Row<'_>) -> rusqlite::Result<QueryRef<'r>> {
    let row = row_ref(r)?;
    let by: Option<i64> = r.get(12)?;
    let removal: Option<bool> = r.get(13)?;
    let state = match (by, removal) {
        _ if is_removal(row.kind) => State::Removal,
        (Some(_), Some(true)) => State::Removed,
        (Some(_), _) => State::Superseded,
        (None, _) => State::Current,
    };
    Ok(QueryRef {
        row,
        state,
        superseded_by: by.map(|b| b as u64),
    })
}

/// Plans a connection remembers: (controls, limit) → (ledger size then, plan).
#[derive(Debug, Default)]
pub struct Plans(std::collections::HashMap<(String, u64), (u64, Plan)>);

/// At most this many remembered plans per connection (a control set is a few bytes).
const PLANS_KEPT: usize = 512;

/// How a page is read (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// The controls' index rows, sorted by index.
    Sorted,
    /// `entries` walked in index order, in windows of this many indexes (doubling).
    Walk(u64),
}

/// Smallest break-even count: below it the sorted plan costs well under a millisecond.
const MIN_BREAK_EVEN: u64 = 4_096;

fn as_sql(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

impl Reader {
    /// Streams the entries mapped to any of the filter's controls (evidence only: no
    /// collector runs or removal markers), optionally within `[since, until)` of collection
    /// time, oldest first, each with whether it was still current at `until` (or now); only
    /// current ones when `current_only`. Rows reach `f` as they are read: a dense control's
    /// 600,000 rows are never held at once. `after` and `limit` page through the result
    /// (the API's cursor is the last index it returned).
    pub fn query<E: From<LedgerError>>(
        &self,
        q: &QueryFilter<'_>,
        mut f: impl FnMut(QueryRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if q.controls.is_empty() {
            return Ok(());
        }
        // One snapshot: the walk reads a page in several statements.
        self.snapshot(|r| match r.plan(q)? {
            Plan::Sorted => r.query_sorted(q, &mut f),
            Plan::Walk(window) => r.query_walk(q, window, &mut f),
        })
    }

    /// The cheaper plan for `q` (module doc). Sorting costs about one index-row read and one
    /// insert per row of the controls (C); the walk about three row reads per entry it
    /// passes, `limit × size / C` of them. They break even near C = √(2 × limit × size).
    /// Counting up to that costs a millisecond on a dense control, more than the walk
    /// itself: each connection remembers the choice until the ledger has grown by an eighth.
    fn plan(&self, q: &QueryFilter<'_>) -> Result<Plan, LedgerError> {
        let Some(limit) = q.limit else {
            return Ok(Plan::Sorted);
        };
        let size = self.size()?;
        let key = (q.controls.join(","), limit);
        if let Some(&(at, plan)) = self.plans.borrow().0.get(&key)
            && size >= at
            && size - at <= at / 8
        {
            return Ok(plan);
        }
        let break_even = (limit.max(1).saturating_mul(2).saturating_mul(size) as f64).sqrt() as u64;
        let break_even = break_even.max(MIN_BREAK_EVEN);
        let marks = marks(1, q.controls.len());
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT count(*) FROM (SELECT 1 FROM evidence WHERE control IN ({marks}) LIMIT ?{})",
            q.controls.len() + 1
        ))?;
        let mut params: Vec<Value> = q.controls.iter().map(|c| (*c).to_owned().into()).collect();
        params.push(as_sql(break_even).into());
        let rows: i64 = st.query_row(params_from_iter(params), |r| r.get(0))?;
        let plan = if (rows as u64) < break_even {
            Plan::Sorted
        } else {
            // A window that should hold the page four times over at the density just seen.
            Plan::Walk(limit.saturating_mul(4).saturating_mul(size) / break_even)
        };
        let mut plans = self.plans.borrow_mut();
        if plans.0.len() >= PLANS_KEPT {
            plans.0.clear();
        }
        plans.0.insert(key, (size, plan));
        Ok(plan)
    }

    /// Parameters both plans share: ?1 until, ?2 since, ?3 after, ?4 limit.
    fn shared_params(q: &QueryFilter<'_>, limit: u64) -> Vec<Value> {
        vec![
            q.until.as_deref().unwrap_or("\u{10FFFF}").to_owned().into(),
            q.since.as_deref().unwrap_or("").to_owned().into(),
            as_sql(q.after.unwrap_or(0)).into(),
            as_sql(limit).into(),
        ]
    }

    fn query_sorted<E: From<LedgerError>>(
        &self,
        q: &QueryFilter<'_>,
        f: &mut impl FnMut(QueryRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let marks = marks(5, q.controls.len());
        let after = match (q.after.is_some(), q.newest_first) {
            (false, _) => "",
            (true, false) => "AND e.idx > ?3",
            (true, true) => "AND e.idx < ?3",
        };
        let limit = if q.limit.is_some() { "LIMIT ?4" } else { "" };
        let sql = format!(
            "SELECT {COLUMNS} FROM entries e \
             LEFT JOIN superseded s ON s.idx = e.idx AND s.at < ?1 WHERE e.idx IN \
             (SELECT idx FROM evidence WHERE control IN ({marks})) \
             {} {after} {} ORDER BY e.idx {} {limit}",
            collected_window(q),
            current(q),
            order(q)
        );
        let mut params = Self::shared_params(q, q.limit.unwrap_or(0));
        params.extend(q.controls.iter().map(|c| (*c).to_owned().into()));
        self.rows(&sql, params, f).map(|_| ())
    }

    /// Walks `entries` from `after` in windows of `window` indexes, doubling each time, until
    /// the page is full or the ledger ends: at most twice the entries between `after` and
    /// the page's last row, plus the first window.
    fn query_walk<E: From<LedgerError>>(
        &self,
        q: &QueryFilter<'_>,
        mut window: u64,
        f: &mut impl FnMut(QueryRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let size = self.size()?;
        let mut need = q.limit.unwrap_or(u64::MAX);
        // Evidence only, as in the evidence index: not runs, not removal markers.
        let named = (0..q.controls.len())
            .map(|i| format!("instr(',' || e.controls || ',', ?{}) > 0", i + 6))
            .collect::<Vec<_>>()
            .join(" OR ");
        let (range, first) = if q.newest_first {
            (
                "e.idx < ?3 AND e.idx >= ?5",
                q.after.unwrap_or(size).min(size),
            )
        } else {
            (
                "e.idx > ?3 AND e.idx <= ?5",
                q.after.map_or(0, |a| a.saturating_add(1)),
            )
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM entries e \
             LEFT JOIN superseded s ON s.idx = e.idx AND s.at < ?1 \
             WHERE {range} AND e.kind <> 'collector_run' AND e.kind NOT GLOB '*_removed' \
             AND ({named}) {} {} ORDER BY e.idx {} LIMIT ?4",
            collected_window(q),
            current(q),
            order(q)
        );
        // `next` is the first index not yet walked (ascending) or one past the last
        // (descending).
        let mut next = first;
        loop {
            let done = if q.newest_first {
                next == 0
            } else {
                next >= size
            };
            if done || need == 0 {
                return Ok(());
            }
            window = window.max(1);
            let (lo, hi) = if q.newest_first {
                (next.saturating_sub(window), next)
            } else {
                (next, next.saturating_add(window).min(size))
            };
            // ?3 the exclusive bound, ?5 the inclusive one.
            let (excl, incl) = if q.newest_first {
                (as_sql(hi), as_sql(lo))
            } else {
                (as_sql(lo) - 1, as_sql(hi) - 1)
            };
            let mut params = Self::shared_params(q, need);
            params[2] = excl.into();
            params.push(incl.into());
            params.extend(q.controls.iter().map(|c| format!(",{c},").into()));
            need -= self.rows(&sql, params, f)?;
            next = if q.newest_first { lo } else { hi };
            window = window.saturating_mul(2);
        }
    }

    /// Runs one statement of a plan, handing each row to `f`; how many there were.
    fn rows<E: From<LedgerError>>(
        &self,
        sql: &str,
        params: Vec<Value>,
        f: &mut impl FnMut(QueryRef<'_>) -> Result<(), E>,
    ) -> Result<u64, E> {
        let db = |e: rusqlite::Error| E::from(LedgerError::from(e));
        let mut st = self.conn.prepare_cached(sql).map_err(db)?;
        let mut rows = st.query(params_from_iter(params)).map_err(db)?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(db)? {
            f(query_ref(r).map_err(db)?)?;
            n += 1;
        }
        Ok(n)
    }
}

/// `?first, ?first+1, …` for `n` parameters.
fn marks(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Only the bounds given: each is a string comparison per row of a dense control.
fn collected_window(q: &QueryFilter<'_>) -> &'static str {
    match (q.since.is_some(), q.until.is_some()) {
        (true, true) => "AND e.collected_at >= ?2 AND e.collected_at < ?1",
        (true, false) => "AND e.collected_at >= ?2",
        (false, true) => "AND e.collected_at < ?1",
        (false, false) => "",
    }
}

/// Current as of the end of the window: a version superseded later was current then.
fn current(q: &QueryFilter<'_>) -> &'static str {
    if q.current_only {
        "AND s.idx IS NULL AND e.kind NOT GLOB '*_removed'"
    } else {
        ""
    }
}

fn order(q: &QueryFilter<'_>) -> &'static str {
    if q.newest_first { "DESC" } else { "" }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ledger::state::StateDir;
    use crate::ledger::writer::{NewEntry, WriteBatch, Writer};

    const CONTROLS: [&str; 3] = ["A.2.2", "A.6.2.4", "A.6.2.8"];

    /// Entry `i` for artefact `uri`: a version mapped to the controls in bit set `set`, its
    /// removal (op 0), or a collector run (op 1); every third has a title that needs escaping.
    fn entry(i: usize, uri: usize, op: u8, set: u8) -> NewEntry {
        let controls = (0..3)
            .filter(|b| set & (1 << b) != 0)
            .map(|b| CONTROLS[b].to_owned())
            .collect();
        let title = i.is_multiple_of(3).then(|| format!("\"title\" {i}\n"));
        crate::ledger::writer::tests::change_with(i, uri, op, controls, title)
    }

    fn ledger(ops: &[(usize, u8, u8)]) -> (tempfile::TempDir, Reader) {
        let d = tempfile::tempdir().unwrap();
        let state = StateDir::new(d.path().join("s"));
        state.init("query.test/log").unwrap();
        let writer = Writer::open(&state, "query.test/log").unwrap();
        let mut present = std::collections::HashSet::new();
        let mut entries = Vec::new();
        for &(uri, op, set) in ops {
            // Removals only of what is there, as collectors report them.
            if op == 0 && !present.remove(&uri) {
                continue;
            }
            if op >= 2 {
                present.insert(uri);
            }
            entries.push(entry(entries.len(), uri, op, set));
        }
        writer
            .append(WriteBatch {
                entries,
                ..WriteBatch::default()
            })
            .unwrap();
        drop(writer);
        let reader = Reader::open(&state).unwrap();
        (d, reader)
    }

    type Got = Vec<(u64, State, Option<u64>)>;

    fn collect(r: &Reader, plan: Plan, q: &QueryFilter<'_>) -> Got {
        let mut got = Vec::new();
        let mut f = |row: QueryRef<'_>| {
            got.push((row.index, row.state, row.superseded_by));
            Ok::<_, LedgerError>(())
        };
        r.snapshot(|r| match plan {
            Plan::Sorted => r.query_sorted(q, &mut f),
            Plan::Walk(w) => r.query_walk(q, w, &mut f),
        })
        .unwrap();
        got
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        /// Both plans give the same rows, in the same order, with the same state, for any
        /// history (versions, removals, runs), controls, window, direction, cursor and page
        /// size; and paging by the cursor visits exactly the rows of one unlimited query.
        #[test]
        fn the_walk_and_the_sorted_plan_agree(
            ops in prop::collection::vec((0usize..5, 0u8..5, 0u8..8), 1..80),
            set in 1u8..8,
            current_only in any::<bool>(),
            newest_first in any::<bool>(),
            window in prop::option::of((0u32..60, 0u32..60)),
            after in prop::option::of(0u64..90),
            limit in 1u64..12,
            walk in 1u64..40,
        ) {
            let (_d, r) = ledger(&ops);
            let controls: Vec<&str> = (0..3).filter(|b| set & (1 << b) != 0).map(|b| CONTROLS[b]).collect();
            let (since, until) = match window {
                Some((a, b)) => (Some(format!("2026-11-22T00:{:02}:00Z", a.min(b))),
                                 Some(format!("2026-11-22T00:{:02}:00Z", a.max(b)))),
                None => (None, None),
            };
            let q = QueryFilter { controls, since, until, current_only, after, limit: Some(limit), newest_first };
            let sorted = collect(&r, Plan::Sorted, &q);
            prop_assert_eq!(&collect(&r, Plan::Walk(walk), &q), &sorted);
            prop_assert!(sorted.len() as u64 <= limit);

            // Pages joined by the cursor = one query without a limit.
            let all = collect(&r, Plan::Sorted, &QueryFilter { limit: None, ..q.clone() });
            let mut paged = Vec::new();
            let mut cursor = q.after;
            loop {
                let page = collect(&r, Plan::Walk(walk), &QueryFilter { after: cursor, ..q.clone() });
                cursor = page.last().map(|p| p.0);
                let full = page.len() as u64 == limit;
                paged.extend(page);
                if !full { break; }
            }
            prop_assert_eq!(paged, all);
        }
    }

    #[test]
    fn the_columns_are_the_row_columns_then_the_supersession() {
        let row: Vec<String> = crate::ledger::reader::ROW_COLUMNS
            .split(", ")
            .map(|c| format!("e.{c}"))
            .chain(["s.by_idx".into(), "s.removal".into()])
            .collect();
        let ours: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
        assert_eq!(ours, row);
    }

    /// A borrowed row prints exactly as its owned copy, escapes and all.
    #[test]
    fn a_borrowed_row_serialises_as_the_owned_row() {
        let (_d, r) = ledger(&[(0, 2, 3), (1, 2, 1), (0, 2, 2), (0, 0, 0)]);
        let q = QueryFilter {
            controls: CONTROLS.to_vec(),
            ..QueryFilter::default()
        };
        let mut n = 0;
        r.query(&q, |row| {
            let borrowed = serde_json::to_string(&row).unwrap();
            let owned = serde_json::to_string(&row.owned()).unwrap();
            assert_eq!(borrowed, owned);
            n += 1;
            Ok::<_, LedgerError>(())
        })
        .unwrap();
        assert_eq!(n, 3);
    }

    /// A page of a dense control walks `entries`; a sparse one sorts its index rows.
    #[test]
    fn a_dense_control_is_walked_and_a_sparse_one_sorted() {
        let ops: Vec<_> = (0..9_000usize)
            .map(|i| (i, 2, if i.is_multiple_of(1_000) { 3 } else { 2 }))
            .collect();
        let (_d, r) = ledger(&ops);
        let page = |c: &'static str| QueryFilter {
            controls: vec![c],
            limit: Some(101),
            ..QueryFilter::default()
        };
        assert!(matches!(r.plan(&page("A.6.2.4")).unwrap(), Plan::Walk(_)));
        assert_eq!(r.plan(&page("A.2.2")).unwrap(), Plan::Sorted);
        let all = QueryFilter {
            limit: None,
            ..page("A.6.2.4")
        };
        assert_eq!(r.plan(&all).unwrap(), Plan::Sorted);
        assert_eq!(collect(&r, Plan::Sorted, &page("A.2.2")).len(), 9);
    }
}
