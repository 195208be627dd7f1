//! One count per CloudTrail event in the deployments users run: the same
//! objects announced by every trigger a trail bucket can have, twice each,
//! in every pair, then backfilled, then backfilled again after the ledger's
//! usual lifetime has passed, end with every rollup equal to what `analyze`
//! says of the same files. Organisation-layout keys, a versioned bucket and
//! SSE-KMS objects throughout.

use std::collections::HashMap;

use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::types::{BucketVersioningStatus, ServerSideEncryption, VersioningConfiguration};
use ddb_audit_aws::ingest::{handle_logs, ingest_s3, Deps};
use ddb_audit_core::config::Config;
use ddb_audit_core::metrics::Invocation;
use ddb_audit_core::row::Row;
use ddb_audit_core::summary;
use ddb_audit_tests::moto::Moto;
use ddb_audit_tests::{
    analyze_rows, counters, gzip, identity, logs_event, test_store, trail_file, Record, ACCOUNT,
};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use tokio::runtime::Runtime;

const BUCKET: &str = "org-log-archive-trail";
const ORG: &str = "o-exampleorg1";

/// Every way an object reaches `s3-ingest` or the summary table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// An S3 event notification straight to the function, no version id.
    Direct,
    /// The same from a versioned bucket, through SQS (with `versionId`).
    DirectVersioned,
    /// EventBridge "Object Created" (with `version-id`).
    EventBridge,
    /// S3 → SNS → SQS, without raw delivery.
    SnsSqs,
    /// CloudTrail's own SNS "log file delivered" notice, through SQS.
    TrailNotice,
    /// `ddb-audit backfill` over the bucket.
    Backfill,
}

const TRIGGERS: [Trigger; 6] = [
    Trigger::Direct,
    Trigger::DirectVersioned,
    Trigger::EventBridge,
    Trigger::SnsSqs,
    Trigger::TrailNotice,
    Trigger::Backfill,
];

/// One object in the bucket, as its notifications describe it.
#[derive(Debug, Clone)]
struct Object {
    key: String,
    etag: String,
    version: String,
    size: usize,
}

struct Env {
    moto: Moto,
    rt: Runtime,
}

fn env() -> anyhow::Result<Env> {
    let moto = Moto::start()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let s3 = moto.s3();
        s3.create_bucket().bucket(BUCKET).send().await?;
        s3.put_bucket_versioning()
            .bucket(BUCKET)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await?;
        anyhow::Ok(())
    })?;
    Ok(Env { moto, rt })
}

impl Env {
    /// A fresh summary table and the ingest dependencies over it.
    fn deps(&self, table: &str, vars: &[(&str, &str)]) -> anyhow::Result<Deps> {
        let mut all: HashMap<&str, &str> = HashMap::from([("SUMMARY_TABLE", table)]);
        all.extend(vars.iter().copied());
        let config = Config::from_vars(|name| all.get(name).map(|v| (*v).to_owned()))?;
        self.rt.block_on(async {
            let store = test_store(self.moto.dynamodb(), &config);
            store.create_table().await?;
            anyhow::Ok(Deps {
                config,
                store,
                s3: self.moto.s3(),
                function: "s3-ingest",
            })
        })
    }

    /// Puts a trail file, SSE-KMS encrypted when `kms` is set.
    fn put(&self, key: &str, body: Vec<u8>, kms: bool) -> anyhow::Result<Object> {
        let size = body.len();
        let mut request = self
            .moto
            .s3()
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.into());
        if kms {
            request = request.server_side_encryption(ServerSideEncryption::AwsKms);
        }
        let put = self.rt.block_on(request.send())?;
        Ok(Object {
            key: key.to_owned(),
            etag: put.e_tag().context("no ETag")?.trim_matches('"').to_owned(),
            version: put.version_id().context("no version id")?.to_owned(),
            size,
        })
    }

    /// Delivers `objects` to `s3-ingest` as `trigger` announces them.
    fn deliver(&self, deps: &Deps, trigger: Trigger, objects: &[Object]) -> anyhow::Result<()> {
        if trigger == Trigger::Backfill {
            return self.backfill(deps);
        }
        let event = announce(trigger, objects);
        let mut inv = Invocation::default();
        let response = self
            .rt
            .block_on(ingest_s3(deps, event.to_string().as_bytes(), &mut inv))?;
        anyhow::ensure!(
            response.batch_item_failures.is_empty() && inv.failures == 0,
            "{trigger:?} failed: {}",
            inv.summary()
        );
        Ok(())
    }

    /// `ddb-audit backfill` over one member account's files in the
    /// organisation trail (the account is the table's name's suffix).
    fn backfill(&self, deps: &Deps) -> anyhow::Result<()> {
        let endpoint = self.moto.endpoint();
        let scenario: usize = deps
            .store
            .table()
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .context("table names end in their scenario")?;
        let source = format!("s3://{BUCKET}/AWSLogs/{ORG}/{}/", member(scenario));
        let argv = [
            "ddb-audit",
            "backfill",
            &source,
            "--summary-table",
            deps.store.table(),
            "--endpoint-url",
            &endpoint,
        ];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = ddb_audit_cli::run_with_aws(argv, &self.moto.sdk_config(), &mut out, &mut err);
        anyhow::ensure!(
            code == 0,
            "backfill exited {code}: {}",
            String::from_utf8_lossy(&err)
        );
        Ok(())
    }

    /// Lifetime rows, without the sampled sets.
    fn stored(&self, deps: &Deps) -> anyhow::Result<Vec<Row>> {
        Ok(counters(self.rt.block_on(deps.store.scan_rows(false))?))
    }

    /// What DynamoDB's TTL sweeper would have deleted by `at` (Unix
    /// seconds): every item whose `expires_at` is before it.
    fn sweep_expired(&self, deps: &Deps, at: i64) -> anyhow::Result<usize> {
        self.rt.block_on(async {
            let ddb = self.moto.dynamodb();
            let items = ddb
                .scan()
                .table_name(deps.store.table())
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await?;
            let mut deleted = 0;
            for item in items {
                let expires = item
                    .get(summary::EXPIRES_AT)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<i64>().ok());
                if expires.is_some_and(|e| e < at) {
                    let key: HashMap<String, AttributeValue> = item
                        .into_iter()
                        .filter(|(name, _)| name == summary::PK || name == summary::SK)
                        .collect();
                    ddb.delete_item()
                        .table_name(deps.store.table())
                        .set_key(Some(key))
                        .send()
                        .await?;
                    deleted += 1;
                }
            }
            anyhow::Ok(deleted)
        })
    }
}

/// The event `trigger` sends for `objects`.
fn announce(trigger: Trigger, objects: &[Object]) -> Value {
    let s3_record = |o: &Object, version: bool| {
        let mut object =
            json!({"key": o.key, "size": o.size, "eTag": o.etag, "sequencer": "0065F4"});
        if version && !o.version.is_empty() {
            object["versionId"] = json!(o.version);
        }
        json!({"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
               "eventTime": "2024-03-15T12:06:00.000Z", "eventName": "ObjectCreated:Put",
               "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
                      "object": object}})
    };
    let sqs = |bodies: Vec<String>| {
        let records: Vec<Value> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                json!({"messageId": format!("m-{i}"), "receiptHandle": "rh", "body": body,
                                    "eventSource": "aws:sqs", "awsRegion": "us-east-1"})
            })
            .collect();
        json!({ "Records": records })
    };
    let sns = |message: String| {
        json!({"Type": "Notification", "MessageId": "n-1", "Message": message}).to_string()
    };
    match trigger {
        Trigger::Direct => {
            json!({"Records": objects.iter().map(|o| s3_record(o, false)).collect::<Vec<_>>()})
        }
        Trigger::DirectVersioned => sqs(objects
            .iter()
            .map(|o| json!({"Records": [s3_record(o, true)]}).to_string())
            .collect()),
        // One EventBridge event per object; the test sends the first only
        // when several are given, so it delivers them one by one.
        Trigger::EventBridge => {
            let o = &objects[0];
            json!({"version": "0", "id": "e-1", "detail-type": "Object Created", "source": "aws.s3",
                   "account": ACCOUNT, "time": "2024-03-15T12:06:00Z", "region": "us-east-1",
                   "resources": [format!("arn:aws:s3:::{BUCKET}")],
                   "detail": {"version": "0", "bucket": {"name": BUCKET},
                              "object": {"key": o.key, "size": o.size, "etag": o.etag, "version-id": o.version,
                                         "sequencer": "0065F4"},
                              "reason": "PutObject"}})
        }
        Trigger::SnsSqs => sqs(objects
            .iter()
            .map(|o| sns(json!({"Records": [s3_record(o, false)]}).to_string()))
            .collect()),
        Trigger::TrailNotice => sqs(vec![sns(
            json!({"s3Bucket": BUCKET, "s3ObjectKey": objects.iter().map(|o| &o.key).collect::<Vec<_>>()})
                .to_string(),
        )]),
        Trigger::Backfill => unreachable!("backfill is not an event"),
    }
}

/// `deliver` for every object, one event per object where the trigger
/// announces one object at a time.
fn deliver_all(env: &Env, deps: &Deps, trigger: Trigger, objects: &[Object]) -> anyhow::Result<()> {
    if trigger == Trigger::EventBridge {
        for object in objects {
            env.deliver(deps, trigger, std::slice::from_ref(object))?;
        }
        return Ok(());
    }
    env.deliver(deps, trigger, objects)
}

/// The member account whose files a scenario puts in the organisation
/// trail's bucket, so each scenario's backfill lists its own files.
fn member(scenario: usize) -> String {
    format!("1111222233{scenario:02}")
}

/// An organisation trail's key for one member account's file.
fn org_key(scenario: usize, name: &str) -> String {
    let account = member(scenario);
    format!(
        "AWSLogs/{ORG}/{account}/CloudTrail/us-east-1/2024/03/15/{account}_CloudTrail_us-east-1_20240315T1205Z_{name}.json.gz"
    )
}

/// Two files of a few callers and tables; their eventIDs are their own.
fn files(scenario: usize) -> (Vec<u8>, Vec<u8>) {
    let file = |part: &str, n: usize| {
        let records: Vec<Record> = (0..n)
            .map(|i| {
                Record::on(
                    if i % 3 == 0 { "PutItem" } else { "GetItem" },
                    ["orders", "carts"][i % 2],
                )
                .identity(identity::app_role(&format!("app-{}", i % 3), "task-1"))
                .set("eventID", json!(format!("s{scenario}-{part}-{i}")))
                .at(&format!(
                    "2024-03-15T12:{:02}:{:02}Z",
                    scenario % 60,
                    i % 60
                ))
            })
            .collect();
        trail_file(&records)
    };
    (file("a", 7), file("b", 5))
}

/// Every pair of triggers (each with itself too), each delivering twice,
/// then a backfill, then the ledger's usual lifetime passing and a backfill
/// again: the rollups equal `analyze` over the files at every step.
#[test]
fn every_pair_of_triggers_twice_then_backfills_counts_each_object_once() -> anyhow::Result<()> {
    let env = env()?;
    let mut scenario = 0;
    for (i, &first) in TRIGGERS.iter().enumerate() {
        for &second in &TRIGGERS[i..] {
            scenario += 1;
            let deps = env.deps(&format!("summary-{scenario}"), &[])?;
            let (a, b) = files(scenario);
            // One plain object and one encrypted with SSE-KMS.
            let objects = [
                env.put(&org_key(scenario, "plain"), gzip(&a), false)?,
                env.put(&org_key(scenario, "kms"), gzip(&b), true)?,
            ];
            let expected = counters(analyze_rows(&[&a, &b]));
            for trigger in [first, first, second, second] {
                deliver_all(&env, &deps, trigger, &objects)
                    .with_context(|| format!("scenario {scenario}: {first:?} then {second:?}"))?;
                assert_eq!(
                    env.stored(&deps)?,
                    expected,
                    "scenario {scenario}: {first:?} then {second:?}, after {trigger:?}"
                );
            }
            env.backfill(&deps)?;
            assert_eq!(
                env.stored(&deps)?,
                expected,
                "{first:?}+{second:?}, backfill"
            );
            // Two years on, every expired item gone, the backfill again.
            let later = 86_400 * 365 * 2 + unix_now();
            env.sweep_expired(&deps, later)?;
            env.backfill(&deps)?;
            assert_eq!(
                env.stored(&deps)?,
                expected,
                "{first:?}+{second:?}: a backfill after the ledger's lifetime counted again"
            );
        }
    }
    assert_eq!(scenario, 21);
    Ok(())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An object overwritten with other content is new content; the old
/// version announced again, or the same content announced again, is not.
#[test]
fn an_overwritten_object_counts_its_new_content_once() -> anyhow::Result<()> {
    let env = env()?;
    let deps = env.deps("summary-90", &[])?;
    let (a, b) = files(90);
    let key = org_key(90, "overwritten");
    let old = env.put(&key, gzip(&a), false)?;
    env.deliver(&deps, Trigger::DirectVersioned, std::slice::from_ref(&old))?;
    let new = env.put(&key, gzip(&b), true)?;
    assert_ne!(old.etag, new.etag);
    for trigger in [
        Trigger::DirectVersioned,
        Trigger::Direct,
        Trigger::TrailNotice,
    ] {
        env.deliver(&deps, trigger, std::slice::from_ref(&new))?;
    }
    // The first version's notice again: it reads that version, applied already.
    env.deliver(&deps, Trigger::DirectVersioned, std::slice::from_ref(&old))?;
    env.deliver(&deps, Trigger::EventBridge, std::slice::from_ref(&old))?;
    assert_eq!(env.stored(&deps)?, counters(analyze_rows(&[&a, &b])));
    Ok(())
}

/// Bad input never loops and never costs the rest of the batch its counts:
/// a notice of an object that no longer exists, a key outside the trail's
/// prefix and an SNS message that is not CloudTrail's are counted, logged
/// skips beside a good object in the same SQS batch.
#[test]
fn skips_in_a_batch_are_counted_and_the_good_object_still_counts() -> anyhow::Result<()> {
    let env = env()?;
    let deps = env.deps("summary-91", &[("TRAIL_KEY_PREFIX", "AWSLogs/")])?;
    let (a, b) = files(91);
    let good = env.put(&org_key(91, "good"), gzip(&a), false)?;
    let outside = env.put("elsewhere/not-a-trail-file.json.gz", gzip(&b), false)?;
    let gone = Object {
        key: org_key(91, "deleted-before-read"),
        etag: "0123".into(),
        version: String::new(),
        size: 10,
    };
    let mut batch = announce(Trigger::DirectVersioned, &[good, outside, gone]);
    let foreign =
        json!({"Type": "Notification", "MessageId": "n-9", "Message": "Deployment finished"});
    batch["Records"].as_array_mut().context("records")?.push(
        json!({"messageId": "m-foreign", "receiptHandle": "rh", "body": foreign.to_string(),
                     "eventSource": "aws:sqs", "awsRegion": "us-east-1"}),
    );
    for _ in 0..2 {
        let mut inv = Invocation::default();
        let response = env
            .rt
            .block_on(ingest_s3(&deps, batch.to_string().as_bytes(), &mut inv))?;
        // No message is failed: none of them would read better on a retry.
        assert!(response.batch_item_failures.is_empty(), "{}", inv.summary());
        assert_eq!(inv.failures, 0);
        assert_eq!(inv.objects_skipped, 1, "the key outside the prefix");
        assert_eq!(inv.messages_skipped, 1, "the foreign SNS message");
        assert_eq!(
            inv.rejects, 1,
            "the missing object, listed by `ddb-audit rejects`"
        );
        assert_eq!(env.stored(&deps)?, counters(analyze_rows(&[&a])));
    }
    let rejects = env.rt.block_on(deps.store.rejects())?;
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].reason, "missing");
    Ok(())
}

/// The same trail through both ingest functions: each path counts every
/// event it delivers (the counts double, as docs/deploying.md says), the
/// path marks show the overlap, and a query warns on stderr.
#[test]
fn both_paths_for_one_trail_double_the_counts_and_queries_warn() -> anyhow::Result<()> {
    let env = env()?;
    let deps = env.deps("summary-92", &[])?;
    let records: Vec<Record> = (0..4)
        .map(|i| {
            Record::on("GetItem", "orders")
                .identity(identity::app_role("checkout", "t"))
                .set("eventID", json!(format!("both-{i}")))
        })
        .collect();
    let file = trail_file(&records);
    let object = env.put(&org_key(92, "both"), gzip(&file), false)?;
    env.deliver(&deps, Trigger::Direct, &[object])?;
    let marks = env.rt.block_on(deps.store.path_marks())?;
    assert_eq!(marks.len(), 1);
    assert!(!marks[0].overlapping(), "{marks:?}");

    let query = |deps: &Deps| {
        let endpoint = env.moto.endpoint();
        let argv = [
            "ddb-audit",
            "callers",
            "--summary-table",
            deps.store.table(),
            "--endpoint-url",
            &endpoint,
        ];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = ddb_audit_cli::run_with_aws(argv, &env.moto.sdk_config(), &mut out, &mut err);
        (code, String::from_utf8_lossy(&err).into_owned())
    };
    let (code, stderr) = query(&deps);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("both S3 and CloudWatch Logs"), "{stderr}");

    let messages: Vec<String> = records.iter().map(Record::text).collect();
    let event: Box<serde_json::value::RawValue> = serde_json::from_slice(&logs_event(&messages))?;
    env.rt.block_on(handle_logs(
        &deps,
        LambdaEvent::new(event, Context::default()),
    ))?;
    let marks = env.rt.block_on(deps.store.path_marks())?;
    assert!(marks[0].overlapping(), "{marks:?}");
    let rows = env.stored(&deps)?;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].calls, 8,
        "each path counts each event: 4 events, 8 calls"
    );
    let (code, stderr) = query(&deps);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("account 111122223333 region us-east-1 reaches the summary table through both S3 and CloudWatch Logs"),
        "{stderr}"
    );
    Ok(())
}
