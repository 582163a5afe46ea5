//! Unit tests for the `lexer` module.

use super::TokenKind::*;
use super::*;

fn spans(sql: &str) -> Vec<(TokenKind, &str)> {
    let v: Vec<_> = scan(sql).collect();
    assert_eq!(v.iter().map(|s| s.1).collect::<std::string::String>(), sql);
    v
}

#[test]
fn basic_spans() {
    assert_eq!(
        spans("SELECT 'a''b' -- c\n"),
        vec![
            (Code, "SELECT"),
            (Whitespace, " "),
            (String, "'a''b'"),
            (Whitespace, " "),
            (LineComment, "-- c"),
            (Whitespace, "\n"),
        ]
    );
    assert!(spans("").is_empty());
}

#[test]
fn nested_block_comments() {
    let v = spans("a /* x /* y */ z */ b");
    assert_eq!(v[2], (BlockComment, "/* x /* y */ z */"));
    assert_eq!(v[4], (Code, "b"));
    assert!(block_comment_is_closed(v[2].1));
    assert!(!block_comment_is_closed("/*/"));
    assert!(block_comment_is_closed("/**/"));
    assert_eq!(spans("x/* a /* b */")[1], (BlockComment, "/* a /* b */"));
    assert_eq!(spans("a+/*c*/b")[0], (Code, "a+"));
}

#[test]
fn e_strings() {
    assert_eq!(spans(r"E'\'' x")[1], (String, r"'\''"));
    assert_eq!(spans(r"e'a\\' x")[1], (String, r"'a\\'"));
    // Without the prefix a backslash is literal.
    assert_eq!(spans(r"'\' x'")[0], (String, r"'\'"));
    // `E` as the end of a longer identifier is not a prefix.
    assert_eq!(spans(r"xE'\' x'")[1], (String, r"'\'"));
    assert_eq!(spans(r"1E'\' x'")[1], (String, r"'\'"));
    // After a closed token, `E` starts a new word.
    assert_eq!(spans(r#""t"E'\'' x"#)[2], (String, r"'\''"));
    assert_eq!(spans(r"U&'a\' b'")[1], (String, r"'a\'"));
    assert_eq!(spans("B'01' X'ff'")[1], (String, "'01'"));
}

#[test]
fn quote_continuation_keeps_escape_mode() {
    let v = spans("E'a'\n'\\'' x");
    assert_eq!(v[3], (String, "'\\''"));
    let v = spans("E'a' -- c\n  '\\'' x");
    assert_eq!(v[5], (String, "'\\''"));
    // No newline, or a block comment: not a continuation.
    assert_eq!(spans("E'a' '\\' x'")[3], (String, "'\\'"));
    assert_eq!(spans("E'a'/**/\n'\\' x'")[4], (String, "'\\'"));
    assert!(is_quote_continuation(b" -- c\n "));
    assert!(!is_quote_continuation(b" \x0b\n"));
    assert!(is_quote_continuation(b"\n\x0b"));
}

#[test]
fn quoted_identifiers() {
    assert_eq!(
        spans(r#"SELECT "a "" b" x"#)[2],
        (QuotedIdent, r#""a "" b""#)
    );
    assert_eq!(spans(r#""--" x"#)[0], (QuotedIdent, r#""--""#));
}

#[test]
fn dollar_quotes() {
    let v = spans("SELECT $$a /* b ' c$$, $fn$ x $$ y $fn$ + $1");
    assert_eq!(v[2], (DollarString, "$$a /* b ' c$$"));
    assert_eq!(v[5], (DollarString, "$fn$ x $$ y $fn$"));
    assert_eq!(v[7], (Code, "+"));
    assert_eq!(v[9], (Code, "$1"));
    // `$` directly after a parameter's digits starts a new token.
    assert_eq!(
        spans("$1$$x$$"),
        vec![(Code, "$1"), (DollarString, "$$x$$")]
    );
    assert_eq!(spans("$1$ x")[0], (Code, "$1$"));
    assert_eq!(spans("a$b$ c")[0], (Code, "a$b$"));
    assert_eq!(spans("a$$b$$")[0], (Code, "a$$b$$"));
    assert_eq!(spans("1$$ x$$")[1], (DollarString, "$$ x$$"));
    assert_eq!(spans("1.5e3a$b$1 x")[0], (Code, "1.5e3a$b$1"));
    assert_eq!(spans("($q$)$q$)")[1], (DollarString, "$q$)$q$"));
    assert_eq!(spans("$1a$q$ x$q$")[0], (Code, "$1a$q$"));
    assert_eq!(spans("$2")[0], (Code, "$2"));
    assert_eq!(spans("$_1$ '$_1$")[0], (DollarString, "$_1$ '$_1$"));
    assert_eq!(spans("$1x$ y")[0], (Code, "$1x$"));
    assert_eq!(spans("$ab $$c$$")[0], (Code, "$ab"));
    assert_eq!(spans("$$a$$$$b$$")[1], (DollarString, "$$b$$"));
}

#[test]
fn comment_markers_inside_quotes() {
    assert_eq!(spans("'-- no' x")[0], (String, "'-- no'"));
    assert_eq!(spans("'/* no' x")[0], (String, "'/* no'"));
    assert_eq!(spans("$$ /* $$ x")[0], (DollarString, "$$ /* $$"));
    assert_eq!(spans("/* ' */ x")[0], (BlockComment, "/* ' */"));
    assert_eq!(spans("-- '\nx")[2], (Code, "x"));
}

#[test]
fn unterminated_inputs_run_to_end() {
    for (sql, kind) in [
        ("'abc", String),
        ("'ab\\", String),
        ("\"abc", QuotedIdent),
        ("$x$abc $x", DollarString),
        ("/* a /* b */", BlockComment),
        ("-- abc", LineComment),
        ("'a''", String),
    ] {
        assert_eq!(spans(sql), vec![(kind, sql)], "{sql}");
    }
    assert_eq!(spans("E'ab\\"), vec![(Code, "E"), (String, "'ab\\")]);
    assert_eq!(
        spans("x 'é"),
        vec![(Code, "x"), (Whitespace, " "), (String, "'é")]
    );
    assert_eq!(spans("E'\\é'")[1], (String, "'\\é'"));
}
