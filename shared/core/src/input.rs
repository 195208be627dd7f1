//! Reading one input (a CloudTrail file, a CloudWatch Logs subscription
//! event, or its decoded payload) into a [`Batch`].
//!
//! An input is all or nothing: if it cannot be decoded or parsed as a whole
//! (truncated gzip, over the cap, not JSON), it contributes nothing and the
//! caller gets an [`Error`] naming why. Inside a readable input every record
//! stands alone: a bad record is counted and reported, and never takes the
//! records beside it down.
//!
//! A CloudTrail file is read as a stream ([`InputReader::start`]): its bytes
//! are decoded as they arrive and each record is parsed as soon as it is
//! complete ([`crate::split`]), so memory holds one record and a little
//! more, never the file. Its rollups go into the input's own [`Batch`],
//! which the caller gets only when the whole input has been read.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::attribute::{attribute, Outcome, Rules};
use crate::decode::{self, Sink, StreamDecoder};
use crate::reconcile::{MalformedReason, RecordProblem, SkipReason};
use crate::record::{RecordView, Text};
use crate::rollup::Batch;
use crate::scan;
use crate::split::{Elements, End, Splitter};
use crate::Error;

const NOT_AN_INPUT: &str =
    "expected a CloudTrail file ({\"Records\": [...]}) or a CloudWatch Logs \
     subscription event ({\"awslogs\": {\"data\": ...}} or its decoded {\"logEvents\": [...]})";

fn first_byte(json: &[u8]) -> Option<u8> {
    json.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// True when `b` can begin a JSON text (or is the first byte of a UTF-8
/// byte-order mark, which the JSON reader then names).
fn starts_json(b: u8) -> bool {
    matches!(
        b,
        b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n' | 0xEF
    )
}

/// Bytes that cannot be JSON, at the start of an input: not an input at all
/// (an image, an archive, a text file), rather than a CloudTrail file with a
/// flaw somewhere.
fn not_json(gzip: bool) -> Error {
    Error::shape(if gzip {
        "not a CloudTrail file (gzip, but what it holds is not JSON)"
    } else {
        "not a CloudTrail file (not gzip, not JSON)"
    })
}

/// What a Lambda event record is, by its `eventSource` (`EventSource` for
/// SNS): CloudTrail records name an `*.amazonaws.com` service there, the
/// events that announce CloudTrail files an `aws:*` one.
fn notification_of(record: &str) -> Option<&'static str> {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default, rename = "eventSource")]
        event_source: Option<Text<'a>>,
        #[serde(borrow, default, rename = "EventSource")]
        sns_event_source: Option<Text<'a>>,
    }
    let probe: Probe<'_> = serde_json::from_str(record).ok()?;
    let source = probe.event_source.or(probe.sns_event_source)?;
    let what = match source.as_str() {
        "aws:s3" => "an S3 notification",
        "aws:sns" => "an SNS notification",
        "aws:sqs" => "an SQS event (queue messages)",
        "aws:dynamodb" => "a DynamoDB stream event",
        "aws:kinesis" => "a Kinesis event",
        other if other.starts_with("aws:") => "a Lambda event",
        _ => return None,
    };
    Some(what)
}

/// CloudTrail's own limit for one record.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// Limits applied to every input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cap on decompressed bytes of one input (and of an `awslogs.data` payload).
    pub max_decompressed: u64,
    /// Records larger than this are malformed (`oversize`).
    pub max_record_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decompressed: decode::DEFAULT_MAX_DECOMPRESSED,
            max_record_bytes: MAX_RECORD_BYTES,
        }
    }
}

/// What an input turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    /// A CloudTrail file, `{"Records": [...]}`.
    CloudTrailFile,
    /// A CloudWatch Logs `DATA_MESSAGE` (raw or inside `{"awslogs":{"data":...}}`).
    LogsData(LogsBatch),
    /// A CloudWatch Logs `CONTROL_MESSAGE`: a health check with no records.
    LogsControl,
}

/// Where a CloudWatch Logs batch came from: enough to give it a stable id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsBatch {
    /// `owner`: the account of the log group.
    pub owner: String,
    /// `logGroup`.
    pub log_group: String,
    /// `logStream`.
    pub log_stream: String,
    /// `logEvents[].id` of the first event.
    pub first_event_id: String,
    /// `logEvents[].id` of the last event.
    pub last_event_id: String,
    /// Number of log events.
    pub events: u64,
}

/// The eventIDs counted by an input or a run, as 128-bit digests.
#[derive(Debug, Clone, Default)]
pub struct EventIds(hashbrown::HashSet<u128>);

impl EventIds {
    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when an eventID is in both.
    pub fn overlaps(&self, other: &EventIds) -> bool {
        let (small, large) = if self.len() <= other.len() {
            (self, other)
        } else {
            (other, self)
        };
        small.0.iter().any(|id| large.0.contains(id))
    }

    /// Adds the other's ids.
    pub fn extend(&mut self, other: EventIds) {
        if self.0.is_empty() {
            *self = other;
        } else {
            self.0.extend(other.0);
        }
    }

    fn contains(&self, id: u128) -> bool {
        self.0.contains(&id)
    }

    fn insert(&mut self, id: u128) -> bool {
        self.0.insert(id)
    }
}

/// One input, read: what it was, its rollups and counters, and the eventIDs
/// it counted (for counting each eventID once across inputs).
#[derive(Debug)]
pub struct ReadInput {
    /// What the input turned out to be.
    pub kind: InputKind,
    /// Its rollups, counters and record problems.
    pub batch: Batch,
    /// The eventIDs of the calls it counted.
    pub event_ids: EventIds,
    /// The most decoded bytes held at once while reading it.
    pub peak_buffer: usize,
}

/// Reads inputs, counting each `eventID` once across everything it has read.
#[derive(Debug, Default)]
pub struct InputReader {
    rules: Rules,
    limits: Limits,
    seen: EventIds,
    lifetime_only: bool,
}

impl InputReader {
    /// A reader with the given attribution rules and limits.
    pub fn new(rules: Rules, limits: Limits) -> Self {
        InputReader {
            rules,
            limits,
            seen: EventIds::default(),
            lifetime_only: false,
        }
    }

    /// A reader whose batches fold lifetime rollups only
    /// ([`Batch::lifetime_only`]).
    pub fn lifetime_only(mut self) -> Self {
        self.lifetime_only = true;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Reads one input: `origin` names it in problems and errors (a path,
    /// `s3://bucket/key`, ...). On success the input's rollups and counters
    /// are returned and its eventIDs are remembered; on error nothing is.
    pub fn read(&mut self, origin: &str, bytes: &[u8]) -> Result<(InputKind, Batch), Error> {
        let input = self.read_alone(origin, bytes)?;
        self.remember(input.event_ids);
        Ok((input.kind, input.batch))
    }

    /// Reads one input held in memory, leaving out the eventIDs already
    /// remembered but without remembering its own: see [`InputReader::remember`].
    pub fn read_alone(&self, origin: &str, bytes: &[u8]) -> Result<ReadInput, Error> {
        if bytes.is_empty() {
            return Err(Error::Empty);
        }
        if decode::is_gzip(bytes) {
            let mut stream = self.start(origin);
            stream.push(bytes)?;
            return stream.finish();
        }
        if bytes.len() as u64 > self.limits.max_decompressed {
            return Err(Error::OverCap {
                cap: self.limits.max_decompressed,
            });
        }
        if first_byte(bytes).is_some_and(|b| !starts_json(b)) {
            return Err(not_json(false));
        }
        // Plain JSON in memory: split it where it lies.
        let mut ctx = self.ctx(origin);
        let mut splitter = Splitter::new(self.limits.max_record_bytes);
        let (text, whole) = utf8_prefix(bytes);
        let used = splitter.split(text, whole, &mut ctx)?;
        if !whole {
            not_utf8(&splitter, used)?;
        }
        let end = splitter.finish(&bytes[used..])?;
        ctx.end(end, bytes, &bytes[used..], 0)
    }

    /// Starts reading an input that arrives in pieces (a file, an S3 body),
    /// plain or gzip: [`InputStream::push`] each piece, then
    /// [`InputStream::finish`]. Like [`InputReader::read_alone`], it leaves
    /// out the eventIDs already remembered and remembers none.
    pub fn start<'r>(&'r self, origin: &'r str) -> InputStream<'r> {
        self.stream(self.ctx(origin), CHUNK)
    }

    /// Reads an input from `reader` (a file), plain or gzip, as it comes:
    /// like [`InputReader::start`], but decoded straight into the reading
    /// buffer ([`decode::read_stream`]), which is faster than pushing it.
    ///
    /// With `before`, what the inputs read before it this way gave, the input
    /// is added to theirs: its rollups and counters go into their batch, and
    /// their eventIDs are left out of it as remembered ones are. The result
    /// holds all of them, so that a run of inputs needs no merge per input.
    /// On error `before` is lost with the input (part of which may be in
    /// it): read those inputs again.
    pub fn read_from<R: std::io::Read>(
        &self,
        origin: &str,
        reader: R,
        before: Option<ReadInput>,
    ) -> Result<ReadInput, Error> {
        let mut ctx = self.ctx(origin);
        if let Some(before) = before {
            ctx.batch = before.batch;
            ctx.local_seen = before.event_ids;
        }
        let mut records = self.records(ctx, CHUNK);
        if decode::read_stream(reader, self.limits.max_decompressed, &mut records)? == 0 {
            return Err(Error::Empty);
        }
        records.finish()
    }

    #[cfg(test)]
    fn start_chunked<'r>(&'r self, origin: &'r str, chunk: usize) -> InputStream<'r> {
        self.stream(self.ctx(origin), chunk)
    }

    fn stream<'r>(&'r self, ctx: Ctx<'r>, chunk: usize) -> InputStream<'r> {
        InputStream {
            decoder: StreamDecoder::with_sink(
                self.records(ctx, chunk),
                self.limits.max_decompressed,
            ),
            pushed: 0,
        }
    }

    fn records<'r>(&self, ctx: Ctx<'r>, chunk: usize) -> Records<'r> {
        Records {
            ctx,
            splitter: Splitter::new(self.limits.max_record_bytes),
            buf: Vec::new(),
            start: 0,
            chunk,
            want: chunk,
            peak: 0,
            gzip: false,
            looked: false,
            not_json: false,
        }
    }

    /// Remembers the eventIDs of an input read with [`InputReader::read_alone`]
    /// or [`InputReader::start`], so that later inputs do not count them again.
    pub fn remember(&mut self, ids: EventIds) {
        self.seen.extend(ids);
    }

    /// The eventIDs remembered so far.
    pub fn seen(&self) -> &EventIds {
        &self.seen
    }

    fn ctx<'r>(&'r self, origin: &'r str) -> Ctx<'r> {
        Ctx {
            rules: &self.rules,
            limits: self.limits,
            global_seen: &self.seen,
            local_seen: EventIds::default(),
            batch: if self.lifetime_only {
                Batch::lifetime_only()
            } else {
                Batch::default()
            },
            origin,
            at: "",
            notification: None,
        }
    }
}

/// Decoded bytes are split once this many have arrived since the last split:
/// big enough that the one partial record parsed again after each split
/// costs little, small enough to stay in the processor's cache.
const CHUNK: usize = 256 * 1024;

/// An input being read piece by piece: see [`InputReader::start`].
#[derive(Debug)]
pub struct InputStream<'r> {
    decoder: StreamDecoder<Records<'r>>,
    pushed: u64,
}

impl InputStream<'_> {
    /// Feeds the next piece of the input, as stored (gzip or plain).
    pub fn push(&mut self, piece: &[u8]) -> Result<(), Error> {
        self.pushed += piece.len() as u64;
        self.decoder.push(piece)
    }

    /// Ends the input: its rollups and counters, or why it cannot be read.
    pub fn finish(self) -> Result<ReadInput, Error> {
        if self.pushed == 0 {
            return Err(Error::Empty);
        }
        self.decoder.finish()?.finish()
    }
}

/// The sink of an input's decoded bytes: keeps those not consumed yet and
/// splits them into records as they arrive.
#[derive(Debug)]
struct Records<'r> {
    ctx: Ctx<'r>,
    splitter: Splitter,
    /// Decoded bytes; those before `start` are consumed.
    buf: Vec<u8>,
    start: usize,
    /// Split once this many more bytes have arrived ([`CHUNK`]).
    chunk: usize,
    /// Split again once this many bytes are waiting.
    want: usize,
    peak: usize,
    /// The input is gzip.
    gzip: bool,
    /// The first byte that is not white space has been looked at.
    looked: bool,
    /// A gzip input that holds something other than JSON: said at the end,
    /// unless the gzip stream itself turns out corrupt or over the cap,
    /// which is the better answer. What it holds is not kept.
    not_json: bool,
}

impl Sink for Records<'_> {
    fn compressed(&mut self, gzip: bool) {
        self.gzip = gzip;
    }

    fn write_decoded(&mut self, decoded: &[u8]) -> Result<(), Error> {
        if self.not_json {
            return Ok(());
        }
        if !self.looked {
            if let Some(b) = first_byte(decoded) {
                self.looked = true;
                if !starts_json(b) {
                    if !self.gzip {
                        return Err(not_json(false));
                    }
                    self.not_json = true;
                    return Ok(());
                }
            }
        }
        self.buf.extend_from_slice(decoded);
        self.peak = self.peak.max(self.buf.len());
        if self.buf.len() - self.start >= self.want {
            self.split(false)?;
        }
        Ok(())
    }
}

impl Records<'_> {
    fn split(&mut self, eof: bool) -> Result<(), Error> {
        if self.splitter.is_whole() {
            return Ok(());
        }
        // Checked as UTF-8 once here, so the parser need not check each string.
        let (text, whole) = utf8_prefix(&self.buf[self.start..]);
        let used = self.splitter.split(text, eof && whole, &mut self.ctx)?;
        if !whole && (eof || text.len() + 4 <= self.buf.len() - self.start) {
            // Not a character cut by the end of the bytes at hand.
            not_utf8(&self.splitter, used)?;
        }
        self.start += used;
        if self.splitter.is_whole() {
            // Not a file to split: it is read whole at the end, within the cap.
            self.want = usize::MAX;
            return Ok(());
        }
        let waiting = self.buf.len() - self.start;
        if self.splitter.tail_too_long(waiting) {
            return Err(Error::shape(format!(
                "more than {} bytes follow the `Records` array",
                crate::split::MAX_TAIL_BYTES
            )));
        }
        self.buf.drain(..self.start);
        self.start = 0;
        self.want = waiting + self.chunk;
        Ok(())
    }

    fn finish(mut self) -> Result<ReadInput, Error> {
        if self.not_json {
            return Err(not_json(true));
        }
        self.split(true)?;
        let rest = &self.buf[self.start..];
        let end = self.splitter.finish(rest)?;
        self.ctx.end(end, &self.buf, rest, self.peak)
    }
}

#[derive(Debug)]
struct Ctx<'r> {
    rules: &'r Rules,
    limits: Limits,
    global_seen: &'r EventIds,
    local_seen: EventIds,
    batch: Batch,
    origin: &'r str,
    /// The top-level field being read, for error messages.
    at: &'static str,
    /// What the input turned out to be when it is a notification, not
    /// CloudTrail (its first record said so).
    notification: Option<&'static str>,
}

impl Ctx<'_> {
    /// Ends a document that was split (or found not to be): `whole` is all
    /// of it when it was not split, `rest` what followed the `Records` array.
    fn end(
        mut self,
        end: End,
        whole: &[u8],
        rest: &[u8],
        peak_buffer: usize,
    ) -> Result<ReadInput, Error> {
        let kind = match end {
            End::Done => InputKind::CloudTrailFile,
            End::Whole => self.read_document(whole, true)?,
            End::Tail => {
                // The other members, read as they were before `Records` was streamed.
                let mut doc = b"{\"Records\":[]".to_vec();
                doc.extend_from_slice(rest);
                self.read_document(&doc, true)?
            }
        };
        Ok(ReadInput {
            kind,
            batch: self.batch,
            event_ids: self.local_seen,
            peak_buffer,
        })
    }

    fn read_document(&mut self, json: &[u8], allow_awslogs: bool) -> Result<InputKind, Error> {
        if first_byte(json) != Some(b'{') {
            return Err(Error::shape(format!(
                "the top level is not a JSON object: {NOT_AN_INPUT}"
            )));
        }
        let mut de = serde_json::Deserializer::from_slice(json);
        let parsed = DocumentSeed {
            ctx: self,
            allow_awslogs,
        }
        .deserialize(&mut de)
        .and_then(|doc| de.end().map(|()| doc));
        let doc = parsed.map_err(|e| {
            let context = if self.at.is_empty() {
                "input".to_owned()
            } else {
                format!("field `{}`", self.at)
            };
            Error::from_json(&context, &e)
        })?;
        if let Some(what) = self.notification {
            return Err(Error::Notification { what });
        }
        match doc {
            Document::Unknown => Err(Error::shape(NOT_AN_INPUT)),
            Document::Event(what) => Err(Error::Notification { what }),
            Document::Records => Ok(InputKind::CloudTrailFile),
            Document::AwsLogs(data) => {
                let compressed = decode::base64_decode(&data)?;
                let payload = decode::decode(&compressed, self.limits.max_decompressed)?;
                self.at = "";
                self.read_document(&payload, false)
            }
            Document::Logs(logs) => self.read_logs(logs),
        }
    }

    fn read_logs(&mut self, logs: LogsPayload<'_>) -> Result<InputKind, Error> {
        let message_type = logs.message_type.as_ref().map(|t| t.as_str());
        match message_type {
            Some("CONTROL_MESSAGE") => return Ok(InputKind::LogsControl),
            Some("DATA_MESSAGE") | None => {}
            Some(_) => {
                return Err(Error::shape(
                    "`messageType` is neither DATA_MESSAGE nor CONTROL_MESSAGE",
                ))
            }
        }
        let text = |t: &Option<Text<'_>>| {
            t.as_ref()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default()
        };
        let mut batch = LogsBatch {
            owner: text(&logs.owner),
            log_group: text(&logs.log_group),
            log_stream: text(&logs.log_stream),
            ..LogsBatch::default()
        };
        let origin = format!("{} ({} {})", self.origin, batch.log_group, batch.log_stream);
        for (index, raw) in logs.log_events.iter().enumerate() {
            let index = index as u64;
            self.batch.counts.records_in += 1;
            batch.events += 1;
            let event =
                match LogEvent::deserialize(&mut serde_json::Deserializer::from_str(raw.get())) {
                    Ok(event) => event,
                    Err(e) => {
                        let detail = match e.classify() {
                            serde_json::error::Category::Data => {
                                "log event is not an object with a string `message`".to_owned()
                            }
                            _ => "log event is not valid JSON".to_owned(),
                        };
                        self.malformed(&origin, index, None, MalformedReason::NotJson, detail);
                        continue;
                    }
                };
            if let Some(id) = event.id.as_ref() {
                if batch.first_event_id.is_empty() {
                    batch.first_event_id = id.as_str().to_owned();
                }
                batch.last_event_id = id.as_str().to_owned();
            }
            match event.message {
                Some(message) => self.record(&origin, index, message.as_str()),
                None => self.malformed(
                    &origin,
                    index,
                    None,
                    MalformedReason::MissingField,
                    "log event has no `message`".into(),
                ),
            }
        }
        Ok(InputKind::LogsData(batch))
    }

    fn malformed(
        &mut self,
        origin: &str,
        index: u64,
        event_id: Option<String>,
        reason: MalformedReason,
        detail: String,
    ) {
        self.batch.counts.malformed(reason);
        self.batch.problem(RecordProblem {
            origin: origin.to_owned(),
            index,
            event_id,
            reason: reason.as_str(),
            detail,
        });
    }

    /// Counts one record, whatever its fate.
    fn record(&mut self, origin: &str, index: u64, json: &str) {
        if json.len() > self.limits.max_record_bytes {
            self.too_big(origin, index, json.len() as u64);
            return;
        }
        // serde would fill a struct from an array by position: only objects are records.
        if first_byte(json.as_bytes()) != Some(b'{') {
            let detail = "record is not a JSON object".to_owned();
            self.malformed(origin, index, None, MalformedReason::NotJson, detail);
            return;
        }
        let view = match serde_json::from_str::<RecordView<'_>>(json) {
            Ok(view) => view,
            Err(e) => {
                let (reason, detail) = describe_record_error(json, &e);
                self.malformed(origin, index, event_id_of(json), reason, detail);
                return;
            }
        };
        self.view(origin, index, &view);
    }

    fn too_big(&mut self, origin: &str, index: u64, len: u64) {
        let detail = format!(
            "record is {len} bytes, over the {}-byte limit",
            self.limits.max_record_bytes
        );
        self.malformed(origin, index, None, MalformedReason::Oversize, detail);
    }

    /// Attributes and counts a parsed record.
    fn view(&mut self, origin: &str, index: u64, view: &RecordView<'_>) {
        match attribute(view, self.rules) {
            Outcome::Skip(reason) => self.batch.counts.skip(reason),
            Outcome::Malformed(reason, detail) => {
                let id = view.event_id.as_ref().map(|t| t.as_str().to_owned());
                self.malformed(origin, index, id, reason, detail);
            }
            Outcome::Call(call) => {
                let id = event_id_hash(call.event_id);
                if self.global_seen.contains(id) || !self.local_seen.insert(id) {
                    self.batch.counts.skip(SkipReason::DuplicateEvent);
                } else {
                    self.batch.counts.attributed += 1;
                    self.batch.fold(&call);
                }
            }
        }
    }
}

/// The longest UTF-8 prefix of `bytes`, and whether it is all of them.
fn utf8_prefix(bytes: &[u8]) -> (&str, bool) {
    // simdutf8's check for the common case, std's for where it fails.
    match simdutf8::compat::from_utf8(bytes) {
        Ok(text) => (text, true),
        Err(e) => (
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
            false,
        ),
    }
}

/// Bytes that are not UTF-8 where the splitter stopped: inside a record
/// (whose JSON cannot be read), unless the document is read whole anyway.
fn not_utf8(splitter: &Splitter, at: usize) -> Result<(), Error> {
    if splitter.is_whole() || splitter.is_after_records() {
        return Ok(());
    }
    Err(Error::shape(format!(
        "field `Records`: invalid JSON: not UTF-8 within {at} bytes of where reading stopped"
    )))
}

impl Elements for Ctx<'_> {
    fn element(&mut self, index: u64, text: &str, eof: bool) -> Result<Option<usize>, Error> {
        let origin = self.origin;
        let bytes = text.as_bytes();
        if bytes.first() == Some(&b'{') {
            // The one pass over a good record: scanned straight into the
            // view. What the scanner leaves, serde_json reads, and says what
            // is wrong with it.
            let parsed = match scan::record(text) {
                Some(found) => Some(found),
                None => {
                    let mut stream =
                        serde_json::Deserializer::from_str(text).into_iter::<RecordView<'_>>();
                    match stream.next() {
                        Some(Ok(view)) => Some((view, stream.byte_offset())),
                        Some(Err(e)) if e.classify() == serde_json::error::Category::Data => None,
                        Some(Err(e)) => return incomplete(index, bytes, eof, &e),
                        None => return Ok(None),
                    }
                }
            };
            if let Some((view, len)) = parsed {
                let cloudtrail = view
                    .event_source
                    .as_ref()
                    .is_some_and(|s| s.as_str().ends_with(".amazonaws.com"));
                if index == 0 && !cloudtrail {
                    if let Some(what) = notification_of(text.get(..len).unwrap_or_default()) {
                        return Err(Error::Notification { what });
                    }
                }
                self.batch.counts.records_in += 1;
                if len > self.limits.max_record_bytes {
                    self.too_big(origin, index, len as u64);
                } else {
                    self.view(origin, index, &view);
                }
                return Ok(Some(len));
            }
        }
        // Not an object, or not of the expected shape: measure it, then read
        // it as a record alone, which says what is wrong with it.
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<IgnoredAny>();
        let len = match stream.next() {
            Some(Ok(_)) => stream.byte_offset(),
            Some(Err(e)) => return incomplete(index, bytes, eof, &e),
            None => return Ok(None),
        };
        let record = text.get(..len).unwrap_or_default();
        if index == 0 {
            if let Some(what) = notification_of(record) {
                return Err(Error::Notification { what });
            }
        }
        self.batch.counts.records_in += 1;
        self.record(origin, index, record);
        Ok(Some(len))
    }

    fn oversize(&mut self, index: u64, len: u64) {
        self.batch.counts.records_in += 1;
        let origin = self.origin;
        self.too_big(origin, index, len);
    }
}

/// A record that did not parse: cut short by the end of the bytes at hand
/// (`Ok(None)`: wait for more), or invalid JSON, which makes the input
/// unreadable.
fn incomplete(
    index: u64,
    bytes: &[u8],
    eof: bool,
    e: &serde_json::Error,
) -> Result<Option<usize>, Error> {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof if !eof => Ok(None),
        // A number cut at the end of the bytes reads as an invalid number.
        Category::Syntax if !eof && error_offset(bytes, e) + 2 >= bytes.len() => Ok(None),
        _ => Err(Error::from_json(
            &format!("field `Records`, record {index}"),
            e,
        )),
    }
}

/// Where in `bytes` a parse error is, from its line and column.
fn error_offset(bytes: &[u8], e: &serde_json::Error) -> usize {
    let mut line_start = 0;
    for _ in 1..e.line() {
        match bytes[line_start..].iter().position(|&b| b == b'\n') {
            Some(i) => line_start += i + 1,
            None => return bytes.len(),
        }
    }
    line_start + e.column()
}

/// The top-level `eventID` of a record that did not parse as a whole, when
/// it is there and a string.
fn event_id_of(json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct OnlyId<'a> {
        #[serde(borrow, rename = "eventID")]
        event_id: Option<Text<'a>>,
    }
    serde_json::from_str::<OnlyId<'_>>(json)
        .ok()
        .and_then(|r| r.event_id)
        .map(|id| id.as_str().to_owned())
}

/// Names the field a record's parse failed on, without quoting its value.
fn describe_record_error(json: &str, e: &serde_json::Error) -> (MalformedReason, String) {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let mut de = serde_json::Deserializer::from_str(json);
            let path = match serde_path_to_error::deserialize::<_, RecordView<'_>>(&mut de) {
                Err(e) => e.path().to_string(),
                Ok(_) => "?".to_owned(),
            };
            (
                MalformedReason::WrongType,
                format!("field `{path}` has the wrong JSON type"),
            )
        }
        _ => (
            MalformedReason::NotJson,
            format!("record is not valid JSON (column {})", e.column()),
        ),
    }
}

/// A 128-bit digest of an eventID: two independent SipHash runs, so that
/// holding millions of ids costs 16 bytes each and a collision is negligible.
fn event_id_hash(id: &str) -> u128 {
    let mut a = DefaultHasher::new();
    id.hash(&mut a);
    let mut b = DefaultHasher::new();
    0xA5u8.hash(&mut b);
    id.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

enum Document<'de> {
    /// A JSON object with none of the fields of a known input.
    Unknown,
    /// An event that announces CloudTrail files instead of holding records
    /// (EventBridge, an SNS message, S3's test event).
    Event(&'static str),
    Records,
    AwsLogs(String),
    Logs(LogsPayload<'de>),
}

#[derive(Default)]
struct LogsPayload<'de> {
    message_type: Option<Text<'de>>,
    owner: Option<Text<'de>>,
    log_group: Option<Text<'de>>,
    log_stream: Option<Text<'de>>,
    log_events: Vec<&'de RawValue>,
}

#[derive(Deserialize)]
struct LogEvent<'a> {
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default)]
    message: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct AwsLogsField {
    data: String,
}

struct DocumentSeed<'c, 'r> {
    ctx: &'c mut Ctx<'r>,
    allow_awslogs: bool,
}

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_, '_> {
    type Value = Document<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_, '_> {
    type Value = Document<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CloudTrail file or a CloudWatch Logs subscription event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut records = false;
        let mut awslogs = None;
        let mut logs = LogsPayload::default();
        let mut logs_seen = false;
        // Members that name an event which only points at CloudTrail files.
        let mut event: Option<&'static str> = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match key.as_str() {
                "detail-type" => {
                    event = Some("an EventBridge event");
                    map.next_value::<IgnoredAny>()?;
                }
                "TopicArn" => {
                    event = event.or(Some("an SNS message"));
                    map.next_value::<IgnoredAny>()?;
                }
                "Event" => {
                    let value: &'de RawValue = map.next_value()?;
                    if value.get() == "\"s3:TestEvent\"" {
                        event = Some("an S3 test event");
                    }
                }
                "Records" => {
                    self.ctx.at = "Records";
                    map.next_value_seed(RecordsSeed {
                        ctx: &mut *self.ctx,
                    })?;
                    records = true;
                }
                "awslogs" if self.allow_awslogs => {
                    self.ctx.at = "awslogs";
                    awslogs = Some(map.next_value::<AwsLogsField>()?.data);
                }
                "messageType" => {
                    self.ctx.at = "messageType";
                    logs.message_type = map.next_value()?;
                    logs_seen = true;
                }
                "owner" => {
                    self.ctx.at = "owner";
                    logs.owner = map.next_value()?;
                }
                "logGroup" => {
                    self.ctx.at = "logGroup";
                    logs.log_group = map.next_value()?;
                }
                "logStream" => {
                    self.ctx.at = "logStream";
                    logs.log_stream = map.next_value()?;
                }
                "logEvents" => {
                    self.ctx.at = "logEvents";
                    logs.log_events = map.next_value()?;
                    logs_seen = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        self.ctx.at = "";
        if records {
            Ok(Document::Records)
        } else if let Some(data) = awslogs {
            Ok(Document::AwsLogs(data))
        } else if logs_seen {
            Ok(Document::Logs(logs))
        } else if let Some(what) = event {
            Ok(Document::Event(what))
        } else {
            Ok(Document::Unknown)
        }
    }
}

/// Streams `Records[]`, handing each record to the context as it is met, so
/// that the array itself is never built.
struct RecordsSeed<'c, 'r> {
    ctx: &'c mut Ctx<'r>,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of CloudTrail records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let origin = self.ctx.origin;
        let mut index = 0u64;
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            if index == 0 {
                if let Some(what) = notification_of(raw.get()) {
                    // Not CloudTrail: none of it counts (read_document says so).
                    self.ctx.notification = Some(what);
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    return Ok(());
                }
            }
            self.ctx.batch.counts.records_in += 1;
            self.ctx.record(origin, index, raw.get());
            index += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn record(i: usize) -> String {
        format!(
            r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/app-{caller}","accountId":"111122223333"}},"eventTime":"2024-03-15T10:{m:02}:{s:02}Z","eventSource":"dynamodb.amazonaws.com","eventName":"GetItem","awsRegion":"us-east-1","sourceIPAddress":"10.0.0.{caller}","userAgent":"aws-sdk-java/2.25.1","requestParameters":{{"tableName":"table-{table}","key":{{"pk":"cust-{i}"}}}},"responseElements":null,"eventID":"{i:08}-0000-4000-8000-000000000000","recipientAccountId":"111122223333"}}"#,
            caller = i % 7,
            table = i % 3,
            m = (i / 60) % 60,
            s = i % 60,
        )
    }

    fn file(records: usize) -> Vec<u8> {
        let body: Vec<String> = (0..records).map(record).collect();
        format!("{{\"Records\":[\n{}\n]}}\n", body.join(",\n")).into_bytes()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn streamed(reader: &InputReader, bytes: &[u8], piece: usize) -> Result<ReadInput, Error> {
        let mut stream = reader.start("trail.json.gz");
        for part in bytes.chunks(piece) {
            stream.push(part)?;
        }
        stream.finish()
    }

    #[test]
    fn notifications_are_named_not_read_as_cloudtrail() {
        let reader = InputReader::default();
        let cases: [(&str, &str); 5] = [
            (
                r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put"}]}"#,
                "this is an S3 notification, not a CloudTrail file",
            ),
            (
                r#"{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"{}"}}]}"#,
                "this is an SNS notification, not a CloudTrail file",
            ),
            (
                r#"{"version":"0","detail-type":"Object Created","source":"aws.s3","detail":{}}"#,
                "this is an EventBridge event, not a CloudTrail file",
            ),
            (
                r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#,
                "this is an S3 test event, not a CloudTrail file",
            ),
            (
                r#"{"Type":"Notification","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":"{}"}"#,
                "this is an SNS message, not a CloudTrail file",
            ),
        ];
        for (json, message) in cases {
            for result in [
                reader.read_alone("n.json", json.as_bytes()),
                streamed(&reader, json.as_bytes(), 7),
                streamed(&reader, &gzip(json.as_bytes()), 7),
            ] {
                let err = result.expect_err(json);
                assert_eq!(err.to_string(), message, "{json}");
                assert_eq!(err.reason(), "notification");
                assert!(err.is_bad_input());
            }
        }
        // A CloudTrail file whose first record is of another service is CloudTrail.
        let json = format!(
            r#"{{"Records":[{{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"x"}},{}]}}"#,
            record(1)
        );
        let input = reader.read_alone("t.json", json.as_bytes()).unwrap();
        assert_eq!(input.batch.counts.attributed, 1);
    }

    #[test]
    fn bytes_that_cannot_be_json_are_not_a_cloudtrail_file() {
        let reader = InputReader::default();
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        for result in [reader.read_alone("p.json", png), streamed(&reader, png, 3)] {
            assert_eq!(
                result.unwrap_err().to_string(),
                "not a CloudTrail file (not gzip, not JSON)"
            );
        }
        assert_eq!(
            streamed(&reader, &gzip(png), 3).unwrap_err().to_string(),
            "not a CloudTrail file (gzip, but what it holds is not JSON)"
        );
        let from = reader.read_from("p.json.gz", &gzip(png)[..], None);
        assert_eq!(
            from.unwrap_err().to_string(),
            "not a CloudTrail file (gzip, but what it holds is not JSON)"
        );
    }

    #[test]
    fn inputs_read_one_after_another_add_up_as_merged_ones_do() {
        // Records 0..300 and 200..500: a hundred eventIDs in both.
        let first = gzip(&file(300));
        let body: Vec<String> = (200..500).map(record).collect();
        let second = gzip(format!("{{\"Records\":[{}]}}", body.join(",")).as_bytes());
        let mut reader = InputReader::default();
        let one = reader.read_alone("first", &first).unwrap();
        reader.remember(one.event_ids);
        let two = reader.read_alone("second", &second).unwrap();
        let mut merged = one.batch;
        merged.merge(two.batch);

        let reader = InputReader::default();
        let one = reader.read_from("first", &first[..], None).unwrap();
        assert_eq!(
            one.batch.counts,
            streamed(&reader, &first, 4096).unwrap().batch.counts
        );
        let both = reader.read_from("second", &second[..], Some(one)).unwrap();
        assert_eq!(both.batch.counts, merged.counts);
        assert_eq!(both.batch.counts.attributed, 500);
        assert_eq!(both.batch.lifetime, merged.lifetime);
        assert_eq!(both.batch.daily, merged.daily);
        assert_eq!(both.event_ids.len(), 500);
    }

    #[test]
    fn a_file_read_as_a_stream_holds_a_chunk_not_the_file() {
        let json = file(30_000);
        assert!(json.len() > 20 * CHUNK, "{}", json.len());
        let reader = InputReader::default();
        let whole = reader.read_alone("trail.json", &json).unwrap();
        assert_eq!(whole.batch.counts.records_in, 30_000);
        assert_eq!(whole.batch.counts.attributed, 30_000);
        for bytes in [gzip(&json), json.clone()] {
            let input = streamed(&reader, &bytes, 64 * 1024).unwrap();
            assert_eq!(input.kind, InputKind::CloudTrailFile);
            assert_eq!(input.batch.counts, whole.batch.counts);
            assert_eq!(input.batch.lifetime, whole.batch.lifetime);
            assert_eq!(input.event_ids.len(), 30_000);
            // A chunk, the partial record before it and one decoder write.
            assert!(
                input.peak_buffer <= CHUNK + 2 * 1024 + 64 * 1024,
                "{} bytes held for a file of {}",
                input.peak_buffer,
                json.len()
            );
            // Read rather than pushed: the same, a piece of `read_stream` at a time.
            let read = reader.read_from("trail.json", &bytes[..], None).unwrap();
            assert_eq!(read.kind, InputKind::CloudTrailFile);
            assert_eq!(read.batch.counts, whole.batch.counts);
            assert_eq!(read.batch.lifetime, whole.batch.lifetime);
            assert_eq!(read.event_ids.len(), 30_000);
            assert!(
                read.peak_buffer <= CHUNK + 2 * 1024 + decode::READ_PIECE,
                "{} bytes held for a file of {}",
                read.peak_buffer,
                json.len()
            );
        }
    }

    #[test]
    fn an_oversize_record_is_passed_over_without_being_held() {
        let limits = Limits {
            max_record_bytes: 4 * 1024,
            ..Limits::default()
        };
        let reader = InputReader::new(Rules::default(), limits);
        let huge = record(1).replace("cust-1", &"x".repeat(CHUNK * 3));
        let json = format!("{{\"Records\":[{},{huge},{}]}}", record(0), record(2));
        let input = streamed(&reader, &gzip(json.as_bytes()), 8 * 1024).unwrap();
        assert_eq!(input.batch.counts.records_in, 3);
        assert_eq!(input.batch.counts.attributed, 2);
        assert_eq!(input.batch.counts.malformed.get("oversize"), Some(&1));
        assert!(input.batch.problems[0]
            .detail
            .contains(&huge.len().to_string()));
        assert!(input.peak_buffer < 2 * CHUNK, "{}", input.peak_buffer);
        // In memory, the same outcome.
        let whole = reader.read_alone("trail.json", json.as_bytes()).unwrap();
        assert_eq!(whole.batch.counts, input.batch.counts);
    }

    #[test]
    fn a_stream_cut_short_gives_nothing() {
        let json = file(2_000);
        let cut = &json[..json.len() * 2 / 3];
        let reader = InputReader::default();
        let err = streamed(&reader, cut, 4096).unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
        let err = streamed(&reader, &gzip(cut), 4096).unwrap_err();
        assert_eq!(err.reason(), "bad_shape", "{err}");
        // Invalid JSON well after the first chunk: the input is unreadable.
        let broken = String::from_utf8(json.clone())
            .unwrap()
            .replacen("\"eventName\":\"GetItem\"", "\"eventName\":GetItem", 1_500)
            .replacen("\"eventName\":GetItem", "\"eventName\":\"GetItem\"", 1_499);
        let err = streamed(&reader, broken.as_bytes(), 4096).unwrap_err();
        assert!(err.to_string().contains("invalid JSON"), "{err}");
    }

    #[test]
    fn members_after_the_records_are_read_as_before() {
        let reader = InputReader::default();
        let json = format!(
            "{{\"Records\":[{}],\"Records\":[{}]}}",
            record(0),
            record(1)
        );
        let input = streamed(&reader, json.as_bytes(), 100).unwrap();
        assert_eq!(input.batch.counts.attributed, 2);
        let json = format!("{{\"Records\":[{}],\"awslogs\":5}}", record(0));
        assert_eq!(
            streamed(&reader, json.as_bytes(), 100)
                .unwrap_err()
                .reason(),
            "bad_shape"
        );
    }

    #[test]
    fn records_cut_at_any_chunk_edge_wait_for_their_end() {
        let reader = InputReader::default();
        // A number record is malformed; a number inside a record is nothing
        // special; neither depends on where the bytes were cut.
        let with_number = record(1).replace("\"responseElements\":null", "\"n\":-12.5e+3");
        let json = format!(
            "{{\"Records\":[{},123456.5e3,{with_number}, {}]}}",
            record(0),
            record(2)
        );
        for chunk in 1..120 {
            let mut stream = reader.start_chunked("trail.json", chunk);
            for part in json.as_bytes().chunks(7) {
                stream.push(part).unwrap();
            }
            let input = stream.finish().unwrap();
            assert_eq!(input.batch.counts.attributed, 3, "chunk {chunk}");
            assert_eq!(
                input.batch.counts.malformed.get("not_json"),
                Some(&1),
                "chunk {chunk}"
            );
        }
    }
}
