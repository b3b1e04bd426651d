//! Atlassian: Jira ([`jira`]) and Confluence ([`confluence`]), and what they share: Cloud
//! or Data Center, and how each authenticates (Cloud: email + API token, basic; Data
//! Center: a personal access token, bearer).

pub mod confluence;
pub mod jira;

use serde::Deserialize;

use super::Common;
use crate::CollectError;
use crate::http::{Auth, Http};

/// Atlassian Cloud or a self-managed Data Center / Server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deployment {
    /// `*.atlassian.net`.
    Cloud,
    /// Data Center or Server.
    Datacenter,
}

impl Deployment {
    /// The configured deployment, else Cloud for `*.atlassian.net` hosts.
    pub fn of(configured: Option<Deployment>, url: &reqwest::Url) -> Deployment {
        configured.unwrap_or(match url.host_str() {
            Some(h) if h.ends_with(".atlassian.net") => Deployment::Cloud,
            _ => Deployment::Datacenter,
        })
    }
}

/// The client: basic auth with `email` and the token when an email is given (Cloud API
/// tokens), else the token as a bearer (Data Center personal access tokens).
pub fn client(
    name: &str,
    common: &Common,
    email: Option<&str>,
    hint: &'static str,
) -> Result<Http, CollectError> {
    let email = email.map(str::to_owned);
    common.http(
        name,
        move |t| match email {
            Some(user) => Auth::Basic { user, token: t },
            None => Auth::Bearer(t),
        },
        hint,
        &[("accept", "application/json")],
    )
}

/// Jira's and Confluence's times (`2026-11-22T14:15:00.000+0000`, or RFC 3339).
pub fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|| super::record::parse_time(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_deployments() {
        assert_eq!(
            parse_time("2026-11-22T14:15:00.000+0000")
                .unwrap()
                .to_rfc3339(),
            "2026-11-22T14:15:00+00:00"
        );
        assert_eq!(
            parse_time("2026-11-22T15:15:00.000+0100")
                .unwrap()
                .to_rfc3339(),
            "2026-11-22T14:15:00+00:00"
        );
        assert!(parse_time("2026-11-22T14:15:00Z").is_some());
        let cloud = reqwest::Url::parse("https://acme.atlassian.net/").unwrap();
        let dc = reqwest::Url::parse("https://jira.acme.internal/").unwrap();
        assert_eq!(Deployment::of(None, &cloud), Deployment::Cloud);
        assert_eq!(Deployment::of(None, &dc), Deployment::Datacenter);
        assert_eq!(
            Deployment::of(Some(Deployment::Cloud), &dc),
            Deployment::Cloud
        );
    }
}
