//! The row schema users see: one rollup as printed by `ddb-audit analyze
//! --format json` (JSON Lines), and later by the summary-table queries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::OffsetDateTime;

use crate::rollup::{DailyKey, Rollup, RollupKey, SourceSet};
use crate::tally::Tally;

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
        RowRef::build(key, day, r).to_row()
    }
}

/// A row borrowed from its key and rollup: what [`Row`] holds, without
/// copying it, for writing many rows. It serialises exactly as the [`Row`]
/// made from the same rollup.
#[derive(Debug, Clone, Serialize)]
pub struct RowRef<'a> {
    account: &'a str,
    region: &'a str,
    table: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    day: Option<String>,
    caller: &'a str,
    app: Option<&'a str>,
    caller_type: &'static str,
    person: bool,
    calls: u64,
    reads: u64,
    writes: u64,
    errors: u64,
    denied: u64,
    operations: &'a Tally,
    indexes: &'a Tally,
    user_agents: &'a Tally,
    error_codes: &'a Tally,
    first_seen: String,
    last_seen: String,
    first_event_id: &'a str,
    source_ips: &'a SourceSet,
    vpc_endpoints: &'a SourceSet,
    invoked_by: &'a SourceSet,
}

impl<'a> RowRef<'a> {
    /// A lifetime row.
    pub fn lifetime(key: &'a RollupKey, rollup: &'a Rollup) -> Self {
        Self::build(key, None, rollup)
    }

    /// A daily row.
    pub fn daily(key: &'a DailyKey, rollup: &'a Rollup) -> Self {
        Self::build(&key.key, Some(format_day(key.day)), rollup)
    }

    /// Names the row's application from user-defined rules.
    pub fn with_app(mut self, names: &'a crate::apps::AppNames) -> Self {
        self.app = names.name_of(self.caller);
        self
    }

    /// The row, owned.
    pub fn to_row(&self) -> Row {
        Row {
            account: self.account.to_owned(),
            region: self.region.to_owned(),
            table: self.table.map(str::to_owned),
            day: self.day.clone(),
            caller: self.caller.to_owned(),
            app: self.app.map(str::to_owned),
            caller_type: self.caller_type.to_owned(),
            person: self.person,
            calls: self.calls,
            reads: self.reads,
            writes: self.writes,
            errors: self.errors,
            denied: self.denied,
            operations: self.operations.to_map(),
            indexes: self.indexes.to_map(),
            user_agents: self.user_agents.to_map(),
            error_codes: self.error_codes.to_map(),
            first_seen: self.first_seen.clone(),
            last_seen: self.last_seen.clone(),
            first_event_id: self.first_event_id.to_owned(),
            source_ips: self.source_ips.to_vec(),
            vpc_endpoints: self.vpc_endpoints.to_vec(),
            invoked_by: self.invoked_by.to_vec(),
        }
    }

    fn build(key: &'a RollupKey, day: Option<String>, r: &'a Rollup) -> Self {
        RowRef {
            account: &key.account,
            region: &key.region,
            table: key.table.as_deref(),
            day,
            caller: &key.caller,
            app: None,
            caller_type: r.caller_type.as_str(),
            person: r.person,
            calls: r.calls,
            reads: r.reads,
            writes: r.writes,
            errors: r.errors,
            denied: r.denied,
            operations: &r.operations,
            indexes: &r.indexes,
            user_agents: &r.user_agents,
            error_codes: &r.error_codes,
            first_seen: format_time(r.first_seen),
            last_seen: format_time(r.last_seen),
            first_event_id: &r.first_event_id,
            source_ips: &r.source_ips,
            vpc_endpoints: &r.vpc_endpoints,
            invoked_by: &r.invoked_by,
        }
    }
}

/// Formats Unix seconds the way CloudTrail writes `eventTime`
/// (`2024-03-15T12:05:09Z`).
pub fn format_time(unix: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp(unix) else {
        return unix.to_string();
    };
    // Years 0 to 9999 (every real one) are written here: `time`'s general
    // formatter took a tenth of the time spent writing rows.
    if let Ok(year) = u16::try_from(t.year()) {
        if year <= 9999 {
            let mut text = String::with_capacity(20);
            let parts = [
                (u32::from(year), 4, '-'),
                (u32::from(u8::from(t.month())), 2, '-'),
                (u32::from(t.day()), 2, 'T'),
                (u32::from(t.hour()), 2, ':'),
                (u32::from(t.minute()), 2, ':'),
                (u32::from(t.second()), 2, 'Z'),
            ];
            for (value, width, after) in parts {
                for place in (0..width).rev() {
                    let digit = value / 10u32.pow(place) % 10;
                    text.push(char::from(b'0' + digit as u8));
                }
                text.push(after);
            }
            return text;
        }
    }
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&format).unwrap_or_else(|_| unix.to_string())
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
    fn times_are_written_as_time_writes_them() {
        let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        let max = OffsetDateTime::new_utc(
            time::Date::from_calendar_date(9999, time::Month::December, 31).unwrap(),
            time::Time::from_hms(23, 59, 59).unwrap(),
        )
        .unix_timestamp();
        let min = OffsetDateTime::new_utc(
            time::Date::from_calendar_date(-9999, time::Month::January, 1).unwrap(),
            time::Time::MIDNIGHT,
        )
        .unix_timestamp();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut times = vec![
            0,
            -1,
            1,
            86_399,
            86_400,
            max,
            max + 1,
            min,
            min - 1,
            -62_167_219_200,
        ];
        for _ in 0..2_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            times.push((state >> 1) as i64 % (max - min) + min);
        }
        for unix in times {
            let expected = OffsetDateTime::from_unix_timestamp(unix)
                .ok()
                .and_then(|t| t.format(&format).ok())
                .unwrap_or_else(|| unix.to_string());
            assert_eq!(format_time(unix), expected, "{unix}");
        }
    }

    #[test]
    fn times_round_trip_in_cloudtrail_format() {
        let t = crate::attribute::parse_event_time("2024-03-15T12:05:09Z").unwrap();
        assert_eq!(format_time(t), "2024-03-15T12:05:09Z");
        assert_eq!(format_day(t.div_euclid(86_400)), "2024-03-15");
        // Offsets are normalised to UTC.
        let u = crate::attribute::parse_event_time("2024-03-15T23:30:00-01:00").unwrap();
        assert_eq!(format_time(u), "2024-03-16T00:30:00Z");
    }

    #[test]
    fn a_borrowed_row_writes_the_same_json_as_the_row() {
        let json = br#"{"Records":[
          {"eventSource":"dynamodb.amazonaws.com","eventName":"Query","eventTime":"2024-03-15T12:05:09Z",
           "eventID":"e1","awsRegion":"eu-west-1","recipientAccountId":"111122223333",
           "sourceIPAddress":"10.0.0.1","userAgent":"aws-sdk-java/2.20","vpcEndpointId":"vpce-1",
           "errorCode":"ValidationException",
           "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/app/s",
             "accountId":"111122223333","sessionContext":{"sessionIssuer":{"type":"Role",
             "arn":"arn:aws:iam::111122223333:role/app","userName":"app"}}},
           "requestParameters":{"tableName":"orders","indexName":"byCustomer"}}]}"#;
        let reader = crate::input::InputReader::default();
        let batch = reader.read_alone("test", json).map(|r| r.batch);
        let batch = batch.as_ref().ok();
        let Some((key, rollup)) = batch.and_then(|b| b.lifetime.iter().next()) else {
            panic!("one row expected from {batch:?}");
        };
        let names = crate::apps::AppNames::default();
        let borrowed = RowRef::lifetime(key, rollup).with_app(&names);
        let owned = Row::lifetime(key, rollup).with_app(&names);
        let a = serde_json::to_string(&borrowed).unwrap_or_default();
        let b = serde_json::to_string(&owned).unwrap_or_default();
        assert!(a.contains(r#""indexes":{"byCustomer":1}"#), "{a}");
        assert!(a.contains(r#""vpc_endpoints":["vpce-1"]"#), "{a}");
        assert_eq!(a, b);
        assert_eq!(borrowed.to_row(), owned);
        let day = batch.and_then(|b| b.daily.iter().next());
        let Some((dkey, drollup)) = day else {
            panic!("one daily row expected")
        };
        let a = serde_json::to_string(&RowRef::daily(dkey, drollup)).unwrap_or_default();
        let b = serde_json::to_string(&Row::daily(dkey, drollup)).unwrap_or_default();
        assert!(a.contains(r#""day":"2024-03-15""#), "{a}");
        assert_eq!(a, b);
    }
}
