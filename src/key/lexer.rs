//! A small PostgreSQL lexical scanner: enough to tell code from strings,
//! quoted identifiers, dollar quotes and comments.

/// What a span of SQL text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Keywords, identifiers, operators, numbers, placeholders.
    Code,
    /// Spaces, tabs, newlines.
    Whitespace,
    /// `-- ...` to the end of the line.
    LineComment,
    /// `/* ... */`, nested as in PostgreSQL.
    BlockComment,
    /// `'...'`, `E'...'`, `B'...'`, `X'...'`, `U&'...'`.
    String,
    /// `"..."`.
    QuotedIdent,
    /// `$tag$ ... $tag$`.
    DollarString,
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\x0b')
}

/// Splits `sql` into spans; concatenating the spans gives back `sql`.
/// Unterminated strings and comments run to the end of the input.
pub fn scan(sql: &str) -> Vec<(TokenKind, &str)> {
    fn flush_code<'s>(
        sql: &'s str,
        out: &mut Vec<(TokenKind, &'s str)>,
        start: &mut Option<usize>,
        end: usize,
    ) {
        if let Some(s) = start.take() {
            if s < end {
                out.push((TokenKind::Code, &sql[s..end]));
            }
        }
    }
    let b = sql.as_bytes();
    let mut out: Vec<(TokenKind, &str)> = Vec::new();
    let mut i = 0;
    let mut code_start: Option<usize> = None;
    while i < b.len() {
        let c = b[i];
        let prev_ident = i > 0 && is_ident_char(b[i - 1]) && code_start.is_some();
        let (kind, end) = if is_space(c) {
            let mut j = i;
            while j < b.len() && is_space(b[j]) {
                j += 1;
            }
            (TokenKind::Whitespace, j)
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            let mut j = i;
            while j < b.len() && b[j] != b'\n' {
                j += 1;
            }
            (TokenKind::LineComment, j)
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            (TokenKind::BlockComment, block_comment_end(b, i))
        } else if c == b'\'' {
            // E'...' (a lone E glued to the quote) takes backslash escapes.
            let escapes = prev_ident
                && matches!(b[i - 1], b'e' | b'E')
                && (code_start == Some(i - 1) || (i >= 2 && !is_ident_char(b[i - 2])));
            (TokenKind::String, quoted_end(b, i, b'\'', escapes))
        } else if c == b'"' {
            (TokenKind::QuotedIdent, quoted_end(b, i, b'"', false))
        } else if c == b'$' && !prev_ident {
            match dollar_tag(b, i) {
                Some(tag_len) => (TokenKind::DollarString, dollar_end(b, i, tag_len)),
                None => {
                    code_start.get_or_insert(i);
                    i += 1;
                    continue;
                }
            }
        } else {
            code_start.get_or_insert(i);
            i += char_len(c);
            continue;
        };
        // A prefix letter glued to a string (E'..', B'..', X'..', U&'..') stays code.
        flush_code(sql, &mut out, &mut code_start, i);
        let end = end.min(b.len());
        out.push((kind, &sql[i..end]));
        i = end;
    }
    flush_code(sql, &mut out, &mut code_start, b.len());
    out
}

fn char_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

fn block_comment_end(b: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut j = start;
    while j < b.len() {
        if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
            depth += 1;
            j += 2;
        } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return j;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

fn quoted_end(b: &[u8], start: usize, q: u8, backslash: bool) -> usize {
    let mut j = start + 1;
    while j < b.len() {
        if backslash && b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

/// Length of `$tag$` at `start`, if one starts there.
fn dollar_tag(b: &[u8], start: usize) -> Option<usize> {
    let mut j = start + 1;
    if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    while j < b.len() && b[j] != b'$' {
        if !(b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
            return None;
        }
        j += 1;
    }
    (j < b.len()).then_some(j + 1 - start)
}

fn dollar_end(b: &[u8], start: usize, tag_len: usize) -> usize {
    let tag = &b[start..start + tag_len];
    let mut j = start + tag_len;
    while j + tag_len <= b.len() {
        if &b[j..j + tag_len] == tag {
            return j + tag_len;
        }
        j += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(TokenKind, &str)> {
        let spans = scan(sql);
        assert_eq!(spans.iter().map(|s| s.1).collect::<String>(), sql);
        spans
    }

    #[test]
    fn strings_comments_and_dollar_quotes() {
        use TokenKind::*;
        assert_eq!(
            kinds("a 'x--y' b"),
            vec![
                (Code, "a"),
                (Whitespace, " "),
                (String, "'x--y'"),
                (Whitespace, " "),
                (Code, "b")
            ]
        );
        assert_eq!(
            kinds("/* a /* b */ c */x"),
            vec![(BlockComment, "/* a /* b */ c */"), (Code, "x")]
        );
        assert_eq!(
            kinds("E'\\'' x"),
            vec![
                (Code, "E"),
                (String, "'\\''"),
                (Whitespace, " "),
                (Code, "x")
            ]
        );
        assert_eq!(
            kinds("xe'\\' y'"),
            vec![
                (Code, "xe"),
                (String, "'\\'"),
                (Whitespace, " "),
                (Code, "y"),
                (String, "'")
            ]
        );
        assert_eq!(kinds("'it''s'"), vec![(String, "'it''s'")]);
        assert_eq!(kinds("$f$ /* x $f$"), vec![(DollarString, "$f$ /* x $f$")]);
        assert_eq!(kinds("$1"), vec![(Code, "$1")]);
        assert_eq!(kinds("a$b$"), vec![(Code, "a$b$")]);
        assert_eq!(kinds("\"a\"\"b\""), vec![(QuotedIdent, "\"a\"\"b\"")]);
        assert_eq!(kinds("'open"), vec![(String, "'open")]);
        assert_eq!(
            kinds("x -- c\ny"),
            vec![
                (Code, "x"),
                (Whitespace, " "),
                (LineComment, "-- c"),
                (Whitespace, "\n"),
                (Code, "y")
            ]
        );
    }
}
