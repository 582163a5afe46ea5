//! Value codecs between PostgreSQL's text and binary formats (placeholder).

pub mod oid {
    //! Type OIDs.
    /// int4
    pub const INT4: u32 = 23;
}

/// Why a value could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// No codec for this type.
    #[error("type {oid} is not supported")]
    Unsupported {
        /// The type OID.
        oid: u32,
    },
    /// Bad text.
    #[error("invalid text for type {oid}: {reason}")]
    InvalidText {
        /// The type OID.
        oid: u32,
        /// Why.
        reason: String,
    },
    /// Bad binary.
    #[error("invalid binary for type {oid}: {reason}")]
    InvalidBinary {
        /// The type OID.
        oid: u32,
        /// Why.
        reason: String,
    },
}

/// Whether both directions are implemented.
pub fn is_supported(_oid: u32) -> bool {
    false
}

/// Text to binary.
pub fn text_to_binary(oid: u32, _text: &str) -> Result<Vec<u8>, CodecError> {
    Err(CodecError::Unsupported { oid })
}

/// Binary to text.
pub fn binary_to_text(oid: u32, _bin: &[u8]) -> Result<String, CodecError> {
    Err(CodecError::Unsupported { oid })
}
