//! Client-side checks on SQL text and identifiers: pure functions, no I/O.
//!
//! Everything here works on the spans produced by [`crate::key::scan`], so
//! text inside string literals, quoted identifiers, dollar quotes and
//! comments is never mistaken for code.
//!
//! * [`ident`]: validating and quoting identifiers and literals.
//! * [`danger`]: spotting destructive statements (`DROP`, `TRUNCATE`,
//!   `DELETE`/`UPDATE` without `WHERE`, `ALTER ... DROP`).
//! * [`placeholders`]: counting `$n` parameters.
//! * [`sanitize`]: rendering a query for a log without leaking secrets.
//! * [`kind`]: what kind of statement a query is (select, insert, ddl...).

use std::ops::Range;

use crate::key::lexer::is_ident_cont;
use crate::key::{scan, TokenKind};

pub mod danger;
pub mod ident;
pub mod kind;
pub mod placeholders;
pub mod readonly;
pub mod sanitize;

#[cfg(test)]
mod props;

pub use danger::{dangerous_statements, is_dangerous, Danger, DangerKind};
pub use ident::{
    quote_identifier, quote_identifier_if_needed, quote_literal, quote_qualified,
    unquote_identifier, validate_identifier, IdentError,
};
pub use kind::{statement_kind, StatementKind};
pub use placeholders::{check_params, placeholder_count, ParamCountError};
pub use readonly::is_read_only;
pub use sanitize::sanitize_for_log;

/// A code-level unit of SQL, as seen by the statement-level checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lexeme<'a> {
    /// A maximal run of identifier characters in code (keywords, names,
    /// numbers, `$n`), as written.
    Word(&'a str),
    /// A double-quoted identifier, quotes included.
    QuotedIdent,
    /// A string literal or dollar-quoted string.
    Literal,
    /// `(` in code.
    Open,
    /// `)` in code.
    Close,
    /// `;` in code.
    Semicolon,
    /// Any other code byte (operators, commas, dots...).
    Punct,
}

impl Lexeme<'_> {
    /// Whether this is the word `kw` (ASCII case-insensitively).
    pub(crate) fn is_word(&self, kw: &str) -> bool {
        matches!(self, Lexeme::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

/// Splits `sql` into lexemes with their byte ranges, skipping whitespace and
/// comments.
pub(crate) fn lexemes(sql: &str) -> Vec<(Lexeme<'_>, Range<usize>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    for (kind, text) in scan(sql) {
        let start = pos;
        pos += text.len();
        match kind {
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment => {}
            TokenKind::QuotedIdent => out.push((Lexeme::QuotedIdent, start..pos)),
            TokenKind::String | TokenKind::DollarString => out.push((Lexeme::Literal, start..pos)),
            TokenKind::Code => code_lexemes(text, start, &mut out),
        }
    }
    out
}

/// Splits one code span (starting at byte `offset` of the input) into
/// lexemes.
pub(crate) fn code_lexemes<'a>(
    text: &'a str,
    offset: usize,
    out: &mut Vec<(Lexeme<'a>, Range<usize>)>,
) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let lexeme = if is_ident_cont(bytes[i]) {
            while i < bytes.len() && is_ident_cont(bytes[i]) {
                i += 1;
            }
            // Word boundaries are ASCII bytes (or the span's ends), so this
            // slice is on char boundaries.
            out.push((Lexeme::Word(&text[start..i]), offset + start..offset + i));
            continue;
        } else {
            match bytes[i] {
                b'(' => Lexeme::Open,
                b')' => Lexeme::Close,
                b';' => Lexeme::Semicolon,
                _ => Lexeme::Punct,
            }
        };
        i += 1;
        out.push((lexeme, offset + start..offset + i));
    }
}

/// One `;`-separated statement: its byte range in the input (without the
/// `;`) and its lexemes.
pub(crate) struct Statement<'a> {
    /// Byte range of the statement text in the input.
    pub(crate) range: Range<usize>,
    /// The statement's lexemes (never a [`Lexeme::Semicolon`]).
    pub(crate) lexemes: Vec<Lexeme<'a>>,
}

/// [`statement_kind`] and [`is_read_only`] of `sql`, lexed once.
pub(crate) fn classify(sql: &str) -> (StatementKind, bool) {
    let split = statements(sql);
    (kind::kind_of(&split), readonly::read_only_of(&split))
}

/// Splits `sql` on every `;` in code. Empty statements (`;;`, or the text
/// after a final `;`) are included, so indexes match a plain split.
pub(crate) fn statements(sql: &str) -> Vec<Statement<'_>> {
    let mut out = Vec::new();
    let mut current = Statement {
        range: 0..0,
        lexemes: Vec::new(),
    };
    for (lexeme, range) in lexemes(sql) {
        if lexeme == Lexeme::Semicolon {
            current.range.end = range.start;
            let next_start = range.end;
            out.push(std::mem::replace(
                &mut current,
                Statement {
                    range: next_start..next_start,
                    lexemes: Vec::new(),
                },
            ));
        } else {
            current.lexemes.push(lexeme);
        }
    }
    current.range.end = sql.len();
    out.push(current);
    out
}

/// Appends `text` to `out` on one line: control characters (newlines, tabs,
/// NUL, ...) and Unicode line/paragraph separators are written as Rust-style
/// escapes (`\n`, `\u{0}`).
pub(crate) fn push_one_line(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(sql: &str) -> Vec<Lexeme<'_>> {
        lexemes(sql).into_iter().map(|(l, _)| l).collect()
    }

    #[test]
    fn lexemes_split_code_only() {
        use Lexeme::*;
        assert_eq!(
            words("DROP/*x*/tab_1 'drop' \"drop\" $$drop$$ -- drop\n(a.b);"),
            vec![
                Word("DROP"),
                Word("tab_1"),
                Literal,
                QuotedIdent,
                Literal,
                Open,
                Word("a"),
                Punct,
                Word("b"),
                Close,
                Semicolon
            ]
        );
        assert_eq!(words("a$1 $2 1drop é"), {
            vec![Word("a$1"), Word("$2"), Word("1drop"), Word("é")]
        });
        let v = lexemes("ab (é)");
        assert_eq!(v[2], (Word("é"), 4..6));
    }

    #[test]
    fn statements_split_on_code_semicolons() {
        let sql = "a; 'x;y' b;; $$;$$";
        let s = statements(sql);
        assert_eq!(s.len(), 4);
        assert_eq!(&sql[s[0].range.clone()], "a");
        assert_eq!(&sql[s[1].range.clone()], " 'x;y' b");
        assert_eq!(&sql[s[2].range.clone()], "");
        assert_eq!(&sql[s[3].range.clone()], " $$;$$");
        assert_eq!(statements("").len(), 1);
    }

    #[test]
    fn one_line_escapes() {
        let mut s = String::new();
        push_one_line(&mut s, "a\nb\r\tc\0\u{2028}é");
        assert_eq!(s, "a\\nb\\r\\tc\\u{0}\\u{2028}é");
    }
}
