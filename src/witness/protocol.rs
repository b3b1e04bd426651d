//! The `c2sp.org/tlog-witness` `add-checkpoint` request body: an `old <size>` line, up to 63
//! consistency proof hashes (base64, one per line), a blank line, then the signed checkpoint.

use crate::ledger::merkle::Hash;
use crate::ledger::note::{canonical_u64, decode_hash, encode_hash};

/// Most proof lines a request may carry (the spec's bound: a tree of 2^63 leaves).
pub const MAX_PROOF: usize = 63;
/// The largest request body a witness reads.
pub const MAX_BODY: usize = 64 << 10;
/// The 409 answer's content type: the witness's latest size, in decimal.
pub const SIZE_TYPE: &str = "text/x.tlog.size";

/// A parsed `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size the client believes the witness last cosigned.
    pub old: u64,
    /// Consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

impl AddCheckpoint {
    /// The request body.
    pub fn encode(&self) -> String {
        let mut s = format!("old {}\n", self.old);
        for h in &self.proof {
            s.push_str(&encode_hash(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Parses a request body; the error says what is malformed (a 400 answer).
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or("no blank line before the checkpoint")?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(canonical_u64)
            .ok_or("the first line must be `old <size>`")?;
        let proof = lines
            .map(|l| decode_hash(l).ok_or_else(|| format!("proof line {l:?} is not a base64 hash")))
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF {
            return Err(format!("more than {MAX_PROOF} proof lines"));
        }
        if old == 0 && !proof.is_empty() {
            return Err("a proof from size 0 must be empty".into());
        }
        Ok(AddCheckpoint {
            old,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_malformed_ones_are_named() {
        let req = AddCheckpoint {
            old: 3,
            proof: vec![[1; 32], [2; 32]],
            checkpoint: "o\n5\nAAAA\n\n\u{2014} o x\n".into(),
        };
        let body = req.encode();
        assert!(body.starts_with("old 3\nAQEB"));
        assert_eq!(AddCheckpoint::parse(body.as_bytes()).unwrap(), req);
        for bad in [
            "old 03\n\nx",
            "old 3\nnot-a-hash\n\nx",
            "old 0\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n\nx",
            "old 3\n",
            "older 3\n\nx",
        ] {
            assert!(AddCheckpoint::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let many = format!(
            "old 1\n{}\nx",
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n".repeat(64)
        );
        assert!(AddCheckpoint::parse(many.as_bytes()).is_err());
    }
}
