//! Maps artefacts to controls: the collector's `controls`, the `[[rules]]`, the hints the
//! artefact carries itself, and the defaults for what it is ([`defaults`]). Results are
//! deduplicated and in catalogue order.

pub mod defaults;

use std::collections::HashMap;
use std::path::Path;
use std::sync::LazyLock;

use globset::GlobMatcher;

use crate::catalog::Catalog;
use crate::config::{ControlId, RuleConfig};

static ORDER: LazyLock<HashMap<&'static str, usize>> = LazyLock::new(|| {
    Catalog::get()
        .all()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect()
});

/// What rules can match on.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Collector name.
    pub collector: &'a str,
    /// Artefact kind.
    pub kind: &'a str,
    /// Path relative to the collector's root, when it has one.
    pub path: Option<&'a str>,
    /// Artefact URI.
    pub uri: &'a str,
    /// Title.
    pub title: Option<&'a str>,
}

/// A rule with its globs compiled once.
#[derive(Debug, Clone)]
struct CompiledRule {
    rule: RuleConfig,
    path: Option<GlobMatcher>,
    uri: Option<GlobMatcher>,
}

/// The configured mapping rules.
#[derive(Debug, Clone, Default)]
pub struct Mapper {
    rules: Vec<CompiledRule>,
}

impl Mapper {
    /// A mapper applying `rules` in order.
    pub fn new(rules: Vec<RuleConfig>) -> Self {
        let rules = rules
            .into_iter()
            .map(|rule| CompiledRule {
                path: rule.matches.path.as_ref().map(|g| g.0.compile_matcher()),
                uri: rule.matches.uri.as_ref().map(|g| g.0.compile_matcher()),
                rule,
            })
            .collect();
        Mapper { rules }
    }

    /// The controls for `subject`: `base` (the collector's), `hints` (named by the artefact
    /// itself), `defaults` (the collector kind's suggestions) and every matching rule's. A
    /// matching rule with `replace = true` drops the defaults.
    pub fn controls(
        &self,
        subject: &Subject<'_>,
        base: &[ControlId],
        hints: &[&'static str],
        defaults: &[&'static str],
    ) -> Vec<String> {
        let mut ids: Vec<&'static str> = base.iter().map(|c| c.0).collect();
        ids.extend_from_slice(hints);
        let mut keep_defaults = true;
        for rule in &self.rules {
            if matches(rule, subject) {
                ids.extend(rule.rule.controls.iter().map(|c| c.0));
                keep_defaults &= !rule.rule.replace;
            }
        }
        if keep_defaults {
            ids.extend_from_slice(defaults);
        }
        sort_controls(&mut ids);
        ids.into_iter().map(str::to_owned).collect()
    }
}

/// Sorts control ids into catalogue order and removes duplicates.
pub fn sort_controls(ids: &mut Vec<&'static str>) {
    ids.sort_by_key(|id| ORDER.get(id).copied().unwrap_or(usize::MAX));
    ids.dedup();
}

fn matches(rule: &CompiledRule, s: &Subject<'_>) -> bool {
    let m = &rule.rule.matches;
    m.collector.as_deref().is_none_or(|c| c == s.collector)
        && m.kind.as_deref().is_none_or(|k| k == s.kind)
        && rule
            .path
            .as_ref()
            .is_none_or(|g| s.path.is_some_and(|p| g.is_match(Path::new(p))))
        && rule.uri.as_ref().is_none_or(|g| g.is_match(s.uri))
        && m.title
            .as_ref()
            .is_none_or(|re| s.title.is_some_and(|t| re.0.is_match(t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn rules_add_controls_in_catalogue_order() {
        let cfg = Config::parse(
            r#"
[ledger]
path = "s"
origin = "o"
[[collectors]]
name = "docs"
kind = "filesystem"
root = "d"
[[rules]]
match = { collector = "docs", path = "impact/**" }
controls = ["A.5.3", "A.2.2"]
[[rules]]
match = { title = "^model card" }
controls = ["A.6.2.7"]
[[rules]]
match = { kind = "ci_run", title = "nightly" }
controls = ["A.6.2.6"]
replace = true
"#,
            Path::new("/x/c.toml"),
        )
        .unwrap();
        let m = Mapper::new(cfg.rules);
        let subject = Subject {
            collector: "docs",
            kind: "document",
            path: Some("impact/fraud.md"),
            uri: "file://docs/impact/fraud.md",
            title: Some("Model Card: fraud"),
        };
        assert_eq!(
            m.controls(&subject, &[ControlId("A.2.2")], &["9.2"], &["A.6.2.8"]),
            vec!["A.2.2", "A.5.3", "A.6.2.7", "A.6.2.8", "9.2"]
        );
        let other = Subject {
            path: Some("policy.md"),
            title: None,
            ..subject
        };
        assert_eq!(m.controls(&other, &[], &[], &[]), Vec::<String>::new());
        let nightly = Subject {
            kind: "ci_run",
            title: Some("nightly eval"),
            ..subject
        };
        // The replace rule drops the default A.6.2.4 but keeps hints and other rules.
        assert_eq!(
            m.controls(&nightly, &[], &["A.7.4"], &["A.6.2.4"]),
            vec!["A.2.2", "A.5.3", "A.6.2.6", "A.7.4"]
        );
    }
}
