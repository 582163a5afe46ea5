//! Sending one recorded exchange again, the way its client sent it.

use super::client::{describe_of, Answer, Broken, Conn, Describe};
use super::SkipReason;
use crate::fixture::{Exchange, Format, Param, Phase, QueryResult, Value, PROTOCOL_SQL_PREFIX};

/// How an exchange is sent again.
#[derive(Debug, PartialEq)]
pub(super) enum Request<'a> {
    /// One simple query, the SQL exactly as recorded.
    Simple(&'a str),
    /// An error recorded at Parse: Parse and Describe (then Bind and
    /// Execute with no parameters if it now parses and takes none, as the
    /// client that sent it would have).
    Prepare(&'a str),
    /// Parse (with the parameter types the client sent), Bind with the
    /// recorded values, Execute, with the Describe its client sent.
    Extended {
        /// The SQL.
        sql: &'a str,
        /// The recorded parameters.
        params: &'a [Param],
        /// Which Describe its client sent.
        describe: Describe,
        /// The result formats asked for, one per column.
        result_formats: Vec<Format>,
    },
    /// `COPY ... FROM STDIN` with the recorded data.
    CopyIn {
        /// The SQL.
        sql: &'a str,
        /// Every CopyData byte the client sent.
        data: Vec<u8>,
    },
    /// `COPY ... TO STDOUT`.
    CopyOut(&'a str),
}

/// How `ex` is sent again, or why it is not.
pub(super) fn classify(ex: &Exchange) -> Result<Request<'_>, SkipReason> {
    if ex.sql.starts_with(PROTOCOL_SQL_PREFIX) {
        return Err(SkipReason::CursorPortal);
    }
    if ex.phase == Phase::Describe {
        return Err(SkipReason::DescribedOnly);
    }
    let placeholder = Value::Text(crate::fixture::redact::REDACTED.into());
    if ex.sql.contains(crate::fixture::redact::REDACTED)
        || ex.params.iter().flatten().any(|p| p.value == placeholder)
    {
        return Err(SkipReason::Redacted);
    }
    if ex.results.iter().any(|r| r.suspended) {
        return Err(SkipReason::SuspendedPortal);
    }
    let copy = copy_direction(&ex.sql, &ex.results);
    if let Some(copy_in) = &ex.copy_in {
        if copy_in.failed.is_some() {
            return Err(SkipReason::CopyFail);
        }
    }
    if copy.is_some() && ex.results.len() > 1 {
        return Err(SkipReason::CopyInBatch);
    }
    match copy {
        Some(Copy::In) => {
            let data = match ex.copy_in.as_ref().map(|c| &c.data) {
                Some(Value::Text(t)) => t.as_bytes().to_vec(),
                // The loader checked the hex.
                Some(Value::Raw { hex, .. }) => hex::decode(hex).unwrap_or_default(),
                Some(Value::Null) | None => Vec::new(),
            };
            return Ok(Request::CopyIn { sql: &ex.sql, data });
        }
        Some(Copy::Out) => return Ok(Request::CopyOut(&ex.sql)),
        None => {}
    }
    Ok(match (&ex.params, ex.phase) {
        (Some(params), _) => {
            let describe = describe_of(ex).unwrap_or(Describe::Portal);
            Request::Extended {
                sql: &ex.sql,
                params,
                describe,
                result_formats: result_formats(ex, describe),
            }
        }
        (None, Phase::Parse) => Request::Prepare(&ex.sql),
        (None, _) => Request::Simple(&ex.sql),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copy {
    In,
    Out,
}

/// Whether an exchange is a COPY that exchanges data with the client: its
/// recorded answer says so, else (a COPY that failed before it started)
/// its SQL does (a COPY that now starts is then given its recorded data).
fn copy_direction(sql: &str, results: &[QueryResult]) -> Option<Copy> {
    if results.iter().any(|r| r.copy_in.is_some()) {
        return Some(Copy::In);
    }
    if results.iter().any(|r| r.copy_out.is_some()) {
        return Some(Copy::Out);
    }
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ';')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if words.first().map(String::as_str) != Some("copy") {
        return None;
    }
    let follows = |a: &str, b: &str| words.windows(2).any(|w| w[0] == a && w[1] == b);
    if follows("from", "stdin") {
        Some(Copy::In)
    } else if follows("to", "stdout") {
        Some(Copy::Out)
    } else {
        None
    }
}

/// Sends `request` on `conn` and reads its whole answer. `Err` is a
/// broken connection; a server's error is part of the answer (the recorder
/// writes it).
pub(super) async fn send(conn: &mut Conn, request: &Request<'_>) -> Result<Answer, Broken> {
    match request {
        Request::Simple(sql) | Request::CopyOut(sql) => conn.simple(sql, None).await,
        Request::Prepare(sql) => conn.prepare(sql).await,
        Request::Extended {
            sql,
            params,
            describe,
            result_formats,
        } => conn.extended(sql, params, *describe, result_formats).await,
        Request::CopyIn { sql, data } => conn.simple(sql, Some(data)).await,
    }
}

/// The result formats a bound query asks for, one per recorded column:
/// binary where the recorded answer holds raw binary values, or where its
/// client described the statement first (as tokio-postgres and JDBC do,
/// asking for binary results) and pgsim has a codec for the type; text
/// otherwise (libpq's default).
fn result_formats(ex: &Exchange, describe: Describe) -> Vec<Format> {
    let Some(result) = ex.results.first() else {
        return Vec::new();
    };
    let width = result
        .columns
        .as_ref()
        .map(Vec::len)
        .or_else(|| result.rows.first().map(Vec::len))
        .unwrap_or(0);
    (0..width)
        .map(|i| {
            let raw_binary = result.rows.iter().any(|row| {
                matches!(
                    row.get(i),
                    Some(Value::Raw {
                        format: Format::Binary,
                        ..
                    })
                )
            });
            let codec = result
                .columns
                .as_ref()
                .and_then(|c| c.get(i))
                .is_some_and(|c| crate::types::is_supported(c.type_oid));
            if raw_binary || (describe == Describe::Statement && codec) {
                Format::Binary
            } else {
                Format::Text
            }
        })
        .collect()
}
