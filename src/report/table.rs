//! Plain-text tables for the terminal: a header line and one line per row,
//! columns two spaces apart, fitted to a width. One column is flexible and
//! gets what the others leave (a test name, shortened from the left with
//! `…` so its most specific end stays); the others are as wide as their
//! widest cell, up to a cap.

use std::borrow::Cow;

use crate::text::inert;

/// Where the text of a column sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Which end of a too-long cell is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Keep the end (names: `…verifier/loop3`).
    Start,
    /// Keep the start (labels, messages).
    End,
}

#[derive(Debug, Clone)]
pub struct Column {
    title: String,
    align: Align,
    cut: Cut,
    /// The widest this column gets (not for the flexible column).
    max: usize,
    /// The flexible column takes the width the others leave, but at least this.
    min: usize,
    flex: bool,
}

impl Column {
    /// A left-aligned text column, cut at its end past `max`.
    pub fn text(title: &str, max: usize) -> Column {
        Column {
            title: title.to_owned(),
            align: Align::Left,
            cut: Cut::End,
            max,
            min: 0,
            flex: false,
        }
    }

    /// A right-aligned column (numbers, durations), never cut.
    pub fn number(title: &str) -> Column {
        Column {
            title: title.to_owned(),
            align: Align::Right,
            cut: Cut::End,
            max: usize::MAX,
            min: 0,
            flex: false,
        }
    }

    /// The column that gets the width left over, at least `min`, cut at its
    /// start when too long.
    pub fn flex(title: &str, min: usize) -> Column {
        Column {
            title: title.to_owned(),
            align: Align::Left,
            cut: Cut::Start,
            max: usize::MAX,
            min,
            flex: true,
        }
    }

    /// Cut at the end instead (for a flexible text column).
    pub fn cut_end(mut self) -> Column {
        self.cut = Cut::End;
        self
    }
}

const GAP: &str = "  ";

#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Line>,
}

#[derive(Debug, Clone)]
enum Line {
    Row(Vec<String>),
    /// A full-width line under the row before it, indented.
    Note(String),
}

impl Table {
    pub fn new(columns: Vec<Column>) -> Table {
        Table {
            columns,
            rows: Vec::new(),
        }
    }

    /// A row; its cells are made [`inert`] (names and messages come from
    /// the code under test), so each is one line of visible characters
    /// and the widths hold.
    pub fn row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .map(|c| match inert(&c) {
                Cow::Borrowed(_) => c,
                Cow::Owned(escaped) => escaped,
            })
            .collect();
        self.rows.push(Line::Row(cells));
    }

    /// A line of free text under the last row (a failure message), made
    /// [`inert`]: its line breaks show as `\n`.
    pub fn note(&mut self, text: String) {
        self.rows.push(Line::Note(inert(&text).into_owned()));
    }

    /// The table as lines no wider than `width` characters (unless the
    /// fixed columns alone are wider), each ending in a newline.
    pub fn render(&self, width: usize) -> String {
        let widths = self.widths(width);
        let mut out = String::new();
        let titles: Vec<String> = self.columns.iter().map(|c| c.title.clone()).collect();
        self.line(&mut out, &widths, &titles);
        for line in &self.rows {
            match line {
                Line::Row(cells) => self.line(&mut out, &widths, cells),
                Line::Note(text) => {
                    out.push_str("    ");
                    out.push_str(&fit(text, width.saturating_sub(4), Cut::End));
                    out.push('\n');
                }
            }
        }
        out
    }

    fn widths(&self, width: usize) -> Vec<usize> {
        let natural: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let widest = self
                    .rows
                    .iter()
                    .filter_map(|l| match l {
                        Line::Row(cells) => cells.get(i).map(|s| chars(s)),
                        Line::Note(_) => None,
                    })
                    .chain([chars(&c.title)])
                    .max()
                    .unwrap_or(0);
                if c.flex {
                    widest
                } else {
                    widest.min(c.max.max(chars(&c.title)))
                }
            })
            .collect();
        let fixed: usize = self
            .columns
            .iter()
            .zip(&natural)
            .filter(|(c, _)| !c.flex)
            .map(|(_, w)| w)
            .sum();
        let gaps = GAP.len() * self.columns.len().saturating_sub(1);
        let flex_count = self.columns.iter().filter(|c| c.flex).count().max(1);
        let left = width.saturating_sub(fixed + gaps) / flex_count;
        self.columns
            .iter()
            .zip(natural)
            .map(|(c, w)| if c.flex { w.min(left.max(c.min)) } else { w })
            .collect()
    }

    fn line(&self, out: &mut String, widths: &[usize], cells: &[String]) {
        let mut line = String::new();
        for (i, (c, w)) in self.columns.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str(GAP);
            }
            let cell = cells.get(i).map(String::as_str).unwrap_or("");
            let text = if c.align == Align::Right {
                cell.to_owned()
            } else {
                fit(cell, *w, c.cut)
            };
            let pad = w.saturating_sub(chars(&text));
            match c.align {
                Align::Left => {
                    line.push_str(&text);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(&text);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `s` in at most `width` characters, with `…` where it was cut.
pub fn fit(s: &str, width: usize, cut: Cut) -> String {
    let n = chars(s);
    if n <= width {
        return s.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    match cut {
        Cut::Start => {
            let tail: String = s.chars().skip(n - (width - 1)).collect();
            format!("…{tail}")
        }
        Cut::End => {
            let head: String = s.chars().take(width - 1).collect();
            format!("{head}…")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_with_an_ellipsis() {
        assert_eq!(fit("abcdef", 6, Cut::Start), "abcdef");
        assert_eq!(fit("abcdef", 4, Cut::Start), "…def");
        assert_eq!(fit("abcdef", 4, Cut::End), "abc…");
        assert_eq!(fit("abcdef", 0, Cut::End), "");
        assert_eq!(fit("ééé", 2, Cut::Start), "…é");
    }

    #[test]
    fn renders_within_the_width() {
        let mut t = Table::new(vec![
            Column::flex("TEST", 8),
            Column::text("ARCH", 6),
            Column::number("HITS"),
        ]);
        t.row(vec![
            "net/tcp/a_rather_long_name".into(),
            "x86_64".into(),
            "12".into(),
        ]);
        t.row(vec!["bpf/x".into(), "s390x-very-long".into(), "3".into()]);
        t.note("boom: the first line of the failure message".into());
        let out = t.render(30);
        let want = [
            "TEST              ARCH    HITS",
            "…ather_long_name  x86_64    12",
            "bpf/x             s390x…     3",
            "    boom: the first line of t…",
        ];
        assert_eq!(out, want.map(|l| format!("{l}\n")).concat());
    }

    #[test]
    fn hostile_cells_are_inert_and_aligned() {
        let mut t = Table::new(vec![Column::flex("TEST", 8), Column::number("N")]);
        t.row(vec!["a\x1b]0;pwn\x07\r\u{202e}b".into(), "1".into()]);
        t.row(vec!["plain".into(), "22".into()]);
        t.note("line\x1b[2J\nnext".into());
        let out = t.render(100);
        assert_eq!(
            out,
            "TEST                       N\n\
             a\\e]0;pwn\\x07\\r\\u{202e}b   1\n\
             plain                     22\n    \
             line\\e[2J\\nnext\n"
        );
        assert!(!out.contains('\x1b') && !out.contains('\u{202e}'));
    }

    #[test]
    fn flex_column_is_no_wider_than_its_content() {
        let mut t = Table::new(vec![Column::flex("TEST", 8), Column::number("N")]);
        t.row(vec!["a".into(), "1".into()]);
        assert_eq!(t.render(100), "TEST  N\na     1\n");
    }
}
