//! `evident blobs`: where the evidence content lives, and moving it to object storage.

use std::io::Write as _;

use super::{Ctx, Exit, Format, output};
use evident::ledger::migrate::migrate;
use evident::objects::StorageConfig;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Where the ledger keeps evidence content, and moving it.\n\n\
By default content lives in the state directory (blobs/sha256/). With [blobs] url = \
\"s3://bucket/prefix\" (and endpoint, region, access_key_id, path_style, secret_env as for \
[publish]) it lives in an S3-compatible bucket under sha256/<2 hex>/<64 hex>: new content \
waits in blobs/outbox/ until the bucket acknowledged it, and only then does its entry \
commit. `verify`, `show`, `export` and the API read it back from the bucket, re-hashed.\n\n\
`evident blobs migrate --to s3://bucket/prefix` copies an existing local store there: each \
blob is re-hashed before it leaves (its name is its digest) and sent with its SHA-256 \
signed, so the store refuses a body damaged on the way; objects already there are \
skipped, so an interrupted migration resumes where it stopped. When every blob is in the \
bucket the ledger switches to it (blobs/location.toml), and a config without [blobs] gets \
one. The local copies stay as a read cache; remove blobs/sha256 once `evident verify` \
passes. Stop the daemon first.\n\n\
Examples:\n  evident blobs migrate --to s3://evidence/aims\n  \
AWS_SECRET_ACCESS_KEY=… evident blobs migrate --to s3://evidence --endpoint http://127.0.0.1:9000";

/// `evident blobs …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Copy the local blob store to a bucket (resumable, verified) and switch to it.
    Migrate(MigrateArgs),
}

/// Options of `evident blobs migrate`.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// The bucket and prefix (s3://bucket/prefix); other settings come from [blobs] when
    /// the config has it.
    #[arg(long, value_name = "S3URL")]
    pub to: String,
    /// The endpoint of an S3-compatible store (default: [blobs] endpoint, else AWS).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The signing region (default: [blobs] region, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// The environment variable holding the secret key (default: [blobs] secret_env, else
    /// AWS_SECRET_ACCESS_KEY).
    #[arg(long, value_name = "VAR")]
    pub secret_env: Option<String>,
}

pub fn run(ctx: &mut Ctx, cmd: Command) -> anyhow::Result<()> {
    let Command::Migrate(args) = cmd;
    let state = ctx.state()?;
    let config_path = ctx.cli.config.clone();
    let configured = ctx
        .optional_config()?
        .and_then(|c| c.blobs.clone())
        .filter(|b| {
            b.same_place(&StorageConfig {
                url: args.to.clone(),
                ..StorageConfig::default()
            })
        });
    let mut to = configured.clone().unwrap_or_default();
    to.url = args.to.clone();
    to.endpoint = args.endpoint.or(to.endpoint);
    to.region = args.region.or(to.region);
    to.secret_env = args.secret_env.or(to.secret_env);
    evident::ledger::blobs::check_config(&to).map_err(|message| Exit { code: 2, message })?;
    if to.bucket_url().is_none() {
        return Err(Exit {
            code: 2,
            message: format!("--to {}: migrate to a bucket, s3://bucket/prefix", args.to),
        }
        .into());
    }
    state.check_owner()?;
    // The daemon's blob store was opened before the switch: it must not run meanwhile.
    let _lock = evident::lock::StateLock::acquire(state.dir())?;
    let bar = evident::progress::bar(0, "copying blobs {bar:40} {pos}/{len}", ctx.progress());
    let summary = migrate(&state, &to, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let config_note = record_in_config(&config_path, configured.is_some(), &to);
    if ctx.cli.format == Format::Json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            summary: &'a evident::ledger::migrate::MigrateSummary,
            config: String,
        }
        return output::json(&Out {
            summary: &summary,
            config: config_note,
        });
    }
    if !ctx.cli.quiet {
        println!(
            "{} blobs: {} copied ({} bytes), {} already in {}; the ledger now reads and writes \
             content there",
            summary.blobs, summary.copied, summary.bytes, summary.present, summary.to
        );
        println!("{config_note}");
        println!(
            "check it with `evident verify`, then the local copies in {} may be removed",
            state.dir().join("blobs/sha256").display()
        );
    }
    Ok(())
}

/// Adds `[blobs]` to the config file when it has none; says what was done or is left to do.
fn record_in_config(path: &std::path::Path, has_it: bool, to: &StorageConfig) -> String {
    if has_it {
        return format!("{} already names it in [blobs]", path.display());
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let table = toml::to_string(to).unwrap_or_default();
    let has_blobs = text
        .parse::<toml::Table>()
        .is_ok_and(|t| t.contains_key("blobs"));
    if has_blobs || !path.is_file() {
        return format!(
            "set this in the config's [blobs] (the daemon refuses to start until it agrees):\n[blobs]\n{table}"
        );
    }
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| {
            f.write_all(
                format!("\n# Added by `evident blobs migrate`.\n[blobs]\n{table}").as_bytes(),
            )
        });
    match appended {
        Ok(()) => format!("added [blobs] to {}", path.display()),
        Err(e) => format!(
            "could not add [blobs] to {} ({e}); add it yourself:\n[blobs]\n{table}",
            path.display()
        ),
    }
}
