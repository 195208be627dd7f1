//! The pure core of ddb-audit.
//!
//! `bytes → records → attributed calls → rollups`: decoding CloudTrail
//! deliveries (CloudWatch Logs subscription batches, CloudTrail files, S3
//! notifications), attributing each DynamoDB call to the table(s) it touched
//! and the application identity that made it, and folding calls into
//! lifetime and daily rollups. No I/O and no async here: the Lambda functions
//! and the CLI do I/O at the edge and hand bytes to this crate, which is what
//! lets it be tested, benchmarked and fuzzed alone.
//!
//! What this crate must not do: talk to AWS, open files or sockets, spawn
//! threads or tasks, or read the clock: callers hand it bytes (or a reader)
//! and the time. It depends on no AWS SDK crate,
//! no tokio and no Lambda runtime, and has no feature flags that would bring
//! them in; the I/O edge (the summary table, S3 reads, SNS) is the
//! `ddb-audit-aws` crate, which builds on this one. It never persists, logs or
//! returns item key values or PartiQL literals; the record view does not even
//! parse them.

pub mod agent;
pub mod apps;
pub mod attribute;
pub mod caller;
pub mod config;
pub mod cost;
pub mod decode;
mod error;
mod globs;
pub mod input;
pub mod metrics;
pub mod notification;
pub mod notify;
pub mod notify_message;
pub mod partiql;
pub mod paths;
pub mod reconcile;
pub mod record;
pub mod rollup;
pub mod row;
pub mod scan;
mod split;
pub mod summary;
pub mod table;
pub mod tally;

pub use error::Error;
