//! Nothing leaked (issue 6, part 4; DESIGN.md section 6): item key values,
//! PartiQL literals and access key ids in the input are never stored, logged
//! or published. Records carrying distinctive markers in every place
//! CloudTrail puts such values go through both ingest functions (with a bad
//! record, a rejected object and a rejected log batch, so the error paths
//! log too) and through the notifier; then every item of the summary table,
//! every line the process logged, every message SNS published and the
//! output of `ddb-audit analyze` on the same inputs are searched for them.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ddb_audit_aws::ingest::{handle_logs, handle_s3};
use ddb_audit_aws::notify_handler::{handle_stream, NotifyDeps, StreamEvent};
use ddb_audit_core::config::NotifyConfig;
use ddb_audit_tests::moto::Moto;
use ddb_audit_tests::stack::{self, Stack};
use ddb_audit_tests::{gzip, identity, logs_event, trail_file, Record, ACCOUNT, REGION};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

const TABLE: &str = "ddb-audit-summary";
const BUCKET: &str = "ddb-audit-trail-111122223333";

/// Item key values, as CloudTrail logs them in clear.
const KEY_VALUES: [&str; 6] = [
    "kv-Qx71-order",
    "kv-Qx72-customer",
    "kv-Qx73-sku",
    "kv-Qx74-batchput",
    "kv-Qx75-batchdelete",
    "kv-Qx76-transact",
];
/// PartiQL literals: CloudTrail redacts non-key literals, key ones are clear.
const LITERALS: [&str; 4] = [
    "pq-Qx81-select",
    "pq-Qx82-insert",
    "pq-Qx83-update",
    "7316620841",
];
/// Access key ids of the callers.
const ACCESS_KEYS: [&str; 3] = [
    "ASIAQX9SECRETKEY0001",
    "AKIAQX9SECRETKEY0002",
    "ASIAQX9SECRETKEY0003",
];

fn markers() -> impl Iterator<Item = &'static str> {
    KEY_VALUES.into_iter().chain(LITERALS).chain(ACCESS_KEYS)
}

/// A role session with the given access key id.
fn caller(app: &str, access_key: &str) -> Value {
    let mut identity = identity::app_role(app, "task-0001");
    identity["accessKeyId"] = json!(access_key);
    identity
}

/// Every place a key value, a literal or an access key id appears.
fn records() -> Vec<Record> {
    let [k1, k2, k3, k4, k5, k6] = KEY_VALUES;
    let [l1, l2, l3, n] = LITERALS;
    let [a1, a2, a3] = ACCESS_KEYS;
    let by = |record: Record, app: &str, key: &str| record.identity(caller(app, key));
    vec![
        by(
            Record::new("GetItem").params(json!({"tableName": "orders", "key": {"orderId": k1}})),
            "orders-api",
            a1,
        )
        .set("responseElements", json!({"item": {"orderId": k1, "customerId": k2}})),
        by(
            Record::new("PutItem").params(json!({
                "tableName": "orders", "key": {"orderId": k1},
                "item": {"orderId": k1, "customerId": k2},
                "conditionExpression": "attribute_not_exists(orderId)",
            })),
            "orders-api",
            a1,
        ),
        by(
            Record::new("UpdateItem").params(json!({
                "tableName": "orders", "key": {"orderId": k1},
                "updateExpression": "SET #s = :s",
                "expressionAttributeValues": {":s": {"S": k2}},
            })),
            "orders-api",
            a1,
        )
        .error("ConditionalCheckFailedException")
        .set("errorMessage", json!(format!("The conditional request failed for {k1}"))),
        by(
            Record::new("Query").params(json!({
                "tableName": "orders", "indexName": "byCustomer",
                "key": {"customerId": k2},
                "keyConditionExpression": "customerId = :c",
                "expressionAttributeValues": {":c": {"S": k2}},
            })),
            "orders-api",
            a1,
        ),
        by(
            Record::new("DeleteItem").params(json!({"tableName": "orders", "key": {"orderId": k1}})),
            "orders-api",
            a1,
        )
        .error("AccessDeniedException"),
        by(
            Record::new("BatchGetItem").params(json!({"requestItems": {
                "orders": {"keys": [{"orderId": k1}]},
                "customers": {"keys": [{"customerId": k2}]},
            }})),
            "reports",
            a2,
        ),
        by(
            Record::new("BatchWriteItem").params(json!({"requestItems": {"audit-log": [
                {"putRequest": {"key": {"eventId": k4}, "item": {"eventId": k4}}},
                {"deleteRequest": {"key": {"eventId": k5}}},
            ]}})),
            "reports",
            a2,
        ),
        by(
            Record::new("TransactWriteItems").params(json!({"requestItems": [
                {"operation": "Put", "tableName": "orders", "key": {"orderId": k6}},
                {"operation": "ConditionCheck", "TableName": "inventory", "Key": {"sku": k3}},
            ]})),
            "fulfilment",
            a3,
        ),
        by(
            Record::new("TransactGetItems").params(json!({"requestItems": [
                {"tableName": "inventory", "key": {"sku": k3}},
            ]})),
            "fulfilment",
            a3,
        ),
        by(
            Record::new("ExecuteStatement").params(json!({
                "statement": format!("SELECT * FROM \"orders\".\"byCustomer\" WHERE customerId = '{l1}' AND total > {n}"),
            })),
            "reports",
            a2,
        ),
        by(
            Record::new("BatchExecuteStatement").params(json!({"requestItems": [
                {"statement": format!("INSERT INTO \"orders\" VALUE {{'orderId' : '{l2}', 'n' : {n}}}")},
                {"statement": format!("UPDATE \"inventory\" SET reserved = {n} WHERE sku = '{l3}'")},
            ]})),
            "fulfilment",
            a3,
        ),
        by(
            Record::new("ExecuteTransaction").params(json!({"transactStatements": [
                {"statement": format!("EXISTS(SELECT * FROM \"inventory\" WHERE sku = '{l3}')")},
                {"statement": format!("DELETE FROM \"audit-log\" WHERE eventId = '{l2}'")},
            ]})),
            "fulfilment",
            a3,
        ),
        // An identity of a type ddb-audit does not know: `unknown:` + an id,
        // never the access key id.
        Record::on("GetItem", "orders").identity(json!({
            "type": "SomethingNew", "accessKeyId": a2, "accountId": ACCOUNT,
        })),
    ]
}

/// A record that is malformed (wrong type) while carrying key values.
fn malformed() -> Record {
    Record::new("GetItem")
        .params(json!({"tableName": 7, "key": {"orderId": KEY_VALUES[0]}}))
        .identity(caller("orders-api", ACCESS_KEYS[0]))
}

/// Log output of the code under test, captured while a test runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sqs_s3_event(keys: &[&str]) -> anyhow::Result<LambdaEvent<Box<serde_json::value::RawValue>>> {
    let records: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let body = json!({"Records": [{
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
                "eventTime": "2024-03-15T12:06:00.000Z", "eventName": "ObjectCreated:Put",
                "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
                       "object": {"key": key, "size": 1000, "eTag": format!("etag-{i}"), "sequencer": "0065F4"}}}]});
            json!({"messageId": format!("m{i}"), "receiptHandle": "rh", "body": body.to_string(),
                   "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                   "eventSourceARN": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:ddb-audit-objects"), "awsRegion": REGION})
        })
        .collect();
    let raw = serde_json::value::to_raw_value(&json!({ "Records": records }))?;
    Ok(LambdaEvent::new(raw, Context::default()))
}

fn logs_lambda_event(
    payload: &[u8],
) -> anyhow::Result<LambdaEvent<Box<serde_json::value::RawValue>>> {
    let mut context = Context::default();
    context.request_id = "security-test".into();
    Ok(LambdaEvent::new(serde_json::from_slice(payload)?, context))
}

/// Every marker found in `text`, for one message naming them all.
fn found_in(text: &str) -> Vec<&'static str> {
    markers().filter(|m| text.contains(m)).collect()
}

// One thread: the subscriber set for this test sees every task it spawns.
#[tokio::test(flavor = "current_thread")]
async fn no_key_value_literal_or_access_key_id_is_stored_logged_or_published() -> anyhow::Result<()>
{
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        // Everything, the AWS SDK's own trace output included: more than
        // the functions log by default (`info`).
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let moto = Moto::start()?;
    let Stack {
        ingest: deps,
        topic,
        stream_arn,
    } = stack::deploy(&moto, TABLE, BUCKET, "security-test").await?;

    // The inputs, markers in every one. Their text must hold every marker,
    // or the search below proves nothing.
    let records = records();
    let mut file_records = records.clone();
    file_records.insert(2, malformed());
    let file = trail_file(&file_records);
    let mut messages: Vec<String> = records
        .iter()
        .map(|r| {
            // The same calls again through CloudWatch Logs, with new eventIDs.
            r.clone()
                .set("eventID", json!(format!("{}-cwl", r.event_id())))
                .text()
        })
        .collect();
    messages.insert(
        1,
        format!("not JSON, but key {} and {}", KEY_VALUES[0], ACCESS_KEYS[0]),
    );
    messages.insert(3, malformed().text());
    let logs_payload = logs_event(&messages);
    let bad_shape =
        json!({"Records": {"orderId": KEY_VALUES[0], "accessKeyId": ACCESS_KEYS[1]}}).to_string();
    let bad_logs = ddb_audit_tests::awslogs(&gzip(
        json!({"logGroup": KEY_VALUES[2], "logEvents": LITERALS[0]})
            .to_string()
            .as_bytes(),
    ));
    let all_input =
        String::from_utf8_lossy(&[file.clone(), messages.join("\n").into_bytes()].concat())
            .into_owned();
    for marker in markers() {
        assert!(all_input.contains(marker), "the inputs carry {marker}");
    }

    let keys = [
        format!("AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2024/03/15/{ACCOUNT}_CloudTrail_{REGION}_20240315T1205Z_sec.json.gz"),
        format!("AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2024/03/15/{ACCOUNT}_CloudTrail_{REGION}_20240315T1210Z_shape.json"),
        format!("AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2024/03/15/{ACCOUNT}_CloudTrail_{REGION}_20240315T1215Z_cut.json.gz"),
    ];
    let cut = gzip(&file);
    for (key, body) in keys.iter().zip([
        gzip(&file),
        bad_shape.clone().into_bytes(),
        cut[..cut.len() / 2].to_vec(),
    ]) {
        ddb_audit_tests::put_object(&deps.s3, BUCKET, key, body).await?;
    }
    // tracing caches, per call site, whether any subscriber wants its
    // events. A call site first reached by another test while this
    // subscriber was being installed can be cached as unwanted; recompute
    // now that it is in place, so nothing the handlers log is missed.
    tracing::callsite::rebuild_interest_cache();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let response = handle_s3(&deps, sqs_s3_event(&key_refs)?).await?;
    assert!(response.batch_item_failures.is_empty());
    handle_logs(&deps, logs_lambda_event(&logs_payload)?).await?;
    handle_logs(&deps, logs_lambda_event(&bad_logs)?).await?;

    // The notifier, fed the table's stream as Lambda would.
    let streams = aws_sdk_dynamodbstreams::Client::new(&moto.sdk_config());
    let (changes, _) = ddb_audit_tests::stream::read_after(&streams, &stream_arn, 0).await?;
    let notify_config = NotifyConfig::from_vars(|name| match name {
        "SUMMARY_TABLE" => Some(TABLE.to_owned()),
        "TOPIC_ARN" => Some(topic.clone()),
        "NOTIFY_LEARNING_HOURS" => Some("0".to_owned()),
        _ => None,
    })?;
    tracing::callsite::rebuild_interest_cache();
    let notifier = NotifyDeps::new(notify_config, moto.dynamodb(), moto.sns(), "security-test");
    let event: StreamEvent = serde_json::from_value(json!({ "Records": changes }))?;
    let response = handle_stream(&notifier, LambdaEvent::new(event, Context::default())).await?;
    assert!(response.batch_item_failures.is_empty());

    // What ddb-audit analyze prints of the same inputs.
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("trail.json"), &file)?;
    std::fs::write(dir.path().join("logs.json"), &logs_payload)?;
    std::fs::write(dir.path().join("shape.json"), &bad_shape)?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let path = dir.path().to_string_lossy().into_owned();
    let code = ddb_audit_cli::run(
        ["ddb-audit", "analyze", "--format", "json", &path],
        &mut out,
        &mut err,
    );
    assert_eq!(code, 1, "shape.json cannot be read");

    // Everything stored: every item, every attribute.
    let mut items = Vec::new();
    let mut pages = moto
        .dynamodb()
        .scan()
        .table_name(TABLE)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        items.push(format!("{:?}", item?));
    }
    let stored = items.join("\n");
    let published = moto.published_sns()?.to_string();
    let published_count = moto.published_sns()?.as_array().map_or(0, Vec::len);
    drop(_guard);
    let logged = logs.text();
    let analyze_out = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );

    // The search covers real data, so it cannot pass for want of any.
    let rows = items.iter().filter(|i| i.contains("\"CALLER#")).count();
    let rejects = items.iter().filter(|i| i.contains("\"REJECT\"")).count();
    let notices = items.iter().filter(|i| i.contains("\"NOTICE#")).count();
    let log_lines = logged.lines().count();
    eprintln!(
        "security: searched {} items ({rows} rows, {rejects} rejects, {notices} notice records), \
         {log_lines} log lines ({} bytes), {published_count} SNS messages, {} bytes of analyze output for {} markers",
        items.len(),
        logged.len(),
        analyze_out.len(),
        markers().count()
    );
    assert!(rows >= 8, "{rows} rows");
    assert_eq!(rejects, 3, "two objects and a log batch are rejected");
    assert!(published_count >= 4, "{published_count} messages");
    assert!(
        logged.contains("malformed record"),
        "the bad records are logged"
    );
    assert!(logged.contains("object rejected") && logged.contains("log batch rejected"));
    assert!(logged.contains("reconciliation"));
    assert!(log_lines >= 10, "{logged}");
    assert!(analyze_out.lines().count() >= 8, "{analyze_out}");

    for (what, text) in [
        ("the summary table", &stored),
        ("the logs", &logged),
        ("the SNS messages", &published),
        ("analyze's output", &analyze_out),
    ] {
        let found = found_in(text);
        assert!(found.is_empty(), "{what} holds {found:?}:\n{text}");
    }
    Ok(())
}
