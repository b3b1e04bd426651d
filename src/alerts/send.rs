//! Delivering an alert message: generic JSON, Slack and Teams webhooks, and e-mail over
//! SMTP with STARTTLS (lettre on rustls). Webhook URLs and SMTP passwords are secrets: they
//! come from the environment when configured so, and never appear in logs or errors.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::{AlertConfig, AlertKind, Transition};

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A setting is missing or unusable.
    #[error("{0}")]
    Config(String),
    /// The receiver refused or could not be reached.
    #[error("{0}")]
    Delivery(String),
}

/// One message: the transitions since the last one.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// The ledger's origin.
    pub origin: String,
    /// When it was sent.
    pub sent_at: String,
    /// What fired and resolved.
    pub transitions: Vec<Transition>,
    /// The dashboard, when configured.
    pub dashboard: Option<String>,
}

impl Message {
    /// A message about `transitions`.
    pub fn new(origin: &str, transitions: &[Transition], dashboard: Option<&str>) -> Self {
        Message {
            origin: origin.to_owned(),
            sent_at: crate::ledger::now_rfc3339(),
            transitions: transitions.to_vec(),
            dashboard: dashboard.map(str::to_owned),
        }
    }

    /// `Evident <origin>: 2 firing, 1 resolved`.
    pub fn subject(&self) -> String {
        let firing = self
            .transitions
            .iter()
            .filter(|t| t.state == "firing")
            .count();
        let resolved = self.transitions.len() - firing;
        let mut parts = Vec::new();
        if firing > 0 {
            parts.push(format!("{firing} firing"));
        }
        if resolved > 0 {
            parts.push(format!("{resolved} resolved"));
        }
        if parts.is_empty() {
            parts.push("test message".into());
        }
        format!("Evident {}: {}", self.origin, parts.join(", "))
    }

    /// The body as text lines.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for t in &self.transitions {
            s.push_str(&format!(
                "{} {}\n",
                if t.state == "firing" {
                    "FIRING"
                } else {
                    "RESOLVED"
                },
                t.summary
            ));
        }
        if self.transitions.is_empty() {
            s.push_str("This is a test message from Evident: alerts reach this target.\n");
        }
        if let Some(d) = &self.dashboard {
            s.push_str(&format!("\nDashboard: {d}\n"));
        }
        s
    }
}

fn webhook_url(t: &AlertConfig) -> Result<String, SendError> {
    match (&t.url, &t.url_env) {
        (Some(u), _) => Ok(u.clone()),
        (None, Some(var)) => std::env::var(var).map_err(|_| {
            SendError::Config(format!(
                "alert {}: the environment variable {var} (url_env) is not set",
                t.name
            ))
        }),
        (None, None) => Err(SendError::Config(format!("alert {}: no url", t.name))),
    }
}

/// The payload for `kind`.
pub fn payload(kind: AlertKind, m: &Message) -> serde_json::Value {
    match kind {
        AlertKind::Slack => json!({ "text": format!("*{}*\n{}", m.subject(), m.text()) }),
        AlertKind::Teams => json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        { "type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": m.subject(), "wrap": true },
                        { "type": "TextBlock", "text": m.text(), "wrap": true }
                    ]
                }
            }]
        }),
        AlertKind::Webhook | AlertKind::Email => json!(m),
    }
}

/// Sends `m` to target `t`.
pub async fn send(t: &AlertConfig, m: &Message) -> Result<(), SendError> {
    match t.kind {
        AlertKind::Email => email(t, m).await,
        kind => {
            let url = webhook_url(t)?;
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut b = reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .redirect(reqwest::redirect::Policy::none());
            if let Some(ca) = &t.ca_file {
                let pem = std::fs::read(ca).map_err(|e| {
                    SendError::Config(format!(
                        "alert {}: reading ca_file {}: {e}",
                        t.name,
                        ca.display()
                    ))
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| SendError::Config(format!("alert {}: ca_file: {e}", t.name)))?;
                b = b.tls_certs_merge(certs);
            }
            let client = b
                .build()
                .map_err(|e| SendError::Config(format!("alert {}: {e}", t.name)))?;
            // The URL is a secret: errors name the target, never the address.
            let resp = client
                .post(&url)
                .json(&payload(kind, m))
                .send()
                .await
                .map_err(|e| {
                    SendError::Delivery(format!(
                        "alert {}: the webhook could not be reached ({})",
                        t.name,
                        if e.is_timeout() {
                            "timed out"
                        } else if e.is_connect() {
                            "connection failed"
                        } else {
                            "request failed"
                        }
                    ))
                })?;
            if !resp.status().is_success() {
                return Err(SendError::Delivery(format!(
                    "alert {}: the webhook answered {}",
                    t.name,
                    resp.status()
                )));
            }
            Ok(())
        }
    }
}

async fn email(t: &AlertConfig, m: &Message) -> Result<(), SendError> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let cfg = |m: String| SendError::Config(format!("alert {}: {m}", t.name));
    let smtp = t.smtp.as_deref().ok_or_else(|| cfg("no smtp".into()))?;
    let (host, port) = match smtp.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| cfg(format!("smtp {smtp:?}: the port is not a number")))?,
        ),
        None => (smtp, 587),
    };
    let from = t.from.as_deref().unwrap_or_default();
    let mut builder = lettre::Message::builder()
        .from(
            from.parse()
                .map_err(|e| cfg(format!("from {from:?}: {e}")))?,
        )
        .subject(m.subject())
        .header(ContentType::TEXT_PLAIN);
    for to in &t.to {
        builder = builder.to(to.parse().map_err(|e| cfg(format!("to {to:?}: {e}")))?);
    }
    let email = builder
        .body(m.text())
        .map_err(|e| cfg(format!("building the message: {e}")))?;
    let mut tls = TlsParameters::builder(host.to_owned());
    if let Some(ca) = &t.ca_file {
        let pem =
            std::fs::read(ca).map_err(|e| cfg(format!("reading ca_file {}: {e}", ca.display())))?;
        tls = tls.add_root_certificate(
            Certificate::from_pem(&pem).map_err(|e| cfg(format!("ca_file: {e}")))?,
        );
    }
    let tls = tls.build_rustls().map_err(|e| cfg(format!("TLS: {e}")))?;
    // STARTTLS is required: a server that does not offer it gets nothing, not plain text.
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(Tls::Required(tls))
        .timeout(Some(Duration::from_secs(20)));
    if let (Some(user), Some(var)) = (&t.username, &t.password_env) {
        let password = std::env::var(var).map_err(|_| {
            cfg(format!(
                "the environment variable {var} (password_env) is not set"
            ))
        })?;
        transport = transport.credentials(Credentials::new(user.clone(), password));
    }
    transport
        .build()
        .send(email)
        .await
        .map(|_| ())
        .map_err(|e| SendError::Delivery(format!("alert {}: SMTP {host}:{port}: {e}", t.name)))
}
