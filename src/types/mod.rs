//! Conversion of PostgreSQL values between the text and binary wire formats.
//!
//! Text output is exactly what PostgreSQL 15 prints with default settings
//! (`DateStyle=ISO, MDY`, `TimeZone=UTC`, `extra_float_digits=1`,
//! `bytea_output=hex`, `IntervalStyle=postgres`); binary matches the
//! `*send`/`*recv` functions of the server.

use std::fmt;

mod array;
mod array_parse;
mod bool;
mod bytea;
mod date;
mod datetime;
mod float;
mod int;
mod interval;
mod json;
mod json_parse;
mod numeric;
mod shortest;
mod text;
mod timestamp;
mod uuid;

/// Well-known PostgreSQL type OIDs handled by this module.
pub mod oid {
    /// `bool`
    pub const BOOL: u32 = 16;
    /// `bytea`
    pub const BYTEA: u32 = 17;
    /// `"char"` (single byte)
    pub const CHAR: u32 = 18;
    /// `name`
    pub const NAME: u32 = 19;
    /// `int8` / `bigint`
    pub const INT8: u32 = 20;
    /// `int2` / `smallint`
    pub const INT2: u32 = 21;
    /// `int4` / `integer`
    pub const INT4: u32 = 23;
    /// `text`
    pub const TEXT: u32 = 25;
    /// `oid`
    pub const OID: u32 = 26;
    /// `json`
    pub const JSON: u32 = 114;
    /// `float4` / `real`
    pub const FLOAT4: u32 = 700;
    /// `float8` / `double precision`
    pub const FLOAT8: u32 = 701;
    /// `bpchar` / `character(n)`
    pub const BPCHAR: u32 = 1042;
    /// `varchar` / `character varying`
    pub const VARCHAR: u32 = 1043;
    /// `date`
    pub const DATE: u32 = 1082;
    /// `time` (without time zone)
    pub const TIME: u32 = 1083;
    /// `timestamp` (without time zone)
    pub const TIMESTAMP: u32 = 1114;
    /// `timestamptz`
    pub const TIMESTAMPTZ: u32 = 1184;
    /// `interval`
    pub const INTERVAL: u32 = 1186;
    /// `numeric`
    pub const NUMERIC: u32 = 1700;
    /// `uuid`
    pub const UUID: u32 = 2950;
    /// `jsonb`
    pub const JSONB: u32 = 3802;
    /// `json[]`
    pub const JSON_ARRAY: u32 = 199;
    /// `bool[]`
    pub const BOOL_ARRAY: u32 = 1000;
    /// `bytea[]`
    pub const BYTEA_ARRAY: u32 = 1001;
    /// `"char"[]`
    pub const CHAR_ARRAY: u32 = 1002;
    /// `name[]`
    pub const NAME_ARRAY: u32 = 1003;
    /// `int2[]`
    pub const INT2_ARRAY: u32 = 1005;
    /// `int4[]`
    pub const INT4_ARRAY: u32 = 1007;
    /// `text[]`
    pub const TEXT_ARRAY: u32 = 1009;
    /// `bpchar[]`
    pub const BPCHAR_ARRAY: u32 = 1014;
    /// `varchar[]`
    pub const VARCHAR_ARRAY: u32 = 1015;
    /// `int8[]`
    pub const INT8_ARRAY: u32 = 1016;
    /// `float4[]`
    pub const FLOAT4_ARRAY: u32 = 1021;
    /// `float8[]`
    pub const FLOAT8_ARRAY: u32 = 1022;
    /// `oid[]`
    pub const OID_ARRAY: u32 = 1028;
    /// `timestamp[]`
    pub const TIMESTAMP_ARRAY: u32 = 1115;
    /// `date[]`
    pub const DATE_ARRAY: u32 = 1182;
    /// `time[]`
    pub const TIME_ARRAY: u32 = 1183;
    /// `timestamptz[]`
    pub const TIMESTAMPTZ_ARRAY: u32 = 1185;
    /// `interval[]`
    pub const INTERVAL_ARRAY: u32 = 1187;
    /// `numeric[]`
    pub const NUMERIC_ARRAY: u32 = 1231;
    /// `uuid[]`
    pub const UUID_ARRAY: u32 = 2951;
    /// `jsonb[]`
    pub const JSONB_ARRAY: u32 = 3807;
}

/// Why a value could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The type OID is not handled by this codec.
    Unsupported {
        /// Type OID that was requested.
        oid: u32,
    },
    /// The text form is not valid input for the type.
    InvalidText {
        /// Type OID being decoded.
        oid: u32,
        /// Human-readable explanation.
        reason: String,
    },
    /// The binary form is not valid input for the type.
    InvalidBinary {
        /// Type OID being decoded.
        oid: u32,
        /// Human-readable explanation.
        reason: String,
    },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Unsupported { oid } => write!(f, "unsupported type oid {oid}"),
            CodecError::InvalidText { oid, reason } => {
                write!(f, "invalid text value for type oid {oid}: {reason}")
            }
            CodecError::InvalidBinary { oid, reason } => {
                write!(f, "invalid binary value for type oid {oid}: {reason}")
            }
        }
    }
}

impl std::error::Error for CodecError {}

/// Builds an [`CodecError::InvalidText`].
pub(crate) fn bad_text(oid: u32, reason: impl Into<String>) -> CodecError {
    CodecError::InvalidText {
        oid,
        reason: reason.into(),
    }
}

/// Builds an [`CodecError::InvalidBinary`].
pub(crate) fn bad_bin(oid: u32, reason: impl Into<String>) -> CodecError {
    CodecError::InvalidBinary {
        oid,
        reason: reason.into(),
    }
}

/// True when both directions are implemented for this type OID.
pub fn is_supported(oid: u32) -> bool {
    is_scalar_supported(oid) || array::element_oid(oid).is_some()
}

/// True for the non-array types handled here.
pub(crate) fn is_scalar_supported(oid: u32) -> bool {
    use oid::*;
    matches!(
        oid,
        BOOL | BYTEA
            | CHAR
            | NAME
            | INT8
            | INT2
            | INT4
            | TEXT
            | OID
            | JSON
            | FLOAT4
            | FLOAT8
            | BPCHAR
            | VARCHAR
            | DATE
            | TIME
            | TIMESTAMP
            | TIMESTAMPTZ
            | INTERVAL
            | NUMERIC
            | UUID
            | JSONB
    )
}

/// PostgreSQL text form -> binary form for type `oid`.
pub fn text_to_binary(oid: u32, text: &str) -> Result<Vec<u8>, CodecError> {
    if !is_supported(oid) {
        return Err(CodecError::Unsupported { oid });
    }
    if text.contains('\0') {
        return Err(bad_text(oid, "text contains a NUL character"));
    }
    match array::element_oid(oid) {
        Some(elem) => array::text_to_binary(oid, elem, text),
        None => scalar_text_to_binary(oid, text),
    }
}

/// Binary form -> canonical PostgreSQL text (what PG15 prints for the value).
pub fn binary_to_text(oid: u32, bin: &[u8]) -> Result<String, CodecError> {
    match array::element_oid(oid) {
        Some(elem) => array::binary_to_text(oid, elem, bin),
        None => scalar_binary_to_text(oid, bin),
    }
}

/// Text -> binary for a non-array type.
pub(crate) fn scalar_text_to_binary(oid: u32, text: &str) -> Result<Vec<u8>, CodecError> {
    use oid::*;
    match oid {
        BOOL => bool::text_to_binary(text),
        BYTEA => bytea::text_to_binary(text),
        CHAR | NAME | TEXT | BPCHAR | VARCHAR => text::text_to_binary(oid, text),
        INT2 | INT4 | INT8 | OID => int::text_to_binary(oid, text),
        FLOAT4 | FLOAT8 => float::text_to_binary(oid, text),
        NUMERIC => numeric::text_to_binary(text),
        DATE | TIME => date::text_to_binary(oid, text),
        TIMESTAMP | TIMESTAMPTZ => timestamp::text_to_binary(oid, text),
        INTERVAL => interval::text_to_binary(text),
        UUID => uuid::text_to_binary(text),
        JSON | JSONB => json::text_to_binary(oid, text),
        _ => Err(CodecError::Unsupported { oid }),
    }
}

/// Binary -> text for a non-array type.
pub(crate) fn scalar_binary_to_text(oid: u32, bin: &[u8]) -> Result<String, CodecError> {
    use oid::*;
    match oid {
        BOOL => bool::binary_to_text(bin),
        BYTEA => Ok(bytea::binary_to_text(bin)),
        CHAR | NAME | TEXT | BPCHAR | VARCHAR => text::binary_to_text(oid, bin),
        INT2 | INT4 | INT8 | OID => int::binary_to_text(oid, bin),
        FLOAT4 | FLOAT8 => float::binary_to_text(oid, bin),
        NUMERIC => numeric::binary_to_text(bin),
        DATE | TIME => date::binary_to_text(oid, bin),
        TIMESTAMP | TIMESTAMPTZ => timestamp::binary_to_text(oid, bin),
        INTERVAL => interval::binary_to_text(bin),
        UUID => uuid::binary_to_text(bin),
        JSON | JSONB => json::binary_to_text(oid, bin),
        _ => Err(CodecError::Unsupported { oid }),
    }
}

/// Big-endian cursor over a binary value; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    oid: u32,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` on behalf of type `oid` (used in errors).
    pub(crate) fn new(oid: u32, buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, oid }
    }

    /// Takes the next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.remaining() < n {
            return Err(bad_bin(self.oid, "insufficient data left in message"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads a big-endian `i16`.
    pub(crate) fn i16(&mut self) -> Result<i16, CodecError> {
        self.array().map(i16::from_be_bytes)
    }

    /// Reads a big-endian `u16`.
    pub(crate) fn u16(&mut self) -> Result<u16, CodecError> {
        self.array().map(u16::from_be_bytes)
    }

    /// Reads a big-endian `i32`.
    pub(crate) fn i32(&mut self) -> Result<i32, CodecError> {
        self.array().map(i32::from_be_bytes)
    }

    /// Reads a big-endian `u32`.
    pub(crate) fn u32(&mut self) -> Result<u32, CodecError> {
        self.array().map(u32::from_be_bytes)
    }

    /// Reads a big-endian `i64`.
    pub(crate) fn i64(&mut self) -> Result<i64, CodecError> {
        self.array().map(i64::from_be_bytes)
    }

    /// Bytes not consumed yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), CodecError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(bad_bin(
                self.oid,
                "incorrect binary data format: trailing bytes",
            ))
        }
    }
}

/// Reads exactly one fixed-size value: errors on short or long input.
pub(crate) fn exact<const N: usize>(oid: u32, bin: &[u8]) -> Result<[u8; N], CodecError> {
    <[u8; N]>::try_from(bin)
        .map_err(|_| bad_bin(oid, format!("expected {N} bytes, got {}", bin.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_oid() {
        assert!(!is_supported(600));
        assert_eq!(
            text_to_binary(600, "x"),
            Err(CodecError::Unsupported { oid: 600 })
        );
        assert_eq!(
            binary_to_text(600, b"x"),
            Err(CodecError::Unsupported { oid: 600 })
        );
    }

    #[test]
    fn error_display_names_oid() {
        let e = bad_text(23, "bad digit");
        assert_eq!(
            e.to_string(),
            "invalid text value for type oid 23: bad digit"
        );
        let e = bad_bin(23, "short");
        assert_eq!(e.to_string(), "invalid binary value for type oid 23: short");
    }

    #[test]
    fn nul_in_text_rejected() {
        assert!(matches!(
            text_to_binary(oid::TEXT, "a\0b"),
            Err(CodecError::InvalidText { oid: 25, .. })
        ));
    }

    #[test]
    fn reader_bounds() {
        let mut r = Reader::new(1, &[0, 1, 2]);
        assert_eq!(r.i16(), Ok(1));
        assert!(r.i16().is_err());
        assert!(r.finish().is_err());
    }
}
