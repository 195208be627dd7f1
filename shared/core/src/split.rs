//! Finding the records of a CloudTrail file in a stream of JSON bytes, one
//! at a time, so that a file of any size is read in bounded memory.
//!
//! A CloudTrail file is `{"Records":[record, record, ...]}`. The [`Splitter`]
//! recognises that envelope, walks the separators between records and hands
//! each record's bytes to [`Elements::element`], which parses it and says how
//! long it was (or that the bytes end before it does, when more must be read
//! first). The caller keeps only the bytes not consumed yet: at most one
//! record, since a record longer than the record limit is passed over
//! ([`Elements::oversize`]) by a small scanner that keeps nothing.
//!
//! A document that does not start like a CloudTrail file (a CloudWatch Logs
//! event, `{"foo":1,"Records":[...]}`, not JSON at all) is not split: the
//! splitter says [`Splitter::is_whole`] and the caller reads it whole, as
//! before. Whatever follows the `Records` array (CloudTrail writes only `}`)
//! is handed back by [`Splitter::finish`] to be read the same way.

use crate::Error;

/// What follows the `Records` array may be at most this long (CloudTrail
/// writes one `}`); more is refused rather than held.
pub const MAX_TAIL_BYTES: usize = 1024 * 1024;

/// The per-record side of splitting: parses and counts each element of
/// `Records`.
pub(crate) trait Elements {
    /// Element `index` starts at `text`'s first byte (never whitespace);
    /// `text` may go on past its end. Returns the element's length in bytes,
    /// or `None` when `text` ends before the element does. An error makes
    /// the whole input unreadable (invalid JSON). `eof`: nothing follows.
    fn element(&mut self, index: u64, text: &str, eof: bool) -> Result<Option<usize>, Error>;

    /// Element `index` was `len` bytes, over the record limit, and was passed
    /// over without being parsed.
    fn oversize(&mut self, index: u64, len: u64);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not yet known whether the document starts with `{"Records":[`.
    Sniff,
    /// Before an element (or, when `first`, the `]` of an empty array).
    Before { first: bool },
    /// After an element: a `,` or the `]`.
    After,
    /// Inside an oversize element, passing over it.
    Skipping(Skip),
    /// After the `]`: the rest of the document, for [`Splitter::finish`].
    Tail,
    /// Not a document to split: the caller reads it whole.
    Whole,
}

/// The state of the scanner that passes over an oversize element.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Skip {
    /// Bytes of the element passed over so far.
    len: u64,
    /// Open `{` and `[`.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// A bare scalar (number, literal): ends at the next delimiter.
    scalar: bool,
}

/// How the document ended, from [`Splitter::finish`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// `}` after the `Records` array: every record has been handed out.
    Done,
    /// The document was not split: read all of it whole.
    Whole,
    /// The array is followed by more members: read `{"Records":[]` followed
    /// by these bytes whole (they are at most [`MAX_TAIL_BYTES`]).
    Tail,
}

/// Splits one document. Feed it the bytes not consumed yet with
/// [`Splitter::split`], as often as more arrive, then [`Splitter::finish`].
#[derive(Debug)]
pub(crate) struct Splitter {
    phase: Phase,
    /// Elements handed out so far.
    index: u64,
    /// Bytes consumed so far: where the next `split` starts in the document.
    offset: u64,
    max_record_bytes: usize,
}

const PREFIX: [&[u8]; 4] = [b"{", b"\"Records\"", b":", b"["];

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

fn skip_ws(data: &[u8], mut at: usize) -> usize {
    while at < data.len() && is_ws(data[at]) {
        at += 1;
    }
    at
}

/// Whether `data` starts with `{"Records":[` (whitespace allowed between
/// the tokens): `Some(len)` if it does, `Some(0)` if it cannot, `None` if
/// more bytes are needed to tell.
fn sniff(data: &[u8]) -> Option<usize> {
    let mut at = 0;
    for token in PREFIX {
        at = skip_ws(data, at);
        let have = &data[at.min(data.len())..];
        let n = have.len().min(token.len());
        if have[..n] != token[..n] {
            return Some(0);
        }
        if n < token.len() {
            return None;
        }
        at += token.len();
    }
    Some(at)
}

impl Splitter {
    pub(crate) fn new(max_record_bytes: usize) -> Self {
        Splitter {
            phase: Phase::Sniff,
            index: 0,
            offset: 0,
            max_record_bytes,
        }
    }

    /// True once the document is known not to be split: the caller keeps
    /// every byte and reads the document whole.
    pub(crate) fn is_whole(&self) -> bool {
        self.phase == Phase::Whole
    }

    /// True once the `Records` array has ended: what follows is for
    /// [`Splitter::finish`].
    pub(crate) fn is_after_records(&self) -> bool {
        self.phase == Phase::Tail
    }

    /// True while an oversize element is being passed over: every byte
    /// given to [`Splitter::split`] up to its end is consumed, none kept.
    #[cfg(test)]
    pub(crate) fn is_skipping(&self) -> bool {
        matches!(self.phase, Phase::Skipping(_))
    }

    /// Hands out the complete elements in `data` (the bytes not consumed
    /// yet; `eof` when no more will come) and returns how many bytes were
    /// consumed. The rest must be given again, with more after it.
    pub(crate) fn split<E: Elements>(
        &mut self,
        text: &str,
        eof: bool,
        elements: &mut E,
    ) -> Result<usize, Error> {
        let mut at = 0;
        let result = self.run(text, eof, elements, &mut at);
        self.offset += at as u64;
        result.map(|()| at)
    }

    fn run<E: Elements>(
        &mut self,
        text: &str,
        eof: bool,
        elements: &mut E,
        at: &mut usize,
    ) -> Result<(), Error> {
        let data = text.as_bytes();
        loop {
            match self.phase {
                Phase::Whole | Phase::Tail => return Ok(()),
                Phase::Sniff => match sniff(data) {
                    Some(0) => {
                        self.phase = Phase::Whole;
                        return Ok(());
                    }
                    Some(len) => {
                        *at = len;
                        self.phase = Phase::Before { first: true };
                    }
                    None if eof => {
                        self.phase = Phase::Whole;
                        return Ok(());
                    }
                    None => return Ok(()),
                },
                Phase::Before { first } => {
                    *at = skip_ws(data, *at);
                    let Some(&b) = data.get(*at) else {
                        return self.more(eof);
                    };
                    if first && b == b']' {
                        *at += 1;
                        self.phase = Phase::Tail;
                        return Ok(());
                    }
                    // `b` is ASCII, so a character starts here.
                    let rest = text.get(*at..).unwrap_or_default();
                    // A bare number at the end of what has arrived may go on
                    // in the next bytes.
                    let parsed = if !eof
                        && (b == b'-' || b.is_ascii_digit())
                        && !scalar_ends(rest.as_bytes())
                    {
                        None
                    } else {
                        elements.element(self.index, rest, eof)?
                    };
                    match parsed {
                        Some(len) => {
                            *at += len;
                            self.index += 1;
                            self.phase = Phase::After;
                        }
                        // Over the limit already: pass over it from its start.
                        None if rest.len() > self.max_record_bytes => {
                            self.phase = Phase::Skipping(Skip::default());
                        }
                        None => return self.more(eof),
                    }
                }
                Phase::After => {
                    *at = skip_ws(data, *at);
                    match data.get(*at) {
                        None => return self.more(eof),
                        Some(b',') => {
                            *at += 1;
                            self.phase = Phase::Before { first: false };
                        }
                        Some(b']') => {
                            *at += 1;
                            self.phase = Phase::Tail;
                            return Ok(());
                        }
                        Some(_) => {
                            return Err(self.invalid(*at, "expected `,` or `]` after a record"))
                        }
                    }
                }
                Phase::Skipping(mut skip) => {
                    let (used, done) = skip.scan(&data[*at..]);
                    *at += used;
                    if done {
                        elements.oversize(self.index, skip.len);
                        self.index += 1;
                        self.phase = Phase::After;
                    } else {
                        self.phase = Phase::Skipping(skip);
                        return self.more(eof);
                    }
                }
            }
        }
    }

    fn more(&self, eof: bool) -> Result<(), Error> {
        if eof {
            Err(self.cut_short())
        } else {
            Ok(())
        }
    }

    fn cut_short(&self) -> Error {
        Error::shape(format!(
            "field `Records`: JSON cut short after {} records",
            self.index
        ))
    }

    fn invalid(&self, at: usize, what: &str) -> Error {
        Error::shape(format!(
            "field `Records`: invalid JSON at byte {}: {what}",
            self.offset + at as u64
        ))
    }

    /// After the last [`Splitter::split`] (with `eof`), with the bytes it did
    /// not consume: how the document ended.
    pub(crate) fn finish(&self, rest: &[u8]) -> Result<End, Error> {
        match self.phase {
            Phase::Whole | Phase::Sniff => Ok(End::Whole),
            Phase::Tail => {
                let at = skip_ws(rest, 0);
                if rest.get(at) == Some(&b'}') && skip_ws(rest, at + 1) == rest.len() {
                    Ok(End::Done)
                } else if rest.len() > MAX_TAIL_BYTES {
                    Err(Error::shape(format!(
                        "more than {MAX_TAIL_BYTES} bytes follow the `Records` array"
                    )))
                } else {
                    Ok(End::Tail)
                }
            }
            Phase::Before { .. } | Phase::After | Phase::Skipping(_) => Err(self.cut_short()),
        }
    }

    /// True when the bytes after the `Records` array are more than
    /// [`MAX_TAIL_BYTES`]: the caller stops collecting them.
    pub(crate) fn tail_too_long(&self, rest: usize) -> bool {
        self.phase == Phase::Tail && rest > MAX_TAIL_BYTES
    }
}

/// True when a number at the start of `data` ends before `data` does.
fn scalar_ends(data: &[u8]) -> bool {
    data.iter()
        .any(|&b| !(b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')))
}

impl Skip {
    /// Passes over bytes of the element; returns how many were used and
    /// whether the element ended. Only strings, escapes and brackets are
    /// followed: the element is not parsed, and never kept.
    fn scan(&mut self, data: &[u8]) -> (usize, bool) {
        for (i, &b) in data.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                    if self.depth == 0 {
                        self.len += i as u64 + 1;
                        return (i + 1, true);
                    }
                }
                continue;
            }
            if self.scalar {
                if is_ws(b) || matches!(b, b',' | b']' | b'}') {
                    self.len += i as u64;
                    return (i, true);
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.len += i as u64 + 1;
                        return (i + 1, true);
                    }
                }
                _ if self.depth == 0 && !is_ws(b) => self.scalar = true,
                _ => {}
            }
        }
        self.len += data.len() as u64;
        (data.len(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Elements as the serde_json stream parser sees them.
    #[derive(Default)]
    struct Collect {
        seen: Vec<(u64, String)>,
        oversize: Vec<(u64, u64)>,
    }

    impl Elements for Collect {
        fn element(&mut self, index: u64, text: &str, _eof: bool) -> Result<Option<usize>, Error> {
            let mut stream =
                serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
            match stream.next() {
                Some(Ok(_)) => {
                    let len = stream.byte_offset();
                    self.seen.push((index, text[..len].to_owned()));
                    Ok(Some(len))
                }
                Some(Err(e)) if e.is_eof() => Ok(None),
                None => Ok(None),
                Some(Err(e)) => Err(Error::shape(e.to_string())),
            }
        }
        fn oversize(&mut self, index: u64, len: u64) {
            self.oversize.push((index, len));
        }
    }

    /// Splits `doc` fed in pieces of `piece` bytes, keeping only what was not
    /// consumed, as the input reader does.
    fn split_in_pieces(doc: &[u8], piece: usize, max: usize) -> (Collect, Result<End, Error>) {
        let mut splitter = Splitter::new(max);
        let mut out = Collect::default();
        let mut buf: Vec<u8> = Vec::new();
        let mut chunks = doc.chunks(piece.max(1)).peekable();
        let mut fed_all = doc.is_empty();
        loop {
            if let Some(chunk) = chunks.next() {
                buf.extend_from_slice(chunk);
            }
            fed_all |= chunks.peek().is_none();
            if !splitter.is_whole() {
                let text = std::str::from_utf8(&buf).unwrap();
                match splitter.split(text, fed_all, &mut out) {
                    Ok(n) => {
                        buf.drain(..n);
                    }
                    Err(e) => return (out, Err(e)),
                }
                // Skipping consumes what it is given: only a little is kept.
                if splitter.is_skipping() {
                    assert!(buf.is_empty());
                }
            }
            if fed_all {
                break;
            }
        }
        let end = splitter.finish(&buf);
        (out, end)
    }

    #[test]
    fn records_come_out_one_by_one_however_the_bytes_arrive() {
        let doc =
            br#" { "Records" : [ {"a":"x,]}"}, [1,2] ,"s\"]", 12.5e3 ,null,{"b":{"c":[]}} ] } "#;
        for piece in [1, 2, 3, 5, 8, 13, 1000] {
            let (out, end) = split_in_pieces(doc, piece, 1000);
            assert_eq!(end.unwrap(), End::Done, "piece {piece}");
            let texts: Vec<&str> = out.seen.iter().map(|(_, t)| t.as_str()).collect();
            assert_eq!(
                texts,
                [
                    r#"{"a":"x,]}"}"#,
                    "[1,2]",
                    r#""s\"]""#,
                    "12.5e3",
                    "null",
                    r#"{"b":{"c":[]}}"#
                ],
                "piece {piece}"
            );
        }
    }

    #[test]
    fn an_empty_array_and_a_compact_file_split() {
        let (out, end) = split_in_pieces(br#"{"Records":[]}"#, 3, 100);
        assert_eq!(end.unwrap(), End::Done);
        assert!(out.seen.is_empty());
        let (out, end) = split_in_pieces(br#"{"Records":[{},{}]}"#, 100, 100);
        assert_eq!(end.unwrap(), End::Done);
        assert_eq!(out.seen.len(), 2);
    }

    #[test]
    fn other_documents_are_read_whole() {
        for doc in [
            &br#"{"awslogs":{"data":"x"}}"#[..],
            br#"{"logEvents":[]}"#,
            br#"{"Records":{}}"#,
            b"[]",
            b"",
            b"  ",
            br#"{"Rec"#,
        ] {
            let (out, end) = split_in_pieces(doc, 2, 100);
            assert_eq!(end.unwrap(), End::Whole, "{}", String::from_utf8_lossy(doc));
            assert!(out.seen.is_empty());
        }
    }

    #[test]
    fn members_after_the_array_are_handed_back() {
        let (out, end) = split_in_pieces(br#"{"Records":[{}], "x": 1}"#, 4, 100);
        assert_eq!(end.unwrap(), End::Tail);
        assert_eq!(out.seen.len(), 1);
    }

    #[test]
    fn a_cut_short_or_broken_envelope_is_an_error() {
        for doc in [
            &br#"{"Records":[{"a":1}"#[..],
            br#"{"Records":[{"a":1},"#,
            br#"{"Records":[{"a":1"#,
            br#"{"Records":["#,
        ] {
            let (_, end) = split_in_pieces(doc, 3, 100);
            let err = end.unwrap_err();
            assert!(err.to_string().contains("cut short"), "{err}");
        }
        let (out, end) = split_in_pieces(br#"{"Records":[{"a":1} {"b":2}]}"#, 100, 100);
        assert!(end.is_err());
        assert_eq!(out.seen.len(), 1);
    }

    #[test]
    fn oversize_elements_are_passed_over_without_being_kept() {
        let big = format!(r#"{{"k":"{}","n":[{{"x":"\"}}"}}]}}"#, "v".repeat(500));
        let doc = format!(
            r#"{{"Records":[{{"a":1}},{big},"{}",{{"b":2}}]}}"#,
            "s".repeat(300)
        );
        for piece in [1, 7, 64, 100_000] {
            let (out, end) = split_in_pieces(doc.as_bytes(), piece, 100);
            assert_eq!(end.unwrap(), End::Done, "piece {piece}");
            let indexes: Vec<u64> = out.seen.iter().map(|(i, _)| *i).collect();
            if piece < 100 {
                // Seen in pieces, both long elements are passed over.
                assert_eq!(indexes, [0, 3], "piece {piece}");
                assert_eq!(
                    out.oversize,
                    [(1, big.len() as u64), (2, 302)],
                    "piece {piece}"
                );
            } else {
                // Whole in memory, the element parser measures them itself.
                assert_eq!(indexes, [0, 1, 2, 3]);
            }
        }
    }
}
