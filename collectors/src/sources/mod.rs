//! The source systems, chosen by `kind` in the config.

#[cfg(feature = "atlassian")]
pub mod atlassian;
#[cfg(feature = "buildbot")]
pub mod buildbot;
pub mod command;
pub mod download;
pub mod filesystem;
#[cfg(feature = "github")]
pub mod github;
#[cfg(feature = "gitlab")]
pub mod gitlab;
#[cfg(feature = "huggingface")]
pub mod huggingface;
#[cfg(any(feature = "github", feature = "gitlab"))]
pub mod issues;
#[cfg(feature = "jenkins")]
pub mod jenkins;
#[cfg(feature = "mlflow")]
pub mod mlflow;
pub mod record;
#[cfg(feature = "redmine")]
pub mod redmine;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "webdav")]
pub mod webdav;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::driver::Driven;
use crate::http::{Auth, Http, HttpOptions, Token, TokenSource};
use crate::{CollectError, Collector};

/// Declares every kind once: the config enum's variant and settings, the `kind = "…"` word,
/// and the [`Source`] that runs it. `kind`, `KINDS` and `build` come from this list.
macro_rules! sources {
    ($( $(#[cfg($on:meta)])? $(#[doc = $doc:literal])* $variant:ident($cfg:ty) = $kind:literal => $source:ty, )*) => {
        /// Source-specific configuration of a `[[collectors]]` table, tagged by `kind`.
        ///
        /// Each variant rejects keys it does not know, so a typo in a config is an error
        /// rather than a silently ignored setting.
        #[derive(Debug, Clone, Deserialize)]
        #[serde(tag = "kind")]
        pub enum SourceConfig {
            $( $(#[cfg($on)])? $(#[doc = $doc])* #[serde(rename = $kind)] $variant($cfg), )*
        }

        impl SourceConfig {
            /// The `kind` string.
            pub fn kind(&self) -> &'static str {
                match self {
                    $( $(#[cfg($on)])? SourceConfig::$variant(_) => $kind, )*
                }
            }

            /// Every kind this build has, for documentation and tests.
            pub const KINDS: &'static [&'static str] = &[$( $(#[cfg($on)])? $kind ),*];

            /// Kinds this build leaves out (their Cargo feature was off), so a config naming
            /// one is told why rather than that the kind does not exist.
            pub const LEFT_OUT: &'static [&'static str] = &[$( $( #[cfg(not($on))] $kind, )? )*];

            /// Builds the running collector named `name`.
            pub fn build(
                &self,
                name: &str,
                common: &Common,
            ) -> Result<Box<dyn Collector>, CollectError> {
                match self {
                    $( $(#[cfg($on)])? SourceConfig::$variant(c) => Driven::<$source>::build(name, $kind, c, common), )*
                }
            }
        }
    };
}

sources! {
    /// A local or mounted folder of documents.
    Filesystem(filesystem::FilesystemConfig) = "filesystem" => filesystem::FilesystemCollector,
    #[cfg(feature = "mlflow")]
    /// An MLflow model registry.
    Mlflow(mlflow::MlflowConfig) = "mlflow" => mlflow::MlflowCollector,
    #[cfg(feature = "huggingface")]
    /// Models and datasets on the Hugging Face Hub.
    Huggingface(huggingface::HuggingfaceConfig) = "huggingface" => huggingface::HuggingfaceCollector,
    #[cfg(feature = "buildbot")]
    /// A Buildbot master.
    Buildbot(buildbot::BuildbotConfig) = "buildbot" => buildbot::BuildbotCollector,
    #[cfg(feature = "github")]
    /// GitHub Actions workflow runs of one repository.
    GithubActions(github::actions::GithubActionsConfig) = "github_actions" => github::actions::GithubActionsCollector,
    #[cfg(feature = "gitlab")]
    /// GitLab CI pipelines of one project.
    GitlabCi(gitlab::ci::GitlabCiConfig) = "gitlab_ci" => gitlab::ci::GitlabCiCollector,
    #[cfg(feature = "jenkins")]
    /// Jenkins jobs.
    Jenkins(jenkins::JenkinsConfig) = "jenkins" => jenkins::JenkinsCollector,
    /// Any program printing JSON-lines observations.
    Command(command::CommandConfig) = "command" => command::CommandCollector,
    #[cfg(feature = "webdav")]
    /// A WebDAV folder.
    Webdav(webdav::WebdavConfig) = "webdav" => webdav::WebdavCollector,
    #[cfg(feature = "s3")]
    /// An S3-compatible bucket.
    S3(s3::S3Config) = "s3" => s3::S3Collector,
    #[cfg(feature = "redmine")]
    /// Redmine issues.
    Redmine(redmine::RedmineConfig) = "redmine" => redmine::RedmineCollector,
    #[cfg(feature = "github")]
    /// GitHub issues of one repository.
    GithubIssues(github::issues::GithubIssuesConfig) = "github_issues" => github::issues::GithubIssues,
    #[cfg(feature = "gitlab")]
    /// GitLab issues of one project.
    GitlabIssues(gitlab::issues::GitlabIssuesConfig) = "gitlab_issues" => gitlab::issues::GitlabIssues,
    #[cfg(feature = "atlassian")]
    /// Jira issues (Cloud or Data Center).
    Jira(atlassian::jira::JiraConfig) = "jira" => atlassian::jira::JiraCollector,
    #[cfg(feature = "atlassian")]
    /// Confluence pages (Cloud or Data Center).
    Confluence(atlassian::confluence::ConfluenceConfig) = "confluence" => atlassian::confluence::ConfluenceCollector,
}

/// Settings every collector kind shares, from the `[[collectors]]` table.
#[derive(Debug, Clone)]
pub struct Common {
    /// Where the API token comes from.
    pub token: TokenSource,
    /// Per-request timeout (API collectors) or whole-run timeout (`command`).
    pub timeout: Option<Duration>,
    /// Requests per second to one host.
    pub rate_limit: Option<f64>,
    /// Above this size content is not downloaded (document stores) or not kept (files).
    pub max_file_size: u64,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            token: TokenSource::default(),
            timeout: None,
            rate_limit: None,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// Default size above which only the hash (files) or the metadata (downloads) is kept.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 100 << 20;

impl Common {
    /// The HTTP client for collector `name`; `auth` builds the credential from the token.
    pub fn http(
        &self,
        name: &str,
        auth: impl FnOnce(Token) -> Auth,
        permission_hint: &'static str,
        headers: &[(&'static str, &'static str)],
    ) -> Result<Http, CollectError> {
        let auth = match self.token.load(name)? {
            Some(t) => auth(t),
            None => Auth::None,
        };
        let mut opts = HttpOptions {
            rate_limit: self.rate_limit,
            permission_hint,
            headers: headers.to_vec(),
            ..HttpOptions::default()
        };
        if let Some(t) = self.timeout {
            opts.timeout = t;
        }
        Http::new(name, auth, opts)
    }
}

impl SourceConfig {
    /// Makes relative paths absolute against `base` (the config file's directory), then
    /// passes each path through `clean`.
    pub fn resolve_paths(&mut self, base: &Path, clean: impl Fn(&Path) -> PathBuf) {
        match self {
            SourceConfig::Filesystem(c) => c.root = clean(&base.join(&c.root)),
            SourceConfig::Command(c) => c.resolve(base, clean),
            // Unreachable in a build with no remote source family.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// Checks what parsing cannot (URLs, names, which shared keys apply), so `config check`
    /// refuses a collector that could never run.
    pub fn validate(&self, name: &str, common: &Common) -> Result<(), String> {
        let remote = !matches!(self, SourceConfig::Filesystem(_) | SourceConfig::Command(_));
        let has_token = common.token.token_env.is_some() || common.token.token_file.is_some();
        if !remote && (has_token || common.rate_limit.is_some()) {
            return Err(format!(
                "collector `{name}`: token_env, token_file and rate_limit apply to API collectors, not to kind = \"{}\"",
                self.kind()
            ));
        }
        if matches!(self, SourceConfig::Filesystem(_)) && common.timeout.is_some() {
            return Err(format!(
                "collector `{name}`: timeout does not apply to kind = \"filesystem\""
            ));
        }
        if let Some(r) = common
            .rate_limit
            .filter(|r| !(0.001..=10_000.0).contains(r))
        {
            return Err(format!(
                "collector `{name}`: rate_limit must be between 0.001 and 10000 requests per second, not {r}"
            ));
        }
        self.build(
            name,
            &Common {
                token: TokenSource::default(),
                ..common.clone()
            },
        )
        .map(drop)
        .map_err(|e| e.to_string())
    }
}

/// `true`, for serde defaults of switches that are on unless turned off.
#[cfg(any(feature = "huggingface", feature = "github", feature = "gitlab"))]
pub(crate) fn yes() -> bool {
    true
}

/// A validated glob pattern, as written in a config.
#[derive(Debug, Clone)]
pub struct GlobPattern(pub globset::Glob);

impl<'de> Deserialize<'de> for GlobPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        glob(&s).map(GlobPattern).map_err(serde::de::Error::custom)
    }
}

/// Compiles one glob with Evident's conventions: `*` stays within a directory, `**` crosses.
pub fn glob(pattern: &str) -> Result<globset::Glob, String> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("invalid glob pattern {pattern:?}: {}", e.kind()))
}

/// Builds a set from validated patterns.
pub fn glob_set(patterns: &[GlobPattern]) -> globset::GlobSet {
    let mut b = globset::GlobSetBuilder::new();
    for p in patterns {
        b.add(p.0.clone());
    }
    // Every pattern already compiled alone, so the set builds; an empty set matches nothing.
    b.build().unwrap_or_else(|_| globset::GlobSet::empty())
}
