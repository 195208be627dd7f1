//! The fast record scanner (`ddb_audit_core::scan`) against serde_json: on
//! real and sample records, and on generated ones with fields of every JSON
//! type and strings with escapes, the scanner either leaves the record to
//! serde_json or reads exactly what serde_json reads.

use std::path::PathBuf;

use ddb_audit_core::record::RecordView;
use ddb_audit_core::scan;
use ddb_audit_tests::{workspace_root, Record};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};

/// Whether the scanner answered for `text`; panics if it answered
/// differently from serde_json.
fn scanned_alike(text: &str) -> bool {
    let Some((view, len)) = scan::record(text) else {
        return false;
    };
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<RecordView<'_>>();
    match stream.next() {
        Some(Ok(expected)) => {
            assert_eq!(format!("{view:?}"), format!("{expected:?}"), "{text}");
            assert_eq!(len, stream.byte_offset(), "{text}");
        }
        other => panic!("the scanner read a record serde_json refuses ({other:?}): {text}"),
    }
    true
}

fn records_of(path: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("a CloudTrail file");
    doc["Records"].as_array().expect("a Records array").clone()
}

#[test]
fn the_scanner_reads_real_and_sample_records_as_serde_json_does() {
    let mut files = vec![
        workspace_root().join("events/cloudtrail/records.json"),
        workspace_root().join("events/later/records.json"),
    ];
    // The real records when they are beside the checkout; the samples always.
    if let Some(fixtures) =
        ddb_audit_tests::real_fixtures("scan::the_scanner_reads_real_and_sample_records")
    {
        files.push(fixtures.join("ibm-dynamodb-cloudtrail-records.json"));
        files.push(fixtures.join("seed-sso-console-scan.json"));
    }
    let (mut total, mut answered) = (0, 0);
    for file in &files {
        for record in records_of(file) {
            total += 1;
            let compact = record.to_string();
            answered += usize::from(scanned_alike(&compact));
            // As CloudTrail files are laid out by other tools: spaces and lines.
            let pretty = serde_json::to_string_pretty(&record).expect("serialises");
            assert_eq!(scanned_alike(&pretty), scanned_alike(&compact), "{pretty}");
        }
    }
    assert!(total >= 20, "only {total} records in {files:?}");
    // The fast path is the one real records take.
    assert!(
        answered * 10 >= total * 9,
        "the scanner read only {answered} of {total} records"
    );
}

/// A JSON value of any type, strings with the escapes and characters that
/// records carry.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-zA-Z0-9:/._-]{0,24}".prop_map(Value::String),
        "[ -~]{0,16}".prop_map(Value::String),
        "(\"|\\\\|/|\n|\t|\u{1}|é|€|😀|\u{7f}|a){0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Fields the scanner reads, at every level, and a few it passes over.
const POINTERS: &[&str] = &[
    "/eventName",
    "/eventSource",
    "/eventID",
    "/userAgent",
    "/errorCode",
    "/sessionCredentialFromConsole",
    "/userIdentity",
    "/userIdentity/arn",
    "/userIdentity/sessionContext",
    "/userIdentity/sessionContext/sessionIssuer",
    "/userIdentity/sessionContext/sessionIssuer/arn",
    "/userIdentity/onBehalfOf",
    "/requestParameters",
    "/requestParameters/tableName",
    "/requestParameters/TableName",
    "/requestParameters/key",
    "/requestParameters/requestItems",
    "/requestParameters/transactItems",
    "/resources",
    "/responseElements",
    "/tlsDetails",
];

/// Sets the field at `pointer` when its parent is an object (an earlier
/// change may have made it something else).
fn set_where_possible(record: &mut Value, pointer: &str, value: Value) {
    let (parent, field) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    if let Some(Value::Object(parent)) = record.pointer_mut(parent) {
        parent.insert(field.to_owned(), value);
    }
}

proptest! {
    #![proptest_config(Config { cases: 512, ..Config::default() })]

    #[test]
    fn the_scanner_agrees_with_serde_json_on_generated_records(
        changes in prop::collection::vec((0..POINTERS.len(), any_value()), 1..5),
        pretty in any::<bool>(),
    ) {
        let mut record = Record::on("BatchGetItem", "orders")
            .params(json!({"requestItems": {"orders": {"keys": [{"pk": "k"}]}}}))
            .set("resources", json!([{"type": "AWS::DynamoDB::Table", "ARN": "arn:aws:dynamodb:us-east-1:111122223333:table/orders"}]))
            .json()
            .clone();
        for (pointer, value) in changes {
            set_where_possible(&mut record, POINTERS[pointer], value);
        }
        let text = if pretty {
            serde_json::to_string_pretty(&record).expect("serialises")
        } else {
            record.to_string()
        };
        scanned_alike(&text);
        // Whatever follows a record in a file does not change the answer.
        let followed = format!("{text} ,{{\"eventName\":\"x\"}}]}}");
        prop_assert_eq!(scanned_alike(&followed), scanned_alike(&text));
    }
}
