//! Collector errors, split into retryable and fatal.

use std::time::Duration;

/// Why a collector run failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The collector's configuration cannot work; retrying will not help.
    #[error("{0}")]
    Config(String),
    /// A local I/O operation failed.
    #[error("{context}: {error}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The underlying error.
        #[source]
        error: std::io::Error,
    },
    /// A background task died.
    #[error("collector task failed: {0}")]
    Task(String),
    /// The source system answered with an error, an unusable body, or not at all. The
    /// message names the request and, for credential problems, the setting to fix; it never
    /// holds a secret.
    #[error("{message}")]
    Remote {
        /// What happened and what to do.
        message: String,
        /// Whether trying again later may succeed (network, 5xx, 429).
        retryable: bool,
        /// When the source said it will accept requests again (rate limits).
        retry_after: Option<Duration>,
    },
}

impl CollectError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            CollectError::Config(_) => false,
            CollectError::Io { error, .. } => !matches!(
                error.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ),
            CollectError::Task(_) => true,
            CollectError::Remote { retryable, .. } => *retryable,
        }
    }

    /// How long the source asked us to wait before the next request, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CollectError::Remote { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A fatal error about the source's answer (unexpected shape, missing fields).
    pub fn schema(message: impl Into<String>) -> Self {
        CollectError::Remote {
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }
}
