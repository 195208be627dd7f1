//! Faults and load against moto (issue 6, part 3): hundreds of CloudTrail
//! batches, S3 objects and CloudWatch Logs batches with shared callers and
//! tables, ingested concurrently through the real handlers while a proxy
//! between the SDK and moto throttles, answers 5xx, drops connections after
//! the server committed, cuts requests in half and goes away and comes back
//! on the same port. Every failed delivery is redelivered, as SQS and Lambda
//! would, a bounded number of times; some batches are delivered twice. At the
//! end the summary table must say exactly what `ddb-audit analyze` says of
//! the same inputs.
//!
//! The "restart" restarts the endpoint the SDK talks to (the proxy), not
//! moto's process: moto keeps its state only in memory, so restarting it
//! would lose the table rather than test recovery.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ddb_audit_aws::ingest::{handle_logs, handle_s3, Deps};
use ddb_audit_aws::store::{Backoff, SummaryStore};
use ddb_audit_core::config::Config;
use ddb_audit_core::row::Row;
use ddb_audit_tests::moto::Moto;
use ddb_audit_tests::proxy::{Fault, Proxy, Rates};
use ddb_audit_tests::{awslogs, gzip, identity, trail_file, Record, ACCOUNT, REGION};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const TABLE: &str = "ddb-audit-summary";
const BUCKET: &str = "ddb-audit-trail-111122223333";
const SEED: u64 = 0x0dd8_a0d1_7000_0006;

/// Batches of each path. With a few records each and shared callers and
/// tables, the summary table stays small enough for moto, which copies all
/// of its tables on every transaction.
const S3_OBJECTS: usize = 130;
const LOG_BATCHES: usize = 110;
/// Objects that are not CloudTrail files: rejects, not retried forever.
const BAD_OBJECTS: usize = 4;
const TABLES: [&str; 4] = ["orders", "customers", "carts#eu", "inventory"];
const APPS: [&str; 5] = ["checkout", "billing", "search", "reports", "ops"];
/// Deliveries of one batch at most (the first included).
const MAX_DELIVERIES: u32 = 30;
/// Handler invocations in flight at once.
const IN_FLIGHT: usize = 8;

/// About one request in eight meets a fault.
fn rates() -> Rates {
    Rates {
        throttle: 0.03,
        throughput_exceeded: 0.015,
        server_error: 0.02,
        unavailable: 0.015,
        drop_after_commit: 0.025,
        cut_mid_request: 0.02,
    }
}

/// One batch as its trigger hands it to a function.
enum Batch {
    /// An S3 object (key, content).
    Object(String, Vec<u8>),
    /// A CloudWatch Logs subscription event.
    Logs(Vec<u8>),
}

/// A record of the load: mostly the batch's own application on its own
/// table (as one service's CloudTrail file would mostly hold), sometimes
/// one of the shared others; a deterministic mix of reads, writes, index
/// queries, PartiQL, errors and denials over two days.
fn record(rng: &mut fastrand::Rng, batch: usize, i: usize) -> Record {
    let (table, app) = if rng.u8(..4) == 0 {
        (
            TABLES[rng.usize(..TABLES.len())],
            APPS[rng.usize(..APPS.len())],
        )
    } else {
        (TABLES[batch % TABLES.len()], APPS[batch % APPS.len()])
    };
    let record = match rng.u8(..6) {
        0 => Record::on("PutItem", table),
        1 => Record::new("Query").params(json!({
            "tableName": table, "indexName": "by-customer",
            "keyConditionExpression": "#c = :c",
            "expressionAttributeValues": {":c": {"S": "cust-7781"}},
        })),
        2 => Record::new("ExecuteStatement").params(json!({
            "statement": format!("SELECT * FROM \"{table}\" WHERE pk = 'cust-7781'"),
        })),
        3 => Record::on("UpdateItem", table).error("AccessDeniedException"),
        _ => Record::on("GetItem", table),
    };
    let identity = if app == "ops" {
        identity::sso("AdministratorAccess", "alice@example.com")
    } else {
        identity::app_role(app, &format!("task-{:04}", rng.u16(..3)))
    };
    record
        .identity(identity)
        .set("eventID", json!(format!("load-{batch:04}-{i:03}")))
        .at(&format!(
            "2024-03-{:02}T{:02}:{:02}:{:02}Z",
            15 + rng.u8(..2),
            rng.u8(..24),
            rng.u8(..60),
            rng.u8(..60)
        ))
        .set(
            "sourceIPAddress",
            json!(format!("10.0.{}.{}", rng.u8(..2), rng.u8(..4))),
        )
}

/// The batches, the same on every run, and the records they carry.
fn batches() -> (Vec<Batch>, usize) {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut out = Vec::new();
    let mut total = 0;
    for b in 0..S3_OBJECTS + LOG_BATCHES {
        let n = rng.usize(3..=8);
        total += n;
        let records: Vec<Record> = (0..n).map(|i| record(&mut rng, b, i)).collect();
        if b < S3_OBJECTS {
            let mut file = trail_file(&records);
            if b % 23 == 5 {
                // A bad record among good ones: counted as malformed.
                let text = String::from_utf8(file).expect("JSON is UTF-8");
                file = text
                    .replacen("{\"Records\":[", "{\"Records\":[\"not a record\",", 1)
                    .into_bytes();
            }
            let key = format!(
                "AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2024/03/15/{ACCOUNT}_CloudTrail_{REGION}_20240315T{:04}Z_load{b:04}.json.gz",
                b % 2400
            );
            out.push(Batch::Object(key, gzip(&file)));
        } else {
            let events: Vec<Value> = records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    json!({"id": format!("{b:028}{i:028}"), "timestamp": 1_710_504_000_000u64 + (b * 100 + i) as u64, "message": r.text()})
                })
                .collect();
            let payload = json!({
                "messageType": "DATA_MESSAGE",
                "owner": ACCOUNT,
                "logGroup": format!("aws-cloudtrail-logs-{ACCOUNT}"),
                "logStream": format!("{ACCOUNT}_CloudTrail_{REGION}_{}", b % 7),
                "subscriptionFilters": ["ddb-audit-logs-ingest"],
                "logEvents": events,
            });
            out.push(Batch::Logs(awslogs(&gzip(payload.to_string().as_bytes()))));
        }
    }
    for b in 0..BAD_OBJECTS {
        let key = format!("AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2024/03/16/bad{b}.json.gz");
        let mut body = gzip(&trail_file(&[Record::on("GetItem", "orders")]));
        body.truncate(body.len() / 2);
        out.push(Batch::Object(key, body));
    }
    (out, total)
}

fn sqs_event(key: &str, message_id: &str) -> Vec<u8> {
    let s3 = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2024-03-16T00:06:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
               "object": {"key": key, "size": 1000, "eTag": format!("etag-{key}"), "sequencer": "0065F4"}}}]});
    json!({"Records": [{
        "messageId": message_id, "receiptHandle": format!("rh-{message_id}"), "body": s3.to_string(),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "eventSource": "aws:sqs", "eventSourceARN": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:ddb-audit-objects"),
        "awsRegion": REGION}]})
    .to_string()
    .into_bytes()
}

/// The summary table's keys and `by-caller` index as
/// `SummaryStore::create_table` makes them, without the stream: moto keeps
/// every stream record in the table and copies the whole table, stream
/// included, on each transaction, which at this load grows without bound
/// (gigabytes in minutes). Nothing here reads the stream.
async fn create_table_without_stream(client: &aws_sdk_dynamodb::Client) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    use ddb_audit_core::summary;
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    client
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(summary::PK)?)
        .attribute_definitions(attr(summary::SK)?)
        .attribute_definitions(attr(summary::GSI1_PK)?)
        .attribute_definitions(attr(summary::GSI1_SK)?)
        .key_schema(key(summary::PK, KeyType::Hash)?)
        .key_schema(key(summary::SK, KeyType::Range)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(summary::CALLER_INDEX)
                .key_schema(key(summary::GSI1_PK, KeyType::Hash)?)
                .key_schema(key(summary::GSI1_SK, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// A DynamoDB client with a retry partition of its own. The SDK's retry
/// quota (a token bucket that a failed attempt drains and a success refills)
/// is shared by every client of a partition in the process, by default one
/// per service: without this, the faults injected here would use up the
/// quota of the other tests running beside them, and theirs this one's.
fn dynamodb_client(
    sdk: &aws_config::SdkConfig,
    partition: &'static str,
) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .retry_partition(aws_sdk_dynamodb::config::retry::RetryPartition::new(
                partition,
            ))
            .build(),
    )
}

/// One delivery of a batch: `Ok(None)` when the function succeeded, else
/// what it said.
async fn deliver(
    deps: &Deps,
    batch: &Batch,
    n: usize,
    attempt: u32,
) -> anyhow::Result<Option<String>> {
    let mut context = Context::default();
    context.request_id = format!("load-{n}-{attempt}");
    match batch {
        Batch::Object(key, _) => {
            let payload = sqs_event(key, &format!("msg-{n}"));
            let raw = serde_json::from_slice(&payload)?;
            match handle_s3(deps, LambdaEvent::new(raw, context)).await {
                Ok(response) if response.batch_item_failures.is_empty() => Ok(None),
                Ok(_) => Ok(Some("the SQS message failed (batchItemFailures)".into())),
                Err(e) => Ok(Some(e.to_string())),
            }
        }
        Batch::Logs(payload) => {
            let raw = serde_json::from_slice(payload)?;
            Ok(handle_logs(deps, LambdaEvent::new(raw, context))
                .await
                .err()
                .map(|e| e.to_string()))
        }
    }
}

/// What `ddb-audit analyze --format json` prints for the inputs, each given
/// once, as files in a directory.
async fn analyze(batches: &[Batch], by_day: bool) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    for (n, batch) in batches.iter().enumerate() {
        let (name, bytes) = match batch {
            Batch::Object(_, body) => (format!("object-{n:04}.json.gz"), body),
            Batch::Logs(payload) => (format!("logs-{n:04}.json"), payload),
        };
        std::fs::write(dir.path().join(name), bytes)?;
    }
    let path = dir.path().to_string_lossy().into_owned();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut args = vec!["ddb-audit", "analyze", "--format", "json", &path];
        if by_day {
            args.push("--by-day");
        }
        let code = ddb_audit_cli::run(args, &mut out, &mut err);
        (code, out, err)
    })
    .await?;
    let err = String::from_utf8_lossy(&err);
    // The bad objects cannot be read: exit code 1, every other input counted.
    anyhow::ensure!(code == 1, "analyze exited {code}: {err}");
    anyhow::ensure!(
        err.contains(&format!("{BAD_OBJECTS} could not be read")),
        "{err}"
    );
    let mut rows = Vec::new();
    for line in String::from_utf8(out)?.lines() {
        rows.push(serde_json::from_str::<Row>(line).with_context(|| line.to_owned())?);
    }
    Ok(sorted(rows))
}

/// Rows in one order, with the sampled source sets left out (the summary
/// table keeps a few more than `analyze` prints).
fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    for row in &mut rows {
        row.source_ips.clear();
        row.vpc_endpoints.clear();
        row.invoked_by.clear();
    }
    rows.sort_by(|a, b| {
        (&a.account, &a.region, &a.table, &a.caller, &a.day)
            .cmp(&(&b.account, &b.region, &b.table, &b.caller, &b.day))
    });
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_batches_through_faults_and_restarts_count_exactly_once() -> anyhow::Result<()>
{
    let moto = Moto::start()?;
    let proxy = Arc::new(Proxy::start(moto.port(), SEED).await?);
    let config = Config::from_vars(|name| (name == "SUMMARY_TABLE").then(|| TABLE.to_owned()))?;
    // The functions talk to moto only through the proxy.
    let sdk = moto
        .sdk_config()
        .into_builder()
        .endpoint_url(proxy.endpoint())
        .build();
    let store = SummaryStore::new(
        dynamodb_client(&sdk, "ddb-audit-load"),
        TABLE,
        config.ledger_ttl_days,
        config.reject_ttl_days,
    )
    .with_backoff(Backoff {
        attempts: 20,
        base: Duration::from_millis(5),
        cap: Duration::from_millis(200),
    })
    .with_concurrency(2);
    create_table_without_stream(&moto.dynamodb()).await?;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .retry_partition(aws_sdk_s3::config::retry::RetryPartition::new(
                "ddb-audit-load-s3",
            ))
            .build(),
    );
    // The trail bucket is filled directly, as CloudTrail would.
    let direct_s3 = moto.s3();
    direct_s3.create_bucket().bucket(BUCKET).send().await?;
    let (batches, records) = batches();
    let batches = Arc::new(batches);
    for batch in batches.iter() {
        if let Batch::Object(key, body) = batch {
            ddb_audit_tests::put_object(&direct_s3, BUCKET, key, body.clone()).await?;
        }
    }
    let deps = Arc::new(Deps {
        config,
        store,
        s3,
        function: "load",
    });

    proxy.set_rates(rates());
    let done = Arc::new(AtomicU64::new(0));
    let deliveries = Arc::new(AtomicU64::new(0));
    let failed_deliveries = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for n in 0..batches.len() {
        let (deps, batches, gate) = (deps.clone(), batches.clone(), gate.clone());
        let (done, deliveries, failed) =
            (done.clone(), deliveries.clone(), failed_deliveries.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let batch = &batches[n];
            // Every 7th batch is delivered again after it succeeded.
            let wanted = if n % 7 == 3 { 2 } else { 1 };
            let mut succeeded = 0;
            let mut last_error = String::new();
            for attempt in 0..MAX_DELIVERIES {
                deliveries.fetch_add(1, Ordering::Relaxed);
                match deliver(&deps, batch, n, attempt).await? {
                    None => {
                        succeeded += 1;
                        if succeeded == wanted {
                            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if finished % 50 == 0 {
                                eprintln!("load: {finished} batches done");
                            }
                            return anyhow::Ok(());
                        }
                    }
                    Some(e) => {
                        last_error = e;
                        failed.fetch_add(1, Ordering::Relaxed);
                        let pause = 20 + 10 * u64::from(attempt);
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                }
            }
            anyhow::bail!("batch {n} still failing after {MAX_DELIVERIES} deliveries: {last_error}")
        });
    }
    // The endpoint goes away three times while batches are in flight, at
    // points of progress (not of time): a quarter, half and three quarters.
    let total = batches.len() as u64;
    let restarter = {
        let (proxy, done) = (proxy.clone(), done.clone());
        tokio::spawn(async move {
            for quarter in 1..=3u64 {
                // Bounded: ten minutes of waiting at most.
                for _ in 0..30_000 {
                    if done.load(Ordering::Relaxed) >= total * quarter / 4 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                proxy.restart(Duration::from_millis(400)).await?;
            }
            anyhow::Ok(())
        })
    };
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    restarter.await??;
    proxy.set_rates(Rates::NONE);

    // Read back through a client that bypasses the proxy.
    let reader = SummaryStore::new(moto.dynamodb(), TABLE, 30, 90);
    let stored = sorted(reader.scan_rows(false).await?);
    let expected = analyze(&batches, false).await?;
    let stored_daily = sorted(
        reader
            .scan_rows(true)
            .await?
            .into_iter()
            .filter(|r| r.day.is_some())
            .collect(),
    );
    let expected_daily = analyze(&batches, true).await?;
    // Daily rows keep counters only; the first and last seen of a day are
    // what `analyze --by-day` adds.
    let counters_only = |rows: Vec<Row>| -> Vec<Row> {
        rows.into_iter()
            .map(|mut r| {
                r.first_seen.clear();
                r.last_seen.clear();
                r.first_event_id.clear();
                r
            })
            .collect()
    };
    let (stored_daily, expected_daily) =
        (counters_only(stored_daily), counters_only(expected_daily));
    let rejects = reader.rejects().await?;

    let faults = proxy.faults();
    let (restarts, cut_by_restart) = proxy.restarts();
    let injected: u64 = faults
        .iter()
        .filter(|(f, _)| **f != Fault::None)
        .map(|(_, n)| n)
        .sum();
    let calls: u64 = expected.iter().map(|r| r.calls).sum();
    eprintln!(
        "load: {} batches ({S3_OBJECTS} S3 objects, {LOG_BATCHES} log batches, {BAD_OBJECTS} bad objects), \
         {records} good records, {} deliveries ({} failed and redelivered), {} lifetime and {} daily rows, {calls} calls counted",
        batches.len(),
        deliveries.load(Ordering::Relaxed),
        failed_deliveries.load(Ordering::Relaxed),
        stored.len(),
        stored_daily.len()
    );
    eprintln!(
        "load: {} requests through the proxy, {injected} faults injected: {}; {restarts} restarts cutting {cut_by_restart} open connections",
        proxy.requests(),
        faults
            .iter()
            .map(|(f, n)| format!("{} {n}", f.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!("load: requests per operation: {:?}", proxy.operations());

    // Faults really happened, of every kind.
    for fault in Fault::ALL {
        assert!(
            faults.get(&fault).copied().unwrap_or(0) > 0,
            "no {} was injected: {faults:?}",
            fault.as_str()
        );
    }
    assert_eq!(restarts, 3);
    assert!(
        failed_deliveries.load(Ordering::Relaxed) > 0,
        "no delivery failed"
    );
    // Exactly once: the table says what analyze says, row for row.
    assert!(!expected.is_empty());
    assert_eq!(stored.len(), expected.len());
    for (s, e) in stored.iter().zip(&expected) {
        assert_eq!(s, e);
    }
    // And every daily row, which carries the same counters per UTC day.
    assert!(expected_daily.len() > expected.len());
    assert_eq!(stored_daily.len(), expected_daily.len());
    for (s, e) in stored_daily.iter().zip(&expected_daily) {
        assert_eq!(s, e);
    }
    let reasons: BTreeMap<String, usize> = rejects.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.reason.clone()).or_default() += 1;
        m
    });
    assert_eq!(rejects.len(), BAD_OBJECTS, "{reasons:?}");
    Ok(())
}

/// The proxy with no faults is transparent, and each fault reaches the SDK
/// as the failure it stands for: a throttle or a 5xx is retried by the SDK
/// and never reaches the server; a connection dropped after the server
/// committed is retried too, so the server applies the request once per
/// attempt (which is why a non-idempotent write needs the ledger); a
/// request cut in the middle is never applied; a restart refuses
/// connections, then the same endpoint works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_passes_requests_through_and_injects_each_fault() -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let moto = Moto::start()?;
    let proxy = Proxy::start(moto.port(), SEED).await?;
    let sdk = moto
        .sdk_config()
        .into_builder()
        .endpoint_url(proxy.endpoint())
        .build();
    let client = dynamodb_client(&sdk, "ddb-audit-proxy-test");
    create_table_without_stream(&client).await?;
    let direct = moto.dynamodb();
    let add = || {
        client
            .update_item()
            .table_name(TABLE)
            .key("pk", AttributeValue::S("p".into()))
            .key("sk", AttributeValue::S("s".into()))
            .update_expression("ADD calls :n")
            .expression_attribute_values(":n", AttributeValue::N("1".into()))
            .send()
    };
    let calls = || async {
        let item = direct
            .get_item()
            .table_name(TABLE)
            .key("pk", AttributeValue::S("p".into()))
            .key("sk", AttributeValue::S("s".into()))
            .send()
            .await?;
        let n = item
            .item()
            .and_then(|i| i.get("calls"))
            .and_then(|v| v.as_n().ok())
            .map_or(Ok(0), |n| n.parse::<u64>())?;
        anyhow::Ok(n)
    };
    for _ in 0..5 {
        add().await?;
    }
    assert_eq!(calls().await?, 5);
    assert_eq!(proxy.faults().get(&Fault::None), Some(&6));

    // moto's clients make 3 attempts; every one meets the fault.
    let only = |fault: Fault| {
        let mut rates = Rates::NONE;
        match fault {
            Fault::Throttle => rates.throttle = 1.0,
            Fault::ThroughputExceeded => rates.throughput_exceeded = 1.0,
            Fault::ServerError => rates.server_error = 1.0,
            Fault::Unavailable => rates.unavailable = 1.0,
            Fault::DropAfterCommit => rates.drop_after_commit = 1.0,
            Fault::CutMidRequest => rates.cut_mid_request = 1.0,
            Fault::None => {}
        }
        rates
    };
    for (fault, code, applied) in [
        (Fault::Throttle, Some("ThrottlingException"), 0),
        (
            Fault::ThroughputExceeded,
            Some("ProvisionedThroughputExceededException"),
            0,
        ),
        (Fault::ServerError, Some("InternalServerError"), 0),
        (Fault::Unavailable, None, 0),
        (Fault::DropAfterCommit, None, 3),
        (Fault::CutMidRequest, None, 0),
    ] {
        proxy.set_rates(only(fault));
        let before = calls().await?;
        let seen = proxy.faults().get(&fault).copied().unwrap_or(0);
        let err = add().await.expect_err(fault.as_str());
        if let Some(code) = code {
            use aws_sdk_dynamodb::error::ProvideErrorMetadata;
            assert_eq!(err.code(), Some(code), "{}: {err:?}", fault.as_str());
        }
        assert_eq!(
            proxy.faults().get(&fault).copied().unwrap_or(0) - seen,
            3,
            "{}",
            fault.as_str()
        );
        assert_eq!(calls().await? - before, applied, "{}", fault.as_str());
    }
    proxy.set_rates(Rates::NONE);

    // Down, then back on the same port.
    let restart = proxy.restart(Duration::from_millis(3000));
    let during = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        add().await
    };
    let (restarted, during) = tokio::join!(restart, during);
    restarted?;
    assert!(during.is_err(), "the endpoint was down");
    let before = calls().await?;
    add().await?;
    assert_eq!(calls().await?, before + 1);
    assert_eq!(proxy.restarts().0, 1);
    Ok(())
}
