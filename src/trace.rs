//! Field values for `tracing` spans, shared by the toolkit, the mock
//! server and the recorder (README "Tracing").
//!
//! Each wraps borrowed data and does its work only when a subscriber
//! formats the field: with no subscriber, a span costs a check and
//! nothing is lexed, sanitized or allocated.

use std::fmt;

use crate::validate::{sanitize_for_log, statement_kind};

/// SQL as spans show it: [`sanitize_for_log`] without parameters (one
/// line, secrets masked, long literals cut). Parameter values are never
/// fields.
pub(crate) struct Sql<'a>(pub(crate) &'a str);

impl fmt::Display for Sql<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&sanitize_for_log(self.0, &[]))
    }
}

/// The statement kind of some SQL ([`statement_kind`]), as its name.
pub(crate) struct Kind<'a>(pub(crate) &'a str);

impl fmt::Display for Kind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(statement_kind(self.0).as_str())
    }
}

/// How a call ended, for an `outcome` field: `ok`, the SQLSTATE a server
/// answered, or `error`.
pub(crate) fn outcome<T>(result: &crate::Result<T>) -> &str {
    match result {
        Ok(_) => "ok",
        Err(e) => error_outcome(e),
    }
}

/// An error as an `outcome` field: its SQLSTATE, `timeout`, `connection`
/// or `error` (never its message, which may quote the query).
pub(crate) fn error_outcome(e: &crate::Error) -> &str {
    match e.code() {
        Some(code) => code,
        None if e.is_timeout() => "timeout",
        None if e.is_connection_error() => "connection",
        None => "error",
    }
}
