//! The replay engine: recorded answers indexed by query key, one queue per
//! key consumed in recorded order (the last answer repeats once the queue is
//! drained), statement descriptions by SQL for Parse/Describe, misses and
//! unused answers for the report. No I/O here.

mod answer;
mod cache;
mod choose;
mod digest;
mod index;
mod load;
mod report;
mod strict;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) use answer::{
    copy_format, put_async, put_columns, put_copy_out, Answer, Completion, Formats, PreparedResult,
};
pub use answer::{Origin, SQLSTATE_CANNOT_ENCODE};
pub use cache::{LoadOptions, LoadStats, CACHE_DIR, CACHE_FILE};
pub(crate) use choose::{Follow, Lookup, Who};
use choose::{Segment, SessionMeta};
pub use report::{Miss, RelaxedMatch, Report, DEFAULT_MISS_DETAILS, MISS_SQL_CHARS};
pub(crate) use strict::StrictFollow;

use crate::fixture::{Column, ErrorFields, FixtureSet, Format, Value};
use crate::key::{self, ParamValue, QueryKey};

/// SQLSTATE of the error pgsim sends for a query with no recorded answer.
pub const SQLSTATE_NO_RECORDING: &str = "PGS01";

/// What PostgreSQL answers any statement but ROLLBACK in a failed
/// transaction; the mock server answers it from its own transaction state.
pub(crate) const SQLSTATE_IN_FAILED_TRANSACTION: &str = "25P02";

/// What Parse answers for the empty statement (it describes to NoData).
pub(crate) static EMPTY_STATEMENT: StatementInfo = StatementInfo {
    param_types: Some(Vec::new()),
    columns: Some(None),
    parse_error: None,
    copy_in: None,
};

/// What Parse and Describe need to know about a statement.
#[derive(Debug, Default)]
pub(crate) struct StatementInfo {
    /// Parameter types the server described, when recorded.
    pub(crate) param_types: Option<Vec<u32>>,
    /// `Some(None)`: the statement returns no rows (NoData).
    pub(crate) columns: Option<Option<Arc<[Column]>>>,
    /// The answer Parse got, when every recording of this SQL failed to parse.
    pub(crate) parse_error: Option<Arc<Answer>>,
    /// The CopyInResponse recorded for `COPY ... FROM STDIN`: sent before
    /// the data arrives, so before the answer's key is known.
    pub(crate) copy_in: Option<crate::fixture::CopyShape>,
}

/// The recorded answers of one key: sorted by recorded session, then in
/// recorded order within each.
#[derive(Debug)]
enum Answers {
    One(Arc<Answer>),
    Many(Vec<Arc<Answer>>),
}

impl Answers {
    fn as_slice(&self) -> &[Arc<Answer>] {
        match self {
            Answers::One(a) => std::slice::from_ref(a),
            Answers::Many(many) => many,
        }
    }

    fn push(&mut self, answer: Arc<Answer>) {
        match self {
            Answers::One(first) => *self = Answers::Many(vec![Arc::clone(first), answer]),
            Answers::Many(many) => many.push(answer),
        }
    }
}

#[derive(Debug)]
struct Queue {
    answers: Answers,
    /// How its answers spread over sessions and groups: only a key
    /// answered more than once has one (boxed: most keys have one answer).
    spread: Option<Box<Spread>>,
    /// Every answer is the same, in the same scope: whoever asks gets it,
    /// and `served` walks them in recorded order for the unused report.
    uniform: bool,
    served: AtomicU32,
    /// Normalized SQL and parameters (see [`encode_params`]), for the
    /// near-miss diagnostic.
    sql: Arc<str>,
    params: bytes::Bytes,
}

/// The sessions and groups holding a key answered more than once.
#[derive(Debug, Default)]
struct Spread {
    /// One per recorded session holding the key, by session; empty when
    /// the queue is `uniform`.
    segments: Box<[Segment]>,
    /// The sorted groups whose sessions hold the key.
    groups: Box<[u32]>,
}

impl Queue {
    /// See [`Spread::segments`] (none for a key answered once).
    fn segments(&self) -> &[Segment] {
        self.spread.as_ref().map_or(&[], |s| &s.segments)
    }

    /// See [`Spread::groups`] (none for a key answered once: its session's
    /// group is its answer's).
    fn groups(&self) -> &[u32] {
        self.spread.as_ref().map_or(&[], |s| &s.groups)
    }
}

/// Appends parameter values in a compact form: per value `N`, or `T` + u32
/// length + UTF-8, or `R` + format + u32 length + bytes.
fn encode_params(values: &[Value], out: &mut bytes::BytesMut) {
    use bytes::BufMut;
    for v in values {
        match v {
            Value::Null => out.put_u8(b'N'),
            Value::Text(t) => {
                out.put_u8(b'T');
                out.put_u32(t.len() as u32);
                out.put_slice(t.as_bytes());
            }
            Value::Raw { hex: h, format } => {
                let bytes = hex::decode(h).unwrap_or_default();
                out.put_u8(b'R');
                out.put_u8(format.code() as u8);
                out.put_u32(bytes.len() as u32);
                out.put_slice(&bytes);
            }
        }
    }
}

/// The inverse of [`encode_params`], borrowing from `bytes`.
fn decode_params(mut bytes: &[u8]) -> Vec<ParamValue<'_>> {
    let mut out = Vec::new();
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (b.get(..n)?, b.get(n..)?);
        *b = tail;
        Some(head)
    }
    while let Some((&tag, rest)) = bytes.split_first() {
        bytes = rest;
        let format = if tag == b'R' {
            take(&mut bytes, 1).map_or(0, |f| i16::from(f[0]))
        } else {
            0
        };
        if tag == b'N' {
            out.push(ParamValue::Null);
            continue;
        }
        let Some(len) =
            take(&mut bytes, 4).map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        else {
            break;
        };
        let Some(value) = take(&mut bytes, len) else {
            break;
        };
        out.push(match (tag, std::str::from_utf8(value)) {
            (b'T', Ok(text)) => ParamValue::Text(text),
            _ => ParamValue::Raw {
                format,
                bytes: value,
            },
        });
    }
    out
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
    /// Key to position in `queues` (a small map entry; the queues
    /// themselves sit in an exactly-sized vector).
    index: HashMap<QueryKey, u32, KeyHasher>,
    queues: Vec<Queue>,
    sessions: Vec<SessionMeta>,
    /// Every session's queries in order, for strict order (built on first use).
    sequences: std::sync::OnceLock<strict::Sequences>,
    statements: HashMap<QueryKey, Arc<StatementInfo>, KeyHasher>,
    /// The 25P02 errors the recorded server sent, by the routine that
    /// raised them (exec_simple_query, exec_parse_message, ...): the mock
    /// answers a failed transaction itself, with the server's own fields.
    pub(crate) aborted: BTreeMap<String, ErrorFields>,
    /// Every role a session of this database was recorded as (refused
    /// connections included).
    pub(crate) roles: std::collections::BTreeSet<Arc<str>>,
}

/// Query keys are already uniformly random digests: hashing them again is
/// wasted work on every lookup, so the map uses their first bytes directly.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyHasher;

impl std::hash::BuildHasher for KeyHasher {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

/// See [`KeyHasher`].
#[derive(Debug, Default)]
pub(crate) struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8).take(1) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_usize(&mut self, _len: usize) {}
}

impl DatabaseIndex {
    pub(super) fn new(name: &str) -> Self {
        DatabaseIndex {
            name: name.to_owned(),
            parameters: Vec::new(),
            backend_pid: 0,
            startup_error: None,
            index: HashMap::with_hasher(KeyHasher),
            queues: Vec::new(),
            sessions: Vec::new(),
            sequences: std::sync::OnceLock::new(),
            statements: HashMap::with_hasher(KeyHasher),
            aborted: BTreeMap::new(),
            roles: std::collections::BTreeSet::new(),
        }
    }

    /// Distinct recorded queries: what a miss's diagnostic compares with.
    pub(crate) fn recorded_queries(&self) -> usize {
        self.queues.len()
    }

    /// What was recorded about a statement's shape, by normalized SQL.
    pub(crate) fn statement(&self, normalized_sql: &str) -> Option<&StatementInfo> {
        self.statements
            .get(&key::statement_key_normalized(normalized_sql))
            .map(|info| &**info)
    }
}

/// A miss's diagnostic computed before the query is handled: the closest
/// recorded query to `normalized` (without parameters) and how it differs.
#[derive(Debug)]
pub(crate) struct Diagnosis {
    pub(crate) normalized: String,
    pub(crate) closest: Option<(String, String)>,
}

/// Recorded answers for every database of a fixture set, plus what
/// happened while serving them.
#[derive(Debug)]
pub struct Replay {
    databases: BTreeMap<String, DatabaseIndex>,
    misses: Mutex<report::MissRecord>,
    /// Text-format RowDescription bytes per shared column set (keyed by
    /// the set's address: column sets are interned and live as long as this).
    descriptions: std::sync::RwLock<HashMap<usize, bytes::Bytes>>,
    sessions: AtomicU64,
    queries: AtomicU64,
    warnings: Vec<String>,
    rejected: Vec<crate::fixture::Rejected>,
    /// The directory the fixtures were loaded from, for the hint of a miss.
    source: Option<std::path::PathBuf>,
    rules: crate::fixture::Rules,
    load_stats: Option<LoadStats>,
    /// Every answer a matching rule let match, by rule: for the report.
    relaxed: Mutex<BTreeMap<(crate::fixture::Relaxed, Origin), u64>>,
}

/// The key an exchange is stored and looked up under: its normalized SQL
/// and its values, as `rules` (the directory's `pgsim-rules.json`) relax
/// them. The recorder writes it as `key`; a stored key that is not this
/// one was written by something else (an edit by hand, or rules changed
/// since).
pub fn exchange_key(ex: &crate::fixture::Exchange, rules: &crate::fixture::Rules) -> QueryKey {
    let normalized = key::normalize(&ex.sql);
    let (values, _) = ex.relaxed_key_values(rules, &normalized);
    with_param_values(&values, |p| key::query_key_normalized(&normalized, p))
}

/// Runs `f` with `values` as key parameters (hex of raw values decoded).
pub(crate) fn with_param_values<R>(values: &[Value], f: impl FnOnce(&[ParamValue<'_>]) -> R) -> R {
    with_values(values.iter(), f)
}

/// [`with_param_values`] over bound parameters, without copying them.
pub(crate) fn with_bound_params<R>(
    params: &[crate::fixture::Param],
    f: impl FnOnce(&[ParamValue<'_>]) -> R,
) -> R {
    with_values(params.iter().map(|p| &p.value), f)
}

fn with_values<'v, R>(
    values: impl Iterator<Item = &'v Value> + Clone,
    f: impl FnOnce(&[ParamValue<'_>]) -> R,
) -> R {
    let raw: Vec<Vec<u8>> = values
        .clone()
        .map(|v| match v {
            Value::Raw { hex: h, .. } => hex::decode(h).unwrap_or_default(),
            _ => Vec::new(),
        })
        .collect();
    let params: Vec<ParamValue<'_>> = values
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
        let mut builder = index::Builder::with_rules(set.rules);
        for loaded in set.sessions {
            builder.add_session(&loaded.path.display().to_string(), loaded.session);
        }
        let rules = builder.rules.clone();
        let (databases, mut warnings) = builder.finish();
        warnings.splice(0..0, set.warnings);
        let mut replay = Self::from_parts(databases, warnings, set.rejected);
        replay.rules = rules;
        replay
    }

    /// Loads and indexes a fixture directory with the default
    /// [`LoadOptions`] (the index cache on, one worker per core). A file
    /// that does not load is refused alone (see [`Replay::rejected`]); the
    /// others serve.
    pub fn load(dir: impl AsRef<std::path::Path>) -> Result<Self, crate::fixture::FixtureError> {
        Self::load_with(dir, &LoadOptions::default())
    }

    /// Loads and indexes a fixture directory: worker threads read, hash
    /// and digest the files (from the index cache when a file's content is
    /// the one cached, else from its JSON), and this thread links the
    /// digests into the index in file-name order. The cache is rewritten
    /// when anything in it was missing or stale.
    pub fn load_with(
        dir: impl AsRef<std::path::Path>,
        options: &LoadOptions,
    ) -> Result<Self, crate::fixture::FixtureError> {
        let dir = dir.as_ref();
        let started = std::time::Instant::now();
        // A replacement a crashed run left half done is finished first, so
        // the set served is whole.
        let leftover = crate::fixture::finish_replacement(dir)?;
        let files = crate::fixture::fixture_files(dir)?;
        let (rules, rules_hash) = cache::rules_with_hash(dir)?;
        let mut warnings = Vec::new();
        let cached = if options.index_cache {
            match cache::Cache::read(dir, rules_hash) {
                Ok(c) => Some(c),
                Err(cache::Unusable::Stale) => None,
                Err(cache::Unusable::Corrupt(why)) => {
                    warnings.push(format!("index cache ignored and rebuilt: {why}"));
                    None
                }
            }
        } else {
            None
        };
        let mut builder = index::Builder::with_rules(rules.clone());
        let mut rejected = Vec::new();
        let mut seen = crate::fixture::SeenSessions::default();
        let mut entries = Vec::new();
        let mut rebuild = options.index_cache;
        let work = load::Work {
            dir,
            files: &files,
            rules: &rules,
            cache: cached.as_ref(),
            keep_entries: options.index_cache,
        };
        let mut hits = 0usize;
        let mut parsed = 0usize;
        load::run(&work, options.workers, |path, loaded| match loaded {
            Ok(file) => {
                hits += usize::from(file.from_cache);
                parsed += usize::from(!file.from_cache);
                warnings.extend(file.notes);
                let id = file.digest.identity();
                match id.map_or(Ok(()), |id| seen.check_identity(path, id)) {
                    Ok(()) => {
                        warnings.extend(file.digest.warning.clone());
                        builder.add_digest(&path.display().to_string(), file.digest);
                        entries.extend(file.entry);
                    }
                    Err(dup) => rejected.push(dup),
                }
            }
            Err(e) => {
                parsed += 1;
                rejected.push(crate::fixture::Rejected::new(path, &e))
            }
        });
        if let Some(c) = &cached {
            // Nothing to write when every file came from the cache and the
            // cache holds nothing else.
            rebuild = hits != entries.len() || c.len() != entries.len();
        } else if entries.is_empty() {
            // An empty directory (or one whose every file was refused)
            // gets no cache directory for nothing.
            rebuild = false;
        }
        let mut stats = LoadStats {
            files: files.len(),
            from_cache: hits,
            parsed,
            ..LoadStats::default()
        };
        if rebuild {
            // A read-only fixture directory simply has no cache.
            match cache::write(dir, rules_hash, &entries) {
                Ok(()) => stats.cache_written = true,
                Err(e) => stats.cache_error = Some(e.to_string()),
            }
        }
        drop(entries);
        drop(cached);
        let (databases, found) = builder.finish();
        warnings.extend(found);
        if leftover != crate::fixture::Leftover::None {
            warnings.push(format!(
                "{}: a replacement of this fixture set that a crashed run left unfinished was finished first ({leftover:?})",
                dir.display()
            ));
        }
        let mut replay = Self::from_parts(databases, warnings, rejected);
        replay.source = Some(dir.to_owned());
        replay.rules = rules;
        stats.elapsed = started.elapsed();
        replay.load_stats = Some(stats);
        Ok(replay)
    }

    fn from_parts(
        databases: BTreeMap<String, DatabaseIndex>,
        warnings: Vec<String>,
        rejected: Vec<crate::fixture::Rejected>,
    ) -> Self {
        Replay {
            databases,
            misses: Mutex::new(report::MissRecord::new(report::DEFAULT_MISS_DETAILS)),
            descriptions: std::sync::RwLock::new(HashMap::new()),
            sessions: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            warnings,
            rejected,
            source: None,
            rules: crate::fixture::Rules::default(),
            relaxed: Mutex::new(BTreeMap::new()),
            load_stats: None,
        }
    }

    /// What loading the fixture directory did: files from the index cache,
    /// files parsed, whether the cache was written. `None` for a set not
    /// loaded from a directory.
    pub fn load_stats(&self) -> Option<&LoadStats> {
        self.load_stats.as_ref()
    }

    /// The fixture directory's matching rules.
    pub(crate) fn rules(&self) -> &crate::fixture::Rules {
        &self.rules
    }

    /// Notes that `rules` relaxed the match that served `answer`.
    pub(crate) fn note_relaxed(&self, rules: &[crate::fixture::Relaxed], answer: &Answer) {
        if let Ok(mut relaxed) = self.relaxed.lock() {
            for r in rules {
                *relaxed
                    .entry((r.clone(), answer.origin.clone()))
                    .or_insert(0) += 1;
            }
        }
    }

    /// Fixture files that were refused at load, each with its error.
    pub fn rejected(&self) -> &[crate::fixture::Rejected] {
        &self.rejected
    }

    /// Takes the next recorded answer for `key` in `database`, exactly as a
    /// served query does, and says where it was recorded.
    /// As a new connection without a scope would.
    pub fn lookup(&self, database: &str, key: &QueryKey) -> Option<Origin> {
        match self
            .database(database)?
            .answer(key, Who::default(), &mut Follow::default())
        {
            Lookup::Found(a) => Some(a.origin.clone()),
            Lookup::Missing(_) | Lookup::OtherRoles(_) | Lookup::Ambiguous(_) => None,
        }
    }

    /// Number of recorded answers.
    pub fn answer_count(&self) -> usize {
        self.databases
            .values()
            .flat_map(|db| db.queues.iter())
            .map(|q| q.answers.as_slice().len())
            .sum()
    }

    /// The RowDescription of `columns` with every column in text format,
    /// encoded once per column set.
    pub(crate) fn text_description(
        &self,
        columns: &Arc<[Column]>,
    ) -> Result<bytes::Bytes, crate::wire::WireError> {
        let id = columns.as_ptr() as usize;
        if let Some(found) = self
            .descriptions
            .read()
            .ok()
            .and_then(|d| d.get(&id).cloned())
        {
            return Ok(found);
        }
        let mut buf = bytes::BytesMut::new();
        put_columns(&mut buf, columns, &Formats::AllText)?;
        let bytes = buf.freeze();
        if let Ok(mut d) = self.descriptions.write() {
            d.insert(id, bytes.clone());
        }
        Ok(bytes)
    }

    pub(crate) fn database(&self, name: &str) -> Option<&DatabaseIndex> {
        self.databases.get(name)
    }

    /// Whether any recorded session, of any database, connected as `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.databases.values().any(|db| db.roles.contains(role))
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

    /// (sessions, queries, misses) so far: the report's counts, without
    /// building the rest of it.
    pub(crate) fn served_counts(&self) -> (u64, u64, u64) {
        let missed = self.misses.lock().map(|m| m.total()).unwrap_or(0);
        (
            self.sessions.load(Ordering::Relaxed),
            self.queries.load(Ordering::Relaxed),
            missed,
        )
    }

    /// The recorded query of `db` closest to `normalized` with `params`,
    /// and how it differs: a miss's diagnostic (bounded: `key::nearest`).
    pub(crate) fn closest(
        &self,
        db: &DatabaseIndex,
        normalized: &str,
        params: &[Value],
    ) -> Option<(String, String)> {
        with_param_values(params, |p| {
            let candidates: Vec<key::Candidate<'_>> = db
                .queues
                .iter()
                .map(|q| key::Candidate {
                    sql: &q.sql,
                    params: decode_params(&q.params),
                })
                .collect();
            key::nearest(normalized, p, &candidates)
                .map(|n| (db.queues[n.index].sql.to_string(), n.description))
        })
    }

    /// Records a miss (`why` is the failed lookup of a connection in
    /// `scope`) and builds the error the client receives. `ahead` is the
    /// diagnostic of a query without parameters computed beforehand
    /// (off the I/O thread), used when it is this query's.
    pub(crate) fn miss(
        &self,
        db: &DatabaseIndex,
        sql: &str,
        params: &[Value],
        scope: Option<&str>,
        why: &Lookup<'_>,
        ahead: Option<&Diagnosis>,
    ) -> ErrorFields {
        let normalized = key::normalize(sql);
        let k = with_param_values(params, |p| key::query_key_normalized(&normalized, p));
        let shown = shorten(&normalized, 200);
        let (message, mut detail, hint, note) = match why {
            Lookup::Ambiguous(candidates) => {
                let listed: Vec<String> = candidates
                    .iter()
                    .map(|a| {
                        let scope = db
                            .sessions
                            .get(a.session as usize)
                            .and_then(|s| s.scope.as_deref())
                            .map_or(String::new(), |s| format!(", scope {s:?}"));
                        format!("{} (seq {}{scope})", a.origin.file, a.origin.seq)
                    })
                    .collect();
                (
                    format!(
                        "pgsim: {} recorded sessions answer query {shown:?} (key {k}) in database \"{}\" differently, and nothing this connection sent tells which one it is",
                        candidates.len(),
                        db.name
                    ),
                    format!("Candidates: {}.", listed.join("; ")),
                    "Give each test its own scope, when recording and when replaying: SET pgsim.scope = 'test name' (or the connection option -c pgsim.scope=NAME); or replay these clients as they were recorded.".to_owned(),
                    format!("ambiguous between {}", listed.join("; ")),
                )
            }
            Lookup::Missing(scopes) if !scopes.is_empty() => {
                let name = |s: &Option<Arc<str>>| match s {
                    Some(s) => format!("{s:?}"),
                    None => "no scope".to_owned(),
                };
                let listed: Vec<String> = scopes.iter().map(name).collect();
                let here = name(&scope.map(Arc::from));
                (
                    format!(
                        "pgsim: no recorded answer for query {shown:?} (key {k}) in database \"{}\" in this connection's scope ({here})",
                        db.name
                    ),
                    format!("It is recorded in: {}.", listed.join(", ")),
                    "Set the scope the query was recorded in (SET pgsim.scope = '...'), or record it in this one.".to_owned(),
                    format!("recorded only in {}", listed.join(", ")),
                )
            }
            Lookup::OtherRoles(roles) => {
                let listed: Vec<String> = roles.iter().map(|r| format!("{r:?}")).collect();
                (
                    format!(
                        "pgsim: no recorded answer for query {shown:?} (key {k}) in database \"{}\" for this connection's role",
                        db.name
                    ),
                    format!("It is recorded only for role(s) {}.", listed.join(", ")),
                    "Connect as the role it was recorded as, or record it as this one (a role's answers are its own: what one role may see, another may not).".to_owned(),
                    format!("recorded only for role(s) {}", listed.join(", ")),
                )
            }
            Lookup::Missing(_) | Lookup::Found(_) => {
                let nearest = match ahead {
                    Some(d) if params.is_empty() && *d.normalized == *normalized => {
                        d.closest.clone()
                    }
                    _ => self.closest(db, &normalized, params),
                };
                let detail = match &nearest {
                    Some((sql, how)) => {
                        format!("Closest recorded query: {:?}; {how}.", shorten(sql, 200))
                    }
                    None => format!("Nothing is recorded for database \"{}\".", db.name),
                };
                let hint = match &self.source {
                    Some(dir) => format!(
                        "Replaying {dir}. Record this query against a real server into it: `pgsim record --upstream <URL> --fixtures {dir}` (or `pgsim serve --fixtures {dir} --upstream <URL> --record-mode new`, or Mode::Record), or fix the query.",
                        dir = dir.display()
                    ),
                    None => "Record this query against a real server (pgsim record) or fix the query.".into(),
                };
                (
                    format!(
                        "pgsim: no recorded answer for query {shown:?} (key {k}) in database \"{}\"",
                        db.name
                    ),
                    detail,
                    hint,
                    nearest.map(|(_, how)| how).unwrap_or_default(),
                )
            }
        };
        let refused: Vec<String> = self
            .rejected
            .iter()
            .filter(|r| r.database.as_deref().is_none_or(|d| d == db.name))
            .map(|r| r.error.clone())
            .collect();
        if !refused.is_empty() {
            detail.push_str(&format!(
                " {} fixture file(s) that may hold it were refused at load: {}",
                refused.len(),
                refused.join("; ")
            ));
        }
        let mut fields = ErrorFields::error(SQLSTATE_NO_RECORDING, message, Some(detail));
        fields.0.insert("hint".into(), hint);
        let key = k.to_string();
        if let Ok(mut misses) = self.misses.lock() {
            misses.add(&db.name, &key, || Miss {
                database: db.name.clone(),
                sql: sql.to_owned(),
                key: key.clone(),
                nearest: (!note.is_empty()).then_some(note),
                count: 1,
            });
        }
        fields
    }

    /// A strict-order deviation (see `strict`): recorded as a miss, answered
    /// `PGS01` with what was expected and what came.
    pub(crate) fn deviation(
        &self,
        db: &DatabaseIndex,
        sql: &str,
        params: &[Value],
        detail: String,
    ) -> ErrorFields {
        let normalized = key::normalize(sql);
        let k = with_param_values(params, |p| key::query_key_normalized(&normalized, p));
        let mut fields = ErrorFields::error(
            SQLSTATE_NO_RECORDING,
            format!(
                "pgsim: query {:?} (key {k}) in database \"{}\" breaks the recorded order",
                shorten(&normalized, 200),
                db.name
            ),
            Some(detail.clone()),
        );
        fields.0.insert(
            "hint".into(),
            "Strict order is on: each connection must send its recorded session's queries in order. Re-record the test, or replay without strict order.".into(),
        );
        let key = k.to_string();
        if let Ok(mut misses) = self.misses.lock() {
            misses.add(&db.name, &key, || Miss {
                database: db.name.clone(),
                sql: sql.to_owned(),
                key: key.clone(),
                nearest: Some(detail),
                count: 1,
            });
        }
        fields
    }

    /// Details at most `queries` distinct missed queries in the report (every
    /// miss is still counted); default [`report::DEFAULT_MISS_DETAILS`].
    pub fn limit_miss_details(&mut self, queries: usize) {
        if let Ok(misses) = self.misses.get_mut() {
            *misses = report::MissRecord::new(queries);
        }
    }

    /// What has been served so far: sessions, queries, misses, answers never used.
    pub fn report(&self) -> Report {
        let mut unused: Vec<Origin> = self
            .databases
            .values()
            .flat_map(|db| db.queues.iter())
            // An empty query (only whitespace and comments, as pg_restore
            // sends the dump's header) is answered by the server itself,
            // as PostgreSQL does, never from a recording: not unused.
            .filter(|q| !q.sql.is_empty())
            .flat_map(|q| q.answers.as_slice().iter())
            .filter(|a| !a.was_used())
            .map(|a| a.origin.clone())
            .collect();
        unused.sort();
        let (misses, missed, misses_left_out) =
            self.misses.lock().map(|m| m.snapshot()).unwrap_or_default();
        Report {
            sessions: self.sessions.load(Ordering::Relaxed),
            queries: self.queries.load(Ordering::Relaxed),
            misses,
            missed,
            misses_left_out,
            unused,
            relaxed: self
                .relaxed
                .lock()
                .map(|r| {
                    r.iter()
                        .map(|((rule, origin), n)| report::RelaxedMatch {
                            rule: rule.rule.clone(),
                            param: rule.param,
                            origin: origin.clone(),
                            count: *n,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
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
