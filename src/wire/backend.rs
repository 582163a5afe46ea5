//! Messages a server sends, as pgsim's own types (decoded for the recorder's
//! tap; the mock server writes them with the encoders in `encode.rs`).

use bytes::Bytes;

use super::read::Reader;
use super::WireError;

/// Transaction status as ReadyForQuery reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InBlock,
    /// `E`: in a failed transaction block.
    Failed,
}

impl TxStatus {
    /// The status byte of ReadyForQuery.
    #[cfg(test)]
    pub(crate) fn byte(self) -> u8 {
        match self {
            TxStatus::Idle => b'I',
            TxStatus::InBlock => b'T',
            TxStatus::Failed => b'E',
        }
    }
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) table_oid: u32,
    pub(crate) column_id: i16,
    pub(crate) type_oid: u32,
    pub(crate) type_size: i16,
    pub(crate) type_modifier: i32,
    pub(crate) format: i16,
}

/// The format part of CopyInResponse / CopyOutResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyFormat {
    /// 0 text, 1 binary.
    pub(crate) overall: i8,
    /// Per column format codes.
    pub(crate) columns: Vec<i16>,
}

/// What an authentication request asks of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Auth {
    /// AuthenticationOk.
    Ok,
    /// AuthenticationCleartextPassword.
    Cleartext,
    /// AuthenticationMD5Password, with its salt.
    Md5([u8; 4]),
    /// AuthenticationSASL: the mechanisms the server offers.
    Sasl(Vec<String>),
    /// AuthenticationSASLContinue: the server's challenge.
    SaslContinue(Bytes),
    /// AuthenticationSASLFinal: the server's signature.
    SaslFinal(Bytes),
    /// Any other method (Kerberos, GSSAPI, SSPI), by its code.
    Other(i32),
}

/// One backend message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backend {
    /// An authentication request (never kept in a recording).
    Authentication(Auth),
    ParameterStatus {
        name: String,
        value: String,
    },
    /// BackendKeyData.
    KeyData {
        pid: i32,
        secret: Bytes,
    },
    ReadyForQuery(TxStatus),
    RowDescription(Vec<Field>),
    /// A DataRow: its value count and the values' bytes, undecoded.
    DataRow {
        count: i16,
        values: Bytes,
    },
    CommandComplete(String),
    EmptyQuery,
    Error(Vec<(u8, String)>),
    Notice(Vec<(u8, String)>),
    ParseComplete,
    BindComplete,
    CloseComplete,
    NoData,
    PortalSuspended,
    ParameterDescription(Vec<u32>),
    CopyInResponse(CopyFormat),
    CopyOutResponse(CopyFormat),
    CopyBothResponse(CopyFormat),
    CopyData(Bytes),
    CopyDone,
    Notification {
        pid: i32,
        channel: String,
        payload: String,
    },
    NegotiateProtocolVersion,
    FunctionCallResponse,
}

fn fields(r: &mut Reader<'_>) -> Result<Vec<(u8, String)>, WireError> {
    let mut out = Vec::new();
    loop {
        let code = r.u8("field code")?;
        if code == 0 {
            return Ok(out);
        }
        out.push((code, r.cstr("field value")?));
    }
}

fn copy_format(r: &mut Reader<'_>) -> Result<CopyFormat, WireError> {
    let overall = r.u8("copy format")? as i8;
    let columns = r.list(2, "copy column count", |r| r.i16("column format"))?;
    Ok(CopyFormat { overall, columns })
}

/// Decodes one backend message (type byte and length included).
pub(crate) fn decode_backend(frame: Bytes) -> Result<Backend, WireError> {
    let kind = frame.first().copied().unwrap_or(0);
    let mut r = Reader::new(Some(char::from(kind)), &frame, 5);
    let msg = match kind {
        b'R' => Backend::Authentication(match r.i32("authentication code")? {
            0 => Auth::Ok,
            3 => Auth::Cleartext,
            5 => {
                let salt = r.rest();
                Auth::Md5(
                    <[u8; 4]>::try_from(&salt[..])
                        .map_err(|_| r.malformed("an MD5 salt is 4 bytes"))?,
                )
            }
            10 => {
                let mut mechanisms = Vec::new();
                loop {
                    let m = r.cstr("SASL mechanism")?;
                    if m.is_empty() {
                        break;
                    }
                    mechanisms.push(m);
                }
                Auth::Sasl(mechanisms)
            }
            11 => Auth::SaslContinue(r.rest()),
            12 => Auth::SaslFinal(r.rest()),
            other => {
                r.rest();
                Auth::Other(other)
            }
        }),
        b'S' => Backend::ParameterStatus {
            name: r.cstr("parameter name")?,
            value: r.cstr("parameter value")?,
        },
        b'K' => Backend::KeyData {
            pid: r.i32("process id")?,
            secret: r.rest(),
        },
        b'Z' => Backend::ReadyForQuery(match r.u8("status")? {
            b'I' => TxStatus::Idle,
            b'T' => TxStatus::InBlock,
            b'E' => TxStatus::Failed,
            other => return Err(r.malformed(format!("invalid status {:?}", char::from(other)))),
        }),
        b'T' => Backend::RowDescription(r.list(19, "field count", |r| {
            Ok(Field {
                name: r.cstr("field name")?,
                table_oid: r.i32("table oid")? as u32,
                column_id: r.i16("column number")?,
                type_oid: r.i32("type oid")? as u32,
                type_size: r.i16("type size")?,
                type_modifier: r.i32("type modifier")?,
                format: r.i16("format")?,
            })
        })?),
        b'D' => {
            let count = r.i16("value count")?;
            let values = r.rest();
            // Checked now, so whoever reads the values later cannot fail.
            super::data_row_values(&values, count)?;
            Backend::DataRow { count, values }
        }
        b'C' => Backend::CommandComplete(r.cstr("command tag")?),
        b'I' => Backend::EmptyQuery,
        b'E' => Backend::Error(fields(&mut r)?),
        b'N' => Backend::Notice(fields(&mut r)?),
        b'1' => Backend::ParseComplete,
        b'2' => Backend::BindComplete,
        b'3' => Backend::CloseComplete,
        b'n' => Backend::NoData,
        b's' => Backend::PortalSuspended,
        b't' => Backend::ParameterDescription(r.list(4, "parameter count", |r| {
            r.i32("parameter type").map(|t| t as u32)
        })?),
        b'G' => Backend::CopyInResponse(copy_format(&mut r)?),
        b'H' => Backend::CopyOutResponse(copy_format(&mut r)?),
        b'W' => Backend::CopyBothResponse(copy_format(&mut r)?),
        b'd' => Backend::CopyData(r.rest()),
        b'c' => Backend::CopyDone,
        b'A' => Backend::Notification {
            pid: r.i32("process id")?,
            channel: r.cstr("channel")?,
            payload: r.cstr("payload")?,
        },
        b'v' => {
            r.rest();
            Backend::NegotiateProtocolVersion
        }
        b'V' => {
            r.rest();
            Backend::FunctionCallResponse
        }
        other => return Err(r.malformed(format!("unknown message type {:?}", char::from(other)))),
    };
    r.finish(msg)
}
