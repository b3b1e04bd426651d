//! Readiness per control: is there evidence, is it fresh enough, is the control in scope?
//!
//! Each control or clause has a maximum evidence age and a minimum count (catalogue defaults,
//! `[controls."…"]` overrides). At a given time a control is `not-applicable` when the
//! Statement of Applicability excludes it, `missing` when nothing current is recorded for it,
//! `stale` when fewer than `min_items` items fall within `max_age`, else `fresh`. Only current
//! evidence counts: a version superseded by a newer one of the same URI, or removed from its
//! source, by the coverage time no longer does (unless history is asked for). The dates
//! come from the `evidence` index (see `ledger/evidence.rs`), so this is a few index range
//! scans per control however large the ledger.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::config::{Config, ControlId, ControlPolicy};
use crate::ledger::LedgerError;
use crate::ledger::evidence::DateBasis;
use crate::ledger::reader::{Counting, Reader};
use crate::ledger::rfc3339;

/// A control's coverage status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Enough evidence within the maximum age.
    Fresh,
    /// Evidence exists, but too little of it is recent enough.
    Stale,
    /// No current evidence (none recorded, or all of it superseded or removed).
    Missing,
    /// Excluded in the Statement of Applicability.
    NotApplicable,
}

impl Status {
    /// Every status, in the order summaries list them.
    pub const ALL: [Status; 4] = [
        Status::Fresh,
        Status::Stale,
        Status::Missing,
        Status::NotApplicable,
    ];

    /// The printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Fresh => "fresh",
            Status::Stale => "stale",
            Status::Missing => "missing",
            Status::NotApplicable => "not-applicable",
        }
    }
}

/// The scope and freshness settings coverage is computed with.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    /// `[controls."…"]` overrides.
    pub overrides: BTreeMap<ControlId, ControlPolicy>,
    /// `[applicability.excluded]`: id → justification.
    pub excluded: BTreeMap<ControlId, String>,
    /// `[applicability.included]`: id → reason for inclusion.
    pub included: BTreeMap<ControlId, String>,
}

impl Policies {
    /// The settings of a config.
    pub fn from_config(cfg: &Config) -> Self {
        Policies {
            overrides: cfg.controls.clone(),
            excluded: cfg.applicability.excluded.clone(),
            included: cfg.applicability.included.clone(),
        }
    }
}

/// The newest evidence for a control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Newest {
    /// Entry index.
    pub index: u64,
    /// The date that counts (RFC 3339 UTC).
    pub date: String,
    /// Where that date comes from.
    pub basis: DateBasis,
    /// Title, when the entry has one.
    pub title: Option<String>,
    /// Artefact URI.
    pub uri: String,
    /// Age in whole days at the coverage time.
    pub age_days: i64,
    /// When its content was erased (`evident erase`): "erased on D by entry E: REASON".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased: Option<String>,
}

/// One control's readiness.
#[derive(Debug, Clone, Serialize)]
pub struct ControlCoverage {
    /// Control or clause id.
    pub id: &'static str,
    /// Its title.
    pub title: &'static str,
    /// Annex A control (true) or management-system clause (false).
    pub annex_a: bool,
    /// Status.
    pub status: Status,
    /// Maximum evidence age in days.
    pub max_age_days: u64,
    /// Items needed within the maximum age.
    pub min_items: u32,
    /// Where the two settings come from: `config` or `catalogue`.
    pub policy_from: &'static str,
    /// Items whose date falls within the maximum age.
    pub items_in_window: u64,
    /// All items up to the coverage time, when computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_total: Option<u64>,
    /// The newest item.
    pub newest: Option<Newest>,
    /// Why the status is what it is.
    pub why: String,
    /// The exclusion's justification, for `not-applicable`.
    pub justification: Option<String>,
}

/// Readiness of a set of controls at one time.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// The time coverage was computed for (RFC 3339 UTC).
    pub at: String,
    /// Whether superseded and removed versions were counted (`--include-history`); by
    /// default only current evidence counts.
    pub include_history: bool,
    /// Per control, in catalogue order.
    pub controls: Vec<ControlCoverage>,
    /// Gaps in lifecycle chains (`[[expect]]`), when asked for ([`Coverage::with_gaps`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<crate::lineage::graph::Violation>,
}

impl Coverage {
    /// Marks each control's newest item whose content was erased, in its `why` too: the
    /// evidence existed and was verified, its content is gone.
    pub fn with_erasures(
        mut self,
        reader: &Reader,
        blobs: &crate::ledger::blobs::BlobStore,
    ) -> Result<Self, LedgerError> {
        for c in &mut self.controls {
            if let Some(n) = &mut c.newest
                && let Some(e) = crate::ledger::erasures::of(reader, blobs, n.index)?
            {
                let said = e.describe();
                c.why = format!("{}; the newest item's content was {said}", c.why);
                n.erased = Some(said);
            }
        }
        Ok(self)
    }

    /// Adds the gaps the expectations find in the ledger's first `size` entries, keeping
    /// those of the controls in scope (and those naming no control).
    pub fn with_gaps(
        mut self,
        reader: &Reader,
        blobs: &crate::ledger::blobs::BlobStore,
        rules: &crate::lineage::Rules,
        size: u64,
    ) -> Result<Self, LedgerError> {
        if rules.expect.is_empty() {
            return Ok(self);
        }
        let graph = crate::lineage::graph::Graph::build(reader, blobs, rules, size)?;
        let ids: std::collections::HashSet<&str> = self.controls.iter().map(|c| c.id).collect();
        self.violations = graph
            .violations(rules)
            .into_iter()
            .filter(|v| {
                v.controls.is_empty() || v.controls.iter().any(|c| ids.contains(c.as_str()))
            })
            .collect();
        Ok(self)
    }

    /// How many controls have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.controls.iter().filter(|c| c.status == status).count()
    }
}

/// Coverage of every control and clause now, in one read snapshot (the API's status and
/// metrics, the dashboard, the alerts); `totals` also counts every item (the SoA).
pub fn all_now(
    reader: &Reader,
    policies: &Policies,
    totals: bool,
) -> Result<Coverage, LedgerError> {
    let ids: Vec<&'static str> = Catalog::get().all().map(|c| c.id.as_str()).collect();
    reader.snapshot(|r| compute(r, policies, &ids, Utc::now(), &Counting::all(totals)))
}

/// Computes coverage of `ids` (catalogue ids, in catalogue order) at `at`, counting the
/// entries `counting` admits. Callers run it inside [`Reader::snapshot`], so every control
/// is judged on the same ledger state.
pub fn compute(
    reader: &Reader,
    policies: &Policies,
    ids: &[&'static str],
    at: DateTime<Utc>,
    counting: &Counting,
) -> Result<Coverage, LedgerError> {
    let catalog = Catalog::get();
    let at_s = rfc3339(at);
    // With nothing superseded in scope, every version is current: the same counts without
    // probing `superseded` for every row in a window.
    let probe = !counting.history && reader.any_superseded(counting.below, &at_s)?;
    let scan = counting.clone().with_history(!probe);
    {
        let mut controls = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some(req) = catalog.find(id) else {
                continue;
            };
            let rule = catalog.freshness(id);
            let over = policies.overrides.get(&ControlId(id));
            let max_age = over.and_then(|o| o.max_age).unwrap_or(rule.max_age).0;
            let min_items = over.and_then(|o| o.min_items).unwrap_or(rule.min_items);
            let max_age_days = max_age.as_secs() / 86_400;
            // An absurd max_age ("99999999999d") means "any age", not an overflow.
            let from = chrono::Duration::from_std(max_age)
                .ok()
                .and_then(|d| at.checked_sub_signed(d))
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            let from_s = rfc3339(from);
            let stats = reader.evidence_stats(id, &from_s, &at_s, &scan)?;
            let newest = match stats.newest {
                Some((index, date, basis)) => {
                    let row = reader.entry(index)?;
                    let age_days = DateTime::parse_from_rfc3339(&date)
                        .map(|d| (at - d.with_timezone(&Utc)).num_days())
                        .unwrap_or(0);
                    Some(Newest {
                        index,
                        date,
                        basis: DateBasis::parse(&basis).unwrap_or(DateBasis::Collected),
                        title: row.as_ref().and_then(|r| r.title.clone()),
                        uri: row.map(|r| r.uri).unwrap_or_default(),
                        age_days,
                        erased: None,
                    })
                }
                None => None,
            };
            let justification = policies.excluded.get(&ControlId(id)).cloned();
            let age = format_days(max_age_days);
            let (status, why) = if let Some(j) = &justification {
                (Status::NotApplicable, format!("excluded: {j}"))
            } else if let Some(n) = &newest {
                if stats.in_window >= u64::from(min_items) {
                    (
                        Status::Fresh,
                        format!(
                            "{} in the last {age} (needs {min_items})",
                            items(stats.in_window)
                        ),
                    )
                } else if stats.in_window == 0 {
                    (
                        Status::Stale,
                        format!(
                            "newest evidence is {} days old ({} date {}), older than {age}",
                            n.age_days,
                            n.basis.as_str(),
                            n.date.chars().take(10).collect::<String>()
                        ),
                    )
                } else {
                    (
                        Status::Stale,
                        format!(
                            "only {} in the last {age}, needs {min_items}",
                            items(stats.in_window)
                        ),
                    )
                }
            } else if !probe {
                (Status::Missing, "no evidence recorded".to_owned())
            } else {
                // Say when there was evidence once: the fix is new evidence, not a collector.
                let past = reader.evidence_stats(
                    id,
                    &from_s,
                    &at_s,
                    &counting.clone().with_history(true),
                )?;
                match past.newest {
                    Some((index, ..)) => (
                        Status::Missing,
                        format!(
                            "no current evidence: every item was superseded or removed \
                             (newest entry {index}; `--include-history` counts them)"
                        ),
                    ),
                    None => (Status::Missing, "no evidence recorded".to_owned()),
                }
            };
            controls.push(ControlCoverage {
                id,
                title: &req.title,
                annex_a: req.is_annex_a(),
                status,
                max_age_days,
                min_items,
                policy_from: if over.is_some() {
                    "config"
                } else {
                    "catalogue"
                },
                items_in_window: stats.in_window,
                items_total: stats.total,
                newest,
                why,
                justification,
            });
        }
        Ok(Coverage {
            at: at_s.clone(),
            include_history: counting.history,
            controls,
            violations: Vec::new(),
        })
    }
}

/// The rows of `coverage.csv` and the table: one per control.
pub fn rows(cov: &Coverage, full: bool) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let headers = vec![
        "control",
        "status",
        "newest",
        "basis",
        "index",
        "title",
        "in_window",
        "max_age",
        "min_items",
        "why",
    ];
    let rows = cov
        .controls
        .iter()
        .map(|c| {
            let n = c.newest.as_ref();
            let date = n.map(|n| {
                if full {
                    n.date.clone()
                } else {
                    n.date.chars().take(10).collect()
                }
            });
            vec![
                c.id.to_owned(),
                c.status.as_str().to_owned(),
                date.unwrap_or_default(),
                n.map(|n| n.basis.as_str().to_owned()).unwrap_or_default(),
                n.map(|n| n.index.to_string()).unwrap_or_default(),
                n.and_then(|n| n.title.clone()).unwrap_or_default(),
                c.items_in_window.to_string(),
                format_days(c.max_age_days),
                c.min_items.to_string(),
                c.why.clone(),
            ]
        })
        .collect();
    (headers, rows)
}

fn items(n: u64) -> String {
    if n == 1 {
        "1 item".to_owned()
    } else {
        format!("{n} items")
    }
}

/// `30d`, `1y` style ages for messages.
pub fn format_days(days: u64) -> String {
    if days > 0 && days.is_multiple_of(365) {
        format!("{}y", days / 365)
    } else {
        format!("{days}d")
    }
}
