//! Query keys: normalized SQL plus canonical parameter values, hashed with
//! sha256. Normalization only touches whitespace and comments outside
//! strings, quoted identifiers and dollar quotes, so it never changes what a
//! query means.

mod lexer;
mod nearest;

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

pub use lexer::{scan, TokenKind};
pub use nearest::{nearest, Candidate, NearMiss};

/// A parameter value as it enters a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamValue<'a> {
    /// SQL NULL.
    Null,
    /// Canonical PostgreSQL text.
    Text(&'a str),
    /// Bytes pgsim could not convert to text, with their format code.
    Raw {
        /// 0 text, 1 binary.
        format: i16,
        /// The bytes.
        bytes: &'a [u8],
    },
}

/// A query key: sha256 of the normalized SQL and the parameters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryKey([u8; 32]);

impl QueryKey {
    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
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

/// The normalized form of `sql`: every run of whitespace and comments
/// outside quotes becomes one space, and leading/trailing ones are removed.
/// Borrowed when `sql` is already normalized.
pub fn normalize(sql: &str) -> Cow<'_, str> {
    let spans = scan(sql);
    let mut out = String::with_capacity(sql.len());
    let mut pending_space = false;
    let mut changed = false;
    for (kind, text) in &spans {
        match kind {
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment => {
                if *text != " " || pending_space {
                    changed = true;
                }
                pending_space = true;
            }
            _ => {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                } else if pending_space {
                    changed = true;
                }
                pending_space = false;
                out.push_str(text);
            }
        }
    }
    if pending_space {
        changed = true;
    }
    if changed || out.len() != sql.len() {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(sql)
    }
}

/// The key of `sql` (normalized here) with `params`.
pub fn query_key(sql: &str, params: &[ParamValue<'_>]) -> QueryKey {
    query_key_normalized(&normalize(sql), params)
}

/// The key of already-normalized SQL with `params`. The preimage is
/// unambiguous: every part is tagged and length-prefixed.
pub fn query_key_normalized(normalized_sql: &str, params: &[ParamValue<'_>]) -> QueryKey {
    let mut h = Sha256::new();
    h.update((normalized_sql.len() as u64).to_be_bytes());
    h.update(normalized_sql.as_bytes());
    for p in params {
        match p {
            ParamValue::Null => h.update([b'N']),
            ParamValue::Text(t) => {
                h.update([b'T']);
                h.update((t.len() as u64).to_be_bytes());
                h.update(t.as_bytes());
            }
            ParamValue::Raw { format, bytes } => {
                h.update([b'R']);
                h.update(format.to_be_bytes());
                h.update((bytes.len() as u64).to_be_bytes());
                h.update(bytes);
            }
        }
    }
    QueryKey(h.finalize().into())
}

#[cfg(test)]
mod tests;
