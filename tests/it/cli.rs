//! `ddb-audit analyze` driven as a user drives it: arguments in, stdout,
//! stderr and exit code out.

use std::path::Path;

use ddb_audit_tests::gzip;
use serde_json::Value;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ddb_audit(args: &[&str]) -> Output {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv = std::iter::once("ddb-audit").chain(args.iter().copied());
    let code = ddb_audit_cli::run(argv, &mut out, &mut err);
    Output {
        code,
        stdout: String::from_utf8(out).expect("stdout is UTF-8"),
        stderr: String::from_utf8(err).expect("stderr is UTF-8"),
    }
}

fn record(event_id: &str, table: &str, role: &str, time: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:s1",
        "arn":"arn:aws:sts::111122223333:assumed-role/{role}/s1","accountId":"111122223333",
        "sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::111122223333:role/{role}","userName":"{role}"}}}}}},
        "eventTime":"{time}","eventSource":"dynamodb.amazonaws.com","eventName":"GetItem","awsRegion":"us-east-1",
        "sourceIPAddress":"192.0.2.10","userAgent":"aws-sdk-java/2.25.1 Linux/5.10",
        "requestParameters":{{"tableName":"{table}","key":{{"pk":"cli-secret-key-42"}}}},
        "eventID":"{event_id}","readOnly":true,"eventType":"AwsApiCall","managementEvent":false,
        "recipientAccountId":"111122223333","eventCategory":"Data"}}"#
    )
}

fn trail_file(records: &[String]) -> Vec<u8> {
    format!("{{\"Records\":[{}]}}", records.join(",")).into_bytes()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create test dir");
    }
    std::fs::write(&path, bytes).expect("write test file");
    path.display().to_string()
}

fn json_rows(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is one JSON object"))
        .collect()
}

#[test]
fn json_format_is_json_lines_with_the_contract_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "a.json.gz",
        &gzip(&trail_file(&[
            record("e1", "orders", "checkout", "2024-03-15T12:00:00Z"),
            record("e2", "orders", "checkout", "2024-03-16T08:00:00Z"),
            record("e3", "users", "checkout", "2024-03-15T12:00:00Z"),
        ])),
    );
    let out = ddb_audit(&["analyze", "--format", "json", &file]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = json_rows(&out.stdout);
    assert_eq!(rows.len(), 2);
    for field in [
        "account",
        "region",
        "table",
        "caller",
        "caller_type",
        "calls",
        "reads",
        "writes",
        "errors",
        "operations",
        "indexes",
        "first_seen",
        "last_seen",
        "user_agents",
    ] {
        assert!(
            rows.iter().all(|r| r.get(field).is_some()),
            "missing {field}"
        );
    }
    let orders = rows
        .iter()
        .find(|r| r["table"] == "orders")
        .expect("orders row");
    assert_eq!(orders["caller"], "arn:aws:iam::111122223333:role/checkout");
    assert_eq!(orders["calls"], 2);
    assert_eq!(orders["reads"], 2);
    assert_eq!(orders["first_seen"], "2024-03-15T12:00:00Z");
    assert_eq!(orders["last_seen"], "2024-03-16T08:00:00Z");
    assert_eq!(orders["user_agents"]["aws-sdk-java/2.x"], 2);
    assert!(
        out.stderr.contains("records in 3 = attributed 3"),
        "{}",
        out.stderr
    );
}

#[test]
fn by_day_prints_one_row_per_utc_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "a.json",
        &trail_file(&[
            record("e1", "orders", "checkout", "2024-03-15T23:59:59Z"),
            record("e2", "orders", "checkout", "2024-03-16T00:00:00Z"),
        ]),
    );
    let out = ddb_audit(&["analyze", "--format", "json", "--by-day", &file]);
    let days: Vec<_> = json_rows(&out.stdout)
        .iter()
        .map(|r| r["day"].clone())
        .collect();
    assert_eq!(days, ["2024-03-15", "2024-03-16"]);
}

#[test]
fn csv_and_table_formats_carry_the_same_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "a.json",
        &trail_file(&[
            record("e1", "orders", "checkout", "2024-03-15T12:00:00Z"),
            record("e2", "payments", "billing", "2024-03-15T12:00:00Z"),
        ]),
    );
    let csv = ddb_audit(&["analyze", "--format", "csv", &file]);
    let lines: Vec<_> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", csv.stdout);
    assert!(lines[0].starts_with("account,region,table,day,caller,app,caller_type,"));
    assert!(lines
        .iter()
        .any(|l| l.contains("payments") && l.contains("role/billing")));
    let table = ddb_audit(&["analyze", &file]);
    assert_eq!(table.code, 0);
    for text in ["orders", "payments", "billing", "checkout"] {
        assert!(
            table.stdout.contains(text),
            "table lacks {text}:\n{}",
            table.stdout
        );
    }
    // Short caller names in the table; full ARNs and every column with --wide.
    assert!(!table.stdout.contains("arn:aws:iam::"), "{}", table.stdout);
    let wide = ddb_audit(&["analyze", "--wide", &file]);
    assert_eq!(wide.code, 0);
    for text in [
        "arn:aws:iam::111122223333:role/billing",
        "GetItem 1",
        "2024-03-15T12:00:00Z",
    ] {
        assert!(
            wide.stdout.contains(text),
            "wide table lacks {text}:\n{}",
            wide.stdout
        );
    }
}

#[test]
fn directories_are_walked_and_digests_skipped_and_each_event_id_counts_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = trail_file(&[record("e1", "orders", "checkout", "2024-03-15T12:00:00Z")]);
    let base = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/15";
    write(dir.path(), &format!("{base}/a.json.gz"), &gzip(&one));
    // The same event delivered again in another file counts once.
    write(dir.path(), &format!("{base}/b.json"), &one);
    // A digest file and a non-JSON file are not inputs.
    let digest = trail_file(&[record("d1", "orders", "digest", "2024-03-15T12:00:00Z")]);
    write(
        dir.path(),
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/15/x_CloudTrail-Digest_y.json.gz",
        &gzip(&digest),
    );
    write(dir.path(), "README.txt", b"not a trail file");
    let out = ddb_audit(&[
        "analyze",
        "--format",
        "json",
        &dir.path().display().to_string(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = json_rows(&out.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["calls"], 1);
    assert!(out.stderr.contains("2 input(s) read"), "{}", out.stderr);
    assert!(out.stderr.contains("duplicate_event 1"), "{}", out.stderr);
}

#[test]
fn an_unreadable_input_fails_the_run_after_the_others_are_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(
        dir.path(),
        "good.json",
        &trail_file(&[record("e1", "orders", "checkout", "2024-03-15T12:00:00Z")]),
    );
    let whole = gzip(&trail_file(&[record(
        "e2",
        "orders",
        "other",
        "2024-03-15T12:00:00Z",
    )]));
    let truncated = write(dir.path(), "truncated.json.gz", &whole[..whole.len() / 2]);
    let missing = dir.path().join("missing.json").display().to_string();
    let out = ddb_audit(&["analyze", "--format", "json", &truncated, &good, &missing]);
    assert_eq!(out.code, 1);
    let rows = json_rows(&out.stdout);
    assert_eq!(rows.len(), 1, "the good file still counts");
    assert_eq!(rows[0]["caller"], "arn:aws:iam::111122223333:role/checkout");
    assert!(
        out.stderr
            .contains(&format!("{truncated}: cannot read: truncated gzip")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("{missing}: cannot read")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("cli-secret-key-42"));
    assert!(!out.stdout.contains("cli-secret-key-42"));
}

#[test]
fn over_cap_and_empty_inputs_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = write(
        dir.path(),
        "big.json.gz",
        &gzip(&trail_file(&vec![
            record(
                "e1",
                "orders",
                "checkout",
                "2024-03-15T12:00:00Z"
            );
            20
        ])),
    );
    let empty = write(dir.path(), "empty.json", b"");
    let out = ddb_audit(&["analyze", "--max-decompressed-bytes", "2000", &big, &empty]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "{big}: cannot read: input is larger than the decompression cap of 2000 bytes"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("{empty}: skipped: empty file")),
        "{}",
        out.stderr
    );
}

#[test]
fn one_thread_and_several_count_the_same_whatever_fails_between_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = "2024-03-15T12:00:00Z";
    let calls = |ids: std::ops::Range<usize>, prefix: &str, role: &str| -> Vec<String> {
        ids.map(|i| record(&format!("{prefix}{i}"), &format!("t{}", i % 3), role, t))
            .collect()
    };
    write(
        dir.path(),
        "a.json.gz",
        &gzip(&trail_file(&calls(0..5, "a", "first"))),
    );
    // Shares a3 and a4 with a: they count once.
    let mut b = calls(3..5, "a", "first");
    b.extend(calls(0..4, "b", "second"));
    write(dir.path(), "b.json", &trail_file(&b));
    // Cut short after more than a chunk of records: one thread has folded
    // part of it into the batch of a and b before finding out.
    let c = gzip(&trail_file(&calls(0..3_000, "c", "partial")));
    write(dir.path(), "c.json.gz", &c[..c.len() * 7 / 10]);
    write(dir.path(), "d.json", b"");
    let mut e = calls(0..2, "e", "fifth");
    e.push(r#"{"eventSource":"dynamodb.amazonaws.com","eventName":5,"eventID":"x"}"#.to_owned());
    write(dir.path(), "e.json", &trail_file(&e));
    // The eventIDs of the file that could not be read count here.
    write(
        dir.path(),
        "f.json.gz",
        &gzip(&trail_file(&calls(0..3, "c", "after"))),
    );
    let folder = dir.path().display().to_string();
    for by_day in [false, true] {
        let run = |jobs: &str| {
            let mut args = vec!["analyze", "--format", "json", "--jobs", jobs, &folder];
            if by_day {
                args.push("--by-day");
            }
            ddb_audit(&args)
        };
        let one = run("1");
        let two = run("2");
        assert_eq!(one.code, 1, "{}", one.stderr);
        assert_eq!(
            (one.code, &one.stdout, &one.stderr),
            (two.code, &two.stdout, &two.stderr)
        );
        assert!(
            one.stderr
                .contains("4 input(s) read, 1 could not be read, 1 empty"),
            "{}",
            one.stderr
        );
        assert!(
            one.stderr
                .contains("c.json.gz: cannot read: truncated gzip"),
            "{}",
            one.stderr
        );
        assert!(one.stderr.contains("attributed 14"), "{}", one.stderr);
        assert!(one.stderr.contains("duplicate_event 2"), "{}", one.stderr);
        assert!(
            !one.stdout.contains("partial"),
            "nothing of the cut file counts"
        );
        let calls: u64 = json_rows(&one.stdout)
            .iter()
            .map(|r| r["calls"].as_u64().expect("calls"))
            .sum();
        assert_eq!(calls, 14);
    }
}

#[test]
fn malformed_records_are_reported_with_file_and_index_and_the_rest_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = r#"{"eventSource":"dynamodb.amazonaws.com","eventName":5,"eventID":"x"}"#.to_owned();
    let file = write(
        dir.path(),
        "mixed.json",
        &trail_file(&[
            record("e1", "orders", "checkout", "2024-03-15T12:00:00Z"),
            bad,
        ]),
    );
    let out = ddb_audit(&["analyze", "--format", "json", &file]);
    assert_eq!(out.code, 0, "a bad record does not fail the run");
    assert_eq!(json_rows(&out.stdout).len(), 1);
    assert!(
        out.stderr.contains(&format!(
            "warning: {file}: record 1 (eventID x): field `eventName` has the wrong JSON type (wrong_type)"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("malformed 1 (wrong_type 1)"),
        "{}",
        out.stderr
    );
}

#[test]
fn help_explains_analyze_and_usage_errors_exit_2() {
    let help = ddb_audit(&["analyze", "--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("CloudTrail"));
    assert!(help.stdout.contains("--format"));
    let none = ddb_audit(&["analyze"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("PATH"));
}

#[test]
fn app_names_file_names_callers_first_match_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "a.json",
        &trail_file(&[
            record("e1", "orders", "checkout-api", "2024-03-15T12:00:00Z"),
            record("e2", "orders", "billing", "2024-03-15T12:00:00Z"),
        ]),
    );
    let rules = write(
        dir.path(),
        "apps.json",
        br#"[{"app":"checkout","callers":["arn:aws:iam::*:role/checkout-*"]},
             {"app":"catch-all","callers":["arn:aws:iam::*:role/*"]}]"#,
    );
    let out = ddb_audit(&["analyze", "--format", "json", "--app-names", &rules, &file]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = json_rows(&out.stdout);
    let app_of = |role: &str| {
        rows.iter()
            .find(|r| r["caller"].as_str().is_some_and(|c| c.ends_with(role)))
            .map(|r| r["app"].clone())
    };
    assert_eq!(app_of("role/checkout-api"), Some(Value::from("checkout")));
    assert_eq!(app_of("role/billing"), Some(Value::from("catch-all")));
    let bad = write(dir.path(), "bad.json", b"{\"app\": 1}");
    let out = ddb_audit(&["analyze", "--app-names", &bad, &file]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("bad.json: application names must be a JSON list"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_folder_with_no_cloudtrail_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("create dir");
    let empty = empty.display().to_string();
    let out = ddb_audit(&["analyze", &empty]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains(&format!(
            "{empty}: no CloudTrail file found (looked for .json, .json.gz and .gz files; digest \
             and Insights files are passed over). CloudTrail writes its files under \
             AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/: copy them here with `aws s3 sync`\n"
        )),
        "{}",
        out.stderr
    );

    let text = dir.path().join("notes");
    write(&text, "a.txt", b"hello");
    write(&text, "b.txt", b"{\"Records\":[]}");
    let text = text.display().to_string();
    let out = ddb_audit(&["analyze", "--format", "json", &text]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{text}: no CloudTrail file found (looked for")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_binary_file_is_not_a_cloudtrail_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The first bytes of a PNG image, then noise.
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0u8..=255).rev());
    let plain = write(dir.path(), "image.json", &bytes);
    let zipped = write(dir.path(), "image.json.gz", &gzip(&bytes));
    let out = ddb_audit(&["analyze", &plain, &zipped]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "{plain}: cannot read: not a CloudTrail file (not gzip, not JSON) (bad_shape)\n"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "{zipped}: cannot read: not a CloudTrail file (gzip, but what it holds is not JSON) (bad_shape)\n"
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("UTF-8"), "{}", out.stderr);
}

#[test]
fn a_notification_named_on_the_command_line_is_an_error() {
    let root = ddb_audit_tests::workspace_root();
    let cases = [
        ("events/s3-ingest/s3-direct.json", "an S3 notification"),
        ("events/s3-ingest/sns-s3.json", "an SNS notification"),
        (
            "events/s3-ingest/sqs-s3.json",
            "an SQS event (queue messages)",
        ),
        (
            "events/s3-ingest/eventbridge-object-created.json",
            "an EventBridge event",
        ),
        (
            "events/notifier/dynamodb-stream.json",
            "a DynamoDB stream event",
        ),
    ];
    for (file, what) in cases {
        let path = root.join(file).display().to_string();
        let out = ddb_audit(&["analyze", "--format", "json", &path]);
        assert_eq!(out.code, 1, "{file}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{file}");
        assert!(
            out.stderr.contains(&format!(
                "{path}: cannot read: this is {what}, not a CloudTrail file; analyze the \
                 CloudTrail files it announces\n"
            )),
            "{file}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("0 input(s) read, 1 could not be read"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn the_events_folder_counts_its_cloudtrail_files_and_names_the_notifications() {
    let events = ddb_audit_tests::workspace_root().join("events");
    let events = events.display().to_string();
    let out = ddb_audit(&["analyze", "--format", "json", &events]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = json_rows(&out.stdout);
    assert!(rows.len() >= 15, "{} rows", rows.len());
    // Every notification sample is named and passed over, none is read as
    // CloudTrail (the S3 records would count as skipped not_dynamodb ones).
    let skipped = out
        .stderr
        .lines()
        .filter(|l| {
            l.contains(": skipped: this is ")
                && l.ends_with(", not a CloudTrail file; analyze the CloudTrail files it announces")
        })
        .count();
    assert_eq!(skipped, 8, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("6 input(s) read, 0 could not be read, 0 empty, 8 not CloudTrail (skipped); records in 92 = attributed 29 + skipped 63 (duplicate_event 54, not_dynamodb 9) + malformed 0"),
        "{}",
        out.stderr
    );

    // A folder of notifications only holds no CloudTrail file.
    let s3 = ddb_audit_tests::workspace_root().join("events/s3-ingest");
    let s3 = s3.display().to_string();
    let out = ddb_audit(&["analyze", &s3]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains(&format!(
            "{s3}: no CloudTrail file found among the 7 files looked at\n"
        )),
        "{}",
        out.stderr
    );
}

/// Every `ddb-audit` command in the README and in `docs/` runs as written:
/// its subcommand, flags and values parse (the command with `--help`
/// appended exits 0, where a wrong flag or value exits 2), and an `analyze`
/// whose inputs are in the repository runs and prints rows.
#[test]
fn every_documented_command_parses_and_documented_analyses_run() {
    let root = ddb_audit_tests::workspace_root();
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ is there")
        .map(|e| e.expect("a docs entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    let (mut parsed, mut ran) = (0, 0);
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("a page is UTF-8");
        for command in documented_commands(&text) {
            let at = format!("{}: {}", page.display(), command.join(" "));
            let args: Vec<String> = command[1..]
                .iter()
                .map(|a| match root.join(a) {
                    p if p.exists() && !a.starts_with('-') => p.display().to_string(),
                    _ => a.clone(),
                })
                .collect();
            let mut help: Vec<&str> = args.iter().map(String::as_str).collect();
            help.push("--help");
            let out = ddb_audit(&help);
            assert_eq!(out.code, 0, "{at}\n{}", out.stderr);
            parsed += 1;
            // Run when every input named is in the repository (a word with a
            // `/` that did not resolve is a path of the reader's own).
            let local = args[0] == "analyze"
                && args[1..].iter().any(|a| Path::new(a).is_absolute())
                && args[1..]
                    .iter()
                    .all(|a| Path::new(a).is_absolute() || !a.contains('/'));
            if local {
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = ddb_audit(&argv);
                assert_eq!(out.code, 0, "{at}\n{}", out.stderr);
                assert!(!out.stdout.is_empty(), "{at} printed no rows");
                ran += 1;
            }
        }
    }
    assert!(parsed >= 10, "only {parsed} documented commands found");
    assert!(ran >= 2, "only {ran} documented analyses ran");
}

/// The `ddb-audit ...` lines of a page's `sh` blocks: continuations joined,
/// comments, pipes and redirections cut off, words split as a shell would
/// for these simple lines (single and double quotes).
fn documented_commands(page: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in page.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = !in_sh && trimmed == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let whole = std::mem::take(&mut pending);
        if !whole.starts_with("ddb-audit ") {
            continue;
        }
        let mut words = Vec::new();
        let mut word = String::new();
        let mut quote = None;
        for c in whole.chars() {
            match (quote, c) {
                (None, '#' | '|' | '>') if word.is_empty() => break,
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                }
                (_, c) => word.push(c),
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
        commands.push(words);
    }
    commands
}
