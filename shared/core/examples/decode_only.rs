//! Decompresses each file named on the command line through the core's
//! gzip door as `ddb-audit analyze` does, [`decode::read_stream`], and does
//! nothing else: the floor under `analyze` on the same files, with the same
//! backend and piece sizes (the decoded bytes are counted and dropped, as
//! `analyze` drops them once split).
//!
//! `make bench` runs it under `/usr/bin/time` next to `analyze`, so the two
//! CPU times compare as "everything" against "decompression alone". With
//! `--whole`, each file is instead read whole and decompressed into one
//! buffer by `decode::decode`, the way a handler holding whole objects
//! would; with `--pushed`, it is pushed in 128 KiB pieces through a
//! `StreamDecoder`, the way `s3-ingest` reads an object's body. Both are
//! reported beside it for reference.
//!
//! ```sh
//! cargo run --profile bench -p ddb-audit-core --example decode_only -- target/bench-corpus/*.gz
//! ```

use std::io::Read;
use std::process::ExitCode;

use ddb_audit_core::decode::{self, Sink, StreamDecoder};
use ddb_audit_core::Error;

/// Counts the decoded bytes and keeps none.
#[derive(Debug, Default)]
struct Count(u64);

impl Sink for Count {
    fn write_decoded(&mut self, decoded: &[u8]) -> Result<(), Error> {
        self.0 += decoded.len() as u64;
        Ok(())
    }
}

fn read_file(path: &str) -> Result<(u64, u64), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut count = Count::default();
    let compressed = decode::read_stream(file, u64::MAX, &mut count).map_err(|e| e.to_string())?;
    Ok((compressed, count.0))
}

fn push_file(path: &str, piece: &mut [u8]) -> Result<(u64, u64), String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut decoder = StreamDecoder::with_sink(Count::default(), u64::MAX);
    let mut compressed = 0u64;
    loop {
        let n = file.read(piece).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        compressed += n as u64;
        decoder.push(&piece[..n]).map_err(|e| e.to_string())?;
    }
    let count = decoder.finish().map_err(|e| e.to_string())?;
    Ok((compressed, count.0))
}

fn decode_whole(path: &str) -> Result<(u64, u64), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let json = ddb_audit_core::decode::decode(&bytes, u64::MAX).map_err(|e| e.to_string())?;
    Ok((bytes.len() as u64, json.len() as u64))
}

fn main() -> ExitCode {
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    // `--whole`: each file read whole, then decompressed into one buffer by
    // `decode::decode` (the way a handler that reads whole objects would).
    // `--pushed`: pushed in pieces through a `StreamDecoder` (as `s3-ingest`).
    let mode = match paths.first().map(String::as_str) {
        Some(flag @ ("--whole" | "--pushed")) => {
            let flag = flag.to_owned();
            paths.remove(0);
            flag
        }
        _ => String::new(),
    };
    if paths.is_empty() {
        eprintln!("usage: decode_only [--whole | --pushed] FILE...");
        return ExitCode::from(2);
    }
    let (mut compressed, mut decompressed) = (0u64, 0u64);
    let mut piece = vec![0u8; 128 * 1024];
    for path in &paths {
        let result = match mode.as_str() {
            "--whole" => decode_whole(path),
            "--pushed" => push_file(path, &mut piece),
            _ => read_file(path),
        };
        match result {
            Ok((c, d)) => {
                compressed += c;
                decompressed += d;
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
