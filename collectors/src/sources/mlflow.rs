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
    api_root, control_list, endpoint, from_millis, json_observation, marker, segment,
};
use crate::driver::{Run, Source};
use crate::http::{Auth, Dialect, Http, Pages};
use crate::{CollectContext, CollectError, Observation, Suggest};

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
}

#[derive(Debug, Deserialize)]
struct RunGet {
    run: MlflowRun,
}

#[derive(Debug, Deserialize)]
struct MlflowRun {
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

    /// The pages of a search endpoint, following `next_page_token`.
    fn search(&self, path: &str, filter: Option<&str>) -> Pages<'_> {
        let max = PAGE.to_string();
        let mut q = vec![("max_results", max.as_str())];
        q.extend(filter.map(|f| ("filter", f)));
        self.http.pages(
            self.endpoint(path, &q),
            Dialect::Token {
                field: "next_page_token",
                param: "page_token",
                last: None,
            },
        )
    }

    async fn models(&self) -> Result<HashMap<String, RegisteredModel>, CollectError> {
        let mut out = HashMap::new();
        let mut pages = self.search("registered-models/search", None);
        while let Some(page) = pages.next::<ModelSearch>().await? {
            let wanted = page.registered_models.into_iter();
            out.extend(
                wanted
                    .filter(|m| self.wanted(&m.name))
                    .map(|m| (m.name.clone(), m)),
            );
        }
        Ok(out)
    }

    async fn versions(
        &self,
        filter: Option<String>,
        out: &mut Vec<ModelVersion>,
    ) -> Result<(), CollectError> {
        let mut pages = self.search("model-versions/search", filter.as_deref());
        while let Some(page) = pages.next::<VersionSearch>().await? {
            out.extend(
                page.model_versions
                    .into_iter()
                    .filter(|v| self.wanted(&v.name)),
            );
        }
        Ok(())
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
        o.suggest = self.suggest(record);
        o
    }

    /// What the default mapping needs to know about a version: whether it was evaluated
    /// (metrics, or a tag saying so), deployed (production stage or a serving alias) and
    /// documented (a description, or a tag pointing at a model card).
    fn suggest(&self, r: &VersionRecord<'_>) -> Suggest {
        let tag_says = |words: &[&str]| {
            r.tags.iter().any(|(k, v)| {
                let kv = format!("{k} {v}").to_lowercase();
                words.iter().any(|w| kv.contains(w))
            })
        };
        let production = r
            .stage
            .is_some_and(|s| s.eq_ignore_ascii_case("production"));
        Suggest::ModelVersion {
            evaluated: r.run.as_ref().is_some_and(|run| !run.metrics.is_empty())
                || tag_says(&["validat", "eval"]),
            deployed: production
                || r.aliases
                    .iter()
                    .any(|a| self.serving.contains(&a.to_lowercase())),
            documented: r.description.is_some_and(|d| !d.trim().is_empty())
                || tag_says(&["model_card", "model card"]),
        }
    }

    /// What the ledger holds for version `v` of `model`, without its run.
    fn record<'a>(
        &self,
        v: &'a ModelVersion,
        model: Option<&'a RegisteredModel>,
    ) -> VersionRecord<'a> {
        let tags = |t: &'a [Tag]| {
            t.iter()
                .map(|t| (t.key.as_str(), t.value.as_str()))
                .collect()
        };
        VersionRecord {
            model: &v.name,
            version: &v.version,
            status: v.status.as_deref(),
            stage: v.current_stage.as_deref(),
            source: v.source.as_deref(),
            run_id: v.run_id.as_deref().filter(|r| !r.is_empty()),
            description: v.description.as_deref().filter(|d| !d.is_empty()),
            tags: tags(&v.tags),
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
            model_tags: model.map(|m| tags(&m.tags)).unwrap_or_default(),
            created_ms: v.creation_timestamp,
            updated_ms: v.last_updated_timestamp,
            run: None,
        }
    }

    /// Every listed version in scope, by model name and version number.
    async fn listed(&self) -> Result<Vec<ModelVersion>, CollectError> {
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
        Ok(listed)
    }
}

#[async_trait::async_trait]
impl Source for MlflowCollector {
    type Config = MlflowConfig;

    fn new(name: &str, cfg: &MlflowConfig, common: &Common) -> Result<Self, CollectError> {
        let (api, host) = api_root(name, "url", &cfg.url, "api/2.0/mlflow/")?;
        Ok(MlflowCollector {
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

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        let models = self.models().await?;
        let listed = self.listed().await?;
        let mut seen = HashSet::new();
        let mut runs: HashMap<String, Result<RunRecord, String>> = HashMap::new();
        for v in &listed {
            let model = models.get(&v.name);
            let mut record = self.record(v, model);
            let uri = self.uri(&v.name, &v.version);
            seen.insert(uri.clone());
            let version = marker(&record);
            if run.unchanged(&uri, &version) {
                continue;
            }
            if let Some(run_id) = record.run_id {
                if !runs.contains_key(run_id) {
                    let r = match self.run(run_id).await {
                        // The server asked us to wait: the run ends here, not per version.
                        Err(e) if e.retry_after().is_some() => return Err(e),
                        r => r.map_err(|e| e.to_string()),
                    };
                    runs.insert(run_id.to_owned(), r);
                }
                match runs.get(run_id) {
                    Some(Ok(linked)) => record.run = Some(linked.clone()),
                    Some(Err(e)) => {
                        run.problem(uri, format!("linked run {run_id}: {e}"));
                        continue;
                    }
                    None => {}
                }
            }
            run.push(self.observation(v, model, &record, version));
        }
        let in_scope = |uri: &str| {
            self.models
                .as_ref()
                .is_none_or(|m| m.iter().any(|n| uri.starts_with(&self.uri(n, ""))))
        };
        let prefix = format!("mlflow://{}/models/", self.host);
        let gone = run.sweep_removed(&prefix, "model_version_removed", |uri| {
            seen.contains(uri) || !in_scope(uri)
        });
        for o in gone {
            o.title = o
                .uri
                .rsplit_once("/models/")
                .map(|(_, r)| r.replace("/versions/", " v"));
        }
        Ok(())
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        let _: ModelSearch = self
            .http
            .get_json(&self.endpoint("registered-models/search", &[("max_results", "1")]))
            .await?;
        Ok(())
    }

    fn http(&self) -> Option<&Http> {
        Some(&self.http)
    }
}

fn version_number(v: &str) -> (u64, &str) {
    (v.parse().unwrap_or(u64::MAX), v)
}
