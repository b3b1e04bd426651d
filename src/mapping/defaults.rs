//! The default mapping: the controls Evident suggests for what a collector says an artefact
//! is ([`Suggest`]): a document's or a ticket's words, a CI run's name, a model version's
//! state, a hub repository or card. `[[rules]]` with `replace = true` override them.
//! Collectors never name control ids; every default lives here, beside the catalogue.

use evident_collectors::Suggest;

/// The controls suggested for `s`, in the order the rules below add them.
pub fn suggested(s: &Suggest) -> Vec<&'static str> {
    match s {
        Suggest::Nothing => Vec::new(),
        Suggest::Document(words) => lookup(DOCUMENTS, words),
        Suggest::Ticket(words) => lookup(TICKETS, words),
        Suggest::CiRun(name) => ci_run(name),
        Suggest::ModelVersion {
            evaluated,
            deployed,
            documented,
        } => {
            let mut c = vec!["A.4.2", "A.6.2.3"];
            c.extend(evaluated.then_some("A.6.2.4"));
            c.extend(deployed.then_some("A.6.2.5"));
            c.extend(documented.then_some("A.6.2.7"));
            c
        }
        Suggest::HubRepo { dataset: false } => vec!["A.4.2"],
        Suggest::HubRepo { dataset: true } => vec!["A.4.3"],
        Suggest::ModelCard => vec!["A.6.2.7", "A.8.2"],
        Suggest::DatasetCard(tags) => dataset_card(tags),
    }
}

/// Phrases (tokens; a trailing `*` matches any word starting so) and their controls.
type Table = &'static [(&'static str, &'static [&'static str])];

const DOCUMENTS: Table = &[
    ("polic*", &["A.2.2"]),
    ("impact assessment*", &["A.5.3", "A.5.4"]),
    ("aia", &["A.5.3", "A.5.4"]),
    ("dpia", &["A.5.3", "A.5.4"]),
    ("model card*", &["A.6.2.7"]),
    ("modelcard*", &["A.6.2.7"]),
    ("datasheet*", &["A.7.2", "A.7.5"]),
    ("data sheet*", &["A.7.2", "A.7.5"]),
    ("supplier*", &["A.10.3"]),
    ("vendor*", &["A.10.3"]),
    ("internal audit*", &["9.2"]),
    ("management review*", &["9.3"]),
    ("soa", &["6.1.3"]),
    ("statement of applicability", &["6.1.3"]),
];

const TICKETS: Table = &[
    ("incident*", &["A.8.4", "A.6.2.6"]),
    ("concern*", &["A.3.3"]),
    ("whistleblow*", &["A.3.3"]),
    ("external report*", &["A.8.3"]),
    ("feedback", &["A.8.3"]),
    ("requirement*", &["A.6.2.2"]),
    ("spec", &["A.6.2.2"]),
    ("specification*", &["A.6.2.2"]),
    ("change*", &["6.3"]),
    ("nonconformit*", &["10.2"]),
    ("non conformit*", &["10.2"]),
    ("corrective", &["10.2"]),
    ("supplier*", &["A.10.3"]),
];

fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn phrase_at(words: &[String], at: usize, phrase: &[&str]) -> bool {
    phrase.iter().enumerate().all(|(k, p)| {
        words
            .get(at + k)
            .is_some_and(|w| match p.strip_suffix('*') {
                Some(prefix) => w.starts_with(prefix),
                None => w == p,
            })
    })
}

fn lookup(table: Table, text: &str) -> Vec<&'static str> {
    let words = tokens(text);
    let mut out = Vec::new();
    for (phrase, controls) in table {
        let p: Vec<&str> = phrase.split(' ').collect();
        if (0..words.len()).any(|i| phrase_at(&words, i, &p)) {
            for c in *controls {
                if !out.contains(c) {
                    out.push(*c);
                }
            }
        }
    }
    out
}

/// A CI run or job named `name`: test/eval/validation/benchmark runs verify the system
/// (A.6.2.4), deploy/release runs deploy it (A.6.2.5), anything else is an event log of the
/// development process (A.6.2.8, A.6.1.3).
fn ci_run(name: &str) -> Vec<&'static str> {
    let n = name.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
    let mut c = Vec::new();
    if has(&["test", "eval", "validat", "bench"]) {
        c.push("A.6.2.4");
    }
    if has(&["deploy", "release"]) {
        c.push("A.6.2.5");
    }
    if c.is_empty() {
        c.extend(["A.6.2.8", "A.6.1.3"]);
    }
    c
}

/// A dataset card documents data for development (A.7.2); its tags say more: where the
/// data came from (A.7.3, A.7.5), how it was prepared (A.7.6), its quality (A.7.4).
fn dataset_card(tags: &[String]) -> Vec<&'static str> {
    let mut c = vec!["A.7.2"];
    let has = |words: &[&str]| {
        tags.iter()
            .any(|t| words.iter().any(|w| t.to_lowercase().contains(w)))
    };
    if has(&["source_datasets:", "language_creators:", "acquisition"]) {
        c.push("A.7.3");
    }
    if has(&["quality"]) {
        c.push("A.7.4");
    }
    if has(&["source_datasets:", "provenance"]) {
        c.push("A.7.5");
    }
    if has(&["annotations_creators:", "preprocess", "preparation"]) {
        c.push("A.7.6");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document_controls(text: &str) -> Vec<&'static str> {
        suggested(&Suggest::Document(text.into()))
    }

    fn ticket_controls(text: &str) -> Vec<&'static str> {
        suggested(&Suggest::Ticket(text.into()))
    }

    fn default_controls(name: &str) -> Vec<&'static str> {
        suggested(&Suggest::CiRun(name.into()))
    }

    #[test]
    fn document_words() {
        assert_eq!(document_controls("policies/ai-policy-2026.md"), ["A.2.2"]);
        assert_eq!(document_controls("Fraud AIA.pdf"), ["A.5.3", "A.5.4"]);
        assert_eq!(
            document_controls("assessments/impact_assessment_v2.docx"),
            ["A.5.3", "A.5.4"]
        );
        assert_eq!(
            document_controls("cards/Model Card - scorer.md"),
            ["A.6.2.7"]
        );
        assert_eq!(document_controls("audit/internal-audit-q3.md"), ["9.2"]);
        assert_eq!(document_controls("Management Review minutes"), ["9.3"]);
        assert_eq!(document_controls("soa.xlsx"), ["6.1.3"]);
        assert_eq!(document_controls("supplier-register.csv"), ["A.10.3"]);
        // Whole words only: "policyholder" is a policy word, "soap" is not an SoA.
        assert!(document_controls("soap-notes.txt").is_empty());
        assert!(document_controls("readme.md").is_empty());
    }

    #[test]
    fn ticket_words_and_labels() {
        assert_eq!(
            ticket_controls("Incident: model drift"),
            ["A.8.4", "A.6.2.6"]
        );
        assert_eq!(ticket_controls("Whistleblower report"), ["A.3.3"]);
        assert_eq!(ticket_controls("Customer feedback on scoring"), ["A.8.3"]);
        assert_eq!(ticket_controls("Change request: retrain"), ["6.3"]);
        assert_eq!(
            ticket_controls("Nonconformity NC-12 corrective action"),
            ["10.2"]
        );
        assert!(ticket_controls("Specifically slow page").is_empty());
    }

    #[test]
    fn names_choose_controls() {
        assert_eq!(default_controls("Model evaluation"), ["A.6.2.4"]);
        assert_eq!(default_controls("nightly-bench"), ["A.6.2.4"]);
        assert_eq!(default_controls("Deploy to prod"), ["A.6.2.5"]);
        assert_eq!(default_controls("test and release"), ["A.6.2.4", "A.6.2.5"]);
        assert_eq!(default_controls("lint"), ["A.6.2.8", "A.6.1.3"]);
    }

    #[test]
    fn models_and_hub_artefacts() {
        let v = |evaluated, deployed, documented| {
            suggested(&Suggest::ModelVersion {
                evaluated,
                deployed,
                documented,
            })
        };
        assert_eq!(v(false, false, false), ["A.4.2", "A.6.2.3"]);
        assert_eq!(
            v(true, true, true),
            ["A.4.2", "A.6.2.3", "A.6.2.4", "A.6.2.5", "A.6.2.7"]
        );
        assert_eq!(suggested(&Suggest::HubRepo { dataset: true }), ["A.4.3"]);
        assert_eq!(
            suggested(&Suggest::DatasetCard(vec![
                "source_datasets:original".into(),
                "task_categories:text".into()
            ])),
            ["A.7.2", "A.7.3", "A.7.5"]
        );
        assert!(suggested(&Suggest::Nothing).is_empty());
    }
}
