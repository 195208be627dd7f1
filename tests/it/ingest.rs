//! The ingest functions against a real AWS-compatible server (moto): every
//! batch counts exactly once, whatever is delivered twice, retried after a
//! fault, or applied concurrently, and the summary table says exactly what
//! `analyze` says of the same input.

use std::sync::Arc;

use anyhow::Context as _;
use ddb_audit_aws::ingest::{handle_logs, handle_s3, Deps};
use ddb_audit_aws::store::SummaryStore;
use ddb_audit_core::config::Config;
use ddb_audit_core::row::Row;
use ddb_audit_tests::faults::Faults;
use ddb_audit_tests::moto::Moto;
use ddb_audit_tests::{
    analyze_rows, counters, event_file, gzip, identity, logs_event, mixed_file, test_store,
    trail_file, Record,
};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::{json, Value};

const BUCKET: &str = "ddb-audit-trail-111122223333";
const SAMPLE_KEY: &str = "AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-1/2024/03/15/111122223333_CloudTrail_us-east-1_20240315T1205Z_Xy7AbCdEfGhIjKlM.json.gz";

struct Env {
    moto: Moto,
    faults: Faults,
    deps: Deps,
}

/// A moto server, a summary table and the function's dependencies, with a
/// fault injector between the store and the server.
async fn env(vars: &[(&str, &str)]) -> anyhow::Result<Env> {
    let moto = Moto::start()?;
    let faults = Faults::new();
    let mut all: Vec<(String, String)> = vec![("SUMMARY_TABLE".into(), "ddb-audit-summary".into())];
    all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config =
        Config::from_vars(|name| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))?;
    let store = test_store(moto.dynamodb_with(faults.clone()), &config);
    store.create_table().await?;
    let s3 = moto.s3();
    s3.create_bucket().bucket(BUCKET).send().await?;
    faults.reset_counts();
    let deps = Deps {
        config,
        store,
        s3,
        function: "test",
    };
    Ok(Env { moto, faults, deps })
}

fn lambda_event(payload: &[u8]) -> anyhow::Result<LambdaEvent<Box<RawValue>>> {
    let raw: Box<RawValue> = serde_json::from_slice(payload)?;
    let mut context = Context::default();
    context.request_id = "test-request".into();
    Ok(LambdaEvent::new(raw, context))
}

fn sample(relative: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(event_file(relative)).with_context(|| format!("reading events/{relative}"))
}

async fn stored(env: &Env) -> anyhow::Result<Vec<Row>> {
    Ok(counters(env.deps.store.scan_rows(false).await?))
}

async fn put_object(env: &Env, key: &str, body: Vec<u8>) -> anyhow::Result<()> {
    ddb_audit_tests::put_object(&env.deps.s3, BUCKET, key, body).await?;
    Ok(())
}

fn s3_event(keys: &[&str]) -> Vec<u8> {
    let records: Vec<Value> = keys
        .iter()
        .map(|key| {
            json!({"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
                   "eventTime":"2024-03-15T12:06:00.000Z","eventName":"ObjectCreated:Put",
                   "s3":{"s3SchemaVersion":"1.0","bucket":{"name":BUCKET,"arn":format!("arn:aws:s3:::{BUCKET}")},
                         "object":{"key":key,"size":1000,"eTag":format!("etag-{key}"),"sequencer":"0065F4"}}})
        })
        .collect();
    json!({"Records": records}).to_string().into_bytes()
}

fn sqs_event(bodies: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| {
            json!({"messageId": id, "receiptHandle": format!("rh-{id}"), "body": String::from_utf8_lossy(body),
                   "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                   "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:ddb-audit-objects",
                   "awsRegion": "us-east-1"})
        })
        .collect();
    json!({"Records": records}).to_string().into_bytes()
}

/// `n` records: `callers` IAM users on `tables` tables, one day.
fn busy_file(n: usize, callers: usize, tables: usize, hour: u32) -> Vec<u8> {
    let records: Vec<Record> = (0..n)
        .map(|i| {
            Record::on(
                if i % 3 == 0 { "PutItem" } else { "GetItem" },
                &format!("table-{:02}", i % tables),
            )
            .identity(identity::iam_user(&format!(
                "app-{:03}",
                (i / tables) % callers
            )))
            .at(&format!(
                "2024-03-15T{hour:02}:{:02}:{:02}Z",
                (i / 60) % 60,
                i % 60
            ))
        })
        .collect();
    trail_file(&records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_batch_delivered_twice_and_three_times_counts_once() -> anyhow::Result<()> {
    let env = env(&[]).await?;
    let payload = sample("logs-ingest/cloudwatch-logs-subscription.json")?;
    handle_logs(&env.deps, lambda_event(&payload)?).await?;
    let once = stored(&env).await?;
    assert_eq!(once, counters(analyze_rows(&[&payload])));
    assert!(!once.is_empty());
    for _ in 0..2 {
        handle_logs(&env.deps, lambda_event(&payload)?).await?;
    }
    assert_eq!(stored(&env).await?, once, "redeliveries counted nothing");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_message_is_acknowledged_and_writes_nothing() -> anyhow::Result<()> {
    let env = env(&[]).await?;
    let payload = sample("logs-ingest/cloudwatch-logs-control.json")?;
    handle_logs(&env.deps, lambda_event(&payload)?).await?;
    assert_eq!(env.faults.count("TransactWriteItems"), 0);
    assert!(stored(&env).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_object_delivered_twice_through_sqs_counts_once() -> anyhow::Result<()> {
    let env = env(&[]).await?;
    let file =
        sample("cloudtrail/111122223333_CloudTrail_us-east-1_20240315T1205Z_sample.json.gz")?;
    put_object(&env, SAMPLE_KEY, file.clone()).await?;
    let event = sample("s3-ingest/sqs-s3.json")?;
    for _ in 0..3 {
        let response = handle_s3(&env.deps, lambda_event(&event)?).await?;
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(stored(&env).await?, counters(analyze_rows(&[&file])));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_a_failure_before_the_transaction_counts_once() -> anyhow::Result<()> {
    let env = env(&[]).await?;
    let payload = sample("logs-ingest/cloudwatch-logs-subscription.json")?;
    env.faults.fail_before_send("TransactWriteItems", 1);
    let err = handle_logs(&env.deps, lambda_event(&payload)?)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "store", "{err}");
    assert!(
        stored(&env).await?.iter().all(|r| r.calls == 0),
        "nothing counted yet"
    );
    handle_logs(&env.deps, lambda_event(&payload)?).await?;
    assert_eq!(stored(&env).await?, counters(analyze_rows(&[&payload])));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_a_committed_transaction_whose_response_was_lost_counts_once(
) -> anyhow::Result<()> {
    let env = env(&[]).await?;
    let payload = sample("logs-ingest/cloudwatch-logs-subscription.json")?;
    env.faults.lose_response("TransactWriteItems", 1);
    assert!(handle_logs(&env.deps, lambda_event(&payload)?)
        .await
        .is_err());
    // The server committed it: the counters are already there once.
    let committed = stored(&env).await?;
    assert!(committed.iter().any(|r| r.calls > 0));
    handle_logs(&env.deps, lambda_event(&payload)?).await?;
    assert_eq!(stored(&env).await?, counters(analyze_rows(&[&payload])));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_a_failure_between_chunks_counts_once() -> anyhow::Result<()> {
    let env = env(&[]).await?;
    // 150 callers on one table: 300 rows, four chunks.
    let file = busy_file(300, 150, 1, 12);
    let payload = logs_event(
        &serde_json::from_slice::<Value>(&file)?["Records"]
            .as_array()
            .context("records")?
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>(),
    );
    env.faults.fail_before_send("TransactWriteItems", 3);
    assert!(handle_logs(&env.deps, lambda_event(&payload)?)
        .await
        .is_err());
    // Lifetime and daily rows hold 600 calls when the batch is complete.
    let partial: u64 = env
        .deps
        .store
        .scan_rows(true)
        .await?
        .iter()
        .map(|r| r.calls)
        .sum();
    assert!(
        partial > 0 && partial < 600,
        "some chunks applied, not all: {partial}"
    );
    handle_logs(&env.deps, lambda_event(&payload)?).await?;
    let rows = stored(&env).await?;
    assert_eq!(rows.iter().map(|r| r.calls).sum::<u64>(), 300);
    assert_eq!(rows, counters(analyze_rows(&[&payload])));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ingests_with_shared_callers_give_exact_totals() -> anyhow::Result<()> {
    let env = Arc::new(env(&[]).await?);
    let files: Vec<Vec<u8>> = (0..4).map(|h| busy_file(400, 20, 5, 10 + h)).collect();
    let mut tasks = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let env = Arc::clone(&env);
        let key = format!("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/15/f{i}.json.gz");
        put_object(&env, &key, gzip(file)).await?;
        tasks.push(tokio::spawn(async move {
            let event = s3_event(&[&key]);
            handle_s3(&env.deps, lambda_event(&event)?)
                .await
                .map_err(anyhow::Error::from)
        }));
    }
    for task in tasks {
        let response = task.await??;
        assert!(response.batch_item_failures.is_empty());
    }
    let inputs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
    let rows = stored(&env).await?;
    assert_eq!(rows.iter().map(|r| r.calls).sum::<u64>(), 1600);
    assert_eq!(rows, counters(analyze_rows(&inputs)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_batches_keep_the_true_first_and_last_seen() -> anyhow::Result<()> {
    let env = env(&[]).await?;
    let early = trail_file(&[Record::on("GetItem", "orders").at("2024-03-15T08:00:00Z")]);
    let late = trail_file(&[Record::on("GetItem", "orders").at("2024-03-15T20:00:00Z")]);
    let middle = trail_file(&[Record::on("GetItem", "orders").at("2024-03-15T12:00:00Z")]);
    for (i, file) in [&late, &early, &middle].into_iter().enumerate() {
        let key = format!("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/15/o{i}.json.gz");
        put_object(&env, &key, gzip(file)).await?;
        handle_s3(&env.deps, lambda_event(&s3_event(&[&key]))?).await?;
    }
    let rows = stored(&env).await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].calls, 3);
    assert_eq!(rows[0].first_seen, "2024-03-15T08:00:00Z");
    assert_eq!(rows[0].last_seen, "2024-03-15T20:00:00Z");
    assert_eq!(rows, counters(analyze_rows(&[&late, &early, &middle])));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_objects_become_rejects_while_good_ones_in_the_same_sqs_batch_apply(
) -> anyhow::Result<()> {
    let env = env(&[("MAX_DECOMPRESSED_BYTES", "200000")]).await?;
    let good = trail_file(&[
        Record::on("GetItem", "orders"),
        Record::on("PutItem", "orders"),
    ]);
    let whole = gzip(&busy_file(200, 10, 2, 9));
    let big = gzip(&busy_file(400, 10, 2, 9));
    assert!(
        busy_file(400, 10, 2, 9).len() > 200_000,
        "big enough to pass the cap"
    );
    let base = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/15";
    let objects: [(&str, Vec<u8>); 4] = [
        ("good.json.gz", gzip(&good)),
        ("truncated.json.gz", whole[..whole.len() / 2].to_vec()),
        ("over-cap.json.gz", big),
        ("not-a-trail.json.gz", b"hello, this is not JSON".to_vec()),
    ];
    let mut bodies = Vec::new();
    for (i, (name, bytes)) in objects.iter().enumerate() {
        let key = format!("{base}/{name}");
        put_object(&env, &key, bytes.clone()).await?;
        bodies.push((
            ["m-good", "m-truncated", "m-cap", "m-json"][i],
            s3_event(&[&key]),
        ));
    }
    // A message whose object is in a bucket that does not exist: an S3
    // failure, retried, not a reject.
    let missing_bucket = s3_event(&["x.json.gz"]);
    let missing_bucket = String::from_utf8(missing_bucket)?
        .replace(BUCKET, "no-such-bucket")
        .into_bytes();
    bodies.push(("m-s3-failure", missing_bucket));
    let response = handle_s3(&env.deps, lambda_event(&sqs_event(&bodies))?).await?;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-s3-failure"], "only the S3 failure is retried");
    assert_eq!(stored(&env).await?, counters(analyze_rows(&[&good])));
    let rejects = env
        .deps
        .store
        .client()
        .query()
        .table_name(env.deps.store.table())
        .key_condition_expression("pk = :p")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("REJECT".into()),
        )
        .send()
        .await?;
    let mut reasons: Vec<(String, String)> = rejects
        .items()
        .iter()
        .map(|item| {
            let text = |n: &str| {
                item.get(n)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            (
                text("key")
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                text("reason"),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("not-a-trail.json.gz".to_owned(), "bad_shape".to_owned()),
            ("over-cap.json.gz".to_owned(), "over_cap".to_owned()),
            ("truncated.json.gz".to_owned(), "bad_gzip".to_owned()),
        ]
    );
    // The same batch again: rejects are not retried forever, good ones count once.
    let again = handle_s3(&env.deps, lambda_event(&sqs_event(&bodies[..4]))?).await?;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(stored(&env).await?, counters(analyze_rows(&[&good])));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_requests_grow_with_rollup_keys_not_records() -> anyhow::Result<()> {
    let env = env(&[]).await?;
    // A first small file of the same day: the day's path mark (one
    // UpdateItem per account, region, path and day, remembered by a warm
    // function) is written here, not inside the comparison below.
    let warm = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/15/warm.json.gz";
    put_object(&env, warm, gzip(&busy_file(10, 1, 1, 9))).await?;
    let mut inv = ddb_audit_core::metrics::Invocation::default();
    ddb_audit_aws::ingest::ingest_s3(&env.deps, &s3_event(&[warm]), &mut inv).await?;
    let mut seen = Vec::new();
    // (records, callers, tables, hour): the first two touch the same 100 rows
    // (50 lifetime, 50 daily); the third twice as many.
    for (records, callers, tables, hour) in [
        (10_000, 10, 5, 10),
        (20_000, 10, 5, 14),
        (10_000, 20, 5, 18),
    ] {
        let file = gzip(&busy_file(records, callers, tables, hour));
        let key = format!(
            "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/15/n{records}-{callers}.json.gz"
        );
        put_object(&env, &key, file).await?;
        env.faults.reset_counts();
        let mut inv = ddb_audit_core::metrics::Invocation::default();
        ddb_audit_aws::ingest::ingest_s3(&env.deps, &s3_event(&[&key]), &mut inv).await?;
        let writes = env.faults.count("TransactWriteItems") + env.faults.count("UpdateItem");
        println!(
            "{records} records, {} rollup keys: {writes} write requests {:?}",
            inv.rollup_keys,
            env.faults.counts()
        );
        assert!(
            writes <= inv.rollup_keys * 4,
            "{writes} requests for {} keys",
            inv.rollup_keys
        );
        seen.push((inv.rollup_keys, writes));
    }
    assert_eq!(seen[0], (100, seen[0].1));
    assert_eq!(
        seen[0], seen[1],
        "twice the records over the same rows: the same requests"
    );
    assert_eq!(seen[2].0, 200);
    assert!(seen[2].1 > seen[0].1, "more rows, more requests: {seen:?}");
    let rows = stored(&env).await?;
    // The 10 calls of the warm-up file, and the 40,000 compared.
    assert_eq!(rows.iter().map(|r| r.calls).sum::<u64>(), 40_010);
    Ok(())
}

/// Issue 8's batch: 10,000 records from 50 callers on 10 tables. The
/// requests are counted where they leave the client and reported beside the
/// distinct rollup keys (README "Performance"). Ignored by default: its
/// 1,700 requests take moto many minutes. Run it with
/// `cargo test -p ddb-audit-tests -- --ignored --nocapture one_request_per_row`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow against moto; run for the README's requests-per-row figure"]
async fn a_batch_of_50_callers_on_10_tables_writes_about_one_request_per_row() -> anyhow::Result<()>
{
    let env = env(&[]).await?;
    let file = gzip(&mixed_file(10_000, 50, 10));
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/15/mixed-50x10.json.gz";
    put_object(&env, key, file.clone()).await?;
    env.faults.reset_counts();
    let mut inv = ddb_audit_core::metrics::Invocation::default();
    ddb_audit_aws::ingest::ingest_s3(&env.deps, &s3_event(&[key]), &mut inv).await?;
    let transactions = env.faults.count("TransactWriteItems");
    let updates = env.faults.count("UpdateItem");
    let keys = inv.rollup_keys;
    println!(
        "50 callers x 10 tables, 10000 records: {keys} rollup keys (500 lifetime, {} daily), \
         {} requests = {transactions} TransactWriteItems + {updates} UpdateItem ({:.2} per key) {:?}",
        keys - 500,
        transactions + updates,
        (transactions + updates) as f64 / keys as f64,
        env.faults.counts()
    );
    // 500 lifetime rows and 1,000 daily rows (every pair is seen on both days).
    assert_eq!(keys, 1_500);
    // One transaction per 99 rows; per lifetime row, first seen, last seen and
    // the source sets it has (IPs always, VPC endpoints for a third).
    assert_eq!(transactions, keys.div_ceil(99));
    assert_eq!(updates, 500 * 3 + 17 * 10);
    assert!(transactions + updates <= 3 * keys);
    assert_eq!(stored(&env).await?, counters(analyze_rows(&[&file])));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_summary_table_is_a_clear_lambda_error() -> anyhow::Result<()> {
    let env = env(&[]).await?;
    let payload = sample("logs-ingest/cloudwatch-logs-subscription.json")?;
    let mut deps = env.deps.clone();
    deps.store = SummaryStore::new(env.moto.dynamodb(), "no-such-table", 30, 90);
    let err = handle_logs(&deps, lambda_event(&payload)?)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "store");
    let text = err.to_string();
    assert!(
        text.contains("summary table no-such-table") && text.contains("ResourceNotFound"),
        "{text}"
    );
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "store");
    Ok(())
}
