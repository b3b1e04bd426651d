//! Printing data as a table, JSON or CSV.

use std::io::{BufWriter, Write};

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use super::Format;

/// Rows of strings with headers: printed as a table or CSV. JSON callers serialise their
/// own structs with [`json`].
pub fn rows(format: Format, headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    // Stdout is line-buffered; thousands of rows would be thousands of writes.
    let mut out = BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Table => {
            let mut t = Table::new();
            t.load_style(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(headers);
            for r in rows {
                t.add_row(r.iter().map(|c| printable(c)));
            }
            writeln!(out, "{t}")?;
        }
        Format::Markdown => {
            let cell = |s: &str| printable(&s.replace('|', "\\|").replace(['\n', '\r'], " "));
            let line = |cells: Vec<String>| format!("| {} |", cells.join(" | "));
            writeln!(out, "{}", line(headers.iter().map(|h| cell(h)).collect()))?;
            writeln!(
                out,
                "{}",
                line(headers.iter().map(|_| "---".to_owned()).collect())
            )?;
            for r in rows {
                writeln!(out, "{}", line(r.iter().map(|c| cell(c)).collect()))?;
            }
        }
        Format::Csv | Format::Json => out.write_all(csv_text(headers, rows).as_bytes())?,
    }
    out.flush()?;
    Ok(())
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// A header line and rows as RFC 4180 CSV text.
pub fn csv_text(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = csv_line(headers.iter().copied());
    s.push('\n');
    for r in rows {
        s.push_str(&csv_line(r.iter().map(String::as_str)));
        s.push('\n');
    }
    s
}

/// Text for a terminal: control characters (escape sequences, carriage returns, C1) and
/// bidirectional overrides from file names or titles are shown as `\u{..}`, never obeyed.
pub fn printable(s: &str) -> String {
    let hostile = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.contains(hostile) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if hostile(c) {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// One RFC 4180 CSV line. A cell that a spreadsheet would run as a formula (starting with
/// `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`, as OWASP recommends; the
/// rule is idempotent, so `verify` re-encoding a parsed `index.csv` row gets the same text.
pub fn csv_line<'a>(fields: impl Iterator<Item = &'a str>) -> String {
    fields
        .map(|f| {
            let f = if f.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                std::borrow::Cow::Owned(format!("'{f}"))
            } else {
                std::borrow::Cow::Borrowed(f)
            };
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(
            super::csv_line(["a", "b,c", "say \"hi\""].into_iter()),
            "a,\"b,c\",\"say \"\"hi\"\"\""
        );
    }

    #[test]
    fn csv_cells_never_run_as_formulas() {
        assert_eq!(
            super::csv_line(["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "a=b"].into_iter()),
            "\"'=HYPERLINK(\"\"x\"\")\",'+1,'-2,'@SUM(A1),a=b"
        );
        // Idempotent: what verify re-encodes from a parsed row is what export wrote.
        assert_eq!(super::csv_line(["'=x"].into_iter()), "'=x");
    }

    #[test]
    fn terminal_escapes_are_shown_not_obeyed() {
        assert_eq!(super::printable("a\u{1b}[2Jb\rc"), "a\\u{1b}[2Jb\\u{d}c");
        assert_eq!(
            super::printable("evil\u{202e}fdp.exe"),
            "evil\\u{202e}fdp.exe"
        );
        assert_eq!(super::printable("plain é"), "plain é");
    }
}
