//! Where tiles live: a directory (`file://` or a path) or a bucket (`s3://bucket/prefix`,
//! any S3-compatible store), written by the publisher; or an `http(s)://` prefix a web
//! server or bucket serves, read by the verifier.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use evident_collectors::http::{Auth, Http, HttpOptions};
use reqwest::Url;

use super::TileError;

/// The largest object read: a full entry bundle of maximal leaves (256 × 64 KiB).
pub const MAX_OBJECT: u64 = super::layout::WIDTH * (2 + super::layout::MAX_ENTRY as u64);

/// A tile location.
pub enum Store {
    /// A directory on this host.
    Dir(PathBuf),
    /// A read-only HTTP(S) prefix.
    Http(Box<Remote>),
    /// A bucket and prefix, written with signed `PUT`s.
    #[cfg(feature = "s3")]
    Bucket(Box<crate::objects::ObjectBucket>),
}

/// A read-only HTTP(S) prefix.
pub struct Remote {
    /// The prefix, ending in `/`.
    base: Url,
    /// The shared client (retries, bounded bodies, redirects kept on one host).
    http: Http,
    /// Blocks on the client's requests: the tile code is synchronous.
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Store {
    /// Opens `url`: `file:///dir`, a plain path, or `http(s)://host/prefix`.
    pub fn open(url: &str) -> Result<Store, TileError> {
        if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(TileError::Url(format!(
                    "{url}: a file URL needs an absolute path (file:///srv/tiles)"
                )));
            }
            return Ok(Store::Dir(PathBuf::from(rest)));
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            let mut base = Url::parse(url).map_err(|e| TileError::Url(format!("{url}: {e}")))?;
            if !base.path().ends_with('/') {
                base.set_path(&format!("{}/", base.path()));
            }
            let http = Http::new(
                "tiles",
                Auth::None,
                HttpOptions {
                    timeout: Duration::from_secs(60),
                    max_body: MAX_OBJECT,
                    ..HttpOptions::default()
                },
            )
            .map_err(|e| TileError::Url(e.to_string()))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| TileError::Url(format!("cannot start the HTTP runtime: {e}")))?;
            return Ok(Store::Http(Box::new(Remote { base, http, rt })));
        }
        if url.contains("://") {
            return Err(TileError::Url(format!(
                "{url}: tiles are read from a directory (a path or file:///dir) or an \
                 http(s):// prefix, and published to a directory"
            )));
        }
        Ok(Store::Dir(PathBuf::from(url)))
    }

    /// The bucket of `[publish]` (an `s3://` URL).
    #[cfg(feature = "s3")]
    pub fn bucket(cfg: &super::PublishConfig) -> Result<Store, TileError> {
        crate::objects::ObjectBucket::open(
            cfg,
            "[publish]",
            "s3:PutObject, s3:GetObject and s3:ListBucket on the bucket",
            MAX_OBJECT,
        )
        .map(|b| Store::Bucket(Box::new(b)))
        .map_err(|e| TileError::Url(e.to_string()))
    }

    /// A bucket URL in a build without S3 support: refused with the reason.
    #[cfg(not(feature = "s3"))]
    pub fn bucket(cfg: &super::PublishConfig) -> Result<Store, TileError> {
        Err(TileError::Url(format!(
            "{}: no S3 support in this build",
            cfg.url
        )))
    }

    /// Where this is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Store::Dir(d) => d.display().to_string(),
            Store::Http(r) => r.base.to_string(),
            #[cfg(feature = "s3")]
            Store::Bucket(b) => b.describe(),
        }
    }

    /// The object at `path`, or `None` when a directory has none.
    pub fn get(&self, path: &str) -> Result<Option<Vec<u8>>, TileError> {
        match self {
            Store::Dir(dir) => read_bounded(&dir.join(path)),
            Store::Http(r) => {
                let Remote { base, http, rt } = &**r;
                // Appended to the prefix's path, so a query (a presigned or tokened bucket
                // URL) is kept.
                let mut url = base.clone();
                url.set_path(&format!("{}{path}", base.path()));
                match rt.block_on(http.get(&url, None)) {
                    Ok(f) => Ok(Some(f.body)),
                    // A 404 too: over HTTP only the verifier reads, and to it a missing
                    // object is as wrong as an unreadable one.
                    Err(e) => Err(TileError::Fetch {
                        what: url.to_string(),
                        message: e.to_string(),
                    }),
                }
            }
            #[cfg(feature = "s3")]
            Store::Bucket(b) => b.get(path).map_err(fetch_error),
        }
    }

    /// Writes the object at `path` whole (a reader sees the old object or the new one).
    pub fn put(&self, path: &str, data: &[u8]) -> Result<(), TileError> {
        #[cfg(feature = "s3")]
        if let Store::Bucket(b) = self {
            // A bucket's PUT is whole and durable once acknowledged.
            let kind = if path == super::publish::CHECKPOINT {
                "text/plain; charset=utf-8"
            } else {
                "application/octet-stream"
            };
            return b.put(path, data, kind).map_err(fetch_error);
        }
        let Store::Dir(dir) = self else {
            return Err(TileError::Url(format!(
                "{}: tiles cannot be published over HTTP; publish to the directory the web \
                 server serves, or to a bucket",
                self.describe()
            )));
        };
        let dest = dir.join(path);
        let parent = dest.parent().unwrap_or(dir);
        let io = |source| TileError::Io {
            path: dest.clone(),
            source,
        };
        // Group-readable whatever the umask (the service runs with 077): a web server in the
        // service's group serves them; others cannot read them.
        make_dirs(parent).map_err(io)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tile")
            .tempfile_in(parent)
            .map_err(io)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o640))
            .map_err(io)?;
        tmp.write_all(data).map_err(io)?;
        tmp.persist(&dest).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Makes every object written so far durable before the next is written, so a crash
    /// never leaves a checkpoint on disk whose tiles are not.
    pub fn sync(&self) -> Result<(), TileError> {
        if let Store::Dir(dir) = self {
            let d = make_dirs(dir)
                .and_then(|()| std::fs::File::open(dir))
                .map_err(|source| TileError::Io {
                    path: dir.clone(),
                    source,
                })?;
            rustix::fs::syncfs(&d).map_err(|e| TileError::Io {
                path: dir.clone(),
                source: e.into(),
            })?;
        }
        Ok(())
    }
}

/// Creates `parent` and every missing directory above it (the publish root's own parents
/// too), each one made here 0750 whatever the umask, so the web server's group can reach
/// the files.
fn make_dirs(parent: &Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut at = parent;
    while !at.is_dir() {
        missing.push(at);
        match at.parent() {
            Some(p) => at = p,
            None => break,
        }
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o750))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, TileError> {
    let io = |source| TileError::Io {
        path: path.to_owned(),
        source,
    };
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut out = Vec::new();
    f.take(MAX_OBJECT + 1).read_to_end(&mut out).map_err(io)?;
    if out.len() as u64 > MAX_OBJECT {
        return Err(TileError::Fetch {
            what: path.display().to_string(),
            message: format!("larger than any tile can be ({MAX_OBJECT} bytes)"),
        });
    }
    Ok(Some(out))
}

#[cfg(feature = "s3")]
fn fetch_error(e: crate::objects::ObjectError) -> TileError {
    TileError::Fetch {
        what: e.what,
        message: e.message,
    }
}
