//! The `gitlab_ci` collector: pipelines of one GitLab project, with their jobs.
//!
//! Pipelines are listed by `updated_at` ascending after the cursor (`updated_after`), 100 a
//! page, following `X-Next-Page`. Unfinished pipelines are left for later (their
//! `updated_at` moves when they finish, so they come up again). `PRIVATE-TOKEN` carries the
//! token.

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::{client, project_api};
use crate::driver::{Run, Source};
use crate::http::{Dialect, Http};
use crate::sources::Common;
use crate::sources::record::{endpoint, json_observation, marker, parse_time};
use crate::{CollectContext, CollectError, Suggest};

const PER_PAGE: &str = "100";
/// Pipeline states that will not change any more.
const FINISHED: [&str; 4] = ["success", "failed", "canceled", "skipped"];

/// `kind = "gitlab_ci"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabCiConfig {
    /// Project id (`42`) or path (`group/sub/project`).
    pub project: String,
    /// GitLab root URL; self-managed instances use their own.
    #[serde(default = "super::default_api")]
    pub api_url: String,
    /// Fetch each pipeline's jobs (one request per pipeline and 100 jobs).
    #[serde(default = "crate::sources::yes")]
    pub jobs: bool,
}

/// A running GitLab CI collector.
#[derive(Debug)]
pub struct GitlabCiCollector {
    project: String,
    api: Url,
    host: String,
    jobs: bool,
    http: Http,
}

#[derive(Debug, Deserialize, Serialize)]
struct Pipeline {
    id: u64,
    #[serde(default)]
    iid: Option<u64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    sha: Option<String>,
    #[serde(rename = "ref", default)]
    git_ref: Option<String>,
    status: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    web_url: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
struct JobUser {
    username: String,
}

#[derive(Debug, Deserialize, Serialize)]
struct JobArtifact {
    #[serde(default)]
    file_type: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    size: Option<u64>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Job {
    id: u64,
    name: String,
    #[serde(default)]
    stage: Option<String>,
    status: String,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    finished_at: Option<String>,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    user: Option<JobUser>,
    #[serde(default)]
    artifacts: Vec<JobArtifact>,
}

#[derive(Debug, Serialize)]
struct PipelineRecord<'a> {
    project: &'a str,
    pipeline: &'a Pipeline,
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs: Option<Vec<Job>>,
}

impl GitlabCiCollector {
    /// Records one finished pipeline with its jobs; returns whether it was recorded.
    async fn record(&self, run: &mut Run<'_>, p: &Pipeline) -> Result<bool, CollectError> {
        let uri = format!("gitlab://{}/{}/pipelines/{}", self.host, self.project, p.id);
        let version = marker(&(&p.updated_at, &p.status));
        if run.unchanged(&uri, &version) {
            return Ok(false);
        }
        let jobs = if self.jobs {
            let first = endpoint(
                &self.api,
                &format!("pipelines/{}/jobs", p.id),
                &[("per_page", PER_PAGE)],
            );
            let jobs = self
                .http
                .pages(first, Dialect::PageHeader)
                .all(|j: Vec<Job>| j);
            let Some(jobs) = run.item(&uri, jobs.await)? else {
                return Ok(false);
            };
            Some(jobs)
        } else {
            None
        };
        let label = p
            .name
            .clone()
            .or_else(|| p.git_ref.clone())
            .unwrap_or_else(|| "pipeline".into());
        let job_names: String = jobs
            .iter()
            .flatten()
            .map(|j| format!(" {}", j.name))
            .collect();
        let record = PipelineRecord {
            project: &self.project,
            pipeline: p,
            jobs,
        };
        let mut o = json_observation(uri, "ci_run", &record, version);
        o.title = Some(format!("{label} pipeline #{} ({})", p.id, p.status));
        o.created_at = p.created_at.as_deref().and_then(parse_time);
        o.updated_at = p.updated_at.as_deref().and_then(parse_time);
        o.labels = p.source.iter().map(|s| format!("source:{s}")).collect();
        // The pipeline's own name, or its jobs' names, tell what it does.
        o.suggest = Suggest::CiRun(format!("{label}{job_names}"));
        run.push(o);
        Ok(true)
    }
}

#[async_trait::async_trait]
impl Source for GitlabCiCollector {
    type Config = GitlabCiConfig;

    fn new(name: &str, cfg: &GitlabCiConfig, common: &Common) -> Result<Self, CollectError> {
        let (api, host) = project_api(name, &cfg.project, &cfg.api_url)?;
        Ok(GitlabCiCollector {
            project: cfg.project.clone(),
            api,
            host,
            jobs: cfg.jobs,
            http: client(name, common)?,
        })
    }

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        let after = run.cursor().map(str::to_owned);
        let mut newest = after.clone();
        let mut q = vec![
            ("per_page", PER_PAGE),
            ("order_by", "updated_at"),
            ("sort", "asc"),
        ];
        q.extend(after.as_deref().map(|a| ("updated_after", a)));
        let mut pages = self
            .http
            .pages(endpoint(&self.api, "pipelines", &q), Dialect::PageHeader);
        while let Some(list) = pages.next::<Vec<Pipeline>>().await? {
            for p in &list {
                if FINISHED.contains(&p.status.as_str())
                    && self.record(run, p).await?
                    && p.updated_at
                        .as_ref()
                        .is_some_and(|u| newest.as_ref().is_none_or(|n| u > n))
                {
                    newest = p.updated_at.clone();
                }
            }
        }
        if let Some(n) = newest {
            run.set_cursor(n);
        }
        Ok(())
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        let _: serde_json::Value = self
            .http
            .get_json(&endpoint(&self.api, "pipelines", &[("per_page", "1")]))
            .await?;
        Ok(())
    }

    fn http(&self) -> Option<&Http> {
        Some(&self.http)
    }
}
