//! The `jira` collector: issues found by JQL in Jira Cloud (REST v3, `/search/jql` with
//! `nextPageToken`) or Data Center (REST v2, `/search` with `startAt`), with fields, labels,
//! components, type, status, resolution and changelog.
//!
//! The listing carries everything (`fields=*all`, `expand=changelog`), so a run costs only
//! the listing pages. The cursor is the newest `updated` recorded; the next JQL starts a
//! day before it (JQL dates are in the user's time zone, minutes only) and issues whose
//! `updated` is known are skipped.

use chrono::Duration;
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::Common;
use super::atlassian::{self, Deployment};
use super::record::{api_root, endpoint, json_observation, unchanged};
use crate::http::Http;
use crate::{Batch, CollectContext, CollectError, Collector, Cursor, words};

const PAGE: &str = "100";

/// `kind = "jira"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    /// Site URL (`https://acme.atlassian.net`, or the Data Center base URL).
    pub url: String,
    /// Project keys (default: all the token can see).
    #[serde(default)]
    pub projects: Vec<String>,
    /// Extra JQL, ANDed with the project and time conditions (`labels = aims`).
    #[serde(default)]
    pub jql: Option<String>,
    /// `cloud` or `datacenter`; default: cloud for `*.atlassian.net`.
    #[serde(default)]
    pub deployment: Option<Deployment>,
    /// Cloud: the account email the API token belongs to (basic auth). Without it the token
    /// is sent as a bearer (Data Center personal access tokens).
    #[serde(default)]
    pub email: Option<String>,
}

/// A running Jira collector.
#[derive(Debug)]
pub struct JiraCollector {
    name: String,
    root: Url,
    host: String,
    deployment: Deployment,
    cfg: JiraConfig,
    http: Http,
}

#[derive(Debug, Deserialize)]
struct SearchPage {
    #[serde(default)]
    issues: Vec<Value>,
    // Cloud
    #[serde(rename = "nextPageToken", default)]
    next_page_token: Option<String>,
    #[serde(rename = "isLast", default)]
    is_last: Option<bool>,
    // Data Center
    #[serde(rename = "startAt", default)]
    start_at: Option<u64>,
    #[serde(default)]
    total: Option<u64>,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl JiraCollector {
    /// Builds the collector from its config.
    pub fn new(name: &str, cfg: &JiraConfig, common: &Common) -> Result<Self, CollectError> {
        let (root, host) = api_root(name, "url", &cfg.url, "")?;
        Ok(JiraCollector {
            name: name.to_owned(),
            deployment: Deployment::of(cfg.deployment, &root),
            root,
            host,
            cfg: cfg.clone(),
            http: atlassian::client(
                name,
                common,
                cfg.email.as_deref(),
                "the Browse projects permission",
            )?,
        })
    }

    fn jql(&self, since: Option<&str>) -> String {
        let mut parts = Vec::new();
        if !self.cfg.projects.is_empty() {
            parts.push(format!(
                "project in ({})",
                self.cfg
                    .projects
                    .iter()
                    .map(|p| quote(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(j) = self.cfg.jql.as_deref().filter(|j| !j.trim().is_empty()) {
            parts.push(format!("({j})"));
        }
        if let Some(t) = since.and_then(atlassian::parse_time) {
            parts.push(format!(
                "updated >= {}",
                quote(&(t - Duration::days(1)).format("%Y/%m/%d %H:%M").to_string())
            ));
        }
        let cond = parts.join(" AND ");
        format!(
            "{cond}{}ORDER BY updated ASC, key ASC",
            if cond.is_empty() { "" } else { " " }
        )
    }

    async fn search(
        &self,
        jql: &str,
        mut each: impl FnMut(Vec<Value>),
    ) -> Result<(), CollectError> {
        let mut token: Option<String> = None;
        let mut start = 0u64;
        loop {
            let s = start.to_string();
            let mut q = vec![
                ("jql", jql),
                ("maxResults", PAGE),
                ("fields", "*all"),
                ("expand", "changelog"),
            ];
            let url = match self.deployment {
                Deployment::Cloud => {
                    q.extend(token.as_deref().map(|t| ("nextPageToken", t)));
                    endpoint(&self.root, "rest/api/3/search/jql", &q)
                }
                Deployment::Datacenter => {
                    q.push(("startAt", &s));
                    endpoint(&self.root, "rest/api/2/search", &q)
                }
            };
            let page: SearchPage = self.http.get_json(&url).await?;
            let n = page.issues.len() as u64;
            each(page.issues);
            match self.deployment {
                Deployment::Cloud => match page
                    .next_page_token
                    .filter(|t| !t.is_empty() && page.is_last != Some(true))
                {
                    Some(t) => token = Some(t),
                    None => return Ok(()),
                },
                Deployment::Datacenter => {
                    start = page.start_at.unwrap_or(start) + n;
                    if n == 0 || page.total.is_none_or(|t| start >= t) {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn scan(
        &self,
        cx: &CollectContext,
        cursor: Option<&Cursor>,
    ) -> Result<Batch, CollectError> {
        let since = cursor.filter(|_| !cx.full).map(|c| c.0.clone());
        let mut batch = Batch::default();
        let mut newest = since.clone();
        let mut issues = Vec::new();
        self.search(&self.jql(since.as_deref()), |page| issues.extend(page))
            .await?;
        for issue in &issues {
            let (Some(key), Some(updated)) =
                (issue["key"].as_str(), issue["fields"]["updated"].as_str())
            else {
                return Err(CollectError::schema(format!(
                    "{}: an issue without key or fields.updated in the search results",
                    self.name
                )));
            };
            let at = atlassian::parse_time(updated);
            if at.is_some()
                && newest
                    .as_deref()
                    .and_then(atlassian::parse_time)
                    .is_none_or(|n| at > Some(n))
            {
                newest = Some(updated.to_owned());
            }
            let uri = format!("jira://{}/browse/{key}", self.host);
            if unchanged(cx, &uri, updated) {
                batch.unchanged += 1;
                continue;
            }
            let f = &issue["fields"];
            let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
            let labels: Vec<String> = f["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            let components: Vec<String> = f["components"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| text(&c["name"]))
                .collect();
            let issue_type = text(&f["issuetype"]["name"]);
            let summary = text(&f["summary"]);
            let mut o = json_observation(uri, "ticket", issue, updated.to_owned());
            o.title = Some(format!("{key} {summary}"));
            o.created_at = f["created"].as_str().and_then(atlassian::parse_time);
            o.updated_at = at;
            o.control_hints = labels
                .iter()
                .chain(&components)
                .filter_map(|l| words::label_control(l))
                .collect();
            o.default_controls = words::ticket_controls(&format!(
                "{issue_type} {} {} {summary}",
                labels.join(" "),
                components.join(" ")
            ));
            o.labels = labels
                .into_iter()
                .chain(components.into_iter().map(|c| format!("component:{c}")))
                .collect();
            batch.observations.push(o);
        }
        batch.cursor = newest.map(Cursor);
        batch.requests = self.http.requests();
        Ok(batch)
    }
}

#[async_trait::async_trait]
impl Collector for JiraCollector {
    fn kind(&self) -> &'static str {
        "jira"
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
        let path = match self.deployment {
            Deployment::Cloud => "rest/api/3/myself",
            Deployment::Datacenter => "rest/api/2/myself",
        };
        self.http
            .get(&endpoint(&self.root, path, &[]), None)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jql_is_built_and_quoted() {
        let common = Common::default();
        let cfg = JiraConfig {
            url: "https://acme.atlassian.net".into(),
            projects: vec!["AI".into(), "GOV\"X".into()],
            jql: Some("labels = aims".into()),
            deployment: None,
            email: None,
        };
        let j = JiraCollector::new("j", &cfg, &common).unwrap();
        assert_eq!(j.deployment, Deployment::Cloud);
        assert_eq!(
            j.jql(Some("2026-11-22T14:15:00.000+0000")),
            r#"project in ("AI", "GOV\"X") AND (labels = aims) AND updated >= "2026/11/21 14:15" ORDER BY updated ASC, key ASC"#
        );
        let bare = JiraCollector::new(
            "j",
            &JiraConfig {
                projects: vec![],
                jql: None,
                ..cfg
            },
            &common,
        )
        .unwrap();
        assert_eq!(bare.jql(None), "ORDER BY updated ASC, key ASC");
    }
}
