//! The row schema users see: one rollup as printed by `ddb-audit analyze
//! --format json` (JSON Lines), and later by the summary-table queries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::OffsetDateTime;

use crate::rollup::{DailyKey, Rollup, RollupKey};

/// One rollup row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The account that owns the table.
    pub account: String,
    /// The table's region.
    pub region: String,
    /// The table; `null` for calls that name no table (`ListTables`).
    pub table: Option<String>,
    /// The UTC day (`YYYY-MM-DD`) for daily rows; absent for lifetime rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// The caller string.
    pub caller: String,
    /// The application the caller belongs to, from user-defined rules
    /// ([`crate::apps::AppNames`]); `null` when no rule names it.
    pub app: Option<String>,
    /// `userIdentity.type` of the caller.
    pub caller_type: String,
    /// The caller is a person rather than an application.
    pub person: bool,
    /// Calls (a call touching two tables counts once on each).
    pub calls: u64,
    /// Read calls.
    pub reads: u64,
    /// Write calls.
    pub writes: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Calls refused with `AccessDenied*`.
    pub denied: u64,
    /// `eventName` → calls.
    pub operations: BTreeMap<String, u64>,
    /// Index name → calls.
    pub indexes: BTreeMap<String, u64>,
    /// User-agent family → calls.
    pub user_agents: BTreeMap<String, u64>,
    /// `errorCode` → calls.
    pub error_codes: BTreeMap<String, u64>,
    /// Earliest `eventTime` (RFC 3339 UTC).
    pub first_seen: String,
    /// Latest `eventTime` (RFC 3339 UTC).
    pub last_seen: String,
    /// `eventID` of the earliest call: a sample to look up in CloudTrail.
    pub first_event_id: String,
    /// Source IP addresses (at most a few).
    pub source_ips: Vec<String>,
    /// VPC endpoints (at most a few).
    pub vpc_endpoints: Vec<String>,
    /// Services that called on the caller's behalf (`invokedBy`).
    pub invoked_by: Vec<String>,
}

impl Row {
    /// A lifetime row.
    pub fn lifetime(key: &RollupKey, rollup: &Rollup) -> Self {
        Self::build(key, None, rollup)
    }

    /// A daily row.
    pub fn daily(key: &DailyKey, rollup: &Rollup) -> Self {
        Self::build(&key.key, Some(format_day(key.day)), rollup)
    }

    /// Names the row's application from user-defined rules.
    pub fn with_app(mut self, names: &crate::apps::AppNames) -> Self {
        self.app = names.name_of(&self.caller).map(str::to_owned);
        self
    }

    fn build(key: &RollupKey, day: Option<String>, r: &Rollup) -> Self {
        Row {
            account: key.account.clone(),
            region: key.region.clone(),
            table: key.table.clone(),
            day,
            caller: key.caller.clone(),
            app: None,
            caller_type: r.caller_type.as_str().to_owned(),
            person: r.person,
            calls: r.calls,
            reads: r.reads,
            writes: r.writes,
            errors: r.errors,
            denied: r.denied,
            operations: r.operations.clone(),
            indexes: r.indexes.clone(),
            user_agents: r.user_agents.clone(),
            error_codes: r.error_codes.clone(),
            first_seen: format_time(r.first_seen),
            last_seen: format_time(r.last_seen),
            first_event_id: r.first_event_id.clone(),
            source_ips: r.source_ips.iter().cloned().collect(),
            vpc_endpoints: r.vpc_endpoints.iter().cloned().collect(),
            invoked_by: r.invoked_by.iter().cloned().collect(),
        }
    }
}

/// Formats Unix seconds the way CloudTrail writes `eventTime`
/// (`2024-03-15T12:05:09Z`).
pub fn format_time(unix: i64) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// Formats days since the Unix epoch as `YYYY-MM-DD`.
pub fn format_day(day: i64) -> String {
    let mut text = format_time(day.saturating_mul(86_400));
    text.truncate(10);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_in_cloudtrail_format() {
        let t = crate::attribute::parse_event_time("2024-03-15T12:05:09Z").unwrap();
        assert_eq!(format_time(t), "2024-03-15T12:05:09Z");
        assert_eq!(format_day(t.div_euclid(86_400)), "2024-03-15");
        // Offsets are normalised to UTC.
        let u = crate::attribute::parse_event_time("2024-03-15T23:30:00-01:00").unwrap();
        assert_eq!(format_time(u), "2024-03-16T00:30:00Z");
    }
}
