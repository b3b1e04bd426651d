//! One sequencer per log: before it signs a checkpoint, a ledger whose content lives in a
//! bucket takes a lease there (`<prefix>sequencer.lease`) with conditional writes, as
//! Sunlight keeps its latest checkpoint behind a compare-and-swap.
//!
//! The lease names its holder (host and state directory), when it expires, and the log's
//! latest signed checkpoint. A ledger signs only when it holds the lease (or it expired)
//! and its own tree contains that checkpoint; then it replaces the lease with `If-Match`
//! (or creates it with `If-None-Match: *`), so of two daemons racing, one wins and the
//! other re-reads and refuses. Two copies of a ledger (a restored backup beside the
//! original, a standby started too early) can therefore never sign different trees under
//! one origin, even after a lease expired.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::LedgerError;
use super::blobs::BlobStore;
use super::merkle::Hash;
use super::note::{Checkpoint, NoteVerifier};
use crate::objects::ObjectBucket;

/// The lease's key under the bucket's prefix.
pub const KEY: &str = "sequencer.lease";

/// How long a lease lasts after the checkpoint that renewed it, unless configured.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);

/// The lease object, as stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Who holds it: `host:/state/dir`.
    pub holder: String,
    /// The log it is for.
    pub origin: String,
    /// Seconds since the epoch after which another sequencer may take it.
    pub expires: u64,
    /// The log's latest checkpoint, signed (a note).
    pub checkpoint: String,
}

/// The lease of one ledger's bucket.
#[derive(Debug)]
pub struct Lease {
    /// The bucket (opened lazily by the blob store).
    pub bucket: std::sync::Arc<dyn LeaseStore>,
    /// This sequencer: `host:/state/dir`.
    pub holder: String,
    /// The log.
    pub origin: String,
    /// How long a lease lasts after each checkpoint.
    pub duration: Duration,
}

/// Where a lease is kept: read with its version, written under a condition.
pub trait LeaseStore: std::fmt::Debug + Send + Sync {
    /// The lease and its ETag, or `None`.
    fn read(&self) -> Result<Option<(Vec<u8>, String)>, String>;
    /// Writes it if `condition` holds (`if-none-match: *` or `if-match: ETAG`); false when
    /// the store refused the condition.
    fn write(&self, body: &[u8], condition: (&str, &str)) -> Result<bool, String>;
    /// Where, for messages.
    fn describe(&self) -> String;
}

impl LeaseStore for BlobStore {
    fn read(&self) -> Result<Option<(Vec<u8>, String)>, String> {
        self.lease_bucket()?
            .get_tagged(KEY)
            .map_err(|e| e.to_string())
    }

    fn write(&self, body: &[u8], condition: (&str, &str)) -> Result<bool, String> {
        self.lease_bucket()?
            .put_if(KEY, body, "application/json", condition)
            .map(|etag| etag.is_some())
            .map_err(|e| e.to_string())
    }

    fn describe(&self) -> String {
        format!(
            "{}/{KEY}",
            self.location().unwrap_or_default().trim_end_matches('/')
        )
    }
}

impl BlobStore {
    fn lease_bucket(&self) -> Result<&ObjectBucket, String> {
        self.bucket()
            .unwrap_or_else(|| Err("content is not in a bucket".to_owned()))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `host:/state/dir` for this process.
pub fn holder_name(state: &std::path::Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    let dir = std::fs::canonicalize(state).unwrap_or_else(|_| state.to_owned());
    format!("{host}:{}", dir.display())
}

impl Lease {
    /// The lease a ledger in `state` signs under: `None` when its content is local (one
    /// host, one state directory lock: nothing to share).
    pub fn for_ledger(state: &std::path::Path, origin: &str) -> Option<Lease> {
        let blobs = BlobStore::new(state);
        let duration = blobs.lease_duration()?;
        Some(Lease {
            bucket: std::sync::Arc::new(blobs),
            holder: holder_name(state),
            origin: origin.to_owned(),
            duration,
        })
    }

    /// Takes or renews the lease for the checkpoint `note` of size `size`; `root_at` gives
    /// this ledger's root at an earlier size. Refuses when another sequencer holds it, or
    /// when this tree does not contain the log's latest checkpoint.
    ///
    /// A missing lease is created only when `signed_before` is false (this ledger signed
    /// nothing yet) or `create` is set (a migration recording the lease for the first
    /// time): a lease that vanished from a ledger that signed before could hide another
    /// copy's newer checkpoint, so it is refused, not recreated.
    pub fn hold(
        &self,
        verifier: &NoteVerifier,
        note: &str,
        size: u64,
        root_at: &dyn Fn(u64) -> Result<Hash, LedgerError>,
        signed_before: bool,
    ) -> Result<(), LedgerError> {
        let refuse = |why: String| {
            LedgerError::Blobs(format!(
                "will not sign checkpoint {size}: {why} (lease {})",
                self.bucket.describe()
            ))
        };
        for _ in 0..5 {
            let current = self.bucket.read().map_err(refuse)?;
            let condition = match &current {
                None if signed_before => {
                    return Err(refuse(
                        "the lease is missing, but this ledger signed checkpoints before: it \
                         was deleted, or the bucket is not the one this ledger used. Restore \
                         it (from the bucket's versioning), or run `evident blobs migrate --to \
                         URL` again to record it knowingly"
                            .to_owned(),
                    ));
                }
                None => ("if-none-match", "*".to_owned()),
                Some((body, etag)) => {
                    let lease: LeaseRecord = serde_json::from_slice(body)
                        .map_err(|e| refuse(format!("the lease is not readable ({e})")))?;
                    self.check(&lease, verifier, size, root_at)
                        .map_err(refuse)?;
                    ("if-match", etag.clone())
                }
            };
            let record = LeaseRecord {
                holder: self.holder.clone(),
                origin: self.origin.clone(),
                expires: now() + self.duration.as_secs(),
                checkpoint: note.to_owned(),
            };
            let body = serde_json::to_vec_pretty(&record)
                .map_err(|e| refuse(format!("cannot write the lease: {e}")))?;
            if self
                .bucket
                .write(&body, (condition.0, &condition.1))
                .map_err(refuse)?
            {
                return Ok(());
            }
            // Another sequencer wrote it between our read and write: read it again.
        }
        Err(refuse(
            "the lease kept changing under us: another sequencer is signing".to_owned(),
        ))
    }

    /// Whether this ledger may replace `lease`.
    fn check(
        &self,
        lease: &LeaseRecord,
        verifier: &NoteVerifier,
        size: u64,
        root_at: &dyn Fn(u64) -> Result<Hash, LedgerError>,
    ) -> Result<(), String> {
        if lease.origin != self.origin {
            return Err(format!(
                "the lease is for log {:?}, not {:?}: give each log its own bucket prefix",
                lease.origin, self.origin
            ));
        }
        let now = now();
        if lease.holder != self.holder && lease.expires > now {
            return Err(format!(
                "{} holds the sequencer lease for another {} s; stop that daemon (it releases \
                 the lease on a clean stop) or wait for the lease to expire",
                lease.holder,
                lease.expires - now
            ));
        }
        let last = Checkpoint::open(&lease.checkpoint, verifier).map_err(|e| {
            format!(
                "the checkpoint in the lease does not verify with this ledger's key ({e}); the \
                 bucket belongs to another log"
            )
        })?;
        if last.size > size {
            return Err(format!(
                "the log already reached size {} (signed by {}), and this ledger holds only {size} \
                 entries: it was restored from an older backup; restore one taken at or after \
                 that checkpoint",
                last.size, lease.holder
            ));
        }
        let ours = root_at(last.size).map_err(|e| e.to_string())?;
        if ours != last.root {
            return Err(format!(
                "this ledger's tree of size {} differs from the checkpoint {} signed: signing \
                 would show two histories of one log",
                last.size, lease.holder
            ));
        }
        Ok(())
    }

    /// Gives the lease up on a clean stop, so a standby may take it at once: it expires
    /// now, keeping the latest checkpoint. Only when this sequencer holds it.
    pub fn release(&self) -> Result<(), LedgerError> {
        let Some((body, etag)) = self.bucket.read().map_err(LedgerError::Blobs)? else {
            return Ok(());
        };
        let Ok(mut lease) = serde_json::from_slice::<LeaseRecord>(&body) else {
            return Ok(());
        };
        if lease.holder != self.holder {
            return Ok(());
        }
        lease.expires = 0;
        let body = serde_json::to_vec_pretty(&lease)
            .map_err(|e| LedgerError::Blobs(format!("cannot write the lease: {e}")))?;
        self.bucket
            .write(&body, ("if-match", &etag))
            .map(drop)
            .map_err(LedgerError::Blobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::note::NoteSigner;
    use std::sync::Mutex;

    /// A store with an ETag per version and real conditional writes.
    #[derive(Debug, Default)]
    struct Mem(Mutex<Option<(Vec<u8>, u64)>>);

    impl LeaseStore for Mem {
        fn read(&self) -> Result<Option<(Vec<u8>, String)>, String> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .clone()
                .map(|(b, v)| (b, v.to_string())))
        }
        fn write(&self, body: &[u8], (name, value): (&str, &str)) -> Result<bool, String> {
            let mut g = self.0.lock().unwrap();
            let ok = match (name, g.as_ref()) {
                ("if-none-match", None) => true,
                ("if-match", Some((_, v))) => v.to_string() == value,
                _ => false,
            };
            if ok {
                let v = g.as_ref().map_or(1, |(_, v)| v + 1);
                *g = Some((body.to_vec(), v));
            }
            Ok(ok)
        }
        fn describe(&self) -> String {
            "mem".into()
        }
    }

    fn cp(signer: &NoteSigner, size: u64, root: Hash) -> String {
        signer
            .sign(
                &Checkpoint {
                    origin: signer.name().to_owned(),
                    size,
                    root,
                }
                .text(),
            )
            .unwrap()
    }

    #[test]
    fn one_sequencer_signs_and_a_fork_is_refused_even_after_expiry() {
        let signer = NoteSigner::generate("example.org/log").unwrap();
        let v = signer.verifier();
        let store: std::sync::Arc<dyn LeaseStore> = std::sync::Arc::new(Mem::default());
        let lease = |holder: &str, secs: u64| Lease {
            bucket: store.clone(),
            holder: holder.into(),
            origin: "example.org/log".into(),
            duration: Duration::from_secs(secs),
        };
        let tree_a = |s: u64| -> Result<Hash, LedgerError> { Ok([s as u8; 32]) };
        let tree_b = |s: u64| -> Result<Hash, LedgerError> { Ok([s as u8 ^ 0xff; 32]) };
        let a = lease("a:/s", 3600);
        a.hold(&v, &cp(&signer, 10, [10; 32]), 10, &tree_a, false)
            .unwrap();
        a.hold(&v, &cp(&signer, 12, [12; 32]), 12, &tree_a, false)
            .unwrap();
        // B while A holds it: refused, naming A.
        let b = lease("b:/s", 3600);
        let e = b
            .hold(&v, &cp(&signer, 13, [13; 32]), 13, &tree_a, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a:/s holds the sequencer lease"), "{e}");
        // A releases: B, whose tree contains A's last checkpoint, takes over.
        a.release().unwrap();
        b.hold(&v, &cp(&signer, 13, [13; 32]), 13, &tree_a, false)
            .unwrap();
        // A, now behind B, is refused even though it may sign its own tree.
        let e = a
            .hold(&v, &cp(&signer, 12, [12; 32]), 12, &tree_a, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("b:/s holds"), "{e}");
        b.release().unwrap();
        let e = a
            .hold(&v, &cp(&signer, 12, [12; 32]), 12, &tree_a, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("already reached size 13"), "{e}");
        // A tree that differs from the log's latest checkpoint never signs, expired or not.
        let c = lease("c:/s", 3600);
        let e = c
            .hold(&v, &cp(&signer, 20, [20; 32]), 20, &tree_b, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("two histories"), "{e}");
        // Another log's key cannot take this bucket's lease.
        let other = NoteSigner::generate("example.org/log").unwrap();
        let e = c
            .hold(
                &other.verifier(),
                &cp(&other, 20, [20; 32]),
                20,
                &tree_a,
                false,
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not verify"), "{e}");
        // A damaged lease is named, not overwritten.
        let (_, etag) = store.read().unwrap().unwrap();
        assert!(store.write(b"{not json", ("if-match", &etag)).unwrap());
        let e = b
            .hold(&v, &cp(&signer, 14, [14; 32]), 14, &tree_a, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not readable"), "{e}");
        // A lease that vanished from a ledger that signed before is not recreated.
        let fresh: std::sync::Arc<dyn LeaseStore> = std::sync::Arc::new(Mem::default());
        let d = Lease {
            bucket: fresh,
            holder: "d:/s".into(),
            origin: "example.org/log".into(),
            duration: Duration::from_secs(60),
        };
        let e = d
            .hold(&v, &cp(&signer, 15, [15; 32]), 15, &tree_a, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the lease is missing"), "{e}");
        d.hold(&v, &cp(&signer, 15, [15; 32]), 15, &tree_a, false)
            .unwrap();
    }
}
