//! `[agent]`: this daemon is a remote agent. Its collectors record into the local ledger as
//! always, which serves as a durable spool, and everything recorded is forwarded in order
//! to a central Evident's push API with a push token.

use std::path::PathBuf;

use evident_collectors::units::Interval;
use reqwest::Url;
use serde::Deserialize;

/// `[agent]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The central server's API (`https://evident.example.org:8742`).
    pub url: String,
    /// The environment variable holding the push token (default `EVIDENT_AGENT_TOKEN`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// A file holding the push token (a bare name is looked up in `$CREDENTIALS_DIRECTORY`).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A PEM file of the CA that signed the centre's certificate (default: the system's).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How often to look for entries to forward, and the first wait after a failure
    /// (default 10s; failures back off to 5 minutes).
    #[serde(default)]
    pub interval: Option<Interval>,
    /// Per-request timeout (default 2m).
    #[serde(default)]
    pub timeout: Option<Interval>,
    /// Entries waiting for the centre beyond which collectors pause, so a long outage
    /// cannot fill this host's disk (default 100,000).
    #[serde(default)]
    pub max_pending: Option<u64>,
}

/// The token variable, unless configured.
pub const DEFAULT_TOKEN_ENV: &str = "EVIDENT_AGENT_TOKEN";

impl AgentConfig {
    /// The push endpoint, `<url>/v1/evidence`. Plain `http://` only to a loopback address:
    /// the token would otherwise cross the network readable.
    pub fn endpoint(&self) -> Result<Url, String> {
        let mut base = Url::parse(&self.url).map_err(|e| format!("url {:?}: {e}", self.url))?;
        let host = base.host_str().unwrap_or("");
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback());
        match base.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(format!(
                    "url {:?}: the push token must not cross the network in clear; use https://",
                    self.url
                ));
            }
            _ => return Err(format!("url {:?} must be https://", self.url)),
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(format!(
                "url {:?}: no credentials in the URL; the token comes from token_env or token_file",
                self.url
            ));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base.join("v1/evidence")
            .map_err(|e| format!("url {:?}: {e}", self.url))
    }

    /// How often to look for work.
    pub fn interval(&self) -> std::time::Duration {
        self.interval
            .map_or(std::time::Duration::from_secs(10), |i| i.0)
    }

    /// The queue's bound.
    pub fn max_pending(&self) -> u64 {
        self.max_pending.unwrap_or(100_000)
    }

    /// The request timeout.
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
            .map_or(std::time::Duration::from_secs(120), |i| i.0)
    }
}
