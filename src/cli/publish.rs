//! `evident publish`: write the log as C2SP tiles now.

use super::{Ctx, Exit, Format, output};
use evident::tiles::PublishConfig;
use evident::tiles::publish::Published;
use evident::tiles::store::Store;
use evident::witness::client::names;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Write the log in the C2SP tlog-tiles layout (checkpoint, hash tiles \
tile/<L>/<N>, entry bundles tile/entries/<N>) to a directory a web server serves, or to a \
bucket of an S3-compatible store (s3://bucket/prefix, with [publish]'s endpoint and \
credentials settings), so anyone \
holding the verifier key can check every entry with `evident verify --tiles URL --key VKEY`, \
Go's sumdb/tlog reader or any tlog-tiles client, without access to this server.\n\n\
Publication is incremental: only tiles that are new or grew since the published checkpoint \
are written, and the checkpoint last, after the tiles are on disk (or acknowledged by the \
bucket), so a reader never sees a \
checkpoint whose tiles are missing. It publishes the latest signed checkpoint (run `evident \
checkpoint` first to cover newer entries); with [[witnesses]], the latest the witness quorum \
cosigned, with their cosignatures. A place holding another log's checkpoint, or \
a tree this ledger does not extend, is refused.\n\n\
With [publish] url in the config, `evident run` and `evident checkpoint` publish after each \
new checkpoint; --to publishes elsewhere once.\n\n\
Examples:\n  evident publish\n  evident publish --to /srv/www/evident-log\n  \
evident publish --to s3://evident-log/aims";

/// Options of `evident publish`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The directory to publish to (an absolute path or file:///dir); default: [publish] url
    /// (which may also be a bucket, s3://bucket/prefix, with its settings).
    #[arg(long, value_name = "DIR|S3URL")]
    pub to: Option<String>,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let state = ctx.state()?;
    let config = ctx.optional_config()?.cloned();
    let witnesses = config
        .as_ref()
        .map(|c| c.witnesses.clone())
        .unwrap_or_default();
    let quorum = config
        .as_ref()
        .map_or(0, evident::config::Config::witness_quorum);
    let target = match args.to {
        // A bucket named on the command line keeps [publish]'s endpoint and credentials.
        Some(url) if url.starts_with("s3://") => PublishConfig {
            url,
            ..config
                .as_ref()
                .and_then(|c| c.publish.clone())
                .unwrap_or_default()
        },
        Some(url) => PublishConfig {
            url,
            ..PublishConfig::default()
        },
        None => config
            .as_ref()
            .and_then(|c| c.publish.clone())
            .ok_or_else(|| Exit {
                code: 2,
                message: "nowhere to publish: set [publish] url in the config, or pass --to DIR"
                    .to_owned(),
            })?,
    };
    target
        .validate()
        .map_err(|message| Exit { code: 2, message })?;
    // The daemon and `evident checkpoint` publish under this lock: two publishers could
    // otherwise leave the older checkpoint in place last.
    let _lock = ctx.job_lock(
        &state,
        super::checkpoint::CHECKPOINT_JOB,
        "a checkpoint or export",
    )?;
    let store = target.store()?;
    let done = target.publish(&state, (&names(&witnesses), quorum))?;
    if ctx.cli.format == Format::Json {
        return output::json(&done);
    }
    match done {
        None => {
            println!("nothing published: no checkpoint is signed yet (run `evident checkpoint`)")
        }
        Some(p) => println!("{}", describe(&p, &store)),
    }
    Ok(())
}

/// One line saying what a publication did.
pub fn describe(p: &Published, store: &Store) -> String {
    if p.objects == 0 {
        format!("{} already holds checkpoint {}", store.describe(), p.size)
    } else {
        format!(
            "published checkpoint {} to {} ({} tiles and entry bundles, {} bytes; from size {})",
            p.size,
            store.describe(),
            p.objects,
            p.bytes,
            p.from
        )
    }
}
