//! The `confluence` collector: pages of Confluence spaces, one entry per page version, with
//! the body in storage format and the page's labels.
//!
//! Cloud uses REST v2 (`/wiki/api/v2/spaces?keys=…`, then the space's pages with
//! `body-format=storage`, following `_links.next`, and each changed page's labels); Data
//! Center uses REST v1 (`/rest/api/content?spaceKey=…&expand=body.storage,version,
//! metadata.labels`, `start`/`limit`). A page whose version number is known costs nothing
//! more. Labels such as `aims-a.8.4` or `iso42001-A.5.3` name controls; title and label
//! words map like document paths.

use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{self as atlassian, Deployment};
use crate::driver::{Run, Source};
use crate::hints::label_control;
use crate::http::Http;
use crate::sources::Common;
use crate::sources::record::{api_root, endpoint, json_observation};
use crate::{CollectError, Suggest};

/// `kind = "confluence"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfluenceConfig {
    /// Cloud: `https://acme.atlassian.net/wiki`; Data Center: the base URL.
    pub url: String,
    /// Space keys.
    pub spaces: Vec<String>,
    /// `cloud` or `datacenter`; default: cloud for `*.atlassian.net`.
    #[serde(default)]
    pub deployment: Option<Deployment>,
    /// Cloud: the account email of the API token (basic auth); else a bearer token.
    #[serde(default)]
    pub email: Option<String>,
}

/// A running Confluence collector.
#[derive(Debug)]
pub struct ConfluenceCollector {
    name: String,
    root: Url,
    host: String,
    deployment: Deployment,
    spaces: Vec<String>,
    http: Http,
}

#[derive(Debug, Deserialize)]
struct Results {
    #[serde(default)]
    results: Vec<Value>,
    #[serde(rename = "_links", default)]
    links: Value,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    limit: Option<u64>,
}

/// A page as recorded.
struct Page {
    id: String,
    title: String,
    version: u64,
    when: Option<String>,
    body: String,
    labels: Vec<String>,
    raw: Value,
}

impl ConfluenceCollector {
    /// Cloud's next links start at the site root (`/wiki/api/v2/…`), Data Center's at the
    /// base URL's path; either way they must stay on this host.
    fn resolve_next(&self, base: Option<&str>, rel: &str, from: &Url) -> Result<Url, CollectError> {
        let base = base
            .and_then(|b| Url::parse(b).ok())
            .unwrap_or_else(|| self.root.clone());
        let prefix = base.path().trim_end_matches('/');
        let path = if !prefix.is_empty() && rel.starts_with(prefix) {
            rel.to_owned()
        } else {
            format!("{prefix}{rel}")
        };
        let next = base
            .join(&path)
            .map_err(|e| CollectError::schema(format!("GET {from}: bad next link {rel:?}: {e}")))?;
        if !crate::http::same_origin(&next, &self.root) {
            return Err(CollectError::schema(format!(
                "GET {from}: the next page is on another host; refusing to send credentials there"
            )));
        }
        Ok(next)
    }

    /// Follows `_links.next` from `first`.
    async fn results(&self, first: Url) -> Result<Vec<Value>, CollectError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut visited = std::collections::HashSet::new();
        while let Some(url) = next {
            if !visited.insert(url.to_string()) {
                return Err(CollectError::schema(format!(
                    "GET {url}: the listing pointed back to a page it already sent; stopping rather than looping"
                )));
            }
            let page: Results = self.http.get_json(&url).await?;
            let n = page.results.len();
            out.extend(page.results);
            next = match page.links["next"].as_str() {
                Some(rel) if n > 0 => {
                    Some(self.resolve_next(page.links["base"].as_str(), rel, &url)?)
                }
                _ => None,
            };
            if page.size.zip(page.limit).is_some_and(|(s, l)| s < l) {
                break;
            }
        }
        Ok(out)
    }

    async fn pages(&self, space: &str) -> Result<Vec<Page>, CollectError> {
        let num = |v: &Value| v.as_u64().unwrap_or(0);
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        let first = match self.deployment {
            Deployment::Datacenter => endpoint(
                &self.root,
                "rest/api/content",
                &[
                    ("spaceKey", space),
                    ("type", "page"),
                    ("status", "current"),
                    ("expand", "body.storage,version,metadata.labels"),
                    ("limit", "100"),
                ],
            ),
            Deployment::Cloud => {
                let spaces = self
                    .results(endpoint(&self.root, "api/v2/spaces", &[("keys", space)]))
                    .await?;
                let Some(id) = spaces.first().and_then(|s| {
                    s["id"]
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| s["id"].as_u64().map(|n| n.to_string()))
                }) else {
                    return Err(CollectError::schema(format!(
                        "{}: no space with key {space:?} (or the token cannot see it)",
                        self.name
                    )));
                };
                endpoint(
                    &self.root,
                    &format!("api/v2/spaces/{id}/pages"),
                    &[
                        ("limit", "100"),
                        ("body-format", "storage"),
                        ("status", "current"),
                    ],
                )
            }
        };
        // One shape for both: v1 says `version.when` and carries labels in `metadata`; v2
        // says `version.createdAt` and has labels at their own endpoint (fetched by scan).
        Ok(self
            .results(first)
            .await?
            .into_iter()
            .map(|p| Page {
                id: text(&p["id"]),
                title: text(&p["title"]),
                version: num(&p["version"]["number"]),
                when: p["version"]["when"]
                    .as_str()
                    .or_else(|| p["version"]["createdAt"].as_str())
                    .map(str::to_owned),
                body: text(&p["body"]["storage"]["value"]),
                labels: p["metadata"]["labels"]["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| text(&l["name"]))
                    .collect(),
                raw: p,
            })
            .collect())
    }

    /// A Cloud page's labels, from their own endpoint.
    async fn labels(&self, id: &str) -> Result<Vec<String>, CollectError> {
        let url = endpoint(
            &self.root,
            &format!("api/v2/pages/{id}/labels"),
            &[("limit", "100")],
        );
        Ok(self
            .results(url)
            .await?
            .iter()
            .filter_map(|l| l["name"].as_str().map(str::to_owned))
            .collect())
    }
}

#[async_trait::async_trait]
impl Source for ConfluenceCollector {
    type Config = ConfluenceConfig;

    fn new(name: &str, cfg: &ConfluenceConfig, common: &Common) -> Result<Self, CollectError> {
        if cfg.spaces.is_empty() {
            return Err(CollectError::Config(format!(
                "collector `{name}`: list the space keys in `spaces`"
            )));
        }
        let (root, host) = api_root(name, "url", &cfg.url, "")?;
        Ok(ConfluenceCollector {
            name: name.to_owned(),
            deployment: Deployment::of(cfg.deployment, &root),
            root,
            host,
            spaces: cfg.spaces.clone(),
            http: atlassian::client(
                name,
                common,
                cfg.email.as_deref(),
                "permission to view the spaces",
            )?,
        })
    }

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        for space in &self.spaces {
            for mut page in self.pages(space).await? {
                if page.id.is_empty() || page.version == 0 {
                    return Err(CollectError::schema(format!(
                        "{}: a page without id or version number in space {space}",
                        self.name
                    )));
                }
                let uri = format!(
                    "confluence://{}/spaces/{space}/pages/{}",
                    self.host, page.id
                );
                let version = page.version.to_string();
                if run.unchanged(&uri, &version) {
                    continue;
                }
                if self.deployment == Deployment::Cloud {
                    let Some(labels) = run.item(&uri, self.labels(&page.id).await)? else {
                        continue;
                    };
                    page.labels = labels;
                }
                let record = json!({"space": space, "id": page.id, "title": page.title, "version": page.version, "when": page.when,
                    "labels": page.labels, "body_storage": page.body, "status": page.raw["status"], "parent": page.raw["parentId"]});
                let mut o = json_observation(uri, "wiki_page", &record, version);
                o.title = Some(format!("{} (v{})", page.title, page.version));
                o.updated_at = page.when.as_deref().and_then(atlassian::parse_time);
                o.control_hints = page
                    .labels
                    .iter()
                    .filter_map(|l| label_control(l))
                    .collect();
                o.suggest = Suggest::Document(format!("{} {}", page.title, page.labels.join(" ")));
                o.labels = page.labels;
                run.push(o);
            }
        }
        Ok(())
    }

    fn http(&self) -> Option<&Http> {
        Some(&self.http)
    }
}
