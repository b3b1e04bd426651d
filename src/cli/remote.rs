//! Talking to a running Evident server: the HTTP client and token of `push` and
//! `status --server`.

use std::path::PathBuf;
use std::time::Duration;

use super::Exit;

/// Options every command that talks to a server takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's URL (`https://evident.example.org`).
    #[arg(long, value_name = "URL", env = "EVIDENT_SERVER")]
    pub server: Option<String>,
    /// The environment variable that holds the API token (never pass it on the command line).
    #[arg(long, value_name = "VAR", default_value = "EVIDENT_TOKEN")]
    pub token_env: String,
    /// A PEM CA certificate to trust for the server (a private CA; a self-signed server
    /// certificate only if it is not itself marked as a CA).
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
}

impl ServerArgs {
    /// The token from the environment; `scope` is what the command needs, for the hint.
    pub fn token(&self, scope: &str) -> anyhow::Result<String> {
        let t = std::env::var(&self.token_env).map_err(|_| Exit {
            code: 2,
            message: format!(
                "no API token: set the environment variable {} (or name another with \
                 --token-env); create one with `evident token create NAME --scope {scope}`",
                self.token_env
            ),
        })?;
        Ok(t.trim().to_owned())
    }

    /// The server URL without a trailing slash, checked.
    pub fn base(&self) -> anyhow::Result<String> {
        let s = self.server.as_deref().ok_or_else(|| Exit {
            code: 2,
            message: "no server: pass --server URL or set EVIDENT_SERVER".into(),
        })?;
        let url = reqwest::Url::parse(s).map_err(|e| Exit {
            code: 2,
            message: format!(
                "--server {s:?} is not a URL ({e}); write e.g. https://evident.example.org"
            ),
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Exit {
                code: 2,
                message: "--server must not carry a user name or password; the token (--token-env) is the credential".into(),
            }
            .into());
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Exit {
                code: 2,
                message: format!("--server {s:?}: use an http:// or https:// URL"),
            }
            .into());
        }
        Ok(s.trim_end_matches('/').to_owned())
    }

    /// An HTTP client trusting `--cacert` besides the system's roots.
    pub fn client(&self, timeout: Duration) -> anyhow::Result<reqwest::Client> {
        evident::agent::server_client(timeout, self.cacert.as_deref())
            .map_err(|e| anyhow::anyhow!("--cacert: {e}"))
    }
}

/// A request that got no answer, its causes on one line (as text: a connection the server
/// closed is not this process's closed stdout).
pub fn unreachable(base: &str, e: &reqwest::Error) -> anyhow::Error {
    Exit {
        code: 1,
        message: format!("cannot reach {base}: {}", evident::agent::describe(e)),
    }
    .into()
}

/// Turns a non-success answer into an error naming the server's own message.
pub async fn check(resp: reqwest::Response, what: &str) -> anyhow::Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let text = resp.text().await.unwrap_or_default();
    let message = evident::agent::server_message(&text);
    let code = if matches!(status.as_u16(), 401 | 403) {
        2
    } else {
        1
    };
    Err(Exit {
        code,
        message: format!("{what}: the server answered {status}: {message}"),
    }
    .into())
}
