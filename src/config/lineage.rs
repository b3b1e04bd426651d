//! `[[links]]` and `[[expect]]`: which identifiers in the evidence connect entries into
//! lifecycle chains, and which chains must exist (a gap is a finding).

use serde::Deserialize;

use super::{ControlId, GlobPattern, TitleRegex};

/// Which entries a rule or expectation applies to; every given condition must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// The entry's source (collector name, `manual`, a push source).
    pub source: Option<String>,
    /// The entry's kind (`model_version`, `ci_run`, `ticket`, `document`, …).
    pub kind: Option<String>,
    /// Regular expression (case-insensitive) over the title.
    pub title: Option<TitleRegex>,
    /// Glob over the URI.
    pub uri: Option<GlobPattern>,
    /// A JSON pointer into the content (`/status/name`) whose value must be one of `equals`.
    pub field: Option<String>,
    /// The values `field` may have (compared case-insensitively).
    #[serde(default)]
    pub equals: Vec<String>,
}

/// A compiled regular expression with named groups for link values.
#[derive(Debug, Clone)]
pub struct LinkPattern(pub regex::Regex);

impl<'de> Deserialize<'de> for LinkPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        regex::RegexBuilder::new(&s)
            .size_limit(1 << 20)
            .build()
            .map(LinkPattern)
            .map_err(|e| serde::de::Error::custom(format!("invalid pattern: {e}")))
    }
}

/// One `[[links]]` table: entries matching `from` name identifiers `key:value`; entries
/// naming the same identifier are linked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRule {
    /// The entries this rule reads.
    #[serde(default)]
    pub from: Selector,
    /// The identifier's namespace (`model`, `run`, `commit`, `ticket`, …).
    pub key: String,
    /// Where `pattern` looks: `title`, `uri`, `content` (the content as text), or a JSON
    /// pointer into the content (`/run/display_title`). Default `title`.
    #[serde(default)]
    pub text: Option<String>,
    /// A regular expression: each match yields a value, its named groups filling `value`.
    #[serde(default)]
    pub pattern: Option<LinkPattern>,
    /// The value: `{/json/pointer}` into the content, `{group}` from `pattern`, literal text.
    pub value: String,
}

/// One `[[expect]]` table: every current entry matching `every` must link to at least
/// one current entry matching `linked_to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// A short name, shown with each violation.
    pub name: String,
    /// The controls or clauses the expectation evidences (its violations are their findings).
    #[serde(default)]
    pub controls: Vec<ControlId>,
    /// The entries that need a link.
    pub every: Selector,
    /// What they must link to.
    pub linked_to: Selector,
    /// How many links away the match may be (default 1: directly).
    #[serde(default)]
    pub within: Option<u32>,
}

impl LinkRule {
    /// Checks the rule: a namespace, a value, and every `{group}` the value names is a
    /// group of the pattern.
    pub fn validate(&self) -> Result<(), String> {
        if self.key.is_empty() || self.key.contains(':') || self.key.contains(char::is_whitespace) {
            return Err(format!(
                "key {:?}: name the identifier's kind in one word without ':' (e.g. model, ticket, commit)",
                self.key
            ));
        }
        let groups: Vec<&str> = self
            .pattern
            .as_ref()
            .map(|p| p.0.capture_names().flatten().collect())
            .unwrap_or_default();
        for name in placeholders(&self.value) {
            if !name.starts_with('/') && !groups.contains(&name) {
                return Err(format!(
                    "value {:?} names {{{name}}}, which is neither a JSON pointer ({{/field}}) nor a named group of the pattern",
                    self.value
                ));
            }
        }
        if let Some(t) = &self.text
            && !matches!(t.as_str(), "title" | "uri" | "content")
            && !t.starts_with('/')
        {
            return Err(format!(
                "text {t:?}: use title, uri, content, or a JSON pointer such as /run/display_title"
            ));
        }
        if self.pattern.is_none() && self.text.is_some() {
            return Err("text is where a pattern looks: give a pattern too".to_owned());
        }
        if self.value.trim().is_empty() {
            return Err("value is empty".to_owned());
        }
        Ok(())
    }
}

impl Selector {
    /// Checks the selector: `field` is a JSON pointer and comes with `equals`.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.field, self.equals.is_empty()) {
            (Some(f), _) if !f.starts_with('/') => Err(format!(
                "field {f:?} is not a JSON pointer; write it like /status/name"
            )),
            (Some(_), true) => {
                Err("field needs equals = [\"…\"]: the values it may have".to_owned())
            }
            (None, false) => {
                Err("equals needs a field (a JSON pointer such as /status/name)".to_owned())
            }
            _ => Ok(()),
        }
    }
}

/// The `{…}` placeholders of a value template, in order.
pub fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
}
