//! The source systems, chosen by `kind` in the config.

pub mod filesystem;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Collector;

/// Source-specific configuration of a `[[collectors]]` table, tagged by `kind`.
///
/// Each variant rejects keys it does not know, so a typo in a config is an error rather
/// than a silently ignored setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceConfig {
    /// A local or mounted folder of documents.
    Filesystem(filesystem::FilesystemConfig),
}

impl SourceConfig {
    /// The `kind` string.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Filesystem(_) => "filesystem",
        }
    }

    /// Makes relative paths absolute against `base` (the config file's directory), then
    /// passes each path through `clean`.
    pub fn resolve_paths(&mut self, base: &Path, clean: impl Fn(&Path) -> PathBuf) {
        match self {
            SourceConfig::Filesystem(c) => c.root = clean(&base.join(&c.root)),
        }
    }

    /// Builds the running collector named `name`.
    pub fn build(&self, name: &str) -> Box<dyn Collector> {
        match self {
            SourceConfig::Filesystem(c) => Box::new(filesystem::FilesystemCollector::new(name, c)),
        }
    }
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
