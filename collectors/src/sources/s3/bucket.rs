//! One S3-compatible bucket over the shared HTTP client: where it is (AWS in a region, or an
//! endpoint with the bucket in the path), its credentials, and SigV4-signed requests. The
//! `s3` collector lists and reads with it; the tile publisher writes with it.

use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::list::{ListPage, parse_list};
use super::sigv4::{Credentials, EMPTY_SHA256, ToSign, aws_encode, sign};
use crate::CollectError;
use crate::http::{Http, Secret};

/// Where a bucket is and who signs for it (the settings the `s3` collector and
/// `[publish]` share).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct BucketConfig {
    /// Bucket name.
    pub bucket: String,
    /// Endpoint for S3-compatible stores (`http://127.0.0.1:9000`); default: AWS in `region`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region for signing (default `us-east-1`).
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key id; default `$AWS_ACCESS_KEY_ID`.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Bucket in the path (`endpoint/bucket/key`) rather than the host name; default: true
    /// with `endpoint`, false for AWS.
    #[serde(default)]
    pub path_style: Option<bool>,
}

/// The default signing region.
pub fn default_region() -> String {
    "us-east-1".into()
}

/// A bucket, ready for signed requests.
#[derive(Debug)]
pub struct Bucket {
    /// Who uses it, for messages (a collector's name, `publish`).
    label: String,
    cfg: BucketConfig,
    base: Url,
    path_style: bool,
    http: Http,
}

impl Bucket {
    /// The bucket of `cfg`, used by `label`, over `http`.
    pub fn new(label: &str, cfg: &BucketConfig, http: Http) -> Result<Bucket, CollectError> {
        if cfg.bucket.is_empty() || cfg.bucket.contains('/') {
            return Err(CollectError::Config(format!(
                "{label}: bucket {:?} must be a bucket name, without '/'",
                cfg.bucket
            )));
        }
        let endpoint = cfg
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", cfg.region));
        let mut base = Url::parse(&endpoint)
            .ok()
            .filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.username().is_empty()
                    && u.password().is_none()
            })
            .ok_or_else(|| {
                CollectError::Config(format!(
                    "{label}: endpoint {endpoint:?} must be an http:// or https:// URL without \
                     a user name or password (https://minio.example.org)"
                ))
            })?;
        let path_style = cfg.path_style.unwrap_or(cfg.endpoint.is_some());
        if !path_style {
            let host = format!("{}.{}", cfg.bucket, base.host_str().unwrap_or(""));
            base.set_host(Some(&host))
                .map_err(|e| CollectError::Config(format!("{label}: bucket host {host}: {e}")))?;
        }
        Ok(Bucket {
            label: label.to_owned(),
            cfg: cfg.clone(),
            base,
            path_style,
            http,
        })
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.cfg.bucket
    }

    /// The HTTP client.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The credentials: the access key id from the settings or `$AWS_ACCESS_KEY_ID`, the
    /// secret given (a collector's `token_env`/`token_file`) or `$AWS_SECRET_ACCESS_KEY`,
    /// and `$AWS_SESSION_TOKEN` when set.
    pub fn credentials(&self, secret: Option<Secret>) -> Result<Credentials, CollectError> {
        let label = &self.label;
        let access_key_id = match &self.cfg.access_key_id {
            Some(a) => a.clone(),
            None => std::env::var("AWS_ACCESS_KEY_ID").map_err(|_| {
                CollectError::Config(format!(
                    "{label}: set access_key_id, or export AWS_ACCESS_KEY_ID"
                ))
            })?,
        };
        let secret = match secret {
            Some(s) => s,
            None => Secret::new(std::env::var("AWS_SECRET_ACCESS_KEY").map_err(|_| {
                CollectError::Config(format!(
                    "{label}: no secret key: set token_env or token_file, or export AWS_SECRET_ACCESS_KEY"
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

    /// The URL and signed headers of a request for `key` (or the bucket, with `query`),
    /// with a body whose SHA-256 is `payload` and `extra` headers (lowercase names).
    pub fn signed(
        &self,
        creds: &Credentials,
        method: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        payload: &str,
        extra: &[(&str, &str)],
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
        let signed = sign(
            &ToSign {
                method,
                host: &host,
                path: url.path(),
                query: &qs,
                headers: extra,
                payload,
            },
            creds,
            &self.cfg.region,
            &amz_date,
        );
        for (k, v) in extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain(signed)
        {
            let (Ok(n), Ok(mut v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) else {
                return Err(CollectError::Config(format!(
                    "{}: credentials contain characters not allowed in a header",
                    self.label
                )));
            };
            v.set_sensitive(k == "authorization" || k == "x-amz-security-token");
            headers.insert(n, v);
        }
        Ok((url, headers))
    }

    /// One `ListObjectsV2` page of keys under `prefix`, from `token`.
    pub async fn list(
        &self,
        creds: &Credentials,
        prefix: &str,
        max_keys: u32,
        token: Option<&str>,
    ) -> Result<(Url, ListPage), CollectError> {
        let max = max_keys.to_string();
        let mut q = vec![
            ("list-type", "2"),
            ("max-keys", max.as_str()),
            ("prefix", prefix),
        ];
        q.extend(token.map(|t| ("continuation-token", t)));
        let (url, h) = self.signed(creds, "GET", None, &q, EMPTY_SHA256, &[])?;
        let f = self.http.request(Method::GET, &url, h, None).await?;
        let page =
            parse_list(&f.body).map_err(|e| CollectError::schema(format!("GET {url}: {e}")))?;
        Ok((url, page))
    }

    /// The object at `key`, or `None` when the bucket has none (found by listing, so a
    /// missing key is told apart from a failed request).
    pub async fn get(
        &self,
        creds: &Credentials,
        key: &str,
    ) -> Result<Option<Vec<u8>>, CollectError> {
        let (_, page) = self.list(creds, key, 1, None).await?;
        if !page.objects.iter().any(|o| o.key == key) {
            return Ok(None);
        }
        let (url, h) = self.signed(creds, "GET", Some(key), &[], EMPTY_SHA256, &[])?;
        Ok(Some(
            self.http.request(Method::GET, &url, h, None).await?.body,
        ))
    }

    /// Writes `body` at `key` in one signed `PUT` (its SHA-256 signed with it); returns once
    /// the store acknowledged it.
    pub async fn put(
        &self,
        creds: &Credentials,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), CollectError> {
        let sha = Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let (url, h) = self.signed(
            creds,
            "PUT",
            Some(key),
            &[],
            &sha,
            &[("content-type", content_type)],
        )?;
        self.http
            .request(Method::PUT, &url, h, Some(body))
            .await
            .map(drop)
    }
}
