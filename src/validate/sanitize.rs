//! Rendering queries for logs without leaking secrets.

use super::{code_lexemes, push_one_line, statements, Lexeme};
use crate::key::{scan, TokenKind};

/// Literals and parameter values longer than this (in characters) are
/// never shown in full.
const MAX_SHOWN_CHARS: usize = 64;
/// How much of a long literal is kept.
const PREFIX_CHARS: usize = 16;

/// Substrings that mark a query as sensitive, matched ASCII
/// case-insensitively anywhere in code, quoted identifiers and literals.
const SENSITIVE: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "credential",
    "private_key",
    "credit_card",
    "crypt",
];
/// Short markers, matched only as whole segments between non-letters
/// (`ssn`, `user_ssn`, `ssn2`; not `classname`).
const SENSITIVE_SEGMENTS: &[&str] = &["ssn", "pwd"];

/// Renders a query and its bind parameters as one log line.
///
/// * The SQL is whitespace-collapsed and trimmed, comments are dropped and
///   control characters (including newlines inside literals) are escaped
///   (`\n`), so the result is a single line.
/// * The query is *sensitive* when its code, quoted identifiers or literals
///   contain one of `password`, `passwd`, `passphrase`, `secret`, `token`,
///   `api_key`, `apikey`, `credential`, `private_key`, `credit_card`,
///   `crypt` (also inside longer words, such as `password_hash`), or the
///   segment `ssn`/`pwd`; or when any statement is `ALTER`/`CREATE`
///   `ROLE`/`USER`/`GROUP`. One sensitive statement makes the whole input
///   sensitive.
/// * In a sensitive query every string literal (`'...'`, `E'...'`,
///   `$$...$$`, ...) becomes `'***'` and every numeric constant `***`.
///   Otherwise literals longer than 64 characters become
///   `'<first 16 chars>…(N chars)'` (`$tag$...$tag$` keeps its tags), where
///   N counts the characters between the quotes as written.
/// * Parameters follow as ` -- params: $1=..., $2=...`: `NULL` for `None`;
///   otherwise `<redacted>` in a sensitive query, `<N chars>` for values
///   longer than 64 characters, else the value as a quoted literal.
pub fn sanitize_for_log(sql: &str, params: &[Option<&str>]) -> String {
    let sensitive = is_sensitive(sql);
    let mut out = render(sql, sensitive);
    if params.is_empty() {
        return out;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str("-- params: ");
    for (i, param) in params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!("${}=", i + 1));
        match param {
            None => out.push_str("NULL"),
            Some(_) if sensitive => out.push_str("<redacted>"),
            Some(v) => match v.chars().count() {
                n if n > MAX_SHOWN_CHARS => out.push_str(&format!("<{n} chars>")),
                _ => push_one_line(&mut out, &super::quote_literal(v)),
            },
        }
    }
    out
}

/// `sql` rendered on one line as [`sanitize_for_log`] does, without
/// parameters.
pub(crate) fn render_sql(sql: &str) -> String {
    render(sql, is_sensitive(sql))
}

/// Whether `sql` looks like it carries secrets.
fn is_sensitive(sql: &str) -> bool {
    let marked = scan(sql).any(|(kind, text)| match kind {
        TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment => false,
        _ => text_is_sensitive(text),
    });
    marked
        || statements(sql).iter().any(|s| match s.lexemes.as_slice() {
            [first, second, ..] => {
                (first.is_word("alter") || first.is_word("create"))
                    && ["role", "user", "group"]
                        .iter()
                        .any(|kw| second.is_word(kw))
            }
            _ => false,
        })
}

/// Whether `text` contains a sensitive marker.
fn text_is_sensitive(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    SENSITIVE.iter().any(|kw| lower.contains(kw))
        || lower
            .split(|c: char| !c.is_ascii_alphabetic())
            .any(|seg| SENSITIVE_SEGMENTS.contains(&seg))
}

/// Renders `sql` on one line, masking literals as described in
/// [`sanitize_for_log`].
fn render(sql: &str, sensitive: bool) -> String {
    let mut out = String::with_capacity(sql.len().min(4096));
    let mut gap = false;
    for (kind, text) in scan(sql) {
        if matches!(
            kind,
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment
        ) {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() {
            out.push(' ');
        }
        gap = false;
        match kind {
            TokenKind::Code if sensitive => push_code_masking_numbers(&mut out, text),
            TokenKind::String | TokenKind::DollarString if sensitive => out.push_str("'***'"),
            TokenKind::String => push_string(&mut out, text),
            TokenKind::DollarString => push_dollar_string(&mut out, text),
            _ => push_one_line(&mut out, text),
        }
    }
    out
}

/// Appends a code span, replacing numeric constants (words starting with a
/// digit) by `***`.
fn push_code_masking_numbers(out: &mut String, text: &str) {
    let mut lexemes = Vec::new();
    code_lexemes(text, 0, &mut lexemes);
    for (lexeme, range) in lexemes {
        match lexeme {
            Lexeme::Word(w) if w.as_bytes()[0].is_ascii_digit() => out.push_str("***"),
            _ => push_one_line(out, &text[range]),
        }
    }
}

/// Appends a `'...'` literal, shortened when long.
fn push_string(out: &mut String, text: &str) {
    let body = &text[1..];
    let body = if text.len() >= 2 {
        body.strip_suffix('\'').unwrap_or(body)
    } else {
        body
    };
    if let Some(short) = shorten(body) {
        out.push('\'');
        push_one_line(out, &short);
        out.push('\'');
    } else {
        push_one_line(out, text);
    }
}

/// Appends a `$tag$...$tag$` literal, shortened when long.
fn push_dollar_string(out: &mut String, text: &str) {
    // The span starts with a complete delimiter `$tag$` (ASCII).
    let tag_len = text[1..].find('$').map_or(text.len(), |p| p + 2);
    let (tag, rest) = text.split_at(tag_len);
    let body = if rest.len() >= tag_len {
        rest.strip_suffix(tag).unwrap_or(rest)
    } else {
        rest
    };
    if let Some(short) = shorten(body) {
        out.push_str(tag);
        push_one_line(out, &short);
        out.push_str(tag);
    } else {
        push_one_line(out, text);
    }
}

/// `<first 16 chars>…(N chars)` when `body` is longer than the limit.
fn shorten(body: &str) -> Option<String> {
    let n = body.chars().count();
    if n <= MAX_SHOWN_CHARS {
        return None;
    }
    let prefix: String = body.chars().take(PREFIX_CHARS).collect();
    // Do not end on half of a `''` pair or on an escaping backslash.
    let prefix = prefix.trim_end_matches(['\'', '\\']);
    Some(format!("{prefix}…({n} chars)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_whitespace_and_drops_comments() {
        assert_eq!(
            sanitize_for_log("  SELECT\n\t a,/* c */b -- x\n FROM t  ", &[]),
            "SELECT a, b FROM t"
        );
        assert_eq!(sanitize_for_log("SELECT 'a\nb'", &[]), "SELECT 'a\\nb'");
        assert_eq!(sanitize_for_log("", &[]), "");
        assert_eq!(
            sanitize_for_log("-- only", &[Some("x")]),
            "-- params: $1='x'"
        );
    }

    #[test]
    fn never_prints_role_passwords() {
        let out = sanitize_for_log("ALTER ROLE app PASSWORD 'hunter2'", &[]);
        assert_eq!(out, "ALTER ROLE app PASSWORD '***'");
        for sql in [
            "CREATE USER app WITH PASSWORD $$hunter2$$",
            "create role app login encrypted password E'hunter2'",
            "ALTER USER app VALID UNTIL 'hunter2'",
            "SELECT set_config('app.secret', 'hunter2', false)",
            "SELECT crypt('hunter2', gen_salt('bf'))",
            "UPDATE t SET \"API_KEY\" = U&'hunter2'",
        ] {
            let out = sanitize_for_log(sql, &[]);
            assert!(!out.contains("hunter2"), "{sql} -> {out}");
        }
    }

    #[test]
    fn never_prints_sensitive_params() {
        let out = sanitize_for_log(
            "select * from users where password = $1",
            &[Some("hunter2")],
        );
        assert_eq!(
            out,
            "select * from users where password = $1 -- params: $1=<redacted>"
        );
        let out = sanitize_for_log(
            "SELECT * FROM t WHERE user_ssn = $1 AND n = 1234",
            &[Some("1"), None],
        );
        assert_eq!(
            out,
            "SELECT * FROM t WHERE user_ssn = $1 AND n = *** -- params: $1=<redacted>, $2=NULL"
        );
        let out = sanitize_for_log("UPDATE cards SET credit_card = 4111111111111111", &[]);
        assert!(!out.contains("4111"), "{out}");
    }

    #[test]
    fn not_sensitive_shows_values() {
        let out = sanitize_for_log(
            "SELECT * FROM classname WHERE a = $1 AND b = $2 AND c = $3 AND d = 'x'",
            &[Some("it's"), None, Some(&"v".repeat(65))],
        );
        assert_eq!(
            out,
            "SELECT * FROM classname WHERE a = $1 AND b = $2 AND c = $3 AND d = 'x' \
             -- params: $1='it''s', $2=NULL, $3=<65 chars>"
        );
        let out = sanitize_for_log("SELECT $1", &[Some("a\nb")]);
        assert_eq!(out, "SELECT $1 -- params: $1='a\\nb'");
        assert_eq!(
            sanitize_for_log("SELECT $1", &[Some(&"v".repeat(64))]),
            format!("SELECT $1 -- params: $1='{}'", "v".repeat(64))
        );
    }

    #[test]
    fn long_literals_are_truncated() {
        let lit = format!("'{}'", "abcdefghij".repeat(7));
        let out = sanitize_for_log(&format!("SELECT {lit}"), &[]);
        assert_eq!(out, "SELECT 'abcdefghijabcdef…(70 chars)'");
        let out = sanitize_for_log(&format!("SELECT $f${}$f$", "x".repeat(65)), &[]);
        assert_eq!(out, format!("SELECT $f${}…(65 chars)$f$", "x".repeat(16)));
        // A cut through a doubled quote does not leave a dangling quote.
        let out = sanitize_for_log(
            &format!("SELECT '{}''{}'", "a".repeat(15), "b".repeat(60)),
            &[],
        );
        assert_eq!(out, format!("SELECT '{}…(77 chars)'", "a".repeat(15)));
        // Exactly 64 characters are kept.
        let lit = format!("'{}'", "q".repeat(64));
        assert_eq!(sanitize_for_log(&lit, &[]), lit);
        // Sensitive wins over truncation.
        let out = sanitize_for_log(&format!("SELECT 'secret', '{}'", "z".repeat(100)), &[]);
        assert_eq!(out, "SELECT '***', '***'");
    }

    #[test]
    fn unterminated_and_odd_inputs() {
        assert_eq!(sanitize_for_log("'", &[]), "'");
        assert_eq!(sanitize_for_log("$$", &[]), "$$");
        assert_eq!(sanitize_for_log("$a$", &[]), "$a$");
        let out = sanitize_for_log(&format!("SELECT $a${}", "y".repeat(70)), &[]);
        assert_eq!(out, format!("SELECT $a${}…(70 chars)$a$", "y".repeat(16)));
        assert_eq!(sanitize_for_log("SELECT 'password", &[]), "SELECT '***'");
        assert_eq!(sanitize_for_log("a\0b", &[]), "a\\u{0}b");
    }
}
