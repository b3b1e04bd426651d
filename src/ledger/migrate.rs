//! `evident blobs migrate`: copy the local blob store to a bucket, verifying each blob's
//! digest before it leaves, then switch the ledger to the bucket.
//!
//! Resumable: objects the bucket already holds (an interrupted run's, acknowledged whole)
//! are not uploaded again, but each is downloaded and re-hashed: only the exact content
//! may stand under its digest's name. The local store is left as it was; it stays a read cache until removed, so
//! nothing becomes unreadable on this host at any point.

use std::fs;
use std::path::PathBuf;

use super::LedgerError;
use super::blobs::{UPLOADS_IN_FLIGHT, key_for, read_location, write_location};
use super::leaf::hex;
use super::state::StateDir;
use crate::objects::{ObjectBucket, StorageConfig};

/// Blobs re-hashed before they are uploaded together.
const BATCH: usize = 64;

/// What a migration did.
#[derive(Debug, Default, serde::Serialize)]
pub struct MigrateSummary {
    /// Where the content now lives.
    pub to: String,
    /// Blobs in the local store.
    pub blobs: u64,
    /// Blobs this run uploaded.
    pub copied: u64,
    /// Blobs the bucket already held.
    pub present: u64,
    /// Bytes uploaded.
    pub bytes: u64,
}

/// Copies the blobs of `state` into the bucket of `to` and records it as the ledger's
/// content store. `progress` is called with (blobs done, blobs total).
pub fn migrate(
    state: &StateDir,
    to: &StorageConfig,
    mut progress: impl FnMut(u64, u64),
) -> Result<MigrateSummary, LedgerError> {
    let recorded = read_location(state.dir()).map_err(LedgerError::Blobs)?;
    if let Some(r) = recorded.as_ref().filter(|r| !r.same_place(to)) {
        return Err(LedgerError::Blobs(format!(
            "this ledger's content already lives in {}; migrating between buckets is the \
             store's job (copy the objects under sha256/), then set [blobs] url",
            r.url
        )));
    }
    let bucket = ObjectBucket::open(
        to,
        "[blobs]",
        "s3:PutObject, s3:GetObject and s3:ListBucket on the bucket",
        1 << 20,
    )
    .map_err(|e| LedgerError::Blobs(e.to_string()))?;
    let blobs = state.blobs();
    let mut summary = MigrateSummary {
        to: bucket.describe(),
        ..MigrateSummary::default()
    };
    // Twice: blobs a collector added while the first pass ran are copied by the second,
    // after the switch.
    for pass in 0..2 {
        let present: std::collections::HashMap<String, u64> = bucket
            .list("sha256/")
            .map_err(|e| LedgerError::Blobs(e.to_string()))?
            .into_iter()
            .collect();
        let local = blobs
            .local_blobs()
            .map_err(|e| LedgerError::io("listing the local blob store", e))?;
        let total = local.len() as u64;
        let mut batch: Vec<(String, PathBuf)> = Vec::new();
        let mut present_here: Vec<super::merkle::Hash> = Vec::new();
        for (i, (h, path)) in local.iter().enumerate() {
            let key = key_for(h);
            let size = fs::metadata(path)
                .map_err(|e| LedgerError::io(format!("reading {}", path.display()), e))?
                .len();
            match present.get(&key) {
                Some(&s) if s == size => {
                    if pass == 0 {
                        // The size agrees; the content must too (an object planted or damaged
                        // under a digest's name would otherwise become the evidence).
                        present_here.push(*h);
                    }
                }
                Some(&s) => {
                    return Err(LedgerError::Blobs(format!(
                        "{}{key} holds {s} bytes but the blob is {size}: the bucket's object \
                         is not this content; remove it and run the migration again",
                        summary.to
                    )));
                }
                None => {
                    // The name is the digest: a damaged local blob must not leave under it.
                    let got = blobs
                        .rehash_file(path)
                        .map_err(|e| LedgerError::io(format!("reading {}", path.display()), e))?;
                    if &got != h {
                        return Err(LedgerError::Corrupt(format!(
                            "blob {} hashes to {}, not to its name",
                            path.display(),
                            hex(&got)
                        )));
                    }
                    batch.push((key, path.clone()));
                    summary.bytes += size;
                }
            }
            if present_here.len() >= BATCH || i + 1 == local.len() {
                summary.present += check_present(&blobs, &bucket, &summary.to, &present_here)?;
                present_here.clear();
            }
            if batch.len() >= BATCH || i + 1 == local.len() {
                for r in bucket.put_files_once(&batch, UPLOADS_IN_FLIGHT) {
                    r.map_err(|e| LedgerError::Blobs(e.to_string()))?;
                    summary.copied += 1;
                }
                batch.clear();
            }
            if pass == 0 {
                progress(i as u64 + 1, total);
            }
        }
        if pass == 0 {
            summary.blobs = total;
            write_location(state.dir(), Some(to))
                .map_err(|e| LedgerError::io("recording the bucket in the state directory", e))?;
            record_lease(state)?;
        }
    }
    Ok(summary)
}

/// Re-hashes the bucket's objects for `digests`, which a listing showed present with the
/// right size: each must be exactly that content. Returns how many were checked.
fn check_present(
    blobs: &super::blobs::BlobStore,
    bucket: &ObjectBucket,
    to: &str,
    digests: &[super::merkle::Hash],
) -> Result<u64, LedgerError> {
    for (h, got) in digests.iter().zip(blobs.rehash_in(bucket, digests)) {
        let key = key_for(h);
        match got {
            Ok(Some(g)) if &g == h => {}
            Ok(Some(g)) => {
                return Err(LedgerError::Blobs(format!(
                    "{to}{key} is not this content (it hashes to {}): remove the object and \
                     run the migration again",
                    hex(&g)
                )));
            }
            Ok(None) => {
                return Err(LedgerError::Blobs(format!(
                    "{to}{key} was listed but is gone: run the migration again"
                )));
            }
            Err(e) => {
                return Err(LedgerError::Blobs(format!("reading {to}{key}: {e}")));
            }
        }
    }
    Ok(digests.len() as u64)
}

/// Records the sequencer lease with the ledger's latest checkpoint, so the first signing
/// after the switch finds the log's head in the bucket (a lease that is missing later is
/// then refused, not recreated).
fn record_lease(state: &StateDir) -> Result<(), LedgerError> {
    let reader = super::reader::Reader::open(state)?;
    let Some((size, note)) = reader.latest_checkpoint()? else {
        return Ok(()); // nothing signed yet: the first checkpoint creates it
    };
    let Some(lease) = super::lease::Lease::for_ledger(state.dir(), &state.origin()?) else {
        return Ok(());
    };
    lease.hold(
        &state.verifier()?,
        &note,
        size,
        &|s| super::merkle::tree_hash(&reader, s).map_err(LedgerError::from),
        false,
    )
}
