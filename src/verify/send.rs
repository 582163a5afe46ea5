//! Sending one recorded exchange again, the way its client sent it.

use std::pin::pin;

use bytes::BytesMut;
use futures_util::{SinkExt as _, TryStreamExt as _};
use tokio_postgres::types::{to_sql_checked, Format as WireFormat, IsNull, Kind, ToSql, Type};

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
    /// Parse (with the parameter types the client sent), Describe, Sync,
    /// then Bind with the recorded values, Execute, Sync.
    Extended {
        /// The SQL.
        sql: &'a str,
        /// The recorded parameters.
        params: &'a [Param],
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
        (Some(params), _) => Request::Extended {
            sql: &ex.sql,
            params,
        },
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
/// its SQL does. Sent as a simple query, a COPY that now starts would
/// leave tokio-postgres waiting for data it cannot send.
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

/// Sends `request` and reads its whole answer. `Err` is what
/// tokio-postgres said: a server's error (the answer being verified, which
/// the recorder wrote) or a broken connection.
pub(super) async fn send(
    client: &tokio_postgres::Client,
    request: &Request<'_>,
) -> Result<(), tokio_postgres::Error> {
    match request {
        Request::Simple(sql) => client.simple_query(sql).await.map(|_| ()),
        Request::Prepare(sql) => {
            let statement = client.prepare(sql).await?;
            if statement.params().is_empty() {
                let rows = client
                    .query_raw(&statement, std::iter::empty::<&str>())
                    .await?;
                drain(rows).await?;
            }
            Ok(())
        }
        Request::Extended { sql, params } => {
            // Prepared first (Parse, Describe, Sync), then bound and
            // executed: the recorder learns the columns' types before the
            // rows come, so it writes them as canonical text, as it did
            // for the recorded client.
            let types: Vec<Type> = params.iter().map(|p| param_type(p.type_oid)).collect();
            let statement = client.prepare_typed(sql, &types).await?;
            let values = params.iter().map(|p| Recorded(&p.value));
            drain(client.query_raw(&statement, values).await?).await
        }
        Request::CopyIn { sql, data } => {
            let mut sink = pin!(client.copy_in::<_, bytes::Bytes>(*sql).await?);
            if !data.is_empty() {
                sink.send(bytes::Bytes::copy_from_slice(data)).await?;
            }
            sink.finish().await.map(|_| ())
        }
        Request::CopyOut(sql) => {
            let mut data = pin!(client.copy_out(*sql).await?);
            while data.try_next().await?.is_some() {}
            Ok(())
        }
    }
}

async fn drain(rows: tokio_postgres::RowStream) -> Result<(), tokio_postgres::Error> {
    let mut rows = pin!(rows);
    while rows.try_next().await?.is_some() {}
    Ok(())
}

/// The type a client put in Parse for a parameter, as tokio-postgres
/// sends it: its OID (0, unspecified, lets the server infer it, as it did
/// when the exchange was recorded).
pub(super) fn param_type(oid: u32) -> Type {
    Type::from_oid(oid)
        .unwrap_or_else(|| Type::new(format!("oid {oid}"), oid, Kind::Simple, String::new()))
}

/// A recorded parameter value, sent as it was recorded: text in text
/// format without any conversion (the server parses it as the parameter's
/// type, as it parsed the client's), raw bytes in their recorded format.
#[derive(Debug)]
pub(super) struct Recorded<'a>(pub(super) &'a Value);

impl ToSql for Recorded<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Value::Null => return Ok(IsNull::Yes),
            Value::Text(t) => out.extend_from_slice(t.as_bytes()),
            Value::Raw { hex, .. } => out.extend_from_slice(&hex::decode(hex)?),
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> WireFormat {
        match self.0 {
            Value::Raw {
                format: Format::Binary,
                ..
            } => WireFormat::Binary,
            Value::Raw {
                format: Format::Text,
                ..
            }
            | Value::Text(_)
            | Value::Null => WireFormat::Text,
        }
    }

    to_sql_checked!();
}

/// Whether a session is inside a transaction block after `results`, as
/// their command tags say (an error inside a block leaves it open).
pub(super) fn in_transaction_after(open: bool, results: &[QueryResult]) -> bool {
    results.iter().fold(open, |open, r| match r.tag.as_deref() {
        Some("BEGIN" | "START TRANSACTION") => true,
        Some("COMMIT" | "ROLLBACK" | "PREPARE TRANSACTION") => false,
        _ => open,
    })
}
