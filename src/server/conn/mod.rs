//! One client connection to the mock server, by phase: `startup` (SSL,
//! cancel, authentication, ParameterStatus), `simple` (Query), `extended`
//! (Parse/Bind/Describe/Execute/Close/Sync) and `copy` (COPY FROM STDIN
//! data). The protocol state is the shared [`Protocol`] model, the same the
//! recorder's tap keeps.

mod auth;
mod copy;
mod extended;
mod simple;
mod startup;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use super::fault::Injected;
use super::limits::FLUSH_AT;
use super::metrics::Source;
use super::Shared;
use crate::fixture::Value;
use crate::fixture::{Column, CopyShape, ErrorFields};
use crate::key::QueryKey;
use crate::protocol::Protocol;
use crate::replay::{
    Answer, DatabaseIndex, Diagnosis, Follow, Formats, Lookup, StatementInfo, StrictFollow, Who,
};
use crate::wire::{self, Frontend, TxStatus, WireError};

/// SQLSTATE for a malformed protocol message, as PostgreSQL uses it.
const PROTOCOL_VIOLATION: &str = "08P01";

/// SQLSTATE and message of a cancelled statement, as PostgreSQL words them.
const QUERY_CANCELED: &str = "57014";
const CANCELED_MESSAGE: &str = "canceling statement due to user request";

/// How long a recorded cancelled statement waits for the client's
/// CancelRequest before its recorded answer is sent anyway.
const RECORDED_CANCEL_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Wire(#[from] WireError),
    /// A session waited longer than its idle timeout (`in_transaction`:
    /// the idle-in-transaction one).
    #[error("idle timeout")]
    IdleTimeout { in_transaction: bool },
    /// The server is shutting down.
    #[error("shutting down")]
    Shutdown,
}

struct Io {
    stream: crate::tls::Stream,
    inbuf: BytesMut,
    out: BytesMut,
    shared: Arc<Shared>,
    /// Set when the server shuts down.
    stop: watch::Receiver<bool>,
    /// When each query whose answer is in `out` was received: its latency
    /// is observed once the answer is written.
    pending: Vec<std::time::Instant>,
}

impl Io {
    /// The next complete frame; flushes pending output before waiting (and
    /// before returning once it passes [`FLUSH_AT`]). `idle` bounds the wait.
    async fn frame(
        &mut self,
        startup: bool,
        idle: Option<(Duration, bool)>,
    ) -> Result<Option<bytes::Bytes>, ConnError> {
        let max = self.shared.limits.max_message_size;
        let deadline = idle.map(|(d, _)| Instant::now() + d);
        let in_transaction = idle.is_some_and(|(_, t)| t);
        loop {
            if let Some(frame) = wire::split_frontend(&mut self.inbuf, startup, max)? {
                if self.out.len() >= FLUSH_AT {
                    self.flush().await?;
                }
                return Ok(Some(frame.freeze()));
            }
            self.flush().await?;
            let n = tokio::select! {
                n = self.stream.read_buf(&mut self.inbuf) => n?,
                () = until(deadline) => return Err(ConnError::IdleTimeout { in_transaction }),
                () = stopped(&mut self.stop) => return Err(ConnError::Shutdown),
            };
            if n == 0 {
                return Ok(None);
            }
        }
    }

    async fn flush(&mut self) -> Result<(), ConnError> {
        if !self.out.is_empty() {
            self.shared
                .output_peak
                .fetch_max(self.out.len(), Ordering::Relaxed);
            // Timed as the answers go to the socket (before the write, so
            // a client that has read its answer finds it counted).
            if !self.pending.is_empty() {
                let written = std::time::Instant::now();
                for received in self.pending.drain(..) {
                    self.shared
                        .served
                        .latency
                        .observe(written.saturating_duration_since(received));
                }
            }
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Every open connection's cancel key, so a CancelRequest on another
/// connection can interrupt the statement in flight.
#[derive(Debug, Default)]
pub(crate) struct CancelKeys {
    keys: std::sync::Mutex<HashMap<i32, (i32, Arc<tokio::sync::Notify>)>>,
}

impl CancelKeys {
    fn register(&self, pid: i32, secret: i32) -> Arc<tokio::sync::Notify> {
        let notify = Arc::new(tokio::sync::Notify::new());
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(secret, (pid, Arc::clone(&notify)));
        }
        notify
    }

    fn forget(&self, secret: i32) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(&secret);
        }
    }

    /// A CancelRequest: wakes the statement waiting on that key, if any. A
    /// wrong key, or no statement in flight, does nothing (as in PostgreSQL).
    fn cancel(&self, pid: i32, secret: i32) {
        if let Ok(keys) = self.keys.lock() {
            if let Some((p, notify)) = keys.get(&secret) {
                if *p == pid {
                    notify.notify_waiters();
                }
            }
        }
    }
}

/// The secret key of connection `id`: distinct per connection (a bijection
/// of the id) and not guessable from it at a glance.
fn secret_of(id: i32) -> i32 {
    (id as u32).wrapping_mul(0x9E37_79B1) as i32
}

pub(super) async fn serve(stream: TcpStream, shared: Arc<Shared>, conn_id: i32) {
    let _ = stream.set_nodelay(true);
    let mut io = Io {
        stream: crate::tls::Stream::Plain(stream),
        inbuf: BytesMut::with_capacity(8192),
        out: BytesMut::with_capacity(8192),
        stop: shared.shutdown.subscribe(),
        shared: Arc::clone(&shared),
        pending: Vec::new(),
    };
    let mut in_session = false;
    // One span per connection; its queries' spans are its children.
    let span = tracing::info_span!(
        "pgsim.session",
        conn_id,
        database = tracing::field::Empty,
        role = tracing::field::Empty,
    );
    let ended = run(&mut io, &shared, conn_id, &mut in_session)
        .instrument(span)
        .await;
    if let Some(fields) = last_words(ended, in_session) {
        let _ = wire::put_error(&mut io.out, fields.to_wire());
    }
    shared.cancels.forget(secret_of(conn_id));
    let _ = io.flush().await;
    let _ = io.stream.shutdown().await;
}

/// The FATAL error PostgreSQL 15 sends when a connection ends so, if any.
fn last_words(ended: Result<(), ConnError>, in_session: bool) -> Option<ErrorFields> {
    match ended {
        // PostgreSQL logs "invalid length of startup packet" / "invalid
        // message length" (08P01) and closes without a word to the client.
        Err(ConnError::Wire(WireError::BadLength { .. })) => None,
        Err(ConnError::Wire(e @ WireError::UnknownType { .. })) => {
            Some(ErrorFields::fatal(PROTOCOL_VIOLATION, e.to_string()))
        }
        Err(ConnError::Wire(e)) => Some(ErrorFields::fatal(
            PROTOCOL_VIOLATION,
            format!("invalid frontend message: {e}"),
        )),
        Err(ConnError::IdleTimeout {
            in_transaction: false,
        }) => Some(ErrorFields::fatal(
            "57P05",
            "terminating connection due to idle-session timeout".into(),
        )),
        Err(ConnError::IdleTimeout {
            in_transaction: true,
        }) => Some(ErrorFields::fatal(
            "25P03",
            "terminating connection due to idle-in-transaction timeout".into(),
        )),
        // A backend still in authentication is stopped without a word.
        Err(ConnError::Shutdown) if in_session => Some(ErrorFields::fatal(
            "57P01",
            "terminating connection due to administrator command".into(),
        )),
        Err(ConnError::Shutdown | ConnError::Io(_)) | Ok(()) => None,
    }
}

async fn run(
    io: &mut Io,
    shared: &Arc<Shared>,
    conn_id: i32,
    in_session: &mut bool,
) -> Result<(), ConnError> {
    // As authentication_timeout: a startup that has not completed in time
    // is closed without a word (PostgreSQL exits the backend silently).
    let handshake = startup::handshake(io, shared, secret_of(conn_id));
    let Ok(admitted) = tokio::time::timeout(shared.limits.startup_timeout, handshake).await else {
        return Ok(());
    };
    let Some(startup::Started {
        db,
        scope,
        role,
        user,
        slot: _slot,
    }) = admitted?
    else {
        return Ok(());
    };
    *in_session = true;
    let span = tracing::Span::current();
    span.record("database", db.name.as_str());
    span.record("role", user.as_str());
    let cancel = shared.cancels.register(db.backend_pid, secret_of(conn_id));
    shared.replay.count_session();
    let _guard = shared.sessions.enter(&db.name);
    let mut proto = Protocol::default();
    proto.start_scope(scope);
    let mut session = Session {
        shared,
        served: shared.served.database(&db.name),
        db,
        role,
        follow: Follow::default(),
        strict: StrictFollow::default(),
        proto,
        descriptions: HashMap::new(),
        delay: Duration::ZERO,
        hang_up: false,
        awaiting_cancel: false,
        copy: None,
        diagnosed: None,
        query_span: tracing::Span::none(),
        reported: BytesMut::new(),
    };
    // Whether the last answer ended with ReadyForQuery: PostgreSQL arms
    // its idle timeouts only then.
    let mut ready = true;
    loop {
        // idle_session_timeout outside a transaction block,
        // idle_in_transaction_session_timeout inside one (failed or not).
        let limits = &shared.limits;
        let idle = match session.proto.status() {
            _ if !ready => None,
            TxStatus::Idle => limits.idle_timeout.map(|d| (d, false)),
            TxStatus::InBlock | TxStatus::Failed => {
                limits.idle_in_transaction_timeout.map(|d| (d, true))
            }
        };
        let Some(frame) = io.frame(false, idle).await? else {
            break;
        };
        let msg = wire::decode_frontend(frame)?;
        // Latency is timed for queries only (one clock read each).
        let received = matches!(msg, Frontend::Query(_) | Frontend::Execute { .. })
            .then(std::time::Instant::now);
        session.diagnose_ahead(&msg).await;
        let mark = io.out.len();
        let before = session.proto.status();
        let simple = matches!(msg, Frontend::Query(_));
        // A query's span runs from its Query, or its Bind, to the end of
        // its answer (after any injected delay), or its Sync.
        if matches!(msg, Frontend::Query(_) | Frontend::Bind(_)) {
            session.query_span = query_span(simple);
        }
        let ends_query = matches!(msg, Frontend::Query(_) | Frontend::Sync);
        let more = {
            let _in_query = session.query_span.clone().entered();
            session.handle(msg, &mut io.out)?
        };
        session.diagnosed = None;
        if io.out.len() > mark {
            ready = wire::ends_with_ready(&io.out);
            // Only an answer is timed (an Execute skipped after an error
            // answers nothing), which also bounds `pending` by the output
            // buffered before a flush.
            if let Some(at) = received {
                io.pending.push(at);
            }
        }
        if !session.delay.is_zero() {
            // The answer is still in `io.out`: it is written after the
            // wait, unless a CancelRequest interrupts it.
            let delay = std::mem::take(&mut session.delay);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.notified() => {
                    // A recorded cancelled answer is already what to send.
                    if !session.awaiting_cancel {
                        io.out.truncate(mark);
                        session.proto.set_status(before);
                        session.canceled(simple, &mut io.out)?;
                    }
                }
            }
        }
        session.awaiting_cancel = false;
        if ends_query {
            session.query_span = tracing::Span::none();
        }
        if !more {
            break;
        }
    }
    Ok(())
}

/// A `pgsim.query` span: `kind`, `sql` and `outcome` are recorded as the
/// query is answered ([`Session::trace_sql`], [`Session::count`]).
fn query_span(simple: bool) -> tracing::Span {
    tracing::debug_span!(
        "pgsim.query",
        protocol = if simple { "simple" } else { "extended" },
        kind = tracing::field::Empty,
        sql = tracing::field::Empty,
        outcome = tracing::field::Empty,
    )
}

/// What the server keeps per prepared statement.
struct ServerStmt<'a> {
    normalized: Arc<str>,
    /// Borrowed from the replay index: no reference count shared with
    /// other connections is touched per Parse.
    info: &'a StatementInfo,
}

/// What a portal will answer.
#[derive(Default)]
enum Resolved<'a> {
    /// A DECLAREd cursor's portal: each Execute is looked up on its own.
    #[default]
    Cursor,
    Answer(&'a Answer),
    Miss(ErrorFields),
    /// COMMIT of a failed transaction: the server answers ROLLBACK.
    CommitOfFailed,
    /// A fault replaces the answer at Execute; Describe answers with the
    /// statement's recorded columns.
    Injected {
        injected: Injected,
        columns: Option<Arc<[Column]>>,
    },
    /// COPY FROM STDIN: the answer is looked up once the data has arrived.
    CopyIn(&'a CopyShape),
}

#[derive(Default)]
struct ServerPortal<'a> {
    resolved: Resolved<'a>,
    formats: Formats,
    /// Injected latency, waited before the first Execute's answer.
    delay: Duration,
    /// The normalized SQL of its statement (the key is made of it).
    normalized: Arc<str>,
}

/// COPY FROM STDIN in progress on the mock: who asked, to answer at CopyDone.
struct CopyWait {
    sql: String,
    normalized: String,
    /// Whether it came from a simple Query (ReadyForQuery follows).
    simple: bool,
    /// Bytes of CopyData so far (bounded by the maximum message size).
    received: usize,
}

struct Session<'a> {
    shared: &'a Arc<Shared>,
    /// Its database's answer counters (metrics).
    served: Option<&'a super::metrics::PerDatabase>,
    db: &'a DatabaseIndex,
    /// Its role: answered only from sessions recorded as it (`None`: a
    /// server that answers any role from every recording).
    role: Option<String>,
    /// Which recorded sessions this connection may be.
    follow: Follow,
    /// Where it is in the recorded sessions, in strict order.
    strict: StrictFollow,
    proto: Protocol<ServerStmt<'a>, ServerPortal<'a>>,
    /// Text RowDescriptions this connection has sent, by column set: a
    /// private copy, so the hot path takes no lock shared with other cores.
    descriptions: HashMap<usize, Vec<u8>>,
    /// Injected latency to wait before the output so far is written.
    delay: Duration,
    /// An injected drop: close without answering.
    hang_up: bool,
    /// The answer being sent is a recorded cancellation (57014 after a
    /// CancelRequest): it waits for the client's CancelRequest, as the real
    /// statement ran until one came.
    awaiting_cancel: bool,
    copy: Option<CopyWait>,
    /// The diagnostic of the message being handled, computed beforehand on
    /// a blocking thread (see [`Session::diagnose_ahead`]).
    diagnosed: Option<Diagnosis>,
    /// The span of the query being answered (`Span::none()` between
    /// queries): `count` records its outcome.
    query_span: tracing::Span,
    /// Asynchronous messages recorded after a completion (ParameterStatus
    /// of a changed setting, notifications), held for the next
    /// ReadyForQuery: PostgreSQL 15 sends them only just before it
    /// (postgres.c: ProcessNotifyInterrupt, ReportChangedGUCOptions), so
    /// an error between the completion and Sync (a refused second
    /// Execute that aborted the transaction) comes before them.
    reported: BytesMut,
}

/// 25P02 as the recorded server raised it from `routine` (its file, line
/// and routine fields included), else as PostgreSQL words it.
fn aborted(db: &DatabaseIndex, routine: &str) -> ErrorFields {
    if let Some(recorded) = db.aborted.get(routine) {
        return recorded.clone();
    }
    ErrorFields::error(
        crate::replay::SQLSTATE_IN_FAILED_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block".into(),
        None,
    )
}

fn no_statement(name: &str) -> ErrorFields {
    ErrorFields::error(
        "26000",
        format!("prepared statement \"{name}\" does not exist"),
        None,
    )
}

fn no_portal(name: &str) -> ErrorFields {
    ErrorFields::error("34000", format!("portal \"{name}\" does not exist"), None)
}

impl<'a> Session<'a> {
    /// The recorded answer for `key` (of `sql` with `values`) to this
    /// connection, or the miss the client receives (counted in the report
    /// and, as the answer's source, in the metrics).
    fn lookup(
        &mut self,
        key: &QueryKey,
        sql: &str,
        values: &[Value],
    ) -> Result<&'a Answer, ErrorFields> {
        let found = self.find(key, sql, values);
        self.count(match found {
            Ok(_) => Source::Recording,
            Err(_) => Source::Miss,
        });
        found
    }

    /// Counts an answer from `source` in the metrics, and says it in the
    /// query's span (`outcome`: `recorded`, `miss` or `fault`).
    fn count(&self, source: Source) {
        if let Some(served) = self.served {
            served.count(source);
        }
        self.query_span.record(
            "outcome",
            match source {
                Source::Recording => "recorded",
                Source::Miss => "miss",
                Source::Fault => "fault",
            },
        );
    }

    /// The SQL a query span shows (sanitized, lazily) and its kind.
    fn trace_sql(&self, sql: &str) {
        self.query_span
            .record("kind", tracing::field::display(crate::trace::Kind(sql)));
        self.query_span
            .record("sql", tracing::field::display(crate::trace::Sql(sql)));
    }

    /// [`Session::lookup`] without counting the answer (for a Describe,
    /// whose Execute counts).
    fn find(
        &mut self,
        key: &QueryKey,
        sql: &str,
        values: &[Value],
    ) -> Result<&'a Answer, ErrorFields> {
        let db: &'a DatabaseIndex = self.db;
        let replay = &self.shared.replay;
        if self.shared.strict_order {
            return db
                .answer_strictly(key, sql, &mut self.strict)
                .map_err(|detail| off_io(sql, db, || replay.deviation(db, sql, values, detail)));
        }
        let scope = self.proto.scope().cloned();
        let who = Who {
            scope: scope.as_deref(),
            role: self.role.as_deref(),
        };
        match db.answer(key, who, &mut self.follow) {
            Lookup::Found(answer) => Ok(answer),
            other => {
                let ahead = self.diagnosed.take();
                Err(off_io(sql, db, || {
                    replay.miss(db, sql, values, scope.as_deref(), &other, ahead.as_ref())
                }))
            }
        }
    }
}

impl Session<'_> {
    /// Before a long Query or Parse is handled: when nothing with its SQL is
    /// recorded it will miss, so its diagnostic (the closest recorded query)
    /// is computed now on a blocking thread, where it holds up no runtime
    /// thread, not even a current-thread runtime's only one.
    async fn diagnose_ahead(&mut self, msg: &Frontend) {
        let sql = match msg {
            Frontend::Query(sql) => sql,
            Frontend::Parse(p) => &p.sql,
            _ => return,
        };
        if sql.len() < HEAVY_SQL {
            return;
        }
        let normalized = crate::key::normalize(sql).into_owned();
        if self.db.statement(&normalized).is_some() {
            return;
        }
        let (replay, name) = (Arc::clone(&self.shared.replay), self.db.name.clone());
        let closest = tokio::task::spawn_blocking(move || {
            let closest = replay
                .database(&name)
                .and_then(|db| replay.closest(db, &normalized, &[]));
            Diagnosis {
                normalized,
                closest,
            }
        });
        self.diagnosed = closest.await.ok();
    }
}

/// SQL at least this long makes a miss's diagnostic (normalizing, hashing,
/// comparing with the recorded queries) worth moving off the I/O thread;
/// so does SQL whose length times the recorded queries reaches `HEAVY_WORK`.
const HEAVY_SQL: usize = 16 * 1024;
const HEAVY_WORK: usize = 1 << 21;

/// Runs the diagnostic of a miss of `sql` in `db`: on a multi-threaded
/// runtime, a costly one runs where it blocks no other connection
/// (`block_in_place` hands this worker's other tasks to another thread).
/// Its cost is bounded either way (`key::nearest`'s cell budget).
pub(super) fn off_io<T>(sql: &str, db: &DatabaseIndex, diagnose: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let multi =
        Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    let heavy =
        sql.len() >= HEAVY_SQL || sql.len().saturating_mul(db.recorded_queries()) >= HEAVY_WORK;
    if multi && heavy {
        tokio::task::block_in_place(diagnose)
    } else {
        diagnose()
    }
}

impl Session<'_> {
    /// Handles one message; `Ok(false)` ends the connection.
    fn handle(&mut self, msg: Frontend, out: &mut BytesMut) -> Result<bool, WireError> {
        let sync = matches!(msg, Frontend::Sync | Frontend::Terminate);
        if self.copy.is_some() {
            return self.copy_message(msg, out).map(|()| !self.hang_up);
        }
        if self.proto.ignores(sync) {
            return Ok(true);
        }
        match msg {
            // Secrets are redacted as the recorder redacted them: the
            // recorded query holds the placeholder, never the secret.
            Frontend::Query(q) => {
                let q = crate::fixture::redact::redact_sql(&q, self.shared.replay.rules());
                self.trace_sql(&q);
                self.simple_query(&q, out)?
            }
            Frontend::Parse(mut p) => {
                let redacted =
                    crate::fixture::redact::redact_sql(&p.sql, self.shared.replay.rules());
                if let std::borrow::Cow::Owned(sql) = redacted {
                    p.sql = sql;
                }
                self.parse(p, out)?
            }
            Frontend::Bind(b) => self.bind(b, out)?,
            Frontend::Describe { target, name } => self.describe(target, &name, out)?,
            Frontend::Execute { portal, max_rows } => self.execute(&portal, max_rows, out)?,
            Frontend::Close { target, name } => {
                self.proto.closed(target, &name);
                wire::put_close_complete(out)?;
            }
            Frontend::Sync => {
                self.proto.synced_quietly();
                self.ready(out)?;
            }
            Frontend::Flush => {}
            Frontend::Terminate => return Ok(false),
            // Outside COPY, PostgreSQL ignores stray copy messages.
            Frontend::CopyData(_) | Frontend::CopyDone | Frontend::CopyFail(_) => {}
            Frontend::FunctionCall => {
                let e = ErrorFields::error(
                    "0A000",
                    "pgsim does not replay the function call protocol".into(),
                    None,
                );
                self.fail(out, &e)?;
            }
            // Outside authentication, PostgreSQL knows no 'p' message.
            Frontend::Password(_) => return Err(WireError::UnknownType { kind: b'p' }),
            other @ (Frontend::SslRequest
            | Frontend::GssEncRequest
            | Frontend::Cancel { .. }
            | Frontend::Startup { .. }) => {
                return Err(WireError::Malformed {
                    kind: None,
                    reason: format!("unexpected message after startup: {other:?}"),
                })
            }
        }
        Ok(!self.hang_up)
    }

    /// Holds `after` for the next ReadyForQuery (see `reported`).
    fn report(&mut self, after: &[crate::fixture::AsyncMessage]) -> Result<(), WireError> {
        for m in after {
            crate::replay::put_async(&mut self.reported, m)?;
        }
        Ok(())
    }

    /// ReadyForQuery, after the asynchronous messages held for it.
    fn ready(&mut self, out: &mut BytesMut) -> Result<(), WireError> {
        out.extend_from_slice(&self.reported);
        self.reported.clear();
        wire::put_ready(out, self.proto.status())
    }

    /// An error in the extended protocol: skip to Sync.
    fn fail(&mut self, out: &mut BytesMut, fields: &ErrorFields) -> Result<(), WireError> {
        wire::put_error(out, fields.to_wire())?;
        self.proto.failed(true);
        Ok(())
    }

    /// A CancelRequest interrupted the answer being delayed.
    fn canceled(&mut self, simple: bool, out: &mut BytesMut) -> Result<(), WireError> {
        let e = ErrorFields::error(QUERY_CANCELED, CANCELED_MESSAGE.into(), None);
        self.copy = None;
        if simple {
            wire::put_error(out, e.to_wire())?;
            self.proto.failed(false);
            return self.ready(out);
        }
        self.fail(out, &e)
    }

    /// The text RowDescription of `columns`, from this connection's cache.
    fn put_text_description(
        &mut self,
        columns: &Arc<[Column]>,
        out: &mut BytesMut,
    ) -> Result<(), WireError> {
        use std::collections::hash_map::Entry;
        let bytes = match self.descriptions.entry(columns.as_ptr() as usize) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(self.shared.replay.text_description(columns)?.to_vec()),
        };
        out.extend_from_slice(bytes);
        Ok(())
    }

    fn status(&self) -> TxStatus {
        self.proto.status()
    }

    /// Makes a recorded "canceling statement due to user request" wait
    /// for the CancelRequest that caused it.
    fn wait_if_canceled(&mut self, completion: &crate::replay::Completion) {
        if let crate::replay::Completion::Error(e) = completion {
            if e.code() == QUERY_CANCELED && e.message() == CANCELED_MESSAGE {
                self.delay = self.delay.max(RECORDED_CANCEL_WAIT);
                self.awaiting_cancel = true;
            }
        }
    }
}
