//! The `github_actions` collector: workflow runs of one repository, with their jobs, steps
//! and artifacts (digests when GitHub has them).
//!
//! Listing pages follow the `Link` header and are asked with `If-None-Match`: the cursor
//! keeps each page's ETag, and a `304` costs no quota (GitHub does not count it), so an
//! unchanged repository costs one free request per page. Runs still in progress are left
//! for a later run; a finished run whose change marker (`updated_at`, attempt, status) is
//! known is not fetched again. When the quota runs out (`X-RateLimit-Remaining: 0`), the
//! run stops, keeps what it found, and the daemon resumes after the reset.

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::{HEADERS, repo_api};
use crate::driver::{Run, Source};
use crate::http::{Auth, Dialect, Http};
use crate::sources::Common;
use crate::sources::record::{endpoint, json_observation, marker, parse_time, segment};
use crate::{CollectContext, CollectError, Suggest};

/// Runs, jobs and artifacts per page (GitHub's maximum).
const PER_PAGE: &str = "100";
/// `kind = "github_actions"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubActionsConfig {
    /// `owner/name`.
    pub repo: String,
    /// Only runs of these workflows (file names such as `eval.yml`, or ids); default: all.
    #[serde(default)]
    pub workflows: Vec<String>,
    /// REST API root; GitHub Enterprise Server uses `https://HOST/api/v3`.
    #[serde(default = "super::default_api")]
    pub api_url: String,
    /// Only runs created on or after this date (`YYYY-MM-DD`).
    #[serde(default)]
    pub since: Option<chrono::NaiveDate>,
    /// Fetch each run's jobs and steps (one request per run).
    #[serde(default = "crate::sources::yes")]
    pub jobs: bool,
    /// Fetch each run's artifact list (one request per run).
    #[serde(default = "crate::sources::yes")]
    pub artifacts: bool,
}

/// A running GitHub Actions collector.
#[derive(Debug)]
pub struct GithubActionsCollector {
    repo: String,
    api: Url,
    host: String,
    cfg: GithubActionsConfig,
    http: Http,
}

/// The cursor: each listing page's URL and ETag.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PageCursor {
    /// Each page read: its URL, ETag and the next page it named. A `304` goes on to the
    /// next page the same page named last time, never to another list's page. (Cursors
    /// of the older `[url, etag]` shape do not parse: the next run lists everything once.)
    pages: Vec<PageMark>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageMark {
    url: String,
    etag: String,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RunList {
    #[serde(default)]
    workflow_runs: Vec<WorkflowRun>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Login {
    login: String,
}

#[derive(Debug, Deserialize, Serialize)]
struct WorkflowRun {
    id: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    display_title: Option<String>,
    #[serde(default)]
    run_number: u64,
    #[serde(default = "one")]
    run_attempt: u64,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    head_sha: Option<String>,
    #[serde(default)]
    head_branch: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    workflow_id: Option<u64>,
    #[serde(default)]
    actor: Option<Login>,
    #[serde(default)]
    triggering_actor: Option<Login>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    run_started_at: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Deserialize)]
struct JobList {
    #[serde(default)]
    jobs: Vec<Job>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Job {
    id: u64,
    name: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    completed_at: Option<String>,
    #[serde(default)]
    runner_name: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    steps: Vec<JobStep>,
}

#[derive(Debug, Deserialize, Serialize)]
struct JobStep {
    number: u64,
    name: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    completed_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ArtifactList {
    #[serde(default)]
    artifacts: Vec<Artifact>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Artifact {
    id: u64,
    name: String,
    #[serde(default)]
    size_in_bytes: u64,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    expired: bool,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
}

#[derive(Debug, Serialize)]
struct RunRecord<'a> {
    repo: &'a str,
    run: &'a WorkflowRun,
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs: Option<Vec<Job>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifacts: Option<Vec<Artifact>>,
}

impl GithubActionsCollector {
    fn first_pages(&self) -> Vec<Url> {
        let mut q: Vec<(&str, String)> = vec![("per_page", PER_PAGE.into())];
        if let Some(d) = self.cfg.since {
            q.push(("created", format!(">={d}")));
        }
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if self.cfg.workflows.is_empty() {
            vec![endpoint(&self.api, "runs", &q)]
        } else {
            self.cfg
                .workflows
                .iter()
                .map(|w| endpoint(&self.api, &format!("workflows/{}/runs", segment(w)), &q))
                .collect()
        }
    }

    /// Every item of the list at `path` under the Actions API, 100 a page.
    async fn all<P: serde::de::DeserializeOwned, T>(
        &self,
        path: &str,
        items: impl Fn(P) -> Vec<T>,
    ) -> Result<Vec<T>, CollectError> {
        let first = endpoint(&self.api, path, &[("per_page", PER_PAGE)]);
        self.http.pages(first, Dialect::Link).all(items).await
    }

    async fn details(
        &self,
        run: &WorkflowRun,
    ) -> Result<(Option<Vec<Job>>, Option<Vec<Artifact>>), CollectError> {
        let jobs = if self.cfg.jobs {
            let path = format!("runs/{}/attempts/{}/jobs", run.id, run.run_attempt);
            Some(self.all(&path, |l: JobList| l.jobs).await?)
        } else {
            None
        };
        let artifacts = if self.cfg.artifacts {
            let path = format!("runs/{}/artifacts", run.id);
            Some(self.all(&path, |l: ArtifactList| l.artifacts).await?)
        } else {
            None
        };
        Ok((jobs, artifacts))
    }

    /// Records one finished run with its jobs and artifacts.
    async fn record(&self, run: &mut Run<'_>, wr: &WorkflowRun) -> Result<(), CollectError> {
        let uri = format!(
            "github://{}/{}/actions/runs/{}/attempts/{}",
            self.host, self.repo, wr.id, wr.run_attempt
        );
        let version = marker(&(&wr.updated_at, wr.run_attempt, &wr.status, &wr.conclusion));
        if run.unchanged(&uri, &version) {
            return Ok(());
        }
        let Some((jobs, artifacts)) = run.item(&uri, self.details(wr).await)? else {
            return Ok(());
        };
        let record = RunRecord {
            repo: &self.repo,
            run: wr,
            jobs,
            artifacts,
        };
        let mut o = json_observation(uri, "ci_run", &record, version);
        let workflow = wr.name.as_deref().unwrap_or("workflow");
        o.title = Some(format!(
            "{workflow} #{} attempt {} ({})",
            wr.run_number,
            wr.run_attempt,
            wr.conclusion.as_deref().unwrap_or("unknown")
        ));
        o.created_at = wr.created_at.as_deref().and_then(parse_time);
        o.updated_at = wr.updated_at.as_deref().and_then(parse_time);
        o.labels = wr.event.iter().map(|e| format!("event:{e}")).collect();
        o.suggest = Suggest::CiRun(workflow.to_owned());
        run.push(o);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Source for GithubActionsCollector {
    type Config = GithubActionsConfig;

    fn new(name: &str, cfg: &GithubActionsConfig, common: &Common) -> Result<Self, CollectError> {
        let (repo_api, host) = repo_api(name, &cfg.repo, &cfg.api_url)?;
        let api = endpoint(&repo_api, "actions/", &[]);
        Ok(GithubActionsCollector {
            repo: cfg.repo.clone(),
            api,
            host,
            cfg: cfg.clone(),
            http: common.http(
                name,
                Auth::Bearer,
                "`actions:read` (fine-grained: Actions read-only)",
                HEADERS,
            )?,
        })
    }

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        let old: PageCursor = run.cursor_json();
        let mark_of = |u: &Url| old.pages.iter().find(|m| m.url == u.as_str());
        let mut pages = PageCursor::default();
        let mut pending = 0u64;
        let mut visited = std::collections::HashSet::new();
        for first in self.first_pages() {
            let mut next = Some(first);
            while let Some(url) = next.take() {
                if !visited.insert(url.to_string()) {
                    return Err(CollectError::schema(format!(
                        "GET {url}: the listing pointed back to a page it already sent; stopping rather than looping"
                    )));
                }
                let known = mark_of(&url);
                let page = self.http.get(&url, known.map(|m| m.etag.as_str())).await?;
                if page.not_modified() {
                    // Nothing on this page changed; carry on where it pointed last time.
                    if let Some(m) = known {
                        pages.pages.push(m.clone());
                        next = m.next.as_deref().and_then(|u| Url::parse(u).ok());
                    }
                    run.count_unchanged();
                    continue;
                }
                let list: RunList = page.json()?;
                next = page.next_link()?;
                if let Some(e) = page.etag() {
                    pages.pages.push(PageMark {
                        url: url.to_string(),
                        etag: e.to_owned(),
                        next: next.as_ref().map(Url::to_string),
                    });
                }
                for wr in &list.workflow_runs {
                    if wr.status.as_deref() == Some("completed") {
                        self.record(run, wr).await?;
                    } else {
                        pending += 1;
                    }
                }
            }
        }
        if pending > 0 {
            tracing::debug!(collector = %run.name(), pending, "runs still in progress are left for a later run");
        }
        run.set_cursor(
            serde_json::to_string(&pages).map_err(|e| CollectError::Task(e.to_string()))?,
        );
        Ok(())
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        let _: RunList = self
            .http
            .get_json(&endpoint(&self.api, "runs", &[("per_page", "1")]))
            .await?;
        Ok(())
    }

    fn http(&self) -> Option<&Http> {
        Some(&self.http)
    }
}
