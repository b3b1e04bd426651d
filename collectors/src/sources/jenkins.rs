//! The `jenkins` collector: builds of chosen Jenkins jobs (folders too), with result,
//! duration, causes, artifacts and the test report summary when the job publishes one.
//!
//! One `/api/json?tree=…` request per job and 100 builds (`allBuilds{m,n}`), newest first,
//! stopping at the cursor's build number. The cursor stays below the oldest build still
//! running. Authentication is basic, with a user and an API token.

use std::collections::BTreeMap;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::Common;
use super::record::{api_root, endpoint, from_millis, json_observation, marker, segment};
use crate::driver::{Run, Source};
use crate::http::{Auth, Http};
use crate::{CollectContext, CollectError, Suggest};

/// Builds per request.
const PAGE: u64 = 100;
/// What the build listing asks for (Jenkins returns only what `tree` names).
const TREE: &str = "number,url,result,building,duration,timestamp,displayName,\
actions[_class,causes[shortDescription,userId],failCount,skipCount,totalCount],\
artifacts[fileName,relativePath]";

/// `kind = "jenkins"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JenkinsConfig {
    /// Jenkins root URL.
    pub url: String,
    /// Job paths; folders with `/` (`team/model-eval`).
    pub jobs: Vec<String>,
    /// The user the API token belongs to (basic auth); without it the token is sent as a
    /// bearer token.
    #[serde(default)]
    pub user: Option<String>,
}

/// A running Jenkins collector.
#[derive(Debug)]
pub struct JenkinsCollector {
    root: Url,
    host: String,
    jobs: Vec<String>,
    http: Http,
}

#[derive(Debug, Deserialize)]
struct JobInfo {
    #[serde(rename = "allBuilds", default)]
    all_builds: Vec<Build>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Cause {
    #[serde(rename = "shortDescription", default)]
    short_description: Option<String>,
    #[serde(rename = "userId", default)]
    user_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Action {
    #[serde(default)]
    causes: Vec<Cause>,
    #[serde(rename = "failCount", default)]
    fail_count: Option<u64>,
    #[serde(rename = "skipCount", default)]
    skip_count: Option<u64>,
    #[serde(rename = "totalCount", default)]
    total_count: Option<u64>,
}

#[derive(Debug, Deserialize, Serialize)]
struct BuildArtifact {
    #[serde(rename = "fileName")]
    file_name: String,
    #[serde(rename = "relativePath")]
    relative_path: String,
}

#[derive(Debug, Deserialize)]
struct Build {
    number: u64,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    building: bool,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(rename = "displayName", default)]
    display_name: Option<String>,
    // Jenkins puts `{}` or `null` for actions it has nothing to say about.
    #[serde(default)]
    actions: Vec<Option<Action>>,
    #[serde(default)]
    artifacts: Vec<BuildArtifact>,
}

#[derive(Debug, Serialize)]
struct BuildRecord<'a> {
    job: &'a str,
    number: u64,
    display_name: Option<&'a str>,
    result: Option<&'a str>,
    duration_ms: Option<u64>,
    timestamp_ms: Option<i64>,
    url: Option<&'a str>,
    causes: Vec<&'a Cause>,
    tests: Option<BTreeMap<&'static str, u64>>,
    artifacts: &'a [BuildArtifact],
}

impl JenkinsCollector {
    fn job_url(&self, job: &str) -> Url {
        let path: String = job
            .trim_matches('/')
            .split('/')
            .map(|p| format!("job/{}/", segment(p)))
            .collect();
        endpoint(&self.root, &path, &[])
    }

    /// Records the builds of `job` newer than build `after`; returns the job's next mark,
    /// held below the oldest build still running.
    async fn job(&self, run: &mut Run<'_>, job: &str, after: u64) -> Result<u64, CollectError> {
        let base = self.job_url(job);
        let mut start = 0u64;
        let mut newest_done = after;
        let mut oldest_running: Option<u64> = None;
        loop {
            let tree = format!("allBuilds[{TREE}]{{{start},{}}}", start + PAGE);
            let info: JobInfo = self
                .http
                .get_json(&endpoint(&base, "api/json", &[("tree", &tree)]))
                .await?;
            let n = info.all_builds.len() as u64;
            let fresh = info.all_builds.iter().take_while(|b| b.number > after);
            let mut seen = 0u64;
            for b in fresh {
                seen += 1;
                if b.building {
                    oldest_running = Some(oldest_running.map_or(b.number, |o| o.min(b.number)));
                } else {
                    newest_done = newest_done.max(b.number);
                    self.record(run, job, b);
                }
            }
            // Stop at the last run's mark, or at the end of the list.
            if seen < n || n < PAGE {
                break;
            }
            start += PAGE;
        }
        Ok(match oldest_running {
            Some(r) => newest_done.min(r.saturating_sub(1)).max(after),
            None => newest_done,
        })
    }

    /// Records one finished build (its listing entry holds everything).
    fn record(&self, run: &mut Run<'_>, job: &str, b: &Build) {
        let actions: Vec<&Action> = b.actions.iter().flatten().collect();
        let tests = actions.iter().find(|a| a.total_count.is_some()).map(|a| {
            BTreeMap::from([
                ("failed", a.fail_count.unwrap_or(0)),
                ("skipped", a.skip_count.unwrap_or(0)),
                ("total", a.total_count.unwrap_or(0)),
            ])
        });
        let record = BuildRecord {
            job,
            number: b.number,
            display_name: b.display_name.as_deref(),
            result: b.result.as_deref(),
            duration_ms: b.duration,
            timestamp_ms: b.timestamp,
            url: b.url.as_deref(),
            causes: actions.iter().flat_map(|a| &a.causes).collect(),
            tests,
            artifacts: &b.artifacts,
        };
        let uri = format!(
            "jenkins://{}/{}/builds/{}",
            self.host,
            job.trim_matches('/'),
            b.number
        );
        let version = marker(&record);
        if run.unchanged(&uri, &version) {
            return;
        }
        let mut o = json_observation(uri, "ci_run", &record, version);
        o.title = Some(format!(
            "{job} #{} ({})",
            b.number,
            b.result.as_deref().unwrap_or("unknown").to_lowercase()
        ));
        o.created_at = b.timestamp.and_then(from_millis);
        o.updated_at = b
            .timestamp
            .zip(b.duration)
            .and_then(|(t, d)| t.checked_add(i64::try_from(d).ok()?).and_then(from_millis));
        o.suggest = Suggest::CiRun(job.to_owned());
        run.push(o);
    }
}

#[async_trait::async_trait]
impl Source for JenkinsCollector {
    type Config = JenkinsConfig;

    fn new(name: &str, cfg: &JenkinsConfig, common: &Common) -> Result<Self, CollectError> {
        if cfg.jobs.is_empty() || cfg.jobs.iter().any(|j| j.trim_matches('/').is_empty()) {
            return Err(CollectError::Config(format!(
                "collector `{name}`: jobs must list job paths such as \"team/model-eval\""
            )));
        }
        let (root, host) = api_root(name, "url", &cfg.url, "")?;
        let user = cfg.user.clone();
        let auth = move |t| match user {
            Some(user) => Auth::Basic { user, token: t },
            None => Auth::Bearer(t),
        };
        Ok(JenkinsCollector {
            root,
            host,
            jobs: cfg.jobs.clone(),
            http: common.http(name, auth, "the Overall/Read and Job/Read permissions", &[])?,
        })
    }

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        let mut marks: BTreeMap<String, u64> = run.cursor_json();
        for job in &self.jobs {
            let after = marks.get(job).copied().unwrap_or(0);
            let mark = self.job(run, job, after).await?;
            marks.insert(job.clone(), mark);
        }
        run.set_cursor(
            serde_json::to_string(&marks).map_err(|e| CollectError::Task(e.to_string()))?,
        );
        Ok(())
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        for job in &self.jobs {
            let _: serde_json::Value = self
                .http
                .get_json(&endpoint(
                    &self.job_url(job),
                    "api/json",
                    &[("tree", "name")],
                ))
                .await?;
        }
        Ok(())
    }

    fn http(&self) -> Option<&Http> {
        Some(&self.http)
    }
}
