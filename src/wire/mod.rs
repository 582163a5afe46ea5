//! Bytes and messages: the only module that knows pgwire, and the one model
//! of every message pgsim reads or writes ([`Frontend`], [`Backend`]).
//!
//! Framing (`type byte + i32 length`) is peeked here so that each message is
//! cut into its own buffer before it is decoded: a malformed body can then
//! never read into the next message.
//!
//! Decoding is our own, not pgwire's, on purpose: pgwire's decoders read
//! fields with unchecked `Buf::get_*` calls and panic on a short body, so
//! using them on hostile input needed `catch_unwind` (and printed a panic per
//! bad message). Our decoders read through a bounds-checked [`read::Reader`]
//! and cannot panic; a bad message is a [`WireError`] for that connection
//! only. Encoding stays with pgwire (`encode.rs`): it writes what it is
//! given and cannot be fed hostile bytes.

mod backend;
mod encode;
mod frontend;
mod read;
pub(crate) mod scram;

use bytes::{Buf, BytesMut};

pub(crate) use backend::{decode_backend, Auth, Backend, CopyFormat, Field, TxStatus};
pub(crate) use encode::*;
pub(crate) use frontend::{
    decode_frontend, decode_startup, sasl_initial, Bind, Frontend, Parse, Target,
};

/// Largest message PostgreSQL accepts of the types that carry data (Query,
/// Parse, Bind, CopyData, FunctionCall): `PQ_LARGE_MESSAGE_LIMIT`
/// (`MaxAllocSize - 1`), length word included.
pub(crate) const MAX_MESSAGE_LEN: usize = 0x3fff_fffe;
/// Largest message of the other frontend types (Sync, Execute, Describe,
/// Close, Flush, Terminate, CopyDone, CopyFail): `PQ_SMALL_MESSAGE_LIMIT`.
pub(crate) const SMALL_MESSAGE_LEN: usize = 10_000;
/// Largest password message (cleartext, md5, SASL): `PG_MAX_AUTH_TOKEN_LENGTH`.
pub(crate) const MAX_AUTH_LEN: usize = 65_535;
/// Largest startup-phase packet (startup, SSL request, cancel request), as
/// in PostgreSQL: `MAX_STARTUP_PACKET_LENGTH` after the length word.
pub(crate) const MAX_STARTUP_LEN: usize = 10_000 + 4;
/// The most a frame that has not fully arrived may reserve at once.
const GROW_STEP: usize = 64 * 1024;

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
    /// A type byte no frontend message has: refused as soon as it arrives,
    /// as PostgreSQL does (its message text is this error's).
    #[error("invalid frontend message type {kind}")]
    UnknownType {
        /// The type byte.
        kind: u8,
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
/// incomplete. A startup packet up to [`MAX_STARTUP_LEN`], any typed
/// message up to [`MAX_MESSAGE_LEN`]: for a proxy, which judges neither
/// direction (see [`split_frontend`] for a server).
pub(crate) fn split_frame(
    buf: &mut BytesMut,
    startup: bool,
) -> Result<Option<BytesMut>, WireError> {
    split_within(buf, startup, |kind| match kind {
        None => MAX_STARTUP_LEN,
        Some(_) => MAX_MESSAGE_LEN,
    })
}

/// [`split_frame`] for a server reading a client: each message type has
/// PostgreSQL's own limit (see [`frontend_limit`]), and none is above `max`.
pub(crate) fn split_frontend(
    buf: &mut BytesMut,
    startup: bool,
    max: usize,
) -> Result<Option<BytesMut>, WireError> {
    if let Some(&kind) = buf.first().filter(|k| !startup && !is_frontend_type(**k)) {
        return Err(WireError::UnknownType { kind });
    }
    split_within(buf, startup, |kind| frontend_limit(kind, max))
}

/// The largest frontend message of type `kind` (`None`: startup phase)
/// PostgreSQL 15 reads, capped at `max`. A longer one is refused before
/// its body is read.
pub(crate) fn frontend_limit(kind: Option<u8>, max: usize) -> usize {
    let limit = match kind {
        None => MAX_STARTUP_LEN,
        Some(b'Q' | b'P' | b'B' | b'd' | b'F') => MAX_MESSAGE_LEN,
        Some(b'p') => MAX_AUTH_LEN,
        Some(_) => SMALL_MESSAGE_LEN,
    };
    limit.min(max)
}

/// Whether `kind` is the type byte of a frontend message.
fn is_frontend_type(kind: u8) -> bool {
    matches!(
        kind,
        b'Q' | b'P'
            | b'B'
            | b'd'
            | b'F'
            | b'p'
            | b'C'
            | b'D'
            | b'E'
            | b'H'
            | b'S'
            | b'X'
            | b'c'
            | b'f'
    )
}

fn split_within(
    buf: &mut BytesMut,
    startup: bool,
    limit_of: impl Fn(Option<u8>) -> usize,
) -> Result<Option<BytesMut>, WireError> {
    let offset = usize::from(!startup);
    if buf.len() < offset + 4 {
        return Ok(None);
    }
    let type_byte = (!startup).then(|| buf[0]);
    let kind = type_byte.map(char::from);
    let len = i64::from((&buf[offset..offset + 4]).get_i32());
    let limit = limit_of(type_byte);
    if len < 4 || len as u64 > limit as u64 || (startup && len < 8) {
        return Err(WireError::BadLength { kind, len, limit });
    }
    let total = offset + len as usize;
    if buf.len() < total {
        // Grow with what actually arrives, not with what the header claims:
        // a 5-byte header declaring 1 GiB must not reserve 1 GiB.
        buf.reserve((total - buf.len()).min(GROW_STEP));
        return Ok(None);
    }
    Ok(Some(buf.split_to(total)))
}

/// Whether encoded backend messages end with a ReadyForQuery.
pub(crate) fn ends_with_ready(out: &[u8]) -> bool {
    out.len() >= 6 && out[out.len() - 6..out.len() - 1] == [b'Z', 0, 0, 0, 5]
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
