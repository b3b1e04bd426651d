//! The `/v1` routes, `/metrics` and the health checks.
//!
//! Every handler that reads the ledger runs on a blocking thread with a pooled read-only
//! connection ([`super::Readers`]). Answers are JSON unless the route serves a signed note
//! (`text/plain`), content (its media type) or metrics (OpenMetrics text).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};

use super::extract::{P, Q};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::auth::{Admin, AnyToken, Read};
use super::{Api, ApiError};
use crate::catalog::Catalog;
use crate::coverage::{self, Status as Coverage};
use crate::ledger::leaf::parse_hex32;
use crate::ledger::query::QueryFilter;
use crate::ledger::reader::{Counting, EntryRow, State as EntryState};
use crate::ledger::receipt::{ReceiptError, receipt};
use crate::metrics::{HttpLabels, RouteLabels, StatusLabels};

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Rows per page of `/v1/evidence` unless `limit` says otherwise, and the most it allows.
const PAGE_DEFAULT: u64 = 100;
const PAGE_MAX: u64 = 1000;

/// The router with every route, the observing middleware and the state.
pub fn router(api: Arc<Api>) -> Router {
    let push_limit = usize::try_from(api.config.max_body()).unwrap_or(usize::MAX);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/catalog", get(catalog))
        .route(
            "/v1/evidence",
            get(evidence)
                .post(super::push::push)
                .layer(DefaultBodyLimit::max(push_limit)),
        )
        .route("/v1/entries/{index}", get(entry))
        .route("/v1/entries/{index}/leaf", get(leaf))
        .route("/v1/checkpoint", get(checkpoint))
        .route("/v1/consistency", get(consistency))
        .route("/v1/content/{sha256}", get(content))
        .route("/v1/coverage", get(coverage_route))
        .route("/v1/soa", get(soa))
        .route("/v1/collectors", get(collectors))
        .route("/v1/collectors/{name}/run", post(trigger))
        .route("/v1/status", get(status))
        .route("/v1/export", get(export))
        .route("/v1/whoami", get(whoami))
        .merge(super::dashboard::routes())
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(api.clone(), observe))
        .with_state(api)
}

/// Runs `f` with a pooled reader on a reading thread ([`super::Readers`]).
pub async fn read<T: Send + 'static>(
    api: &Arc<Api>,
    f: impl FnOnce(&Api, &crate::ledger::reader::Reader) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job_api = api.clone();
    api.readers.submit(Box::new(move || {
        // The request timed out or its client left while this waited: nobody would read
        // the answer, and running it would delay everyone queued behind.
        if tx.is_closed() {
            return;
        }
        let _ = tx.send(job_api.readers.with(|r| f(&job_api, r)));
    }))?;
    rx.await
        .map_err(|_| ApiError::internal("a reading thread failed while answering"))?
}

/// Security headers, the request timeout, and the request metrics, around every route.
async fn observe(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    // Labels come from fixed sets only: a client must not mint series (memory) with made-up
    // methods or paths.
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
    .to_owned();
    // An upload may take long; it is bounded by its idle deadline instead (push.rs).
    let timeout = if route == "/v1/evidence" && method == "POST" {
        std::time::Duration::from_secs(24 * 3600)
    } else {
        api.config.request_timeout()
    };
    let mut response = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError {
            retry_after: Some(5),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took longer than [api] request_timeout ({}s)",
                    timeout.as_secs()
                ),
            )
        }
        .into_response(),
    };
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    if api.tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    api.metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route: route.clone(),
            method,
            status: response.status().as_u16(),
        })
        .inc();
    api.metrics
        .http_latency
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn fallback() -> ApiError {
    ApiError::not_found("no such route; GET /v1/openapi.json lists them")
}

async fn healthz() -> &'static str {
    "ok\n"
}

#[derive(Serialize)]
struct Ready {
    ready: bool,
    entries: u64,
}

async fn readyz(State(api): State<Arc<Api>>) -> Result<axum::Json<Ready>, ApiError> {
    let entries = read(&api, |_, r| Ok(r.size()?)).await?;
    Ok(axum::Json(Ready {
        ready: true,
        entries,
    }))
}

async fn openapi(_: Read) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn metrics(_: Read, State(api): State<Arc<Api>>) -> Result<Response, ApiError> {
    read(&api, |api, r| {
        let m = &api.metrics;
        m.entries.set(r.size()? as i64);
        if let Some((size, _)) = r.latest_checkpoint()? {
            m.checkpoint_size.set(size as i64);
            if let Some(at) = r.checkpoint_signed_at(size)?
                && let Ok(t) = chrono::DateTime::parse_from_rfc3339(&at)
            {
                let age = chrono::Utc::now().signed_duration_since(t);
                m.checkpoint_age
                    .set(age.num_milliseconds().max(0) as f64 / 1000.0);
            }
        }
        if m.slow_due() {
            m.blob_bytes
                .set(blob_bytes(&api.state.dir().join("blobs")) as i64);
            let cov = coverage::all_now(r, &api.settings().policies, false)?;
            for s in Coverage::ALL {
                m.controls
                    .get_or_create(&StatusLabels {
                        status: s.as_str().to_owned(),
                    })
                    .set(cov.count(s) as i64);
            }
        }
        Ok(())
    })
    .await?;
    let text = api.metrics.encode().map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Bytes under the blob store, by walking it (cached by the caller).
fn blob_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

#[derive(Serialize)]
struct CatalogOut {
    standard: &'static str,
    groups: &'static [crate::catalog::Group],
    subgroups: &'static [crate::catalog::Group],
    controls: &'static [crate::catalog::Requirement],
    clauses: &'static [crate::catalog::Requirement],
    crosswalk_sources: &'static std::collections::BTreeMap<String, String>,
}

async fn catalog(_: Read) -> axum::Json<CatalogOut> {
    let c = Catalog::get();
    axum::Json(CatalogOut {
        standard: &c.standard,
        groups: &c.groups,
        subgroups: &c.subgroups,
        controls: &c.controls,
        clauses: &c.clauses,
        crosswalk_sources: &c.sources,
    })
}

/// Resolves a comma-separated list of ids and prefixes.
fn controls_param(text: &str) -> Result<Vec<&'static str>, ApiError> {
    let ids: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "control is empty: give control or clause ids or prefixes, comma-separated (A.6.2,9)",
        ));
    }
    Catalog::get()
        .select_all(&ids)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

fn time_param(
    name: &str,
    value: Option<&str>,
    parse: fn(&str) -> Result<chrono::DateTime<chrono::Utc>, String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    value
        .map(|v| parse(v).map_err(|e| ApiError::bad_request(format!("{name}: {e}"))))
        .transpose()
}

/// Query of `GET /v1/evidence`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceParams {
    control: String,
    since: Option<String>,
    until: Option<String>,
    #[serde(default)]
    current: bool,
    cursor: Option<String>,
    limit: Option<u64>,
}

/// A page of `/v1/evidence`: `{"controls": […], "items": […], "next_cursor": …}`, written
/// row by row from SQLite into one buffer on the reading thread (a page of 100 rows was a
/// thousand allocations as owned rows, and those were the server's hottest lock).
async fn evidence(
    _: Read,
    State(api): State<Arc<Api>>,
    Q(p): Q<EvidenceParams>,
) -> Result<Response, ApiError> {
    let controls = controls_param(&p.control)?;
    let since = time_param("since", p.since.as_deref(), crate::when::parse_since)?;
    let until = time_param("until", p.until.as_deref(), crate::when::parse_until)?;
    let limit = p.limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {PAGE_MAX}"
        )));
    }
    let after = p
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<u64>().map_err(|_| {
                ApiError::bad_request("cursor is not one this server gave out; start without it")
            })
        })
        .transpose()?;
    let body = read(&api, move |_, r| {
        let filter = QueryFilter {
            controls,
            since: since.map(crate::ledger::rfc3339),
            until: until.map(crate::ledger::rfc3339),
            current_only: p.current,
            after,
            // One more than the page: whether there is a next one.
            limit: Some(limit + 1),
            newest_first: false,
        };
        let json = |e: serde_json::Error| ApiError::internal(e);
        let mut out = Vec::with_capacity(512 * limit as usize);
        out.extend_from_slice(b"{\"controls\":");
        serde_json::to_writer(&mut out, &filter.controls).map_err(json)?;
        out.extend_from_slice(b",\"items\":[");
        let (mut rows, mut last, mut more) = (0, None, false);
        r.query(&filter, |q| {
            if rows == limit {
                more = true;
                return Ok(());
            }
            if rows > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, &q).map_err(json)?;
            rows += 1;
            last = Some(q.index);
            Ok::<_, ApiError>(())
        })?;
        out.extend_from_slice(b"],\"next_cursor\":");
        let next = last.filter(|_| more).map(|i| i.to_string());
        serde_json::to_writer(&mut out, &next).map_err(json)?;
        out.push(b'}');
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// An inclusion proof as the API gives it.
#[derive(Serialize)]
struct ProofOut {
    checkpoint_size: u64,
    leaf_hash: String,
    audit_path: Vec<String>,
    /// The c2sp.org/tlog-proof@v1 receipt: what `evident proof` prints.
    receipt: String,
}

#[derive(Serialize)]
struct EntryOut {
    entry: EntryRow,
    state: EntryState,
    superseded_by: Option<u64>,
    /// The leaf, parsed: the in-toto Statement the tree commits to.
    leaf: serde_json::Value,
    /// The exact leaf bytes.
    leaf_url: String,
    content_url: Option<String>,
    /// Null when no checkpoint covers the entry yet.
    proof: Option<ProofOut>,
}

fn b64(h: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(h)
}

async fn entry(
    _: Read,
    State(api): State<Arc<Api>>,
    P(index): P<u64>,
) -> Result<axum::Json<EntryOut>, ApiError> {
    let out = read(&api, move |api, r| {
        let size = r.size()?;
        let entry = r.entry(index)?.ok_or_else(|| {
            ApiError::not_found(format!(
                "there is no entry {index} (the ledger holds {size})"
            ))
        })?;
        let (state, superseded_by) = r.entry_state(index, &entry.kind)?;
        let mut leaf = Vec::new();
        r.for_each_leaf_at(index, |b| leaf = b.to_vec())?;
        let leaf: serde_json::Value = serde_json::from_slice(&leaf).map_err(ApiError::internal)?;
        let verifier = api.state.verifier()?;
        let proof = match receipt(r, &verifier, index) {
            Ok(rc) => Some(ProofOut {
                checkpoint_size: rc.checkpoint_size,
                leaf_hash: b64(&rc.leaf_hash),
                audit_path: rc.proof.path.iter().map(|h| b64(h)).collect(),
                receipt: rc.proof.encode(),
            }),
            Err(ReceiptError::NotCovered(_)) => None,
            Err(e) => return Err(ApiError::internal(e)),
        };
        Ok(EntryOut {
            content_url: entry
                .has_blob
                .then(|| format!("/v1/content/{}?entry={index}", entry.sha256)),
            leaf_url: format!("/v1/entries/{index}/leaf"),
            entry,
            state,
            superseded_by,
            leaf,
            proof,
        })
    })
    .await?;
    Ok(axum::Json(out))
}

async fn leaf(
    _: Read,
    State(api): State<Arc<Api>>,
    P(index): P<u64>,
) -> Result<Response, ApiError> {
    let bytes = read(&api, move |_, r| {
        let mut leaf = None;
        r.for_each_leaf_at(index, |b| leaf = Some(b.to_vec()))?;
        leaf.ok_or_else(|| ApiError::not_found(format!("there is no entry {index}")))
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

async fn checkpoint(_: Read, State(api): State<Arc<Api>>) -> Result<Response, ApiError> {
    let note = read(&api, |_, r| Ok(r.latest_checkpoint()?)).await?;
    let (_, note) = note.ok_or_else(|| {
        ApiError::not_found(
            "no checkpoint has been signed yet; the daemon signs one when the tree grows",
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

/// Query of `GET /v1/consistency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    from: u64,
    to: Option<u64>,
}

#[derive(Serialize)]
struct ConsistencyOut {
    from: u64,
    to: u64,
    proof: Vec<String>,
}

async fn consistency(
    _: Read,
    State(api): State<Arc<Api>>,
    Q(p): Q<ConsistencyParams>,
) -> Result<axum::Json<ConsistencyOut>, ApiError> {
    let out = read(&api, move |_, r| {
        let latest = r.latest_checkpoint()?.map_or(0, |(s, _)| s);
        let to = p.to.unwrap_or(latest);
        let size = r.size()?;
        if to > size || p.from > to {
            return Err(ApiError::bad_request(format!(
                "need from <= to <= {size} (the ledger's size); got from={} to={to}",
                p.from
            )));
        }
        let proof = crate::ledger::merkle::consistency_proof(r, p.from, to)
            .map_err(crate::ledger::LedgerError::from)?;
        Ok(ConsistencyOut {
            from: p.from,
            to,
            proof: proof.iter().map(|h| b64(h)).collect(),
        })
    })
    .await?;
    Ok(axum::Json(out))
}

/// Query of `GET /v1/content/{sha256}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentParams {
    entry: Option<u64>,
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range over `len` bytes: `Ok(None)` for
/// no (or an ignored multi-) range, `Err` when it cannot be satisfied.
fn byte_range(headers: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // several ranges: the whole content, as RFC 9110 allows
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    if !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let range = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => (start, end.min(len.saturating_sub(1))),
        (Ok(start), Err(_)) if b.is_empty() => (start, len.saturating_sub(1)),
        (Err(_), Ok(n)) if a.is_empty() && n > 0 => (len.saturating_sub(n), len.saturating_sub(1)),
        _ => return Ok(None),
    };
    if len == 0 || range.0 >= len {
        return Err(());
    }
    Ok(Some(range))
}

/// A file name safe for `Content-Disposition`: the URI's last segment, printable ASCII only.
fn download_name(uri: &str, sha: &str) -> String {
    let last = uri
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let clean: String = last
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%' | ';'))
        .take(120)
        .collect();
    if clean.is_empty() || clean == "." || clean == ".." {
        sha.to_owned()
    } else {
        clean
    }
}

async fn content(
    _: Read,
    State(api): State<Arc<Api>>,
    P(sha256): P<String>,
    Q(p): Q<ContentParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Only 64 lowercase hex digits name content: nothing else reaches the file system.
    let digest = parse_hex32(&sha256)
        .filter(|_| sha256.len() == 64 && !sha256.bytes().any(|b| b.is_ascii_uppercase()))
        .ok_or_else(|| {
            ApiError::bad_request("content is named by its SHA-256: 64 lowercase hex digits")
        })?;
    let named = match p.entry {
        None => None,
        Some(i) => Some(
            read(&api, move |_, r| {
                let Some(e) = r.entry(i)? else {
                    return Ok(None);
                };
                let mut media = None;
                r.for_each_leaf_at(i, |b| media = media_of(b))?;
                Ok(Some((e, media)))
            })
            .await?
            .filter(|(e, _)| e.sha256 == sha256)
            .ok_or_else(|| {
                ApiError::not_found(format!("entry {i} does not have content {sha256}"))
            })?,
        ),
    };
    let blobs = api.blobs.clone();
    let (file, len) = tokio::task::spawn_blocking(move || {
        let f = blobs
            .open(&digest)?
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        let m = f.metadata()?;
        if !m.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        Ok((f, m.len()))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ApiError::not_found(format!("no stored content {sha256}")),
        _ => ApiError::internal(e),
    })?;
    let range = byte_range(&headers, len).map_err(|()| {
        let mut e = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("the content is {len} bytes"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
            e.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        e
    });
    let range = match range {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    let body_len = if len == 0 { 0 } else { end - start + 1 };
    let mut resp = Response::new(stream_file(file, start, body_len));
    if range.is_some() {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    let h = resp.headers_mut();
    let media = named
        .as_ref()
        .and_then(|(_, m)| m.clone())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    if let Ok(v) = HeaderValue::from_str(&media) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("sha-256=:{}:", b64(&digest))) {
        h.insert("repr-digest", v);
    }
    let name = named
        .as_ref()
        .map_or_else(|| sha256.clone(), |(e, _)| download_name(&e.uri, &sha256));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // Content is evidence, not a page of this site: never rendered in its origin.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(resp)
}

/// The media type recorded in a leaf, if it is a valid header value.
fn media_of(leaf: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(leaf).ok()?;
    let m = v.pointer("/predicate/mediaType")?.as_str()?;
    HeaderValue::from_str(m).ok().map(|_| m.to_owned())
}

/// Streams `len` bytes of `file` from `start` in 256 KiB pieces. Reads are async: a client
/// that stops reading holds a connection and a file handle, never a thread.
pub fn stream_file(file: std::fs::File, start: u64, len: u64) -> Body {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let file = tokio::fs::File::from_std(file);
    let state = (file, start, len, false);
    Body::from_stream(futures_util::stream::unfold(
        state,
        |(mut file, start, left, mut positioned)| async move {
            if left == 0 {
                return None;
            }
            if !positioned {
                if let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await {
                    return Some((Err(e), (file, start, 0, true)));
                }
                positioned = true;
            }
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(256 * 1024);
            let mut buf = vec![0u8; want];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((
                        Ok(axum::body::Bytes::from(buf)),
                        (file, start, left - n as u64, positioned),
                    ))
                }
                Err(e) => Some((Err(e), (file, start, 0, positioned))),
            }
        },
    ))
}

/// Query of `GET /v1/coverage` and `GET /v1/soa`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageParams {
    at: Option<String>,
    controls: Option<String>,
    #[serde(default)]
    include_history: bool,
}

async fn compute_coverage(
    api: &Arc<Api>,
    p: CoverageParams,
    totals: bool,
) -> Result<crate::coverage::Coverage, ApiError> {
    let ids = match p.controls.as_deref() {
        Some(c) => controls_param(c)?,
        None => Catalog::get().all().map(|r| r.id.as_str()).collect(),
    };
    let at =
        time_param("at", p.at.as_deref(), crate::when::parse_at)?.unwrap_or_else(chrono::Utc::now);
    read(api, move |api, r| {
        r.snapshot(|r| {
            Ok::<_, ApiError>(coverage::compute(
                r,
                &api.settings().policies,
                &ids,
                at,
                &Counting::all(totals).with_history(p.include_history),
            )?)
        })
    })
    .await
}

async fn coverage_route(
    _: Read,
    State(api): State<Arc<Api>>,
    Q(p): Q<CoverageParams>,
) -> Result<axum::Json<crate::coverage::Coverage>, ApiError> {
    Ok(axum::Json(compute_coverage(&api, p, false).await?))
}

async fn soa(
    _: Read,
    State(api): State<Arc<Api>>,
    Q(p): Q<CoverageParams>,
) -> Result<axum::Json<Vec<crate::soa::SoaRow>>, ApiError> {
    let cov = compute_coverage(&api, p, true).await?;
    Ok(axum::Json(crate::soa::statement(
        &cov,
        &api.settings().policies,
    )))
}

/// A collector as `/v1/collectors` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectorOut {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its schedule.
    pub schedule: Option<String>,
    /// The daemon's live view, when a daemon serves.
    #[serde(flatten)]
    pub live: crate::status::CollectorState,
}

/// The daemon's live view of its collectors.
pub type Live = std::collections::BTreeMap<String, crate::status::CollectorState>;

/// The configured collectors with their live state, or their last run from the history.
pub fn collector_list(
    settings: &super::Settings,
    live: &Live,
    r: &crate::ledger::reader::Reader,
) -> Result<Vec<CollectorOut>, ApiError> {
    let mut out = Vec::new();
    for c in &settings.collectors {
        let mut state = live.get(&c.name).cloned().unwrap_or_default();
        if state.last_run_at.is_none() {
            // Not run by this daemon yet (or no daemon): the run history says.
            if let Some(run) = r.runs(std::slice::from_ref(&c.name), 1)?.into_iter().next() {
                let outcome = crate::status::Outcome::from_run(&run.run);
                let took = chrono::DateTime::parse_from_rfc3339(&run.run.finished_at)
                    .ok()
                    .zip(chrono::DateTime::parse_from_rfc3339(&run.run.started_at).ok())
                    .and_then(|(f, s)| {
                        u64::try_from(f.signed_duration_since(s).num_milliseconds()).ok()
                    });
                state.last_run_at = Some(run.run.finished_at.clone());
                state.last_duration_ms = took;
                if outcome != crate::status::Outcome::Failed {
                    state.last_success_at = Some(run.run.finished_at.clone());
                }
                state.last_error = run.run.error.clone();
                state.last_outcome = Some(outcome);
            }
        }
        out.push(CollectorOut {
            name: c.name.clone(),
            kind: c.kind.clone(),
            schedule: c.schedule.clone(),
            live: state,
        });
    }
    Ok(out)
}

async fn collectors(
    _: Read,
    State(api): State<Arc<Api>>,
) -> Result<axum::Json<Vec<CollectorOut>>, ApiError> {
    Ok(axum::Json(
        read(&api, |api, r| {
            collector_list(&api.settings(), &live(api), r)
        })
        .await?,
    ))
}

#[derive(Serialize)]
struct Triggered {
    collector: String,
    status: &'static str,
}

async fn trigger(
    Admin(who): Admin,
    State(api): State<Arc<Api>>,
    P(name): P<String>,
) -> Result<(StatusCode, axum::Json<Triggered>), ApiError> {
    let Some(status) = api.status.as_ref().filter(|_| api.write.is_some()) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "read_only",
            "this server does not collect (evident serve); run collectors with `evident run`",
        ));
    };
    if !api.settings().collectors.iter().any(|c| c.name == name) {
        return Err(ApiError::not_found(format!("no collector named {name:?}")));
    }
    status
        .trigger(&name)
        .map_err(|m| ApiError::new(StatusCode::CONFLICT, "busy", m))?;
    tracing::info!(collector = %name, token = %who.name, "collector run requested through the API");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Triggered {
            collector: name,
            status: "started",
        }),
    ))
}

/// Query of `GET /v1/export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    controls: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// Which date `since`/`until` apply to: `effective` (the default, as `evident export`)
    /// or `collected`.
    by: Option<String>,
    #[serde(default)]
    include_history: bool,
}

/// `GET /v1/export`: the audit bundle, as `evident export` writes it, streamed. It is built
/// in a private scratch file first (the bundle's sums and signature come last), which is
/// unlinked while it streams.
async fn export(
    Read(who): Read,
    State(api): State<Arc<Api>>,
    Q(p): Q<ExportParams>,
) -> Result<Response, ApiError> {
    if api.write.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "read_only",
            "exporting signs a checkpoint, and this server is read-only (evident serve); run `evident export` on the copy instead",
        ));
    }
    let by_evidence_date = match p.by.as_deref() {
        None | Some("effective") => true,
        Some("collected") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "by={other:?}: use `effective` (the evidence's own date, the default) or `collected`"
            )));
        }
    };
    let scope = crate::bundle::export::Scope {
        since: time_param("since", p.since.as_deref(), crate::when::parse_since)?,
        until: time_param("until", p.until.as_deref(), crate::when::parse_until)?,
        by_evidence_date,
        controls: p.controls.as_deref().map(controls_param).transpose()?,
        history: p.include_history,
        ..Default::default()
    };
    let api2 = api.clone();
    let (file, len, size) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let state = &api2.state;
        let _lock = crate::lock::job_lock(
            state.dir(),
            crate::lock::CHECKPOINT_JOB,
            "a checkpoint or export",
            crate::lock::Wait::No,
        )
        .map_err(|_| ApiError {
            retry_after: Some(10),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "a checkpoint or another export is in progress; retry in a few seconds",
            )
        })?;
        let dir = state.dir().join("export-tmp");
        crate::ledger::state::private_dir(&dir).map_err(ApiError::internal)?;
        let out = dir.join(format!("bundle-{}.tar.gz", std::process::id()));
        let _ = std::fs::remove_file(&out);
        let settings = api2.settings();
        let summary = crate::bundle::export::export(
            state,
            &api2.origin(),
            &settings.policies,
            settings.anchoring.as_ref(),
            &scope,
            &out,
            false,
        )
        .map_err(|e| match e {
            crate::bundle::export::ExportError::Empty => ApiError::new(
                StatusCode::CONFLICT,
                "empty",
                "the ledger is empty; nothing to export yet",
            ),
            e => ApiError::internal(e),
        })?;
        let file = std::fs::File::open(&out).map_err(ApiError::internal)?;
        // Unlinked now: the open handle streams it, and nothing is left behind.
        let _ = std::fs::remove_file(&out);
        let len = file.metadata().map_err(ApiError::internal)?.len();
        Ok((file, len, summary.checkpoint_size))
    })
    .await
    .map_err(ApiError::internal)??;
    tracing::info!(token = %who.name, checkpoint = size, bytes = len, "bundle exported through the API");
    let mut resp = Response::new(stream_file(file, 0, len));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"evident-bundle-{size}.tar.gz\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// What `/v1/whoami` tells a token's holder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The token's name.
    pub name: String,
    /// Its scope.
    pub scope: super::tokens::Scope,
    /// The largest request body the server takes (a pushed file).
    pub max_body: u64,
    /// Whether the server records pushes (false under `evident serve`).
    pub writable: bool,
}

async fn whoami(AnyToken(who): AnyToken, State(api): State<Arc<Api>>) -> axum::Json<WhoAmI> {
    axum::Json(WhoAmI {
        name: who.name,
        scope: who.scope,
        max_body: api.config.max_body(),
        writable: api.write.is_some(),
    })
}

/// What `/v1/status` and `evident status` show.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusOut {
    /// Whether a daemon is collecting (false under `evident serve` or from the state dir).
    pub collecting: bool,
    /// Entries in the ledger.
    pub entries: u64,
    /// Size of the newest checkpoint.
    pub checkpoint_size: Option<u64>,
    /// When it was signed.
    pub checkpoint_signed_at: Option<String>,
    /// Its age in seconds.
    pub checkpoint_age_seconds: Option<i64>,
    /// Whether the newest checkpoint carries an RFC 3161 timestamp.
    pub checkpoint_timestamped: bool,
    /// Controls by coverage status.
    pub coverage: std::collections::BTreeMap<String, usize>,
    /// Each collector.
    pub collectors: Vec<CollectorOut>,
}

fn live(api: &Api) -> Live {
    api.status
        .as_ref()
        .map(|s| s.snapshot())
        .unwrap_or_default()
}

/// The status of the ledger in `r`: the configured collectors with the daemon's `live`
/// view of them, and whether a daemon is `collecting`.
pub fn status_of(
    settings: &super::Settings,
    live: &Live,
    collecting: bool,
    r: &crate::ledger::reader::Reader,
) -> Result<StatusOut, ApiError> {
    let entries = r.size()?;
    let cp = r.latest_checkpoint()?;
    let signed_at = match &cp {
        Some((s, _)) => r.checkpoint_signed_at(*s)?,
        None => None,
    };
    let age = signed_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| chrono::Utc::now().signed_duration_since(t).num_seconds());
    let stamped = match &cp {
        Some((s, _)) => r.timestamp(*s)?.is_some(),
        None => false,
    };
    let cov = coverage::all_now(r, &settings.policies, false)?;
    let coverage = Coverage::ALL
        .into_iter()
        .map(|s| (s.as_str().to_owned(), cov.count(s)))
        .collect();
    Ok(StatusOut {
        collecting,
        entries,
        checkpoint_size: cp.map(|(s, _)| s),
        checkpoint_signed_at: signed_at,
        checkpoint_age_seconds: age,
        checkpoint_timestamped: stamped,
        coverage,
        collectors: collector_list(settings, live, r)?,
    })
}

async fn status(_: Read, State(api): State<Arc<Api>>) -> Result<axum::Json<StatusOut>, ApiError> {
    Ok(axum::Json(
        read(&api, |api, r| {
            status_of(&api.settings(), &live(api), api.write.is_some(), r)
        })
        .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).expect("header"));
        byte_range(&h, len)
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(range("bytes=9-0", 100), Ok(None));
        assert_eq!(range("items=0-1", 100), Ok(None));
        assert_eq!(range("bytes=-0", 100), Ok(None));
        assert_eq!(range("bytes=+1-2", 100), Ok(None));
    }

    #[test]
    fn download_names_cannot_break_the_header() {
        assert_eq!(
            download_name("file://policies/ai-policy.md", "x"),
            "ai-policy.md"
        );
        assert_eq!(download_name("file://a/b\"; evil=1", "x"), "bevil=1");
        assert_eq!(download_name("manual://..", "d"), "d");
        assert_eq!(download_name("s3://bucket/dir/", "d"), "d");
    }
}
