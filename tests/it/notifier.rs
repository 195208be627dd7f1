//! The notifier against a real AWS-compatible server (moto): CloudTrail input
//! is ingested into a summary table, the table's stream is read back with the
//! DynamoDB Streams API and handed to the handler as Lambda would, and what
//! SNS really published is read from moto.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use ddb_audit_aws::ingest::{handle_logs, handle_s3, Deps};
use ddb_audit_aws::notify_handler::{handle_stream, NotifyDeps, StreamEvent, StreamResponse};
use ddb_audit_core::config::NotifyConfig;
use ddb_audit_tests::faults::Faults;
use ddb_audit_tests::moto::Moto;
use ddb_audit_tests::stack::{self, Stack};
use ddb_audit_tests::stream::read_after;
use ddb_audit_tests::{
    event_file, identity, logs_event, trail_file, Record, ACCOUNT, REGION, SAMPLE_SECRETS,
};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

const TABLE: &str = "ddb-audit-summary";
const BUCKET: &str = "ddb-audit-trail-111122223333";

/// 2024-03-15T12:30:00Z: a fixed clock, so the hourly cap never straddles
/// an hour while a test runs.
fn clock() -> i64 {
    1_710_505_800
}

struct Env {
    moto: Moto,
    ingest: Deps,
    topic: String,
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    /// The last sequence number read from the stream.
    read_up_to: u128,
}

async fn env() -> anyhow::Result<Env> {
    let moto = Moto::start()?;
    let Stack {
        ingest,
        topic,
        stream_arn,
    } = stack::deploy(&moto, TABLE, BUCKET, "test").await?;
    let streams = aws_sdk_dynamodbstreams::Client::new(&moto.sdk_config());
    Ok(Env {
        ingest,
        moto,
        topic,
        streams,
        stream_arn,
        read_up_to: 0,
    })
}

impl Env {
    /// The notifier's dependencies: no learning period unless `vars` set one.
    fn notifier(
        &self,
        vars: &[(&str, &str)],
        sns: aws_sdk_sns::Client,
    ) -> anyhow::Result<NotifyDeps> {
        let mut all: HashMap<String, String> = [
            ("SUMMARY_TABLE", TABLE),
            ("TOPIC_ARN", self.topic.as_str()),
            ("NOTIFY_LEARNING_HOURS", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = NotifyConfig::from_vars(|name| all.get(name).cloned())?;
        Ok(NotifyDeps::new(config, self.moto.dynamodb(), sns, "notifier-test").with_clock(clock))
    }

    /// Ingests records as one CloudTrail file delivered through S3.
    async fn ingest(&self, records: &[Record]) -> anyhow::Result<()> {
        self.ingest_bytes(trail_file(records)).await
    }

    async fn ingest_bytes(&self, file: Vec<u8>) -> anyhow::Result<()> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let key = format!(
            "AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2024/03/15/n{}.json",
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ddb_audit_tests::put_object(&self.ingest.s3, BUCKET, &key, file).await?;
        let event = json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
            "eventTime": "2024-03-15T12:06:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
                   "object": {"key": key, "size": 1000, "eTag": format!("etag-{key}"), "sequencer": "0065F4"}}}]});
        let raw = serde_json::value::to_raw_value(&event)?;
        let response = handle_s3(&self.ingest, LambdaEvent::new(raw, Context::default())).await?;
        anyhow::ensure!(response.batch_item_failures.is_empty(), "ingest failed");
        Ok(())
    }

    /// The stream records written since the last call, shaped as Lambda's
    /// DynamoDB event source hands them to a function.
    async fn stream_records(&mut self) -> anyhow::Result<Vec<Value>> {
        let (records, last) = read_after(&self.streams, &self.stream_arn, self.read_up_to).await?;
        self.read_up_to = last;
        Ok(records)
    }

    fn published(&self) -> anyhow::Result<Vec<Published>> {
        let all = self.moto.published_sns()?;
        all.as_array()
            .context("published messages")?
            .iter()
            .map(Published::new)
            .collect()
    }
}

/// Calls the handler through its real entry type.
async fn deliver(deps: &NotifyDeps, records: &[Value]) -> anyhow::Result<StreamResponse> {
    let event: StreamEvent = serde_json::from_value(json!({ "Records": records }))?;
    Ok(handle_stream(deps, LambdaEvent::new(event, Context::default())).await?)
}

/// What SNS published, as moto recorded it.
#[derive(Debug)]
struct Published {
    subject: String,
    /// The plain-text body (`default` and `email`).
    text: String,
    /// The JSON document (`sqs`).
    json: Value,
    attributes: BTreeMap<String, String>,
    /// Everything published, as one string, to search.
    raw: String,
}

impl Published {
    fn new(sent: &Value) -> anyhow::Result<Published> {
        let structured: Value = serde_json::from_str(sent["message"].as_str().context("message")?)?;
        let json: Value = serde_json::from_str(structured["sqs"].as_str().context("sqs body")?)?;
        let mut attributes = BTreeMap::new();
        for (name, value) in sent["message_attributes"].as_object().into_iter().flatten() {
            let text = value["Value"]
                .as_str()
                .or_else(|| value["StringValue"].as_str())
                .context("attribute value")?;
            attributes.insert(name.clone(), text.to_owned());
        }
        Ok(Published {
            subject: sent["subject"].as_str().unwrap_or_default().to_owned(),
            text: structured["default"]
                .as_str()
                .context("default body")?
                .to_owned(),
            json,
            attributes,
            raw: sent.to_string(),
        })
    }

    fn kind(&self) -> &str {
        self.json["ddb_audit"]["kind"].as_str().unwrap_or_default()
    }

    fn about(&self, caller: &str) -> bool {
        self.text.contains(&format!("{caller} ("))
            || self.text.contains(&format!("Caller:       {caller}\n"))
    }
}

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/service/{name}")
}

fn call(op: &str, table: &str, app: &str) -> Record {
    Record::on(op, table).identity(identity::app_role(app, "task-0001"))
}

/// Key values and access key ids planted in the inputs: none may be published.
fn assert_no_secrets(published: &[Published]) {
    for p in published {
        for secret in SAMPLE_SECRETS {
            assert!(!p.raw.contains(secret), "{secret} published in {}", p.raw);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_appearance_is_one_complete_notice_even_from_motos_two_inserts(
) -> anyhow::Result<()> {
    let mut env = env().await?;
    let file = std::fs::read(event_file("cloudtrail/records.json"))?;
    let input = String::from_utf8_lossy(&file).into_owned();
    for planted in [
        "cust-7781",
        "ord-55120",
        "sku-40913",
        "ASIAYEXAMPLE",
        "AKIAYEXAMPLE",
    ] {
        assert!(input.contains(planted), "the sample plants {planted}");
    }
    env.ingest_bytes(file).await?;
    let records = env.stream_records().await?;
    // moto writes an UpdateItem that creates a row as two INSERTs, the
    // first with only the keys: the handler sees both.
    let mut inserts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        let sk = r["dynamodb"]["Keys"]["sk"]["S"]
            .as_str()
            .unwrap_or_default();
        if r["eventName"] == "INSERT" && sk.starts_with("CALLER#") {
            *inserts
                .entry(format!("{}|{sk}", r["dynamodb"]["Keys"]["pk"]["S"]))
                .or_default() += 1;
        }
    }
    assert!(
        inserts.values().any(|n| *n == 2),
        "moto's double INSERT: {inserts:?}"
    );

    let deps = env.notifier(&[], env.moto.sns())?;
    let response = deliver(&deps, &records).await?;
    assert!(response.batch_item_failures.is_empty());
    let published = env.published()?;
    let rows: Vec<_> = env
        .ingest
        .store
        .scan_rows(false)
        .await?
        .into_iter()
        .filter(|r| r.table.is_some())
        .collect();
    assert_eq!(
        published.len(),
        rows.len(),
        "one notice per (table, caller)"
    );
    for row in &rows {
        let table = row.table.as_deref().unwrap_or_default();
        let about: Vec<&Published> = published
            .iter()
            .filter(|p| p.about(&row.caller) && p.attributes["table"] == table)
            .collect();
        assert_eq!(about.len(), 1, "{} on {table}", row.caller);
        let p = about[0];
        let (kind, what) = if row.denied > 0 {
            ("new_caller_denied", "New caller denied")
        } else {
            ("new_caller", "New caller")
        };
        assert_eq!(p.kind(), kind);
        assert_eq!(
            p.subject,
            format!("{what} on {table} ({} {})", row.account, row.region)
        );
        assert!(p.subject.len() <= 100);
        assert_eq!(p.attributes["kind"], kind);
        assert_eq!(p.attributes["account"], row.account);
        assert_eq!(p.attributes["region"], row.region);
        assert_eq!(p.attributes["caller_type"], row.caller_type);
        assert!(
            p.text
                .contains(&format!("First seen:   {}", row.first_seen)),
            "{}",
            p.text
        );
        assert!(p.text.contains(&row.first_event_id), "{}", p.text);
        assert!(p.text.contains(&format!(
            "ddb-audit callers --table {table} --account {} --region {}",
            row.account, row.region
        )));
        assert_eq!(p.json["ddb_audit"]["caller"], row.caller.as_str());
        assert_eq!(p.json["ddb_audit"]["calls"], row.calls);
    }
    assert!(
        published.iter().any(|p| p.kind() == "new_caller_denied"),
        "the sample's AccessDenied caller is a new caller denied"
    );
    // The sample's first record: orders-api reading orders through a VPC endpoint.
    let orders = published
        .iter()
        .find(|p| p.about(&role("orders-api")) && p.attributes["table"] == "orders")
        .context("a notice for orders-api on orders")?;
    assert_eq!(
        orders.subject,
        "New caller on orders (111122223333 us-east-1)"
    );
    for wanted in [
        "Caller type:  AssumedRole, an application",
        "GetItem 1",
        "vpce-0a1b2c3d4e5f67890",
        "User agent:   aws-sdk-java/2.x",
        "5a28c187-42be-405a-a8fe-86a1103a2c80",
    ] {
        assert!(
            orders.text.contains(wanted),
            "missing {wanted:?} in\n{}",
            orders.text
        );
    }
    assert_no_secrets(&published);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_stream_batch_delivered_twice_sends_each_notice_once() -> anyhow::Result<()> {
    let mut env = env().await?;
    env.ingest(&[
        call("GetItem", "orders", "checkout"),
        call("PutItem", "orders", "billing"),
    ])
    .await?;
    let records = env.stream_records().await?;
    let deps = env.notifier(&[], env.moto.sns())?;
    for _ in 0..3 {
        assert!(deliver(&deps, &records)
            .await?
            .batch_item_failures
            .is_empty());
    }
    // A fresh execution environment gets the same batch again.
    let fresh = env.notifier(&[], env.moto.sns())?;
    deliver(&fresh, &records).await?;
    let published = env.published()?;
    assert_eq!(published.len(), 2);
    assert!(published.iter().any(|p| p.about(&role("checkout"))));
    assert!(published.iter().any(|p| p.about(&role("billing"))));
    assert_no_secrets(&published);
    Ok(())
}

/// One trail through both ingest functions: one warning notice, whatever
/// more both paths deliver and however often the stream is delivered, and
/// the ordinary new-caller notice beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trail_reaching_both_paths_is_one_warning_notice() -> anyhow::Result<()> {
    let mut env = env().await?;
    let deps = env.notifier(&[], env.moto.sns())?;
    let mut all = Vec::new();
    for round in 0..2 {
        let records: Vec<Record> = (0..3)
            .map(|i| {
                call("GetItem", "orders", "checkout").set("eventID", json!(format!("r{round}-{i}")))
            })
            .collect();
        env.ingest(&records).await?;
        let messages: Vec<String> = records.iter().map(Record::text).collect();
        let event = serde_json::from_slice(&logs_event(&messages))?;
        handle_logs(&env.ingest, LambdaEvent::new(event, Context::default())).await?;
        let batch = env.stream_records().await?;
        for _ in 0..2 {
            assert!(deliver(&deps, &batch).await?.batch_item_failures.is_empty());
        }
        all.extend(batch);
    }
    // A fresh execution environment gets every record again.
    let fresh = env.notifier(&[], env.moto.sns())?;
    deliver(&fresh, &all).await?;
    let published = env.published()?;
    let warnings: Vec<&Published> = published
        .iter()
        .filter(|p| p.subject.contains("reaches both ingest paths"))
        .collect();
    assert_eq!(warnings.len(), 1, "{published:#?}");
    let warning = warnings[0];
    assert_eq!(
        warning.subject,
        format!("ddb-audit: {ACCOUNT} {REGION} reaches both ingest paths; counts double")
    );
    assert_eq!(
        warning.attributes.get("kind").map(String::as_str),
        Some("path_overlap")
    );
    assert!(warning.text.contains("counted twice"), "{}", warning.text);
    assert!(
        warning.text.contains("delete-subscription-filter"),
        "{}",
        warning.text
    );
    assert_eq!(
        published
            .iter()
            .filter(|p| p.about(&role("checkout")))
            .count(),
        1
    );
    assert_no_secrets(&published);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_that_fails_is_retried_from_its_record_and_sent_once() -> anyhow::Result<()> {
    let mut env = env().await?;
    env.ingest(&[
        call("GetItem", "orders", "app-a"),
        call("GetItem", "orders", "app-b"),
        call("GetItem", "orders", "app-c"),
    ])
    .await?;
    let records = env.stream_records().await?;
    let faults = Faults::new();
    let deps = env.notifier(&[], env.moto.sns_with(faults.clone()))?;
    // The second notice's publish fails before it is sent.
    faults.fail_before_send("Publish", 2);
    let response = deliver(&deps, &records).await?;
    assert_eq!(response.batch_item_failures.len(), 1);
    let failed = response.batch_item_failures[0]
        .item_identifier
        .clone()
        .context("a sequence number")?;
    assert_eq!(env.published()?.len(), 1, "the first notice went out");
    // Lambda retries from the failed record on.
    let position = records
        .iter()
        .position(|r| r["dynamodb"]["SequenceNumber"] == failed.as_str())
        .context("the failure names a record of the batch")?;
    assert!(
        records[position]["dynamodb"]["NewImage"]["calls"].is_object(),
        "a complete row"
    );
    let response = deliver(&deps, &records[position..]).await?;
    assert!(response.batch_item_failures.is_empty());
    // And the whole batch once more, as a redelivery would.
    deliver(&deps, &records).await?;
    let published = env.published()?;
    assert_eq!(published.len(), 3, "{published:#?}");
    for app in ["app-a", "app-b", "app-c"] {
        assert_eq!(
            published.iter().filter(|p| p.about(&role(app))).count(),
            1,
            "{app}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_publish_response_is_the_one_window_that_sends_twice() -> anyhow::Result<()> {
    let mut env = env().await?;
    env.ingest(&[call("GetItem", "orders", "app-a")]).await?;
    let records = env.stream_records().await?;
    let faults = Faults::new();
    let deps = env.notifier(&[], env.moto.sns_with(faults.clone()))?;
    // SNS accepts the message, the notifier never hears back.
    faults.lose_response("Publish", 1);
    assert_eq!(deliver(&deps, &records).await?.batch_item_failures.len(), 1);
    deliver(&deps, &records).await?;
    deliver(&deps, &records).await?;
    // Documented in the README: the retry cannot know, so it sends again;
    // once recorded as sent, never again.
    assert_eq!(env.published()?.len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_callers_first_denial_and_a_denied_new_caller_are_one_notice_each(
) -> anyhow::Result<()> {
    let mut env = env().await?;
    let deps = env.notifier(&[], env.moto.sns())?;
    env.ingest(&[call("GetItem", "orders", "checkout")]).await?;
    deliver(&deps, &env.stream_records().await?).await?;
    env.ingest(&[
        call("Scan", "orders", "checkout").error("AccessDeniedException"),
        call("Scan", "orders", "checkout").error("AccessDeniedException"),
        call("PutItem", "orders", "intruder").error("AccessDeniedException"),
    ])
    .await?;
    deliver(&deps, &env.stream_records().await?).await?;
    // More denials are no news.
    env.ingest(&[call("Scan", "orders", "checkout").error("AccessDeniedException")])
        .await?;
    deliver(&deps, &env.stream_records().await?).await?;
    let published = env.published()?;
    let summary: Vec<(String, String)> = published
        .iter()
        .map(|p| (p.kind().to_owned(), p.subject.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "new_caller".to_owned(),
                "New caller on orders (111122223333 us-east-1)".to_owned()
            ),
            (
                "denied".to_owned(),
                "Caller first denied on orders (111122223333 us-east-1)".to_owned()
            ),
            (
                "new_caller_denied".to_owned(),
                "New caller denied on orders (111122223333 us-east-1)".to_owned()
            ),
        ]
    );
    assert!(published[1].about(&role("checkout")));
    assert!(
        published[1]
            .text
            .contains("Denied calls: 2 (AccessDeniedException 2)"),
        "{}",
        published[1].text
    );
    assert!(
        published[1].text.contains("Denied batch: Scan 2"),
        "{}",
        published[1].text
    );
    assert!(published[2].about(&role("intruder")));
    assert!(
        published[2].text.contains("and its first call was denied."),
        "{}",
        published[2].text
    );
    assert_no_secrets(&published);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_learning_period_records_callers_without_announcing_them() -> anyhow::Result<()> {
    let mut env = env().await?;
    let learning = [("NOTIFY_LEARNING_HOURS", "2")];
    env.ingest(&[
        call("GetItem", "orders", "checkout"),
        call("GetItem", "payments", "billing"),
    ])
    .await?;
    let deps = env.notifier(&learning, env.moto.sns())?;
    deliver(&deps, &env.stream_records().await?).await?;
    assert!(env.published()?.is_empty(), "learning: nothing announced");
    // The callers are in the summary table all the same.
    assert_eq!(env.ingest.store.scan_rows(false).await?.len(), 2);
    // Three hours later (the learning start moved back), a new caller is news
    // and the learned ones stay quiet.
    let client = env.moto.dynamodb();
    let started = client
        .get_item()
        .table_name(TABLE)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("NOTIFIER".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("LEARNING".into()),
        )
        .send()
        .await?
        .item()
        .and_then(|i| i.get("started_at"))
        .and_then(|v| v.as_n().ok())
        .context("the learning start is recorded")?
        .parse::<i64>()?;
    client
        .update_item()
        .table_name(TABLE)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("NOTIFIER".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("LEARNING".into()),
        )
        .update_expression("SET started_at = :s")
        .expression_attribute_values(
            ":s",
            aws_sdk_dynamodb::types::AttributeValue::N((started - 3 * 3600).to_string()),
        )
        .send()
        .await?;
    env.ingest(&[
        call("GetItem", "orders", "checkout"),
        call("Query", "orders", "newcomer"),
    ])
    .await?;
    let later = env.notifier(&learning, env.moto.sns())?;
    deliver(&later, &env.stream_records().await?).await?;
    let published = env.published()?;
    assert_eq!(published.len(), 1);
    assert!(published[0].about(&role("newcomer")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hourly_cap_folds_the_excess_into_one_digest() -> anyhow::Result<()> {
    let mut env = env().await?;
    let apps = ["app-1", "app-2", "app-3", "app-4", "app-5"];
    let calls: Vec<Record> = apps.iter().map(|a| call("GetItem", "orders", a)).collect();
    env.ingest(&calls).await?;
    let records = env.stream_records().await?;
    let deps = env.notifier(&[("NOTIFY_MAX_PER_HOUR", "2")], env.moto.sns())?;
    deliver(&deps, &records).await?;
    deliver(&deps, &records).await?;
    let published = env.published()?;
    assert_eq!(published.len(), 3, "two notices and one digest");
    let singles: Vec<&Published> = published
        .iter()
        .filter(|p| p.kind() == "new_caller")
        .collect();
    let digests: Vec<&Published> = published.iter().filter(|p| p.kind() == "digest").collect();
    assert_eq!((singles.len(), digests.len()), (2, 1));
    let digest = digests[0];
    assert!(
        digest
            .subject
            .starts_with("ddb-audit digest: 3 notices over the hourly limit"),
        "{}",
        digest.subject
    );
    assert_eq!(digest.attributes["kind"], r#"["digest","new_caller"]"#);
    assert_eq!(digest.attributes["table"], r#"["orders"]"#);
    assert_eq!(
        digest.json["ddb_audit"]["notices"].as_array().map(Vec::len),
        Some(3)
    );
    for app in apps {
        let mentions = published
            .iter()
            .filter(|p| p.text.contains(&role(app)))
            .count();
        assert_eq!(mentions, 1, "{app} is announced exactly once");
    }
    // The same hour, another new caller: straight into a digest.
    env.ingest(&[call("GetItem", "payments", "app-6")]).await?;
    deliver(&deps, &env.stream_records().await?).await?;
    let published = env.published()?;
    assert_eq!(published.len(), 4);
    assert_eq!(published[3].kind(), "digest");
    assert!(published[3].text.contains(&role("app-6")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_rules_silence_matching_callers_and_tables() -> anyhow::Result<()> {
    let mut env = env().await?;
    env.ingest(&[
        call("GetItem", "orders", "ci-runner"),
        call("GetItem", "scratch-42", "checkout"),
        call("GetItem", "orders", "checkout"),
    ])
    .await?;
    let deps = env.notifier(
        &[(
            "NOTIFY_IGNORE",
            "caller:arn:aws:iam::*:role/service/ci-*, table:scratch-*",
        )],
        env.moto.sns(),
    )?;
    deliver(&deps, &env.stream_records().await?).await?;
    let published = env.published()?;
    assert_eq!(published.len(), 1);
    assert!(published[0].about(&role("checkout")));
    assert_eq!(published[0].attributes["table"], "orders");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_stream_event_gives_its_three_notices_once() -> anyhow::Result<()> {
    let env = env().await?;
    let sample: Value =
        serde_json::from_slice(&std::fs::read(event_file("notifier/dynamodb-stream.json"))?)?;
    let records = sample["Records"].as_array().context("Records")?.clone();
    let deps = env.notifier(&[], env.moto.sns())?;
    for _ in 0..2 {
        assert!(deliver(&deps, &records)
            .await?
            .batch_item_failures
            .is_empty());
    }
    let subjects: Vec<String> = env.published()?.into_iter().map(|p| p.subject).collect();
    assert_eq!(
        subjects,
        [
            "New caller on orders (111122223333 us-east-1)",
            "New caller denied on payments (111122223333 us-east-1)",
            "Caller first denied on orders (111122223333 us-east-1)",
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_from_a_backfill_with_notices_off_are_history_not_news() -> anyhow::Result<()> {
    let mut env = env().await?;
    let covers_until = ddb_audit_tests::unix("2024-03-16T00:00:00Z");
    env.ingest
        .store
        .put_backfill_marker(&ddb_audit_aws::store::BackfillMarker {
            id: "2024-03-21T09:12:40Z-test".into(),
            source: format!("s3://{BUCKET}/AWSLogs/"),
            notify: false,
            covers_until,
            started_at: covers_until,
            finished_at: None,
            status: "running".into(),
            objects: 0,
            records: 0,
        })
        .await?;
    env.ingest(&[
        call("GetItem", "orders", "old-app"),
        call("GetItem", "orders", "new-app").at("2024-03-17T08:00:00Z"),
    ])
    .await?;
    let deps = env.notifier(&[], env.moto.sns())?;
    deliver(&deps, &env.stream_records().await?).await?;
    let published = env.published()?;
    assert_eq!(published.len(), 1);
    assert!(published[0].about(&role("new-app")));
    Ok(())
}
