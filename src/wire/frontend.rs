//! Messages a client sends, as pgsim's own types.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};

use super::read::Reader;
use super::WireError;

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;

/// What Describe and Close name: a prepared statement or a portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `S`
    Statement,
    /// `P`
    Portal,
}

impl Target {
    fn from_byte(b: u8, r: &Reader<'_>) -> Result<Self, WireError> {
        match b {
            b'S' => Ok(Target::Statement),
            b'P' => Ok(Target::Portal),
            other => Err(r.malformed(format!("invalid target {:?}", char::from(other)))),
        }
    }

    fn byte(self) -> u8 {
        match self {
            Target::Statement => b'S',
            Target::Portal => b'P',
        }
    }
}

/// Parse: a statement to prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parse {
    pub(crate) name: String,
    pub(crate) sql: String,
    pub(crate) types: Vec<u32>,
}

/// Bind: a portal from a statement and parameter values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bind {
    pub(crate) portal: String,
    pub(crate) statement: String,
    pub(crate) param_formats: Vec<i16>,
    pub(crate) params: Vec<Option<Bytes>>,
    pub(crate) result_formats: Vec<i16>,
}

/// One frontend message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frontend {
    /// SSLRequest (startup phase).
    SslRequest,
    /// GSSENCRequest (startup phase).
    GssEncRequest,
    /// CancelRequest (startup phase, on its own connection).
    Cancel {
        pid: i32,
        secret: i32,
    },
    /// StartupMessage.
    Startup {
        major: u16,
        minor: u16,
        parameters: BTreeMap<String, String>,
    },
    /// Any authentication answer (password, SASL): kept opaque, never parsed
    /// beyond what the caller asks for.
    Password(Bytes),
    Query(String),
    Parse(Parse),
    Bind(Bind),
    Describe {
        target: Target,
        name: String,
    },
    Execute {
        portal: String,
        max_rows: i32,
    },
    Close {
        target: Target,
        name: String,
    },
    Sync,
    Flush,
    Terminate,
    CopyData(Bytes),
    CopyDone,
    CopyFail(String),
    /// FunctionCall (`F`): understood as a message, not served.
    FunctionCall,
}

/// The body of a SASLInitialResponse (a `p` message during SASL): the
/// mechanism the client chose and its first message.
pub(crate) fn sasl_initial(body: &Bytes) -> Result<(String, Bytes), WireError> {
    let mut r = Reader::new(Some('p'), body, 0);
    let mechanism = r.cstr("SASL mechanism")?;
    let len = r.i32("SASL data length")?;
    let data = if len < 0 {
        Bytes::new()
    } else {
        r.bytes(len as usize, "SASL data")?
    };
    Ok((mechanism, data))
}

/// Decodes one startup-phase packet (length included, no type byte).
pub(crate) fn decode_startup(frame: Bytes) -> Result<Frontend, WireError> {
    let mut r = Reader::new(None, &frame, 4);
    let code = r.i32("protocol code")?;
    let msg = match code {
        SSL_REQUEST => Frontend::SslRequest,
        GSSENC_REQUEST => Frontend::GssEncRequest,
        CANCEL_REQUEST => {
            let pid = r.i32("process id")?;
            let secret = r.i32("secret key")?;
            // Protocol 3.2 allows longer keys; pgsim hands out 4-byte ones.
            r.rest();
            Frontend::Cancel { pid, secret }
        }
        version => {
            let mut parameters = BTreeMap::new();
            loop {
                let name = r.cstr("parameter name")?;
                if name.is_empty() {
                    break;
                }
                let value = r.cstr("parameter value")?;
                parameters.insert(name, value);
            }
            Frontend::Startup {
                major: (version >> 16) as u16,
                minor: (version & 0xffff) as u16,
                parameters,
            }
        }
    };
    r.finish(msg)
}

/// Decodes one typed frontend message (type byte and length included).
pub(crate) fn decode_frontend(frame: Bytes) -> Result<Frontend, WireError> {
    let kind = frame.first().copied().unwrap_or(0);
    let mut r = Reader::new(Some(char::from(kind)), &frame, 5);
    let msg = match kind {
        b'Q' => Frontend::Query(r.cstr("query")?),
        b'P' => {
            let name = r.cstr("statement name")?;
            let sql = r.cstr("query")?;
            let types = r.list(4, "parameter type count", |r| {
                r.i32("parameter type").map(|t| t as u32)
            })?;
            Frontend::Parse(Parse { name, sql, types })
        }
        b'B' => {
            let portal = r.cstr("portal name")?;
            let statement = r.cstr("statement name")?;
            let param_formats =
                r.list(2, "parameter format count", |r| r.i16("parameter format"))?;
            let params = r.list(4, "parameter count", |r| r.value("parameter value"))?;
            let result_formats = r.list(2, "result format count", |r| r.i16("result format"))?;
            Frontend::Bind(Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            })
        }
        b'D' | b'C' => {
            let target = r.u8("target")?;
            let target = Target::from_byte(target, &r)?;
            let name = r.cstr("name")?;
            if kind == b'D' {
                Frontend::Describe { target, name }
            } else {
                Frontend::Close { target, name }
            }
        }
        b'E' => Frontend::Execute {
            portal: r.cstr("portal name")?,
            max_rows: r.i32("row limit")?,
        },
        b'S' => Frontend::Sync,
        b'H' => Frontend::Flush,
        b'X' => Frontend::Terminate,
        b'd' => Frontend::CopyData(r.rest()),
        b'c' => Frontend::CopyDone,
        b'f' => Frontend::CopyFail(r.cstr("error message")?),
        b'p' => Frontend::Password(r.rest()),
        b'F' => {
            r.rest();
            Frontend::FunctionCall
        }
        other => return Err(WireError::UnknownType { kind: other }),
    };
    r.finish(msg)
}

fn cstr(buf: &mut BytesMut, s: &str) {
    buf.put_slice(s.as_bytes());
    buf.put_u8(0);
}

/// A count as the protocol's Int16, or an error naming what overflowed.
fn count16(n: usize, what: &str) -> Result<i16, WireError> {
    i16::try_from(n).map_err(|_| WireError::Malformed {
        kind: None,
        reason: format!(
            "{n} {what} do not fit in one message (at most {})",
            i16::MAX
        ),
    })
}

impl Frontend {
    /// Encodes the message as a client sends it (the verifier's client and
    /// tests). Counts over Int16 and messages over the 1 GiB limit are an
    /// error, never a truncated length.
    pub(crate) fn encode(&self, buf: &mut BytesMut) -> Result<(), WireError> {
        let start = buf.len();
        let typed = |buf: &mut BytesMut, kind: u8| {
            buf.put_u8(kind);
            buf.put_i32(0);
        };
        match self {
            Frontend::SslRequest | Frontend::GssEncRequest | Frontend::Cancel { .. } => {
                buf.put_i32(0);
                match self {
                    Frontend::SslRequest => buf.put_i32(SSL_REQUEST),
                    Frontend::GssEncRequest => buf.put_i32(GSSENC_REQUEST),
                    Frontend::Cancel { pid, secret } => {
                        buf.put_i32(CANCEL_REQUEST);
                        buf.put_i32(*pid);
                        buf.put_i32(*secret);
                    }
                    _ => {}
                }
            }
            Frontend::Startup {
                major,
                minor,
                parameters,
            } => {
                buf.put_i32(0);
                buf.put_i32((i32::from(*major) << 16) | i32::from(*minor));
                for (k, v) in parameters {
                    cstr(buf, k);
                    cstr(buf, v);
                }
                buf.put_u8(0);
            }
            Frontend::Password(b) => {
                typed(buf, b'p');
                buf.put_slice(b);
            }
            Frontend::Query(q) => {
                typed(buf, b'Q');
                cstr(buf, q);
            }
            Frontend::Parse(Parse { name, sql, types }) => {
                typed(buf, b'P');
                cstr(buf, name);
                cstr(buf, sql);
                buf.put_i16(count16(types.len(), "parameter types")?);
                for t in types {
                    buf.put_u32(*t);
                }
            }
            Frontend::Bind(Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            }) => {
                typed(buf, b'B');
                cstr(buf, portal);
                cstr(buf, statement);
                buf.put_i16(count16(param_formats.len(), "parameter formats")?);
                for f in param_formats {
                    buf.put_i16(*f);
                }
                buf.put_i16(count16(params.len(), "parameters")?);
                for p in params {
                    match p {
                        Some(v) => {
                            let len = i32::try_from(v.len()).map_err(|_| WireError::BadLength {
                                kind: Some('B'),
                                len: i64::try_from(v.len()).unwrap_or(i64::MAX),
                                limit: super::MAX_MESSAGE_LEN,
                            })?;
                            buf.put_i32(len);
                            buf.put_slice(v);
                        }
                        None => buf.put_i32(-1),
                    }
                }
                buf.put_i16(count16(result_formats.len(), "result formats")?);
                for f in result_formats {
                    buf.put_i16(*f);
                }
            }
            Frontend::Describe { target, name } | Frontend::Close { target, name } => {
                typed(
                    buf,
                    if matches!(self, Frontend::Describe { .. }) {
                        b'D'
                    } else {
                        b'C'
                    },
                );
                buf.put_u8(target.byte());
                cstr(buf, name);
            }
            Frontend::Execute { portal, max_rows } => {
                typed(buf, b'E');
                cstr(buf, portal);
                buf.put_i32(*max_rows);
            }
            Frontend::Sync => typed(buf, b'S'),
            Frontend::Flush => typed(buf, b'H'),
            Frontend::Terminate => typed(buf, b'X'),
            Frontend::CopyData(d) => {
                typed(buf, b'd');
                buf.put_slice(d);
            }
            Frontend::CopyDone => typed(buf, b'c'),
            Frontend::CopyFail(m) => {
                typed(buf, b'f');
                cstr(buf, m);
            }
            Frontend::FunctionCall => typed(buf, b'F'),
        }
        let untyped = matches!(
            self,
            Frontend::SslRequest
                | Frontend::GssEncRequest
                | Frontend::Cancel { .. }
                | Frontend::Startup { .. }
        );
        let len_at = if untyped { start } else { start + 1 };
        let len = buf.len() - len_at;
        if len > super::MAX_MESSAGE_LEN {
            let kind = (!untyped).then(|| char::from(buf[start]));
            buf.truncate(start);
            return Err(WireError::BadLength {
                kind,
                len: i64::try_from(len).unwrap_or(i64::MAX),
                limit: super::MAX_MESSAGE_LEN,
            });
        }
        // In range: checked against the limit, which fits in an i32.
        buf[len_at..len_at + 4].copy_from_slice(&(len as i32).to_be_bytes());
        Ok(())
    }
}
