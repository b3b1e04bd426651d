//! `[api]`: where the team service listens, its TLS files and limits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ByteSize, Interval, clean_path};

/// Where the API listens unless `[api] listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8742";
/// The largest push body unless `[api] max_body` says otherwise.
pub const DEFAULT_MAX_BODY: u64 = 1 << 30;
/// Requests per second per token unless `[api] rate_limit` says otherwise.
pub const DEFAULT_RATE_LIMIT: f64 = 1000.0;

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Serve the API at all (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Address and port (default 127.0.0.1:8742).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (behind a TLS-terminating proxy on a
    /// trusted network).
    #[serde(default)]
    pub insecure_http: bool,
    /// The largest request body (a pushed file), default 1GiB.
    #[serde(default)]
    pub max_body: Option<ByteSize>,
    /// Requests per second per token (default 1000; bursts of twice that).
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// How long a request may take before it is answered 503 (default 60s; streamed
    /// content and exports are limited only while their headers are prepared).
    #[serde(default)]
    pub request_timeout: Option<Interval>,
}

fn yes() -> bool {
    true
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: true,
            listen: None,
            tls_cert: None,
            tls_key: None,
            insecure_http: false,
            max_body: None,
            rate_limit: None,
            request_timeout: None,
        }
    }
}

impl ApiConfig {
    /// The address to listen on.
    pub fn listen(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| {
            DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8742)))
        })
    }

    /// The push body limit.
    pub fn max_body(&self) -> u64 {
        self.max_body.map_or(DEFAULT_MAX_BODY, |b| b.0)
    }

    /// The per-token rate.
    pub fn rate_limit(&self) -> f64 {
        self.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT)
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
            .map_or(Duration::from_secs(60), |i| i.0)
    }

    /// Checks the table; resolves TLS paths against the config's directory. The error names
    /// the key to point at.
    pub fn validate(&mut self, base: &Path) -> Result<(), (&'static str, String)> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err((
                    "tls_",
                    "[api] needs both tls_cert and tls_key for HTTPS, or neither".to_owned(),
                ));
            }
            _ => {}
        }
        self.tls_cert = self.tls_cert.as_ref().map(|p| clean_path(&base.join(p)));
        self.tls_key = self.tls_key.as_ref().map(|p| clean_path(&base.join(p)));
        let addr = self.listen();
        if self.enabled
            && !addr.ip().is_loopback()
            && self.tls_cert.is_none()
            && !self.insecure_http
        {
            return Err((
                "listen",
                format!(
                    "[api] listen = \"{addr}\" is reachable from other machines, and tokens \
                     would cross the network in clear: set tls_cert and tls_key, or put a TLS \
                     proxy (nginx, Caddy) in front, listen on 127.0.0.1 and, only if the proxy \
                     is on another host of a trusted network, set insecure_http = true"
                ),
            ));
        }
        if self.rate_limit.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return Err((
                "rate_limit",
                "[api] rate_limit is requests per second per token: a number above 0".into(),
            ));
        }
        Ok(())
    }
}
