//! The Statement of Applicability (ISO/IEC 42001 clause 6.1.3 d): every Annex A control,
//! whether it applies and why, and how far its implementation is evidenced.

use serde::Serialize;

use crate::config::ControlId;
use crate::coverage::{Coverage, Newest, Policies, Status};

/// One row of the Statement of Applicability.
#[derive(Debug, Clone, Serialize)]
pub struct SoaRow {
    /// Annex A control id.
    pub control: &'static str,
    /// Its title.
    pub title: &'static str,
    /// Whether the control is applicable.
    pub applicable: bool,
    /// Why it is included or excluded.
    pub justification: String,
    /// Implementation status from coverage.
    pub implementation: &'static str,
    /// The coverage status behind it.
    pub coverage: Status,
    /// Evidence items recorded for it up to the coverage time.
    pub evidence_count: u64,
    /// The newest item (as `coverage` reports it: index, date, basis, title, URI, age).
    pub newest: Option<Newest>,
}

/// The Statement of Applicability built from coverage of the Annex A controls (computed
/// with totals).
pub fn statement(cov: &Coverage, policies: &Policies) -> Vec<SoaRow> {
    cov.controls
        .iter()
        .filter(|c| c.annex_a)
        .map(|c| {
            let applicable = c.status != Status::NotApplicable;
            let justification = match (&c.justification, policies.included.get(&ControlId(c.id))) {
                (Some(j), _) => j.clone(),
                (None, Some(why)) => why.clone(),
                (None, None) => "applicable: not excluded in [applicability.excluded]".to_owned(),
            };
            SoaRow {
                control: c.id,
                title: c.title,
                applicable,
                justification,
                implementation: match c.status {
                    Status::Fresh => "implemented",
                    Status::Stale => "implemented; evidence stale",
                    Status::Missing => "not evidenced",
                    Status::NotApplicable => "excluded",
                },
                coverage: c.status,
                evidence_count: c.items_total.unwrap_or(0),
                newest: c.newest.clone(),
            }
        })
        .collect()
}

/// The Statement of Applicability as rows of strings (table, CSV, Markdown, `soa.csv`).
pub fn rows(soa: &[SoaRow]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let headers = vec![
        "control",
        "title",
        "applicable",
        "justification",
        "implementation",
        "evidence",
        "newest",
    ];
    let rows = soa
        .iter()
        .map(|r| {
            vec![
                r.control.to_owned(),
                r.title.to_owned(),
                if r.applicable { "yes" } else { "no" }.to_owned(),
                r.justification.clone(),
                r.implementation.to_owned(),
                r.evidence_count.to_string(),
                // One readable cell for people and spreadsheets; JSON keeps the fields.
                r.newest
                    .as_ref()
                    .map(|n| {
                        format!(
                            "{} {} (entry {})",
                            n.date.chars().take(10).collect::<String>(),
                            n.title.as_deref().unwrap_or(&n.uri),
                            n.index
                        )
                    })
                    .unwrap_or_default(),
            ]
        })
        .collect();
    (headers, rows)
}
