//! The I/O edge of ddb-audit: the summary table (DynamoDB), S3 reads, SNS
//! notices and the Lambda handlers.
//!
//! The pure work (decoding, attribution, rollups, notice text) is done by
//! [`ddb_audit_core`]; this crate moves its inputs and results in and out of
//! AWS: `store` applies a batch's rollups to the summary table exactly once
//! and answers the CLI's queries, `ingest` reads CloudWatch Logs batches and
//! S3 objects for the two ingest functions, and `notify_handler` turns the
//! summary table's stream into SNS notices.
//!
//! It is a crate of its own so that the core builds, tests, benchmarks and
//! fuzzes without the AWS SDK, tokio or the Lambda runtime; everything that
//! needs them lives here, and nothing here decides what a call means.

mod error;
pub mod ingest;
pub mod notify_handler;
pub mod store;

pub use error::Error;
