//! The summary-table queries (`callers`, `tables`, `stale`, `new`,
//! `rejects`) and `backfill`, driven as a user drives them, against rollups
//! written through the real exactly-once path on moto.
//!
//! The tests are synchronous: the command builds its own runtime, so setup
//! runs on a runtime of the test's and the command runs outside it, each
//! with its own SDK configuration (connections belong to one runtime).

use std::collections::BTreeMap;

use ddb_audit_aws::ingest::{ingest_object, ingest_s3, Deps};
use ddb_audit_core::config::Config;
use ddb_audit_core::metrics::Invocation;
use ddb_audit_core::notification::{content_source_id, ObjectRef};
use ddb_audit_core::row::{format_day, format_time, Row};
use ddb_audit_core::summary::{self, Retention};
use ddb_audit_tests::moto::Moto;
use ddb_audit_tests::{
    analyze_rows, counters, gzip, identity, read, test_store, trail_file, Record, ACCOUNT, REGION,
};
use serde_json::{json, Value};
use tokio::runtime::Runtime;

const SUMMARY: &str = "ddb-audit-summary";
const BUCKET: &str = "trail-bucket";
const TRAIL: &str = "AWSLogs/111122223333/CloudTrail/us-east-1";

fn orders_api() -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/service/orders-api")
}

fn alice() -> String {
    format!(
        "arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_5d2c8b1e9f3a7c40/alice@example.com"
    )
}

struct Env {
    moto: Moto,
    rt: Runtime,
    deps: Deps,
}

/// A moto server with the summary table and the trail bucket, and the
/// s3-ingest function's dependencies.
fn env() -> anyhow::Result<Env> {
    let moto = Moto::start()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let config = Config::from_vars(|name| (name == "SUMMARY_TABLE").then(|| SUMMARY.to_owned()))?;
    let deps = rt.block_on(async {
        let store = test_store(moto.dynamodb(), &config);
        store.create_table().await?;
        let s3 = moto.s3();
        s3.create_bucket().bucket(BUCKET).send().await?;
        anyhow::Ok(Deps {
            config,
            store,
            s3,
            function: "s3-ingest",
        })
    })?;
    Ok(Env { moto, rt, deps })
}

impl Env {
    /// Applies records as one batch through the store's exactly-once path.
    fn apply(&self, source: &str, records: &[Record]) -> anyhow::Result<()> {
        let plan = summary::plan(source, &read(records), Retention { daily_days: 0 });
        self.rt
            .block_on(self.deps.store.apply(&plan, 1_710_000_000))?;
        Ok(())
    }

    /// Puts a CloudTrail file (gzipped) and returns its ETag as S3 gives it.
    fn put(&self, key: &str, body: Vec<u8>) -> anyhow::Result<String> {
        self.rt.block_on(ddb_audit_tests::put_object(
            &self.deps.s3,
            BUCKET,
            key,
            body,
        ))
    }

    /// Runs `ddb-audit ARGS --summary-table SUMMARY --endpoint-url MOTO`.
    fn cli(&self, args: &[&str]) -> Output {
        let endpoint = self.moto.endpoint();
        let mut argv = vec!["ddb-audit"];
        argv.extend_from_slice(args);
        argv.extend(["--summary-table", SUMMARY, "--endpoint-url", &endpoint]);
        run_with(&argv, &self.moto.sdk_config())
    }

    /// Lifetime rows in the table, without the sampled sets.
    fn stored(&self) -> anyhow::Result<Vec<Row>> {
        Ok(counters(
            self.rt.block_on(self.deps.store.scan_rows(false))?,
        ))
    }
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_with(argv: &[&str], sdk: &aws_config::SdkConfig) -> Output {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = ddb_audit_cli::run_with_aws(argv.iter().copied(), sdk, &mut out, &mut err);
    Output {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

fn json_lines(out: &Output) -> Vec<Value> {
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

/// (table, caller, calls) of each line, in order.
fn summary(lines: &[Value]) -> Vec<(String, String, u64)> {
    lines
        .iter()
        .map(|l| {
            (
                l["table"].as_str().unwrap_or("(none)").to_owned(),
                l["caller"].as_str().unwrap_or_default().to_owned(),
                l["calls"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

/// orders-api: 3 GetItem on orders (03-15), a PutItem and a TransactWriteItems
/// on orders (03-20), a Query on users (03-16); alice (a person): a Scan on
/// orders (03-01).
fn known_history() -> Vec<Record> {
    let mut records: Vec<Record> = (0..3)
        .map(|_| Record::on("GetItem", "orders").at("2024-03-15T12:00:00Z"))
        .collect();
    records.push(Record::on("PutItem", "orders").at("2024-03-20T08:00:00Z"));
    records.push(
        Record::new("TransactWriteItems")
            .params(json!({"transactItems": [{"put": {"tableName": "orders", "item": {}}}]}))
            .at("2024-03-20T09:00:00Z"),
    );
    records.push(Record::on("Query", "users").at("2024-03-16T10:00:00Z"));
    records.push(
        Record::on("Scan", "orders")
            .identity(identity::sso("Admin", "alice@example.com"))
            .at("2024-03-01T09:30:00Z"),
    );
    records
}

#[test]
fn callers_of_a_table_busiest_first_with_their_estimated_cost() -> anyhow::Result<()> {
    let env = env()?;
    env.apply("test:history", &known_history())?;

    // A key query: the table fully named.
    let keyed = json_lines(&env.cli(&[
        "callers",
        "--table",
        "orders",
        "--account",
        ACCOUNT,
        "--region",
        REGION,
        "--format",
        "json",
    ]));
    assert_eq!(
        summary(&keyed),
        [
            ("orders".to_owned(), orders_api(), 5),
            ("orders".to_owned(), alice(), 1),
        ]
    );
    let api = &keyed[0];
    assert_eq!(api["reads"], 3);
    assert_eq!(api["writes"], 2);
    assert_eq!(api["operations"]["GetItem"], 3);
    assert_eq!(api["operations"]["TransactWriteItems"], 1);
    assert_eq!(api["first_seen"], "2024-03-15T12:00:00Z");
    assert_eq!(api["last_seen"], "2024-03-20T09:00:00Z");
    assert_eq!(api["caller_type"], "AssumedRole");
    assert!(api.get("day").is_none() && api.get("since").is_none());
    // 3 reads = 3 RRU; a PutItem and a TransactWriteItems = 1 + 2 WRU.
    assert_eq!(api["est_read_units"], 3);
    assert_eq!(api["est_write_units"], 3);
    let usd = api["est_cost_usd"].as_f64().unwrap_or(-1.0);
    assert!(
        (usd - (3.0 * 0.125 + 3.0 * 0.625) / 1e6).abs() < 1e-12,
        "{usd}"
    );
    assert_eq!(keyed[1]["person"], true);
    assert_eq!(keyed[1]["est_read_units"], 1);

    // The table named alone: a filtered scan gives the same rows.
    let scanned = json_lines(&env.cli(&["callers", "--table", "orders", "--format", "json"]));
    assert_eq!(scanned, keyed);

    // Every table; prices from the flags.
    let all = json_lines(&env.cli(&[
        "callers",
        "--format",
        "json",
        "--read-price",
        "1000000",
        "--write-price",
        "0",
    ]));
    assert_eq!(
        summary(&all),
        [
            ("orders".to_owned(), orders_api(), 5),
            ("orders".to_owned(), alice(), 1),
            ("users".to_owned(), orders_api(), 1),
        ]
    );
    assert_eq!(all[0]["est_cost_usd"].as_f64(), Some(3.0));

    // CSV: analyze's columns first, then the window and the estimate.
    let csv = env.cli(&["callers", "--table", "orders", "--format", "csv"]);
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("account,region,table,day,caller,app,caller_type,"));
    assert!(lines[0].ends_with(",since,est_read_units,est_write_units,est_cost_usd"));

    // The table for people says the cost is an estimate.
    let table = env.cli(&["callers", "--table", "orders"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.contains("orders-api"), "{}", table.stdout);
    assert!(
        table.stdout.contains("est. cost: an estimate"),
        "{}",
        table.stdout
    );
    assert!(!table.stdout.contains("cust-7781"), "no item key values");
    // Short caller names in the table; the full ARN with --wide.
    assert!(!table.stdout.contains(&orders_api()), "{}", table.stdout);
    let wide = env.cli(&["callers", "--table", "orders", "--wide"]);
    assert_eq!(wide.code, 0, "{}", wide.stderr);
    assert!(wide.stdout.contains(&orders_api()), "{}", wide.stdout);
    Ok(())
}

#[test]
fn callers_since_a_day_sum_the_daily_rollups_from_that_day_on() -> anyhow::Result<()> {
    let env = env()?;
    env.apply("test:history", &known_history())?;
    for args in [
        vec!["callers", "--since", "2024-03-15", "--format", "json"],
        vec![
            "callers",
            "--since",
            "2024-03-15",
            "--format",
            "json",
            "--table",
            "orders",
            "--account",
            ACCOUNT,
            "--region",
            REGION,
        ],
    ] {
        let lines = json_lines(&env.cli(&args));
        let mut expected = vec![("orders".to_owned(), orders_api(), 5)];
        if !args.contains(&"--table") {
            expected.push(("users".to_owned(), orders_api(), 1));
        }
        // alice's only call (03-01) is before the window.
        assert_eq!(summary(&lines), expected, "{args:?}");
        assert_eq!(lines[0]["since"], "2024-03-15");
        assert_eq!(lines[0]["reads"], 3);
        assert_eq!(lines[0]["writes"], 2);
    }
    let later = json_lines(&env.cli(&["callers", "--since", "2024-03-17", "--format", "json"]));
    assert_eq!(summary(&later), [("orders".to_owned(), orders_api(), 2)]);
    assert_eq!(
        later[0]["operations"],
        json!({"PutItem": 1, "TransactWriteItems": 1})
    );
    assert_eq!(later[0]["est_write_units"], 3);
    // The lifetime facts stay the caller's.
    assert_eq!(later[0]["first_seen"], "2024-03-15T12:00:00Z");

    let bad = env.cli(&["callers", "--since", "2024-02-30"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("YYYY-MM-DD"), "{}", bad.stderr);
    Ok(())
}

#[test]
fn tables_lists_every_table_a_caller_touches() -> anyhow::Result<()> {
    let env = env()?;
    env.apply("test:history", &known_history())?;
    let lines = json_lines(&env.cli(&["tables", "--caller", &orders_api(), "--format", "json"]));
    assert_eq!(
        summary(&lines),
        [
            ("orders".to_owned(), orders_api(), 5),
            ("users".to_owned(), orders_api(), 1),
        ]
    );
    assert_eq!(lines[1]["operations"], json!({"Query": 1}));
    let none = env.cli(&[
        "tables",
        "--caller",
        "arn:aws:iam::111122223333:role/nobody",
    ]);
    assert_eq!(none.code, 0, "{}", none.stderr);
    assert!(none.stdout.contains("No matching rows."));
    Ok(())
}

#[test]
fn stale_and_new_answer_from_last_and_first_seen() -> anyhow::Result<()> {
    let env = env()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let days_ago = |n: i64| format_time(now - n * 86_400);
    env.apply(
        "test:recent",
        &[
            Record::on("GetItem", "orders")
                .identity(identity::app_role("legacy-report", "s"))
                .at(&days_ago(100)),
            Record::on("GetItem", "orders")
                .identity(identity::app_role("legacy-report", "s"))
                .at(&days_ago(95)),
            Record::on("GetItem", "orders").at(&days_ago(120)),
            Record::on("GetItem", "orders").at(&days_ago(2)),
            Record::on("PutItem", "orders")
                .identity(identity::app_role("new-service", "s"))
                .at(&days_ago(3)),
            Record::new("ListTables").at(&days_ago(200)),
        ],
    )?;
    let legacy = format!("arn:aws:iam::{ACCOUNT}:role/service/legacy-report");
    let newer = format!("arn:aws:iam::{ACCOUNT}:role/service/new-service");

    let stale = json_lines(&env.cli(&["stale", "--days", "30", "--format", "json"]));
    // The account-level row (ListTables) is not a table's caller.
    assert_eq!(summary(&stale), [("orders".to_owned(), legacy.clone(), 2)]);
    assert_eq!(stale[0]["last_seen"], days_ago(95));
    let stale_long = json_lines(&env.cli(&[
        "stale", "--days", "1", "--format", "json", "--table", "orders",
    ]));
    assert_eq!(
        summary(&stale_long),
        [
            ("orders".to_owned(), legacy.clone(), 2),
            ("orders".to_owned(), newer.clone(), 1),
            ("orders".to_owned(), orders_api(), 2),
        ],
        "quietest first"
    );

    let since = format_day((now - 10 * 86_400).div_euclid(86_400));
    let new = json_lines(&env.cli(&["new", "--since", &since, "--format", "json"]));
    assert_eq!(summary(&new), [("orders".to_owned(), newer, 1)]);
    assert_eq!(new[0]["first_seen"], days_ago(3));
    Ok(())
}

#[test]
fn rejects_lists_objects_that_could_not_be_read() -> anyhow::Result<()> {
    let env = env()?;
    let key = format!("{TRAIL}/2024/03/15/111122223333_CloudTrail_us-east-1_bad.json.gz");
    let etag = env.put(&key, b"\x1f\x8b\x08\x00 this is not a gzip stream".to_vec())?;
    let mut inv = Invocation::default();
    let object = ObjectRef {
        bucket: BUCKET.into(),
        key: key.clone(),
        size: None,
        etag: None,
        version_id: None,
        sequencer: None,
    };
    env.rt
        .block_on(ingest_object(&env.deps, &object, &mut inv))?;
    assert_eq!(inv.rejects, 1);

    let lines = json_lines(&env.cli(&["rejects", "--format", "json"]));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["bucket"], BUCKET);
    assert_eq!(lines[0]["key"], key.as_str());
    assert_eq!(lines[0]["reason"], "bad_gzip");
    // The id of the content read: the ETag GetObject returned.
    assert_eq!(
        lines[0]["source_id"],
        content_source_id(BUCKET, &key, Some(&etag)).as_str()
    );
    assert!(lines[0]["detail"].as_str().is_some_and(|d| !d.is_empty()));
    let table = env.cli(&["rejects"]);
    assert!(table.stdout.contains("bad_gzip"), "{}", table.stdout);
    Ok(())
}

#[test]
fn a_missing_table_or_missing_credentials_is_one_clear_sentence() -> anyhow::Result<()> {
    let env = env()?;
    let endpoint = env.moto.endpoint();
    for command in [
        vec!["callers"],
        vec!["tables", "--caller", "x"],
        vec!["rejects"],
        vec!["backfill", "s3://trail-bucket/AWSLogs/"],
    ] {
        let mut argv = vec!["ddb-audit"];
        argv.extend(command.iter().copied());
        argv.extend([
            "--summary-table",
            "no-such-table",
            "--endpoint-url",
            &endpoint,
        ]);
        let out = run_with(&argv, &env.moto.sdk_config());
        assert_eq!(out.code, 1, "{command:?}");
        assert_eq!(
            out.stderr.trim_end().lines().count(),
            1,
            "one sentence: {}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains("the summary table `no-such-table` does not exist"),
            "{}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }

    // An SDK configuration with no credentials at all.
    let anonymous = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(env.moto.endpoint())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    let out = run_with(
        &["ddb-audit", "callers", "--summary-table", SUMMARY],
        &anonymous,
    );
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("no AWS credentials were found"),
        "{}",
        out.stderr
    );
    Ok(())
}

/// A small CloudTrail file: `n` GetItems on `table` by orders-api on `day`.
fn day_file(day: &str, table: &str, n: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record::on("GetItem", table).at(&format!("{day}T10:00:{i:02}Z")))
        .collect();
    trail_file(&records)
}

fn key_of(day: &str, name: &str) -> String {
    format!(
        "{TRAIL}/{}/111122223333_CloudTrail_us-east-1_{name}.json.gz",
        day.replace('-', "/")
    )
}

fn marker(env: &Env) -> anyhow::Result<Vec<ddb_audit_aws::store::BackfillMarker>> {
    Ok(env.rt.block_on(env.deps.store.backfill_markers())?)
}

#[test]
fn backfill_twice_counts_once_and_reads_only_the_days_asked() -> anyhow::Result<()> {
    let env = env()?;
    let files = [
        ("2024-03-14", day_file("2024-03-14", "orders", 1)),
        ("2024-03-15", day_file("2024-03-15", "orders", 2)),
        ("2024-03-16", day_file("2024-03-16", "users", 3)),
        ("2024-03-17", day_file("2024-03-17", "orders", 4)),
    ];
    for (day, body) in &files {
        env.put(&key_of(day, "f"), gzip(body))?;
    }
    env.put(
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/15/d.json.gz",
        gzip(b"{}"),
    )?;
    env.put(
        "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2024/03/15/i.json.gz",
        gzip(b"{}"),
    )?;
    let expected = counters_of(&[&files[1].1, &files[2].1]);

    // Day by day over the region prefix...
    let source = format!("s3://{BUCKET}/{TRAIL}/");
    let args = [
        "backfill",
        &source,
        "--from",
        "2024-03-15",
        "--to",
        "2024-03-16",
        "--concurrency",
        "2",
    ];
    let once = env.cli(&args);
    assert_eq!(once.code, 0, "{}", once.stderr);
    assert!(
        once.stdout.contains("listed 2 objects; read 2"),
        "{}",
        once.stdout
    );
    assert!(
        once.stdout.contains("records in 5 = attributed 5"),
        "{}",
        once.stdout
    );
    assert_eq!(env.stored()?, expected);

    // ...then again, over the whole bucket filtered by the dates in the keys.
    let whole = format!("s3://{BUCKET}/AWSLogs/");
    let twice = env.cli(&[
        "backfill",
        &whole,
        "--from",
        "2024-03-15",
        "--to",
        "2024-03-16",
    ]);
    assert_eq!(twice.code, 0, "{}", twice.stderr);
    assert!(
        twice.stdout.contains(
            "listed 6 objects; read 2, skipped 4 (digest 1, insight 1, folder 0, outside the dates 2, empty 0)"
        ),
        "{}",
        twice.stdout
    );
    assert!(
        twice.stdout.contains("chunks applied 0, already applied 2"),
        "{}",
        twice.stdout
    );
    assert_eq!(env.stored()?, expected, "the second run counted nothing");

    // Notices stay off for this history: the markers say so.
    let markers = marker(&env)?;
    assert_eq!(markers.len(), 2);
    assert!(markers.iter().all(|m| !m.notify && m.status == "finished"));
    assert_eq!(format_time(markers[0].covers_until), "2024-03-16T23:59:59Z");
    assert_eq!(markers[0].objects, 2);
    assert_eq!(markers[0].records, 5);
    assert!(twice
        .stdout
        .contains("notices off for callers first seen up to 2024-03-16T23:59:59Z"));
    Ok(())
}

#[test]
fn backfill_after_s3_ingest_counts_nothing_twice() -> anyhow::Result<()> {
    let env = env()?;
    let first = day_file("2024-03-15", "orders", 2);
    let second = day_file("2024-03-16", "orders", 3);
    let first_key = key_of("2024-03-15", "a");
    let etag = env.put(&first_key, gzip(&first))?;
    env.put(&key_of("2024-03-16", "b"), gzip(&second))?;

    // s3-ingest applies the first object, announced by an S3 notification
    // (which carries the ETag without quotes).
    let event = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2024-03-15T12:06:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET},
               "object": {"key": first_key, "size": 100, "eTag": etag.trim_matches('"'), "sequencer": "01"}}
    }]});
    let mut inv = Invocation::default();
    env.rt
        .block_on(ingest_s3(&env.deps, event.to_string().as_bytes(), &mut inv))?;
    assert_eq!(inv.chunks_applied, 1);
    assert_eq!(env.stored()?, counters_of(&[&first]));

    let source = format!("s3://{BUCKET}/{TRAIL}");
    let out = env.cli(&["backfill", &source, "--notify"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("chunks applied 1, already applied 1"),
        "{}",
        out.stdout
    );
    let rows = env.stored()?;
    assert_eq!(rows, counters_of(&[&first, &second]));
    let counts: BTreeMap<&str, u64> = rows
        .iter()
        .map(|r| (r.table.as_deref().unwrap_or(""), r.calls))
        .collect();
    assert_eq!(counts, BTreeMap::from([("orders", 5)]));
    let markers = marker(&env)?;
    assert_eq!(markers.len(), 1);
    assert!(markers[0].notify, "--notify is recorded");
    Ok(())
}

#[test]
fn create_table_makes_the_schema_the_functions_write_to() -> anyhow::Result<()> {
    use anyhow::Context as _;
    let moto = Moto::start()?;
    let endpoint = moto.endpoint();
    let sdk = moto.sdk_config();
    let argv = [
        "ddb-audit",
        "create-table",
        "--summary-table",
        "fresh",
        "--endpoint-url",
        &endpoint,
    ];
    let out = run_with(&argv, &sdk);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("created summary table fresh"),
        "{}",
        out.stdout
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let table = rt
        .block_on(moto.dynamodb().describe_table().table_name("fresh").send())?
        .table
        .context("a table description")?;
    let index: Vec<&str> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    assert_eq!(index, ["by-caller"]);
    let stream = table.stream_specification().context("a stream")?;
    assert_eq!(
        stream.stream_view_type(),
        Some(&aws_sdk_dynamodb::types::StreamViewType::NewAndOldImages)
    );
    let ttl = rt.block_on(
        moto.dynamodb()
            .describe_time_to_live()
            .table_name("fresh")
            .send(),
    )?;
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|t| t.attribute_name()),
        Some("expires_at")
    );
    // A second time: one clear sentence, exit 1.
    let again = run_with(&argv, &sdk);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("Table already exists"),
        "{}",
        again.stderr
    );
    Ok(())
}

/// What `analyze` says of CloudTrail files, as the store keeps them.
fn counters_of(files: &[&[u8]]) -> Vec<Row> {
    counters(analyze_rows(files))
}
