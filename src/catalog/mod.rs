//! The embedded ISO/IEC 42001:2023 catalogue: Annex A controls, clauses 4–10, crosswalks.
//!
//! The TOML file beside this module is compiled into the binary. Every control id a user types
//! goes through [`Catalog::resolve`] (one exact id) or [`Catalog::select`] (an id or a prefix
//! such as `A.6` or `8`), which explain unknown ids with the nearest valid ones.

use std::sync::LazyLock;

use evident_collectors::units::Interval;
use serde::{Deserialize, Serialize};

const CATALOG_TOML: &str = include_str!("iso42001-catalog.toml");

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    // The file is part of the source tree and a unit test parses it, so this cannot fail
    // in a released binary.
    toml::from_str(CATALOG_TOML).expect("embedded catalogue parses")
});

/// One crosswalk reference with the basis for the mapping.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossRef {
    /// The referenced article or control.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Where the mapping comes from (a key of the catalogue's `sources`).
    pub basis: String,
}

/// A group of Annex A controls (A.2 … A.10) or a subgroup (A.6.1, A.6.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Group id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Short summary (groups only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Parent group (subgroups only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// An Annex A control or a management-system clause.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// Id: `A.6.2.4` or `9.2`.
    pub id: String,
    /// Annex A group (controls only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Annex A subgroup (A.6 controls only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subgroup: Option<String>,
    /// Short public heading.
    pub title: String,
    /// Our own one-line summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Typical evidence kinds.
    pub evidence_kinds: Vec<String>,
    /// Source classes where such evidence usually lives.
    pub sources_primary: Vec<String>,
    /// Secondary source classes.
    #[serde(default)]
    pub sources_secondary: Vec<String>,
    /// Optional source classes.
    #[serde(default)]
    pub sources_optional: Vec<String>,
    /// NIST AI RMF subcategories.
    #[serde(default)]
    pub nist_ai_rmf: Vec<String>,
    /// EU AI Act articles.
    #[serde(default)]
    pub eu_ai_act: Vec<CrossRef>,
    /// ISO/IEC 27001:2022 controls or clauses.
    #[serde(default)]
    pub iso27001_2022: Vec<CrossRef>,
    /// Remark on the ISO 27001 mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso27001_note: Option<String>,
}

impl Requirement {
    /// True for Annex A controls, false for clauses.
    pub fn is_annex_a(&self) -> bool {
        self.id.starts_with("A.")
    }

    /// The group a listing shows: the Annex A group, or the clause's top-level number.
    pub fn group_id(&self) -> &str {
        match &self.group {
            Some(g) => g,
            None => self.id.split('.').next().unwrap_or(&self.id),
        }
    }
}

/// How fresh evidence for a control must be, by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessRule {
    /// The control or clause id this applies to, with everything below it.
    #[serde(default)]
    pub prefix: String,
    /// How old the newest evidence may be.
    pub max_age: Interval,
    /// How many items must fall within `max_age`.
    #[serde(default = "one")]
    pub min_items: u32,
    /// The reasoning, shown by `evident coverage`.
    pub why: String,
}

fn one() -> u32 {
    1
}

/// The whole catalogue.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Catalogue format version.
    pub schema_version: u32,
    /// The standard it describes.
    pub standard: String,
    /// Source classes.
    pub source_systems: Vec<String>,
    /// Optional source classes.
    pub optional_source_systems: Vec<String>,
    /// Where crosswalk mappings come from.
    pub sources: std::collections::BTreeMap<String, String>,
    /// Freshness when no rule matches.
    pub freshness_default: FreshnessRule,
    /// Freshness by id prefix; the longest match wins.
    pub freshness: Vec<FreshnessRule>,
    /// Annex A groups.
    pub groups: Vec<Group>,
    /// Annex A subgroups.
    pub subgroups: Vec<Group>,
    /// Annex A controls.
    pub controls: Vec<Requirement>,
    /// Clauses 4–10.
    pub clauses: Vec<Requirement>,
}

/// A control id that names nothing in the catalogue.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("unknown control or clause `{input}`{}", suggestion(.suggestions))]
pub struct UnknownControl {
    /// What the user typed.
    pub input: String,
    /// The nearest valid ids.
    pub suggestions: Vec<String>,
}

fn suggestion(s: &[String]) -> String {
    if s.is_empty() {
        "; run `evident controls` for the list".to_owned()
    } else {
        format!("; did you mean {}?", s.join(", "))
    }
}

/// Normalises what a user typed: trims, upper-cases the `a` of Annex A ids.
pub fn normalise(input: &str) -> String {
    let t = input.trim();
    match t.strip_prefix(['a', 'A']) {
        Some(rest) => format!("A{rest}"),
        None => t.to_owned(),
    }
}

impl Catalog {
    /// The embedded catalogue.
    pub fn get() -> &'static Catalog {
        &CATALOG
    }

    /// Controls then clauses, in catalogue order.
    pub fn all(&self) -> impl Iterator<Item = &Requirement> {
        self.controls.iter().chain(self.clauses.iter())
    }

    /// Looks up one exact id.
    pub fn find(&self, id: &str) -> Option<&Requirement> {
        self.all().find(|r| r.id == id)
    }

    /// Resolves one exact control or clause id (as written in configs, rules, front matter).
    pub fn resolve(&self, input: &str) -> Result<&'static str, UnknownControl> {
        let id = normalise(input);
        Catalog::get()
            .all()
            .find(|r| r.id == id)
            .map(|r| r.id.as_str())
            .ok_or_else(|| self.unknown(input))
    }

    /// Selects every control or clause equal to `input` or below it (`A.6`, `A.6.2`, `8`).
    pub fn select(&self, input: &str) -> Result<Vec<&'static str>, UnknownControl> {
        let id = normalise(input);
        let prefix = format!("{id}.");
        let found: Vec<&'static str> = Catalog::get()
            .all()
            .filter(|r| r.id == id || r.id.starts_with(&prefix))
            .map(|r| r.id.as_str())
            .collect();
        if found.is_empty() {
            Err(self.unknown(input))
        } else {
            Ok(found)
        }
    }

    /// Selects the union of several inputs, each validated, in catalogue order.
    pub fn select_all<S: AsRef<str>>(
        &self,
        inputs: &[S],
    ) -> Result<Vec<&'static str>, UnknownControl> {
        let mut wanted = std::collections::BTreeSet::new();
        for i in inputs {
            wanted.extend(self.select(i.as_ref())?);
        }
        Ok(Catalog::get()
            .all()
            .map(|r| r.id.as_str())
            .filter(|id| wanted.contains(id))
            .collect())
    }

    /// The default freshness of a control or clause: the longest matching prefix rule.
    pub fn freshness(&self, id: &str) -> &FreshnessRule {
        self.freshness
            .iter()
            .filter(|r| id == r.prefix || id.starts_with(&format!("{}.", r.prefix)))
            .max_by_key(|r| r.prefix.len())
            .unwrap_or(&self.freshness_default)
    }

    fn unknown(&self, input: &str) -> UnknownControl {
        let id = normalise(input);
        let candidates = self
            .all()
            .map(|r| r.id.as_str())
            .chain(self.groups.iter().map(|g| g.id.as_str()))
            .chain(self.subgroups.iter().map(|g| g.id.as_str()));
        // Ties in edit distance go to the id whose last number is nearest: A.6.2.9 → A.6.2.8.
        let last = |s: &str| -> i64 {
            s.rsplit('.')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(i64::MAX / 2)
        };
        let mut scored: Vec<(usize, i64, &str)> = candidates
            .map(|c| (edit_distance(&id, c), (last(c) - last(&id)).abs(), c))
            .filter(|(d, _, _)| *d <= 2)
            .collect();
        scored.sort();
        UnknownControl {
            input: input.trim().to_owned(),
            suggestions: scored
                .iter()
                .take(3)
                .map(|(_, _, c)| (*c).to_owned())
                .collect(),
        }
    }
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_complete() {
        let c = Catalog::get();
        assert_eq!(c.controls.len(), 38);
        assert_eq!(c.groups.len(), 9);
        assert_eq!(c.subgroups.len(), 2);
        assert_eq!(c.clauses.first().unwrap().id, "4.1");
        assert_eq!(c.clauses.last().unwrap().id, "10.2");
        assert_eq!(c.controls.first().unwrap().id, "A.2.2");
        assert_eq!(c.controls.last().unwrap().id, "A.10.4");
        for r in &c.controls {
            assert!(
                c.groups.iter().any(|g| Some(&g.id) == r.group.as_ref()),
                "{}",
                r.id
            );
            for x in r.eu_ai_act.iter().chain(&r.iso27001_2022) {
                for basis in x.basis.split('+') {
                    assert!(
                        c.sources.contains_key(basis) || basis == "inferred_harmonized_structure",
                        "{} {}",
                        r.id,
                        basis
                    );
                }
            }
        }
    }

    #[test]
    fn freshness_takes_the_longest_prefix() {
        let c = Catalog::get();
        let days = |id: &str| c.freshness(id).max_age.0.as_secs() / 86_400;
        assert_eq!(days("A.6.2.6"), 30);
        assert_eq!(days("A.6.2.4"), 90);
        assert_eq!(days("A.6.2.7"), 180);
        assert_eq!(days("A.2.4"), 365);
        assert_eq!(days("9.1"), 90);
        assert_eq!(days("9.2"), 365);
        assert_eq!(days("10.2"), 180);
        assert!(c.all().all(|r| c.freshness(&r.id).min_items >= 1));
        for r in &c.freshness {
            assert!(c.select(&r.prefix).is_ok(), "{}", r.prefix);
        }
    }

    #[test]
    fn prefixes_select_subtrees() {
        let c = Catalog::get();
        assert_eq!(c.select("A.6.2").unwrap().len(), 7);
        assert_eq!(c.select("A.6").unwrap().len(), 9);
        assert_eq!(c.select("a.2").unwrap(), vec!["A.2.2", "A.2.3", "A.2.4"]);
        assert_eq!(c.select("8").unwrap(), vec!["8.1", "8.2", "8.3", "8.4"]);
        assert_eq!(c.select("A.10.2").unwrap(), vec!["A.10.2"]);
        // A.2.2 must not pick up a hypothetical A.2.20: prefixes stop at dots.
        assert_eq!(c.select("A.2.2").unwrap(), vec!["A.2.2"]);
        assert_eq!(c.select("6.1").unwrap().len(), 5);
        assert_eq!(c.select_all(&["A.2.4", "A.2"]).unwrap().len(), 3);
    }

    #[test]
    fn unknown_ids_suggest_neighbours() {
        let c = Catalog::get();
        let e = c.select("A.6.2.9").unwrap_err();
        assert!(e.suggestions.contains(&"A.6.2.8".to_owned()), "{e}");
        assert!(e.to_string().contains("did you mean"));
        let e = c.resolve("A.6").unwrap_err();
        assert_eq!(e.input, "A.6");
        let e = c.resolve("banana").unwrap_err();
        assert!(e.to_string().contains("evident controls"));
        assert_eq!(c.resolve(" a.5.3 ").unwrap(), "A.5.3");
    }
}
