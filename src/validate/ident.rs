//! Validating, quoting and unquoting identifiers, and quoting literals.
//!
//! PostgreSQL folds unquoted identifiers to lowercase (only ASCII `A`-`Z`
//! in multibyte encodings such as UTF-8) and truncates names longer than
//! `NAMEDATALEN - 1` = 63 bytes. Quoted identifiers keep their exact text.
//! Neither identifiers nor text values can contain NUL (`\0`); the quoting
//! functions here pass NUL through unchanged, and the server rejects it.

use thiserror::Error;

use crate::key::lexer::{is_ident_cont, is_ident_start};

/// Longest identifier PostgreSQL keeps without truncating (`NAMEDATALEN - 1`).
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// Keywords that cannot be used as unquoted names: PostgreSQL's fully
/// reserved keywords, then (from `authorization` on) the ones reserved
/// except as function or type names (`JOIN`, `LEFT`, `IS`, ...), which
/// cannot name tables or columns either.
const RESERVED: &str =
    "all analyse analyze and any array as asc asymmetric both case cast check collate \
     column constraint create current_catalog current_date current_role current_time \
     current_timestamp current_user default deferrable desc distinct do else end except \
     false fetch for foreign from grant group having in initially intersect into lateral \
     leading limit localtime localtimestamp not null offset on only or order placing \
     primary references returning select session_user some symmetric table then to \
     trailing true union unique user using variadic when where window with \
     authorization binary collation concurrently cross current_schema freeze full ilike \
     inner is isnull join left like natural notnull outer overlaps right similar \
     tablesample verbose";

/// Whether `word` is a reserved keyword (ASCII case-insensitively).
fn is_reserved(word: &str) -> bool {
    RESERVED
        .split_ascii_whitespace()
        .any(|kw| kw.eq_ignore_ascii_case(word))
}

/// Why a name cannot be used as an unquoted identifier.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdentError {
    /// The name is the empty string.
    #[error("identifier is empty")]
    Empty,
    /// The name is longer than 63 bytes; PostgreSQL would truncate it.
    #[error(
        "identifier {name:?} is {bytes} bytes long, more than the {MAX_IDENTIFIER_BYTES} \
         PostgreSQL keeps"
    )]
    TooLong {
        /// The offending name.
        name: String,
        /// Its length in bytes.
        bytes: usize,
    },
    /// The name contains a character not allowed in unquoted identifiers.
    #[error("identifier {name:?} has invalid character {ch:?} at byte {at}; quote it")]
    InvalidChar {
        /// The offending name.
        name: String,
        /// The first invalid character.
        ch: char,
        /// Byte offset of `ch` in `name`.
        at: usize,
    },
    /// The name is a reserved keyword.
    #[error("identifier {name:?} is a reserved keyword; quote it")]
    Reserved {
        /// The offending name.
        name: String,
    },
    /// The name has uppercase letters, which PostgreSQL would fold to
    /// lowercase when unquoted.
    #[error(
        "identifier {name:?} contains uppercase letters, which PostgreSQL folds to lowercase \
         when unquoted; quote it to keep its case"
    )]
    NeedsQuoting {
        /// The offending name.
        name: String,
    },
}

/// Checks that `name` can be written unquoted and still mean exactly `name`.
///
/// Requirements: non-empty; at most 63 bytes; first character a Unicode
/// letter or `_`; the rest letters, digits (any Unicode alphanumeric), `_`
/// or `$`; not a reserved keyword (case-insensitively); no uppercase
/// letters (unquoted `Users` means `users`). Checks run in that order and
/// the first failure is reported.
pub fn validate_identifier(name: &str) -> Result<(), IdentError> {
    if name.is_empty() {
        return Err(IdentError::Empty);
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(IdentError::TooLong {
            name: name.to_owned(),
            bytes: name.len(),
        });
    }
    for (at, ch) in name.char_indices() {
        let ok = ch.is_alphabetic() || ch == '_' || (at > 0 && (ch.is_alphanumeric() || ch == '$'));
        if !ok {
            return Err(IdentError::InvalidChar {
                name: name.to_owned(),
                ch,
                at,
            });
        }
    }
    if is_reserved(name) {
        return Err(IdentError::Reserved {
            name: name.to_owned(),
        });
    }
    if name.chars().any(char::is_uppercase) {
        return Err(IdentError::NeedsQuoting {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Double-quotes `name`, doubling any embedded `"`: `a"b` gives `"a""b"`.
///
/// Always safe to splice into SQL as an identifier (NUL aside, which the
/// server rejects). Names longer than 63 bytes are still truncated by the
/// server.
pub fn quote_identifier(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Returns `name` bare when [`validate_identifier`] accepts it, otherwise
/// [`quote_identifier`]`(name)`.
pub fn quote_identifier_if_needed(name: &str) -> String {
    match validate_identifier(name) {
        Ok(()) => name.to_owned(),
        Err(_) => quote_identifier(name),
    }
}

/// Inverse of quoting: what identifier `s` denotes when written in SQL.
///
/// * `"..."` gives the exact text between the quotes with `""` undoubled
///   (`""` gives the empty string, the inverse of `quote_identifier("")`,
///   although the server rejects zero-length identifiers).
/// * A bare identifier (a letter, `_` or non-ASCII character, then also
///   digits and `$`, as PostgreSQL's lexer defines it) gives its fold:
///   ASCII letters lowercased, other characters kept, as PostgreSQL does in
///   UTF-8. Reserved keywords are not identifiers and give `None`.
/// * Anything else (a lone `"`, an unescaped `"` inside, surrounding
///   spaces, `U&"..."`, qualified names) gives `None`.
///
/// Length is not checked: PostgreSQL truncates long names in both forms.
pub fn unquote_identifier(s: &str) -> Option<String> {
    if let Some(rest) = s.strip_prefix('"') {
        let inner = rest.strip_suffix('"')?;
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '"' && chars.next() != Some('"') {
                return None;
            }
            out.push(c);
        }
        return Some(out);
    }
    let bytes = s.as_bytes();
    let first = *bytes.first()?;
    if !is_ident_start(first) || !bytes.iter().all(|&b| is_ident_cont(b)) || is_reserved(s) {
        return None;
    }
    Some(s.to_ascii_lowercase())
}

/// `schema.name`, each part quoted only if needed
/// ([`quote_identifier_if_needed`]).
pub fn quote_qualified(schema: &str, name: &str) -> String {
    format!(
        "{}.{}",
        quote_identifier_if_needed(schema),
        quote_identifier_if_needed(name)
    )
}

/// A SQL string literal denoting exactly `value`: `'` + `value` with `'`
/// doubled + `'`.
///
/// Assumes `standard_conforming_strings = on` (the default since
/// PostgreSQL 9.1), under which backslashes in `'...'` are ordinary
/// characters, so `a\b` gives `'a\b'`. NUL bytes cannot be stored in
/// PostgreSQL text: a value containing `\0` is still quoted as is, and the
/// server rejects it.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for ok in [
            "users",
            "_x",
            "a1",
            "a$b",
            "élan",
            "straße",
            "日本",
            "type",
            "x".repeat(63).as_str(),
        ] {
            assert_eq!(validate_identifier(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(validate_identifier(""), Err(IdentError::Empty));
        let long = "a".repeat(64);
        assert_eq!(
            validate_identifier(&long),
            Err(IdentError::TooLong {
                name: long.clone(),
                bytes: 64
            })
        );
        // 32 two-byte chars = 64 bytes.
        assert!(matches!(
            validate_identifier(&"é".repeat(32)),
            Err(IdentError::TooLong { bytes: 64, .. })
        ));
        assert_eq!(
            validate_identifier("1abc"),
            Err(IdentError::InvalidChar {
                name: "1abc".into(),
                ch: '1',
                at: 0
            })
        );
        assert_eq!(
            validate_identifier("$a"),
            Err(IdentError::InvalidChar {
                name: "$a".into(),
                ch: '$',
                at: 0
            })
        );
        assert_eq!(
            validate_identifier("ab-c"),
            Err(IdentError::InvalidChar {
                name: "ab-c".into(),
                ch: '-',
                at: 2
            })
        );
        for bad in ["a b", "a\"b", "a.b", "a\0", "é ", "a;"] {
            assert!(
                matches!(
                    validate_identifier(bad),
                    Err(IdentError::InvalidChar { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn reserved_and_case() {
        for kw in ["select", "SELECT", "Where", "user", "current_user", "join"] {
            assert_eq!(
                validate_identifier(kw),
                Err(IdentError::Reserved { name: kw.into() }),
                "{kw}"
            );
        }
        assert_eq!(
            validate_identifier("Users"),
            Err(IdentError::NeedsQuoting {
                name: "Users".into()
            })
        );
        assert!(matches!(
            validate_identifier("élÉ"),
            Err(IdentError::NeedsQuoting { .. })
        ));
    }

    #[test]
    fn error_messages_name_the_identifier() {
        let msg = validate_identifier("Users").unwrap_err().to_string();
        assert!(msg.contains("\"Users\"") && msg.contains("quote"), "{msg}");
        let msg = validate_identifier("select").unwrap_err().to_string();
        assert!(
            msg.contains("\"select\"") && msg.contains("reserved"),
            "{msg}"
        );
        let msg = validate_identifier("a-b").unwrap_err().to_string();
        assert!(msg.contains("\"a-b\"") && msg.contains("'-'"), "{msg}");
        let msg = validate_identifier(&"a".repeat(70))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("70 bytes"), "{msg}");
        assert_eq!(IdentError::Empty.to_string(), "identifier is empty");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_identifier(""), "\"\"");
        assert_eq!(quote_identifier_if_needed("users"), "users");
        assert_eq!(quote_identifier_if_needed("Users"), "\"Users\"");
        assert_eq!(quote_identifier_if_needed("select"), "\"select\"");
        assert_eq!(quote_identifier_if_needed("my table"), "\"my table\"");
        assert_eq!(quote_qualified("public", "Users"), "public.\"Users\"");
        assert_eq!(quote_qualified("My Schema", "t"), "\"My Schema\".t");
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote_identifier("\"a\"\"b\"").as_deref(), Some("a\"b"));
        assert_eq!(unquote_identifier("\"\"").as_deref(), Some(""));
        assert_eq!(unquote_identifier("\"Users\"").as_deref(), Some("Users"));
        assert_eq!(unquote_identifier("Users").as_deref(), Some("users"));
        assert_eq!(unquote_identifier("ÉA$1").as_deref(), Some("Éa$1"));
        assert_eq!(unquote_identifier("\"select\"").as_deref(), Some("select"));
        for bad in [
            "", "\"", "\"a", "a\"", "\"a\"b\"", "\"a\"\"", "select", "1a", "a b", " a", "a.b",
            "U&\"a\"",
        ] {
            assert_eq!(unquote_identifier(bad), None, "{bad}");
        }
    }

    #[test]
    fn literals() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(""), "''");
        assert_eq!(quote_literal("a\\b"), "'a\\b'");
        assert_eq!(quote_literal("a\0b"), "'a\0b'");
        // The literal scans as a single string token.
        let lit = quote_literal("x'' \\' -- /* $$");
        let toks: Vec<_> = crate::key::scan(&lit).collect();
        assert_eq!(toks, vec![(crate::key::TokenKind::String, lit.as_str())]);
    }
}
