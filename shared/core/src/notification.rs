//! S3 object notifications: which CloudTrail files one `s3-ingest`
//! invocation has to read, grouped per message.
//!
//! The trail bucket can be wired to the function in several ways, so the
//! event is recognised from its content, never assumed to be one shape:
//!
//! - a direct S3 event notification, `{"Records":[{"eventSource":"aws:s3",...}]}`;
//! - an SQS batch whose bodies are S3 events, SNS envelopes around S3 events
//!   (SNS → SQS without raw delivery), EventBridge events or `s3:TestEvent`s;
//! - SNS records delivered straight to Lambda;
//! - an EventBridge `aws.s3` event.
//!
//! CloudTrail's own SNS notification (`{"s3Bucket":...,"s3ObjectKey":[...]}`,
//! sent when a trail is given an SNS topic) is read wherever an S3 event may
//! be, because a trail wired that way announces the same files.
//!
//! Nesting is bounded: an SNS envelope inside an SQS body is the deepest
//! shape accepted; anything deeper is a shape error, not another level.
//!
//! Keys in S3 event notifications are URL-encoded (`+` is a space) and are
//! decoded with [`decode_key`]. Keys in EventBridge events are taken as they
//! are: unlike S3 event notifications, AWS does not document them as
//! URL-encoded, and decoding a plain key would corrupt any key holding `+` or
//! `%`. CloudTrail's SNS notification lists plain keys too.
//!
//! An SNS `SubscriptionConfirmation` in a queue (a cross-account
//! subscription) fails its message instead of being acknowledged, so that it
//! reaches the dead-letter queue, where a person can confirm it.
//!
//! Every announced object comes back with a [`Disposition`], skipped ones
//! included, so that callers count skips by reason instead of losing them.
//! Each SQS message is its own [`NotificationMessage`] with its own `Result`:
//! one bad body becomes one `batchItemFailures` entry and never fails the
//! batch. Error messages name where (JSON path, SQS messageId) and never quote
//! object keys or bodies.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::record::Text;
use crate::Error;

/// One S3 object a notification announced: enough to `GetObject` it and to
/// give the batch it becomes a stable id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Bucket name.
    pub bucket: String,
    /// The object key, ready for `GetObject`: URL-decoded when the
    /// notification encodes it (S3 event notifications), as announced
    /// otherwise (EventBridge, CloudTrail's SNS notification).
    pub key: String,
    /// Size in bytes, when announced (S3 leaves it out for deletions).
    pub size: Option<u64>,
    /// ETag as announced (S3 sends it without the quotes `GetObject` returns).
    pub etag: Option<String>,
    /// Version id, when the bucket is versioned.
    pub version_id: Option<String>,
    /// S3's sequencer, which orders events for the same key; kept for logs.
    pub sequencer: Option<String>,
}

/// Characters escaped in the key part of a source id, so that a key holding
/// `?` or `#` cannot pass for another key with a version id or ETag.
const SOURCE_ID_KEY: &AsciiSet = &CONTROLS.add(b'%').add(b'?').add(b'#');

impl ObjectRef {
    /// The object's id for the exactly-once ledger when the content read is
    /// not known (a reject for an object that could not be read): the
    /// announced ETag, else the announced version id, else the key alone.
    /// Objects that are read take [`content_source_id`] with the ETag
    /// `GetObject` returned instead.
    pub fn announced_source_id(&self) -> String {
        let etag = self.etag.as_deref().map(|e| e.trim_matches('"'));
        match (etag.filter(|e| !e.is_empty()), self.version_id.as_deref()) {
            (Some(etag), _) => content_source_id(&self.bucket, &self.key, Some(etag)),
            (None, Some(version)) if !version.is_empty() => format!(
                "{}?versionId={version}",
                content_source_id(&self.bucket, &self.key, None)
            ),
            _ => content_source_id(&self.bucket, &self.key, None),
        }
    }
}

/// The id of one object version's content in the exactly-once ledger:
/// `s3://bucket/key#etag`, with the ETag that `GetObject` (or
/// `ListObjectsV2`) returns.
///
/// Every way an object reaches ddb-audit gives this same id, because it is
/// built from what was read, not from what announced it: a direct S3
/// notification with or without a version id, EventBridge, S3 → SNS → SQS,
/// CloudTrail's own SNS notice (which names only bucket and key), a backfill
/// listing and a replay. The same content announced again is the same id; an
/// object overwritten with other content has another ETag, so it is new
/// content. (With SSE-KMS an ETag is not a digest of the content, but it is
/// still fixed for one stored object: a re-upload of the same bytes counts as
/// new content there. CloudTrail never rewrites a log file.)
///
/// In the key, `%`, `?`, `#` and control characters are percent-encoded so
/// the id is unambiguous (CloudTrail keys have none of them, so their ids read
/// as plain keys). Quotes around the ETag are dropped.
pub fn content_source_id(bucket: &str, key: &str, etag: Option<&str>) -> String {
    let mut id = format!("s3://{bucket}/{}", utf8_percent_encode(key, SOURCE_ID_KEY));
    if let Some(etag) = etag.map(|e| e.trim_matches('"')).filter(|e| !e.is_empty()) {
        id.push('#');
        id.push_str(etag);
    }
    id
}

/// Why an announced object is not read. Skips are counted, not errors: a
/// trail bucket legitimately holds these objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipObject {
    /// A CloudTrail digest file (a `CloudTrail-Digest` path segment): hashes
    /// for log file validation, no records.
    Digest,
    /// A CloudTrail Insights file (a `CloudTrail-Insight` path segment):
    /// anomaly summaries, not API calls.
    Insight,
    /// A "folder" placeholder: a key ending in `/`, or a zero-byte object.
    Folder,
    /// The notification is not about a new object (a deletion, restore,
    /// tagging, ...), so there is nothing new to read.
    NotCreated,
}

impl SkipObject {
    /// Every reason, for callers that report a zero count for each.
    pub const ALL: [SkipObject; 4] = [
        SkipObject::Digest,
        SkipObject::Insight,
        SkipObject::Folder,
        SkipObject::NotCreated,
    ];

    /// Stable name used in logs, metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipObject::Digest => "digest",
            SkipObject::Insight => "insight",
            SkipObject::Folder => "folder",
            SkipObject::NotCreated => "not_created",
        }
    }
}

impl fmt::Display for SkipObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with an announced object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// A CloudTrail log file (as far as the key tells): read it.
    Read,
    /// Not a log file to read; count it under this reason.
    Skip(SkipObject),
}

/// One object a notification announced, and what to do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// The object.
    pub object: ObjectRef,
    /// Read it, or skip it for a reason.
    pub disposition: Disposition,
}

/// The objects of one message: the unit that succeeds or fails together.
///
/// Behind SQS a message is one SQS message, so a failure maps to one
/// `batchItemFailures` entry. Otherwise it is one record of the event (a
/// direct S3 record, an SNS record) or the whole EventBridge event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationMessage {
    /// The SQS `messageId`, when the message came through SQS: what a partial
    /// batch response names. `None` outside SQS, and for an SQS record
    /// without a `messageId` (which then cannot be failed on its own).
    pub message_id: Option<String>,
    /// True for S3's `s3:TestEvent`, sent when a notification configuration
    /// is saved: acknowledge it; it announces no objects.
    pub test_event: bool,
    /// True for an SNS notification whose message is neither CloudTrail's
    /// nor an S3 event (another publisher on the same topic): acknowledged
    /// and counted, never retried, since no retry can make it one.
    pub foreign: bool,
    /// The announced objects, skipped ones included; `Err` when this message
    /// cannot be read, which fails this message only.
    pub objects: Result<Vec<Announced>, Error>,
}

/// Reads the JSON of one Lambda event into its messages.
///
/// `Err` only when the event as a whole is unreadable: empty, not UTF-8, not
/// a JSON object, or none of the shapes in the [module docs](self). Once the
/// shape is known, every problem belongs to one message (its `objects` is an
/// `Err`), so the other messages still go through. `{"Records":[]}` is no
/// messages.
pub fn parse_lambda_event(json: &[u8]) -> Result<Vec<NotificationMessage>, Error> {
    if json.is_empty() {
        return Err(Error::Empty);
    }
    let text = std::str::from_utf8(json).map_err(|_| Error::shape("event is not UTF-8"))?;
    let doc: Document<'_> = parse(text, "", "")?;
    match doc.shape() {
        Some(Shape::Records(records)) => Ok(records
            .iter()
            .enumerate()
            .map(|(index, raw)| event_record(index, raw))
            .collect()),
        Some(Shape::Sns { .. }) => Err(Error::shape(
            "event is a bare SNS envelope; Lambda receives SNS messages as Records[].Sns",
        )),
        Some(shape) => Ok(vec![message(None, read_shape(shape, "", Nesting::Top))]),
        None => Err(Error::shape(
            "event is not an S3, SQS, SNS or EventBridge event, nor an s3:TestEvent",
        )),
    }
}

/// Decodes an object key as S3 event notifications write it: `+` is a space,
/// then percent-decoding (`a+b%2Bc` is `a b+c`).
///
/// Stricter than a browser: a `%` not followed by two hex digits, or bytes
/// that are not UTF-8 once decoded, are an error rather than kept as they
/// are, because a wrongly decoded key would only fail later as `NoSuchKey`.
pub fn decode_key(raw: &str) -> Result<String, Error> {
    decode_url_key(raw).map_err(|problem| Error::shape(format!("object key {problem}")))
}

/// Decides whether an announced object is a CloudTrail log file to read.
///
/// `event_name` is the S3 `eventName` when the notification has one; `None`
/// means the object is known to be new (EventBridge "Object Created",
/// CloudTrail's SNS notification). The rules, first match wins: an event
/// name not starting with `ObjectCreated` is [`SkipObject::NotCreated`] (there
/// is nothing new to read, whatever the key); a `CloudTrail-Digest` path
/// segment is a digest; a `CloudTrail-Insight` segment an Insights file; a key
/// ending in `/` or a zero size a folder placeholder. Everything else is read;
/// the file's content decides the rest.
pub fn classify(key: &str, size: Option<u64>, event_name: Option<&str>) -> Disposition {
    if event_name.is_some_and(|name| !name.starts_with("ObjectCreated")) {
        return Disposition::Skip(SkipObject::NotCreated);
    }
    for segment in key.split('/') {
        match segment {
            "CloudTrail-Digest" => return Disposition::Skip(SkipObject::Digest),
            "CloudTrail-Insight" => return Disposition::Skip(SkipObject::Insight),
            _ => {}
        }
    }
    if key.ends_with('/') || size == Some(0) {
        return Disposition::Skip(SkipObject::Folder);
    }
    Disposition::Read
}

// ---------------------------------------------------------------------------
// Shapes

/// Every field that tells the known documents apart; all optional, so the
/// shape is decided after parsing, from what is present.
#[derive(Deserialize)]
struct Document<'a> {
    /// S3 events, SQS batches, SNS events.
    #[serde(borrow, rename = "Records")]
    records: Option<Vec<&'a RawValue>>,
    /// `s3:TestEvent`.
    #[serde(borrow, rename = "Event")]
    event: Option<Text<'a>>,
    /// EventBridge.
    #[serde(borrow, rename = "detail-type")]
    detail_type: Option<Text<'a>>,
    #[serde(borrow)]
    source: Option<Text<'a>>,
    #[serde(borrow)]
    detail: Option<&'a RawValue>,
    /// An SNS envelope (an SQS body from SNS without raw delivery).
    #[serde(borrow, rename = "Type")]
    sns_type: Option<Text<'a>>,
    #[serde(borrow, rename = "Message")]
    sns_message: Option<Text<'a>>,
    /// CloudTrail's own SNS notification.
    #[serde(borrow, rename = "s3Bucket")]
    trail_bucket: Option<Text<'a>>,
    #[serde(borrow, rename = "s3ObjectKey")]
    trail_keys: Option<Vec<Text<'a>>>,
}

enum Shape<'a> {
    Records(Vec<&'a RawValue>),
    TestEvent,
    EventBridge {
        detail_type: Text<'a>,
        source: Option<Text<'a>>,
        detail: Option<&'a RawValue>,
    },
    Sns {
        sns_type: Text<'a>,
        message: Option<Text<'a>>,
    },
    TrailNotice {
        bucket: Text<'a>,
        keys: Vec<Text<'a>>,
    },
}

impl<'a> Document<'a> {
    fn shape(self) -> Option<Shape<'a>> {
        if let Some(records) = self.records {
            return Some(Shape::Records(records));
        }
        if self.event.as_ref().map(Text::as_str) == Some("s3:TestEvent") {
            return Some(Shape::TestEvent);
        }
        if let Some(detail_type) = self.detail_type {
            return Some(Shape::EventBridge {
                detail_type,
                source: self.source,
                detail: self.detail,
            });
        }
        if let Some(sns_type) = self.sns_type {
            return Some(Shape::Sns {
                sns_type,
                message: self.sns_message,
            });
        }
        if let (Some(bucket), Some(keys)) = (self.trail_bucket, self.trail_keys) {
            return Some(Shape::TrailNotice { bucket, keys });
        }
        None
    }
}

/// Where a document sits, which bounds what it may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nesting {
    /// The Lambda event itself.
    Top,
    /// The body of an SQS message: may hold an SNS envelope.
    SqsBody,
    /// The message of an SNS envelope or record: the innermost level.
    SnsMessage,
}

/// One record of `Records`, whichever service wrote it.
#[derive(Deserialize)]
struct EventRecord<'a> {
    #[serde(borrow, rename = "eventSource")]
    event_source: Option<Text<'a>>,
    /// SNS records capitalise it.
    #[serde(borrow, rename = "EventSource")]
    sns_event_source: Option<Text<'a>>,
    #[serde(borrow, rename = "eventName")]
    event_name: Option<Text<'a>>,
    #[serde(borrow)]
    s3: Option<S3Entity<'a>>,
    #[serde(borrow, rename = "messageId")]
    message_id: Option<Text<'a>>,
    #[serde(borrow)]
    body: Option<Text<'a>>,
    #[serde(borrow, rename = "Sns")]
    sns: Option<SnsRecord<'a>>,
}

enum RecordKind {
    S3,
    Sqs,
    Sns,
    Unknown,
}

impl EventRecord<'_> {
    /// The declared event source decides; without one, the fields present do.
    fn kind(&self) -> RecordKind {
        match self.event_source.as_ref().map(Text::as_str) {
            Some("aws:s3") => return RecordKind::S3,
            Some("aws:sqs") => return RecordKind::Sqs,
            _ => {}
        }
        if self.sns_event_source.as_ref().map(Text::as_str) == Some("aws:sns") {
            return RecordKind::Sns;
        }
        if self.s3.is_some() {
            RecordKind::S3
        } else if self.sns.is_some() {
            RecordKind::Sns
        } else if self.body.is_some() {
            RecordKind::Sqs
        } else {
            RecordKind::Unknown
        }
    }
}

#[derive(Deserialize)]
struct S3Entity<'a> {
    #[serde(borrow)]
    bucket: Option<BucketView<'a>>,
    #[serde(borrow)]
    object: Option<S3ObjectView<'a>>,
}

#[derive(Deserialize)]
struct BucketView<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct S3ObjectView<'a> {
    #[serde(borrow)]
    key: Option<Text<'a>>,
    size: Option<u64>,
    #[serde(borrow, rename = "eTag")]
    etag: Option<Text<'a>>,
    #[serde(borrow, rename = "versionId")]
    version_id: Option<Text<'a>>,
    #[serde(borrow)]
    sequencer: Option<Text<'a>>,
}

/// The `Sns` object of an SNS record delivered straight to Lambda.
#[derive(Deserialize)]
struct SnsRecord<'a> {
    #[serde(borrow, rename = "Type")]
    sns_type: Option<Text<'a>>,
    #[serde(borrow, rename = "MessageId")]
    message_id: Option<Text<'a>>,
    #[serde(borrow, rename = "Message")]
    message: Option<Text<'a>>,
}

/// EventBridge's `detail` for S3 events: its own field names (`etag`,
/// `version-id`), not those of S3 event notifications.
#[derive(Deserialize)]
struct DetailView<'a> {
    #[serde(borrow)]
    bucket: Option<BucketView<'a>>,
    #[serde(borrow)]
    object: Option<DetailObject<'a>>,
}

#[derive(Deserialize)]
struct DetailObject<'a> {
    #[serde(borrow)]
    key: Option<Text<'a>>,
    size: Option<u64>,
    #[serde(borrow)]
    etag: Option<Text<'a>>,
    #[serde(borrow, rename = "version-id")]
    version_id: Option<Text<'a>>,
    #[serde(borrow)]
    sequencer: Option<Text<'a>>,
}

impl DetailView<'_> {
    /// The announced object, or the detail field that is missing.
    ///
    /// The key is taken as it is, not URL-decoded: S3 event notifications
    /// are documented as URL-encoded, EventBridge's S3 events are not, and
    /// decoding a plain key would corrupt any key holding `+` or `%`. Should
    /// a key ever arrive encoded, `GetObject` fails with `NoSuchKey` and the
    /// message is reported, not lost.
    fn into_object(self) -> Result<ObjectRef, &'static str> {
        let bucket = text(self.bucket.and_then(|b| b.name)).ok_or("bucket.name")?;
        let object = self.object.ok_or("object")?;
        let key = text(object.key).ok_or("object.key")?;
        Ok(ObjectRef {
            bucket,
            key,
            size: object.size,
            etag: text(object.etag),
            version_id: text(object.version_id),
            sequencer: text(object.sequencer),
        })
    }
}

// ---------------------------------------------------------------------------
// Reading

/// What one message holds once read.
#[derive(Default)]
struct Contents {
    test_event: bool,
    foreign: bool,
    objects: Vec<Announced>,
}

impl Contents {
    fn objects(objects: Vec<Announced>) -> Self {
        Contents {
            objects,
            ..Contents::default()
        }
    }
}

fn message(message_id: Option<String>, contents: Result<Contents, Error>) -> NotificationMessage {
    let test_event = matches!(&contents, Ok(c) if c.test_event);
    let foreign = matches!(&contents, Ok(c) if c.foreign);
    NotificationMessage {
        message_id,
        test_event,
        foreign,
        objects: contents.map(|c| c.objects),
    }
}

/// One record of the event's own `Records`: one message.
fn event_record(index: usize, raw: &RawValue) -> NotificationMessage {
    let path = format!("Records[{index}]");
    let record: EventRecord<'_> = match parse(raw.get(), "", &path) {
        Ok(record) => record,
        Err(e) => return message(None, Err(e)),
    };
    match record.kind() {
        RecordKind::Sqs => {
            let message_id = text(record.message_id);
            let doc = match &message_id {
                Some(id) => format!("{path} (SQS messageId {id}): body"),
                None => format!("{path} (SQS message without messageId): body"),
            };
            let contents = match &record.body {
                Some(body) => read_document(body.as_str(), &doc, Nesting::SqsBody),
                None => Err(Error::shape(format!("{doc} is missing"))),
            };
            message(message_id, contents)
        }
        RecordKind::Sns => {
            let contents = match record.sns {
                Some(sns) => read_sns_record(sns, &path),
                None => Err(Error::shape(format!("{path}.Sns is missing"))),
            };
            message(None, contents)
        }
        RecordKind::S3 => {
            let contents = s3_record(record, "", &path).map(|a| Contents::objects(vec![a]));
            message(None, contents)
        }
        RecordKind::Unknown => message(
            None,
            Err(Error::shape(format!(
                "{path} is not an S3, SQS or SNS record"
            ))),
        ),
    }
}

fn read_sns_record(sns: SnsRecord<'_>, path: &str) -> Result<Contents, Error> {
    let doc = match text(sns.message_id) {
        Some(id) => format!("{path} (SNS MessageId {id}): Sns.Message"),
        None => format!("{path}.Sns.Message"),
    };
    let body = sns_notification(sns.sns_type.as_ref(), sns.message, &doc)?;
    read_document(body.as_str(), &doc, Nesting::SnsMessage)
}

/// The message of an SNS envelope, when it is a notification.
///
/// A `SubscriptionConfirmation` reaches a queue subscribed across accounts;
/// it is an error rather than acknowledged, so that it lands in the
/// dead-letter queue where a person can confirm the subscription.
fn sns_notification<'a>(
    sns_type: Option<&Text<'_>>,
    message: Option<Text<'a>>,
    doc: &str,
) -> Result<Text<'a>, Error> {
    match sns_type.map(Text::as_str) {
        Some("Notification") | None => {
            message.ok_or_else(|| Error::shape(format!("{doc} is missing")))
        }
        Some(kind @ ("SubscriptionConfirmation" | "UnsubscribeConfirmation")) => {
            Err(Error::shape(format!(
                "{doc}: SNS {kind}, not a Notification; confirm or remove the subscription \
                 (the message kept in the dead-letter queue has its URL)"
            )))
        }
        Some(_) => Err(Error::shape(format!(
            "{doc}: SNS message Type is not Notification"
        ))),
    }
}

/// Reads a document held in a string (an SQS body, an SNS message).
///
/// An SNS message that is not one of the known documents (not JSON, or JSON
/// of another shape) is another publisher's message on the topic: foreign,
/// acknowledged rather than failed.
fn read_document(json: &str, doc: &str, nesting: Nesting) -> Result<Contents, Error> {
    let foreign = Contents {
        foreign: true,
        ..Contents::default()
    };
    let parsed: Document<'_> = match parse(json, doc, "") {
        Ok(parsed) => parsed,
        Err(_) if nesting == Nesting::SnsMessage => return Ok(foreign),
        Err(e) => return Err(e),
    };
    match parsed.shape() {
        Some(shape) => read_shape(shape, doc, nesting),
        None if nesting == Nesting::SnsMessage => Ok(foreign),
        None => Err(Error::shape(format!(
            "{} is not an S3 event, SNS notification, EventBridge event or s3:TestEvent",
            place(doc, "")
        ))),
    }
}

fn read_shape(shape: Shape<'_>, doc: &str, nesting: Nesting) -> Result<Contents, Error> {
    match shape {
        Shape::Records(records) => {
            let objects = records
                .iter()
                .enumerate()
                .map(|(index, raw)| nested_s3_record(index, raw, doc))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Contents::objects(objects))
        }
        Shape::TestEvent => Ok(Contents {
            test_event: true,
            ..Contents::default()
        }),
        Shape::EventBridge {
            detail_type,
            source,
            detail,
        } => read_eventbridge(detail_type.as_str(), source.as_ref(), detail, doc),
        Shape::Sns { sns_type, message } => {
            if nesting != Nesting::SqsBody {
                return Err(Error::shape(format!(
                    "{} is an SNS envelope where none is accepted (only an SQS body may hold one)",
                    place(doc, "")
                )));
            }
            let inner = format!("{doc}: SNS Message");
            let body = sns_notification(Some(&sns_type), message, &inner)?;
            read_document(body.as_str(), &inner, Nesting::SnsMessage)
        }
        Shape::TrailNotice { bucket, keys } => read_trail_notice(bucket, keys, doc),
    }
}

/// A record of `Records` inside an SQS body or SNS message: S3 records only.
fn nested_s3_record(index: usize, raw: &RawValue, doc: &str) -> Result<Announced, Error> {
    let path = format!("Records[{index}]");
    let record: EventRecord<'_> = parse(raw.get(), doc, &path)?;
    match record.kind() {
        RecordKind::S3 => s3_record(record, doc, &path),
        RecordKind::Sqs | RecordKind::Sns => Err(Error::shape(format!(
            "{} is an SQS or SNS record nested deeper than accepted",
            place(doc, &path)
        ))),
        RecordKind::Unknown => Err(Error::shape(format!(
            "{} is not an S3 record",
            place(doc, &path)
        ))),
    }
}

/// One S3 event notification record: the key is URL-decoded here.
fn s3_record(record: EventRecord<'_>, doc: &str, path: &str) -> Result<Announced, Error> {
    let field = |name: &str| place(doc, &format!("{path}.{name}"));
    let missing = |name: &str| Error::shape(format!("{} is missing", field(name)));
    let s3 = record.s3.ok_or_else(|| missing("s3"))?;
    let bucket = text(s3.bucket.and_then(|b| b.name)).ok_or_else(|| missing("s3.bucket.name"))?;
    let object = s3.object.ok_or_else(|| missing("s3.object"))?;
    let raw_key = object.key.ok_or_else(|| missing("s3.object.key"))?;
    let key = decode_url_key(raw_key.as_str())
        .map_err(|problem| Error::shape(format!("{} {problem}", field("s3.object.key"))))?;
    if key.is_empty() {
        return Err(Error::shape(format!("{} is empty", field("s3.object.key"))));
    }
    let disposition = classify(
        &key,
        object.size,
        record.event_name.as_ref().map(Text::as_str),
    );
    Ok(Announced {
        object: ObjectRef {
            bucket,
            key,
            size: object.size,
            etag: text(object.etag),
            version_id: text(object.version_id),
            sequencer: text(object.sequencer),
        },
        disposition,
    })
}

/// An EventBridge event: only `aws.s3` events are expected here.
///
/// "Object Created" announces an object to read; any other S3 detail-type
/// (deleted, restored, tagged, ...) announces nothing new, so the object it
/// names, if any, comes back skipped as [`SkipObject::NotCreated`], and a
/// detail that names no object gives no objects. Neither is an error.
fn read_eventbridge(
    detail_type: &str,
    source: Option<&Text<'_>>,
    detail: Option<&RawValue>,
    doc: &str,
) -> Result<Contents, Error> {
    match source.map(Text::as_str) {
        Some("aws.s3") => {}
        Some(_) => {
            return Err(Error::shape(format!(
                "{} of the EventBridge event is not aws.s3",
                place(doc, "source")
            )))
        }
        None => {
            return Err(Error::shape(format!(
                "{} of the EventBridge event is missing",
                place(doc, "source")
            )))
        }
    }
    let parsed = detail.map(|raw| parse::<DetailView<'_>>(raw.get(), doc, "detail"));
    if detail_type != "Object Created" {
        let object = parsed
            .and_then(Result::ok)
            .and_then(|d| d.into_object().ok());
        return Ok(Contents::objects(
            object
                .map(|object| Announced {
                    object,
                    disposition: Disposition::Skip(SkipObject::NotCreated),
                })
                .into_iter()
                .collect(),
        ));
    }
    let detail =
        parsed.ok_or_else(|| Error::shape(format!("{} is missing", place(doc, "detail"))))??;
    let object = detail.into_object().map_err(|name| {
        Error::shape(format!(
            "{} is missing",
            place(doc, &format!("detail.{name}"))
        ))
    })?;
    let disposition = classify(&object.key, object.size, None);
    Ok(Contents::objects(vec![Announced {
        object,
        disposition,
    }]))
}

/// CloudTrail's own SNS notification: plain keys (a JSON array, not URL
/// encoding), and only log files are announced, so no size or event name.
fn read_trail_notice(bucket: Text<'_>, keys: Vec<Text<'_>>, doc: &str) -> Result<Contents, Error> {
    let bucket = text(Some(bucket))
        .ok_or_else(|| Error::shape(format!("{} is empty", place(doc, "s3Bucket"))))?;
    let objects = keys
        .into_iter()
        .enumerate()
        .map(|(index, key)| {
            let key = text(Some(key)).ok_or_else(|| {
                Error::shape(format!(
                    "{} is empty",
                    place(doc, &format!("s3ObjectKey[{index}]"))
                ))
            })?;
            let disposition = classify(&key, None, None);
            Ok(Announced {
                object: ObjectRef {
                    bucket: bucket.clone(),
                    key,
                    size: None,
                    etag: None,
                    version_id: None,
                    sequencer: None,
                },
                disposition,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Contents::objects(objects))
}

// ---------------------------------------------------------------------------
// Helpers

/// An owned string, with an empty one treated as absent.
fn text(value: Option<Text<'_>>) -> Option<String> {
    value.map(|t| t.0.into_owned()).filter(|s| !s.is_empty())
}

/// Why a URL-encoded key could not be decoded; worded to follow the key's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyProblem {
    BadPercent,
    NotUtf8,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyProblem::BadPercent => {
                "is not valid URL encoding (a `%` not followed by two hex digits)"
            }
            KeyProblem::NotUtf8 => "is not UTF-8 once URL-decoded",
        })
    }
}

fn decode_url_key(raw: &str) -> Result<String, KeyProblem> {
    fn hex(byte: u8) -> Option<u8> {
        match byte {
            b'0'..=b'9' => Some(byte - b'0'),
            b'a'..=b'f' => Some(byte - b'a' + 10),
            b'A'..=b'F' => Some(byte - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let high = bytes.next().and_then(hex);
                let low = bytes.next().and_then(hex);
                match (high, low) {
                    (Some(high), Some(low)) => out.push(high << 4 | low),
                    _ => return Err(KeyProblem::BadPercent),
                }
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).map_err(|_| KeyProblem::NotUtf8)
}

/// Names a place in an error message: `doc` is the document it is in (empty
/// for the event itself), `path` the JSON path inside it (empty for the
/// document as a whole).
fn place(doc: &str, path: &str) -> String {
    match (doc.is_empty(), path.is_empty()) {
        (true, true) => "event".to_owned(),
        (true, false) => path.to_owned(),
        (false, true) => doc.to_owned(),
        (false, false) => format!("{doc}: {path}"),
    }
}

/// Parses a JSON object, describing failures by place and JSON path only, so
/// that no input value reaches an error message.
fn parse<'a, T: Deserialize<'a>>(json: &'a str, doc: &str, path: &str) -> Result<T, Error> {
    use serde_json::error::Category;
    if !json.trim_start().starts_with('{') {
        let problem = if serde_json::from_str::<IgnoredAny>(json).is_ok() {
            "is not a JSON object"
        } else {
            "is not JSON"
        };
        return Err(Error::shape(format!("{} {problem}", place(doc, path))));
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        let (line, column) = (inner.line(), inner.column());
        match inner.classify() {
            Category::Data => {
                let sub = e.path().to_string();
                let at = match (path.is_empty(), sub.as_str()) {
                    (_, ".") => path.to_owned(),
                    (true, _) => sub,
                    (false, _) if sub.starts_with('[') => format!("{path}{sub}"),
                    (false, _) => format!("{path}.{sub}"),
                };
                Error::shape(format!(
                    "{} has an unexpected type or shape",
                    place(doc, &at)
                ))
            }
            Category::Eof => Error::shape(format!(
                "{} is JSON cut short (line {line} column {column})",
                place(doc, path)
            )),
            Category::Syntax | Category::Io => Error::shape(format!(
                "{} is not JSON (line {line} column {column})",
                place(doc, path)
            )),
        }
    })?;
    de.end().map_err(|_| {
        Error::shape(format!(
            "{} has trailing characters after its JSON",
            place(doc, path)
        ))
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUCKET: &str = "ddb-audit-trail-111122223333";
    const TRAIL_KEY: &str = "AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-1/2024/03/15/\
                             111122223333_CloudTrail_us-east-1_20240315T1205Z_Xy7AbCdEfGhIjKlM.json.gz";
    const TRAIL_KEY_2: &str = "AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-1/2024/03/15/\
                               111122223333_CloudTrail_us-east-1_20240315T1210Z_Qr3StUvWxYz0AbCd.json.gz";
    const DIGEST_KEY: &str = "AWSLogs/o-exampleorg1/111122223333/CloudTrail-Digest/us-east-1/2024/03/15/\
                              111122223333_CloudTrail-Digest_us-east-1_org-trail_us-east-1_20240315T122531Z.json.gz";

    fn parse_str(json: &str) -> Vec<NotificationMessage> {
        parse_lambda_event(json.as_bytes()).expect("event should be readable")
    }

    /// The objects of a message that must have been read without error.
    fn objects(message: &NotificationMessage) -> &[Announced] {
        match &message.objects {
            Ok(objects) => objects,
            Err(e) => panic!("message should be readable, got: {e}"),
        }
    }

    /// The error message of a message that must have failed.
    fn failure(message: &NotificationMessage) -> String {
        match &message.objects {
            Err(Error::Shape { what }) => what.clone(),
            other => panic!("expected a shape error, got {other:?}"),
        }
    }

    fn shape_error(json: &[u8]) -> String {
        match parse_lambda_event(json) {
            Err(Error::Shape { what }) => what,
            other => panic!("expected a shape error, got {other:?}"),
        }
    }

    /// A direct S3 event with one record for `key` (as S3 writes it).
    fn s3_event(event_name: &str, key: &str, size: u64) -> String {
        format!(
            r#"{{"Records":[{{"eventSource":"aws:s3","eventName":"{event_name}","s3":{{"bucket":{{"name":"{BUCKET}"}},"object":{{"key":"{key}","size":{size},"eTag":"abc"}}}}}}]}}"#
        )
    }

    /// An SQS batch with one message per body.
    fn sqs_event(bodies: &[&str]) -> String {
        let records: Vec<String> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let body = serde_json::to_string(body).unwrap();
                format!(r#"{{"messageId":"m-{i}","receiptHandle":"r","body":{body},"eventSource":"aws:sqs"}}"#)
            })
            .collect();
        format!(r#"{{"Records":[{}]}}"#, records.join(","))
    }

    fn eventbridge(detail_type: &str, source: &str, key: &str) -> String {
        format!(
            r#"{{"version":"0","id":"1","detail-type":"{detail_type}","source":"{source}","account":"111122223333","time":"2024-03-15T12:10:31Z","region":"us-east-1","detail":{{"version":"0","bucket":{{"name":"{BUCKET}"}},"object":{{"key":"{key}","size":7,"etag":"e1","sequencer":"s1"}},"reason":"PutObject"}}}}"#
        )
    }

    // --- the sample events ---------------------------------------------

    #[test]
    fn direct_s3_sample_is_one_message_with_its_key_url_decoded() {
        let messages = parse_str(include_str!("../../../events/s3-ingest/s3-direct.json"));
        assert_eq!(messages.len(), 1);
        let message = &messages[0];
        assert_eq!(message.message_id, None);
        assert!(!message.test_event);
        let objects = objects(message);
        assert_eq!(objects.len(), 1);
        let object = &objects[0].object;
        // `ddb+audit%2Barchive`: `+` is a space, `%2B` a plus.
        assert_eq!(object.key, format!("ddb audit+archive/{TRAIL_KEY}"));
        assert_eq!(object.bucket, BUCKET);
        assert_eq!(object.size, Some(18342));
        assert_eq!(
            object.etag.as_deref(),
            Some("b3f5916056b51b138d2328338c13dae0")
        );
        assert_eq!(
            object.version_id.as_deref(),
            Some("3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
        );
        assert_eq!(object.sequencer.as_deref(), Some("0065F43A8C1D2E3F4A"));
        assert_eq!(objects[0].disposition, Disposition::Read);
        // The announced ETag, not the version id: the id names content.
        assert_eq!(
            object.announced_source_id(),
            format!("s3://{BUCKET}/ddb audit+archive/{TRAIL_KEY}#b3f5916056b51b138d2328338c13dae0")
        );
    }

    #[test]
    fn sqs_sample_reads_the_log_file_and_skips_the_digest_per_message() {
        let messages = parse_str(include_str!("../../../events/s3-ingest/sqs-s3.json"));
        assert_eq!(messages.len(), 2);

        assert_eq!(
            messages[0].message_id.as_deref(),
            Some("2e1424d4-f796-459a-8184-9c92662be6da")
        );
        let first = objects(&messages[0]);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].object.key, TRAIL_KEY);
        assert_eq!(first[0].object.size, Some(18342));
        assert_eq!(first[0].object.version_id, None);
        assert_eq!(first[0].disposition, Disposition::Read);
        assert_eq!(
            first[0].object.announced_source_id(),
            format!("s3://{BUCKET}/{TRAIL_KEY}#0cc4293a47b608cc01146d3f3ab9398e")
        );

        assert_eq!(
            messages[1].message_id.as_deref(),
            Some("7b9f3c1e-0a4d-4e8b-b2c6-5d1e9f8a7c30")
        );
        let second = objects(&messages[1]);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].object.key, DIGEST_KEY);
        assert_eq!(second[0].disposition, Disposition::Skip(SkipObject::Digest));
        assert!(messages.iter().all(|m| !m.test_event));
    }

    #[test]
    fn sns_envelope_in_an_sqs_body_is_unwrapped() {
        let messages = parse_str(include_str!("../../../events/s3-ingest/sqs-sns-s3.json"));
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages[0].message_id.as_deref(),
            Some("d3b8a4f2-6c1e-4a7b-9e05-1f2c3d4e5a6b")
        );
        let objects = objects(&messages[0]);
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].object.bucket, BUCKET);
        assert_eq!(objects[0].object.key, TRAIL_KEY_2);
        assert_eq!(objects[0].object.size, Some(9127));
        assert_eq!(
            objects[0].object.etag.as_deref(),
            Some("2e9c6ad4729ca23042cf6be4c1dc5f6c")
        );
        assert_eq!(objects[0].disposition, Disposition::Read);
    }

    #[test]
    fn sns_records_straight_to_lambda_are_read_without_a_message_id() {
        let messages = parse_str(include_str!("../../../events/s3-ingest/sns-s3.json"));
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].message_id, None);
        let objects = objects(&messages[0]);
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].object.key, TRAIL_KEY_2);
        assert_eq!(objects[0].disposition, Disposition::Read);
    }

    #[test]
    fn eventbridge_sample_announces_the_object_with_its_version() {
        let messages = parse_str(include_str!(
            "../../../events/s3-ingest/eventbridge-object-created.json"
        ));
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].message_id, None);
        let objects = objects(&messages[0]);
        assert_eq!(objects.len(), 1);
        let object = &objects[0].object;
        assert_eq!(object.bucket, BUCKET);
        assert_eq!(object.key, TRAIL_KEY);
        assert_eq!(object.size, Some(18342));
        assert_eq!(
            object.etag.as_deref(),
            Some("0cc4293a47b608cc01146d3f3ab9398e")
        );
        assert_eq!(
            object.version_id.as_deref(),
            Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
        );
        assert_eq!(object.sequencer.as_deref(), Some("0065F43A8C1D2E3F4A"));
        assert_eq!(objects[0].disposition, Disposition::Read);
    }

    #[test]
    fn s3_test_event_is_acknowledged_with_no_objects() {
        let messages = parse_str(include_str!(
            "../../../events/s3-ingest/sqs-test-event.json"
        ));
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages[0].message_id.as_deref(),
            Some("a41c5b2e-8f3d-4e6a-9b7c-0d1e2f3a4b5c")
        );
        assert!(messages[0].test_event);
        assert_eq!(messages[0].objects, Ok(Vec::new()));
    }

    #[test]
    fn a_bad_sqs_body_fails_only_its_own_message() {
        let messages = parse_str(include_str!("../../../events/s3-ingest/sqs-mixed-bad.json"));
        assert_eq!(messages.len(), 2);

        assert_eq!(
            messages[0].message_id.as_deref(),
            Some("4c2d6e8f-1a3b-4c5d-8e7f-9a0b1c2d3e4f")
        );
        let good = objects(&messages[0]);
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].object.key, TRAIL_KEY_2);
        assert_eq!(good[0].disposition, Disposition::Read);

        assert_eq!(
            messages[1].message_id.as_deref(),
            Some("e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9")
        );
        assert!(!messages[1].test_event);
        let what = failure(&messages[1]);
        assert!(
            what.starts_with(
                "Records[1] (SQS messageId e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9): body is not JSON"
            ),
            "{what}"
        );
        assert!(!what.contains("hello"), "the body leaked: {what}");
    }

    // --- key decoding -----------------------------------------------------

    #[test]
    fn plus_is_a_space_and_percent_escapes_are_decoded() {
        assert_eq!(decode_key("a+b%2Bc").unwrap(), "a b+c");
        assert_eq!(decode_key("%41%2f%2F").unwrap(), "A//");
        assert_eq!(decode_key("caf%C3%A9+%E2%9C%93").unwrap(), "café ✓");
        assert_eq!(decode_key(TRAIL_KEY).unwrap(), TRAIL_KEY);
        // A decoded `%25` is a literal percent sign, not decoded again.
        assert_eq!(decode_key("100%2541").unwrap(), "100%41");
    }

    #[test]
    fn invalid_percent_encoding_is_an_error() {
        for bad in ["%zz", "abc%", "abc%4", "%4g", "%%41"] {
            let err = decode_key(bad).unwrap_err();
            assert_eq!(err.reason(), "bad_shape", "{bad}");
            assert!(
                err.to_string().contains("not valid URL encoding"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn keys_that_are_not_utf8_once_decoded_are_an_error() {
        for bad in ["%FF", "%C3%28", "a%E2%9C"] {
            let err = decode_key(bad).unwrap_err();
            assert!(err.to_string().contains("not UTF-8"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_badly_encoded_key_fails_its_message_and_names_the_field_not_the_key() {
        let event = s3_event("ObjectCreated:Put", "secret-name%zz.json.gz", 10);
        let messages = parse_str(&event);
        assert_eq!(messages.len(), 1);
        let what = failure(&messages[0]);
        assert_eq!(
            what,
            "Records[0].s3.object.key is not valid URL encoding (a `%` not followed by two hex digits)"
        );

        // Behind SQS, the message id and the body are named too.
        let batch = sqs_event(&[&event, &s3_event("ObjectCreated:Put", "ok.json.gz", 10)]);
        let messages = parse_str(&batch);
        let what = failure(&messages[0]);
        assert_eq!(
            what,
            "Records[0] (SQS messageId m-0): body: Records[0].s3.object.key is not valid URL \
             encoding (a `%` not followed by two hex digits)"
        );
        assert!(!what.contains("secret-name"));
        assert_eq!(objects(&messages[1])[0].object.key, "ok.json.gz");
    }

    // --- skip rules ---------------------------------------------------------

    #[test]
    fn digest_and_insight_segments_are_skipped() {
        assert_eq!(
            classify(DIGEST_KEY, Some(1021), Some("ObjectCreated:Put")),
            Disposition::Skip(SkipObject::Digest)
        );
        let insight = "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2024/03/15/\
                       111122223333_CloudTrail-Insight_us-east-1_20240315T1205Z_abc.json.gz";
        assert_eq!(
            classify(insight, Some(500), None),
            Disposition::Skip(SkipObject::Insight)
        );
        // Only a whole path segment counts, not a name that merely contains it.
        assert_eq!(
            classify("logs/CloudTrail-Digests/x.json.gz", Some(5), None),
            Disposition::Read
        );
    }

    #[test]
    fn folder_placeholders_are_skipped() {
        assert_eq!(
            classify("AWSLogs/111122223333/", Some(0), Some("ObjectCreated:Put")),
            Disposition::Skip(SkipObject::Folder)
        );
        assert_eq!(
            classify("AWSLogs/111122223333/", None, None),
            Disposition::Skip(SkipObject::Folder)
        );
        assert_eq!(
            classify(TRAIL_KEY, Some(0), Some("ObjectCreated:Put")),
            Disposition::Skip(SkipObject::Folder)
        );
        assert_eq!(classify(TRAIL_KEY, None, None), Disposition::Read);
    }

    #[test]
    fn events_other_than_object_created_are_skipped_first() {
        assert_eq!(
            classify(TRAIL_KEY, Some(10), Some("ObjectRemoved:Delete")),
            Disposition::Skip(SkipObject::NotCreated)
        );
        assert_eq!(
            classify(DIGEST_KEY, None, Some("ObjectRestore:Completed")),
            Disposition::Skip(SkipObject::NotCreated)
        );
        for created in [
            "ObjectCreated:Put",
            "ObjectCreated:CompleteMultipartUpload",
            "ObjectCreated:Copy",
        ] {
            assert_eq!(
                classify(TRAIL_KEY, Some(10), Some(created)),
                Disposition::Read
            );
        }
    }

    #[test]
    fn skip_reasons_have_stable_names() {
        let names: Vec<&str> = SkipObject::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["digest", "insight", "folder", "not_created"]);
        assert_eq!(SkipObject::NotCreated.to_string(), "not_created");
    }

    #[test]
    fn a_deletion_in_an_s3_event_is_a_skipped_object() {
        let messages = parse_str(&s3_event("ObjectRemoved:Delete", "a+b.json.gz", 0));
        let objects = objects(&messages[0]);
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].object.key, "a b.json.gz");
        assert_eq!(
            objects[0].disposition,
            Disposition::Skip(SkipObject::NotCreated)
        );
    }

    // --- source ids --------------------------------------------------------

    #[test]
    fn the_source_id_names_content_whatever_announced_it() {
        let key = "AWSLogs/x.json.gz";
        // GetObject and ListObjectsV2 quote ETags; notifications do not.
        assert_eq!(
            content_source_id(BUCKET, key, Some("\"abc123\"")),
            content_source_id(BUCKET, key, Some("abc123"))
        );
        assert_eq!(
            content_source_id(BUCKET, key, Some("abc123")),
            format!("s3://{BUCKET}/AWSLogs/x.json.gz#abc123")
        );
        // Other content under the same key is another id.
        assert_ne!(
            content_source_id(BUCKET, key, Some("abc123")),
            content_source_id(BUCKET, key, Some("def456"))
        );
        assert_eq!(
            content_source_id(BUCKET, key, Some("")),
            format!("s3://{BUCKET}/AWSLogs/x.json.gz")
        );
    }

    #[test]
    fn an_announced_id_prefers_the_etag_then_the_version_id() {
        let mut object = ObjectRef {
            bucket: BUCKET.to_owned(),
            key: "AWSLogs/x.json.gz".to_owned(),
            size: Some(1),
            etag: Some("\"abc123\"".to_owned()),
            version_id: Some("v1".to_owned()),
            sequencer: None,
        };
        assert_eq!(
            object.announced_source_id(),
            format!("s3://{BUCKET}/AWSLogs/x.json.gz#abc123")
        );
        object.etag = None;
        assert_eq!(
            object.announced_source_id(),
            format!("s3://{BUCKET}/AWSLogs/x.json.gz?versionId=v1")
        );
        object.version_id = None;
        assert_eq!(
            object.announced_source_id(),
            format!("s3://{BUCKET}/AWSLogs/x.json.gz")
        );
    }

    #[test]
    fn source_id_escapes_key_characters_that_would_make_it_ambiguous() {
        assert_eq!(
            content_source_id(BUCKET, "a?versionId=v1#e 100%", None),
            format!("s3://{BUCKET}/a%3FversionId=v1%23e 100%25")
        );
    }

    // --- EventBridge ----------------------------------------------------

    #[test]
    fn eventbridge_keys_are_taken_as_they_are() {
        let messages = parse_str(&eventbridge("Object Created", "aws.s3", "a+b%2Bc.json.gz"));
        let objects = objects(&messages[0]);
        assert_eq!(objects[0].object.key, "a+b%2Bc.json.gz");
        assert_eq!(objects[0].object.etag.as_deref(), Some("e1"));
        assert_eq!(objects[0].disposition, Disposition::Read);
    }

    #[test]
    fn eventbridge_detail_types_other_than_object_created_are_skipped_not_errors() {
        let messages = parse_str(&eventbridge("Object Deleted", "aws.s3", TRAIL_KEY));
        assert_eq!(messages.len(), 1);
        let objects = objects(&messages[0]);
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].object.key, TRAIL_KEY);
        assert_eq!(
            objects[0].disposition,
            Disposition::Skip(SkipObject::NotCreated)
        );

        // A detail that names no object gives no objects, and no error.
        let no_object = r#"{"version":"0","detail-type":"Object Access Tier Changed","source":"aws.s3","detail":{"version":"0"}}"#;
        let messages = parse_str(no_object);
        assert_eq!(messages[0].objects, Ok(Vec::new()));
        assert!(!messages[0].test_event);
    }

    #[test]
    fn eventbridge_digest_objects_are_skipped() {
        let messages = parse_str(&eventbridge("Object Created", "aws.s3", DIGEST_KEY));
        assert_eq!(
            objects(&messages[0])[0].disposition,
            Disposition::Skip(SkipObject::Digest)
        );
    }

    #[test]
    fn eventbridge_events_from_other_sources_or_without_a_key_fail_their_message() {
        let messages = parse_str(&eventbridge("Object Created", "aws.ec2", TRAIL_KEY));
        assert_eq!(
            failure(&messages[0]),
            "source of the EventBridge event is not aws.s3"
        );

        let no_key = r#"{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"size":3}}}"#;
        assert_eq!(
            failure(&parse_str(no_key)[0]),
            "detail.object.key is missing"
        );
    }

    #[test]
    fn eventbridge_event_in_an_sqs_body_is_read() {
        let body = eventbridge("Object Created", "aws.s3", TRAIL_KEY);
        let messages = parse_str(&sqs_event(&[&body]));
        assert_eq!(messages[0].message_id.as_deref(), Some("m-0"));
        assert_eq!(objects(&messages[0])[0].object.key, TRAIL_KEY);
    }

    // --- shapes and nesting -----------------------------------------------

    #[test]
    fn empty_records_is_no_messages() {
        assert_eq!(parse_str(r#"{"Records":[]}"#), Vec::new());
        // Inside a body, an empty S3 event is a message with no objects.
        let messages = parse_str(&sqs_event(&[r#"{"Records":[]}"#]));
        assert_eq!(messages[0].objects, Ok(Vec::new()));
    }

    #[test]
    fn top_level_garbage_is_an_error() {
        assert_eq!(parse_lambda_event(b""), Err(Error::Empty));
        assert_eq!(shape_error(b"[]"), "event is not a JSON object");
        assert_eq!(shape_error(b"5"), "event is not a JSON object");
        assert_eq!(shape_error(b"null"), "event is not a JSON object");
        assert_eq!(shape_error(b"\"Records\""), "event is not a JSON object");
        assert_eq!(shape_error(b"not json"), "event is not JSON");
        assert!(shape_error(b"{\"Records\":[").starts_with("event is JSON cut short"));
        assert!(shape_error(b"{\"Records\":[]} x").contains("trailing characters"));
        assert_eq!(shape_error(b"\xff\xfe{}"), "event is not UTF-8");
        assert!(shape_error(b"{}").starts_with("event is not an S3, SQS, SNS or EventBridge"));
        assert_eq!(
            shape_error(br#"{"Records":5}"#),
            "Records has an unexpected type or shape"
        );
        // A bare SNS envelope is not something Lambda sends.
        assert!(shape_error(br#"{"Type":"Notification","Message":"{}"}"#).contains("bare SNS"));
    }

    #[test]
    fn a_record_of_unknown_shape_fails_only_its_message() {
        let event = r#"{"Records":[
            5,
            {"eventSource":"aws:kinesis"},
            {"messageId":"m-0","body":"{\"Records\":[]}","eventSource":"aws:sqs"}]}"#;
        let messages = parse_str(event);
        assert_eq!(messages.len(), 3);
        assert_eq!(failure(&messages[0]), "Records[0] is not a JSON object");
        assert_eq!(
            failure(&messages[1]),
            "Records[1] is not an S3, SQS or SNS record"
        );
        assert_eq!(messages[2].message_id.as_deref(), Some("m-0"));
        assert_eq!(messages[2].objects, Ok(Vec::new()));
    }

    #[test]
    fn missing_and_mistyped_fields_are_named_by_path() {
        let no_key = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"size":1}}}]}"#;
        assert_eq!(
            failure(&parse_str(no_key)[0]),
            "Records[0].s3.object.key is missing"
        );
        let no_bucket = r#"{"Records":[{"eventSource":"aws:s3","s3":{"object":{"key":"k"}}}]}"#;
        assert_eq!(
            failure(&parse_str(no_bucket)[0]),
            "Records[0].s3.bucket.name is missing"
        );
        let string_size = r#"{"Records":[{"eventSource":"aws:s3","s3":{"bucket":{"name":"b"},"object":{"key":"k","size":"12345"}}}]}"#;
        let what = failure(&parse_str(string_size)[0]);
        assert_eq!(
            what,
            "Records[0].s3.object.size has an unexpected type or shape"
        );
        assert!(!what.contains("12345"));
        let empty_key = s3_event("ObjectCreated:Put", "", 1);
        assert_eq!(
            failure(&parse_str(&empty_key)[0]),
            "Records[0].s3.object.key is empty"
        );
    }

    #[test]
    fn sqs_record_without_a_body_fails_its_message_and_keeps_its_id() {
        let event = r#"{"Records":[{"messageId":"m-9","eventSource":"aws:sqs"}]}"#;
        let messages = parse_str(event);
        assert_eq!(messages[0].message_id.as_deref(), Some("m-9"));
        assert_eq!(
            failure(&messages[0]),
            "Records[0] (SQS messageId m-9): body is missing"
        );
    }

    #[test]
    fn s3_event_in_one_body_with_several_records_is_one_message() {
        let body = r#"{"Records":[
            {"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"one.json.gz","size":5}}},
            {"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"two/","size":0}}}]}"#;
        let messages = parse_str(&sqs_event(&[body]));
        assert_eq!(messages.len(), 1);
        let objects = objects(&messages[0]);
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].disposition, Disposition::Read);
        assert_eq!(
            objects[1].disposition,
            Disposition::Skip(SkipObject::Folder)
        );
    }

    #[test]
    fn nesting_deeper_than_sns_in_sqs_is_refused() {
        // SNS envelope inside an SNS envelope inside SQS.
        let s3 = s3_event("ObjectCreated:Put", "k.json.gz", 5);
        let sns = serde_json::json!({"Type": "Notification", "Message": s3}).to_string();
        let sns_in_sns = serde_json::json!({"Type": "Notification", "Message": sns}).to_string();
        let messages = parse_str(&sqs_event(&[&sns, &sns_in_sns]));
        assert_eq!(objects(&messages[0])[0].object.key, "k.json.gz");
        let what = failure(&messages[1]);
        assert!(
            what.contains("SNS envelope where none is accepted"),
            "{what}"
        );

        // An SQS batch inside an SQS body.
        let sqs_in_sqs = sqs_event(&[&sqs_event(&[&s3])]);
        let what = failure(&parse_str(&sqs_in_sqs)[0]);
        assert_eq!(
            what,
            "Records[0] (SQS messageId m-0): body: Records[0] is an SQS or SNS record nested \
             deeper than accepted"
        );
    }

    #[test]
    fn sns_subscription_confirmation_fails_its_message() {
        let confirmation = r#"{"Type":"SubscriptionConfirmation","MessageId":"x","Message":"You have chosen to subscribe","SubscribeURL":"https://example.com"}"#;
        let messages = parse_str(&sqs_event(&[confirmation]));
        let what = failure(&messages[0]);
        assert!(
            what.starts_with(
                "Records[0] (SQS messageId m-0): body: SNS Message: SNS SubscriptionConfirmation"
            ),
            "{what}"
        );
        assert!(!what.contains("https://"));
    }

    #[test]
    fn test_event_behind_sns_is_acknowledged_too() {
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-03-15T11:58:02.264Z","Bucket":"b","RequestId":"r","HostId":"h"}"#;
        let sns = serde_json::json!({"Type": "Notification", "Message": test}).to_string();
        let messages = parse_str(&sqs_event(&[&sns]));
        assert!(messages[0].test_event);
        assert_eq!(messages[0].objects, Ok(Vec::new()));
    }

    #[test]
    fn an_sns_message_that_is_not_cloudtrails_is_foreign_not_a_failure() {
        let plain = serde_json::json!({"Type": "Notification", "Message": "deploy finished"});
        let other = serde_json::json!({"Type": "Notification", "Message": "{\"alarm\":\"cpu\"}"});
        let messages = parse_str(&sqs_event(&[&plain.to_string(), &other.to_string()]));
        for message in &messages {
            assert!(message.foreign, "{message:?}");
            assert!(objects(message).is_empty());
        }
        // Straight from SNS too.
        let direct = serde_json::json!({"Records": [{"EventSource": "aws:sns",
            "Sns": {"Type": "Notification", "MessageId": "n-1", "Message": "hello"}}]});
        let messages = parse_str(&direct.to_string());
        assert!(messages[0].foreign);
        // A broken CloudTrail notice is CloudTrail's, so it still fails.
        let broken = serde_json::json!({"Type": "Notification",
            "Message": serde_json::json!({"s3Bucket": "", "s3ObjectKey": ["k"]}).to_string()});
        let messages = parse_str(&sqs_event(&[&broken.to_string()]));
        assert!(!messages[0].foreign);
        assert!(failure(&messages[0]).contains("s3Bucket is empty"));
    }

    #[test]
    fn cloudtrail_sns_notification_announces_plain_keys() {
        let notice = serde_json::json!({
            "s3Bucket": BUCKET,
            "s3ObjectKey": [TRAIL_KEY, "prefix with+plus/AWSLogs/x.json.gz"],
        })
        .to_string();
        let sns = serde_json::json!({"Type": "Notification", "Message": notice}).to_string();
        let messages = parse_str(&sqs_event(&[&sns]));
        let objects = objects(&messages[0]);
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].object.key, TRAIL_KEY);
        assert_eq!(objects[1].object.key, "prefix with+plus/AWSLogs/x.json.gz");
        assert_eq!(
            objects[0].object.announced_source_id(),
            format!("s3://{BUCKET}/{TRAIL_KEY}")
        );
        assert!(objects.iter().all(|a| a.disposition == Disposition::Read));
    }

    #[test]
    fn an_unknown_body_fails_its_message_without_quoting_it() {
        let messages = parse_str(&sqs_event(&[r#"{"greeting":"hello there"}"#, "[1,2]"]));
        let what = failure(&messages[0]);
        assert!(
            what.ends_with(
                "body is not an S3 event, SNS notification, EventBridge event or s3:TestEvent"
            ),
            "{what}"
        );
        assert!(!what.contains("hello"));
        assert_eq!(
            failure(&messages[1]),
            "Records[1] (SQS messageId m-1): body is not a JSON object"
        );
    }

    #[test]
    fn deeply_nested_garbage_is_an_error_not_a_crash() {
        let deep = format!(
            "{{\"Records\":[{}{}]}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let messages = parse_str(&deep);
        assert_eq!(failure(&messages[0]), "Records[0] is not a JSON object");
        let deep = format!(
            "{{\"Records\":[{{\"s3\":{{\"bucket\":{}{}}}}}]}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let what = failure(&parse_str(&deep)[0]);
        assert!(what.starts_with("Records[0]"), "{what}");
        let body = "[".repeat(100_000);
        let messages = parse_str(&sqs_event(&[&body]));
        assert!(failure(&messages[0]).contains("body is not"));
    }
}
