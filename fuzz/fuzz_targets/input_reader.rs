//! A CloudTrail file or a CloudWatch Logs subscription event (or its decoded
//! payload), plain or gzip, through `InputReader::read` with a small
//! decompression cap: it must return a batch or an error, never panic, and a
//! batch must account for every record it met. Read with `read_from` (the
//! pull decoder) it must give what pushing it gives, or the same kind of error.
#![no_main]

use ddb_audit_core::attribute::Rules;
use ddb_audit_core::input::{InputReader, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_decompressed: 1 << 20,
        max_record_bytes: 64 * 1024,
    };
    let mut reader = InputReader::new(Rules::default(), limits);
    let pushed = {
        let mut stream = reader.start("fuzz");
        stream.push(data).and_then(|()| stream.finish())
    };
    let read = reader.read_from("fuzz", data, None);
    match (&pushed, &read) {
        (Ok(p), Ok(r)) => {
            assert_eq!(p.batch.counts, r.batch.counts);
            assert_eq!(p.batch.lifetime, r.batch.lifetime);
        }
        // The same kind of error; the wording may differ (a stream cut inside
        // its trailer is "truncated" when read, a bad checksum when pushed).
        (Err(p), Err(r)) => assert_eq!(p.reason(), r.reason(), "pushed {p}, read {r}"),
        _ => panic!(
            "pushed {:?}, read {:?}",
            pushed.as_ref().map(|i| &i.batch.counts),
            read.as_ref().map(|i| &i.batch.counts)
        ),
    }
    // Twice: the second read meets every eventID again, as duplicates.
    for pass in 0..2 {
        let Ok((_, batch)) = reader.read("fuzz", data) else {
            return;
        };
        let c = &batch.counts;
        assert_eq!(
            c.records_in,
            c.attributed + c.skipped_total() + c.malformed_total(),
            "records in != attributed + skipped + malformed: {c}"
        );
        if pass == 1 {
            assert_eq!(c.attributed, 0, "an eventID counted twice: {c}");
        }
        // A call counts once on each table it touched, so at least once.
        let lifetime: u64 = batch.lifetime.values().map(|r| r.calls).sum();
        let daily: u64 = batch.daily.values().map(|r| r.calls).sum();
        assert!(lifetime >= c.attributed, "{lifetime} calls < {c}");
        assert_eq!(lifetime, daily, "lifetime and daily rows disagree");
    }
});
