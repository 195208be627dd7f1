//! Just enough PartiQL to know which table (and index) a statement touches and
//! whether it reads or writes.
//!
//! Literals are stepped over and never returned: CloudTrail redacts non-key
//! values (`***(Redacted)`) but key values arrive in clear.

/// Whether a statement reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// `SELECT` (and `EXISTS(SELECT ...)` in a transaction).
    Read,
    /// `INSERT`, `UPDATE`, `DELETE`.
    Write,
}

/// The target of one PartiQL statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement<'a> {
    /// Read or write.
    pub kind: StatementKind,
    /// The table as written: a name or a table ARN.
    pub table: &'a str,
    /// The index in `"table"."index"`.
    pub index: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Quoted(&'a str),
    Punct(u8),
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer { text, pos: 0 }
    }

    fn next_token(&mut self) -> Option<Token<'a>> {
        let bytes = self.text.as_bytes();
        loop {
            let b = *bytes.get(self.pos)?;
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'\'' => {
                    // A string literal: step over it, '' is an escaped quote.
                    self.pos += 1;
                    loop {
                        match bytes.get(self.pos) {
                            None => return None,
                            Some(b'\'') if bytes.get(self.pos + 1) == Some(&b'\'') => self.pos += 2,
                            Some(b'\'') => {
                                self.pos += 1;
                                break;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                }
                b'"' => {
                    let start = self.pos + 1;
                    let mut end = start;
                    loop {
                        match bytes.get(end) {
                            None => return None,
                            Some(b'"') if bytes.get(end + 1) == Some(&b'"') => end += 2,
                            Some(b'"') => break,
                            Some(_) => end += 1,
                        }
                    }
                    self.pos = end + 1;
                    return Some(Token::Quoted(self.text.get(start..end)?));
                }
                b if is_word_byte(b) => {
                    let start = self.pos;
                    while bytes.get(self.pos).is_some_and(|&b| is_word_byte(b)) {
                        self.pos += 1;
                    }
                    return Some(Token::Word(self.text.get(start..self.pos)?));
                }
                _ => {
                    // Multi-byte UTF-8 outside quotes is punctuation to us;
                    // step to the next character boundary.
                    let width = self.text.get(self.pos..)?.chars().next()?.len_utf8();
                    self.pos += width;
                    return Some(Token::Punct(b));
                }
            }
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'$'
}

fn is_keyword(token: Option<Token>, keyword: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
}

/// Parses one statement; `None` when it is not a statement we recognise.
pub fn parse(text: &str) -> Option<Statement<'_>> {
    let mut lexer = Lexer::new(text);
    let mut first = lexer.next_token()?;
    // EXISTS(SELECT ...) is how a transaction checks a condition.
    if is_keyword(Some(first), "EXISTS") {
        if lexer.next_token()? != Token::Punct(b'(') {
            return None;
        }
        first = lexer.next_token()?;
    }
    let Token::Word(verb) = first else {
        return None;
    };
    let kind = if verb.eq_ignore_ascii_case("SELECT") {
        // The projection may hold parentheses and quoted names: find FROM
        // outside any parentheses.
        let mut depth = 0usize;
        loop {
            match lexer.next_token()? {
                Token::Punct(b'(') => depth += 1,
                Token::Punct(b')') => depth = depth.saturating_sub(1),
                Token::Word(w) if depth == 0 && w.eq_ignore_ascii_case("FROM") => break,
                _ => {}
            }
        }
        StatementKind::Read
    } else if verb.eq_ignore_ascii_case("INSERT") {
        if !is_keyword(lexer.next_token(), "INTO") {
            return None;
        }
        StatementKind::Write
    } else if verb.eq_ignore_ascii_case("DELETE") {
        if !is_keyword(lexer.next_token(), "FROM") {
            return None;
        }
        StatementKind::Write
    } else if verb.eq_ignore_ascii_case("UPDATE") {
        StatementKind::Write
    } else {
        return None;
    };
    let table = match lexer.next_token()? {
        Token::Word(w) | Token::Quoted(w) if !w.is_empty() => w,
        _ => return None,
    };
    let mut index = None;
    if lexer.next_token() == Some(Token::Punct(b'.')) {
        if let Some(Token::Word(w) | Token::Quoted(w)) = lexer.next_token() {
            index = Some(w).filter(|w| !w.is_empty());
        }
    }
    Some(Statement { kind, table, index })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Option<(StatementKind, &str, Option<&str>)> {
        parse(s).map(|p| (p.kind, p.table, p.index))
    }

    #[test]
    fn select_with_quoted_table_and_index() {
        assert_eq!(
            target(r#"SELECT "a", size("b") FROM "Music"."ByAlbum" WHERE x = 'FROM y'"#),
            Some((StatementKind::Read, "Music", Some("ByAlbum")))
        );
    }

    #[test]
    fn writes_quoted_or_not() {
        use StatementKind::Write;
        assert_eq!(
            target("INSERT INTO Music VALUE {'Artist' : ***(Redacted)}"),
            Some((Write, "Music", None))
        );
        assert_eq!(
            target("update \"my-table\" SET a = ***(Redacted) WHERE k = 'it''s'"),
            Some((Write, "my-table", None))
        );
        assert_eq!(
            target("DELETE FROM orders WHERE id = '1'"),
            Some((Write, "orders", None))
        );
    }

    #[test]
    fn exists_in_a_transaction_is_a_read() {
        assert_eq!(
            target(r#"EXISTS(SELECT * FROM "Stock" WHERE sku = 'x' AND qty > 0)"#),
            Some((StatementKind::Read, "Stock", None))
        );
    }

    #[test]
    fn literals_are_never_mistaken_for_the_table() {
        assert_eq!(target("SELECT * FROM"), None);
        assert_eq!(target("SELECT 'FROM x' "), None);
        assert_eq!(target("DROP TABLE x"), None);
        assert_eq!(target(""), None);
        assert_eq!(target("SELECT \"unterminated FROM t"), None);
    }

    #[test]
    fn non_ascii_is_stepped_over() {
        assert_eq!(
            target("SELECT é, ü FROM \"t\" WHERE a = 'ö'"),
            Some((StatementKind::Read, "t", None))
        );
    }
}
