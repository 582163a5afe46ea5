//! A recorded answer ready to be written to a socket. Encoded bytes are made
//! once per wire format and cached, so serving an answer is a copy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};

use crate::fixture::{Column, ErrorFields, Format, Phase, QueryResult, Value};
use crate::types;
use crate::wire::{self, ColumnWire};

/// SQLSTATE pgsim sends when a recorded value cannot be sent in the format
/// the client asked for.
pub const SQLSTATE_CANNOT_ENCODE: &str = "PGS02";

/// What a statement's result ends with.
#[derive(Debug)]
pub(crate) enum Completion {
    Tag(String),
    Empty,
    Error(ErrorFields),
}

/// One recorded statement result.
#[derive(Debug)]
pub(crate) struct PreparedResult {
    pub(crate) notices: Vec<ErrorFields>,
    pub(crate) columns: Option<Arc<[Column]>>,
    rows: Vec<Vec<Value>>,
    pub(crate) completion: Completion,
    text_rows: OnceLock<Result<Bytes, ErrorFields>>,
    binary_rows: OnceLock<Result<Bytes, ErrorFields>>,
}

/// Which wire formats the client asked for, per column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Formats {
    AllText,
    AllBinary,
    PerColumn(Vec<i16>),
}

impl Formats {
    /// From a Bind message's result format codes.
    pub(crate) fn from_codes(codes: &[i16]) -> Self {
        match codes {
            [] | [0] => Formats::AllText,
            [1] => Formats::AllBinary,
            many if many.iter().all(|c| *c == 0) => Formats::AllText,
            many if many.iter().all(|c| *c == 1) => Formats::AllBinary,
            many => Formats::PerColumn(many.to_vec()),
        }
    }

    pub(crate) fn code(&self, column: usize) -> i16 {
        match self {
            Formats::AllText => 0,
            Formats::AllBinary => 1,
            Formats::PerColumn(c) => c.get(column).copied().unwrap_or(0),
        }
    }
}

pub(crate) fn put_columns(
    buf: &mut BytesMut,
    columns: &[Column],
    formats: &Formats,
) -> Result<(), wire::WireError> {
    wire::put_row_description(
        buf,
        columns.iter().enumerate().map(|(i, c)| ColumnWire {
            name: &c.name,
            table_oid: c.table_oid,
            column_id: c.column_id,
            type_oid: c.type_oid,
            type_size: c.type_size,
            type_modifier: c.typmod,
            format: formats.code(i),
        }),
    )
}

impl PreparedResult {
    pub(crate) fn new(r: QueryResult) -> Self {
        let completion = match (r.error, r.tag) {
            (Some(e), _) => Completion::Error(e),
            (None, Some(tag)) => Completion::Tag(tag),
            (None, None) => Completion::Empty,
        };
        PreparedResult {
            notices: r.notices,
            columns: r.columns.map(Arc::from),
            rows: r.rows,
            completion,
            text_rows: OnceLock::new(),
            binary_rows: OnceLock::new(),
        }
    }

    pub(crate) fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// The DataRow messages for rows `range` in `formats`.
    pub(crate) fn data_rows(
        &self,
        formats: &Formats,
        range: std::ops::Range<usize>,
    ) -> Result<Bytes, ErrorFields> {
        let whole = range.start == 0 && range.end >= self.rows.len();
        let cache = match formats {
            Formats::AllText if whole => Some(&self.text_rows),
            Formats::AllBinary if whole => Some(&self.binary_rows),
            _ => None,
        };
        match cache {
            Some(cell) => cell
                .get_or_init(|| self.encode_rows(formats, 0..self.rows.len()))
                .clone(),
            None => self.encode_rows(formats, range),
        }
    }

    fn encode_rows(
        &self,
        formats: &Formats,
        range: std::ops::Range<usize>,
    ) -> Result<Bytes, ErrorFields> {
        let columns = self.columns.as_deref().unwrap_or(&[]);
        let mut buf = BytesMut::new();
        let mut encoded: Vec<Option<Vec<u8>>> = Vec::with_capacity(columns.len());
        for row in self.rows.get(range).unwrap_or(&[]) {
            encoded.clear();
            for (i, value) in row.iter().enumerate() {
                let type_oid = columns.get(i).map_or(0, |c| c.type_oid);
                encoded.push(encode_value(value, type_oid, formats.code(i))?);
            }
            let refs: Vec<Option<&[u8]>> = encoded.iter().map(|v| v.as_deref()).collect();
            wire::put_data_row(&mut buf, &refs).map_err(|e| cannot_encode(e.to_string()))?;
        }
        Ok(buf.freeze())
    }
}

fn cannot_encode(message: String) -> ErrorFields {
    ErrorFields::error(SQLSTATE_CANNOT_ENCODE, message, None)
}

/// A recorded value in the wire format `format` (0 text, 1 binary).
pub(crate) fn encode_value(
    value: &Value,
    type_oid: u32,
    format: i16,
) -> Result<Option<Vec<u8>>, ErrorFields> {
    match value {
        Value::Null => Ok(None),
        Value::Text(text) if format == 0 => Ok(Some(text.as_bytes().to_vec())),
        Value::Text(text) => types::text_to_binary(type_oid, text).map(Some).map_err(|e| {
            cannot_encode(format!(
                "pgsim cannot send a value of type {type_oid} in binary: {e}; the recording holds only its text form"
            ))
        }),
        Value::Raw { hex: h, format: recorded } => {
            let bytes = hex::decode(h).map_err(|e| cannot_encode(format!("raw value is not hex: {e}")))?;
            if recorded.code() == format {
                return Ok(Some(bytes));
            }
            let converted = match recorded {
                Format::Binary => types::binary_to_text(type_oid, &bytes).map(String::into_bytes),
                Format::Text => std::str::from_utf8(&bytes)
                    .map_err(|_| types::CodecError::InvalidText { oid: type_oid, reason: "not UTF-8".into() })
                    .and_then(|t| types::text_to_binary(type_oid, t)),
            };
            converted.map(Some).map_err(|e| {
                cannot_encode(format!(
                    "pgsim cannot convert a recorded value of type {type_oid} to the requested format: {e}"
                ))
            })
        }
    }
}

/// A recorded exchange as the replay engine serves it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) origin: Arc<Origin>,
    pub(crate) phase: Phase,
    pub(crate) results: Vec<PreparedResult>,
    used: AtomicBool,
}

/// Where an answer was recorded, for reports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    /// The fixture file.
    pub file: String,
    /// The exchange's `seq`.
    pub seq: u64,
    /// The database.
    pub database: String,
    /// The recorded SQL.
    pub sql: String,
}

impl Answer {
    pub(crate) fn new(origin: Origin, phase: Phase, results: Vec<QueryResult>) -> Self {
        Answer {
            origin: Arc::new(origin),
            phase,
            results: results.into_iter().map(PreparedResult::new).collect(),
            used: AtomicBool::new(false),
        }
    }

    /// Notes that the answer was served (for the unused-answers report).
    pub(crate) fn mark_used(&self) {
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn was_used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }
}
