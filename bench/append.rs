//! Appends synthetic entries to a ledger through the real writer, in batches (default 1,000),
//! and prints the append rate. Used by `bench/run.py`:
//!
//!     cargo bench --bench append -- --state DIR --entries 1000000 [--batch 1000]
//!         [--blobs 10000 --blob-size 8192] [--spread-days 365]
//!
//! `--from K` appends to the existing ledger in DIR, its entries numbered from K.
//!
//! `--blobs K` stores content for K evenly spaced entries (pseudo-random bytes, so gzip
//! cannot shrink them away); `--spread-days D` spreads collection times over D days before
//! 2026-11-22, as a ledger that has run for that long would hold them.

use std::time::Instant;

use evident::ledger::leaf::{EntryStatement, PREDICATE_TYPE, Predicate, hex};
use evident::ledger::state::StateDir;
use evident::ledger::writer::{ArtefactChange, NewEntry, WriteBatch, Writer};
use sha2::{Digest, Sha256};

/// (kind, controls, share in thousandths): CI runs and model versions dominate real ledgers;
/// documents are few.
const MIX: &[(&str, &[&str], u32)] = &[
    ("ci_run", &["A.6.2.4", "A.6.2.8"], 600),
    ("model_version", &["A.4.2", "A.6.2.3"], 300),
    ("ticket", &["A.6.2.6", "A.8.4"], 99),
    ("document", &["A.2.2", "A.2.4"], 1),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(dir) = arg("--state") else {
        eprintln!("usage: append --state DIR [--entries N] [--batch N]");
        std::process::exit(2);
    };
    let n: usize = arg("--entries")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let batch_size: usize = arg("--batch")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
        .max(1);
    let blobs: usize = arg("--blobs").and_then(|s| s.parse().ok()).unwrap_or(0);
    let blob_size: usize = arg("--blob-size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(8192);
    let spread_days: i64 = arg("--spread-days")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let blob_every = n.checked_div(blobs).map_or(usize::MAX, |e| e.max(1));
    let end = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
        .expect("date")
        .with_timezone(&chrono::Utc);
    let origin = "bench.evident.local/aims";
    let state = StateDir::new(&dir);
    // `--from K` appends to an existing ledger, numbering its entries from K.
    let from: usize = arg("--from").and_then(|s| s.parse().ok()).unwrap_or(0);
    if from == 0 {
        state.init(origin).expect("init");
    }
    let writer = Writer::open(&state, origin).expect("open writer");
    let start = Instant::now();
    let mut pending = None;
    let n = from + n;
    for batch_start in (from..n).step_by(batch_size) {
        let mut batch = WriteBatch::default();
        for i in batch_start..(batch_start + batch_size).min(n) {
            let slot = (i % 1000) as u32;
            let mut acc = 0;
            let (kind, controls, _) = MIX
                .iter()
                .find(|(_, _, share)| {
                    acc += share;
                    slot < acc
                })
                .unwrap_or(&MIX[0]);
            let with_blob = i % blob_every == 0 && i / blob_every < blobs;
            let digest = if with_blob {
                let mut content = Vec::with_capacity(blob_size + 32);
                let mut block: [u8; 32] = Sha256::digest(i.to_le_bytes()).into();
                while content.len() < blob_size {
                    content.extend_from_slice(&block);
                    block = Sha256::digest(block).into();
                }
                content.truncate(blob_size);
                let got = state
                    .blobs()
                    .ingest_bytes(&content, u64::MAX)
                    .expect("blob");
                hex(&got.sha256)
            } else {
                hex(&Sha256::digest(i.to_le_bytes()))
            };
            let collected =
                end - chrono::Duration::seconds(spread_days * 86_400 * (n - i) as i64 / n as i64);
            let uri = format!("{kind}://bench/{i}");
            batch.entries.push(NewEntry::new(
                EntryStatement::new(
                    PREDICATE_TYPE,
                    &uri,
                    &digest,
                    Predicate {
                        collected_at: evident::ledger::rfc3339(collected),
                        controls: controls.iter().map(|c| (*c).to_owned()).collect(),
                        kind: (*kind).to_owned(),
                        size: Some((i % 100_000).to_string()),
                        source: "bench".into(),
                        title: Some(format!("{kind} {i}")),
                        uri: Some(uri.clone()),
                        ..Predicate::default()
                    },
                ),
                with_blob,
                ArtefactChange::None,
            ));
        }
        if blobs > 0 {
            state.blobs().sync(&[]).expect("sync blobs");
        }
        let ticket = writer.submit(batch).expect("submit");
        if let Some(prev) = pending.replace(ticket) {
            let _: evident::ledger::writer::Appended = prev.wait().expect("commit");
        }
    }
    if let Some(prev) = pending {
        prev.wait().expect("commit");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cp = writer.checkpoint().expect("checkpoint");
    println!(
        "{{\"entries\": {}, \"batch\": {batch_size}, \"seconds\": {elapsed:.3}, \"entries_per_second\": {:.0}, \"checkpoint_size\": {}}}",
        n - from,
        (n - from) as f64 / elapsed,
        cp.size
    );
}
