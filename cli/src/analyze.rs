//! `ddb-audit analyze`: local CloudTrail files in, rollup rows out.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use anyhow::Context as _;
use ddb_audit_core::attribute::Rules;
use ddb_audit_core::caller::HumanRoles;
use ddb_audit_core::input::{InputReader, Limits, ReadInput};
use ddb_audit_core::rollup::Batch;
use ddb_audit_core::row::RowRef;
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

    // Files are read on as many threads as there are processors, each into
    // its own batch, and settled here in the order they were given: merged,
    // or named on stderr. An eventID counts once per run: a file that shares
    // eventIDs with an earlier one is read again leaving those out.
    let reader = |rules| {
        let reader = InputReader::new(rules, limits);
        if args.by_day {
            reader
        } else {
            reader.lifetime_only()
        }
    };
    let mut counted = reader(rules.clone());
    let alone = reader(rules);
    let mut settle = |path: &Path, result: Result<ReadInput, FileError>| -> std::io::Result<()> {
        let result = match result {
            Ok(input) if counted.seen().overlaps(&input.event_ids) => {
                read_file(&counted, path, limits)
            }
            other => other,
        };
        let origin = path.display();
        match result {
            Ok(input) => {
                read += 1;
                counted.remember(input.event_ids);
                run.merge(input.batch);
            }
            Err(FileError::Input(Error::Empty)) => {
                writeln!(err, "{origin}: skipped: empty file")?;
                empty += 1;
            }
            Err(FileError::Input(e)) => {
                writeln!(err, "{origin}: cannot read: {e} ({})", e.reason())?;
                failed += 1;
            }
            Err(FileError::File(e)) => {
                writeln!(err, "{origin}: cannot read: {e}")?;
                failed += 1;
            }
        }
        Ok(())
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(inputs.len());
    if threads <= 1 {
        for path in &inputs {
            settle(path, read_file(&alone, path, limits))?;
        }
    } else {
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| -> std::io::Result<()> {
            let (tx, rx) = mpsc::channel();
            for _ in 0..threads {
                let (tx, next, inputs, alone) = (tx.clone(), &next, &inputs, &alone);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = inputs.get(i) else { break };
                    if tx.send((i, read_file(alone, path, limits))).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            let mut waiting = BTreeMap::new();
            let mut due = 0;
            for (i, result) in rx {
                waiting.insert(i, result);
                while let Some(result) = waiting.remove(&due) {
                    settle(&inputs[due], result)?;
                    due += 1;
                }
            }
            Ok(())
        })?;
    }

    for problem in run.problems.iter().take(MAX_PRINTED_PROBLEMS) {
        writeln!(err, "warning: {problem}")?;
    }
    let unprinted =
        run.problems.len().saturating_sub(MAX_PRINTED_PROBLEMS) as u64 + run.problems_dropped;
    if unprinted > 0 {
        writeln!(err, "warning: {unprinted} more malformed records not shown")?;
    }

    // Rows are made one at a time as they are written: a run's rows held
    // whole would cost as much memory again as its rollups. JSON Lines are
    // written straight from the rollups.
    let json = args.format == crate::output::Format::Json;
    if args.by_day {
        let mut daily: Vec<_> = run.daily.iter().collect();
        daily.sort_by(|(a, ra), (b, rb)| {
            (&a.key.account, &a.key.region, &a.key.table, a.day)
                .cmp(&(&b.key.account, &b.key.region, &b.key.table, b.day))
                .then(rb.calls.cmp(&ra.calls))
                .then(a.key.caller.cmp(&b.key.caller))
        });
        let rows = daily
            .into_iter()
            .map(|(k, r)| RowRef::daily(k, r).with_app(&app_names));
        if json {
            crate::output::write_json_lines(rows, out)?;
        } else {
            crate::output::write_rows(args.format, rows.map(|r| r.to_row()), out)?;
        }
    } else {
        let rows = run
            .sorted_lifetime()
            .into_iter()
            .map(|(k, r)| RowRef::lifetime(k, r).with_app(&app_names));
        if json {
            crate::output::write_json_lines(rows, out)?;
        } else {
            crate::output::write_rows(args.format, rows.map(|r| r.to_row()), out)?;
        }
    }

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

/// Why a file was not read.
enum FileError {
    /// The file itself: missing, unreadable, larger than the cap.
    File(String),
    /// Its content.
    Input(Error),
}

/// Reads a file as a stream of pieces, refusing one larger than the cap
/// before reading it: a compressed file is never larger than what it
/// decompresses to, give or take gzip's few bytes of framing.
fn read_file(reader: &InputReader, path: &Path, limits: Limits) -> Result<ReadInput, FileError> {
    let cap = limits.max_decompressed;
    let len = std::fs::metadata(path)
        .map_err(|e| FileError::File(e.to_string()))?
        .len();
    if len > cap.saturating_add(1024) {
        return Err(FileError::File(format!(
            "{len} bytes, larger than the decompression cap of {cap} bytes"
        )));
    }
    let mut file = std::fs::File::open(path).map_err(|e| FileError::File(e.to_string()))?;
    let origin = path.display().to_string();
    let mut stream = reader.start(&origin);
    let mut piece = vec![0u8; 128 * 1024];
    loop {
        let n = match file.read(&mut piece) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FileError::File(e.to_string())),
        };
        stream.push(&piece[..n]).map_err(FileError::Input)?;
    }
    stream.finish().map_err(FileError::Input)
}
