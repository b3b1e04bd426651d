//! The `huggingface` collector: models and datasets on the Hugging Face Hub (or a private
//! Hub), each revision's repository info and its card (README).
//!
//! Repositories come from an author's listing (`/api/models?author=…`, `Link` pages) and/or
//! a list of repo ids. A repository whose revision (`sha`) is known is skipped; otherwise
//! its info (`/api/models/{id}`) and card (`/{id}/raw/{sha}/README.md`) are fetched. Tags
//! such as `iso42001:A.7.4` name controls.

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::Common;
use super::record::{api_root, endpoint, json_observation, parse_time};
use crate::driver::{Run, Source};
use crate::http::{Auth, Dialect, Http};
use crate::{CollectContext, CollectError, Content, Observation, Suggest};

/// Tag prefix naming a control on the Hub.
pub const CONTROL_TAG: &str = "iso42001:";

/// `kind = "huggingface"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuggingfaceConfig {
    /// Every public (or, with a token, private) repository of this user or organisation.
    #[serde(default)]
    pub author: Option<String>,
    /// Repository ids: `org/model`, or `datasets/org/data` for a dataset.
    #[serde(default)]
    pub repos: Vec<String>,
    /// With `author`: also its datasets.
    #[serde(default = "super::yes")]
    pub datasets: bool,
    /// Hub root URL.
    #[serde(default = "default_api")]
    pub api_url: String,
}

fn default_api() -> String {
    "https://huggingface.co".into()
}

/// A running Hub collector.
#[derive(Debug)]
pub struct HuggingfaceCollector {
    root: Url,
    host: String,
    cfg: HuggingfaceConfig,
    http: Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RepoType {
    Model,
    Dataset,
}

impl RepoType {
    fn api(self) -> &'static str {
        match self {
            RepoType::Model => "api/models",
            RepoType::Dataset => "api/datasets",
        }
    }
    fn raw_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
        }
    }
    fn word(self) -> &'static str {
        match self {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
        }
    }
}

#[derive(Debug, Deserialize)]
struct Listed {
    id: String,
    #[serde(default)]
    sha: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
struct RepoInfo {
    id: String,
    #[serde(default)]
    sha: Option<String>,
    #[serde(rename = "lastModified", default)]
    last_modified: Option<String>,
    #[serde(rename = "createdAt", default)]
    created_at: Option<String>,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    gated: serde_json::Value,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    pipeline_tag: Option<String>,
    #[serde(default)]
    library_name: Option<String>,
    #[serde(rename = "cardData", default)]
    card_data: Option<serde_json::Value>,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Sibling {
    rfilename: String,
}

#[derive(Debug, Serialize)]
struct RepoRecord<'a> {
    repo_type: &'static str,
    info: &'a RepoInfo,
    license: Option<String>,
    has_card: bool,
}

#[async_trait::async_trait]
impl Source for HuggingfaceCollector {
    type Config = HuggingfaceConfig;

    fn new(name: &str, cfg: &HuggingfaceConfig, common: &Common) -> Result<Self, CollectError> {
        if cfg.author.is_none() && cfg.repos.is_empty() {
            return Err(CollectError::Config(format!(
                "collector `{name}`: set `author`, `repos`, or both"
            )));
        }
        if let Some(bad) = cfg
            .repos
            .iter()
            .find(|r| split_repo(r).1.split('/').count() != 2)
        {
            return Err(CollectError::Config(format!(
                "collector `{name}`: repo {bad:?} must be \"org/name\" or \"datasets/org/name\""
            )));
        }
        let (root, host) = api_root(name, "api_url", &cfg.api_url, "")?;
        Ok(HuggingfaceCollector {
            root,
            host,
            cfg: cfg.clone(),
            http: common.http(name, Auth::Bearer, "the `read` role", &[])?,
        })
    }

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        let mut todo: Vec<(RepoType, String, Option<String>)> = Vec::new();
        if let Some(author) = &self.cfg.author {
            for t in [RepoType::Model, RepoType::Dataset] {
                if t == RepoType::Dataset && !self.cfg.datasets {
                    continue;
                }
                todo.extend(
                    self.listing(t, author)
                        .await?
                        .into_iter()
                        .map(|l| (t, l.id, l.sha)),
                );
            }
        }
        for r in &self.cfg.repos {
            let (t, id) = split_repo(r);
            if !todo.iter().any(|(tt, i, _)| *tt == t && i == id) {
                todo.push((t, id.to_owned(), None));
            }
        }
        for (t, id, sha) in &todo {
            let done = self.repo(run, *t, id, sha.as_deref()).await;
            run.item(&self.uri(*t, id), done)?;
        }
        Ok(())
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        let _: serde_json::Value = self
            .http
            .get_json(&endpoint(&self.root, "api/models", &[("limit", "1")]))
            .await?;
        Ok(())
    }

    fn http(&self) -> Option<&Http> {
        Some(&self.http)
    }
}

impl HuggingfaceCollector {
    async fn listing(&self, t: RepoType, author: &str) -> Result<Vec<Listed>, CollectError> {
        let first = endpoint(
            &self.root,
            t.api(),
            &[
                ("author", author),
                ("limit", "100"),
                ("expand[]", "sha"),
                ("expand[]", "lastModified"),
            ],
        );
        self.http
            .pages(first, Dialect::Link)
            .all(|l: Vec<Listed>| l)
            .await
    }

    fn uri(&self, t: RepoType, id: &str) -> String {
        format!("hf://{}/{}s/{id}", self.host, t.word())
    }

    /// Records one repository's revision and its card.
    async fn repo(
        &self,
        run: &mut Run<'_>,
        t: RepoType,
        id: &str,
        listed_sha: Option<&str>,
    ) -> Result<(), CollectError> {
        let uri = self.uri(t, id);
        if let Some(sha) = listed_sha
            && run.unchanged(&uri, sha)
        {
            return Ok(());
        }
        let info: RepoInfo = self
            .http
            .get_json(&endpoint(&self.root, &format!("{}/{id}", t.api()), &[]))
            .await?;
        let sha = info.sha.clone().unwrap_or_default();
        if run.unchanged(&uri, &sha) {
            return Ok(());
        }
        let card_url = endpoint(
            &self.root,
            &format!("{}{id}/raw/{sha}/README.md", t.raw_prefix()),
            &[],
        );
        let card = match self.http.get(&card_url, None).await {
            Ok(f) => Some(f.body),
            Err(CollectError::Remote { message, .. }) if message.contains("HTTP 404") => None,
            Err(e) => return Err(e),
        };
        let hints: Vec<String> = info
            .tags
            .iter()
            .filter_map(|t| t.strip_prefix(CONTROL_TAG))
            .map(str::to_owned)
            .collect();
        let license = info
            .card_data
            .as_ref()
            .and_then(|c| c.get("license"))
            .and_then(|l| l.as_str().map(str::to_owned))
            .or_else(|| {
                info.tags
                    .iter()
                    .find_map(|t| t.strip_prefix("license:").map(str::to_owned))
            });
        let record = RepoRecord {
            repo_type: t.word(),
            info: &info,
            license,
            has_card: card.is_some(),
        };
        let mut o = json_observation(
            uri.clone(),
            &format!("{}_repo", t.word()),
            &record,
            sha.clone(),
        );
        o.title = Some(format!(
            "{id} ({} revision {})",
            t.word(),
            sha.get(..7).unwrap_or(&sha)
        ));
        o.created_at = info.created_at.as_deref().and_then(parse_time);
        o.updated_at = info.last_modified.as_deref().and_then(parse_time);
        o.labels = info.tags.clone();
        o.control_hints = hints.clone();
        o.suggest = Suggest::HubRepo {
            dataset: t == RepoType::Dataset,
        };
        if let Some(body) = card {
            let mut c = Observation::new(
                format!("{uri}/README.md"),
                format!("{}_card", t.word()),
                Content::Bytes(body),
            );
            c.title = Some(format!("{} card: {id}", t.word()));
            c.media_type = Some("text/markdown".into());
            c.updated_at = o.updated_at;
            c.labels = info.tags.clone();
            c.control_hints = hints;
            c.version = Some(sha);
            c.suggest = match t {
                RepoType::Model => Suggest::ModelCard,
                RepoType::Dataset => Suggest::DatasetCard(info.tags.clone()),
            };
            run.push(c);
        }
        run.push(o);
        Ok(())
    }
}

fn split_repo(r: &str) -> (RepoType, &str) {
    match r.strip_prefix("datasets/") {
        Some(id) => (RepoType::Dataset, id),
        None => (RepoType::Model, r.strip_prefix("models/").unwrap_or(r)),
    }
}
