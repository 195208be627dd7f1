//! DESIGN.md section 3, one test per rule: which table, which caller, what
//! kind of call. Each test builds its own records, reads them as one
//! CloudTrail file and checks the exact rows and counters.

use std::collections::BTreeMap;

use ddb_audit_core::attribute::Rules;
use ddb_audit_core::caller::{CallerType, HumanRoles};
use ddb_audit_core::rollup::{DailyKey, Rollup, RollupKey};
use ddb_audit_tests::{
    callers, identity, keys, read, read_with, row, table_row, unix, Record, ACCOUNT, OTHER_ACCOUNT,
    REGION,
};
use serde_json::json;

/// The caller of records built with the default identity.
const APP: &str = "arn:aws:iam::111122223333:role/service/orders-api";

/// (calls, reads, writes, errors) of a row.
fn counters(r: &Rollup) -> (u64, u64, u64, u64) {
    (r.calls, r.reads, r.writes, r.errors)
}

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn key(account: &str, region: &str, table: Option<&str>, caller: &str) -> RollupKey {
    RollupKey::new(account, region, table, caller)
}

fn stream_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/2024-01-09T08:15:27.118")
}

fn statement(event_name: &str, text: &str) -> Record {
    Record::new(event_name).params(json!({ "statement": text }))
}

fn statements(event_name: &str, list_field: &str, texts: &[&str]) -> Record {
    let items: Vec<_> = texts.iter().map(|t| json!({ "statement": t })).collect();
    Record::new(event_name).params(json!({ list_field: items }))
}

#[test]
fn only_dynamodb_event_source_counts() {
    let batch = read(&[
        Record::on("GetItem", "orders"),
        Record::on("GetObject", "orders").set("eventSource", json!("s3.amazonaws.com")),
        Record::new("Decrypt").set("eventSource", json!("kms.amazonaws.com")),
        Record::new("AssumeRole").set("eventSource", json!("sts.amazonaws.com")),
    ]);
    assert_eq!(batch.counts.records_in, 4);
    assert_eq!(batch.counts.attributed, 1);
    assert_eq!(batch.counts.skipped, BTreeMap::from([("not_dynamodb", 3)]));
    assert_eq!(keys(&batch), [key(ACCOUNT, REGION, Some("orders"), APP)]);
}

#[test]
fn table_name_belongs_to_the_recipient_account_and_region() {
    // A call logged in the table owner's trail: the caller is in another account.
    let batch = read(&[Record::on("GetItem", "orders")
        .set("recipientAccountId", json!(OTHER_ACCOUNT))
        .set("awsRegion", json!("eu-west-1"))]);
    assert_eq!(
        keys(&batch),
        [key(OTHER_ACCOUNT, "eu-west-1", Some("orders"), APP)]
    );
}

#[test]
fn table_arn_in_table_name_gives_owning_account_and_region() {
    let arn = format!("arn:aws:dynamodb:eu-west-1:{OTHER_ACCOUNT}:table/shared-catalog");
    let batch = read(&[Record::on("GetItem", &arn)]);
    assert_eq!(
        keys(&batch),
        [key(OTHER_ACCOUNT, "eu-west-1", Some("shared-catalog"), APP)]
    );
}

#[test]
fn batch_get_item_counts_once_per_table() {
    let shared = format!("arn:aws:dynamodb:{REGION}:{OTHER_ACCOUNT}:table/shared-catalog");
    let batch = read(&[Record::new("BatchGetItem").params(json!({
        "requestItems": {
            "orders": {"keys": [{"orderId": "ord-55120"}, {"orderId": "ord-55121"}, {"orderId": "ord-55122"}]},
            "customers": {"keys": [{"customerId": "cust-7781"}], "consistentRead": true},
            shared.as_str(): {"keys": [{"sku": "sku-40913"}]},
        }
    }))]);
    assert_eq!(batch.lifetime.len(), 3, "{:#?}", keys(&batch));
    for (account, table) in [
        (ACCOUNT, "orders"),
        (ACCOUNT, "customers"),
        (OTHER_ACCOUNT, "shared-catalog"),
    ] {
        let r = row(&batch, account, REGION, Some(table), APP).expect(table);
        assert_eq!(counters(r), (1, 1, 0, 0), "{table}");
        assert_eq!(r.operations, map(&[("BatchGetItem", 1)]));
    }
}

#[test]
fn batch_write_item_counts_once_per_table() {
    let batch = read(&[Record::new("BatchWriteItem").params(json!({
        "requestItems": {
            "orders": [
                {"putRequest": {"key": {"orderId": "ord-55120"}, "items": ["orderId", "status"]}},
                {"deleteRequest": {"key": {"orderId": "ord-55119"}}},
            ],
            "audit-log": [{"putRequest": {"key": {"eventId": "evt-20240315-0042"}, "items": ["eventId"]}}],
        }
    }))]);
    assert_eq!(batch.lifetime.len(), 2);
    assert_eq!(counters(table_row(&batch, "orders", APP)), (1, 0, 1, 0));
    assert_eq!(counters(table_row(&batch, "audit-log", APP)), (1, 0, 1, 0));
}

#[test]
fn transact_write_condition_check_counts_as_write() {
    let batch = read(&[
        // CloudTrail's list form, field names in either case.
        Record::new("TransactWriteItems").params(json!({
            "requestItems": [
                {"operation": "Put", "tableName": "orders", "key": {"orderId": "ord-55121"}, "items": ["orderId"]},
                {"operation": "Update", "tableName": "orders", "key": {"orderId": "ord-55120"}},
                {"operation": "ConditionCheck", "TableName": "inventory", "Key": {"sku": "sku-40913"},
                 "ConditionExpression": "available > :zero"},
            ],
            "returnConsumedCapacity": "TOTAL",
        })),
        // The SDK's shape, as some tools log it.
        Record::new("TransactWriteItems").params(json!({
            "transactItems": [
                {"put": {"tableName": "orders", "key": {"orderId": "ord-55123"}}},
                {"conditionCheck": {"tableName": "inventory", "key": {"sku": "sku-40913"}}},
            ]
        })),
    ]);
    assert_eq!(batch.lifetime.len(), 2, "{:#?}", keys(&batch));
    assert_eq!(counters(table_row(&batch, "orders", APP)), (2, 0, 2, 0));
    assert_eq!(counters(table_row(&batch, "inventory", APP)), (2, 0, 2, 0));
}

#[test]
fn transact_get_items_reads_every_table_it_names() {
    let batch = read(&[Record::new("TransactGetItems").params(json!({
        "requestItems": [
            {"tableName": "orders", "key": {"orderId": "ord-55122"}},
            {"TableName": "customers", "key": {"customerId": "cust-7781"}},
            {"tableName": "orders", "key": {"orderId": "ord-55120"}},
        ]
    }))]);
    assert_eq!(batch.lifetime.len(), 2);
    assert_eq!(counters(table_row(&batch, "orders", APP)), (1, 1, 0, 0));
    assert_eq!(counters(table_row(&batch, "customers", APP)), (1, 1, 0, 0));
}

#[test]
fn each_call_counts_once_for_each_distinct_table() {
    // Five items on one table and a table named twice, in two forms.
    let batch = read(&[Record::new("TransactWriteItems").params(json!({
        "requestItems": [
            {"operation": "Put", "tableName": "orders"},
            {"operation": "Put", "tableName": "orders"},
            {"operation": "Delete", "TableName": "orders"},
            {"operation": "Update", "tableName": format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders")},
            {"operation": "Put", "tableName": "audit-log"},
        ]
    }))]);
    assert_eq!(batch.counts.attributed, 1);
    assert_eq!(batch.lifetime.len(), 2);
    assert_eq!(counters(table_row(&batch, "orders", APP)), (1, 0, 1, 0));
    assert_eq!(counters(table_row(&batch, "audit-log", APP)), (1, 0, 1, 0));
}

#[test]
fn partiql_table_comes_from_each_statement_quoted_or_not() {
    let batch = read(&[
        statement(
            "ExecuteStatement",
            r#"SELECT * FROM "orders" WHERE orderId = 'ord-55120'"#,
        ),
        statement(
            "ExecuteStatement",
            "select customerId, tier from customers where customerId = 'cust-7781'",
        ),
        statement(
            "ExecuteStatement",
            r#"INSERT INTO "audit-log" VALUE {'eventId' : 'evt-20240315-0042', 'action' : ***(Redacted)}"#,
        ),
        statement(
            "ExecuteStatement",
            "UPDATE inventory SET available = ***(Redacted) WHERE sku = 'sku-40913'",
        ),
        statement(
            "ExecuteStatement",
            r#"DELETE FROM "sessions" WHERE sessionId = 'sess-e5c1f9'"#,
        ),
        statement(
            "ExecuteStatement",
            &format!(
                r#"SELECT * FROM "arn:aws:dynamodb:eu-west-1:{OTHER_ACCOUNT}:table/shared-catalog" WHERE sku = 'sku-40913'"#
            ),
        ),
    ]);
    assert_eq!(batch.lifetime.len(), 6, "{:#?}", keys(&batch));
    assert_eq!(counters(table_row(&batch, "orders", APP)), (1, 1, 0, 0));
    assert_eq!(counters(table_row(&batch, "customers", APP)), (1, 1, 0, 0));
    assert_eq!(counters(table_row(&batch, "audit-log", APP)), (1, 0, 1, 0));
    assert_eq!(counters(table_row(&batch, "inventory", APP)), (1, 0, 1, 0));
    assert_eq!(counters(table_row(&batch, "sessions", APP)), (1, 0, 1, 0));
    let shared = row(
        &batch,
        OTHER_ACCOUNT,
        "eu-west-1",
        Some("shared-catalog"),
        APP,
    );
    assert_eq!(shared.map(counters), Some((1, 1, 0, 0)));
}

#[test]
fn partiql_literals_never_name_a_table() {
    let batch = read(&[
        statement(
            "ExecuteStatement",
            r#"SELECT "from", note FROM "orders" WHERE note = 'FROM customers' AND total > ***(Redacted)"#,
        ),
        statement(
            "ExecuteStatement",
            "UPDATE orders SET note = 'INSERT INTO audit-log' WHERE orderId = 'it''s ord-55120'",
        ),
    ]);
    assert_eq!(keys(&batch), [key(ACCOUNT, REGION, Some("orders"), APP)]);
    assert_eq!(counters(table_row(&batch, "orders", APP)), (2, 1, 1, 0));
}

#[test]
fn partiql_kind_comes_from_each_tables_statements_not_read_only() {
    let batch = read(&[
        // readOnly says true, but one statement writes.
        statements(
            "BatchExecuteStatement",
            "requestItems",
            &[
                r#"SELECT * FROM "orders" WHERE orderId = 'ord-55120'"#,
                r#"UPDATE "inventory" SET reserved = ***(Redacted) WHERE sku = 'sku-40913'"#,
            ],
        )
        .set("readOnly", json!(true)),
        // readOnly says false, but the EXISTS check only reads its table.
        statements(
            "ExecuteTransaction",
            "transactStatements",
            &[
                r#"EXISTS(SELECT * FROM "customers" WHERE customerId = 'cust-7781')"#,
                r#"INSERT INTO "audit-log" VALUE {'eventId' : 'evt-20240315-0043'}"#,
            ],
        )
        .set("readOnly", json!(false)),
        // A lone DELETE logged as read-only is still a write.
        statement(
            "ExecuteStatement",
            r#"DELETE FROM "sessions" WHERE sessionId = 'sess-e5c1f9'"#,
        )
        .set("readOnly", json!(true)),
        // Reads and writes on one table in one call: one call, both kinds.
        statements(
            "BatchExecuteStatement",
            "requestItems",
            &[
                r#"SELECT * FROM "wallets" WHERE walletId = 'wal-3310'"#,
                r#"UPDATE "wallets" SET balance = ***(Redacted) WHERE walletId = 'wal-3310'"#,
            ],
        ),
    ]);
    assert_eq!(batch.lifetime.len(), 6, "{:#?}", keys(&batch));
    assert_eq!(counters(table_row(&batch, "orders", APP)), (1, 1, 0, 0));
    assert_eq!(counters(table_row(&batch, "inventory", APP)), (1, 0, 1, 0));
    assert_eq!(counters(table_row(&batch, "customers", APP)), (1, 1, 0, 0));
    assert_eq!(counters(table_row(&batch, "audit-log", APP)), (1, 0, 1, 0));
    assert_eq!(counters(table_row(&batch, "sessions", APP)), (1, 0, 1, 0));
    assert_eq!(counters(table_row(&batch, "wallets", APP)), (1, 1, 1, 0));
}

#[test]
fn stream_get_records_table_from_shard_iterator() {
    let iterator = format!(
        "{}|1|AAAAAAAAAAGq3kYh0Vb1nT7p2X9rLwE5EXAMPLE==",
        stream_arn("orders")
    );
    let batch = read(&[Record::new("GetRecords")
        .params(json!({"shardIterator": iterator, "limit": 100}))
        .set("readOnly", json!(true))]);
    assert_eq!(keys(&batch), [key(ACCOUNT, REGION, Some("orders"), APP)]);
    let r = table_row(&batch, "orders", APP);
    assert_eq!(counters(r), (1, 1, 0, 0));
    assert_eq!(r.operations, map(&[("GetRecords", 1)]));
}

#[test]
fn stream_arn_names_the_table_of_stream_calls() {
    let batch = read(&[
        Record::new("GetShardIterator").params(json!({
            "streamArn": stream_arn("orders"),
            "shardId": "shardId-00000001710498612345-5e1f2a3b",
            "shardIteratorType": "LATEST",
        })),
        Record::new("DescribeStream").params(json!({"streamArn": stream_arn("orders")})),
    ]);
    assert_eq!(keys(&batch), [key(ACCOUNT, REGION, Some("orders"), APP)]);
    let r = table_row(&batch, "orders", APP);
    assert_eq!(counters(r), (2, 1, 0, 0));
    assert_eq!(
        r.operations,
        map(&[("DescribeStream", 1), ("GetShardIterator", 1)])
    );
}

#[test]
fn resources_are_the_fallback_table() {
    let resources = json!([
        {"accountId": ACCOUNT, "type": "AWS::KMS::Key",
         "ARN": format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/5e2a7c1d-3b4f-4a6e-8d9c-0b1a2f3e4d5c")},
        {"accountId": ACCOUNT, "type": "AWS::DynamoDB::Table",
         "ARN": format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders")},
    ]);
    let batch = read(&[
        // No request parameters at all: the resources name the table.
        Record::new("GetItem").set("resources", resources.clone()),
        // A statement that cannot be read: the call still lands on its table.
        statement("ExecuteStatement", "EXPLAIN SELECT * FROM whatever")
            .set("resources", resources.clone()),
        // A named table wins over the resources.
        Record::on("Query", "customers").set("resources", resources),
    ]);
    assert_eq!(batch.lifetime.len(), 2, "{:#?}", keys(&batch));
    let orders = table_row(&batch, "orders", APP);
    assert_eq!(counters(orders), (2, 1, 0, 0));
    assert_eq!(
        orders.operations,
        map(&[("ExecuteStatement", 1), ("GetItem", 1)])
    );
    assert_eq!(counters(table_row(&batch, "customers", APP)), (1, 1, 0, 0));
}

#[test]
fn calls_without_table_are_account_rows() {
    let batch = read(&[
        Record::new("ListTables").set("managementEvent", json!(true)),
        Record::new("DescribeLimits")
            .params(json!({}))
            .set("managementEvent", json!(true)),
        Record::new("ListTables")
            .params(json!({"limit": 100}))
            .set("recipientAccountId", json!(OTHER_ACCOUNT))
            .set("awsRegion", json!("eu-west-1")),
    ]);
    assert_eq!(
        keys(&batch),
        [
            key(ACCOUNT, REGION, None, APP),
            key(OTHER_ACCOUNT, "eu-west-1", None, APP)
        ]
    );
    let here = row(&batch, ACCOUNT, REGION, None, APP).expect("account row");
    assert_eq!(counters(here), (2, 0, 0, 0));
    assert_eq!(
        here.operations,
        map(&[("DescribeLimits", 1), ("ListTables", 1)])
    );
}

#[test]
fn index_counts_from_index_name_and_partiql() {
    let batch = read(&[
        Record::new("Query").params(json!({"tableName": "orders", "indexName": "byCustomer", "key": {"customerId": "cust-7781"}})),
        Record::new("Query").params(json!({"tableName": "orders", "IndexName": "byCustomer"})),
        Record::new("Scan").params(json!({"tableName": "orders", "indexName": "byStatus"})),
        statement(
            "ExecuteStatement",
            r#"SELECT * FROM "orders"."byCustomer" WHERE customerId = 'cust-7781'"#,
        ),
        statement(
            "ExecuteStatement",
            "SELECT orderId FROM orders.byStatus WHERE status = ***(Redacted)",
        ),
        Record::on("Query", "orders"),
    ]);
    let r = table_row(&batch, "orders", APP);
    assert_eq!(counters(r), (6, 6, 0, 0));
    assert_eq!(r.indexes, map(&[("byCustomer", 3), ("byStatus", 2)]));
}

#[test]
fn reads_are_the_read_operations() {
    let batch = read(&[
        Record::on("GetItem", "orders"),
        Record::new("BatchGetItem").params(json!({"requestItems": {"orders": {"keys": []}}})),
        Record::on("Query", "orders"),
        Record::on("Scan", "orders"),
        Record::new("TransactGetItems").params(json!({"requestItems": [{"tableName": "orders"}]})),
        Record::new("GetRecords")
            .params(json!({"shardIterator": format!("{}|1|AAAA", stream_arn("orders"))})),
        Record::new("GetShardIterator").params(json!({"streamArn": stream_arn("orders")})),
        statement("ExecuteStatement", r#"SELECT * FROM "orders""#),
    ]);
    let r = table_row(&batch, "orders", APP);
    assert_eq!(counters(r), (8, 8, 0, 0));
    assert_eq!(r.operations.len(), 8);
}

#[test]
fn writes_are_the_write_operations() {
    let batch = read(&[
        Record::on("PutItem", "orders"),
        Record::on("UpdateItem", "orders"),
        Record::on("DeleteItem", "orders"),
        Record::new("BatchWriteItem").params(json!({"requestItems": {"orders": []}})),
        Record::new("TransactWriteItems")
            .params(json!({"requestItems": [{"tableName": "orders"}]})),
        statement(
            "ExecuteStatement",
            r#"INSERT INTO "orders" VALUE {'orderId' : 'ord-1'}"#,
        ),
        statement(
            "ExecuteStatement",
            r#"UPDATE "orders" SET a = ***(Redacted)"#,
        ),
        statement(
            "ExecuteStatement",
            r#"DELETE FROM "orders" WHERE orderId = 'ord-1'"#,
        ),
    ]);
    let r = table_row(&batch, "orders", APP);
    assert_eq!(counters(r), (8, 0, 8, 0));
    assert_eq!(r.operations.get("ExecuteStatement"), Some(3));
}

#[test]
fn management_events_count_calls_not_reads_or_writes() {
    let ops = [
        "CreateTable",
        "DescribeTable",
        "UpdateTable",
        "DeleteTable",
        "UpdateTimeToLive",
        "DescribeContinuousBackups",
        "CreateBackup",
        "TagResource",
    ];
    let records: Vec<Record> = ops
        .iter()
        .map(|op| {
            Record::on(op, "orders")
                .set("managementEvent", json!(true))
                .set("eventCategory", json!("Management"))
        })
        .collect();
    let batch = read(&records);
    let r = table_row(&batch, "orders", APP);
    assert_eq!(counters(r), (8, 0, 0, 0));
    let expected: Vec<(&str, u64)> = ops.iter().map(|op| (*op, 1)).collect();
    assert_eq!(r.operations, map(&expected));
}

#[test]
fn errors_count_and_access_denied_counts_as_denied() {
    let batch = read(&[
        Record::on("GetItem", "orders"),
        Record::on("GetItem", "orders").error("AccessDenied"),
        Record::on("Scan", "orders").error("AccessDeniedException"),
        Record::on("PutItem", "orders").error("ConditionalCheckFailedException"),
        Record::on("UpdateTable", "orders")
            .error("ResourceNotFoundException")
            .set("managementEvent", json!(true)),
        Record::new("ListTables").error("AccessDenied"),
    ]);
    let r = table_row(&batch, "orders", APP);
    // Failed calls still count as the reads and writes they attempted.
    assert_eq!(counters(r), (5, 3, 1, 4));
    assert_eq!(r.denied, 2);
    assert_eq!(
        r.error_codes,
        map(&[
            ("AccessDenied", 1),
            ("AccessDeniedException", 1),
            ("ConditionalCheckFailedException", 1),
            ("ResourceNotFoundException", 1),
        ])
    );
    let account = row(&batch, ACCOUNT, REGION, None, APP).expect("account row");
    assert_eq!((account.calls, account.errors, account.denied), (1, 1, 1));
}

#[test]
fn assumed_role_caller_is_the_issuer_role_arn() {
    let batch = read(&[
        Record::on("GetItem", "orders").identity(identity::app_role("orders-api", "task-0001")),
        Record::on("PutItem", "orders").identity(identity::app_role(
            "orders-api",
            "4f6c0e2a9b8d4c1e8f7a6b5c4d3e2f10",
        )),
        Record::on("Query", "orders")
            .identity(identity::app_role("orders-api", "i-0a1b2c3d4e5f60718")),
    ]);
    assert_eq!(callers(&batch), [APP]);
    let r = table_row(&batch, "orders", APP);
    assert_eq!(r.calls, 3);
    assert_eq!(r.caller_type, CallerType::AssumedRole);
    assert!(!r.person);
}

#[test]
fn assumed_role_without_issuer_derives_role_arn() {
    let without_issuer = |session: &str| {
        let mut identity = identity::app_role("orders-api", session);
        identity["sessionContext"]
            .as_object_mut()
            .expect("sessionContext")
            .remove("sessionIssuer");
        identity
    };
    let batch = read(&[
        Record::on("GetItem", "orders").identity(without_issuer("task-0001")),
        Record::on("GetItem", "orders").identity(without_issuer("task-0002")),
    ]);
    // The session ARN does not carry the role's path.
    let derived = format!("arn:aws:iam::{ACCOUNT}:role/orders-api");
    assert_eq!(callers(&batch), [derived.as_str()]);
    let r = table_row(&batch, "orders", &derived);
    assert_eq!((r.calls, r.caller_type), (2, CallerType::AssumedRole));
}

#[test]
fn sso_role_sessions_are_people_keyed_by_session() {
    let batch = read(&[
        Record::on("Scan", "customers")
            .identity(identity::sso("DataEngineer", "alice@example.com")),
        Record::on("GetItem", "customers")
            .identity(identity::sso("DataEngineer", "alice@example.com")),
        Record::on("GetItem", "customers")
            .identity(identity::sso("DataEngineer", "bob@example.com")),
    ]);
    let alice = format!(
        "arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_DataEngineer_5d2c8b1e9f3a7c40/alice@example.com"
    );
    let bob = format!(
        "arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_DataEngineer_5d2c8b1e9f3a7c40/bob@example.com"
    );
    assert_eq!(callers(&batch), [alice.clone(), bob.clone()]);
    let a = table_row(&batch, "customers", &alice);
    assert_eq!(
        (a.calls, a.person, a.caller_type),
        (2, true, CallerType::AssumedRole)
    );
    assert_eq!(table_row(&batch, "customers", &bob).calls, 1);
}

#[test]
fn console_sessions_are_people() {
    let support = format!("arn:aws:iam::{ACCOUNT}:role/support-ops");
    let browser = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36";
    let batch = read(&[
        Record::on("Scan", "orders")
            .identity(identity::role_session(&support, "maria.garcia"))
            .agent(browser)
            .set("sessionCredentialFromConsole", json!("true")),
        Record::on("GetItem", "orders")
            .identity(identity::role_session(&support, "li.wei"))
            .agent(browser)
            .set("sessionCredentialFromConsole", json!(true)),
        // The same role from a script is the role.
        Record::on("GetItem", "orders")
            .identity(identity::role_session(&support, "runbook-4411"))
            .set("sessionCredentialFromConsole", json!("false")),
        Record::on("GetItem", "orders")
            .identity(identity::iam_user("ops/jo.doe"))
            .agent(browser)
            .set("sessionCredentialFromConsole", json!("true")),
    ]);
    let maria = format!("arn:aws:sts::{ACCOUNT}:assumed-role/support-ops/maria.garcia");
    let li = format!("arn:aws:sts::{ACCOUNT}:assumed-role/support-ops/li.wei");
    let jo = format!("arn:aws:iam::{ACCOUNT}:user/ops/jo.doe");
    let mut expected = vec![maria.clone(), li.clone(), support.clone(), jo.clone()];
    expected.sort();
    assert_eq!(callers(&batch), expected);
    for person in [&maria, &li, &jo] {
        let r = table_row(&batch, "orders", person);
        assert!(r.person, "{person}");
        assert_eq!(r.user_agents, map(&[("console", 1)]));
    }
    assert!(!table_row(&batch, "orders", &support).person);
}

#[test]
fn console_sign_ins_of_older_records_are_people() {
    // Before `sessionCredentialFromConsole`, a console session showed only in
    // its user agent, or in `invokedBy: signin.amazonaws.com`.
    let support = format!("arn:aws:iam::{ACCOUNT}:role/support-ops");
    let mut signed_in = identity::role_session(&support, "li.wei");
    signed_in["invokedBy"] = json!("signin.amazonaws.com");
    let batch = read(&[
        Record::on("Scan", "orders")
            .identity(identity::role_session(&support, "maria.garcia"))
            .agent("console.aws.amazon.com"),
        Record::on("GetItem", "orders").identity(signed_in),
        Record::on("GetItem", "orders")
            .identity(identity::iam_user("ops/jo.doe"))
            .agent("signin.amazonaws.com"),
        Record::on("GetItem", "orders").identity(identity::iam_user("ci-deployer")),
    ]);
    for person in [
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/support-ops/maria.garcia"),
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/support-ops/li.wei"),
        format!("arn:aws:iam::{ACCOUNT}:user/ops/jo.doe"),
    ] {
        assert!(table_row(&batch, "orders", &person).person, "{person}");
    }
    let ci = format!("arn:aws:iam::{ACCOUNT}:user/ci-deployer");
    assert!(!table_row(&batch, "orders", &ci).person);
}

#[test]
fn service_linked_roles_are_the_service_and_stay_one_caller() {
    let slr = format!(
        "arn:aws:iam::{ACCOUNT}:role/aws-service-role/dynamodb.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable"
    );
    let session = |name: &str| {
        let mut identity = identity::role_session(&slr, name);
        identity["invokedBy"] = json!("dynamodb.application-autoscaling.amazonaws.com");
        identity
    };
    let rules = Rules {
        human_roles: HumanRoles::new(["*"]).expect("valid pattern"),
        ..Rules::default()
    };
    let batch = read_with(
        rules,
        &[
            Record::on("DescribeTable", "orders").identity(session("AutoScaling")),
            Record::on("DescribeTable", "orders")
                .identity(session("AutoScaling-2"))
                .set("sessionCredentialFromConsole", json!("true")),
        ],
    );
    assert_eq!(callers(&batch), [slr.as_str()]);
    let r = table_row(&batch, "orders", &slr);
    assert_eq!((r.calls, r.person), (2, false));
    assert_eq!(
        ddb_audit_core::caller::caller_name(&slr).service,
        Some("dynamodb.application-autoscaling.amazonaws.com")
    );
}

#[test]
fn human_role_patterns_make_people() {
    let admin = format!("arn:aws:iam::{ACCOUNT}:role/AdminAccess");
    let people = format!("arn:aws:iam::{ACCOUNT}:role/people/analyst");
    let records = [
        Record::on("Scan", "orders").identity(identity::role_session(&admin, "alice")),
        Record::on("Scan", "orders").identity(identity::role_session(&admin, "bob")),
        Record::on("Scan", "orders").identity(identity::role_session(&people, "carol")),
        Record::on("Scan", "orders").identity(identity::app_role("orders-api", "task-1")),
    ];

    let mut without = vec![admin.clone(), people.clone(), APP.to_owned()];
    without.sort();
    assert_eq!(callers(&read(&records)), without);

    let rules = Rules {
        human_roles: HumanRoles::new(["Admin*", "arn:aws:iam::*:role/people/*"])
            .expect("valid patterns"),
        ..Rules::default()
    };
    let batch = read_with(rules, &records);
    let mut with = vec![
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/AdminAccess/alice"),
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/AdminAccess/bob"),
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/analyst/carol"),
        APP.to_owned(),
    ];
    with.sort();
    assert_eq!(callers(&batch), with);
    for caller in &with {
        assert_eq!(
            table_row(&batch, "orders", caller).person,
            caller != APP,
            "{caller}"
        );
    }
}

#[test]
fn iam_user_root_and_federated_use_arn() {
    let root = format!("arn:aws:iam::{ACCOUNT}:root");
    let federated = format!("arn:aws:sts::{ACCOUNT}:federated-user/partner-sync");
    let user = format!("arn:aws:iam::{ACCOUNT}:user/reporting-batch");
    let batch = read(&[
        Record::on("Scan", "orders").identity(identity::iam_user("reporting-batch")),
        Record::on("DeleteTable", "orders").identity(json!({
            "type": "Root", "principalId": ACCOUNT, "arn": root, "accountId": ACCOUNT,
            "accessKeyId": "ASIAYEXAMPLEROOT0001",
        })),
        Record::on("GetItem", "orders").identity(json!({
            "type": "FederatedUser",
            "principalId": format!("{ACCOUNT}:partner-sync"),
            "arn": federated, "accountId": ACCOUNT, "accessKeyId": "ASIAYEXAMPLEFED00001",
            "sessionContext": {
                "sessionIssuer": {"type": "IAMUser", "principalId": "AIDAYEXAMPLEUSER0001",
                                  "arn": format!("arn:aws:iam::{ACCOUNT}:user/broker"),
                                  "accountId": ACCOUNT, "userName": "broker"},
                "attributes": {"creationDate": "2024-03-15T11:00:00Z", "mfaAuthenticated": "false"},
            },
        })),
    ]);
    for (caller, kind) in [
        (&user, CallerType::IamUser),
        (&root, CallerType::Root),
        (&federated, CallerType::FederatedUser),
    ] {
        let r = table_row(&batch, "orders", caller);
        assert_eq!((r.calls, r.caller_type), (1, kind), "{caller}");
    }
    assert_eq!(batch.lifetime.len(), 3);
}

#[test]
fn aws_service_is_service_prefix_invoked_by() {
    let batch = read(&[Record::on("DescribeTable", "orders")
        .identity(identity::aws_service("glue.amazonaws.com"))
        .set("sourceIPAddress", json!("glue.amazonaws.com"))
        .agent("glue.amazonaws.com")]);
    let r = table_row(&batch, "orders", "service:glue.amazonaws.com");
    assert_eq!(r.caller_type, CallerType::AwsService);
    assert_eq!(
        r.invoked_by.iter().collect::<Vec<_>>(),
        ["glue.amazonaws.com"]
    );
    assert_eq!(r.user_agents, map(&[("glue.amazonaws.com", 1)]));
}

#[test]
fn aws_account_is_account_prefix() {
    let batch = read(&[Record::on("GetItem", "orders").identity(json!({
        "type": "AWSAccount",
        "principalId": "AIDAYEXAMPLEPARTNER1",
        "accountId": OTHER_ACCOUNT,
    }))]);
    let caller = format!("account:{OTHER_ACCOUNT}");
    assert_eq!(callers(&batch), [caller.as_str()]);
    assert_eq!(
        table_row(&batch, "orders", &caller).caller_type,
        CallerType::AwsAccount
    );
}

#[test]
fn identity_center_user_uses_on_behalf_of() {
    let batch = read(&[Record::on("Query", "customers").identity(json!({
        "type": "IdentityCenterUser",
        "accountId": ACCOUNT,
        "onBehalfOf": {
            "userId": "94482488-3041-7026-18f3-be45837cd0e4",
            "identityStoreArn": format!("arn:aws:identitystore::{ACCOUNT}:identitystore/d-9067a1b2c3"),
        },
        "credentialId": "EXAMPLEcredentialEXAMPLE",
    }))]);
    let caller = "identitycenter:94482488-3041-7026-18f3-be45837cd0e4";
    let r = table_row(&batch, "customers", caller);
    assert_eq!(r.caller_type, CallerType::IdentityCenterUser);
    assert!(r.person);
}

#[test]
fn unknown_identity_types_are_counted_never_dropped() {
    let batch = read(&[
        Record::on("GetItem", "orders").identity(json!({
            "type": "SAMLUser", "principalId": "Wfq0bXZEXAMPLE:jane@example.com",
            "userName": "jane@example.com", "identityProvider": "Wfq0bXZEXAMPLE",
        })),
        Record::on("GetItem", "orders").identity(json!({
            "type": "WebIdentityUser", "principalId": "accounts.google.com:1170EXAMPLE",
            "userName": "1170EXAMPLE", "identityProvider": "accounts.google.com",
        })),
        Record::on("GetItem", "orders").identity(json!({
            "arn": format!("arn:aws:iam::{ACCOUNT}:user/no-type"), "accountId": ACCOUNT,
        })),
        Record::on("GetItem", "orders").identity(json!({
            "type": "AssumedRole", "principalId": "AROAYEXAMPLEROLE0001:lost",
        })),
        Record::on("GetItem", "orders").without("userIdentity"),
        Record::on("GetItem", "orders").identity(json!({})),
    ]);
    assert_eq!(batch.counts.attributed, 6);
    assert_eq!(batch.counts.malformed_total(), 0);
    let expected = [
        (format!("unknown:{ACCOUNT}"), 2),
        ("unknown:AROAYEXAMPLEROLE0001:lost".to_owned(), 1),
        ("unknown:Wfq0bXZEXAMPLE:jane@example.com".to_owned(), 1),
        ("unknown:accounts.google.com:1170EXAMPLE".to_owned(), 1),
        (format!("unknown:arn:aws:iam::{ACCOUNT}:user/no-type"), 1),
    ];
    for (caller, calls) in &expected {
        let r = table_row(&batch, "orders", caller);
        assert_eq!(
            (r.calls, r.caller_type),
            (*calls, CallerType::Unknown),
            "{caller}"
        );
    }
    assert_eq!(batch.lifetime.len(), expected.len());
}

#[test]
fn user_agent_family_is_kept() {
    let agents = [
        ("aws-sdk-java/2.25.16 Linux/5.10.210 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10", "aws-sdk-java/2.x"),
        ("Boto3/1.34.62 md/Botocore#1.34.62 ua/2.0 os/linux#6.1.79 lang/python#3.11.8 Botocore/1.34.62", "Boto3/1.x"),
        ("aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/macos#23.4.0 md/command#dynamodb.scan", "aws-cli/2.x"),
        ("aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.1 md/GOOS#linux api/dynamodb#1.30.4", "aws-sdk-go-v2/1.x"),
        ("aws-sdk-js/3.535.0 ua/2.0 os/linux lang/js md/nodejs#20.11.1 api/dynamodb#3.535.0", "aws-sdk-js/3.x"),
        ("aws-sdk-rust/1.1.8 ua/2.0 api/dynamodb#1.19.0 os/linux lang/rust#1.76.0", "aws-sdk-rust/1.x"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0", "console"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/122.0.0.0 Safari/537.36", "console"),
    ];
    let mut records: Vec<Record> = agents
        .iter()
        .map(|(ua, _)| Record::on("GetItem", "orders").agent(ua))
        .collect();
    records.push(Record::on("GetItem", "orders").without("userAgent"));
    let batch = read(&records);
    let r = table_row(&batch, "orders", APP);
    assert_eq!(
        r.user_agents,
        map(&[
            ("Boto3/1.x", 1),
            ("aws-cli/2.x", 1),
            ("aws-sdk-go-v2/1.x", 1),
            ("aws-sdk-java/2.x", 1),
            ("aws-sdk-js/3.x", 1),
            ("aws-sdk-rust/1.x", 1),
            ("console", 2),
            ("unknown", 1),
        ])
    );
}

#[test]
fn source_ips_vpc_endpoints_and_a_sample_event_id_are_kept() {
    let first = Record::on("GetItem", "orders").at("2024-03-15T11:00:00Z");
    let batch = read(&[
        Record::on("GetItem", "orders").set("sourceIPAddress", json!("203.0.113.45")),
        first.clone(),
        Record::on("GetItem", "orders")
            .set("sourceIPAddress", json!("192.0.2.47"))
            .set("vpcEndpointId", json!("vpce-0a1b2c3d4e5f67890")),
    ]);
    let r = table_row(&batch, "orders", APP);
    assert_eq!(
        r.source_ips.iter().collect::<Vec<_>>(),
        ["192.0.2.10", "192.0.2.47", "203.0.113.45"]
    );
    assert_eq!(
        r.vpc_endpoints.iter().collect::<Vec<_>>(),
        ["vpce-0a1b2c3d4e5f67890"]
    );
    assert_eq!(r.first_event_id, first.event_id());
}

#[test]
fn daily_rollups_split_on_utc_days() {
    let batch = read(&[
        Record::on("GetItem", "orders").at("2024-03-14T23:59:59Z"),
        Record::on("GetItem", "orders").at("2024-03-15T00:00:00Z"),
        Record::on("PutItem", "orders").at("2024-03-15T12:04:02Z"),
        // An offset time is placed on its UTC day (2024-03-14T23:30:00Z).
        Record::on("GetItem", "orders").at("2024-03-15T01:30:00+02:00"),
    ]);
    assert_eq!(counters(table_row(&batch, "orders", APP)), (4, 3, 1, 0));
    let day = |date: &str| unix(&format!("{date}T00:00:00Z")) / 86_400;
    let daily = |date: &str| {
        batch
            .daily
            .get(&DailyKey {
                key: key(ACCOUNT, REGION, Some("orders"), APP),
                day: day(date),
            })
            .unwrap_or_else(|| panic!("no daily row for {date}"))
    };
    assert_eq!(batch.daily.len(), 2);
    let d14 = daily("2024-03-14");
    assert_eq!(counters(d14), (2, 2, 0, 0));
    assert_eq!(
        (d14.first_seen, d14.last_seen),
        (unix("2024-03-14T23:30:00Z"), unix("2024-03-14T23:59:59Z"))
    );
    let d15 = daily("2024-03-15");
    assert_eq!(counters(d15), (2, 1, 1, 0));
    assert_eq!(
        (d15.first_seen, d15.last_seen),
        (unix("2024-03-15T00:00:00Z"), unix("2024-03-15T12:04:02Z"))
    );
}

#[test]
fn first_and_last_seen_are_min_and_max() {
    // CloudTrail files are not in time order.
    let earliest = Record::on("GetItem", "orders").at("2024-03-15T08:00:00Z");
    let batch = read(&[
        Record::on("GetItem", "orders").at("2024-03-15T12:00:00Z"),
        Record::on("GetItem", "orders").at("2024-03-15T18:30:15Z"),
        earliest.clone(),
        Record::on("GetItem", "orders").at("2024-03-15T09:00:00Z"),
    ]);
    let r = table_row(&batch, "orders", APP);
    assert_eq!(r.first_seen, unix("2024-03-15T08:00:00Z"));
    assert_eq!(r.last_seen, unix("2024-03-15T18:30:15Z"));
    assert_eq!(r.first_event_id, earliest.event_id());
}

#[test]
fn each_event_id_counts_once() {
    let call = Record::on("GetItem", "orders");
    let batch = read(&[call.clone(), call.clone(), call]);
    assert_eq!(batch.counts.attributed, 1);
    assert_eq!(
        batch.counts.skipped,
        BTreeMap::from([("duplicate_event", 2)])
    );
    assert_eq!(table_row(&batch, "orders", APP).calls, 1);
}
