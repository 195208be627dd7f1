//! DESIGN.md section 2, what inputs must survive: a bad input is one error
//! naming why, a bad record is one counted, located problem, and neither ever
//! takes good records down with it or quotes a key value.

use ddb_audit_core::attribute::Rules;
use ddb_audit_core::input::{InputKind, InputReader, Limits, MAX_RECORD_BYTES};
use ddb_audit_core::reconcile::RecordProblem;
use ddb_audit_core::rollup::Batch;
use ddb_audit_core::Error;
use ddb_audit_tests::{awslogs, base64, gzip, logs_event, trail_file, Record, ACCOUNT};
use serde_json::json;

/// Key values the inputs below carry, as CloudTrail logs them in clear.
const SECRETS: &[&str] = &["cust-7781", "ord-90017", "sku-40913"];

fn reader() -> InputReader {
    InputReader::new(Rules::default(), Limits::default())
}

/// A record that attributes cleanly, carrying key values.
fn good() -> Record {
    Record::new("GetItem").params(json!({
        "tableName": "orders",
        "key": {"orderId": "ord-90017", "customerId": "cust-7781"},
    }))
}

fn assert_no_secrets(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} leaked into: {text}");
    }
}

/// Reads an input that must be readable; checks that the counters balance
/// and that no problem quotes a key value.
fn read_ok(reader: &mut InputReader, origin: &str, input: &[u8]) -> Batch {
    let (_, batch) = reader
        .read(origin, input)
        .unwrap_or_else(|e| panic!("{origin} should be readable: {e}"));
    assert!(batch.counts.balances(), "{}", batch.counts);
    for problem in &batch.problems {
        assert_no_secrets(&problem.to_string());
        assert_no_secrets(&format!("{problem:?}"));
    }
    batch
}

/// Reads an input that must be rejected as a whole, then proves the same
/// reader still counts a good input in full: the rejected one left nothing
/// behind, not even its eventIDs.
fn rejected_with(limits: Limits, input: &[u8], good_after: &[Record]) -> Error {
    let mut reader = InputReader::new(Rules::default(), limits);
    let err = reader
        .read("bad-input", input)
        .expect_err("the input should be rejected");
    assert_no_secrets(&err.to_string());
    assert_no_secrets(&format!("{err:?}"));
    let batch = read_ok(&mut reader, "good.json", &trail_file(good_after));
    assert_eq!(batch.counts.attributed, good_after.len() as u64);
    assert_eq!(batch.counts.records_in, good_after.len() as u64);
    err
}

fn rejected(input: &[u8]) -> Error {
    rejected_with(Limits::default(), input, &[good(), good()])
}

/// The one problem of a batch, which must be at `index`.
fn only_problem(batch: &Batch, index: u64) -> &RecordProblem {
    assert_eq!(batch.problems.len(), 1, "{:#?}", batch.problems);
    let problem = &batch.problems[0];
    assert_eq!(problem.index, index, "{problem}");
    problem
}

/// Reads `[good, bad, good]` as one file: the bad record is the one problem,
/// at index 1, and both good records count.
fn beside_good(bad: Record) -> (Batch, RecordProblem) {
    let batch = read_ok(
        &mut reader(),
        "trail.json",
        &trail_file(&[good(), bad, good()]),
    );
    assert_eq!(batch.counts.records_in, 3);
    assert_eq!(batch.counts.attributed, 2, "{}", batch.counts);
    assert_eq!(batch.counts.malformed_total(), 1, "{}", batch.counts);
    let problem = only_problem(&batch, 1).clone();
    assert_eq!(problem.origin, "trail.json");
    (batch, problem)
}

#[test]
fn truncated_gzip_is_rejected_as_bad_gzip() {
    let whole = gzip(&trail_file(&[good(), good(), good()]));
    let err = rejected(&whole[..whole.len() / 2]);
    assert!(
        matches!(&err, Error::Gzip(m) if m.contains("truncated")),
        "{err}"
    );
    assert_eq!(err.reason(), "bad_gzip");

    // The same inside a subscription event.
    let err = rejected(&awslogs(&whole[..whole.len() - 12]));
    assert_eq!(err.reason(), "bad_gzip", "{err}");

    // Not gzip past its magic bytes at all.
    let mut corrupt = whole.clone();
    corrupt[10..30].fill(0xAB);
    assert_eq!(rejected(&corrupt).reason(), "bad_gzip");
}

#[test]
fn gzip_over_the_cap_is_rejected_and_remembers_nothing() {
    let limits = Limits {
        max_decompressed: 64 * 1024,
        ..Limits::default()
    };
    let mut big: Vec<Record> = (0..200).map(|_| good()).collect();
    let file = trail_file(&big);
    assert!(file.len() > 64 * 1024);
    let compressed = gzip(&file);
    assert!(compressed.len() < 64 * 1024);

    // Good records read after the rejected file include two of its
    // eventIDs: they count, because a rejected input is not remembered.
    let mut after = big.split_off(198);
    after.push(good());
    let err = rejected_with(limits, &compressed, &after);
    assert_eq!(err, Error::OverCap { cap: 64 * 1024 });
    assert_eq!(err.reason(), "over_cap");

    // The cap also holds for a subscription event's payload and for plain input.
    let events: Vec<String> = (0..200).map(|_| good().text()).collect();
    let err = rejected_with(limits, &logs_event(&events), &[good()]);
    assert_eq!(err, Error::OverCap { cap: 64 * 1024 });
    assert_eq!(
        rejected_with(limits, &file, &[good()]),
        Error::OverCap { cap: 64 * 1024 }
    );
}

#[test]
fn non_json_log_message_is_malformed_and_its_neighbours_count() {
    let events = [
        good().text(),
        "{\"eventVersion\":\"1.09\",\"requestParameters\":{\"key\":{\"pk\":\"cust-7781\""
            .to_owned(),
        good().text(),
        "cust-7781 is not JSON".to_owned(),
        "[\"ord-90017\"]".to_owned(),
        good().text(),
    ];
    let (kind, batch) = reader()
        .read("cwl.json", &logs_event(&events))
        .expect("the batch is readable");
    assert!(matches!(kind, InputKind::LogsData(_)));
    assert_eq!(batch.counts.records_in, 6);
    assert_eq!(batch.counts.attributed, 3);
    assert_eq!(batch.counts.malformed.get("not_json"), Some(&3));
    assert!(batch.counts.balances());
    let at: Vec<u64> = batch.problems.iter().map(|p| p.index).collect();
    assert_eq!(at, [1, 3, 4]);
    for problem in &batch.problems {
        assert_eq!(problem.reason, "not_json");
        assert!(problem.detail.contains("JSON"), "{problem}");
        // The origin names the log group and stream.
        assert!(
            problem
                .origin
                .contains(&format!("aws-cloudtrail-logs-{ACCOUNT}"))
                && problem.origin.contains("_CloudTrail_us-east-1"),
            "{problem}"
        );
        assert_no_secrets(&problem.to_string());
    }
}

#[test]
fn log_event_without_a_message_is_malformed() {
    let payload = json!({
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": "aws-cloudtrail-logs-111122223333",
        "logStream": "111122223333_CloudTrail_us-east-1",
        "subscriptionFilters": ["ddb-audit-logs-ingest"],
        "logEvents": [
            {"id": "1", "timestamp": 1_710_504_000_000u64, "message": good().text()},
            {"id": "2", "timestamp": 1_710_504_000_001u64},
            {"id": "3", "timestamp": 1_710_504_000_002u64, "message": {"pk": "cust-7781"}},
            {"id": "4", "timestamp": 1_710_504_000_003u64, "message": good().text()},
        ],
    });
    let batch = read_ok(
        &mut reader(),
        "cwl",
        &awslogs(&gzip(payload.to_string().as_bytes())),
    );
    assert_eq!(batch.counts.attributed, 2);
    assert_eq!(batch.counts.malformed.get("missing_field"), Some(&1));
    assert_eq!(batch.counts.malformed.get("not_json"), Some(&1));
    let found: Vec<(u64, &str)> = batch.problems.iter().map(|p| (p.index, p.reason)).collect();
    assert_eq!(found, [(1, "missing_field"), (2, "not_json")]);
    assert!(batch.problems[0].detail.contains("`message`"));
}

#[test]
fn records_missing_what_attribution_needs_are_malformed_and_named() {
    for field in [
        "eventTime",
        "eventSource",
        "eventName",
        "eventID",
        "recipientAccountId",
        "awsRegion",
    ] {
        let bad = good().without(field);
        let id = bad.event_id().to_owned();
        let (batch, problem) = beside_good(bad);
        assert_eq!(
            batch.counts.malformed.get("missing_field"),
            Some(&1),
            "{field}"
        );
        assert_eq!(problem.reason, "missing_field");
        assert!(problem.detail.contains(&format!("`{field}`")), "{problem}");
        let expected_id = (field != "eventID").then_some(id);
        assert_eq!(problem.event_id, expected_id, "{field}");
    }
}

#[test]
fn record_without_user_identity_is_counted_as_unknown_not_dropped() {
    // DESIGN.md section 3: a record with no identity is `unknown:`, counted.
    let batch = read_ok(
        &mut reader(),
        "trail.json",
        &trail_file(&[good(), good().without("userIdentity")]),
    );
    assert_eq!(batch.counts.attributed, 2);
    assert!(batch.problems.is_empty());
    assert!(batch
        .lifetime
        .keys()
        .any(|k| k.caller == format!("unknown:{ACCOUNT}")));
}

#[test]
fn event_time_that_is_not_rfc3339_is_malformed() {
    let (batch, problem) = beside_good(good().at("15/03/2024 12:00"));
    assert_eq!(batch.counts.malformed.get("bad_time"), Some(&1));
    assert!(problem.detail.contains("`eventTime`"), "{problem}");
}

#[test]
fn wrong_json_types_are_malformed_and_name_the_field() {
    let cases = [
        ("eventName", good().set("eventName", json!(5))),
        (
            "eventTime",
            good().set("eventTime", json!({"at": "cust-7781"})),
        ),
        (
            "userIdentity.type",
            good().set_at("/userIdentity/type", json!([])),
        ),
        ("userIdentity", good().identity(json!("cust-7781"))),
        (
            "requestParameters.tableName",
            good().params(json!({"tableName": 7, "key": {"pk": "cust-7781"}})),
        ),
        ("requestParameters", good().params(json!(["ord-90017"]))),
        (
            "requestParameters.requestItems",
            good().params(json!({"requestItems": "sku-40913"})),
        ),
        (
            "resources",
            good().set("resources", json!({"ARN": "sku-40913"})),
        ),
    ];
    for (path, bad) in cases {
        let id = bad.event_id().to_owned();
        let (batch, problem) = beside_good(bad);
        assert_eq!(batch.counts.malformed.get("wrong_type"), Some(&1), "{path}");
        assert_eq!(problem.reason, "wrong_type", "{path}");
        assert!(
            problem.detail.contains(&format!("`{path}`")),
            "{path}: {problem}"
        );
        // The record did not parse as a whole, but its top-level eventID
        // still names it.
        assert_eq!(problem.event_id.as_deref(), Some(id.as_str()), "{path}");
    }
}

#[test]
fn records_that_are_not_objects_are_malformed() {
    let file = format!(
        r#"{{"Records":[{},"ord-90017",42,null,["cust-7781"],{}]}}"#,
        good().text(),
        good().text()
    );
    let batch = read_ok(&mut reader(), "trail.json", file.as_bytes());
    assert_eq!(batch.counts.records_in, 6);
    assert_eq!(batch.counts.attributed, 2);
    assert_eq!(batch.counts.malformed.get("not_json"), Some(&4));
    let at: Vec<u64> = batch.problems.iter().map(|p| p.index).collect();
    assert_eq!(at, [1, 2, 3, 4]);
}

#[test]
fn oversize_record_is_malformed_and_its_neighbours_count() {
    let padding: Vec<String> = (0..14_000).map(|i| format!("attribute-{i:08}")).collect();
    let huge = good().params(json!({
        "tableName": "orders",
        "key": {"orderId": "ord-90017"},
        "items": padding,
    }));
    let size = huge.text().len();
    assert!(size > MAX_RECORD_BYTES, "{size}");

    let (batch, problem) = beside_good(huge.clone());
    assert_eq!(batch.counts.malformed.get("oversize"), Some(&1));
    assert!(problem.detail.contains(&size.to_string()), "{problem}");

    // The same through CloudWatch Logs.
    let events = [good().text(), good().text(), huge.text()];
    let batch = read_ok(&mut reader(), "cwl", &logs_event(&events));
    assert_eq!(batch.counts.attributed, 2);
    assert_eq!(only_problem(&batch, 2).reason, "oversize");
}

#[test]
fn empty_input_is_rejected() {
    assert_eq!(rejected(b""), Error::Empty);
    assert_eq!(rejected(b"").reason(), "empty");
    assert_eq!(rejected(b" \n").reason(), "bad_shape");
    assert_eq!(rejected(&gzip(b"")).reason(), "bad_shape");
}

#[test]
fn top_level_wrong_shapes_are_rejected() {
    let cases: [&[u8]; 9] = [
        b"{}",
        b"[]",
        b"42",
        b"\"cust-7781\"",
        b"not json at all: cust-7781",
        br#"{"Records": {"orderId": "ord-90017"}}"#,
        br#"{"Records": [{"eventName": "GetItem"}"#,
        br#"{"awslogs": {"data": 5}}"#,
        br#"{"messageType": "SOMETHING_ELSE", "logEvents": []}"#,
    ];
    for input in cases {
        let err = rejected(input);
        assert_eq!(
            err.reason(),
            "bad_shape",
            "{}: {err}",
            String::from_utf8_lossy(input)
        );
    }
    // The message says what was expected.
    for input in [&b"{}"[..], b"[]", b"42"] {
        let err = rejected(input);
        assert!(
            err.to_string().contains("expected a CloudTrail file"),
            "{err}"
        );
    }
    let err = rejected(br#"{"Records": {"orderId": "ord-90017"}}"#);
    assert!(err.to_string().contains("`Records`"), "{err}");
}

#[test]
fn input_that_fails_after_its_records_remembers_none_of_them() {
    let records = [good(), good()];
    let mut cut = trail_file(&records);
    cut.truncate(cut.len() - 1); // drop the closing brace
    let err = rejected_with(Limits::default(), &cut, &records);
    assert_eq!(err.reason(), "bad_shape");
    assert!(err.to_string().contains("cut short"), "{err}");
}

#[test]
fn invalid_base64_in_awslogs_data_is_rejected() {
    let err = rejected(br#"{"awslogs": {"data": "H4sI!!cust-7781!!"}}"#);
    assert!(matches!(err, Error::Base64(_)), "{err}");
    assert_eq!(err.reason(), "bad_base64");

    // Valid base64 of something that is not a payload.
    let not_json = format!(r#"{{"awslogs": {{"data": "{}"}}}}"#, base64(b"cust-7781"));
    assert_eq!(rejected(not_json.as_bytes()).reason(), "bad_shape");
    let not_logs = awslogs(&gzip(br#"{"logGroup": 5}"#));
    assert_eq!(rejected(&not_logs).reason(), "bad_shape");
}

#[test]
fn test_base64_matches_the_cores_decoder() {
    for text in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
        let encoded = base64(text);
        assert_eq!(
            ddb_audit_core::decode::base64_decode(&encoded).expect("valid base64"),
            text
        );
    }
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64(b"fo"), "Zm8=");
}
