//! Downloads for document stores: content streamed into a private scratch directory that
//! the recorder reads and the batch removes, or, above `max_file_size`, the object's
//! metadata instead of its bytes.

use std::path::PathBuf;

use reqwest::Url;
use reqwest::header::HeaderMap;
use serde::Serialize;

use super::record::canonical_json;
use crate::http::Http;
use crate::{CollectError, Content, ItemProblem, Observation};

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
    fn next(&mut self) -> PathBuf {
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
/// (and a warning in `problems`).
#[allow(clippy::too_many_arguments)]
pub async fn document(
    http: &Http,
    url: &Url,
    headers: HeaderMap,
    scratch: &mut Scratch,
    uri: &str,
    size: Option<u64>,
    max: u64,
    metadata: &impl Serialize,
    problems: &mut Vec<ItemProblem>,
) -> Result<(Observation, Option<crate::http::Fetched>), CollectError> {
    if size.is_some_and(|s| s > max) {
        problems.push(ItemProblem {
            item: uri.to_owned(),
            message: format!(
                "larger than max_file_size ({max} bytes); its metadata is recorded, not its content"
            ),
            failed: false,
        });
        let mut o = Observation::new(
            uri,
            "document_metadata",
            Content::Bytes(canonical_json(metadata)),
        );
        o.media_type = Some("application/json".into());
        return Ok((o, None));
    }
    let dest = scratch.next();
    let (fetched, _) = http.download(url, headers, &dest, max).await?;
    Ok((
        Observation::new(uri, "document", Content::File(dest)),
        Some(fetched),
    ))
}
