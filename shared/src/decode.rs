//! The one door through which compressed bytes become JSON bytes.
//!
//! Everything ddb-audit reads may be gzip (CloudTrail files, CloudWatch Logs
//! subscription payloads) and everything it reads comes from outside, so every
//! decompression goes through [`decode`] or [`decode_reader`], which stop at a
//! configurable cap. Compression is detected from the gzip magic bytes, never
//! from a file name.

use std::borrow::Cow;
use std::io::Read;

use base64::Engine as _;
use flate2::read::MultiGzDecoder;

use crate::Error;

/// The default cap on decompressed bytes for one input: 512 MiB.
///
/// CloudTrail files are rarely above a few tens of MB uncompressed; the cap
/// only has to stop a gzip bomb from taking the Lambda's memory.
pub const DEFAULT_MAX_DECOMPRESSED: u64 = 512 * 1024 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// True when `bytes` starts with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Returns the JSON bytes of an input that may be gzip or plain.
///
/// Plain input is borrowed as it is (after the same size check); gzip input is
/// decompressed, concatenated members included, up to `max_bytes`.
pub fn decode(bytes: &[u8], max_bytes: u64) -> Result<Cow<'_, [u8]>, Error> {
    if is_gzip(bytes) {
        let mut out = Vec::with_capacity(initial_capacity(bytes.len(), max_bytes));
        read_capped(MultiGzDecoder::new(bytes), max_bytes, &mut out)?;
        Ok(Cow::Owned(out))
    } else if bytes.len() as u64 > max_bytes {
        Err(Error::OverCap { cap: max_bytes })
    } else {
        Ok(Cow::Borrowed(bytes))
    }
}

/// Like [`decode`], for a body that arrives as a stream (an S3 object).
///
/// The first two bytes decide between gzip and plain; either way no more than
/// `max_bytes` of JSON is ever held.
pub fn decode_reader<R: Read>(mut reader: R, max_bytes: u64) -> Result<Vec<u8>, Error> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Read(e.to_string())),
        }
    }
    let chained = head[..got].chain(reader);
    let mut out = Vec::new();
    if got == 2 && head == GZIP_MAGIC {
        read_capped(MultiGzDecoder::new(chained), max_bytes, &mut out)?;
    } else {
        read_capped_plain(chained, max_bytes, &mut out)?;
    }
    Ok(out)
}

/// Decodes the base64 `awslogs.data` field of a CloudWatch Logs subscription event.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| Error::Base64(e.to_string()))
}

fn initial_capacity(compressed: usize, max_bytes: u64) -> usize {
    // CloudTrail JSON compresses about 10:1; start near that and let Vec grow.
    let guess = (compressed as u64).saturating_mul(10).min(max_bytes);
    usize::try_from(guess).unwrap_or(0).min(256 * 1024 * 1024)
}

fn read_capped<R: Read>(decoder: R, max_bytes: u64, out: &mut Vec<u8>) -> Result<(), Error> {
    let mut limited = decoder.take(max_bytes.saturating_add(1));
    match limited.read_to_end(out) {
        Ok(_) if out.len() as u64 > max_bytes => Err(Error::OverCap { cap: max_bytes }),
        Ok(_) => Ok(()),
        Err(e) => Err(Error::Gzip(gzip_message(&e))),
    }
}

fn read_capped_plain<R: Read>(reader: R, max_bytes: u64, out: &mut Vec<u8>) -> Result<(), Error> {
    let mut limited = reader.take(max_bytes.saturating_add(1));
    match limited.read_to_end(out) {
        Ok(_) if out.len() as u64 > max_bytes => Err(Error::OverCap { cap: max_bytes }),
        Ok(_) => Ok(()),
        Err(e) => Err(Error::Read(e.to_string())),
    }
}

fn gzip_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            "truncated gzip stream (unexpected end of data)".into()
        }
        _ => format!("corrupt gzip stream: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn plain_json_is_borrowed_not_copied() {
        let out = decode(b"{\"Records\":[]}", 100).unwrap();
        assert!(matches!(out, Cow::Borrowed(_)));
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes() {
        let packed = gz(b"{\"a\":1}");
        assert_eq!(&*decode(&packed, 100).unwrap(), b"{\"a\":1}");
    }

    #[test]
    fn concatenated_gzip_members_are_read_whole() {
        let mut both = gz(b"{\"a\":");
        both.extend(gz(b"1}"));
        assert_eq!(&*decode(&both, 100).unwrap(), b"{\"a\":1}");
    }

    #[test]
    fn output_over_the_cap_is_an_error() {
        let bomb = gz(&vec![b' '; 10_000]);
        assert_eq!(
            decode(&bomb, 9_999).unwrap_err(),
            Error::OverCap { cap: 9_999 }
        );
        assert_eq!(decode(&bomb, 10_000).unwrap().len(), 10_000);
        assert_eq!(decode(b"12345", 4).unwrap_err(), Error::OverCap { cap: 4 });
    }

    #[test]
    fn truncated_gzip_is_an_error_that_says_so() {
        let whole = gz(&vec![b'x'; 5_000]);
        let err = decode(&whole[..whole.len() / 2], 1 << 20).unwrap_err();
        assert!(
            matches!(&err, Error::Gzip(m) if m.contains("truncated")),
            "{err}"
        );
    }

    #[test]
    fn reader_path_matches_slice_path() {
        let data = b"{\"Records\":[1,2,3]}";
        assert_eq!(decode_reader(&gz(data)[..], 100).unwrap(), data);
        assert_eq!(decode_reader(&data[..], 100).unwrap(), data);
        assert_eq!(decode_reader(&b"x"[..], 100).unwrap(), b"x");
        assert_eq!(
            decode_reader(&gz(&[b'a'; 50])[..], 49).unwrap_err(),
            Error::OverCap { cap: 49 }
        );
    }
}
