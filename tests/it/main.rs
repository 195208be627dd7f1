//! The integration tests: one binary, one module per concern.

mod attribution;
mod bad_input;
mod cli;
mod events;
mod harness;
mod ingest;
mod notifier;
mod properties;
mod queries;
mod template;
