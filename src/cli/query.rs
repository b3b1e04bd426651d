//! `evident query`: the evidence mapped to controls or clauses.

use chrono::{DateTime, Utc};

use super::{Ctx, Format, output};
use evident::catalog::Catalog;
use evident::ledger::query::{QueryFilter, QueryRef};
use evident::ledger::reader::Reader;
use evident::ledger::rfc3339;
use evident::when::{parse_since, parse_until};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Show the evidence mapped to one or more controls or clauses. A prefix selects \
everything under it: `A.6` is every A.6.x control, `A.6.2` the life-cycle controls, `9` the \
clauses 9.1 to 9.3.3.\n\n\
Every row says whether it is still `current`: `superseded` when a newer version of the same \
URI was recorded later, `removed` when the artefact was deleted from its source afterwards, \
`removal` for the entry recording that deletion. Coverage and the SoA count only current \
rows; `--current` shows only those.\n\n\
Examples:\n  evident query A.2\n  evident query A.4.3 --current\n  evident query A.6.2.4 --since 2026-01-01 --format json\n  evident query 9.2 9.3 --format csv";

/// Options of `evident query`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Control or clause ids, or prefixes.
    #[arg(required = true, value_name = "ID|PREFIX")]
    pub ids: Vec<String>,
    /// Only evidence collected on or after this date (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// Only evidence collected on or before this date (YYYY-MM-DD, the whole day, or RFC 3339).
    #[arg(long, value_parser = parse_until)]
    pub until: Option<DateTime<Utc>>,
    /// Only the current version of each artefact (what coverage counts): no superseded or
    /// removed versions, no removal records.
    #[arg(long)]
    pub current: bool,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let controls = Catalog::get().select_all(&args.ids)?;
    let state = ctx.state()?;
    let reader = Reader::open(&state)?;
    let filter = QueryFilter {
        controls: controls.clone(),
        since: args.since.map(rfc3339),
        until: args.until.map(rfc3339),
        current_only: args.current,
        ..QueryFilter::default()
    };
    let query = |f: &mut dyn FnMut(QueryRef<'_>) -> anyhow::Result<()>| reader.query(&filter, f);
    let format = ctx.cli.format;
    let mut headers = vec![
        "index",
        "collected_at",
        "kind",
        "state",
        "source",
        "title",
        "uri",
        "controls",
        "sha256",
    ];
    if format == Format::Csv {
        headers.extend(["effective_date", "superseded_by"]);
    }
    // JSON and CSV stream; a table needs every row to size its columns.
    match format {
        Format::Json => return output::json_seq(|emit| query(&mut |q| emit(&q.owned()))),
        Format::Csv => {
            return output::csv_seq(&headers, |emit| query(&mut |q| emit(&cells(&q, format))));
        }
        _ => {}
    }
    let mut table = Vec::new();
    query(&mut |q| {
        table.push(cells(&q, format));
        Ok(())
    })?;
    if table.is_empty() && format == Format::Table {
        let what = if args.current {
            "current evidence"
        } else {
            "evidence recorded"
        };
        eprintln!("no {what} for {}", controls.join(", "));
        return Ok(());
    }
    output::rows_hiding(
        format,
        &headers,
        &table,
        &["sha256", "source", "kind", "collected_at", "controls"],
    )
}

/// A row's cells: CSV also has the whole digest, the effective date and what superseded it.
fn cells(q: &QueryRef<'_>, format: Format) -> Vec<String> {
    let mut v = vec![
        q.index.to_string(),
        q.collected_at.to_owned(),
        q.kind.to_owned(),
        q.state.as_str().to_owned(),
        q.source.to_owned(),
        q.title.unwrap_or_default().to_owned(),
        q.uri.to_owned(),
        q.control_list().collect::<Vec<_>>().join(" "),
    ];
    let sha256 = evident::ledger::leaf::hex(q.sha256);
    if format == Format::Csv {
        v.push(sha256);
        v.push(q.effective_date.unwrap_or_default().to_owned());
        v.push(q.superseded_by.map(|i| i.to_string()).unwrap_or_default());
    } else {
        v.push(sha256[..12.min(sha256.len())].to_owned());
    }
    v
}
