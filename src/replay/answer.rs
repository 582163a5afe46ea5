//! A recorded answer ready to be written to a socket. Encoded bytes are made
//! once per wire format and cached, so serving an answer is a copy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};

use crate::fixture::{AsyncMessage, Column, CopyOut, CopyShape, ErrorFields, Format, Phase, Value};
use crate::types;
use crate::wire::{self, ColumnWire};

/// SQLSTATE pgsim sends when a recorded value cannot be sent in the format
/// the client asked for.
pub const SQLSTATE_CANNOT_ENCODE: &str = "PGS02";

/// What a statement's result ends with.
#[derive(Debug)]
pub(crate) enum Completion {
    Tag(Arc<str>),
    Empty,
    Error(Box<ErrorFields>),
    /// The recording stopped reading the portal after its rows.
    Suspended,
}

/// The rarely present parts of a result, boxed so that the common answer
/// stays small.
#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Extra {
    /// Sent after the completion (ParameterStatus, notifications).
    pub(crate) after: Vec<AsyncMessage>,
    pub(crate) copy_out: Option<CopyOut>,
    pub(crate) copy_in: Option<CopyShape>,
}

/// Writes an asynchronous message as recorded.
pub(crate) fn put_async(buf: &mut BytesMut, m: &AsyncMessage) -> Result<(), wire::WireError> {
    match m {
        AsyncMessage::Notice { fields } => wire::put_notice(buf, fields.to_wire()),
        AsyncMessage::ParameterStatus { name, value } => {
            wire::put_parameter_status(buf, name, value)
        }
        AsyncMessage::Notification {
            pid,
            channel,
            payload,
        } => wire::put_notification(buf, *pid, channel, payload),
    }
}

/// The wire form of a recorded COPY shape.
pub(crate) fn copy_format(shape: &CopyShape) -> wire::CopyFormat {
    wire::CopyFormat {
        overall: shape.format.code() as i8,
        columns: shape.columns.iter().map(|f| f.code()).collect(),
    }
}

/// Writes a recorded COPY TO STDOUT: CopyOutResponse, the data, CopyDone.
pub(crate) fn put_copy_out(buf: &mut BytesMut, copy: &CopyOut) -> Result<(), wire::WireError> {
    wire::put_copy_response(buf, false, &copy_format(&copy.shape))?;
    for chunk in &copy.data {
        match chunk {
            Value::Text(t) => wire::put_copy_data(buf, t.as_bytes())?,
            Value::Raw { hex: h, .. } => {
                let bytes = hex::decode(h).map_err(|e| wire::WireError::Malformed {
                    kind: Some('d'),
                    reason: format!("recorded COPY data is not hex: {e}"),
                })?;
                wire::put_copy_data(buf, &bytes)?;
            }
            Value::Null => {}
        }
    }
    wire::put_copy_done(buf)
}

/// Rows of one result.
#[derive(Debug)]
pub(crate) enum Rows {
    /// Text-format DataRow messages, ready to send as they are (every value
    /// was text or NULL). Usually a slice of one buffer shared by a whole
    /// fixture file.
    Wire { bytes: Bytes, count: usize },
    /// Rows holding raw values, encoded per request.
    Values(Box<[Vec<Value>]>),
}

/// One recorded statement result.
#[derive(Debug)]
pub(crate) struct PreparedResult {
    pub(crate) notices: Box<[ErrorFields]>,
    pub(crate) columns: Option<Arc<[Column]>>,
    pub(crate) rows: Rows,
    pub(crate) completion: Completion,
    /// The recording never saw the row description (see the fixture's
    /// `columns_unknown`): `columns` says nothing.
    pub(crate) columns_unknown: bool,
    pub(crate) extra: Option<Box<Extra>>,
    /// Boxed: most answers are never asked for in binary.
    binary_rows: OnceLock<Box<Result<Bytes, ErrorFields>>>,
}

/// Which wire formats the client asked for, per column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Formats {
    #[default]
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
    pub(crate) fn new(
        notices: Vec<ErrorFields>,
        columns: Option<Arc<[Column]>>,
        rows: Rows,
        completion: Completion,
        columns_unknown: bool,
        extra: Option<Box<Extra>>,
    ) -> Self {
        PreparedResult {
            notices: notices.into_boxed_slice(),
            columns,
            rows,
            completion,
            columns_unknown,
            extra,
            binary_rows: OnceLock::new(),
        }
    }

    fn same_as(&self, other: &PreparedResult) -> bool {
        let columns = match (&self.columns, &other.columns) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            (None, None) => true,
            _ => false,
        };
        let rows = match (&self.rows, &other.rows) {
            (Rows::Wire { bytes: a, .. }, Rows::Wire { bytes: b, .. }) => a == b,
            (Rows::Values(a), Rows::Values(b)) => a == b,
            _ => false,
        };
        let completion = match (&self.completion, &other.completion) {
            (Completion::Tag(a), Completion::Tag(b)) => a == b,
            (Completion::Empty, Completion::Empty) => true,
            (Completion::Suspended, Completion::Suspended) => true,
            (Completion::Error(a), Completion::Error(b)) => a == b,
            _ => false,
        };
        let extra = match (&self.extra, &other.extra) {
            (Some(a), Some(b)) => {
                a.after == b.after && a.copy_out == b.copy_out && a.copy_in == b.copy_in
            }
            (None, None) => true,
            _ => false,
        };
        columns
            && rows
            && completion
            && extra
            && self.columns_unknown == other.columns_unknown
            && self.notices == other.notices
    }

    /// Messages recorded after the completion.
    pub(crate) fn after(&self) -> &[AsyncMessage] {
        self.extra.as_ref().map_or(&[], |e| &e.after)
    }

    /// The COPY TO STDOUT this result sent, if any.
    pub(crate) fn copy_out(&self) -> Option<&CopyOut> {
        self.extra.as_ref().and_then(|e| e.copy_out.as_ref())
    }

    pub(crate) fn row_count(&self) -> usize {
        match &self.rows {
            Rows::Wire { count, .. } => *count,
            Rows::Values(v) => v.len(),
        }
    }

    /// The DataRow messages for rows `range` in `formats`. Borrowed on the
    /// hot paths (recorded text, cached binary): no reference count on the
    /// shared row buffer is touched, so connections on other cores never
    /// contend for it.
    pub(crate) fn data_rows(
        &self,
        formats: &Formats,
        range: std::ops::Range<usize>,
    ) -> Result<std::borrow::Cow<'_, [u8]>, ErrorFields> {
        use std::borrow::Cow;
        let whole = range.start == 0 && range.end >= self.row_count();
        match (&self.rows, formats) {
            (Rows::Wire { bytes, .. }, Formats::AllText) if whole => Ok(Cow::Borrowed(&bytes[..])),
            (Rows::Wire { bytes, .. }, Formats::AllText) => {
                Ok(Cow::Owned(frames(bytes, range).to_vec()))
            }
            (_, Formats::AllBinary) if whole => match self
                .binary_rows
                .get_or_init(|| Box::new(self.encode_rows(formats, 0..self.row_count())))
                .as_ref()
            {
                Ok(bytes) => Ok(Cow::Borrowed(&bytes[..])),
                Err(e) => Err(e.clone()),
            },
            _ => self
                .encode_rows(formats, range)
                .map(|b| Cow::Owned(b.to_vec())),
        }
    }

    fn encode_rows(
        &self,
        formats: &Formats,
        range: std::ops::Range<usize>,
    ) -> Result<Bytes, ErrorFields> {
        let columns = self.columns.as_deref().unwrap_or(&[]);
        let type_of = |i: usize| columns.get(i).map_or(0, |c| c.type_oid);
        let mut buf = BytesMut::new();
        let mut encoded: Vec<Option<Vec<u8>>> = Vec::with_capacity(columns.len());
        let put = |encoded: &Vec<Option<Vec<u8>>>, buf: &mut BytesMut| {
            let refs: Vec<Option<&[u8]>> = encoded.iter().map(|v| v.as_deref()).collect();
            wire::put_data_row(buf, &refs).map_err(|e| cannot_encode(e.to_string()))
        };
        match &self.rows {
            Rows::Wire { bytes, .. } => {
                let mut rest = frames(bytes, range);
                while let Ok(Some(frame)) = wire::split_frame_bytes(&mut rest) {
                    encoded.clear();
                    let values =
                        wire::data_row_body(&frame).map_err(|e| cannot_encode(e.to_string()))?;
                    for (i, v) in values.into_iter().enumerate() {
                        let value = v.map(|b| Value::Text(String::from_utf8_lossy(b).into_owned()));
                        let value = value.unwrap_or(Value::Null);
                        encoded.push(encode_value(&value, type_of(i), formats.code(i))?);
                    }
                    put(&encoded, &mut buf)?;
                }
            }
            Rows::Values(rows) => {
                for row in rows.get(range).unwrap_or(&[]) {
                    encoded.clear();
                    for (i, value) in row.iter().enumerate() {
                        encoded.push(encode_value(value, type_of(i), formats.code(i))?);
                    }
                    put(&encoded, &mut buf)?;
                }
            }
        }
        Ok(buf.freeze())
    }
}

/// The DataRow messages `range` (by row index) of a run of messages.
fn frames(bytes: &Bytes, range: std::ops::Range<usize>) -> Bytes {
    let mut offsets = vec![0];
    let mut rest = bytes.clone();
    while let Ok(Some(frame)) = wire::split_frame_bytes(&mut rest) {
        offsets.push(offsets[offsets.len() - 1] + frame.len());
    }
    let start = offsets.get(range.start).copied().unwrap_or(bytes.len());
    let end = offsets
        .get(range.end)
        .copied()
        .unwrap_or(bytes.len())
        .max(start);
    bytes.slice(start..end)
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
    pub(crate) origin: Origin,
    pub(crate) phase: Phase,
    pub(crate) results: Results,
    /// Asynchronous messages sent before the answer (recorded while idle).
    /// Rare: one thin pointer (8 bytes) in every answer rather than a
    /// slice's 16 or a `Vec`'s 24, the extra allocation paid only when present.
    #[allow(clippy::box_collection)]
    pub(crate) before: Option<Box<Vec<AsyncMessage>>>,
    /// The recorded session it belongs to (an index into its database's
    /// sessions).
    pub(crate) session: u32,
    used: AtomicBool,
}

/// An answer's statement results, read as a slice. Nearly every answer has
/// exactly one, kept inline: a separate allocation for it cost about 40
/// bytes an exchange (its pointer and the allocator's overhead).
#[derive(Debug)]
pub(crate) enum Results {
    One(PreparedResult),
    Many(Box<[PreparedResult]>),
}

impl From<Vec<PreparedResult>> for Results {
    fn from(mut results: Vec<PreparedResult>) -> Self {
        match (results.pop(), results.is_empty()) {
            (Some(only), true) => Results::One(only),
            (Some(last), false) => {
                results.push(last);
                Results::Many(results.into_boxed_slice())
            }
            (None, _) => Results::Many(Box::new([])),
        }
    }
}

impl std::ops::Deref for Results {
    type Target = [PreparedResult];

    fn deref(&self) -> &[PreparedResult] {
        match self {
            Results::One(only) => std::slice::from_ref(only),
            Results::Many(many) => many,
        }
    }
}

/// Where an answer was recorded, for reports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    /// The fixture file.
    pub file: Arc<str>,
    /// The exchange's `seq`.
    pub seq: u64,
    /// The database.
    pub database: Arc<str>,
    /// The recorded SQL.
    pub sql: Arc<str>,
}

impl Answer {
    pub(crate) fn new(
        origin: Origin,
        phase: Phase,
        results: Vec<PreparedResult>,
        before: Vec<AsyncMessage>,
        session: u32,
    ) -> Self {
        Answer {
            origin,
            phase,
            results: Results::from(results),
            before: (!before.is_empty()).then(|| Box::new(before)),
            session,
            used: AtomicBool::new(false),
        }
    }

    /// Whether a client could tell the two answers apart: everything it
    /// would receive is compared, where and when they were recorded is not.
    pub(crate) fn same_as(&self, other: &Answer) -> bool {
        self.phase == other.phase
            && self.before == other.before
            && self.results.len() == other.results.len()
            && self
                .results
                .iter()
                .zip(other.results.iter())
                .all(|(a, b)| a.same_as(b))
    }

    /// Writes the messages recorded before the answer.
    pub(crate) fn put_before(&self, buf: &mut BytesMut) -> Result<(), wire::WireError> {
        for m in self.before.iter().flat_map(|b| b.iter()) {
            put_async(buf, m)?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(tag: &str) -> PreparedResult {
        PreparedResult::new(
            Vec::new(),
            None,
            Rows::Values(Box::new([])),
            Completion::Tag(Arc::from(tag)),
            false,
            None,
        )
    }

    fn tags(results: &Results) -> Vec<String> {
        results
            .iter()
            .map(|r| match &r.completion {
                Completion::Tag(t) => t.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn results_keep_every_statement_in_order_whatever_their_number() {
        assert!(Results::from(Vec::new()).is_empty());
        let one = Results::from(vec![tagged("SELECT 1")]);
        assert!(matches!(one, Results::One(_)));
        assert_eq!(tags(&one), ["SELECT 1"]);
        let three = Results::from(vec![
            tagged("BEGIN"),
            tagged("INSERT 0 1"),
            tagged("COMMIT"),
        ]);
        assert_eq!(tags(&three), ["BEGIN", "INSERT 0 1", "COMMIT"]);
    }
}
