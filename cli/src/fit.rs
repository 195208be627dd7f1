//! Tables for people that fit a width: the terminal's, or a fixed one when
//! the output goes to a file or a pipe.
//!
//! Nothing is ever cut inside a token (an ARN, a timestamp, a count): a cell
//! wraps only at spaces, and a column is never narrower than its longest
//! token. When the columns cannot all fit that way, the least important ones
//! are left out, as `kubectl get` and `gh` do, and a line under the table
//! says which ones and where to find them (`--format json`).

use std::io::IsTerminal;

use comfy_table::presets::UTF8_FULL;
use comfy_table::{Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};

/// The width used when standard output is not a terminal and `COLUMNS` is
/// not set: readable in a pager or a file, and the width of most terminals.
pub(crate) const PIPED_WIDTH: usize = 100;

/// Characters a table spends on each column besides its content (a border
/// and a space either side), and once more for the outer border.
const PER_COLUMN: usize = 3;

/// A character no cell holds: a cell split at it is never split, line by line.
const NO_SPLIT: char = '\u{1f}';

/// The width to fit tables to: the terminal's when standard output is one,
/// else `COLUMNS` when it is set, else [`PIPED_WIDTH`].
pub(crate) fn output_width() -> usize {
    if std::io::stdout().is_terminal() {
        if let Some(width) = Table::new().width().filter(|w| *w > 0) {
            return usize::from(width);
        }
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w > 0)
        .unwrap_or(PIPED_WIDTH)
}

/// How a column's cells may wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrap {
    /// At spaces: no word is cut.
    Words,
    /// Never: each line of a cell stays whole (`GetItem 3`,
    /// `2024-03-15T12:05:09Z`).
    Lines,
}

/// One column of a table for people.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    /// The header (may hold a line break).
    pub header: String,
    /// Columns are left out from the lowest priority up when the table does
    /// not fit; `0` is never left out.
    pub priority: u8,
    /// Numbers are right-aligned.
    pub right: bool,
    pub wrap: Wrap,
}

impl Column {
    pub(crate) fn new(header: impl Into<String>, priority: u8, wrap: Wrap) -> Self {
        Column {
            header: header.into(),
            priority,
            right: false,
            wrap,
        }
    }

    /// A right-aligned column of numbers.
    pub(crate) fn number(header: impl Into<String>, priority: u8) -> Self {
        Column {
            right: true,
            ..Column::new(header, priority, Wrap::Lines)
        }
    }

    /// The narrowest this column can be without cutting a token in `text`.
    fn min_width_of(&self, text: &str) -> usize {
        text.lines()
            .flat_map(|line| match self.wrap {
                Wrap::Words => line.split(' ').map(display_width).collect::<Vec<_>>(),
                Wrap::Lines => vec![display_width(line)],
            })
            .max()
            .unwrap_or(0)
    }
}

/// The width of text on a terminal, in columns.
fn display_width(text: &str) -> usize {
    // ddb-audit's cells are ASCII but for table names and session names,
    // which may hold any character: count characters, as comfy-table's
    // measure of plain text does closely enough for them.
    text.chars().count()
}

/// A table laid out for a width.
#[derive(Debug)]
pub(crate) struct Fitted {
    /// The table, with a newline at the end.
    pub text: String,
    /// The headers of the columns left out, first dropped first.
    pub dropped: Vec<String>,
}

/// Lays out `rows` (one string per column, lines separated by `\n`) in
/// `columns`. With `width`, the table fits it (columns left out as needed);
/// without, it is as wide as its content.
pub(crate) fn fit(columns: &[Column], rows: &[Vec<String>], width: Option<usize>) -> Fitted {
    let mins: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .chain(std::iter::once(&c.header))
                .map(|text| c.min_width_of(text))
                .max()
                .unwrap_or(1)
                .max(1)
        })
        .collect();
    let mut kept: Vec<usize> = (0..columns.len()).collect();
    let mut dropped = Vec::new();
    let needed =
        |kept: &[usize]| -> usize { kept.iter().map(|&i| mins[i] + PER_COLUMN).sum::<usize>() + 1 };
    if let Some(width) = width {
        while needed(&kept) > width {
            // The least important column still shown; the rightmost of equals.
            let Some((at, _)) = kept
                .iter()
                .enumerate()
                .filter(|(_, &i)| columns[i].priority > 0)
                .min_by_key(|(at, &i)| (columns[i].priority, usize::MAX - at))
            else {
                break;
            };
            let i = kept.remove(at);
            dropped.push(columns[i].header.replace('\n', " "));
        }
    }

    let mut table = Table::new();
    table.load_preset(UTF8_FULL);
    // What cannot fit even so (a token wider than the width) overflows:
    // wider lines, never a cut token.
    let width = width.filter(|&width| needed(&kept) <= width);
    match width {
        Some(width) => {
            table.set_content_arrangement(ContentArrangement::Dynamic);
            table.set_width(u16::try_from(width).unwrap_or(u16::MAX));
        }
        None => {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    let cell = |column: &Column, text: &str| {
        let mut cell = Cell::new(text);
        if column.wrap == Wrap::Lines {
            cell = cell.set_delimiter(NO_SPLIT);
        }
        if column.right {
            cell = cell.set_alignment(CellAlignment::Right);
        }
        cell
    };
    table.set_header(
        kept.iter()
            .map(|&i| cell(&columns[i], &columns[i].header))
            .collect::<Vec<_>>(),
    );
    for row in rows {
        table.add_row(
            kept.iter()
                .map(|&i| cell(&columns[i], row.get(i).map_or("", String::as_str)))
                .collect::<Vec<_>>(),
        );
    }
    if let Some(width) = width {
        // Every column at its narrowest, then the room left given to the
        // columns that can use it, the most important first (comfy-table's
        // own arrangement may make a column narrower than a token).
        let naturals: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                rows.iter()
                    .filter_map(|r| r.get(i))
                    .chain(std::iter::once(&c.header))
                    .flat_map(|text| text.lines())
                    .map(display_width)
                    .max()
                    .unwrap_or(1)
            })
            .collect();
        let mut widths: Vec<usize> = mins.clone();
        let mut room = width.saturating_sub(needed(&kept));
        let mut order = kept.clone();
        order.sort_by_key(|&i| match columns[i].priority {
            0 => (0, i),
            p => (usize::from(u8::MAX - p) + 1, i),
        });
        for i in order {
            let more = naturals[i].saturating_sub(widths[i]).min(room);
            widths[i] += more;
            room -= more;
        }
        table.set_constraints(kept.iter().map(|&i| {
            // A fixed width counts the column's padding.
            let with_padding = widths[i] + PER_COLUMN - 1;
            ColumnConstraint::Absolute(Width::Fixed(
                u16::try_from(with_padding).unwrap_or(u16::MAX),
            ))
        }));
    }
    Fitted {
        text: format!("{table}\n"),
        dropped,
    }
}

/// The line under a table that left columns out: which, and where to see
/// them.
pub(crate) fn dropped_note(dropped: &[String], width: usize) -> Option<String> {
    if dropped.is_empty() {
        return None;
    }
    let mut shown: Vec<&str> = dropped.iter().map(String::as_str).collect();
    shown.reverse();
    let note = format!(
        "Not shown at {width} columns: {}. See them with a wider terminal (or COLUMNS=N), \
         --wide, or --format json.",
        shown.join(", ")
    );
    Some(wrap_words(&note, width))
}

/// Breaks text into lines of at most `width` characters at spaces (a word
/// wider than that has a line of its own).
pub(crate) fn wrap_words(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = display_width(word);
        if line > 0 && line + 1 + len > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<Column> {
        vec![
            Column::new("table", 0, Wrap::Words),
            Column::new("caller", 0, Wrap::Words),
            Column::number("calls", 0),
            Column::new("operations", 2, Wrap::Lines),
            Column::new("seen (UTC)", 1, Wrap::Lines),
        ]
    }

    fn rows() -> Vec<Vec<String>> {
        vec![
            vec![
                "orders\n111122223333 us-east-1".into(),
                "orders-api\nAssumedRole (application)".into(),
                "10".into(),
                "GetItem 2\nBatchExecuteStatement 1".into(),
                "2024-03-14T23:58:41Z\n2024-03-15T13:10:15Z".into(),
            ],
            vec![
                "a-table-with-a-long-name\n444455556666 eu-west-1".into(),
                "alice@example.com\nAssumedRole (person) via DataEngineer".into(),
                "1".into(),
                "Scan 1".into(),
                "2024-03-15T11:59:12Z\n2024-03-15T11:59:40Z".into(),
            ],
        ]
    }

    #[test]
    fn the_table_fits_and_leaves_out_the_least_important_columns_first() {
        let wide = fit(&columns(), &rows(), None);
        assert!(wide.dropped.is_empty());
        let natural = wide.text.lines().map(display_width).max().unwrap_or(0);
        let all = fit(&columns(), &rows(), Some(natural));
        assert!(all.dropped.is_empty(), "{:?}", all.dropped);
        // The natural width is not the narrowest: the narrowest columns are
        // 24 + 17 + 5 + 23 + 20 characters, and 3 each for borders and
        // padding, and one: 105.
        assert!(natural > 105, "{natural}");
        for width in [56, 60, 81, 82, 100, 105, 120] {
            let f = fit(&columns(), &rows(), Some(width));
            for line in f.text.lines() {
                assert!(
                    display_width(line) <= width,
                    "{width}: {line:?}\n{}",
                    f.text
                );
            }
        }
        assert!(fit(&columns(), &rows(), Some(105)).dropped.is_empty());
        let narrow = fit(&columns(), &rows(), Some(104));
        assert_eq!(narrow.dropped, ["seen (UTC)"]);
        let narrower = fit(&columns(), &rows(), Some(60));
        assert_eq!(narrower.dropped, ["seen (UTC)", "operations"]);
        assert_eq!(
            dropped_note(&narrower.dropped, 60).as_deref(),
            Some(
                "Not shown at 60 columns: operations, seen (UTC). See them\n\
                 with a wider terminal (or COLUMNS=N), --wide, or --format\n\
                 json."
            )
        );
    }

    #[test]
    fn nothing_is_cut_inside_a_token() {
        for width in [30, 50, 56, 60, 80, 90, 100, 120] {
            let f = fit(&columns(), &rows(), Some(width));
            for token in [
                "111122223333",
                "a-table-with-a-long-name",
                "alice@example.com",
                "DataEngineer",
                "(application)",
                "BatchExecuteStatement 1",
                "2024-03-14T23:58:41Z",
            ] {
                let column = f.text.lines().filter(|l| l.contains(token)).count();
                let shown = match token {
                    "BatchExecuteStatement 1" => !f.dropped.contains(&"operations".to_owned()),
                    t if t.starts_with("2024") => !f.dropped.contains(&"seen (UTC)".to_owned()),
                    _ => true,
                };
                assert_eq!(column, usize::from(shown), "{width}: {token}\n{}", f.text);
            }
        }
    }

    #[test]
    fn a_token_wider_than_the_width_overflows_rather_than_being_cut() {
        let arn =
            "unknown:arn:aws:iam::111122223333:role/a/very/long/path/to/a/role/with/a/long/name";
        let rows = vec![vec![
            "t".into(),
            arn.into(),
            "1".into(),
            "x".into(),
            "y".into(),
        ]];
        let f = fit(&columns(), &rows, Some(60));
        assert!(f.text.contains(arn), "{}", f.text);
        assert_eq!(f.dropped, ["seen (UTC)", "operations"]);
        // The header is not broken in the middle of a word either.
        assert!(f.text.contains(" calls "), "{}", f.text);
    }
}
