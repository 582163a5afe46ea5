//! Query keys: how pgsim identifies "the same query" between record and
//! replay.
//!
//! * [`lexer`]: a small PostgreSQL lexical scanner ([`scan`]).
//! * [`normalize`](mod@normalize): the meaning-preserving normal form of SQL
//!   text that is hashed ([`normalize()`]).
//! * [`query_key`] / [`statement_key`]: SHA-256 keys over normalized SQL
//!   (plus parameter values for query keys).
//! * [`nearest`](mod@nearest): the "closest recorded query" diagnostic.
//!
//! # Key encodings
//! Both keys are SHA-256 over a prefix-free preimage, fed to the hasher
//! incrementally (the preimage is never materialized):
//!
//! ```text
//! query key:     'Q' len(sql) sql count(params) param*
//! statement key: 'S' len(sql) sql
//! param:         'N'
//!              | 'T' len(bytes) bytes
//!              | 'R' format:i16be len(bytes) bytes
//! len(x):        u64 big-endian for sql; u32 big-endian for values (or
//!                0xFFFF_FFFF then u64 big-endian if >= 0xFFFF_FFFF bytes)
//! count(params): u32 big-endian (same escape as len)
//! ```
//!
//! Because of the distinct leading tag, `statement_key(sql)` is **never**
//! equal to `query_key(sql, &[])`: the two key spaces cannot collide even if
//! stored in the same map.

pub mod lexer;
pub mod nearest;
pub mod normalize;

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

pub use lexer::{scan, TokenKind};
pub use nearest::{nearest, Candidate, NearMiss};
pub use normalize::normalize;

/// A parameter value as canonical PostgreSQL text, or NULL, or bytes we
/// could not convert (kept as raw bytes plus format code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamValue<'a> {
    /// SQL NULL.
    Null,
    /// The value's canonical PostgreSQL text form.
    Text(&'a str),
    /// Bytes that could not be converted to canonical text, with the
    /// protocol format code they were sent in (0 = text, 1 = binary).
    Raw {
        /// Protocol format code.
        format: i16,
        /// The value bytes exactly as received.
        bytes: &'a [u8],
    },
}

/// A query or statement key: a SHA-256 digest, shown as 64 lowercase hex
/// characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryKey([u8; 32]);

impl QueryKey {
    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key of a digest computed earlier (a cached index).
    pub(crate) fn from_digest(digest: [u8; 32]) -> Self {
        QueryKey(digest)
    }

    fn from_hasher(hasher: Sha256) -> Self {
        QueryKey(hasher.finalize().into())
    }
}

impl fmt::Display for QueryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for QueryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueryKey({self})")
    }
}

/// Error returned when parsing a [`QueryKey`] from a string that is not
/// exactly 64 hex characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseQueryKeyError;

impl fmt::Display for ParseQueryKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("query key must be exactly 64 hexadecimal characters")
    }
}

impl std::error::Error for ParseQueryKeyError {}

impl FromStr for QueryKey {
    type Err = ParseQueryKeyError;

    /// Accepts 64 hex digits in either case; the key is stored lowercase so
    /// equal digests always compare equal.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut digest = [0u8; 32];
        match hex::decode_to_slice(s, &mut digest) {
            Ok(()) => Ok(QueryKey(digest)),
            Err(_) => Err(ParseQueryKeyError),
        }
    }
}

/// Feeds a length: u32 big-endian, or `0xFFFF_FFFF` plus u64 big-endian for
/// lengths that do not fit below that marker (keeps the encoding injective).
fn update_len(h: &mut Sha256, len: usize) {
    match u32::try_from(len) {
        Ok(n) if n != u32::MAX => h.update(n.to_be_bytes()),
        _ => {
            h.update(u32::MAX.to_be_bytes());
            h.update((len as u64).to_be_bytes());
        }
    }
}

fn update_sql(h: &mut Sha256, tag: u8, normalized_sql: &str) {
    h.update([tag]);
    h.update((normalized_sql.len() as u64).to_be_bytes());
    h.update(normalized_sql.as_bytes());
}

/// The key of a query execution: normalized SQL plus parameter values.
///
/// Simple-protocol queries use `params = &[]`; an extended-protocol
/// execution of the same SQL with no parameters gets the same key.
pub fn query_key(sql: &str, params: &[ParamValue<'_>]) -> QueryKey {
    query_key_normalized(&normalize(sql), params)
}

/// Like [`query_key`] for SQL that is already the output of
/// [`normalize()`] (it is not normalized again; passing anything else gives
/// a different key than [`query_key`] would).
pub fn query_key_normalized(normalized_sql: &str, params: &[ParamValue<'_>]) -> QueryKey {
    let mut h = Sha256::new();
    update_sql(&mut h, b'Q', normalized_sql);
    update_len(&mut h, params.len());
    for p in params {
        match p {
            ParamValue::Null => h.update(b"N"),
            ParamValue::Text(s) => {
                h.update(b"T");
                update_len(&mut h, s.len());
                h.update(s.as_bytes());
            }
            ParamValue::Raw { format, bytes } => {
                h.update(b"R");
                h.update(format.to_be_bytes());
                update_len(&mut h, bytes.len());
                h.update(bytes);
            }
        }
    }
    QueryKey::from_hasher(h)
}

/// The key of a prepared statement's SQL alone (used to look up recorded
/// Parse/Describe information). Never equal to any [`query_key`].
pub fn statement_key(sql: &str) -> QueryKey {
    statement_key_normalized(&normalize(sql))
}

/// Like [`statement_key`] for SQL that is already normalized.
pub fn statement_key_normalized(normalized_sql: &str) -> QueryKey {
    let mut h = Sha256::new();
    update_sql(&mut h, b'S', normalized_sql);
    QueryKey::from_hasher(h)
}

#[cfg(test)]
mod tests {
    use super::ParamValue::*;
    use super::*;

    #[test]
    fn key_format_and_parsing() {
        let k = query_key("SELECT 1", &[]);
        assert_eq!(k.to_string().len(), 64);
        assert!(k
            .to_string()
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(k.to_string().parse::<QueryKey>(), Ok(k));
        assert_eq!(k.to_string().to_uppercase().parse::<QueryKey>(), Ok(k));
        assert!("abc".parse::<QueryKey>().is_err());
        assert!("g".repeat(64).parse::<QueryKey>().is_err());
        assert!("é".repeat(32).parse::<QueryKey>().is_err());
        // Pin the encoding: changing it invalidates every recording.
        assert_eq!(
            k.to_string(),
            hex::encode(Sha256::digest(b"Q\0\0\0\0\0\0\0\x08SELECT 1\0\0\0\0"))
        );
    }

    #[test]
    fn simple_and_extended_forms_agree() {
        let simple = query_key("SELECT  *\nFROM t -- x\n", &[]);
        let extended = query_key_normalized("SELECT * FROM t", &[]);
        assert_eq!(simple, extended);
        let params = [Text("5"), Null];
        let a = query_key("SELECT $1 ,\t$2 -- c", &params);
        let b = query_key_normalized(&normalize("SELECT /**/ $1 , $2"), &params);
        let c = query_key("SELECT $1 , $2", &params);
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_ne!(c, query_key("SELECT $1, $2", &params));
    }

    #[test]
    fn distinct_inputs_give_distinct_keys() {
        let sql = "SELECT $1";
        let keys = [
            query_key(sql, &[Null]),
            query_key(sql, &[Text("NULL")]),
            query_key(sql, &[Text("")]),
            query_key(
                sql,
                &[Raw {
                    format: 0,
                    bytes: b"",
                }],
            ),
            query_key(
                sql,
                &[Raw {
                    format: 1,
                    bytes: b"",
                }],
            ),
            query_key(sql, &[]),
            query_key(sql, &[Null, Null]),
            statement_key(sql),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(
            query_key("SELECT $1, $2", &[Text("ab"), Text("c")]),
            query_key("SELECT $1, $2", &[Text("a"), Text("bc")])
        );
        assert_ne!(query_key("SELECT 1N", &[]), query_key("SELECT 1", &[Null]));
        assert_ne!(query_key("select 1", &[]), query_key("SELECT 1", &[]));
        assert_ne!(statement_key("SELECT 1"), query_key("SELECT 1", &[]));
        assert_eq!(
            statement_key("SELECT  1"),
            statement_key_normalized("SELECT 1")
        );
    }
}
