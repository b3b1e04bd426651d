//! Default controls from the words in a document's path or title, or in a ticket's type,
//! labels and subject. `[[rules]]` with `replace = true` override them.

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

/// Controls suggested by a document's path and title words.
pub fn document_controls(text: &str) -> Vec<&'static str> {
    lookup(DOCUMENTS, text)
}

/// Controls suggested by a ticket's type, labels and subject words.
pub fn ticket_controls(text: &str) -> Vec<&'static str> {
    lookup(TICKETS, text)
}

/// The control a label names, as in `aims:A.8.4`, `iso42001-A.3.3`, `iso42001:9.2` or,
/// lowercased as Confluence stores labels, `aims-a.8.4`.
pub fn label_control(label: &str) -> Option<String> {
    let l = label.trim();
    ["aims:", "aims-", "iso42001:", "iso42001-", "iso42001."]
        .iter()
        .find_map(|p| {
            l.get(..p.len())
                .filter(|h| h.eq_ignore_ascii_case(p))
                .map(|_| &l[p.len()..])
        })
        .filter(|id| !id.is_empty())
        .map(|id| match id.strip_prefix("a.") {
            Some(rest) => format!("A.{rest}"),
            None => id.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(label_control("aims:A.8.4").as_deref(), Some("A.8.4"));
        assert_eq!(label_control("ISO42001-A.3.3").as_deref(), Some("A.3.3"));
        assert_eq!(label_control("aims-a.5.3").as_deref(), Some("A.5.3"));
        assert_eq!(label_control("bug"), None);
        assert_eq!(label_control("aims:"), None);
    }
}
