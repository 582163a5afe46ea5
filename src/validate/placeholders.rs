//! Counting `$n` parameter placeholders.

use thiserror::Error;

use super::{lexemes, Lexeme};
use crate::key::lexer::is_ident_start;

/// The number of parameters `sql` expects: the highest `n` among its `$n`
/// placeholders, or 0 if there are none.
///
/// Only code counts: `$1` inside strings, comments, quoted identifiers or
/// dollar quotes (`$$ $1 $$`) is ignored, and `a$1` is part of an
/// identifier. `$1abc` is a lexer error in PostgreSQL ("trailing junk after
/// parameter") and is not counted. Gaps (`$1, $3`) still count up to the
/// highest number (PostgreSQL then has to infer `$2`'s type, which may
/// fail). Numbers too large for `usize` saturate.
pub fn placeholder_count(sql: &str) -> usize {
    lexemes(sql)
        .into_iter()
        .filter_map(|(lexeme, _)| match lexeme {
            Lexeme::Word(w) => param_number(w),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// The number of a code word of the form `$<digits>`, optionally followed
/// by more `$`s (which PostgreSQL lexes as separate tokens).
fn param_number(word: &str) -> Option<usize> {
    let digits = word.strip_prefix('$')?;
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 || digits.bytes().skip(end).any(is_ident_start) {
        return None;
    }
    Some(digits[..end].bytes().fold(0usize, |n, d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    }))
}

/// The number of bind parameters given does not match the query.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParamCountError {
    /// The query's highest placeholder differs from the number of values.
    #[error("query expects {expected} parameters ({}) but {given} were given", range(*.expected))]
    Mismatch {
        /// Parameters the query expects ([`placeholder_count`]).
        expected: usize,
        /// Parameters supplied.
        given: usize,
    },
}

/// `$1..$N` for the error message.
fn range(n: usize) -> String {
    match n {
        0 => "no placeholders".to_owned(),
        1 => "$1".to_owned(),
        n => format!("$1..${n}"),
    }
}

/// Checks that exactly `given` parameters are supplied for `sql`, as the
/// server requires when binding (too many is an error too).
pub fn check_params(sql: &str, given: usize) -> Result<(), ParamCountError> {
    let expected = placeholder_count(sql);
    if expected == given {
        Ok(())
    } else {
        Err(ParamCountError::Mismatch { expected, given })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_highest_placeholder_in_code() {
        assert_eq!(placeholder_count("SELECT 1"), 0);
        assert_eq!(placeholder_count("SELECT $1"), 1);
        assert_eq!(placeholder_count("SELECT $2, $1, $10"), 10);
        assert_eq!(placeholder_count("SELECT $1,$3"), 3);
        assert_eq!(placeholder_count("SELECT f($2)+$1::int"), 2);
        assert_eq!(placeholder_count("SELECT $01"), 1);
        assert_eq!(placeholder_count("SELECT $0"), 0);
        assert_eq!(
            placeholder_count("x=$99999999999999999999999999"),
            usize::MAX
        );
    }

    #[test]
    fn ignores_placeholders_outside_code() {
        for sql in [
            "SELECT '$1'",
            "SELECT \"$1\"",
            "SELECT 1 -- $1",
            "SELECT /* $1 */ 1",
            "SELECT $$ $1 $$",
            "SELECT $q$ $1 $q$",
            "SELECT a$1 FROM t",
            "SELECT $1abc",
            "SELECT $1_0",
            "SELECT $ 1",
            "SELECT $a",
            "SELECT E'\\' $1'",
        ] {
            assert_eq!(placeholder_count(sql), 0, "{sql}");
        }
        assert_eq!(placeholder_count("SELECT $1$$ $5 $$"), 1);
        assert_eq!(placeholder_count("SELECT $2$"), 2);
        assert_eq!(placeholder_count("SELECT \"a\"$3"), 3);
    }

    #[test]
    fn check_params_messages() {
        assert_eq!(check_params("SELECT $1, $2", 2), Ok(()));
        assert_eq!(check_params("SELECT 1", 0), Ok(()));
        let err = check_params("SELECT $1, $2", 1).unwrap_err();
        assert_eq!(
            err,
            ParamCountError::Mismatch {
                expected: 2,
                given: 1
            }
        );
        assert_eq!(
            err.to_string(),
            "query expects 2 parameters ($1..$2) but 1 were given"
        );
        assert_eq!(
            check_params("SELECT 1", 3).unwrap_err().to_string(),
            "query expects 0 parameters (no placeholders) but 3 were given"
        );
        assert_eq!(
            check_params("SELECT $1", 0).unwrap_err().to_string(),
            "query expects 1 parameters ($1) but 0 were given"
        );
    }
}
