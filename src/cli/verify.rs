//! `evident verify`: check the whole ledger.

use anyhow::Context as _;

use super::{Ctx, Exit, Format, output};
use evident::bundle::verify::{BundleCheck, BundleReport, VerifyOptions, verify_bundle};
use evident::findings::{self, Line};
use evident::ledger::note::{KeyKind, NoteVerifier};
use evident::ledger::reader::Reader;
use evident::tiles::check::{TileCheck, TileOptions, verify_tiles};
use evident::tiles::store::Store;
use evident::verify::{Check, verify_ledger};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Recompute every leaf hash and the whole Merkle tree from the stored entries, \
compare the tree with every stored checkpoint and its Ed25519 signature, check the columns \
derived from each leaf, and re-hash every blob. Prints what is wrong (entry index, what \
differs) and exits 3 on any mismatch.\n\n\
By default checkpoints are checked with the ledger's own key. Someone who does not trust this \
server passes the key they were given (--key) and the checkpoints they kept (--checkpoint).\n\n\
With BUNDLE (an `evident export` tarball or directory), verify it offline instead, without \
the ledger: the checkpoint signature against --key (the key inside the bundle is only \
compared), every inclusion proof, every blob against its entry's digest, SHA256SUMS, every \
consistency proof and, with --previous-checkpoint, that the tree extends the one you kept. \
Members with paths outside the bundle, links, devices and oversized members are refused, \
and so is any archive shape common extractors read differently (PAX or GNU extension headers, \
data on a directory, bytes after the end marker or the first gzip member), so what verify \
accepts is exactly what `tar -x` extracts. Work is bounded (--max-memory, --max-total-size); \
nothing is extracted or written. A timestamp checked only against the CA inside the bundle \
is reported as unverified: pass --tsa-ca.\n\n\
With --tiles URL, verify a log published as C2SP tiles (`evident publish`) from the tiles \
alone: the checkpoint against --key, every entry bundle and leaf, every hash tile against the \
tree the entries make, the root, and with --previous-checkpoint that the tree extends yours.\n\n\
Examples:\n  evident verify\n  evident verify audit.tar.gz --key log.vkey\n  evident verify audit.tar.gz --key log.vkey --previous-checkpoint last-audit.checkpoint\n  \
evident verify --tiles https://evidence.example.com/log/ --key log.vkey";

/// Options of `evident verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// An audit bundle (`.tar.gz` or directory) to verify offline instead of the ledger.
    #[arg(value_name = "BUNDLE")]
    pub bundle: Option<std::path::PathBuf>,
    /// A log published as C2SP tiles (a directory, file:///dir or http(s):// prefix) to
    /// verify from its tiles alone instead of the ledger; needs --key.
    #[arg(long, value_name = "URL", conflicts_with = "bundle")]
    pub tiles: Option<String>,
    /// With BUNDLE or --tiles: the checkpoint you kept from the last audit; the tree must
    /// extend it.
    #[arg(long, value_name = "FILE")]
    pub previous_checkpoint: Option<std::path::PathBuf>,
    /// With BUNDLE: the TSA's CA certificates (PEM) to check checkpoint.tsr against
    /// (default: the bundle's tsa/ca.pem).
    #[arg(long, value_name = "PEM", requires = "bundle")]
    pub tsa_ca: Option<std::path::PathBuf>,
    /// With BUNDLE: refuse blobs larger than this (default 4GiB).
    #[arg(long, value_name = "SIZE", requires = "bundle", value_parser = evident::config::ByteSize::parse)]
    pub max_member_size: Option<evident::config::ByteSize>,
    /// With BUNDLE: refuse a `.tar.gz` that decompresses to more than this (default 64GiB).
    #[arg(long, value_name = "SIZE", requires = "bundle", value_parser = evident::config::ByteSize::parse)]
    pub max_total_size: Option<evident::config::ByteSize>,
    /// With BUNDLE: refuse a bundle whose checks would keep more than this in memory
    /// (default 160MiB: about 300,000 entries' worth).
    #[arg(long, value_name = "SIZE", requires = "bundle", value_parser = evident::config::ByteSize::parse)]
    pub max_memory: Option<evident::config::ByteSize>,
    /// With BUNDLE or --tiles: a witness's cosigner key (the line `evident witness init`
    /// printed, or a file holding it) whose cosignature of the checkpoint counts. Repeat for
    /// each witness of your policy.
    #[arg(long = "witness", value_name = "VKEY|FILE")]
    pub witnesses: Vec<String>,
    /// With --witness: how many of them must have cosigned (default: all).
    #[arg(long, value_name = "N", requires = "witnesses")]
    pub witness_quorum: Option<usize>,
    /// Verifier key (the line `init` printed, or a file holding it). Default: the ledger's own.
    #[arg(long, value_name = "VKEY|FILE")]
    pub key: Option<String>,
    /// A signed checkpoint kept outside this server; the ledger must still contain its tree.
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub checkpoints: Vec<std::path::PathBuf>,
}

fn parse_key(k: &str) -> anyhow::Result<NoteVerifier> {
    super::key_arg("--key", k)
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    if let Some(bundle) = &args.bundle {
        return run_bundle(ctx, bundle, &args);
    }
    if let Some(url) = &args.tiles {
        return run_tiles(ctx, url, &args);
    }
    if args.previous_checkpoint.is_some() {
        return Err(Exit {
            code: 2,
            message: "--previous-checkpoint goes with a BUNDLE or --tiles URL; to check the \
                      ledger against a checkpoint you kept, pass --checkpoint FILE"
                .to_owned(),
        }
        .into());
    }
    let state = ctx.state()?;
    let reader = Reader::open(&state)?;
    let verifier = match &args.key {
        Some(k) => parse_key(k)?,
        None => state.verifier()?,
    };
    let external = args
        .checkpoints
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("reading checkpoint {}", p.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = verify_ledger(
        &reader,
        &state.blobs(),
        &verifier,
        &external,
        ctx.progress(),
    )?;
    if ctx.cli.format == Format::Json {
        output::json(&report)?;
    } else {
        print!(
            "{}",
            findings::render(&report.findings, |check| Line::of(match check {
                Check::Entries | Check::Tree | Check::Columns => {
                    format!("{} entries", report.entries)
                }
                Check::Checkpoints if report.timestamps > 0 => format!(
                    "{} checkpoints, {} RFC 3161 timestamps",
                    report.checkpoints, report.timestamps
                ),
                Check::Checkpoints => format!("{} checkpoints", report.checkpoints),
                Check::Blobs if report.erased > 0 => format!(
                    "{} blobs re-hashed, {} erased by signed erasure entries",
                    report.blobs, report.erased
                ),
                Check::Blobs => format!("{} blobs re-hashed", report.blobs),
            }))
        );
        match (&report.checkpoint, report.ok()) {
            (Some(cp), true) => println!(
                "OK: ledger verifies up to checkpoint {} (root {})",
                cp.size, cp.root
            ),
            (None, true) => println!(
                "OK: ledger is consistent (no checkpoint signed yet; run `evident checkpoint`)"
            ),
            _ => {}
        }
    }
    if !report.ok() {
        return Err(failed("verification failed", report.findings.total(), None));
    }
    Ok(())
}

/// Exit 3 with how many problems there were and, when given, the first.
fn failed(what: &str, problems: u64, first: Option<&str>) -> anyhow::Error {
    let first = first.map(|f| format!(": {f}")).unwrap_or_default();
    Exit {
        code: 3,
        message: format!("{what}: {problems} problem(s){first}"),
    }
    .into()
}

/// `--key`, which checking anything from outside the ledger needs.
fn outside_key(args: &Args, what: &str, why: &str) -> anyhow::Result<NoteVerifier> {
    let key = args.key.as_deref().ok_or_else(|| Exit {
        code: 2,
        message: format!(
            "verifying {what} needs --key VKEY|FILE: the verifier key the organisation gave \
             you ({why})"
        ),
    })?;
    parse_key(key)
}

fn previous(args: &Args) -> anyhow::Result<Option<String>> {
    args.previous_checkpoint
        .as_ref()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("reading previous checkpoint {}", p.display()))
        })
        .transpose()
}

/// `--witness` keys and the quorum they must meet.
fn witness_policy(args: &Args) -> anyhow::Result<(Vec<NoteVerifier>, usize)> {
    let keys = args
        .witnesses
        .iter()
        .map(|k| super::key_arg("--witness", k))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(k) = keys.iter().find(|k| k.kind() != KeyKind::Cosigner) {
        return Err(Exit {
            code: 2,
            message: format!(
                "--witness {}: that is a log's key; a witness's key is the cosigner key \
                 `evident witness init` printed (type 4)",
                k.key_string()
            ),
        }
        .into());
    }
    let quorum = args.witness_quorum.unwrap_or(keys.len());
    if quorum > keys.len() || (quorum == 0 && !keys.is_empty()) {
        return Err(Exit {
            code: 2,
            message: format!(
                "--witness-quorum {quorum} with {} --witness keys: it must be between 1 and \
                 their number",
                keys.len()
            ),
        }
        .into());
    }
    Ok((keys, quorum))
}

fn run_tiles(ctx: &mut Ctx, url: &str, args: &Args) -> anyhow::Result<()> {
    let opts = TileOptions {
        key: outside_key(
            args,
            "tiles",
            "a published checkpoint proves nothing by itself",
        )?,
        previous: previous(args)?,
        witnesses: witness_policy(args)?,
    };
    let store = Store::open(url).map_err(|e| Exit {
        code: 2,
        message: format!("--tiles: {e}"),
    })?;
    let report = verify_tiles(&store, &opts, ctx.progress())?;
    if ctx.cli.format == Format::Json {
        output::json(&report)?;
    } else {
        print!(
            "{}",
            findings::render(&report.findings, |check| {
                let not_asked = match check {
                    TileCheck::Previous => opts.previous.is_none(),
                    TileCheck::Witnesses => opts.witnesses.0.is_empty(),
                    _ => false,
                };
                Line {
                    status: not_asked.then(|| "-".to_owned()),
                    what: match check {
                        TileCheck::Checkpoint => match &report.checkpoint {
                            Some(cp) => format!("size {}, signed by {}", cp.size, opts.key.name()),
                            None => "signature".to_owned(),
                        },
                        TileCheck::Entries => format!("{} entries read", report.entries),
                        TileCheck::Tiles => format!("{} hash tiles compared", report.tiles),
                        TileCheck::Tree => "root recomputed from the entries".to_owned(),
                        TileCheck::Previous => match report.previous {
                            Some(s) => format!("extends your checkpoint of size {s}"),
                            None if not_asked => "not asked (--previous-checkpoint)".to_owned(),
                            None => "your checkpoint".to_owned(),
                        },
                        TileCheck::Witnesses => witnessed(&report.cosigned_by, &opts.witnesses),
                    },
                }
            })
        );
        if let (Some(cp), true) = (&report.checkpoint, report.ok()) {
            println!(
                "OK: the tiles at {} verify against checkpoint {} (root {})",
                report.store, cp.size, cp.root
            );
        }
    }
    if !report.ok() {
        let first = report.findings.problems.first().map(|p| p.what.as_str());
        return Err(failed(
            "tile verification failed",
            report.findings.total(),
            first,
        ));
    }
    Ok(())
}

fn run_bundle(ctx: &mut Ctx, bundle: &std::path::Path, args: &Args) -> anyhow::Result<()> {
    let key = outside_key(
        args,
        "a bundle",
        "the copy inside the bundle is only compared, never trusted",
    )?;
    let previous = previous(args)?;
    let opts = VerifyOptions {
        key,
        witnesses: witness_policy(args)?,
        previous,
        max_member: args.max_member_size.map_or(4 << 30, |s| s.0),
        max_total: args
            .max_total_size
            .map_or(VerifyOptions::DEFAULT_MAX_TOTAL, |s| s.0),
        max_memory: args
            .max_memory
            .map_or(VerifyOptions::DEFAULT_MAX_MEMORY, |s| s.0),
        tsa_ca: args
            .tsa_ca
            .as_ref()
            .map(|p| {
                std::fs::read_to_string(p)
                    .with_context(|| format!("reading --tsa-ca {}", p.display()))
            })
            .transpose()?,
    };
    let report = verify_bundle(bundle, &opts, ctx.progress())?;
    if ctx.cli.format == Format::Json {
        output::json(&report)?;
    } else {
        print!(
            "{}",
            findings::render(&report.findings, |check| bundle_line(&report, &opts, check))
        );
        if let (Some(cp), true) = (&report.checkpoint, report.ok()) {
            println!(
                "OK: bundle verifies against checkpoint {} (root {})",
                cp.size, cp.root
            );
        }
    }
    if !report.ok() {
        let first = report.findings.problems.first().map(|p| p.what.as_str());
        return Err(failed(
            "bundle verification failed",
            report.findings.total(),
            first,
        ));
    }
    Ok(())
}

/// What the witnesses line says: who cosigned, against the policy, or that none was asked.
fn witnessed(cosigned_by: &[String], (keys, quorum): &(Vec<NoteVerifier>, usize)) -> String {
    if keys.is_empty() {
        return "not asked (--witness)".to_owned();
    }
    let who = if cosigned_by.is_empty() {
        "none".to_owned()
    } else {
        cosigned_by.join(", ")
    };
    format!("cosigned by {who} (quorum {quorum} of {})", keys.len())
}

/// A bundle check's line in the summary.
fn bundle_line(report: &BundleReport, opts: &VerifyOptions, check: BundleCheck) -> Line {
    let what = match check {
        BundleCheck::Archive => format!("{} members", report.members),
        BundleCheck::Sums => "every member against SHA256SUMS".to_owned(),
        BundleCheck::Checkpoint => match &report.checkpoint {
            Some(cp) => format!("size {}, signed by {}", cp.size, opts.key.name()),
            None => "signature".to_owned(),
        },
        BundleCheck::Inclusion => format!("{} entries proven", report.entries),
        BundleCheck::Blobs => format!("{} blobs re-hashed", report.blobs),
        BundleCheck::Consistency => {
            format!("{} earlier checkpoints proven prefixes", report.consistency)
        }
        BundleCheck::Timestamp => match (&report.timestamp, report.timestamp_ca) {
            (Some(t), Some(ca)) if report.timestamp_trusted => {
                format!("RFC 3161 time {t}, signer checked against {ca}")
            }
            (Some(t), Some(ca)) => format!(
                "RFC 3161 time {t}, signer checked only against {ca}, which anyone could have put there; pass --tsa-ca with the TSA's CA you trust"
            ),
            _ => "no checkpoint.tsr in the bundle".to_owned(),
        },
        BundleCheck::Witnesses => witnessed(&report.cosigned_by, &opts.witnesses),
        BundleCheck::Sampling if report.sampling.seeds.is_empty() => format!(
            "{} population(s) re-derived from every leaf, {} sample(s) redrawn",
            report.sampling.populations, report.sampling.samples
        ),
        BundleCheck::Sampling => format!(
            "{} population(s) re-derived from every leaf, {} sample(s) redrawn (seeds: {})",
            report.sampling.populations,
            report.sampling.samples,
            report.sampling.seeds.join("; ")
        ),
        BundleCheck::Previous => match report.previous {
            Some(s) => format!("extends your checkpoint of size {s}"),
            None => "not asked (--previous-checkpoint)".to_owned(),
        },
    };
    let status = match check {
        BundleCheck::Previous if report.previous.is_none() => Some("-".to_owned()),
        BundleCheck::Sampling
            if report.sampling.populations + report.sampling.samples == 0
                && report.count(BundleCheck::Sampling) == 0 =>
        {
            Some("-".to_owned())
        }
        BundleCheck::Witnesses if opts.witnesses.0.is_empty() => Some("-".to_owned()),
        BundleCheck::Timestamp if report.timestamp.is_none() => Some("-".to_owned()),
        BundleCheck::Timestamp if !report.timestamp_trusted => {
            Some("unverified: CA from the bundle".to_owned())
        }
        _ => None,
    };
    Line { what, status }
}
