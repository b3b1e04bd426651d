//! Printing data as a table, JSON or CSV.

use std::io::{BufWriter, Write};

use comfy_table::{
    ColumnConstraint, ContentArrangement, Table, Width, presets::UTF8_FULL_CONDENSED,
};
use serde::Serialize;
use unicode_width::UnicodeWidthStr;

use super::Format;

/// Rows of strings with headers, printed as a table, CSV or Markdown (JSON callers serialise
/// their own structs with [`json`]). A table too wide for the terminal first hides the
/// `droppable` columns (in that order, as many as it takes) before it cuts words; CSV and
/// Markdown keep them all.
pub fn rows_hiding(
    format: Format,
    headers: &[&str],
    rows: &[Vec<String>],
    droppable: &[&str],
) -> anyhow::Result<()> {
    // Stdout is line-buffered; thousands of rows would be thousands of writes.
    let mut out = BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| r.iter().map(|c| printable(c)).collect())
                .collect();
            let mut t = Table::new();
            t.load_style(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Disabled);
            let Some(width) = table_width(&t) else {
                t.set_header(headers);
                for r in cells {
                    t.add_row(r);
                }
                writeln!(out, "{t}")?;
                out.flush()?;
                return Ok(());
            };
            let mut kept: Vec<usize> = (0..headers.len()).collect();
            let mut hide = droppable.iter();
            let widths = loop {
                let h: Vec<&str> = kept.iter().map(|&i| headers[i]).collect();
                let c: Vec<Vec<&str>> = cells
                    .iter()
                    .map(|r| {
                        kept.iter()
                            .map(|&i| r.get(i).map_or("", String::as_str))
                            .collect()
                    })
                    .collect();
                let fitted = fit(&h, &c, width);
                if fitted.as_ref().is_some_and(|f| !f.cut) {
                    break fitted;
                }
                match hide.next() {
                    Some(name) if kept.len() > 1 => kept.retain(|&i| headers[i] != *name),
                    _ => break fitted,
                }
            };
            t.set_header(kept.iter().map(|&i| headers[i]));
            let widths = widths.map(|f| f.widths);
            let mut shortened = false;
            for r in &cells {
                t.add_row(kept.iter().enumerate().map(|(k, &i)| {
                    let c = r.get(i).map_or("", String::as_str);
                    match widths.as_ref().and_then(|w| shorten_words(c, w[k])) {
                        Some(short) => {
                            shortened = true;
                            short
                        }
                        None => c.to_owned(),
                    }
                }));
            }
            if let Some(w) = &widths {
                t.set_content_arrangement(ContentArrangement::Dynamic);
                t.set_constraints(
                    w.iter()
                        .map(|&w| ColumnConstraint::Absolute(Width::Fixed((w + 2) as u16))),
                );
            }
            writeln!(out, "{t}")?;
            out.flush()?;
            let hidden: Vec<&str> = headers
                .iter()
                .enumerate()
                .filter(|(i, _)| !kept.contains(i))
                .map(|(_, h)| *h)
                .collect();
            let mut changes = Vec::new();
            if !hidden.is_empty() {
                changes.push(format!("{} hidden", hidden.join(", ")));
            }
            if shortened {
                changes.push("long words shortened with …".to_owned());
            }
            if !changes.is_empty() {
                eprintln!(
                    "({} to fit {width} columns; widen the terminal, or use --format csv or json for everything)",
                    changes.join("; ")
                );
            }
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
        Format::Csv | Format::Json => {
            out.write_all(evident::csv::text(headers, rows).as_bytes())?
        }
    }
    out.flush()?;
    Ok(())
}

/// The width a table must fit: `COLUMNS` when set (scripts, tests, `COLUMNS=200 evident …`),
/// else the terminal's when stdout is one; unbounded for a pipe or file.
fn table_width(t: &Table) -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
        .or_else(|| {
            use std::io::IsTerminal;
            std::io::stdout()
                .is_terminal()
                .then(|| t.width().map(usize::from))
                .flatten()
        })
}

/// The narrowest an over-long word is cut to (`ab…yz` still names something).
const MIN_WORD: usize = 6;

/// Words longer than this (URIs, digests) are cut to fit rather than hide other columns.
const LONG_WORD: usize = 24;

/// The words of a cell as the table wraps them: between ASCII spaces (comfy-table's rule),
/// so a no-break or ideographic space joins a word rather than splitting it.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.lines().flat_map(|l| l.split(' '))
}

/// Whether a word may wrap anywhere: text in wide (CJK) characters has no spaces between
/// its words, and breaking it between characters is how it is read.
fn wraps_anywhere(word: &str) -> bool {
    word.chars()
        .any(|c| unicode_width::UnicodeWidthChar::width(c) == Some(2))
}

/// How a table fits a width.
struct Fit {
    /// Content width of each column.
    widths: Vec<usize>,
    /// Whether some words had to be cut.
    cut: bool,
}

/// Content widths that fit `headers` and `cells` into `width` terminal columns (`None` when
/// not even the borders fit). Wrapping happens only between words: every column is at least
/// as wide as its longest word (up to [`LONG_WORD`]), unless the words together cannot fit,
/// in which case the longest words are cut (with `…`, see [`shorten_words`]) rather than
/// wrapped mid-word, and `cut` says so. The remaining width goes to the columns with the most
/// text.
fn fit(headers: &[&str], cells: &[Vec<&str>], width: usize) -> Option<Fit> {
    let n = headers.len();
    // `│ a │ b │`: a border before each column and after the last, a space either side.
    let avail = width.checked_sub(3 * n + 1)?;
    let column = |i: usize| {
        std::iter::once(headers[i]).chain(cells.iter().filter_map(move |r| r.get(i).copied()))
    };
    let natural: Vec<usize> = (0..n)
        .map(|i| {
            column(i)
                .flat_map(str::lines)
                .map(UnicodeWidthStr::width)
                .max()
                .unwrap_or(0)
                .max(1)
        })
        .collect();
    if natural.iter().sum::<usize>() <= avail {
        return Some(Fit {
            widths: natural,
            cut: false,
        });
    }
    let mut min: Vec<usize> = (0..n)
        .map(|i| {
            column(i)
                .flat_map(words)
                .map(|w| {
                    if wraps_anywhere(w) {
                        w.width().min(MIN_WORD)
                    } else {
                        w.width().min(LONG_WORD)
                    }
                })
                .max()
                .unwrap_or(1)
                .clamp(1, natural[i])
        })
        .collect();
    if n * MIN_WORD > avail {
        // Too many columns for the width: as narrow as words allow; lines stay too wide.
        return Some(Fit {
            widths: min.iter().map(|&w| w.min(MIN_WORD)).collect(),
            cut: true,
        });
    }
    // Cap the longest words (to the largest width that lets the words alone fit).
    let cut = min.iter().sum::<usize>() > avail;
    if cut {
        let fits = |c: usize| min.iter().map(|&w| w.min(c)).sum::<usize>() <= avail;
        let cap = (MIN_WORD..=*min.iter().max()?).rev().find(|&c| fits(c))?;
        for w in &mut min {
            *w = (*w).min(cap);
        }
    }
    // Share the rest in proportion to what each column still lacks.
    let mut widths = min;
    let lack: Vec<usize> = (0..n).map(|i| natural[i] - widths[i]).collect();
    let total_lack: usize = lack.iter().sum();
    let spare = avail - widths.iter().sum::<usize>();
    for (w, lack) in widths.iter_mut().zip(&lack) {
        *w += (spare * lack)
            .checked_div(total_lack)
            .unwrap_or(0)
            .min(*lack);
    }
    let mut left = avail - widths.iter().sum::<usize>();
    for (w, natural) in widths.iter_mut().zip(&natural) {
        let give = left.min(natural - *w);
        *w += give;
        left -= give;
    }
    Some(Fit { widths, cut })
}

/// `text` with every word wider than `width` cut to `width` columns, keeping its start and
/// its end (a URI's host and file name): `file://docs/po…/policy.md`; `None` when no word
/// needed it. Words in wide characters are left to wrap.
fn shorten_words(text: &str, width: usize) -> Option<String> {
    let too_long = |w: &str| w.width() > width && !wraps_anywhere(w);
    if !words(text).any(too_long) {
        return None;
    }
    let cut = |word: &str| -> String {
        if !too_long(word) {
            return word.to_owned();
        }
        // Display width, not chars: a wide character counts twice.
        let w = |c: &char| unicode_width::UnicodeWidthChar::width(*c).unwrap_or(0);
        let keep = width.saturating_sub(1);
        let mut head = keep / 3;
        let mut tail = keep - head;
        let start: String = word
            .chars()
            .take_while(|c| {
                let fits = w(c) <= head;
                head = head.saturating_sub(w(c));
                fits
            })
            .collect();
        let mut end: Vec<char> = word
            .chars()
            .rev()
            .take_while(|c| {
                let fits = w(c) <= tail;
                tail = tail.saturating_sub(w(c));
                fits
            })
            .collect();
        end.reverse();
        format!("{start}…{}", end.into_iter().collect::<String>())
    };
    Some(
        text.lines()
            .map(|line| line.split(' ').map(cut).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// A JSON array printed element by element as `fill` hands them over, exactly as [`json`]
/// prints the whole: a long result is never held in memory.
pub fn json_seq<T: Serialize>(
    fill: impl FnOnce(&mut dyn FnMut(&T) -> anyhow::Result<()>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use serde::ser::{SerializeSeq as _, Serializer as _};
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut ser = serde_json::Serializer::pretty(&mut out);
    let mut seq = ser.serialize_seq(None)?;
    fill(&mut |item| Ok(seq.serialize_element(item)?))?;
    seq.end()?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// CSV printed row by row as `fill` hands them over, exactly as [`rows`] prints the whole.
pub fn csv_seq(
    headers: &[&str],
    fill: impl FnOnce(&mut dyn FnMut(&[String]) -> anyhow::Result<()>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(out, "{}", evident::csv::line(headers.iter().copied()))?;
    fill(&mut |row| {
        Ok(writeln!(
            out,
            "{}",
            evident::csv::line(row.iter().map(String::as_str))
        )?)
    })?;
    out.flush()?;
    Ok(())
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

#[cfg(test)]
mod tests {
    #[test]
    fn long_words_are_cut_keeping_both_ends() {
        let cut =
            super::shorten_words("see file://docs/impact/fraud-scoring-aia.md now", 20).unwrap();
        assert_eq!(cut, "see file:/…coring-aia.md now");
        assert!(cut.split(' ').all(|w| w.chars().count() <= 20));
        assert_eq!(super::shorten_words("short words only", 20), None);
        // Wide characters count twice, and wide text wraps instead of being cut.
        assert_eq!(super::shorten_words("評価評価評価評価", 7), None);
        assert_eq!(super::shorten_words("ab\u{a0}cdefgh", 5).unwrap(), "a…fgh");
    }

    #[test]
    fn columns_get_their_longest_word_before_text_is_shared() {
        let cells = vec![vec![
            "A.6.2.4",
            "a long title that can wrap anywhere between words",
        ]];
        let f = super::fit(&["control", "title"], &cells, 40).unwrap();
        assert!(!f.cut);
        assert_eq!(f.widths[0], 7);
        assert_eq!(f.widths.iter().sum::<usize>(), 40 - 7);
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
