//! Ledger leaves: canonical in-toto Statement v1 JSON, with Evident's evidence-entry
//! predicate in two versions (v2 commits to the erasable metadata, `ledger::meta`).
//!
//! The leaf bytes are what the Merkle tree commits to, so they must be reproducible by anyone:
//! compact JSON, keys sorted by code point, no floats (sizes are strings). Structs here declare
//! their fields in sorted order and skip absent ones, so serde emits the canonical form
//! directly; a unit test checks that against a generic sort.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

/// How a v2 leaf names its subject: this, then its `meta` digest.
pub const META_SUBJECT: &str = "evident:meta:";
/// The `uri` column of a v2 entry whose metadata was erased: this, then its `artefact`.
pub const ERASED_URI: &str = "evident:artefact:";

/// The in-toto Statement type URI.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// Evident's predicate type for evidence entries.
pub const PREDICATE_TYPE: &str = "https://evident.dev/evidence-entry/v1";
/// The predicate type of v2 leaves, whose title, URI and submitter are committed by a
/// salted hash (`meta`) instead of written out, so they can be erased (`ledger::meta`).
pub const PREDICATE_TYPE_V2: &str = "https://evident.dev/evidence-entry/v2";

/// The predicate of an evidence entry. Field order is the canonical key order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Predicate {
    /// v2: what groups the versions of one URI without naming it (`ledger::meta`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artefact: Option<String>,
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
    /// v2: the SHA-256 of the entry's metadata record (title, URI, submitter, salt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
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
    /// The name of the API token that pushed it (`POST /v1/evidence`), absent otherwise.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestSet {
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// A statement subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    /// Digests of the artefact.
    pub digest: DigestSet,
    /// Artefact name (its URI).
    pub name: String,
}

/// An in-toto Statement v1 with a generic predicate. Field order is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
        LeafView::parse(bytes).map(LeafView::into_owned)
    }

    /// The one subject.
    pub fn subject(&self) -> &Subject {
        &self.subject[0]
    }
}

/// A string of a leaf, borrowed from the leaf bytes unless it holds an escape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafStr<'a>(pub Cow<'a, str>);

impl LeafStr<'_> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text of an optional string, empty when absent.
    pub fn or_empty<'s>(s: &'s Option<LeafStr<'_>>) -> &'s str {
        s.as_ref().map_or("", LeafStr::as_str)
    }

    fn owned(self) -> String {
        self.0.into_owned()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LeafStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = LeafStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LeafStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LeafStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(LeafStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// The predicate of a leaf as [`LeafView`] reads it: [`Predicate`]'s fields, borrowed.
#[derive(Debug, Deserialize)]
// Errors name the leaf's own structure, not this view of it.
#[serde(deny_unknown_fields, rename = "Predicate")]
pub struct PredicateView<'a> {
    /// v2: what groups the versions of one URI.
    #[serde(default, borrow)]
    pub artefact: Option<LeafStr<'a>>,
    /// When Evident recorded it.
    #[serde(rename = "collectedAt", borrow)]
    pub collected_at: LeafStr<'a>,
    /// Controls and clauses it supports.
    #[serde(borrow)]
    pub controls: Vec<LeafStr<'a>>,
    /// The date the artefact takes effect.
    #[serde(rename = "effectiveDate", default, borrow)]
    pub effective_date: Option<LeafStr<'a>>,
    /// Artefact kind.
    #[serde(borrow)]
    pub kind: LeafStr<'a>,
    /// Media type of the content.
    #[serde(rename = "mediaType", default, borrow)]
    pub media_type: Option<LeafStr<'a>>,
    /// v2: the SHA-256 of the metadata record.
    #[serde(default, borrow)]
    pub meta: Option<LeafStr<'a>>,
    /// Run counts, for `collector_run` entries.
    #[serde(default)]
    pub run: Option<RunSummary>,
    /// Content size in bytes (decimal).
    #[serde(default, borrow)]
    pub size: Option<LeafStr<'a>>,
    /// Collector instance name.
    #[serde(borrow)]
    pub source: LeafStr<'a>,
    /// The source's own last-modified time.
    #[serde(rename = "sourceUpdatedAt", default, borrow)]
    pub source_updated_at: Option<LeafStr<'a>>,
    /// The token that pushed it.
    #[serde(rename = "submittedBy", default, borrow)]
    pub submitted_by: Option<LeafStr<'a>>,
    /// Human title.
    #[serde(default, borrow)]
    pub title: Option<LeafStr<'a>>,
    /// Stable artefact URI.
    #[serde(default, borrow)]
    pub uri: Option<LeafStr<'a>>,
}

#[derive(Debug, Deserialize)]
// Errors name the leaf's own structure, not this view of it.
#[serde(deny_unknown_fields, rename = "DigestSet")]
struct DigestView<'a> {
    #[serde(borrow)]
    sha256: LeafStr<'a>,
}

#[derive(Debug, Deserialize)]
// Errors name the leaf's own structure, not this view of it.
#[serde(deny_unknown_fields, rename = "Subject")]
struct SubjectView<'a> {
    #[serde(borrow)]
    digest: DigestView<'a>,
    #[serde(borrow)]
    name: LeafStr<'a>,
}

#[derive(Debug, Deserialize)]
// Errors name the leaf's own structure, not this view of it.
#[serde(deny_unknown_fields, rename = "Statement")]
struct StatementView<'a> {
    #[serde(rename = "_type", borrow)]
    type_: LeafStr<'a>,
    #[serde(borrow)]
    predicate: PredicateView<'a>,
    #[serde(rename = "predicateType", borrow)]
    predicate_type: LeafStr<'a>,
    #[serde(borrow)]
    subject: Vec<SubjectView<'a>>,
}

/// An entry's leaf parsed without copying its strings: the one parser of leaves
/// ([`EntryStatement::from_leaf`] is this, made owned). `verify` reads a million of them.
#[derive(Debug)]
pub struct LeafView<'a> {
    /// The predicate.
    pub predicate: PredicateView<'a>,
    /// The predicate type URI.
    pub predicate_type: LeafStr<'a>,
    /// The one subject's name.
    pub subject_name: LeafStr<'a>,
    /// The one subject's SHA-256, as written (lowercase hex when well formed).
    pub subject_sha256: LeafStr<'a>,
}

impl<'a> LeafView<'a> {
    /// Parses leaf bytes strictly: unknown fields, another `_type` or other than one
    /// subject are errors.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let st: StatementView<'a> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if st.type_.as_str() != STATEMENT_TYPE {
            return Err(format!("_type is {:?}", st.type_.as_str()));
        }
        let n = st.subject.len();
        let Some(subject) = st.subject.into_iter().next().filter(|_| n == 1) else {
            return Err(format!("{n} subjects, expected 1"));
        };
        let view = LeafView {
            predicate: st.predicate,
            predicate_type: st.predicate_type,
            subject_name: subject.name,
            subject_sha256: subject.digest.sha256,
        };
        view.check_version()?;
        Ok(view)
    }

    /// Whether this is a v2 leaf (title, URI and submitter committed by `meta`).
    pub fn is_v2(&self) -> bool {
        self.predicate_type.as_str() == PREDICATE_TYPE_V2
    }

    /// The metadata record's SHA-256 a v2 leaf commits to.
    pub fn meta(&self) -> Option<[u8; 32]> {
        self.predicate
            .meta
            .as_ref()
            .and_then(|m| parse_hex32(m.as_str()))
    }

    /// A v2 leaf carries `artefact` and `meta` (64 lowercase hex each), no title, URI or
    /// submitter, and names its subject `evident:meta:<meta>`; any other leaf carries
    /// neither field. Anything else is not a leaf Evident writes.
    fn check_version(&self) -> Result<(), String> {
        let p = &self.predicate;
        let hex64 = |s: &Option<LeafStr<'_>>| {
            s.as_ref().is_some_and(|s| {
                s.as_str().len() == 64
                    && s.as_str()
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
        };
        if !self.is_v2() {
            if p.artefact.is_some() || p.meta.is_some() {
                return Err("artefact and meta belong to v2 leaves only".into());
            }
            return Ok(());
        }
        if !hex64(&p.artefact) || !hex64(&p.meta) {
            return Err("a v2 leaf needs artefact and meta, 64 lowercase hex digits each".into());
        }
        if p.title.is_some() || p.uri.is_some() || p.submitted_by.is_some() {
            return Err(
                "a v2 leaf commits to its title, URI and submitter, it does not carry them".into(),
            );
        }
        if self.subject_name.as_str().strip_prefix(META_SUBJECT) != Some(LeafStr::or_empty(&p.meta))
        {
            return Err(format!("a v2 leaf's subject is named {META_SUBJECT}<meta>"));
        }
        Ok(())
    }

    /// The artefact URI: the predicate's, else the subject's name.
    pub fn uri(&self) -> &str {
        self.predicate
            .uri
            .as_ref()
            .unwrap_or(&self.subject_name)
            .as_str()
    }

    /// The owned statement.
    pub fn into_owned(self) -> EntryStatement {
        let p = self.predicate;
        let opt = |s: Option<LeafStr<'_>>| s.map(LeafStr::owned);
        EntryStatement {
            type_: STATEMENT_TYPE.to_owned(),
            predicate: Predicate {
                artefact: opt(p.artefact),
                collected_at: p.collected_at.owned(),
                controls: p.controls.into_iter().map(LeafStr::owned).collect(),
                effective_date: opt(p.effective_date),
                kind: p.kind.owned(),
                media_type: opt(p.media_type),
                meta: opt(p.meta),
                run: p.run,
                size: opt(p.size),
                source: p.source.owned(),
                source_updated_at: opt(p.source_updated_at),
                submitted_by: opt(p.submitted_by),
                title: opt(p.title),
                uri: opt(p.uri),
            },
            predicate_type: self.predicate_type.owned(),
            subject: vec![Subject {
                digest: DigestSet {
                    sha256: self.subject_sha256.owned(),
                },
                name: self.subject_name.owned(),
            }],
        }
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
    use proptest::prelude::*;

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
                submitted_by: Some("ci-main".into()),
                title: Some("Ünïcode \"title\"\n".into()),
                uri: Some("file://docs/a.md".into()),
                ..Predicate::default()
            },
        );
        let bytes = st.to_leaf_bytes();
        // serde_json's Map is a BTreeMap: re-serialising a Value sorts keys by code point.
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(serde_json::to_vec(&v).unwrap(), bytes);
        assert_eq!(EntryStatement::from_leaf(&bytes).unwrap(), st);
    }

    /// Strings with escapes, quotes, control and non-ASCII characters, or none.
    fn text() -> impl Strategy<Value = String> {
        proptest::string::string_regex("(\\PC|[\"\\\\\n\t\u{1}\u{7f}é€😀]){0,12}").unwrap()
    }

    fn opt() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(text())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The borrowing parser reads back exactly what the writer serialised, escapes and all.
        #[test]
        fn leaves_read_back_as_written(
            strings in proptest::collection::vec(text(), 6),
            opts in proptest::collection::vec(opt(), 7),
            controls in proptest::collection::vec(text(), 0..4),
            run in proptest::option::of(proptest::collection::vec(text(), 6)),
        ) {
            let predicate = Predicate {
                collected_at: strings[0].clone(),
                controls,
                effective_date: opts[0].clone(),
                kind: strings[1].clone(),
                media_type: opts[1].clone(),
                run: run.map(|r| RunSummary {
                    error: opts[2].clone(),
                    failed: r[0].clone(),
                    finished_at: r[1].clone(),
                    new: r[2].clone(),
                    removed: r[3].clone(),
                    started_at: r[4].clone(),
                    unchanged: r[5].clone(),
                }),
                size: opts[3].clone(),
                source: strings[2].clone(),
                source_updated_at: opts[4].clone(),
                submitted_by: opts[6].clone(),
                title: opts[5].clone(),
                uri: Some(strings[3].clone()),
                ..Predicate::default()
            };
            let st = EntryStatement::new(&strings[4], &strings[5], &strings[3], predicate);
            let bytes = st.to_leaf_bytes();
            prop_assert_eq!(EntryStatement::from_leaf(&bytes).unwrap(), st);
        }
    }

    #[test]
    fn the_parser_is_strict() {
        let good = EntryStatement::new(
            PREDICATE_TYPE,
            "file://a",
            &"ab".repeat(32),
            Predicate {
                collected_at: "2026-11-01T00:00:00Z".into(),
                kind: "document".into(),
                source: "docs".into(),
                ..Predicate::default()
            },
        )
        .to_leaf_bytes();
        let good = String::from_utf8(good).unwrap();
        let view = LeafView::parse(good.as_bytes()).unwrap();
        // Unescaped strings are borrowed from the leaf, not copied.
        assert!(matches!(view.predicate.kind.0, Cow::Borrowed(_)));
        assert_eq!(view.uri(), "file://a");
        let bad = [
            (good.replace(r#""kind""#, r#""kind":"x","kind""#), "duplicate field"),
            (good.replace(r#""kind""#, r#""extra":"x","kind""#), "unknown field"),
            (good.replace("Statement/v1", "Statement/v0.1"), "_type is"),
            (good.replace(r#""subject":["#, r#""subject":[{"digest":{"sha256":"00"},"name":"b"},"#), "2 subjects"),
            (good.replace(r#""subject":[{"digest":{"sha256":"abababababababababababababababababababababababababababababababab"},"name":"file://a"}]"#, r#""subject":[]"#), "0 subjects"),
            (good.replace(r#""kind""#, r#""run":"5","kind""#), "invalid type"),
            (good.replace(r#""kind":"document""#, r#""kind":7"#), "invalid type"),
            (good.replace(r#""source":"docs""#, r#""source":"d\ud800""#), "hex escape"),
            (good[..good.len() - 1].to_owned(), "EOF"),
        ];
        for (leaf, why) in bad {
            assert_ne!(leaf, good);
            let err = LeafView::parse(leaf.as_bytes()).unwrap_err();
            assert!(err.contains(why), "{leaf}: {err}");
        }
    }

    #[test]
    fn hex_round_trips() {
        let h = [0xabu8; 32];
        assert_eq!(parse_hex32(&hex(&h)), Some(h));
        assert_eq!(parse_hex32("zz"), None);
    }
}
