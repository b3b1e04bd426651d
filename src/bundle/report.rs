//! The bundle's human report: one self-contained HTML page (inline styles, no scripts, no
//! external fonts or images), a summary, then per control its status and evidence table
//! with links to the entries and blobs in the bundle.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use uuid::Uuid;

use super::sampling::Carried;
use super::{blob_path, entry_path, population_path, proof_path, sample_path};
use crate::coverage::{Coverage, Status, format_days};
use crate::ledger::reader::EntryRow;
use crate::sampling::{Population, Sample};

/// What the bundle holds for one control.
#[derive(Debug, Clone, Default)]
pub struct ControlEvidence {
    /// The newest entries (bounded), each with whether its content is in the bundle.
    pub rows: VecDeque<(EntryRow, bool)>,
    /// All entries in scope for the control.
    pub total: u64,
    /// OSCAL observation ids of those entries.
    pub observations: Vec<Uuid>,
}

/// Everything the report shows.
pub struct ReportInput<'a> {
    /// Log origin.
    pub origin: &'a str,
    /// Checkpoint size (the ledger size the bundle covers).
    pub checkpoint_size: u64,
    /// Checkpoint root, base64.
    pub root: &'a str,
    /// Coverage time.
    pub as_of: &'a str,
    /// Window start.
    pub since: Option<String>,
    /// Window end (exclusive).
    pub until: Option<String>,
    /// Coverage of the controls in scope.
    pub coverage: &'a Coverage,
    /// Evidence per control.
    pub evidence: &'a BTreeMap<String, ControlEvidence>,
    /// Entries in the bundle.
    pub entries: u64,
    /// Blobs in the bundle.
    pub blobs: u64,
    /// Populations the bundle carries.
    pub populations: &'a [Carried<Population>],
    /// Samples the bundle carries.
    pub samples: &'a [Carried<Sample>],
    /// Erased content, by entry.
    pub erased: &'a BTreeMap<u64, crate::ledger::erasures::Erasure>,
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d232a}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin:2rem 0 .3rem}\
.meta{color:#555}.meta code{font-size:.85em}\
.cards{display:flex;gap:.8rem;flex-wrap:wrap;margin:1.2rem 0}\
.card{border-radius:8px;padding:.7rem 1.1rem;min-width:8rem;border:1px solid #ccd}\
.card b{display:block;font-size:1.8rem}\
.fresh{background:#e3f6e8;border-color:#7cc68f}.stale{background:#fff4d6;border-color:#e0b440}\
.missing{background:#fde4e4;border-color:#e07b7b}.not-applicable{background:#eceef1;border-color:#aab}\
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e5e8;vertical-align:top}\
th{background:#f5f6f8;font-weight:600}td.n{text-align:right}code{font-family:ui-monospace,monospace}\
.status{display:inline-block;border-radius:4px;padding:0 .45rem;border:1px solid;font-weight:600;font-size:.85rem}\
section.control{border-top:1px solid #dde;margin-top:1.2rem}p.why{margin:.2rem 0;color:#333}";

/// Renders the report.
pub fn render(r: &ReportInput<'_>) -> String {
    let cov = r.coverage;
    let mut h = String::with_capacity(64 * 1024);
    let window = match (&r.since, &r.until) {
        (None, None) => "all entries".to_owned(),
        (Some(s), None) => format!("from {s}"),
        (None, Some(u)) => format!("until before {u}"),
        (Some(s), Some(u)) => format!("from {s} until before {u}"),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>ISO/IEC 42001 evidence report: {origin}</title><style>{STYLE}</style></head><body>\n\
         <h1>ISO/IEC 42001 evidence report</h1>\n\
         <p class=\"meta\">Ledger <code>{origin}</code> · checkpoint of size <b id=\"ledger-size\">{size}</b>, root <code>{root}</code> · \
         window: {window} · coverage as of <b id=\"as-of\">{as_of}</b>, counting the {entries} entries in this bundle ({blobs} blobs)</p>\n",
        origin = esc(r.origin),
        size = r.checkpoint_size,
        root = esc(r.root),
        window = esc(&window),
        as_of = esc(r.as_of),
        entries = r.entries,
        blobs = r.blobs,
    );
    h.push_str("<div class=\"cards\" id=\"summary\">");
    for s in [
        Status::Fresh,
        Status::Stale,
        Status::Missing,
        Status::NotApplicable,
    ] {
        let _ = write!(
            h,
            "<div class=\"card {c}\" data-status=\"{c}\"><b>{n}</b>{label}</div>",
            c = s.as_str(),
            n = cov.count(s),
            label = s.as_str().replace('-', " "),
        );
    }
    h.push_str("</div>\n<p>Every figure here can be checked: <code>evident verify BUNDLE --key VKEY</code>, or by hand as README.txt explains. Links lead to the entries and blobs in this bundle.</p>\n");
    gaps(&mut h, cov);
    sampling(&mut h, r);
    h.push_str("<table id=\"overview\"><thead><tr><th>Control</th><th>Title</th><th>Status</th><th>Newest</th><th>In window</th><th>Max age</th></tr></thead><tbody>\n");
    for c in &cov.controls {
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#c-{id}\">{id}</a></td><td>{title}</td><td><span class=\"status {s}\">{s}</span></td><td>{newest}</td><td class=\"n\">{n}</td><td>{age}</td></tr>",
            id = esc(c.id),
            title = esc(c.title),
            s = c.status.as_str(),
            newest = c
                .newest
                .as_ref()
                .map(|n| esc(&n.date.chars().take(10).collect::<String>()))
                .unwrap_or_default(),
            n = c.items_in_window,
            age = format_days(c.max_age_days),
        );
    }
    h.push_str("</tbody></table>\n");
    for c in &cov.controls {
        let _ = writeln!(
            h,
            "<section class=\"control\" id=\"c-{id}\" data-control=\"{id}\" data-status=\"{s}\">\
             <h2>{id} {title} <span class=\"status {s}\">{s}</span></h2><p class=\"why\">{why}</p>\
             <p class=\"meta\">max age {age}, at least {min} item(s) · {total} {counted} up to the coverage time</p>",
            id = esc(c.id),
            title = esc(c.title),
            s = c.status.as_str(),
            why = esc(&c.why),
            age = format_days(c.max_age_days),
            min = c.min_items,
            total = c.items_total.unwrap_or(0),
            counted = if cov.include_history {
                "item(s) recorded, superseded and removed versions included"
            } else {
                "current item(s)"
            },
        );
        evidence_table(&mut h, r.evidence.get(c.id), r.erased);
        h.push_str("</section>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// The lifecycle chains' gaps (`[[expect]]`), each with its entry.
fn gaps(h: &mut String, cov: &Coverage) {
    if cov.violations.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2 id=\"gaps\">Gaps in lifecycle chains</h2>\n<p>{} entr{} lack a link the configured expectations require; each is a finding. <code>evident trace INDEX</code> shows an entry's chain.</p>\n\
         <table id=\"gap-list\"><thead><tr><th>Expectation</th><th>Controls</th><th>Entry</th><th>Title</th><th>Links to</th></tr></thead><tbody>",
        cov.violations.len(),
        if cov.violations.len() == 1 {
            "y"
        } else {
            "ies"
        }
    );
    for v in &cov.violations {
        let linked = if v.linked.is_empty() {
            "nothing".to_owned()
        } else {
            v.linked
                .iter()
                .map(|i| format!("<a href=\"../{}\">{i}</a>", entry_path(*i)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            h,
            "<tr class=\"gap\"><td>{name}</td><td>{controls}</td><td><a href=\"../{entry}\">{idx}</a> (<a href=\"../{proof}\">proof</a>)</td><td>{title}</td><td>{linked}</td></tr>",
            name = esc(&v.expectation),
            controls = esc(&v.controls.join(" ")),
            entry = entry_path(v.index),
            proof = proof_path(v.index),
            idx = v.index,
            title = esc(&v.title),
        );
    }
    h.push_str("</tbody></table>\n");
}

/// The populations and samples, each sampled item linked to its entry, proof and content.
fn sampling(h: &mut String, r: &ReportInput<'_>) {
    if r.populations.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"sampling\">Populations and samples</h2>\n<p>Each population lists every entry of the log, up to its checkpoint, that its filter selects; this bundle carries all those leaves, so <code>evident verify</code> re-runs the filter and must find the same list. Each sample was drawn by a keyed hash of its seed and is redrawn by <code>verify</code> (docs/sampling.md).</p>\n");
    for p in r.populations {
        let size = p.manifest.size().unwrap_or(0);
        let _ = writeln!(
            h,
            "<section class=\"population\" id=\"p-{id}\"><p><b>Population <code>{short}</code></b>: {n} entries, evidence dated {what}, drawn from checkpoint {size} (<a href=\"../{path}\">manifest</a>)</p>",
            id = esc(&p.id),
            short = esc(&p.id[..12.min(p.id.len())]),
            n = p.manifest.items.len(),
            what = esc(&p.manifest.describe()),
            path = esc(&population_path(&p.id)),
        );
        for s in r
            .samples
            .iter()
            .filter(|s| s.manifest.population.id == p.id)
        {
            let seed = match s.manifest.seed.kind.as_str() {
                "checkpoint" => format!(
                    "the root of the first checkpoint signed after the population (entry {}) was recorded: <code>{}</code>",
                    esc(&s.manifest.population.entry),
                    esc(&s.manifest.seed.value)
                ),
                _ => format!(
                    "the auditor's text <code>{}</code>",
                    esc(&s.manifest.seed.value)
                ),
            };
            let _ = writeln!(
                h,
                "<p id=\"s-{id}\">Sample <code>{short}</code> (<a href=\"../{path}\">manifest</a>): {n} of {total}, seeded by {seed}</p>\n\
                 <table class=\"sample\"><thead><tr><th>Draw</th><th>Entry</th><th>Title</th><th>Kind</th><th>Source</th><th>Date</th><th>Content</th></tr></thead><tbody>",
                id = esc(&s.id),
                short = esc(&s.id[..12.min(s.id.len())]),
                path = esc(&sample_path(&s.id)),
                n = s.manifest.items.len(),
                total = p.manifest.items.len(),
            );
            for (k, item) in s.manifest.items.iter().enumerate() {
                let _ = writeln!(
                    h,
                    "<tr><td class=\"n\">{draw}</td><td><a href=\"../{entry}\">{idx}</a> (<a href=\"../{proof}\">proof</a>)</td><td>{title}</td><td>{kind}</td><td>{source}</td><td>{date}</td><td><a href=\"../{blob}\">blob</a></td></tr>",
                    draw = k + 1,
                    entry = entry_path(item.index()),
                    proof = proof_path(item.index()),
                    idx = esc(&item.index),
                    title = esc(item.title.as_deref().unwrap_or(&item.uri)),
                    kind = esc(&item.kind),
                    source = esc(&item.source),
                    date = esc(&item.date),
                    blob = esc(&blob_path(&item.sha256)),
                );
            }
            h.push_str("</tbody></table>\n");
        }
        h.push_str("</section>\n");
    }
}

/// A control's newest evidence as a table, or that the window holds none.
fn evidence_table(
    h: &mut String,
    evidence: Option<&ControlEvidence>,
    erased: &BTreeMap<u64, crate::ledger::erasures::Erasure>,
) {
    match evidence {
        Some(e) if !e.rows.is_empty() => {
            h.push_str("<table><thead><tr><th>Entry</th><th>Title</th><th>Kind</th><th>Source</th><th>Collected</th><th>Effective / source date</th><th>SHA-256</th><th>Content</th></tr></thead><tbody>\n");
            for (row, in_bundle) in e.rows.iter().rev() {
                let date = row
                    .effective_date
                    .clone()
                    .or_else(|| row.source_updated_at.clone())
                    .unwrap_or_default();
                let content = if *in_bundle {
                    format!("<a href=\"../{}\">blob</a>", esc(&blob_path(&row.sha256)))
                } else if let Some(e) = erased.get(&row.index) {
                    esc(&e.describe())
                } else {
                    "not in bundle (see index.csv)".to_owned()
                };
                let _ = writeln!(
                    h,
                    "<tr><td><a href=\"../{entry}\">{idx}</a> (<a href=\"../{proof}\">proof</a>)</td><td>{title}</td><td>{kind}</td><td>{source}</td><td>{collected}</td><td>{date}</td><td><code title=\"{sha}\">{short}</code></td><td>{content}</td></tr>",
                    entry = entry_path(row.index),
                    proof = proof_path(row.index),
                    idx = row.index,
                    title = esc(row.title.as_deref().unwrap_or(&row.uri)),
                    kind = esc(&row.kind),
                    source = esc(&row.source),
                    collected = esc(&row.collected_at),
                    date = esc(&date),
                    sha = esc(&row.sha256),
                    short = esc(&row.sha256.chars().take(12).collect::<String>()),
                );
            }
            h.push_str("</tbody></table>\n");
            if e.total > e.rows.len() as u64 {
                let _ = writeln!(
                    h,
                    "<p class=\"meta\">The newest {} of {} entries are listed; index.csv lists all.</p>",
                    e.rows.len(),
                    e.total
                );
            }
        }
        _ => h.push_str("<p class=\"meta\">No evidence in this bundle's window.</p>\n"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
