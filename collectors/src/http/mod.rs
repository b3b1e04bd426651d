//! The one HTTP client every API collector uses: rustls, timeouts, retries with backoff and
//! jitter, `Retry-After` and rate-limit headers, a per-host request pace, a response size
//! cap, same-origin redirects and pages, ETags, and credentials that never reach a log.
//!
//! Collectors call [`Http::get`] and read what they need from [`Fetched`]; pagination
//! helpers live in [`page`].

pub mod auth;
pub mod page;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, Once};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

pub use auth::{Secret, Token, TokenSource};
pub use page::{Dialect, Pages};

use crate::CollectError;

/// Default cap on one response body.
pub const DEFAULT_MAX_BODY: u64 = 32 << 20;
/// Default whole-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries after the first attempt, for network errors, 408/425/429 and 5xx.
pub const RETRIES: u32 = 3;
/// The longest wait a rate limit may impose inside one run; longer fails the run as
/// retryable and the daemon tries again after the wait.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// First backoff delay; doubles per attempt, ±25 % jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(250);

/// How requests authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No credentials.
    None,
    /// `Authorization: Bearer <token>` (GitHub, Hugging Face, MLflow behind a proxy).
    Bearer(Token),
    /// A custom header holding the token (`PRIVATE-TOKEN` for GitLab).
    Header(&'static str, Token),
    /// The collector signs each request itself (S3's SigV4); the token is only named in
    /// errors and masked.
    Signed(Token),
    /// HTTP basic auth (Jenkins: user + API token).
    Basic {
        /// User name.
        user: String,
        /// Password or API token.
        token: Token,
    },
}

impl Auth {
    fn token(&self) -> Option<&Token> {
        match self {
            Auth::None => None,
            Auth::Bearer(t)
            | Auth::Header(_, t)
            | Auth::Signed(t)
            | Auth::Basic { token: t, .. } => Some(t),
        }
    }
}

/// Settings of one client.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Whole-request timeout (connect, headers and body).
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_body: u64,
    /// At most this many requests per second to one host (shared by every collector in the
    /// process); `None` for no pacing beyond what the server's headers ask.
    pub rate_limit: Option<f64>,
    /// What a 401/403 should tell the user the token needs (`actions:read`).
    pub permission_hint: &'static str,
    /// Headers sent with every request (`Accept`, API version).
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            rate_limit: None,
            permission_hint: "read access",
            headers: Vec::new(),
        }
    }
}

/// A successful (2xx or 304) response.
#[derive(Debug)]
pub struct Fetched {
    /// The URL asked for.
    pub url: Url,
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body (empty for 304).
    pub body: Vec<u8>,
}

impl Fetched {
    /// True for `304 Not Modified` (an `If-None-Match` hit).
    pub fn not_modified(&self) -> bool {
        self.status == 304
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `ETag` header.
    pub fn etag(&self) -> Option<&str> {
        self.header("etag")
    }

    /// The body parsed as `T`; a body that does not parse is a fatal, named error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, CollectError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            CollectError::schema(format!(
                "GET {}: the response is not the JSON expected ({e}); is the URL that of the right service and version?",
                self.url
            ))
        })
    }
}

/// A client for one collector instance.
#[derive(Debug)]
pub struct Http {
    client: reqwest::Client,
    collector: String,
    auth: Auth,
    opts: HttpOptions,
    requests: AtomicU64,
}

/// Next moment each host may be sent a request (the per-host pace is process-wide so two
/// collectors on one server share it).
static PACE: LazyLock<Mutex<HashMap<String, Instant>>> = LazyLock::new(Default::default);
/// Hosts that said their quota is spent, and until when.
static SPENT: LazyLock<Mutex<HashMap<String, Instant>>> = LazyLock::new(Default::default);

fn host_key(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// Whether `a` and `b` share scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    host_key(a) == host_key(b)
}

/// Parses a configured base URL, refusing what cannot work or would leak.
pub fn parse_base_url(collector: &str, key: &str, raw: &str) -> Result<Url, CollectError> {
    let url = Url::parse(raw).map_err(|e| {
        CollectError::Config(format!(
            "collector `{collector}`: {key} {raw:?} is not a URL ({e}); write e.g. \"https://host/\""
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CollectError::Config(format!(
            "collector `{collector}`: {key} must be http:// or https://, not {}://",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CollectError::Config(format!(
            "collector `{collector}`: {key} contains a user name or password; remove it and use token_env or token_file"
        )));
    }
    Ok(url)
}

/// The delay before retry `attempt` (0-based), with ±25 % jitter.
pub fn backoff(attempt: u32) -> Duration {
    let d = BACKOFF_BASE.saturating_mul(1 << attempt.min(10));
    let mut b = [0u8; 2];
    let r = if getrandom::fill(&mut b).is_ok() {
        u16::from_le_bytes(b)
    } else {
        0x8000
    };
    d.mul_f64(0.75 + f64::from(r) / f64::from(u16::MAX) / 2.0)
}

/// How long the server asks us to wait: `Retry-After` (seconds or an HTTP date), else a
/// rate-limit reset (`X-RateLimit-Reset` / `RateLimit-Reset`, epoch seconds or seconds from
/// now) when the remaining quota is zero.
pub fn server_wait(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let text = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(v) = text("retry-after") {
        if let Ok(s) = v.parse::<u64>() {
            return Some(Duration::from_secs(s));
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc2822(v) {
            let at = std::time::SystemTime::from(t);
            return Some(at.duration_since(now).unwrap_or_default());
        }
    }
    let remaining = text("x-ratelimit-remaining").or_else(|| text("ratelimit-remaining"));
    if remaining == Some("0") {
        let reset = text("x-ratelimit-reset").or_else(|| text("ratelimit-reset"))?;
        let n: u64 = reset.parse().ok()?;
        let epoch = now.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        // Epoch seconds (GitHub, GitLab) or delta seconds (IETF RateLimit headers).
        return Some(Duration::from_secs(if n > 1_000_000_000 {
            n.saturating_sub(epoch)
        } else {
            n
        }));
    }
    None
}

/// Where a successful body goes.
#[derive(Debug, Clone, Copy)]
enum Sink<'a> {
    /// Into [`Fetched::body`], up to the client's `max_body`.
    Memory,
    /// Streamed into a file, up to the given size.
    File(&'a std::path::Path, u64),
}

/// What went wrong in one attempt.
enum Failure {
    Retry {
        message: String,
        wait: Option<Duration>,
    },
    Fatal(CollectError),
}

impl Http {
    /// A client for collector `collector`.
    pub fn new(collector: &str, auth: Auth, opts: HttpOptions) -> Result<Http, CollectError> {
        static TLS: Once = Once::new();
        TLS.call_once(|| {
            // Another part of the process may have installed one already; either is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let mut defaults = HeaderMap::new();
        for (k, v) in &opts.headers {
            defaults.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let client = reqwest::Client::builder()
            .default_headers(defaults)
            .user_agent(concat!("evident/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10).min(opts.timeout))
            .timeout(opts.timeout)
            .redirect(reqwest::redirect::Policy::custom(|a| {
                // Never carry credentials to another host.
                let same = a
                    .previous()
                    .first()
                    .is_some_and(|p| same_origin(p, a.url()));
                if same && a.previous().len() < 5 {
                    a.follow()
                } else {
                    a.stop()
                }
            }))
            .build()
            .map_err(|e| {
                CollectError::Config(format!(
                    "collector `{collector}`: cannot build the HTTP client: {e}"
                ))
            })?;
        Ok(Http {
            client,
            collector: collector.to_owned(),
            auth,
            opts,
            requests: AtomicU64::new(0),
        })
    }

    /// Requests sent so far (each retry counts).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `GET url`, with `If-None-Match: etag` when given.
    pub async fn get(&self, url: &Url, etag: Option<&str>) -> Result<Fetched, CollectError> {
        let mut headers = HeaderMap::new();
        if let Some(e) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
            headers.insert(reqwest::header::IF_NONE_MATCH, e);
        }
        self.send(Method::GET, url, headers, None, Sink::Memory, &[])
            .await
    }

    /// Any method with headers and a body (WebDAV's PROPFIND, signed S3 requests).
    pub async fn request(
        &self,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<Fetched, CollectError> {
        self.send(method, url, headers, body, Sink::Memory, &[])
            .await
    }

    /// Like [`Http::request`], but an answer whose status is in `accept` (a 404 for an
    /// absent object, a 412 for a failed condition) comes back as a [`Fetched`] with that
    /// status and the start of its body, not as an error.
    pub async fn request_accepting(
        &self,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        accept: &[u16],
    ) -> Result<Fetched, CollectError> {
        self.send(method, url, headers, body, Sink::Memory, accept)
            .await
    }

    /// `GET url` streamed into `dest` (created or truncated), refusing more than `max`
    /// bytes; [`Fetched::body`] stays empty and the size is returned with it. A status in
    /// `accept` is returned as for [`Http::request_accepting`], with `dest` untouched.
    pub async fn download(
        &self,
        url: &Url,
        headers: HeaderMap,
        dest: &std::path::Path,
        max: u64,
        accept: &[u16],
    ) -> Result<(Fetched, u64), CollectError> {
        let f = self
            .send(
                Method::GET,
                url,
                headers,
                None,
                Sink::File(dest, max),
                accept,
            )
            .await?;
        let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        Ok((f, size))
    }

    /// `GET` each URL as JSON with at most `in_flight` requests at once, results in the
    /// order of `urls`. For self-hosted servers whose latency, not throughput, bounds a
    /// run; GitHub asks clients to send requests serially, so its collectors do not use it.
    pub async fn get_json_all<T: DeserializeOwned>(
        &self,
        urls: &[Url],
        in_flight: usize,
    ) -> Vec<Result<T, CollectError>> {
        use futures_util::stream::{self, StreamExt as _};
        stream::iter(urls.iter().cloned())
            .map(|u| async move { self.get_json::<T>(&u).await })
            .buffered(in_flight.max(1))
            .collect()
            .await
    }

    /// `GET url` parsed as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &Url) -> Result<T, CollectError> {
        self.get(url, None).await?.json()
    }

    async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        sink: Sink<'_>,
        accept: &[u16],
    ) -> Result<Fetched, CollectError> {
        let host = host_key(url);
        let spent_until = SPENT.lock().ok().and_then(|m| m.get(&host).copied());
        if let Some(until) = spent_until.filter(|u| *u > Instant::now()) {
            return Err(self.rate_limited(url, until - Instant::now()));
        }
        let mut attempt = 0;
        loop {
            self.pace(&host).await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let failure = match self
                .attempt(&method, url, headers.clone(), body.clone(), sink, accept)
                .await
            {
                Ok(f) => return Ok(f),
                Err(f) => f,
            };
            match failure {
                Failure::Fatal(e) => return Err(e),
                Failure::Retry { message, wait } => {
                    if let Some(w) = wait.filter(|w| *w > MAX_WAIT) {
                        if let Ok(mut m) = SPENT.lock() {
                            m.insert(host.clone(), Instant::now() + w);
                        }
                        return Err(self.rate_limited(url, w));
                    }
                    if attempt >= RETRIES {
                        return Err(CollectError::Remote {
                            message: format!("{message} (gave up after {} attempts)", attempt + 1),
                            retryable: true,
                            retry_after: wait,
                        });
                    }
                    let delay = wait.unwrap_or_else(|| backoff(attempt));
                    tracing::debug!(collector = %self.collector, %url, ?delay, "{message}; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    fn rate_limited(&self, url: &Url, wait: Duration) -> CollectError {
        CollectError::Remote {
            message: format!(
                "GET {url}: the server's rate limit is exhausted for another {} s; the run stops here and resumes after the reset",
                wait.as_secs()
            ),
            retryable: true,
            retry_after: Some(wait),
        }
    }

    async fn pace(&self, host: &str) {
        let Some(rate) = self.opts.rate_limit.filter(|r| *r > 0.0) else {
            return;
        };
        let gap = Duration::from_secs_f64(1.0 / rate);
        let at = {
            let Ok(mut m) = PACE.lock() else { return };
            let now = Instant::now();
            let at = m.get(host).copied().filter(|t| *t > now).unwrap_or(now);
            m.insert(host.to_owned(), at + gap);
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        sink: Sink<'_>,
        accept: &[u16],
    ) -> Result<Fetched, Failure> {
        let mut req = self
            .client
            .request(method.clone(), url.clone())
            .headers(headers);
        if let Some(b) = body {
            req = req.body(b);
        }
        req = self.authorize(req)?;
        let what = format!("{method} {url}");
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(Failure::Retry {
                    message: format!("{what}: {}", self.describe(&e)),
                    wait: None,
                });
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            let body = match sink {
                _ if status == StatusCode::NOT_MODIFIED => Vec::new(),
                Sink::Memory => self.read_body(&what, resp, self.opts.max_body).await?,
                Sink::File(path, max) => {
                    self.write_body(&what, resp, path, max).await?;
                    Vec::new()
                }
            };
            return Ok(Fetched {
                url: url.clone(),
                status: status.as_u16(),
                headers,
                body,
            });
        }
        // An error: read a little of the body for the server's own message.
        let excerpt = self
            .read_body(&what, resp, 64 << 10)
            .await
            .unwrap_or_default();
        if accept.contains(&status.as_u16()) {
            return Ok(Fetched {
                url: url.clone(),
                status: status.as_u16(),
                headers,
                body: excerpt,
            });
        }
        // Masked before anything is cut, so no part of an echoed credential survives.
        let excerpt = self.mask(&String::from_utf8_lossy(&excerpt));
        let detail = self.mask(&vendor_message(excerpt.as_bytes()));
        let head = format!(
            "{what}: HTTP {status}{}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        );
        let quota_spent = headers
            .get("x-ratelimit-remaining")
            .is_some_and(|v| v.as_bytes() == b"0");
        let wait = server_wait(&headers, std::time::SystemTime::now());
        match status.as_u16() {
            408 | 425 | 429 | 500..=599 => Err(Failure::Retry {
                message: head,
                wait,
            }),
            403 if quota_spent => Err(Failure::Retry {
                message: head,
                wait,
            }),
            401 | 403 => {
                let fix = match self.auth.token() {
                    Some(t) => format!(
                        "check the token in {}: it may be wrong, expired, or lack {}",
                        t.setting, self.opts.permission_hint
                    ),
                    None => format!(
                        "the server wants credentials: set token_env or token_file (the token needs {})",
                        self.opts.permission_hint
                    ),
                };
                Err(Failure::Fatal(CollectError::Remote {
                    message: format!("{head}; {fix}"),
                    retryable: false,
                    retry_after: None,
                }))
            }
            404 => Err(Failure::Fatal(CollectError::Remote {
                message: format!(
                    "{head}; check the URL and names in the collector's config (or the token cannot see it)"
                ),
                retryable: false,
                retry_after: None,
            })),
            _ => Err(Failure::Fatal(CollectError::Remote {
                message: head,
                retryable: false,
                retry_after: None,
            })),
        }
    }

    /// Adds the client's credentials to a request.
    fn authorize(&self, req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, Failure> {
        Ok(match &self.auth {
            Auth::None | Auth::Signed(_) => req,
            Auth::Bearer(t) => req.bearer_auth(t.secret.expose()),
            Auth::Header(name, t) => match (
                HeaderName::from_static(name),
                HeaderValue::from_str(t.secret.expose()),
            ) {
                (n, Ok(mut v)) => {
                    v.set_sensitive(true);
                    req.header(n, v)
                }
                (_, Err(_)) => {
                    return Err(Failure::Fatal(CollectError::Config(format!(
                        "collector `{}`: the token in {} contains characters not allowed in a header",
                        self.collector, t.setting
                    ))));
                }
            },
            Auth::Basic { user, token } => req.basic_auth(user, Some(token.secret.expose())),
        })
    }

    /// Reads a body up to `max` bytes; more is refused before it is buffered.
    async fn read_body(
        &self,
        what: &str,
        mut resp: reqwest::Response,
        max: u64,
    ) -> Result<Vec<u8>, Failure> {
        let too_large = |n: String| {
            Failure::Fatal(CollectError::Remote {
                message: format!(
                    "{what}: the response is larger than the {} MiB limit ({n}); narrow the query or raise max_response_size",
                    max >> 20
                ),
                retryable: false,
                retry_after: None,
            })
        };
        if let Some(n) = resp.content_length().filter(|n| *n > max) {
            return Err(too_large(format!("{n} bytes announced")));
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if body.len() as u64 + c.len() as u64 > max {
                        return Err(too_large("more was sent".into()));
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => return Ok(body),
                Err(e) => {
                    return Err(Failure::Retry {
                        message: format!(
                            "{what}: the response broke off after {} bytes: {}",
                            body.len(),
                            self.describe(&e)
                        ),
                        wait: None,
                    });
                }
            }
        }
    }

    /// Streams a body into `path`, refusing more than `max` bytes.
    async fn write_body(
        &self,
        what: &str,
        mut resp: reqwest::Response,
        path: &std::path::Path,
        max: u64,
    ) -> Result<(), Failure> {
        use tokio::io::AsyncWriteExt as _;
        let io = |e: std::io::Error| {
            Failure::Fatal(CollectError::Io {
                context: format!("{what}: writing {}", path.display()),
                error: e,
            })
        };
        let too_large = || {
            Failure::Fatal(CollectError::Remote {
                message: format!("{what}: larger than the {max} bytes allowed (max_file_size)"),
                retryable: false,
                retry_after: None,
            })
        };
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let mut file = tokio::fs::File::create(path).await.map_err(io)?;
        let mut written = 0u64;
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    written += c.len() as u64;
                    if written > max {
                        return Err(too_large());
                    }
                    file.write_all(&c).await.map_err(io)?;
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure::Retry {
                        message: format!(
                            "{what}: the download broke off after {written} bytes: {}",
                            self.describe(&e)
                        ),
                        wait: None,
                    });
                }
            }
        }
        file.flush().await.map_err(io)
    }

    fn describe(&self, e: &reqwest::Error) -> String {
        let kind = if e.is_timeout() {
            format!(
                "no answer within {} s (timeout)",
                self.opts.timeout.as_secs_f64()
            )
        } else if e.is_connect() {
            "cannot connect (is the server running and the URL right?)".to_owned()
        } else if e.is_body() || e.is_decode() {
            "the body could not be read".to_owned()
        } else {
            "request failed".to_owned()
        };
        let mut chain = String::new();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            chain = format!("{chain}: {s}");
            src = s.source();
        }
        self.mask(&format!("{kind}{chain}"))
    }

    /// Masks the credential in every encoding it may come back in (see [`Secret::mask_as`]),
    /// and SigV4 signatures.
    fn mask(&self, s: &str) -> String {
        let user = match &self.auth {
            Auth::Basic { user, .. } => Some(user.as_str()),
            _ => None,
        };
        let masked = match self.auth.token() {
            Some(t) => t.secret.mask_as(s, user),
            None => s.to_owned(),
        };
        mask_signatures(&masked)
    }
}

/// `Signature=<hex>` (SigV4 headers and presigned URLs) as `Signature=****`.
fn mask_signatures(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("Signature=") {
        let (head, tail) = rest.split_at(i + "Signature=".len());
        out.push_str(head);
        let n = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        if n > 0 {
            out.push_str("****");
        }
        rest = &tail[n..];
    }
    out.push_str(rest);
    out
}

/// The server's own error message from the fields vendors put it in (JSON `message`,
/// `error`, `error_code`, `errorMessages`; S3 XML `Code`/`Message`; an HTML title),
/// shortened. Anything else in a body is never kept: an error page may echo the request.
fn vendor_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let msg = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => {
            let field = |k: &str| {
                v.get(k).and_then(|m| match m {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                })
            };
            let code = field("error_code");
            let m = field("message")
                .or_else(|| field("error"))
                .or_else(|| field("errorMessages"));
            match (code, m) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (None, Some(m)) => m,
                (Some(c), None) => c,
                (None, None) => String::new(),
            }
        }
        Err(_) if text.contains("<Code>") => {
            // S3-style XML errors: <Error><Code>NoSuchBucket</Code><Message>…</Message>.
            let tag = |t: &str| {
                text.split(&format!("<{t}>"))
                    .nth(1)
                    .and_then(|r| r.split(&format!("</{t}>")).next())
                    .map(str::trim)
                    .unwrap_or("")
                    .to_owned()
            };
            format!("{}: {}", tag("Code"), tag("Message"))
        }
        Err(_) if text.trim_start().starts_with('<') => {
            // HTML error pages: the title says enough.
            text.split("<title>")
                .nth(1)
                .and_then(|t| t.split("</title>").next())
                .unwrap_or("")
                .trim()
                .to_owned()
        }
        Err(_) => String::new(),
    };
    let one_line = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_wait_reads_retry_after_and_reset() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(server_wait(&h, now), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Fri, 15 Jan 2027 08:00:30 GMT"),
        );
        let at = chrono::DateTime::parse_from_rfc2822("Fri, 15 Jan 2027 08:00:30 GMT").unwrap();
        let expect = std::time::SystemTime::from(at).duration_since(now).unwrap();
        assert_eq!(server_wait(&h, now), Some(expect));
        let mut g = HeaderMap::new();
        g.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        g.insert("x-ratelimit-reset", HeaderValue::from_static("1800000042"));
        assert_eq!(server_wait(&g, now), Some(Duration::from_secs(42)));
        g.insert("x-ratelimit-remaining", HeaderValue::from_static("12"));
        assert_eq!(server_wait(&g, now), None);
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        for a in 0..4 {
            let d = backoff(a).as_secs_f64();
            let base = 0.25 * f64::from(1u32 << a);
            assert!(d >= base * 0.75 && d <= base * 1.25, "{a}: {d}");
        }
    }

    #[test]
    fn vendor_messages_are_short_and_named() {
        assert_eq!(
            vendor_message(br#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Registered Model with name=x not found"}"#),
            "RESOURCE_DOES_NOT_EXIST: Registered Model with name=x not found"
        );
        assert_eq!(
            vendor_message(br#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}"#),
            "Bad credentials"
        );
        assert_eq!(
            vendor_message(b"<html><title>404 Not Found</title></html>"),
            "404 Not Found"
        );
        assert_eq!(
            vendor_message(b"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>"),
            "NoSuchBucket: The specified bucket does not exist"
        );
        assert!(
            vendor_message(format!("{{\"message\":\"{}\"}}", "x".repeat(500)).as_bytes())
                .chars()
                .count()
                <= 201
        );
        // Raw bodies are never kept: only the fields vendors put their message in.
        assert_eq!(vendor_message(b"Authorization: Basic dXNlcjpzZWNyZXQ="), "");
        assert_eq!(vendor_message(br#"{"headers":{"Authorization":"x"}}"#), "");
        assert_eq!(
            mask_signatures(
                "AWS4-HMAC-SHA256 Credential=AK/x, Signature=0a1b2c&X-Amz-Signature=ff"
            ),
            "AWS4-HMAC-SHA256 Credential=AK/x, Signature=****&X-Amz-Signature=****"
        );
    }

    #[test]
    fn base_urls_with_credentials_are_refused() {
        assert!(
            parse_base_url("m", "url", "https://user:pw@host/")
                .unwrap_err()
                .to_string()
                .contains("token_env")
        );
        assert!(parse_base_url("m", "url", "ftp://host/").is_err());
        assert!(parse_base_url("m", "url", "http://127.0.0.1:5000").is_ok());
    }
}
