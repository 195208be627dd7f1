//! What happened to every record of an input: attributed, skipped (by reason)
//! or malformed (by reason), so that records in = attributed + skipped +
//! malformed always holds and can be logged and checked.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// Why a well-formed record was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// `eventSource` is not `dynamodb.amazonaws.com`.
    NotDynamoDb,
    /// The same `eventID` was already counted.
    DuplicateEvent,
    /// A `userIdentity` or table matched a configured exclusion.
    Excluded,
}

impl SkipReason {
    /// Stable name used in logs, metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotDynamoDb => "not_dynamodb",
            SkipReason::DuplicateEvent => "duplicate_event",
            SkipReason::Excluded => "excluded",
        }
    }
}

/// Why a record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MalformedReason {
    /// The record (or log message) is not JSON, or not a JSON object.
    NotJson,
    /// Over CloudTrail's own limit of 256 KB for one record.
    Oversize,
    /// A field attribution needs is absent.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// `eventTime` is not an RFC 3339 time.
    BadTime,
    /// A name that becomes part of a summary-table key or attribute name
    /// (account, region, table, index, caller, `eventName`, `errorCode`) is
    /// longer than any real one and than DynamoDB's key limits allow
    /// ([`crate::attribute::NameLimits`]). Counting it would fail its whole
    /// batch on every retry.
    OversizeName,
}

impl MalformedReason {
    /// Stable name used in logs, metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MalformedReason::NotJson => "not_json",
            MalformedReason::Oversize => "oversize",
            MalformedReason::MissingField => "missing_field",
            MalformedReason::WrongType => "wrong_type",
            MalformedReason::BadTime => "bad_time",
            MalformedReason::OversizeName => "oversize_name",
        }
    }
}

/// Counters for one input or a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// Records met (log events for CloudWatch Logs, `Records[]` entries for files).
    pub records_in: u64,
    /// Records attributed to a caller and counted.
    pub attributed: u64,
    /// Well-formed records not counted, by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Records that could not be read, by reason.
    pub malformed: BTreeMap<&'static str, u64>,
}

impl Reconciliation {
    /// Total of `skipped`.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Total of `malformed`.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.values().sum()
    }

    /// True when every record is accounted for.
    pub fn balances(&self) -> bool {
        self.records_in == self.attributed + self.skipped_total() + self.malformed_total()
    }

    pub(crate) fn skip(&mut self, reason: SkipReason) {
        *self.skipped.entry(reason.as_str()).or_default() += 1;
    }

    pub(crate) fn malformed(&mut self, reason: MalformedReason) {
        *self.malformed.entry(reason.as_str()).or_default() += 1;
    }

    /// Adds another input's counters.
    pub fn merge(&mut self, other: &Reconciliation) {
        self.records_in += other.records_in;
        self.attributed += other.attributed;
        for (k, v) in &other.skipped {
            *self.skipped.entry(k).or_default() += v;
        }
        for (k, v) in &other.malformed {
            *self.malformed.entry(k).or_default() += v;
        }
    }
}

impl fmt::Display for Reconciliation {
    /// One line: `records in 12 = attributed 9 + skipped 2 (not_dynamodb 2) + malformed 1 (not_json 1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn reasons(map: &BTreeMap<&'static str, u64>) -> String {
            if map.is_empty() {
                return String::new();
            }
            let inner: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!(" ({})", inner.join(", "))
        }
        write!(
            f,
            "records in {} = attributed {} + skipped {}{} + malformed {}{}",
            self.records_in,
            self.attributed,
            self.skipped_total(),
            reasons(&self.skipped),
            self.malformed_total(),
            reasons(&self.malformed)
        )
    }
}

/// A record that could not be read, with where it was. Never holds a value
/// from the record other than its `eventID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordProblem {
    /// The input: file path, `s3://bucket/key`, or log group and stream.
    pub origin: String,
    /// Zero-based index of the record (or log event) in the input.
    pub index: u64,
    /// The record's `eventID`, when it could be read.
    pub event_id: Option<String>,
    /// The reason, as counted.
    pub reason: &'static str,
    /// What is wrong, naming the field.
    pub detail: String,
}

impl fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: record {}", self.origin, self.index)?;
        if let Some(id) = &self.event_id {
            write!(f, " (eventID {id})")?;
        }
        write!(f, ": {} ({})", self.detail, self.reason)
    }
}
