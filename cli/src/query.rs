//! Questions users ask of the summary table: who calls a table, which tables
//! a caller touches, who has gone quiet, who is new, and what could not be
//! read. Each answer is rows in the schema `analyze` prints, with an
//! estimate of their on-demand request cost.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use ddb_audit_aws::store::{Reject, RowFilter, SummaryStore};
use ddb_audit_core::cost::{self, CostEstimate, Prices};
use ddb_audit_core::row::{format_time, Row};
use serde::Serialize;

use crate::aws::{self, AwsSource};
use crate::fit::{Column, Wrap};
use crate::output::{csv_fields, top, Layout, CSV_HEADER};
use crate::{Format, TableArgs};

/// What every query shares: where the table is, how to print, prices.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    table: TableArgs,

    /// Output format: `table` for people, `json` (JSON Lines in the row
    /// schema of `analyze`, plus `est_*` cost fields) for scripts, `csv` for
    /// spreadsheets.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// In the table: full caller ARNs and every column, as wide as they
    /// are, instead of short names fitted to the terminal.
    #[arg(long)]
    wide: bool,

    /// Price of a million read request units in US dollars, for the cost
    /// estimate (default: on-demand, Standard table class, us-east-1).
    #[arg(long, value_name = "USD", env = "READ_PRICE_PER_MILLION",
          default_value_t = cost::DEFAULT_READ_PRICE_PER_MILLION)]
    read_price: f64,

    /// Price of a million write request units in US dollars.
    #[arg(long, value_name = "USD", env = "WRITE_PRICE_PER_MILLION",
          default_value_t = cost::DEFAULT_WRITE_PRICE_PER_MILLION)]
    write_price: f64,

    /// Name applications: the same JSON rules file as `analyze --app-names`.
    #[arg(long, value_name = "FILE", env = "APP_NAMES_FILE")]
    app_names: Option<PathBuf>,
}

/// Narrows rows to some tables.
#[derive(Debug, clap::Args)]
pub struct TableFilter {
    /// Only this table (a name). With --account and --region it is a key
    /// query; otherwise the summary table is scanned with a filter.
    #[arg(long, value_name = "NAME")]
    table: Option<String>,

    /// Only tables owned by this account.
    #[arg(long, value_name = "ACCOUNT_ID")]
    account: Option<String>,

    /// Only tables in this region (the summary table's own region comes from
    /// the usual AWS settings).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
}

/// `ddb-audit callers`.
#[derive(Debug, clap::Args)]
pub struct CallersArgs {
    #[command(flatten)]
    query: QueryArgs,

    #[command(flatten)]
    filter: TableFilter,

    /// Count only calls from this UTC day (YYYY-MM-DD) on, by summing the
    /// daily rollups; without it, lifetime counts.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    since: Option<String>,
}

/// `ddb-audit tables`.
#[derive(Debug, clap::Args)]
pub struct TablesArgs {
    #[command(flatten)]
    query: QueryArgs,

    /// The caller, exactly as the rows show it (for example
    /// `arn:aws:iam::111122223333:role/service/orders-api`).
    #[arg(long, value_name = "CALLER")]
    caller: String,
}

/// `ddb-audit stale`.
#[derive(Debug, clap::Args)]
pub struct StaleArgs {
    #[command(flatten)]
    query: QueryArgs,

    #[command(flatten)]
    filter: TableFilter,

    /// Callers whose last call on a table is more than this many days ago.
    #[arg(long, value_name = "N")]
    days: u32,
}

/// `ddb-audit new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    #[command(flatten)]
    query: QueryArgs,

    #[command(flatten)]
    filter: TableFilter,

    /// Callers first seen on a table on or after this UTC day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    since: String,
}

/// `ddb-audit rejects`.
#[derive(Debug, clap::Args)]
pub struct RejectsArgs {
    #[command(flatten)]
    table: TableArgs,

    /// Output format (`json`: one reject per line).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// In the table: every column as wide as it is, not fitted to the terminal.
    #[arg(long)]
    wide: bool,
}

/// Accepts `YYYY-MM-DD` (a real day).
pub(crate) fn parse_date(text: &str) -> Result<String, String> {
    let valid = text.len() == 10
        && ddb_audit_core::attribute::parse_event_time(&format!("{text}T00:00:00Z")).is_some();
    if valid {
        Ok(text.to_owned())
    } else {
        Err("expected a UTC day as YYYY-MM-DD, for example 2024-03-15".into())
    }
}

/// Unix seconds at the start of a `YYYY-MM-DD` day already checked by
/// [`parse_date`].
pub(crate) fn day_start(day: &str) -> anyhow::Result<i64> {
    ddb_audit_core::attribute::parse_event_time(&format!("{day}T00:00:00Z"))
        .with_context(|| format!("{day} is not a day"))
}

/// A store over the table named by `args`, after checking it is there.
/// Warns on `err` while a trail reaches the table through both ingest paths
/// (its counts are doubled meanwhile; see `ddb_audit_core::paths`).
async fn open(
    source: &AwsSource,
    args: &TableArgs,
    err: &mut dyn Write,
) -> anyhow::Result<SummaryStore> {
    let sdk = aws::sdk_config(source, args).await;
    let client = aws::dynamodb(&sdk, args);
    aws::check_table(&sdk, &client, args).await?;
    let store = SummaryStore::new(client, &args.summary_table, 0, 0);
    for marks in store.path_marks().await? {
        if marks.overlapping() {
            writeln!(err, "{}", marks.warning())?;
        }
    }
    Ok(store)
}

pub(crate) fn callers(
    args: &CallersArgs,
    source: &AwsSource,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let rows = aws::runtime()?.block_on(async {
        let store = open(source, &args.query.table, err).await?;
        let f = &args.filter;
        let raw = match (&f.table, &f.account, &f.region) {
            (Some(table), Some(account), Some(region)) => {
                let mut rows = store.table_rows(account, region, Some(table)).await?;
                if let Some(since) = &args.since {
                    rows.extend(
                        store
                            .table_daily_rows(account, region, Some(table), since)
                            .await?,
                    );
                }
                rows
            }
            _ => {
                store
                    .filtered_rows(&RowFilter {
                        account: f.account.clone(),
                        region: f.region.clone(),
                        table: f.table.clone(),
                        since: args.since.clone(),
                    })
                    .await?
            }
        };
        anyhow::Ok(raw)
    })?;
    let mut rows = match &args.since {
        Some(since) => window(rows, since),
        None => rows.into_iter().filter(|r| r.day.is_none()).collect(),
    };
    busiest_first(&mut rows);
    print(&args.query, &rows, args.since.as_deref(), out)
}

pub(crate) fn tables(
    args: &TablesArgs,
    source: &AwsSource,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let mut rows = aws::runtime()?.block_on(async {
        let store = open(source, &args.query.table, err).await?;
        anyhow::Ok(store.caller_rows(&args.caller).await?)
    })?;
    busiest_first(&mut rows);
    print(&args.query, &rows, None, out)
}

pub(crate) fn stale(
    args: &StaleArgs,
    source: &AwsSource,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let cutoff = format_time(now() - i64::from(args.days) * 86_400);
    let mut rows: Vec<Row> = lifetime(source, &args.query, &args.filter, err)?
        .into_iter()
        .filter(|r| r.table.is_some() && r.last_seen < cutoff)
        .collect();
    // Quietest first: the longest silence is the first question to ask.
    rows.sort_by(|a, b| {
        (&a.last_seen, &a.table, &a.caller).cmp(&(&b.last_seen, &b.table, &b.caller))
    });
    print(&args.query, &rows, None, out)
}

pub(crate) fn new(
    args: &NewArgs,
    source: &AwsSource,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let from = format_time(day_start(&args.since)?);
    let mut rows: Vec<Row> = lifetime(source, &args.query, &args.filter, err)?
        .into_iter()
        .filter(|r| r.table.is_some() && r.first_seen >= from)
        .collect();
    // Newest first.
    rows.sort_by(|a, b| {
        (&b.first_seen, &a.table, &a.caller).cmp(&(&a.first_seen, &b.table, &b.caller))
    });
    print(&args.query, &rows, None, out)
}

pub(crate) fn rejects(
    args: &RejectsArgs,
    source: &AwsSource,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let mut rejects = aws::runtime()?.block_on(async {
        let store = open(source, &args.table, err).await?;
        anyhow::Ok(store.rejects().await?)
    })?;
    rejects.sort_by(|a, b| b.at.cmp(&a.at).then(a.source_id.cmp(&b.source_id)));
    print_rejects(args.format, Layout::new(args.wide), &rejects, out)?;
    Ok(0)
}

/// Lifetime rows narrowed by a table filter: a key query when the table is
/// fully named, a filtered scan otherwise.
fn lifetime(
    source: &AwsSource,
    query: &QueryArgs,
    f: &TableFilter,
    err: &mut dyn Write,
) -> anyhow::Result<Vec<Row>> {
    aws::runtime()?.block_on(async {
        let store = open(source, &query.table, err).await?;
        let rows = match (&f.table, &f.account, &f.region) {
            (Some(table), Some(account), Some(region)) => {
                store.table_rows(account, region, Some(table)).await?
            }
            _ => {
                store
                    .filtered_rows(&RowFilter {
                        account: f.account.clone(),
                        region: f.region.clone(),
                        table: f.table.clone(),
                        since: None,
                    })
                    .await?
            }
        };
        anyhow::Ok(rows)
    })
}

type RowId = (String, String, Option<String>, String);

fn id(r: &Row) -> RowId {
    (
        r.account.clone(),
        r.region.clone(),
        r.table.clone(),
        r.caller.clone(),
    )
}

/// Sums the daily rows from `since` on into one row per table and caller.
/// Counters are the window's; what describes the caller (`first_seen`,
/// `last_seen`, sources, type) is the lifetime row's.
fn window(rows: Vec<Row>, since: &str) -> Vec<Row> {
    let (lifetime, daily): (Vec<Row>, Vec<Row>) = rows.into_iter().partition(|r| r.day.is_none());
    let lifetime: HashMap<RowId, Row> = lifetime.into_iter().map(|r| (id(&r), r)).collect();
    let mut sums: HashMap<RowId, Row> = HashMap::new();
    for d in daily {
        if d.day.as_deref().is_none_or(|day| day < since) {
            continue;
        }
        let key = id(&d);
        let sum = sums.entry(key.clone()).or_insert_with(|| {
            let mut base = lifetime.get(&key).cloned().unwrap_or_else(|| d.clone());
            base.day = None;
            for n in [
                &mut base.calls,
                &mut base.reads,
                &mut base.writes,
                &mut base.errors,
                &mut base.denied,
            ] {
                *n = 0;
            }
            for map in [
                &mut base.operations,
                &mut base.indexes,
                &mut base.user_agents,
                &mut base.error_codes,
            ] {
                map.clear();
            }
            base
        });
        sum.calls = sum.calls.saturating_add(d.calls);
        sum.reads = sum.reads.saturating_add(d.reads);
        sum.writes = sum.writes.saturating_add(d.writes);
        sum.errors = sum.errors.saturating_add(d.errors);
        sum.denied = sum.denied.saturating_add(d.denied);
        for (into, from) in [
            (&mut sum.operations, &d.operations),
            (&mut sum.indexes, &d.indexes),
            (&mut sum.user_agents, &d.user_agents),
            (&mut sum.error_codes, &d.error_codes),
        ] {
            for (name, n) in from {
                let slot = into.entry(name.clone()).or_insert(0);
                *slot = slot.saturating_add(*n);
            }
        }
    }
    sums.into_values().collect()
}

fn busiest_first(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        b.calls.cmp(&a.calls).then_with(|| {
            (&a.account, &a.region, &a.table, &a.caller)
                .cmp(&(&b.account, &b.region, &b.table, &b.caller))
        })
    });
}

/// One output line: the row as `analyze` prints it, the window it covers
/// and the cost estimate.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    row: &'a Row,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<&'a str>,
    #[serde(flatten)]
    cost: CostEstimate,
}

fn print(
    query: &QueryArgs,
    rows: &[Row],
    since: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    if !(query.read_price.is_finite()
        && query.read_price >= 0.0
        && query.write_price.is_finite()
        && query.write_price >= 0.0)
    {
        bail!("--read-price and --write-price must be zero or more US dollars per million");
    }
    let prices = Prices {
        read_per_million: query.read_price,
        write_per_million: query.write_price,
    };
    let names = crate::output::app_names(query.app_names.as_deref())?;
    let rows: Vec<Row> = rows.iter().map(|r| r.clone().with_app(&names)).collect();
    let lines: Vec<Line<'_>> = rows
        .iter()
        .map(|row| Line {
            row,
            since,
            cost: cost::estimate(row, prices),
        })
        .collect();
    match query.format {
        Format::Json => {
            for line in &lines {
                serde_json::to_writer(&mut *out, line)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            let mut header: Vec<&str> = CSV_HEADER.to_vec();
            header.extend(["since", "est_read_units", "est_write_units", "est_cost_usd"]);
            w.write_record(&header)?;
            for line in &lines {
                let mut fields = csv_fields(line.row);
                fields.extend([
                    since.unwrap_or_default().to_owned(),
                    line.cost.est_read_units.to_string(),
                    line.cost.est_write_units.to_string(),
                    line.cost.est_cost_usd.to_string(),
                ]);
                w.write_record(&fields)?;
            }
            w.flush()?;
        }
        Format::Table => write_table(&lines, since, prices, Layout::new(query.wide), out)?,
    }
    out.flush()?;
    Ok(0)
}

/// Dollars with two significant digits for small amounts (`$0.000016`),
/// cents for large ones.
fn usd(amount: f64) -> String {
    if amount >= 1.0 || amount <= 0.0 {
        return format!("${amount:.2}");
    }
    let decimals = (1 - amount.log10().floor() as i32).clamp(2, 9) as usize;
    format!("${amount:.decimals$}")
}

fn write_table(
    lines: &[Line<'_>],
    since: Option<&str>,
    prices: Prices,
    layout: Layout,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if lines.is_empty() {
        writeln!(out, "No matching rows.")?;
        return Ok(());
    }
    let calls = match since {
        Some(day) => format!("calls\nsince {day}"),
        None => "calls".to_owned(),
    };
    let mut columns: Vec<Column> = crate::output::who_columns().to_vec();
    columns.extend(crate::output::count_columns(&calls));
    columns.push(Column::new("operations", 4, Wrap::Lines));
    columns.push(crate::output::seen_column());
    columns.push(Column::number("est. cost", 2));
    let cells: Vec<Vec<String>> = lines
        .iter()
        .map(|line| {
            let r = line.row;
            let mut cells = vec![
                crate::output::table_cell(r),
                crate::output::caller_cell(r, layout.full_callers),
            ];
            cells.extend(crate::output::count_cells(r));
            cells.push(top(&r.operations, 3));
            cells.push(crate::output::seen_cell(r));
            cells.push(usd(line.cost.est_cost_usd));
            cells
        })
        .collect();
    layout.write(&columns, &cells, out)?;
    let note = format!(
        "est. cost: an estimate of on-demand request cost at ${}/M reads and ${}/M writes, \
         1 request unit per call (2 per transactional call); item sizes are unknown, so \
         large items, batches, scans and indexes cost more. Not a bill.",
        prices.read_per_million, prices.write_per_million
    );
    let note = match layout.width {
        Some(width) => crate::fit::wrap_words(&note, width),
        None => note,
    };
    writeln!(out, "{note}")?;
    Ok(())
}

/// One reject as printed.
#[derive(Serialize)]
struct RejectLine<'a> {
    source_id: &'a str,
    bucket: Option<&'a str>,
    key: Option<&'a str>,
    reason: &'a str,
    detail: &'a str,
    rejected_at: String,
}

fn print_rejects(
    format: Format,
    layout: Layout,
    rejects: &[Reject],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let lines: Vec<RejectLine<'_>> = rejects
        .iter()
        .map(|r| RejectLine {
            source_id: &r.source_id,
            bucket: r.object.as_ref().map(|(b, _)| b.as_str()),
            key: r.object.as_ref().map(|(_, k)| k.as_str()),
            reason: &r.reason,
            detail: &r.detail,
            rejected_at: format_time(r.at),
        })
        .collect();
    match format {
        Format::Json => {
            for line in &lines {
                serde_json::to_writer(&mut *out, line)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            w.write_record([
                "rejected_at",
                "reason",
                "source_id",
                "bucket",
                "key",
                "detail",
            ])?;
            for l in &lines {
                w.write_record([
                    l.rejected_at.as_str(),
                    l.reason,
                    l.source_id,
                    l.bucket.unwrap_or_default(),
                    l.key.unwrap_or_default(),
                    l.detail,
                ])?;
            }
            w.flush()?;
        }
        Format::Table => {
            if lines.is_empty() {
                writeln!(out, "No rejects: every object and log batch was readable.")?;
            } else {
                let columns = [
                    Column::new("rejected (UTC)", 0, Wrap::Lines),
                    Column::new("reason", 0, Wrap::Lines),
                    Column::new("input", 0, Wrap::Words),
                    Column::new("detail", 0, Wrap::Words),
                ];
                let cells: Vec<Vec<String>> = lines
                    .iter()
                    .map(|l| {
                        let input = match (l.bucket, l.key) {
                            (Some(b), Some(k)) => format!("s3://{b}/{k}"),
                            _ => l.source_id.to_owned(),
                        };
                        vec![
                            l.rejected_at.clone(),
                            l.reason.to_owned(),
                            input,
                            l.detail.to_owned(),
                        ]
                    })
                    .collect();
                layout.write(&columns, &cells, out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
