//! The `github_issues` and `gitlab_issues` collectors: issues with labels, state and their
//! timeline (GitHub) or notes (GitLab), sharing the clients of the CI collectors.
//!
//! Issues are listed by update time ascending after the cursor (`since` / `updated_after`);
//! one observation per issue version holds the canonical JSON of the issue and its history,
//! so each change of a ticket is a new entry and an unchanged one is not. Pull requests,
//! which GitHub lists among issues, are skipped.

use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::record::{endpoint, json_observation, parse_time, unchanged};
use super::{Common, github, gitlab};
use crate::http::{Auth, Http};
use crate::{
    Batch, CollectContext, CollectError, Collector, Cursor, ItemProblem, Observation, words,
};

/// `kind = "github_issues"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubIssuesConfig {
    /// `owner/name`.
    pub repo: String,
    /// REST API root (GitHub Enterprise: `https://HOST/api/v3`).
    #[serde(default = "github::default_api")]
    pub api_url: String,
    /// Only issues with all of these labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Fetch each changed issue's timeline (comments, label and state events).
    #[serde(default = "yes")]
    pub history: bool,
}

/// `kind = "gitlab_issues"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabIssuesConfig {
    /// Project id or path.
    pub project: String,
    /// GitLab root URL.
    #[serde(default = "gitlab::default_api")]
    pub api_url: String,
    /// Only issues with all of these labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Fetch each changed issue's notes (comments and system notes).
    #[serde(default = "yes")]
    pub history: bool,
}

fn yes() -> bool {
    true
}

/// Which forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forge {
    Github,
    Gitlab,
}

/// A running issues collector for either forge.
#[derive(Debug)]
pub struct IssuesCollector {
    name: String,
    forge: Forge,
    api: Url,
    host: String,
    scope: String,
    labels: Vec<String>,
    history: bool,
    http: Http,
}

impl IssuesCollector {
    /// A GitHub issues collector.
    pub fn github(
        name: &str,
        cfg: &GithubIssuesConfig,
        common: &Common,
    ) -> Result<Self, CollectError> {
        let (api, host) = github::repo_api(name, &cfg.repo, &cfg.api_url)?;
        Ok(IssuesCollector {
            name: name.to_owned(),
            forge: Forge::Github,
            api,
            host,
            scope: cfg.repo.clone(),
            labels: cfg.labels.clone(),
            history: cfg.history,
            http: common.http(
                name,
                Auth::Bearer,
                "`issues:read` (classic: `repo` for private repositories)",
                github::HEADERS,
            )?,
        })
    }

    /// A GitLab issues collector.
    pub fn gitlab(
        name: &str,
        cfg: &GitlabIssuesConfig,
        common: &Common,
    ) -> Result<Self, CollectError> {
        let (api, host) = gitlab::project_api(name, &cfg.project, &cfg.api_url)?;
        Ok(IssuesCollector {
            name: name.to_owned(),
            forge: Forge::Gitlab,
            api,
            host,
            scope: cfg.project.clone(),
            labels: cfg.labels.clone(),
            history: cfg.history,
            http: gitlab::client(name, common)?,
        })
    }

    async fn list(&self, since: Option<&str>) -> Result<Vec<Value>, CollectError> {
        let labels = self.labels.join(",");
        match self.forge {
            Forge::Github => {
                let mut q = vec![
                    ("state", "all"),
                    ("sort", "updated"),
                    ("direction", "asc"),
                    ("per_page", "100"),
                ];
                q.extend(since.map(|s| ("since", s)));
                q.extend(
                    Some(labels.as_str())
                        .filter(|l| !l.is_empty())
                        .map(|l| ("labels", l)),
                );
                self.http
                    .link_pages(endpoint(&self.api, "issues", &q), |v: Vec<Value>| v)
                    .await
            }
            Forge::Gitlab => {
                gitlab::all_pages(&self.http, |page| {
                    let p = page.to_string();
                    let mut q = vec![
                        ("scope", "all"),
                        ("state", "all"),
                        ("order_by", "updated_at"),
                        ("sort", "asc"),
                        ("per_page", "100"),
                        ("page", &p),
                    ];
                    q.extend(since.map(|s| ("updated_after", s)));
                    q.extend(
                        Some(labels.as_str())
                            .filter(|l| !l.is_empty())
                            .map(|l| ("labels", l)),
                    );
                    endpoint(&self.api, "issues", &q)
                })
                .await
            }
        }
    }

    async fn history(&self, number: u64) -> Result<Vec<Value>, CollectError> {
        match self.forge {
            Forge::Github => {
                self.http
                    .link_pages(
                        endpoint(
                            &self.api,
                            &format!("issues/{number}/timeline"),
                            &[("per_page", "100")],
                        ),
                        |v: Vec<Value>| v,
                    )
                    .await
            }
            Forge::Gitlab => {
                gitlab::all_pages(&self.http, |page| {
                    endpoint(
                        &self.api,
                        &format!("issues/{number}/notes"),
                        &[
                            ("sort", "asc"),
                            ("per_page", "100"),
                            ("page", &page.to_string()),
                        ],
                    )
                })
                .await
            }
        }
    }

    fn observation(
        &self,
        issue: &Value,
        history: Option<Vec<Value>>,
        uri: String,
        version: String,
    ) -> Observation {
        let number = self.number(issue).unwrap_or(0);
        let title = issue["title"].as_str().unwrap_or("");
        let labels: Vec<String> = issue["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str().or_else(|| l["name"].as_str()).map(str::to_owned))
            .collect();
        // GitHub issue types (`type.name`), GitLab's `issue_type` (`incident`, `test_case`).
        let kind = issue["type"]["name"]
            .as_str()
            .or_else(|| issue["issue_type"].as_str())
            .unwrap_or("");
        let record = serde_json::json!({"forge": match self.forge { Forge::Github => "github", Forge::Gitlab => "gitlab" }, "scope": self.scope, "issue": issue, "history": history});
        let mut o = json_observation(uri, "ticket", &record, version);
        o.title = Some(format!("#{number} {title}"));
        o.created_at = issue["created_at"].as_str().and_then(parse_time);
        o.updated_at = issue["updated_at"].as_str().and_then(parse_time);
        o.control_hints = labels
            .iter()
            .filter_map(|l| words::label_control(l))
            .collect();
        o.default_controls =
            words::ticket_controls(&format!("{kind} {} {title}", labels.join(" ")));
        o.labels = labels;
        o
    }

    fn number(&self, issue: &Value) -> Option<u64> {
        match self.forge {
            Forge::Github => issue["number"].as_u64(),
            Forge::Gitlab => issue["iid"].as_u64(),
        }
    }

    async fn scan(
        &self,
        cx: &CollectContext,
        cursor: Option<&Cursor>,
    ) -> Result<Batch, CollectError> {
        let since = cursor.filter(|_| !cx.full).map(|c| c.0.clone());
        let issues = self.list(since.as_deref()).await?;
        let mut batch = Batch::default();
        let mut newest = since.clone();
        for issue in &issues {
            if self.forge == Forge::Github && !issue["pull_request"].is_null() {
                continue;
            }
            let Some(number) = self.number(issue) else {
                return Err(CollectError::schema(format!(
                    "{}: an issue without a number in {}",
                    self.name, self.api
                )));
            };
            let updated = issue["updated_at"].as_str().unwrap_or("").to_owned();
            if newest.as_ref().is_none_or(|n| updated > *n) {
                newest = Some(updated.clone());
            }
            let uri = format!(
                "{}://{}/{}/issues/{number}",
                match self.forge {
                    Forge::Github => "github",
                    Forge::Gitlab => "gitlab",
                },
                self.host,
                self.scope
            );
            if unchanged(cx, &uri, &updated) {
                batch.unchanged += 1;
                continue;
            }
            let history = if self.history {
                match self.history(number).await {
                    Ok(h) => Some(h),
                    Err(e) if e.retry_after().is_some() => {
                        batch.failure = Some(e);
                        break;
                    }
                    Err(e) => {
                        batch.problems.push(ItemProblem {
                            item: uri,
                            message: e.to_string(),
                            failed: true,
                        });
                        continue;
                    }
                }
            } else {
                None
            };
            batch
                .observations
                .push(self.observation(issue, history, uri, updated));
        }
        if batch.failure.is_none() && batch.problems.is_empty() {
            batch.cursor = newest.map(Cursor);
        }
        batch.requests = self.http.requests();
        Ok(batch)
    }
}

#[async_trait::async_trait]
impl Collector for IssuesCollector {
    fn kind(&self) -> &'static str {
        match self.forge {
            Forge::Github => "github_issues",
            Forge::Gitlab => "gitlab_issues",
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn collect(
        &self,
        cx: &CollectContext,
        cursor: Option<&Cursor>,
    ) -> Result<Batch, CollectError> {
        self.scan(cx, cursor).await
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        let page = endpoint(&self.api, "issues", &[("per_page", "1")]);
        self.http.get(&page, None).await.map(drop)
    }
}
