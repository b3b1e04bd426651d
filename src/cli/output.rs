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
                t.add_row(r);
            }
            writeln!(out, "{t}")?;
        }
        Format::Markdown => {
            let cell = |s: &str| s.replace('|', "\\|").replace(['\n', '\r'], " ");
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

/// One RFC 4180 CSV line.
pub fn csv_line<'a>(fields: impl Iterator<Item = &'a str>) -> String {
    fields
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.to_owned()
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
}
