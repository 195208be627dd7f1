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

// ---------------------------------------------------------------------------
// Issue 6: hostile input. Each test states the documented outcome it checks.

/// A gzip file declaring 10 GiB of output (10 MiB of input): stopped at the
/// cap with `over_cap`, having allocated about the cap, not the output.
#[test]
fn gzip_bomb_of_ten_gib_is_stopped_at_the_cap_without_allocating_it() {
    use ddb_audit_tests::alloc::allocated_by;
    use ddb_audit_tests::{gzip_bomb, BOMB_SEGMENT};

    // The builder makes real gzip: a small bomb inflates to exactly its size.
    let small = gzip_bomb(3 * BOMB_SEGMENT);
    let mut inflated = 0u64;
    let mut decoder = flate2::read::GzDecoder::new(&small[..]);
    inflated += std::io::copy(&mut decoder, &mut std::io::sink()).expect("valid gzip");
    assert_eq!(inflated, 3 * BOMB_SEGMENT);

    let bomb = gzip_bomb(10 << 30);
    assert!(bomb.len() < 16 << 20, "{} bytes", bomb.len());
    let cap = 1 << 20;
    let limits = Limits {
        max_decompressed: cap,
        ..Limits::default()
    };
    let mut reader = InputReader::new(Rules::default(), limits);
    let (result, allocated) = allocated_by(|| reader.read("bomb.json.gz", &bomb).map(|_| ()));
    assert_eq!(result, Err(Error::OverCap { cap }));
    assert!(
        allocated < 8 * cap,
        "{allocated} bytes allocated for a {cap}-byte cap"
    );

    // The same bomb as a CloudWatch Logs subscription event: the base64 text
    // is decoded (the size of the input), the gzip inside stops at the cap.
    let event = ddb_audit_tests::awslogs(&bomb);
    let (result, allocated) = allocated_by(|| reader.read("cwl", &event).map(|_| ()));
    assert_eq!(result, Err(Error::OverCap { cap }));
    assert!(
        allocated < event.len() as u64 + 8 * cap,
        "{allocated} bytes allocated for a {}-byte event",
        event.len()
    );
    // And the reader still counts good input in full.
    let batch = read_ok(&mut reader, "good.json", &trail_file(&[good()]));
    assert_eq!(batch.counts.attributed, 1);
}

/// gzip members one after another are one stream (as `gzip -c a >> b`
/// makes): read whole when they make one document, rejected as a whole when
/// they do not, and a bad or cut member rejects the input.
#[test]
fn concatenated_gzip_members_are_one_input() {
    let records = [good(), good(), good()];
    let file = trail_file(&records);
    let (a, b) = file.split_at(file.len() / 2);
    let two_members = [gzip(a), gzip(b)].concat();
    let batch = read_ok(&mut reader(), "members.json.gz", &two_members);
    assert_eq!(batch.counts.attributed, 3);

    // Two whole CloudTrail files in one: JSON with trailing data.
    let two_files = [gzip(&trail_file(&[good()])), gzip(&trail_file(&[good()]))].concat();
    assert_eq!(rejected(&two_files).reason(), "bad_shape");

    // A good member followed by bytes that are not gzip, or by a cut member.
    let mut trailing = gzip(&file);
    trailing.extend_from_slice(b"cust-7781 trailing garbage");
    assert_eq!(rejected(&trailing).reason(), "bad_gzip");
    let second = gzip(&trail_file(&[good()]));
    let cut = [gzip(&file), second[..second.len() - 9].to_vec()].concat();
    assert_eq!(rejected(&cut).reason(), "bad_gzip");
}

/// Bytes that are not UTF-8 make a file unparseable as JSON: rejected as a
/// whole. Inside a log event the message is a JSON string, so the worst it
/// can hold is an escaped lone surrogate, which makes that one record
/// malformed.
#[test]
fn invalid_utf8_rejects_the_input_or_makes_the_record_malformed() {
    // A byte that is never UTF-8 (0xff) inside a key value of a record.
    let not_utf8 = |input: Vec<u8>| {
        let mut bytes = input;
        let at = bytes
            .windows(9)
            .position(|w| w == b"ord-90017")
            .expect("the record carries a key value");
        bytes[at] = 0xff;
        bytes
    };
    let file = not_utf8(trail_file(&[good(), good()]));
    assert_eq!(rejected(&file).reason(), "bad_shape");
    assert_eq!(rejected(&gzip(&file)).reason(), "bad_shape");
    // The same in a decoded CloudWatch Logs payload (the message string).
    let payload = json!({"messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": "g",
        "logStream": "s", "subscriptionFilters": [], "logEvents": [
            {"id": "1", "timestamp": 1, "message": good().text()}]})
    .to_string()
    .into_bytes();
    assert_eq!(
        rejected(&awslogs(&gzip(&not_utf8(payload)))).reason(),
        "bad_shape"
    );

    // An escaped lone surrogate inside a log message: that record only.
    let lone = good().text().replacen("GetItem", "GetItem\\ud800", 1);
    let batch = read_ok(
        &mut reader(),
        "cwl",
        &logs_event(&[good().text(), lone, good().text()]),
    );
    assert_eq!(batch.counts.attributed, 2, "{}", batch.counts);
    assert_eq!(only_problem(&batch, 1).reason, "not_json");
}

/// JSON nested far deeper than any record (100,000 levels) never overflows
/// the stack. In a field ddb-audit does not read it is passed over and the
/// record counts; in a field it reads it makes that record malformed; as the
/// input itself, or beside `Records`, it rejects the input.
#[test]
fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let with_deep = |field: &str| {
        let record = good().set(field, json!(null)).text();
        let record = record.replacen(
            &format!("\"{field}\":null"),
            &format!("\"{field}\":{deep}"),
            1,
        );
        assert!(record.len() > 2 * depth, "{field}");
        record
    };
    let as_file = |record: &str| {
        format!(
            "{{\"Records\":[{},{record},{}]}}",
            good().text(),
            good().text()
        )
    };
    // A field that is not read (`responseElements`): the record counts.
    for input in [
        as_file(&with_deep("responseElements")).into_bytes(),
        logs_event(&[good().text(), with_deep("responseElements"), good().text()]),
    ] {
        let batch = read_ok(&mut reader(), "deep", &input);
        assert_eq!(batch.counts.attributed, 3, "{}", batch.counts);
    }
    // Fields that are read: that record is malformed, its neighbours count.
    for field in ["userIdentity", "requestParameters"] {
        for input in [
            as_file(&with_deep(field)).into_bytes(),
            logs_event(&[good().text(), with_deep(field), good().text()]),
        ] {
            let batch = read_ok(&mut reader(), "deep", &input);
            assert_eq!(batch.counts.attributed, 2, "{field}: {}", batch.counts);
            let problem = only_problem(&batch, 1);
            assert!(
                ["wrong_type", "not_json"].contains(&problem.reason),
                "{field}: {problem}"
            );
        }
    }
    // As the input, and beside `Records`.
    assert_eq!(rejected(deep.as_bytes()).reason(), "bad_shape");
    let beside = format!("{{\"deep\":{deep},\"Records\":[{}]}}", good().text());
    match reader().read("beside", beside.as_bytes()) {
        // Passed over like any unknown top-level field...
        Ok((_, batch)) => assert_eq!(batch.counts.attributed, 1, "{}", batch.counts),
        // ...or refused as a whole: either is all or nothing.
        Err(e) => assert_eq!(e.reason(), "bad_shape", "{e}"),
    }
}

/// CloudTrail's 256 KB limit is exact: a record of exactly
/// `MAX_RECORD_BYTES` counts, one byte more is `oversize`.
#[test]
fn a_record_of_exactly_256_kib_counts_and_one_byte_more_is_oversize() {
    let sized = |size: usize| {
        let base = good().set("pad", json!(""));
        let pad = size - base.text().len();
        let record = base.set("pad", json!("p".repeat(pad)));
        assert_eq!(record.text().len(), size);
        record
    };
    fn as_file(records: &[Record]) -> Vec<u8> {
        trail_file(records)
    }
    fn as_logs(records: &[Record]) -> Vec<u8> {
        logs_event(&records.iter().map(Record::text).collect::<Vec<_>>())
    }
    for (path, input) in [
        ("file", as_file as fn(&[Record]) -> Vec<u8>),
        ("logs", as_logs),
    ] {
        let batch = read_ok(
            &mut reader(),
            path,
            &input(&[sized(MAX_RECORD_BYTES), good()]),
        );
        assert_eq!(batch.counts.attributed, 2, "{path}: {}", batch.counts);
        let batch = read_ok(
            &mut reader(),
            path,
            &input(&[sized(MAX_RECORD_BYTES + 1), good()]),
        );
        assert_eq!(batch.counts.attributed, 1, "{path}: {}", batch.counts);
        assert_eq!(only_problem(&batch, 0).reason, "oversize", "{path}");
    }
}

/// 100,000 log events in one batch, nearly all of them not JSON: every one
/// is counted, the good ones count, and the problems kept for the log stay
/// bounded (the rest are only counted).
#[test]
fn a_batch_of_a_hundred_thousand_log_events_is_counted_in_bounded_memory() {
    let n = 100_000;
    let mut messages: Vec<String> = (0..n).map(|i| format!("noise {i}")).collect();
    for at in [0, n / 2, n - 1] {
        messages[at] = good().text();
    }
    let batch = read_ok(&mut reader(), "cwl", &logs_event(&messages));
    assert_eq!(batch.counts.records_in, n as u64);
    assert_eq!(batch.counts.attributed, 3);
    assert_eq!(
        batch.counts.malformed.get("not_json"),
        Some(&(n as u64 - 3))
    );
    assert_eq!(batch.problems.len(), ddb_audit_core::rollup::MAX_PROBLEMS);
    assert_eq!(
        batch.problems.len() as u64 + batch.problems_dropped,
        n as u64 - 3
    );
}

/// Empty things: an empty `Records` array and an empty `logEvents` array
/// are readable inputs with nothing in them; empty objects as records are
/// malformed.
#[test]
fn empty_arrays_are_empty_inputs_and_empty_records_are_malformed() {
    let batch = read_ok(&mut reader(), "empty.json", br#"{"Records":[]}"#);
    assert_eq!(batch.counts.records_in, 0);
    assert!(batch.lifetime.is_empty());
    let batch = read_ok(&mut reader(), "empty.json.gz", &gzip(br#"{"Records":[]}"#));
    assert_eq!(batch.counts.records_in, 0);
    let batch = read_ok(&mut reader(), "cwl", &logs_event(&[]));
    assert_eq!(batch.counts.records_in, 0);
    let file = format!(r#"{{"Records":[{{}},{}]}}"#, good().text());
    let batch = read_ok(&mut reader(), "trail.json", file.as_bytes());
    assert_eq!(batch.counts.attributed, 1);
    assert_eq!(only_problem(&batch, 0).reason, "missing_field");
    let batch = read_ok(
        &mut reader(),
        "cwl",
        &logs_event(&["{}".to_owned(), String::new()]),
    );
    assert_eq!(batch.counts.records_in, 2);
    assert_eq!(batch.counts.malformed_total(), 2, "{}", batch.counts);
}

/// Names longer than the summary table can key (a 2,000-byte table name, a
/// 70 KB caller, ...) make their record malformed (`oversize_name`), so the
/// batch still applies; real names are far shorter.
#[test]
fn names_too_long_for_the_summary_table_are_malformed() {
    let long = |n: usize| "n".repeat(n);
    let cases = [
        ("a table name", good().params(json!({"tableName": long(2_000), "key": {"pk": "cust-7781"}}))),
        ("an index name", good().params(json!({"tableName": "orders", "indexName": long(256)}))),
        ("`eventName`", good().set("eventName", json!(long(300)))),
        ("`errorCode`", good().error(&long(256))),
        ("`recipientAccountId`", good().set("recipientAccountId", json!(long(65)))),
        ("`awsRegion`", good().set("awsRegion", json!(long(65)))),
        (
            "the caller",
            good().identity(identity_of_length(70_000)),
        ),
        (
            "a table's account",
            good().params(json!({"tableName": format!("arn:aws:dynamodb:us-east-1:{}:table/orders", long(100))})),
        ),
    ];
    for (what, bad) in cases {
        let (batch, problem) = beside_good(bad);
        assert_eq!(
            batch.counts.malformed.get("oversize_name"),
            Some(&1),
            "{what}"
        );
        assert!(problem.detail.contains(what), "{what}: {problem}");
    }
    // At the limits they count.
    let at_limits = good()
        .params(json!({"tableName": long(255), "indexName": long(255)}))
        .set("awsRegion", json!(long(64)))
        .identity(identity_of_length(900));
    let batch = read_ok(&mut reader(), "trail.json", &trail_file(&[at_limits]));
    assert_eq!(batch.counts.attributed, 1, "{}", batch.counts);
}

/// An IAM user whose caller string (its ARN) is `len` bytes.
fn identity_of_length(len: usize) -> serde_json::Value {
    let prefix = format!("arn:aws:iam::{ACCOUNT}:user/");
    json!({"type": "IAMUser", "arn": format!("{prefix}{}", "u".repeat(len - prefix.len())), "accountId": ACCOUNT})
}

// ---------------------------------------------------------------------------
// The same hostile input through the ingest functions and the summary table,
// against moto.

mod through_the_store {
    use std::collections::BTreeMap;

    use ddb_audit_aws::ingest::{handle_logs, handle_s3, Deps};
    use ddb_audit_aws::store::SummaryStore;
    use ddb_audit_core::attribute::Rules;
    use ddb_audit_core::config::Config;
    use ddb_audit_core::input::{InputReader, Limits};
    use ddb_audit_core::rollup::Batch;
    use ddb_audit_core::row::Row;
    use ddb_audit_tests::moto::Moto;
    use ddb_audit_tests::{gzip, logs_event, trail_file, Record, ACCOUNT, REGION};
    use lambda_runtime::{Context, LambdaEvent};
    use serde_json::{json, Value};

    const TABLE: &str = "ddb-audit-summary";
    const BUCKET: &str = "ddb-audit-trail-111122223333";

    async fn env(vars: &[(&str, &str)]) -> anyhow::Result<(Moto, Deps)> {
        let moto = Moto::start()?;
        let mut all = vec![("SUMMARY_TABLE".to_owned(), TABLE.to_owned())];
        all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config =
            Config::from_vars(|name| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))?;
        let store = SummaryStore::new(moto.dynamodb(), TABLE, 30, 90).with_concurrency(2);
        store.create_table().await?;
        let s3 = moto.s3();
        s3.create_bucket().bucket(BUCKET).send().await?;
        let deps = Deps {
            config,
            store,
            s3,
            function: "bad-input",
        };
        Ok((moto, deps))
    }

    /// An SQS event, one message per (message id, S3 notification body).
    fn sqs(
        bodies: &[(&str, String)],
    ) -> anyhow::Result<LambdaEvent<Box<serde_json::value::RawValue>>> {
        let records: Vec<Value> = bodies
            .iter()
            .map(|(id, body)| json!({"messageId": id, "receiptHandle": "rh", "body": body,
                "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:ddb-audit-objects"), "awsRegion": REGION}))
            .collect();
        let raw = serde_json::value::to_raw_value(&json!({ "Records": records }))?;
        Ok(LambdaEvent::new(raw, Context::default()))
    }

    /// An S3 notification for `key` as S3 writes it (URL-encoded, `+` for a space).
    fn notification(encoded_key: &str, size: u64) -> String {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
            "eventTime": "2024-03-15T12:06:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
                   "object": {"key": encoded_key, "size": size, "eTag": "0123456789abcdef", "sequencer": "0065F4"}}}]})
        .to_string()
    }

    /// What `analyze` counts of the inputs, as the store lists rows.
    fn analyze(inputs: &[&[u8]]) -> Vec<Row> {
        let mut reader = InputReader::new(Rules::default(), Limits::default());
        let mut all = Batch::default();
        for input in inputs {
            all.merge(reader.read("expected", input).expect("readable").1);
        }
        sorted(
            all.lifetime
                .iter()
                .map(|(k, r)| Row::lifetime(k, r))
                .collect(),
        )
    }

    fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
        for r in &mut rows {
            r.source_ips.clear();
            r.vpc_endpoints.clear();
            r.invoked_by.clear();
        }
        rows.sort_by(|a, b| {
            (&a.account, &a.region, &a.table, &a.caller)
                .cmp(&(&b.account, &b.region, &b.table, &b.caller))
        });
        rows
    }

    fn user(arn: &str) -> Value {
        json!({"type": "IAMUser", "arn": arn, "accountId": ACCOUNT, "accessKeyId": "AKIAYEXAMPLEKEY00001"})
    }

    /// Account ids, regions, tables and callers containing the key
    /// delimiter `#` (and the escape character `%`), chosen so that joining
    /// them with `#` would give several of them the same key. Each is its
    /// own row, with its own exact counts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn names_containing_the_key_delimiter_never_share_a_row() -> anyhow::Result<()> {
        let (_moto, deps) = env(&[]).await?;
        let at =
            |account: &str, region: &str, table: &str, caller: &str, n: usize| -> Vec<Record> {
                (0..n)
                    .map(|_| {
                        Record::on("GetItem", table)
                            .set("recipientAccountId", json!(account))
                            .set("awsRegion", json!(region))
                            .identity(user(caller))
                    })
                    .collect()
            };
        let c = |name: &str| format!("arn:aws:iam::{ACCOUNT}:user/{name}");
        // Naively, the first three are all TABLE#111122223333#us-east-1#x#t,
        // and the callers of the next three all CALLER#...a#b or a prefix.
        let mut records = Vec::new();
        records.extend(at("111122223333#us-east-1", "x", "t", &c("app"), 1));
        records.extend(at("111122223333", "us-east-1#x", "t", &c("app"), 2));
        records.extend(at("111122223333", "us-east-1", "x#t", &c("app"), 3));
        records.extend(at("111122223333", "us-east-1", "x%23t", &c("app"), 4));
        records.extend(at("111122223333%23us-east-1", "x", "t", &c("app"), 5));
        records.extend(at("111122223333", "us-east-1", "orders", &c("a#b"), 6));
        records.extend(at("111122223333", "us-east-1", "orders", &c("a"), 7));
        records.extend(at(
            "111122223333",
            "us-east-1",
            "orders",
            &c("a#CALLER#b"),
            8,
        ));
        records.extend(at("111122223333", "us-east-1", "orders", &c("a%23b"), 9));
        // Calls that name no table are counted per account and region.
        for (account, region, n) in [
            ("111122223333#us-east-1", "x", 1),
            ("111122223333", "us-east-1#x", 2),
        ] {
            records.extend((0..n).map(|_| {
                Record::new("ListTables")
                    .set("recipientAccountId", json!(account))
                    .set("awsRegion", json!(region))
                    .identity(user(&c("app")))
            }));
        }
        let file = trail_file(&records);
        ddb_audit_tests::put_object(
            &deps.s3,
            BUCKET,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/15/delimiters.json",
            file.clone(),
        )
        .await?;
        let response = handle_s3(
            &deps,
            sqs(&[(
                "m1",
                notification(
                    "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/15/delimiters.json",
                    1,
                ),
            )])?,
        )
        .await?;
        assert!(response.batch_item_failures.is_empty());

        let stored = sorted(deps.store.scan_rows(false).await?);
        let expected = analyze(&[&file]);
        assert_eq!(
            expected.len(),
            11,
            "eleven distinct (account, region, table, caller)"
        );
        assert_eq!(stored, expected);
        let calls: BTreeMap<(String, String, Option<String>, String), u64> = stored
            .iter()
            .map(|r| {
                (
                    (
                        r.account.clone(),
                        r.region.clone(),
                        r.table.clone(),
                        r.caller.clone(),
                    ),
                    r.calls,
                )
            })
            .collect();
        assert_eq!(calls.len(), 11);
        let mut counts: Vec<u64> = calls.values().copied().collect();
        counts.sort();
        assert_eq!(counts, [1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9]);
        // The daily rows too: one per lifetime row, same counts.
        let daily = deps.store.scan_rows(true).await?;
        assert_eq!(daily.iter().filter(|r| r.day.is_some()).count(), 11);
        // The queries by key find each table's own rows.
        let rows = deps
            .store
            .table_rows("111122223333", "us-east-1#x", Some("t"))
            .await?;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].calls, 2);
        let rows = deps.store.caller_rows(&c("a#b")).await?;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].calls, 6);
        Ok(())
    }

    /// A record whose names are too long to key is malformed: its batch
    /// applies (DynamoDB, and moto, refuse a partition key over 2048 bytes,
    /// which would otherwise fail the batch on every retry).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_with_a_name_too_long_to_key_does_not_fail_its_batch() -> anyhow::Result<()> {
        let (_moto, deps) = env(&[]).await?;
        let good = || Record::on("GetItem", "orders");
        let events = [
            good().text(),
            Record::on("GetItem", &"t".repeat(3_000)).text(),
            good()
                .identity(user(&format!(
                    "arn:aws:iam::{ACCOUNT}:user/{}",
                    "u".repeat(2_000)
                )))
                .text(),
            good().text(),
        ];
        let payload = logs_event(&events);
        let raw = serde_json::from_slice(&payload)?;
        handle_logs(&deps, LambdaEvent::new(raw, Context::default())).await?;
        let stored = sorted(deps.store.scan_rows(false).await?);
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].calls, 2);
        assert_eq!(stored, analyze(&[&payload]));
        Ok(())
    }

    /// Object keys with every kind of special character, URL-encoded as S3
    /// writes them in notifications, are read (not `missing`), and each
    /// object counts once; a zero-byte object and an empty `Records` file
    /// are skipped and write nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_with_special_characters_are_read_and_empty_objects_skipped() -> anyhow::Result<()>
    {
        let (moto, deps) = env(&[]).await?;
        let prefix = format!("AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2024/03/15/");
        let names = [
            "plain.json.gz",
            "with space and+plus.json.gz",
            "hash#question?percent%25amp&eq=.json.gz",
            "unicode-é-日本-🙂.json.gz",
            "quotes'\"<>{}|\\^`~!$()*,;@[].json.gz",
            // moto cannot store a key with CR or LF (S3 can): see the test
            // of `decode_key` below for those.
            "tab\tnbsp\u{a0}zero-width\u{200b}.json.gz",
            "a/../b/./c//d.json.gz",
        ];
        let mut bodies = Vec::new();
        let mut inputs = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let key = format!("{prefix}{name}");
            let records: Vec<Record> = (0..=i).map(|_| Record::on("GetItem", "orders")).collect();
            let file = gzip(&trail_file(&records));
            ddb_audit_tests::put_object(&deps.s3, BUCKET, &key, file.clone()).await?;
            inputs.push(file);
            bodies.push((format!("m{i}"), notification(&url_encode(&key), 100)));
        }
        // Empty things.
        ddb_audit_tests::put_object(
            &deps.s3,
            BUCKET,
            &format!("{prefix}zero.json.gz"),
            Vec::new(),
        )
        .await?;
        ddb_audit_tests::put_object(
            &deps.s3,
            BUCKET,
            &format!("{prefix}empty.json"),
            br#"{"Records":[]}"#.to_vec(),
        )
        .await?;
        bodies.push((
            "zero".into(),
            notification(&url_encode(&format!("{prefix}zero.json.gz")), 0),
        ));
        bodies.push((
            "empty".into(),
            notification(&url_encode(&format!("{prefix}empty.json")), 14),
        ));
        let refs: Vec<(&str, String)> = bodies
            .iter()
            .map(|(id, b)| (id.as_str(), b.clone()))
            .collect();
        let response = handle_s3(&deps, sqs(&refs)?).await?;
        assert!(response.batch_item_failures.is_empty());
        // Delivered again: nothing counts twice.
        handle_s3(&deps, sqs(&refs)?).await?;
        assert!(deps.store.rejects().await?.is_empty(), "no key was missed");
        let stored = sorted(deps.store.scan_rows(false).await?);
        let expected: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        assert_eq!(stored, analyze(&expected));
        assert_eq!(stored.iter().map(|r| r.calls).sum::<u64>(), 28);
        // One ledger item per object with records; none for the empty ones.
        let ledgers = moto
            .dynamodb()
            .scan()
            .table_name(TABLE)
            .send()
            .await?
            .items()
            .iter()
            .filter(|i| {
                i.get("pk")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|pk| pk.starts_with("LEDGER#"))
            })
            .count();
        assert_eq!(ledgers, names.len());
        Ok(())
    }

    /// Percent-encodes a key as S3 notifications do (space as `+`).
    fn url_encode(key: &str) -> String {
        let mut out = String::new();
        for b in key.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'*' => {
                    out.push(char::from(b))
                }
                b' ' => out.push('+'),
                b => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    /// JSON of the wrong shape at each level of a notification: the event
    /// as a whole is refused; inside a readable event each bad message fails
    /// alone (returned for SQS to retry, then dead-letter) and the others
    /// apply.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn notifications_of_the_wrong_shape_fail_only_their_message() -> anyhow::Result<()> {
        let (_moto, deps) = env(&[]).await?;
        let key = format!("AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2024/03/15/ok.json");
        let file = trail_file(&[Record::on("GetItem", "orders")]);
        ddb_audit_tests::put_object(&deps.s3, BUCKET, &key, file.clone()).await?;
        let bad_bodies = [
            ("not-json", "cust-7781 is not JSON".to_owned()),
            ("records-object", r#"{"Records": {"s3": 1}}"#.to_owned()),
            (
                "no-s3",
                r#"{"Records": [{"eventName": "ObjectCreated:Put"}]}"#.to_owned(),
            ),
            (
                "key-number",
                notification("x", 1).replace("\"key\":\"x\"", "\"key\":7"),
            ),
            ("bad-escape", notification("%zz", 1)),
        ];
        let mut bodies: Vec<(&str, String)> =
            bad_bodies.iter().map(|(id, b)| (*id, b.clone())).collect();
        // Another publisher's SNS message is acknowledged, not failed: no
        // retry would make it a notification (a counted `MessagesSkipped`).
        bodies.push((
            "sns-not-json",
            json!({"Type": "Notification", "Message": "{{{"}).to_string(),
        ));
        bodies.push(("good", notification(&key, 100)));
        let response = handle_s3(&deps, sqs(&bodies)?).await?;
        let mut failed: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        failed.sort();
        let mut expected: Vec<String> = bad_bodies.iter().map(|(id, _)| id.to_string()).collect();
        expected.sort();
        assert_eq!(failed, expected);
        assert_eq!(
            sorted(deps.store.scan_rows(false).await?),
            analyze(&[&file])
        );

        // Events that are not events at all are refused whole.
        for event in [
            json!([]),
            json!({"Records": 5}),
            json!({"detail-type": 5}),
            json!("x"),
        ] {
            let raw = serde_json::value::to_raw_value(&event)?;
            let result = handle_s3(&deps, LambdaEvent::new(raw, Context::default())).await;
            assert!(result.is_err(), "{event}");
        }
        Ok(())
    }

    /// The gzip bomb as an S3 object: streamed into the capped decoder,
    /// stopped at the cap and recorded as an `over_cap` reject, so it is not
    /// retried.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_gzip_bomb_object_is_rejected_at_the_cap() -> anyhow::Result<()> {
        let (_moto, deps) = env(&[("MAX_DECOMPRESSED_BYTES", "1048576")]).await?;
        let key = format!("AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2024/03/15/bomb.json.gz");
        let bomb = ddb_audit_tests::gzip_bomb(10 << 30);
        ddb_audit_tests::put_object(&deps.s3, BUCKET, &key, bomb).await?;
        let response = handle_s3(&deps, sqs(&[("bomb", notification(&key, 1))])?).await?;
        assert!(response.batch_item_failures.is_empty());
        let rejects = deps.store.rejects().await?;
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].reason, "over_cap");
        assert_eq!(rejects[0].object, Some((BUCKET.to_owned(), key)));
        assert!(deps.store.scan_rows(false).await?.is_empty());
        Ok(())
    }
}

/// Keys as S3 notifications encode them, control characters included (moto
/// cannot store those, so they are checked here rather than end to end).
#[test]
fn notification_keys_decode_every_special_character() {
    use ddb_audit_core::notification::decode_key;
    for (encoded, key) in [
        ("a%0D%0Ab%09c", "a\r\nb\tc"),
        ("with+space%2Bplus", "with space+plus"),
        ("%23%3F%25%26%3D", "#?%&="),
        ("unicode-%C3%A9-%E6%97%A5-%F0%9F%99%82", "unicode-é-日-🙂"),
        ("%00nul", "\0nul"),
    ] {
        assert_eq!(decode_key(encoded).as_deref(), Ok(key), "{encoded}");
    }
    // Not decodable: an error naming the key, never a guess.
    for bad in ["%zz", "%C3", "trailing%2", "%FF%FE"] {
        let err = decode_key(bad).expect_err(bad);
        assert_eq!(err.reason(), "bad_shape", "{bad}: {err}");
    }
}

/// JSON of the wrong shape inside a CloudWatch Logs payload: a payload
/// whose `logEvents` is not a list of events is rejected as a whole; an
/// event of the wrong shape inside a list is one malformed record.
#[test]
fn log_payloads_of_the_wrong_shape() {
    let payload = |events: serde_json::Value| {
        awslogs(&gzip(
            json!({"messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": "g",
                   "logStream": "s", "subscriptionFilters": [], "logEvents": events})
            .to_string()
            .as_bytes(),
        ))
    };
    for events in [
        json!(5),
        json!("cust-7781"),
        json!({"id": "1"}),
        json!(null),
    ] {
        assert_eq!(
            rejected(&payload(events.clone())).reason(),
            "bad_shape",
            "{events}"
        );
    }
    let event = |message: serde_json::Value| json!({"id": "9", "timestamp": 1, "message": message});
    for bad in [
        json!(5),
        json!("cust-7781"),
        json!([]),
        event(json!(5)),
        event(json!(null)),
        event(json!(["cust-7781"])),
    ] {
        let events = json!([
            event(json!(good().text())),
            bad.clone(),
            event(json!(good().text()))
        ]);
        let batch = read_ok(&mut reader(), "cwl", &payload(events));
        assert_eq!(batch.counts.attributed, 2, "{bad}: {}", batch.counts);
        assert_eq!(batch.counts.malformed_total(), 1, "{bad}: {}", batch.counts);
        assert_eq!(only_problem(&batch, 1).index, 1);
    }
}
