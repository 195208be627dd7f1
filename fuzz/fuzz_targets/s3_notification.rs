//! Any bytes as the event s3-ingest receives (S3, SQS, SNS, EventBridge or an
//! `s3:TestEvent`): a list of messages or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ddb_audit_core::notification::parse_lambda_event(data);
});
