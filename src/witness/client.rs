//! The log side: after each checkpoint, send it to every `[[witnesses]]` entry with a
//! consistency proof from the size that witness last cosigned, check the cosignature it
//! returns against its key, and store it with the checkpoint. A witness that is down or
//! refuses leaves the checkpoint as it is (signed, stored, unwitnessed by it); the next
//! checkpoint tries again.

use std::time::Duration;

pub use crate::config::witness::WitnessConfig;
use crate::ledger::merkle::consistency_proof;
use crate::ledger::note::NoteVerifier;
use crate::ledger::reader::Reader;
use crate::ledger::writer::{Cosignature, Writer};

use super::WitnessError;
use super::protocol::AddCheckpoint;

/// What asking one witness gave.
#[derive(Debug)]
pub struct Witnessed {
    /// The witness's name.
    pub witness: String,
    /// Its cosignature, stored; or why there is none.
    pub outcome: Result<Cosignature, WitnessError>,
}

/// What witnessing one checkpoint came to.
#[derive(Debug)]
pub struct Tally {
    /// The checkpoint's size.
    pub size: u64,
    /// Witnesses whose cosignature of it is stored (before and now).
    pub cosigned: usize,
    /// How many the policy asks for.
    pub quorum: usize,
    /// Each witness asked now, and what it said.
    pub asked: Vec<Witnessed>,
}

impl Tally {
    /// True when the quorum is met.
    pub fn witnessed(&self) -> bool {
        self.cosigned >= self.quorum
    }
}

/// The key names of `witnesses` (checked at config load; a bad key is skipped here).
pub fn names(witnesses: &[WitnessConfig]) -> Vec<String> {
    witnesses
        .iter()
        .filter_map(|w| w.key().ok())
        .map(|k| k.name().to_owned())
        .collect()
}

/// Asks every witness that has not cosigned the checkpoint of `size` yet, and counts the
/// cosignatures it now has against `quorum`.
pub fn witness_checkpoint(
    reader: &Reader,
    writer: &Writer,
    witnesses: &[WitnessConfig],
    quorum: usize,
    (size, note): (u64, &str),
) -> Result<Tally, WitnessError> {
    let asked = ask_all(reader, writer, witnesses, size, note)?;
    let names = names(witnesses);
    let cosigned = reader
        .cosignatures(size)?
        .iter()
        .filter(|c| names.contains(&c.witness))
        .count();
    Ok(Tally {
        size,
        cosigned,
        quorum,
        asked,
    })
}

fn ask_all(
    reader: &Reader,
    writer: &Writer,
    witnesses: &[WitnessConfig],
    size: u64,
    note: &str,
) -> Result<Vec<Witnessed>, WitnessError> {
    let have: Vec<String> = reader
        .cosignatures(size)?
        .into_iter()
        .map(|c| c.witness)
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| WitnessError::Config(format!("cannot start the HTTP runtime: {e}")))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut out = Vec::new();
    for w in witnesses {
        let key = w.key().map_err(WitnessError::Config)?;
        if have.iter().any(|h| h == key.name()) {
            continue;
        }
        let outcome = rt.block_on(ask(reader, w, &key, size, note)).and_then(|c| {
            writer
                .store_cosignature(c.clone())
                .map(|()| c)
                .map_err(Into::into)
        });
        out.push(Witnessed {
            witness: key.name().to_owned(),
            outcome,
        });
    }
    Ok(out)
}

/// One witness: from the size it last cosigned (as stored here), or the size it says when
/// that is stale (409), once.
async fn ask(
    reader: &Reader,
    w: &WitnessConfig,
    key: &NoteVerifier,
    size: u64,
    note: &str,
) -> Result<Cosignature, WitnessError> {
    let remote = |message: String| WitnessError::Remote {
        witness: key.name().to_owned(),
        message,
    };
    let url = w.endpoint().map_err(WitnessError::Config)?;
    let client = reqwest::Client::builder()
        .timeout(w.timeout.map_or(Duration::from_secs(10), |t| t.0))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("evident/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| remote(format!("cannot build the HTTP client: {e}")))?;
    let mut old = reader.witnessed_size(key.name())?.min(size);
    for attempt in 0..2 {
        let proof = if old == 0 || old == size {
            Vec::new()
        } else {
            consistency_proof(reader, old, size).map_err(crate::ledger::LedgerError::from)?
        };
        let body = AddCheckpoint {
            old,
            proof,
            checkpoint: note.to_owned(),
        }
        .encode();
        let resp = client
            .post(url.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| remote(format!("POST {url}: {e}")))?;
        let status = resp.status().as_u16();
        let text = read_limited(resp)
            .await
            .map_err(|e| remote(format!("POST {url}: {e}")))?;
        match status {
            200 => return cosignature(key, size, note, &text).map_err(remote),
            409 if attempt == 0 => {
                let theirs = text
                    .trim_end()
                    .parse::<u64>()
                    .map_err(|_| remote(format!("409 Conflict: {}", excerpt(&text))))?;
                if theirs > size {
                    return Err(remote(format!(
                        "it has cosigned a tree of size {theirs}, larger than this ledger's \
                         {size}: this ledger was rolled back, or another one signs under \
                         its origin and key"
                    )));
                }
                old = theirs;
            }
            _ => {
                return Err(remote(format!("HTTP {status}: {}", excerpt(&text))));
            }
        }
    }
    Err(remote("it kept answering 409 Conflict".into()))
}

/// The witness's cosignature line among its answer's lines, verified over the checkpoint.
fn cosignature(
    key: &NoteVerifier,
    size: u64,
    note: &str,
    answer: &str,
) -> Result<Cosignature, String> {
    // Split on newlines only: a line ending in `\r` must fail, not be trimmed and stored.
    for line in answer.split_terminator('\n') {
        let line = format!("{line}\n");
        if let Ok((_, Some(time))) = key.open_at(&format!("{note}{line}")) {
            return Ok(Cosignature {
                size,
                witness: key.name().to_owned(),
                line,
                time,
            });
        }
    }
    Err(format!(
        "its answer holds no valid cosignature by its key: {}",
        excerpt(answer)
    ))
}

async fn read_limited(mut resp: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > 16 << 10 {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    let cut: String = s.chars().take(200).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut.to_owned()
    }
}
