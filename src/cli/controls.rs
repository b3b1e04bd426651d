//! `evident controls`: the catalogue.

use super::{Ctx, Format, output};
use evident::catalog::Catalog;

/// The long help of this command.
pub const LONG_ABOUT: &str = "List the ISO/IEC 42001:2023 catalogue: the 38 Annex A controls and the clauses \
4 to 10, with typical evidence kinds. `--format json` adds summaries, source classes and the \
crosswalks to the NIST AI RMF, the EU AI Act and ISO/IEC 27001:2022, each with its basis.\n\n\
Examples:\n  evident controls\n  evident controls A.6 9\n  evident controls A.6.2.4 --format json | jq '.[0].crosswalks'";

/// Options of `evident controls`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only these ids or prefixes (e.g. `A.6`, `9`).
    pub ids: Vec<String>,
    /// Only Annex A controls (no clauses).
    #[arg(long)]
    pub annex_a: bool,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let cat = Catalog::get();
    let wanted = if args.ids.is_empty() {
        None
    } else {
        Some(cat.select_all(&args.ids)?)
    };
    let items: Vec<_> = cat
        .all()
        .filter(|r| wanted.as_ref().is_none_or(|w| w.contains(&r.id.as_str())))
        .filter(|r| !args.annex_a || r.is_annex_a())
        .collect();
    match ctx.cli.format {
        Format::Json => output::json(&items),
        f => output::rows_hiding(
            f,
            &["id", "title", "group", "evidence kinds"],
            &items
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.title.clone(),
                        r.group_id().to_owned(),
                        r.evidence_kinds
                            .join(if f == Format::Csv { ";" } else { ", " }),
                    ]
                })
                .collect::<Vec<_>>(),
            &["group"],
        ),
    }
}
