//! The replay engine: recorded answers indexed by query key, one queue per
//! key consumed in recorded order (the last answer repeats once the queue is
//! drained), statement descriptions by SQL for Parse/Describe, misses and
//! unused answers for the report. No I/O here.

mod answer;
mod report;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) use answer::{put_columns, Answer, Completion, Formats};
pub use answer::{Origin, SQLSTATE_CANNOT_ENCODE};
pub use report::{Miss, Report};

use crate::fixture::{Column, ErrorFields, FixtureSet, Format, Phase, Value};
use crate::key::{self, ParamValue, QueryKey};

/// SQLSTATE of the error pgsim sends for a query with no recorded answer.
pub const SQLSTATE_NO_RECORDING: &str = "PGS01";

/// What Parse and Describe need to know about a statement.
#[derive(Debug, Default)]
pub(crate) struct StatementInfo {
    /// Parameter types the server described, when recorded.
    pub(crate) param_types: Option<Vec<u32>>,
    /// `Some(None)`: the statement returns no rows (NoData).
    pub(crate) columns: Option<Option<Arc<[Column]>>>,
    /// The answer Parse got, when every recording of this SQL failed to parse.
    pub(crate) parse_error: Option<Arc<Answer>>,
}

#[derive(Debug)]
struct Queue {
    answers: Vec<Arc<Answer>>,
    cursor: AtomicUsize,
    sql: Arc<str>,
    params: Vec<Value>,
}

/// The recorded world of one database name.
#[derive(Debug)]
pub(crate) struct DatabaseIndex {
    pub(crate) name: String,
    /// ParameterStatus values sent at startup.
    pub(crate) parameters: Vec<(String, String)>,
    pub(crate) backend_pid: i32,
    /// Replayed at startup when no session to this database succeeded.
    pub(crate) startup_error: Option<ErrorFields>,
    queues: HashMap<QueryKey, Queue>,
    statements: HashMap<QueryKey, Arc<StatementInfo>>,
}

impl DatabaseIndex {
    fn new(name: &str) -> Self {
        DatabaseIndex {
            name: name.to_owned(),
            parameters: Vec::new(),
            backend_pid: 0,
            startup_error: None,
            queues: HashMap::new(),
            statements: HashMap::new(),
        }
    }

    /// The next recorded answer for `key`, if any.
    pub(crate) fn answer(&self, key: &QueryKey) -> Option<Arc<Answer>> {
        let queue = self.queues.get(key)?;
        let i = queue.cursor.fetch_add(1, Ordering::Relaxed);
        let answer = queue.answers.get(i).or(queue.answers.last())?;
        answer.mark_used();
        Some(Arc::clone(answer))
    }

    /// What was recorded about a statement's shape, by normalized SQL.
    pub(crate) fn statement(&self, normalized_sql: &str) -> Option<Arc<StatementInfo>> {
        self.statements
            .get(&key::statement_key_normalized(normalized_sql))
            .cloned()
    }
}

/// Recorded answers for every database of a fixture set, plus what
/// happened while serving them.
#[derive(Debug)]
pub struct Replay {
    databases: BTreeMap<String, DatabaseIndex>,
    misses: Mutex<Vec<Miss>>,
    sessions: AtomicU64,
    queries: AtomicU64,
    warnings: Vec<String>,
}

/// Runs `f` with `values` as key parameters (hex of raw values decoded).
pub(crate) fn with_param_values<R>(values: &[Value], f: impl FnOnce(&[ParamValue<'_>]) -> R) -> R {
    let raw: Vec<Vec<u8>> = values
        .iter()
        .map(|v| match v {
            Value::Raw { hex: h, .. } => hex::decode(h).unwrap_or_default(),
            _ => Vec::new(),
        })
        .collect();
    let params: Vec<ParamValue<'_>> = values
        .iter()
        .zip(&raw)
        .map(|(v, bytes)| match v {
            Value::Null => ParamValue::Null,
            Value::Text(t) => ParamValue::Text(t),
            Value::Raw { format, .. } => ParamValue::Raw {
                format: format.code(),
                bytes,
            },
        })
        .collect();
    f(&params)
}

impl Replay {
    /// Indexes a loaded fixture set.
    pub fn new(set: FixtureSet) -> Self {
        let mut databases: BTreeMap<String, DatabaseIndex> = BTreeMap::new();
        let mut exchanges = Vec::new();
        for loaded in set.sessions {
            let s = loaded.session;
            let db = databases
                .entry(s.database.clone())
                .or_insert_with(|| DatabaseIndex::new(&s.database));
            if let Some(err) = s.startup_error {
                if db.parameters.is_empty() && db.startup_error.is_none() {
                    db.startup_error = Some(err);
                }
                continue;
            }
            if db.parameters.is_empty() {
                db.parameters = s.server.parameters.into_iter().collect();
                db.backend_pid = s.server.backend_pid;
                db.startup_error = None;
            }
            let file = loaded.path.display().to_string();
            for ex in s.exchanges {
                exchanges.push((s.database.clone(), file.clone(), ex));
            }
        }
        exchanges.sort_by_key(|(_, file, ex)| (ex.seq, file.clone()));
        for (database, file, ex) in exchanges {
            let Some(db) = databases.get_mut(&database) else {
                continue;
            };
            let normalized = key::normalize(&ex.sql).into_owned();
            let params: Vec<Value> = ex
                .params
                .iter()
                .flatten()
                .map(|p| p.value.clone())
                .collect();
            let k = with_param_values(&params, |p| key::query_key_normalized(&normalized, p));
            let bound = ex
                .params
                .as_ref()
                .map(|p| p.iter().map(|p| p.type_oid).collect());
            let described = ex.param_types.clone();
            let origin = Origin {
                file,
                seq: ex.seq,
                database: database.clone(),
                sql: ex.sql,
            };
            let answer = Arc::new(Answer::new(origin, ex.phase, ex.results));
            note_statement(db, &normalized, &answer, (described, bound));
            db.queues
                .entry(k)
                .or_insert_with(|| Queue {
                    answers: Vec::new(),
                    cursor: AtomicUsize::new(0),
                    sql: Arc::from(normalized.as_str()),
                    params,
                })
                .answers
                .push(answer);
        }
        Replay {
            databases,
            misses: Mutex::new(Vec::new()),
            sessions: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            warnings: set.warnings,
        }
    }

    /// Loads and indexes a fixture directory.
    pub fn load(dir: impl AsRef<std::path::Path>) -> Result<Self, crate::fixture::FixtureError> {
        Ok(Self::new(crate::fixture::load_dir(dir)?))
    }

    /// Takes the next recorded answer for `key` in `database`, exactly as a
    /// served query does, and says where it was recorded.
    pub fn lookup(&self, database: &str, key: &QueryKey) -> Option<Arc<Origin>> {
        self.database(database)?
            .answer(key)
            .map(|a| Arc::clone(&a.origin))
    }

    /// Number of recorded answers.
    pub fn answer_count(&self) -> usize {
        self.databases
            .values()
            .flat_map(|db| db.queues.values())
            .map(|q| q.answers.len())
            .sum()
    }

    pub(crate) fn database(&self, name: &str) -> Option<&DatabaseIndex> {
        self.databases.get(name)
    }

    /// Names of the databases that have fixtures.
    pub fn database_names(&self) -> impl Iterator<Item = &str> {
        self.databases.keys().map(String::as_str)
    }

    /// Warnings from loading (torn journal lines).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub(crate) fn count_session(&self) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_query(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a miss and builds the error the client receives.
    pub(crate) fn miss(&self, db: &DatabaseIndex, sql: &str, params: &[Value]) -> ErrorFields {
        let normalized = key::normalize(sql);
        let k = with_param_values(params, |p| key::query_key_normalized(&normalized, p));
        let queues: Vec<&Queue> = db.queues.values().collect();
        let nearest = with_param_values(params, |p| {
            let decoded: Vec<Vec<Vec<u8>>> = queues
                .iter()
                .map(|q| {
                    q.params
                        .iter()
                        .map(|v| match v {
                            Value::Raw { hex: h, .. } => hex::decode(h).unwrap_or_default(),
                            _ => Vec::new(),
                        })
                        .collect()
                })
                .collect();
            let candidates: Vec<key::Candidate<'_>> = queues
                .iter()
                .zip(&decoded)
                .map(|(q, raw)| key::Candidate {
                    sql: &q.sql,
                    params: q
                        .params
                        .iter()
                        .zip(raw)
                        .map(|(v, b)| match v {
                            Value::Null => ParamValue::Null,
                            Value::Text(t) => ParamValue::Text(t),
                            Value::Raw { format, .. } => ParamValue::Raw {
                                format: format.code(),
                                bytes: b,
                            },
                        })
                        .collect(),
                })
                .collect();
            key::nearest(&normalized, p, &candidates)
                .map(|n| (queues[n.index].sql.to_string(), n.description))
        });
        let shown = shorten(&normalized, 200);
        let message = format!(
            "pgsim: no recorded answer for query {shown:?} (key {k}) in database \"{}\"",
            db.name
        );
        let detail = match &nearest {
            Some((sql, how)) => format!("Closest recorded query: {:?}; {how}.", shorten(sql, 200)),
            None => format!("Nothing is recorded for database \"{}\".", db.name),
        };
        let mut fields = ErrorFields::error(SQLSTATE_NO_RECORDING, message, Some(detail));
        fields.0.insert(
            "hint".into(),
            "Record this query against a real server (pgsim record) or fix the query.".into(),
        );
        if let Ok(mut misses) = self.misses.lock() {
            misses.push(Miss {
                database: db.name.clone(),
                sql: sql.to_owned(),
                key: k.to_string(),
                nearest: nearest.map(|(_, how)| how),
            });
        }
        fields
    }

    /// Records a miss raised for another reason (e.g. a Parse of unknown SQL).
    pub(crate) fn miss_statement(&self, db: &DatabaseIndex, sql: &str) -> ErrorFields {
        self.miss(db, sql, &[])
    }

    /// What has been served so far: sessions, queries, misses, answers never used.
    pub fn report(&self) -> Report {
        let mut unused: Vec<Origin> = self
            .databases
            .values()
            .flat_map(|db| db.queues.values())
            .flat_map(|q| q.answers.iter())
            .filter(|a| !a.was_used())
            .map(|a| (*a.origin).clone())
            .collect();
        unused.sort();
        Report {
            sessions: self.sessions.load(Ordering::Relaxed),
            queries: self.queries.load(Ordering::Relaxed),
            misses: self.misses.lock().map(|m| m.clone()).unwrap_or_default(),
            unused,
        }
    }
}

/// Learns a statement's shape (parameter types, columns) from one of its
/// recorded exchanges; the first exchange that knows wins.
fn note_statement(
    db: &mut DatabaseIndex,
    normalized: &str,
    answer: &Arc<Answer>,
    (described, bound): (Option<Vec<u32>>, Option<Vec<u32>>),
) {
    let skey = key::statement_key_normalized(normalized);
    let info = db.statements.entry(skey).or_default();
    let Some(info) = Arc::get_mut(info) else {
        return;
    };
    let first = answer.results.first();
    let failed = first.is_some_and(|r| matches!(r.completion, Completion::Error(_)));
    if answer.phase == Phase::Parse && failed {
        if info.columns.is_none() && info.param_types.is_none() {
            info.parse_error = Some(Arc::clone(answer));
        }
        return;
    }
    info.parse_error = None;
    if info.param_types.is_none() {
        info.param_types = match (described, bound) {
            (Some(types), _) => Some(types),
            (None, Some(types)) if types.iter().all(|t| *t != 0) => Some(types),
            (None, Some(_)) => None,
            (None, None) => Some(Vec::new()),
        };
    }
    if info.columns.is_none() && answer.results.len() == 1 && !failed {
        info.columns = first.map(|r| r.columns.clone());
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}...")
}

/// The format code of value `i` under a Bind message's format codes.
pub(crate) fn format_at(codes: &[i16], i: usize) -> i16 {
    match codes {
        [] => 0,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(0),
    }
}

/// A wire value as canonical PostgreSQL text; binary values are converted by
/// type, and anything that does not convert is kept raw.
pub(crate) fn canonical_value(value: Option<&[u8]>, format: i16, type_oid: u32) -> Value {
    let Some(bytes) = value else {
        return Value::Null;
    };
    let raw = |format| Value::Raw {
        hex: hex::encode(bytes),
        format,
    };
    if format == 1 {
        crate::types::binary_to_text(type_oid, bytes)
            .map_or_else(|_| raw(Format::Binary), Value::Text)
    } else {
        std::str::from_utf8(bytes).map_or_else(|_| raw(Format::Text), |t| Value::Text(t.to_owned()))
    }
}

/// Bind parameters as canonical values.
pub(crate) fn canonical_params(
    codes: &[i16],
    values: &[Option<bytes::Bytes>],
    types: &[u32],
) -> Vec<Value> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            canonical_value(
                v.as_deref(),
                format_at(codes, i),
                types.get(i).copied().unwrap_or(0),
            )
        })
        .collect()
}
