//! Remote agents: a daemon with `[agent]` forwards what its collectors record to a central
//! Evident's push API (`POST /v1/evidence`, a push token), so collectors can run on the
//! hosts and networks that hold the sources.
//!
//! The agent's own ledger is the store-and-forward queue: durable on disk (SQLite, blobs
//! synced before their entries commit), in order (entry index), surviving restarts and
//! SIGKILL. A cursor file says how far the centre has acknowledged; it is saved after each
//! acknowledgement, so a crash re-sends at most the one entry in flight, which the centre
//! answers "already recorded" (it keeps one entry per URI and digest): each artefact
//! arrives at most once. The centre records which agent sent each
//! entry (the token's name, `submitted_by`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use evident_collectors::http::Secret;
use serde::Serialize;

use crate::config::agent::{AgentConfig, DEFAULT_TOKEN_ENV};
use crate::ledger::LedgerError;
use crate::ledger::evidence::counts_as_evidence;
use crate::ledger::reader::{EntryRow, Reader};
use crate::ledger::state::StateDir;

/// The cursor file in the state directory: the next entry index to forward.
pub const CURSOR: &str = "agent.cursor";

/// Entries forwarded between two saves of the cursor. One: the centre's "already
/// recorded" compares with an artefact's current version only, so re-sending an older
/// version after a newer one (a crash between them) would record it again as new.
const SAVE_EVERY: u64 = 1;

/// Why forwarding stopped.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The centre could not be reached, or asked to wait (429, 5xx): try again later.
    #[error("the centre is unreachable: {0}")]
    Unreachable(String),
    /// The centre refused the token (401/403): nothing will pass until it is fixed.
    #[error("the centre refused the push token from {setting}: {message}")]
    Token {
        /// Where the token comes from.
        setting: String,
        /// The centre's answer.
        message: String,
    },
    /// The centre refused an entry (400, 413, 422…): forwarding waits until that is fixed
    /// (a source name the centre already uses, a limit), so nothing is skipped.
    #[error(
        "the centre refused entry {index} ({uri}): {message}; forwarding waits until this is \
         fixed (the entry stays in this agent's ledger)"
    )]
    Refused {
        /// The agent's entry.
        index: u64,
        /// Its URI.
        uri: String,
        /// The centre's answer.
        message: String,
    },
    /// The agent's settings are unusable.
    #[error("[agent] {0}")]
    Config(String),
    /// The local ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What one drain did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Forwarded {
    /// Entries the centre recorded now.
    pub sent: u64,
    /// Entries the centre already held (re-sent after a crash, or pushed elsewhere).
    pub already: u64,
    /// Entries not forwarded because they are the agent's own records (its collector runs),
    /// or their title and URI were erased here before they left (v2 leaves).
    pub local: u64,
    /// Entries still waiting.
    pub pending: u64,
}

/// The forwarder of one agent.
#[derive(Debug)]
pub struct Forwarder {
    state: StateDir,
    /// The agent's blob store, opened once (with a bucket, one client for every entry).
    blobs: crate::ledger::blobs::BlobStore,
    endpoint: reqwest::Url,
    token: Secret,
    setting: String,
    client: reqwest::Client,
}

/// An HTTP client for talking to an Evident server: rustls, the system's roots plus `ca`
/// (a PEM bundle), no redirects (a token never follows one to another host).
pub fn server_client(timeout: Duration, ca: Option<&Path>) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("evident/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(p) = ca {
        let pem = std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{} is not a PEM certificate: {e}", p.display()))?;
        b = b.tls_certs_merge(certs);
    }
    b.build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// The message of an Evident API error body (`{"error": {"message": …}}`), or the start of
/// the body.
pub fn server_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

/// A reqwest error with its causes, on one line.
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl Forwarder {
    /// The forwarder for the ledger in `state`, as `[agent]` says (`base` resolves a
    /// relative `token_file` or `ca_file`).
    pub fn new(state: StateDir, cfg: &AgentConfig, base: &Path) -> Result<Forwarder, ForwardError> {
        let endpoint = cfg.endpoint().map_err(ForwardError::Config)?;
        let mut source = evident_collectors::http::TokenSource {
            token_env: cfg.token_env.clone(),
            token_file: cfg.token_file.clone(),
        };
        if source.token_env.is_none() && source.token_file.is_none() {
            source.token_env = Some(DEFAULT_TOKEN_ENV.to_owned());
        }
        source.resolve(base);
        let token = source
            .load("agent")
            .map_err(|e| ForwardError::Config(e.to_string()))?
            .ok_or_else(|| ForwardError::Config("no push token".to_owned()))?;
        let ca = cfg.ca_file.as_ref().map(|c| base.join(c));
        let client = server_client(cfg.timeout(), ca.as_deref()).map_err(ForwardError::Config)?;
        Ok(Forwarder {
            blobs: state.blobs(),
            state,
            endpoint,
            token: token.secret,
            setting: token.setting,
            client,
        })
    }

    fn cursor_path(&self) -> PathBuf {
        self.state.dir().join(CURSOR)
    }

    /// The next entry to forward.
    pub fn cursor(&self) -> Result<u64, ForwardError> {
        match std::fs::read_to_string(self.cursor_path()) {
            Ok(t) => t.trim().parse().map_err(|_| {
                ForwardError::Config(format!(
                    "{} is damaged ({:?}); it holds the next entry to send: fix or remove it \
                     (removing re-sends everything, which the centre answers \"already recorded\")",
                    self.cursor_path().display(),
                    t.trim()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => {
                Err(LedgerError::io(format!("reading {}", self.cursor_path().display()), e).into())
            }
        }
    }

    /// Entries recorded that the centre has not acknowledged yet.
    pub async fn pending(&self) -> Result<u64, ForwardError> {
        let next = self.cursor()?;
        let state = self.state.clone();
        let size = tokio::task::spawn_blocking(move || Reader::open(&state)?.size())
            .await
            .map_err(|e| ForwardError::Config(format!("reading the ledger: {e}")))??;
        Ok(size.saturating_sub(next))
    }

    /// Saves the cursor durably (temporary file, `fsync`, rename).
    fn save_cursor(&self, next: u64) -> Result<(), ForwardError> {
        let path = self.cursor_path();
        let tmp = path.with_extension("tmp");
        let io = |e| LedgerError::io(format!("saving {}", path.display()), e);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(format!("{next}\n").as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(())
    }

    /// Sends every entry after the cursor, in order, until none is left, the centre fails,
    /// or `stop` is set; saves the cursor on the way and at the end.
    pub async fn drain(&self, stop: &AtomicBool) -> Result<Forwarded, ForwardError> {
        let mut done = Forwarded::default();
        let mut at = Cursor {
            next: self.cursor()?,
            saved: 0,
        };
        at.saved = at.next;
        let result = self.pump(stop, &mut at, &mut done).await;
        if at.next != at.saved {
            self.save_cursor(at.next)?;
        }
        result?;
        done.pending = self.pending().await?;
        Ok(done)
    }

    async fn pump(
        &self,
        stop: &AtomicBool,
        at: &mut Cursor,
        done: &mut Forwarded,
    ) -> Result<(), ForwardError> {
        loop {
            let (state, from) = (self.state.clone(), at.next);
            let rows = tokio::task::spawn_blocking(move || -> Result<_, LedgerError> {
                let reader = Reader::open(&state)?;
                let mut rows = Vec::new();
                for i in from..from + 256 {
                    match reader.entry(i)? {
                        Some(r) => rows.push(r),
                        None => break,
                    }
                }
                Ok(rows)
            })
            .await
            .map_err(|e| ForwardError::Config(format!("reading the ledger: {e}")))??;
            if rows.is_empty() {
                return Ok(());
            }
            for row in rows {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                // An entry whose title and URI were erased here is not sent on: the centre
                // needs a URI, and the point of the erasure is that nobody has it.
                let erased = crate::ledger::meta::erased_artefact(&row.uri).is_some();
                if counts_as_evidence(&row.kind) && !erased {
                    if self.send(&row).await? {
                        done.sent += 1;
                    } else {
                        done.already += 1;
                    }
                } else {
                    done.local += 1;
                }
                at.next = row.index + 1;
                if at.next - at.saved >= SAVE_EVERY {
                    self.save_cursor(at.next)?;
                    at.saved = at.next;
                }
            }
        }
    }

    /// Pushes one entry: its content as a file part when the agent holds it, else its
    /// metadata (digest and size) alone. True when the centre recorded it now, false when it
    /// held it already.
    async fn send(&self, row: &EntryRow) -> Result<bool, ForwardError> {
        let meta = serde_json::json!({
            "uri": row.uri,
            "sha256": row.sha256,
            "size": row.size.unwrap_or(0),
            "title": row.title,
            "kind": row.kind,
            "controls": row.controls,
            "effective_date": row.effective_date,
            "source": row.source,
        });
        let file = if row.has_blob {
            let (blobs, digest) = (
                self.blobs.clone(),
                crate::ledger::leaf::parse_hex32(&row.sha256).unwrap_or([0; 32]),
            );
            let f = tokio::task::spawn_blocking(move || blobs.open(&digest))
                .await
                .map_err(|e| ForwardError::Config(format!("reading the blob store: {e}")))?
                .map_err(|e| {
                    LedgerError::io(format!("reading the content of entry {}", row.index), e)
                })?;
            if f.is_none() {
                tracing::warn!(
                    entry = row.index,
                    sha256 = %row.sha256,
                    "the content of this entry is missing from the agent's blob store (run \
                     `evident verify` here); the centre gets its digest and size only"
                );
            }
            f
        } else {
            None
        };
        let req = self.client.post(self.endpoint.clone());
        let req = match file {
            Some(f) => {
                let len = f
                    .metadata()
                    .map_err(|e| LedgerError::io("reading a blob", e))?
                    .len();
                let name = row.uri.rsplit('/').next().unwrap_or("content").to_owned();
                let part = reqwest::multipart::Part::stream_with_length(
                    reqwest::Body::from(tokio::fs::File::from_std(f)),
                    len,
                )
                .file_name(name);
                req.multipart(
                    reqwest::multipart::Form::new()
                        .text("metadata", meta.to_string())
                        .part("file", part),
                )
            }
            None => req.json(&meta),
        };
        let resp = req
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| ForwardError::Unreachable(self.token.mask(&describe(&e))))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let message = self.token.mask(&server_message(&body));
        match status.as_u16() {
            200..=299 => {
                let created = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.pointer("/entries/0/created")?.as_bool());
                Ok(created != Some(false))
            }
            401 | 403 => Err(ForwardError::Token {
                setting: self.setting.clone(),
                message: format!("{status}: {message}"),
            }),
            408 | 425 | 429 | 500..=599 => {
                Err(ForwardError::Unreachable(format!("{status}: {message}")))
            }
            _ => Err(ForwardError::Refused {
                index: row.index,
                uri: row.uri.clone(),
                message: format!("{status}: {message}"),
            }),
        }
    }
}

/// How far forwarding got, and how far it is saved.
struct Cursor {
    next: u64,
    saved: u64,
}
