//! Meaning-preserving normalization of SQL text (the form that is hashed).

use std::borrow::Cow;

use super::lexer::{block_comment_is_closed, is_quote_continuation, scan, TokenKind};

/// Normalizes `sql` for hashing without ever changing its meaning.
///
/// Only whitespace and comments outside strings, quoted identifiers and
/// dollar quotes are touched:
/// * leading and trailing runs of whitespace/comments are removed;
/// * every other maximal run of whitespace and/or comments becomes one space
///   (PostgreSQL treats a comment as a token separator, so no tokens glue);
/// * exception: a run between two string literals that PostgreSQL reads as
///   a *quote continuation* (`'a'\n'b'` is the literal `'ab'`) becomes a
///   single `\n`, which is still a continuation, while other runs between
///   literals become a space, which is still not one;
/// * an unterminated block comment (a syntax error) is kept verbatim, so
///   broken SQL never normalizes equal to valid SQL.
///
/// * semicolons that end the text are dropped (`select 1;` and `select 1`
///   are the same statement: psql sends the first, drivers the second).
///
/// Everything else is byte-identical: no case folding. The result is idempotent, and borrowed (no allocation) when
/// `sql` only needs trimming or is already normalized.
pub fn normalize(sql: &str) -> Cow<'_, str> {
    let mut out = Out {
        src: sql,
        buf: None,
        start: 0,
        end: 0,
    };
    let mut offset = 0;
    // Start of the pending whitespace/comment run and whether it contains a
    // block comment.
    let mut run: Option<(usize, bool)> = None;
    let mut emitted_any = false;
    let mut prev_is_string = false;
    for (kind, text) in scan(sql) {
        let tok_start = offset;
        offset += text.len();
        let trivia = match kind {
            TokenKind::Whitespace | TokenKind::LineComment => Some(false),
            TokenKind::BlockComment if block_comment_is_closed(text) => Some(true),
            _ => None,
        };
        if let Some(is_block) = trivia {
            let (start, block) = run.unwrap_or((tok_start, false));
            run = Some((start, block || is_block));
            continue;
        }
        if let Some((start, has_block)) = run.take() {
            if emitted_any {
                let between_strings = prev_is_string && kind == TokenKind::String;
                let sep = if between_strings
                    && !has_block
                    && is_quote_continuation(&sql.as_bytes()[start..tok_start])
                {
                    "\n"
                } else {
                    " "
                };
                out.replace(start, tok_start, sep);
            } else {
                out.skip_leading(tok_start);
            }
        }
        out.keep(offset);
        emitted_any = true;
        prev_is_string = kind == TokenKind::String;
    }
    // A trailing run is simply never emitted.
    strip_terminators(out.finish())
}

/// Drops `;` (and the space before it) from the end of normalized text,
/// when the `;` is code and not inside an unterminated string or quote.
fn strip_terminators(text: Cow<'_, str>) -> Cow<'_, str> {
    if !text.ends_with(';') {
        return text;
    }
    let mut end = text.len();
    while let Some((kind, last)) = scan(&text[..end]).last() {
        match kind {
            TokenKind::Code if last.ends_with(';') => {
                end -= last.len() - last.trim_end_matches(';').len()
            }
            TokenKind::Whitespace => end -= last.len(),
            _ => break,
        }
    }
    match text {
        Cow::Borrowed(b) => Cow::Borrowed(&b[..end]),
        Cow::Owned(mut o) => {
            o.truncate(end);
            Cow::Owned(o)
        }
    }
}

/// Output builder that stays a borrowed slice of the input until the first
/// real change.
struct Out<'a> {
    src: &'a str,
    buf: Option<String>,
    /// While `buf` is `None`, the output so far is `src[start..end]`.
    start: usize,
    end: usize,
}

impl<'a> Out<'a> {
    /// Drops input up to `to` before anything was emitted.
    fn skip_leading(&mut self, to: usize) {
        self.start = to;
        self.end = to;
    }

    /// Emits the input from the current position up to `to` verbatim.
    fn keep(&mut self, to: usize) {
        if let Some(buf) = &mut self.buf {
            buf.push_str(&self.src[self.end..to]);
        }
        self.end = to;
    }

    /// Emits `with` in place of `src[from..to]` (`from` is the current end).
    fn replace(&mut self, from: usize, to: usize, with: &str) {
        debug_assert_eq!(from, self.end);
        if self.buf.is_none() && &self.src[from..to] != with {
            let mut buf = String::with_capacity(self.src.len() - self.start);
            buf.push_str(&self.src[self.start..from]);
            self.buf = Some(buf);
        }
        if let Some(buf) = &mut self.buf {
            buf.push_str(with);
        }
        self.end = to;
    }

    fn finish(self) -> Cow<'a, str> {
        match self.buf {
            Some(buf) => Cow::Owned(buf),
            None => Cow::Borrowed(&self.src[self.start..self.end]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(sql: &str) -> String {
        let once = normalize(sql).into_owned();
        assert_eq!(normalize(&once), once, "not idempotent for {sql:?}");
        once
    }

    #[test]
    fn collapses_whitespace_and_comments() {
        assert_eq!(n("  SELECT\t1 ,\n\n 2  "), "SELECT 1 , 2");
        assert_eq!(n("SELECT/* c */1--x\n+2 -- tail"), "SELECT 1 +2");
        assert_eq!(n("a/**/b"), "a b");
        assert_eq!(n("a /* x /* y */ z */ b"), "a b");
        assert_eq!(n("-- only a comment"), "");
        assert_eq!(n(" \n "), "");
        assert_eq!(n(""), "");
    }

    #[test]
    fn keeps_everything_else_byte_identical() {
        assert_eq!(n("select X FROM t;"), "select X FROM t");
        assert_eq!(n("SELECT 'a  --  b'"), "SELECT 'a  --  b'");
        assert_eq!(n("SELECT \"a  /* */ b\""), "SELECT \"a  /* */ b\"");
        assert_eq!(n("SELECT $f$ x  \n y $f$  ;"), "SELECT $f$ x  \n y $f$");
        assert_eq!(n("SELECT E'\\'  ' ,1"), "SELECT E'\\'  ' ,1");
    }

    #[test]
    fn unterminated_constructs_are_kept() {
        assert_eq!(n("SELECT 1 /* open  comment"), "SELECT 1 /* open  comment");
        assert_eq!(n("SELECT 'open  string"), "SELECT 'open  string");
        assert_eq!(n("SELECT $$ open  "), "SELECT $$ open  ");
        assert_eq!(n("SELECT 1 -- no newline"), "SELECT 1");
    }

    #[test]
    fn quote_continuation_is_preserved() {
        assert_eq!(n("SELECT 'a'  -- c\n  'b'"), "SELECT 'a'\n'b'");
        assert_eq!(n("SELECT 'a'\r\n'b'"), "SELECT 'a'\n'b'");
        // Not continuations (syntax errors in PostgreSQL): stay that way.
        assert_eq!(n("SELECT 'a'   'b'"), "SELECT 'a' 'b'");
        assert_eq!(n("SELECT 'a' /* c */\n'b'"), "SELECT 'a' 'b'");
        assert_eq!(n("SELECT 'a'\x0b\n'b'"), "SELECT 'a' 'b'");
        assert_eq!(n("SELECT $$a$$\n'b'"), "SELECT $$a$$ 'b'");
        assert_eq!(n("SELECT 'a'\nE'b'"), "SELECT 'a' E'b'");
    }

    #[test]
    fn borrows_when_possible() {
        assert!(matches!(normalize("SELECT 1"), Cow::Borrowed("SELECT 1")));
        assert!(matches!(normalize("SELECT 1;"), Cow::Borrowed("SELECT 1")));
        assert_eq!(normalize("select 1 ;; -- end\n"), "select 1");
        assert_eq!(normalize("select ';'"), "select ';'");
        assert_eq!(normalize("select 'x;"), "select 'x;");
        assert_eq!(normalize("select 1; select 2;"), "select 1; select 2");
        assert!(matches!(
            normalize("  SELECT 1 -- x"),
            Cow::Borrowed("SELECT 1")
        ));
        assert!(matches!(normalize("'a'\n'b'"), Cow::Borrowed(_)));
        assert!(matches!(normalize("SELECT  1"), Cow::Owned(_)));
    }
}
