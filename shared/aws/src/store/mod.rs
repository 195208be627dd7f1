//! The summary table in DynamoDB: applying a [`Plan`] exactly once, recording
//! rejects, and creating the table.
//!
//! Exactly once: each chunk of counter updates goes in one
//! `TransactWriteItems` together with a put of the chunk's ledger item under
//! `attribute_not_exists(pk)`. A chunk already applied (a redelivered batch,
//! a retry after a lost response or a crash between chunks) fails only its
//! ledger condition and is counted as already applied. `first_seen`,
//! `last_seen` and sources are minimum, maximum and set unions, applied by
//! conditional updates that can run any number of times.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, PointInTimeRecoverySpecification, Projection, ProjectionType, Put,
    ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use tokio::task::JoinSet;

use crate::Error;
use ddb_audit_core::paths::{paths_sk, IngestPath, PathMarks, PATHS_PK};
use ddb_audit_core::row::{format_day, format_time, Row};
use ddb_audit_core::summary::{self, Chunk, CounterUpdate, Facts, Plan};

/// Sources kept per lifetime row at most (a sample, not an inventory).
pub const MAX_STORED_SOURCES: usize = 16;

/// Requests in flight at once while applying a plan, by default.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// How transaction conflicts (another writer on the same rows) are retried.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 8,
            base: Duration::from_millis(25),
            cap: Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// Full jitter: a random delay up to the exponential bound.
    async fn wait(&self, attempt: u32) {
        let bound = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        let millis = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=millis))).await;
    }
}

/// What applying a plan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Chunks applied by this call.
    pub chunks_applied: u64,
    /// Chunks whose ledger item was already there.
    pub chunks_already_applied: u64,
    /// Requests sent (transactions and updates, retries included).
    pub requests: u64,
}

/// A batch that could not be read, kept so that a person can list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The batch's source id (`s3://bucket/key...`, `logs:...`).
    pub source_id: String,
    /// The object's bucket and key, for S3 objects.
    pub object: Option<(String, String)>,
    /// Stable reason (`bad_gzip`, `over_cap`, ...).
    pub reason: String,
    /// What was wrong, in words.
    pub detail: String,
    /// When it was rejected, Unix seconds.
    pub at: i64,
}

/// Which rollup rows [`SummaryStore::filtered_rows`] returns: lifetime rows,
/// and daily rows from `since` on when it is set; each `Some` field must
/// match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowFilter {
    /// The table's account.
    pub account: Option<String>,
    /// The table's region.
    pub region: Option<String>,
    /// The table name.
    pub table: Option<String>,
    /// Also return daily rows of this day (`YYYY-MM-DD`) and later.
    pub since: Option<String>,
}

/// Partition key of metadata items.
pub const META_PK: &str = "META";
/// Sort key prefix of backfill markers (`BACKFILL#<id>`).
pub const BACKFILL_PREFIX: &str = "BACKFILL#";
/// Sort key prefix of daily rows.
const DAY_PREFIX: &str = "DAY#";

/// A record that history was backfilled into the summary table: `pk =
/// META`, `sk = BACKFILL#<id>`, written before the backfill's first object
/// and rewritten when it ends.
///
/// The notifier honours it: when `notify` is false, a caller's first
/// lifetime row whose `first_seen` is at or before `covers_until` is
/// history, not news, and is not announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillMarker {
    /// Unique per run (the start time and a random suffix).
    pub id: String,
    /// `s3://bucket/prefix` as given.
    pub source: String,
    /// Let the notifier announce callers first seen in this history.
    pub notify: bool,
    /// The latest event time the backfill can contain, Unix seconds: the end
    /// of `--to`, or the start of the run.
    pub covers_until: i64,
    /// When the run started, Unix seconds.
    pub started_at: i64,
    /// When it ended, if it did.
    pub finished_at: Option<i64>,
    /// `running`, `finished` or `failed`.
    pub status: String,
    /// Objects read so far.
    pub objects: u64,
    /// Records read so far.
    pub records: u64,
}

impl BackfillMarker {
    /// True when a lifetime row first seen at `first_seen` (Unix seconds)
    /// is history this backfill applied with notices off: the notifier does
    /// not announce it.
    pub fn silences(&self, first_seen: i64) -> bool {
        !self.notify && first_seen <= self.covers_until
    }
}

/// The summary table.
#[derive(Debug, Clone)]
pub struct SummaryStore {
    client: Client,
    table: Arc<str>,
    ledger_ttl_days: u32,
    reject_ttl_days: u32,
    backoff: Backoff,
    concurrency: usize,
    /// The path marks this store wrote, so a warm function writes each
    /// (account, region, path) at most once a day.
    marked: Arc<std::sync::Mutex<PathsMarked>>,
}

/// The latest day marked per (account, region, path).
type PathsMarked = HashMap<(String, String, IngestPath), String>;

enum ChunkOutcome {
    Applied,
    AlreadyApplied,
}

impl SummaryStore {
    /// A store over `table`.
    pub fn new(client: Client, table: &str, ledger_ttl_days: u32, reject_ttl_days: u32) -> Self {
        SummaryStore {
            client,
            table: Arc::from(table),
            ledger_ttl_days,
            reject_ttl_days,
            backoff: Backoff::default(),
            concurrency: DEFAULT_CONCURRENCY,
            marked: Arc::default(),
        }
    }

    /// Changes how many requests are in flight at once (at least one).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Changes how conflicts are retried.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn error(&self, message: String) -> Error {
        Error::Store {
            table: self.table.to_string(),
            message,
        }
    }

    /// Applies a plan exactly once. `now` (Unix seconds) dates ledger items.
    ///
    /// On error some chunks may be applied and others not; calling again with
    /// the same plan completes it without counting anything twice.
    pub async fn apply(&self, plan: &Plan, now: i64) -> Result<ApplyReport, Error> {
        let mut report = ApplyReport::default();
        let total = plan.chunks.len();
        let mut tasks = JoinSet::new();
        let mut first_error = None;
        for chunk in &plan.chunks {
            if tasks.len() >= self.concurrency {
                if let Some(done) = settle(tasks.join_next().await, &mut first_error) {
                    report.chunk_done(done);
                }
            }
            let store = self.clone();
            let source_id = plan.source_id.clone();
            let chunk = chunk.clone();
            tasks.spawn(async move { store.apply_chunk(&source_id, &chunk, total, now).await });
        }
        while let Some(done) = tasks.join_next().await {
            if let Some(done) = settle(Some(done), &mut first_error) {
                report.chunk_done(done);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        // Counters are in; now the idempotent facts of lifetime rows.
        let mut facts = JoinSet::new();
        for (update, f) in plan.facts() {
            if facts.len() >= self.concurrency {
                report.requests += settle(facts.join_next().await, &mut first_error).unwrap_or(0);
            }
            let store = self.clone();
            let (pk, sk, f) = (update.pk.clone(), update.sk.clone(), f.clone());
            facts.spawn(async move { store.apply_facts(&pk, &sk, &f).await });
        }
        while let Some(done) = facts.join_next().await {
            report.requests += settle(Some(done), &mut first_error).unwrap_or(0);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    async fn apply_chunk(
        &self,
        source_id: &str,
        chunk: &Chunk,
        total: usize,
        now: i64,
    ) -> Result<(ChunkOutcome, u64), Error> {
        let mut ledger = Put::builder()
            .table_name(&*self.table)
            .item(summary::PK, s(summary::ledger_pk(source_id)))
            .item(summary::SK, s(summary::ledger_sk(chunk.index)))
            .item("chunks", n(total as u64))
            .item("applied_at", s(format_time(now)));
        // 0 days: kept for ever, so a backfill rerun years later skips it.
        if self.ledger_ttl_days > 0 {
            ledger = ledger.item(
                summary::EXPIRES_AT,
                n_i64(now + i64::from(self.ledger_ttl_days) * 86_400),
            );
        }
        let ledger = ledger
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", summary::PK)
            .build()
            .map_err(|e| self.error(format!("building the ledger put: {e}")))?;
        let mut items = vec![TransactWriteItem::builder().put(ledger).build()];
        for update in &chunk.updates {
            items.push(
                TransactWriteItem::builder()
                    .update(self.counter_update(update)?)
                    .build(),
            );
        }
        let mut requests = 0u64;
        for attempt in 0..self.backoff.attempts {
            requests += 1;
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match sent {
                Ok(_) => return Ok((ChunkOutcome::Applied, requests)),
                Err(err) => err,
            };
            match classify_transaction(&err) {
                TransactionFailure::AlreadyApplied => {
                    return Ok((ChunkOutcome::AlreadyApplied, requests))
                }
                TransactionFailure::Conflict if attempt + 1 < self.backoff.attempts => {
                    tracing::debug!(chunk = chunk.index, attempt, "transaction conflict; retrying");
                    self.backoff.wait(attempt).await;
                }
                TransactionFailure::Conflict => {
                    return Err(self.error(format!(
                        "TransactWriteItems for chunk {} of {source_id} still conflicted after {} attempts",
                        chunk.index, self.backoff.attempts
                    )))
                }
                TransactionFailure::Other(message) => {
                    return Err(self.error(format!(
                        "TransactWriteItems for chunk {} of {source_id} failed: {message}",
                        chunk.index
                    )))
                }
            }
        }
        Err(self.error("no attempt was made (backoff.attempts is 0)".into()))
    }

    fn counter_update(&self, u: &CounterUpdate) -> Result<Update, Error> {
        let mut expr = Expression::default();
        for (attr, value) in &u.describe {
            let (name, val) = expr.bind(attr, s(value.clone()));
            expr.set
                .push(format!("{name} = if_not_exists({name}, {val})"));
        }
        if u.person {
            let (name, val) = expr.bind("person", AttributeValue::Bool(true));
            expr.set.push(format!("{name} = {val}"));
        } else {
            let (name, val) = expr.bind("person", AttributeValue::Bool(false));
            expr.set
                .push(format!("{name} = if_not_exists({name}, {val})"));
        }
        if let Some((gpk, gsk)) = &u.caller_index {
            for (attr, value) in [(summary::GSI1_PK, gpk), (summary::GSI1_SK, gsk)] {
                let (name, val) = expr.bind(attr, s(value.clone()));
                expr.set.push(format!("{name} = {val}"));
            }
        }
        if let Some(at) = u.expires_at {
            let (name, val) = expr.bind(summary::EXPIRES_AT, n_i64(at));
            expr.set.push(format!("{name} = {val}"));
        }
        if let Some(f) = &u.facts {
            let initial = [
                ("first_seen", s(format_time(f.first_seen.0))),
                ("first_event_id", s(f.first_seen.1.clone())),
                ("last_seen", s(format_time(f.last_seen))),
            ];
            for (attr, value) in initial {
                let (name, val) = expr.bind(attr, value);
                expr.set
                    .push(format!("{name} = if_not_exists({name}, {val})"));
            }
            for (attr, set) in f.sources.named() {
                if !set.is_empty() {
                    let (name, val) = expr.bind(attr, ss(set));
                    expr.set
                        .push(format!("{name} = if_not_exists({name}, {val})"));
                }
            }
        }
        for (attr, amount) in &u.adds {
            let (name, val) = expr.bind(attr, n(*amount));
            expr.add.push(format!("{name} {val}"));
        }
        let mut text = format!("SET {}", expr.set.join(", "));
        if !expr.add.is_empty() {
            text.push_str(&format!(" ADD {}", expr.add.join(", ")));
        }
        Update::builder()
            .table_name(&*self.table)
            .key(summary::PK, s(u.pk.clone()))
            .key(summary::SK, s(u.sk.clone()))
            .update_expression(text)
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .build()
            .map_err(|e| self.error(format!("building an update: {e}")))
    }

    /// Minimum first seen, maximum last seen, and capped source sets: each a
    /// conditional update that is a no-op when the row already says as much.
    async fn apply_facts(&self, pk: &str, sk: &str, f: &Facts) -> Result<u64, Error> {
        let mut requests = 0;
        let first = (format_time(f.first_seen.0), f.first_seen.1.clone());
        requests += 1;
        self.conditional(
            pk,
            sk,
            "SET #fs = :fs, #fid = :fid",
            "attribute_not_exists(#fs) OR #fs > :fs OR (#fs = :fs AND #fid > :fid)",
            &[("#fs", "first_seen"), ("#fid", "first_event_id")],
            vec![(":fs", s(first.0)), (":fid", s(first.1))],
        )
        .await?;
        requests += 1;
        self.conditional(
            pk,
            sk,
            "SET #ls = :ls",
            "attribute_not_exists(#ls) OR #ls < :ls",
            &[("#ls", "last_seen")],
            vec![(":ls", s(format_time(f.last_seen)))],
        )
        .await?;
        for (attr, set) in f.sources.named() {
            if set.is_empty() {
                continue;
            }
            requests += 1;
            self.conditional(
                pk,
                sk,
                "ADD #set :v",
                "attribute_not_exists(#set) OR size(#set) < :cap",
                &[("#set", attr)],
                vec![(":v", ss(set)), (":cap", n(MAX_STORED_SOURCES as u64))],
            )
            .await?;
        }
        Ok(requests)
    }

    async fn conditional(
        &self,
        pk: &str,
        sk: &str,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), Error> {
        let mut request = self
            .client
            .update_item()
            .table_name(&*self.table)
            .key(summary::PK, s(pk.to_owned()))
            .key(summary::SK, s(sk.to_owned()))
            .update_expression(update)
            .condition_expression(condition);
        for (placeholder, name) in names {
            request = request.expression_attribute_names(*placeholder, *name);
        }
        for (placeholder, value) in values {
            request = request.expression_attribute_values(placeholder, value);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(self.error(format!("UpdateItem failed: {}", describe(&e)))),
        }
    }

    /// Every rollup row in the table (lifetime rows, and daily rows when
    /// `daily` is set), read with a paginated scan. For tests, small tables
    /// and exports; the CLI's queries use keys and the index instead.
    pub async fn scan_rows(&self, daily: bool) -> Result<Vec<Row>, Error> {
        let mut rows = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&*self.table)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| self.error(format!("Scan failed: {}", describe(&e))))?;
            if let Some(row) = row_from_item(&item) {
                if daily || row.day.is_none() {
                    rows.push(row);
                }
            }
        }
        rows.sort_by(|a, b| {
            (&a.account, &a.region, &a.table, &a.day, &a.caller)
                .cmp(&(&b.account, &b.region, &b.table, &b.day, &b.caller))
        });
        Ok(rows)
    }

    /// The lifetime rows of one table (`table: None`: the account-level row
    /// of calls that name no table), by a key query on its partition.
    pub async fn table_rows(
        &self,
        account: &str,
        region: &str,
        table: Option<&str>,
    ) -> Result<Vec<Row>, Error> {
        let items = self
            .query_items(
                None,
                "#pk = :pk AND begins_with(#sk, :caller)",
                &[("#pk", summary::PK), ("#sk", summary::SK)],
                vec![
                    (":pk", s(partition(account, region, table))),
                    (":caller", s(summary::lifetime_sk(""))),
                ],
            )
            .await?;
        Ok(items.iter().filter_map(row_from_item).collect())
    }

    /// The daily rows of one table from `since` (`YYYY-MM-DD`) on, by a key
    /// query on its partition (the sort keys of daily rows start with the day).
    pub async fn table_daily_rows(
        &self,
        account: &str,
        region: &str,
        table: Option<&str>,
        since: &str,
    ) -> Result<Vec<Row>, Error> {
        let items = self
            .query_items(
                None,
                "#pk = :pk AND #sk BETWEEN :lo AND :hi",
                &[("#pk", summary::PK), ("#sk", summary::SK)],
                vec![
                    (":pk", s(partition(account, region, table))),
                    (":lo", s(format!("{DAY_PREFIX}{since}"))),
                    // `~` sorts after every digit: the end of the day range.
                    (":hi", s(format!("{DAY_PREFIX}~"))),
                ],
            )
            .await?;
        Ok(items.iter().filter_map(row_from_item).collect())
    }

    /// Every lifetime row of one caller (exact caller string), through the
    /// `by-caller` index.
    pub async fn caller_rows(&self, caller: &str) -> Result<Vec<Row>, Error> {
        let items = self
            .query_items(
                Some(summary::CALLER_INDEX),
                "#g = :g",
                &[("#g", summary::GSI1_PK)],
                vec![(":g", s(summary::lifetime_sk(caller)))],
            )
            .await?;
        Ok(items.iter().filter_map(row_from_item).collect())
    }

    /// Rollup rows matching `filter`, read with a paginated scan whose filter
    /// runs on the server (ledger and reject items are never returned). For
    /// questions no key answers: every table, or a table named without its
    /// account and region.
    pub async fn filtered_rows(&self, filter: &RowFilter) -> Result<Vec<Row>, Error> {
        let mut names = vec![("#pk", summary::PK), ("#sk", summary::SK)];
        let mut values = vec![
            (":tpk", s("TABLE#".to_owned())),
            (":apk", s("ACCOUNT#".to_owned())),
            (":caller", s(summary::lifetime_sk(""))),
        ];
        let mut text = "(begins_with(#pk, :tpk) OR begins_with(#pk, :apk))".to_owned();
        match &filter.since {
            Some(since) => {
                values.push((":day", s(DAY_PREFIX.to_owned())));
                values.push((":lo", s(format!("{DAY_PREFIX}{since}"))));
                text.push_str(
                    " AND (begins_with(#sk, :caller) OR (begins_with(#sk, :day) AND #sk >= :lo))",
                );
            }
            None => text.push_str(" AND begins_with(#sk, :caller)"),
        }
        for (name, placeholder, attr, value) in [
            ("#account", ":account", "account", &filter.account),
            ("#region", ":region", "region", &filter.region),
            ("#table", ":table", "table", &filter.table),
        ] {
            if let Some(value) = value {
                text.push_str(&format!(" AND {name} = {placeholder}"));
                names.push((name, attr));
                values.push((placeholder, s(value.clone())));
            }
        }
        let mut rows = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&*self.table)
            .filter_expression(text)
            .set_expression_attribute_names(Some(
                names
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ))
            .set_expression_attribute_values(Some(
                values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| self.error(format!("Scan failed: {}", describe(&e))))?;
            rows.extend(row_from_item(&item));
        }
        Ok(rows)
    }

    /// The recorded rejects (objects and log batches that could not be read).
    pub async fn rejects(&self) -> Result<Vec<Reject>, Error> {
        let items = self
            .query_items(
                None,
                "#pk = :pk",
                &[("#pk", summary::PK)],
                vec![(":pk", s(summary::REJECT_PK.to_owned()))],
            )
            .await?;
        Ok(items.iter().filter_map(reject_from_item).collect())
    }

    /// Writes (or rewrites) a backfill marker: `pk = META`,
    /// `sk = BACKFILL#<id>`. See [`BackfillMarker`].
    pub async fn put_backfill_marker(&self, marker: &BackfillMarker) -> Result<(), Error> {
        let mut request = self
            .client
            .put_item()
            .table_name(&*self.table)
            .item(summary::PK, s(META_PK.to_owned()))
            .item(summary::SK, s(format!("{BACKFILL_PREFIX}{}", marker.id)))
            .item("source", s(marker.source.clone()))
            .item("notify", AttributeValue::Bool(marker.notify))
            .item("covers_until", s(format_time(marker.covers_until)))
            .item("started_at", s(format_time(marker.started_at)))
            .item("status", s(marker.status.clone()))
            .item("objects", n(marker.objects))
            .item("records", n(marker.records));
        if let Some(at) = marker.finished_at {
            request = request.item("finished_at", s(format_time(at)));
        }
        request.send().await.map(|_| ()).map_err(|e| {
            self.error(format!(
                "PutItem of a backfill marker failed: {}",
                describe(&e)
            ))
        })
    }

    /// The backfill markers, oldest first.
    pub async fn backfill_markers(&self) -> Result<Vec<BackfillMarker>, Error> {
        let items = self
            .query_items(
                None,
                "#pk = :pk AND begins_with(#sk, :b)",
                &[("#pk", summary::PK), ("#sk", summary::SK)],
                vec![
                    (":pk", s(META_PK.to_owned())),
                    (":b", s(BACKFILL_PREFIX.to_owned())),
                ],
            )
            .await?;
        let mut markers: Vec<BackfillMarker> = items.iter().filter_map(marker_from_item).collect();
        markers.sort_by_key(|m| m.started_at);
        Ok(markers)
    }

    /// Every item a key query (on the table, or on `index`) returns, page
    /// after page.
    async fn query_items(
        &self,
        index: Option<&str>,
        key_condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, Error> {
        let mut request = self
            .client
            .query()
            .table_name(&*self.table)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression(key_condition);
        for (placeholder, name) in names {
            request = request.expression_attribute_names(*placeholder, *name);
        }
        for (placeholder, value) in values {
            request = request.expression_attribute_values(placeholder, value);
        }
        let mut pages = request.into_paginator().items().send();
        let mut items = Vec::new();
        while let Some(item) = pages.next().await {
            items.push(item.map_err(|e| self.error(format!("Query failed: {}", describe(&e))))?);
        }
        Ok(items)
    }

    /// Records that `path` delivered events of `account` and `region` up to
    /// `day` (days since the epoch): moves the path's mark forward, never
    /// back (see [`ddb_audit_core::paths`]). A mark this store already wrote for that
    /// day or later is not written again.
    pub async fn mark_path(
        &self,
        account: &str,
        region: &str,
        path: IngestPath,
        day: i64,
    ) -> Result<(), Error> {
        let day = format_day(day);
        let seen = (account.to_owned(), region.to_owned(), path);
        let known = |marked: &HashMap<_, String>| marked.get(&seen).is_some_and(|d| *d >= day);
        if self.marked.lock().is_ok_and(|m| known(&m)) {
            return Ok(());
        }
        // A later day there already fails the condition: nothing to move.
        self.conditional(
            PATHS_PK,
            &paths_sk(account, region),
            "SET #day = :day, #account = :account, #region = :region",
            "attribute_not_exists(#day) OR #day < :day",
            &[
                ("#day", path.attribute()),
                ("#account", "account"),
                ("#region", "region"),
            ],
            vec![
                (":day", s(day.clone())),
                (":account", s(account.to_owned())),
                (":region", s(region.to_owned())),
            ],
        )
        .await?;
        if let Ok(mut marked) = self.marked.lock() {
            marked.insert(seen, day);
        }
        Ok(())
    }

    /// Every (account, region)'s path marks.
    pub async fn path_marks(&self) -> Result<Vec<PathMarks>, Error> {
        let items = self
            .query_items(
                None,
                "#pk = :pk",
                &[("#pk", summary::PK)],
                vec![(":pk", s(PATHS_PK.to_owned()))],
            )
            .await?;
        Ok(items.iter().filter_map(path_marks_from_item).collect())
    }

    /// Records a batch that cannot be read. Writing it again is harmless.
    pub async fn put_reject(&self, reject: &Reject) -> Result<(), Error> {
        let mut request = self
            .client
            .put_item()
            .table_name(&*self.table)
            .item(summary::PK, s(summary::REJECT_PK.to_owned()))
            .item(summary::SK, s(reject.source_id.clone()))
            .item("reason", s(reject.reason.clone()))
            .item("detail", s(reject.detail.clone()))
            .item("rejected_at", s(format_time(reject.at)));
        if let Some((bucket, key)) = &reject.object {
            request = request
                .item("bucket", s(bucket.clone()))
                .item("key", s(key.clone()));
        }
        if self.reject_ttl_days > 0 {
            request = request.item(
                summary::EXPIRES_AT,
                n_i64(reject.at + i64::from(self.reject_ttl_days) * 86_400),
            );
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error(format!("PutItem of a reject failed: {}", describe(&e))))
    }

    /// Creates the summary table (on-demand, stream with new and old images,
    /// the `by-caller` index), waits until it is active, then turns on TTL and
    /// point-in-time recovery. The SAM template declares the same schema.
    pub async fn create_table(&self) -> Result<(), Error> {
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| self.error(format!("building the key schema: {e}")))
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| self.error(format!("building the attributes: {e}")))
        };
        let index = GlobalSecondaryIndex::builder()
            .index_name(summary::CALLER_INDEX)
            .key_schema(key(summary::GSI1_PK, KeyType::Hash)?)
            .key_schema(key(summary::GSI1_SK, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| self.error(format!("building the index: {e}")))?;
        let stream = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build()
            .map_err(|e| self.error(format!("building the stream spec: {e}")))?;
        self.client
            .create_table()
            .table_name(&*self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(summary::PK)?)
            .attribute_definitions(attr(summary::SK)?)
            .attribute_definitions(attr(summary::GSI1_PK)?)
            .attribute_definitions(attr(summary::GSI1_SK)?)
            .key_schema(key(summary::PK, KeyType::Hash)?)
            .key_schema(key(summary::SK, KeyType::Range)?)
            .global_secondary_indexes(index)
            .stream_specification(stream)
            .send()
            .await
            .map_err(|e| self.error(format!("CreateTable failed: {}", describe(&e))))?;
        let mut active = false;
        for _ in 0..120 {
            let status = self
                .client
                .describe_table()
                .table_name(&*self.table)
                .send()
                .await
                .map_err(|e| self.error(format!("DescribeTable failed: {}", describe(&e))))?
                .table
                .and_then(|t| t.table_status);
            if status == Some(TableStatus::Active) {
                active = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !active {
            return Err(self.error("the table did not become ACTIVE within 60 seconds".into()));
        }
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(summary::EXPIRES_AT)
            .build()
            .map_err(|e| self.error(format!("building the TTL spec: {e}")))?;
        self.client
            .update_time_to_live()
            .table_name(&*self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| self.error(format!("UpdateTimeToLive failed: {}", describe(&e))))?;
        let pitr = PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(true)
            .build()
            .map_err(|e| self.error(format!("building the PITR spec: {e}")))?;
        self.client
            .update_continuous_backups()
            .table_name(&*self.table)
            .point_in_time_recovery_specification(pitr)
            .send()
            .await
            .map_err(|e| {
                self.error(format!(
                    "UpdateContinuousBackups (PITR) failed: {}",
                    describe(&e)
                ))
            })?;
        Ok(())
    }
}

/// A finished task, as `JoinSet::join_next` gives it.
type Joined<T> = Option<Result<Result<T, Error>, tokio::task::JoinError>>;

/// The value of a finished task, or `None` after keeping its error (the first
/// one wins).
fn settle<T>(done: Joined<T>, first_error: &mut Option<Error>) -> Option<T> {
    match done? {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            first_error.get_or_insert(e);
            None
        }
        Err(join) => {
            first_error.get_or_insert(Error::Store {
                table: String::new(),
                message: format!("a write task failed: {join}"),
            });
            None
        }
    }
}

impl ApplyReport {
    fn chunk_done(&mut self, (outcome, requests): (ChunkOutcome, u64)) {
        self.requests += requests;
        match outcome {
            ChunkOutcome::Applied => self.chunks_applied += 1,
            ChunkOutcome::AlreadyApplied => self.chunks_already_applied += 1,
        }
    }
}

enum TransactionFailure {
    /// The ledger condition failed: this chunk was applied before.
    AlreadyApplied,
    /// Another transaction held the same rows; retry.
    Conflict,
    /// Anything else, described.
    Other(String),
}

fn classify_transaction<R>(err: &SdkError<TransactWriteItemsError, R>) -> TransactionFailure
where
    R: std::fmt::Debug,
{
    let SdkError::ServiceError(service) = err else {
        return TransactionFailure::Other(describe(err));
    };
    match service.err() {
        TransactWriteItemsError::TransactionCanceledException(cancel) => {
            let reasons = cancel.cancellation_reasons();
            // The ledger put is the first action: its condition failing
            // means this chunk was committed before.
            let ledger = reasons.first().and_then(|r| r.code());
            if ledger == Some("ConditionalCheckFailed") {
                return TransactionFailure::AlreadyApplied;
            }
            if reasons.iter().any(|r| {
                matches!(
                    r.code(),
                    Some("TransactionConflict")
                        | Some("ThrottlingError")
                        | Some("ProvisionedThroughputExceeded")
                )
            }) {
                return TransactionFailure::Conflict;
            }
            let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
            TransactionFailure::Other(format!("transaction cancelled: {}", codes.join(", ")))
        }
        TransactWriteItemsError::TransactionInProgressException(_)
        | TransactWriteItemsError::ProvisionedThroughputExceededException(_)
        | TransactWriteItemsError::RequestLimitExceeded(_)
        | TransactWriteItemsError::ThrottlingException(_) => TransactionFailure::Conflict,
        _ => TransactionFailure::Other(describe(err)),
    }
}

/// The error's code and message, or its kind for transport failures.
fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(e) => {
            let meta = e.err();
            format!(
                "{}: {}",
                meta.code().unwrap_or("unknown error"),
                meta.message().unwrap_or("no message")
            )
        }
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(e) => format!("could not reach DynamoDB ({e:?})"),
        SdkError::ResponseError(_) => "unreadable response".into(),
        SdkError::ConstructionFailure(_) => "could not build the request".into(),
        _ => format!("{err}"),
    }
}

#[derive(Default)]
struct Expression {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    set: Vec<String>,
    add: Vec<String>,
}

impl Expression {
    /// Binds an attribute name and a value to fresh placeholders.
    fn bind(&mut self, attr: &str, value: AttributeValue) -> (String, String) {
        let i = self.names.len();
        let name = format!("#a{i}");
        let val = format!(":v{i}");
        self.names.insert(name.clone(), attr.to_owned());
        self.values.insert(val.clone(), value);
        (name, val)
    }
}

/// Reads a rollup item back into the row schema `analyze` prints; `None`
/// for items that are not rollups (ledger, rejects).
pub fn row_from_item(item: &HashMap<String, AttributeValue>) -> Option<Row> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    };
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse::<u64>().unwrap_or(0),
        _ => 0,
    };
    let set = |name: &str| match item.get(name) {
        Some(AttributeValue::Ss(v)) => {
            let mut v = v.clone();
            v.sort();
            v
        }
        _ => Vec::new(),
    };
    let pk = text(summary::PK)?;
    let sk = text(summary::SK)?;
    if !(pk.starts_with("TABLE#") || pk.starts_with("ACCOUNT#")) {
        return None;
    }
    let day = if sk.starts_with("DAY#") {
        Some(text("day").unwrap_or_else(|| sk.get(4..14).unwrap_or_default().to_owned()))
    } else if sk.starts_with("CALLER#") {
        None
    } else {
        return None;
    };
    let mut row = Row {
        account: text("account")?,
        region: text("region")?,
        table: text("table"),
        day,
        caller: text("caller")?,
        app: None,
        caller_type: text("caller_type").unwrap_or_else(|| "Unknown".into()),
        person: matches!(item.get("person"), Some(AttributeValue::Bool(true))),
        calls: number("calls"),
        reads: number("reads"),
        writes: number("writes"),
        errors: number("errors"),
        denied: number("denied"),
        operations: Default::default(),
        indexes: Default::default(),
        user_agents: Default::default(),
        error_codes: Default::default(),
        first_seen: text("first_seen").unwrap_or_default(),
        last_seen: text("last_seen").unwrap_or_default(),
        first_event_id: text("first_event_id").unwrap_or_default(),
        source_ips: set("source_ips"),
        vpc_endpoints: set("vpc_endpoints"),
        invoked_by: set("invoked_by"),
    };
    for (name, value) in item {
        let AttributeValue::N(v) = value else {
            continue;
        };
        let n = v.parse::<u64>().unwrap_or(0);
        let target = if let Some(k) = name.strip_prefix(summary::prefix::OPERATION) {
            Some((&mut row.operations, k))
        } else if let Some(k) = name.strip_prefix(summary::prefix::INDEX) {
            Some((&mut row.indexes, k))
        } else if let Some(k) = name.strip_prefix(summary::prefix::USER_AGENT) {
            Some((&mut row.user_agents, k))
        } else if let Some(k) = name.strip_prefix(summary::prefix::ERROR_CODE) {
            Some((&mut row.error_codes, k))
        } else {
            None
        };
        if let Some((map, key)) = target {
            map.insert(key.to_owned(), n);
        }
    }
    Some(row)
}

/// The partition of a table's rows (`table: None`: the account-level row).
fn partition(account: &str, region: &str, table: Option<&str>) -> String {
    summary::row_pk(&ddb_audit_core::rollup::RollupKey::new(
        account, region, table, "",
    ))
}

/// Reads a reject item back; `None` for other items.
pub fn reject_from_item(item: &HashMap<String, AttributeValue>) -> Option<Reject> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    };
    if text(summary::PK)? != summary::REJECT_PK {
        return None;
    }
    let object = match (text("bucket"), text("key")) {
        (Some(bucket), Some(key)) => Some((bucket, key)),
        _ => None,
    };
    Some(Reject {
        source_id: text(summary::SK)?,
        object,
        reason: text("reason").unwrap_or_default(),
        detail: text("detail").unwrap_or_default(),
        at: text("rejected_at")
            .and_then(|t| ddb_audit_core::attribute::parse_event_time(&t))
            .unwrap_or(0),
    })
}

/// Path marks from a `PATHS` item; `None` for anything else.
pub fn path_marks_from_item(item: &HashMap<String, AttributeValue>) -> Option<PathMarks> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    if text(summary::PK).as_deref() != Some(PATHS_PK) {
        return None;
    }
    Some(PathMarks {
        account: text("account")?,
        region: text("region")?,
        s3_day: text(IngestPath::S3.attribute()),
        logs_day: text(IngestPath::Logs.attribute()),
    })
}

fn marker_from_item(item: &HashMap<String, AttributeValue>) -> Option<BackfillMarker> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    };
    let time =
        |name: &str| text(name).and_then(|t| ddb_audit_core::attribute::parse_event_time(&t));
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse::<u64>().unwrap_or(0),
        _ => 0,
    };
    if text(summary::PK)? != META_PK {
        return None;
    }
    Some(BackfillMarker {
        id: text(summary::SK)?.strip_prefix(BACKFILL_PREFIX)?.to_owned(),
        source: text("source").unwrap_or_default(),
        notify: matches!(item.get("notify"), Some(AttributeValue::Bool(true))),
        covers_until: time("covers_until")?,
        started_at: time("started_at").unwrap_or(0),
        finished_at: time("finished_at"),
        status: text("status").unwrap_or_default(),
        objects: number("objects"),
        records: number("records"),
    })
}

fn s(value: String) -> AttributeValue {
    AttributeValue::S(value)
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn n_i64(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn ss(set: &std::collections::BTreeSet<String>) -> AttributeValue {
    AttributeValue::Ss(set.iter().cloned().collect())
}
