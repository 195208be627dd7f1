//! Invariants over generated batches (DESIGN.md sections 2 and 5), checked
//! with `proptest` on a bounded number of cases so that `make test` stays fast:
//!
//! - records in = attributed + skipped + malformed, for any mix of good and
//!   bad records, in a CloudTrail file and in a CloudWatch Logs batch;
//! - folding two halves of a batch and merging them equals folding the whole;
//! - the summary-table write plan of a batch does not depend on the order of
//!   its records.

use ddb_audit_core::attribute::Rules;
use ddb_audit_core::input::{InputReader, Limits};
use ddb_audit_core::rollup::Batch;
use ddb_audit_core::row::Row;
use ddb_audit_core::summary::{plan, Retention};
use ddb_audit_tests::{identity, logs_event, trail_file, Record, ACCOUNT, OTHER_ACCOUNT};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};

/// Cases per property: enough to shake out order and mix bugs, few enough
/// for `make test`.
const CASES: u32 = 64;

/// One good DynamoDB call, as a small recipe turned into a realistic record.
#[derive(Debug, Clone)]
struct Call {
    shape: u8,
    table: u8,
    caller: u8,
    day: u8,
    second: u32,
    source: u8,
    agent: u8,
    error: u8,
}

const TABLES: &[&str] = &["orders", "inventory", "audit-log", "customers"];
const AGENTS: &[&str] = &[
    "aws-sdk-java/2.25.16 Linux/5.10.210 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10",
    "Boto3/1.34.64 md/Botocore#1.34.64 ua/2.0 os/linux#5.10 lang/python#3.12.2",
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/macos#23.4.0 md/arch#arm64 lang/python#3.11.8",
    "aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
];

fn call() -> impl Strategy<Value = Call> {
    (
        0u8..9,
        0u8..4,
        0u8..6,
        0u8..3,
        0u32..86_400,
        0u8..12,
        0u8..5,
        0u8..6,
    )
        .prop_map(
            |(shape, table, caller, day, second, source, agent, error)| Call {
                shape,
                table,
                caller,
                day,
                second,
                source,
                agent,
                error,
            },
        )
}

impl Call {
    fn record(&self) -> Record {
        let table = TABLES[usize::from(self.table)];
        let other = TABLES[usize::from(self.table + 1) % TABLES.len()];
        let record = match self.shape {
            0 => Record::on("GetItem", table),
            1 => Record::on("PutItem", table),
            2 => Record::new("Query").params(json!({
                "tableName": table, "indexName": "by-customer",
                "keyConditionExpression": "customerId = :c",
            })),
            3 => Record::new("BatchWriteItem").params(json!({
                "requestItems": {table: [{"putRequest": {"item": {"pk": "a"}}}], other: []},
            })),
            4 => Record::new("TransactWriteItems").params(json!({"transactItems": [
                {"put": {"tableName": table, "item": {"pk": "a"}}},
                {"conditionCheck": {"tableName": other, "key": {"pk": "b"}}},
            ]})),
            5 => Record::new("ExecuteStatement").params(json!({
                "statement": format!("SELECT * FROM \"{table}\".\"by-customer\" WHERE pk = 'x'"),
            })),
            6 => Record::new("ListTables"),
            // Cross-account access by table ARN.
            7 => Record::on(
                "UpdateItem",
                &format!("arn:aws:dynamodb:eu-west-1:{OTHER_ACCOUNT}:table/{table}"),
            ),
            _ => Record::on("DescribeTable", table),
        };
        let identity = match self.caller {
            0 => identity::app_role("orders-api", "task-0001"),
            1 => identity::app_role("orders-api", "task-0002"),
            2 => identity::app_role("billing", "lambda"),
            3 => identity::sso("AdministratorAccess", "alice@example.com"),
            4 => identity::iam_user("deploy-bot"),
            _ => identity::aws_service("glue.amazonaws.com"),
        };
        let time = format!(
            "2024-03-{:02}T{:02}:{:02}:{:02}Z",
            14 + self.day,
            self.second / 3600,
            self.second / 60 % 60,
            self.second % 60
        );
        let record = record
            .identity(identity)
            .at(&time)
            .agent(AGENTS[usize::from(self.agent)])
            .set("sourceIPAddress", json!(format!("192.0.2.{}", self.source)));
        let record = if self.source.is_multiple_of(4) {
            record.set("vpcEndpointId", json!(format!("vpce-0{}", self.source)))
        } else {
            record
        };
        match self.error {
            0 => record.error("AccessDeniedException"),
            1 => record.error("ConditionalCheckFailedException"),
            _ => record,
        }
    }
}

/// One entry of a mixed batch.
#[derive(Debug, Clone)]
enum Entry {
    /// Attributed.
    Good(Call),
    /// Skipped: not a DynamoDB event.
    NotDynamoDb(Call),
    /// Skipped: the same eventID as the nearest good record before it.
    Duplicate,
    /// Malformed: one required field missing.
    Missing(Call, u8),
    /// Malformed: a field of the wrong JSON type.
    WrongType(Call),
    /// Malformed: `eventTime` is not RFC 3339.
    BadTime(Call),
    /// Malformed: JSON, but not an object (or an object that is no record).
    NotARecord(Value),
    /// Malformed: not JSON at all (log events only).
    Garbage(String),
}

const REQUIRED: &[&str] = &[
    "eventSource",
    "eventName",
    "eventID",
    "eventTime",
    "recipientAccountId",
    "awsRegion",
];

fn not_a_record() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        "[a-z ]{0,12}".prop_map(Value::from),
        Just(Value::Null),
        prop::collection::vec(any::<bool>(), 0..3).prop_map(Value::from),
        // Keys in lower case only: never `eventSource`.
        prop::collection::btree_map("[a-z]{1,8}", any::<u32>(), 0..4).prop_map(|m| json!(m)),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        4 => call().prop_map(Entry::Good),
        1 => call().prop_map(Entry::NotDynamoDb),
        1 => Just(Entry::Duplicate),
        1 => (call(), 0u8..6).prop_map(|(c, f)| Entry::Missing(c, f)),
        1 => call().prop_map(Entry::WrongType),
        1 => call().prop_map(Entry::BadTime),
        1 => not_a_record().prop_map(Entry::NotARecord),
        1 => "[^{]\\PC{0,20}".prop_map(Entry::Garbage),
    ]
}

/// What a mix must count.
#[derive(Debug, Default, PartialEq, Eq)]
struct Expected {
    records_in: u64,
    attributed: u64,
    not_dynamodb: u64,
    duplicates: u64,
    malformed: u64,
}

/// The log messages of a mix and what they must count. With `file`, garbage
/// (which would make a whole CloudTrail file unreadable) is left out.
fn messages(entries: &[Entry], file: bool) -> (Vec<Value>, Vec<String>, Expected) {
    let mut values = Vec::new();
    let mut texts = Vec::new();
    let mut expected = Expected::default();
    let mut last_good: Option<Record> = None;
    for entry in entries {
        let (value, text) = match entry {
            Entry::Good(call) => {
                let record = call.record();
                expected.attributed += 1;
                last_good = Some(record.clone());
                (Some(record.json().clone()), record.text())
            }
            Entry::Duplicate => match &last_good {
                Some(record) => {
                    expected.duplicates += 1;
                    (Some(record.json().clone()), record.text())
                }
                None => continue,
            },
            Entry::NotDynamoDb(call) => {
                let record = call.record().set("eventSource", json!("s3.amazonaws.com"));
                expected.not_dynamodb += 1;
                (Some(record.json().clone()), record.text())
            }
            Entry::Missing(call, field) => {
                let record = call.record().without(REQUIRED[usize::from(*field)]);
                expected.malformed += 1;
                (Some(record.json().clone()), record.text())
            }
            Entry::WrongType(call) => {
                let record = call.record().set("userIdentity", json!(42));
                expected.malformed += 1;
                (Some(record.json().clone()), record.text())
            }
            Entry::BadTime(call) => {
                let record = call.record().at("15/03/2024 12:00");
                expected.malformed += 1;
                (Some(record.json().clone()), record.text())
            }
            Entry::NotARecord(value) => {
                expected.malformed += 1;
                (Some(value.clone()), value.to_string())
            }
            Entry::Garbage(text) if !file => {
                expected.malformed += 1;
                (None, text.clone())
            }
            Entry::Garbage(_) => continue,
        };
        expected.records_in += 1;
        values.extend(value);
        texts.push(text);
    }
    (values, texts, expected)
}

fn counted(batch: &Batch) -> Expected {
    let c = &batch.counts;
    let skipped = |reason: &str| c.skipped.get(reason).copied().unwrap_or(0);
    Expected {
        records_in: c.records_in,
        attributed: c.attributed,
        not_dynamodb: skipped("not_dynamodb"),
        duplicates: skipped("duplicate_event"),
        malformed: c.malformed_total(),
    }
}

fn reader() -> InputReader {
    InputReader::new(Rules::default(), Limits::default())
}

/// Reads one CloudTrail file of the given records with a fresh reader.
fn fold(records: &[Record]) -> Batch {
    let (_, batch) = reader()
        .read("prop.json", &trail_file(records))
        .expect("a built trail file is readable");
    batch
}

/// Lifetime and daily rows, sorted, as users see them.
fn rows(batch: &Batch) -> (Vec<Row>, Vec<Row>) {
    let mut lifetime: Vec<Row> = batch
        .lifetime
        .iter()
        .map(|(k, r)| Row::lifetime(k, r))
        .collect();
    let mut daily: Vec<Row> = batch.daily.iter().map(|(k, r)| Row::daily(k, r)).collect();
    let order = |r: &Row| {
        (
            r.account.clone(),
            r.region.clone(),
            r.table.clone(),
            r.caller.clone(),
            r.day.clone(),
        )
    };
    lifetime.sort_by_key(order);
    daily.sort_by_key(order);
    (lifetime, daily)
}

/// Good calls with a split point inside them.
fn calls_and_split() -> impl Strategy<Value = (Vec<Call>, usize)> {
    prop::collection::vec(call(), 1..40).prop_flat_map(|calls| {
        let n = calls.len();
        (Just(calls), 0..=n)
    })
}

/// Good calls, some of them repeated verbatim (a redelivery), and a
/// reordering of the whole.
fn calls_and_order() -> impl Strategy<Value = (Vec<Call>, Vec<usize>, Vec<usize>)> {
    prop::collection::vec(call(), 1..40)
        .prop_flat_map(|calls| {
            let n = calls.len();
            (Just(calls), prop::collection::vec(0..n, 0..4))
        })
        .prop_flat_map(|(calls, repeats)| {
            let all = calls.len() + repeats.len();
            (
                Just(calls),
                Just(repeats),
                Just((0..all).collect::<Vec<_>>()).prop_shuffle(),
            )
        })
}

proptest! {
    #![proptest_config(Config::with_cases(CASES))]

    #[test]
    fn every_record_is_counted_once_in_a_cloudtrail_file(entries in prop::collection::vec(entry(), 0..40)) {
        let (values, _, expected) = messages(&entries, true);
        let file = json!({ "Records": values }).to_string();
        let (_, batch) = reader().read("mix.json", file.as_bytes()).expect("readable");
        prop_assert!(batch.counts.balances(), "{}", batch.counts);
        prop_assert_eq!(counted(&batch), expected);
    }

    #[test]
    fn every_record_is_counted_once_in_a_cloudwatch_logs_batch(entries in prop::collection::vec(entry(), 0..40)) {
        let (_, texts, expected) = messages(&entries, false);
        let (_, batch) = reader().read("mix", &logs_event(&texts)).expect("readable");
        prop_assert!(batch.counts.balances(), "{}", batch.counts);
        prop_assert_eq!(counted(&batch), expected);
    }

    #[test]
    fn folding_two_halves_and_merging_equals_folding_the_whole((calls, split) in calls_and_split()) {
        let records: Vec<Record> = calls.iter().map(Call::record).collect();
        let whole = fold(&records);
        let mut halves = fold(&records[..split]);
        halves.merge(fold(&records[split..]));
        prop_assert_eq!(&halves.counts, &whole.counts);
        let (whole_lifetime, whole_daily) = rows(&whole);
        let (lifetime, daily) = rows(&halves);
        prop_assert_eq!(lifetime, whole_lifetime);
        prop_assert_eq!(daily, whole_daily);
    }

    #[test]
    fn the_write_plan_does_not_depend_on_record_order((calls, repeats, order) in calls_and_order()) {
        let mut records: Vec<Record> = calls.iter().map(Call::record).collect();
        let redelivered: Vec<Record> = repeats.iter().map(|&i| records[i].clone()).collect();
        records.extend(redelivered);
        let reordered: Vec<Record> = order.iter().map(|&i| records[i].clone()).collect();
        let retention = Retention { daily_days: 90 };
        let source = format!("s3://trail-bucket/AWSLogs/{ACCOUNT}/x.json.gz#etag");
        let first = plan(&source, &fold(&records), retention);
        let second = plan(&source, &fold(&reordered), retention);
        prop_assert!(first.rollup_keys() > 0);
        prop_assert_eq!(first, second);
    }
}
