//! One S3-compatible bucket over the shared HTTP client: where it is (AWS in a region, or an
//! endpoint with the bucket in the path), its credentials, and SigV4-signed requests. The
//! `s3` collector lists and reads with it; the tile publisher writes with it.

use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::list::{ListPage, parse_list, xml_field};
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

    /// The object at `key`, or `None` when the bucket has none.
    pub async fn get(
        &self,
        creds: &Credentials,
        key: &str,
    ) -> Result<Option<Vec<u8>>, CollectError> {
        Ok(self.get_tagged(creds, key).await?.map(|(body, _)| body))
    }

    /// The object at `key` and its ETag (for a later `If-Match`), or `None`.
    pub async fn get_tagged(
        &self,
        creds: &Credentials,
        key: &str,
    ) -> Result<Option<(Vec<u8>, String)>, CollectError> {
        let (url, h) = self.signed(creds, "GET", Some(key), &[], EMPTY_SHA256, &[])?;
        let f = self
            .http
            .request_accepting(Method::GET, &url, h, None, &[404])
            .await?;
        if f.status == 404 {
            return Ok(None);
        }
        let etag = f.etag().unwrap_or_default().to_owned();
        Ok(Some((f.body, etag)))
    }

    /// The object at `key` streamed into `dest` (at most `max` bytes): its size, or `None`
    /// when the bucket has none.
    pub async fn download(
        &self,
        creds: &Credentials,
        key: &str,
        dest: &std::path::Path,
        max: u64,
    ) -> Result<Option<u64>, CollectError> {
        let (url, h) = self.signed(creds, "GET", Some(key), &[], EMPTY_SHA256, &[])?;
        let (f, size) = self.http.download(&url, h, dest, max, &[404]).await?;
        Ok((f.status != 404).then_some(size))
    }

    /// The size of the object at `key`, or `None` when the bucket has none.
    pub async fn head(&self, creds: &Credentials, key: &str) -> Result<Option<u64>, CollectError> {
        let (url, h) = self.signed(creds, "HEAD", Some(key), &[], EMPTY_SHA256, &[])?;
        let f = self
            .http
            .request_accepting(Method::HEAD, &url, h, None, &[404])
            .await?;
        if f.status == 404 {
            return Ok(None);
        }
        Ok(Some(
            f.header("content-length")
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0),
        ))
    }

    /// Deletes `key` (`DeleteObject`); true when the store answered 204 (S3 answers 204
    /// whether or not the key existed, so callers check with `head` when that matters).
    pub async fn delete(&self, creds: &Credentials, key: &str) -> Result<bool, CollectError> {
        let (url, h) = self.signed(creds, "DELETE", Some(key), &[], EMPTY_SHA256, &[])?;
        let f = self
            .http
            .request_accepting(Method::DELETE, &url, h, None, &[404])
            .await?;
        Ok(f.status != 404)
    }

    /// Writes `body` at `key` in one signed `PUT` (its SHA-256 signed with it, so the store
    /// refuses a body damaged on the way); returns once the store acknowledged it.
    pub async fn put(
        &self,
        creds: &Credentials,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), CollectError> {
        self.put_if(creds, key, body, content_type, None)
            .await
            .map(drop)
    }

    /// A `PUT` under a condition (`("if-none-match", "*")` to write only a new key,
    /// `("if-match", etag)` to replace only that version): the new object's ETag, or `None`
    /// when the store refused the condition (412, or 409 for a concurrent conditional write).
    pub async fn put_if(
        &self,
        creds: &Credentials,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: Option<(&str, &str)>,
    ) -> Result<Option<String>, CollectError> {
        self.put_refusable(creds, key, body, content_type, condition, &[409, 412])
            .await
    }

    /// A conditional `PUT` whose answers in `refused` mean "the condition did not hold".
    async fn put_refusable(
        &self,
        creds: &Credentials,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: Option<(&str, &str)>,
        refused: &[u16],
    ) -> Result<Option<String>, CollectError> {
        let sha = hex_sha256(&body);
        let mut extra = vec![("content-type", content_type)];
        extra.extend(condition);
        extra.sort();
        let (url, h) = self.signed(creds, "PUT", Some(key), &[], &sha, &extra)?;
        let f = self
            .http
            .request_accepting(Method::PUT, &url, h, Some(body), refused)
            .await?;
        if refused.contains(&f.status) {
            return Ok(None);
        }
        Ok(Some(f.etag().unwrap_or_default().to_owned()))
    }

    /// Writes the file `path` at `key` unless the bucket has that key already (content
    /// addressing: same key, same bytes): one conditional `PUT`, or a multipart upload of
    /// `part`-byte parts above that, so no more than one part is ever held in memory.
    /// Returns whether this call wrote it.
    pub async fn put_file_once(
        &self,
        creds: &Credentials,
        key: &str,
        path: &std::path::Path,
        part: usize,
    ) -> Result<bool, CollectError> {
        use tokio::io::AsyncReadExt as _;
        let io = |e: std::io::Error| CollectError::Io {
            context: format!("{}: reading {}", self.label, path.display()),
            error: e,
        };
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        let octets = "application/octet-stream";
        if size <= part as u64 {
            let mut body = Vec::with_capacity(size as usize);
            file.read_to_end(&mut body).await.map_err(io)?;
            // Only a 412 says the key exists: a 409 (a conflicting concurrent write) does
            // not, and fails the upload so the batch is not committed.
            let put = self
                .put_refusable(
                    creds,
                    key,
                    body,
                    octets,
                    Some(("if-none-match", "*")),
                    &[412],
                )
                .await?;
            return Ok(put.is_some());
        }
        if self.head(creds, key).await?.is_some() {
            return Ok(false);
        }
        let id = self.multipart_start(creds, key).await?;
        let result = async {
            let mut etags = Vec::new();
            loop {
                let mut body = Vec::with_capacity(part);
                (&mut file)
                    .take(part as u64)
                    .read_to_end(&mut body)
                    .await
                    .map_err(io)?;
                if body.is_empty() {
                    break;
                }
                let n = (etags.len() + 1).to_string();
                let sha = hex_sha256(&body);
                let q = [("partNumber", n.as_str()), ("uploadId", id.as_str())];
                let (url, h) = self.signed(creds, "PUT", Some(key), &q, &sha, &[])?;
                let f = self.http.request(Method::PUT, &url, h, Some(body)).await?;
                etags.push(f.etag().unwrap_or_default().to_owned());
            }
            self.multipart_finish(creds, key, &id, &etags).await
        }
        .await;
        if !matches!(result, Ok(true)) {
            // Parts of an unfinished upload are billed until aborted.
            if let Ok((url, h)) = self.signed(
                creds,
                "DELETE",
                Some(key),
                &[("uploadId", id.as_str())],
                EMPTY_SHA256,
                &[],
            ) {
                let _ = self.http.request(Method::DELETE, &url, h, None).await;
            }
        }
        result
    }

    async fn multipart_start(
        &self,
        creds: &Credentials,
        key: &str,
    ) -> Result<String, CollectError> {
        let (url, h) = self.signed(
            creds,
            "POST",
            Some(key),
            &[("uploads", "")],
            EMPTY_SHA256,
            &[],
        )?;
        let f = self.http.request(Method::POST, &url, h, None).await?;
        match xml_field(&f.body, "UploadId") {
            Ok((root, Some(id))) if root == "InitiateMultipartUploadResult" && !id.is_empty() => {
                Ok(id)
            }
            Ok((root, _)) => Err(CollectError::schema(format!(
                "POST {url}: expected an InitiateMultipartUploadResult with an UploadId, got {root}"
            ))),
            Err(e) => Err(CollectError::schema(format!("POST {url}: {e}"))),
        }
    }

    /// Completes a multipart upload; true when it wrote the object, false when the key was
    /// written meanwhile (the completion is conditional too).
    async fn multipart_finish(
        &self,
        creds: &Credentials,
        key: &str,
        id: &str,
        etags: &[String],
    ) -> Result<bool, CollectError> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, e) in etags.iter().enumerate() {
            let e = e.replace('&', "&amp;").replace('<', "&lt;");
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{e}</ETag></Part>",
                i + 1
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let body = xml.into_bytes();
        let sha = hex_sha256(&body);
        let (url, h) = self.signed(
            creds,
            "POST",
            Some(key),
            &[("uploadId", id)],
            &sha,
            &[("if-none-match", "*")],
        )?;
        let f = self
            .http
            .request_accepting(Method::POST, &url, h, Some(body), &[412])
            .await?;
        if f.status == 412 {
            return Ok(false);
        }
        // S3 may answer 200 and still report a failure in the body.
        match xml_field(&f.body, "Code") {
            Ok((root, _)) if root == "CompleteMultipartUploadResult" => Ok(true),
            Ok((root, code)) => Err(CollectError::Remote {
                message: format!(
                    "POST {url}: the upload was not completed ({root} {})",
                    code.unwrap_or_default()
                ),
                retryable: true,
                retry_after: None,
            }),
            Err(e) => Err(CollectError::schema(format!("POST {url}: {e}"))),
        }
    }
}

/// The lowercase hex SHA-256 of `body`, as SigV4 signs it.
fn hex_sha256(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
