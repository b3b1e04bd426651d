//! Collector errors, split into retryable and fatal.

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
        error: std::io::Error,
    },
    /// A background task died.
    #[error("collector task failed: {0}")]
    Task(String),
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
        }
    }
}
