//! The `mlflow` collector: registered models and their versions in an MLflow registry.
//!
//! One observation per model version *state*: the content is the canonical JSON of the
//! version (stage, status, source, run, description, tags, aliases) with its linked run's
//! params and metrics, so a stage, alias or tag change yields a new entry and an unchanged
//! version yields none. The real server leaves keys out when they are empty (even the
//! result list: an empty search is `{}`), returns versions as strings and times in epoch
//! milliseconds, serves search only with GET, and shapes aliases differently on models
//! (`[{alias, version}]`) and versions (`["champion"]`): all handled here.
//!
//! Incremental: a version's change marker covers everything in the listings; when it has
//! not moved the run is not fetched again. MLflow does not move `last_updated_timestamp`
//! when tags or aliases change, so the marker is a hash of the listed state, not a time.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::Common;
use super::record::{
    api_root, control_list, endpoint, from_millis, json_observation, marker, segment, unchanged,
};
use crate::http::{Auth, Http};
use crate::{Batch, CollectContext, CollectError, Collector, Cursor, ItemProblem, Observation};

/// Versions per search page (the server's limit for model-version search is far higher;
/// 1,000 keeps each response small).
const PAGE: u32 = 1000;
/// Tag naming extra controls, on a model or a version.
pub const CONTROLS_TAG: &str = "iso42001.controls";

/// `kind = "mlflow"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlflowConfig {
    /// Tracking server URL, e.g. `http://127.0.0.1:5000`.
    pub url: String,
    /// Only these registered models (default: all).
    #[serde(default)]
    pub models: Vec<String>,
    /// Aliases that mean "serving": a version holding one counts as deployed (A.6.2.5).
    #[serde(default = "default_serving_aliases")]
    pub serving_aliases: Vec<String>,
}

fn default_serving_aliases() -> Vec<String> {
    vec!["champion".into(), "production".into()]
}

/// A running MLflow collector.
#[derive(Debug)]
pub struct MlflowCollector {
    name: String,
    api: Url,
    host: String,
    models: Option<HashSet<String>>,
    serving: HashSet<String>,
    http: Http,
}

#[derive(Debug, Deserialize)]
struct Tag {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
struct ModelAlias {
    alias: String,
    version: String,
}

#[derive(Debug, Deserialize)]
struct RegisteredModel {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    aliases: Vec<ModelAlias>,
}

#[derive(Debug, Deserialize)]
struct ModelSearch {
    #[serde(default)]
    registered_models: Vec<RegisteredModel>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ModelVersion {
    name: String,
    version: String,
    #[serde(default)]
    creation_timestamp: Option<i64>,
    #[serde(default)]
    last_updated_timestamp: Option<i64>,
    #[serde(default)]
    current_stage: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
struct VersionSearch {
    #[serde(default)]
    model_versions: Vec<ModelVersion>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RunGet {
    run: Run,
}

#[derive(Debug, Deserialize)]
struct Run {
    info: RunInfo,
    #[serde(default)]
    data: RunData,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct RunInfo {
    #[serde(default)]
    experiment_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    start_time: Option<i64>,
    #[serde(default)]
    end_time: Option<i64>,
    #[serde(default)]
    lifecycle_stage: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RunData {
    #[serde(default)]
    metrics: Vec<Metric>,
    #[serde(default)]
    params: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
struct Metric {
    key: String,
    value: serde_json::Value,
}

/// What the ledger holds for a version: listed state plus run.
#[derive(Debug, Serialize)]
struct VersionRecord<'a> {
    model: &'a str,
    version: &'a str,
    status: Option<&'a str>,
    stage: Option<&'a str>,
    source: Option<&'a str>,
    run_id: Option<&'a str>,
    description: Option<&'a str>,
    tags: BTreeMap<&'a str, &'a str>,
    aliases: BTreeSet<&'a str>,
    model_description: Option<&'a str>,
    model_tags: BTreeMap<&'a str, &'a str>,
    created_ms: Option<i64>,
    updated_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<RunRecord>,
}

#[derive(Debug, Clone, Serialize)]
struct RunRecord {
    info: RunInfo,
    params: BTreeMap<String, String>,
    metrics: BTreeMap<String, serde_json::Value>,
}

impl MlflowCollector {
    /// Builds the collector from its config.
    pub fn new(name: &str, cfg: &MlflowConfig, common: &Common) -> Result<Self, CollectError> {
        let (api, host) = api_root(name, "url", &cfg.url, "api/2.0/mlflow/")?;
        Ok(MlflowCollector {
            name: name.to_owned(),
            host,
            api,
            models: (!cfg.models.is_empty()).then(|| cfg.models.iter().cloned().collect()),
            serving: cfg
                .serving_aliases
                .iter()
                .map(|a| a.to_lowercase())
                .collect(),
            http: common.http(name, Auth::Bearer, "read access to the model registry", &[])?,
        })
    }

    fn endpoint(&self, path: &str, query: &[(&str, &str)]) -> Url {
        endpoint(&self.api, path, query)
    }

    fn uri(&self, model: &str, version: &str) -> String {
        format!(
            "mlflow://{}/models/{}/versions/{}",
            self.host,
            segment(model),
            segment(version)
        )
    }

    fn wanted(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|m| m.contains(model))
    }

    /// Every page of a search endpoint, following `next_page_token`; `each` takes a page
    /// and returns its token.
    async fn search<P: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        filter: Option<&str>,
        mut each: impl FnMut(P) -> Option<String>,
    ) -> Result<(), CollectError> {
        let max = PAGE.to_string();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("max_results", max.as_str())];
            q.extend(filter.map(|f| ("filter", f)));
            q.extend(token.as_deref().map(|t| ("page_token", t)));
            let page: P = self.http.get_json(&self.endpoint(path, &q)).await?;
            match each(page).filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }

    async fn models(&self) -> Result<HashMap<String, RegisteredModel>, CollectError> {
        let mut out = HashMap::new();
        self.search("registered-models/search", None, |page: ModelSearch| {
            for m in page
                .registered_models
                .into_iter()
                .filter(|m| self.wanted(&m.name))
            {
                out.insert(m.name.clone(), m);
            }
            page.next_page_token
        })
        .await?;
        Ok(out)
    }

    async fn versions(
        &self,
        filter: Option<String>,
        out: &mut Vec<ModelVersion>,
    ) -> Result<(), CollectError> {
        self.search(
            "model-versions/search",
            filter.as_deref(),
            |page: VersionSearch| {
                out.extend(
                    page.model_versions
                        .into_iter()
                        .filter(|v| self.wanted(&v.name)),
                );
                page.next_page_token
            },
        )
        .await
    }

    async fn run(&self, run_id: &str) -> Result<RunRecord, CollectError> {
        let r: RunGet = self
            .http
            .get_json(&self.endpoint("runs/get", &[("run_id", run_id)]))
            .await?;
        Ok(RunRecord {
            info: r.run.info,
            params: r
                .run
                .data
                .params
                .into_iter()
                .map(|p| (p.key, p.value))
                .collect(),
            metrics: r
                .run
                .data
                .metrics
                .into_iter()
                .map(|m| (m.key, m.value))
                .collect(),
        })
    }

    fn observation(
        &self,
        v: &ModelVersion,
        model: Option<&RegisteredModel>,
        record: &VersionRecord<'_>,
        version: String,
    ) -> Observation {
        let uri = self.uri(&v.name, &v.version);
        let mut o = json_observation(uri, "model_version", record, version);
        o.title = Some(format!("{} v{}", v.name, v.version));
        o.created_at = v.creation_timestamp.and_then(from_millis);
        o.updated_at = v.last_updated_timestamp.and_then(from_millis);
        o.labels = record
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let tagged = v.tags.iter().chain(model.map_or(&[][..], |m| &m.tags));
        o.control_hints = tagged
            .filter(|t| t.key == CONTROLS_TAG)
            .flat_map(|t| control_list(&t.value))
            .collect();
        o.default_controls = self.default_controls(record);
        o
    }

    fn default_controls(&self, r: &VersionRecord<'_>) -> Vec<&'static str> {
        let mut c = vec!["A.4.2", "A.6.2.3"];
        let tag_says = |words: &[&str]| {
            r.tags.iter().any(|(k, v)| {
                let kv = format!("{k} {v}").to_lowercase();
                words.iter().any(|w| kv.contains(w))
            })
        };
        let evaluated = r.run.as_ref().is_some_and(|run| !run.metrics.is_empty());
        if evaluated || tag_says(&["validat", "eval"]) {
            c.push("A.6.2.4");
        }
        let production = r
            .stage
            .is_some_and(|s| s.eq_ignore_ascii_case("production"));
        if production
            || r.aliases
                .iter()
                .any(|a| self.serving.contains(&a.to_lowercase()))
        {
            c.push("A.6.2.5");
        }
        if r.description.is_some_and(|d| !d.trim().is_empty())
            || tag_says(&["model_card", "model card"])
        {
            c.push("A.6.2.7");
        }
        c
    }

    async fn scan(&self, cx: &CollectContext) -> Result<Batch, CollectError> {
        let models = self.models().await?;
        let mut listed = Vec::new();
        match &self.models {
            // One filtered search per named model; names with quotes cannot be written in
            // MLflow's filter syntax, so those fall back to the unfiltered listing.
            Some(names) if names.iter().all(|n| !n.contains('\'')) => {
                let mut sorted: Vec<&String> = names.iter().collect();
                sorted.sort();
                for n in sorted {
                    self.versions(Some(format!("name='{n}'")), &mut listed)
                        .await?;
                }
            }
            _ => self.versions(None, &mut listed).await?,
        }
        listed.sort_by(|a, b| {
            (&a.name, version_number(&a.version)).cmp(&(&b.name, version_number(&b.version)))
        });
        let mut batch = Batch::default();
        let mut seen = HashSet::new();
        let mut runs: HashMap<String, Result<RunRecord, String>> = HashMap::new();
        for v in &listed {
            let model = models.get(&v.name);
            let mut record = VersionRecord {
                model: &v.name,
                version: &v.version,
                status: v.status.as_deref(),
                stage: v.current_stage.as_deref(),
                source: v.source.as_deref(),
                run_id: v.run_id.as_deref().filter(|r| !r.is_empty()),
                description: v.description.as_deref().filter(|d| !d.is_empty()),
                tags: v
                    .tags
                    .iter()
                    .map(|t| (t.key.as_str(), t.value.as_str()))
                    .collect(),
                aliases: model
                    .map(|m| {
                        m.aliases
                            .iter()
                            .filter(|a| a.version == v.version)
                            .map(|a| a.alias.as_str())
                            .collect()
                    })
                    .unwrap_or_default(),
                model_description: model
                    .and_then(|m| m.description.as_deref())
                    .filter(|d| !d.is_empty()),
                model_tags: model
                    .map(|m| {
                        m.tags
                            .iter()
                            .map(|t| (t.key.as_str(), t.value.as_str()))
                            .collect()
                    })
                    .unwrap_or_default(),
                created_ms: v.creation_timestamp,
                updated_ms: v.last_updated_timestamp,
                run: None,
            };
            let uri = self.uri(&v.name, &v.version);
            seen.insert(uri.clone());
            let version = marker(&record);
            if unchanged(cx, &uri, &version) {
                batch.unchanged += 1;
                continue;
            }
            if let Some(run_id) = record.run_id {
                if !runs.contains_key(run_id) {
                    let r = self.run(run_id).await.map_err(|e| e.to_string());
                    runs.insert(run_id.to_owned(), r);
                }
                match runs.get(run_id) {
                    Some(Ok(run)) => record.run = Some(run.clone()),
                    Some(Err(e)) => {
                        batch.problems.push(ItemProblem {
                            item: uri,
                            message: format!("linked run {run_id}: {e}"),
                            failed: true,
                        });
                        continue;
                    }
                    None => {}
                }
            }
            batch
                .observations
                .push(self.observation(v, model, &record, version));
        }
        for (uri, k) in cx.known_in_order() {
            let model_in_scope = self
                .models
                .as_ref()
                .is_none_or(|m| m.iter().any(|n| uri.starts_with(&self.uri(n, ""))));
            if !seen.contains(uri) && model_in_scope {
                let mut o = Observation::removed(uri.clone(), "model_version_removed", k);
                o.title = uri
                    .rsplit_once("/models/")
                    .map(|(_, r)| r.replace("/versions/", " v"));
                batch.observations.push(o);
            }
        }
        batch.requests = self.http.requests();
        Ok(batch)
    }
}

fn version_number(v: &str) -> (u64, &str) {
    (v.parse().unwrap_or(u64::MAX), v)
}

#[async_trait::async_trait]
impl Collector for MlflowCollector {
    fn kind(&self) -> &'static str {
        "mlflow"
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn collect(
        &self,
        cx: &CollectContext,
        _cursor: Option<&Cursor>,
    ) -> Result<Batch, CollectError> {
        self.scan(cx).await
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        let _: ModelSearch = self
            .http
            .get_json(&self.endpoint("registered-models/search", &[("max_results", "1")]))
            .await?;
        Ok(())
    }
}
