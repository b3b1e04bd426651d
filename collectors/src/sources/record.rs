//! Helpers shared by the API collectors: canonical JSON content, change markers, times,
//! URI segments and control lists found in tags.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use reqwest::Url;

use crate::http::parse_base_url;
use crate::{CollectError, Content, Observation};

/// Canonical JSON bytes of a record: `serde_json::Value` keeps object keys sorted, so the
/// same record always yields the same bytes, and a changed field a new digest.
pub fn canonical_json(record: &impl Serialize) -> Vec<u8> {
    serde_json::to_value(record)
        .and_then(|v| serde_json::to_vec(&v))
        .unwrap_or_default()
}

/// A short change marker over a record (hex of its SHA-256), for [`Observation::version`].
pub fn marker(record: &impl Serialize) -> String {
    let d = Sha256::digest(canonical_json(record));
    d.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// An observation of an API record.
pub fn json_observation(
    uri: String,
    kind: &str,
    record: &impl Serialize,
    version: String,
) -> Observation {
    let mut o = Observation::new(uri, kind, Content::Bytes(canonical_json(record)));
    o.media_type = Some("application/json".into());
    o.version = Some(version);
    o
}

/// Epoch milliseconds (MLflow) as a time.
pub fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// Epoch seconds (Buildbot) as a time.
pub fn from_secs(s: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(s, 0)
}

/// An RFC 3339 time (GitHub, GitLab, the Hub).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An HTTP date (`Sun, 22 Nov 2026 05:43:55 GMT`, as in `Last-Modified`).
pub fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Percent-encodes one URI path segment (model names may hold spaces, `/` or unicode).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Control ids in a tag value such as `"A.6.2.4, A.7.4"` (commas, semicolons or spaces).
pub fn control_list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split([',', ';', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The API root under a configured base URL (`<url>/api/v2/`), and its `host[:port]` for
/// artefact URIs.
pub fn api_root(
    name: &str,
    key: &str,
    raw: &str,
    suffix: &str,
) -> Result<(Url, String), CollectError> {
    let base = parse_base_url(name, key, raw)?;
    let api = base
        .join(&format!("{}/{suffix}", base.path().trim_end_matches('/')))
        .map_err(|e| CollectError::Config(format!("collector `{name}`: bad {key}: {e}")))?;
    Ok((api, authority(&base)))
}

/// `path` under `api`, with a query.
pub fn endpoint(api: &Url, path: &str, query: &[(&str, &str)]) -> Url {
    let mut u = api.join(path).unwrap_or_else(|_| api.clone());
    if !query.is_empty() {
        u.query_pairs_mut().extend_pairs(query);
    }
    u
}

#[cfg(any(feature = "webdav", feature = "s3"))]
/// The character an XML entity or character reference stands for (`&amp;`, `&#38;`).
pub fn xml_entity(g: &quick_xml::events::BytesRef<'_>) -> Option<char> {
    match g.resolve_char_ref() {
        Ok(Some(c)) => Some(c),
        _ => match &*g.clone().into_inner() {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => None,
        },
    }
}

/// `host[:port]` of a URL, for artefact URIs.
pub fn authority(url: &Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_marker_is_stable() {
        #[derive(Serialize)]
        struct R {
            z: u8,
            a: &'static str,
        }
        assert_eq!(canonical_json(&R { z: 1, a: "x" }), br#"{"a":"x","z":1}"#);
        assert_eq!(marker(&R { z: 1, a: "x" }), marker(&R { z: 1, a: "x" }));
        assert_ne!(marker(&R { z: 1, a: "x" }), marker(&R { z: 2, a: "x" }));
    }

    #[test]
    fn segments_and_control_lists() {
        assert_eq!(segment("fraud detector/v2"), "fraud%20detector%2Fv2");
        assert_eq!(segment("modèle"), "mod%C3%A8le");
        assert_eq!(
            control_list("A.6.2.4, A.7.4;9.2").collect::<Vec<_>>(),
            ["A.6.2.4", "A.7.4", "9.2"]
        );
    }
}
