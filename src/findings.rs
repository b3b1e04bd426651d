//! What a verification found, for both verifies (the ledger's and a bundle's): each check's
//! problems, listed up to a bound and counted beyond it, and one renderer of the summary
//! table and the `FAIL` lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// Problems listed in a report; more are counted.
pub const MAX_LISTED: usize = 50;

/// The checks of one verification, in report order.
pub trait Checks: Copy + Ord + Serialize + std::fmt::Debug + 'static {
    /// Every check, in report order.
    const ALL: &'static [Self];
    /// The label in the summary.
    fn label(self) -> &'static str;
}

/// One thing that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding<C> {
    /// Which check found it.
    pub check: C,
    /// The entry concerned, when there is one.
    pub index: Option<u64>,
    /// What differs, naming the member or row.
    pub what: String,
}

/// Everything found wrong by a verification's checks.
#[derive(Debug, Clone, Serialize)]
pub struct Findings<C: Checks> {
    /// Problems, in the order found (at most [`MAX_LISTED`]; see `unlisted`).
    pub problems: Vec<Finding<C>>,
    /// Problems found but not listed.
    pub unlisted: u64,
    /// Problems per check (listed or not).
    #[serde(skip)]
    counts: BTreeMap<C, u64>,
}

impl<C: Checks> Default for Findings<C> {
    fn default() -> Self {
        Findings {
            problems: Vec::new(),
            unlisted: 0,
            counts: BTreeMap::new(),
        }
    }
}

impl<C: Checks> Findings<C> {
    /// Records a problem `check` found, about entry `index` when there is one.
    pub fn add(&mut self, check: C, index: Option<u64>, what: impl Into<String>) {
        *self.counts.entry(check).or_default() += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(Finding {
                check,
                index,
                what: what.into(),
            });
        } else {
            self.unlisted += 1;
        }
    }

    /// Counts `n` more problems of `check` that a bounded check found but did not describe.
    pub fn add_unlisted(&mut self, check: C, n: u64) {
        if n == 0 {
            return;
        }
        *self.counts.entry(check).or_default() += n;
        self.unlisted += n;
    }

    /// How many problems `check` found.
    pub fn count(&self, check: C) -> u64 {
        self.counts.get(&check).copied().unwrap_or(0)
    }

    /// All problems, listed or not.
    pub fn total(&self) -> u64 {
        self.problems.len() as u64 + self.unlisted
    }

    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.counts.is_empty()
    }

    /// Adds what another pass found.
    pub fn merge(&mut self, other: Findings<C>) {
        for (c, n) in other.counts {
            *self.counts.entry(c).or_default() += n;
        }
        for p in other.problems {
            if self.problems.len() < MAX_LISTED {
                self.problems.push(p);
            } else {
                self.unlisted += 1;
            }
        }
        self.unlisted += other.unlisted;
    }
}

/// How a check's line in the summary reads.
#[derive(Debug, Clone)]
pub struct Line {
    /// What was checked (`12 entries`, `3 blobs re-hashed`).
    pub what: String,
    /// A status other than the default (`ok`, or `FAILED (n)`), such as `-` for a check
    /// that was not asked for.
    pub status: Option<String>,
}

impl Line {
    /// A line with the default status.
    pub fn of(what: impl Into<String>) -> Line {
        Line {
            what: what.into(),
            status: None,
        }
    }
}

/// The summary table (one line per check: label, status, what) and a `FAIL` line per listed
/// problem (`FAIL entry 7: …`, or `FAIL <check>: …`), then how many more were not listed.
pub fn render<C: Checks>(findings: &Findings<C>, line: impl Fn(C) -> Line) -> String {
    let rows: Vec<(&str, String, String)> = C::ALL
        .iter()
        .map(|&c| {
            let l = line(c);
            let status = match (findings.count(c), l.status) {
                (0, Some(s)) => s,
                (0, None) => "ok".to_owned(),
                (n, _) => format!("FAILED ({n})"),
            };
            (c.label(), status, l.what)
        })
        .collect();
    let label_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let status_w = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, status, what) in rows {
        let _ = writeln!(out, "{label:<label_w$}  {status:<status_w$}  {what}");
    }
    for p in &findings.problems {
        let _ = match p.index {
            Some(i) => writeln!(out, "FAIL entry {i}: {}", p.what),
            None => writeln!(out, "FAIL {}: {}", p.check.label(), p.what),
        };
    }
    if findings.unlisted > 0 {
        let _ = writeln!(out, "… and {} more problems", findings.unlisted);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
    enum T {
        A,
        B,
    }

    impl Checks for T {
        const ALL: &'static [T] = &[T::A, T::B];
        fn label(self) -> &'static str {
            match self {
                T::A => "alpha",
                T::B => "b",
            }
        }
    }

    #[test]
    fn counts_survive_the_list_bound_and_merges() {
        let mut one = Findings::default();
        for i in 0..MAX_LISTED as u64 + 5 {
            one.add(T::A, Some(i), "row differs");
        }
        assert_eq!((one.problems.len(), one.unlisted), (MAX_LISTED, 5));
        let mut two = Findings::default();
        two.add(T::B, None, "signature");
        two.merge(one);
        assert_eq!(two.count(T::A), MAX_LISTED as u64 + 5);
        assert_eq!(two.count(T::B), 1);
        assert_eq!(two.total(), MAX_LISTED as u64 + 6);
        assert_eq!(two.problems.len(), MAX_LISTED);
        assert!(!two.ok() && Findings::<T>::default().ok());
    }

    #[test]
    fn the_summary_and_fail_lines() {
        let mut f = Findings::default();
        f.add(T::B, None, "bad signature");
        f.add(T::A, Some(7), "leaf differs");
        let text = render(&f, |c| match c {
            T::A => Line::of("3 entries"),
            T::B => Line {
                what: "key".into(),
                status: Some("-".into()),
            },
        });
        assert_eq!(
            text,
            "alpha  FAILED (1)  3 entries\n\
             b      FAILED (1)  key\n\
             FAIL b: bad signature\n\
             FAIL entry 7: leaf differs\n"
        );
        let clean = render(&Findings::<T>::default(), |c| Line {
            what: String::new(),
            status: (c == T::B).then(|| "-".into()),
        });
        assert_eq!(clean, "alpha  ok  \nb      -   \n");
    }
}
