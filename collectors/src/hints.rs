//! Hints an artefact gives about itself: YAML front matter (`controls`, `title`,
//! `effective_date`), a first Markdown heading, and labels that name a control
//! (`aims:A.8.4`).
//!
//! Front matter is parsed as YAML (quotes and escapes, folded and literal blocks, flow and
//! block lists, dates), by a maintained parser. Anything it cannot read is a warning, never
//! an error: a document with odd front matter is still evidence.

use serde_yaml_ng::Value;

/// What a document says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentHints {
    /// Control ids listed under `controls:` (unvalidated).
    pub controls: Vec<String>,
    /// `title:` from front matter, else the first `# ` heading.
    pub title: Option<String>,
    /// `effective_date:` (or `effective-date:`, `effective:`), unvalidated.
    pub effective_date: Option<String>,
    /// `relates:` (or `related:`): identifiers of what the document concerns, such as
    /// `model:fraud-detector/3` or `ticket:#42` (lifecycle chains).
    pub relates: Vec<String>,
    /// Why the front matter could not be read, when it could not.
    pub warning: Option<String>,
}

/// How far into a document a `# ` heading is looked for.
const TITLE_WINDOW: usize = 4096;

/// Reads hints from the start of a text document. `head` may be cut anywhere, and may be
/// binary: only a leading front matter block and the first few KiB are ever decoded.
pub fn document_hints(head: &[u8]) -> DocumentHints {
    let head = head.strip_prefix("\u{feff}".as_bytes()).unwrap_or(head);
    let mut hints = DocumentHints::default();
    let mut body = head;
    if let Some(rest) = head.strip_prefix(b"---".as_slice())
        && let Some(rest) = rest
            .strip_prefix(b"\r\n".as_slice())
            .or_else(|| rest.strip_prefix(b"\n".as_slice()))
        && let Some((block, after)) = split_front_matter(rest)
    {
        parse_front_matter(block, &mut hints);
        body = after;
    }
    if hints.title.is_none() {
        let window = String::from_utf8_lossy(&body[..body.len().min(TITLE_WINDOW)]);
        hints.title = window
            .lines()
            .find_map(|l| l.strip_prefix("# "))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
    }
    hints
}

/// Splits `rest` (what follows the opening `---` line) at its closing `---` or `...` line.
fn split_front_matter(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut start = 0;
    while start <= rest.len() {
        let end = rest[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| start + i);
        let line = rest[start..end]
            .strip_suffix(b"\r".as_slice())
            .unwrap_or(&rest[start..end]);
        if line == b"---" || line == b"..." {
            return Some((&rest[..start], &rest[(end + 1).min(rest.len())..]));
        }
        if end == rest.len() {
            return None;
        }
        start = end + 1;
    }
    None
}

/// A scalar as text: strings as they are, numbers, booleans and dates as YAML wrote them.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(t) => scalar(&t.value),
        _ => None,
    }
}

/// A YAML list, or one string of comma-separated items, as trimmed non-empty strings.
fn list(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::Sequence(items) => items.iter().filter_map(scalar).collect(),
        // `controls: A.2.2, A.2.4` is one string: split it as a list.
        other => scalar(other)
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect(),
    };
    out.retain(|c| !c.trim().is_empty());
    out
}

fn parse_front_matter(block: &[u8], hints: &mut DocumentHints) {
    let text = match std::str::from_utf8(block) {
        Ok(t) => t,
        Err(_) => {
            hints.warning = Some("front matter is not UTF-8; ignored".into());
            return;
        }
    };
    if text.trim().is_empty() {
        return;
    }
    let doc: Value = match serde_yaml_ng::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            hints.warning = Some(format!("front matter is not valid YAML ({e}); ignored"));
            return;
        }
    };
    let Value::Mapping(map) = doc else {
        hints.warning = Some("front matter is not a YAML mapping of keys; ignored".into());
        return;
    };
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| map.get(*k))
            .filter(|v| !v.is_null())
    };
    if let Some(v) = get(&["controls", "iso42001", "aims_controls"]) {
        hints.controls = list(v);
    }
    if let Some(v) = get(&["relates", "related"]) {
        hints.relates = list(v);
    }
    hints.title = get(&["title"])
        .and_then(scalar)
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    hints.effective_date = get(&["effective_date", "effective-date", "effective"])
        .and_then(scalar)
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
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
    fn flow_list_and_scalars() {
        let h = document_hints(
            b"---\ntitle: \"AI Policy\"\ncontrols: [A.2.2, 'A.2.4'] # reviewed\neffective_date: 2026-01-15\n---\n# Heading\n",
        );
        assert_eq!(h.controls, vec!["A.2.2", "A.2.4"]);
        assert_eq!(h.title.as_deref(), Some("AI Policy"));
        assert_eq!(h.effective_date.as_deref(), Some("2026-01-15"));
    }

    #[test]
    fn block_list_and_heading_title() {
        let h = document_hints(b"---\ncontrols:\n  - A.5.3\n  - A.5.4 # fairness\nowner: x\n---\n\n# Impact assessment\n");
        assert_eq!(h.controls, vec!["A.5.3", "A.5.4"]);
        assert_eq!(h.title.as_deref(), Some("Impact assessment"));
    }

    #[test]
    fn crlf_bom_and_binary_content() {
        let h = document_hints(b"\xef\xbb\xbf---\r\ncontrols: [A.8.2]\r\n---\r\n# Card\r\n");
        assert_eq!(h.controls, vec!["A.8.2"]);
        assert_eq!(h.title.as_deref(), Some("Card"));
        let binary: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert_eq!(document_hints(&binary).controls, Vec::<String>::new());
    }

    /// A "billion laughs" block is refused by the parser's alias limit, not expanded.
    #[test]
    fn alias_bombs_are_a_warning_not_gigabytes() {
        let mut block = String::from("---\na: &a [x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = if i == 0 {
                "a".to_owned()
            } else {
                format!("b{}", i - 1)
            };
            block.push_str(&format!("b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        block.push_str("controls: *b8\n---\n# T\n");
        let h = document_hints(block.as_bytes());
        assert!(h.warning.is_some(), "{h:?}");
        assert!(h.controls.is_empty());
    }

    #[test]
    fn no_or_unclosed_front_matter() {
        assert_eq!(
            document_hints(b"# Just a title\ntext").title.as_deref(),
            Some("Just a title")
        );
        let h = document_hints(b"---\ncontrols: [A.2.2]\nnever closed");
        assert!(h.controls.is_empty());
        assert_eq!(
            document_hints(&[0xff, 0xfe, 0x00]),
            DocumentHints::default()
        );
    }

    #[test]
    fn labels_naming_controls() {
        assert_eq!(label_control("aims:A.8.4").as_deref(), Some("A.8.4"));
        assert_eq!(label_control("ISO42001-A.3.3").as_deref(), Some("A.3.3"));
        assert_eq!(label_control("aims-a.5.3").as_deref(), Some("A.5.3"));
        assert_eq!(label_control("bug"), None);
        assert_eq!(label_control("aims:"), None);
    }
}
