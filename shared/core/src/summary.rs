//! The summary table's layout and the write plan for one batch (pure).
//!
//! One DynamoDB table holds everything (DESIGN.md section 5):
//!
//! | item | `pk` | `sk` |
//! | --- | --- | --- |
//! | lifetime rollup | `TABLE#<account>#<region>#<table>` (`ACCOUNT#<account>#<region>` for calls with no table) | `CALLER#<caller>` |
//! | daily rollup (TTL) | same | `DAY#<yyyy-mm-dd>#CALLER#<caller>` |
//! | ledger (TTL) | `LEDGER#<source id>` | `CHUNK#<n>` |
//! | reject | `REJECT` | `<source id>` |
//!
//! Lifetime items also carry `gsi1pk = CALLER#<caller>` and `gsi1sk = <pk>`,
//! so the `by-caller` index lists every table a caller touches.
//!
//! Counters are top-level number attributes, so that `ADD` works on items
//! that do not exist yet: `calls`, `reads`, `writes`, `errors`, `denied`, and
//! one attribute per operation (`op#GetItem`), index (`ix#by-customer`),
//! user-agent family (`ua#aws-sdk-java/2.x`) and error code
//! (`ec#AccessDenied`).
//!
//! No two rows share a key, whatever the names contain: the account and the
//! region are escaped ([`key_part`]: `%` becomes `%25`, `#` becomes `%23`),
//! and the table and the caller, which may contain anything, always come
//! last in their key, after a fixed number of delimiters. Real account ids
//! and regions contain neither character, so their keys read as documented;
//! only forged input (an account id or region with a `#` in it) is escaped.
//!
//! A batch becomes a [`Plan`]: its counter updates in deterministic
//! [`Chunk`]s, each applied in one transaction with its ledger item; the
//! lifetime rows' `first_seen`/`last_seen`/sources ([`Facts`]) are kept up to
//! date by idempotent updates outside the transactions.

use std::collections::BTreeSet;

use crate::rollup::{Batch, DailyKey, Rollup, RollupKey};
use crate::row::format_day;

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// Partition key of the `by-caller` index.
pub const GSI1_PK: &str = "gsi1pk";
/// Sort key of the `by-caller` index.
pub const GSI1_SK: &str = "gsi1sk";
/// The global secondary index from caller to tables.
pub const CALLER_INDEX: &str = "by-caller";
/// The TTL attribute (Unix seconds).
pub const EXPIRES_AT: &str = "expires_at";
/// Partition key of reject items.
pub const REJECT_PK: &str = "REJECT";

/// Transactions hold at most 100 actions; one is the ledger put.
pub const MAX_UPDATES_PER_CHUNK: usize = 99;

/// Prefixes of the per-name counter attributes.
pub mod prefix {
    /// `eventName` counters.
    pub const OPERATION: &str = "op#";
    /// Index counters.
    pub const INDEX: &str = "ix#";
    /// User-agent family counters.
    pub const USER_AGENT: &str = "ua#";
    /// Error code counters.
    pub const ERROR_CODE: &str = "ec#";
}

/// `pk` of a rollup row. The account and region are escaped with
/// [`key_part`]; the table name, last, is kept as it is: with two `#`-free
/// parts before it, the key still names exactly one (account, region, table).
pub fn row_pk(key: &RollupKey) -> String {
    let account = key_part(&key.account);
    let region = key_part(&key.region);
    match &key.table {
        Some(table) => format!("TABLE#{account}#{region}#{table}"),
        None => format!("ACCOUNT#{account}#{region}"),
    }
}

/// A key component that is followed by another one: `%` and the delimiter
/// `#` percent-encoded, so the component cannot end early or be confused with
/// an escape. Borrowed (unchanged) for every real account id and region.
pub fn key_part(part: &str) -> std::borrow::Cow<'_, str> {
    if !part.contains(['#', '%']) {
        return std::borrow::Cow::Borrowed(part);
    }
    let mut out = String::with_capacity(part.len() + 8);
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `sk` of a lifetime row.
pub fn lifetime_sk(caller: &str) -> String {
    format!("CALLER#{caller}")
}

/// `sk` of a daily row.
pub fn daily_sk(day: i64, caller: &str) -> String {
    format!("DAY#{}#CALLER#{caller}", format_day(day))
}

/// `pk` of a batch's ledger items.
pub fn ledger_pk(source_id: &str) -> String {
    format!("LEDGER#{source_id}")
}

/// `sk` of a chunk's ledger item.
pub fn ledger_sk(chunk: usize) -> String {
    format!("CHUNK#{chunk:05}")
}

/// How long items live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Daily rollups expire this many days after their day ends (0: never).
    pub daily_days: u32,
}

/// One item's counter update, applied inside a chunk's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterUpdate {
    /// `pk`.
    pub pk: String,
    /// `sk`.
    pub sk: String,
    /// Descriptive attributes set when absent: `account`, `region`, `table`,
    /// `caller`, `caller_type`, `day`.
    pub describe: Vec<(&'static str, String)>,
    /// `person`, set to true when any call says so.
    pub person: bool,
    /// Counter attributes and the amounts to add.
    pub adds: Vec<(String, u64)>,
    /// `gsi1pk`/`gsi1sk` for lifetime rows.
    pub caller_index: Option<(String, String)>,
    /// `expires_at` for daily rows.
    pub expires_at: Option<i64>,
    /// For lifetime rows: first and last seen and sources. Set when the row
    /// is created (so a new row is complete in the stream's INSERT), then
    /// kept as minimum, maximum and capped sets by idempotent updates outside
    /// the transaction.
    pub facts: Option<Facts>,
}

/// A lifetime row's facts in this batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Earliest call of the batch (Unix seconds) and its eventID.
    pub first_seen: (i64, String),
    /// Latest call of the batch.
    pub last_seen: i64,
    /// Source IPs, VPC endpoints and `invokedBy` services seen.
    pub sources: Sources,
}

/// The sets kept beside a caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// `source_ips`.
    pub source_ips: BTreeSet<String>,
    /// `vpc_endpoints`.
    pub vpc_endpoints: BTreeSet<String>,
    /// `invoked_by`.
    pub invoked_by: BTreeSet<String>,
}

impl Sources {
    /// The sets with their attribute names.
    pub fn named(&self) -> [(&'static str, &BTreeSet<String>); 3] {
        [
            ("source_ips", &self.source_ips),
            ("vpc_endpoints", &self.vpc_endpoints),
            ("invoked_by", &self.invoked_by),
        ]
    }
}

/// Counter updates applied together with one ledger item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the plan: the ledger item's `sk` is `CHUNK#<index>`.
    pub index: usize,
    /// The updates (at most [`MAX_UPDATES_PER_CHUNK`]).
    pub updates: Vec<CounterUpdate>,
}

/// Everything one batch writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The batch's stable id (same on every retry or redelivery).
    pub source_id: String,
    /// Counter chunks, in a deterministic order.
    pub chunks: Vec<Chunk>,
}

impl Plan {
    /// Number of distinct rows (lifetime and daily) the plan touches.
    pub fn rollup_keys(&self) -> usize {
        self.chunks.iter().map(|c| c.updates.len()).sum()
    }

    /// The lifetime rows and their facts, for the idempotent updates.
    pub fn facts(&self) -> impl Iterator<Item = (&CounterUpdate, &Facts)> {
        self.chunks
            .iter()
            .flat_map(|c| c.updates.iter())
            .filter_map(|u| u.facts.as_ref().map(|f| (u, f)))
    }
}

/// Builds the write plan of a batch. The same batch always gives the same
/// plan, which is what makes a retry recompute the same chunks.
pub fn plan(source_id: &str, batch: &Batch, retention: Retention) -> Plan {
    let mut lifetime: Vec<(&RollupKey, &Rollup)> = batch.lifetime.iter().collect();
    lifetime.sort_by(|a, b| a.0.cmp(b.0));
    let mut daily: Vec<(&DailyKey, &Rollup)> = batch.daily.iter().collect();
    daily.sort_by(|a, b| a.0.cmp(b.0));

    let mut updates = Vec::with_capacity(lifetime.len() + daily.len());
    for (key, rollup) in &lifetime {
        let pk = row_pk(key);
        let mut update = counter_update(pk.clone(), lifetime_sk(&key.caller), key, rollup);
        update.caller_index = Some((lifetime_sk(&key.caller), pk));
        update.facts = Some(Facts {
            first_seen: (rollup.first_seen, rollup.first_event_id.clone()),
            last_seen: rollup.last_seen,
            sources: Sources {
                source_ips: rollup.source_ips.to_set(),
                vpc_endpoints: rollup.vpc_endpoints.to_set(),
                invoked_by: rollup.invoked_by.to_set(),
            },
        });
        updates.push(update);
    }
    for (key, rollup) in &daily {
        let mut update = counter_update(
            row_pk(&key.key),
            daily_sk(key.day, &key.key.caller),
            &key.key,
            rollup,
        );
        update.describe.push(("day", format_day(key.day)));
        if retention.daily_days > 0 {
            let day_end = (key.day + 1).saturating_mul(86_400);
            update.expires_at = Some(day_end + i64::from(retention.daily_days) * 86_400);
        }
        updates.push(update);
    }
    let mut chunks = Vec::new();
    let mut rest = updates.into_iter().peekable();
    while rest.peek().is_some() {
        let updates: Vec<_> = rest.by_ref().take(MAX_UPDATES_PER_CHUNK).collect();
        chunks.push(Chunk {
            index: chunks.len(),
            updates,
        });
    }
    Plan {
        source_id: source_id.to_owned(),
        chunks,
    }
}

fn counter_update(pk: String, sk: String, key: &RollupKey, r: &Rollup) -> CounterUpdate {
    let mut describe = vec![
        ("account", key.account.to_string()),
        ("region", key.region.to_string()),
        ("caller", key.caller.to_string()),
        ("caller_type", r.caller_type.as_str().to_owned()),
    ];
    if let Some(table) = &key.table {
        describe.push(("table", table.to_string()));
    }
    let mut adds = Vec::new();
    for (name, value) in [
        ("calls", r.calls),
        ("reads", r.reads),
        ("writes", r.writes),
        ("errors", r.errors),
        ("denied", r.denied),
    ] {
        adds.push((name.to_owned(), value));
    }
    for (prefix, map) in [
        (prefix::OPERATION, &r.operations),
        (prefix::INDEX, &r.indexes),
        (prefix::USER_AGENT, &r.user_agents),
        (prefix::ERROR_CODE, &r.error_codes),
    ] {
        for (name, value) in map.iter() {
            adds.push((format!("{prefix}{name}"), value));
        }
    }
    CounterUpdate {
        pk,
        sk,
        describe,
        person: r.person,
        adds,
        caller_index: None,
        expires_at: None,
        facts: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::Rules;
    use crate::input::{InputReader, Limits};

    fn batch(callers: usize) -> Batch {
        let records: Vec<String> = (0..callers)
            .map(|i| {
                format!(
                    r#"{{"eventSource":"dynamodb.amazonaws.com","eventName":"GetItem","eventID":"e{i}",
                    "eventTime":"2024-03-15T12:00:00Z","awsRegion":"us-east-1","recipientAccountId":"111122223333",
                    "userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u{i:03}"}},
                    "requestParameters":{{"tableName":"orders","indexName":"byCustomer"}}}}"#
                )
            })
            .collect();
        let file = format!("{{\"Records\":[{}]}}", records.join(","));
        let mut reader = InputReader::new(Rules::default(), Limits::default());
        reader.read("t", file.as_bytes()).unwrap().1
    }

    #[test]
    fn keys_follow_the_documented_layout() {
        let plan = plan("s3://b/k#e", &batch(1), Retention { daily_days: 10 });
        let updates = &plan.chunks[0].updates;
        assert_eq!(updates[0].pk, "TABLE#111122223333#us-east-1#orders");
        assert_eq!(updates[0].sk, "CALLER#arn:aws:iam::111122223333:user/u000");
        assert_eq!(
            updates[0].caller_index,
            Some((updates[0].sk.clone(), updates[0].pk.clone()))
        );
        assert_eq!(
            updates[1].sk,
            "DAY#2024-03-15#CALLER#arn:aws:iam::111122223333:user/u000"
        );
        // 2024-03-16T00:00:00Z + 10 days.
        assert_eq!(updates[1].expires_at, Some(1_710_547_200 + 10 * 86_400));
        assert!(updates[0].adds.contains(&("ix#byCustomer".to_owned(), 1)));
        assert!(updates[0].adds.contains(&("op#GetItem".to_owned(), 1)));
        assert_eq!(ledger_pk("s3://b/k#e"), "LEDGER#s3://b/k#e");
    }

    #[test]
    fn names_with_delimiters_never_share_a_key() {
        let key = |account: &str, region: &str, table: Option<&str>, caller: &str| RollupKey {
            account: account.into(),
            region: region.into(),
            table: table.map(Into::into),
            caller: caller.into(),
        };
        // Pairs that naive `#` concatenation would give the same `pk`.
        let keys = [
            key("1#r", "t", Some("x"), "c"),
            key("1", "r#t", Some("x"), "c"),
            key("1", "r", Some("t#x"), "c"),
            key("1%23r", "t", Some("x"), "c"),
            key("1", "r%23t", Some("x"), "c"),
            key("1", "r", None, "c"),
            key("1#r", "", None, "c"),
            key("1", "r#", None, "c"),
        ];
        let mut pks: Vec<String> = keys.iter().map(row_pk).collect();
        pks.sort();
        pks.dedup();
        assert_eq!(pks.len(), keys.len(), "{pks:#?}");
        // Real names keep the documented layout.
        assert_eq!(
            row_pk(&key("111122223333", "us-east-1", Some("a#b"), "c")),
            "TABLE#111122223333#us-east-1#a#b"
        );
        // Callers come last in the sort keys: distinct callers, distinct keys.
        assert_ne!(lifetime_sk("a#b"), lifetime_sk("a"));
        assert_ne!(daily_sk(0, "x#CALLER#y"), daily_sk(0, "x"));
    }

    #[test]
    fn chunks_are_full_and_deterministic() {
        let b = batch(120);
        let a = plan("src", &b, Retention { daily_days: 0 });
        assert_eq!(a.rollup_keys(), 240);
        let sizes: Vec<usize> = a.chunks.iter().map(|c| c.updates.len()).collect();
        assert_eq!(sizes, [99, 99, 42]);
        assert!(a
            .chunks
            .iter()
            .all(|c| c.updates.iter().all(|u| u.expires_at.is_none())));
        // The same input folded again plans the same writes, whatever the map order.
        let again = plan("src", &batch(120), Retention { daily_days: 0 });
        assert_eq!(a, again);
        assert_eq!(a.facts().count(), 120);
    }
}
