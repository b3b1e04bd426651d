//! The `gitlab_issues` settings: one project's issues, with their notes.

use serde::Deserialize;

use crate::CollectError;
use crate::sources::Common;
use crate::sources::issues::{Forge, ForgeConfig, Forged, IssuesCollector};

/// `kind = "gitlab_issues"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabIssuesConfig {
    /// Project id or path.
    pub project: String,
    /// GitLab root URL.
    #[serde(default = "super::default_api")]
    pub api_url: String,
    /// Only issues with all of these labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Fetch each changed issue's notes (comments and system notes).
    #[serde(default = "crate::sources::yes")]
    pub history: bool,
}

impl ForgeConfig for GitlabIssuesConfig {
    fn build(&self, name: &str, common: &Common) -> Result<Forged, CollectError> {
        let (api, host) = super::project_api(name, &self.project, &self.api_url)?;
        let http = super::client(name, common)?;
        Ok(Forged::new(
            Forge::Gitlab,
            api,
            host,
            &self.project,
            &self.labels,
            self.history,
            http,
        ))
    }
}

/// GitLab issues of one project.
pub type GitlabIssues = IssuesCollector<GitlabIssuesConfig>;
