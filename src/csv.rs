//! CSV as Evident writes it (query output, a bundle's `index.csv`, `coverage.csv` and
//! `soa.csv`): RFC 4180 lines whose cells a spreadsheet will not run as formulas. One
//! module for the CLI and the bundle, since `verify` re-encodes a parsed `index.csv` row
//! and must get the bytes export wrote.

/// One RFC 4180 CSV line. A cell that a spreadsheet would run as a formula (starting with
/// `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`, as OWASP recommends; the
/// rule is idempotent, so `verify` re-encoding a parsed `index.csv` row gets the same text.
pub fn line<'a>(fields: impl Iterator<Item = &'a str>) -> String {
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

/// A header line and rows as RFC 4180 CSV text.
pub fn text(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = line(headers.iter().copied());
    s.push('\n');
    for r in rows {
        s.push_str(&line(r.iter().map(String::as_str)));
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(
            super::line(["a", "b,c", "say \"hi\""].into_iter()),
            "a,\"b,c\",\"say \"\"hi\"\"\""
        );
    }

    #[test]
    fn csv_cells_never_run_as_formulas() {
        assert_eq!(
            super::line(["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "a=b"].into_iter()),
            "\"'=HYPERLINK(\"\"x\"\")\",'+1,'-2,'@SUM(A1),a=b"
        );
        // Idempotent: what verify re-encodes from a parsed row is what export wrote.
        assert_eq!(super::line(["'=x"].into_iter()), "'=x");
    }
}
