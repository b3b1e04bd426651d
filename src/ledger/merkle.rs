//! RFC 6962 / RFC 9162 Merkle tree over Go's `sumdb/tlog` stored-hash layout.
//!
//! Every node of the tree has one position in a dense sequence (`stored_hash_index`), so a
//! single table holds the whole tree and an append writes just under two hashes on average.
//! Roots and proofs of any earlier size are computed from those stored hashes in O(log n)
//! reads. The verification functions follow RFC 9162 §2.1.3.2 and §2.1.4.2 to the letter, so
//! an auditor's own implementation of the RFC agrees with ours.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 ‖ data)`: the hash of a leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Where the `n`th hash of `level` lives in the stored sequence (Go's `StoredHashIndex`).
pub fn stored_hash_index(level: u32, n: u64) -> u64 {
    // Level L's nth hash is written right after level L+1's (2n+1)th hash.
    let mut n = n;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    // Level 0's nth hash is written at n + n/2 + n/4 + ...
    let mut i = 0u64;
    while n > 0 {
        i += n;
        n >>= 1;
    }
    i + u64::from(level)
}

/// How many hashes are stored for a tree of `n` leaves (Go's `StoredHashCount`).
pub fn stored_hash_count(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mut count = stored_hash_index(0, n - 1) + 1;
    let mut i = n - 1;
    while i & 1 != 0 {
        count += 1;
        i >>= 1;
    }
    count
}

/// Errors from reading stored hashes or asking for impossible proofs.
#[derive(Debug, thiserror::Error)]
pub enum MerkleError {
    /// A stored hash the computation needs is absent.
    #[error("stored tree hash {0} is missing")]
    Missing(u64),
    /// The storage behind the reader failed.
    #[error("reading tree hashes: {0}")]
    Storage(String),
    /// A proof was asked for sizes or indexes that do not exist.
    #[error("{0}")]
    OutOfRange(String),
}

/// Source of stored hashes by stored index.
pub trait HashReader {
    /// Returns the hash stored at `sidx`.
    fn read_hash(&self, sidx: u64) -> Result<Hash, MerkleError>;
}

impl HashReader for Vec<Hash> {
    fn read_hash(&self, sidx: u64) -> Result<Hash, MerkleError> {
        usize::try_from(sidx)
            .ok()
            .and_then(|i| self.get(i))
            .copied()
            .ok_or(MerkleError::Missing(sidx))
    }
}

fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n > 1);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The hash of leaves `[lo, hi)`; `lo` must be aligned as RFC 6962's recursion leaves it.
fn subtree_hash<R: HashReader + ?Sized>(r: &R, lo: u64, hi: u64) -> Result<Hash, MerkleError> {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return r.read_hash(stored_hash_index(level, lo >> level));
    }
    let k = largest_power_of_two_below(n);
    Ok(node_hash(
        &subtree_hash(r, lo, lo + k)?,
        &subtree_hash(r, lo + k, hi)?,
    ))
}

/// The root hash of the first `size` leaves.
pub fn tree_hash<R: HashReader + ?Sized>(r: &R, size: u64) -> Result<Hash, MerkleError> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree_hash(r, 0, size)
}

/// The audit path of leaf `index` in the tree of `size` leaves, leaf side first.
pub fn inclusion_proof<R: HashReader + ?Sized>(
    r: &R,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if index >= size {
        return Err(MerkleError::OutOfRange(format!(
            "entry {index} is not in a tree of size {size}"
        )));
    }
    let mut out = Vec::new();
    path(r, index, 0, size, &mut out)?;
    Ok(out)
}

fn path<R: HashReader + ?Sized>(
    r: &R,
    m: u64,
    lo: u64,
    hi: u64,
    out: &mut Vec<Hash>,
) -> Result<(), MerkleError> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        path(r, m, lo, lo + k, out)?;
        out.push(subtree_hash(r, lo + k, hi)?);
    } else {
        path(r, m - k, lo + k, hi, out)?;
        out.push(subtree_hash(r, lo, lo + k)?);
    }
    Ok(())
}

/// The proof that the tree of size `old` is a prefix of the tree of size `new`.
pub fn consistency_proof<R: HashReader + ?Sized>(
    r: &R,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if old > new {
        return Err(MerkleError::OutOfRange(format!(
            "a tree of size {old} cannot be a prefix of one of size {new}"
        )));
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(r, old, 0, new, true, &mut out)?;
    }
    Ok(out)
}

fn subproof<R: HashReader + ?Sized>(
    r: &R,
    m: u64,
    lo: u64,
    hi: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), MerkleError> {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push(subtree_hash(r, lo, hi)?);
        }
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m <= k {
        subproof(r, m, lo, lo + k, whole, out)?;
        out.push(subtree_hash(r, lo + k, hi)?);
    } else {
        subproof(r, m - k, lo + k, hi, false, out)?;
        out.push(subtree_hash(r, lo, lo + k)?);
    }
    Ok(())
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && &r == root
}

/// Checks a consistency proof between two tree heads (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        // RFC 9162 defines no proof from the empty tree: its root is known.
        return proof.is_empty() && *old_root == empty_root();
    }
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(old_root);
    }
    path.extend(proof.iter());
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (**first, **first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    &fr == old_root && &sr == new_root && s == 0
}

/// The right edge of the tree: roots of the perfect subtrees that make up `size` leaves,
/// largest first. Enough to append and to compute the current root without any reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// Loads the frontier of a tree of `size` leaves from its stored hashes.
    pub fn load<R: HashReader + ?Sized>(r: &R, size: u64) -> Result<Self, MerkleError> {
        let mut hashes = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                hashes.push(r.read_hash(stored_hash_index(level, start >> level))?);
                start += 1u64 << level;
            }
        }
        Ok(Frontier { size, hashes })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; returns the hashes to store from `stored_hash_index(0, old size)`.
    pub fn append(&mut self, leaf: Hash) -> Vec<Hash> {
        let merges = self.size.trailing_ones();
        let mut stored = Vec::with_capacity(merges as usize + 1);
        stored.push(leaf);
        let mut h = leaf;
        for _ in 0..merges {
            // A set low bit of `size` always has a matching subtree on the stack.
            let Some(left) = self.hashes.pop() else { break };
            h = node_hash(&left, &h);
            stored.push(h);
        }
        self.hashes.push(h);
        self.size += 1;
        stored
    }

    /// The current root hash.
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds stored hashes for `leaves` the way the writer does.
    fn build(leaves: &[Hash]) -> (Vec<Hash>, Frontier) {
        let mut stored = Vec::new();
        let mut f = Frontier::default();
        for (i, l) in leaves.iter().enumerate() {
            assert_eq!(stored.len() as u64, stored_hash_index(0, i as u64));
            stored.extend(f.append(*l));
            assert_eq!(stored.len() as u64, stored_hash_count(i as u64 + 1));
        }
        (stored, f)
    }

    /// RFC 6962 MTH computed directly from the definition.
    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = largest_power_of_two_below(n as u64) as usize;
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn stored_index_matches_go() {
        // Values from Go's tlog_test.go TestStoredHashIndex pattern.
        assert_eq!(stored_hash_index(0, 0), 0);
        assert_eq!(stored_hash_index(0, 1), 1);
        assert_eq!(stored_hash_index(1, 0), 2);
        assert_eq!(stored_hash_index(0, 2), 3);
        assert_eq!(stored_hash_index(0, 3), 4);
        assert_eq!(stored_hash_index(1, 1), 5);
        assert_eq!(stored_hash_index(2, 0), 6);
        assert_eq!(stored_hash_count(0), 0);
        assert_eq!(stored_hash_count(1), 1);
        assert_eq!(stored_hash_count(2), 3);
        assert_eq!(stored_hash_count(4), 7);
    }

    #[test]
    fn empty_tree_root() {
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(tree_hash(&Vec::<Hash>::new(), 0).unwrap(), empty_root());
    }

    #[test]
    fn proofs_refuse_impossible_sizes() {
        let (stored, _) = build(&leaves(3));
        assert!(inclusion_proof(&stored, 3, 3).is_err());
        assert!(consistency_proof(&stored, 4, 3).is_err());
        assert!(!verify_inclusion(&[0; 32], 3, 3, &[], &[0; 32]));
    }

    pub(crate) fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        #[test]
        fn every_proof_verifies(n in 1usize..60, seed in any::<u64>()) {
            let ls: Vec<Hash> = (0..n).map(|i| leaf_hash(format!("{seed}-{i}").as_bytes())).collect();
            let (stored, frontier) = build(&ls);
            for size in 1..=n as u64 {
                let root = tree_hash(&stored, size).unwrap();
                prop_assert_eq!(root, naive_root(&ls[..size as usize]));
                prop_assert_eq!(Frontier::load(&stored, size).unwrap().root(), root);
                for i in 0..size {
                    let p = inclusion_proof(&stored, i, size).unwrap();
                    prop_assert!(verify_inclusion(&ls[i as usize], i, size, &p, &root));
                    // A proof for the wrong leaf or index must fail.
                    let other = leaf_hash(b"not a leaf");
                    prop_assert!(!verify_inclusion(&other, i, size, &p, &root));
                    if size > 1 {
                        prop_assert!(!verify_inclusion(&ls[i as usize], (i + 1) % size, size, &p, &root));
                    }
                }
                for old in 0..=size {
                    let old_root = tree_hash(&stored, old).unwrap();
                    let p = consistency_proof(&stored, old, size).unwrap();
                    prop_assert!(verify_consistency(old, size, &p, &old_root, &root));
                    if old > 0 && old < size {
                        let bad = leaf_hash(b"forged");
                        prop_assert!(!verify_consistency(old, size, &p, &bad, &root));
                        prop_assert!(!verify_consistency(old, size, &p, &old_root, &bad));
                        for j in 0..p.len() {
                            let mut q = p.clone();
                            q[j][0] ^= 1;
                            prop_assert!(!verify_consistency(old, size, &q, &old_root, &root));
                        }
                    }
                }
            }
            prop_assert_eq!(frontier.root(), naive_root(&ls));
        }
    }
}
