//! New-caller and first-denied notices: which summary-table changes are
//! worth telling a person about, and which of them a person asked not to
//! hear about (pure).
//!
//! The notifier reads the summary table's stream. A change is a notice when
//! a lifetime row on a table ([`crate::summary::row_pk`] `TABLE#...`,
//! `CALLER#...`) goes from no calls to some calls (a new caller), or from no
//! `AccessDenied*` calls to some (a known caller's first denial). A new
//! caller whose first calls include denied ones is one notice of its own
//! kind, never two. Everything else the table holds (daily rows, ledger,
//! rejects, the notifier's own records, per-account rows of calls that name
//! no table) is never a notice.
//!
//! Deciding from the images, not from the stream's event name, is what makes
//! moto and DynamoDB give the same single notice: moto writes an `UpdateItem`
//! that creates an item as two INSERT records, the first with only the key
//! attributes, which has no calls and so is no notice.
//!
//! How a notice reads is in [`crate::notify_message`]; the DynamoDB and SNS
//! side is in `notify_handler` (feature `aws`).

use globset::{Glob, GlobMatcher};

use crate::row::Row;
use crate::summary;
use crate::Error;

/// What a notice announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoticeKind {
    /// A caller's first call to a table.
    NewCaller,
    /// A caller's first calls to a table, some of them denied.
    NewCallerDenied,
    /// A known caller's first `AccessDenied*` on a table.
    Denied,
}

impl NoticeKind {
    /// The `kind` message attribute and JSON field.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::NewCaller => "new_caller",
            NoticeKind::NewCallerDenied => "new_caller_denied",
            NoticeKind::Denied => "denied",
        }
    }

    /// The event the notice records, so that the two kinds of a first
    /// appearance share one record and are never both sent.
    fn event(self) -> &'static str {
        match self {
            NoticeKind::NewCaller | NoticeKind::NewCallerDenied => "new",
            NoticeKind::Denied => "denied",
        }
    }
}

/// A change worth a notice: the row after the change and, for a denial,
/// the row before it (to tell what the denied batch did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// What it announces.
    pub kind: NoticeKind,
    /// The lifetime row after the change.
    pub row: Row,
    /// The row before the change (`None` for a new caller).
    pub before: Option<Row>,
}

impl Notice {
    /// The notice for a change of a lifetime row from `old` to `new`, if it
    /// is one. An image that is not a complete lifetime row on a table (a
    /// key-only image, a daily row, anything else) counts as absent.
    pub fn from_change(old: Option<Row>, new: Option<Row>) -> Option<Notice> {
        let new = new.filter(is_table_lifetime_row)?;
        let old = old.filter(is_table_lifetime_row);
        if new.calls == 0 {
            return None;
        }
        let (old_calls, old_denied) = old.as_ref().map_or((0, 0), |o| (o.calls, o.denied));
        let kind = if old_calls == 0 {
            if new.denied > 0 {
                NoticeKind::NewCallerDenied
            } else {
                NoticeKind::NewCaller
            }
        } else if old_denied == 0 && new.denied > 0 {
            NoticeKind::Denied
        } else {
            return None;
        };
        Some(Notice {
            kind,
            before: if kind == NoticeKind::Denied {
                old
            } else {
                None
            },
            row: new,
        })
    }

    /// The table name (always present: notices are about tables).
    pub fn table(&self) -> &str {
        self.row.table.as_deref().unwrap_or_default()
    }

    /// `pk` of the item that records this notice: `NOTICE#<row pk>`.
    pub fn record_pk(&self) -> String {
        format!(
            "{NOTICE_PREFIX}TABLE#{}#{}#{}",
            self.row.account,
            self.row.region,
            self.table()
        )
    }

    /// `sk` of the item that records this notice: `<row sk>#new` for a
    /// first appearance (either kind), `<row sk>#denied` for a denial.
    pub fn record_sk(&self) -> String {
        format!(
            "{}#{}",
            summary::lifetime_sk(&self.row.caller),
            self.kind.event()
        )
    }

    /// The `ddb-audit` command that shows more about the table's callers.
    pub fn command(&self) -> String {
        format!(
            "ddb-audit callers --table {} --account {} --region {}",
            self.table(),
            self.row.account,
            self.row.region
        )
    }
}

/// Prefix of the `pk` of notice records.
pub const NOTICE_PREFIX: &str = "NOTICE#";
/// `pk` of the notifier's own bookkeeping (learning start, hourly counts).
pub const NOTIFIER_PK: &str = "NOTIFIER";
/// `sk` of the item that says when the learning period started.
pub const LEARNING_SK: &str = "LEARNING";

/// `sk` of the counter of single notices sent in an hour (`HOUR#2024-03-15T12`).
pub fn hour_sk(unix: i64) -> String {
    let mut text = crate::row::format_time(unix.div_euclid(3600) * 3600);
    text.truncate(13);
    format!("HOUR#{text}")
}

fn is_table_lifetime_row(row: &Row) -> bool {
    row.day.is_none() && row.table.is_some()
}

/// `NOTIFY_IGNORE`: rules that silence known callers and tables.
///
/// Rules are separated by commas (outside `{...}`); a rule is one or more
/// conditions separated by spaces, each `caller:GLOB`, `table:GLOB` or
/// `account:GLOB`, and silences a notice when all its conditions match:
/// `caller:arn:aws:iam::*:role/ci-*, table:scratch-* account:444455556666`.
/// Globs are those of the other options (`*` also matches `/`).
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<IgnoreRule>,
}

#[derive(Debug, Clone)]
struct IgnoreRule {
    text: String,
    conditions: Vec<(Field, GlobMatcher)>,
}

#[derive(Debug, Clone, Copy)]
enum Field {
    Caller,
    Table,
    Account,
}

impl IgnoreRules {
    /// Parses the rules; an error names the rule and says what is wrong.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut rules = Vec::new();
        for rule in split_rules(text) {
            let rule = rule.trim();
            if rule.is_empty() {
                continue;
            }
            let mut conditions = Vec::new();
            for condition in rule.split_whitespace() {
                let (field, pattern) = condition.split_once(':').ok_or_else(|| {
                    Error::Config(format!(
                        "NOTIFY_IGNORE: `{condition}` in rule `{rule}` must be caller:GLOB, table:GLOB or account:GLOB"
                    ))
                })?;
                let field = match field {
                    "caller" => Field::Caller,
                    "table" => Field::Table,
                    "account" => Field::Account,
                    other => {
                        return Err(Error::Config(format!(
                            "NOTIFY_IGNORE: unknown field `{other}` in rule `{rule}` (caller, table or account)"
                        )))
                    }
                };
                let glob = Glob::new(pattern).map_err(|e| {
                    Error::Config(format!(
                        "NOTIFY_IGNORE: `{pattern}` in rule `{rule}` is not a valid glob: {e}"
                    ))
                })?;
                conditions.push((field, glob.compile_matcher()));
            }
            rules.push(IgnoreRule {
                text: rule.to_owned(),
                conditions,
            });
        }
        Ok(IgnoreRules { rules })
    }

    /// The first rule that silences a notice about `row`, as written.
    pub fn silencing(&self, row: &Row) -> Option<&str> {
        self.rules
            .iter()
            .find(|rule| {
                rule.conditions.iter().all(|(field, glob)| match field {
                    Field::Caller => glob.is_match(&row.caller),
                    Field::Table => row.table.as_deref().is_some_and(|t| glob.is_match(t)),
                    Field::Account => glob.is_match(&row.account),
                })
            })
            .map(|rule| rule.text.as_str())
    }

    /// No rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Splits on commas that are not inside a glob's `{a,b}`.
fn split_rules(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// What one notifier invocation did: one reconciliation line and one EMF
/// record, like the ingest functions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoticeCounts {
    /// Stream records in the batch.
    pub records_in: u64,
    /// Records that are not notices (other items, counters going up).
    pub not_notices: u64,
    /// Notices silenced by `NOTIFY_IGNORE`.
    pub ignored: u64,
    /// Notices recorded but not announced during the learning period.
    pub learning: u64,
    /// New callers that a backfill with notices off brought in (history).
    pub history: u64,
    /// Notices already sent by an earlier delivery of the same records.
    pub already_sent: u64,
    /// Notices published as messages of their own.
    pub sent: u64,
    /// Notices published inside digests.
    pub in_digest: u64,
    /// Digest messages published.
    pub digests: u64,
    /// Records left for a retry (publish or summary-table failures).
    pub failed: u64,
}

impl NoticeCounts {
    /// The reconciliation line: every record is accounted for once.
    pub fn summary(&self) -> String {
        format!(
            "stream records in {} = not notices {} + ignored {} + learning {} + backfilled history {} + already sent {} + sent {} + in digest {} + left for retry {}; digests {}",
            self.records_in,
            self.not_notices,
            self.ignored,
            self.learning,
            self.history,
            self.already_sent,
            self.sent,
            self.in_digest,
            self.failed,
            self.digests
        )
    }

    /// The EMF record (namespace `ddb-audit`, dimension `Function`).
    pub fn emf(&self, function: &str, timestamp_ms: i64) -> String {
        let metrics = [
            ("StreamRecords", self.records_in),
            ("NotNotices", self.not_notices),
            ("NoticesIgnored", self.ignored),
            ("NoticesLearning", self.learning),
            ("NoticesHistory", self.history),
            ("NoticesAlreadySent", self.already_sent),
            ("NoticesSent", self.sent),
            ("NoticesInDigest", self.in_digest),
            ("Digests", self.digests),
            ("Failures", self.failed),
        ];
        let definitions: Vec<serde_json::Value> = metrics
            .iter()
            .map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"}))
            .collect();
        let mut root = serde_json::Map::new();
        root.insert(
            "_aws".into(),
            serde_json::json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": crate::metrics::NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert("Function".into(), function.into());
        for (name, n) in metrics {
            root.insert(name.into(), n.into());
        }
        serde_json::Value::Object(root).to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn row(calls: u64, denied: u64) -> Row {
        Row {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            table: Some("orders".into()),
            day: None,
            caller: "arn:aws:iam::111122223333:role/service/checkout".into(),
            app: None,
            caller_type: "AssumedRole".into(),
            person: false,
            calls,
            reads: calls - denied,
            writes: 0,
            errors: denied,
            denied,
            operations: [("GetItem".to_owned(), calls)].into(),
            indexes: [("by-customer".to_owned(), 1)].into(),
            user_agents: [("aws-sdk-java/2.x".to_owned(), calls)].into(),
            error_codes: if denied > 0 {
                [("AccessDeniedException".to_owned(), denied)].into()
            } else {
                Default::default()
            },
            first_seen: "2024-03-15T12:01:07Z".into(),
            last_seen: "2024-03-15T12:05:00Z".into(),
            first_event_id: "5a28c187-42be-405a-a8fe-86a1103a2c80".into(),
            source_ips: vec!["192.0.2.47".into()],
            vpc_endpoints: vec!["vpce-0a1b2c3d4e5f67890".into()],
            invoked_by: vec![],
        }
    }

    fn kind(old: Option<Row>, new: Option<Row>) -> Option<NoticeKind> {
        Notice::from_change(old, new).map(|n| n.kind)
    }

    #[test]
    fn a_first_appearance_is_a_new_caller_whatever_the_old_image() {
        assert_eq!(kind(None, Some(row(3, 0))), Some(NoticeKind::NewCaller));
        // moto's key-only first INSERT, then the complete one.
        assert_eq!(kind(None, None), None);
        assert_eq!(
            kind(Some(row(0, 0)), Some(row(3, 0))),
            Some(NoticeKind::NewCaller)
        );
    }

    #[test]
    fn a_new_caller_whose_first_calls_were_denied_is_one_notice_of_its_own() {
        assert_eq!(
            kind(None, Some(row(2, 2))),
            Some(NoticeKind::NewCallerDenied)
        );
        let n = Notice::from_change(None, Some(row(2, 2))).unwrap();
        let d = Notice::from_change(Some(row(1, 0)), Some(row(2, 1))).unwrap();
        assert_eq!(n.record_sk(), format!("CALLER#{}#new", n.row.caller));
        assert_eq!(d.record_sk(), format!("CALLER#{}#denied", d.row.caller));
        assert_eq!(n.record_pk(), "NOTICE#TABLE#111122223333#us-east-1#orders");
    }

    #[test]
    fn a_known_callers_first_denial_is_a_denied_notice_and_later_ones_are_not() {
        assert_eq!(
            kind(Some(row(5, 0)), Some(row(6, 1))),
            Some(NoticeKind::Denied)
        );
        assert_eq!(kind(Some(row(6, 1)), Some(row(8, 3))), None);
        assert_eq!(kind(Some(row(5, 0)), Some(row(9, 0))), None);
    }

    #[test]
    fn daily_rows_and_rows_without_a_table_are_never_notices() {
        let mut daily = row(1, 0);
        daily.day = Some("2024-03-15".into());
        assert_eq!(kind(None, Some(daily)), None);
        let mut account = row(1, 0);
        account.table = None;
        assert_eq!(kind(None, Some(account)), None);
    }

    #[test]
    fn ignore_rules_match_all_their_conditions() {
        let rules = IgnoreRules::parse(
            "caller:arn:aws:iam::*:role/service/check*, table:scratch-* account:4444*,  caller:{a,b}",
        )
        .unwrap();
        let r = row(1, 0);
        assert_eq!(
            rules.silencing(&r),
            Some("caller:arn:aws:iam::*:role/service/check*")
        );
        let mut other = row(1, 0);
        other.caller = "arn:aws:iam::111122223333:user/maria".into();
        assert_eq!(rules.silencing(&other), None);
        other.table = Some("scratch-1".into());
        assert_eq!(rules.silencing(&other), None, "account does not match");
        other.account = "444455556666".into();
        assert_eq!(
            rules.silencing(&other),
            Some("table:scratch-* account:4444*")
        );
        other.caller = "b".into();
        other.table = Some("orders".into());
        assert_eq!(rules.silencing(&other), Some("caller:{a,b}"));
        assert!(IgnoreRules::parse("").unwrap().is_empty());
        for bad in ["orders", "who:x", "table:[x"] {
            let err = IgnoreRules::parse(bad).unwrap_err().to_string();
            assert!(err.contains("NOTIFY_IGNORE"), "{err}");
        }
    }

    #[test]
    fn hours_are_utc_and_truncated() {
        let t = crate::attribute::parse_event_time("2024-03-15T12:59:59Z").unwrap();
        assert_eq!(hour_sk(t), "HOUR#2024-03-15T12");
    }

    #[test]
    fn the_reconciliation_names_every_outcome() {
        let c = NoticeCounts {
            records_in: 4,
            not_notices: 2,
            sent: 1,
            in_digest: 1,
            digests: 1,
            ..NoticeCounts::default()
        };
        assert!(c
            .summary()
            .starts_with("stream records in 4 = not notices 2"));
        let v: serde_json::Value = serde_json::from_str(&c.emf("notifier", 0)).unwrap();
        assert_eq!(v["NoticesSent"], 1);
        assert_eq!(v["Function"], "notifier");
    }
}
