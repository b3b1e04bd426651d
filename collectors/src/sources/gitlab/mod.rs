//! GitLab: CI pipelines ([`ci`]) and issues ([`issues`]), sharing the project's API root
//! and the `PRIVATE-TOKEN` client.

pub mod ci;
pub mod issues;

use reqwest::Url;

use crate::CollectError;
use crate::http::{Auth, Http};
use crate::sources::Common;
use crate::sources::record::{api_root, endpoint, segment};

/// `<api>/api/v4/projects/<id or path>/` and the host, for every GitLab collector.
pub(crate) fn project_api(
    name: &str,
    project: &str,
    api_url: &str,
) -> Result<(Url, String), CollectError> {
    if project.trim().is_empty() {
        return Err(CollectError::Config(format!(
            "collector `{name}`: project must be an id or a path such as \"group/project\""
        )));
    }
    let (root, host) = api_root(name, "api_url", api_url, "api/v4/")?;
    Ok((
        endpoint(&root, &format!("projects/{}/", segment(project)), &[]),
        host,
    ))
}

/// The GitLab client: the token goes in `PRIVATE-TOKEN`.
pub(crate) fn client(name: &str, common: &Common) -> Result<Http, CollectError> {
    common.http(
        name,
        |t| Auth::Header("private-token", t),
        "the `read_api` scope (Reporter role)",
        &[],
    )
}

/// gitlab.com, the default `api_url`.
pub(crate) fn default_api() -> String {
    "https://gitlab.com".into()
}
