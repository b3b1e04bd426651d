//! The issues collector both forges share (`github_issues`, `gitlab_issues`): issues with
//! labels, state and their timeline (GitHub) or notes (GitLab). Each forge's settings live
//! in its own module and build a [`Forged`] collector with the client of its CI collector.
//!
//! Issues are listed by update time ascending after the cursor (`since` / `updated_after`);
//! one observation per issue version holds the canonical JSON of the issue and its history,
//! so each change of a ticket is a new entry and an unchanged one is not. Pull requests,
//! which GitHub lists among issues, are skipped.

use reqwest::Url;
use serde_json::Value;

use super::Common;
use super::record::{endpoint, json_observation, parse_time};
use crate::driver::{Run, Source};
use crate::hints::label_control;
use crate::http::{Dialect, Http};
use crate::{CollectContext, CollectError, Observation, Suggest};

/// Which forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forge {
    /// GitHub (numbers, timelines, `Link` pages).
    Github,
    /// GitLab (iids, notes, `X-Next-Page`).
    Gitlab,
}

/// A running issues collector for the forge whose settings are `C`.
pub struct IssuesCollector<C> {
    forged: Forged,
    config: std::marker::PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for IssuesCollector<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.forged.fmt(f)
    }
}

/// An issues collector built for one forge.
#[derive(Debug)]
pub struct Forged {
    forge: Forge,
    api: Url,
    host: String,
    scope: String,
    labels: Vec<String>,
    history: bool,
    http: Http,
}

/// The settings of one forge's issues collector.
pub trait ForgeConfig: Send + Sync + 'static {
    /// The collector for these settings.
    fn build(&self, name: &str, common: &Common) -> Result<Forged, CollectError>;
}

impl Forged {
    /// The issues of `scope` (a repository or project) on `forge`, under `api` on `host`.
    pub(crate) fn new(
        forge: Forge,
        api: Url,
        host: String,
        scope: &str,
        labels: &[String],
        history: bool,
        http: Http,
    ) -> Forged {
        Forged {
            forge,
            api,
            host,
            scope: scope.to_owned(),
            labels: labels.to_vec(),
            history,
            http,
        }
    }

    /// Pages in this forge's dialect.
    fn dialect(&self) -> Dialect {
        match self.forge {
            Forge::Github => Dialect::Link,
            Forge::Gitlab => Dialect::PageHeader,
        }
    }

    /// The issues updated since `since`, oldest first.
    async fn list(&self, since: Option<&str>) -> Result<Vec<Value>, CollectError> {
        let labels = self.labels.join(",");
        let mut q = vec![("state", "all"), ("per_page", "100")];
        match self.forge {
            Forge::Github => {
                q.extend([("sort", "updated"), ("direction", "asc")]);
                q.extend(since.map(|s| ("since", s)));
            }
            Forge::Gitlab => {
                q.extend([
                    ("scope", "all"),
                    ("order_by", "updated_at"),
                    ("sort", "asc"),
                ]);
                q.extend(since.map(|s| ("updated_after", s)));
            }
        }
        q.extend(
            Some(labels.as_str())
                .filter(|l| !l.is_empty())
                .map(|l| ("labels", l)),
        );
        self.http
            .pages(endpoint(&self.api, "issues", &q), self.dialect())
            .all(|v: Vec<Value>| v)
            .await
    }

    /// An issue's timeline (GitHub) or notes (GitLab).
    async fn history(&self, number: u64) -> Result<Vec<Value>, CollectError> {
        let first = match self.forge {
            Forge::Github => endpoint(
                &self.api,
                &format!("issues/{number}/timeline"),
                &[("per_page", "100")],
            ),
            Forge::Gitlab => endpoint(
                &self.api,
                &format!("issues/{number}/notes"),
                &[("sort", "asc"), ("per_page", "100")],
            ),
        };
        self.http
            .pages(first, self.dialect())
            .all(|v: Vec<Value>| v)
            .await
    }

    fn observation(
        &self,
        issue: &Value,
        history: Option<Vec<Value>>,
        uri: String,
        version: String,
    ) -> Observation {
        let number = self.number(issue).unwrap_or(0);
        let title = issue["title"].as_str().unwrap_or("");
        let labels: Vec<String> = issue["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str().or_else(|| l["name"].as_str()).map(str::to_owned))
            .collect();
        // GitHub issue types (`type.name`), GitLab's `issue_type` (`incident`, `test_case`).
        let kind = issue["type"]["name"]
            .as_str()
            .or_else(|| issue["issue_type"].as_str())
            .unwrap_or("");
        let record = serde_json::json!({"forge": match self.forge { Forge::Github => "github", Forge::Gitlab => "gitlab" }, "scope": self.scope, "issue": issue, "history": history});
        let mut o = json_observation(uri, "ticket", &record, version);
        o.title = Some(format!("#{number} {title}"));
        o.created_at = issue["created_at"].as_str().and_then(parse_time);
        o.updated_at = issue["updated_at"].as_str().and_then(parse_time);
        o.control_hints = labels.iter().filter_map(|l| label_control(l)).collect();
        o.suggest = Suggest::Ticket(format!("{kind} {} {title}", labels.join(" ")));
        o.labels = labels;
        o
    }

    fn number(&self, issue: &Value) -> Option<u64> {
        match self.forge {
            Forge::Github => issue["number"].as_u64(),
            Forge::Gitlab => issue["iid"].as_u64(),
        }
    }
}

#[async_trait::async_trait]
impl<C: ForgeConfig> Source for IssuesCollector<C> {
    type Config = C;

    fn new(name: &str, cfg: &C, common: &Common) -> Result<Self, CollectError> {
        Ok(IssuesCollector {
            forged: cfg.build(name, common)?,
            config: std::marker::PhantomData,
        })
    }

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        let f = &self.forged;
        let since = run.cursor().map(str::to_owned);
        let mut newest = since.clone();
        for issue in &f.list(since.as_deref()).await? {
            if f.forge == Forge::Github && !issue["pull_request"].is_null() {
                continue;
            }
            let Some(number) = f.number(issue) else {
                return Err(CollectError::schema(format!(
                    "{}: an issue without a number in {}",
                    run.name(),
                    f.api
                )));
            };
            let updated = issue["updated_at"].as_str().unwrap_or("").to_owned();
            if newest.as_ref().is_none_or(|n| updated > *n) {
                newest = Some(updated.clone());
            }
            let uri = format!(
                "{}://{}/{}/issues/{number}",
                match f.forge {
                    Forge::Github => "github",
                    Forge::Gitlab => "gitlab",
                },
                f.host,
                f.scope
            );
            if run.unchanged(&uri, &updated) {
                continue;
            }
            let history = if f.history {
                let Some(h) = run.item(&uri, f.history(number).await)? else {
                    continue;
                };
                Some(h)
            } else {
                None
            };
            run.push(f.observation(issue, history, uri, updated));
        }
        if let Some(n) = newest {
            run.set_cursor(n);
        }
        Ok(())
    }

    async fn check(&self, _cx: &CollectContext) -> Result<(), CollectError> {
        let f = &self.forged;
        let page = endpoint(&f.api, "issues", &[("per_page", "1")]);
        f.http.get(&page, None).await.map(drop)
    }

    fn http(&self) -> Option<&Http> {
        Some(&self.forged.http)
    }
}
