//! The `github_issues` settings: one repository's issues, with their timelines.

use serde::Deserialize;

use crate::CollectError;
use crate::http::Auth;
use crate::sources::Common;
use crate::sources::issues::{Forge, ForgeConfig, Forged, IssuesCollector};

/// `kind = "github_issues"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubIssuesConfig {
    /// `owner/name`.
    pub repo: String,
    /// REST API root (GitHub Enterprise: `https://HOST/api/v3`).
    #[serde(default = "super::default_api")]
    pub api_url: String,
    /// Only issues with all of these labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Fetch each changed issue's timeline (comments, label and state events).
    #[serde(default = "crate::sources::yes")]
    pub history: bool,
}

impl ForgeConfig for GithubIssuesConfig {
    fn build(&self, name: &str, common: &Common) -> Result<Forged, CollectError> {
        let (api, host) = super::repo_api(name, &self.repo, &self.api_url)?;
        let http = common.http(
            name,
            Auth::Bearer,
            "`issues:read` (classic: `repo` for private repositories)",
            super::HEADERS,
        )?;
        Ok(Forged::new(
            Forge::Github,
            api,
            host,
            &self.repo,
            &self.labels,
            self.history,
            http,
        ))
    }
}

/// GitHub issues of one repository.
pub type GithubIssues = IssuesCollector<GithubIssuesConfig>;
