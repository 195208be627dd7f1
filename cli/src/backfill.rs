//! `ddb-audit backfill`: CloudTrail history already in S3 applied to the
//! summary table through the same exactly-once path as `s3-ingest`.
//!
//! Each object is applied by [`ingest_object`] under the source id
//! `s3://bucket/key#etag`, the id `s3-ingest` gives an object announced by an
//! S3 event notification or EventBridge in an unversioned bucket (ETags from
//! `ListObjectsV2` carry quotes, which the id drops). Running a backfill
//! twice, or over objects the function already applied, counts nothing
//! twice.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use ddb_audit_aws::ingest::{ingest_object, Deps};
use ddb_audit_aws::store::{BackfillMarker, SummaryStore, BACKFILL_PREFIX, META_PK};
use ddb_audit_core::config::Config;
use ddb_audit_core::metrics::Invocation;
use ddb_audit_core::notification::{classify, Disposition, ObjectRef, SkipObject};
use ddb_audit_core::row::{format_day, format_time};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;

use crate::aws::{self, AwsSource};
use crate::query::{day_start, now, parse_date};
use crate::TableArgs;

/// Requests in flight per object while applying it; `--concurrency` objects
/// are applied at once.
const STORE_CONCURRENCY: usize = 2;

/// Longest date range listed day by day; longer ranges are listed whole and
/// filtered by the dates in the keys.
const MAX_DAY_PREFIXES: i64 = 3_700;

/// Arguments of `ddb-audit backfill`.
#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    table: TableArgs,

    /// Where the trail writes: `s3://BUCKET/PREFIX`, for example
    /// `s3://my-trail/AWSLogs/111122223333/CloudTrail/us-east-1/` (listed
    /// day by day when --from is given) or `s3://my-trail/AWSLogs/`.
    #[arg(value_name = "S3_URL")]
    source: String,

    /// First UTC day (YYYY-MM-DD) to apply, from the date in the keys.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    from: Option<String>,

    /// Last UTC day (YYYY-MM-DD) to apply, included.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    to: Option<String>,

    /// Objects read and applied at once.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,

    /// Let the notifier announce callers first seen in this history. Without
    /// it the backfill writes a marker (`pk = META`, `sk = BACKFILL#<id>`)
    /// that tells the notifier this history is not news.
    #[arg(long)]
    notify: bool,
}

/// What a backfill did, for the summary line.
#[derive(Debug, Default)]
struct Tally {
    listed: u64,
    digest: u64,
    insight: u64,
    folder: u64,
    outside_dates: u64,
    failed: u64,
    inv: Invocation,
}

pub(crate) fn run(
    args: &BackfillArgs,
    source: &AwsSource,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let (bucket, prefix) = parse_s3_url(&args.source)?;
    if let (Some(from), Some(to)) = (&args.from, &args.to) {
        if from > to {
            bail!("--from {from} is after --to {to}");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(backfill(args, source, &bucket, &prefix, out, err))
}

async fn backfill(
    args: &BackfillArgs,
    source: &AwsSource,
    bucket: &str,
    prefix: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let started_at = now();
    let table = &args.table;
    // The functions' own settings (human roles, table filters, retention,
    // caps) from the environment, so history is attributed as live events are.
    let config = Config::from_vars(|name| {
        if name == "SUMMARY_TABLE" {
            Some(table.summary_table.clone())
        } else {
            std::env::var(name).ok()
        }
    })?;
    let sdk = aws::sdk_config(source, table).await;
    let dynamodb = aws::dynamodb(&sdk, table);
    aws::check_table(&sdk, &dynamodb, table).await?;
    let s3 = aws::s3(&sdk, table, config.s3_path_style);
    let store = SummaryStore::new(
        dynamodb,
        &config.summary_table,
        config.ledger_ttl_days,
        config.reject_ttl_days,
    )
    .with_concurrency(STORE_CONCURRENCY);

    let mut tally = Tally::default();
    let objects = list(&s3, bucket, prefix, args, &mut tally).await?;

    let covers_until = match &args.to {
        Some(to) => (day_start(to)? + 86_400 - 1).min(started_at),
        None => started_at,
    };
    let mut marker = BackfillMarker {
        id: format!(
            "{}-{:08x}",
            format_time(started_at),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ),
        source: args.source.clone(),
        notify: args.notify,
        covers_until,
        started_at,
        finished_at: None,
        status: "running".into(),
        objects: 0,
        records: 0,
    };
    // Before the first object, so the notifier knows before any row appears.
    store.put_backfill_marker(&marker).await?;

    let deps = Arc::new(Deps {
        config,
        store: store.clone(),
        s3,
        function: "backfill",
    });
    let bar = progress(objects.len() as u64)?;
    let mut tasks = JoinSet::new();
    let mut queue = objects.into_iter();
    loop {
        while tasks.len() < usize::from(args.concurrency) {
            let Some(object) = queue.next() else { break };
            let deps = Arc::clone(&deps);
            tasks.spawn(async move {
                let mut inv = Invocation::default();
                let result = ingest_object(&deps, &object, &mut inv).await;
                (object, inv, result)
            });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        match done {
            Ok((object, inv, result)) => {
                tally.inv.merge(&inv);
                if let Err(e) = result {
                    tally.failed += 1;
                    bar.suspend(|| {
                        writeln!(
                            err,
                            "s3://{}/{}: not applied: {e}",
                            object.bucket, object.key
                        )
                    })?;
                }
            }
            Err(join) => {
                tally.failed += 1;
                writeln!(err, "an object task failed: {join}")?;
            }
        }
        bar.inc(1);
        bar.set_message(format!("{} records", tally.inv.counts.records_in));
    }
    bar.finish_and_clear();

    marker.finished_at = Some(now());
    marker.status = if tally.failed == 0 {
        "finished"
    } else {
        "failed"
    }
    .into();
    marker.objects = tally.inv.inputs;
    marker.records = tally.inv.counts.records_in;
    store.put_backfill_marker(&marker).await?;

    summarise(args, &tally, &marker, out)?;
    Ok(if tally.failed == 0 { 0 } else { 1 })
}

fn summarise(
    args: &BackfillArgs,
    t: &Tally,
    marker: &BackfillMarker,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "backfill of {}: listed {} objects; read {}, skipped {} (digest {}, insight {}, folder {}, outside the dates {}, empty {}); rejects {}; failures {}",
        args.source,
        t.listed,
        t.inv.inputs,
        t.digest + t.insight + t.folder + t.outside_dates + t.inv.objects_skipped,
        t.digest,
        t.insight,
        t.folder,
        t.outside_dates,
        t.inv.objects_skipped,
        t.inv.rejects,
        t.failed,
    )?;
    writeln!(out, "{}", t.inv.counts)?;
    writeln!(
        out,
        "chunks applied {}, already applied {} (counted before, by s3-ingest or an earlier backfill: not counted again)",
        t.inv.chunks_applied, t.inv.chunks_already_applied
    )?;
    if marker.notify {
        writeln!(
            out,
            "marker {META_PK}/{BACKFILL_PREFIX}{}: notices on (--notify): the notifier may announce callers first seen in this history",
            marker.id
        )?;
    } else {
        writeln!(
            out,
            "marker {META_PK}/{BACKFILL_PREFIX}{}: notices off for callers first seen up to {}",
            marker.id,
            format_time(marker.covers_until)
        )?;
    }
    if t.failed > 0 {
        writeln!(
            out,
            "{} objects were not applied; run the same command again to finish (nothing is counted twice)",
            t.failed
        )?;
    }
    Ok(())
}

fn progress(objects: u64) -> anyhow::Result<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let bar = ProgressBar::new(objects);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} objects, {msg} (eta {eta})",
        )
        .context("the progress bar template")?,
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message("0 records");
    Ok(bar)
}

/// Splits `s3://bucket/prefix`.
fn parse_s3_url(url: &str) -> anyhow::Result<(String, String)> {
    let Some(rest) = url.strip_prefix("s3://") else {
        bail!("expected s3://BUCKET/PREFIX, not `{url}`");
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("expected s3://BUCKET/PREFIX: the bucket is missing in `{url}`");
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

/// The UTC day in a CloudTrail key (`.../CloudTrail/REGION/YYYY/MM/DD/...`).
fn key_day(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('/').collect();
    let at = parts.iter().position(|p| *p == "CloudTrail")?;
    let (y, m, d) = (parts.get(at + 2)?, parts.get(at + 3)?, parts.get(at + 4)?);
    parse_date(&format!("{y}-{m}-{d}")).ok()
}

/// The day prefixes to list when `prefix` ends at a trail's region
/// (`.../CloudTrail/REGION/`) and --from is given; `None` to list `prefix`
/// whole.
fn day_prefixes(prefix: &str, from: Option<&str>, to: Option<&str>) -> Option<Vec<String>> {
    let trimmed = prefix.trim_end_matches('/');
    let mut segments = trimmed.rsplit('/');
    let _region = segments.next().filter(|s| !s.is_empty())?;
    if segments.next()? != "CloudTrail" {
        return None;
    }
    let first = day_start(from?).ok()?.div_euclid(86_400);
    let last = match to {
        Some(to) => day_start(to).ok()?.div_euclid(86_400),
        None => now().div_euclid(86_400),
    };
    if last < first || last - first > MAX_DAY_PREFIXES {
        return None;
    }
    Some(
        (first..=last)
            .map(|day| format!("{trimmed}/{}/", format_day(day).replace('-', "/")))
            .collect(),
    )
}

/// Lists the objects to apply, counting what is skipped and why.
async fn list(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    args: &BackfillArgs,
    tally: &mut Tally,
) -> anyhow::Result<Vec<ObjectRef>> {
    let prefixes = day_prefixes(prefix, args.from.as_deref(), args.to.as_deref())
        .unwrap_or_else(|| vec![prefix.to_owned()]);
    let mut objects = Vec::new();
    for prefix in prefixes {
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| list_error(bucket, &e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                tally.listed += 1;
                let size = object.size().and_then(|s| u64::try_from(s).ok());
                match classify(key, size, None) {
                    Disposition::Skip(SkipObject::Digest) => {
                        tally.digest += 1;
                        continue;
                    }
                    Disposition::Skip(SkipObject::Insight) => {
                        tally.insight += 1;
                        continue;
                    }
                    Disposition::Skip(_) => {
                        tally.folder += 1;
                        continue;
                    }
                    Disposition::Read => {}
                }
                if args.from.is_some() || args.to.is_some() {
                    let inside = key_day(key).is_some_and(|day| {
                        args.from.as_deref().is_none_or(|from| day.as_str() >= from)
                            && args.to.as_deref().is_none_or(|to| day.as_str() <= to)
                    });
                    if !inside {
                        tally.outside_dates += 1;
                        continue;
                    }
                }
                objects.push(ObjectRef {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    size,
                    etag: object.e_tag().map(str::to_owned),
                    version_id: None,
                    sequencer: None,
                });
            }
        }
    }
    Ok(objects)
}

fn list_error<E, R>(bucket: &str, e: &aws_sdk_s3::error::SdkError<E, R>) -> anyhow::Error
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
    match code {
        "NoSuchBucket" => anyhow::anyhow!("the bucket `{bucket}` does not exist"),
        c if c.starts_with("AccessDenied") => anyhow::anyhow!(
            "listing s3://{bucket} was refused: the backfill needs s3:ListBucket on the bucket and s3:GetObject on its objects"
        ),
        _ => anyhow::anyhow!(
            "listing s3://{bucket} failed: {}",
            aws_sdk_s3::error::DisplayErrorContext(e)
        ),
    }
}
