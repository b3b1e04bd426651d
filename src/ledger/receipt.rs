//! An entry's inclusion receipt (c2sp.org/tlog-proof@v1) against the newest checkpoint,
//! checked before it is handed out: `evident proof` and the API's entry route share it.

use super::LedgerError;
use super::merkle::{Hash, inclusion_proof, leaf_hash, verify_inclusion};
use super::note::{Checkpoint, NoteVerifier, TlogProof};
use super::reader::Reader;

/// Why there is no receipt.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// No such entry.
    #[error("there is no entry {index} (the ledger holds {size})")]
    NoEntry {
        /// The index asked for.
        index: u64,
        /// The ledger's size.
        size: u64,
    },
    /// The entry is newer than the newest checkpoint.
    #[error("entry {0} is not covered by a checkpoint yet; run `evident checkpoint` first")]
    NotCovered(u64),
    /// The stored checkpoint or proof does not verify: the ledger was altered.
    #[error("{0}; run `evident verify`")]
    DoesNotVerify(String),
    /// Reading the ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// A checked receipt.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// The entry's leaf hash.
    pub leaf_hash: Hash,
    /// The checkpoint's tree size.
    pub checkpoint_size: u64,
    /// The receipt: audit path and checkpoint.
    pub proof: TlogProof,
}

/// The receipt of entry `index` against the newest checkpoint, verified with `verifier`.
pub fn receipt(
    reader: &Reader,
    verifier: &NoteVerifier,
    index: u64,
) -> Result<Receipt, ReceiptError> {
    let size = reader.size()?;
    if index >= size {
        return Err(ReceiptError::NoEntry { index, size });
    }
    let (cp_size, note) = reader
        .latest_checkpoint()?
        .filter(|(s, _)| *s > index)
        .ok_or(ReceiptError::NotCovered(index))?;
    let path = inclusion_proof(reader, index, cp_size).map_err(LedgerError::from)?;
    // Trust nothing stored: check the receipt before handing it out.
    let cp = Checkpoint::open(&note, verifier).map_err(|e| {
        ReceiptError::DoesNotVerify(format!("the latest checkpoint does not verify: {e}"))
    })?;
    let mut leaf = None;
    reader.for_each_leaf_at(index, |bytes| leaf = Some(leaf_hash(bytes)))?;
    let leaf = leaf.ok_or(ReceiptError::NoEntry { index, size })?;
    if !verify_inclusion(&leaf, index, cp.size, &path, &cp.root) {
        return Err(ReceiptError::DoesNotVerify(format!(
            "entry {index} does not verify against checkpoint {cp_size}"
        )));
    }
    Ok(Receipt {
        leaf_hash: leaf,
        checkpoint_size: cp_size,
        proof: TlogProof {
            index,
            path,
            checkpoint: note,
        },
    })
}
