//! Our Merkle tree (`merkle.rs`) and signed notes (`note.rs`) against an independent
//! implementation: Cloudflare's `tlog_tiles` (a port of Go's `golang.org/x/mod/sumdb/tlog`)
//! and `signed_note` (of `golang.org/x/mod/sumdb/note`). The byte-exact vectors in
//! `vectors.rs` pin a few cases; these tests compare every stored hash, root and proof of
//! random trees, and notes signed by one side and opened by the other.

use proptest::prelude::*;
use signed_note::{
    Note, Signer as _, StandardSigner, StandardVerifier, Verifier as _, VerifierList,
};
use tlog_tiles as tt;

use super::merkle::{
    Frontier, Hash, MerkleError, consistency_proof, inclusion_proof, leaf_hash, tree_hash,
    verify_consistency, verify_inclusion,
};
use super::note::{Checkpoint, NoteSigner, NoteVerifier};

/// Their stored hashes, by the same stored index layout as ours.
struct Theirs(Vec<tt::Hash>);

impl tt::HashReader for Theirs {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tt::Hash>, tt::Error> {
        indexes
            .iter()
            .map(|&i| {
                self.0
                    .get(i as usize)
                    .copied()
                    .ok_or_else(|| tt::Error::InvalidInput(format!("no hash {i}")))
            })
            .collect()
    }
}

fn ours(h: &tt::Hash) -> Hash {
    h.0
}

fn theirs(h: &Hash) -> tt::Hash {
    tt::Hash(*h)
}

/// Both sides' stored hashes for `records`, appended one by one.
fn grow(records: &[Vec<u8>]) -> (Vec<Hash>, Theirs) {
    let mut frontier = Frontier::load(&Vec::<Hash>::new(), 0).expect("empty");
    let (mut mine, mut their) = (Vec::new(), Theirs(Vec::new()));
    for (n, data) in records.iter().enumerate() {
        mine.extend(frontier.append(leaf_hash(data)));
        let add = tt::stored_hashes(n as u64, data, &their).expect("their stored hashes");
        their.0.extend(add);
    }
    (mine, their)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every stored hash, every root, and every inclusion and consistency proof of a random
    /// tree are byte-identical on both sides, and each side accepts the other's proofs.
    #[test]
    fn the_tree_and_its_proofs_match_tlog_tiles(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..140),
        picks in prop::collection::vec((any::<u64>(), any::<u64>()), 12),
    ) {
        let (mine, their) = grow(&records);
        prop_assert_eq!(&mine, &their.0.iter().map(ours).collect::<Vec<_>>());
        let n = records.len() as u64;
        let roots: Vec<Hash> = (0..=n)
            .map(|size| {
                let a = tree_hash(&mine, size).expect("our root");
                let b = tt::tree_hash(size, &their).expect("their root");
                assert_eq!(a, ours(&b), "roots of size {size}");
                a
            })
            .collect();
        for (a, b) in picks {
            let size = 1 + a % n;
            let index = b % size;
            let leaf = leaf_hash(&records[index as usize]);
            let p = inclusion_proof(&mine, index, size).expect("our inclusion proof");
            let q = tt::prove_record(size, index, &their).expect("their inclusion proof");
            prop_assert_eq!(&p, &q.iter().map(ours).collect::<Vec<_>>());
            prop_assert!(tt::check_record(&p.iter().map(theirs).collect(), size,
                theirs(&roots[size as usize]), index, theirs(&leaf)).is_ok());
            prop_assert!(verify_inclusion(&leaf, index, size, &p, &roots[size as usize]));

            let old = 1 + b % size;
            let p = consistency_proof(&mine, old, size).expect("our consistency proof");
            let q = tt::prove_tree(size, old, &their).expect("their consistency proof");
            prop_assert_eq!(&p, &q.iter().map(ours).collect::<Vec<_>>());
            prop_assert!(tt::check_tree(&p.iter().map(theirs).collect(), size,
                theirs(&roots[size as usize]), old, theirs(&roots[old as usize])).is_ok());
            prop_assert!(verify_consistency(old, size, &p, &roots[old as usize],
                &roots[size as usize]));
        }
    }
}

/// A proof one side rejects, the other rejects too: a flipped bit in a hash, a proof one
/// hash short, and the right proof for the wrong leaf.
#[test]
fn both_sides_reject_the_same_broken_proofs() {
    let records: Vec<Vec<u8>> = (0..23u8).map(|i| vec![i; 3]).collect();
    let (mine, their) = grow(&records);
    let root = tree_hash(&mine, 23).expect("root");
    let leaf = leaf_hash(&records[5]);
    let good = inclusion_proof(&mine, 5, 23).expect("proof");
    let mut flipped = good.clone();
    flipped[2][7] ^= 0x10;
    let short = good[..good.len() - 1].to_vec();
    let wrong_leaf = leaf_hash(&records[6]);
    for (proof, leaf) in [(&flipped, &leaf), (&short, &leaf), (&good, &wrong_leaf)] {
        assert!(!verify_inclusion(leaf, 5, 23, proof, &root));
        let q = proof.iter().map(theirs).collect();
        assert!(tt::check_record(&q, 23, theirs(&root), 5, theirs(leaf)).is_err());
    }
    assert!(matches!(
        inclusion_proof(&mine, 23, 23),
        Err(MerkleError::OutOfRange(_))
    ));
    assert!(tt::prove_record(23, 23, &their).is_err());
}

/// A checkpoint we sign opens with `signed_note` under our published verifier key, and its
/// body parses as `tlog_tiles` reads checkpoints; a note `signed_note` signs with our private
/// key string opens with our verifier. A changed byte fails both.
#[test]
fn signed_notes_open_on_both_sides() {
    let signer = NoteSigner::from_seed("evident.test/log", &[7u8; 32]).expect("signer");
    let vkey = signer.verifier().key_string();
    let root = tree_hash(&grow(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]).0, 3).expect("root");
    let body = Checkpoint {
        origin: "evident.test/log".into(),
        size: 3,
        root,
    }
    .text();
    let note = signer.sign(&body).expect("signed");

    let their_verifier = StandardVerifier::new(&vkey).expect("their parse of our verifier key");
    assert_eq!(their_verifier.name(), "evident.test/log");
    let known = VerifierList::new(vec![Box::new(their_verifier.clone())]);
    let opened = Note::from_bytes(note.as_bytes()).expect("their parse of our note");
    let (verified, unverified) = opened.verify(&known).expect("our signature verifies");
    assert_eq!((verified.len(), unverified.len()), (1, 0));
    let cp = tt::Checkpoint::from_bytes(opened.text()).expect("their parse of our checkpoint");
    assert_eq!(
        (cp.origin(), cp.size(), ours(cp.hash())),
        ("evident.test/log", 3, root)
    );
    let tampered = note.replacen("\n3\n", "\n4\n", 1);
    assert!(
        Note::from_bytes(tampered.as_bytes())
            .expect("still a note")
            .verify(&known)
            .is_err()
    );

    let their_signer =
        StandardSigner::new(&signer.private_key_string()).expect("their parse of our key");
    assert_eq!(their_signer.key_id(), their_verifier.key_id());
    let mut theirs_note = Note::new(body.as_bytes(), &[]).expect("note");
    theirs_note
        .add_sigs(&[&their_signer])
        .expect("their signature");
    let text = String::from_utf8(theirs_note.to_bytes()).expect("UTF-8");
    let ours_verifier = NoteVerifier::parse(&vkey).expect("our verifier");
    assert_eq!(
        ours_verifier.open(&text).expect("their signature opens"),
        body
    );
    assert_eq!(
        Checkpoint::open(&text, &ours_verifier)
            .expect("checkpoint")
            .root,
        root
    );
    assert!(
        ours_verifier
            .open(&text.replacen("\n3\n", "\n4\n", 1))
            .is_err()
    );
}
