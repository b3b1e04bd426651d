//! Hints a document gives about itself: YAML front matter (`controls`, `title`,
//! `effective_date`) and a first Markdown heading.
//!
//! Only the small subset of YAML that front matter uses is read: top-level `key: value`
//! scalars, flow lists `[a, b]` and block lists (`- a`). Anything else is ignored, never an
//! error: a document with odd front matter is still evidence.

/// What a document says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentHints {
    /// Control ids listed under `controls:` (unvalidated).
    pub controls: Vec<String>,
    /// `title:` from front matter, else the first `# ` heading.
    pub title: Option<String>,
    /// `effective_date:` (or `effective-date:`, `effective:`), unvalidated.
    pub effective_date: Option<String>,
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
        let text = String::from_utf8_lossy(block);
        let lines: Vec<&str> = text.lines().collect();
        parse_front_matter(&lines, &mut hints);
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

fn parse_front_matter(lines: &[&str], hints: &mut DocumentHints) {
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if line.starts_with([' ', '\t', '#']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = strip_comment(value).trim();
        match key.trim() {
            "controls" | "iso42001" | "aims_controls" => {
                if value.is_empty() {
                    while i < lines.len() {
                        let Some(item) = lines[i].trim_start().strip_prefix('-') else {
                            break;
                        };
                        i += 1;
                        push_items(strip_comment(item), &mut hints.controls);
                    }
                } else {
                    push_items(value, &mut hints.controls);
                }
            }
            "title" if !value.is_empty() => hints.title = Some(unquote(value).to_owned()),
            "effective_date" | "effective-date" | "effective" if !value.is_empty() => {
                hints.effective_date = Some(unquote(value).to_owned())
            }
            _ => {}
        }
    }
}

fn push_items(value: &str, out: &mut Vec<String>) {
    let value = value.trim();
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    out.extend(
        inner
            .split(',')
            .map(|s| unquote(s.trim()).trim().to_owned())
            .filter(|s| !s.is_empty()),
    );
}

fn strip_comment(v: &str) -> &str {
    match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    }
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    v
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
}
