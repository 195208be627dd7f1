//! Decompresses each file named on the command line through the core's one
//! gzip door, [`decode::decode`], and does nothing else: the floor under
//! `ddb-audit analyze` on the same files, with the same backend and cap.
//!
//! `make bench` runs it under `/usr/bin/time` next to `analyze`, so the two
//! CPU times compare as "everything" against "decompression alone". Like
//! `analyze`, it reads a whole file before decoding it.
//!
//! ```sh
//! cargo run --profile bench -p ddb-audit-core --example decode_only -- target/bench-corpus/*.gz
//! ```

use std::process::ExitCode;

use ddb_audit_core::decode::{self, DEFAULT_MAX_DECOMPRESSED};

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: decode_only FILE...");
        return ExitCode::from(2);
    }
    let (mut compressed, mut decompressed) = (0u64, 0u64);
    for path in &paths {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("{path}: cannot read: {e}");
                return ExitCode::FAILURE;
            }
        };
        match decode::decode(&bytes, DEFAULT_MAX_DECOMPRESSED) {
            Ok(json) => {
                compressed += bytes.len() as u64;
                decompressed += json.len() as u64;
            }
            Err(e) => {
                eprintln!("{path}: cannot decode: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "{} file(s), {compressed} bytes compressed, {decompressed} bytes decompressed",
        paths.len()
    );
    ExitCode::SUCCESS
}
