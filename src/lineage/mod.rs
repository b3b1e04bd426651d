//! Lifecycle chains (issue 17): the identifiers already in the evidence (an MLflow run id
//! or model version, a commit, a ticket key, a document's `relates:`) link entries into
//! chains such as model version → training run → deployment → approval, and `[[expect]]`
//! rules turn a missing link into a finding.
//!
//! Rules (`[[links]]`, after the built-in `default-links.toml`) read an entry's signed leaf
//! and the content its digest commits to, so anyone holding both recomputes every link.
//! [`graph::Graph`] holds the current version of every artefact with its identifiers.

/// The link graph, chains and gaps.
pub mod graph;

use std::borrow::Cow;

use globset::GlobMatcher;
use serde_json::Value;

use crate::config::lineage::{Expectation, LinkRule, Selector, placeholders};
use crate::ledger::leaf::{LeafStr, LeafView};

/// The built-in `[[links]]` rules, as TOML.
pub const DEFAULT_LINKS: &str = include_str!("default-links.toml");

/// The most content a rule reads of one entry.
pub const MAX_CONTENT: u64 = 1 << 20;

/// A selector with its glob compiled.
#[derive(Debug, Clone)]
struct Select {
    sel: Selector,
    uri: Option<GlobMatcher>,
}

/// A link rule ready to run.
#[derive(Debug, Clone)]
struct Link {
    from: Select,
    rule: LinkRule,
}

/// An expectation ready to run.
#[derive(Debug, Clone)]
pub struct Expect {
    /// As configured.
    pub config: Expectation,
    every: Select,
    linked_to: Select,
}

/// The link rules (built-in, then configured) and the expectations.
#[derive(Debug, Clone)]
pub struct Rules {
    links: Vec<Link>,
    /// The expectations, in config order.
    pub expect: Vec<Expect>,
}

/// The built-in rules.
pub fn default_links() -> Vec<LinkRule> {
    #[derive(serde::Deserialize)]
    struct File {
        links: Vec<LinkRule>,
    }
    // The file is part of the binary and a unit test parses it.
    toml::from_str::<File>(DEFAULT_LINKS)
        .map(|f| f.links)
        .unwrap_or_default()
}

impl Select {
    fn new(sel: &Selector) -> Self {
        Select {
            sel: sel.clone(),
            uri: sel.uri.as_ref().map(|g| g.0.compile_matcher()),
        }
    }

    /// Whether the leaf's own fields match (source, kind, title, URI).
    fn leaf_matches(&self, leaf: &LeafView<'_>) -> bool {
        let p = &leaf.predicate;
        self.sel
            .source
            .as_deref()
            .is_none_or(|s| s == p.source.as_str())
            && self
                .sel
                .kind
                .as_deref()
                .is_none_or(|k| k == p.kind.as_str())
            && self
                .sel
                .title
                .as_ref()
                .is_none_or(|t| t.0.is_match(LeafStr::or_empty(&p.title)))
            && self.uri.as_ref().is_none_or(|g| g.is_match(leaf.uri()))
    }

    /// Whether the entry matches, content conditions included.
    fn matches(&self, e: &Facts<'_>) -> bool {
        self.leaf_matches(e.leaf)
            && self.sel.field.as_deref().is_none_or(|f| {
                e.json()
                    .and_then(|j| j.pointer(f))
                    .and_then(scalar)
                    .is_some_and(|v| self.sel.equals.iter().any(|w| w.eq_ignore_ascii_case(&v)))
            })
    }

    fn needs_content(&self) -> bool {
        self.sel.field.is_some()
    }
}

/// What the rules see of one entry: its leaf, and its content when read.
pub struct Facts<'a> {
    /// The leaf.
    pub leaf: &'a LeafView<'a>,
    /// The content (at most [`MAX_CONTENT`] bytes), when the entry has some and it was read.
    pub content: Option<&'a [u8]>,
    json: std::cell::OnceCell<Option<Value>>,
}

impl<'a> Facts<'a> {
    /// The facts of an entry.
    pub fn new(leaf: &'a LeafView<'a>, content: Option<&'a [u8]>) -> Self {
        Facts {
            leaf,
            content,
            json: std::cell::OnceCell::new(),
        }
    }

    /// The content as JSON, when it is.
    fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| self.content.and_then(|c| serde_json::from_slice(c).ok()))
            .as_ref()
    }

    /// The text a pattern reads.
    fn text(&self, what: &str) -> Option<Cow<'_, str>> {
        match what {
            "title" => Some(Cow::Borrowed(LeafStr::or_empty(&self.leaf.predicate.title))),
            "uri" => Some(Cow::Borrowed(self.leaf.uri())),
            "content" => self.content.map(String::from_utf8_lossy),
            pointer => self
                .json()
                .and_then(|j| j.pointer(pointer))
                .and_then(scalar)
                .map(Cow::Owned),
        }
    }
}

/// A JSON scalar as text (strings as they are, numbers and booleans as JSON writes them).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Fills a value template: `{/pointer}` from the content, `{group}` from `groups`. `None`
/// when a placeholder has no value.
fn render(template: &str, e: &Facts<'_>, groups: Option<&regex::Captures<'_>>) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        let v = if name.starts_with('/') {
            e.json().and_then(|j| j.pointer(name)).and_then(scalar)?
        } else {
            groups?.name(name)?.as_str().to_owned()
        };
        out.push_str(&v);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

impl Rules {
    /// The built-in link rules, then `links`; and `expect`.
    pub fn new(links: &[LinkRule], expect: &[Expectation]) -> Rules {
        Rules {
            links: default_links()
                .iter()
                .chain(links)
                .map(|r| Link {
                    from: Select::new(&r.from),
                    rule: r.clone(),
                })
                .collect(),
            expect: expect
                .iter()
                .map(|e| Expect {
                    config: e.clone(),
                    every: Select::new(&e.every),
                    linked_to: Select::new(&e.linked_to),
                })
                .collect(),
        }
    }

    /// Whether any rule would read this entry's content.
    pub fn needs_content(&self, leaf: &LeafView<'_>) -> bool {
        leaf.predicate.kind.as_str() == "document"
            || self.links.iter().any(|l| {
                l.from.leaf_matches(leaf)
                    && (l.from.needs_content()
                        || placeholders(&l.rule.value).any(|p| p.starts_with('/'))
                        || l.rule
                            .text
                            .as_deref()
                            .is_some_and(|t| t != "title" && t != "uri"))
            })
            || self.expect.iter().any(|e| {
                (e.every.needs_content() && e.every.leaf_matches(leaf))
                    || (e.linked_to.needs_content() && e.linked_to.leaf_matches(leaf))
            })
    }

    /// The identifiers (`key:value`) an entry names, sorted, without repeats.
    pub fn identifiers(&self, e: &Facts<'_>) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.links {
            if !l.from.matches(e) {
                continue;
            }
            let key = &l.rule.key;
            match &l.rule.pattern {
                None => {
                    if let Some(v) = render(&l.rule.value, e, None) {
                        out.push(format!("{key}:{v}"));
                    }
                }
                Some(p) => {
                    let text = e.text(l.rule.text.as_deref().unwrap_or("title"));
                    for caps in text.iter().flat_map(|t| p.0.captures_iter(t)) {
                        if let Some(v) = render(&l.rule.value, e, Some(&caps)) {
                            out.push(format!("{key}:{v}"));
                        }
                    }
                }
            }
        }
        // A document says what it concerns in its front matter.
        if e.leaf.predicate.kind.as_str() == "document"
            && let Some(c) = e.content
        {
            let hints = evident_collectors::hints::document_hints(&c[..c.len().min(64 << 10)]);
            out.extend(hints.relates.into_iter().filter(|r| r.contains(':')));
        }
        out.sort();
        out.dedup();
        out
    }

    /// For each expectation: whether the entry is one that needs a link (`every`), and
    /// whether it is one that satisfies it (`linked_to`).
    pub fn roles(&self, e: &Facts<'_>) -> Vec<(bool, bool)> {
        self.expect
            .iter()
            .map(|x| (x.every.matches(e), x.linked_to.matches(e)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(kind: &str, uri: &str, title: &str) -> Vec<u8> {
        use crate::ledger::leaf::{EntryStatement, PREDICATE_TYPE, Predicate};
        EntryStatement::new(
            PREDICATE_TYPE,
            uri,
            &"00".repeat(32),
            Predicate {
                collected_at: "2026-12-01T00:00:00Z".into(),
                kind: kind.into(),
                source: "src".into(),
                title: Some(title.into()),
                uri: Some(uri.into()),
                ..Predicate::default()
            },
        )
        .to_leaf_bytes()
    }

    fn ids(rules: &Rules, kind: &str, uri: &str, title: &str, content: &str) -> Vec<String> {
        let bytes = leaf(kind, uri, title);
        let view = LeafView::parse(&bytes).unwrap();
        rules.identifiers(&Facts::new(&view, Some(content.as_bytes())))
    }

    #[test]
    fn the_built_in_rules_parse_and_validate() {
        let links = default_links();
        assert!(links.len() >= 10, "{}", links.len());
        for l in &links {
            l.validate().unwrap();
            l.from.validate().unwrap();
        }
    }

    /// The identifiers of the built-in sources' records, and of mentions in other evidence.
    #[test]
    fn built_in_rules_find_models_runs_commits_and_tickets() {
        let r = Rules::new(&[], &[]);
        assert_eq!(
            ids(
                &r,
                "model_version",
                "mlflow://h/models/fraud/versions/3",
                "fraud v3",
                r#"{"model":"fraud","version":"3","run_id":"3f2a9c41b7d04e6f8a1b2c3d4e5f6a7b"}"#
            ),
            ["model:fraud/3", "run:3f2a9c41b7d04e6f8a1b2c3d4e5f6a7b"]
        );
        assert_eq!(
            ids(
                &r,
                "ci_run",
                "github://github.com/o/r/actions/runs/7/attempts/1",
                "Deploy #7 attempt 1 (success)",
                r#"{"run":{"head_sha":"abc","display_title":"Deploy fraud v3 (approved in #12, AIMS-4)"}}"#
            ),
            ["commit:abc", "model:fraud/3", "ticket:#12", "ticket:AIMS-4"]
        );
        assert_eq!(
            ids(
                &r,
                "ticket",
                "redmine://h/issues/12",
                "#12 Approve fraud v3",
                r#"{"id":12}"#
            ),
            ["model:fraud/3", "ticket:#12"]
        );
        assert_eq!(
            ids(
                &r,
                "document",
                "file:///d/impact.md",
                "Impact",
                "---\nrelates: [model:fraud/3, \"ticket:#12\", nocolon]\n---\n# Impact\n"
            ),
            ["model:fraud/3", "ticket:#12"]
        );
        // A run's own number in its title is not a ticket.
        assert!(
            ids(
                &r,
                "ci_run",
                "buildbot://h/builders/deploy/builds/3",
                "deploy #3",
                "{}"
            )
            .is_empty()
        );
    }

    #[test]
    fn configured_rules_fill_templates_and_skip_missing_values() {
        let cfg: LinkRule = toml::from_str(
            "from = { source = \"src\" }\nkey = \"dataset\"\ntext = \"content\"\npattern = 'dataset=(?P<d>\\w+)'\nvalue = \"{d}@{/rev}\"",
        )
        .unwrap();
        cfg.validate().unwrap();
        let r = Rules::new(&[cfg], &[]);
        let got = ids(
            &r,
            "document",
            "x://1",
            "t",
            r#"{"rev":"7","note":"dataset=cards dataset=loans"}"#,
        );
        assert!(
            got.contains(&"dataset:cards@7".to_owned())
                && got.contains(&"dataset:loans@7".to_owned()),
            "{got:?}"
        );
        // No {/rev}: no identifier rather than a half one.
        let got = ids(&r, "document", "x://1", "t", r#"{"note":"dataset=cards"}"#);
        assert!(!got.iter().any(|i| i.starts_with("dataset:")), "{got:?}");
        let bad: LinkRule = toml::from_str("key = \"k\"\nvalue = \"{nope}\"").unwrap();
        assert!(bad.validate().unwrap_err().contains("{nope}"));
    }
}
