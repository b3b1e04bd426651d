//! The `buildbot` collector: finished builds of a Buildbot master, with their steps.
//!
//! Builds are listed in `buildid` order after the cursor (`buildid__gt`), `limit` at a time.
//! The cursor stops below the oldest build still running, so a long build that finishes
//! after younger ones is not skipped; builds listed again are skipped by their change
//! marker without fetching their steps. Results are Buildbot's codes (0 success,
//! 2 failure…), recorded with their word; times are epoch seconds.

use std::collections::{BTreeSet, HashMap};

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::Common;
use super::record::{api_root, endpoint, from_secs, json_observation, marker, segment};
use crate::driver::{Run, Source};
use crate::http::{Auth, Http};
use crate::{CollectContext, CollectError, Suggest};

/// Builds per listing request.
const PAGE: usize = 500;

/// `kind = "buildbot"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildbotConfig {
    /// The master's web URL, e.g. `http://127.0.0.1:8010/`.
    pub url: String,
    /// Only builds of these builders (default: all).
    #[serde(default)]
    pub builders: Vec<String>,
}

/// A running Buildbot collector.
#[derive(Debug)]
pub struct BuildbotCollector {
    api: Url,
    host: String,
    builders: BTreeSet<String>,
    http: Http,
}

#[derive(Debug, Deserialize)]
struct Builders {
    #[serde(default)]
    builders: Vec<Builder>,
}

#[derive(Debug, Deserialize)]
struct Builder {
    builderid: i64,
    name: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Builds {
    #[serde(default)]
    builds: Vec<Build>,
}

#[derive(Debug, Deserialize)]
struct Build {
    buildid: i64,
    builderid: i64,
    number: i64,
    #[serde(default)]
    results: Option<i64>,
    #[serde(default)]
    complete: bool,
    #[serde(default)]
    started_at: Option<i64>,
    #[serde(default)]
    complete_at: Option<i64>,
    #[serde(default)]
    state_string: Option<String>,
    #[serde(default)]
    workerid: Option<i64>,
    #[serde(default)]
    buildrequestid: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Steps {
    #[serde(default)]
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Step {
    number: i64,
    name: String,
    #[serde(default)]
    results: Option<i64>,
    #[serde(default)]
    started_at: Option<i64>,
    #[serde(default)]
    complete_at: Option<i64>,
    #[serde(default)]
    state_string: Option<String>,
    #[serde(default)]
    hidden: bool,
}

#[derive(Debug, Serialize)]
struct BuildRecord<'a> {
    builder: &'a str,
    builder_tags: &'a [String],
    buildid: i64,
    number: i64,
    result: &'static str,
    results: Option<i64>,
    state: Option<&'a str>,
    started_at: Option<i64>,
    complete_at: Option<i64>,
    workerid: Option<i64>,
    buildrequestid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<Vec<Step>>,
}

impl BuildbotCollector {
    fn endpoint(&self, path: &str, query: &[(&str, &str)]) -> Url {
        endpoint(&self.api, path, query)
    }

    /// Records one finished build with its steps; `Ok(false)` when fetching the steps
    /// failed (a problem on the build).
    async fn record(
        &self,
        run: &mut Run<'_>,
        builder: &Builder,
        b: &Build,
    ) -> Result<bool, CollectError> {
        let mut record = BuildRecord {
            builder: &builder.name,
            builder_tags: &builder.tags,
            buildid: b.buildid,
            number: b.number,
            result: buildbot_result(b.results),
            results: b.results,
            state: b.state_string.as_deref(),
            started_at: b.started_at,
            complete_at: b.complete_at,
            workerid: b.workerid,
            buildrequestid: b.buildrequestid,
            steps: None,
        };
        let uri = format!(
            "buildbot://{}/builders/{}/builds/{}",
            self.host,
            segment(&builder.name),
            b.number
        );
        let version = marker(&record);
        if run.unchanged(&uri, &version) {
            return Ok(true);
        }
        let steps = self
            .http
            .get_json::<Steps>(&self.endpoint(&format!("builds/{}/steps", b.buildid), &[]))
            .await;
        let Some(steps) = run.item(&uri, steps)? else {
            return Ok(false);
        };
        record.steps = Some(steps.steps);
        let mut o = json_observation(uri, "ci_run", &record, version);
        o.title = Some(format!(
            "{} #{} ({})",
            builder.name, b.number, record.result
        ));
        o.created_at = b.started_at.and_then(from_secs);
        o.updated_at = b.complete_at.and_then(from_secs);
        o.labels = builder.tags.clone();
        o.suggest = Suggest::CiRun(builder.name.clone());
        run.push(o);
        Ok(true)
    }
}

#[async_trait::async_trait]
impl Source for BuildbotCollector {
    type Config = BuildbotConfig;

    fn new(name: &str, cfg: &BuildbotConfig, common: &Common) -> Result<Self, CollectError> {
        let (api, host) = api_root(name, "url", &cfg.url, "api/v2/")?;
        Ok(BuildbotCollector {
            host,
            api,
            builders: cfg.builders.iter().cloned().collect(),
            http: common.http(name, Auth::Bearer, "read access to the web API", &[])?,
        })
    }

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        let after: i64 = run
            .cursor()
            .and_then(|c| c.strip_prefix("buildid:")?.parse().ok())
            .unwrap_or(0);
        let builders: Builders = self.http.get_json(&self.endpoint("builders", &[])).await?;
        let by_id: HashMap<i64, &Builder> =
            builders.builders.iter().map(|b| (b.builderid, b)).collect();
        let unknown: Vec<&String> = self
            .builders
            .iter()
            .filter(|n| !by_id.values().any(|b| &b.name == *n))
            .collect();
        if !unknown.is_empty() {
            return Err(CollectError::Config(format!(
                "collector `{}`: no builder named {unknown:?} on {}; check `builders`",
                run.name(),
                self.api
            )));
        }
        // The oldest build still running bounds the cursor.
        let running: Builds = self
            .http
            .get_json(&self.endpoint(
                "builds",
                &[("complete", "false"), ("order", "buildid"), ("limit", "1")],
            ))
            .await?;
        let oldest_running = running.builds.first().map(|b| b.buildid);
        let mut last = after;
        let mut failed = None::<i64>;
        loop {
            let before = last;
            let page: Builds = self
                .http
                .get_json(&self.endpoint(
                    "builds",
                    &[
                        ("complete", "true"),
                        ("buildid__gt", &last.to_string()),
                        ("order", "buildid"),
                        ("limit", &PAGE.to_string()),
                    ],
                ))
                .await?;
            for b in &page.builds {
                last = last.max(b.buildid);
                let Some(builder) = by_id.get(&b.builderid) else {
                    continue;
                };
                if b.complete
                    && (self.builders.is_empty() || self.builders.contains(&builder.name))
                    && !self.record(run, builder, b).await?
                {
                    failed = Some(failed.map_or(b.buildid, |f| f.min(b.buildid)));
                }
            }
            if page.builds.len() < PAGE {
                break;
            }
            // A master that ignored `buildid__gt` would send the same page forever.
            if page.builds.iter().all(|b| b.buildid <= before) {
                return Err(CollectError::schema(format!(
                    "{}: the builds listing did not move past build {before}; is this a Buildbot master?",
                    self.api
                )));
            }
        }
        // Next time, start below the oldest build still running and the oldest that failed.
        let next = [
            Some(last),
            oldest_running.map(|r| r - 1),
            failed.map(|f| f - 1),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(last);
        run.set_watermark(format!("buildid:{}", next.max(0)));
        Ok(())
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        let _: Builders = self.http.get_json(&self.endpoint("builders", &[])).await?;
        Ok(())
    }

    fn http(&self) -> Option<&Http> {
        Some(&self.http)
    }
}

/// Buildbot's numeric result as a word (0 success, 1 warnings, 2 failure, …).
pub fn buildbot_result(code: Option<i64>) -> &'static str {
    match code {
        Some(0) => "success",
        Some(1) => "warnings",
        Some(2) => "failure",
        Some(3) => "skipped",
        Some(4) => "exception",
        Some(5) => "retry",
        Some(6) => "cancelled",
        Some(_) => "unknown",
        None => "running",
    }
}
