//! The `s3` collector: objects of an S3-compatible bucket (AWS, MinIO, Ceph, moto), signed
//! with AWS Signature Version 4.
//!
//! Lists with `ListObjectsV2` (1,000 keys a page, `continuation-token`); an object whose
//! ETag, size and `LastModified` are known is not downloaded again; a changed one is
//! streamed to a scratch file, and its `x-amz-version-id` (when versioning is on) goes into
//! the title. Objects above `max_file_size` are recorded by their metadata. Objects gone
//! since the last full listing are recorded as removed. Keys are never used as local paths.

use std::collections::HashSet;

use chrono::Utc;
use globset::GlobSet;
use hmac::{Hmac, KeyInit, Mac};
use quick_xml::events::Event;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::download::{self, Scratch};
use super::record::{parse_time, unchanged};
use super::{Common, GlobPattern, glob_set};
use crate::http::{Auth, Http, Secret, parse_base_url};
use crate::media::media_type_for;
use crate::{
    Batch, CollectContext, CollectError, Collector, Content, Cursor, ItemProblem, Observation,
    words,
};

/// SHA-256 of an empty body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `kind = "s3"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Only keys under this prefix (`policies/`).
    #[serde(default)]
    pub prefix: String,
    /// Endpoint for S3-compatible stores (`http://127.0.0.1:9000`); default: AWS in `region`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region for signing (default `us-east-1`).
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key id; default `$AWS_ACCESS_KEY_ID`. The secret key comes from
    /// `token_env`/`token_file`, default `$AWS_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Bucket in the path (`endpoint/bucket/key`) rather than the host name; default: true
    /// with `endpoint`, false for AWS.
    #[serde(default)]
    pub path_style: Option<bool>,
    /// Only keys matching one of these globs (relative to `prefix`).
    #[serde(default)]
    pub include: Vec<GlobPattern>,
    /// Keys matching any of these are skipped.
    #[serde(default)]
    pub exclude: Vec<GlobPattern>,
}

fn default_region() -> String {
    "us-east-1".into()
}

/// SigV4 credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Access key id (not secret).
    pub access_key_id: String,
    /// Secret access key.
    pub secret: Secret,
    /// Session token of temporary credentials.
    pub session_token: Option<Secret>,
}

/// A running S3 collector.
#[derive(Debug)]
pub struct S3Collector {
    name: String,
    cfg: S3Config,
    base: Url,
    path_style: bool,
    common: Common,
    include: Option<GlobSet>,
    exclude: GlobSet,
    http: Http,
}

/// One `<Contents>` of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct S3Object {
    /// The key.
    pub key: String,
    /// ETag without quotes.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// `LastModified`.
    pub last_modified: String,
}

/// One `ListObjectsV2` page.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Objects.
    pub objects: Vec<S3Object>,
    /// Where the next page starts, when truncated.
    pub next: Option<String>,
}

/// HMAC-SHA-256 (RustCrypto's `hmac`), the step of every SigV4 key derivation.
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// AWS's URI encoding: everything but `A-Za-z0-9-_.~` as `%XX`; `/` kept when `path`.
pub fn aws_encode(s: &str, path: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (path && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Signs a request with SigV4: returns the headers to send (`x-amz-date`,
/// `x-amz-content-sha256`, the session token, `authorization`). `headers` are extra
/// headers to sign (lowercase names), `path` the encoded path, `query` the canonical query.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    host: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    creds: &Credentials,
    region: &str,
    amz_date: &str,
) -> Vec<(String, String)> {
    let date = &amz_date[..8];
    let mut h: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.trim().to_owned()))
        .collect();
    h.push(("host".into(), host.to_owned()));
    h.push(("x-amz-content-sha256".into(), EMPTY_SHA256.into()));
    h.push(("x-amz-date".into(), amz_date.to_owned()));
    if let Some(t) = &creds.session_token {
        h.push(("x-amz-security-token".into(), t.expose().to_owned()));
    }
    h.sort();
    let canonical_headers: String = h.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical =
        format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{EMPTY_SHA256}");
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(
        format!("AWS4{}", creds.secret.expose()).as_bytes(),
        date.as_bytes(),
    );
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, b"s3");
    let k = hmac(&k, b"aws4_request");
    let sig = hex(&hmac(&k, to_sign.as_bytes()));
    let mut out: Vec<(String, String)> = h
        .into_iter()
        .filter(|(k, _)| k != "host" && !headers.iter().any(|(x, _)| x == k))
        .collect();
    out.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}",
            creds.access_key_id
        ),
    ));
    out
}

/// Parses a `ListBucketResult`.
pub fn parse_list(xml: &[u8]) -> Result<ListPage, String> {
    let text = std::str::from_utf8(xml).map_err(|e| format!("the listing is not UTF-8: {e}"))?;
    let mut r = quick_xml::Reader::from_str(text);
    let mut page = ListPage::default();
    let mut path: Vec<String> = Vec::new();
    let mut obj = S3Object::default();
    let mut buf = String::new();
    let mut truncated = false;
    let mut token = None;
    let mut root = None;
    loop {
        let at = r.buffer_position();
        match r
            .read_event()
            .map_err(|e| format!("malformed XML after byte {at}: {e}"))?
        {
            Event::Start(e) => {
                let n = String::from_utf8_lossy(e.local_name().as_ref().as_bytes()).into_owned();
                root.get_or_insert_with(|| n.clone());
                if n == "Contents" {
                    obj = S3Object::default();
                }
                buf.clear();
                path.push(n);
            }
            Event::Text(t) => buf.push_str(&t.xml10_content()),
            Event::GeneralRef(g) => buf.extend(super::record::xml_entity(&g)),
            Event::End(_) => {
                let n = path.pop().unwrap_or_default();
                let in_contents = path.last().is_some_and(|p| p == "Contents");
                let v = std::mem::take(&mut buf);
                match n.as_str() {
                    "Key" if in_contents => obj.key = v,
                    "ETag" if in_contents => obj.etag = v.trim().trim_matches('"').to_owned(),
                    "Size" if in_contents => {
                        obj.size = v
                            .trim()
                            .parse()
                            .map_err(|_| format!("object size {v:?} is not a number"))?
                    }
                    "LastModified" if in_contents => obj.last_modified = v.trim().to_owned(),
                    "Contents" => {
                        if obj.key.is_empty() {
                            return Err("an object without a Key".into());
                        }
                        page.objects.push(std::mem::take(&mut obj));
                    }
                    "IsTruncated" => truncated = v.trim() == "true",
                    "NextContinuationToken" => token = Some(v.trim().to_owned()),
                    _ => {}
                }
            }
            Event::Eof if !path.is_empty() && root.as_deref() == Some("ListBucketResult") => {
                return Err("the listing is truncated; nothing is recorded as removed".into());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if root.as_deref() != Some("ListBucketResult") || !path.is_empty() {
        return Err(format!(
            "expected a ListBucketResult, got {}",
            root.as_deref().unwrap_or("nothing")
        ));
    }
    if truncated {
        page.next = Some(
            token
                .filter(|t| !t.is_empty())
                .ok_or("a truncated listing without NextContinuationToken")?,
        );
    }
    Ok(page)
}

#[derive(Debug, Serialize)]
struct Metadata<'a> {
    bucket: &'a str,
    object: &'a S3Object,
    /// Why the content was not fetched, when it could not be.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_fetched: Option<&'a str>,
}

impl S3Collector {
    /// Builds the collector from its config.
    pub fn new(name: &str, cfg: &S3Config, common: &Common) -> Result<Self, CollectError> {
        if cfg.bucket.is_empty() || cfg.bucket.contains('/') {
            return Err(CollectError::Config(format!(
                "collector `{name}`: bucket {:?} must be a bucket name, without '/'",
                cfg.bucket
            )));
        }
        let endpoint = cfg
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", cfg.region));
        let mut base = parse_base_url(name, "endpoint", &endpoint)?;
        let path_style = cfg.path_style.unwrap_or(cfg.endpoint.is_some());
        if !path_style {
            let host = format!("{}.{}", cfg.bucket, base.host_str().unwrap_or(""));
            base.set_host(Some(&host)).map_err(|e| {
                CollectError::Config(format!("collector `{name}`: bucket host {host}: {e}"))
            })?;
        }
        Ok(S3Collector {
            name: name.to_owned(),
            cfg: cfg.clone(),
            base,
            path_style,
            common: common.clone(),
            include: (!cfg.include.is_empty()).then(|| glob_set(&cfg.include)),
            exclude: glob_set(&cfg.exclude),
            http: common.http(
                name,
                Auth::Signed,
                "s3:ListBucket and s3:GetObject on the bucket",
                &[],
            )?,
        })
    }

    fn credentials(&self) -> Result<Credentials, CollectError> {
        let access_key_id = match &self.cfg.access_key_id {
            Some(a) => a.clone(),
            None => std::env::var("AWS_ACCESS_KEY_ID").map_err(|_| {
                CollectError::Config(format!(
                    "collector `{}`: set access_key_id, or export AWS_ACCESS_KEY_ID",
                    self.name
                ))
            })?,
        };
        let secret = match self.common.token.load(&self.name)? {
            Some(t) => t.secret,
            None => Secret::new(std::env::var("AWS_SECRET_ACCESS_KEY").map_err(|_| {
                CollectError::Config(format!(
                    "collector `{}`: no secret key: set token_env or token_file, or export AWS_SECRET_ACCESS_KEY",
                    self.name
                ))
            })?),
        };
        let session_token = std::env::var("AWS_SESSION_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(Secret::new);
        Ok(Credentials {
            access_key_id,
            secret,
            session_token,
        })
    }

    /// The URL and signed headers of a GET of `key` (or of the bucket, with `query`).
    fn signed(
        &self,
        creds: &Credentials,
        key: Option<&str>,
        query: &[(&str, &str)],
    ) -> Result<(Url, HeaderMap), CollectError> {
        let mut path = self.base.path().trim_end_matches('/').to_owned();
        if self.path_style {
            path.push('/');
            path.push_str(&aws_encode(&self.cfg.bucket, false));
        }
        path.push('/');
        if let Some(k) = key {
            path.push_str(&aws_encode(k, true));
        }
        let mut q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (aws_encode(k, false), aws_encode(v, false)))
            .collect();
        q.sort();
        let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let qs = qs.join("&");
        let mut url = self.base.clone();
        url.set_path(&path);
        url.set_query(Some(&qs).filter(|q| !q.is_empty()).map(|q| q.as_str()));
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_owned(),
        };
        let amz_date = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let mut headers = HeaderMap::new();
        for (k, v) in sign(
            "GET",
            &host,
            url.path(),
            &qs,
            &[],
            creds,
            &self.cfg.region,
            &amz_date,
        ) {
            let (Ok(n), Ok(mut v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) else {
                return Err(CollectError::Config(format!(
                    "collector `{}`: credentials contain characters not allowed in a header",
                    self.name
                )));
            };
            v.set_sensitive(k == "authorization" || k == "x-amz-security-token");
            headers.insert(n, v);
        }
        Ok((url, headers))
    }

    fn uri(&self, key: &str) -> String {
        // `..` segments are encoded so that no reader normalises the URI into another key.
        let segs: Vec<String> = key
            .split('/')
            .map(|s| {
                if s == ".." || s == "." {
                    s.replace('.', "%2E")
                } else {
                    aws_encode(s, false)
                }
            })
            .collect();
        format!("s3://{}/{}", self.cfg.bucket, segs.join("/"))
    }

    fn wanted(&self, rel: &str) -> bool {
        !self.exclude.is_match(rel) && self.include.as_ref().is_none_or(|i| i.is_match(rel))
    }

    async fn list(&self, creds: &Credentials) -> Result<Vec<S3Object>, CollectError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![
                ("list-type", "2"),
                ("max-keys", "1000"),
                ("prefix", self.cfg.prefix.as_str()),
            ];
            q.extend(token.as_deref().map(|t| ("continuation-token", t)));
            let (url, h) = self.signed(creds, None, &q)?;
            let f = self.http.request(Method::GET, &url, h, None).await?;
            let page =
                parse_list(&f.body).map_err(|e| CollectError::schema(format!("GET {url}: {e}")))?;
            out.extend(page.objects);
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    async fn scan(&self, cx: &CollectContext) -> Result<Batch, CollectError> {
        let creds = self.credentials()?;
        let objects = self.list(&creds).await?;
        let mut scratch = Scratch::new("s3")?;
        let mut batch = Batch::default();
        let mut seen = HashSet::new();
        for obj in &objects {
            let rel = obj
                .key
                .strip_prefix(&self.cfg.prefix)
                .unwrap_or(&obj.key)
                .trim_start_matches('/');
            if obj.key.ends_with('/') || !self.wanted(rel) {
                continue;
            }
            let uri = self.uri(&obj.key);
            seen.insert(uri.clone());
            let version = format!("{}|{}|{}", obj.etag, obj.size, obj.last_modified);
            if unchanged(cx, &uri, &version) {
                batch.unchanged += 1;
                continue;
            }
            if obj.key.split('/').any(|s| s == "." || s == "..") {
                // URL parsers remove such segments (even as %2E%2E), so a request would name
                // another key: the object is recorded from the listing (ETag, size, time),
                // never skipped, and the record says why its content is not there.
                const WHY: &str = "the key has '.' or '..' segments, which no URL can name exactly";
                batch.problems.push(ItemProblem {
                    item: uri.clone(),
                    message: format!("{WHY}; recorded from the listing (metadata only)"),
                    failed: false,
                });
                let meta = Metadata {
                    bucket: &self.cfg.bucket,
                    object: obj,
                    not_fetched: Some(WHY),
                };
                let mut o = Observation::new(
                    uri,
                    "document_metadata",
                    Content::Bytes(super::record::canonical_json(&meta)),
                );
                o.media_type = Some("application/json".into());
                o.title = Some(obj.key.rsplit('/').next().unwrap_or(&obj.key).to_owned());
                o.path = Some(rel.to_owned());
                o.updated_at = parse_time(&obj.last_modified);
                o.version = Some(version);
                o.default_controls = words::document_controls(rel);
                batch.observations.push(o);
                continue;
            }
            let (url, h) = self.signed(&creds, Some(&obj.key), &[])?;
            let meta = Metadata {
                bucket: &self.cfg.bucket,
                object: obj,
                not_fetched: None,
            };
            let got = download::document(
                &self.http,
                &url,
                h,
                &mut scratch,
                &uri,
                Some(obj.size),
                self.common.max_file_size,
                &meta,
                &mut batch.problems,
            )
            .await;
            let (mut o, fetched) = match got {
                Ok(x) => x,
                Err(e) if e.retry_after().is_some() => {
                    batch.failure = Some(e);
                    break;
                }
                Err(e) => {
                    batch.problems.push(ItemProblem {
                        item: uri,
                        message: e.to_string(),
                        failed: true,
                    });
                    continue;
                }
            };
            let version_id = fetched
                .as_ref()
                .and_then(|f| f.header("x-amz-version-id"))
                .filter(|v| *v != "null")
                .map(str::to_owned);
            if matches!(o.content, Content::File(_)) {
                o.media_type = fetched
                    .as_ref()
                    .and_then(|f| f.header("content-type"))
                    .map(|t| t.split(';').next().unwrap_or(t).trim().to_owned())
                    .filter(|t| t != "binary/octet-stream" && t != "application/octet-stream")
                    .or_else(|| media_type_for(&obj.key).map(str::to_owned));
            }
            let name = obj.key.rsplit('/').next().unwrap_or(&obj.key);
            o.title = Some(match &version_id {
                Some(v) => format!("{name} (version {v})"),
                None => name.to_owned(),
            });
            o.path = Some(rel.to_owned());
            o.updated_at = parse_time(&obj.last_modified);
            o.version = Some(version);
            o.default_controls = words::document_controls(rel);
            batch.observations.push(o);
        }
        if batch.failure.is_none() {
            let prefix_uri = self.uri(&self.cfg.prefix);
            for (uri, k) in cx.known_in_order() {
                if !seen.contains(uri) && uri.starts_with(&prefix_uri) {
                    let mut o = Observation::removed(uri.clone(), "document_removed", k);
                    o.path = uri.strip_prefix(&prefix_uri).map(str::to_owned);
                    batch.observations.push(o);
                }
            }
        }
        batch.requests = self.http.requests();
        batch.scratch = Some(scratch.into_dir());
        Ok(batch)
    }
}

#[async_trait::async_trait]
impl Collector for S3Collector {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn collect(
        &self,
        cx: &CollectContext,
        _cursor: Option<&Cursor>,
    ) -> Result<Batch, CollectError> {
        self.scan(cx).await
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        let creds = self.credentials()?;
        let (url, h) = self.signed(&creds, None, &[("list-type", "2"), ("max-keys", "1")])?;
        self.http
            .request(Method::GET, &url, h, None)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "GET Object" example of the AWS SigV4 documentation for S3.
    #[test]
    fn sigv4_matches_the_aws_example() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        };
        let h = sign(
            "GET",
            "examplebucket.s3.amazonaws.com",
            "/test.txt",
            "",
            &[("range", "bytes=0-9")],
            &creds,
            "us-east-1",
            "20130524T000000Z",
        );
        let auth = &h.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert!(
            h.iter()
                .any(|(k, v)| k == "x-amz-date" && v == "20130524T000000Z")
        );
        assert!(!h.iter().any(|(k, _)| k == "range" || k == "host"));
    }

    #[test]
    fn hmac_matches_rfc4231_cases_2_and_6() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex(&hmac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn listings_parse_and_bad_ones_are_named() {
        let xml = br#"<?xml version="1.0" encoding="utf-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated><Contents><Key>reports/2026/q1 &amp; q2.txt</Key><LastModified>2026-11-22T05:43:34.000Z</LastModified><ETag>"6f5902ac237024bdd0c176cb93063dc4"</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents><Name>docs</Name><KeyCount>1</KeyCount><NextContinuationToken>4431c7eb</NextContinuationToken></ListBucketResult>"#;
        let p = parse_list(xml).unwrap();
        assert_eq!(p.objects[0].key, "reports/2026/q1 & q2.txt");
        assert_eq!(p.objects[0].etag, "6f5902ac237024bdd0c176cb93063dc4");
        assert_eq!(p.objects[0].size, 12);
        assert_eq!(p.next.as_deref(), Some("4431c7eb"));
        assert!(
            parse_list(b"<Error><Code>AccessDenied</Code></Error>")
                .unwrap_err()
                .contains("expected a ListBucketResult")
        );
        assert!(
            parse_list(b"<ListBucketResult><Contents><Key>a</Key><Size>x</Size>")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            parse_list(b"<ListBucketResult><Contents></Key>")
                .unwrap_err()
                .contains("malformed XML")
        );
        assert!(
            parse_list(b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")
                .unwrap_err()
                .contains("without NextContinuationToken")
        );
        // Issue 11: a listing cut short is an error, never a shorter bucket.
        assert!(
            parse_list(b"<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents>")
                .unwrap_err()
                .contains("truncated")
        );
        assert_eq!(aws_encode("a b/ü~.txt", true), "a%20b/%C3%BC~.txt");
    }
}
