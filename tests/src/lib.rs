//! Helpers shared by the integration tests: where the sample events and the
//! real fixtures are, and small builders for inputs.

pub mod alloc;
pub mod faults;
pub mod moto;
pub mod proxy;
pub mod stack;
pub mod stream;

use std::path::PathBuf;

use anyhow::Context as _;
use std::sync::atomic::{AtomicU64, Ordering};

use ddb_audit_aws::store::{Backoff, SummaryStore};
use ddb_audit_core::attribute::Rules;
use ddb_audit_core::config::Config;
use ddb_audit_core::input::{InputReader, Limits};
use ddb_audit_core::rollup::{Batch, Rollup, RollupKey};
use ddb_audit_core::row::Row;
use serde_json::{json, Value};

/// The account of the sample trail.
pub const ACCOUNT: &str = "111122223333";
/// Another account, owning tables reached across accounts.
pub const OTHER_ACCOUNT: &str = "444455556666";
/// The region of the sample trail.
pub const REGION: &str = "us-east-1";

/// Values in the sample events that must never come out of ddb-audit: item
/// keys as CloudTrail logs them in clear, and access key ids.
pub const SAMPLE_SECRETS: &[&str] = &[
    "cust-7781",
    "ord-55119",
    "ord-55120",
    "ord-55121",
    "ord-55122",
    "sku-40913",
    "evt-20240315-0042",
    "evt-20240315-0043",
    "evt-20240315-0044",
    "evt-20240301-0007",
    "ASIAYEXAMPLE",
    "AKIAYEXAMPLE",
];

/// A summary-table store for tests against moto: quick retries (moto
/// throttles nothing, but the fault tests do) and two requests at a time,
/// since moto copies every table for each transaction and handles one
/// request at a time, so a longer queue would wait out its timeout.
pub fn test_store(client: aws_sdk_dynamodb::Client, config: &Config) -> SummaryStore {
    SummaryStore::new(
        client,
        &config.summary_table,
        config.ledger_ttl_days,
        config.reject_ttl_days,
    )
    .with_backoff(Backoff {
        attempts: 20,
        base: std::time::Duration::from_millis(5),
        cap: std::time::Duration::from_millis(200),
    })
    .with_concurrency(2)
}

/// Puts `body` at `key` in `bucket`, as CloudTrail delivers a file; returns
/// the object's ETag.
pub async fn put_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> anyhow::Result<String> {
    let put = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .with_context(|| format!("putting {key:?} in {bucket}"))?;
    Ok(put.e_tag().unwrap_or_default().to_owned())
}

/// What `analyze` says of CloudTrail inputs: the lifetime rows, in the
/// order the store lists them (account, region, table, caller).
pub fn analyze_rows(inputs: &[&[u8]]) -> Vec<Row> {
    let mut reader = InputReader::new(Rules::default(), Limits::default());
    let mut all = Batch::default();
    for input in inputs {
        let (_, batch) = reader
            .read("expected", input)
            .expect("test input is readable");
        all.merge(batch);
    }
    let mut rows: Vec<Row> = all
        .lifetime
        .iter()
        .map(|(k, r)| Row::lifetime(k, r))
        .collect();
    rows.sort_by(|a, b| {
        (&a.account, &a.region, &a.table, &a.caller)
            .cmp(&(&b.account, &b.region, &b.table, &b.caller))
    });
    rows
}

/// The rows with the sampled sets left out (the summary table keeps a few
/// more than `analyze` prints).
pub fn counters(rows: Vec<Row>) -> Vec<Row> {
    rows.into_iter()
        .map(|mut r| {
            r.source_ips.clear();
            r.vpc_endpoints.clear();
            r.invoked_by.clear();
            r
        })
        .collect()
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The folder of real, sanitized CloudTrail records (`DDB_AUDIT_FIXTURES`, by
/// default `../shared/fixtures` beside the checkout), or `None` when it is not
/// there: a plain clone has no such folder, and its tests must still pass.
///
/// When it is missing, `test` is named on the terminal as not run (written
/// to the process's standard error directly, so that the test harness does not
/// swallow it as it swallows a passing test's `eprintln!`). With
/// `DDB_AUDIT_REQUIRE_FIXTURES=1` (CI, which has the folder) a missing folder
/// fails the test instead.
pub fn real_fixtures(test: &str) -> Option<PathBuf> {
    use std::io::Write as _;
    let folder = std::env::var_os("DDB_AUDIT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/fixtures"));
    if folder.is_dir() {
        return Some(folder);
    }
    if std::env::var("DDB_AUDIT_REQUIRE_FIXTURES").is_ok_and(|v| v == "1") {
        panic!(
            "{}: no fixtures folder, and DDB_AUDIT_REQUIRE_FIXTURES=1",
            folder.display()
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "NOT RUN: {test} on the real fixtures: {} not found (set DDB_AUDIT_FIXTURES)",
        folder.display()
    );
    None
}

/// A file under `events/`.
pub fn event_file(relative: &str) -> PathBuf {
    workspace_root().join("events").join(relative)
}

/// Gzips bytes the way CloudTrail does.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// Standard base64 with padding, as CloudWatch Logs encodes `awslogs.data`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A CloudWatch Logs subscription event (`{"awslogs":{"data":...}}`) whose
/// `DATA_MESSAGE` carries one log event per message, as given.
pub fn logs_event(messages: &[String]) -> Vec<u8> {
    let events: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"id": format!("{:056}", i + 1), "timestamp": 1_710_504_000_000u64 + i as u64, "message": m}))
        .collect();
    let payload = json!({
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": format!("aws-cloudtrail-logs-{ACCOUNT}"),
        "logStream": format!("{ACCOUNT}_CloudTrail_{REGION}"),
        "subscriptionFilters": ["ddb-audit-logs-ingest"],
        "logEvents": events,
    });
    awslogs(&gzip(payload.to_string().as_bytes()))
}

/// Wraps (already compressed) bytes as a subscription event's `awslogs.data`.
pub fn awslogs(compressed: &[u8]) -> Vec<u8> {
    json!({"awslogs": {"data": base64(compressed)}})
        .to_string()
        .into_bytes()
}

/// A CloudTrail file, `{"Records": [...]}`, uncompressed.
pub fn trail_file(records: &[Record]) -> Vec<u8> {
    let records: Vec<&Value> = records.iter().map(Record::json).collect();
    json!({ "Records": records }).to_string().into_bytes()
}

/// Reads records as one CloudTrail file with default rules and limits.
pub fn read(records: &[Record]) -> Batch {
    read_with(Rules::default(), records)
}

/// Reads records as one CloudTrail file with the given rules.
pub fn read_with(rules: Rules, records: &[Record]) -> Batch {
    let mut reader = InputReader::new(rules, Limits::default());
    let (_, batch) = reader
        .read("test.json", &trail_file(records))
        .expect("a built trail file is readable");
    assert!(batch.counts.balances(), "{}", batch.counts);
    batch
}

/// The lifetime row of (account, region, table, caller), if there is one.
pub fn row<'b>(
    batch: &'b Batch,
    account: &str,
    region: &str,
    table: Option<&str>,
    caller: &str,
) -> Option<&'b Rollup> {
    batch
        .lifetime
        .get(&RollupKey::new(account, region, table, caller))
}

/// The lifetime row of a table in the sample account and region; panics
/// with the rows there are when it is missing.
pub fn table_row<'b>(batch: &'b Batch, table: &str, caller: &str) -> &'b Rollup {
    row(batch, ACCOUNT, REGION, Some(table), caller)
        .unwrap_or_else(|| panic!("no row for {table} / {caller}; rows: {:#?}", keys(batch)))
}

/// The keys of a batch's lifetime rows, sorted, for messages and comparisons.
pub fn keys(batch: &Batch) -> Vec<RollupKey> {
    let mut keys: Vec<RollupKey> = batch.lifetime.keys().cloned().collect();
    keys.sort();
    keys
}

/// The callers of a batch's lifetime rows, sorted and deduplicated.
pub fn callers(batch: &Batch) -> Vec<String> {
    let mut callers: Vec<String> = batch
        .lifetime
        .keys()
        .map(|k| k.caller.to_string())
        .collect();
    callers.sort();
    callers.dedup();
    callers
}

/// Parses an RFC 3339 time into Unix seconds, for comparing with rollups.
pub fn unix(time: &str) -> i64 {
    ddb_audit_core::attribute::parse_event_time(time).expect("a valid RFC 3339 time")
}

static NEXT_EVENT: AtomicU64 = AtomicU64::new(1);

/// One CloudTrail record, built from a realistic DynamoDB data event.
///
/// Defaults: a `GetItem`-shaped call by the `orders-api` application role in
/// 111122223333 / us-east-1 at 2024-03-15T12:00:00Z, from the Java SDK, with a
/// fresh eventID. Every setter replaces one field.
#[derive(Debug, Clone)]
pub struct Record(Value);

impl Record {
    /// A DynamoDB call named `event_name`, with no request parameters.
    pub fn new(event_name: &str) -> Self {
        let n = NEXT_EVENT.fetch_add(1, Ordering::Relaxed);
        Record(json!({
            "eventVersion": "1.09",
            "userIdentity": identity::app_role("orders-api", "task-0001"),
            "eventTime": "2024-03-15T12:00:00Z",
            "eventSource": "dynamodb.amazonaws.com",
            "eventName": event_name,
            "awsRegion": REGION,
            "sourceIPAddress": "192.0.2.10",
            "userAgent": "aws-sdk-java/2.25.16 Linux/5.10.210 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10",
            "requestParameters": null,
            "responseElements": null,
            "requestID": format!("REQ{n:023}VV4KQNSO5AEMVJF66Q9ASUAAJG"),
            "eventID": format!("00000000-0000-4000-8000-{n:012}"),
            "readOnly": false,
            "eventType": "AwsApiCall",
            "apiVersion": "2012-08-10",
            "managementEvent": false,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Data",
        }))
    }

    /// A call on one table: `requestParameters.tableName` (a name or an ARN)
    /// and a key, as CloudTrail logs them.
    pub fn on(event_name: &str, table: &str) -> Self {
        Record::new(event_name).params(json!({"tableName": table, "key": {"pk": "cust-7781"}}))
    }

    /// Sets `requestParameters`.
    pub fn params(self, params: Value) -> Self {
        self.set("requestParameters", params)
    }

    /// Sets `userIdentity`.
    pub fn identity(self, identity: Value) -> Self {
        self.set("userIdentity", identity)
    }

    /// Sets `eventTime`.
    pub fn at(self, time: &str) -> Self {
        self.set("eventTime", json!(time))
    }

    /// Sets `userAgent`.
    pub fn agent(self, user_agent: &str) -> Self {
        self.set("userAgent", json!(user_agent))
    }

    /// Sets `errorCode` and a matching `errorMessage`.
    pub fn error(self, code: &str) -> Self {
        self.set("errorCode", json!(code))
            .set("errorMessage", json!(format!("{code} (test)")))
    }

    /// Sets any top-level field.
    pub fn set(mut self, field: &str, value: Value) -> Self {
        self.0[field] = value;
        self
    }

    /// Removes a top-level field.
    pub fn without(mut self, field: &str) -> Self {
        if let Some(object) = self.0.as_object_mut() {
            object.remove(field);
        }
        self
    }

    /// Sets a field by JSON pointer (`/userIdentity/type`), creating nothing:
    /// the parent must exist.
    pub fn set_at(mut self, pointer: &str, value: Value) -> Self {
        *self
            .0
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("no {pointer} in the record")) = value;
        self
    }

    /// The record's eventID.
    pub fn event_id(&self) -> &str {
        self.0["eventID"].as_str().unwrap_or_default()
    }

    /// The record as JSON.
    pub fn json(&self) -> &Value {
        &self.0
    }

    /// The record as compact JSON text, as a log event's `message`.
    pub fn text(&self) -> String {
        self.0.to_string()
    }
}

/// `userIdentity` blocks as CloudTrail writes them.
pub mod identity {
    use super::ACCOUNT;
    use serde_json::{json, Value};

    /// A role session in the sample account, issued by `role/service/NAME`.
    pub fn app_role(name: &str, session: &str) -> Value {
        role_session(
            &format!("arn:aws:iam::{ACCOUNT}:role/service/{name}"),
            session,
        )
    }

    /// A session of the role `role_arn` (path included) named `session`.
    pub fn role_session(role_arn: &str, session: &str) -> Value {
        let account = role_arn.split(':').nth(4).unwrap_or(ACCOUNT);
        let name = role_arn.rsplit('/').next().unwrap_or_default();
        json!({
            "type": "AssumedRole",
            "principalId": format!("AROAYEXAMPLE{}:{session}", name.len()),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{name}/{session}"),
            "accountId": account,
            "accessKeyId": "ASIAYEXAMPLEKEY00001",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": format!("AROAYEXAMPLE{}", name.len()),
                    "arn": role_arn,
                    "accountId": account,
                    "userName": name,
                },
                "attributes": {"creationDate": "2024-03-15T11:00:00Z", "mfaAuthenticated": "false"},
            },
        })
    }

    /// An IAM Identity Center person on a permission set role.
    pub fn sso(permission_set: &str, person: &str) -> Value {
        role_session(
            &format!(
                "arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_{permission_set}_5d2c8b1e9f3a7c40"
            ),
            person,
        )
    }

    /// An IAM user.
    pub fn iam_user(name: &str) -> Value {
        json!({
            "type": "IAMUser",
            "principalId": "AIDAYEXAMPLEUSER0001",
            "arn": format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            "accountId": ACCOUNT,
            "accessKeyId": "AKIAYEXAMPLEKEY00001",
            "userName": name,
        })
    }

    /// An AWS service acting with its own credentials.
    pub fn aws_service(invoked_by: &str) -> Value {
        json!({"type": "AWSService", "invokedBy": invoked_by})
    }
}

/// Uncompressed bytes per repeated deflate segment of [`gzip_bomb`].
pub const BOMB_SEGMENT: u64 = 4 << 20;

/// A valid gzip file that inflates to `output` zero bytes (rounded up to
/// whole [`BOMB_SEGMENT`]s), built without ever holding its output: one
/// segment of zeros is deflated once, ending with a full flush (which resets
/// the compressor's history, so the next segment deflates to the same
/// bytes), and repeated. Its CRC-32 is combined per segment. About 1 KiB
/// per MiB of output.
pub fn gzip_bomb(output: u64) -> Vec<u8> {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    let segments = output.div_ceil(BOMB_SEGMENT).max(1);
    let zeros = vec![0u8; BOMB_SEGMENT as usize];
    let mut deflate = Compress::new(Compression::best(), false);
    let segment = |deflate: &mut Compress, input: &[u8], flush| {
        let mut out = Vec::with_capacity(64 * 1024);
        let before = deflate.total_in();
        deflate
            .compress_vec(input, &mut out, flush)
            .expect("deflating into memory cannot fail");
        assert_eq!(
            deflate.total_in() - before,
            input.len() as u64,
            "one call deflates a segment"
        );
        out
    };
    let first = segment(&mut deflate, &zeros, FlushCompress::Full);
    let repeated = segment(&mut deflate, &zeros, FlushCompress::Full);
    assert_eq!(
        segment(&mut deflate, &zeros, FlushCompress::Full),
        repeated,
        "a segment after a full flush always deflates the same"
    );
    let end = segment(
        &mut Compress::new(Compression::best(), false),
        &[],
        FlushCompress::Finish,
    );
    let mut zero_crc = Crc::new();
    zero_crc.update(&zeros);
    let mut crc = Crc::new();
    for _ in 0..segments {
        crc.combine(&zero_crc);
    }
    let mut bomb = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff];
    bomb.extend_from_slice(&first);
    for _ in 1..segments {
        bomb.extend_from_slice(&repeated);
    }
    bomb.extend_from_slice(&end);
    bomb.extend_from_slice(&crc.sum().to_le_bytes());
    bomb.extend_from_slice(&((segments * BOMB_SEGMENT) as u32).to_le_bytes());
    bomb
}

/// A busy CloudTrail file: `records` calls from `callers` applications
/// (role sessions, eight sessions each) on `tables` tables, over two UTC days,
/// with a realistic mix of operations, source IPs and VPC endpoints. The same
/// arguments always give the same records (event ids aside), and every
/// (table, caller) pair is met, so the batch has `callers * tables` lifetime
/// rows and twice as many daily rows.
pub fn mixed_file(records: usize, callers: usize, tables: usize) -> Vec<u8> {
    let ops = [
        "GetItem",
        "Query",
        "PutItem",
        "UpdateItem",
        "GetItem",
        "Query",
    ];
    let all: Vec<Record> = (0..records)
        .map(|i| {
            let table = i % tables;
            let caller = (i / tables) % callers;
            let secs = (i * 17) % (2 * 86_400);
            let time = format!(
                "2024-03-{:02}T{:02}:{:02}:{:02}Z",
                15 + secs / 86_400,
                secs % 86_400 / 3_600,
                secs % 3_600 / 60,
                secs % 60
            );
            let mut record = Record::on(ops[i % ops.len()], &format!("table-{table:02}"))
                .identity(identity::app_role(
                    &format!("app-{caller:02}"),
                    &format!("task-{:04}", i % 8),
                ))
                .at(&time)
                .set(
                    "sourceIPAddress",
                    json!(format!("10.0.{}.{}", caller, i % 4)),
                );
            if caller.is_multiple_of(3) {
                record = record.set("vpcEndpointId", json!(format!("vpce-0a1b2c3d{caller:02}")));
            }
            record
        })
        .collect();
    trail_file(&all)
}
