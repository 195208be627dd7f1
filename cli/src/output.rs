//! Printing rows as a table for people, JSON Lines for scripts and CSV for
//! spreadsheets.

use std::collections::BTreeMap;
use std::io::Write;

use ddb_audit_core::caller::caller_name;
use ddb_audit_core::row::Row;

use crate::fit::{self, Column, Wrap};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// JSON Lines: one JSON object per row.
    Json,
    /// CSV with a header line; maps as `name=count;name=count`.
    Csv,
}

/// How a table for people is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Fit the table to this width (leaving columns out as needed); `None`
    /// for `--wide`: every column, as wide as its content.
    pub width: Option<usize>,
    /// Full caller strings (ARNs) instead of short names.
    pub full_callers: bool,
}

impl Layout {
    /// The layout the command line asks for: `--wide`, or fitted to the
    /// output's width ([`fit::output_width`]).
    pub(crate) fn new(wide: bool) -> Self {
        if wide {
            Layout {
                width: None,
                full_callers: true,
            }
        } else {
            Layout::fitted(fit::output_width())
        }
    }

    /// Fitted to `width`, with short caller names.
    pub(crate) fn fitted(width: usize) -> Self {
        Layout {
            width: Some(width),
            full_callers: false,
        }
    }

    /// Writes a laid-out table, and the note of the columns it left out.
    pub(crate) fn write(
        &self,
        columns: &[Column],
        cells: &[Vec<String>],
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        let fitted = fit::fit(columns, cells, self.width);
        out.write_all(fitted.text.as_bytes())?;
        if let Some(note) = self
            .width
            .and_then(|width| fit::dropped_note(&fitted.dropped, width))
        {
            writeln!(out, "{note}")?;
        }
        Ok(())
    }
}

/// Writes rows as they come: JSON Lines and CSV hold one row at a time, the
/// table for people all of them.
pub(crate) fn write_rows(
    format: Format,
    layout: Layout,
    rows: impl Iterator<Item = Row>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if format == Format::Json {
        return write_json_lines(rows, out);
    }
    // Standard output flushes at every line otherwise: one write per row.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    match format {
        Format::Csv => write_csv(rows, &mut out)?,
        _ => write_table(&rows.collect::<Vec<_>>(), layout, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// Writes rows as JSON Lines, one object per line, from any serialisable
/// row ([`ddb_audit_core::row::RowRef`] writes without copying its rollup).
pub(crate) fn write_json_lines<R: serde::Serialize>(
    rows: impl Iterator<Item = R>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    // Standard output flushes at every line otherwise: one write per row.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    // Each line is written whole into a reused buffer: serde_json writes a
    // row in dozens of small pieces.
    let mut line = Vec::with_capacity(1024);
    for row in rows {
        line.clear();
        serde_json::to_writer(&mut line, &row)?;
        line.push(b'\n');
        out.write_all(&line)?;
    }
    out.flush()?;
    Ok(())
}

fn joined(map: &BTreeMap<String, u64>) -> String {
    let mut items: Vec<_> = map.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    items
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The CSV columns of a row, in order (the queries append their own).
pub(crate) const CSV_HEADER: [&str; 23] = [
    "account",
    "region",
    "table",
    "day",
    "caller",
    "app",
    "caller_type",
    "person",
    "calls",
    "reads",
    "writes",
    "errors",
    "denied",
    "operations",
    "indexes",
    "user_agents",
    "error_codes",
    "first_seen",
    "last_seen",
    "first_event_id",
    "source_ips",
    "vpc_endpoints",
    "invoked_by",
];

/// A row's CSV fields, in the order of [`CSV_HEADER`].
pub(crate) fn csv_fields(r: &Row) -> Vec<String> {
    vec![
        r.account.clone(),
        r.region.clone(),
        r.table.clone().unwrap_or_default(),
        r.day.clone().unwrap_or_default(),
        r.caller.clone(),
        r.app.clone().unwrap_or_default(),
        r.caller_type.clone(),
        if r.person { "true" } else { "false" }.to_owned(),
        r.calls.to_string(),
        r.reads.to_string(),
        r.writes.to_string(),
        r.errors.to_string(),
        r.denied.to_string(),
        joined(&r.operations),
        joined(&r.indexes),
        joined(&r.user_agents),
        joined(&r.error_codes),
        r.first_seen.clone(),
        r.last_seen.clone(),
        r.first_event_id.clone(),
        r.source_ips.join(";"),
        r.vpc_endpoints.join(";"),
        r.invoked_by.join(";"),
    ]
}

fn write_csv(rows: impl Iterator<Item = Row>, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_HEADER)?;
    for r in rows {
        w.write_record(csv_fields(&r))?;
    }
    w.flush()?;
    Ok(())
}

pub(crate) fn top(map: &BTreeMap<String, u64>, n: usize) -> String {
    let mut items: Vec<_> = map.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut parts: Vec<String> = items
        .iter()
        .take(n)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if items.len() > n {
        parts.push(format!("+{} more", items.len() - n));
    }
    parts.join("\n")
}

/// The counter columns of a row (calls, reads, writes, errors), right-aligned;
/// `calls` heads the calls column. The same in `analyze`'s table and the
/// queries'.
pub(crate) fn count_columns(calls: &str) -> [Column; 4] {
    [
        Column::number(calls, 0),
        Column::number("reads", 5),
        Column::number("writes", 5),
        Column::number("errors", 6),
    ]
}

/// The counter cells of a row: calls, reads, writes, and errors with the
/// denied ones on a second line.
pub(crate) fn count_cells(r: &Row) -> [String; 4] {
    let errors = if r.denied > 0 {
        format!("{}\n{} denied", r.errors, r.denied)
    } else {
        r.errors.to_string()
    };
    [
        r.calls.to_string(),
        r.reads.to_string(),
        r.writes.to_string(),
        errors,
    ]
}

/// The table and caller columns, never left out.
pub(crate) fn who_columns() -> [Column; 2] {
    [
        Column::new("table", 0, Wrap::Words),
        Column::new("caller", 0, Wrap::Words),
    ]
}

/// The `seen (UTC)` column: first and last call.
pub(crate) fn seen_column() -> Column {
    Column::new("seen (UTC)", 3, Wrap::Lines)
}

/// The seen cell: first and last call, one per line.
pub(crate) fn seen_cell(r: &Row) -> String {
    format!("{}\n{}", r.first_seen, r.last_seen)
}

/// The table column of a row for people: name, then account and region.
pub(crate) fn table_cell(r: &Row) -> String {
    match &r.table {
        Some(t) => format!("{t}\n{} {}", r.account, r.region),
        None => format!("(no table)\n{} {}", r.account, r.region),
    }
}

/// The caller column of a row for people: the application name and the
/// caller (its short name, unless `full`), then its type and what it is: a
/// person (and through which role), an application, or the service a
/// service-linked role serves; and its account when that is not the table's.
pub(crate) fn caller_cell(r: &Row, full: bool) -> String {
    let name = caller_name(&r.caller);
    let who = match name.service {
        Some(_) => "service-linked role",
        None if r.person => "person",
        None => "application",
    };
    let shown = if full { r.caller.as_str() } else { name.short };
    let mut text = match &r.app {
        Some(app) => format!("{app}: {shown}\n{} ({who})", r.caller_type),
        None => format!("{shown}\n{} ({who})", r.caller_type),
    };
    if !full {
        if let Some(role) = name.role {
            text.push_str(&format!(" via {role}"));
        }
        if let Some(account) = name.account.filter(|a| *a != r.account) {
            text.push_str(&format!(" from {account}"));
        }
    }
    text
}

fn write_table(rows: &[Row], layout: Layout, out: &mut dyn Write) -> anyhow::Result<()> {
    if rows.is_empty() {
        writeln!(out, "No DynamoDB calls found.")?;
        return Ok(());
    }
    let by_day = rows.iter().any(|r| r.day.is_some());
    let mut columns: Vec<Column> = who_columns().to_vec();
    if by_day {
        columns.push(Column::new("day", 0, Wrap::Lines));
    }
    columns.extend(count_columns("calls"));
    columns.push(Column::new("operations", 4, Wrap::Lines));
    columns.push(seen_column());
    columns.push(Column::new("user agents", 2, Wrap::Lines));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![table_cell(r), caller_cell(r, layout.full_callers)];
            if by_day {
                cells.push(r.day.clone().unwrap_or_default());
            }
            let ops = if r.indexes.is_empty() {
                top(&r.operations, 3)
            } else {
                format!(
                    "{}\nindex: {}",
                    top(&r.operations, 3),
                    top(&r.indexes, 2).replace('\n', ", ")
                )
            };
            cells.extend(count_cells(r));
            cells.push(ops);
            cells.push(seen_cell(r));
            cells.push(top(&r.user_agents, 2));
            cells
        })
        .collect();
    layout.write(&columns, &cells, out)?;
    Ok(())
}

/// Reads `--app-names FILE`, or no names when it is not given.
pub(crate) fn app_names(
    path: Option<&std::path::Path>,
) -> anyhow::Result<ddb_audit_core::apps::AppNames> {
    use anyhow::Context as _;
    let Some(path) = path else {
        return Ok(ddb_audit_core::apps::AppNames::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the application names", path.display()))?;
    Ok(ddb_audit_core::apps::AppNames::from_json(
        &path.display().to_string(),
        &text,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the sample trail, as `analyze` prints them.
    fn sample_rows() -> Vec<Row> {
        let reader = ddb_audit_core::input::InputReader::default();
        let read = reader.read_alone(
            "records.json",
            include_bytes!("../../events/cloudtrail/records.json"),
        );
        let Ok(input) = read else {
            panic!("the sample trail reads: {read:?}");
        };
        input
            .batch
            .sorted_lifetime()
            .into_iter()
            .map(|(k, r)| Row::lifetime(k, r))
            .collect()
    }

    fn table_at(layout: Layout) -> String {
        let mut out = Vec::new();
        write_table(&sample_rows(), layout, &mut out).expect("written");
        String::from_utf8(out).expect("UTF-8")
    }

    /// The lines of `text` that hold `token`, whole.
    fn holding<'t>(text: &'t str, token: &str) -> Vec<&'t str> {
        text.lines().filter(|l| l.contains(token)).collect()
    }

    #[test]
    fn the_analyze_table_fits_80_100_120_and_piped_widths() {
        let rows = sample_rows();
        assert!(rows.len() >= 15, "{} rows", rows.len());
        for width in [80, 100, 120, fit::PIPED_WIDTH] {
            let text = table_at(Layout::fitted(width));
            for line in text.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{width}: {} characters: {line}\n{text}",
                    line.chars().count()
                );
            }
            // Every caller is there under its short name, never cut.
            for r in &rows {
                let short = caller_name(&r.caller).short;
                assert!(
                    !holding(&text, short).is_empty(),
                    "{width}: {short} missing or cut\n{text}"
                );
            }
            // Timestamps are whole when their column is shown.
            let header: String = text.lines().take(4).collect();
            if header.contains("seen") {
                for r in &rows {
                    assert!(!holding(&text, &r.first_seen).is_empty(), "{width}\n{text}");
                    assert!(!holding(&text, &r.last_seen).is_empty(), "{width}\n{text}");
                }
            } else {
                assert!(text.contains("Not shown at"), "{width}\n{text}");
                assert!(!text.contains("2024-03-15T"), "{width}\n{text}");
            }
            assert!(
                !text.contains("arn:aws:"),
                "{width}: short names only\n{text}"
            );
        }
        // The widest of them shows more columns than the narrowest.
        let header =
            |width| -> String { table_at(Layout::fitted(width)).lines().take(4).collect() };
        assert!(header(120).contains("operations"));
        assert!(!header(80).contains("operations"));
    }

    #[test]
    fn wide_shows_every_full_caller_and_every_column() {
        let text = table_at(Layout::new(true));
        for r in sample_rows() {
            assert!(
                !holding(&text, &r.caller).is_empty(),
                "{} not whole on one line\n{text}",
                r.caller
            );
            assert!(!holding(&text, &r.first_seen).is_empty());
        }
        assert!(text.contains("user agents"));
        assert!(!text.contains("Not shown at"));
    }

    #[test]
    fn the_caller_cell_names_people_services_and_other_accounts() {
        let mut r = sample_rows().remove(0);
        r.account = "111122223333".into();
        r.caller_type = "AssumedRole".into();
        r.app = None;
        let cell = |r: &Row| caller_cell(r, false);
        r.caller = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_DataEngineer_5d2c8b1e9f3a7c40/alice@example.com".into();
        r.person = true;
        assert_eq!(
            cell(&r),
            "alice@example.com\nAssumedRole (person) via DataEngineer"
        );
        r.person = false;
        r.caller = "arn:aws:iam::111122223333:role/aws-service-role/dynamodb.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable".into();
        assert_eq!(
            cell(&r),
            "dynamodb.application-autoscaling.amazonaws.com\nAssumedRole (service-linked role)"
        );
        r.caller = "arn:aws:iam::444455556666:role/catalog-sync".into();
        r.app = Some("catalog".into());
        assert_eq!(
            cell(&r),
            "catalog: catalog-sync\nAssumedRole (application) from 444455556666"
        );
        assert_eq!(
            caller_cell(&r, true),
            "catalog: arn:aws:iam::444455556666:role/catalog-sync\nAssumedRole (application)"
        );
    }
}
