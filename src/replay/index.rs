//! Building the replay index from sessions, one file at a time, with shared
//! strings, shared column descriptions and one row buffer per file, so a
//! million recorded exchanges stay compact.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use bytes::Bytes;

use super::answer::{Answer, Completion, Origin, PreparedResult, Rows};
use super::digest::{Digest, DigestedCompletion, DigestedExchange, DigestedResult, DigestedRows};
use super::{
    Answers, DatabaseIndex, Queue, Segment, SessionMeta, Spread, SQLSTATE_IN_FAILED_TRANSACTION,
};
use crate::fixture::{Column, Phase, Session};
use crate::key::QueryKey;

/// What one distinct SQL text normalizes and hashes to.
#[derive(Clone)]
struct SqlInfo {
    original: Arc<str>,
    normalized: Arc<str>,
    statement_key: QueryKey,
}

/// Accumulates sessions into per-database indexes.
#[derive(Default)]
pub(super) struct Builder {
    pub(super) databases: BTreeMap<String, DatabaseIndex>,
    strings: HashSet<Arc<str>>,
    sqls: HashMap<Arc<str>, SqlInfo>,
    columns: HashSet<Arc<[Column]>>,
    /// The fixture directory's matching rules, applied to every key.
    pub(super) rules: crate::fixture::Rules,
    /// Where a rule made recorded queries one: the relaxed key, the exact
    /// key and answer of the first, for answers that then differ.
    relaxed: HashMap<QueryKey, (QueryKey, Arc<Answer>)>,
    pub(super) warnings: Vec<String>,
}

impl Builder {
    pub(super) fn with_rules(rules: crate::fixture::Rules) -> Self {
        Builder {
            rules,
            ..Builder::default()
        }
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(found) = self.strings.get(s) {
            return Arc::clone(found);
        }
        let new: Arc<str> = Arc::from(s);
        self.strings.insert(Arc::clone(&new));
        new
    }

    /// The shared form of one distinct SQL text of a digest.
    fn sql(&mut self, sql: &str, normalized: &str, statement: [u8; 32]) -> SqlInfo {
        if let Some(info) = self.sqls.get(sql) {
            return info.clone();
        }
        let original: Arc<str> = Arc::from(sql);
        let info = SqlInfo {
            original: Arc::clone(&original),
            normalized: self.intern(normalized),
            statement_key: QueryKey::from_digest(statement),
        };
        self.sqls.insert(original, info.clone());
        info
    }

    fn columns(&mut self, columns: Vec<Column>) -> Arc<[Column]> {
        if let Some(found) = self.columns.get(columns.as_slice()) {
            return Arc::clone(found);
        }
        let new: Arc<[Column]> = Arc::from(columns);
        self.columns.insert(Arc::clone(&new));
        new
    }

    /// Adds one session read from `file`.
    pub(super) fn add_session(&mut self, file: &str, s: Session) {
        let digest = super::digest::digest(s, &self.rules, None);
        self.add_digest(file, digest);
    }

    /// Adds one file's digest: links its sessions, answers and statements
    /// into the index, sharing strings and column sets with the files
    /// added before.
    pub(super) fn add_digest(&mut self, file: &str, d: Digest) {
        let name = d.database.clone();
        let db = self
            .databases
            .entry(name.clone())
            .or_insert_with(|| DatabaseIndex::new(&name));
        db.roles.insert(Arc::from(d.user.as_str()));
        if let Some(err) = d.startup_error {
            if db.parameters.is_empty() && db.startup_error.is_none() {
                db.startup_error = Some(err);
            }
            return;
        }
        if db.parameters.is_empty() {
            db.parameters = d.parameters;
            db.backend_pid = d.backend_pid;
            db.startup_error = None;
        }
        let file = self.intern(file);
        let database = self.intern(&name);
        let role = self.intern(&d.user);
        let sqls: Vec<SqlInfo> = d
            .sqls
            .iter()
            .map(|(sql, normalized, statement)| self.sql(sql, normalized, *statement))
            .collect();
        let columns: Vec<Arc<[Column]>> =
            d.columns.iter().map(|c| self.columns(c.clone())).collect();
        let strings: Vec<Arc<str>> = d.strings.iter().map(|s| self.intern(s)).collect();
        let arena = d.arena.clone();
        let types = d.types;
        // The results tile `d.results` in exchange order (Digest::check).
        let mut all_results = d.results.into_iter();
        let mut current: Option<(u32, Option<Arc<str>>)> = None;
        for ex in d.exchanges {
            // Taken first, whatever follows: every later exchange's results
            // come after these.
            let n = ex.results.1.saturating_sub(ex.results.0) as usize;
            let results: Vec<PreparedResult> = all_results
                .by_ref()
                .take(n)
                .map(|r| prepare(r, &arena, &columns, &strings))
                .collect();
            // A new recorded session starts where the scope changes.
            let scope = ex.scope.and_then(|s| strings.get(s as usize)).cloned();
            let session = match &current {
                Some((id, now)) if *now == scope => *id,
                _ => {
                    let Some(db) = self.databases.get_mut(&name) else {
                        return;
                    };
                    let id = db.sessions.len() as u32;
                    db.sessions.push(SessionMeta {
                        scope: scope.clone(),
                        role: Arc::clone(&role),
                        first_seq: ex.seq,
                        last_seq: ex.seq,
                        group: 0,
                        shared: false,
                    });
                    current = Some((id, scope));
                    id
                }
            };
            if let Some(meta) = self
                .databases
                .get_mut(&name)
                .and_then(|db| db.sessions.get_mut(session as usize))
            {
                meta.first_seq = meta.first_seq.min(ex.seq);
                meta.last_seq = meta.last_seq.max(ex.seq);
            }
            let Some(sql) = sqls.get(ex.sql as usize) else {
                continue;
            };
            let params = slice(&arena, ex.params);
            let linked = Linked {
                file: &file,
                database: &database,
                sql,
                session,
            };
            self.add_exchange(&name, linked, ex.into_parts(&types), params, results);
        }
    }

    fn add_exchange(
        &mut self,
        db_name: &str,
        at: Linked<'_>,
        ex: ExchangeParts<'_>,
        params: Bytes,
        results: Vec<PreparedResult>,
    ) {
        // What a failed transaction answers (25P02) depends on nothing but
        // its state, which the server tracks and answers itself; queuing it
        // would hand it to the same statement once the transaction is over.
        if let Some(Completion::Error(e)) = results.first().map(|r| &r.completion) {
            if e.code() == SQLSTATE_IN_FAILED_TRANSACTION {
                if let Some(db) = self.databases.get_mut(db_name) {
                    let routine = e.get("routine").unwrap_or_default().to_owned();
                    db.aborted.entry(routine).or_insert_with(|| (**e).clone());
                }
                return;
            }
        }
        let SqlInfo {
            original: sql,
            normalized,
            statement_key: skey,
        } = at.sql.clone();
        let k = ex.key;
        let origin = Origin {
            file: Arc::clone(at.file),
            seq: ex.seq,
            database: Arc::clone(at.database),
            sql,
        };
        let phase = ex.phase;
        let answer = Arc::new(Answer::new(origin, phase, results, ex.before, at.session));
        if let Some(exact) = ex.exact {
            // Queries a rule made one must answer alike, or replay cannot
            // tell them apart: said at load, never silent.
            match self.relaxed.get(&k) {
                Some((first_exact, first)) if *first_exact != exact && !first.same_as(&answer) => {
                    let rules: Vec<String> = ex
                        .relaxed
                        .iter()
                        .map(|r| format!("{} (${})", r.rule, r.param))
                        .collect();
                    self.warnings.push(format!(
                        "matching rule {} makes two recorded queries one, and they were answered differently: {}#{} and {}#{} ({:?}); replay tells them apart only by the recorded session",
                        rules.join(", "),
                        first.origin.file,
                        first.origin.seq,
                        answer.origin.file,
                        answer.origin.seq,
                        shorten_sql(&normalized)
                    ));
                }
                Some(_) => {}
                None => {
                    self.relaxed.insert(k, (exact, Arc::clone(&answer)));
                }
            }
        }
        let Some(db) = self.databases.get_mut(db_name) else {
            return;
        };
        note_statement(db, skey, &answer, (ex.param_types, ex.bound));
        if phase == Phase::Describe {
            // It answers Describe only: never queued as a query's answer.
            return;
        }
        match db.index.get(&k) {
            Some(&i) => {
                if let Some(q) = db.queues.get_mut(i as usize) {
                    q.answers.push(answer);
                }
            }
            None => {
                db.index.insert(k, db.queues.len() as u32);
                db.queues.push(Queue {
                    answers: Answers::One(answer),
                    spread: None,
                    uniform: true,
                    served: AtomicU32::new(0),
                    sql: normalized,
                    params,
                });
            }
        }
    }

    /// Groups the recorded sessions, orders every queue by session and
    /// recording sequence, and seals the indexes.
    pub(super) fn finish(mut self) -> (BTreeMap<String, DatabaseIndex>, Vec<String>) {
        for db in self.databases.values_mut() {
            group_sessions(&mut db.sessions);
            for q in &mut db.queues {
                if let Answers::Many(many) = &mut q.answers {
                    many.sort_by_key(|a| (a.session, a.origin.seq));
                    many.shrink_to_fit();
                    let first = &many[0];
                    // Whose it is: its scope and its role.
                    let scope = |a: &Answer| {
                        db.sessions
                            .get(a.session as usize)
                            .map(|s| (s.scope.clone(), Arc::clone(&s.role)))
                    };
                    q.uniform = many.iter().all(|a| {
                        scope(a) == scope(first) && (Arc::ptr_eq(a, first) || a.same_as(first))
                    });
                    let mut spread = Spread::default();
                    if !q.uniform {
                        spread.segments = segments(many);
                    }
                    let mut groups: Vec<u32> = many
                        .iter()
                        .filter_map(|a| db.sessions.get(a.session as usize))
                        .map(|s| s.group)
                        .collect();
                    groups.sort_unstable();
                    groups.dedup();
                    spread.groups = groups.into_boxed_slice();
                    q.spread = Some(Box::new(spread));
                }
            }
            db.queues.shrink_to_fit();
            db.index.shrink_to_fit();
            db.sessions.shrink_to_fit();
        }
        (self.databases, self.warnings)
    }
}

/// The runs of one session's answers in a queue sorted by session.
fn segments(answers: &[Arc<Answer>]) -> Box<[Segment]> {
    let mut out: Vec<Segment> = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        match out.last_mut() {
            Some(last) if last.session == a.session => last.end = i as u32 + 1,
            _ => out.push(Segment {
                session: a.session,
                start: i as u32,
                end: i as u32 + 1,
                served: AtomicU32::new(0),
            }),
        }
    }
    out.into_boxed_slice()
}

/// Gives every session its group: one per role and explicit scope;
/// without a scope, sessions of one role whose recorded exchanges overlap
/// in time (a pool's connections, clients run side by side) share one.
fn group_sessions(sessions: &mut [SessionMeta]) {
    let mut scopes: HashMap<(Arc<str>, Arc<str>), u32> = HashMap::new();
    let mut next = 0u32;
    let mut unscoped: Vec<usize> = Vec::new();
    for (i, s) in sessions.iter_mut().enumerate() {
        match &s.scope {
            Some(scope) => {
                let whose = (Arc::clone(&s.role), Arc::clone(scope));
                s.group = *scopes.entry(whose).or_insert_with(|| {
                    next += 1;
                    next - 1
                });
            }
            None => unscoped.push(i),
        }
    }
    unscoped.sort_by(|&a, &b| {
        (&sessions[a].role, sessions[a].first_seq).cmp(&(&sessions[b].role, sessions[b].first_seq))
    });
    let mut end: Option<(Arc<str>, u64)> = None;
    for i in unscoped {
        let s = &mut sessions[i];
        match &end {
            Some((role, e)) if *role == s.role && s.first_seq <= *e => {
                end = Some((Arc::clone(role), (*e).max(s.last_seq)));
            }
            _ => {
                next += 1;
                end = Some((Arc::clone(&s.role), s.last_seq));
            }
        }
        s.group = next - 1;
    }
    let mut sizes: HashMap<u32, usize> = HashMap::new();
    for s in sessions.iter() {
        *sizes.entry(s.group).or_default() += 1;
    }
    for s in sessions.iter_mut() {
        s.shared = s.scope.is_some() || sizes.get(&s.group).copied().unwrap_or(0) > 1;
    }
}

fn shorten_sql(sql: &str) -> String {
    sql.chars().take(120).collect()
}

/// Where an exchange of a digest sits in the index.
struct Linked<'a> {
    file: &'a Arc<str>,
    database: &'a Arc<str>,
    sql: &'a SqlInfo,
    session: u32,
}

/// A digested exchange's parts the index keeps.
pub(super) struct ExchangeParts<'a> {
    seq: u64,
    phase: Phase,
    key: QueryKey,
    exact: Option<QueryKey>,
    relaxed: Vec<crate::fixture::Relaxed>,
    param_types: Option<&'a [u32]>,
    bound: Option<&'a [u32]>,
    before: Vec<crate::fixture::AsyncMessage>,
}

impl DigestedExchange {
    fn into_parts(self, types: &[Vec<u32>]) -> ExchangeParts<'_> {
        let list = |i: Option<u32>| i.and_then(|i| types.get(i as usize)).map(Vec::as_slice);
        ExchangeParts {
            seq: self.seq,
            phase: self.phase,
            key: self.key(),
            exact: self.exact.map(QueryKey::from_digest),
            relaxed: self.relaxed,
            param_types: list(self.param_types),
            bound: list(self.bound),
            before: self.before,
        }
    }
}

fn slice(arena: &Bytes, (start, end): (u32, u32)) -> Bytes {
    let (start, end) = (start as usize, end as usize);
    if start <= end && end <= arena.len() {
        arena.slice(start..end)
    } else {
        Bytes::new()
    }
}

fn prepare(
    r: DigestedResult,
    arena: &Bytes,
    columns: &[Arc<[Column]>],
    strings: &[Arc<str>],
) -> PreparedResult {
    let rows = match r.rows {
        DigestedRows::Wire { start, end, count } => Rows::Wire {
            bytes: slice(arena, (start, end)),
            count: count as usize,
        },
        DigestedRows::Values(v) => Rows::Values(v.into_boxed_slice()),
    };
    let completion = match r.completion {
        DigestedCompletion::Tag(t) => match strings.get(t as usize) {
            Some(tag) => Completion::Tag(Arc::clone(tag)),
            None => Completion::Empty,
        },
        DigestedCompletion::Empty => Completion::Empty,
        DigestedCompletion::Error(e) => Completion::Error(e),
        DigestedCompletion::Suspended => Completion::Suspended,
    };
    PreparedResult::new(
        r.notices,
        r.columns.and_then(|c| columns.get(c as usize)).cloned(),
        rows,
        completion,
        r.columns_unknown,
        r.extra,
    )
}

/// Learns a statement's shape (parameter types, columns) from one of its
/// recorded exchanges; the first exchange that knows wins.
fn note_statement(
    db: &mut DatabaseIndex,
    skey: QueryKey,
    answer: &Arc<Answer>,
    (described, bound): (Option<&[u32]>, Option<&[u32]>),
) {
    let info = db.statements.entry(skey).or_default();
    let Some(info) = Arc::get_mut(info) else {
        return;
    };
    let first = answer.results.first();
    let failed = first.is_some_and(|r| matches!(r.completion, Completion::Error(_)));
    // An extended-protocol Execute that failed was still described first.
    let described_before_failing = answer.phase == Phase::Execute && bound.is_some();
    if answer.phase == Phase::Parse && failed {
        if info.columns.is_none() && info.param_types.is_none() {
            info.parse_error = Some(Arc::clone(answer));
        }
        return;
    }
    info.parse_error = None;
    if info.param_types.is_none() {
        info.param_types = match (described, bound) {
            (Some(types), _) => Some(types.to_vec()),
            (None, Some(types)) if types.iter().all(|t| *t != 0) => Some(types.to_vec()),
            (None, Some(_)) => None,
            (None, None) => Some(Vec::new()),
        };
    }
    let described = first.is_some_and(|r| !r.columns_unknown);
    if info.columns.is_none()
        && answer.results.len() == 1
        && (!failed || described_before_failing)
        && described
    {
        info.columns = first.map(|r| r.columns.clone());
    }
    if info.copy_in.is_none() {
        info.copy_in = first
            .and_then(|r| r.extra.as_ref())
            .and_then(|e| e.copy_in.clone());
    }
}
