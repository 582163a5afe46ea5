//! One client connection to the mock server: startup, then the simple and
//! extended query protocols answered from the replay engine.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::fault::Injected;
use super::txn::{self, TxKind};
use super::Shared;
use crate::fixture::{ErrorFields, Phase};
use crate::key;
use crate::replay::{
    put_columns, Answer, Completion, DatabaseIndex, Formats, StatementInfo, EMPTY_STATEMENT,
};
use crate::wire::{self, FrontendMessage, SslNegotiationMetaMessage, TransactionStatus, WireError};

/// SQLSTATE for a malformed protocol message, as PostgreSQL uses it.
const PROTOCOL_VIOLATION: &str = "08P01";

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Wire(#[from] WireError),
}

struct Io {
    stream: TcpStream,
    inbuf: BytesMut,
    out: BytesMut,
}

impl Io {
    /// The next complete frame; flushes pending output before waiting.
    async fn frame(&mut self, startup: bool) -> Result<Option<BytesMut>, ConnError> {
        loop {
            if let Some(frame) = wire::split_frame(&mut self.inbuf, startup)? {
                return Ok(Some(frame));
            }
            self.flush().await?;
            if self.stream.read_buf(&mut self.inbuf).await? == 0 {
                return Ok(None);
            }
        }
    }

    async fn flush(&mut self) -> Result<(), ConnError> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }
}

pub(super) async fn serve(stream: TcpStream, shared: Arc<Shared>, conn_id: i32) {
    let _ = stream.set_nodelay(true);
    let mut io = Io {
        stream,
        inbuf: BytesMut::with_capacity(8192),
        out: BytesMut::with_capacity(8192),
    };
    if let Err(ConnError::Wire(e)) = run(&mut io, &shared, conn_id).await {
        let fields = fatal(PROTOCOL_VIOLATION, format!("invalid frontend message: {e}"));
        let _ = wire::put_error(&mut io.out, fields.to_wire());
    }
    let _ = io.flush().await;
    let _ = io.stream.shutdown().await;
}

fn fatal(code: &str, message: String) -> ErrorFields {
    ErrorFields::fatal(code, message)
}

async fn run(io: &mut Io, shared: &Arc<Shared>, conn_id: i32) -> Result<(), ConnError> {
    let startup = loop {
        let Some(frame) = io.frame(true).await? else {
            return Ok(());
        };
        match wire::decode_frontend(frame, wire::Phase::Startup)? {
            FrontendMessage::SslNegotiation(SslNegotiationMetaMessage::PostgresSsl(_))
            | FrontendMessage::SslNegotiation(SslNegotiationMetaMessage::PostgresGss(_)) => {
                wire::put_ssl_refused(&mut io.out)?;
            }
            FrontendMessage::CancelRequest(_) => return Ok(()),
            FrontendMessage::Startup(s) => break s,
            other => {
                return Err(WireError::Malformed {
                    kind: None,
                    reason: format!("unexpected {other:?} before startup"),
                }
                .into())
            }
        }
    };
    if startup.protocol_number_major != 3 {
        let f = fatal(
            "0A000",
            format!(
                "unsupported frontend protocol {}.{}: server supports 3.0 to 3.0",
                startup.protocol_number_major, startup.protocol_number_minor
            ),
        );
        wire::put_error(&mut io.out, f.to_wire())?;
        return Ok(());
    }
    if let Some(refused) = shared.faults.on_connect() {
        wire::put_error(&mut io.out, refused.to_wire())?;
        return Ok(());
    }
    let unsupported: Vec<String> = startup
        .parameters
        .keys()
        .filter(|k| k.starts_with("_pq_."))
        .cloned()
        .collect();
    if startup.protocol_number_minor > 0 || !unsupported.is_empty() {
        wire::put_negotiate_protocol(&mut io.out, unsupported)?;
    }
    let Some(user) = startup.parameters.get("user").cloned() else {
        let f = fatal(
            "28000",
            "no PostgreSQL user name specified in startup packet".into(),
        );
        wire::put_error(&mut io.out, f.to_wire())?;
        return Ok(());
    };
    let database = startup
        .parameters
        .get("database")
        .cloned()
        .unwrap_or_else(|| user.clone());

    if let Some(expected) = &shared.password {
        wire::put_auth_cleartext(&mut io.out)?;
        let Some(frame) = io.frame(false).await? else {
            return Ok(());
        };
        let ok = match wire::decode_frontend(frame, wire::Phase::Running)? {
            FrontendMessage::PasswordMessageFamily(p) => match p.into_password() {
                Ok(p) => p.password == *expected,
                Err(_) => false,
            },
            _ => false,
        };
        if !ok {
            let f = fatal(
                "28P01",
                format!("password authentication failed for user \"{user}\""),
            );
            wire::put_error(&mut io.out, f.to_wire())?;
            return Ok(());
        }
    }

    let Some(db) = shared.replay.database(&database) else {
        let f = fatal("3D000", format!("database \"{database}\" does not exist"));
        wire::put_error(&mut io.out, f.to_wire())?;
        return Ok(());
    };
    if let Some(err) = &db.startup_error {
        wire::put_error(&mut io.out, err.to_wire())?;
        return Ok(());
    }
    wire::put_auth_ok(&mut io.out)?;
    for (name, value) in &db.parameters {
        wire::put_parameter_status(&mut io.out, name, value)?;
    }
    wire::put_backend_key(&mut io.out, db.backend_pid, conn_id)?;
    wire::put_ready(&mut io.out, TransactionStatus::Idle)?;
    shared.replay.count_session();
    let _guard = shared.sessions.enter(&database);

    let mut session = Session {
        shared,
        db,
        status: TransactionStatus::Idle,
        statements: HashMap::new(),
        portals: HashMap::new(),
        skipping: false,
        descriptions: HashMap::new(),
        delay: Duration::ZERO,
        hang_up: false,
    };
    while let Some(frame) = io.frame(false).await? {
        let msg = wire::decode_frontend(frame, wire::Phase::Running)?;
        let more = session.handle(msg, &mut io.out)?;
        if !session.delay.is_zero() {
            // The answer is still in `io.out`: it is written after the wait.
            tokio::time::sleep(std::mem::take(&mut session.delay)).await;
        }
        if !more {
            break;
        }
    }
    Ok(())
}

#[derive(Clone)]
struct Statement<'a> {
    sql: Box<str>,
    normalized: Box<str>,
    kind: TxKind,
    /// Borrowed from the replay index: no reference count shared with
    /// other connections is touched per Parse.
    info: &'a StatementInfo,
    param_types: Box<[u32]>,
}

enum Resolved<'a> {
    Answer(&'a Answer),
    Miss(ErrorFields),
    /// COMMIT of a failed transaction: the server answers ROLLBACK.
    CommitOfFailed,
    /// A fault replaces the answer at Execute; Describe answers with the
    /// statement's recorded columns.
    Injected {
        injected: Injected,
        columns: Option<Arc<[crate::fixture::Column]>>,
    },
}

struct Portal<'a> {
    /// The statement's kind, for the transaction status after Execute.
    kind: TxKind,
    resolved: Resolved<'a>,
    formats: Formats,
    next_row: usize,
    /// Injected latency, waited before the first Execute's answer.
    delay: Duration,
}

struct Session<'a> {
    shared: &'a Arc<Shared>,
    db: &'a DatabaseIndex,
    status: TransactionStatus,
    statements: HashMap<String, Statement<'a>>,
    portals: HashMap<String, Portal<'a>>,
    /// After an error in the extended protocol, messages are ignored until Sync.
    skipping: bool,
    /// Text RowDescriptions this connection has sent, by column set: a
    /// private copy, so the hot path takes no lock shared with other cores.
    descriptions: HashMap<usize, Vec<u8>>,
    /// Injected latency to wait before the output so far is written.
    delay: Duration,
    /// An injected drop: close without answering.
    hang_up: bool,
}

/// The text RowDescription of `columns` from this connection's own cache.
fn description<'m>(
    cache: &'m mut HashMap<usize, Vec<u8>>,
    replay: &crate::replay::Replay,
    columns: &Arc<[crate::fixture::Column]>,
) -> Result<&'m [u8], WireError> {
    use std::collections::hash_map::Entry;
    match cache.entry(columns.as_ptr() as usize) {
        Entry::Occupied(e) => Ok(e.into_mut()),
        Entry::Vacant(e) => Ok(e.insert(replay.text_description(columns)?.to_vec())),
    }
}

fn aborted() -> ErrorFields {
    ErrorFields::error(
        crate::replay::SQLSTATE_IN_FAILED_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block".into(),
        None,
    )
}

impl<'a> Session<'a> {
    /// Handles one message; `Ok(false)` ends the connection.
    fn handle(&mut self, msg: FrontendMessage, out: &mut BytesMut) -> Result<bool, WireError> {
        if self.skipping
            && !matches!(
                msg,
                FrontendMessage::Sync(_) | FrontendMessage::Terminate(_)
            )
        {
            return Ok(true);
        }
        match msg {
            FrontendMessage::Query(q) => self.simple_query(&q.query, out)?,
            FrontendMessage::Parse(p) => self.parse(p, out)?,
            FrontendMessage::Bind(b) => self.bind(b, out)?,
            FrontendMessage::Describe(d) => self.describe(d, out)?,
            FrontendMessage::Execute(e) => self.execute(e, out)?,
            FrontendMessage::Close(c) => {
                let name = c.name.unwrap_or_default();
                if c.target_type == b'S' {
                    self.statements.remove(&name);
                } else {
                    self.portals.remove(&name);
                }
                wire::put_close_complete(out)?;
            }
            FrontendMessage::Sync(_) => {
                self.skipping = false;
                if self.status == TransactionStatus::Idle {
                    self.portals.clear();
                }
                wire::put_ready(out, self.status)?;
            }
            FrontendMessage::Flush(_) => {}
            FrontendMessage::Terminate(_) => return Ok(false),
            FrontendMessage::CopyData(_)
            | FrontendMessage::CopyDone(_)
            | FrontendMessage::CopyFail(_) => {}
            other => {
                return Err(WireError::Malformed {
                    kind: None,
                    reason: format!("unexpected message after startup: {other:?}"),
                })
            }
        }
        Ok(!self.hang_up)
    }

    fn fail(&mut self, out: &mut BytesMut, fields: &ErrorFields) -> Result<(), WireError> {
        wire::put_error(out, fields.to_wire())?;
        self.status = txn::after_error(self.status);
        self.skipping = true;
        Ok(())
    }

    fn simple_query(&mut self, sql: &str, out: &mut BytesMut) -> Result<(), WireError> {
        self.shared.replay.count_query();
        let normalized = key::normalize(sql);
        if normalized.is_empty() {
            wire::put_empty_query(out)?;
            return wire::put_ready(out, self.status);
        }
        // Statement kinds matter only in a failed transaction or after a
        // ROLLBACK tag (which ROLLBACK TO also sends): work them out lazily,
        // so the hot path does not scan the SQL again.
        let mut kinds: Option<Vec<TxKind>> = None;
        let mut kinds_of = |sql: &str| -> Vec<TxKind> {
            kinds
                .get_or_insert_with(|| {
                    txn::statements(sql)
                        .iter()
                        .map(|s| txn::classify(s))
                        .collect()
                })
                .clone()
        };
        if self.status == TransactionStatus::Error {
            let all = kinds_of(sql);
            let first = all.first().copied().unwrap_or(TxKind::Other);
            if !txn::allowed_when_failed(first) {
                wire::put_error(out, aborted().to_wire())?;
                return wire::put_ready(out, self.status);
            }
            if first == TxKind::Commit && all.len() == 1 {
                wire::put_command_complete(out, "ROLLBACK")?;
                self.status = TransactionStatus::Idle;
                return wire::put_ready(out, self.status);
            }
        }
        let decision = self.shared.faults.on_query(sql);
        self.delay += decision.delay;
        match decision.injected {
            Some(Injected::Error(e)) => {
                wire::put_error(out, e.to_wire())?;
                self.status = txn::after_error(self.status);
                return wire::put_ready(out, self.status);
            }
            Some(Injected::Drop) => {
                self.hang_up = true;
                return Ok(());
            }
            None => {}
        }
        let key = key::query_key_normalized(&normalized, &[]);
        match self.db.answer(&key) {
            Some(answer) => {
                for (i, result) in answer.results.iter().enumerate() {
                    let kind = match &result.completion {
                        Completion::Tag(tag) if &**tag == "ROLLBACK" => {
                            kinds_of(sql).get(i).copied().unwrap_or(TxKind::Other)
                        }
                        _ => TxKind::Other,
                    };
                    for n in &result.notices {
                        wire::put_notice(out, n.to_wire())?;
                    }
                    if let Some(columns) = &result.columns {
                        out.extend_from_slice(description(
                            &mut self.descriptions,
                            &self.shared.replay,
                            columns,
                        )?);
                        match result.data_rows(&Formats::AllText, 0..result.row_count()) {
                            Ok(rows) => out.extend_from_slice(&rows),
                            Err(e) => {
                                wire::put_error(out, e.to_wire())?;
                                self.status = txn::after_error(self.status);
                                break;
                            }
                        }
                    }
                    match &result.completion {
                        Completion::Tag(tag) => {
                            wire::put_command_complete(out, tag)?;
                            self.status = txn::after_tag(self.status, kind, tag);
                        }
                        Completion::Empty => wire::put_empty_query(out)?,
                        Completion::Error(e) => {
                            wire::put_error(out, e.to_wire())?;
                            self.status = txn::after_error(self.status);
                            break;
                        }
                    }
                }
            }
            None => {
                let e = self.shared.replay.miss(self.db, sql, &[]);
                wire::put_error(out, e.to_wire())?;
                self.status = txn::after_error(self.status);
            }
        }
        if self.status == TransactionStatus::Idle {
            self.portals.clear();
        }
        wire::put_ready(out, self.status)
    }

    fn parse(&mut self, p: wire::Parse, out: &mut BytesMut) -> Result<(), WireError> {
        let normalized = key::normalize(&p.query).into_owned();
        let kind = txn::classify(&p.query);
        if self.status == TransactionStatus::Error && !txn::allowed_when_failed(kind) {
            return self.fail(out, &aborted());
        }
        let db: &'a DatabaseIndex = self.db;
        let info = if normalized.is_empty() {
            &EMPTY_STATEMENT
        } else {
            match db.statement(&normalized) {
                Some(info) => info,
                None => {
                    let e = self.shared.replay.miss(db, &p.query, &[]);
                    return self.fail(out, &e);
                }
            }
        };
        if let Some(answer) = &info.parse_error {
            answer.mark_used();
            if let Some(Completion::Error(e)) = answer.results.first().map(|r| &r.completion) {
                let e = e.clone();
                return self.fail(out, &e);
            }
        }
        let param_types: Box<[u32]> = match &info.param_types {
            Some(t) => t
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    p.type_oids
                        .get(i)
                        .copied()
                        .filter(|o| *o != 0)
                        .unwrap_or(*t)
                })
                .collect(),
            None => p.type_oids.clone().into(),
        };
        let stmt = Statement {
            sql: p.query.into_boxed_str(),
            normalized: normalized.into_boxed_str(),
            kind,
            info,
            param_types,
        };
        self.statements.insert(p.name.unwrap_or_default(), stmt);
        wire::put_parse_complete(out)
    }

    fn bind(&mut self, b: wire::Bind, out: &mut BytesMut) -> Result<(), WireError> {
        let name = b.statement_name.unwrap_or_default();
        let failed = self.status == TransactionStatus::Error;
        let db: &'a DatabaseIndex = self.db;
        let mut delay = Duration::ZERO;
        let bound = match self.statements.get(&name) {
            None => Err(ErrorFields::error(
                "26000",
                format!("prepared statement \"{name}\" does not exist"),
                None,
            )),
            Some(stmt) if failed && !txn::allowed_when_failed(stmt.kind) => Err(aborted()),
            Some(stmt) if failed && stmt.kind == TxKind::Commit => {
                Ok((stmt.kind, Resolved::CommitOfFailed))
            }
            Some(stmt) => {
                // Faults decide before the lookup: an injected error or drop
                // leaves the recorded answer for the retry.
                let decision = self.shared.faults.on_query(&stmt.sql);
                delay = decision.delay;
                if let Some(injected) = decision.injected {
                    let columns = stmt.info.columns.clone().flatten();
                    Ok((stmt.kind, Resolved::Injected { injected, columns }))
                } else {
                    let params = crate::replay::canonical_params(
                        &b.parameter_format_codes,
                        &b.parameters,
                        &stmt.param_types,
                    );
                    let key = crate::replay::with_param_values(&params, |p| {
                        key::query_key_normalized(&stmt.normalized, p)
                    });
                    let resolved = match db.answer(&key) {
                        Some(a) => Resolved::Answer(a),
                        None => Resolved::Miss(self.shared.replay.miss(db, &stmt.sql, &params)),
                    };
                    Ok((stmt.kind, resolved))
                }
            }
        };
        let (kind, resolved) = match bound {
            Ok(bound) => bound,
            Err(e) => return self.fail(out, &e),
        };
        if let Resolved::Answer(a) = &resolved {
            if a.phase == Phase::Bind {
                if let Some(Completion::Error(e)) = a.results.first().map(|r| &r.completion) {
                    self.delay += delay;
                    return self.fail(out, e);
                }
            }
        }
        let portal = Portal {
            kind,
            resolved,
            formats: Formats::from_codes(&b.result_column_format_codes),
            next_row: 0,
            delay,
        };
        self.portals
            .insert(b.portal_name.unwrap_or_default(), portal);
        wire::put_bind_complete(out)
    }

    fn describe(&mut self, d: wire::Describe, out: &mut BytesMut) -> Result<(), WireError> {
        let name = d.name.unwrap_or_default();
        if d.target_type == b'S' {
            let Some(stmt) = self.statements.get(&name) else {
                let e = ErrorFields::error(
                    "26000",
                    format!("prepared statement \"{name}\" does not exist"),
                    None,
                );
                return self.fail(out, &e);
            };
            wire::put_parameter_description(out, &stmt.param_types)?;
            return match stmt.info.columns.as_ref().and_then(Option::as_ref) {
                Some(columns) => {
                    out.extend_from_slice(description(
                        &mut self.descriptions,
                        &self.shared.replay,
                        columns,
                    )?);
                    Ok(())
                }
                None => wire::put_no_data(out),
            };
        }
        let Some(portal) = self.portals.get(&name) else {
            let e = ErrorFields::error("34000", format!("portal \"{name}\" does not exist"), None);
            return self.fail(out, &e);
        };
        let columns = match &portal.resolved {
            Resolved::Answer(a) => a.results.first().and_then(|r| r.columns.clone()),
            Resolved::Miss(e) => {
                let e = e.clone();
                return self.fail(out, &e);
            }
            Resolved::CommitOfFailed => None,
            Resolved::Injected { columns, .. } => columns.clone(),
        };
        match columns {
            Some(columns) => put_columns(out, &columns, &portal.formats),
            None => wire::put_no_data(out),
        }
    }

    fn execute(&mut self, e: wire::Execute, out: &mut BytesMut) -> Result<(), WireError> {
        self.shared.replay.count_query();
        let name = e.name.unwrap_or_default();
        let Some(portal) = self.portals.get_mut(&name) else {
            let err =
                ErrorFields::error("34000", format!("portal \"{name}\" does not exist"), None);
            return self.fail(out, &err);
        };
        let kind = portal.kind;
        self.delay += std::mem::take(&mut portal.delay);
        let answer: &'a Answer = match &portal.resolved {
            Resolved::Answer(a) => a,
            Resolved::Miss(err) => {
                let err = err.clone();
                return self.fail(out, &err);
            }
            Resolved::CommitOfFailed => {
                wire::put_command_complete(out, "ROLLBACK")?;
                self.status = TransactionStatus::Idle;
                return Ok(());
            }
            Resolved::Injected {
                injected: Injected::Error(err),
                ..
            } => {
                let err = err.clone();
                return self.fail(out, &err);
            }
            Resolved::Injected {
                injected: Injected::Drop,
                ..
            } => {
                self.hang_up = true;
                return Ok(());
            }
        };
        let Some(result) = answer.results.first() else {
            return wire::put_empty_query(out);
        };
        if portal.next_row == 0 {
            for n in &result.notices {
                wire::put_notice(out, n.to_wire())?;
            }
        }
        let total = result.row_count();
        let start = portal.next_row.min(total);
        let max = usize::try_from(e.max_rows).unwrap_or(0);
        let end = if max > 0 {
            (start + max).min(total)
        } else {
            total
        };
        if end > start || result.columns.is_some() {
            match result.data_rows(&portal.formats, start..end) {
                Ok(rows) => out.extend_from_slice(&rows),
                Err(err) => return self.fail(out, &err),
            }
        }
        portal.next_row = end;
        if max > 0 && end < total {
            return wire::put_portal_suspended(out);
        }
        match &result.completion {
            Completion::Tag(tag) => {
                wire::put_command_complete(out, tag)?;
                self.status = txn::after_tag(self.status, kind, tag);
                if self.status == TransactionStatus::Idle
                    && matches!(kind, TxKind::Commit | TxKind::Rollback)
                {
                    self.portals.retain(|n, _| n.is_empty());
                }
                Ok(())
            }
            Completion::Empty => wire::put_empty_query(out),
            Completion::Error(err) => {
                let err = err.clone();
                self.fail(out, &err)
            }
        }
    }
}
