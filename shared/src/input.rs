//! Reading one input (a CloudTrail file, a CloudWatch Logs subscription
//! event, or its decoded payload) into a [`Batch`].
//!
//! An input is all or nothing: if it cannot be decoded or parsed as a whole
//! (truncated gzip, over the cap, not JSON), it contributes nothing and the
//! caller gets an [`Error`] naming why. Inside a readable input every record
//! stands alone: a bad record is counted and reported, and never takes the
//! records beside it down.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::attribute::{attribute, Outcome, Rules};
use crate::decode;
use crate::reconcile::{MalformedReason, RecordProblem, SkipReason};
use crate::record::{RecordView, Text};
use crate::rollup::Batch;
use crate::Error;

const NOT_AN_INPUT: &str =
    "expected a CloudTrail file ({\"Records\": [...]}) or a CloudWatch Logs \
     subscription event ({\"awslogs\": {\"data\": ...}} or its decoded {\"logEvents\": [...]})";

fn first_byte(json: &[u8]) -> Option<u8> {
    json.iter().copied().find(|b| !b.is_ascii_whitespace())
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

/// Reads inputs, counting each `eventID` once across everything it has read.
#[derive(Debug, Default)]
pub struct InputReader {
    rules: Rules,
    limits: Limits,
    seen: HashSet<u128>,
}

impl InputReader {
    /// A reader with the given attribution rules and limits.
    pub fn new(rules: Rules, limits: Limits) -> Self {
        InputReader {
            rules,
            limits,
            seen: HashSet::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Reads one input: `origin` names it in problems and errors (a path,
    /// `s3://bucket/key`, ...). On success the input's rollups and counters
    /// are returned and its eventIDs are remembered; on error nothing is.
    pub fn read(&mut self, origin: &str, bytes: &[u8]) -> Result<(InputKind, Batch), Error> {
        if bytes.is_empty() {
            return Err(Error::Empty);
        }
        let json = decode::decode(bytes, self.limits.max_decompressed)?;
        let mut ctx = Ctx {
            rules: &self.rules,
            limits: self.limits,
            global_seen: &self.seen,
            local_seen: HashSet::new(),
            batch: Batch::default(),
            origin,
            at: "",
        };
        let kind = ctx.read_document(&json, true)?;
        let Ctx {
            local_seen, batch, ..
        } = ctx;
        self.seen.extend(local_seen);
        Ok((kind, batch))
    }
}

struct Ctx<'r> {
    rules: &'r Rules,
    limits: Limits,
    global_seen: &'r HashSet<u128>,
    local_seen: HashSet<u128>,
    batch: Batch,
    origin: &'r str,
    /// The top-level field being read, for error messages.
    at: &'static str,
}

impl Ctx<'_> {
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
        match doc {
            Document::Unknown => Err(Error::shape(NOT_AN_INPUT)),
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
            let detail = format!(
                "record is {} bytes, over the {}-byte limit",
                json.len(),
                self.limits.max_record_bytes
            );
            self.malformed(origin, index, None, MalformedReason::Oversize, detail);
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
        match attribute(&view, self.rules) {
            Outcome::Skip(reason) => self.batch.counts.skip(reason),
            Outcome::Malformed(reason, detail) => {
                let id = view.event_id.as_ref().map(|t| t.as_str().to_owned());
                self.malformed(origin, index, id, reason, detail);
            }
            Outcome::Call(call) => {
                let id = event_id_hash(call.event_id);
                if self.global_seen.contains(&id) || !self.local_seen.insert(id) {
                    self.batch.counts.skip(SkipReason::DuplicateEvent);
                } else {
                    self.batch.counts.attributed += 1;
                    self.batch.fold(&call);
                }
            }
        }
    }
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
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match key.as_str() {
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
            self.ctx.batch.counts.records_in += 1;
            self.ctx.record(origin, index, raw.get());
            index += 1;
        }
        Ok(())
    }
}
