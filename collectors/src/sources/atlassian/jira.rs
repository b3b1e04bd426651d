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

use super::{self as atlassian, Deployment};
use crate::driver::{Run, Source};
use crate::hints::label_control;
use crate::http::{Dialect, Http, Pages};
use crate::sources::Common;
use crate::sources::record::{api_root, endpoint, json_observation};
use crate::{CollectContext, CollectError, Observation, Suggest};

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
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl JiraCollector {
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

    /// The search's pages: Cloud pages by token, Data Center by `startAt`.
    fn search(&self, jql: &str) -> Pages<'_> {
        let q = [
            ("jql", jql),
            ("maxResults", PAGE),
            ("fields", "*all"),
            ("expand", "changelog"),
        ];
        match self.deployment {
            Deployment::Cloud => self.http.pages(
                endpoint(&self.root, "rest/api/3/search/jql", &q),
                Dialect::Token {
                    field: "nextPageToken",
                    param: "nextPageToken",
                    last: Some("isLast"),
                },
            ),
            Deployment::Datacenter => self.http.pages(
                endpoint(&self.root, "rest/api/2/search", &q),
                Dialect::Offset {
                    param: "startAt",
                    total: "total",
                    items: "issues",
                },
            ),
        }
    }

    /// The observation of one issue from the search results.
    fn observation(&self, issue: &Value, key: &str, updated: &str) -> Observation {
        let uri = format!("jira://{}/browse/{key}", self.host);
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
        o.updated_at = atlassian::parse_time(updated);
        o.control_hints = labels
            .iter()
            .chain(&components)
            .filter_map(|l| label_control(l))
            .collect();
        o.suggest = Suggest::Ticket(format!(
            "{issue_type} {} {} {summary}",
            labels.join(" "),
            components.join(" ")
        ));
        o.labels = labels
            .into_iter()
            .chain(components.into_iter().map(|c| format!("component:{c}")))
            .collect();
        o
    }
}

#[async_trait::async_trait]
impl Source for JiraCollector {
    type Config = JiraConfig;

    fn new(name: &str, cfg: &JiraConfig, common: &Common) -> Result<Self, CollectError> {
        let (root, host) = api_root(name, "url", &cfg.url, "")?;
        Ok(JiraCollector {
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

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        let since = run.cursor().map(str::to_owned);
        let mut newest = since.clone();
        let mut pages = self.search(&self.jql(since.as_deref()));
        while let Some(page) = pages.next::<SearchPage>().await? {
            for issue in &page.issues {
                let (Some(key), Some(updated)) =
                    (issue["key"].as_str(), issue["fields"]["updated"].as_str())
                else {
                    return Err(CollectError::schema(format!(
                        "{}: an issue without key or fields.updated in the search results",
                        run.name()
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
                let o = self.observation(issue, key, updated);
                if !run.unchanged(&o.uri, updated) {
                    run.push(o);
                }
            }
        }
        if let Some(n) = newest {
            run.set_cursor(n);
        }
        Ok(())
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

    fn http(&self) -> Option<&Http> {
        Some(&self.http)
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
