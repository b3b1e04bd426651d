//! `evident add`: record files as manual evidence.

use std::path::PathBuf;

use anyhow::Context as _;
use chrono::NaiveDate;
use evident_collectors::media::media_type_for;
use evident_collectors::{Batch, Content, Observation};
use serde::Serialize;

use super::{Ctx, Exit, Format, output};
use evident::catalog::Catalog;
use evident::config::ControlId;
use evident::ledger::reader::Reader;
use evident::mapping::Mapper;
use evident::recorder::SourceSettings;

pub use evident::recorder::MANUAL;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Record files as manual evidence: meeting minutes, signed PDFs, training records. \
Each file becomes an entry with URI manual://<path as given, relative to the working \
directory> (q3/minutes.pdf and q4/minutes.pdf stay two documents), or the --uri you give; \
adding a file whose content and controls are already recorded under that URI adds nothing, a \
new content is a new version of it, and the same content with other controls is recorded \
again as a re-mapping.\n\n\
Examples:\n  evident add minutes-2026-10.pdf --control A.2.4 --control 9.3 --effective-date 2026-10-14\n  \
evident add board/q4/minutes.pdf --control 9.3\n  \
evident add scan-0042.pdf --uri manual://board/2026-q4/minutes.pdf --control 9.3";

/// Options of `evident add`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Files to record.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Control or clause the files support (repeat for several).
    #[arg(long = "control", short = 'C', required = true, value_name = "ID")]
    pub controls: Vec<String>,
    /// Title (default: front matter, first heading, or the file name).
    #[arg(long)]
    pub title: Option<String>,
    /// The URI to record one file under (default: manual://<path as given>); reuse a URI to
    /// record a new version of the same document.
    #[arg(long, value_name = "URI")]
    pub uri: Option<String>,
    /// The date the evidence takes effect (YYYY-MM-DD).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub effective_date: Option<NaiveDate>,
}

/// The path as the user gave it, normalised: relative to the working directory when it is
/// inside it, `.` and `..` folded, no leading `/`. Two files of one name in two folders keep
/// two identities.
fn relative_name(f: &std::path::Path) -> String {
    use std::path::Component;
    let abs = if f.is_absolute() {
        f.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(f)
    };
    let mut parts: Vec<String> = Vec::new();
    for c in abs.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let cwd: Vec<String> = std::env::current_dir()
        .unwrap_or_default()
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    if parts.len() > cwd.len() && parts[..cwd.len()] == cwd[..] {
        parts.drain(..cwd.len());
    }
    parts.join("/")
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date; write YYYY-MM-DD"))
}

#[derive(Serialize)]
struct Added {
    index: u64,
    uri: String,
    title: Option<String>,
    sha256: String,
    controls: Vec<String>,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    super::private_umask();
    let controls: Vec<ControlId> = args
        .controls
        .iter()
        .map(|c| Catalog::get().resolve(c).map(ControlId))
        .collect::<Result<_, _>>()?;
    let state = ctx.state()?;
    let origin = ctx.origin(&state)?;
    let rules = ctx.config().map(|c| c.rules.clone()).unwrap_or_default();
    let mut observations = Vec::new();
    let mut unreadable = Vec::new();
    let state_canon = std::fs::canonicalize(state.dir()).unwrap_or_else(|_| state.dir().to_owned());
    if let Some(u) = &args.uri {
        if args.files.len() != 1 {
            return Err(Exit {
                code: 2,
                message: "--uri names one document: give exactly one file with it".into(),
            }
            .into());
        }
        if !u.contains("://") || u.chars().any(char::is_whitespace) {
            return Err(Exit {
                code: 2,
                message: format!(
                    "--uri {u:?} is not a URI; write e.g. manual://board/2026-q4/minutes.pdf"
                ),
            }
            .into());
        }
    }
    for f in &args.files {
        match observe(&args, f, &state_canon)? {
            Ok(o) => observations.push(o),
            Err(why) => unreadable.push(format!("{}: {why}", f.display())),
        }
    }
    let _lock = ctx.job_lock(&state, "add", "an `evident add`")?;
    // With a config, its [blobs] decides where content goes; without, the state directory's
    // record does.
    let ledger = match ctx.optional_config()? {
        Some(c) => evident::runner::Ledger::open_configured(state.clone(), c)?,
        None => evident::runner::Ledger::open(state.clone(), &origin)?,
    };
    let src = SourceSettings {
        name: MANUAL,
        kind: MANUAL,
        controls: &controls,
        max_file_size: u64::MAX,
        submitted_by: None,
    };
    let stats = evident::runner::record_batch(
        &ledger,
        &src,
        &Mapper::new(rules),
        Batch {
            observations,
            ..Batch::default()
        },
        ctx.progress(),
    )?;
    drop(ledger);
    let reader = Reader::open(&state)?;
    let mut added = Vec::new();
    for idx in &stats.indexes {
        if let Some(row) = reader.entry(*idx)? {
            added.push(Added {
                index: row.index,
                uri: row.uri,
                title: row.title,
                sha256: row.sha256,
                controls: row.controls,
            });
        }
    }
    unreadable.extend(
        stats
            .problems
            .iter()
            .filter(|p| p.failed)
            .map(|p| format!("{}: {}", p.item, p.message)),
    );
    for u in &unreadable {
        eprintln!("error: {u}");
    }
    if stats.unchanged > 0 && !ctx.cli.quiet {
        eprintln!(
            "{} file(s) already recorded with the same content; nothing added for them",
            stats.unchanged
        );
    }
    match ctx.cli.format {
        Format::Json => output::json(&added)?,
        f => output::rows_hiding(
            f,
            &["index", "uri", "title", "sha256", "controls"],
            &added
                .iter()
                .map(|a| {
                    vec![
                        a.index.to_string(),
                        a.uri.clone(),
                        a.title.clone().unwrap_or_default(),
                        a.sha256.clone(),
                        a.controls.join(" "),
                    ]
                })
                .collect::<Vec<_>>(),
            &["sha256", "title"],
        )?,
    }
    if !unreadable.is_empty() {
        return Err(Exit {
            code: 1,
            message: format!("{} file(s) could not be recorded", unreadable.len()),
        }
        .into());
    }
    Ok(())
}

/// The observation of one file given to `add`, read at its real path; `Ok(Err(why))` for a
/// file that cannot be recorded (the others still are).
fn observe(
    args: &Args,
    f: &std::path::Path,
    state_canon: &std::path::Path,
) -> anyhow::Result<Result<Observation, String>> {
    // The file is read at its real path without following links, so what is hashed is
    // the file looked at here, not one swapped in since.
    let real = match std::fs::canonicalize(f) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if real.starts_with(state_canon) {
        // Reading the ledger's own files from this process would also release SQLite's
        // locks on them; and they are not evidence.
        return Ok(Err(
            "is inside the ledger's state directory; not recorded".into()
        ));
    }
    let meta = match std::fs::symlink_metadata(&real) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Ok(Err("not a regular file".into())),
        Err(e) => return Ok(Err(e.to_string())),
    };
    let name = f
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{} has no file name", f.display()))?;
    let rel = relative_name(f);
    let uri = match &args.uri {
        Some(u) => u.clone(),
        None => format!(
            "{MANUAL}://{}",
            evident_collectors::sources::filesystem::encode_path(rel.as_bytes())
        ),
    };
    let mut o = Observation::new(uri, "document", Content::File(real));
    o.media_type = media_type_for(&name).map(str::to_owned);
    o.title = args.title.clone();
    o.path = Some(rel);
    o.effective_date = args.effective_date;
    o.fingerprint = Some(evident_collectors::Fingerprint::of(&meta));
    Ok(Ok(o))
}
