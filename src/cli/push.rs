//! `evident push`: send evidence to a running Evident server, from CI or a laptop.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;

use super::remote::{ServerArgs, check, unreachable};
use super::{Ctx, Exit, Format, output};
use evident::api::push::PushResult;
use evident::api::tokens::Scope;
use evident::api::v1::WhoAmI;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Send files (streamed, never read whole into memory) or metadata-only evidence \
to an Evident server's POST /v1/evidence. The token comes from an environment variable \
(EVIDENT_TOKEN unless --token-env names another) and needs the push scope; its name is \
recorded in each entry. Pushing the same URI with the same content again returns the \
existing entry (safe to retry); new content under a URI is a new version of it.\n\n\
With --wait, the answer comes after the next checkpoint and carries each entry's inclusion \
proof (c2sp.org/tlog-proof@v1), printed with --format json.\n\n\
Examples:\n  EVIDENT_TOKEN=… evident push model-card.pdf --server https://evident.example.org --control A.6.2.7\n  \
evident push eval-report.html --control A.6.2.4 --source github-actions --uri ci://evals/$GITHUB_SHA --wait --format json\n  \
evident push --uri s3://models/fraud-v7.onnx --sha256 9f86d0… --size 48213 --control A.6.2.5 --kind model_version";

/// Options of `evident push`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Files to send (none for metadata-only evidence: --uri, --sha256 and --size).
    pub files: Vec<PathBuf>,
    /// Control or clause the evidence supports (repeat for several).
    #[arg(long = "control", short = 'C', required = true, value_name = "ID")]
    pub controls: Vec<String>,
    /// The artefact's URI (default for a file: push://<source>/<file name>).
    #[arg(long, value_name = "URI")]
    pub uri: Option<String>,
    /// Metadata only: the content's SHA-256 (hex).
    #[arg(long, value_name = "HEX", requires = "size")]
    pub sha256: Option<String>,
    /// Metadata only: the content's size in bytes.
    #[arg(long, value_name = "BYTES", requires = "sha256")]
    pub size: Option<u64>,
    /// Title.
    #[arg(long)]
    pub title: Option<String>,
    /// Artefact kind (default document).
    #[arg(long)]
    pub kind: Option<String>,
    /// Where it comes from (default push): the pipeline's name.
    #[arg(long)]
    pub source: Option<String>,
    /// The date it takes effect (YYYY-MM-DD).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub effective_date: Option<String>,
    /// Wait for the next checkpoint and return inclusion proofs.
    #[arg(long)]
    pub wait: bool,
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let base = args.server.base()?;
    let token = args.server.token("push")?;
    let metadata_only = args.files.is_empty();
    if metadata_only && (args.sha256.is_none() || args.uri.is_none()) {
        return Err(Exit {
            code: 2,
            message: "give files to send, or --uri, --sha256 and --size for metadata-only evidence"
                .into(),
        }
        .into());
    }
    if args.uri.is_some() && args.files.len() > 1 {
        return Err(Exit {
            code: 2,
            message: "--uri names one artefact: give one file with it".into(),
        }
        .into());
    }
    let client = args.server.client(Duration::from_secs(120))?;
    let url = format!(
        "{base}/v1/evidence{}",
        if args.wait { "?wait=checkpoint" } else { "" }
    );
    let meta = |uri: Option<&String>| metadata(&args, uri);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut results = Vec::new();
    runtime.block_on(async {
        preflight(&client, &base, &token, &args.files).await?;
        if metadata_only {
            let resp = client
                .post(&url)
                .bearer_auth(&token)
                .json(&meta(args.uri.as_ref()))
                .send()
                .await
                .map_err(|e| unreachable(&base, &e))?;
            let resp = check(resp, "push").await?;
            results.push(
                resp.json::<PushResult>()
                    .await
                    .context("reading the answer")?,
            );
            return anyhow::Ok(());
        }
        for f in &args.files {
            let file = tokio::fs::File::open(f)
                .await
                .with_context(|| format!("cannot open {}", f.display()))?;
            let len = file.metadata().await?.len();
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "upload".into());
            let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::from(file), len)
                .file_name(name);
            let form = reqwest::multipart::Form::new()
                .text("metadata", meta(args.uri.as_ref()).to_string())
                .part("file", part);
            let resp = client
                .post(&url)
                .bearer_auth(&token)
                .multipart(form)
                .send()
                .await
                .map_err(|e| unreachable(&base, &e))?;
            let resp = check(resp, &format!("push {}", f.display())).await?;
            results.push(
                resp.json::<PushResult>()
                    .await
                    .context("reading the answer")?,
            );
        }
        Ok(())
    })?;
    if ctx.cli.format == Format::Json {
        return output::json(&results);
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .flat_map(|r| &r.entries)
        .map(|e| {
            vec![
                e.index.to_string(),
                if e.created {
                    "recorded"
                } else {
                    "already recorded"
                }
                .to_owned(),
                e.uri.clone(),
                e.sha256.clone(),
                if e.proof.is_some() { "yes" } else { "" }.to_owned(),
            ]
        })
        .collect();
    output::rows_hiding(
        ctx.cli.format,
        &["index", "result", "uri", "sha256", "proof"],
        &rows,
        &["sha256", "proof"],
    )
}

/// The `metadata` a push sends for the artefact at `uri`.
fn metadata(args: &Args, uri: Option<&String>) -> serde_json::Value {
    let mut m = json!({ "controls": args.controls });
    let fields = [
        ("uri", uri.cloned()),
        ("title", args.title.clone()),
        ("kind", args.kind.clone()),
        ("source", args.source.clone()),
        ("effective_date", args.effective_date.clone()),
        ("sha256", args.sha256.clone()),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            m[k] = json!(v);
        }
    }
    if let Some(s) = args.size {
        m["size"] = json!(s);
    }
    m
}

/// Asks the server first, so a refused token, a read-only server or a file over the server's
/// limit is said plainly instead of as a connection the server closed mid-upload.
async fn preflight(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    files: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    let who = client
        .get(format!("{base}/v1/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| unreachable(base, &e))?;
    let who: WhoAmI = check(who, "push")
        .await?
        .json()
        .await
        .context("reading /v1/whoami")?;
    if !matches!(who.scope, Scope::Push | Scope::Admin) {
        return Err(Exit {
            code: 2,
            message: format!(
                "token {:?} has scope {}; pushing needs a push token (evident token create NAME --scope push)",
                who.name,
                who.scope.as_str()
            ),
        }
        .into());
    }
    if !who.writable {
        return Err(Exit {
            code: 1,
            message: format!(
                "{base} is read-only (evident serve); push to the server that runs `evident run`"
            ),
        }
        .into());
    }
    for f in files {
        let meta = std::fs::metadata(f).map_err(|e| Exit {
            code: 1,
            message: format!("cannot read {}: {e}", f.display()),
        })?;
        if !meta.is_file() {
            return Err(Exit {
                code: 1,
                message: format!(
                    "{} is not a regular file; push files one by one",
                    f.display()
                ),
            }
            .into());
        }
        let len = meta.len();
        if len > who.max_body {
            return Err(Exit {
                code: 1,
                message: format!(
                    "{} is {len} bytes; the server takes at most {} ([api] max_body)",
                    f.display(),
                    who.max_body
                ),
            }
            .into());
        }
    }
    Ok(())
}
