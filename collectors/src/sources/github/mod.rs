//! GitHub: Actions workflow runs ([`actions`]) and issues ([`issues`]), sharing the REST
//! API's headers, its repository root and GitHub Enterprise's base URL.

pub mod actions;
pub mod issues;

use reqwest::Url;

use crate::CollectError;
use crate::sources::record::{api_root, endpoint, segment};

/// Headers GitHub asks REST clients to send.
pub(crate) const HEADERS: &[(&str, &str)] = &[
    ("accept", "application/vnd.github+json"),
    ("x-github-api-version", "2022-11-28"),
];

/// `<api>/repos/<owner>/<name>/` and the API host, for every GitHub collector.
pub(crate) fn repo_api(
    name: &str,
    repo: &str,
    api_url: &str,
) -> Result<(Url, String), CollectError> {
    let Some((owner, r)) = repo
        .split_once('/')
        .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
    else {
        return Err(CollectError::Config(format!(
            "collector `{name}`: repo {repo:?} must be \"owner/name\""
        )));
    };
    let (root, host) = api_root(name, "api_url", api_url, "")?;
    Ok((
        endpoint(
            &root,
            &format!("repos/{}/{}/", segment(owner), segment(r)),
            &[],
        ),
        host,
    ))
}

/// github.com's REST API root, the default `api_url`.
pub(crate) fn default_api() -> String {
    "https://api.github.com".into()
}
