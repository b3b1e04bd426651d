//! The `redmine` collector: issues of chosen Redmine projects, closed ones too, with their
//! journals (history), custom fields and attachment metadata.
//!
//! Issues are listed with `status_id=*` by `updated_on` ascending after the cursor (100 a
//! page, `offset`); each new or changed issue is fetched with its journals, and the content
//! is the canonical JSON of that answer, so every change of a ticket is a new entry and an
//! unchanged one is not. Before anything else the collector asks `/users/current.json` who
//! it is: Redmine answers a wrong API key as the anonymous user (200, public issues only)
//! unless login is required, and that must fail, not silently collect less.

use reqwest::Url;
use serde::Deserialize;

use super::Common;
use super::record::{api_root, control_list, endpoint, json_observation, parse_time};
use crate::driver::{Run, Source};
use crate::hints::label_control;
use crate::http::{Auth, Dialect, Http};
use crate::{CollectContext, CollectError, Suggest};

const PAGE: &str = "100";
/// Issue details fetched at once (Redmine is self-hosted: its latency bounds a run).
const IN_FLIGHT: usize = 4;

/// `kind = "redmine"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedmineConfig {
    /// Redmine root URL.
    pub url: String,
    /// Project identifiers (default: every project the key can see).
    #[serde(default)]
    pub projects: Vec<String>,
    /// The login the API key must belong to; a key answered as anybody else (or as
    /// anonymous) fails the run.
    #[serde(default)]
    pub user: Option<String>,
}

/// A running Redmine collector.
#[derive(Debug)]
pub struct RedmineCollector {
    root: Url,
    host: String,
    cfg: RedmineConfig,
    http: Http,
}

#[derive(Debug, Deserialize)]
struct Current {
    user: CurrentUser,
}

#[derive(Debug, Deserialize)]
struct CurrentUser {
    id: u64,
    #[serde(default)]
    login: String,
}

#[derive(Debug, Deserialize)]
struct IssueList {
    #[serde(default)]
    issues: Vec<ListedIssue>,
}

#[derive(Debug, Deserialize)]
struct ListedIssue {
    id: u64,
    #[serde(default)]
    updated_on: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IssueGet {
    issue: serde_json::Value,
}

impl RedmineCollector {
    /// Who the key authenticates as; refuses anonymous and unexpected users.
    async fn whoami(&self) -> Result<CurrentUser, CollectError> {
        let url = endpoint(&self.root, "users/current.json", &[]);
        let me: Current = self.http.get_json(&url).await.map_err(|e| match e {
            CollectError::Remote { message, .. } if message.contains("HTTP 401") || message.contains("HTTP 403") => CollectError::Remote {
                message: format!(
                    "{message}; Redmine did not accept the API key (or the REST API is off: Administration → Settings → API)"
                ),
                retryable: false,
                retry_after: None,
            },
            other => other,
        })?;
        if me.user.id == 0 || me.user.login.is_empty() {
            return Err(CollectError::Remote {
                message: format!(
                    "GET {url}: Redmine answered as the anonymous user: the API key was not accepted; check token_env/token_file"
                ),
                retryable: false,
                retry_after: None,
            });
        }
        if let Some(want) = self.cfg.user.as_ref().filter(|w| **w != me.user.login) {
            return Err(CollectError::Remote {
                message: format!(
                    "GET {url}: the API key belongs to {:?}, not to {want:?} (`user` in the config)",
                    me.user.login
                ),
                retryable: false,
                retry_after: None,
            });
        }
        Ok(me.user)
    }

    /// Records the changed issues of one listing page, their details fetched a few at once.
    async fn page(
        &self,
        run: &mut Run<'_>,
        list: &IssueList,
        newest: &mut Option<String>,
    ) -> Result<(), CollectError> {
        let mut todo = Vec::new();
        for li in &list.issues {
            let uri = format!("redmine://{}/issues/{}", self.host, li.id);
            let version = li.updated_on.clone().unwrap_or_default();
            if li
                .updated_on
                .as_ref()
                .is_some_and(|u| newest.as_ref().is_none_or(|n| u > n))
            {
                newest.clone_from(&li.updated_on);
            }
            if run.unchanged(&uri, &version) {
                continue;
            }
            let url = endpoint(
                &self.root,
                &format!("issues/{}.json", li.id),
                &[(
                    "include",
                    "journals,attachments,relations,children,watchers",
                )],
            );
            todo.push((uri, version, url));
        }
        let urls: Vec<Url> = todo.iter().map(|(_, _, u)| u.clone()).collect();
        let got = self.http.get_json_all::<IssueGet>(&urls, IN_FLIGHT).await;
        for ((uri, version, _), got) in todo.into_iter().zip(got) {
            if let Some(got) = run.item(&uri, got)? {
                run.push(self.observation(uri, &got.issue, version));
            }
        }
        Ok(())
    }

    fn observation(
        &self,
        uri: String,
        issue: &serde_json::Value,
        version: String,
    ) -> crate::Observation {
        let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
        let id = issue["id"].as_u64().unwrap_or(0);
        let subject = s(&issue["subject"]);
        let tracker = s(&issue["tracker"]["name"]);
        let category = s(&issue["category"]["name"]);
        let mut o = json_observation(uri, "ticket", issue, version);
        o.title = Some(format!("#{id} {subject}"));
        o.created_at = issue["created_on"].as_str().and_then(parse_time);
        o.updated_at = issue["updated_on"].as_str().and_then(parse_time);
        let mut hints = Vec::new();
        let mut labels = vec![
            format!("tracker:{tracker}"),
            format!("status:{}", s(&issue["status"]["name"])),
        ];
        if !category.is_empty() {
            labels.push(format!("category:{category}"));
        }
        for cf in issue["custom_fields"].as_array().into_iter().flatten() {
            let name = s(&cf["name"]);
            let values: Vec<String> = match &cf["value"] {
                serde_json::Value::Array(a) => a.iter().map(s).collect(),
                v => vec![s(v)],
            };
            for v in values.iter().filter(|v| !v.is_empty()) {
                if name.to_lowercase().contains("control") {
                    hints.extend(control_list(v).map(|c| label_control(&c).unwrap_or(c)));
                } else if let Some(c) = label_control(v) {
                    hints.push(c);
                }
                labels.push(format!("{name}:{v}"));
            }
        }
        hints.extend(subject.split_whitespace().filter_map(label_control));
        o.control_hints = hints;
        o.suggest = Suggest::Ticket(format!("{tracker} {category} {subject}"));
        o.labels = labels;
        o
    }
}

#[async_trait::async_trait]
impl Source for RedmineCollector {
    type Config = RedmineConfig;

    fn new(name: &str, cfg: &RedmineConfig, common: &Common) -> Result<Self, CollectError> {
        let (root, host) = api_root(name, "url", &cfg.url, "")?;
        Ok(RedmineCollector {
            root,
            host,
            cfg: cfg.clone(),
            http: common.http(
                name,
                |t| Auth::Header("x-redmine-api-key", t),
                "a user's API key (My account → API access key) with the View issues permission",
                &[],
            )?,
        })
    }

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        self.whoami().await?;
        let after = run.cursor().map(str::to_owned);
        let mut newest = after.clone();
        let projects: Vec<Option<&str>> = if self.cfg.projects.is_empty() {
            vec![None]
        } else {
            self.cfg.projects.iter().map(|p| Some(p.as_str())).collect()
        };
        let since = after.as_ref().map(|a| format!(">={a}"));
        for project in projects {
            let mut q = vec![
                ("status_id", "*"),
                ("sort", "updated_on:asc,id"),
                ("limit", PAGE),
            ];
            q.extend(project.map(|p| ("project_id", p)));
            q.extend(since.as_deref().map(|s| ("updated_on", s)));
            let mut pages = self.http.pages(
                endpoint(&self.root, "issues.json", &q),
                Dialect::Offset {
                    param: "offset",
                    total: "total_count",
                    items: "issues",
                },
            );
            while let Some(list) = pages.next::<IssueList>().await? {
                self.page(run, &list, &mut newest).await?;
            }
        }
        if let Some(n) = newest {
            run.set_cursor(n);
        }
        Ok(())
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        self.whoami().await.map(drop)
    }

    fn http(&self) -> Option<&Http> {
        Some(&self.http)
    }
}
