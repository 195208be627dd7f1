//! Printing rows as a table for people, JSON Lines for scripts and CSV for
//! spreadsheets.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use ddb_audit_core::row::Row;

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

/// Writes rows as they come: JSON Lines and CSV hold one row at a time, the
/// table for people all of them.
pub(crate) fn write_rows(
    format: Format,
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
        _ => write_table(&rows.collect::<Vec<_>>(), &mut out)?,
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

/// The counter cells of a row, right-aligned: calls, reads, writes, and
/// errors with the denied ones on a second line. The same in `analyze`'s
/// table and the queries'.
pub(crate) fn count_cells(r: &Row) -> [Cell; 4] {
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
    .map(|n| Cell::new(n).set_alignment(CellAlignment::Right))
}

/// The table column of a row for people: name, then account and region.
pub(crate) fn table_cell(r: &Row) -> String {
    match &r.table {
        Some(t) => format!("{t}\n{} {}", r.account, r.region),
        None => format!("(no table)\n{} {}", r.account, r.region),
    }
}

/// The caller column of a row for people: application name and caller, then
/// its type and whether it is a person.
pub(crate) fn caller_cell(r: &Row) -> String {
    let who = if r.person { "person" } else { "application" };
    match &r.app {
        Some(app) => format!("{app}: {}\n{} ({who})", r.caller, r.caller_type),
        None => format!("{}\n{} ({who})", r.caller, r.caller_type),
    }
}

/// A table for people: condensed borders, fitted to the terminal when there is one.
pub(crate) fn new_table() -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    if std::io::stdout().is_terminal() {
        table.set_content_arrangement(ContentArrangement::Dynamic);
    }
    table
}

fn write_table(rows: &[Row], out: &mut dyn Write) -> anyhow::Result<()> {
    if rows.is_empty() {
        writeln!(out, "No DynamoDB calls found.")?;
        return Ok(());
    }
    let mut table = new_table();
    let by_day = rows.iter().any(|r| r.day.is_some());
    let mut header = vec!["table", "caller"];
    if by_day {
        header.push("day");
    }
    header.extend([
        "calls",
        "reads",
        "writes",
        "errors",
        "operations",
        "seen (UTC)",
        "user agents",
    ]);
    table.set_header(header);
    for r in rows {
        let (table_cell, caller_cell) = (table_cell(r), caller_cell(r));
        let mut cells = vec![Cell::new(table_cell), Cell::new(caller_cell)];
        if let Some(day) = &r.day {
            cells.push(Cell::new(day));
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
        cells.push(Cell::new(ops));
        cells.push(Cell::new(format!("{}\n{}", r.first_seen, r.last_seen)));
        cells.push(Cell::new(top(&r.user_agents, 2)));
        table.add_row(cells);
    }
    writeln!(out, "{table}")?;
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
