//! The sample inputs under `events/` (shared by these tests, the demo and
//! `cargo lambda invoke`): the three forms of the sample trail agree with each
//! other and with `records.json`, and they hold the rows listed below.

use anyhow::{ensure, Context, Result};
use ddb_audit_core::attribute::Rules;
use ddb_audit_core::caller::CallerType;
use ddb_audit_core::decode;
use ddb_audit_core::input::{InputKind, InputReader, Limits, LogsBatch};
use ddb_audit_core::rollup::Batch;
use ddb_audit_tests::{
    event_file, keys, row, unix, ACCOUNT, OTHER_ACCOUNT, REGION, SAMPLE_SECRETS,
};
use serde_json::Value;

const RECORDS: &str = "cloudtrail/records.json";
const TRAIL_FILE: &str =
    "cloudtrail/111122223333_CloudTrail_us-east-1_20240315T1205Z_sample.json.gz";
const LOGS_DATA: &str = "logs-ingest/cloudwatch-logs-subscription.json";
const LOGS_CONTROL: &str = "logs-ingest/cloudwatch-logs-control.json";
const LOGS_LATER: &str = "logs-ingest/cloudwatch-logs-later.json";

/// Records in the sample, DynamoDB calls among them, and the rest (s3, kms, sts).
const SAMPLE_RECORDS: u64 = 28;
const SAMPLE_CALLS: u64 = 25;
const SAMPLE_OTHERS: u64 = 3;

fn bytes(relative: &str) -> Result<Vec<u8>> {
    let path = event_file(relative);
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

fn read_alone(relative: &str) -> Result<(InputKind, Batch)> {
    let mut reader = InputReader::new(Rules::default(), Limits::default());
    Ok(reader.read(relative, &bytes(relative)?)?)
}

fn json(bytes: &[u8]) -> Result<Value> {
    Ok(serde_json::from_slice(bytes)?)
}

/// The `awslogs.data` payload of a subscription event, decoded.
fn awslogs_payload(relative: &str) -> Result<Value> {
    let event = json(&bytes(relative)?)?;
    let data = event["awslogs"]["data"]
        .as_str()
        .context("awslogs.data is a string")?;
    let compressed = decode::base64_decode(data)?;
    ensure!(decode::is_gzip(&compressed), "awslogs.data is gzip");
    json(&decode::decode(
        &compressed,
        decode::DEFAULT_MAX_DECOMPRESSED,
    )?)
}

fn sample_records() -> Result<Vec<Value>> {
    let file = json(&bytes(RECORDS)?)?;
    file["Records"]
        .as_array()
        .cloned()
        .context("records.json has a Records array")
}

#[test]
fn the_three_sample_forms_decode_to_the_same_rollups() -> Result<()> {
    let (plain_kind, plain) = read_alone(RECORDS)?;
    let (gz_kind, gz) = read_alone(TRAIL_FILE)?;
    let (logs_kind, logs) = read_alone(LOGS_DATA)?;

    assert_eq!(plain_kind, InputKind::CloudTrailFile);
    assert_eq!(gz_kind, InputKind::CloudTrailFile);
    let InputKind::LogsData(batch) = logs_kind else {
        panic!("the subscription sample is a DATA_MESSAGE, got {logs_kind:?}");
    };
    assert_eq!(
        (
            batch.owner.as_str(),
            batch.log_group.as_str(),
            batch.log_stream.as_str()
        ),
        (
            ACCOUNT,
            "aws-cloudtrail-logs-111122223333",
            "111122223333_CloudTrail_us-east-1"
        )
    );
    assert_eq!(batch.events, SAMPLE_RECORDS);
    assert_ne!(batch.first_event_id, batch.last_event_id);

    for (name, other) in [("json.gz", &gz), ("subscription", &logs)] {
        assert_eq!(plain.counts, other.counts, "{name}");
        assert_eq!(plain.lifetime, other.lifetime, "{name}");
        assert_eq!(plain.daily, other.daily, "{name}");
        assert!(other.problems.is_empty(), "{name}: {:?}", other.problems);
    }
    assert!(plain.problems.is_empty(), "{:?}", plain.problems);
    assert_eq!(plain.counts.records_in, SAMPLE_RECORDS);
    assert_eq!(plain.counts.attributed, SAMPLE_CALLS);
    assert_eq!(plain.counts.skipped_total(), SAMPLE_OTHERS);
    assert!(plain.counts.balances());
    Ok(())
}

#[test]
fn one_reader_counts_each_event_id_once_across_the_samples() -> Result<()> {
    let (_, alone) = read_alone(RECORDS)?;
    let mut reader = InputReader::new(Rules::default(), Limits::default());
    let mut total = Batch::default();
    for (i, relative) in [LOGS_DATA, TRAIL_FILE, RECORDS].into_iter().enumerate() {
        let (_, batch) = reader.read(relative, &bytes(relative)?)?;
        assert_eq!(batch.counts.records_in, SAMPLE_RECORDS, "{relative}");
        assert_eq!(
            batch.counts.skipped.get("not_dynamodb").copied(),
            Some(SAMPLE_OTHERS),
            "{relative}"
        );
        if i == 0 {
            assert_eq!(batch.counts.attributed, SAMPLE_CALLS);
        } else {
            assert_eq!(batch.counts.attributed, 0, "{relative}");
            assert_eq!(
                batch.counts.skipped.get("duplicate_event").copied(),
                Some(SAMPLE_CALLS),
                "{relative}"
            );
            assert!(batch.lifetime.is_empty(), "{relative}");
        }
        assert!(batch.counts.balances(), "{relative}: {}", batch.counts);
        total.merge(batch);
    }
    assert_eq!(total.lifetime, alone.lifetime);
    assert_eq!(total.daily, alone.daily);
    assert_eq!(total.counts.attributed, SAMPLE_CALLS);
    Ok(())
}

#[test]
fn control_message_is_acknowledged_with_no_records() -> Result<()> {
    let (kind, batch) = read_alone(LOGS_CONTROL)?;
    assert_eq!(kind, InputKind::LogsControl);
    assert_eq!(batch.counts.records_in, 0);
    assert!(batch.lifetime.is_empty() && batch.daily.is_empty() && batch.problems.is_empty());
    Ok(())
}

#[test]
fn generated_samples_match_records_json() -> Result<()> {
    const RERUN: &str = "events/ is stale: run `python3 events/generate.py`";
    let records = sample_records()?;
    assert_eq!(records.len() as u64, SAMPLE_RECORDS);

    // The S3 form: records.json, compact and gzip.
    let gz = bytes(TRAIL_FILE)?;
    assert!(decode::is_gzip(&gz), "{TRAIL_FILE} is gzip");
    let file = json(&decode::decode(&gz, decode::DEFAULT_MAX_DECOMPRESSED)?)?;
    assert_eq!(file["Records"].as_array(), Some(&records), "{RERUN}");

    // The CloudWatch Logs form: one log event per record, in order.
    let payload = awslogs_payload(LOGS_DATA)?;
    assert_eq!(payload["messageType"], "DATA_MESSAGE");
    assert_eq!(payload["owner"], ACCOUNT);
    assert_eq!(payload["logGroup"], "aws-cloudtrail-logs-111122223333");
    assert_eq!(payload["logStream"], "111122223333_CloudTrail_us-east-1");
    assert_eq!(
        payload["subscriptionFilters"].as_array().map(Vec::len),
        Some(1)
    );
    let events = payload["logEvents"].as_array().context("logEvents")?;
    assert_eq!(events.len(), records.len(), "{RERUN}");
    let mut ids = Vec::new();
    for (event, record) in events.iter().zip(&records) {
        let message = event["message"].as_str().context("message is a string")?;
        assert_eq!(&json(message.as_bytes())?, record, "{RERUN}");
        let time = record["eventTime"].as_str().context("eventTime")?;
        assert_eq!(
            event["timestamp"].as_i64(),
            Some(unix(time) * 1000),
            "{RERUN}"
        );
        let id = event["id"].as_str().context("id is a string")?;
        assert!(
            id.len() == 56 && id.bytes().all(|b| b.is_ascii_digit()),
            "{id}"
        );
        ids.push(id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "log event ids ascend");

    let control = awslogs_payload(LOGS_CONTROL)?;
    assert_eq!(control["messageType"], "CONTROL_MESSAGE");
    assert_eq!(control["owner"], "CloudwatchLogs");
    Ok(())
}

/// The later batch `make demo` feeds to logs-ingest is later/records.json,
/// one log event per record, and it holds a caller the sample file has not.
#[test]
fn later_logs_batch_matches_its_records_and_brings_a_new_caller() -> Result<()> {
    const RERUN: &str = "events/ is stale: run `python3 events/generate.py`";
    let later = json(&bytes("later/records.json")?)?;
    let records = later["Records"].as_array().context("Records")?;
    let payload = awslogs_payload(LOGS_LATER)?;
    let messages: Vec<Value> = payload["logEvents"]
        .as_array()
        .context("logEvents")?
        .iter()
        .map(|event| json(event["message"].as_str().unwrap_or_default().as_bytes()))
        .collect::<Result<_>>()?;
    assert_eq!(&messages, records, "{RERUN}");

    let (kind, batch) = read_alone(LOGS_LATER)?;
    assert!(matches!(kind, InputKind::LogsData(_)), "{kind:?}");
    assert!(batch.problems.is_empty(), "{:?}", batch.problems);
    let (_, sample) = read_alone(TRAIL_FILE)?;
    let callers = |batch: &Batch| -> std::collections::BTreeSet<String> {
        batch
            .lifetime
            .keys()
            .map(|key| {
                format!(
                    "{}|{}",
                    key.table.as_deref().unwrap_or_default(),
                    key.caller
                )
            })
            .collect()
    };
    let new: Vec<String> = callers(&batch)
        .difference(&callers(&sample))
        .cloned()
        .collect();
    assert!(
        new.contains(&"orders|arn:aws:iam::111122223333:role/reporting-export".to_owned()),
        "{new:?}"
    );
    Ok(())
}

/// (table account, table, caller, caller type, [calls, reads, writes, errors])
type ExpectedRow = (
    &'static str,
    Option<&'static str>,
    String,
    CallerType,
    [u64; 4],
);

#[test]
fn sample_holds_the_expected_rows() -> Result<()> {
    let (_, batch) = read_alone(RECORDS)?;
    let iam = |rest: &str| format!("arn:aws:iam::{ACCOUNT}:{rest}");
    let app = iam("role/service/orders-api");
    let alice = format!(
        "arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_DataEngineer_5d2c8b1e9f3a7c40/alice@example.com"
    );
    let reporting = iam("user/reporting-batch");
    let maria = iam("user/ops/maria.garcia");
    let fulfil = iam("role/fulfilment-worker");
    let glue = "service:glue.amazonaws.com".to_owned();
    let idc = "identitycenter:94482488-3041-7026-18f3-be45837cd0e4".to_owned();

    let expected: Vec<ExpectedRow> = vec![
        (
            ACCOUNT,
            Some("orders"),
            app.clone(),
            CallerType::AssumedRole,
            [9, 4, 5, 1],
        ),
        (
            ACCOUNT,
            Some("customers"),
            app.clone(),
            CallerType::AssumedRole,
            [2, 2, 0, 0],
        ),
        (
            ACCOUNT,
            Some("inventory"),
            app.clone(),
            CallerType::AssumedRole,
            [1, 0, 1, 0],
        ),
        (
            ACCOUNT,
            Some("customers"),
            alice.clone(),
            CallerType::AssumedRole,
            [2, 2, 0, 0],
        ),
        (
            ACCOUNT,
            Some("orders"),
            reporting.clone(),
            CallerType::IamUser,
            [2, 2, 0, 0],
        ),
        (
            ACCOUNT,
            Some("orders"),
            glue,
            CallerType::AwsService,
            [1, 0, 0, 0],
        ),
        (
            ACCOUNT,
            Some("customers"),
            idc,
            CallerType::IdentityCenterUser,
            [1, 1, 0, 0],
        ),
        (
            ACCOUNT,
            Some("audit-log"),
            iam("role/audit-writer"),
            CallerType::AssumedRole,
            [1, 0, 1, 0],
        ),
        (
            ACCOUNT,
            Some("inventory"),
            fulfil.clone(),
            CallerType::AssumedRole,
            [2, 1, 2, 0],
        ),
        (
            ACCOUNT,
            Some("orders"),
            fulfil.clone(),
            CallerType::AssumedRole,
            [1, 0, 1, 0],
        ),
        (
            ACCOUNT,
            Some("audit-log"),
            fulfil,
            CallerType::AssumedRole,
            [1, 0, 1, 0],
        ),
        (
            OTHER_ACCOUNT,
            Some("shared-catalog"),
            iam("role/catalog-sync"),
            CallerType::AssumedRole,
            [1, 1, 0, 0],
        ),
        (
            ACCOUNT,
            Some("orders"),
            iam("role/orders-stream-processor"),
            CallerType::AssumedRole,
            [2, 2, 0, 0],
        ),
        (
            ACCOUNT,
            Some("inventory"),
            maria.clone(),
            CallerType::IamUser,
            [1, 0, 0, 0],
        ),
        (
            ACCOUNT,
            Some("audit-log"),
            maria.clone(),
            CallerType::IamUser,
            [1, 0, 0, 0],
        ),
        (ACCOUNT, None, maria, CallerType::IamUser, [1, 0, 0, 0]),
        (
            ACCOUNT,
            Some("customers"),
            iam("role/marketing-export"),
            CallerType::AssumedRole,
            [1, 1, 0, 1],
        ),
    ];
    for (account, table, caller, kind, [calls, reads, writes, errors]) in &expected {
        let r = row(&batch, account, REGION, *table, caller)
            .with_context(|| format!("no row {account} {table:?} {caller}: {:#?}", keys(&batch)))?;
        assert_eq!(
            (r.caller_type, r.calls, r.reads, r.writes, r.errors),
            (*kind, *calls, *reads, *writes, *errors),
            "{table:?} {caller}"
        );
    }
    assert_eq!(batch.lifetime.len(), expected.len(), "{:#?}", keys(&batch));

    // The application role: three sessions, two UTC days, one caller.
    let orders = row(&batch, ACCOUNT, REGION, Some("orders"), &app).context("orders row")?;
    assert_eq!(orders.first_seen, unix("2024-03-14T23:58:41Z"));
    assert_eq!(orders.last_seen, unix("2024-03-15T12:04:02Z"));
    assert_eq!(orders.indexes.get("byCustomer"), Some(1));
    assert_eq!(
        orders.vpc_endpoints.iter().collect::<Vec<_>>(),
        ["vpce-0a1b2c3d4e5f67890"]
    );
    assert_eq!(orders.user_agents.get("aws-sdk-java/2.x"), Some(9));
    assert_eq!(batch.daily.len(), expected.len() + 1);

    let person = row(&batch, ACCOUNT, REGION, Some("customers"), &alice).context("alice")?;
    assert!(person.person);
    assert_eq!(person.user_agents.get("console"), Some(2));
    let reports = row(&batch, ACCOUNT, REGION, Some("orders"), &reporting).context("reporting")?;
    assert_eq!(reports.indexes.get("byCustomer"), Some(1));
    let denied = row(
        &batch,
        ACCOUNT,
        REGION,
        Some("customers"),
        &iam("role/marketing-export"),
    )
    .context("marketing-export")?;
    assert_eq!(denied.denied, 1);
    Ok(())
}

#[test]
fn sample_secrets_never_come_out_of_the_core() -> Result<()> {
    let raw = String::from_utf8(bytes(RECORDS)?)?;
    for secret in SAMPLE_SECRETS {
        assert!(raw.contains(secret), "the sample should hold {secret}");
    }
    for relative in [RECORDS, TRAIL_FILE, LOGS_DATA] {
        let (kind, batch) = read_alone(relative)?;
        let seen = format!("{kind:?} {batch:?} {}", batch.counts);
        for secret in SAMPLE_SECRETS {
            assert!(!seen.contains(secret), "{relative}: {secret} came out");
        }
    }
    Ok(())
}

#[test]
fn logs_batch_names_its_first_and_last_log_events() -> Result<()> {
    let payload = awslogs_payload(LOGS_DATA)?;
    let events = payload["logEvents"].as_array().context("logEvents")?;
    let (kind, _) = read_alone(LOGS_DATA)?;
    let id = |i: usize| events[i]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        kind,
        InputKind::LogsData(LogsBatch {
            owner: ACCOUNT.to_owned(),
            log_group: "aws-cloudtrail-logs-111122223333".to_owned(),
            log_stream: "111122223333_CloudTrail_us-east-1".to_owned(),
            first_event_id: id(0),
            last_event_id: id(events.len() - 1),
            events: SAMPLE_RECORDS,
        })
    );
    Ok(())
}
