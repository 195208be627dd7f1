//! `ddb-audit analyze`: local CloudTrail files in, rollup rows out.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ddb_audit_core::attribute::Rules;
use ddb_audit_core::caller::HumanRoles;
use ddb_audit_core::input::{InputReader, Limits};
use ddb_audit_core::rollup::Batch;
use ddb_audit_core::row::Row;
use ddb_audit_core::Error;

use crate::AnalyzeArgs;

/// How many record problems are printed before the rest are only counted.
const MAX_PRINTED_PROBLEMS: usize = 50;

pub(crate) fn run(
    args: &AnalyzeArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let rules = Rules {
        human_roles: HumanRoles::new(&args.human_roles)?,
        include_tables: Rules::table_patterns(&args.include_tables)?,
        exclude_tables: Rules::table_patterns(&args.exclude_tables)?,
    };
    let limits = Limits {
        max_decompressed: args.max_decompressed_bytes,
        ..Limits::default()
    };
    let app_names = crate::output::app_names(args.app_names.as_deref())?;
    let mut reader = InputReader::new(rules, limits);
    let mut run = Batch::default();
    let mut failed = 0usize;
    let mut read = 0usize;
    let mut empty = 0usize;

    let mut inputs = Vec::new();
    for path in &args.paths {
        if let Err(e) = collect(path, &mut inputs) {
            writeln!(err, "{}: cannot read: {e}", path.display())?;
            failed += 1;
        }
    }

    for path in &inputs {
        let origin = path.display().to_string();
        let bytes = match read_capped(path, limits.max_decompressed) {
            Ok(bytes) => bytes,
            Err(e) => {
                writeln!(err, "{origin}: cannot read: {e}")?;
                failed += 1;
                continue;
            }
        };
        match reader.read(&origin, &bytes) {
            Ok((_kind, batch)) => {
                read += 1;
                run.merge(batch);
            }
            Err(Error::Empty) => {
                writeln!(err, "{origin}: skipped: empty file")?;
                empty += 1;
            }
            Err(e) => {
                writeln!(err, "{origin}: cannot read: {e} ({})", e.reason())?;
                failed += 1;
            }
        }
    }

    for problem in run.problems.iter().take(MAX_PRINTED_PROBLEMS) {
        writeln!(err, "warning: {problem}")?;
    }
    let unprinted =
        run.problems.len().saturating_sub(MAX_PRINTED_PROBLEMS) as u64 + run.problems_dropped;
    if unprinted > 0 {
        writeln!(err, "warning: {unprinted} more malformed records not shown")?;
    }

    let rows: Vec<Row> = if args.by_day {
        let mut daily: Vec<_> = run.daily.iter().collect();
        daily.sort_by(|(a, ra), (b, rb)| {
            (&a.key.account, &a.key.region, &a.key.table, a.day)
                .cmp(&(&b.key.account, &b.key.region, &b.key.table, b.day))
                .then(rb.calls.cmp(&ra.calls))
                .then(a.key.caller.cmp(&b.key.caller))
        });
        daily
            .into_iter()
            .map(|(k, r)| Row::daily(k, r).with_app(&app_names))
            .collect()
    } else {
        run.sorted_lifetime()
            .into_iter()
            .map(|(k, r)| Row::lifetime(k, r).with_app(&app_names))
            .collect()
    };
    crate::output::write_rows(args.format, &rows, out)?;

    writeln!(
        err,
        "{read} input(s) read, {failed} could not be read, {empty} empty; {}",
        run.counts
    )?;
    Ok(if failed > 0 { 1 } else { 0 })
}

/// Adds `path` (a file) or the CloudTrail files below it (a directory).
fn collect(path: &Path, inputs: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).context("no such file or directory")?;
    if !meta.is_dir() {
        inputs.push(path.to_path_buf());
        return Ok(());
    }
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(path).follow_links(true) {
        let entry = entry.context("walking the directory")?;
        if entry.file_type().is_file() && is_trail_file(entry.path()) {
            found.push(entry.into_path());
        }
    }
    found.sort();
    inputs.extend(found);
    Ok(())
}

/// In a directory, only JSON and gzip files count, and CloudTrail's digest
/// and Insights files (which hold no API calls) are passed over.
fn is_trail_file(path: &Path) -> bool {
    let text = path.to_string_lossy();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.starts_with('.')
        || text.contains("CloudTrail-Digest")
        || text.contains("CloudTrail-Insight")
    {
        return false;
    }
    name.ends_with(".json") || name.ends_with(".json.gz") || name.ends_with(".gz")
}

/// Reads a file, refusing one larger than the cap before reading it: a
/// compressed file is never larger than what it decompresses to, give or
/// take gzip's few bytes of framing.
fn read_capped(path: &Path, cap: u64) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)?.len();
    if len > cap.saturating_add(1024) {
        anyhow::bail!("{len} bytes, larger than the decompression cap of {cap} bytes");
    }
    Ok(std::fs::read(path)?)
}
