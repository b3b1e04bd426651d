//! `evident coverage`: readiness per control, usable as a CI gate.

use chrono::{DateTime, Utc};

use super::{Ctx, Exit, Format, output};
use evident::catalog::Catalog;
use evident::coverage::{self, Coverage, Status};
use evident::ledger::reader::{Counting, Reader};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Show, per Annex A control and clause 4-10, whether the evidence is fresh, stale, \
missing, or not applicable (excluded in the Statement of Applicability), with the newest item, \
how many items fall within the control's maximum age, and why.\n\n\
An item's date is its effective date when it states one (front matter, sidecar), else the \
source system's timestamp, else the time Evident recorded it; the `basis` column says which. \
Maximum ages come from the catalogue (policies yearly, operation and monitoring monthly, \
verification and deployment per quarter; `evident coverage --format json` shows each) and \
are overridden with `[controls.\"A.6.2.6\"] max_age = \"30d\", min_items = 2`.\n\n\
As a gate in a pipeline, `--fail-on stale` exits 4 when any control in scope is stale or \
missing, `--fail-on missing` only when one is missing.\n\n\
Examples:\n  evident coverage\n  evident coverage --controls A.6 --fail-on stale\n  evident coverage --at 2026-06-30 --format csv";

/// What makes `coverage` fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Any control stale or missing, or any gap in a lifecycle chain ([[expect]]).
    Stale,
    /// Any control missing.
    Missing,
}

/// Options of `evident coverage`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Coverage as of this date (YYYY-MM-DD means the end of that day, or RFC 3339);
    /// default now. Evidence recorded later is not counted.
    #[arg(long, value_parser = evident::when::parse_at)]
    pub at: Option<DateTime<Utc>>,
    /// Also count versions superseded by a newer one of the same URI, or removed from
    /// their source, by that time (by default only current evidence counts).
    #[arg(long)]
    pub include_history: bool,
    /// Only these controls or clauses (ids or prefixes, comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub controls: Vec<String>,
    /// Exit 4 when a control in scope is stale or missing (`stale`), or missing (`missing`).
    #[arg(long, value_enum, value_name = "STATUS")]
    pub fail_on: Option<FailOn>,
}

/// The controls selected by `--controls`, or all of them.
pub fn selected(ids: &[String]) -> anyhow::Result<Vec<&'static str>> {
    let catalog = Catalog::get();
    Ok(if ids.is_empty() {
        catalog.all().map(|r| r.id.as_str()).collect()
    } else {
        catalog.select_all(ids)?
    })
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let ids = selected(&args.controls)?;
    let policies = ctx.policies()?;
    let state = ctx.state()?;
    let reader = Reader::open(&state)?;
    ctx.warn_unconfigured_sources(&reader)?;
    let at = args.at.unwrap_or_else(Utc::now);
    let rules = match ctx.optional_config()? {
        Some(c) => evident::lineage::Rules::new(&c.links, &c.expect),
        None => evident::lineage::Rules::new(&[], &[]),
    };
    let blobs = state.blobs();
    let cov = reader.snapshot(|r| {
        coverage::compute(
            r,
            &policies,
            &ids,
            at,
            &Counting::all(false).with_history(args.include_history),
        )?
        .with_gaps(r, &blobs, &rules, r.size()?)?
        .with_erasures(r, &blobs)
    })?;
    print(ctx.cli.format, &cov)?;
    let failing: Vec<&str> = cov
        .controls
        .iter()
        .filter(|c| match args.fail_on {
            Some(FailOn::Stale) => matches!(c.status, Status::Stale | Status::Missing),
            Some(FailOn::Missing) => c.status == Status::Missing,
            None => false,
        })
        .map(|c| c.id)
        .collect();
    if args.fail_on == Some(FailOn::Stale) && !cov.violations.is_empty() {
        return Err(Exit {
            code: 4,
            message: format!(
                "{} gap(s) in lifecycle chains ([[expect]]): entries {}",
                cov.violations.len(),
                cov.violations
                    .iter()
                    .map(|v| v.index.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
        .into());
    }
    if !failing.is_empty() {
        return Err(Exit {
            code: 4,
            message: format!(
                "{} control(s) not ready: {}",
                failing.len(),
                failing.join(", ")
            ),
        }
        .into());
    }
    Ok(())
}

fn print(format: Format, cov: &Coverage) -> anyhow::Result<()> {
    if format == Format::Json {
        return output::json(cov);
    }
    let (headers, rows) = coverage::rows(cov, format == Format::Csv);
    output::rows_hiding(
        format,
        &headers,
        &rows,
        &[
            "basis",
            "index",
            "min_items",
            "max_age",
            "in_window",
            "newest",
        ],
    )?;
    if format == Format::Table {
        println!(
            "as of {}: {} fresh, {} stale, {} missing, {} not applicable",
            cov.at,
            cov.count(Status::Fresh),
            cov.count(Status::Stale),
            cov.count(Status::Missing),
            cov.count(Status::NotApplicable)
        );
        if !cov.violations.is_empty() {
            println!(
                "\n{} gap(s) in lifecycle chains ([[expect]]; `evident trace INDEX` shows each chain):",
                cov.violations.len()
            );
            output::rows_hiding(
                format,
                &["expectation", "controls", "index", "title", "links to"],
                &cov.violations
                    .iter()
                    .map(|v| {
                        vec![
                            v.expectation.clone(),
                            v.controls.join(" "),
                            v.index.to_string(),
                            v.title.clone(),
                            if v.linked.is_empty() {
                                "nothing".to_owned()
                            } else {
                                v.linked
                                    .iter()
                                    .map(u64::to_string)
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            },
                        ]
                    })
                    .collect::<Vec<_>>(),
                &["links to"],
            )?;
        }
    }
    Ok(())
}
