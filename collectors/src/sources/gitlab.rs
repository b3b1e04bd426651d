//! The `gitlab_ci` collector: pipelines of one GitLab project, with their jobs.
//!
//! Pipelines are listed by `updated_at` ascending after the cursor (`updated_after`), 100 a
//! page, following `X-Next-Page`. Unfinished pipelines are left for later (their
//! `updated_at` moves when they finish, so they come up again). `PRIVATE-TOKEN` carries the
//! token.

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::record::{api_root, endpoint, json_observation, marker, parse_time, segment, unchanged};
use super::{Common, ci};
use crate::http::{Auth, Http};
use crate::{Batch, CollectContext, CollectError, Collector, Cursor, ItemProblem};

const PER_PAGE: &str = "100";
/// Pipeline states that will not change any more.
const FINISHED: [&str; 4] = ["success", "failed", "canceled", "skipped"];

/// `<api>/api/v4/projects/<id or path>/` and the host, for every GitLab collector.
pub(crate) fn project_api(
    name: &str,
    project: &str,
    api_url: &str,
) -> Result<(Url, String), CollectError> {
    if project.trim().is_empty() {
        return Err(CollectError::Config(format!(
            "collector `{name}`: project must be an id or a path such as \"group/project\""
        )));
    }
    let (root, host) = api_root(name, "api_url", api_url, "api/v4/")?;
    Ok((
        endpoint(&root, &format!("projects/{}/", segment(project)), &[]),
        host,
    ))
}

/// The GitLab client: the token goes in `PRIVATE-TOKEN`.
pub(crate) fn client(name: &str, common: &Common) -> Result<Http, CollectError> {
    common.http(
        name,
        |t| Auth::Header("private-token", t),
        "the `read_api` scope (Reporter role)",
        &[],
    )
}

/// Every page of a GitLab list (`X-Next-Page`); `page_url` builds page `n`.
pub(crate) async fn all_pages<T: serde::de::DeserializeOwned>(
    http: &Http,
    page_url: impl Fn(u64) -> Url,
) -> Result<Vec<T>, CollectError> {
    let mut out = Vec::new();
    let mut page = 1u64;
    loop {
        let f = http.get(&page_url(page), None).await?;
        out.extend(f.json::<Vec<T>>()?);
        match f.next_page_number() {
            Some(n) if n > page => page = n,
            _ => return Ok(out),
        }
    }
}

/// `kind = "gitlab_ci"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabCiConfig {
    /// Project id (`42`) or path (`group/sub/project`).
    pub project: String,
    /// GitLab root URL; self-managed instances use their own.
    #[serde(default = "default_api")]
    pub api_url: String,
    /// Fetch each pipeline's jobs (one request per pipeline and 100 jobs).
    #[serde(default = "yes")]
    pub jobs: bool,
}

pub(crate) fn default_api() -> String {
    "https://gitlab.com".into()
}

fn yes() -> bool {
    true
}

/// A running GitLab CI collector.
#[derive(Debug)]
pub struct GitlabCiCollector {
    name: String,
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
    /// Builds the collector from its config.
    pub fn new(name: &str, cfg: &GitlabCiConfig, common: &Common) -> Result<Self, CollectError> {
        let (api, host) = project_api(name, &cfg.project, &cfg.api_url)?;
        Ok(GitlabCiCollector {
            name: name.to_owned(),
            project: cfg.project.clone(),
            api,
            host,
            jobs: cfg.jobs,
            http: client(name, common)?,
        })
    }

    async fn jobs(&self, pipeline: u64) -> Result<Vec<Job>, CollectError> {
        all_pages(&self.http, |page| {
            endpoint(
                &self.api,
                &format!("pipelines/{pipeline}/jobs"),
                &[("per_page", PER_PAGE), ("page", &page.to_string())],
            )
        })
        .await
    }

    async fn scan(
        &self,
        cx: &CollectContext,
        cursor: Option<&Cursor>,
    ) -> Result<Batch, CollectError> {
        let after = cursor.filter(|_| !cx.full).map(|c| c.0.clone());
        let mut batch = Batch::default();
        let mut newest = after.clone();
        let mut page = 1u64;
        'pages: loop {
            let mut q: Vec<(&str, String)> = vec![
                ("per_page", PER_PAGE.into()),
                ("order_by", "updated_at".into()),
                ("sort", "asc".into()),
                ("page", page.to_string()),
            ];
            if let Some(a) = &after {
                q.push(("updated_after", a.clone()));
            }
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let fetched = match self
                .http
                .get(&endpoint(&self.api, "pipelines", &q), None)
                .await
            {
                Ok(f) => f,
                Err(e) => {
                    batch.failure = Some(e);
                    break;
                }
            };
            let list: Vec<Pipeline> = match fetched.json() {
                Ok(l) => l,
                Err(e) => {
                    batch.failure = Some(e);
                    break;
                }
            };
            for p in &list {
                if !FINISHED.contains(&p.status.as_str()) {
                    continue;
                }
                let uri = format!("gitlab://{}/{}/pipelines/{}", self.host, self.project, p.id);
                let version = marker(&(&p.updated_at, &p.status));
                if unchanged(cx, &uri, &version) {
                    batch.unchanged += 1;
                    continue;
                }
                let jobs = if self.jobs {
                    match self.jobs(p.id).await {
                        Ok(j) => Some(j),
                        Err(e) if e.retry_after().is_some() => {
                            batch.failure = Some(e);
                            break 'pages;
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
                if p.updated_at
                    .as_ref()
                    .is_some_and(|u| newest.as_ref().is_none_or(|n| u > n))
                {
                    newest = p.updated_at.clone();
                }
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
                o.default_controls = ci::default_controls(&format!("{label}{job_names}"));
                batch.observations.push(o);
            }
            match fetched.next_page_number() {
                Some(n) if n > page => page = n,
                _ => break,
            }
        }
        if batch.failure.is_none() && batch.problems.is_empty() {
            batch.cursor = newest.map(Cursor);
        }
        batch.requests = self.http.requests();
        Ok(batch)
    }
}

#[async_trait::async_trait]
impl Collector for GitlabCiCollector {
    fn kind(&self) -> &'static str {
        "gitlab_ci"
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
        let _: serde_json::Value = self
            .http
            .get_json(&endpoint(&self.api, "pipelines", &[("per_page", "1")]))
            .await?;
        Ok(())
    }
}
