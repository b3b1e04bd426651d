//! `evident trace`: the lifecycle chain around an entry or an identifier, each step with
//! its entry and inclusion proof.

use serde::Serialize;

use super::{Ctx, Exit, Format, output};
use evident::ledger::reader::Reader;
use evident::ledger::receipt::{ReceiptError, receipt};
use evident::lineage::Rules;
use evident::lineage::graph::Graph;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Show the lifecycle chain around an entry: model version → training run → \
evaluation → deployment → approval → impact assessment, as far as the evidence links them.\n\n\
Entries link through identifiers already in the evidence: an MLflow model version and run id, \
a CI run's commit and the \"NAME vN\" or ticket key (#42, AIMS-42) in its commit message, a \
ticket's own key and the model versions its title names, a document's `relates:` front matter. \
The built-in rules cover the built-in sources; [[links]] in the config add more \
(docs/lineage.md). Only current versions are linked (a superseded ticket state is not).\n\n\
ID is an entry index, a URI, or an identifier (`model:fraud-detector/3`, or just \
`fraud-detector/3`). Each step shows the identifier that led to it and whether its inclusion \
proof verifies against the newest checkpoint; --format json carries the proofs themselves.\n\n\
Examples:\n  evident trace model:fraud-detector/3\n  evident trace 1042 --depth 2\n  \
evident --format json trace 'ticket:#12'";

/// Options of `evident trace`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// An entry index, a URI, or an identifier (key:value, or a bare value).
    pub id: String,
    /// How many links to follow from the start.
    #[arg(long, default_value_t = 4)]
    pub depth: u32,
    /// The most entries to show.
    #[arg(long, default_value_t = 200)]
    pub max: usize,
}

#[derive(Serialize)]
struct Step<'a> {
    hops: u32,
    via: Option<&'a str>,
    from: Option<u64>,
    #[serde(flatten)]
    node: &'a evident::lineage::graph::Node,
    /// `ok`, `pending` (not in a checkpoint yet), or what failed.
    proof_status: String,
    /// The c2sp.org/tlog-proof@v1 receipt against the newest checkpoint.
    proof: Option<String>,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    let state = ctx.state()?;
    let rules = match ctx.optional_config()? {
        Some(c) => Rules::new(&c.links, &c.expect),
        None => Rules::new(&[], &[]),
    };
    let reader = Reader::open(&state)?;
    let verifier = state.verifier()?;
    let graph = reader.snapshot(|r| -> anyhow::Result<Graph> {
        Ok(Graph::build(r, &state.blobs(), &rules, r.size()?)?)
    })?;
    let start = graph.find(&reader, &args.id)?;
    if let Ok(i) = args.id.parse::<u64>()
        && start.is_empty()
    {
        let size = reader.size()?;
        return Err(Exit {
            code: 1,
            message: if i >= size {
                format!("there is no entry {i}: the ledger's entries are 0 to {}", size.saturating_sub(1))
            } else {
                format!("entry {i} is not part of any chain: a collector run, a removal, or Evident's own record")
            },
        }
        .into());
    }
    if start.is_empty() {
        return Err(Exit {
            code: 1,
            message: format!(
                "nothing in the ledger is or names {:?}; give an entry index, a URI, or an identifier such as model:NAME/VERSION (`evident trace --help`)",
                args.id
            ),
        }
        .into());
    }
    let steps = graph.trace(&start, args.depth, args.max);
    let mut out = Vec::with_capacity(steps.len());
    for s in &steps {
        let node = &graph.nodes[s.node];
        let (proof_status, proof) = match receipt(&reader, &verifier, node.index) {
            Ok(r) => (
                format!("ok at checkpoint {}", r.checkpoint_size),
                Some(r.proof.encode()),
            ),
            Err(ReceiptError::NotCovered(_)) => {
                ("pending: not in a checkpoint yet".to_owned(), None)
            }
            Err(e) => (format!("FAILED: {e}"), None),
        };
        out.push(Step {
            hops: s.hops,
            via: s.via.as_deref(),
            from: s.from.map(|f| graph.nodes[f].index),
            node,
            proof_status,
            proof,
        });
    }
    let failed = out.iter().any(|s| s.proof_status.starts_with("FAILED"));
    match ctx.cli.format {
        Format::Json => output::json(&out)?,
        f => output::rows_hiding(
            f,
            &[
                "hops", "via", "index", "kind", "source", "date", "title", "proof",
            ],
            &out.iter()
                .map(|s| {
                    vec![
                        s.hops.to_string(),
                        s.via.unwrap_or("(start)").to_owned(),
                        s.node.index.to_string(),
                        s.node.kind.clone(),
                        s.node.source.clone(),
                        s.node.date.chars().take(10).collect(),
                        s.node.title.clone().unwrap_or_else(|| s.node.uri.clone()),
                        s.proof_status.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
            &["source", "via"],
        )?,
    }
    if failed {
        return Err(Exit {
            code: 3,
            message: "an entry of the chain does not verify against the newest checkpoint; run `evident verify`".into(),
        }
        .into());
    }
    Ok(())
}
