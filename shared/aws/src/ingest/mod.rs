//! What the ingest functions do with an event: CloudWatch Logs batches and
//! S3 notifications in, the summary table updated exactly once, one
//! reconciliation line and one EMF record out.
//!
//! The functions' `main` only reads configuration, builds [`Deps`] once and
//! hands each event to [`handle_logs`] or [`handle_s3`].

use std::collections::HashMap;

use lambda_runtime::LambdaEvent;
use serde_json::value::RawValue;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_sdk_s3::operation::get_object::GetObjectError;

use crate::store::{Reject, SummaryStore};
use crate::Error;
use ddb_audit_core::config::Config;
use ddb_audit_core::input::{InputKind, InputReader, LogsBatch};
use ddb_audit_core::metrics::Invocation;
use ddb_audit_core::notification::{self, content_source_id, Disposition, ObjectRef};
use ddb_audit_core::paths::IngestPath;
use ddb_audit_core::rollup::Batch;
use ddb_audit_core::summary;

/// What a handler needs, built once per Lambda execution environment.
#[derive(Debug, Clone)]
pub struct Deps {
    /// Configuration from the environment.
    pub config: Config,
    /// The summary table.
    pub store: SummaryStore,
    /// S3, for reading CloudTrail files.
    pub s3: aws_sdk_s3::Client,
    /// The function's name in metrics (`logs-ingest`, `s3-ingest`).
    pub function: &'static str,
}

impl Deps {
    /// Builds the clients from an SDK configuration.
    pub fn new(config: Config, sdk: &aws_config::SdkConfig, function: &'static str) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(config.s3_path_style)
                .build(),
        );
        let store = SummaryStore::new(
            dynamodb,
            &config.summary_table,
            config.ledger_ttl_days,
            config.reject_ttl_days,
        );
        Deps {
            config,
            store,
            s3,
            function,
        }
    }

    /// Reads the environment (`SUMMARY_TABLE`, ..., and the usual AWS
    /// settings, `AWS_ENDPOINT_URL` included) with bounded SDK retries.
    pub async fn from_env(function: &'static str) -> Result<Self, Error> {
        let config = Config::from_env()?;
        Ok(Self::new(config, &function_sdk_config().await, function))
    }
}

/// The AWS settings every function uses: the usual chain (environment,
/// `AWS_ENDPOINT_URL` included, then the function's role), five attempts
/// with the SDK's exponential backoff and jitter, and no attempt waiting
/// forever on a silent connection.
pub async fn function_sdk_config() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .operation_attempt_timeout(std::time::Duration::from_secs(20))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .timeout_config(timeouts)
        .load()
        .await
}

/// Sets up logging: JSON lines on Lambda, readable text elsewhere; level
/// from `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder.json().without_time().try_init()
    } else {
        builder.try_init()
    };
    // A second initialisation (tests) keeps the first subscriber.
    drop(result);
}

/// The `logs-ingest` handler: one CloudWatch Logs subscription event.
///
/// A `CONTROL_MESSAGE` is acknowledged. A batch that cannot be decoded is
/// recorded as a reject and acknowledged (retrying cannot fix it). An error
/// is returned, so that Lambda retries, only when the summary table stays
/// unavailable.
pub async fn handle_logs(deps: &Deps, event: LambdaEvent<Box<RawValue>>) -> Result<(), Error> {
    let mut inv = Invocation::default();
    let result = ingest_logs(
        deps,
        event.payload.get().as_bytes(),
        &event.context.request_id,
        &mut inv,
    )
    .await;
    if result.is_err() {
        inv.failures += 1;
    }
    finish(deps.function, &inv, result.as_ref().err());
    result
}

/// [`handle_logs`] without the Lambda types.
pub async fn ingest_logs(
    deps: &Deps,
    payload: &[u8],
    request_id: &str,
    inv: &mut Invocation,
) -> Result<(), Error> {
    let mut reader = InputReader::new(deps.config.rules.clone(), deps.config.limits);
    match reader.read("cloudwatch-logs", payload) {
        Ok((InputKind::LogsControl, _)) => {
            tracing::info!("CONTROL_MESSAGE acknowledged");
            Ok(())
        }
        Ok((kind, batch)) => {
            inv.inputs += 1;
            let source = match &kind {
                InputKind::LogsData(logs) => logs_source_id(logs),
                _ => format!("logs:request/{request_id}"),
            };
            apply_batch(deps, &source, &batch, IngestPath::Logs, inv).await
        }
        Err(e) if e.is_bad_input() => {
            inv.inputs += 1;
            let source = format!("logs:request/{request_id}");
            tracing::warn!(source = %source, reason = e.reason(), error = %e, "log batch rejected");
            reject(deps, &source, None, &Error::from(e), inv).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A CloudWatch Logs batch's stable id: the same on a retry of the same
/// invocation.
pub fn logs_source_id(logs: &LogsBatch) -> String {
    format!(
        "logs:{}/{}/{}/{}..{}/{}",
        logs.owner,
        logs.log_group,
        logs.log_stream,
        logs.first_event_id,
        logs.last_event_id,
        logs.events
    )
}

/// The `s3-ingest` handler: an S3 notification (direct, through SQS, SNS or
/// EventBridge).
///
/// Behind SQS, messages whose objects could not be applied are returned in
/// `batchItemFailures`, so only they are retried. For other triggers, a
/// failure is returned as an error so that Lambda retries the event; objects
/// already applied are then skipped by their ledger items.
pub async fn handle_s3(
    deps: &Deps,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<SqsBatchResponse, Error> {
    let mut inv = Invocation::default();
    let result = ingest_s3(deps, event.payload.get().as_bytes(), &mut inv).await;
    finish(deps.function, &inv, result.as_ref().err());
    result
}

/// [`handle_s3`] without the Lambda types.
pub async fn ingest_s3(
    deps: &Deps,
    payload: &[u8],
    inv: &mut Invocation,
) -> Result<SqsBatchResponse, Error> {
    let messages = notification::parse_lambda_event(payload)?;
    let mut failures = Vec::new();
    let mut unidentified_failure = None;
    for message in messages {
        let outcome = match message.objects {
            Err(e) => {
                tracing::warn!(message_id = ?message.message_id, error = %e, "notification not readable");
                Err(e.into())
            }
            Ok(objects) => {
                if message.test_event {
                    tracing::info!("s3:TestEvent acknowledged");
                }
                if message.foreign {
                    inv.messages_skipped += 1;
                    tracing::warn!(message_id = ?message.message_id, "SNS message skipped: it is neither CloudTrail's notice nor an S3 event");
                }
                let mut first_error = None;
                for announced in objects {
                    let object = &announced.object;
                    match announced.disposition {
                        Disposition::Skip(reason) => {
                            inv.objects_skipped += 1;
                            tracing::debug!(reason = reason.as_str(), "object skipped");
                        }
                        Disposition::Read if !in_trail(&deps.config, &object.key) => {
                            inv.objects_skipped += 1;
                            tracing::warn!(bucket = %object.bucket, key = %object.key, trail_key_prefix = deps.config.trail_key_prefix.as_deref().unwrap_or(""), "object skipped: outside the trail's key prefix (TRAIL_KEY_PREFIX)");
                        }
                        Disposition::Read => {
                            if let Err(e) = ingest_object(deps, object, inv).await {
                                tracing::error!(source = %object.announced_source_id(), error = %e, "object not applied");
                                first_error.get_or_insert(e);
                            }
                        }
                    }
                }
                first_error.map_or(Ok(()), Err)
            }
        };
        if let Err(e) = outcome {
            inv.failures += 1;
            match message.message_id {
                Some(id) => {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    failures.push(failure);
                }
                None => {
                    unidentified_failure.get_or_insert(e);
                }
            }
        }
    }
    if let Some(e) = unidentified_failure {
        return Err(e);
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    Ok(response)
}

/// True when `key` is where the trail writes log files (`TRAIL_KEY_PREFIX`),
/// or when no prefix is configured.
pub fn in_trail(config: &Config, key: &str) -> bool {
    config
        .trail_key_prefix
        .as_deref()
        .is_none_or(|prefix| key.starts_with(prefix))
}

/// Reads one CloudTrail file from S3 and applies it under the id of the
/// content read ([`content_source_id`] with the ETag `GetObject` returned),
/// so that every way of announcing the same object gives the same ledger
/// items. A bad file becomes a reject and is not an error; S3 or
/// summary-table failures are.
pub async fn ingest_object(
    deps: &Deps,
    object: &ObjectRef,
    inv: &mut Invocation,
) -> Result<(), Error> {
    let announced = object.announced_source_id();
    let where_ = format!("s3://{}/{}", object.bucket, object.key);
    let mut request = deps.s3.get_object().bucket(&object.bucket).key(&object.key);
    if let Some(version) = &object.version_id {
        request = request.version_id(version);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) {
                inv.inputs += 1;
                let missing = Error::ObjectRead {
                    object: where_.clone(),
                    message: "the object no longer exists".into(),
                };
                tracing::warn!(bucket = %object.bucket, key = %object.key, "object skipped: it no longer exists");
                return reject_with(
                    deps,
                    &announced,
                    Some(object),
                    "missing",
                    &missing.to_string(),
                    inv,
                )
                .await;
            }
            return Err(Error::ObjectRead {
                object: where_,
                message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
            });
        }
    };
    inv.inputs += 1;
    let source = match response.e_tag() {
        Some(etag) => content_source_id(&object.bucket, &object.key, Some(etag)),
        None => announced,
    };
    // The body is decoded and split into records as it arrives: memory holds
    // a record or so of it, never the file.
    let reader = InputReader::new(deps.config.rules.clone(), deps.config.limits);
    let mut stream = reader.start(&where_);
    let mut body = response.body;
    let mut pushed = Ok(());
    loop {
        match body.next().await {
            None => break,
            Some(Ok(chunk)) => {
                if let Err(e) = stream.push(&chunk) {
                    pushed = Err(e);
                    break;
                }
            }
            Some(Err(e)) => {
                return Err(Error::ObjectRead {
                    object: where_.clone(),
                    message: format!("the body could not be read: {e}"),
                })
            }
        }
    }
    let read = pushed.and_then(|()| stream.finish());
    match read {
        Ok(input) => apply_batch(deps, &source, &input.batch, IngestPath::S3, inv).await,
        Err(ddb_audit_core::Error::Empty) => {
            inv.objects_skipped += 1;
            Ok(())
        }
        Err(e) if e.is_bad_input() => {
            tracing::warn!(source = %source, reason = e.reason(), error = %e, "object rejected");
            reject(deps, &source, Some(object), &Error::from(e), inv).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn reject(
    deps: &Deps,
    source: &str,
    object: Option<&ObjectRef>,
    e: &Error,
    inv: &mut Invocation,
) -> Result<(), Error> {
    reject_with(deps, source, object, e.reason(), &e.to_string(), inv).await
}

async fn reject_with(
    deps: &Deps,
    source: &str,
    object: Option<&ObjectRef>,
    reason: &str,
    detail: &str,
    inv: &mut Invocation,
) -> Result<(), Error> {
    deps.store
        .put_reject(&Reject {
            source_id: source.to_owned(),
            object: object.map(|o| (o.bucket.clone(), o.key.clone())),
            reason: reason.to_owned(),
            detail: detail.to_owned(),
            at: now_seconds(),
        })
        .await?;
    inv.rejects += 1;
    Ok(())
}

/// Logs the batch's record problems, plans its writes, applies them and
/// marks the path they came by (see [`ddb_audit_core::paths`]).
async fn apply_batch(
    deps: &Deps,
    source: &str,
    batch: &Batch,
    path: IngestPath,
    inv: &mut Invocation,
) -> Result<(), Error> {
    for p in &batch.problems {
        tracing::warn!(
            origin = %p.origin,
            index = p.index,
            event_id = p.event_id.as_deref().unwrap_or(""),
            reason = p.reason,
            "malformed record: {}",
            p.detail
        );
    }
    if batch.problems_dropped > 0 {
        tracing::warn!(
            more = batch.problems_dropped,
            "more malformed records not logged"
        );
    }
    inv.counts.merge(&batch.counts);
    let plan = summary::plan(source, batch, deps.config.retention);
    inv.rollup_keys += plan.rollup_keys() as u64;
    let report = deps.store.apply(&plan, now_seconds()).await?;
    inv.chunks_applied += report.chunks_applied;
    inv.chunks_already_applied += report.chunks_already_applied;
    let mut latest: HashMap<(&str, &str), i64> = HashMap::new();
    for (key, rollup) in &batch.lifetime {
        let day = rollup.last_seen.div_euclid(86_400);
        let entry = latest.entry((&key.account, &key.region)).or_insert(day);
        *entry = (*entry).max(day);
    }
    for ((account, region), day) in latest {
        deps.store.mark_path(account, region, path, day).await?;
    }
    Ok(())
}

fn finish(function: &str, inv: &Invocation, error: Option<&Error>) {
    match error {
        None => tracing::info!(function, "reconciliation: {}", inv.summary()),
        Some(e) => tracing::error!(function, error = %e, "reconciliation: {}", inv.summary()),
    }
    // EMF must be its own line on stdout for CloudWatch to extract metrics.
    println!("{}", inv.emf(function, now_seconds() * 1000));
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
