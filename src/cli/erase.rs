//! `evident erase`: remove an entry's content (a data subject's erasure request, a
//! retention limit) while every proof stays valid.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Ctx, Exit, Format, output};
use evident::erasure::{self, Target};
use evident::ledger::reader::Reader;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Erase the content (and, for v2 leaves, the title and URI) of entries: a data subject's erasure request (GDPR art. 17) or a \
retention limit. The leaf stays (it holds only the content's SHA-256), so the tree, every \
inclusion and consistency proof, every signed checkpoint and bundle stay valid; the bytes go \
from the blob store, its outbox and, with [blobs] on a bucket, the object.\n\n\
First a signed erasure entry is appended for each (kind `erasure`, content: the entry, its \
leaf hash and digest, when, who, and --reason) and a checkpoint is signed over them; only \
then is content removed. `evident verify`, `show`, exports and their `verify` then report \
\"erased on D by entry E: REASON\" instead of a missing blob. Name the request in --reason, \
not the person.\n\n\
Content is stored once per digest: when other entries hold the same bytes, erase names them \
and stops, unless --with-copies erases them all. Erase the document at its source too, or the \
next collection records it again.\n\n\
Titles and URIs: a v1 leaf holds them, so they stay. With [ledger] leaf_version = 2 a leaf \
commits to them by a salted hash instead, and erase removes them too (the entry then shows \
evident:artefact:<hex>); docs/erasure.md.\n\n\
--retention erases what the [retention] rules make due; --replay removes again what the log \
records as erased when an older backup or bucket put it back.\n\n\
Examples:\n  evident erase 1042 --reason \"GDPR art. 17 request REQ-2026-114\" --dry-run\n  \
evident erase 1042 1043 --reason \"GDPR art. 17 request REQ-2026-114\"\n  \
evident erase --retention --dry-run --at 2027-12-31\n  \
evident erase --replay";

/// Options of `evident erase`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The entries whose content to erase (indexes, as `query` shows them).
    #[arg(
        required_unless_present_any = ["retention", "replay"],
        conflicts_with_all = ["retention", "replay"]
    )]
    pub entries: Vec<u64>,
    /// Why: the request or rule (recorded in the erasure entry).
    #[arg(long, required_unless_present_any = ["retention", "replay"])]
    pub reason: Option<String>,
    /// Also erase the other entries that hold the same bytes (and, for v2 leaves, the other
    /// versions of the same document, which hold its title and URI).
    #[arg(long)]
    pub with_copies: bool,
    /// Apply the [retention] rules instead: erase what they make due.
    #[arg(long)]
    pub retention: bool,
    /// Remove again what the log records as erased but the stores hold (content or a v2
    /// entry's metadata put back by restoring an older backup or bucket); no new entries.
    #[arg(long, conflicts_with = "retention")]
    pub replay: bool,
    /// With --retention: what is due at this date (YYYY-MM-DD or RFC 3339; default now).
    #[arg(long, requires = "retention", value_parser = evident::when::parse_until)]
    pub at: Option<DateTime<Utc>>,
    /// List what would be erased; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    target: &'a Target,
    by_entry: Option<u64>,
    removed: Option<bool>,
}

/// Who asks: the operating-system user.
fn who() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid {}", rustix::process::getuid().as_raw()))
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    super::private_umask();
    let state = ctx.state()?;
    let _lock = ctx.job_lock(&state, "erase", "an `evident erase`")?;
    let reader = Reader::open(&state)?;
    let blobs = state.blobs();
    let targets = if args.replay {
        erasure::replay(&reader, &blobs)?
    } else if args.retention {
        let rules = ctx
            .optional_config()?
            .map(|c| c.retention.rules.clone())
            .unwrap_or_default();
        if rules.is_empty() {
            return Err(Exit {
                code: 2,
                message:
                    "no [[retention.rules]] in the config: nothing is ever due (docs/erasure.md)"
                        .into(),
            }
            .into());
        }
        erasure::due(&reader, &blobs, &rules, args.at.unwrap_or_else(Utc::now))?
    } else {
        erasure::plan(
            &reader,
            &blobs,
            &args.entries,
            args.reason.as_deref().unwrap_or_default(),
            args.with_copies,
        )?
    };
    drop(reader);
    let done = if args.dry_run || targets.is_empty() {
        Vec::new()
    } else {
        let ledger = super::population::open_ledger(ctx, &state)?;
        erasure::apply(&ledger, &targets, &who(), Utc::now())?
    };
    let rows: Vec<Row<'_>> = targets
        .iter()
        .map(|t| {
            let d = done.iter().find(|d| d.index == t.index);
            Row {
                target: t,
                by_entry: d.map(|d| d.by_entry),
                removed: d.map(|d| d.removed),
            }
        })
        .collect();
    if ctx.cli.format == Format::Json {
        return output::json(&rows);
    }
    if targets.is_empty() {
        println!("nothing to erase");
        return Ok(());
    }
    output::rows_hiding(
        ctx.cli.format,
        &["entry", "title", "sha256", "reason", "erasure entry"],
        &rows
            .iter()
            .map(|r| {
                vec![
                    r.target.index.to_string(),
                    r.target
                        .title
                        .clone()
                        .unwrap_or_else(|| r.target.uri.clone()),
                    r.target.sha256.clone(),
                    r.target.reason.clone(),
                    r.by_entry
                        .map_or_else(|| "(dry run)".to_owned(), |e| e.to_string()),
                ]
            })
            .collect::<Vec<_>>(),
        &["sha256", "reason"],
    )?;
    if !ctx.cli.quiet {
        if args.dry_run {
            eprintln!(
                "{} would be erased; nothing changed (--dry-run)",
                entries(targets.len())
            );
        } else if args.replay {
            eprintln!(
                "removed again what the log records as erased, for {}; nothing new was recorded",
                entries(done.len())
            );
        } else {
            let what = if targets.iter().any(|t| t.metadata) {
                "the content, title and URI"
            } else {
                "the content"
            };
            eprintln!(
                "erased {what} of {}; each erasure is signed into checkpoint {}",
                entries(done.len()),
                Reader::open(&state)?.size()?
            );
        }
    }
    if done.iter().any(|d| !d.log_truncated) {
        eprintln!(
            "warning: another process was reading the ledger, so its write-ahead log \
             (evident.db-wal) may still hold the old title and URI until that reader ends; \
             SQLite resets the log when the last connection closes (stop long readers such \
             as `evident serve` to be sure)"
        );
    }
    Ok(())
}

fn entries(n: usize) -> String {
    if n == 1 {
        "1 entry".to_owned()
    } else {
        format!("{n} entries")
    }
}
