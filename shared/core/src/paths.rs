//! One path per trail: noticing when the same account and region reach the
//! summary table through both ingest paths (pure).
//!
//! A trail can deliver to S3 (read by `s3-ingest`) and to a CloudWatch Logs
//! group (read by `logs-ingest`). The ledger tells batches apart, not events,
//! so an event that arrives both ways is counted once per path. The template
//! wires one path per trail; this module is how ingest notices a trail wired
//! both ways outside it.
//!
//! Each ingest records, per (account, region), the latest UTC day of the
//! events it applied through its path: one item, `pk = PATHS`,
//! `sk = <account>#<region>`, with `s3_day` and `logs_day` (`YYYY-MM-DD`),
//! each only ever moved forward. The two paths **overlap** when both days
//! are known and at most one day apart: both are delivering the same
//! account and region now. When one path is removed its day stops moving,
//! and the overlap ends a day later. A backfill of old files moves nothing
//! forward, so history brought in while the other path is live is no
//! overlap (unless it reaches the days that path already covers).
//!
//! The notifier sees the item change in the stream and sends one warning
//! notice when a change starts an overlap ([`overlap_started`]); the CLI's
//! queries print a warning on stderr while any overlap lasts.

use serde_json::json;

use crate::attribute::parse_event_time;
use crate::notify_message::{hash_hex, Attribute, Message};
use crate::summary::key_part;

/// `pk` of the path marks.
pub const PATHS_PK: &str = "PATHS";

/// The two ways a trail's events reach the summary table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IngestPath {
    /// CloudTrail files in S3, read by `s3-ingest` (and `ddb-audit backfill`).
    S3,
    /// A CloudWatch Logs group, read by `logs-ingest`.
    Logs,
}

impl IngestPath {
    /// The attribute holding the path's latest day.
    pub fn attribute(self) -> &'static str {
        match self {
            IngestPath::S3 => "s3_day",
            IngestPath::Logs => "logs_day",
        }
    }

    /// How a person names the path.
    pub fn describe(self) -> &'static str {
        match self {
            IngestPath::S3 => "S3 (s3-ingest)",
            IngestPath::Logs => "CloudWatch Logs (logs-ingest)",
        }
    }
}

/// `sk` of the marks of one account and region.
pub fn paths_sk(account: &str, region: &str) -> String {
    format!("{}#{}", key_part(account), key_part(region))
}

/// The marks of one account and region, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathMarks {
    /// The account the events were recorded in.
    pub account: String,
    /// The region.
    pub region: String,
    /// The latest day applied through S3 (`YYYY-MM-DD`).
    pub s3_day: Option<String>,
    /// The latest day applied through CloudWatch Logs.
    pub logs_day: Option<String>,
}

impl PathMarks {
    /// True when both paths delivered this account and region within a day
    /// of each other.
    pub fn overlapping(&self) -> bool {
        match (
            day_number(self.s3_day.as_deref()),
            day_number(self.logs_day.as_deref()),
        ) {
            (Some(s3), Some(logs)) => (s3 - logs).abs() <= 1,
            _ => false,
        }
    }

    /// The later of the two days: what names one overlap spell (an overlap,
    /// once started, lasts while both days keep moving, so it starts at most
    /// once on any day).
    pub fn latest_day(&self) -> Option<&str> {
        self.s3_day.as_deref().max(self.logs_day.as_deref())
    }

    /// The one-line warning the CLI prints on stderr.
    pub fn warning(&self) -> String {
        format!(
            "warning: account {} region {} reaches the summary table through both S3 and CloudWatch Logs \
             (latest days {} and {}): its events are counted once per path until one path is removed; \
             see docs/deploying.md#one-path-per-trail",
            self.account,
            self.region,
            self.s3_day.as_deref().unwrap_or("-"),
            self.logs_day.as_deref().unwrap_or("-"),
        )
    }
}

/// The day number (days since 1970-01-01) of a `YYYY-MM-DD` mark.
fn day_number(day: Option<&str>) -> Option<i64> {
    parse_event_time(&format!("{}T00:00:00Z", day?)).map(|t| t.div_euclid(86_400))
}

/// The overlap a change of the marks starts, if it starts one: `new`
/// overlaps and `old` (absent, or key-only) did not.
pub fn overlap_started(old: Option<&PathMarks>, new: Option<&PathMarks>) -> Option<PathMarks> {
    let new = new.filter(|m| m.overlapping())?;
    if old.is_some_and(PathMarks::overlapping) {
        return None;
    }
    Some(new.clone())
}

/// `pk` of the record of a sent overlap warning.
pub const OVERLAP_NOTICE_PK: &str = "NOTICE#PATHS";

/// `sk` of the record of the warning for one overlap spell.
pub fn overlap_notice_sk(marks: &PathMarks) -> String {
    format!(
        "{}#overlap#{}",
        paths_sk(&marks.account, &marks.region),
        marks.latest_day().unwrap_or_default()
    )
}

/// The warning notice: what happened, what it does to counts, and which
/// path to remove and how.
pub fn overlap_message(marks: &PathMarks) -> Message {
    let subject = format!(
        "ddb-audit: {} {} reaches both ingest paths; counts double",
        marks.account, marks.region
    );
    let text = format!(
        "The DynamoDB events of account {account} in {region} reach the ddb-audit summary table through \
both ingest paths:\n\
\n\
  S3 (s3-ingest):                  latest day {s3}\n\
  CloudWatch Logs (logs-ingest):   latest day {logs}\n\
\n\
Each path counts every event it delivers, so while both deliver the same trail, every call is \
counted twice in the rollups (calls, reads, writes, errors, per day and lifetime). first_seen and \
last_seen stay right.\n\
\n\
What to do: keep one path and remove the other.\n\
  - Keep S3 (recommended: complete files, cheaper): delete the subscription filter that sends the \
trail's log group to logs-ingest (aws logs delete-subscription-filter --log-group-name GROUP \
--filter-name NAME), or redeploy the stack with IngestPath=S3.\n\
  - Keep CloudWatch Logs: remove the trail bucket's notification to the ddb-audit queue, or redeploy \
with IngestPath=CloudWatchLogs.\n\
\n\
To see the true counts for the overlapping days, run `ddb-audit analyze` over the trail's files for \
those days. `ddb-audit` queries print a warning while the overlap lasts; it ends a day after one \
path stops.\n",
        account = marks.account,
        region = marks.region,
        s3 = marks.s3_day.as_deref().unwrap_or("-"),
        logs = marks.logs_day.as_deref().unwrap_or("-"),
    );
    let id = format!("{OVERLAP_NOTICE_PK}|{}", overlap_notice_sk(marks));
    let json = json!({
        "version": "1.0",
        "source": "custom",
        "id": id,
        "content": {
            "textType": "client-markdown",
            "title": subject,
            "description": format!(
                "Account {} in {} reaches ddb-audit through both S3 and CloudWatch Logs: every call is counted twice.",
                marks.account, marks.region
            ),
            "nextSteps": ["Remove one path: the log group's subscription filter, or the bucket's notification"],
        },
        "ddb_audit": {
            "kind": "path_overlap",
            "account": marks.account,
            "region": marks.region,
            "s3_day": marks.s3_day,
            "logs_day": marks.logs_day,
        },
    });
    Message {
        subject,
        text,
        json,
        attributes: vec![
            ("kind", Attribute::String("path_overlap".to_owned())),
            ("account", Attribute::String(marks.account.clone())),
            ("region", Attribute::String(marks.region.clone())),
        ],
        dedup_id: hash_hex(&id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(s3: Option<&str>, logs: Option<&str>) -> PathMarks {
        PathMarks {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            s3_day: s3.map(Into::into),
            logs_day: logs.map(Into::into),
        }
    }

    #[test]
    fn both_paths_within_a_day_overlap_and_one_path_never_does() {
        assert!(marks(Some("2024-03-15"), Some("2024-03-15")).overlapping());
        assert!(marks(Some("2024-03-15"), Some("2024-03-16")).overlapping());
        assert!(marks(Some("2024-03-01"), Some("2024-02-29")).overlapping());
        assert!(!marks(Some("2024-03-15"), Some("2024-03-17")).overlapping());
        assert!(!marks(Some("2024-03-15"), None).overlapping());
        assert!(!marks(None, Some("2024-03-15")).overlapping());
        // A mark that is not a day is no overlap, never a panic.
        assert!(!marks(Some("soon"), Some("2024-03-15")).overlapping());
    }

    #[test]
    fn only_the_change_that_starts_an_overlap_is_a_notice() {
        let one = marks(Some("2024-03-15"), None);
        let both = marks(Some("2024-03-15"), Some("2024-03-15"));
        let later = marks(Some("2024-03-16"), Some("2024-03-15"));
        assert_eq!(overlap_started(Some(&one), Some(&both)), Some(both.clone()));
        assert_eq!(overlap_started(None, Some(&both)), Some(both.clone()));
        // Already overlapping: no second notice while it lasts.
        assert_eq!(overlap_started(Some(&both), Some(&later)), None);
        assert_eq!(overlap_started(Some(&both), None), None);
        assert_eq!(overlap_started(None, Some(&one)), None);
        // A new spell after a gap is a new record.
        let resumed = marks(Some("2024-03-20"), Some("2024-03-20"));
        assert_ne!(overlap_notice_sk(&both), overlap_notice_sk(&resumed));
    }

    #[test]
    fn the_warning_says_what_happens_to_counts_and_what_to_do() {
        let m = overlap_message(&marks(Some("2024-03-15"), Some("2024-03-16")));
        assert!(m.subject.chars().count() <= 100, "{}", m.subject);
        assert_eq!(
            m.subject,
            "ddb-audit: 111122223333 us-east-1 reaches both ingest paths; counts double"
        );
        for expected in [
            "counted twice",
            "latest day 2024-03-15",
            "latest day 2024-03-16",
            "delete-subscription-filter",
            "IngestPath=S3",
            "ddb-audit analyze",
        ] {
            assert!(m.text.contains(expected), "{expected:?} in {}", m.text);
        }
        assert_eq!(m.json["ddb_audit"]["kind"], "path_overlap");
        assert_eq!(m.dedup_id.len(), 32);
    }

    #[test]
    fn marks_are_escaped_like_row_keys() {
        assert_eq!(
            paths_sk("111122223333", "us-east-1"),
            "111122223333#us-east-1"
        );
        assert_ne!(paths_sk("1#2", "r"), paths_sk("1", "2#r"));
    }
}
