//! The fast path for reading one CloudTrail record into a [`RecordView`].
//!
//! Most of a record is values ddb-audit never reads (item keys, response
//! elements, TLS details). serde_json passes over them at about a dozen
//! instructions a byte; this scanner checks them just as strictly but in
//! bulk, and fills the view from the few fields attribution reads.
//!
//! It only answers when it is sure. Anything out of the ordinary makes it
//! give up (`None`) and the record is read by serde_json as before, which
//! then decides, and words, what is wrong: a `\u` escape anywhere, a read
//! field of another JSON type or given twice, a key with an escape, nesting
//! deeper than [`MAX_DEPTH`], JSON that is invalid or that ends before the
//! record does. So when it does answer, the view is the one serde_json
//! would have built from the same bytes (the unit tests, a differential
//! property test and the `record` fuzz target hold it to that), and every
//! error is still serde_json's.
//!
//! The item lists of batch and transaction calls in `requestParameters` are
//! checked here and then read by the serde implementation from their own
//! bytes, so that their rules live in one place.

use std::borrow::Cow;

use crate::record::{
    is_item_list, Flag, OnBehalfOf, RecordView, RequestParameters, Resource, SessionContext,
    SessionIssuer, Text, UserIdentity,
};

/// Nesting deeper than this is left to serde_json.
pub const MAX_DEPTH: usize = 64;

/// Reads the record at the start of `text` (which must start with `{`; more
/// may follow it). Returns the view and the record's length in bytes, or
/// `None` when serde_json should read it instead.
pub fn record(text: &str) -> Option<(RecordView<'_>, usize)> {
    let mut cur = Cursor {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let view = cur.fields(|cur, key, view: &mut RecordView<'_>, seen| match key {
        "eventSource" => cur.text_once(seen, 0, &mut view.event_source),
        "eventName" => cur.text_once(seen, 1, &mut view.event_name),
        "eventTime" => cur.text_once(seen, 2, &mut view.event_time),
        "eventID" => cur.text_once(seen, 3, &mut view.event_id),
        "awsRegion" => cur.text_once(seen, 4, &mut view.aws_region),
        "recipientAccountId" => cur.text_once(seen, 5, &mut view.recipient_account_id),
        "errorCode" => cur.text_once(seen, 6, &mut view.error_code),
        "sourceIPAddress" => cur.text_once(seen, 7, &mut view.source_ip_address),
        "userAgent" => cur.text_once(seen, 8, &mut view.user_agent),
        "vpcEndpointId" => cur.text_once(seen, 9, &mut view.vpc_endpoint_id),
        "sessionCredentialFromConsole" => cur.once(
            seen,
            10,
            &mut view.session_credential_from_console,
            Cursor::flag,
        ),
        "userIdentity" => cur.once(seen, 11, &mut view.user_identity, Cursor::user_identity),
        "requestParameters" => cur.once(
            seen,
            12,
            &mut view.request_parameters,
            Cursor::request_parameters,
        ),
        "resources" => cur.once(seen, 13, &mut view.resources, Cursor::resources),
        _ => cur.skip(1),
    })??;
    Some((view, cur.at))
}

/// The fields of an object read so far (bit `n` for the `n`th).
#[derive(Default)]
struct Seen(u32);

impl Seen {
    /// Marks field `bit` read. A field given twice is an error for serde's
    /// derived readers: give up.
    fn first(&mut self, bit: u32) -> Option<()> {
        if self.0 & (1 << bit) != 0 {
            return None;
        }
        self.0 |= 1 << bit;
        Some(())
    }
}

struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A container from `open` to `close` whose elements, separated by
    /// commas, `element` reads (the cursor on each).
    fn list(
        &mut self,
        open: u8,
        close: u8,
        mut element: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(open)?;
        self.ws();
        if self.eat(close).is_some() {
            return Some(());
        }
        loop {
            element(self)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.ws();
                }
                b if b == close => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An object; `field` reads each value (the cursor is on it) given its
    /// key. Keys with escapes make the scanner give up.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.list(b'{', b'}', |cur| {
            let key = cur.plain_string()?;
            cur.ws();
            cur.eat(b':')?;
            cur.ws();
            field(cur, key)
        })
    }

    /// A string without escapes: its contents.
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.at + 1;
        if self.string()? {
            return None;
        }
        self.text.get(start..self.at - 1)
    }

    /// Passes over a string (the cursor is on its `"`), checking it as JSON.
    /// Returns whether it had escapes.
    fn string(&mut self) -> Option<bool> {
        let bytes = self.bytes;
        let mut at = self.at;
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        at += 1;
        let mut escaped = false;
        loop {
            let (found, quote) = special_at(bytes.get(at..)?)?;
            at += found;
            if quote {
                self.at = at + 1;
                return Some(escaped);
            }
            match bytes.get(at)? {
                // `\u` escapes (and surrogate pairs) are left to serde_json.
                b'\\' => match bytes.get(at + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => at += 2,
                    _ => return None,
                },
                // A control character, which JSON strings must escape.
                _ => return None,
            }
            escaped = true;
        }
    }

    /// An optional string field: `null` or a string, borrowed unless it has
    /// escapes (PartiQL statements quote table names: `\"orders\"`).
    fn text(&mut self) -> Option<Option<Text<'a>>> {
        if self.null() {
            return Some(None);
        }
        let start = self.at + 1;
        let escaped = self.string()?;
        let raw = self.text.get(start..self.at - 1)?;
        Some(Some(Text(if escaped {
            Cow::Owned(unescape(raw)?)
        } else {
            Cow::Borrowed(raw)
        })))
    }

    /// `null`, passed over.
    fn null(&mut self) -> bool {
        let is_null = self.bytes.get(self.at..self.at + 4) == Some(b"null");
        if is_null {
            self.at += 4;
        }
        is_null
    }

    /// `sessionCredentialFromConsole`: a boolean or a string, as [`Flag`] reads it.
    fn flag(&mut self) -> Option<Option<Flag>> {
        if self.null() {
            return Some(None);
        }
        for (word, value) in [(&b"true"[..], true), (&b"false"[..], false)] {
            if self.bytes.get(self.at..self.at + word.len()) == Some(word) {
                self.at += word.len();
                return Some(Some(Flag(value)));
            }
        }
        let text = self.plain_string()?;
        Some(Some(Flag(text.eq_ignore_ascii_case("true"))))
    }

    /// An optional object: `null`, or an object whose fields `field` reads
    /// into a `T` (the cursor on the value, given its key).
    fn fields<T: Default>(
        &mut self,
        mut field: impl FnMut(&mut Self, &'a str, &mut T, &mut Seen) -> Option<()>,
    ) -> Option<Option<T>> {
        if self.null() {
            return Some(None);
        }
        let mut value = T::default();
        let mut seen = Seen::default();
        self.object(|cur, key| field(cur, key, &mut value, &mut seen))?;
        Some(Some(value))
    }

    /// A field which may be given once (bit `bit` of `seen`), read by `read`
    /// into `slot`.
    fn once<T>(
        &mut self,
        seen: &mut Seen,
        bit: u32,
        slot: &mut T,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<()> {
        seen.first(bit)?;
        *slot = read(self)?;
        Some(())
    }

    /// A string field, which may be given once.
    fn text_once(&mut self, seen: &mut Seen, bit: u32, slot: &mut Option<Text<'a>>) -> Option<()> {
        self.once(seen, bit, slot, Self::text)
    }

    fn user_identity(&mut self) -> Option<Option<UserIdentity<'a>>> {
        self.fields(|cur, key, who: &mut UserIdentity<'a>, seen| match key {
            "type" => cur.text_once(seen, 0, &mut who.kind),
            "arn" => cur.text_once(seen, 1, &mut who.arn),
            "principalId" => cur.text_once(seen, 2, &mut who.principal_id),
            "accountId" => cur.text_once(seen, 3, &mut who.account_id),
            "invokedBy" => cur.text_once(seen, 4, &mut who.invoked_by),
            "userName" => cur.text_once(seen, 5, &mut who.user_name),
            "sessionContext" => cur.once(seen, 6, &mut who.session_context, Self::session_context),
            "onBehalfOf" => cur.once(seen, 7, &mut who.on_behalf_of, Self::on_behalf_of),
            _ => cur.skip(2),
        })
    }

    fn session_context(&mut self) -> Option<Option<SessionContext<'a>>> {
        self.fields(
            |cur, key, context: &mut SessionContext<'a>, seen| match key {
                "sessionIssuer" => {
                    cur.once(seen, 0, &mut context.session_issuer, Self::session_issuer)
                }
                _ => cur.skip(3),
            },
        )
    }

    fn on_behalf_of(&mut self) -> Option<Option<OnBehalfOf<'a>>> {
        self.fields(|cur, key, behalf: &mut OnBehalfOf<'a>, seen| match key {
            "userId" => cur.text_once(seen, 0, &mut behalf.user_id),
            _ => cur.skip(3),
        })
    }

    fn session_issuer(&mut self) -> Option<Option<SessionIssuer<'a>>> {
        self.fields(|cur, key, issuer: &mut SessionIssuer<'a>, seen| match key {
            "type" => cur.text_once(seen, 0, &mut issuer.kind),
            "arn" => cur.text_once(seen, 1, &mut issuer.arn),
            "userName" => cur.text_once(seen, 2, &mut issuer.user_name),
            _ => cur.skip(4),
        })
    }

    /// `requestParameters`. Its fields are found as
    /// [`RequestParameters::slot`] finds them; item lists (batch and
    /// transaction calls) have rules of their own, so a value holding one is
    /// checked here and then read by the serde implementation from its bytes.
    fn request_parameters(&mut self) -> Option<Option<RequestParameters<'a>>> {
        if self.null() {
            return Some(None);
        }
        let start = self.at;
        let mut params = RequestParameters::default();
        let mut lists = false;
        self.object(|cur, key| match params.slot(key) {
            Some(slot) if slot.is_none() => {
                *slot = cur.text()?;
                Some(())
            }
            _ => {
                lists |= is_item_list(key);
                cur.skip(2)
            }
        })?;
        if lists {
            let json = self.text.get(start..self.at)?;
            return serde_json::from_str(json).ok().map(Some);
        }
        Some(Some(params))
    }

    /// `resources`: a list of objects with a `type` and an `ARN` (or `arn`).
    fn resources(&mut self) -> Option<Option<Vec<Resource<'a>>>> {
        if self.null() {
            return Some(None);
        }
        let mut resources = Vec::new();
        self.list(b'[', b']', |cur| {
            // Elements are objects: `null` or an array (which serde would
            // read by position) are left to serde_json.
            let resource =
                cur.fields(|cur, key, resource: &mut Resource<'a>, seen| match key {
                    "type" => cur.text_once(seen, 0, &mut resource.kind),
                    "ARN" | "arn" => cur.text_once(seen, 1, &mut resource.arn),
                    _ => cur.skip(3),
                })??;
            resources.push(resource);
            Some(())
        })?;
        Some(Some(resources))
    }

    /// Passes over any value, checking it as JSON. `depth` counts the
    /// containers around it.
    fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' if depth < MAX_DEPTH => self.object(|cur, _| cur.skip(depth + 1)),
            b'[' if depth < MAX_DEPTH => self.array(depth + 1),
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        self.list(b'[', b']', |cur| cur.skip(depth))
    }

    fn word(&mut self, word: &[u8]) -> Option<()> {
        (self.bytes.get(self.at..self.at + word.len())? == word).then(|| self.at += word.len())
    }

    /// A JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        if self.peek()? == b'.' {
            self.at += 1;
            self.digits()?;
        }
        if let b'e' | b'E' = self.peek()? {
            self.at += 1;
            if let b'+' | b'-' = self.peek()? {
                self.at += 1;
            }
            self.digits()?;
        }
        // A number is complete only when something follows it.
        self.peek().map(drop)
    }

    /// One or more digits.
    fn digits(&mut self) -> Option<()> {
        let n = self
            .bytes
            .get(self.at..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        (n > 0).then(|| self.at += n)
    }
}

/// The text of a JSON string with the escapes [`Cursor::string`] lets
/// through (`\u` is not one of them).
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            c @ ('"' | '\\' | '/') => c,
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            _ => return None,
        });
    }
    Some(out)
}

/// Where in `bytes` the first `"`, `\\` or control character is, and
/// whether it is the `"`: sixteen bytes at a time (SSE2, which every x86-64
/// processor has).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn special_at(bytes: &[u8]) -> Option<(usize, bool)> {
    // SAFETY: SSE2 is part of x86-64 itself, so every processor this code
    // runs on has it.
    unsafe { special_at_sse2(bytes) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn special_at_sse2(bytes: &[u8]) -> Option<(usize, bool)> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let control = _mm_set1_epi8(0x1f);
    let mut chunks = bytes.chunks_exact(16);
    let mut at = 0;
    for chunk in &mut chunks {
        // SAFETY: `chunk` is 16 readable bytes; the load is unaligned.
        let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>()) };
        let quotes = _mm_cmpeq_epi8(v, quote);
        let hits = _mm_or_si128(
            _mm_or_si128(quotes, _mm_cmpeq_epi8(v, backslash)),
            // max(v, 0x1f) == 0x1f: v is at most 0x1f, unsigned.
            _mm_cmpeq_epi8(_mm_max_epu8(v, control), control),
        );
        let mask = _mm_movemask_epi8(hits) as u32;
        if mask != 0 {
            // The kind of the first special byte, from the masks: no second
            // look at the byte, which would wait on the search.
            let first = mask & mask.wrapping_neg();
            let is_quote = _mm_movemask_epi8(quotes) as u32 & first != 0;
            return Some((at + mask.trailing_zeros() as usize, is_quote));
        }
        at += 16;
    }
    let rest = chunks.remainder();
    special_at_swar(rest).map(|i| (at + i, rest.get(i) == Some(&b'"')))
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn special_at(bytes: &[u8]) -> Option<(usize, bool)> {
    special_at_swar(bytes).map(|i| (i, bytes.get(i) == Some(&b'"')))
}

/// [`special_at`], eight bytes at a time.
#[inline(always)]
fn special_at_swar(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // The lowest byte flagged is exact: a zero byte of `quote` or
        // `backslash`, or a byte below 0x20 of `w`.
        let flags = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | w.wrapping_sub(ONES * 0x20) & !w)
            & HIGH;
        if flags != 0 {
            return Some(at + (flags.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scanner's answer, if any, must be serde_json's.
    fn agrees(json: &str) -> bool {
        let by_serde = serde_json::Deserializer::from_str(json)
            .into_iter::<RecordView<'_>>()
            .next();
        match record(json) {
            Some((view, len)) => {
                let mut stream =
                    serde_json::Deserializer::from_str(json).into_iter::<RecordView<'_>>();
                let Some(Ok(expected)) = stream.next() else {
                    panic!("the scanner read {json:?}, which serde_json refuses: {by_serde:?}");
                };
                assert_eq!(format!("{view:?}"), format!("{expected:?}"), "{json}");
                assert_eq!(len, stream.byte_offset(), "{json}");
                true
            }
            None => false,
        }
    }

    const RECORD: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROA:s","arn":"arn:aws:sts::111122223333:assumed-role/app/s","accountId":"111122223333","accessKeyId":"ASIAX","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROA","arn":"arn:aws:iam::111122223333:role/app","accountId":"111122223333","userName":"app"},"attributes":{"creationDate":"2024-03-15T12:00:00Z","mfaAuthenticated":"false"}},"invokedBy":"lambda.amazonaws.com"},"eventTime":"2024-03-15T12:05:09Z","eventSource":"dynamodb.amazonaws.com","eventName":"BatchWriteItem","awsRegion":"eu-west-1","sourceIPAddress":"10.0.0.1","userAgent":"aws-sdk-java/2.20 (quoted)","note":"a \"quoted\" word","requestParameters":{"requestItems":{"orders":[{"putRequest":{"item":{"pk":{"S":"secret"}}}}],"arn:aws:dynamodb:eu-west-1:111122223333:table/audit":{"keys":[{"n":-1.5e+3}]}}},"responseElements":null,"requestID":"R","eventID":"e-1","readOnly":false,"resources":[{"accountId":"111122223333","type":"AWS::DynamoDB::Table","ARN":"arn:aws:dynamodb:eu-west-1:111122223333:table/orders"}],"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"111122223333","eventCategory":"Data","tlsDetails":{"tlsVersion":"TLSv1.3","clientProvidedHostHeader":"dynamodb.eu-west-1.amazonaws.com"},"sessionCredentialFromConsole":"true","list":[1,0,-0.5,true,false,null,[],{}," \\ \/ \n "]}"#;

    #[test]
    fn a_full_record_reads_as_serde_json_reads_it() {
        assert!(agrees(RECORD));
        let followed = format!("{RECORD},\n{{\"eventName\":\"x\"}}]}}");
        assert!(agrees(&followed));
        assert_eq!(record(&followed).map(|(_, len)| len), Some(RECORD.len()));
    }

    #[test]
    fn the_scanner_answers_for_ordinary_records() {
        for json in [
            r#"{}"#,
            r#"{ "eventName" : "GetItem" , "userIdentity" : null }"#,
            r#"{"sessionCredentialFromConsole":false,"eventID":null,"resources":null}"#,
            r#"{"userIdentity":{"type":"IAMUser","userName":"ci","onBehalfOf":{"userId":"u-1"}}}"#,
            r#"{"requestParameters":{"TableName":"a","tableName":"b","INDEXNAME":null,"indexName":"i"}}"#,
            r#"{"requestParameters":{"transactItems":[{"Put":{"TableName":"d"}},5],"statement":"s"}}"#,
            r#"{"requestParameters":{},"resources":[]}"#,
            r#"{"eventName":"Get\"Item","userAgent":"a\\b\/c\b\f\n\r\t"}"#,
            r#"{"requestParameters":{"statement":"SELECT * FROM \"orders\" WHERE a = ?"}}"#,
            r#"{"resources":[{"type":"T","arn":"a"},{"ARN":"b","accountId":"1"},{}]}"#,
        ] {
            assert!(agrees(json), "{json}");
        }
    }

    #[test]
    fn it_gives_up_on_whatever_serde_json_must_judge() {
        for json in [
            // `\u` anywhere, escaped keys.
            r#"{"other":"\u0041"}"#,
            r#"{"eventName":"Get\u0049tem"}"#,
            r#"{"event\u004eame":"GetItem"}"#,
            // Wrong types, duplicates, arrays for structs.
            r#"{"eventName":5}"#,
            r#"{"eventName":"a","eventName":"b"}"#,
            r#"{"eventName":null,"eventName":"b"}"#,
            r#"{"userIdentity":["AssumedRole"]}"#,
            r#"{"requestParameters":"tableName"}"#,
            r#"{"resources":{"ARN":"x"}}"#,
            r#"{"resources":[{"ARN":"a","arn":"b"}]}"#,
            r#"{"resources":[["T","a"]]}"#,
            r#"{"requestParameters":{"tableName":5}}"#,
            r#"{"requestParameters":{"requestItems":"orders"}}"#,
            r#"{"sessionCredentialFromConsole":1}"#,
            // Invalid JSON.
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1,}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":"\x"}"#,
            r#"{'a':1}"#,
            // Cut short.
            r#"{"eventName":"GetItem""#,
            r#"{"a":12"#,
            r#"{"a":"#,
        ] {
            assert!(
                !agrees(json),
                "the scanner should leave {json} to serde_json"
            );
        }
    }

    #[test]
    fn special_bytes_are_found_wherever_they_are() {
        // Either side of the 16-byte (SSE2) and 8-byte steps and their remainders.
        for len in 0..50 {
            for special in [b'"', b'\\', b'\n', 0x1f, 0] {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    // Bytes that must not be flagged: above 0x7f, and just
                    // above each special byte.
                    bytes.iter_mut().step_by(3).for_each(|b| *b = 0xc3);
                    bytes.iter_mut().skip(1).step_by(5).for_each(|b| *b = b'#');
                    bytes.iter_mut().skip(2).step_by(7).for_each(|b| *b = 0x20);
                    bytes.iter_mut().skip(3).step_by(11).for_each(|b| *b = 0xff);
                    bytes[at] = special;
                    let expected = Some((at, special == b'"'));
                    assert_eq!(special_at(&bytes), expected, "{bytes:?}");
                    assert_eq!(special_at_swar(&bytes), Some(at), "{bytes:?}");
                    bytes.extend_from_slice(b"\"tail");
                    assert_eq!(special_at(&bytes), expected, "{bytes:?}");
                }
            }
            let plain = vec![0xe2; len];
            assert_eq!(special_at(&plain), None);
            assert_eq!(special_at_swar(&plain), None);
        }
    }

    #[test]
    fn deep_nesting_is_left_to_serde_json() {
        let deep = format!(
            "{{\"a\":{}{}}}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert!(!agrees(&deep));
        let shallow = format!(
            "{{\"a\":{}{}}}",
            "[".repeat(MAX_DEPTH - 2),
            "]".repeat(MAX_DEPTH - 2)
        );
        assert!(agrees(&shallow));
    }

    #[test]
    fn every_prefix_of_a_record_is_left_to_serde_json() {
        for cut in 0..RECORD.len() {
            if let Some(prefix) = RECORD.get(..cut) {
                assert!(record(prefix).is_none(), "answered for {cut} bytes");
            }
        }
    }
}
