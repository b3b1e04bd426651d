//! The `s3` collector: objects of an S3-compatible bucket (AWS, MinIO, Ceph, moto), signed
//! with AWS Signature Version 4.
//!
//! Lists with `ListObjectsV2` (1,000 keys a page, `continuation-token`); an object whose
//! ETag, size and `LastModified` are known is not downloaded again; a changed one is
//! streamed to a scratch file, and its `x-amz-version-id` (when versioning is on) goes into
//! the title. Objects above `max_file_size` are recorded by their metadata. Objects gone
//! since the last full listing are recorded as removed. Keys are never used as local paths.

mod bucket;
mod list;
mod sigv4;

use std::collections::HashSet;

use globset::GlobSet;
use serde::{Deserialize, Serialize};

pub use bucket::{Bucket, BucketConfig, default_region};
pub use list::{ListPage, S3Object, parse_list, xml_field};
pub use sigv4::{Credentials, EMPTY_SHA256, ToSign, aws_encode, sign};

use super::download;
use super::record::parse_time;
use super::{Common, GlobPattern, glob_set};
use crate::driver::{Run, Source};
use crate::http::{Auth, Http};
use crate::{CollectContext, CollectError, Content, Suggest};

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
    #[serde(default = "bucket::default_region")]
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

/// A running S3 collector.
#[derive(Debug)]
pub struct S3Collector {
    name: String,
    cfg: S3Config,
    bucket: Bucket,
    common: Common,
    include: Option<GlobSet>,
    exclude: GlobSet,
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
    fn build(name: &str, cfg: &S3Config, common: &Common) -> Result<Self, CollectError> {
        let http = common.http(
            name,
            Auth::Signed,
            "s3:ListBucket and s3:GetObject on the bucket",
            &[],
        )?;
        let bucket = Bucket::new(
            &format!("collector `{name}`"),
            &BucketConfig {
                bucket: cfg.bucket.clone(),
                endpoint: cfg.endpoint.clone(),
                region: cfg.region.clone(),
                access_key_id: cfg.access_key_id.clone(),
                path_style: cfg.path_style,
            },
            http,
        )?;
        Ok(S3Collector {
            name: name.to_owned(),
            cfg: cfg.clone(),
            bucket,
            common: common.clone(),
            include: (!cfg.include.is_empty()).then(|| glob_set(&cfg.include)),
            exclude: glob_set(&cfg.exclude),
        })
    }

    fn credentials(&self) -> Result<Credentials, CollectError> {
        let secret = self.common.token.load(&self.name)?.map(|t| t.secret);
        self.bucket.credentials(secret)
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
    /// Records one listed object: unchanged, from its listing alone, or downloaded.
    async fn object(
        &self,
        run: &mut Run<'_>,
        creds: &Credentials,
        obj: &S3Object,
        rel: &str,
        uri: String,
    ) -> Result<(), CollectError> {
        let version = format!("{}|{}|{}", obj.etag, obj.size, obj.last_modified);
        if run.unchanged(&uri, &version) {
            return Ok(());
        }
        let name = obj.key.rsplit('/').next().unwrap_or(&obj.key);
        let mut o = if obj.key.split('/').any(|s| s == "." || s == "..") {
            // URL parsers remove such segments (even as %2E%2E), so a request would name
            // another key: the object is recorded from the listing (ETag, size, time),
            // never skipped, and the record says why its content is not there.
            const WHY: &str = "the key has '.' or '..' segments, which no URL can name exactly";
            run.skipped(
                &uri,
                format!("{WHY}; recorded from the listing (metadata only)"),
            );
            let meta = Metadata {
                bucket: &self.cfg.bucket,
                object: obj,
                not_fetched: Some(WHY),
            };
            let mut o = download::metadata_only(&uri, &meta);
            o.title = Some(name.to_owned());
            o
        } else {
            let (url, h) =
                self.bucket
                    .signed(creds, "GET", Some(&obj.key), &[], EMPTY_SHA256, &[])?;
            let meta = Metadata {
                bucket: &self.cfg.bucket,
                object: obj,
                not_fetched: None,
            };
            let got = download::document(
                run,
                self.bucket.http(),
                &url,
                h,
                &uri,
                Some(obj.size),
                self.common.max_file_size,
                &meta,
            )
            .await;
            let Some((mut o, fetched)) = run.item(&uri, got)? else {
                return Ok(());
            };
            if matches!(o.content, Content::File(_)) {
                o.media_type = download::media_type(fetched.as_ref(), &obj.key);
            }
            let version_id = fetched
                .as_ref()
                .and_then(|f| f.header("x-amz-version-id"))
                .filter(|v| *v != "null");
            o.title = Some(match version_id {
                Some(v) => format!("{name} (version {v})"),
                None => name.to_owned(),
            });
            o
        };
        o.path = Some(rel.to_owned());
        o.updated_at = parse_time(&obj.last_modified);
        o.version = Some(version);
        o.suggest = Suggest::Document(rel.to_owned());
        run.push(o);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Source for S3Collector {
    type Config = S3Config;

    fn new(name: &str, cfg: &S3Config, common: &Common) -> Result<Self, CollectError> {
        S3Collector::build(name, cfg, common)
    }

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        let creds = self.credentials()?;
        let mut seen = HashSet::new();
        let mut token: Option<String> = None;
        loop {
            let (url, page) = self
                .bucket
                .list(&creds, &self.cfg.prefix, 1000, token.as_deref())
                .await?;
            for obj in &page.objects {
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
                self.object(run, &creds, obj, rel, uri).await?;
            }
            match page.next {
                // A store that hands out the same token again would be listed forever.
                Some(t) if token.as_deref() == Some(t.as_str()) => {
                    return Err(CollectError::schema(format!(
                        "GET {url}: the listing's continuation token repeats; stopping rather than looping"
                    )));
                }
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let prefix = self.uri(&self.cfg.prefix);
        for o in run.sweep_removed(&prefix, "document_removed", |uri| seen.contains(uri)) {
            o.path = o.uri.strip_prefix(&prefix).map(str::to_owned);
        }
        Ok(())
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        let creds = self.credentials()?;
        self.bucket
            .list(&creds, &self.cfg.prefix, 1, None)
            .await
            .map(drop)
    }

    fn http(&self) -> Option<&Http> {
        Some(self.bucket.http())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_aws_does() {
        assert_eq!(aws_encode("a b/ü~.txt", true), "a%20b/%C3%BC~.txt");
    }
}
