//! Bytes and messages: the only module that knows pgwire.
//!
//! Framing (`type byte + i32 length`) is peeked here so that each message is
//! cut into its own buffer before pgwire decodes it: a malformed body can then
//! never read into the next message, and a decoder that trips over a short
//! body is caught and turned into a protocol error for that connection only.

mod encode;

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::{Buf, BytesMut};
use pgwire::messages::{
    DecodeContext, PgWireBackendMessage, PgWireFrontendMessage, ProtocolVersion,
};

pub(crate) use encode::*;
pub(crate) use pgwire::messages::extendedquery::{Bind, Describe, Execute, Parse};
pub(crate) use pgwire::messages::response::TransactionStatus;
pub(crate) use pgwire::messages::{
    PgWireBackendMessage as BackendMessage, PgWireFrontendMessage as FrontendMessage,
    SslNegotiationMetaMessage,
};

/// Largest message pgsim accepts from a peer (PostgreSQL's own limit is 1 GiB).
pub(crate) const MAX_MESSAGE_LEN: usize = 0x3fff_ffff;
/// Largest startup-phase packet (startup, SSL request, cancel request), as in PostgreSQL.
pub(crate) const MAX_STARTUP_LEN: usize = 10_000;

/// A message that could not be framed or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum WireError {
    /// The length field is impossible or over the limit.
    #[error("invalid length {len} for message type {kind:?} (limit {limit})")]
    BadLength {
        /// The message type byte, or `None` in the startup phase.
        kind: Option<char>,
        /// The declared length.
        len: i64,
        /// The largest accepted length.
        limit: usize,
    },
    /// The body does not decode as the declared message type.
    #[error("malformed {kind:?} message: {reason}")]
    Malformed {
        /// The message type byte, or `None` in the startup phase.
        kind: Option<char>,
        /// What was wrong.
        reason: String,
    },
}

/// Cuts one complete message off the front of `buf`. `startup` selects the
/// untyped startup-phase layout. Returns `Ok(None)` while the message is
/// incomplete.
pub(crate) fn split_frame(
    buf: &mut BytesMut,
    startup: bool,
) -> Result<Option<BytesMut>, WireError> {
    let offset = usize::from(!startup);
    if buf.len() < offset + 4 {
        return Ok(None);
    }
    let kind = (!startup).then(|| char::from(buf[0]));
    let len = i64::from((&buf[offset..offset + 4]).get_i32());
    let limit = if startup {
        MAX_STARTUP_LEN
    } else {
        MAX_MESSAGE_LEN
    };
    if len < 4 || len as u64 > limit as u64 || (startup && len < 8) {
        return Err(WireError::BadLength { kind, len, limit });
    }
    let total = offset + len as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    Ok(Some(buf.split_to(total)))
}

/// Phase of a connection as seen by the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Before the startup packet: SSLRequest, GSSENCRequest, CancelRequest or Startup.
    Startup,
    /// After startup: typed messages.
    Running,
}

fn run_decoder<T>(
    kind: Option<char>,
    frame: &mut BytesMut,
    f: impl FnOnce(&mut BytesMut) -> pgwire::error::PgWireResult<Option<T>>,
) -> Result<T, WireError> {
    let malformed = |reason: String| WireError::Malformed { kind, reason };
    match catch_unwind(AssertUnwindSafe(|| f(frame))) {
        Ok(Ok(Some(msg))) if frame.is_empty() => Ok(msg),
        Ok(Ok(Some(_))) => Err(malformed(format!(
            "{} unexpected trailing bytes",
            frame.len()
        ))),
        Ok(Ok(None)) => Err(malformed("incomplete body".into())),
        Ok(Err(e)) => Err(malformed(e.to_string())),
        Err(_) => Err(malformed("body shorter than its fields".into())),
    }
}

/// Decodes one frame cut by [`split_frame`] as a frontend message.
pub(crate) fn decode_frontend(
    mut frame: BytesMut,
    phase: Phase,
) -> Result<FrontendMessage, WireError> {
    let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
    let kind = match phase {
        Phase::Startup => {
            ctx.awaiting_frontend_ssl = false;
            if frame.len() >= 8
                && pgwire::messages::startup::SslRequest::is_ssl_request_packet(&frame)
            {
                frame.clear();
                return Ok(FrontendMessage::SslNegotiation(
                    SslNegotiationMetaMessage::PostgresSsl(
                        pgwire::messages::startup::SslRequest::new(),
                    ),
                ));
            }
            if frame.len() >= 8
                && pgwire::messages::startup::GssEncRequest::is_gss_enc_request_packet(&frame)
            {
                frame.clear();
                return Ok(FrontendMessage::SslNegotiation(
                    SslNegotiationMetaMessage::PostgresGss(
                        pgwire::messages::startup::GssEncRequest::new(),
                    ),
                ));
            }
            None
        }
        Phase::Running => {
            ctx.awaiting_frontend_ssl = false;
            ctx.awaiting_frontend_startup = false;
            frame.first().map(|b| char::from(*b))
        }
    };
    run_decoder(kind, &mut frame, |buf| {
        PgWireFrontendMessage::decode(buf, &ctx)
    })
}

/// Decodes one frame cut by [`split_frame`] as a backend message.
pub(crate) fn decode_backend(mut frame: BytesMut) -> Result<BackendMessage, WireError> {
    let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
    ctx.awaiting_frontend_ssl = false;
    ctx.awaiting_frontend_startup = false;
    let kind = frame.first().map(|b| char::from(*b));
    run_decoder(kind, &mut frame, |buf| {
        PgWireBackendMessage::decode(buf, &ctx)
    })
}

/// Cuts one backend message off a frozen buffer of messages (no copy).
pub(crate) fn split_frame_bytes(buf: &mut bytes::Bytes) -> Result<Option<bytes::Bytes>, WireError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = (&buf[1..5]).get_i32();
    if len < 4 || buf.len() < 1 + len as usize {
        return Err(WireError::BadLength {
            kind: Some(char::from(buf[0])),
            len: i64::from(len),
            limit: buf.len(),
        });
    }
    Ok(Some(buf.split_to(1 + len as usize)))
}

/// The values of a whole DataRow message (type byte and length included).
pub(crate) fn data_row_body(frame: &[u8]) -> Result<Vec<Option<&[u8]>>, WireError> {
    if frame.len() < 7 || frame[0] != b'D' {
        return Err(WireError::Malformed {
            kind: Some('D'),
            reason: "not a DataRow".into(),
        });
    }
    let count = (&frame[5..7]).get_i16();
    data_row_values(&frame[7..], count)
}

/// Splits the body of a DataRow into its values (`None` is SQL NULL).
pub(crate) fn data_row_values(data: &[u8], count: i16) -> Result<Vec<Option<&[u8]>>, WireError> {
    let bad = |reason: &str| WireError::Malformed {
        kind: Some('D'),
        reason: reason.into(),
    };
    let mut values =
        Vec::with_capacity(usize::try_from(count).map_err(|_| bad("negative column count"))?);
    let mut rest = data;
    for _ in 0..count {
        if rest.len() < 4 {
            return Err(bad("value length cut short"));
        }
        let len = (&rest[..4]).get_i32();
        rest = &rest[4..];
        if len < 0 {
            values.push(None);
            continue;
        }
        let len = len as usize;
        if rest.len() < len {
            return Err(bad("value cut short"));
        }
        values.push(Some(&rest[..len]));
        rest = &rest[len..];
    }
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the last value"));
    }
    Ok(values)
}

#[cfg(test)]
mod tests;
