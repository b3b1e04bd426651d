//! Downloads for document stores: content streamed into a private scratch directory that
//! the recorder reads and the batch removes, or, above `max_file_size`, the object's
//! metadata instead of its bytes.

use std::path::PathBuf;

use reqwest::Url;
use reqwest::header::HeaderMap;
use serde::Serialize;

use super::record::canonical_json;
use crate::driver::Run;
use crate::http::Http;
use crate::{CollectError, Content, Observation};

/// A private scratch directory for one run's downloads.
#[derive(Debug)]
pub struct Scratch {
    dir: tempfile::TempDir,
    real: PathBuf,
    n: usize,
}

impl Scratch {
    /// A new directory (mode 0700) under the system's temporary directory.
    pub fn new(kind: &str) -> Result<Scratch, CollectError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("evident-{kind}-"))
            .tempdir()
            .map_err(|e| CollectError::Io {
                context: "creating a scratch directory for downloads".into(),
                error: e,
            })?;
        // Files are opened by their real path (links refused): resolve `$TMPDIR` once.
        let real = std::fs::canonicalize(dir.path()).map_err(|e| CollectError::Io {
            context: "resolving the scratch directory for downloads".into(),
            error: e,
        })?;
        Ok(Scratch { dir, real, n: 0 })
    }

    /// A fresh file name inside it (numbered: remote names never become local paths).
    pub fn file(&mut self) -> PathBuf {
        self.n += 1;
        self.real.join(self.n.to_string())
    }

    /// The directory, to be kept alive by the batch until it is recorded.
    pub fn into_dir(self) -> tempfile::TempDir {
        self.dir
    }
}

/// A `document` observation with the bytes at `url` (and the response, for its headers),
/// or, when `size` is above `max`, a `document_metadata` observation holding `metadata`
/// (reported as skipped content).
#[allow(clippy::too_many_arguments)]
pub async fn document(
    run: &mut Run<'_>,
    http: &Http,
    url: &Url,
    headers: HeaderMap,
    uri: &str,
    size: Option<u64>,
    max: u64,
    metadata: &impl Serialize,
) -> Result<(Observation, Option<crate::http::Fetched>), CollectError> {
    if size.is_some_and(|s| s > max) {
        run.skipped(
            uri,
            format!(
                "larger than max_file_size ({max} bytes); its metadata is recorded, not its content"
            ),
        );
        return Ok((metadata_only(uri, metadata), None));
    }
    let dest = run.scratch()?.file();
    let (fetched, _) = http.download(url, headers, &dest, max, &[]).await?;
    Ok((
        Observation::new(uri, "document", Content::File(dest)),
        Some(fetched),
    ))
}

/// A `document_metadata` observation: the canonical JSON of what the source says about a
/// document whose content is not kept.
pub fn metadata_only(uri: &str, metadata: &impl Serialize) -> Observation {
    let mut o = Observation::new(
        uri,
        "document_metadata",
        Content::Bytes(canonical_json(metadata)),
    );
    o.media_type = Some("application/json".into());
    o
}

/// The media type a download's `Content-Type` states, unless it is the generic "bytes"
/// that stores answer when they do not know; else the one its name suggests.
pub fn media_type(fetched: Option<&crate::http::Fetched>, name: &str) -> Option<String> {
    fetched
        .and_then(|f| f.header("content-type"))
        .map(|t| t.split(';').next().unwrap_or(t).trim().to_owned())
        .filter(|t| t != "binary/octet-stream" && t != "application/octet-stream")
        .or_else(|| crate::media::media_type_for(name).map(str::to_owned))
}
