//! The `notifier` handler: the summary table's DynamoDB stream in, notices
//! on SNS out, each sent once.
//!
//! For each stream record, in order: is it a notice ([`Notice::from_change`]),
//! is it silenced (`NOTIFY_IGNORE`), in the learning period, or history a
//! backfill brought in with notices off ([`BackfillMarker`]), was it sent
//! already, and may it go out alone or does it join this batch's digest
//! (`NOTIFY_MAX_PER_HOUR`).
//!
//! # Sent once
//!
//! Each notice has a record in the summary table, `pk = NOTICE#<row pk>`,
//! `sk = <row sk>#new` or `#denied`, created before the publish under
//! `attribute_not_exists(pk)` with `status = pending` and the delivery
//! chosen (`single`, together with the hour's counter in one transaction,
//! or `digest` when the hour is full), and set to `status = sent` after SNS
//! accepted the message. A redelivered or retried record finds `sent` and
//! publishes nothing; one that finds `pending` publishes as recorded. A
//! failure (SNS or the table) stops the batch at that record and reports its
//! sequence number in `batchItemFailures`, so Lambda retries from there.
//! Digest members before the failure are published before returning.
//!
//! The one window that still duplicates: SNS accepted a message but the
//! notifier never learned it (the Publish response was lost, or the function
//! died before writing `sent`). The retry publishes it again. On a FIFO
//! topic, the `MessageDeduplicationId` (a hash of the notice record's key)
//! lets SNS drop that repeat within its five-minute deduplication interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_sns::types::MessageAttributeValue;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::store::{path_marks_from_item, row_from_item, BackfillMarker, SummaryStore};
use crate::Error;
use ddb_audit_core::config::NotifyConfig;
use ddb_audit_core::notify::{self, Notice, NoticeCounts};
use ddb_audit_core::notify_message::{self, Message, MAX_DIGEST_ENTRIES};
use ddb_audit_core::paths::{self, PathMarks};
use ddb_audit_core::row::format_time;
use ddb_audit_core::summary;

pub use aws_lambda_events::dynamodb::{Event as StreamEvent, EventRecord as StreamRecord};
pub use aws_lambda_events::streams::{
    DynamoDbBatchItemFailure as StreamFailure, DynamoDbEventResponse as StreamResponse,
};

/// How long notice records are kept: far longer than a stream record lives
/// (24 hours), so a retry always finds them.
pub const NOTICE_TTL_DAYS: i64 = 30;

/// What the handler needs, built once per execution environment.
#[derive(Debug, Clone)]
pub struct NotifyDeps {
    /// Configuration from the environment.
    pub config: NotifyConfig,
    /// The summary table's client (notice records, hourly counters).
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// The function's name in metrics.
    pub function: &'static str,
    /// The time, Unix seconds (a parameter so tests can pin the hour).
    pub clock: fn() -> i64,
    /// When the learning period started, once read.
    learning_started: Arc<OnceCell<i64>>,
}

impl NotifyDeps {
    /// Dependencies over the given clients.
    pub fn new(
        config: NotifyConfig,
        dynamodb: aws_sdk_dynamodb::Client,
        sns: aws_sdk_sns::Client,
        function: &'static str,
    ) -> Self {
        NotifyDeps {
            config,
            dynamodb,
            sns,
            function,
            clock: now_seconds,
            learning_started: Arc::new(OnceCell::new()),
        }
    }

    /// Uses another clock.
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// Reads the environment (`SUMMARY_TABLE`, `TOPIC_ARN`, `NOTIFY_*` and
    /// the usual AWS settings) with bounded SDK retries.
    pub async fn from_env(function: &'static str) -> Result<Self, Error> {
        let config = NotifyConfig::from_env()?;
        let sdk = crate::ingest::function_sdk_config().await;
        Ok(Self::new(
            config,
            aws_sdk_dynamodb::Client::new(&sdk),
            aws_sdk_sns::Client::new(&sdk),
            function,
        ))
    }

    fn table(&self) -> &str {
        &self.config.summary_table
    }

    fn store_error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Store {
            table: self.table().to_owned(),
            message: format!("{what}: {e}"),
        }
    }
}

/// The `notifier` handler: one batch of the summary table's stream.
///
/// Records that could not be handled are reported in `batchItemFailures`
/// (the first one's sequence number: Lambda retries from there). An error
/// is returned only for a failing record without a sequence number.
pub async fn handle_stream(
    deps: &NotifyDeps,
    event: LambdaEvent<StreamEvent>,
) -> Result<StreamResponse, Error> {
    let mut counts = NoticeCounts::default();
    // Boxed: the future is deep enough to overflow the compiler's layout
    // query depth in the function's `main` otherwise.
    let result = Box::pin(notify_batch(deps, &event.payload.records, &mut counts)).await;
    match &result {
        Ok(_) => tracing::info!(
            function = deps.function,
            "reconciliation: {}",
            counts.summary()
        ),
        Err(e) => {
            tracing::error!(function = deps.function, error = %e, "reconciliation: {}", counts.summary())
        }
    }
    println!("{}", counts.emf(deps.function, (deps.clock)() * 1000));
    result
}

/// What became of one stream record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    NotNotice,
    Ignored,
    Learning,
    History,
    AlreadySent,
    Sent,
    Digest,
}

/// How a recorded notice goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Single,
    Digest,
}

impl Delivery {
    fn as_str(self) -> &'static str {
        match self {
            Delivery::Single => "single",
            Delivery::Digest => "digest",
        }
    }
}

/// [`handle_stream`] without the Lambda types.
pub async fn notify_batch(
    deps: &NotifyDeps,
    records: &[StreamRecord],
    counts: &mut NoticeCounts,
) -> Result<StreamResponse, Error> {
    let now = (deps.clock)();
    let mut outcomes = Vec::with_capacity(records.len());
    let mut digest: Vec<(usize, Notice)> = Vec::new();
    let mut failed_at = None;
    let mut markers = None;
    for (i, record) in records.iter().enumerate() {
        match Box::pin(handle_record(deps, record, now, &mut markers)).await {
            Ok((outcome, notice)) => {
                if let (Outcome::Digest, Some(notice)) = (outcome, notice) {
                    digest.push((i, notice));
                }
                outcomes.push(outcome);
            }
            Err(e) => {
                tracing::error!(event_id = %record.event_id, error = %e, "notice not sent; the batch is retried from this record");
                failed_at = Some(i);
                break;
            }
        }
    }
    if !digest.is_empty() {
        match publish_digests(deps, &digest).await {
            Ok(published) => counts.digests += published,
            Err((i, e)) => {
                tracing::error!(error = %e, "digest not sent; the batch is retried from its first notice");
                failed_at = Some(failed_at.map_or(i, |f: usize| f.min(i)));
            }
        }
    }
    let done = failed_at.unwrap_or(records.len());
    counts.records_in += records.len() as u64;
    counts.failed += (records.len() - done) as u64;
    for outcome in outcomes.iter().take(done) {
        let counter = match outcome {
            Outcome::NotNotice => &mut counts.not_notices,
            Outcome::Ignored => &mut counts.ignored,
            Outcome::Learning => &mut counts.learning,
            Outcome::History => &mut counts.history,
            Outcome::AlreadySent => &mut counts.already_sent,
            Outcome::Sent => &mut counts.sent,
            Outcome::Digest => &mut counts.in_digest,
        };
        *counter += 1;
    }
    let mut response = StreamResponse::default();
    if let Some(i) = failed_at {
        let record = &records[i];
        let Some(sequence) = record.change.sequence_number.clone() else {
            return Err(ddb_audit_core::Error::Shape {
                what: format!(
                    "stream record {} failed and has no SequenceNumber to retry from",
                    record.event_id
                ),
            }
            .into());
        };
        let mut failure = StreamFailure::default();
        failure.item_identifier = Some(sequence);
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

async fn handle_record(
    deps: &NotifyDeps,
    record: &StreamRecord,
    now: i64,
    markers: &mut Option<Vec<BackfillMarker>>,
) -> Result<(Outcome, Option<Notice>), Error> {
    let old = image_item(&record.change.old_image);
    let new = image_item(&record.change.new_image);
    if let Some(marks) = paths::overlap_started(
        old.as_ref().and_then(path_marks_from_item).as_ref(),
        new.as_ref().and_then(path_marks_from_item).as_ref(),
    ) {
        return warn_overlap(deps, &marks, now).await;
    }
    let old = old.as_ref().and_then(row_from_item);
    let new = new.as_ref().and_then(row_from_item);
    let Some(notice) = Notice::from_change(old, new) else {
        return Ok((Outcome::NotNotice, None));
    };
    if let Some(rule) = deps.config.ignore.silencing(&notice.row) {
        tracing::info!(kind = notice.kind.as_str(), table = notice.table(), caller = %notice.row.caller, rule, "notice silenced by NOTIFY_IGNORE");
        return Ok((Outcome::Ignored, None));
    }
    if deps.config.learning_hours > 0 {
        let at = record_time(record).unwrap_or(now);
        let started = learning_started(deps, at).await?;
        if at < started + i64::from(deps.config.learning_hours) * 3600 {
            tracing::info!(kind = notice.kind.as_str(), table = notice.table(), caller = %notice.row.caller, "learning period: recorded, not announced");
            return Ok((Outcome::Learning, None));
        }
    }
    if notice.kind != notify::NoticeKind::Denied {
        if markers.is_none() {
            // Read once per batch, and only when there is a new caller.
            let store = SummaryStore::new(deps.dynamodb.clone(), deps.table(), 0, 0);
            *markers = Some(store.backfill_markers().await?);
        }
        let first_seen = ddb_audit_core::attribute::parse_event_time(&notice.row.first_seen);
        if let (Some(markers), Some(first_seen)) = (markers.as_ref(), first_seen) {
            if markers.iter().any(|m| m.silences(first_seen)) {
                tracing::info!(table = notice.table(), caller = %notice.row.caller, "backfilled history with notices off: not announced");
                return Ok((Outcome::History, None));
            }
        }
    }
    let delivery = match notice_state(deps, &notice).await? {
        Some(State::Sent) => return Ok((Outcome::AlreadySent, None)),
        Some(State::Pending(delivery)) => delivery,
        None => match reserve(deps, &notice, now).await? {
            Some(delivery) => delivery,
            // Recorded meanwhile by someone else: go by that record.
            None => match notice_state(deps, &notice).await? {
                Some(State::Sent) => return Ok((Outcome::AlreadySent, None)),
                Some(State::Pending(delivery)) => delivery,
                None => {
                    return Err(deps.store_error("notice record", "vanished while being written"))
                }
            },
        },
    };
    match delivery {
        Delivery::Digest => Ok((Outcome::Digest, Some(notice))),
        Delivery::Single => {
            let message = notify_message::single(&notice);
            let id = publish(deps, &message).await?;
            tracing::info!(kind = notice.kind.as_str(), table = notice.table(), account = %notice.row.account, region = %notice.row.region, caller = %notice.row.caller, message_id = %id, "notice sent");
            mark_sent(deps, &record_key(&notice), &id, now).await;
            Ok((Outcome::Sent, None))
        }
    }
}

/// The item of a stream image; `None` for an empty one.
fn image_item(image: &impl serde::Serialize) -> Option<HashMap<String, AttributeValue>> {
    let Value::Object(attributes) = serde_json::to_value(image).ok()? else {
        return None;
    };
    if attributes.is_empty() {
        return None;
    }
    Some(
        attributes
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), attribute(value)?)))
            .collect(),
    )
}

/// Sends the one warning of an overlap spell (see [`ddb_audit_core::paths`]): a
/// record under `attribute_not_exists` first, so a redelivery or a second
/// notifier sends nothing, then the message, then `sent`. Not subject to
/// the learning period, the hourly cap or `NOTIFY_IGNORE`: it says the
/// counts are wrong, which a person must hear at once.
async fn warn_overlap(
    deps: &NotifyDeps,
    marks: &PathMarks,
    now: i64,
) -> Result<(Outcome, Option<Notice>), Error> {
    let key = (
        paths::OVERLAP_NOTICE_PK.to_owned(),
        paths::overlap_notice_sk(marks),
    );
    let recorded = deps
        .dynamodb
        .put_item()
        .table_name(deps.table())
        .item(summary::PK, s(&key.0))
        .item(summary::SK, s(&key.1))
        .item("kind", s("path_overlap"))
        .item("status", s("pending"))
        .item("account", s(&marks.account))
        .item("region", s(&marks.region))
        .item("recorded_at", s(&format_time(now)))
        .item(summary::EXPIRES_AT, n(now + NOTICE_TTL_DAYS * 86_400))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", summary::PK)
        .send()
        .await;
    match recorded {
        Ok(_) => {}
        Err(e) if is_condition_failed_put(&e) => {
            if record_state(deps, &key).await? == Some(State::Sent) {
                return Ok((Outcome::AlreadySent, None));
            }
        }
        Err(e) => {
            return Err(deps.store_error("PutItem of a warning record", DisplayErrorContext(&e)))
        }
    }
    let id = publish(deps, &paths::overlap_message(marks)).await?;
    tracing::warn!(account = %marks.account, region = %marks.region, message_id = %id, "both ingest paths deliver this account and region: warning sent");
    mark_sent(deps, &key, &id, now).await;
    Ok((Outcome::Sent, None))
}

/// One attribute in DynamoDB JSON (`{"S": "..."}`) as the SDK's type; the
/// types a rollup row uses, and nested ones for completeness.
fn attribute(value: &Value) -> Option<AttributeValue> {
    let (kind, inner) = value.as_object()?.iter().next()?;
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    Some(match kind.as_str() {
        "S" => AttributeValue::S(inner.as_str()?.to_owned()),
        "N" => AttributeValue::N(inner.as_str()?.to_owned()),
        "BOOL" => AttributeValue::Bool(inner.as_bool()?),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        "L" => AttributeValue::L(inner.as_array()?.iter().filter_map(attribute).collect()),
        "M" => AttributeValue::M(
            inner
                .as_object()?
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), attribute(v)?)))
                .collect(),
        ),
        _ => return None,
    })
}

/// When the change happened (Unix seconds), if the record says.
fn record_time(record: &StreamRecord) -> Option<i64> {
    let at = record.change.approximate_creation_date_time.timestamp();
    (at > 0).then_some(at)
}

/// When the learning period started: the time of the first change the
/// notifier saw, kept in the summary table (`NOTIFIER` / `LEARNING`).
async fn learning_started(deps: &NotifyDeps, at: i64) -> Result<i64, Error> {
    deps.learning_started
        .get_or_try_init(|| async {
            if let Some(started) = read_learning_start(deps).await? {
                return Ok(started);
            }
            let put = deps
                .dynamodb
                .put_item()
                .table_name(deps.table())
                .item(summary::PK, s(notify::NOTIFIER_PK))
                .item(summary::SK, s(notify::LEARNING_SK))
                .item("started_at", n(at))
                .item("started", s(&format_time(at)))
                .item(
                    "learning_hours",
                    n(i64::from(deps.config.learning_hours)),
                )
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", summary::PK)
                .send()
                .await;
            match put {
                Ok(_) => {
                    tracing::info!(started = %format_time(at), hours = deps.config.learning_hours, "learning period started");
                    Ok(at)
                }
                Err(e) if is_condition_failed_put(&e) => read_learning_start(deps)
                    .await?
                    .ok_or_else(|| deps.store_error("learning start", "vanished")),
                Err(e) => Err(deps.store_error("PutItem of the learning start", DisplayErrorContext(&e))),
            }
        })
        .await
        .copied()
}

async fn read_learning_start(deps: &NotifyDeps) -> Result<Option<i64>, Error> {
    let item = deps
        .dynamodb
        .get_item()
        .table_name(deps.table())
        .key(summary::PK, s(notify::NOTIFIER_PK))
        .key(summary::SK, s(notify::LEARNING_SK))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| deps.store_error("GetItem of the learning start", DisplayErrorContext(&e)))?;
    Ok(item
        .item()
        .and_then(|i| i.get("started_at"))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok()))
}

/// A notice record's state.
#[derive(PartialEq)]
enum State {
    Pending(Delivery),
    Sent,
}

async fn notice_state(deps: &NotifyDeps, notice: &Notice) -> Result<Option<State>, Error> {
    record_state(deps, &record_key(notice)).await
}

/// The `pk` and `sk` of a notice's record.
fn record_key(notice: &Notice) -> (String, String) {
    (notice.record_pk(), notice.record_sk())
}

async fn record_state(deps: &NotifyDeps, key: &(String, String)) -> Result<Option<State>, Error> {
    let got = deps
        .dynamodb
        .get_item()
        .table_name(deps.table())
        .key(summary::PK, s(&key.0))
        .key(summary::SK, s(&key.1))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| deps.store_error("GetItem of a notice record", DisplayErrorContext(&e)))?;
    let Some(item) = got.item() else {
        return Ok(None);
    };
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    };
    Ok(Some(match (text("status"), text("delivery")) {
        (Some("sent"), _) => State::Sent,
        (_, Some("digest")) => State::Pending(Delivery::Digest),
        _ => State::Pending(Delivery::Single),
    }))
}

/// Records a pending notice and chooses its delivery: a single message while
/// the hour has room (the record and the hour's counter in one
/// transaction), a digest after. `None` when the record exists already.
async fn reserve(deps: &NotifyDeps, notice: &Notice, now: i64) -> Result<Option<Delivery>, Error> {
    if deps.config.max_per_hour == 0 {
        return put_pending(deps, notice, Delivery::Single, now).await;
    }
    let record = pending_put(deps, notice, Delivery::Single, now)?;
    let hour = Update::builder()
        .table_name(deps.table())
        .key(summary::PK, s(notify::NOTIFIER_PK))
        .key(summary::SK, s(&notify::hour_sk(now)))
        .update_expression("ADD #sent :one SET #exp = if_not_exists(#exp, :exp)")
        .condition_expression("attribute_not_exists(#sent) OR #sent < :max")
        .expression_attribute_names("#sent", "sent")
        .expression_attribute_names("#exp", summary::EXPIRES_AT)
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":max", n(i64::from(deps.config.max_per_hour)))
        .expression_attribute_values(":exp", n(now.div_euclid(3600) * 3600 + 2 * 86_400))
        .build()
        .map_err(|e| deps.store_error("building the hourly counter update", e))?;
    let items = vec![
        TransactWriteItem::builder().put(record).build(),
        TransactWriteItem::builder().update(hour).build(),
    ];
    let attempts = 6;
    for attempt in 0..attempts {
        let sent = deps
            .dynamodb
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(Some(Delivery::Single)),
            Err(e) => e,
        };
        let reasons: Vec<String> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_owned())
                .collect(),
            _ => Vec::new(),
        };
        let failed =
            |i: usize| reasons.get(i).map(String::as_str) == Some("ConditionalCheckFailed");
        if failed(0) {
            return Ok(None);
        }
        if failed(1) {
            // The hour is full: this notice joins the batch's digest.
            return put_pending(deps, notice, Delivery::Digest, now).await;
        }
        let conflict = reasons.iter().any(|r| {
            matches!(
                r.as_str(),
                "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
            )
        }) || matches!(
            err.as_service_error(),
            Some(TransactWriteItemsError::TransactionInProgressException(_))
                | Some(TransactWriteItemsError::ThrottlingException(_))
                | Some(TransactWriteItemsError::RequestLimitExceeded(_))
        );
        if !conflict || attempt + 1 == attempts {
            return Err(deps.store_error(
                "TransactWriteItems of a notice record",
                DisplayErrorContext(&err),
            ));
        }
        let bound = 20u64 << attempt;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=bound))).await;
    }
    Err(deps.store_error("TransactWriteItems of a notice record", "no attempt made"))
}

fn pending_put(
    deps: &NotifyDeps,
    notice: &Notice,
    delivery: Delivery,
    now: i64,
) -> Result<Put, Error> {
    Put::builder()
        .table_name(deps.table())
        .item(summary::PK, s(&notice.record_pk()))
        .item(summary::SK, s(&notice.record_sk()))
        .item("kind", s(notice.kind.as_str()))
        .item("status", s("pending"))
        .item("delivery", s(delivery.as_str()))
        .item("caller", s(&notice.row.caller))
        .item("table", s(notice.table()))
        .item("account", s(&notice.row.account))
        .item("region", s(&notice.row.region))
        .item("recorded_at", s(&format_time(now)))
        .item(summary::EXPIRES_AT, n(now + NOTICE_TTL_DAYS * 86_400))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", summary::PK)
        .build()
        .map_err(|e| deps.store_error("building a notice record", e))
}

async fn put_pending(
    deps: &NotifyDeps,
    notice: &Notice,
    delivery: Delivery,
    now: i64,
) -> Result<Option<Delivery>, Error> {
    let put = pending_put(deps, notice, delivery, now)?;
    let sent = deps
        .dynamodb
        .put_item()
        .table_name(put.table_name())
        .set_item(Some(put.item().clone()))
        .set_condition_expression(put.condition_expression().map(str::to_owned))
        .set_expression_attribute_names(put.expression_attribute_names().cloned())
        .send()
        .await;
    match sent {
        Ok(_) => Ok(Some(delivery)),
        Err(e) if is_condition_failed_put(&e) => Ok(None),
        Err(e) => Err(deps.store_error("PutItem of a notice record", DisplayErrorContext(&e))),
    }
}

fn is_condition_failed_put<R>(e: &aws_sdk_dynamodb::error::SdkError<PutItemError, R>) -> bool {
    matches!(
        e.as_service_error(),
        Some(PutItemError::ConditionalCheckFailedException(_))
    )
}

/// Sets a notice record to `sent`. A failure here is only logged: the
/// message is out, and failing the record would send it again.
async fn mark_sent(deps: &NotifyDeps, key: &(String, String), message_id: &str, now: i64) {
    let result = deps
        .dynamodb
        .update_item()
        .table_name(deps.table())
        .key(summary::PK, s(&key.0))
        .key(summary::SK, s(&key.1))
        .update_expression("SET #st = :sent, #at = :at, #id = :id")
        .expression_attribute_names("#st", "status")
        .expression_attribute_names("#at", "sent_at")
        .expression_attribute_names("#id", "message_id")
        .expression_attribute_values(":sent", s("sent"))
        .expression_attribute_values(":at", s(&format_time(now)))
        .expression_attribute_values(":id", s(message_id))
        .send()
        .await;
    if let Err(e) = result {
        tracing::warn!(record = %key.1, error = %DisplayErrorContext(&e), "notice sent but not recorded as sent; a redelivery of this record would send it again");
    }
}

/// Publishes the digests of this batch; on failure, the index of the first
/// record whose digest did not go out.
async fn publish_digests(
    deps: &NotifyDeps,
    members: &[(usize, Notice)],
) -> Result<u64, (usize, Error)> {
    let notices: Vec<&Notice> = members.iter().map(|(_, n)| n).collect();
    let messages = notify_message::digests(&notices, deps.config.max_per_hour);
    let now = (deps.clock)();
    let mut published = 0;
    for (part, message) in members.chunks(MAX_DIGEST_ENTRIES).zip(&messages) {
        let first = part.first().map_or(0, |(i, _)| *i);
        let id = publish(deps, message).await.map_err(|e| (first, e))?;
        tracing::info!(notices = part.len(), message_id = %id, "digest sent");
        for (_, notice) in part {
            mark_sent(deps, &record_key(notice), &id, now).await;
        }
        published += 1;
    }
    Ok(published)
}

async fn publish(deps: &NotifyDeps, message: &Message) -> Result<String, Error> {
    let topic = &deps.config.topic_arn;
    let error = |message: String| Error::Publish {
        topic: topic.clone(),
        message,
    };
    let mut request = deps
        .sns
        .publish()
        .topic_arn(topic)
        .subject(&message.subject)
        .message_structure("json")
        .message(message.structured());
    for (name, value) in &message.attributes {
        let attribute = MessageAttributeValue::builder()
            .data_type(value.data_type())
            .string_value(value.value())
            .build()
            .map_err(|e| error(format!("building the attribute {name}: {e}")))?;
        request = request.message_attributes(*name, attribute);
    }
    if topic.ends_with(".fifo") {
        request = request
            .message_group_id("ddb-audit")
            .message_deduplication_id(&message.dedup_id);
    }
    let sent = request
        .send()
        .await
        .map_err(|e| error(aws_sdk_sns::error::DisplayErrorContext(&e).to_string()))?;
    Ok(sent.message_id().unwrap_or_default().to_owned())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_event_parses_and_its_images_are_rows_or_nothing() {
        let data = include_bytes!("../../../../events/notifier/dynamodb-stream.json");
        let event: StreamEvent = serde_json::from_slice(data).unwrap();
        // Round trip, as aws-lambda-rust-runtime's fixtures do.
        let again: StreamEvent =
            serde_json::from_slice(serde_json::to_string(&event).unwrap().as_bytes()).unwrap();
        assert_eq!(event, again);
        let notices: Vec<Notice> = event
            .records
            .iter()
            .filter_map(|r| {
                let row = |image| image_item(image).as_ref().and_then(row_from_item);
                Notice::from_change(row(&r.change.old_image), row(&r.change.new_image))
            })
            .collect();
        let kinds: Vec<&str> = notices.iter().map(|n| n.kind.as_str()).collect();
        assert_eq!(kinds, ["new_caller", "new_caller_denied", "denied"]);
        assert_eq!(notices[0].row.first_seen, "2024-03-14T23:58:41Z");
        assert!(event
            .records
            .iter()
            .all(|r| r.change.sequence_number.is_some()));
    }
}
