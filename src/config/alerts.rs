//! `[[alerts]]`: who hears of a control turning stale, a collector failing, a late
//! checkpoint, and how.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Interval, clean_path};

/// What can be alerted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A control or clause turned stale.
    Stale,
    /// A control or clause turned missing.
    Missing,
    /// A collector failed `collector_failures` runs in a row.
    Collector,
    /// The newest checkpoint is older than `checkpoint_max_age`.
    Checkpoint,
    /// Timestamping (RFC 3161 anchoring) of the newest checkpoint failed.
    Anchoring,
    /// The periodic self-verification (`[ledger] self_verify`) found a problem.
    SelfVerify,
}

/// How a target is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// JSON `{origin, sent_at, transitions: [...]}` to any URL.
    Webhook,
    /// A Slack incoming webhook (`{"text": …}`).
    Slack,
    /// A Microsoft Teams workflow webhook (an Adaptive Card message).
    Teams,
    /// E-mail over SMTP with STARTTLS.
    Email,
}

/// One `[[alerts]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Its name (`evident alert test NAME`).
    pub name: String,
    /// How it is delivered.
    pub kind: AlertKind,
    /// The webhook URL (it is a secret for Slack and Teams: prefer `url_env`).
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding the webhook URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// SMTP server `host:port` (port 587 when omitted).
    #[serde(default)]
    pub smtp: Option<String>,
    /// Sender address.
    #[serde(default)]
    pub from: Option<String>,
    /// Recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// SMTP user name.
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable holding the SMTP password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A PEM CA certificate to trust for the SMTP server or webhook (a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Which events (default: all).
    #[serde(default)]
    pub on: Option<Vec<Event>>,
    /// Failed runs in a row before a collector alert (default 3).
    #[serde(default)]
    pub collector_failures: Option<u32>,
    /// The newest checkpoint's age that alerts (default 1d).
    #[serde(default)]
    pub checkpoint_max_age: Option<Interval>,
    /// At most one message per this interval (default 15m); transitions in between wait
    /// and go out together.
    #[serde(default)]
    pub min_interval: Option<Interval>,
    /// The dashboard's address, linked from messages.
    #[serde(default)]
    pub dashboard_url: Option<String>,
}

impl AlertConfig {
    /// Whether this target wants `event`.
    pub fn wants(&self, event: Event) -> bool {
        self.on.as_ref().is_none_or(|on| on.contains(&event))
    }

    /// Failures in a row that alert.
    pub fn collector_failures(&self) -> u32 {
        self.collector_failures.unwrap_or(3)
    }

    /// The checkpoint age that alerts.
    pub fn checkpoint_max_age(&self) -> Duration {
        self.checkpoint_max_age
            .map_or(Duration::from_secs(86_400), |i| i.0)
    }

    /// The rate limit.
    pub fn min_interval(&self) -> Duration {
        self.min_interval.map_or(Duration::from_secs(900), |i| i.0)
    }

    /// Checks the table; resolves `ca_file` against the config's directory.
    pub fn validate(&mut self, base: &Path) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "[[alerts]] name {name:?}: use letters, digits, '-', '_' or '.'"
            ));
        }
        match self.kind {
            AlertKind::Webhook | AlertKind::Slack | AlertKind::Teams => {
                if self.url.is_some() == self.url_env.is_some() {
                    return Err(format!(
                        "[[alerts]] {name}: give the webhook as url_env = \"VAR\" (the URL is a secret) or url, not both or neither"
                    ));
                }
                if let Some(u) = &self.url
                    && !(u.starts_with("https://") || u.starts_with("http://"))
                {
                    return Err(format!("[[alerts]] {name}: url must be an http(s) URL"));
                }
            }
            AlertKind::Email => {
                if self.smtp.is_none() || self.from.is_none() || self.to.is_empty() {
                    return Err(format!(
                        "[[alerts]] {name}: e-mail needs smtp = \"host:587\", from and to = [\"…\"]"
                    ));
                }
                if self.username.is_some() != self.password_env.is_some() {
                    return Err(format!(
                        "[[alerts]] {name}: give username and password_env together"
                    ));
                }
            }
        }
        if self.collector_failures == Some(0) {
            return Err(format!(
                "[[alerts]] {name}: collector_failures = 0 would alert on every run; use 1 or more"
            ));
        }
        self.ca_file = self.ca_file.as_ref().map(|p| clean_path(&base.join(p)));
        Ok(())
    }
}
