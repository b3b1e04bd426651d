//! Optional external time anchoring (RFC 3161): after a checkpoint is signed, a timestamp
//! authority signs the time over the checkpoint's exact bytes, so an auditor can tell the
//! tree existed by then without trusting this server's clock.
//!
//! The token is verified before it is stored (status, imprint, nonce, signature, and the
//! CA chain when `ca_file` is given), stored once per checkpoint size (`timestamps`, append
//! only), and exported as `checkpoint.tsr` with the certificates to check it with
//! `openssl ts -verify`. A TSA that is down never loses a checkpoint: the request is made
//! again for the next checkpoint or export.

pub mod tsp;

use std::path::PathBuf;
use std::time::Duration;

use evident_collectors::http::{Auth, Http, HttpOptions};
use reqwest::Url;
use serde::Deserialize;

use crate::ledger::LedgerError;
use crate::ledger::state::StateDir;
use crate::ledger::writer::Writer;
use evident_collectors::units::Interval;

/// DER certificates.
type DerCerts = Vec<Vec<u8>>;

/// `[anchoring]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorConfig {
    /// The TSA's RFC 3161 endpoint (http or https).
    pub tsa_url: String,
    /// PEM file with the TSA's CA certificate(s): tokens must chain to them, and bundles
    /// carry them as `tsa/ca.pem`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Request timeout (default 30s).
    #[serde(default)]
    pub timeout: Option<Interval>,
}

/// Why a checkpoint could not be anchored.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The ledger could not be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The TSA could not be reached or answered with an error.
    #[error("timestamp authority {url}: {message}")]
    Tsa {
        /// The TSA.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A token did not verify; the verifier's reason is the source.
    #[error("timestamp authority {url}: {what}: {source}")]
    Token {
        /// The TSA.
        url: String,
        /// Which token (a stored one, or the answer just received).
        what: &'static str,
        /// Why it does not verify.
        #[source]
        source: tsp::TspError,
    },
    /// The CA file cannot be read.
    #[error("[anchoring] ca_file {path}: {message}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A stored timestamp with what is needed to check it.
#[derive(Debug, Clone)]
pub struct Anchored {
    /// The DER TimeStampResp.
    pub token: Vec<u8>,
    /// What it says.
    pub stamp: tsp::Stamp,
    /// The configured CA certificates, PEM (empty when none configured).
    pub ca_pem: String,
}

impl AnchorConfig {
    /// An error of this TSA.
    fn tsa_err(&self, message: String) -> AnchorError {
        AnchorError::Tsa {
            url: self.tsa_url.clone(),
            message,
        }
    }

    /// A token of this TSA that does not verify.
    fn token_err(&self, what: &'static str, source: tsp::TspError) -> AnchorError {
        AnchorError::Token {
            url: self.tsa_url.clone(),
            what,
            source,
        }
    }

    /// Checks the config (run when the config loads).
    pub fn validate(&self) -> Result<(), String> {
        let url = Url::parse(&self.tsa_url)
            .map_err(|e| format!("[anchoring] tsa_url {:?} is not a URL: {e}", self.tsa_url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "[anchoring] tsa_url {:?} must be http:// or https://",
                self.tsa_url
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("[anchoring] tsa_url must not carry credentials".to_owned());
        }
        Ok(())
    }

    /// The CA file's PEM text and its DER certificates (none configured: empty, `None`).
    fn ca(&self) -> Result<(String, Option<DerCerts>), AnchorError> {
        let Some(path) = &self.ca_file else {
            return Ok((String::new(), None));
        };
        let text = std::fs::read_to_string(path).map_err(|e| AnchorError::Ca {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let certs = tsp::pem_certs(&text);
        if certs.is_empty() {
            return Err(AnchorError::Ca {
                path: path.clone(),
                message: "holds no PEM certificate".to_owned(),
            });
        }
        Ok((text, Some(certs)))
    }

    /// The timestamp of checkpoint `size` (`note` its bytes): the stored one, or a new one
    /// requested, verified and stored through `writer`.
    pub fn ensure(
        &self,
        state: &StateDir,
        writer: &Writer,
        size: u64,
        note: &str,
    ) -> Result<Anchored, AnchorError> {
        let (ca_pem, ca) = self.ca()?;
        let reader = crate::ledger::reader::Reader::open(state)?;
        if let Some(token) = reader.timestamp(size)? {
            let stamp = tsp::verify(&token, note.as_bytes(), ca.as_deref(), None)
                .map_err(|e| self.token_err("the stored token no longer verifies", e))?;
            return Ok(Anchored {
                token,
                stamp,
                ca_pem,
            });
        }
        let (token, stamp) = self.stamp(note.as_bytes(), ca.as_deref())?;
        writer.store_timestamp(size, &token, &self.tsa_url)?;
        Ok(Anchored {
            token,
            stamp,
            ca_pem,
        })
    }

    /// Asks the TSA for a token over `data` and verifies it (nonce included).
    fn stamp(
        &self,
        data: &[u8],
        ca: Option<&[Vec<u8>]>,
    ) -> Result<(Vec<u8>, tsp::Stamp), AnchorError> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| self.tsa_err(format!("no randomness: {e}")))?;
        let nonce = u64::from_be_bytes(nonce) >> 1;
        let token = self.fetch(&tsp::request(data, nonce))?;
        let stamp = tsp::verify(&token, data, ca, Some(nonce))
            .map_err(|e| self.token_err("its answer does not verify", e))?;
        Ok((token, stamp))
    }

    /// One request over throw-away bytes, verified like a real one and not stored:
    /// `config check --connect` shows a wrong URL or CA before the first checkpoint.
    pub fn probe(&self) -> Result<tsp::Stamp, AnchorError> {
        let (_, ca) = self.ca()?;
        self.stamp(b"evident config check\n", ca.as_deref())
            .map(|(_, stamp)| stamp)
    }

    fn fetch(&self, request: &[u8]) -> Result<Vec<u8>, AnchorError> {
        let url = Url::parse(&self.tsa_url).map_err(|e| self.tsa_err(e.to_string()))?;
        let http = Http::new(
            "anchoring",
            Auth::None,
            HttpOptions {
                timeout: self.timeout.map_or(Duration::from_secs(30), |t| t.0),
                max_body: 1 << 20,
                headers: vec![("accept", "application/timestamp-reply")],
                ..HttpOptions::default()
            },
        )
        .map_err(|e| self.tsa_err(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| self.tsa_err(format!("cannot start the HTTP runtime: {e}")))?;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/timestamp-query"),
        );
        let answer = rt
            .block_on(http.request(reqwest::Method::POST, &url, headers, Some(request.to_vec())))
            .map_err(|e| self.tsa_err(e.to_string()))?;
        Ok(answer.body)
    }
}
