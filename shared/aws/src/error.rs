//! The crate's one error type: what the core could not read (wrapped as it
//! is), or what AWS answered when S3, the summary table or SNS failed.
//!
//! Like the core's, messages never quote input values, because CloudTrail
//! carries DynamoDB key values in clear.

use lambda_runtime::Diagnostic;
use thiserror::Error;

/// Why an input, an S3 read, the summary table or SNS failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The input could not be read, or configuration is invalid (the core's
    /// error, with its own message and reason).
    #[error(transparent)]
    Core(#[from] ddb_audit_core::Error),
    /// An S3 object could not be fetched (a transient failure: retry).
    #[error("reading {object}: {message}")]
    ObjectRead {
        /// `s3://bucket/key`.
        object: String,
        /// What S3 said.
        message: String,
    },
    /// The summary table stayed unavailable after bounded retries.
    #[error("summary table {table}: {message}")]
    Store {
        /// The table name.
        table: String,
        /// What failed, with the operation and the service's error code.
        message: String,
    },
    /// SNS did not accept a notice (retried with the stream record).
    #[error("publishing to {topic}: {message}")]
    Publish {
        /// The topic ARN.
        topic: String,
        /// What SNS said.
        message: String,
    },
}

impl Error {
    /// True when the input itself is bad, so retrying cannot help: the input
    /// becomes a reject instead of a retry. AWS failures never are.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Core(e) => e.is_bad_input(),
            Error::ObjectRead { .. } | Error::Store { .. } | Error::Publish { .. } => false,
        }
    }

    /// A short, stable name for the error, for counters and reject items.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Core(e) => e.reason(),
            Error::ObjectRead { .. } => "object_read",
            Error::Store { .. } => "store",
            Error::Publish { .. } => "publish",
        }
    }
}

/// What Lambda reports when a handler fails: the stable reason as the error
/// type, the message as the error message.
impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: e.reason().to_owned(),
            error_message: e.to_string(),
        }
    }
}
