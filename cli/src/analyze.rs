//! `ddb-audit analyze`: local CloudTrail files in, rollup rows out.

use std::collections::BTreeMap;
use std::io::Write;
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
    let mut inputs: Vec<Input> = Vec::new();
    let mut failed = 0usize;
    // Per PATH: whether it could be looked at (an error is named already).
    let mut listed = vec![true; args.paths.len()];
    for (arg, path) in args.paths.iter().enumerate() {
        if let Err(e) = collect(path, arg, &mut inputs) {
            writeln!(err, "{}: cannot read: {e}", path.display())?;
            failed += 1;
            listed[arg] = false;
        }
    }

    let reader = |rules| {
        let reader = InputReader::new(rules, limits);
        if args.by_day {
            reader
        } else {
            reader.lifetime_only()
        }
    };
    let mut settled = Settled {
        counted: reader(rules.clone()),
        run: Batch::default(),
        inputs: &inputs,
        read: 0,
        read_per_path: vec![0; args.paths.len()],
        file_failed: vec![false; args.paths.len()],
        failed,
        empty: 0,
        not_cloudtrail: 0,
        err,
    };
    let alone = reader(rules);
    let threads = args
        .jobs
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, |n| n.get())
        .min(inputs.len());
    if threads <= 1 {
        // One thread: each file is read into the batch of the files read
        // before it (`InputReader::read_from`), so that the run merges
        // once, not once per file. A file that cannot be read may have left
        // part of itself in that batch: the files before it are then read
        // again and settled one by one, as the threads' files are.
        let mut after: Option<ReadInput> = None;
        let mut batched: Vec<usize> = Vec::new();
        for (i, Input { path, .. }) in inputs.iter().enumerate() {
            let result = open_file(path, limits)
                .and_then(|file| read_open(&settled.counted, path, file, after.take()));
            match result {
                Ok(input) => {
                    after = Some(input);
                    batched.push(i);
                }
                Err(e) => {
                    if let Some(input) = after.take() {
                        // Nothing of this file was read: the batch stands.
                        settled.batch(&batched, input);
                    } else {
                        for &earlier in batched.iter() {
                            let result = read_file(&alone, &inputs[earlier].path, limits);
                            settled.settle(earlier, result)?;
                        }
                    }
                    batched.clear();
                    settled.settle(i, Err(e))?;
                }
            }
        }
        if let Some(input) = after {
            settled.batch(&batched, input);
        }
    } else {
        // Files are read on as many threads as there are processors, each
        // into its own batch, and settled here in the order they were given.
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| -> std::io::Result<()> {
            let (tx, rx) = mpsc::channel();
            for _ in 0..threads {
                let (tx, next, inputs, alone) = (tx.clone(), &next, &inputs, &alone);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(Input { path, .. }) = inputs.get(i) else {
                        break;
                    };
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
                    settled.settle(due, result)?;
                    due += 1;
                }
            }
            Ok(())
        })?;
    }
    let Settled {
        run,
        read,
        read_per_path,
        file_failed,
        failed,
        empty,
        not_cloudtrail,
        err,
        ..
    } = settled;

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
    let layout = crate::output::Layout::new(args.wide);
    if read == 0 && args.format == crate::output::Format::Table {
        // Nothing was read: stderr says why, and "No DynamoDB calls found"
        // would say something else.
    } else if args.by_day {
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
            crate::output::write_rows(args.format, layout, rows.map(|r| r.to_row()), out)?;
        }
    } else {
        let rows = run
            .sorted_lifetime()
            .into_iter()
            .map(|(k, r)| RowRef::lifetime(k, r).with_app(&app_names));
        if json {
            crate::output::write_json_lines(rows, out)?;
        } else {
            crate::output::write_rows(args.format, layout, rows.map(|r| r.to_row()), out)?;
        }
    }

    let skipped = if not_cloudtrail > 0 {
        format!(", {not_cloudtrail} not CloudTrail (skipped)")
    } else {
        String::new()
    };
    writeln!(
        err,
        "{read} input(s) read, {failed} could not be read, {empty} empty{skipped}; {}",
        run.counts
    )?;
    // A PATH with nothing read in it is an error, said once: unless its own
    // error (a file that could not be read) has said it already.
    let mut nothing = false;
    for (arg, path) in args.paths.iter().enumerate() {
        if read_per_path[arg] > 0 {
            continue;
        }
        nothing = true;
        if listed[arg] && !file_failed[arg] {
            let looked_at = inputs.iter().filter(|i| i.arg == arg).count();
            writeln!(err, "{}", nothing_found(path, looked_at))?;
        }
    }
    Ok(if failed > 0 || nothing { 1 } else { 0 })
}

/// What to say of a PATH where no CloudTrail file was read, `looked_at`
/// files having been tried in it.
fn nothing_found(path: &Path, looked_at: usize) -> String {
    let is_dir = path.is_dir();
    let path = path.display();
    match looked_at {
        _ if !is_dir => format!("{path}: no CloudTrail records in it"),
        0 => format!(
            "{path}: no CloudTrail file found (looked for .json, .json.gz and .gz files; digest and \
             Insights files are passed over). CloudTrail writes its files under \
             AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/: copy them here with `aws s3 sync`"
        ),
        1 => format!("{path}: no CloudTrail file found (the one file looked at is not one)"),
        n => format!("{path}: no CloudTrail file found among the {n} files looked at"),
    }
}

/// One file to read, and the PATH argument it came from.
struct Input {
    path: PathBuf,
    /// The index of the PATH argument.
    arg: usize,
    /// Found by walking a directory rather than named.
    walked: bool,
}

/// Adds `path` (a file) or the CloudTrail files below it (a directory).
fn collect(path: &Path, arg: usize, inputs: &mut Vec<Input>) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).context("no such file or directory")?;
    let input = |path: PathBuf, walked: bool| Input { path, arg, walked };
    if !meta.is_dir() {
        inputs.push(input(path.to_path_buf(), false));
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
    inputs.extend(found.into_iter().map(|path| input(path, true)));
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

/// What has been settled of a run: the files merged (in the order given)
/// or named on stderr.
struct Settled<'e> {
    /// Counts each eventID once across the files settled.
    counted: InputReader,
    run: Batch,
    inputs: &'e [Input],
    read: usize,
    /// Files read, per PATH argument.
    read_per_path: Vec<usize>,
    /// Per PATH argument: it is a file, and could not be read (and said so).
    file_failed: Vec<bool>,
    failed: usize,
    empty: usize,
    /// Notifications met in a directory: named and passed over.
    not_cloudtrail: usize,
    err: &'e mut dyn Write,
}

impl Settled<'_> {
    /// Settles one file read alone: merged (after it is read again leaving
    /// out the eventIDs of earlier files, if it shares any), or named.
    fn settle(&mut self, i: usize, result: Result<ReadInput, FileError>) -> std::io::Result<()> {
        let inputs = self.inputs;
        let Some(file) = inputs.get(i) else {
            return Ok(());
        };
        let result = match result {
            Ok(input) if self.counted.seen().overlaps(&input.event_ids) => {
                read_file(&self.counted, &file.path, self.counted.limits())
            }
            other => other,
        };
        let origin = file.path.display();
        match result {
            Ok(input) => self.batch(&[i], input),
            Err(FileError::Input(Error::Empty)) => {
                writeln!(self.err, "{origin}: skipped: empty file")?;
                self.empty += 1;
            }
            // In a directory, an event that only points at CloudTrail files
            // (the samples of a repository, a saved notification) is
            // passed over; named on the command line, it is an error.
            Err(FileError::Input(e @ Error::Notification { .. })) if file.walked => {
                writeln!(
                    self.err,
                    "{origin}: skipped: {e}; analyze the CloudTrail files it announces"
                )?;
                self.not_cloudtrail += 1;
            }
            Err(FileError::Input(e @ Error::Notification { .. })) => {
                writeln!(
                    self.err,
                    "{origin}: cannot read: {e}; analyze the CloudTrail files it announces"
                )?;
                self.failed_file(file);
            }
            Err(FileError::Input(e)) => {
                writeln!(self.err, "{origin}: cannot read: {e} ({})", e.reason())?;
                self.failed_file(file);
            }
            Err(FileError::File(e)) => {
                writeln!(self.err, "{origin}: cannot read: {e}")?;
                self.failed_file(file);
            }
        }
        Ok(())
    }

    fn failed_file(&mut self, file: &Input) {
        self.failed += 1;
        if !file.walked {
            if let Some(failed) = self.file_failed.get_mut(file.arg) {
                *failed = true;
            }
        }
    }

    /// Settles the files `files` (indexes into the inputs) read into one
    /// batch by the counting reader.
    fn batch(&mut self, files: &[usize], input: ReadInput) {
        self.read += files.len();
        for &i in files {
            if let Some(slot) = self
                .inputs
                .get(i)
                .and_then(|file| self.read_per_path.get_mut(file.arg))
            {
                *slot += 1;
            }
        }
        self.counted.remember(input.event_ids);
        self.run.merge(input.batch);
    }
}

/// Reads a file alone: see [`open_file`] and [`read_open`].
fn read_file(reader: &InputReader, path: &Path, limits: Limits) -> Result<ReadInput, FileError> {
    open_file(path, limits).and_then(|file| read_open(reader, path, file, None))
}

/// Opens a file to read, refusing one larger than the cap before reading
/// it (a compressed file is never larger than what it decompresses to, give
/// or take gzip's few bytes of framing) and saying so of an empty one.
fn open_file(path: &Path, limits: Limits) -> Result<std::fs::File, FileError> {
    let cap = limits.max_decompressed;
    let meta = std::fs::metadata(path).map_err(|e| FileError::File(e.to_string()))?;
    if meta.len() > cap.saturating_add(1024) {
        return Err(FileError::File(format!(
            "{} bytes, larger than the decompression cap of {cap} bytes",
            meta.len()
        )));
    }
    // Only a regular file's length is known: a pipe says 0 and may hold more.
    if meta.is_file() && meta.len() == 0 {
        return Err(FileError::Input(Error::Empty));
    }
    std::fs::File::open(path).map_err(|e| FileError::File(e.to_string()))
}

/// Reads an open file as it comes, after `before` (the files read before it
/// into the same batch) when given: see [`InputReader::read_from`].
fn read_open(
    reader: &InputReader,
    path: &Path,
    file: std::fs::File,
    before: Option<ReadInput>,
) -> Result<ReadInput, FileError> {
    reader
        .read_from(&path.display().to_string(), file, before)
        .map_err(FileError::Input)
}
