//! How a notice reads (pure): one SNS message per notice, or one digest for
//! the notices over the hourly cap, each rendered once per kind of reader.
//!
//! A message is published with `MessageStructure=json`, so every protocol
//! gets the body that suits it:
//!
//! | protocol | body |
//! | --- | --- |
//! | `email`, and `default` (any protocol not listed) | plain text for a person |
//! | `sqs`, `lambda`, `http`, `https`, `firehose`, `email-json` | the JSON document below |
//! | `sms` | the subject line |
//!
//! The JSON document has the layout of a custom notification for AWS chat
//! integrations (`version`, `source`, `content.title`, `content.description`,
//! `content.nextSteps`) and ddb-audit's own fields under `ddb_audit`: the
//! row as `ddb-audit analyze --format json` prints it, plus `kind` and
//! `command`. Message attributes (`kind`, `table`, `account`, `region`,
//! `caller_type`) are there for subscription filter policies.
//!
//! What a message carries comes only from a lifetime row, which holds no
//! item key values, PartiQL literals or access key ids.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::notify::{Notice, NoticeKind};
use crate::row::Row;

/// SNS subjects must be shorter than 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;

/// Notices listed in one digest message at most; more make more digests.
pub const MAX_DIGEST_ENTRIES: usize = 50;

/// A message attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `String`.
    String(String),
    /// `String.Array`: a filter policy matches when any element does.
    StringArray(Vec<String>),
}

impl Attribute {
    /// SNS's `DataType`.
    pub fn data_type(&self) -> &'static str {
        match self {
            Attribute::String(_) => "String",
            Attribute::StringArray(_) => "String.Array",
        }
    }

    /// SNS's `StringValue` (a JSON array for `String.Array`).
    pub fn value(&self) -> String {
        match self {
            Attribute::String(v) => v.clone(),
            Attribute::StringArray(v) => Value::from(v.clone()).to_string(),
        }
    }
}

/// One SNS message, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `Subject` (at most [`MAX_SUBJECT_CHARS`], ASCII for ASCII table names).
    pub subject: String,
    /// The plain-text body (email).
    pub text: String,
    /// The JSON document (queues, functions, webhooks, chat).
    pub json: Value,
    /// Message attributes.
    pub attributes: Vec<(&'static str, Attribute)>,
    /// A stable id of what the message announces, for FIFO topics'
    /// `MessageDeduplicationId` (32 hex digits).
    pub dedup_id: String,
}

impl Message {
    /// The `Message` for `MessageStructure=json`: one body per protocol.
    pub fn structured(&self) -> String {
        let json = self.json.to_string();
        json!({
            "default": self.text,
            "email": self.text,
            "email-json": json,
            "sqs": json,
            "lambda": json,
            "http": json,
            "https": json,
            "firehose": json,
            "sms": self.subject,
        })
        .to_string()
    }
}

/// The message for one notice.
pub fn single(notice: &Notice) -> Message {
    let row = &notice.row;
    let subject = headline(notice);
    let text = text_body(notice);
    let mut fields = row_json(row);
    fields["kind"] = notice.kind.as_str().into();
    fields["command"] = notice.command().into();
    if let Some(before) = &notice.before {
        fields["denied_batch_operations"] = json!(difference(&row.operations, &before.operations));
    }
    let description = format!(
        "{}\n*Caller:* `{}` ({})\n*First seen:* {}\n*Operations:* {}",
        lead(notice),
        row.caller,
        row.caller_type,
        row.first_seen,
        counts(&row.operations)
    );
    let document = json!({
        "version": "1.0",
        "source": "custom",
        "id": notice_id(notice),
        "content": {
            "textType": "client-markdown",
            "title": subject,
            "description": description,
            "nextSteps": [format!("`{}`", notice.command())],
        },
        "ddb_audit": fields,
    });
    Message {
        attributes: vec![
            ("kind", Attribute::String(notice.kind.as_str().into())),
            ("table", Attribute::String(notice.table().into())),
            ("account", Attribute::String(row.account.clone())),
            ("region", Attribute::String(row.region.clone())),
            ("caller_type", Attribute::String(row.caller_type.clone())),
        ],
        dedup_id: hash_hex(&notice_id(notice)),
        subject,
        text,
        json: document,
    }
}

/// The digests for notices over the hourly cap: one message per
/// [`MAX_DIGEST_ENTRIES`] notices, each listing its callers.
pub fn digests(notices: &[&Notice], max_per_hour: u32) -> Vec<Message> {
    let parts: Vec<&[&Notice]> = notices.chunks(MAX_DIGEST_ENTRIES).collect();
    let total = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| digest(part, max_per_hour, (i + 1, total)))
        .collect()
}

fn digest(notices: &[&Notice], max_per_hour: u32, (part, parts): (usize, usize)) -> Message {
    let tables: BTreeSet<&str> = notices.iter().map(|n| n.table()).collect();
    let of = if parts > 1 {
        format!(" (part {part} of {parts})")
    } else {
        String::new()
    };
    let subject = shorten(
        &format!(
            "ddb-audit digest: {} over the hourly limit{of} ({})",
            plural(notices.len() as u64, "notice", "notices"),
            tables.iter().copied().collect::<Vec<_>>().join(", ")
        ),
        MAX_SUBJECT_CHARS,
    );
    let these = match notices.len() {
        1 => format!("This notice{of} is"),
        n => format!("These {n} notices{of} are"),
    };
    let mut text = format!(
        "More callers were new or denied than NOTIFY_MAX_PER_HOUR ({max_per_hour}) lets ddb-audit announce one by one in an hour.\n\
         {these} folded into this digest; single notices resume next hour.\n"
    );
    for (i, n) in notices.iter().enumerate() {
        let r = &n.row;
        text.push_str(&format!(
            "\n{}. {}\n   Caller:      {} ({})\n   First seen:  {}\n   Operations:  {}\n   Source:      {}\n   More:        {}\n",
            i + 1,
            headline(n),
            r.caller,
            caller_type(r),
            r.first_seen,
            counts(&r.operations),
            sources(r),
            n.command()
        ));
    }
    text.push_str(FOOTER);
    let entries: Vec<Value> = notices
        .iter()
        .map(|n| {
            let mut fields = row_json(&n.row);
            fields["kind"] = n.kind.as_str().into();
            fields["command"] = n.command().into();
            fields
        })
        .collect();
    let ids: Vec<String> = notices.iter().map(|n| notice_id(n)).collect();
    let distinct = |f: &dyn Fn(&Notice) -> String| -> Vec<String> {
        let set: BTreeSet<String> = notices.iter().map(|n| f(n)).collect();
        set.into_iter().collect()
    };
    let mut kinds = vec!["digest".to_owned()];
    kinds.extend(distinct(&|n| n.kind.as_str().to_owned()));
    let description = format!(
        "{} over the hourly limit of {max_per_hour}{of}, on {}.",
        plural(notices.len() as u64, "notice", "notices"),
        tables.iter().copied().collect::<Vec<_>>().join(", ")
    );
    let document = json!({
        "version": "1.0",
        "source": "custom",
        "id": hash_hex(&ids.join("\n")),
        "content": {
            "textType": "client-markdown",
            "title": subject,
            "description": description,
            "nextSteps": notices.iter().map(|n| format!("`{}`", n.command())).collect::<BTreeSet<_>>(),
        },
        "ddb_audit": {
            "kind": "digest",
            "max_per_hour": max_per_hour,
            "notices": entries,
        },
    });
    Message {
        subject,
        text,
        json: document,
        attributes: vec![
            ("kind", Attribute::StringArray(kinds)),
            (
                "table",
                Attribute::StringArray(distinct(&|n| n.table().to_owned())),
            ),
            (
                "account",
                Attribute::StringArray(distinct(&|n| n.row.account.clone())),
            ),
            (
                "region",
                Attribute::StringArray(distinct(&|n| n.row.region.clone())),
            ),
            (
                "caller_type",
                Attribute::StringArray(distinct(&|n| n.row.caller_type.clone())),
            ),
        ],
        dedup_id: hash_hex(&ids.join("\n")),
    }
}

const FOOTER: &str = "\n--\nddb-audit sends one notice the first time a caller uses a table, and one the first time a known\n\
caller is denied there. To silence a caller or a table, add caller:GLOB or table:GLOB to the\n\
notifier's NOTIFY_IGNORE setting.\n";

/// The subject: `New caller on orders (111122223333 us-east-1)`.
fn headline(notice: &Notice) -> String {
    let what = match notice.kind {
        NoticeKind::NewCaller => "New caller",
        NoticeKind::NewCallerDenied => "New caller denied",
        NoticeKind::Denied => "Caller first denied",
    };
    let row = &notice.row;
    let tail = format!(" ({} {})", row.account, row.region);
    let head = format!("{what} on ");
    let room = MAX_SUBJECT_CHARS.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", shorten(notice.table(), room))
}

fn lead(notice: &Notice) -> String {
    let row = &notice.row;
    let place = format!(
        "the DynamoDB table {} in account {}, region {}",
        notice.table(),
        row.account,
        row.region
    );
    match notice.kind {
        NoticeKind::NewCaller => format!("A new caller used {place}."),
        NoticeKind::NewCallerDenied => {
            let denied = match (row.denied, row.calls) {
                (1, 1) => "its first call was denied".to_owned(),
                (d, n) if d >= n => format!("all of its {n} first calls were denied"),
                (1, n) => format!("1 of its {n} first calls was denied"),
                (d, n) => format!("{d} of its {n} first calls were denied"),
            };
            format!("A new caller tried {place}, and {denied}.")
        }
        NoticeKind::Denied => {
            format!("A known caller was denied access to {place} for the first time.")
        }
    }
}

fn text_body(notice: &Notice) -> String {
    let row = &notice.row;
    let mut lines: Vec<(&str, String)> = vec![
        ("Caller", row.caller.clone()),
        ("Caller type", caller_type(row)),
    ];
    match &notice.before {
        Some(before) => {
            lines.push(("Caller since", row.first_seen.clone()));
            lines.push(("Last seen", row.last_seen.clone()));
            lines.push((
                "Denied calls",
                format!("{} ({})", row.denied, counts(&row.error_codes)),
            ));
            lines.push((
                "Denied batch",
                counts(&difference(&row.operations, &before.operations)),
            ));
        }
        None => {
            lines.push(("First seen", row.first_seen.clone()));
            lines.push(("Operations", counts(&row.operations)));
        }
    }
    lines.push(("Index", names(&row.indexes, "none (the table itself)")));
    lines.push(("Source", sources(row)));
    lines.push(("User agent", names(&row.user_agents, "not recorded")));
    lines.push((
        "Calls so far",
        format!(
            "{} ({}, {}, {}, {} denied)",
            row.calls,
            plural(row.reads, "read", "reads"),
            plural(row.writes, "write", "writes"),
            plural(row.errors, "error", "errors"),
            row.denied
        ),
    ));
    if notice.before.is_none() && !row.error_codes.is_empty() {
        lines.push(("Error codes", counts(&row.error_codes)));
    }
    lines.push((
        "eventID",
        format!(
            "{} (the caller's earliest call; look it up in CloudTrail)",
            row.first_event_id
        ),
    ));
    let mut text = format!("{}\n\n", lead(notice));
    for (label, value) in lines {
        text.push_str(&format!("{:<14}{value}\n", format!("{label}:")));
    }
    text.push_str(&format!(
        "\nMore about the callers of this table:\n  {}\n",
        notice.command()
    ));
    text.push_str(FOOTER);
    text
}

fn caller_type(row: &Row) -> String {
    let who = match crate::caller::caller_name(&row.caller).service {
        Some("") => "an AWS service's service-linked role",
        Some(service) => {
            return format!("{}, the service-linked role of {service}", row.caller_type)
        }
        None if row.person => "a person",
        None => "an application",
    };
    format!("{}, {who}", row.caller_type)
}

/// `1 read`, `2 reads`, `0 reads`.
fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `GetItem 2, Query 1`, most frequent first.
fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    let mut entries: Vec<(&String, &u64)> = map.iter().collect();
    entries.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    entries
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn names(map: &BTreeMap<String, u64>, none: &str) -> String {
    if map.is_empty() {
        none.into()
    } else {
        map.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn sources(row: &Row) -> String {
    let mut parts = Vec::new();
    if !row.source_ips.is_empty() {
        parts.push(row.source_ips.join(", "));
    }
    if !row.vpc_endpoints.is_empty() {
        parts.push(format!(
            "through VPC endpoint {}",
            row.vpc_endpoints.join(", ")
        ));
    }
    if !row.invoked_by.is_empty() {
        parts.push(format!("invoked by {}", row.invoked_by.join(", ")));
    }
    if parts.is_empty() {
        "not recorded".into()
    } else {
        parts.join("; ")
    }
}

/// Counts in `after` beyond those in `before`: what the latest batch did.
fn difference(
    after: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

fn row_json(row: &Row) -> Value {
    serde_json::to_value(row).unwrap_or(Value::Null)
}

/// What the notice is about, in words that are stable across retries.
fn notice_id(notice: &Notice) -> String {
    format!("{}|{}", notice.record_pk(), notice.record_sk())
}

/// Shortens text to `max` characters, marking the cut with `...`.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let keep = max.saturating_sub(3);
    let mut out: String = text.chars().take(keep).collect();
    out.push_str("...");
    out
}

/// 128 bits of two FNV-1a hashes as 32 hex digits: a stable id, not a
/// secret.
pub(crate) fn hash_hex(text: &str) -> String {
    let fnv = |seed: u64| {
        text.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::tests::row;

    fn notice(old: Option<Row>, new: Row) -> Notice {
        Notice::from_change(old, Some(new)).expect("a notice")
    }

    #[test]
    fn a_new_caller_reads_well_as_an_email() {
        let m = single(&notice(None, row(3, 0)));
        assert_eq!(m.subject, "New caller on orders (111122223333 us-east-1)");
        for wanted in [
            "A new caller used the DynamoDB table orders in account 111122223333, region us-east-1.",
            "Caller:       arn:aws:iam::111122223333:role/service/checkout",
            "Caller type:  AssumedRole, an application",
            "First seen:   2024-03-15T12:01:07Z",
            "Operations:   GetItem 3",
            "Index:        by-customer",
            "Source:       192.0.2.47; through VPC endpoint vpce-0a1b2c3d4e5f67890",
            "User agent:   aws-sdk-java/2.x",
            "eventID:      5a28c187-42be-405a-a8fe-86a1103a2c80",
            "  ddb-audit callers --table orders --account 111122223333 --region us-east-1",
        ] {
            assert!(m.text.contains(wanted), "missing {wanted:?} in\n{}", m.text);
        }
        let attrs: BTreeMap<&str, String> =
            m.attributes.iter().map(|(k, v)| (*k, v.value())).collect();
        assert_eq!(attrs["kind"], "new_caller");
        assert_eq!(attrs["table"], "orders");
        assert_eq!(attrs["caller_type"], "AssumedRole");
        assert_eq!(m.dedup_id.len(), 32);
    }

    #[test]
    fn every_protocol_gets_its_own_body() {
        let m = single(&notice(None, row(2, 2)));
        assert_eq!(
            m.subject,
            "New caller denied on orders (111122223333 us-east-1)"
        );
        assert!(
            m.text.contains("and all of its 2 first calls were denied."),
            "{}",
            m.text
        );
        let s: Value = serde_json::from_str(&m.structured()).unwrap();
        assert_eq!(s["default"], m.text);
        assert_eq!(s["email"], m.text);
        assert_eq!(s["sms"], m.subject);
        let doc: Value = serde_json::from_str(s["sqs"].as_str().unwrap()).unwrap();
        assert_eq!(doc["content"]["title"], m.subject);
        assert_eq!(doc["ddb_audit"]["kind"], "new_caller_denied");
        assert_eq!(doc["ddb_audit"]["denied"], 2);
        assert_eq!(doc["ddb_audit"]["error_codes"]["AccessDeniedException"], 2);
        assert_eq!(s["https"], s["sqs"]);
    }

    #[test]
    fn a_first_denial_says_what_the_denied_batch_did() {
        let m = single(&notice(Some(row(5, 0)), row(7, 2)));
        assert_eq!(
            m.subject,
            "Caller first denied on orders (111122223333 us-east-1)"
        );
        assert!(m.text.contains("Denied batch: GetItem 2"), "{}", m.text);
        assert!(
            m.text.contains("Denied calls: 2 (AccessDeniedException 2)"),
            "{}",
            m.text
        );
        assert_eq!(m.json["ddb_audit"]["denied_batch_operations"]["GetItem"], 2);
    }

    #[test]
    fn subjects_stay_under_100_characters() {
        let mut r = row(1, 0);
        r.table = Some("t".repeat(255));
        let m = single(&notice(None, r));
        assert!(m.subject.len() <= MAX_SUBJECT_CHARS, "{}", m.subject.len());
        assert!(
            m.subject.ends_with("... (111122223333 us-east-1)"),
            "{}",
            m.subject
        );
        let many: Vec<Notice> = (0..120)
            .map(|i| {
                let mut r = row(1, 0);
                r.table = Some(format!("table-with-a-long-name-{i:03}"));
                notice(None, r)
            })
            .collect();
        let refs: Vec<&Notice> = many.iter().collect();
        let d = digests(&refs, 20);
        assert_eq!(d.len(), 3, "50 + 50 + 20");
        assert!(d.iter().all(|m| m.subject.len() <= MAX_SUBJECT_CHARS));
        assert!(d[2].subject.contains("(part 3 of 3)"), "{}", d[2].subject);
    }

    #[test]
    fn a_digest_lists_every_caller_and_can_be_filtered() {
        let a = notice(None, row(1, 0));
        let mut other = row(1, 1);
        other.caller = "arn:aws:iam::111122223333:user/maria".into();
        other.table = Some("payments".into());
        other.caller_type = "IAMUser".into();
        let b = notice(None, other);
        let d = digests(&[&a, &b], 20).remove(0);
        assert!(
            d.subject.starts_with("ddb-audit digest: 2 notices"),
            "{}",
            d.subject
        );
        assert!(d.text.contains("role/service/checkout") && d.text.contains("user/maria"));
        assert!(d.text.contains("NOTIFY_MAX_PER_HOUR (20)"));
        let attrs: BTreeMap<&str, &Attribute> = d.attributes.iter().map(|(k, v)| (*k, v)).collect();
        assert_eq!(
            attrs["kind"].value(),
            r#"["digest","new_caller","new_caller_denied"]"#
        );
        assert_eq!(attrs["table"].data_type(), "String.Array");
        assert_eq!(attrs["table"].value(), r#"["orders","payments"]"#);
        assert_eq!(d.json["ddb_audit"]["notices"].as_array().unwrap().len(), 2);
    }

    /// `row(calls, denied)` with one call's counters, for the singular forms.
    fn one_call(denied: u64) -> Row {
        row(1, denied)
    }

    #[test]
    fn the_text_of_a_new_caller_notice_with_one_call() {
        let m = single(&notice(None, one_call(0)));
        assert_eq!(
            m.text,
            "A new caller used the DynamoDB table orders in account 111122223333, region us-east-1.\n\
             \n\
             Caller:       arn:aws:iam::111122223333:role/service/checkout\n\
             Caller type:  AssumedRole, an application\n\
             First seen:   2024-03-15T12:01:07Z\n\
             Operations:   GetItem 1\n\
             Index:        by-customer\n\
             Source:       192.0.2.47; through VPC endpoint vpce-0a1b2c3d4e5f67890\n\
             User agent:   aws-sdk-java/2.x\n\
             Calls so far: 1 (1 read, 0 writes, 0 errors, 0 denied)\n\
             eventID:      5a28c187-42be-405a-a8fe-86a1103a2c80 (the caller's earliest call; look it up in CloudTrail)\n\
             \n\
             More about the callers of this table:\n  \
             ddb-audit callers --table orders --account 111122223333 --region us-east-1\n\
             \n\
             --\n\
             ddb-audit sends one notice the first time a caller uses a table, and one the first time a known\n\
             caller is denied there. To silence a caller or a table, add caller:GLOB or table:GLOB to the\n\
             notifier's NOTIFY_IGNORE setting.\n"
        );
    }

    #[test]
    fn the_text_of_a_new_caller_denied_notice_counts_in_good_grammar() {
        let lead = |calls: u64, denied: u64| {
            let m = single(&notice(None, row(calls, denied)));
            m.text.lines().next().unwrap_or_default().to_owned()
        };
        let place = "the DynamoDB table orders in account 111122223333, region us-east-1";
        assert_eq!(
            lead(1, 1),
            format!("A new caller tried {place}, and its first call was denied.")
        );
        assert_eq!(
            lead(2, 2),
            format!("A new caller tried {place}, and all of its 2 first calls were denied.")
        );
        assert_eq!(
            lead(3, 1),
            format!("A new caller tried {place}, and 1 of its 3 first calls was denied.")
        );
        assert_eq!(
            lead(3, 2),
            format!("A new caller tried {place}, and 2 of its 3 first calls were denied.")
        );
        let m = single(&notice(None, one_call(1)));
        assert!(
            m.text
                .contains("\nCalls so far: 1 (0 reads, 0 writes, 1 error, 1 denied)\n"),
            "{}",
            m.text
        );
        assert!(
            m.text.contains("\nError codes:  AccessDeniedException 1\n"),
            "{}",
            m.text
        );
    }

    #[test]
    fn the_text_of_a_first_denial_notice() {
        let m = single(&notice(Some(row(5, 0)), row(6, 1)));
        let expected_start = "A known caller was denied access to the DynamoDB table orders in account 111122223333, region us-east-1 for the first time.\n\
             \n\
             Caller:       arn:aws:iam::111122223333:role/service/checkout\n\
             Caller type:  AssumedRole, an application\n\
             Caller since: 2024-03-15T12:01:07Z\n\
             Last seen:    2024-03-15T12:05:00Z\n\
             Denied calls: 1 (AccessDeniedException 1)\n\
             Denied batch: GetItem 1\n\
             Index:        by-customer\n\
             Source:       192.0.2.47; through VPC endpoint vpce-0a1b2c3d4e5f67890\n\
             User agent:   aws-sdk-java/2.x\n\
             Calls so far: 6 (5 reads, 0 writes, 1 error, 1 denied)\n\
             eventID:      5a28c187-42be-405a-a8fe-86a1103a2c80 (the caller's earliest call; look it up in CloudTrail)\n";
        assert!(m.text.starts_with(expected_start), "{}", m.text);
    }

    #[test]
    fn the_text_of_a_digest_of_one_notice_is_singular() {
        let a = notice(None, one_call(0));
        let d = digests(&[&a], 20).remove(0);
        assert_eq!(
            d.subject,
            "ddb-audit digest: 1 notice over the hourly limit (orders)"
        );
        assert_eq!(
            d.text,
            "More callers were new or denied than NOTIFY_MAX_PER_HOUR (20) lets ddb-audit announce one by one in an hour.\n\
             This notice is folded into this digest; single notices resume next hour.\n\
             \n\
             1. New caller on orders (111122223333 us-east-1)\n   \
             Caller:      arn:aws:iam::111122223333:role/service/checkout (AssumedRole, an application)\n   \
             First seen:  2024-03-15T12:01:07Z\n   \
             Operations:  GetItem 1\n   \
             Source:      192.0.2.47; through VPC endpoint vpce-0a1b2c3d4e5f67890\n   \
             More:        ddb-audit callers --table orders --account 111122223333 --region us-east-1\n\
             \n\
             --\n\
             ddb-audit sends one notice the first time a caller uses a table, and one the first time a known\n\
             caller is denied there. To silence a caller or a table, add caller:GLOB or table:GLOB to the\n\
             notifier's NOTIFY_IGNORE setting.\n"
        );
        assert_eq!(
            d.json["content"]["description"],
            "1 notice over the hourly limit of 20, on orders."
        );
        let b = notice(None, row(2, 0));
        let two = digests(&[&a, &b], 20).remove(0);
        assert!(
            two.text
                .contains("\nThese 2 notices are folded into this digest;"),
            "{}",
            two.text
        );
        assert_eq!(
            two.subject,
            "ddb-audit digest: 2 notices over the hourly limit (orders)"
        );
    }

    #[test]
    fn a_service_linked_role_is_named_as_the_service_it_serves() {
        let mut r = row(1, 0);
        r.caller = "arn:aws:iam::111122223333:role/aws-service-role/dynamodb.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable".into();
        let m = single(&notice(None, r));
        assert!(
            m.text.contains(
                "\nCaller type:  AssumedRole, the service-linked role of dynamodb.application-autoscaling.amazonaws.com\n"
            ),
            "{}",
            m.text
        );
        let mut person = row(1, 0);
        person.person = true;
        let m = single(&notice(None, person));
        assert!(
            m.text.contains("\nCaller type:  AssumedRole, a person\n"),
            "{}",
            m.text
        );
    }
}
