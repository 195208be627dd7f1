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
pub fn decode_reader<R: Read>(reader: R, max_bytes: u64) -> Result<Vec<u8>, Error> {
    let (gzip, chained) = sniff(reader)?;
    let mut out = Vec::new();
    if gzip {
        read_capped(MultiGzDecoder::new(chained), max_bytes, &mut out)?;
    } else {
        read_capped_plain(chained, max_bytes, &mut out)?;
    }
    Ok(out)
}

/// The body read as `reader` has it, after its first two bytes told whether
/// it is gzip.
type Sniffed<R> = std::io::Chain<std::io::Take<std::io::Cursor<[u8; 2]>>, R>;

/// Reads the first two bytes of `reader` (fewer if it has fewer): whether
/// they are gzip's magic number, and the whole body again.
fn sniff<R: Read>(mut reader: R) -> Result<(bool, Sniffed<R>), Error> {
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
    let gzip = got == 2 && head == GZIP_MAGIC;
    Ok((
        gzip,
        std::io::Cursor::new(head).take(got as u64).chain(reader),
    ))
}

/// Where a [`StreamDecoder`] puts the bytes it decodes, as they come.
///
/// A sink may refuse what it is given (a CloudTrail file whose JSON is cut
/// short, say): decoding then stops and the sink's error is the decoder's.
pub trait Sink {
    /// Takes the next decoded bytes.
    fn write_decoded(&mut self, decoded: &[u8]) -> Result<(), Error>;

    /// Told once, before any bytes, whether the input is gzip (so that what
    /// it says of bytes that are not JSON can say where they came from).
    fn compressed(&mut self, _gzip: bool) {}
}

/// Collects everything: the whole decoded input in memory (up to the cap).
impl Sink for Vec<u8> {
    fn write_decoded(&mut self, decoded: &[u8]) -> Result<(), Error> {
        self.extend_from_slice(decoded);
        Ok(())
    }
}

/// Decodes a body that arrives in chunks (an S3 object streamed from
/// `GetObject`, a file read piece by piece) without ever decoding more than
/// the cap: push each chunk as it arrives, then [`StreamDecoder::finish`].
/// The decoded bytes go to a [`Sink`] as they are produced; with the default
/// sink, a `Vec`, they are collected whole.
///
/// Gzip is detected from the first two bytes, as everywhere else.
#[derive(Debug)]
pub struct StreamDecoder<S: Sink = Vec<u8>> {
    head: Vec<u8>,
    state: StreamState<S>,
}

#[derive(Debug)]
enum StreamState<S: Sink> {
    /// Fewer than two bytes seen: not yet known whether it is gzip.
    Sniffing(Capped<S>),
    Gzip(Box<flate2::write::MultiGzDecoder<Capped<S>>>),
    Plain(Capped<S>),
    /// Only while moving between states.
    Taken,
}

/// A sink that refuses to take more than the cap, and keeps the sink's own
/// error so that it survives the trip through `std::io::Write`.
#[derive(Debug)]
struct Capped<S> {
    sink: S,
    written: u64,
    max_bytes: u64,
    error: Option<Error>,
}

impl<S: Sink> std::io::Write for Capped<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.error.is_some() {
            return Err(std::io::Error::other("decoding stopped"));
        }
        if self.written + buf.len() as u64 > self.max_bytes {
            self.error = Some(Error::OverCap {
                cap: self.max_bytes,
            });
            return Err(std::io::Error::other("over the decompression cap"));
        }
        self.written += buf.len() as u64;
        match self.sink.write_decoded(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.error = Some(e);
                Err(std::io::Error::other("the sink refused the bytes"))
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl StreamDecoder<Vec<u8>> {
    /// A decoder that collects the decoded bytes and fails once they pass
    /// `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        Self::with_sink(Vec::new(), max_bytes)
    }
}

impl<S: Sink> StreamDecoder<S> {
    /// A decoder that hands the decoded bytes to `sink` and fails once they
    /// pass `max_bytes`.
    pub fn with_sink(sink: S, max_bytes: u64) -> Self {
        StreamDecoder {
            head: Vec::with_capacity(2),
            state: StreamState::Sniffing(Capped {
                sink,
                written: 0,
                max_bytes,
                error: None,
            }),
        }
    }

    /// The sink, for looking at what it has taken so far.
    pub fn sink(&self) -> Option<&S> {
        match &self.state {
            StreamState::Sniffing(c) | StreamState::Plain(c) => Some(&c.sink),
            StreamState::Gzip(d) => Some(&d.get_ref().sink),
            StreamState::Taken => None,
        }
    }

    /// Feeds the next chunk of the body.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<(), Error> {
        use std::io::Write;
        if let StreamState::Sniffing(_) = self.state {
            while self.head.len() < 2 {
                let Some((&b, rest)) = chunk.split_first() else {
                    return Ok(());
                };
                self.head.push(b);
                chunk = rest;
            }
            self.start()?;
        }
        if chunk.is_empty() {
            return Ok(());
        }
        let result = match &mut self.state {
            StreamState::Sniffing(_) | StreamState::Taken => Ok(()),
            StreamState::Plain(sink) => sink.write_all(chunk),
            StreamState::Gzip(decoder) => decoder.write_all(chunk),
        };
        result.map_err(|e| self.error(&e))
    }

    /// Ends the body and returns the sink, which has had every decoded byte.
    pub fn finish(mut self) -> Result<S, Error> {
        if let StreamState::Sniffing(_) = self.state {
            self.start()?;
        }
        if let StreamState::Gzip(decoder) = &mut self.state {
            if let Err(e) = decoder.try_finish() {
                return Err(self.error(&e));
            }
        }
        match std::mem::replace(&mut self.state, StreamState::Taken) {
            StreamState::Sniffing(c) | StreamState::Plain(c) => Ok(c.sink),
            StreamState::Gzip(decoder) => decoder
                .finish()
                .map(|c| c.sink)
                .map_err(|e| Error::Gzip(gzip_message(&e))),
            StreamState::Taken => Err(Error::Read("the decoder was already finished".into())),
        }
    }

    fn start(&mut self) -> Result<(), Error> {
        use std::io::Write;
        let StreamState::Sniffing(mut sink) =
            std::mem::replace(&mut self.state, StreamState::Taken)
        else {
            return Ok(());
        };
        let head = std::mem::take(&mut self.head);
        sink.sink.compressed(head.as_slice() == GZIP_MAGIC);
        if head.as_slice() == GZIP_MAGIC {
            let mut decoder = flate2::write::MultiGzDecoder::new(sink);
            let written = decoder.write_all(&head);
            self.state = StreamState::Gzip(Box::new(decoder));
            written.map_err(|e| self.error(&e))
        } else {
            let written = sink.write_all(&head);
            self.state = StreamState::Plain(sink);
            written.map_err(|e| self.error(&e))
        }
    }

    fn error(&mut self, e: &std::io::Error) -> Error {
        let own = match &mut self.state {
            StreamState::Sniffing(c) | StreamState::Plain(c) => c.error.clone(),
            StreamState::Gzip(decoder) => decoder.get_mut().error.clone(),
            StreamState::Taken => None,
        };
        own.unwrap_or_else(|| Error::Gzip(gzip_message(e)))
    }
}

/// How many decoded bytes [`read_stream`] asks for at a time.
pub const READ_PIECE: usize = 256 * 1024;

/// Like [`StreamDecoder`], for a body that can be read rather than pushed
/// (a file): gzip or plain, told apart by the first two bytes, decoded
/// [`READ_PIECE`] bytes at a time straight into one buffer, each piece
/// handed to `sink`, never more than `max_bytes` in all. Returns how many
/// bytes were read from `reader` (0: it was empty).
///
/// It gives the same bytes as pushing the body through a [`StreamDecoder`],
/// and fails on the same bodies with the same kind of error (the wording can
/// differ: a gzip stream cut inside its 8-byte trailer is "truncated" here,
/// where pushing reports a checksum that does not match). It takes fewer and
/// larger steps: zlib decodes into the buffer itself, where a
/// `StreamDecoder` decodes 32 KiB at a time into one of its own and copies
/// each step into its window, which costs about a tenth of the decoding.
pub fn read_stream<R: Read, S: Sink>(
    reader: R,
    max_bytes: u64,
    sink: &mut S,
) -> Result<u64, Error> {
    let mut read = 0u64;
    let mut failed = None;
    let source = Source {
        inner: reader,
        read: &mut read,
        failed: &mut failed,
    };
    let (gzip, chained) = sniff(source)?;
    sink.compressed(gzip);
    let result = if gzip {
        let decoder = flate2::bufread::MultiGzDecoder::new(std::io::BufReader::with_capacity(
            64 * 1024,
            chained,
        ));
        pump(decoder, max_bytes, sink).map_err(|e| e.into_error(true))
    } else {
        pump(chained, max_bytes, sink).map_err(|e| e.into_error(false))
    };
    match (result, failed) {
        // The reader's own failure, not the gzip stream's.
        (Err(Error::Gzip(_)), Some(message)) => Err(Error::Read(message)),
        (result, _) => result.map(|()| read),
    }
}

/// The reader under [`read_stream`]'s decoder: counts what it gives and
/// keeps its own errors apart from the decoder's.
struct Source<'a, R> {
    inner: R,
    read: &'a mut u64,
    failed: &'a mut Option<String>,
}

impl<R: Read> Read for Source<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                *self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    *self.failed = Some(e.to_string());
                }
                Err(e)
            }
        }
    }
}

/// Why [`pump`] stopped.
enum PumpError {
    Io(std::io::Error),
    Sink(Error),
}

impl PumpError {
    fn into_error(self, gzip: bool) -> Error {
        match self {
            PumpError::Io(e) if gzip => Error::Gzip(gzip_message(&e)),
            PumpError::Io(e) => Error::Read(e.to_string()),
            PumpError::Sink(e) => e,
        }
    }
}

/// Reads `decoded` to its end, [`READ_PIECE`] bytes at a time, into `sink`.
fn pump<D: Read, S: Sink>(mut decoded: D, max_bytes: u64, sink: &mut S) -> Result<(), PumpError> {
    let mut piece = vec![0u8; READ_PIECE];
    let mut written = 0u64;
    loop {
        let n = match decoded.read(&mut piece) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PumpError::Io(e)),
        };
        written += n as u64;
        if written > max_bytes {
            return Err(PumpError::Sink(Error::OverCap { cap: max_bytes }));
        }
        sink.write_decoded(piece.get(..n).unwrap_or_default())
            .map_err(PumpError::Sink)?;
    }
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

    fn streamed(bytes: &[u8], chunk: usize, cap: u64) -> Result<Vec<u8>, Error> {
        let mut decoder = StreamDecoder::new(cap);
        for part in bytes.chunks(chunk.max(1)) {
            decoder.push(part)?;
        }
        decoder.finish()
    }

    #[test]
    fn streamed_decoding_matches_whole_decoding_for_any_chunking() {
        let data = b"{\"Records\":[{\"eventID\":\"1\"}]}".repeat(50);
        let packed = gz(&data);
        for chunk in [1, 2, 3, 7, 64, 100_000] {
            assert_eq!(
                streamed(&packed, chunk, 1 << 20).unwrap(),
                data,
                "chunk {chunk}"
            );
            assert_eq!(
                streamed(&data, chunk, 1 << 20).unwrap(),
                data,
                "plain, chunk {chunk}"
            );
        }
        assert_eq!(streamed(b"", 1, 10).unwrap(), b"");
        assert_eq!(streamed(b"x", 1, 10).unwrap(), b"x");
    }

    #[test]
    fn streamed_decoding_stops_at_the_cap_and_on_truncation() {
        let packed = gz(&[b'a'; 10_000]);
        assert_eq!(
            streamed(&packed, 512, 9_999).unwrap_err(),
            Error::OverCap { cap: 9_999 }
        );
        assert_eq!(
            streamed(&[b'a'; 100], 7, 99).unwrap_err(),
            Error::OverCap { cap: 99 }
        );
        let err = streamed(&packed[..packed.len() / 2], 64, 1 << 20).unwrap_err();
        assert!(
            matches!(&err, Error::Gzip(m) if m.contains("truncated")),
            "{err}"
        );
    }

    /// Gives `chunk` bytes per read, then fails if `fail` says so.
    struct Trickle<'a> {
        bytes: &'a [u8],
        chunk: usize,
        fail: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.bytes.is_empty() && self.fail {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = self.chunk.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_stream_gives_what_pushing_gives() {
        let data = b"{\"Records\":[{\"eventID\":\"1\"}]}".repeat(20_000);
        let packed = gz(&data);
        let mut members = gz(&data[..1000]);
        members.extend(gz(&data[1000..]));
        let corrupt = [&packed[..20], &[0xff; 64][..], &packed[84..]].concat();
        let inputs: [(&[u8], u64); 9] = [
            (&packed, 1 << 24),
            (&members, 1 << 24),
            (&data, 1 << 24),
            (b"", 10),
            (b"x", 10),
            (&packed[..packed.len() / 2], 1 << 24),
            (&corrupt, 1 << 24),
            (&packed, 99_999),
            (&data, 99_999),
        ];
        for (bytes, cap) in inputs {
            let pushed = streamed(bytes, 4096, cap);
            for chunk in [1, 3, 4096, usize::MAX] {
                let mut out = Vec::new();
                let trickle = Trickle {
                    bytes,
                    chunk,
                    fail: false,
                };
                let read = read_stream(trickle, cap, &mut out).map(|n| (n, out));
                let expected = pushed.clone().map(|out| (bytes.len() as u64, out));
                assert_eq!(read, expected, "{} bytes, chunk {chunk}", bytes.len());
            }
        }
        // Cut inside the trailer: the same kind of error, worded otherwise.
        let cut = [&gz(b"")[..12], &[0x91][..]].concat();
        let pushed = streamed(&cut, 4096, 10).unwrap_err();
        assert!(matches!(pushed, Error::Gzip(_)), "{pushed}");
        let read = read_stream(&cut[..], 10, &mut Vec::new()).unwrap_err();
        let truncated = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(read, Error::Gzip(gzip_message(&truncated)));
        for bytes in [&packed[..], &data[..]] {
            let trickle = Trickle {
                bytes,
                chunk: 1000,
                fail: true,
            };
            let err = read_stream(trickle, 1 << 24, &mut Vec::new()).unwrap_err();
            assert_eq!(err, Error::Read("disk on fire".into()));
        }
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
