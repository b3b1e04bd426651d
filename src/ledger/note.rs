//! C2SP signed notes, checkpoints and `tlog-proof@v1` receipts with Ed25519 keys.
//!
//! Byte layouts follow `c2sp.org/signed-note`, `c2sp.org/tlog-checkpoint` and
//! `c2sp.org/tlog-proof` (Go's `sumdb/note` key strings), so the checkpoints Evident signs can
//! be checked by any implementation of those specifications.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// Signature type byte for Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;
/// Signature type byte for timestamped Ed25519 witness cosignatures (`c2sp.org/tlog-cosignature`).
const ALG_COSIGNATURE: u8 = 0x04;
/// The header line of a cosigned message (domain separation).
const COSIGNATURE_HEADER: &str = "cosignature/v1\n";
/// The separator before a signature line: U+2014 EM DASH and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// More signature lines than this makes a note suspicious rather than useful.
const MAX_SIGNATURES: usize = 100;

/// Errors from key strings, notes, checkpoints and receipts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    /// A key string is malformed.
    #[error("malformed key: {0}")]
    Key(String),
    /// A note, checkpoint or receipt is malformed.
    #[error("malformed {what}: {why}")]
    Format {
        /// What was being parsed.
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// No signature line verified with the given key.
    #[error(
        "no valid signature by key {key} (the note is forged, altered or signed by another key)"
    )]
    BadSignature {
        /// The key name and id that was expected.
        key: String,
    },
}

fn format_err(what: &'static str, why: impl Into<String>) -> NoteError {
    NoteError::Format {
        what,
        why: why.into(),
    }
}

/// What a key signs: a note (a log's checkpoint), or cosignatures of other logs' notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Ed25519 note signatures (type 0x01): a log's key.
    Note,
    /// Timestamped Ed25519 cosignatures (type 0x04, `cosignature/v1`): a witness's key.
    Cosigner,
}

impl KeyKind {
    fn alg(self) -> u8 {
        match self {
            KeyKind::Note => ALG_ED25519,
            KeyKind::Cosigner => ALG_COSIGNATURE,
        }
    }

    fn of(alg: u8) -> Option<KeyKind> {
        match alg {
            ALG_ED25519 => Some(KeyKind::Note),
            ALG_COSIGNATURE => Some(KeyKind::Cosigner),
            _ => None,
        }
    }
}

/// The message a cosignature at `time` signs over a note's `text`.
fn cosigned_message(time: u64, text: &str) -> String {
    format!("{COSIGNATURE_HEADER}time {time}\n{text}")
}

/// The 4-byte key id: `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[..4]`.
pub fn key_id(name: &str, kind: KeyKind, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind.alg()]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn hex4(id: &[u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// An Ed25519 signing key with its note name.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    id: [u8; 4],
    kind: KeyKind,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "NoteSigner({}+{})", self.name, hex4(&self.id))
    }
}

impl NoteSigner {
    /// Builds a note signer from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        Self::from_seed_as(name, KeyKind::Note, seed)
    }

    /// Builds a signer of `kind` from a 32-byte Ed25519 seed.
    pub fn from_seed_as(name: &str, kind: KeyKind, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key(format!(
                "key name {name:?} must be non-empty, without spaces or '+'"
            )));
        }
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, kind, key.verifying_key().as_bytes());
        Ok(NoteSigner {
            name: name.to_owned(),
            key,
            id,
            kind,
        })
    }

    /// Generates a fresh note key from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        Self::generate_as(name, KeyKind::Note)
    }

    /// Generates a fresh key of `kind` from the operating system's random source.
    pub fn generate_as(name: &str, kind: KeyKind) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| NoteError::Key(format!("no randomness: {e}")))?;
        Self::from_seed_as(name, kind, &seed)
    }

    /// Parses Go's `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>` form.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let rest = s
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| NoteError::Key("signing key must start with PRIVATE+KEY+".into()))?;
        let (name, id_hex, data) = split_key(rest)?;
        let bytes = B64
            .decode(data)
            .map_err(|_| NoteError::Key("signing key data is not base64".into()))?;
        let (kind, seed) = match bytes.split_first() {
            Some((alg, seed)) if KeyKind::of(*alg).is_some() => (KeyKind::of(*alg), seed),
            _ => return Err(NoteError::Key("signing key is not Ed25519".into())),
        };
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| NoteError::Key("signing key seed must be 32 bytes".into()))?;
        let signer = Self::from_seed_as(name, kind.unwrap_or(KeyKind::Note), &seed)?;
        if hex4(&signer.id) != id_hex {
            return Err(NoteError::Key(
                "signing key id does not match its key".into(),
            ));
        }
        Ok(signer)
    }

    /// The private key string (Go's `sumdb/note` form). Keep it secret.
    pub fn private_key_string(&self) -> String {
        let mut data = vec![self.kind.alg()];
        data.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex4(&self.id),
            B64.encode(data)
        )
    }

    /// The key's name (the log origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
            kind: self.kind,
        }
    }

    /// Signs `text` (which must end in a newline) and returns the whole signed note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') {
            return Err(format_err("note", "text must end with a newline"));
        }
        if self.kind != KeyKind::Note {
            return Err(NoteError::Key(
                "a cosigner key signs cosignatures, not notes".into(),
            ));
        }
        let sig = self.key.sign(text.as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            B64.encode(blob)
        ))
    }
}

impl NoteSigner {
    /// A cosignature line over a note's `text` (its signed part) at `time` (seconds since
    /// the epoch): `— <name> base64(key id ‖ time ‖ signature)`.
    pub fn cosign(&self, text: &str, time: u64) -> Result<String, NoteError> {
        if self.kind != KeyKind::Cosigner {
            return Err(NoteError::Key("a log key does not cosign".into()));
        }
        if !text.ends_with('\n') || time > i64::MAX as u64 {
            return Err(format_err("cosignature", "text must end with a newline"));
        }
        let sig = self.key.sign(cosigned_message(time, text).as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&time.to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob)))
    }
}

fn split_key(s: &str) -> Result<(&str, &str, &str), NoteError> {
    let mut parts = s.splitn(3, '+');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), Some(id), Some(data)) if id.len() == 8 && valid_name(name) => {
            Ok((name, id, data))
        }
        _ => Err(NoteError::Key(
            "expected <name>+<8 hex key id>+<base64 key>".into(),
        )),
    }
}

/// An Ed25519 verifier key with its note name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
    kind: KeyKind,
}

impl NoteVerifier {
    /// Parses `<name>+<8 hex key id>+<base64(type ‖ public key)>`, type 0x01 (a log's key)
    /// or 0x04 (a witness's cosigner key).
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let (name, id_hex, data) = split_key(s.trim())?;
        let bytes = B64
            .decode(data)
            .map_err(|_| NoteError::Key("verifier key data is not base64".into()))?;
        let Some((kind, public)) = bytes
            .split_first()
            .and_then(|(alg, public)| Some((KeyKind::of(*alg)?, public)))
        else {
            return Err(NoteError::Key(
                "verifier key is neither an Ed25519 note key (type 1) nor a cosigner key (type 4)"
                    .into(),
            ));
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| NoteError::Key("public key must be 32 bytes".into()))?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| NoteError::Key("not a valid Ed25519 public key".into()))?;
        let id = key_id(name, kind, &public);
        if hex4(&id) != id_hex {
            return Err(NoteError::Key(
                "verifier key id does not match its key".into(),
            ));
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            id,
            key,
            kind,
        })
    }

    /// What the key signs.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key's name (the log origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>+<hex id>+<base64(0x01 ‖ public key)>`.
    pub fn key_string(&self) -> String {
        let mut data = vec![self.kind.alg()];
        data.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex4(&self.id), B64.encode(data))
    }

    /// Checks a signed note and returns its text (the signed part) if this key signed it.
    /// Signatures by other keys are ignored, as the signed-note spec requires.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        self.open_at(note).map(|(text, _)| text)
    }

    /// As [`open`](Self::open), also returning the newest valid cosignature's time for a
    /// cosigner key (`None` for a note key).
    pub fn open_at<'a>(&self, note: &'a str) -> Result<(&'a str, Option<u64>), NoteError> {
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| format_err("signed note", "no blank line before the signatures"))?;
        let text = &note[..split + 1];
        let sigs = &note[split + 2..];
        if !sigs.ends_with('\n') {
            return Err(format_err(
                "signed note",
                "signature block must end in a newline",
            ));
        }
        // As Go's note package: a carriage return or other control character anywhere makes
        // the note malformed (a line `lines()` would have trimmed is another note to Go).
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(format_err(
                "signed note",
                "control characters other than newline are not allowed",
            ));
        }
        let lines: Vec<&str> = sigs[..sigs.len() - 1]
            .split('\n')
            .take(MAX_SIGNATURES + 1)
            .collect();
        if lines.is_empty() || lines.len() > MAX_SIGNATURES {
            return Err(format_err(
                "signed note",
                format!("expected 1 to {MAX_SIGNATURES} signature lines"),
            ));
        }
        let mut verified = None;
        for line in lines {
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or_else(|| format_err("signed note", "signature line must start with '— '"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| format_err("signed note", "signature line has no signature"))?;
            let blob = B64
                .decode(b64)
                .map_err(|_| format_err("signed note", "signature is not base64"))?;
            if blob.len() < 4 {
                return Err(format_err("signed note", "signature too short"));
            }
            if name != self.name || blob[..4] != self.id {
                continue;
            }
            let (time, sig, message) = match self.kind {
                KeyKind::Note => (None, &blob[4..], text.to_owned()),
                KeyKind::Cosigner => {
                    let Some((t, sig)) = blob[4..].split_first_chunk::<8>() else {
                        return Err(format_err("signed note", "cosignature too short"));
                    };
                    let t = u64::from_be_bytes(*t);
                    (Some(t), sig, cosigned_message(t, text))
                }
            };
            let sig = Signature::from_slice(sig)
                .map_err(|_| format_err("signed note", "signature has the wrong length"))?;
            if self.key.verify(message.as_bytes(), &sig).is_ok() {
                verified = Some(verified.flatten().max(time));
            }
        }
        if let Some(time) = verified {
            Ok((text, time))
        } else {
            Err(NoteError::BadSignature {
                key: format!("{}+{}", self.name, hex4(&self.id)),
            })
        }
    }
}

/// The body of a checkpoint: origin, tree size and root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log origin.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Root hash of the tree of that size.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint text (without signatures).
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint text; extension lines after the root are allowed and ignored.
    pub fn parse_text(text: &str) -> Result<Self, NoteError> {
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        if !valid_name(origin) {
            return Err(format_err(
                "checkpoint",
                "first line must be the log origin",
            ));
        }
        let size_line = lines.next().unwrap_or_default();
        let size: u64 = canonical_u64(size_line)
            .ok_or_else(|| format_err("checkpoint", "second line must be the tree size"))?;
        let root = decode_hash(lines.next().unwrap_or_default())
            .ok_or_else(|| format_err("checkpoint", "third line must be a base64 root hash"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Verifies a signed checkpoint note with `verifier` and parses it.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Self, NoteError> {
        if verifier.kind != KeyKind::Note {
            return Err(NoteError::Key(format!(
                "{} is a witness's cosigner key (type 4), not a log's key",
                verifier.name
            )));
        }
        let cp = Self::parse_text(verifier.open(note)?)?;
        if cp.origin != verifier.name() {
            return Err(format_err(
                "checkpoint",
                format!(
                    "origin {:?} differs from the key's name {:?}",
                    cp.origin,
                    verifier.name()
                ),
            ));
        }
        Ok(cp)
    }
}

/// Checks `note`'s cosignatures against a witness policy: each witness in `witnesses`
/// whose cosignature verifies counts once; at least `quorum` must. Returns each witness's
/// name and cosignature time, or why it does not count.
pub fn cosigners(note: &str, witnesses: &[NoteVerifier]) -> Vec<(String, Result<u64, NoteError>)> {
    let mut seen = std::collections::HashSet::new();
    witnesses
        .iter()
        // The same key given twice is one witness.
        .filter(|w| seen.insert(w.key_string()))
        .map(|w| {
            let got = match w.kind {
                KeyKind::Cosigner => w.open_at(note).map(|(_, t)| t.unwrap_or(0)),
                KeyKind::Note => Err(NoteError::Key(format!(
                    "{} is a log key, not a witness's cosigner key",
                    w.name
                ))),
            };
            (w.name.clone(), got)
        })
        .collect()
}

/// A witness policy's verdict on a note: `Ok` with the witnesses that cosigned it, or what
/// is missing.
pub fn check_quorum(
    note: &str,
    witnesses: &[NoteVerifier],
    quorum: usize,
) -> Result<Vec<String>, String> {
    let all = cosigners(note, witnesses);
    let ok: Vec<String> = all
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| n.clone())
        .collect();
    if ok.len() >= quorum {
        return Ok(ok);
    }
    let missing: Vec<String> = all
        .iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n} ({e})")))
        .collect();
    Err(format!(
        "cosigned by {} of {} witnesses, the policy needs {quorum}; not by {}",
        ok.len(),
        witnesses.len(),
        missing.join(", ")
    ))
}

/// A decimal number written as the formats here require: digits only, no leading zeros.
pub fn canonical_u64(s: &str) -> Option<u64> {
    s.parse()
        .ok()
        .filter(|_| s == "0" || (!s.starts_with('0') && !s.starts_with('+')))
}

/// Decodes one base64 SHA-256 hash.
pub fn decode_hash(s: &str) -> Option<Hash> {
    B64.decode(s.trim_end_matches('\r'))
        .ok()
        .and_then(|b| b.try_into().ok())
}

/// Encodes one hash in base64.
pub fn encode_hash(h: &Hash) -> String {
    B64.encode(h)
}

const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A `c2sp.org/tlog-proof@v1` receipt: an inclusion proof plus the signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Leaf index.
    pub index: u64,
    /// Audit path, leaf side first.
    pub path: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

impl TlogProof {
    /// Serialises the receipt.
    pub fn encode(&self) -> String {
        let mut s = format!("{PROOF_HEADER}\nindex {}\n", self.index);
        for h in &self.path {
            s.push_str(&encode_hash(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Parses a receipt.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let (head, checkpoint) = s
            .split_once("\n\n")
            .ok_or_else(|| format_err("tlog-proof", "no blank line before the checkpoint"))?;
        let mut lines = head.lines();
        if lines.next() != Some(PROOF_HEADER) {
            return Err(format_err(
                "tlog-proof",
                format!("first line must be {PROOF_HEADER}"),
            ));
        }
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .and_then(canonical_u64)
            .ok_or_else(|| format_err("tlog-proof", "second line must be 'index <n>'"))?;
        let path = lines
            .map(|l| decode_hash(l).ok_or_else(|| format_err("tlog-proof", "bad hash line")))
            .collect::<Result<_, _>>()?;
        Ok(TlogProof {
            index,
            path,
            checkpoint: checkpoint.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const ORIGIN: &str = "ledger.example.com/aims";
    pub(crate) fn test_signer() -> NoteSigner {
        NoteSigner::from_seed(ORIGIN, &[1u8; 32]).unwrap()
    }

    #[test]
    fn cosignatures_bind_the_time_the_text_and_the_key() {
        let log = test_signer();
        let note = log.sign("ledger.example.com/aims\n5\nAAAA\n").unwrap();
        let text = log.verifier().open(&note).unwrap();
        let w =
            NoteSigner::from_seed_as("witness.example/w1", KeyKind::Cosigner, &[2u8; 32]).unwrap();
        let vkey = NoteVerifier::parse(&w.verifier().key_string()).unwrap();
        assert_eq!(vkey.kind(), KeyKind::Cosigner);
        let data = B64
            .decode(vkey.key_string().rsplit('+').next().unwrap())
            .unwrap();
        assert_eq!((data[0], data.len()), (0x04, 33), "type 0x04 in the key");
        let line = w.cosign(text, 1_679_315_147).unwrap();
        let cosigned = format!("{note}{line}");
        // The log's key still opens the note; the witness's finds its time.
        assert_eq!(log.verifier().open(&cosigned).unwrap(), text);
        assert_eq!(
            vkey.open_at(&cosigned).unwrap(),
            (text, Some(1_679_315_147))
        );
        // The time is signed: changing it breaks the cosignature.
        let blob = B64
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        let mut later = blob.clone();
        later[11] ^= 1;
        let forged = format!("{note}\u{2014} witness.example/w1 {}\n", B64.encode(later));
        assert!(matches!(
            vkey.open(&forged),
            Err(NoteError::BadSignature { .. })
        ));
        // So is the text, and the same key as a note key (type 0x01) is another key.
        let other = format!(
            "{}{line}",
            log.sign("ledger.example.com/aims\n6\nAAAA\n").unwrap()
        );
        assert!(vkey.open(&other).is_err());
        let as_note = NoteSigner::from_seed("witness.example/w1", &[2u8; 32]).unwrap();
        assert!(as_note.verifier().open(&cosigned).is_err());
        assert!(as_note.cosign(text, 1).is_err() && w.sign(text).is_err());
        // A line ending in CR is malformed to Go's note package: malformed here too.
        let cr = format!("{note}{}\r\n", line.trim_end());
        assert!(matches!(vkey.open(&cr), Err(NoteError::Format { .. })));
        assert!(log.verifier().open(&cr).is_err());
        // A cosigner key never stands for a log's key, even under the log's name.
        let posing = NoteSigner::from_seed_as(ORIGIN, KeyKind::Cosigner, &[1; 32]).unwrap();
        assert!(Checkpoint::open(&note, &posing.verifier()).is_err());
        // Private keys round-trip with their type.
        let back = NoteSigner::parse(&w.private_key_string()).unwrap();
        assert_eq!(back.cosign(text, 9).unwrap(), w.cosign(text, 9).unwrap());
    }

    #[test]
    fn key_strings_match_vectors() {
        let s = test_signer();
        assert_eq!(
            B64.encode(s.key.verifying_key().as_bytes()),
            "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
        );
        assert_eq!(hex4(&s.id), "79f85afb");
        let v = s.verifier();
        assert_eq!(
            v.key_string(),
            "ledger.example.com/aims+79f85afb+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c"
        );
        assert_eq!(NoteVerifier::parse(&v.key_string()).unwrap(), v);
        let again = NoteSigner::parse(&s.private_key_string()).unwrap();
        assert_eq!(again.verifier(), v);
        assert!(format!("{s:?}").starts_with("NoteSigner(ledger"));
    }

    #[test]
    fn bad_key_strings_are_refused() {
        for bad in [
            "",
            "name",
            "name+79f85afb",
            "na me+79f85afb+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c",
            "ledger.example.com/aims+00000000+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c",
            "ledger.example.com/aims+79f85afb+AoqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c",
            "ledger.example.com/aims+79f85afb+!!!",
        ] {
            assert!(NoteVerifier::parse(bad).is_err(), "{bad}");
        }
        assert!(NoteSigner::parse("PRIVATE+KEY+x+00000000+AQ==").is_err());
    }

    #[test]
    fn signature_rejects_tampering_and_other_keys() {
        let s = test_signer();
        let note = s.sign("hello\n").unwrap();
        let v = s.verifier();
        assert_eq!(v.open(&note).unwrap(), "hello\n");
        assert!(v.open(&note.replace("hello", "hellO")).is_err());
        let other = NoteSigner::from_seed(ORIGIN, &[2u8; 32]).unwrap();
        assert!(matches!(
            other.verifier().open(&note),
            Err(NoteError::BadSignature { .. })
        ));
        // A second signature by an unknown key is ignored.
        let other_note = other.sign("hello\n").unwrap();
        let extra = other_note.rsplit_once("\n\n").unwrap().1;
        let both = format!("{note}{extra}");
        assert_eq!(v.open(&both).unwrap(), "hello\n");
        assert!(s.sign("no newline").is_err());
    }

    #[test]
    fn checkpoint_text_parses_strictly() {
        assert!(Checkpoint::parse_text("o\n05\nAAAA\n").is_err());
        assert!(Checkpoint::parse_text("o\n5\nnot-base64\n").is_err());
        let cp = Checkpoint {
            origin: "o".into(),
            size: 0,
            root: [7; 32],
        };
        assert_eq!(Checkpoint::parse_text(&cp.text()).unwrap(), cp);
    }

    #[test]
    fn tlog_proof_round_trips() {
        let p = TlogProof {
            index: 3,
            path: vec![[1; 32], [2; 32]],
            checkpoint: "o\n4\nAQ==\n\n— o sig\n".into(),
        };
        assert_eq!(TlogProof::parse(&p.encode()).unwrap(), p);
        assert!(TlogProof::parse("nope\n\nx").is_err());
    }
}
