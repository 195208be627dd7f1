//! The integration tests: one binary, one module per concern.

/// Counts what each thread allocates, so the bad-input tests can show that a
/// decompression bomb is stopped without its output being allocated.
#[global_allocator]
static ALLOCATOR: ddb_audit_tests::alloc::Counting = ddb_audit_tests::alloc::Counting;

mod attribution;
mod bad_input;
mod cli;
mod events;
mod harness;
mod ingest;
mod load;
mod notifier;
mod properties;
mod queries;
mod scan;
mod security;
mod template;
mod triggers;
