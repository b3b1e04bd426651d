//! Leaf v2's erasable metadata (issue 17, `docs/erasure.md`). A v2 leaf does not carry an
//! entry's title, URI or submitter: it commits to a **metadata record** holding them and
//! 32 random bytes of salt (`meta`, the record's SHA-256), and groups the versions of one
//! URI by an HMAC of it under a key of the ledger's (`artefact`). The record sits beside the
//! leaf in the `entry_meta` table; erasing it (and the `entries` row's title and URI) leaves
//! the leaf, the tree and every proof as they were. Without the salt nobody can confirm a
//! guessed title or URI against a published leaf; without the key, nobody can link an
//! `artefact` to a URI.

use hmac::{KeyInit, Mac};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::LedgerError;
use super::leaf::{
    ERASED_URI, EntryStatement, LeafStr, LeafView, META_SUBJECT, PREDICATE_TYPE_V2, hex,
    parse_hex32,
};
use super::merkle::Hash;
use super::state::StateDir;

/// The `meta` table key of the ledger's artefact key (hex); present once the ledger writes
/// v2 leaves, which it then always does.
const KEY_NAME: &str = "artefact_key";

/// A v2 entry's metadata record. Fields in canonical (sorted) order: its bytes are
/// canonical JSON, so anyone can recompute `meta` from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaRecord {
    /// 32 random bytes, hex: makes the commitment hiding.
    pub salt: String,
    /// The API token that pushed the entry.
    #[serde(
        rename = "submittedBy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub submitted_by: Option<String>,
    /// Human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Stable artefact URI.
    pub uri: String,
}

impl MetaRecord {
    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a record strictly: unknown fields, a malformed salt or bytes that are not the
    /// record's canonical form are errors (its digest must be recomputable from it).
    pub fn parse(bytes: &[u8]) -> Result<MetaRecord, String> {
        let r: MetaRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if parse_hex32(&r.salt).is_none_or(|s| hex(&s) != r.salt) {
            return Err("its salt is not 64 lowercase hex digits".into());
        }
        if r.to_bytes() != bytes {
            return Err("it is not in canonical form".into());
        }
        Ok(r)
    }

    /// The record's SHA-256: what a v2 leaf's `meta` says.
    pub fn digest(bytes: &[u8]) -> Hash {
        Sha256::digest(bytes).into()
    }
}

/// The key `artefact` HMACs are made with. It never leaves the ledger's database.
#[derive(Clone)]
pub struct ArtefactKey([u8; 32]);

impl std::fmt::Debug for ArtefactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArtefactKey(…)")
    }
}

impl ArtefactKey {
    /// The `artefact` of `uri`: the HMAC-SHA-256 of it, hex; for the URI an erasure leaves
    /// (`evident:artefact:<hex>`), the artefact it names, so a version recorded after an
    /// erasure still joins its artefact.
    pub fn of(&self, uri: &str) -> String {
        if let Some(h) = erased_artefact(uri) {
            return h.to_owned();
        }
        // HMAC takes keys of any length.
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts 32-byte keys"));
        mac.update(uri.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The ledger's key, when it writes v2 leaves.
    pub fn load(conn: &Connection) -> Result<Option<ArtefactKey>, LedgerError> {
        let hex: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [KEY_NAME], |r| {
                r.get(0)
            })
            .optional()?;
        match hex {
            None => Ok(None),
            Some(h) => parse_hex32(&h)
                .map(|k| Some(ArtefactKey(k)))
                .ok_or_else(|| {
                    LedgerError::Corrupt(format!("the database's {KEY_NAME} is not 64 hex digits"))
                }),
        }
    }

    /// Makes the ledger write v2 leaves from now on: creates its key unless it has one.
    pub fn enable(conn: &Connection) -> Result<ArtefactKey, LedgerError> {
        if let Some(k) = ArtefactKey::load(conn)? {
            return Ok(k);
        }
        let k = random32("making the artefact key")?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            [KEY_NAME, &hex(&k)],
        )?;
        Ok(ArtefactKey(k))
    }
}

/// Applies `[ledger] leaf_version` to the ledger in `state`: `2` makes it write v2 leaves
/// from now on; `1` is refused once it does (its key and the leaves written stay).
pub fn apply_leaf_version(state: &StateDir, version: Option<u8>) -> Result<(), LedgerError> {
    if version.is_none() || !state.db_path().exists() {
        return Ok(());
    }
    let conn = super::schema::open_write(&state.db_path(), false)?;
    match version {
        Some(2) => ArtefactKey::enable(&conn).map(|_| ()),
        _ if ArtefactKey::load(&conn)?.is_some() => Err(LedgerError::Schema(format!(
            "the ledger in {} writes v2 leaves already: leaf_version = 1 cannot take that \
             back (remove the setting)",
            state.dir().display()
        ))),
        _ => Ok(()),
    }
}

/// The artefact an erased entry's `uri` column names (`evident:artefact:<hex>`).
pub fn erased_artefact(uri: &str) -> Option<&str> {
    uri.strip_prefix(ERASED_URI)
        .filter(|h| parse_hex32(h).is_some_and(|b| hex(&b) == *h))
}

/// 32 random bytes from the operating system; `what` names the use in an error.
fn random32(what: &str) -> Result<[u8; 32], LedgerError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)
        .map_err(|e| LedgerError::io(what, std::io::Error::other(e.to_string())))?;
    Ok(b)
}

/// A v2 statement for `st` (a v1-shaped statement carrying title, URI and submitter): the
/// leaf commits to a fresh metadata record, returned with it as canonical bytes.
pub fn to_v2(
    mut st: EntryStatement,
    key: &ArtefactKey,
) -> Result<(EntryStatement, MetaRecord, Vec<u8>), LedgerError> {
    let p = &mut st.predicate;
    let salt = random32("making a metadata salt")?;
    let uri = p.uri.take().unwrap_or_else(|| st.subject[0].name.clone());
    let record = MetaRecord {
        salt: hex(&salt),
        submitted_by: p.submitted_by.take(),
        title: p.title.take().map(bounded_title),
        uri,
    };
    let bytes = record.to_bytes();
    let meta = hex(&MetaRecord::digest(&bytes));
    p.artefact = Some(key.of(&record.uri));
    p.meta = Some(meta.clone());
    st.predicate_type = PREDICATE_TYPE_V2.to_owned();
    st.subject[0].name = format!("{META_SUBJECT}{meta}");
    Ok((st, record, bytes))
}

/// The longest title a metadata record keeps, in bytes: free text from a source must not
/// make an `index.csv` row or a `meta/` member longer than a verifier reads (v1 leaves are
/// bounded by the leaf size instead).
pub const MAX_TITLE: usize = 16 << 10;

/// `title` cut to [`MAX_TITLE`] bytes at a character boundary, ending in `…` when cut.
fn bounded_title(title: String) -> String {
    if title.len() <= MAX_TITLE {
        return title;
    }
    let mut at = MAX_TITLE - '…'.len_utf8();
    while !title.is_char_boundary(at) {
        at -= 1;
    }
    format!("{}…", &title[..at])
}

/// What a leaf shows as its URI and title: a v1 leaf's own; a v2 leaf's from its metadata
/// record when `record` is the one it commits to, else (erased) `evident:artefact:<hex>` and
/// no title. `Err` when `record` is not the leaf's.
pub fn shown<'a>(
    leaf: &'a LeafView<'_>,
    record: Option<&'a MetaRecord>,
    record_bytes: Option<&[u8]>,
) -> Result<(std::borrow::Cow<'a, str>, Option<&'a str>), String> {
    use std::borrow::Cow;
    if !leaf.is_v2() {
        return Ok((
            Cow::Borrowed(leaf.uri()),
            leaf.predicate.title.as_ref().map(LeafStr::as_str),
        ));
    }
    match (record, record_bytes) {
        (Some(r), Some(b)) => {
            if leaf.meta() != Some(MetaRecord::digest(b)) {
                return Err("its metadata record is not the one its leaf commits to".into());
            }
            Ok((Cow::Borrowed(r.uri.as_str()), r.title.as_deref()))
        }
        _ => Ok((
            Cow::Owned(format!(
                "{ERASED_URI}{}",
                LeafStr::or_empty(&leaf.predicate.artefact)
            )),
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::leaf::{PREDICATE_TYPE, Predicate};

    fn statement() -> EntryStatement {
        EntryStatement::new(
            PREDICATE_TYPE,
            "file:///hr/jane-doe-review.md",
            &"ab".repeat(32),
            Predicate {
                collected_at: "2026-12-03T10:00:00Z".into(),
                controls: vec!["A.7.4".into()],
                kind: "document".into(),
                source: "hr".into(),
                title: Some("Jane Doe — annual review".into()),
                uri: Some("file:///hr/jane-doe-review.md".into()),
                submitted_by: Some("ci".into()),
                ..Predicate::default()
            },
        )
    }

    #[test]
    fn a_v2_leaf_commits_to_its_metadata_without_carrying_it() {
        let key = ArtefactKey([7; 32]);
        let (st, record, bytes) = to_v2(statement(), &key).unwrap();
        let leaf = st.to_leaf_bytes();
        let text = String::from_utf8(leaf.clone()).unwrap();
        assert!(!text.contains("Jane") && !text.contains("jane") && !text.contains("\"ci\""));
        let view = LeafView::parse(&leaf).unwrap();
        assert!(view.is_v2());
        assert_eq!(MetaRecord::parse(&bytes).unwrap(), record);
        let (uri, title) = shown(&view, Some(&record), Some(&bytes)).unwrap();
        assert_eq!(uri, "file:///hr/jane-doe-review.md");
        assert_eq!(title, Some("Jane Doe — annual review"));
        // Another record (another salt) is not the one the leaf commits to.
        let (_, other, other_bytes) = to_v2(statement(), &key).unwrap();
        assert_ne!(other.salt, record.salt);
        assert!(shown(&view, Some(&other), Some(&other_bytes)).is_err());
        // Erased: the artefact stands in for the URI; versions still group.
        let (uri, title) = shown(&view, None, None).unwrap();
        assert_eq!(title, None);
        assert_eq!(key.of(&uri), key.of("file:///hr/jane-doe-review.md"));
        assert_ne!(
            key.of("file:///hr/jane-doe-review.md"),
            ArtefactKey([8; 32]).of("file:///hr/jane-doe-review.md")
        );
    }

    #[test]
    fn long_titles_are_cut_at_a_character_boundary() {
        let mut st = statement();
        st.predicate.title = Some("é".repeat(MAX_TITLE));
        let (_, record, _) = to_v2(st, &ArtefactKey([7; 32])).unwrap();
        let t = record.title.unwrap();
        assert!(t.len() <= MAX_TITLE && t.ends_with('…'), "{}", t.len());
    }

    #[test]
    fn malformed_v2_leaves_and_records_are_refused() {
        let key = ArtefactKey([7; 32]);
        let (st, record, bytes) = to_v2(statement(), &key).unwrap();
        let mut with_title = st.clone();
        with_title.predicate.title = Some("x".into());
        assert!(LeafView::parse(&with_title.to_leaf_bytes()).is_err());
        let mut renamed = st.clone();
        renamed.subject[0].name = "file:///hr/jane-doe-review.md".into();
        assert!(LeafView::parse(&renamed.to_leaf_bytes()).is_err());
        let mut v1_with_meta = st.clone();
        v1_with_meta.predicate_type = PREDICATE_TYPE.into();
        assert!(LeafView::parse(&v1_with_meta.to_leaf_bytes()).is_err());
        // A record with its keys out of order is not canonical.
        let loose = format!("{{\"uri\":{:?},\"salt\":{:?}}}", record.uri, record.salt);
        assert!(MetaRecord::parse(loose.as_bytes()).is_err());
        assert!(MetaRecord::parse(&bytes).is_ok());
    }
}
