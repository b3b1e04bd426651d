//! Object storage for the ledger's own data: the settings a `[publish]` or `[blobs]` section
//! shares (an `s3://bucket/prefix` URL, the endpoint, region and credentials), and a bucket
//! opened from them for the synchronous tile and blob code (it blocks on a runtime of its
//! own; every request goes through the collectors' HTTP client and SigV4 signer).

use serde::{Deserialize, Serialize};

/// A place the ledger writes objects: a URL, and with `s3://` the bucket's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `s3://bucket/prefix`, or what the section takes besides (a directory for
    /// `[publish]`, `file://` for `[blobs]`).
    pub url: String,
    /// With `s3://`: the endpoint of an S3-compatible store (default: AWS in `region`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// With `s3://`: the signing region (default `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// With `s3://`: the access key id (default `$AWS_ACCESS_KEY_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// With `s3://`: the bucket in the path rather than the host (default: with `endpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// With `s3://`: the environment variable holding the secret key (default
    /// `AWS_SECRET_ACCESS_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// `[blobs]` only: how long the sequencer lease in the bucket lasts after each
    /// checkpoint (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
}

/// A request to a bucket that failed: what was asked, and the store's or client's answer.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct ObjectError {
    /// The request (`PUT s3://bucket/key`) or setting.
    pub what: String,
    /// Why.
    pub message: String,
}

impl StorageConfig {
    /// `bucket/prefix` when the URL is `s3://`, checked.
    pub fn bucket_url(&self) -> Option<Result<(&str, String), String>> {
        self.url.strip_prefix("s3://").map(bucket_and_prefix)
    }

    /// Whether two settings name the same bucket and prefix (`s3://b/p` and `s3://b/p/` do).
    pub fn same_place(&self, other: &StorageConfig) -> bool {
        match (self.bucket_url(), other.bucket_url()) {
            (Some(Ok(a)), Some(Ok(b))) => a == b,
            _ => self.url == other.url,
        }
    }

    /// Refuses bucket settings beside a URL that is not a bucket.
    pub fn check_settings(&self, section: &str) -> Result<(), String> {
        if let Some(b) = self.bucket_url() {
            return b.map(drop);
        }
        let bucket_only = [
            self.endpoint.is_some(),
            self.region.is_some(),
            self.access_key_id.is_some(),
            self.path_style.is_some(),
            self.secret_env.is_some(),
            self.lease.is_some(),
        ];
        if bucket_only.contains(&true) {
            return Err(format!(
                "{section} endpoint, region, access_key_id, path_style, secret_env and lease \
                 go with an s3:// url, not {:?}",
                self.url
            ));
        }
        Ok(())
    }
}

/// `bucket/prefix` of an `s3://` URL: the bucket, and the prefix ending in `/` (or empty).
pub fn bucket_and_prefix(rest: &str) -> Result<(&str, String), String> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid_bucket {
        return Err(format!(
            "s3://{rest}: {bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, \
             '-' or '.'); write s3://bucket/prefix"
        ));
    }
    // A URL parser would drop such segments, so the keys written would not be the ones named.
    if prefix.split('/').any(|s| s == "." || s == "..") {
        return Err(format!(
            "s3://{rest}: the prefix has '.' or '..' segments, which no request can name exactly"
        ));
    }
    if !cfg!(feature = "s3") {
        return Err(format!(
            "s3://{rest}: this build of evident has no S3 support (built without the `s3` \
             feature)"
        ));
    }
    let prefix = prefix.trim_matches('/');
    Ok((
        bucket,
        if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        },
    ))
}

#[cfg(feature = "s3")]
pub use bucket::ObjectBucket;

/// Without S3 support no bucket can be opened: [`ObjectBucket::open`] says so, and the
/// other methods cannot be reached.
#[cfg(not(feature = "s3"))]
#[derive(Debug)]
pub enum ObjectBucket {}

#[cfg(not(feature = "s3"))]
#[allow(missing_docs, clippy::missing_errors_doc)]
impl ObjectBucket {
    pub fn open(
        cfg: &StorageConfig,
        section: &str,
        _permissions: &'static str,
        _max_body: u64,
    ) -> Result<ObjectBucket, ObjectError> {
        Err(ObjectError {
            what: format!("{section} url {}", cfg.url),
            message: "this build of evident has no S3 support (built without the `s3` feature)"
                .to_owned(),
        })
    }
    pub fn describe(&self) -> String {
        match *self {}
    }
    pub fn get(&self, _: &str) -> Result<Option<Vec<u8>>, ObjectError> {
        match *self {}
    }
    pub fn get_tagged(&self, _: &str) -> Result<Option<(Vec<u8>, String)>, ObjectError> {
        match *self {}
    }
    pub fn download(&self, _: &str, _: &std::path::Path) -> Result<Option<u64>, ObjectError> {
        match *self {}
    }
    pub fn head(&self, _: &str) -> Result<Option<u64>, ObjectError> {
        match *self {}
    }
    pub fn delete(&self, _: &str) -> Result<bool, ObjectError> {
        match *self {}
    }
    pub fn put(&self, _: &str, _: &[u8], _: &str) -> Result<(), ObjectError> {
        match *self {}
    }
    pub fn put_if(
        &self,
        _: &str,
        _: &[u8],
        _: &str,
        _: (&str, &str),
    ) -> Result<Option<String>, ObjectError> {
        match *self {}
    }
    pub fn put_file_once(&self, _: &str, _: &std::path::Path) -> Result<bool, ObjectError> {
        match *self {}
    }
    pub fn put_files_once(
        &self,
        _: &[(String, std::path::PathBuf)],
        _: usize,
    ) -> Vec<Result<bool, ObjectError>> {
        match *self {}
    }
    pub fn list(&self, _: &str) -> Result<Vec<(String, u64)>, ObjectError> {
        match *self {}
    }
    pub fn download_many(
        &self,
        _: &[(String, std::path::PathBuf)],
        _: usize,
    ) -> Vec<Result<Option<u64>, ObjectError>> {
        match *self {}
    }
}

#[cfg(feature = "s3")]
mod bucket {
    use std::path::Path;
    use std::time::Duration;

    use evident_collectors::http::{Auth, Http, HttpOptions, Secret, Token};
    use evident_collectors::sources::s3::{Bucket, BucketConfig, Credentials, default_region};

    use super::{ObjectError, StorageConfig};

    /// Parts of a multipart upload: one is held in memory at a time.
    pub const PART: usize = 16 << 20;

    /// A bucket and a key prefix, with the credentials to use them.
    pub struct ObjectBucket {
        bucket: Bucket,
        prefix: String,
        creds: Credentials,
        /// Blocks on the client's requests: the ledger and tile code is synchronous.
        rt: &'static tokio::runtime::Runtime,
    }

    /// The one runtime every bucket blocks on. Process-wide and never dropped: a runtime
    /// owned by a bucket would be dropped wherever its last owner is (the daemon drops its
    /// ledger inside async code, where dropping a runtime panics).
    fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
        static RT: std::sync::OnceLock<Result<tokio::runtime::Runtime, String>> =
            std::sync::OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("evident-objects")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the HTTP runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    impl std::fmt::Debug for ObjectBucket {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.describe())
        }
    }

    impl ObjectBucket {
        /// The bucket of `cfg` (an `s3://` URL), for `section` (`[publish]`, `[blobs]`);
        /// `permissions` names what its credentials need, for the error that lacks them.
        pub fn open(
            cfg: &StorageConfig,
            section: &str,
            permissions: &'static str,
            max_body: u64,
        ) -> Result<ObjectBucket, ObjectError> {
            let fail = |message: String| ObjectError {
                what: format!("{section} url {}", cfg.url),
                message,
            };
            let (name, prefix) = match cfg.bucket_url() {
                Some(b) => b.map_err(fail)?,
                None => return Err(fail("not an s3:// URL".to_owned())),
            };
            let var = cfg
                .secret_env
                .clone()
                .unwrap_or_else(|| "AWS_SECRET_ACCESS_KEY".to_owned());
            let secret = std::env::var(&var)
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    fail(format!(
                        "no secret key in ${var} (set it, or name another variable with \
                         secret_env)"
                    ))
                })?;
            let token = Token {
                secret: Secret::new(secret),
                setting: format!("${var}"),
            };
            let http = Http::new(
                section,
                Auth::Signed(token.clone()),
                HttpOptions {
                    timeout: Duration::from_secs(120),
                    max_body,
                    permission_hint: permissions,
                    ..HttpOptions::default()
                },
            )
            .map_err(|e| fail(e.to_string()))?;
            let bucket = Bucket::new(
                section,
                &BucketConfig {
                    bucket: name.to_owned(),
                    endpoint: cfg.endpoint.clone(),
                    region: cfg.region.clone().unwrap_or_else(default_region),
                    access_key_id: cfg.access_key_id.clone(),
                    path_style: cfg.path_style,
                },
                http,
            )
            .map_err(|e| fail(e.to_string()))?;
            let creds = bucket
                .credentials(Some(token.secret))
                .map_err(|e| fail(e.to_string()))?;
            let rt = runtime().map_err(fail)?;
            Ok(ObjectBucket {
                bucket,
                prefix,
                creds,
                rt,
            })
        }

        /// `s3://bucket/prefix`.
        pub fn describe(&self) -> String {
            format!("s3://{}/{}", self.bucket.name(), self.prefix)
        }

        fn key(&self, path: &str) -> String {
            format!("{}{path}", self.prefix)
        }

        fn fail(&self, method: &str, key: &str, e: impl std::fmt::Display) -> ObjectError {
            ObjectError {
                what: format!("{method} s3://{}/{key}", self.bucket.name()),
                message: e.to_string(),
            }
        }

        /// The object at `path`, or `None` when there is none.
        pub fn get(&self, path: &str) -> Result<Option<Vec<u8>>, ObjectError> {
            let key = self.key(path);
            self.rt
                .block_on(self.bucket.get(&self.creds, &key))
                .map_err(|e| self.fail("GET", &key, e))
        }

        /// The object at `path` and its ETag, or `None`.
        pub fn get_tagged(&self, path: &str) -> Result<Option<(Vec<u8>, String)>, ObjectError> {
            let key = self.key(path);
            self.rt
                .block_on(self.bucket.get_tagged(&self.creds, &key))
                .map_err(|e| self.fail("GET", &key, e))
        }

        /// The object at `path` streamed into the file `dest`: its size, or `None`.
        pub fn download(&self, path: &str, dest: &Path) -> Result<Option<u64>, ObjectError> {
            let key = self.key(path);
            self.rt
                .block_on(self.bucket.download(&self.creds, &key, dest, u64::MAX))
                .map_err(|e| self.fail("GET", &key, e))
        }

        /// The size of the object at `path`, or `None`.
        pub fn head(&self, path: &str) -> Result<Option<u64>, ObjectError> {
            let key = self.key(path);
            self.rt
                .block_on(self.bucket.head(&self.creds, &key))
                .map_err(|e| self.fail("HEAD", &key, e))
        }

        /// Deletes the object at `path`.
        pub fn delete(&self, path: &str) -> Result<bool, ObjectError> {
            let key = self.key(path);
            self.rt
                .block_on(self.bucket.delete(&self.creds, &key))
                .map_err(|e| self.fail("DELETE", &key, e))
        }

        /// Writes `data` at `path` whole; returns once the store acknowledged it.
        pub fn put(&self, path: &str, data: &[u8], kind: &str) -> Result<(), ObjectError> {
            let key = self.key(path);
            self.rt
                .block_on(self.bucket.put(&self.creds, &key, data.to_vec(), kind))
                .map_err(|e| self.fail("PUT", &key, e))
        }

        /// Writes `data` at `path` under a condition (`if-none-match: *`, `if-match: ETAG`):
        /// the new ETag, or `None` when the store refused the condition.
        pub fn put_if(
            &self,
            path: &str,
            data: &[u8],
            kind: &str,
            condition: (&str, &str),
        ) -> Result<Option<String>, ObjectError> {
            let key = self.key(path);
            self.rt
                .block_on(self.bucket.put_if(
                    &self.creds,
                    &key,
                    data.to_vec(),
                    kind,
                    Some(condition),
                ))
                .map_err(|e| self.fail("PUT", &key, e))
        }

        /// Writes the file `file` at `path` unless the bucket has that key (content
        /// addressing), streaming it in parts; whether this call wrote it.
        pub fn put_file_once(&self, path: &str, file: &Path) -> Result<bool, ObjectError> {
            let key = self.key(path);
            self.rt
                .block_on(self.bucket.put_file_once(&self.creds, &key, file, PART))
                .map_err(|e| self.fail("PUT", &key, e))
        }

        /// [`ObjectBucket::put_file_once`] for each `(path, file)`, `in_flight` at a time
        /// (a store's latency, not its bandwidth, bounds one-by-one uploads); results in
        /// order.
        pub fn put_files_once(
            &self,
            items: &[(String, std::path::PathBuf)],
            in_flight: usize,
        ) -> Vec<Result<bool, ObjectError>> {
            use futures_util::stream::{self, StreamExt as _};
            self.rt.block_on(
                stream::iter(items)
                    .map(|(path, file)| async move {
                        let key = self.key(path);
                        self.bucket
                            .put_file_once(&self.creds, &key, file, PART)
                            .await
                            .map_err(|e| self.fail("PUT", &key, e))
                    })
                    .buffered(in_flight.max(1))
                    .collect(),
            )
        }

        /// [`ObjectBucket::download`] of each `(path, dest)`, `in_flight` at a time; results
        /// in order.
        pub fn download_many(
            &self,
            items: &[(String, std::path::PathBuf)],
            in_flight: usize,
        ) -> Vec<Result<Option<u64>, ObjectError>> {
            use futures_util::stream::{self, StreamExt as _};
            self.rt.block_on(
                stream::iter(items)
                    .map(|(path, dest)| async move {
                        let key = self.key(path);
                        self.bucket
                            .download(&self.creds, &key, dest, u64::MAX)
                            .await
                            .map_err(|e| self.fail("GET", &key, e))
                    })
                    .buffered(in_flight.max(1))
                    .collect(),
            )
        }

        /// Every key under `path` (relative to the prefix), page by page.
        pub fn list(&self, path: &str) -> Result<Vec<(String, u64)>, ObjectError> {
            let key = self.key(path);
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let (_, page) = self
                    .rt
                    .block_on(self.bucket.list(&self.creds, &key, 1000, token.as_deref()))
                    .map_err(|e| self.fail("LIST", &key, e))?;
                out.extend(page.objects.into_iter().filter_map(|o| {
                    o.key
                        .strip_prefix(&self.prefix)
                        .map(|k| (k.to_owned(), o.size))
                }));
                match page.next {
                    Some(t) => token = Some(t),
                    None => return Ok(out),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls_are_read_strictly() {
        if !cfg!(feature = "s3") {
            return;
        }
        assert_eq!(bucket_and_prefix("logs").unwrap(), ("logs", String::new()));
        assert_eq!(bucket_and_prefix("logs/").unwrap(), ("logs", String::new()));
        assert_eq!(
            bucket_and_prefix("logs//x/").unwrap(),
            ("logs", "x/".into())
        );
        assert_eq!(
            bucket_and_prefix("logs/a/b").unwrap(),
            ("logs", "a/b/".into())
        );
        for bad in ["", "/x", "Logs/x", "ab", "logs/x/../y", "logs/./y", "lo_gs"] {
            assert!(bucket_and_prefix(bad).is_err(), "{bad:?}");
        }
        let cfg = StorageConfig {
            url: "/srv/tiles".into(),
            region: Some("eu-west-1".into()),
            ..StorageConfig::default()
        };
        assert!(
            cfg.check_settings("[publish]")
                .unwrap_err()
                .contains("go with")
        );
    }
}
