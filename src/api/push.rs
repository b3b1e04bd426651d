//! `POST /v1/evidence`: evidence pushed by CI pipelines and people, recorded through the
//! same recorder and writer as the collectors.
//!
//! Two shapes. `multipart/form-data` with a `metadata` JSON part and a `file` part: the
//! file is streamed to a private scratch file (never held in memory), then hashed into the
//! blob store by the recorder like any collected file. `application/json`: metadata-only
//! evidence (URI, SHA-256, size) whose content lives elsewhere, one object or
//! `{"entries": [...]}` for a batch. Idempotent: a URI whose current version has the same
//! digest answers with that entry and records nothing. Each entry records the pushing
//! token's name (`submittedBy`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use chrono::NaiveDate;
use evident_collectors::{Batch, Content, Observation};
use serde::{Deserialize, Serialize};

use super::auth::Push;
use super::extract::Q;
use super::{Api, ApiError, WriteSide};
use crate::catalog::Catalog;
use crate::ledger::blobs::Ingested;
use crate::ledger::leaf::{hex, parse_hex32};
use crate::recorder::{Recorder, SourceSettings};

/// The source name of pushed evidence unless the submitter names one.
pub const PUSH_SOURCE: &str = "push";
/// The most entries one metadata batch may carry.
pub const MAX_BATCH: usize = 10_000;
/// The largest JSON body (a metadata batch).
const MAX_JSON: usize = 16 << 20;
/// How long `?wait=checkpoint` waits for the checkpoint.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(30);

/// One piece of pushed evidence, as the submitter describes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushItem {
    /// Stable URI of the artefact; pushing a new digest under it records a new version.
    /// Default for a file: `push://<source>/<file name>`.
    pub uri: Option<String>,
    /// SHA-256 (hex) of the content: required without a file, checked against it with one.
    pub sha256: Option<String>,
    /// Size in bytes: required without a file.
    pub size: Option<u64>,
    /// Human title.
    pub title: Option<String>,
    /// Artefact kind (default `document`).
    pub kind: Option<String>,
    /// Controls and clauses it supports.
    #[serde(default)]
    pub controls: Vec<String>,
    /// The date it takes effect (YYYY-MM-DD).
    pub effective_date: Option<String>,
    /// Where it comes from (`github-actions`, `release-pipeline`); default `push`.
    pub source: Option<String>,
    /// Media type of the content.
    pub media_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum JsonBody {
    Batch { entries: Vec<PushItem> },
    One(Box<PushItem>),
}

/// Query of `POST /v1/evidence`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushParams {
    /// `checkpoint`: answer after the next checkpoint, with inclusion proofs.
    wait: Option<String>,
}

/// One recorded (or already present) entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pushed {
    /// Its index.
    pub index: u64,
    /// Its URI.
    pub uri: String,
    /// Its SHA-256.
    pub sha256: String,
    /// False when the same URI and digest were already recorded.
    pub created: bool,
    /// The c2sp.org/tlog-proof@v1 receipt, with `?wait=checkpoint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

/// The answer to a push.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushResult {
    /// Each item, in the order sent.
    pub entries: Vec<Pushed>,
    /// The checkpoint the proofs are against, with `?wait=checkpoint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_size: Option<u64>,
}

/// A validated item, ready for the recorder.
#[derive(Debug)]
struct Ready {
    source: String,
    obs: Observation,
    sha256: Option<[u8; 32]>,
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::bad_request(m)
}

fn valid_source(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks an item and turns it into an observation of `content`.
fn prepare(
    api: &Api,
    n: usize,
    item: PushItem,
    content: Content,
    file_name: Option<&str>,
) -> Result<Ready, ApiError> {
    let at = |m: String| bad(format!("item {n} of the request: {m}"));
    let source = item.source.unwrap_or_else(|| PUSH_SOURCE.to_owned());
    if !valid_source(&source) {
        return Err(at(format!(
            "source {source:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
        )));
    }
    if source == crate::recorder::MANUAL
        || source == crate::ledger::erasures::EVIDENT_SOURCE
        || api.settings().collectors.iter().any(|c| c.name == source)
    {
        // A collector sweeps away the artefacts of its source it no longer finds.
        return Err(at(format!(
            "source {source:?} is a collector of this server (or `manual`, or `evident`, which records Evident's own populations, samples and erasures); name the pipeline instead"
        )));
    }
    let uri = match (item.uri, file_name) {
        (Some(u), _) => u,
        (None, Some(f)) => format!(
            "push://{source}/{}",
            evident_collectors::sources::filesystem::encode_path(f.as_bytes())
        ),
        (None, None) => return Err(at("uri is required".into())),
    };
    if uri.len() > 2048
        || !uri.contains("://")
        || uri.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(at(format!(
            "uri {:?} is not a URI (scheme://path, no spaces, at most 2048 bytes)",
            uri.chars().take(80).collect::<String>()
        )));
    }
    for c in &item.controls {
        Catalog::get().resolve(c).map_err(|e| at(e.to_string()))?;
    }
    let sha256 = item
        .sha256
        .as_deref()
        .map(|h| {
            parse_hex32(&h.to_ascii_lowercase())
                .ok_or_else(|| at("sha256 is not 64 hex digits".into()))
        })
        .transpose()?;
    let effective_date = item
        .effective_date
        .as_deref()
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| at(format!("effective_date {d:?} is not YYYY-MM-DD")))
        })
        .transpose()?;
    let kind = item.kind.unwrap_or_else(|| "document".to_owned());
    if !crate::ledger::evidence::counts_as_evidence(&kind) {
        return Err(at(format!(
            "kind {kind:?} is reserved for Evident's own run and removal records"
        )));
    }
    if kind.is_empty()
        || kind.len() > 64
        || !kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(at(format!(
            "kind {kind:?}: use letters, digits, '_', '-' or '.'"
        )));
    }
    let content = match content {
        Content::Digest { .. } => {
            let (Some(sha256), Some(size)) = (sha256, item.size) else {
                return Err(at(
                    "metadata-only evidence needs sha256 and size (or send the file as multipart)"
                        .into(),
                ));
            };
            Content::Digest { sha256, size }
        }
        c => c,
    };
    let mut obs = Observation::new(uri, kind, content);
    obs.title = item.title.filter(|t| !t.trim().is_empty());
    obs.control_hints = item.controls;
    obs.effective_date = effective_date;
    obs.media_type = item.media_type.or_else(|| {
        file_name
            .and_then(evident_collectors::media::media_type_for)
            .map(str::to_owned)
    });
    Ok(Ready {
        source,
        obs,
        sha256,
    })
}

/// `POST /v1/evidence`.
pub async fn push(
    Push(who): Push,
    State(api): State<Arc<Api>>,
    Q(params): Q<PushParams>,
    req: Request,
) -> Result<(StatusCode, axum::Json<PushResult>), ApiError> {
    let Some(write) = api.write.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "read_only",
            "this server is read-only (evident serve); push to the server that runs `evident run`",
        ));
    };
    let wait = match params.wait.as_deref() {
        None => false,
        Some("checkpoint") => true,
        Some(w) => return Err(bad(format!("wait={w:?}: the only value is `checkpoint`"))),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let items = if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(req, &())
            .await
            .map_err(|e| bad(format!("not a multipart body: {e}")))?;
        vec![read_multipart(&api, multipart).await?]
    } else if content_type.starts_with("application/json") {
        let limit = MAX_JSON.min(usize::try_from(api.config.max_body()).unwrap_or(usize::MAX));
        let body = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!(
                        "a JSON body may be at most {limit} bytes; send at most {MAX_BATCH} entries a request"
                    ),
                )
            })?;
        let parsed: JsonBody = serde_json::from_slice(&body).map_err(|e| {
            bad(format!(
                "the body is not push JSON ({e}); send {{\"uri\", \"sha256\", \"size\", \"controls\", …}} or {{\"entries\": […]}}"
            ))
        })?;
        let list = match parsed {
            JsonBody::Batch { entries } => entries,
            JsonBody::One(one) => vec![*one],
        };
        if list.is_empty() || list.len() > MAX_BATCH {
            return Err(bad(format!("send 1 to {MAX_BATCH} entries a request")));
        }
        list.into_iter()
            .enumerate()
            .map(|(n, item)| {
                prepare(
                    &api,
                    n,
                    item,
                    Content::Digest {
                        sha256: [0; 32],
                        size: 0,
                    },
                    None,
                )
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send multipart/form-data (a `metadata` JSON part and a `file` part) or application/json (metadata only)",
        ));
    };
    let mut result = record(&write, who.name.clone(), items).await?;
    let created = result.entries.iter().filter(|e| e.created).count();
    api.metrics.pushes.inc_by(created as u64);
    tracing::info!(token = %who.name, created, sent = result.entries.len(), "evidence pushed");
    if wait {
        add_proofs(&api, &write, &mut result).await?;
    }
    let status = if created > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(result)))
}

/// How long an upload may pause between two pieces before it is dropped.
const UPLOAD_IDLE: Duration = Duration::from_secs(30);
/// The largest `metadata` part.
const MAX_METADATA: usize = 1 << 20;

/// The next piece of a part, with an idle deadline; errors say what went wrong, and an
/// upload cut off by `[api] max_body` is a 413.
async fn next_chunk(
    api: &Api,
    field: &mut axum::extract::multipart::Field<'_>,
    what: &str,
) -> Result<Option<axum::body::Bytes>, ApiError> {
    match tokio::time::timeout(UPLOAD_IDLE, field.chunk()).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the {what} part stalled for {}s", UPLOAD_IDLE.as_secs()),
        )),
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => {
            let status = e.status();
            Err(if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    status,
                    "too_large",
                    format!(
                        "the body is larger than [api] max_body ({} bytes)",
                        api.config.max_body()
                    ),
                )
            } else {
                ApiError::new(
                    status,
                    "bad_request",
                    format!("reading the {what} part: {}", e.body_text()),
                )
            })
        }
    }
}

/// Reads the parts into `metadata` and `file`; on an error, `file` still says what was
/// installed, so the caller can remove it.
async fn read_parts(
    api: &Api,
    multipart: &mut Multipart,
    metadata: &mut Option<PushItem>,
    file: &mut Option<(Ingested, String, Option<String>)>,
) -> Result<(), ApiError> {
    let blobs = api.blobs.clone();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(format!("reading the multipart body: {e}")))?
    {
        match field.name() {
            Some("metadata") if metadata.is_none() => {
                let mut text = Vec::new();
                while let Some(chunk) = next_chunk(api, &mut field, "metadata").await? {
                    if text.len() + chunk.len() > MAX_METADATA {
                        return Err(bad("the metadata part is larger than 1 MiB"));
                    }
                    text.extend_from_slice(&chunk);
                }
                *metadata = Some(
                    serde_json::from_slice(&text)
                        .map_err(|e| bad(format!("the metadata part is not push JSON: {e}")))?,
                );
            }
            Some("file") if file.is_none() => {
                let name = field
                    .file_name()
                    .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_owned())
                    .filter(|n| !n.is_empty() && n != "." && n != "..")
                    .unwrap_or_else(|| "upload".to_owned());
                let media = field.content_type().map(str::to_owned);
                let mut blob = blobs.writer().map_err(ApiError::internal)?;
                loop {
                    let chunk = match next_chunk(api, &mut field, "file").await {
                        Ok(Some(c)) => c,
                        Ok(None) => break,
                        // Cut off at the limit, the parser may only see a part that ends early.
                        Err(e) if blob.size() + (64 << 10) >= api.config.max_body() => {
                            return Err(ApiError::new(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                "too_large",
                                format!(
                                    "the body is larger than [api] max_body ({} bytes): {}",
                                    api.config.max_body(),
                                    e.message
                                ),
                            ));
                        }
                        Err(e) => return Err(e),
                    };
                    blob.write(&chunk).map_err(ApiError::internal)?;
                }
                let ingested = blob.finish(&blobs).map_err(ApiError::internal)?;
                *file = Some((ingested, name, media));
            }
            Some(other) => {
                return Err(bad(format!(
                    "unexpected part {other:?}: send one `metadata` (JSON) and one `file`"
                )));
            }
            None => return Err(bad("a multipart part has no name")),
        }
    }
    Ok(())
}

/// Reads the `metadata` and `file` parts; the file goes into the blob store as it arrives
/// (hashed on the way), so it is never held in memory or copied twice.
async fn read_multipart(api: &Api, mut multipart: Multipart) -> Result<Ready, ApiError> {
    let blobs = api.blobs.clone();
    let mut metadata: Option<PushItem> = None;
    let mut file: Option<(Ingested, String, Option<String>)> = None;
    let read = read_parts(api, &mut multipart, &mut metadata, &mut file).await;
    if let Err(e) = read {
        // The file part may already be in the store: nothing will record it.
        if let Some((i, _, _)) = file.filter(|(i, _, _)| i.fresh) {
            blobs.remove_orphans(&[i.sha256]);
        }
        return Err(e);
    }
    let Some((ingested, name, media)) = file else {
        return Err(bad(
            "no `file` part; for metadata-only evidence send application/json",
        ));
    };
    // From here on the blob is installed: if nothing records it, it is an orphan.
    let orphan = |e: ApiError| {
        if ingested.fresh {
            blobs.remove_orphans(&[ingested.sha256]);
        }
        e
    };
    let mut item = metadata.unwrap_or_default();
    if item.media_type.is_none() {
        item.media_type = media.filter(|m| m != "application/octet-stream");
    }
    if let Some(s) = item.size.filter(|s| *s != ingested.size) {
        return Err(orphan(bad(format!(
            "size says {s} bytes, the file part has {}",
            ingested.size
        ))));
    }
    let content = Content::Stored {
        sha256: ingested.sha256,
        size: ingested.size,
        fresh: ingested.fresh,
    };
    let ready = prepare(api, 0, item, content, Some(&name)).map_err(orphan)?;
    if let Some(said) = ready.sha256.filter(|s| *s != ingested.sha256) {
        return Err(orphan(bad(format!(
            "sha256 says {}, the file part hashes to {}: it changed on the way",
            hex(&said),
            hex(&ingested.sha256)
        ))));
    }
    Ok(Ready {
        sha256: Some(ingested.sha256),
        ..ready
    })
}

/// A push waiting in the queue.
#[derive(Debug)]
pub struct PushJob {
    items: Vec<Ready>,
    token: String,
    reply: tokio::sync::oneshot::Sender<Result<PushResult, ApiError>>,
}

/// The queue pushes wait in. One task records whatever has gathered as one batch: sixteen
/// concurrent pushes cost one commit and one sync, not sixteen, and the "already recorded?"
/// checks and the appends never interleave.
#[derive(Debug, Clone)]
pub struct PushQueue(tokio::sync::mpsc::Sender<PushJob>);

impl PushQueue {
    /// A queue and the receiving end [`serve_queue`] takes.
    pub fn new() -> (PushQueue, tokio::sync::mpsc::Receiver<PushJob>) {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        (PushQueue(tx), rx)
    }
}

/// Records queued pushes until every sender is gone.
pub async fn serve_queue(api: Arc<Api>, mut rx: tokio::sync::mpsc::Receiver<PushJob>) {
    while let Some(first) = rx.recv().await {
        let mut count = first.items.len();
        let mut jobs = vec![first];
        while count < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => {
                    count += j.items.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let (work, replies): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .map(|j| ((j.items, j.token), j.reply))
            .unzip();
        let api = api.clone();
        let results = tokio::task::spawn_blocking(move || record_jobs(&api, work)).await;
        match results {
            Ok(results) => {
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                let e = ApiError::internal(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Queues `items` pushed by `token` and waits for their entries.
async fn record(
    write: &WriteSide,
    token: String,
    items: Vec<Ready>,
) -> Result<PushResult, ApiError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    write
        .push_queue
        .0
        .send(PushJob {
            items,
            token,
            reply,
        })
        .await
        .map_err(|_| ApiError::internal("the push queue is gone"))?;
    answer
        .await
        .map_err(|_| ApiError::internal("the push queue dropped a push"))?
}

/// Where an item's answer comes from.
type Slot = (usize, usize);

/// Observations to record, by (source, token), with the slot each answers.
type Groups = std::collections::BTreeMap<(String, String), Vec<(Slot, Observation)>>;
/// Per push, each item's answer so far (or why the whole push was refused).
type Answers = Vec<Result<Vec<Option<Pushed>>, ApiError>>;

/// Records each group as one batch and answers its items with their new entries; a group
/// the recorder could not take refuses every push that had an item in it.
fn record_groups(
    api: &Api,
    write: &WriteSide,
    r: &crate::ledger::reader::Reader,
    groups: Groups,
    out: &mut Answers,
) -> Result<(), ApiError> {
    let mapper = api.settings().mapper.clone();
    for ((source, token), list) in groups {
        let (slots, observations): (Vec<Slot>, Vec<Observation>) = list.into_iter().unzip();
        let recorder = Recorder::new(&write.ledger.writer, &write.ledger.blobs, &mapper, false);
        let settings = SourceSettings {
            name: &source,
            kind: PUSH_SOURCE,
            controls: &[],
            max_file_size: u64::MAX,
            submitted_by: Some(&token),
        };
        let stats = recorder.record(
            &settings,
            &HashMap::new(),
            Batch {
                observations,
                ..Batch::default()
            },
        )?;
        if let Some(p) = stats.problems.iter().find(|p| p.failed) {
            let e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_recorded",
                format!("{}: {}", p.item, p.message),
            );
            for (j, _) in &slots {
                out[*j] = Err(e.clone());
            }
            continue;
        }
        // Entries come back in the order sent (the recorder keeps a chunk's order).
        for ((j, n), idx) in slots.into_iter().zip(stats.indexes) {
            let e = r.entry(idx)?.ok_or_else(|| {
                ApiError::internal(format!("entry {idx} vanished after its commit"))
            })?;
            if let Ok(list) = &mut out[j] {
                list[n] = Some(Pushed {
                    index: idx,
                    uri: e.uri,
                    sha256: e.sha256,
                    created: true,
                    proof: None,
                });
            }
        }
    }
    Ok(())
}

/// Records a gathered batch of pushes. Per push: an item whose URI already has this digest
/// is answered with that entry; the same URI and digest again in the batch is answered with
/// the first; a URI another source recorded refuses that push (and only that one). The rest
/// are recorded grouped by source and token, one commit per group.
fn record_jobs(api: &Api, jobs: Vec<(Vec<Ready>, String)>) -> Vec<Result<PushResult, ApiError>> {
    let Some(write) = api.write.as_ref() else {
        return jobs
            .iter()
            .map(|_| Err(ApiError::internal("no write side")))
            .collect();
    };
    let n_jobs = jobs.len();
    let outcome = api.readers.with(|r| {
        let mut out: Answers = jobs
            .iter()
            .map(|(items, _)| Ok(vec![None; items.len()]))
            .collect();
        let mut first: HashMap<(String, [u8; 32]), Slot> = HashMap::new();
        let mut owners: HashMap<String, String> = HashMap::new();
        let mut aliases: Vec<(Slot, Slot)> = Vec::new();
        let mut groups = Groups::new();
        for (j, (items, token)) in jobs.into_iter().enumerate() {
            // Decided per push, merged into the batch only if the whole push is accepted.
            let mut local_first: HashMap<(String, [u8; 32]), Slot> = HashMap::new();
            let mut local_owners: HashMap<String, String> = HashMap::new();
            let mut local_aliases = Vec::new();
            let mut local_record = Vec::new();
            let mut refused = None;
            for (n, it) in items.into_iter().enumerate() {
                let uri = it.obs.uri.clone();
                if let Some(d) = it.sha256 {
                    let key = (uri.clone(), d);
                    if let Some(&earlier) = local_first.get(&key).or_else(|| first.get(&key)) {
                        local_aliases.push(((j, n), earlier));
                        continue;
                    }
                    local_first.insert(key, (j, n));
                }
                let current = r.current_version(&uri)?;
                let owner = local_owners
                    .get(&uri)
                    .or_else(|| owners.get(&uri))
                    .cloned()
                    .or_else(|| current.as_ref().map(|c| c.2.clone()));
                if let Some(owner) = owner.filter(|o| *o != it.source) {
                    // A push may supersede its own source's versions only: a CI token must
                    // not replace what a collector (or another pipeline) found.
                    refused = Some(ApiError::new(
                        StatusCode::CONFLICT,
                        "not_owner",
                        format!(
                            "{uri} is recorded from source {owner:?}, and a push may only supersede its own source's versions; use another URI"
                        ),
                    ));
                    break;
                }
                if let Some(digest) = it.sha256
                    && let Some((idx, current, _)) = &current
                    && *current == digest
                {
                    if let Ok(slots) = &mut out[j] {
                        slots[n] = Some(Pushed {
                            index: *idx,
                            uri,
                            sha256: hex(&digest),
                            created: false,
                            proof: None,
                        });
                    }
                    continue;
                }
                local_owners.insert(uri, it.source.clone());
                local_record.push(((it.source, token.clone()), (j, n), it.obs));
            }
            if let Some(e) = refused {
                out[j] = Err(e);
                continue;
            }
            first.extend(local_first);
            owners.extend(local_owners);
            aliases.extend(local_aliases);
            for (key, slot, obs) in local_record {
                groups.entry(key).or_default().push((slot, obs));
            }
        }
        record_groups(api, write, r, groups, &mut out)?;
        for ((j, n), (ej, en)) in aliases {
            let earlier = out[ej]
                .as_ref()
                .ok()
                .and_then(|l| l[en].clone())
                .map(|p| Pushed { created: false, ..p });
            if let Ok(list) = &mut out[j] {
                list[n] = earlier;
            }
        }
        Ok(out)
    });
    match outcome {
        Err(e) => (0..n_jobs).map(|_| Err(e.clone())).collect(),
        Ok(out) => out
            .into_iter()
            .map(|job| {
                let entries = job?
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        ApiError::internal("a pushed item was neither recorded nor found")
                    })?;
                Ok(PushResult {
                    entries,
                    checkpoint_size: None,
                })
            })
            .collect(),
    }
}

/// Waits for a checkpoint covering every entry (asking the daemon for one now), then adds
/// each entry's receipt.
async fn add_proofs(
    api: &Arc<Api>,
    write: &WriteSide,
    result: &mut PushResult,
) -> Result<(), ApiError> {
    let needed = result
        .entries
        .iter()
        .map(|e| e.index + 1)
        .max()
        .unwrap_or(0);
    let mut sizes = write.checkpoints.clone();
    let covered = async {
        loop {
            if *sizes.borrow_and_update() >= needed {
                return;
            }
            write.checkpoint_now.notify_one();
            if sizes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    if tokio::time::timeout(CHECKPOINT_WAIT, covered)
        .await
        .is_err()
    {
        return Err(ApiError {
            retry_after: Some(10),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "checkpoint_pending",
                format!(
                    "the entries are recorded, but no checkpoint covered them within {}s (an export may hold the checkpoint lock); fetch /v1/entries/{{index}} later for the proof",
                    CHECKPOINT_WAIT.as_secs()
                ),
            )
        });
    }
    let indexes: Vec<u64> = result.entries.iter().map(|e| e.index).collect();
    let receipts = super::v1::read(api, move |api, r| {
        let verifier = api.state.verifier()?;
        indexes
            .iter()
            .map(|i| {
                crate::ledger::receipt::receipt(r, &verifier, *i)
                    .map(|rc| (rc.checkpoint_size, rc.proof.encode()))
                    .map_err(ApiError::internal)
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    for (e, (size, proof)) in result.entries.iter_mut().zip(receipts) {
        e.proof = Some(proof);
        result.checkpoint_size = Some(size);
    }
    Ok(())
}
