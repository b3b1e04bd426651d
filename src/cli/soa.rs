//! `evident soa`: the Statement of Applicability.

use chrono::{DateTime, Utc};

use super::{Ctx, Format, output};
use evident::catalog::Catalog;
use evident::coverage;
use evident::ledger::reader::{Counting, Reader};
use evident::soa;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Print the Statement of Applicability (ISO/IEC 42001 clause 6.1.3): every Annex A \
control, whether it is applicable, the justification, the implementation status from coverage \
(implemented, implemented with stale evidence, not evidenced, excluded), how many evidence items \
the ledger holds for it and the newest one.\n\n\
Exclusions come from the config:\n  [applicability.excluded]\n  \"A.10.4\" = \"We provide no AI products to customers.\"\n\
and optional reasons for inclusion from [applicability.included].\n\n\
Examples:\n  evident soa\n  evident soa --format markdown > soa.md\n  evident soa --format csv";

/// Options of `evident soa`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// As of this date (YYYY-MM-DD, the end of that day, or RFC 3339); default now.
    #[arg(long, value_parser = evident::when::parse_at)]
    pub at: Option<DateTime<Utc>>,
    /// Also count versions superseded by a newer one of the same URI, or removed from
    /// their source, by that time (by default only current evidence counts).
    #[arg(long)]
    pub include_history: bool,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let policies = ctx.policies()?;
    let state = ctx.state()?;
    let reader = Reader::open(&state)?;
    ctx.warn_unconfigured_sources(&reader)?;
    let ids: Vec<&'static str> = Catalog::get()
        .controls
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    let at = args.at.unwrap_or_else(Utc::now);
    let cov = reader.snapshot(|r| {
        coverage::compute(
            r,
            &policies,
            &ids,
            at,
            &Counting::all(true).with_history(args.include_history),
        )
    })?;
    let statement = soa::statement(&cov, &policies);
    if ctx.cli.format == Format::Json {
        return output::json(&statement);
    }
    let (headers, rows) = soa::rows(&statement);
    output::rows_hiding(
        ctx.cli.format,
        &headers,
        &rows,
        &["newest", "evidence", "applicable"],
    )
}
