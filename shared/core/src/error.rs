//! The crate's one error type: why a whole input (a file, an S3 object, a
//! log batch, a notification) could not be read, or why configuration is
//! invalid. What AWS itself answers (S3, the summary table, SNS) is
//! `ddb_audit_aws::Error`, which wraps this one.
//!
//! A bad *record* is not an error: it is counted as malformed and the input
//! goes on (see [`crate::rollup::MalformedReason`]). Messages never quote input
//! values, because CloudTrail carries DynamoDB key values in clear.

use thiserror::Error;

/// Why an input could not be read as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// Decompressed (or plain) input went past the configured cap.
    #[error("input is larger than the decompression cap of {cap} bytes")]
    OverCap {
        /// The cap in bytes.
        cap: u64,
    },
    /// The gzip stream is truncated or corrupt.
    #[error("{0}")]
    Gzip(String),
    /// Reading the input failed.
    #[error("read failed: {0}")]
    Read(String),
    /// `awslogs.data` is not valid base64.
    #[error("awslogs.data is not valid base64: {0}")]
    Base64(String),
    /// The input is empty (zero bytes).
    #[error("input is empty")]
    Empty,
    /// The input is not JSON, or not JSON of a shape ddb-audit knows.
    #[error("{what}")]
    Shape {
        /// What was expected and where (a JSON path), never the offending value.
        what: String,
    },
    /// The input is a notification or another event that only points at
    /// CloudTrail files (an S3 notification, an SNS or SQS message, an
    /// EventBridge event, a DynamoDB stream batch): read the files it names.
    #[error("this is {what}, not a CloudTrail file")]
    Notification {
        /// What it is, with its article: `an S3 notification`.
        what: &'static str,
    },
    /// A configuration value is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// True when the input itself is bad, so retrying cannot help: the input
    /// becomes a reject instead of a retry.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::OverCap { .. }
                | Error::Gzip(_)
                | Error::Base64(_)
                | Error::Empty
                | Error::Shape { .. }
                | Error::Notification { .. }
        )
    }

    /// A short, stable name for the error, for counters and reject items.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::OverCap { .. } => "over_cap",
            Error::Gzip(_) => "bad_gzip",
            Error::Read(_) => "read_failed",
            Error::Base64(_) => "bad_base64",
            Error::Empty => "empty",
            Error::Shape { .. } => "bad_shape",
            Error::Notification { .. } => "notification",
            Error::Config(_) => "config",
        }
    }

    pub(crate) fn shape(what: impl Into<String>) -> Self {
        Error::Shape { what: what.into() }
    }

    /// Describes a serde_json failure by category and position only, so that
    /// no input value leaks into a log line.
    pub(crate) fn from_json(context: &str, e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let kind = match e.classify() {
            Category::Io => "read error",
            Category::Syntax => "invalid JSON",
            Category::Data => "JSON of an unexpected shape",
            Category::Eof => "JSON cut short",
        };
        Error::shape(format!(
            "{context}: {kind} at line {} column {}",
            e.line(),
            e.column()
        ))
    }
}
