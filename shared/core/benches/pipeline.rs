//! The core's pipeline, stage by stage and end to end, over a deterministic
//! corpus of CloudTrail records.
//!
//! The corpus is generated here, in memory, by a port of the essentials of
//! `benches/gen_corpus.py` (same mix of sources, operations, identities and
//! record size, ~1.5 KB a record), with a fixed seed: every run measures the
//! same bytes without reading any file. It is one CloudTrail file of
//! [`RECORDS`] records (~3 MB of JSON), small enough for a 2-core machine.
//!
//! Stages: `decode` (gzip to JSON), `parse` (each record into a
//! [`RecordView`] by serde_json), `scan` (the same by the fast scanner that
//! reading uses, [`scan::record`]), `attribute` (each parsed record), `fold` (each call into a
//! fresh [`Batch`]), and `read_gzip` / `read_json` ([`InputReader::read`] on
//! the whole file, compressed and plain: everything together).
//!
//! Run with `cargo bench -p ddb-audit-core`.

use std::hint::black_box;
use std::io::Write as _;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ddb_audit_core::attribute::{attribute, Outcome, Rules};
use ddb_audit_core::decode::{self, DEFAULT_MAX_DECOMPRESSED};
use ddb_audit_core::input::{InputReader, Limits};
use ddb_audit_core::record::RecordView;
use ddb_audit_core::rollup::Batch;
use ddb_audit_core::scan;
use flate2::write::GzEncoder;
use serde_json::{json, Value};

/// Records in the corpus: ~3 MB of JSON per iteration of the whole-file stages.
const RECORDS: usize = 2_000;
const SEED: u64 = 7;

/// The corpus: each record's JSON text, the whole file, and the file gzipped.
struct Corpus {
    records: Vec<String>,
    json: Vec<u8>,
    gzip: Vec<u8>,
}

fn corpus() -> Corpus {
    let mut rng = Rng(SEED);
    let callers = make_callers(&mut rng);
    let tables: Vec<String> = TABLE_NAMES
        .iter()
        .flat_map(|n| ["prod", "staging"].map(|env| format!("{n}-{env}")))
        .collect();
    let records: Vec<String> = (0..RECORDS)
        .map(|i| {
            let secs = i * 3;
            let when = format!(
                "2024-03-{:02}T{:02}:{:02}:{:02}Z",
                15 + secs / 86_400,
                secs % 86_400 / 3_600,
                secs % 3_600 / 60,
                secs % 60
            );
            record(&mut rng, &callers, &tables, &when).to_string()
        })
        .collect();
    let json = format!("{{\"Records\":[{}]}}", records.join(",")).into_bytes();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&json).expect("gzip into memory");
    let gzip = gz.finish().expect("gzip into memory");
    Corpus {
        records,
        json,
        gzip,
    }
}

fn stages(c: &mut Criterion) {
    let corpus = corpus();
    let rules = Rules::default();
    let records = corpus.records.len() as u64;

    let mut group = c.benchmark_group("pipeline");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.throughput(Throughput::Bytes(corpus.json.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| decode::decode(black_box(&corpus.gzip), DEFAULT_MAX_DECOMPRESSED).unwrap())
    });

    group.throughput(Throughput::Elements(records));
    group.bench_function("parse", |b| {
        b.iter(|| {
            for r in &corpus.records {
                black_box(serde_json::from_str::<RecordView<'_>>(black_box(r)).unwrap());
            }
        })
    });
    group.bench_function("scan", |b| {
        b.iter(|| {
            for r in &corpus.records {
                black_box(scan::record(black_box(r)).unwrap());
            }
        })
    });

    let views: Vec<RecordView<'_>> = corpus
        .records
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    group.bench_function("attribute", |b| {
        b.iter(|| {
            for v in &views {
                black_box(attribute(black_box(v), &rules));
            }
        })
    });

    let calls: Vec<_> = views
        .iter()
        .filter_map(|v| match attribute(v, &rules) {
            Outcome::Call(call) => Some(call),
            _ => None,
        })
        .collect();
    // Throughput stays per record of the corpus so the stages add up; only
    // the DynamoDB calls among them (~60%) are folded.
    group.bench_function("fold", |b| {
        b.iter_batched(
            Batch::default,
            |mut batch| {
                for call in &calls {
                    batch.fold(black_box(call));
                }
                batch
            },
            BatchSize::LargeInput,
        )
    });

    // A fresh reader each time: a reader remembers eventIDs, so a second
    // read of the same file would count every record as a duplicate.
    for (name, bytes) in [("read_gzip", &corpus.gzip), ("read_json", &corpus.json)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut reader = InputReader::new(Rules::default(), Limits::default());
                let (_, batch) = reader.read("bench", black_box(bytes)).unwrap();
                assert_eq!(batch.counts.records_in, records);
                batch
            })
        });
    }
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);

// ---- The corpus generator: a port of benches/gen_corpus.py's essentials. ----

const ACCOUNTS: [&str; 3] = ["111122223333", "444455556666", "777788889999"];
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const AGENTS: [&str; 5] = [
    "aws-sdk-java/2.25.{m} Linux/5.10.214-202.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/standard",
    "Boto3/1.34.{m} md/Botocore#1.34.{m} ua/2.0 os/linux#5.10.214 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.{m}",
    "aws-sdk-go-v2/1.26.{m} os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/dynamodb#1.31.{m}",
    "aws-sdk-js/3.540.{m} ua/2.0 os/linux#5.10.214 lang/js md/nodejs#20.11.1 api/dynamodb#3.540.0",
    "aws-cli/2.15.{m} Python/3.11.8 Linux/5.10.214 exe/x86_64.amzn.2 prompt/off command/dynamodb.query",
];
const TABLE_NAMES: [&str; 20] = [
    "orders",
    "customers",
    "payments",
    "carts",
    "inventory",
    "sessions",
    "events",
    "ledger",
    "profiles",
    "catalog",
    "shipments",
    "audit",
    "coupons",
    "reviews",
    "tokens",
    "prices",
    "stock",
    "returns",
    "invoices",
    "quotas",
];
const SSO_ROLE: &str = "AWSReservedSSO_DeveloperAccess_0123456789abcdef";

/// SplitMix64: small, fast and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

enum Kind {
    Role,
    User,
    Sso,
    Service,
}

struct Caller {
    kind: Kind,
    account: &'static str,
    name: String,
}

fn make_callers(rng: &mut Rng) -> Vec<Caller> {
    (0..300)
        .map(|i| {
            let account = ACCOUNTS[i % ACCOUNTS.len()];
            let roll = rng.unit();
            let (kind, name) = if roll < 0.75 {
                let flavour = rng.pick(&["api", "worker", "etl", "batch"]);
                (Kind::Role, format!("svc-{i:03}-{flavour}"))
            } else if roll < 0.88 {
                (Kind::User, format!("deploy-bot-{i:03}"))
            } else if roll < 0.97 {
                (Kind::Sso, format!("person{i:03}@example.com"))
            } else {
                let service = rng.pick(&["glue.amazonaws.com", "backup.amazonaws.com"]);
                (Kind::Service, (*service).to_owned())
            };
            Caller {
                kind,
                account,
                name,
            }
        })
        .collect()
}

fn identity(rng: &mut Rng, caller: &Caller) -> Value {
    let (account, name) = (caller.account, caller.name.as_str());
    match caller.kind {
        Kind::Role => {
            let session = format!("i-{:014x}", rng.next() >> 8);
            json!({
                "type": "AssumedRole",
                "principalId": format!("AROA{:016X}:{session}", rng.next()),
                "arn": format!("arn:aws:sts::{account}:assumed-role/{name}/{session}"),
                "accountId": account,
                "accessKeyId": format!("ASIA{:016X}", rng.next()),
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": format!("AROA{:016X}", name.len() as u64 * 2_654_435_761),
                        "arn": format!("arn:aws:iam::{account}:role/{name}"),
                        "accountId": account,
                        "userName": name,
                    },
                    "attributes": {"creationDate": "2024-03-15T11:00:00Z", "mfaAuthenticated": "false"},
                    "ec2RoleDelivery": "2.0",
                },
            })
        }
        Kind::User => json!({
            "type": "IAMUser",
            "principalId": format!("AIDA{:016X}", rng.next()),
            "arn": format!("arn:aws:iam::{account}:user/{name}"),
            "accountId": account,
            "accessKeyId": format!("AKIA{:016X}", rng.next()),
            "userName": name,
        }),
        Kind::Sso => json!({
            "type": "AssumedRole",
            "principalId": format!("AROA{:016X}:{name}", rng.next()),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{SSO_ROLE}/{name}"),
            "accountId": account,
            "accessKeyId": format!("ASIA{:016X}", rng.next()),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLESSO000001",
                    "arn": format!("arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{SSO_ROLE}"),
                    "accountId": account,
                    "userName": SSO_ROLE,
                },
                "attributes": {"creationDate": "2024-03-15T09:00:00Z", "mfaAuthenticated": "false"},
            },
        }),
        Kind::Service => json!({"type": "AWSService", "invokedBy": name}),
    }
}

fn dynamodb_params(rng: &mut Rng, op: &str, tables: &[String]) -> Value {
    let t1 = rng.pick(tables).clone();
    let mut t2 = rng.pick(tables).clone();
    if t2 == t1 {
        t2 = tables[(tables.iter().position(|t| *t == t1).unwrap() + 1) % tables.len()].clone();
    }
    let key = json!({
        "pk": format!("cust-{}", rng.below(1_000_000)),
        "sk": format!("order#{}", rng.below(10_000)),
    });
    match op {
        "GetItem" => {
            json!({"tableName": t1, "key": key, "consistentRead": false, "projectionExpression": "#a, #b"})
        }
        "Query" => json!({"tableName": t1, "indexName": "by-customer",
            "keyConditionExpression": "#pk = :pk", "expressionAttributeNames": {"#pk": "customerId"}, "limit": 50}),
        "PutItem" | "UpdateItem" | "DeleteItem" => json!({"tableName": t1, "key": key,
            "conditionExpression": "attribute_exists(#pk)", "returnValues": "NONE", "returnConsumedCapacity": "TOTAL"}),
        "BatchGetItem" => json!({
            "requestItems": {t1: {"keys": [key.clone(), key.clone()]}, t2: {"keys": [key]}},
            "returnConsumedCapacity": "TOTAL",
        }),
        "TransactWriteItems" => json!({
            "requestItems": [
                {"operation": "Put", "tableName": t1, "key": key.clone(), "items": ["pk", "sk", "total"]},
                {"operation": "ConditionCheck", "TableName": t2, "Key": key,
                 "ConditionExpression": "attribute_exists(pk)"},
            ],
            "returnConsumedCapacity": "TOTAL",
        }),
        "ExecuteStatement" => json!({
            "statement": format!("SELECT * FROM \"{t1}\".\"by-status\" WHERE status = 'open' AND total > ***(Redacted)"),
        }),
        _ => json!({"tableName": t1}),
    }
}

/// gen_corpus.py's weights: 30 GetItem, 25 Query, 15 PutItem, ... (of 100).
fn dynamodb_operation(rng: &mut Rng) -> &'static str {
    const WEIGHTED: [(&str, usize); 9] = [
        ("GetItem", 30),
        ("Query", 25),
        ("PutItem", 15),
        ("UpdateItem", 10),
        ("DeleteItem", 3),
        ("BatchGetItem", 6),
        ("TransactWriteItems", 4),
        ("ExecuteStatement", 4),
        ("DescribeTable", 3),
    ];
    let mut roll = rng.below(100);
    for (op, weight) in WEIGHTED {
        if roll < weight {
            return op;
        }
        roll -= weight;
    }
    unreachable!("the weights add up to 100")
}

fn record(rng: &mut Rng, callers: &[Caller], tables: &[String], when: &str) -> Value {
    let caller = if rng.unit() < 0.7 {
        rng.pick(&callers[..60])
    } else {
        rng.pick(callers)
    };
    let account = caller.account;
    let region = if rng.unit() < 0.8 {
        REGIONS[0]
    } else {
        REGIONS[1]
    };
    let agent = rng.pick(&AGENTS).replace("{m}", &rng.below(40).to_string());
    let mut base = json!({
        "eventVersion": "1.09",
        "userIdentity": identity(rng, caller),
        "eventTime": when,
        "awsRegion": region,
        "sourceIPAddress": format!("10.{}.{}.{}", rng.below(256), rng.below(256), rng.below(256)),
        "userAgent": agent,
        "requestID": format!("{:016X}{:016X}{:016X}{:04X}", rng.next(), rng.next(), rng.next(), rng.below(65_536)),
        "eventID": uuid_v4(rng),
        "readOnly": true,
        "eventType": "AwsApiCall",
        "apiVersion": "2012-08-10",
        "managementEvent": false,
        "recipientAccountId": account,
        "eventCategory": "Data",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": format!("dynamodb.{region}.amazonaws.com")},
    });
    let fields = base.as_object_mut().expect("an object");
    if rng.unit() < 0.6 {
        let op = dynamodb_operation(rng);
        fields.insert("eventSource".into(), "dynamodb.amazonaws.com".into());
        fields.insert("eventName".into(), op.into());
        fields.insert("requestParameters".into(), dynamodb_params(rng, op, tables));
        fields.insert("responseElements".into(), Value::Null);
        fields.insert(
            "resources".into(),
            json!([{"accountId": account, "type": "AWS::DynamoDB::Table",
                    "ARN": format!("arn:aws:dynamodb:{region}:{account}:table/{}", tables[0])}]),
        );
        if rng.unit() < 0.3 {
            fields.insert(
                "vpcEndpointId".into(),
                format!("vpce-{:015x}", rng.next() >> 4).into(),
            );
        }
        if rng.unit() < 0.01 {
            fields.insert("errorCode".into(), "AccessDeniedException".into());
            fields.insert(
                "errorMessage".into(),
                "User is not authorized to perform this action".into(),
            );
        }
    } else {
        let (source, op, params) = match rng.below(3) {
            0 => (
                "s3.amazonaws.com",
                "GetObject",
                json!({"bucketName": "data-lake-raw", "key": format!("in/{:x}.parquet", rng.next()),
                       "Host": "data-lake-raw.s3.us-east-1.amazonaws.com"}),
            ),
            1 => (
                "kms.amazonaws.com",
                "Decrypt",
                json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                       "encryptionContext": {"aws:dynamodb:tableName": rng.pick(tables)}}),
            ),
            _ => (
                "sts.amazonaws.com",
                "AssumeRole",
                json!({"roleArn": format!("arn:aws:iam::{account}:role/svc-{:03}-api", rng.below(300)),
                       "roleSessionName": format!("i-{:014x}", rng.next() >> 8), "durationSeconds": 3600}),
            ),
        };
        let s3 = source == "s3.amazonaws.com";
        fields.insert("eventSource".into(), source.into());
        fields.insert("eventName".into(), op.into());
        fields.insert("requestParameters".into(), params);
        fields.insert("responseElements".into(), Value::Null);
        fields.insert(
            "eventCategory".into(),
            if s3 { "Data" } else { "Management" }.into(),
        );
        fields.insert("managementEvent".into(), (!s3).into());
    }
    base
}

fn uuid_v4(rng: &mut Rng) -> String {
    let (a, b) = (rng.next(), rng.next());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}
