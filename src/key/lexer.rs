//! A small PostgreSQL lexical scanner.
//!
//! [`scan`] splits SQL text into spans whose concatenation is exactly the
//! input. It only distinguishes what later passes need (code, whitespace,
//! comments, strings, quoted identifiers, dollar-quoted strings); it does not
//! tokenize code into keywords or operators.
//!
//! Assumptions, following the PostgreSQL 16 server lexer (`scan.l`):
//! * `standard_conforming_strings = on` (the default since 9.1), so a
//!   backslash escapes only inside `E'...'` strings.
//! * Whitespace is `[ \t\n\r\f\v]`; anything else (including non-ASCII
//!   space characters) is code.
//! * Bytes >= 0x80 count as identifier characters, as in PostgreSQL.
//!
//! Span boundaries always fall on ASCII characters (or the ends of the
//! input), so every span is valid UTF-8 and the scanner never panics.

/// What kind of text a span returned by [`scan`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Anything outside quotes and comments: keywords, identifiers, numbers,
    /// operators, punctuation and `$n` placeholders. String prefixes such as
    /// `E`, `U&`, `B`, `X` and `N` are part of the preceding code span.
    Code,
    /// A maximal run of `[ \t\n\r\f\v]`.
    Whitespace,
    /// `--` up to (not including) the next `\n` or `\r`, or end of input.
    LineComment,
    /// `/* ... */`, nested as in PostgreSQL; may be unterminated
    /// (see [`block_comment_is_closed`]).
    BlockComment,
    /// A single-quoted literal `'...'` including both quotes (`''` escapes a
    /// quote; after an `E` prefix, backslash escapes too). Unterminated
    /// literals run to the end of input.
    String,
    /// A double-quoted identifier `"..."` (`""` escapes a quote).
    QuotedIdent,
    /// A dollar-quoted string `$tag$ ... $tag$` including both delimiters.
    DollarString,
}

/// Splits `sql` into `(kind, text)` spans, lazily and without allocating.
///
/// Concatenating all the texts gives back `sql` exactly; no span is empty.
pub fn scan(sql: &str) -> Scanner<'_> {
    Scanner {
        src: sql,
        pos: 0,
        e_prefix: false,
        continuation: None,
    }
}

/// Iterator returned by [`scan`].
#[derive(Clone, Debug)]
pub struct Scanner<'a> {
    src: &'a str,
    pos: usize,
    /// The code span just emitted ended with a lone `E`/`e` word.
    e_prefix: bool,
    /// Byte offset of a `'` that continues the previous string literal
    /// (PostgreSQL's quote continuation), and that literal's escape mode.
    continuation: Option<(usize, bool)>,
}

/// Whitespace as PostgreSQL's lexer defines it.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

pub(crate) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

pub(crate) fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// Length of a dollar-quote delimiter (`$$` or `$tag$`) starting at `i`.
fn dollar_tag_len(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if bytes.get(j).copied().is_some_and(is_ident_start) {
        j += 1;
        while bytes
            .get(j)
            .is_some_and(|&b| is_ident_start(b) || b.is_ascii_digit())
        {
            j += 1;
        }
    }
    (bytes.get(j) == Some(&b'$')).then_some(j + 1 - i)
}

/// End of a line comment starting at `i` (exclusive; stops before a newline).
fn line_comment_end(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map_or(bytes.len(), |p| i + p)
}

/// End of a (possibly nested) block comment starting at `i`, and whether it
/// was closed.
fn block_comment_end(bytes: &[u8], i: usize) -> (usize, bool) {
    let mut depth = 0usize;
    let mut j = i;
    while j < bytes.len() {
        if bytes[j] == b'/' && bytes.get(j + 1) == Some(&b'*') {
            depth += 1;
            j += 2;
        } else if bytes[j] == b'*' && bytes.get(j + 1) == Some(&b'/') {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return (j, true);
            }
        } else {
            j += 1;
        }
    }
    (bytes.len(), false)
}

/// Whether a [`TokenKind::BlockComment`] span is properly closed (an
/// unterminated comment runs to the end of input and is a syntax error).
pub fn block_comment_is_closed(text: &str) -> bool {
    text.starts_with("/*") && block_comment_end(text.as_bytes(), 0) == (text.len(), true)
}

/// Whether `run` (whitespace and `--` comments only) separating two string
/// literals makes PostgreSQL treat them as one literal: it must contain a
/// newline, and before the first newline only `[ \t\f]` and comments may
/// appear (`whitespace_with_newline` in `scan.l`).
pub(crate) fn is_quote_continuation(run: &[u8]) -> bool {
    let mut i = 0;
    let mut seen_newline = false;
    while i < run.len() {
        match run[i] {
            b'\n' | b'\r' => seen_newline = true,
            0x0b if !seen_newline => return false,
            b if is_space(b) => {}
            b'-' if run.get(i + 1) == Some(&b'-') => {
                i = line_comment_end(run, i);
                continue;
            }
            _ => return false,
        }
        i += 1;
    }
    seen_newline
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Word {
    None,
    Ident,
    Number,
    Param,
}

impl<'a> Scanner<'a> {
    /// Scans a code span starting at `start`; returns its end.
    fn code_end(&mut self, start: usize) -> usize {
        let bytes = self.src.as_bytes();
        let mut word = Word::None;
        let mut word_start = start;
        let mut i = start;
        while i < bytes.len() {
            let b = bytes[i];
            let next = bytes.get(i + 1).copied();
            if is_space(b)
                || b == b'\''
                || b == b'"'
                || (b == b'-' && next == Some(b'-'))
                || (b == b'/' && next == Some(b'*'))
            {
                break;
            }
            let continues = match word {
                Word::Ident => is_ident_cont(b),
                // `$1abc` is one (junk) word, but `$` right after the digits
                // ends the parameter (`param` is `\$[0-9]+` in `scan.l`), so
                // `$1$$x$$` is `$1` followed by a dollar-quoted string.
                Word::Param if is_ident_start(b) => {
                    word = Word::Ident;
                    true
                }
                Word::Param => b.is_ascii_digit(),
                // Letters after digits (`1abc`, `1.5e3a$b`) lex as one word
                // (PostgreSQL 15+ "trailing junk"; an identifier before 15).
                Word::Number if is_ident_start(b) => {
                    word = Word::Ident;
                    true
                }
                Word::Number => b.is_ascii_digit() || b == b'_',
                Word::None => false,
            };
            if !continues {
                word_start = i;
                word = if b == b'$' {
                    if i > start && dollar_tag_len(bytes, i).is_some() {
                        break;
                    }
                    if next.is_some_and(|n| n.is_ascii_digit()) {
                        Word::Param
                    } else {
                        Word::None
                    }
                } else if is_ident_start(b) {
                    Word::Ident
                } else if b.is_ascii_digit() {
                    Word::Number
                } else {
                    Word::None
                };
            }
            i += 1;
        }
        self.e_prefix = bytes.get(i) == Some(&b'\'')
            && word == Word::Ident
            && i == word_start + 1
            && matches!(bytes[word_start], b'E' | b'e');
        i
    }

    /// Scans a single-quoted literal starting at `start`; returns its end.
    fn string_end(&mut self, start: usize, escapes: bool) -> usize {
        let bytes = self.src.as_bytes();
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if escapes => i += 2,
                b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                b'\'' => {
                    let end = i + 1;
                    // Look ahead for a quote continuation (`'a'\n'b'`).
                    let mut j = end;
                    while j < bytes.len() {
                        if is_space(bytes[j]) {
                            j += 1;
                        } else if bytes[j] == b'-' && bytes.get(j + 1) == Some(&b'-') {
                            j = line_comment_end(bytes, j);
                        } else {
                            break;
                        }
                    }
                    if bytes.get(j) == Some(&b'\'') && is_quote_continuation(&bytes[end..j]) {
                        self.continuation = Some((j, escapes));
                    }
                    return end;
                }
                _ => i += 1,
            }
        }
        bytes.len()
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = (TokenKind, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.src.as_bytes();
        let start = self.pos;
        if start >= bytes.len() {
            return None;
        }
        let e_prefix = std::mem::take(&mut self.e_prefix);
        let continuation = self.continuation.take();
        let b = bytes[start];
        let next = bytes.get(start + 1).copied();
        let (kind, end) = if is_space(b) {
            let len = bytes[start..].iter().take_while(|&&c| is_space(c)).count();
            // Whitespace/comments between continued strings keep the state.
            self.continuation = continuation;
            (TokenKind::Whitespace, start + len)
        } else if b == b'-' && next == Some(b'-') {
            self.continuation = continuation;
            (TokenKind::LineComment, line_comment_end(bytes, start))
        } else if b == b'/' && next == Some(b'*') {
            (TokenKind::BlockComment, block_comment_end(bytes, start).0)
        } else if b == b'\'' {
            let escapes = match continuation {
                Some((at, esc)) if at == start => esc,
                _ => e_prefix,
            };
            (TokenKind::String, self.string_end(start, escapes))
        } else if b == b'"' {
            let mut i = start + 1;
            loop {
                match bytes[i..].iter().position(|&c| c == b'"') {
                    None => break (TokenKind::QuotedIdent, bytes.len()),
                    Some(p) if bytes.get(i + p + 1) == Some(&b'"') => i += p + 2,
                    Some(p) => break (TokenKind::QuotedIdent, i + p + 1),
                }
            }
        } else if let Some(tag_len) = (b == b'$').then(|| dollar_tag_len(bytes, start)).flatten() {
            let tag = &bytes[start..start + tag_len];
            let body = start + tag_len;
            let end = bytes[body..]
                .windows(tag_len)
                .position(|w| w == tag)
                .map_or(bytes.len(), |p| body + p + tag_len);
            (TokenKind::DollarString, end)
        } else {
            (TokenKind::Code, self.code_end(start))
        };
        self.pos = end;
        Some((kind, &self.src[start..end]))
    }
}

#[cfg(test)]
mod tests;
