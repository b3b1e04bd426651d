//! Ledger leaves: canonical in-toto Statement v1 JSON.
//!
//! The leaf bytes are what the Merkle tree commits to, so they must be reproducible by anyone:
//! compact JSON, keys sorted by code point, no floats (sizes are strings). Structs here declare
//! their fields in sorted order and skip absent ones, so serde emits the canonical form
//! directly; a unit test checks that against a generic sort.

use serde::{Deserialize, Serialize};

/// The in-toto Statement type URI.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// Evident's predicate type for evidence entries.
pub const PREDICATE_TYPE: &str = "https://evident.dev/evidence-entry/v1";

/// The predicate of an evidence entry. Field order is the canonical key order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Predicate {
    /// When Evident recorded it (RFC 3339 UTC).
    #[serde(rename = "collectedAt")]
    pub collected_at: String,
    /// Controls and clauses it supports.
    pub controls: Vec<String>,
    /// The date the artefact takes effect (YYYY-MM-DD), when it states one.
    #[serde(
        rename = "effectiveDate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub effective_date: Option<String>,
    /// Artefact kind (`document`, `document_removed`, `collector_run`, `manual`, …).
    pub kind: String,
    /// Media type of the content.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Run counts, for `collector_run` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunSummary>,
    /// Content size in bytes, as a decimal string (no numbers in canonical leaves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Collector instance name.
    pub source: String,
    /// The source's own last-modified time (RFC 3339 UTC).
    #[serde(
        rename = "sourceUpdatedAt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_updated_at: Option<String>,
    /// Human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Stable artefact URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// Counts of one collector run, carried by `collector_run` leaves. All values are decimal
/// strings so the leaf stays free of JSON numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSummary {
    /// Error summary, when the run failed or skipped items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Items that could not be recorded.
    pub failed: String,
    /// Run end (RFC 3339 UTC).
    #[serde(rename = "finishedAt")]
    pub finished_at: String,
    /// Entries added.
    pub new: String,
    /// Artefacts found gone.
    pub removed: String,
    /// Run start (RFC 3339 UTC).
    #[serde(rename = "startedAt")]
    pub started_at: String,
    /// Artefacts seen unchanged.
    pub unchanged: String,
}

/// A subject digest set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSet {
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// A statement subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Digests of the artefact.
    pub digest: DigestSet,
    /// Artefact name (its URI).
    pub name: String,
}

/// An in-toto Statement v1 with a generic predicate. Field order is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement<P> {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: String,
    /// The predicate.
    pub predicate: P,
    /// The predicate's type URI.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// Exactly one subject for Evident entries.
    pub subject: Vec<Subject>,
}

impl<P: Serialize> Statement<P> {
    /// A statement about one artefact.
    pub fn new(predicate_type: &str, name: &str, sha256_hex: &str, predicate: P) -> Self {
        Statement {
            type_: STATEMENT_TYPE.to_owned(),
            predicate,
            predicate_type: predicate_type.to_owned(),
            subject: vec![Subject {
                digest: DigestSet {
                    sha256: sha256_hex.to_owned(),
                },
                name: name.to_owned(),
            }],
        }
    }

    /// The canonical leaf bytes.
    pub fn to_leaf_bytes(&self) -> Vec<u8> {
        // Serialising plain structs of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// An evidence entry's statement.
pub type EntryStatement = Statement<Predicate>;

impl EntryStatement {
    /// Parses leaf bytes strictly (unknown fields are an error: leaves are ours).
    pub fn from_leaf(bytes: &[u8]) -> Result<Self, String> {
        let st: EntryStatement = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if st.type_ != STATEMENT_TYPE {
            return Err(format!("_type is {:?}", st.type_));
        }
        if st.subject.len() != 1 {
            return Err(format!("{} subjects, expected 1", st.subject.len()));
        }
        Ok(st)
    }

    /// The one subject.
    pub fn subject(&self) -> &Subject {
        &self.subject[0]
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parses 64 hex digits into a hash.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_serialise_in_sorted_order() {
        let st = EntryStatement::new(
            PREDICATE_TYPE,
            "file://docs/a.md",
            &"ab".repeat(32),
            Predicate {
                collected_at: "2026-11-01T00:00:00Z".into(),
                controls: vec!["A.2.2".into()],
                effective_date: Some("2026-01-01".into()),
                kind: "document".into(),
                media_type: Some("text/markdown".into()),
                run: Some(RunSummary {
                    error: Some("e".into()),
                    failed: "0".into(),
                    finished_at: "f".into(),
                    new: "1".into(),
                    removed: "0".into(),
                    started_at: "s".into(),
                    unchanged: "2".into(),
                }),
                size: Some("12".into()),
                source: "policies".into(),
                source_updated_at: Some("2026-10-01T00:00:00Z".into()),
                title: Some("Ünïcode \"title\"\n".into()),
                uri: Some("file://docs/a.md".into()),
            },
        );
        let bytes = st.to_leaf_bytes();
        // serde_json's Map is a BTreeMap: re-serialising a Value sorts keys by code point.
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(serde_json::to_vec(&v).unwrap(), bytes);
        assert_eq!(EntryStatement::from_leaf(&bytes).unwrap(), st);
    }

    #[test]
    fn hex_round_trips() {
        let h = [0xabu8; 32];
        assert_eq!(parse_hex32(&hex(&h)), Some(h));
        assert_eq!(parse_hex32("zz"), None);
    }
}
