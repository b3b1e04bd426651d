//! The worked example of `ledger-formats.md`, reproduced byte for byte.

use sha2::{Digest, Sha256};

use super::leaf::{EntryStatement, Predicate, hex};
use super::merkle::{
    Frontier, Hash, consistency_proof, inclusion_proof, leaf_hash, tree_hash, verify_consistency,
    verify_inclusion,
};
use super::note::{Checkpoint, NoteSigner, TlogProof, decode_hash, encode_hash};

const ORIGIN: &str = "ledger.example.com/aims";
const LEAVES: [(&str, &str); 5] = [
    ("model_version", "weights-v1"),
    ("ci_run", "run-42 log"),
    ("ticket", "JIRA-7"),
    ("document", "AI policy v3"),
    ("ci_run", "run-43 log"),
];

fn leaf(i: usize) -> Vec<u8> {
    let (kind, content) = LEAVES[i];
    EntryStatement::new(
        "https://ledger.example.com/evidence-entry/v1",
        &format!("{kind}-{i}"),
        &hex(&Sha256::digest(content.as_bytes())),
        Predicate {
            collected_at: format!("2026-11-0{}T10:00:00Z", i + 1),
            controls: vec!["A.6.2.8".into()],
            kind: kind.into(),
            source: "demo".into(),
            ..Predicate::default()
        },
    )
    .to_leaf_bytes()
}

fn tree() -> (Vec<Hash>, Vec<Hash>) {
    let mut stored = Vec::new();
    let mut leaves = Vec::new();
    let mut f = Frontier::default();
    for i in 0..5 {
        let h = leaf_hash(&leaf(i));
        leaves.push(h);
        stored.extend(f.append(h));
    }
    (stored, leaves)
}

fn b64_lines(s: &str) -> Vec<Hash> {
    s.lines().map(|l| decode_hash(l).unwrap()).collect()
}

#[test]
fn leaf_two_is_byte_exact() {
    let expected = r#"{"_type":"https://in-toto.io/Statement/v1","predicate":{"collectedAt":"2026-11-03T10:00:00Z","controls":["A.6.2.8"],"kind":"ticket","source":"demo"},"predicateType":"https://ledger.example.com/evidence-entry/v1","subject":[{"digest":{"sha256":"cfbbc0afe758dd74b4444d0adbfae4f1e299da0c741eff7742259827a63f4eb5"},"name":"ticket-2"}]}"#;
    assert_eq!(String::from_utf8(leaf(2)).unwrap(), expected);
    assert_eq!(
        hex(&leaf_hash(&leaf(2))),
        "99485f955e05838282e54d8328629487a9d7372e67cb66a71fbec543b80e88a2"
    );
}

#[test]
fn checkpoint_is_byte_exact() {
    let (stored, _) = tree();
    let root = tree_hash(&stored, 5).unwrap();
    assert_eq!(
        encode_hash(&root),
        "9RAoFSNOePznc2fe/yL8Rl8jwnm7WDDlzLNUdZ8t+6I="
    );
    let signer = NoteSigner::from_seed(ORIGIN, &[1u8; 32]).unwrap();
    let cp = Checkpoint {
        origin: ORIGIN.into(),
        size: 5,
        root,
    };
    let note = signer.sign(&cp.text()).unwrap();
    assert_eq!(
        note,
        "ledger.example.com/aims\n5\n9RAoFSNOePznc2fe/yL8Rl8jwnm7WDDlzLNUdZ8t+6I=\n\n\u{2014} ledger.example.com/aims efha+zeGB/MlYLmYRiAPKyztqYQuVY3tKzVfCRCEiDmK5Yd5i5aNi2lMHDIGCNbxTNoASzWecDR35h/pT1IUUuy1zgg=\n"
    );
    assert_eq!(Checkpoint::open(&note, &signer.verifier()).unwrap(), cp);
}

#[test]
fn inclusion_proof_is_byte_exact() {
    let (stored, leaves) = tree();
    let proof = inclusion_proof(&stored, 2, 5).unwrap();
    let expected = b64_lines(
        "mJuNFyr0r7PSnSDX8686Sph4hl63VCp5bvNmVRs0FU0=\nJBQX+Ip6DleGa+i84JzFvrdDOJ23JiTaytnekA4t/ps=\nVSvOgAYTi79NF47zKOY5znfWGV2Hd9xYUAcAkjIhdq8=",
    );
    assert_eq!(proof, expected);
    let root = tree_hash(&stored, 5).unwrap();
    assert!(verify_inclusion(&leaves[2], 2, 5, &proof, &root));
    // The receipt wraps it with the checkpoint.
    let signer = NoteSigner::from_seed(ORIGIN, &[1u8; 32]).unwrap();
    let note = signer
        .sign(
            &Checkpoint {
                origin: ORIGIN.into(),
                size: 5,
                root,
            }
            .text(),
        )
        .unwrap();
    let receipt = TlogProof {
        index: 2,
        path: proof,
        checkpoint: note.clone(),
    }
    .encode();
    assert!(receipt.starts_with(
        "c2sp.org/tlog-proof@v1\nindex 2\nmJuNFyr0r7PSnSDX8686Sph4hl63VCp5bvNmVRs0FU0=\n"
    ));
    assert!(receipt.ends_with(&format!(
        "VSvOgAYTi79NF47zKOY5znfWGV2Hd9xYUAcAkjIhdq8=\n\n{note}"
    )));
}

#[test]
fn consistency_proof_is_byte_exact() {
    let (stored, _) = tree();
    let proof = consistency_proof(&stored, 3, 5).unwrap();
    let expected = b64_lines(
        "mUhflV4Fg4KC5U2DKGKUh6nXNy5ny2anH77FQ7gOiKI=\nmJuNFyr0r7PSnSDX8686Sph4hl63VCp5bvNmVRs0FU0=\nJBQX+Ip6DleGa+i84JzFvrdDOJ23JiTaytnekA4t/ps=\nVSvOgAYTi79NF47zKOY5znfWGV2Hd9xYUAcAkjIhdq8=",
    );
    assert_eq!(proof, expected);
    let (r3, r5) = (
        tree_hash(&stored, 3).unwrap(),
        tree_hash(&stored, 5).unwrap(),
    );
    assert!(verify_consistency(3, 5, &proof, &r3, &r5));
}
