//! One fixture file made ready for the index: everything the index needs
//! from a session that does not depend on the other files of the set
//! (normalized SQL, query and statement keys, rows and parameters encoded
//! once into one buffer). Computing it is the costly part of loading
//! (JSON parsing, hashing, encoding), so it runs on worker threads, and it
//! is what the index cache (`cache.rs`) stores; [`index::Builder`] then
//! only links digests together. Pure data: no I/O.
//!
//! [`index::Builder`]: super::index::Builder

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::answer::Extra;
use super::{encode_params, with_param_values};
use crate::fixture::{Column, ErrorFields, Phase, QueryResult, Relaxed, Rules, Session, Value};
use crate::key::{self, QueryKey};
use crate::wire;

/// A fixture file's session, digested.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Digest {
    pub(crate) database: String,
    pub(crate) user: String,
    pub(crate) parameters: Vec<(String, String)>,
    pub(crate) backend_pid: i32,
    pub(crate) startup_error: Option<ErrorFields>,
    /// Distinct SQL texts of the file: (as sent, normalized, statement key).
    pub(crate) sqls: Vec<(String, String, [u8; 32])>,
    /// Distinct column sets of the file.
    pub(crate) columns: Vec<Vec<Column>>,
    /// Distinct short strings of the file (tags, scopes).
    pub(crate) strings: Vec<String>,
    /// Distinct parameter type lists of the file.
    pub(crate) types: Vec<Vec<u32>>,
    pub(crate) exchanges: Vec<DigestedExchange>,
    /// Every exchange's results, in exchange order (each exchange holds a
    /// range): one allocation per file rather than one per exchange.
    pub(crate) results: Vec<DigestedResult>,
    /// Encoded parameters and text rows, which exchanges point into.
    /// Stored outside the serialized form by the cache (`cache.rs`), so a
    /// cached file's rows are a slice of the cache buffer, never copied.
    #[serde(skip)]
    pub(crate) arena: Bytes,
    /// What loading the file said without refusing it (a torn journal line).
    pub(crate) warning: Option<String>,
}

/// An exchange with its keys computed.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DigestedExchange {
    pub(crate) seq: u64,
    /// Index into [`Digest::strings`].
    pub(crate) scope: Option<u32>,
    pub(crate) phase: Phase,
    /// Index into [`Digest::sqls`].
    pub(crate) sql: u32,
    /// The key it is stored under (parameters relaxed by the rules).
    pub(crate) key: [u8; 32],
    /// The key of its exact values, when a rule relaxed them.
    pub(crate) exact: Option<[u8; 32]>,
    pub(crate) relaxed: Vec<Relaxed>,
    /// Parameter types the server described, and the types bound: indexes
    /// into [`Digest::types`].
    pub(crate) param_types: Option<u32>,
    pub(crate) bound: Option<u32>,
    #[serde(with = "json")]
    pub(crate) before: Vec<crate::fixture::AsyncMessage>,
    /// Range of [`Digest::arena`] holding the encoded key values.
    pub(crate) params: (u32, u32),
    /// Range of [`Digest::results`].
    pub(crate) results: (u32, u32),
}

/// A statement result with its rows encoded.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DigestedResult {
    pub(crate) notices: Vec<ErrorFields>,
    /// Index into [`Digest::columns`].
    pub(crate) columns: Option<u32>,
    pub(crate) rows: DigestedRows,
    pub(crate) completion: DigestedCompletion,
    pub(crate) columns_unknown: bool,
    #[serde(with = "json")]
    pub(crate) extra: Option<Box<Extra>>,
}

/// Rows of a digested result.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum DigestedRows {
    /// Text DataRow messages: a range of [`Digest::arena`] and their count.
    Wire { start: u32, end: u32, count: u32 },
    /// Rows holding raw values, encoded per request.
    Values(#[serde(with = "json")] Vec<Vec<Value>>),
}

/// How a digested result ends.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum DigestedCompletion {
    /// A command tag: index into [`Digest::strings`].
    Tag(u32),
    Empty,
    Error(Box<ErrorFields>),
    Suspended,
}

impl Digest {
    /// The identity [`crate::fixture::SeenSessions`] compares: database,
    /// role, backend pid, first and last seq, number of exchanges.
    pub(crate) fn identity(&self) -> Option<(String, String, i32, u64, u64, usize)> {
        let (first, last) = (self.exchanges.first()?, self.exchanges.last()?);
        Some((
            self.database.clone(),
            self.user.clone(),
            self.backend_pid,
            first.seq,
            last.seq,
            self.exchanges.len(),
        ))
    }

    /// Checks that every index and range points inside the digest: a cache
    /// is read only once it passed its checksum, but an index is never
    /// followed unchecked.
    pub(crate) fn check(&self) -> Result<(), String> {
        let arena = self.arena.len() as u64;
        let range = |(s, e): (u32, u32)| u64::from(s) <= u64::from(e) && u64::from(e) <= arena;
        let string = |i: u32| (i as usize) < self.strings.len();
        let types = |i: u32| (i as usize) < self.types.len();
        // Results ranges tile `results` in order, so the index can take
        // them one exchange after another.
        let mut next = 0u32;
        for ex in &self.exchanges {
            if (ex.sql as usize) >= self.sqls.len()
                || !ex.scope.is_none_or(string)
                || !range(ex.params)
                || !ex.param_types.is_none_or(types)
                || !ex.bound.is_none_or(types)
                || ex.results.0 != next
                || ex.results.1 < ex.results.0
                || ex.results.1 as usize > self.results.len()
            {
                return Err(format!("exchange seq {} points outside its file", ex.seq));
            }
            next = ex.results.1;
            for r in &self.results[ex.results.0 as usize..ex.results.1 as usize] {
                let columns = r.columns.is_none_or(|c| (c as usize) < self.columns.len());
                let rows = match r.rows {
                    DigestedRows::Wire { start, end, .. } => range((start, end)),
                    DigestedRows::Values(_) => true,
                };
                let tag = match r.completion {
                    DigestedCompletion::Tag(t) => string(t),
                    _ => true,
                };
                if !(columns && rows && tag) {
                    return Err(format!("exchange seq {} points outside its file", ex.seq));
                }
            }
        }
        if next as usize != self.results.len() {
            return Err("results that no exchange holds".to_owned());
        }
        Ok(())
    }
}

/// Digests one loaded session under the directory's `rules`.
pub(crate) fn digest(s: Session, rules: &Rules, warning: Option<String>) -> Digest {
    let mut d = Digester::default();
    let mut arena = BytesMut::new();
    let mut exchanges = Vec::with_capacity(s.exchanges.len());
    let mut results = Vec::with_capacity(s.exchanges.len());
    for mut ex in s.exchanges {
        let first = results.len() as u32;
        for r in std::mem::take(&mut ex.results) {
            results.push(d.result(r, &mut arena));
        }
        let these = (first, results.len() as u32);
        let sql = d.sql(&ex.sql);
        let normalized = &d.sqls[sql as usize].1;
        let (values, relaxed) = ex.relaxed_key_values(rules, normalized);
        let key = with_param_values(&values, |p| key::query_key_normalized(normalized, p));
        let exact = (!relaxed.is_empty()).then(|| {
            *with_param_values(&ex.key_values(), |p| {
                key::query_key_normalized(normalized, p)
            })
            .as_bytes()
        });
        let start = arena.len();
        encode_params(&values, &mut arena);
        let bound = ex.params.as_ref().map(|p| {
            d.types
                .id(&p.iter().map(|p| p.type_oid).collect::<Vec<_>>()[..])
        });
        let param_types = ex.param_types.map(|t| d.types.id(t.as_slice()));
        exchanges.push(DigestedExchange {
            seq: ex.seq,
            scope: ex.scope.as_deref().map(|s| d.strings.id(s)),
            phase: ex.phase,
            sql,
            key: *key.as_bytes(),
            exact,
            relaxed,
            param_types,
            bound,
            before: ex.before,
            params: (start as u32, arena.len() as u32),
            results: these,
        });
    }
    Digest {
        database: s.database,
        user: s.user,
        parameters: s.server.parameters.into_iter().collect(),
        backend_pid: s.server.backend_pid,
        startup_error: s.startup_error,
        sqls: d.sqls,
        columns: d.columns.values,
        strings: d.strings.values,
        types: d.types.values,
        exchanges,
        results,
        arena: arena.freeze(),
        warning,
    }
}

/// The distinct things of one file, numbered as they first appear.
#[derive(Default)]
struct Digester {
    sqls: Vec<(String, String, [u8; 32])>,
    sql_ids: HashMap<String, u32>,
    columns: Numbered<Vec<Column>>,
    strings: Numbered<String>,
    types: Numbered<Vec<u32>>,
}

/// Distinct values, numbered as they first appear.
struct Numbered<T> {
    values: Vec<T>,
    ids: HashMap<T, u32>,
}

impl<T> Default for Numbered<T> {
    fn default() -> Self {
        Numbered {
            values: Vec::new(),
            ids: HashMap::new(),
        }
    }
}

impl<T: Clone + Eq + std::hash::Hash> Numbered<T> {
    /// The number of `value` (a borrowed form of it is looked up first, so
    /// a value seen before is not copied).
    fn id<Q>(&mut self, value: &Q) -> u32
    where
        T: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = T> + ?Sized,
    {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(value.to_owned());
        self.ids.insert(value.to_owned(), id);
        id
    }
}

impl Digester {
    fn sql(&mut self, sql: &str) -> u32 {
        if let Some(&id) = self.sql_ids.get(sql) {
            return id;
        }
        let normalized = key::normalize(sql).into_owned();
        let statement = *key::statement_key_normalized(&normalized).as_bytes();
        let id = self.sqls.len() as u32;
        self.sqls.push((sql.to_owned(), normalized, statement));
        self.sql_ids.insert(sql.to_owned(), id);
        id
    }

    fn result(&mut self, r: QueryResult, arena: &mut BytesMut) -> DigestedResult {
        let completion = match (r.error, r.tag) {
            (Some(e), _) => DigestedCompletion::Error(Box::new(e)),
            (None, Some(tag)) => DigestedCompletion::Tag(self.strings.id(tag.as_str())),
            (None, None) if r.suspended => DigestedCompletion::Suspended,
            (None, None) => DigestedCompletion::Empty,
        };
        let extra =
            (!r.after.is_empty() || r.copy_out.is_some() || r.copy_in.is_some()).then(|| {
                Box::new(Extra {
                    after: r.after,
                    copy_out: r.copy_out,
                    copy_in: r.copy_in,
                })
            });
        let columns = r.columns.map(|c| self.columns.id(c.as_slice()));
        DigestedResult {
            notices: r.notices,
            columns,
            rows: encode_rows(r.rows, arena),
            completion,
            columns_unknown: r.columns_unknown,
            extra,
        }
    }
}

/// Text rows become DataRow messages in `arena`; rows with raw values stay
/// values, encoded per request.
fn encode_rows(rows: Vec<Vec<Value>>, arena: &mut BytesMut) -> DigestedRows {
    let all_text = rows
        .iter()
        .flatten()
        .all(|v| matches!(v, Value::Null | Value::Text(_)));
    if all_text {
        let start = arena.len();
        let ok = rows.iter().all(|row| {
            let values: Vec<Option<&[u8]>> = row
                .iter()
                .map(|v| match v {
                    Value::Text(t) => Some(t.as_bytes()),
                    _ => None,
                })
                .collect();
            wire::put_data_row(arena, &values).is_ok()
        });
        if ok {
            return DigestedRows::Wire {
                start: start as u32,
                end: arena.len() as u32,
                count: rows.len() as u32,
            };
        }
        arena.truncate(start);
    }
    DigestedRows::Values(rows)
}

impl DigestedExchange {
    pub(crate) fn key(&self) -> QueryKey {
        QueryKey::from_digest(self.key)
    }
}

/// Rare, structured fields (asynchronous messages, raw values, COPY) go
/// into the cache as JSON: the cache's binary format is not self-describing,
/// and these types are shaped for the fixture files (tagged enums, optional
/// fields). An empty value is stored as nothing.
mod json {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<T: Serialize + Default + PartialEq, S: Serializer>(
        value: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        if *value == T::default() {
            return None::<String>.serialize(s);
        }
        let text = serde_json::to_string(value).map_err(serde::ser::Error::custom)?;
        Some(text).serialize(s)
    }

    pub(super) fn deserialize<'de, T: DeserializeOwned + Default, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(T::default()),
            Some(text) => serde_json::from_str(&text).map_err(serde::de::Error::custom),
        }
    }
}
