//! Watches both directions of one proxied session and assembles exchanges.
//! The session's protocol state (statements, portals, cursors, COPY, error
//! until Sync, transaction status) is the shared [`Protocol`] model, the same
//! one the mock server answers from; the tap only adds the queue that pairs
//! each frontend request with the backend messages that answer it.
//! Authentication messages are never looked at beyond their kind, so no
//! password or SCRAM proof is kept.
//!
//! Nothing is dropped silently: every request the client started ends as an
//! exchange or as a [`TapEvent::Lost`] with the reason. Portals (rows in
//! batches, suspension, cursors, describe-only statements) are in `portal`.

mod portal;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::fixture::{
    AsyncMessage, Column, CopyIn, CopyOut, CopyShape, ErrorFields, Exchange, Format, Param, Phase,
    QueryResult, ServerInfo, Value,
};
use crate::protocol::{self, Described, Protocol};
use crate::replay::{canonical_value, format_at};
use crate::wire::{data_row_values, Backend, Bind, CopyFormat, Field, Frontend, Parse, Target};

/// What a tap produced.
#[derive(Debug)]
pub(crate) enum TapEvent {
    /// The session is ready (or refused): write its header.
    Ready {
        server: ServerInfo,
        startup_error: Option<ErrorFields>,
    },
    /// One finished exchange (seq and key are filled in by the recorder).
    Exchange(Exchange),
    /// A request that could not become an exchange, and why.
    Lost { sql: String, reason: String },
}

/// What the tap keeps per statement.
#[derive(Debug, Default)]
struct StmtRec {
    described: bool,
    bound: bool,
}

/// What the tap keeps per portal while its rows arrive.
#[derive(Debug, Default)]
struct PortalRec {
    rows: Vec<Vec<Value>>,
    notices: Vec<ErrorFields>,
    copy_out: Option<CopyOut>,
    copy_in: Option<CopyShape>,
    before: Vec<AsyncMessage>,
}

#[derive(Debug)]
enum Pending {
    Simple {
        sql: String,
        results: Vec<QueryResult>,
        cur: Option<QueryResult>,
        before: Vec<AsyncMessage>,
    },
    Parse(Parse),
    Bind(Bind),
    DescribeStatement {
        name: String,
        params: Option<Vec<u32>>,
    },
    DescribePortal(String),
    Execute {
        portal: String,
        max_rows: i32,
    },
    Close(Target, String),
    Sync,
}

impl Pending {
    fn sql(&self) -> String {
        match self {
            Pending::Simple { sql, .. } | Pending::Parse(Parse { sql, .. }) => sql.clone(),
            Pending::Bind(b) => format!("Bind of statement {:?}", b.statement),
            Pending::DescribeStatement { name, .. } => format!("Describe of statement {name:?}"),
            Pending::DescribePortal(name) => format!("Describe of portal {name:?}"),
            Pending::Execute { portal, .. } => format!("Execute of portal {portal:?}"),
            Pending::Close(_, name) => format!("Close of {name:?}"),
            Pending::Sync => "Sync".into(),
        }
    }
}

/// The assembler for one session.
#[derive(Debug, Default)]
pub(crate) struct Tap {
    ready: bool,
    server: ServerInfo,
    proto: Protocol<StmtRec, PortalRec>,
    pending: VecDeque<Pending>,
    /// Notices not yet attached to a result.
    notices: Vec<ErrorFields>,
    /// Asynchronous messages that arrived while no request was pending.
    idle: Vec<AsyncMessage>,
    /// Exchanges finished since the last ReadyForQuery: asynchronous
    /// messages sent after a completion (ParameterStatus after SET) still
    /// attach to them.
    held: Vec<Exchange>,
    /// COPY FROM STDIN data the client finished sending.
    copy_in: Option<CopyIn>,
    events: Vec<TapEvent>,
}

fn columns_of(fields: &[Field]) -> Vec<Column> {
    fields
        .iter()
        .map(|f| Column {
            name: f.name.clone(),
            type_oid: f.type_oid,
            typmod: f.type_modifier,
            type_size: f.type_size,
            table_oid: f.table_oid,
            column_id: f.column_id,
        })
        .collect()
}

fn shape(f: &CopyFormat) -> CopyShape {
    CopyShape {
        format: Format::from_code(i16::from(f.overall)),
        columns: f.columns.iter().map(|c| Format::from_code(*c)).collect(),
    }
}

impl Tap {
    /// A tap for a session that starts in `scope` (see [`protocol::scope`]).
    pub(crate) fn new(scope: Option<String>) -> Self {
        let mut tap = Tap::default();
        tap.proto.start_scope(scope);
        tap
    }

    /// Events produced since the last call.
    pub(crate) fn drain(&mut self) -> Vec<TapEvent> {
        std::mem::take(&mut self.events)
    }

    /// The connection ended: whatever is unfinished is written if it can
    /// be, or reported lost.
    pub(crate) fn close(&mut self) {
        for (_, portal) in self.proto.take_all_portals() {
            self.finish_unread(portal);
        }
        for (_, stmt) in self.proto.take_all_statements() {
            self.finish_statement(stmt);
        }
        self.release();
        if !self.idle.is_empty() {
            // No later request will carry them as its `before`, and after
            // the last ReadyForQuery they belong to no answer.
            let what: Vec<String> = self.idle.iter().map(describe_async).collect();
            self.events.push(TapEvent::Lost {
                sql: "(asynchronous messages)".into(),
                reason: format!(
                    "sent after the last answer, when no request followed: {}",
                    what.join(", ")
                ),
            });
        }
        for p in std::mem::take(&mut self.pending) {
            if !matches!(p, Pending::Sync | Pending::Close(..)) {
                self.events.push(TapEvent::Lost {
                    sql: p.sql(),
                    reason: "the connection closed before the server answered".into(),
                });
            }
        }
    }

    /// A frontend message that could not be decoded was forwarded as is.
    pub(crate) fn undecodable(&mut self, reason: String) {
        self.events.push(TapEvent::Lost {
            sql: "(undecodable frontend message)".into(),
            reason,
        });
    }

    pub(crate) fn frontend(&mut self, msg: &Frontend) {
        let p = match msg {
            Frontend::Query(q) => Pending::Simple {
                sql: q.clone(),
                results: Vec::new(),
                cur: None,
                before: std::mem::take(&mut self.idle),
            },
            Frontend::Parse(p) => Pending::Parse(p.clone()),
            Frontend::Bind(b) => Pending::Bind(b.clone()),
            Frontend::Describe {
                target: Target::Statement,
                name,
            } => Pending::DescribeStatement {
                name: name.clone(),
                params: None,
            },
            Frontend::Describe {
                target: Target::Portal,
                name,
            } => Pending::DescribePortal(name.clone()),
            Frontend::Execute { portal, max_rows } => Pending::Execute {
                portal: portal.clone(),
                max_rows: *max_rows,
            },
            Frontend::Close { target, name } => Pending::Close(*target, name.clone()),
            Frontend::Sync => Pending::Sync,
            Frontend::CopyData(d) => return self.proto.copy_data(d),
            Frontend::CopyDone => {
                self.copy_in = Some(self.proto.copy_finished(None));
                return self.drop_syncs_read_in_copy();
            }
            Frontend::CopyFail(m) => {
                self.copy_in = Some(self.proto.copy_finished(Some(m.clone())));
                return self.drop_syncs_read_in_copy();
            }
            Frontend::Flush
            | Frontend::Terminate
            | Frontend::Password(_)
            | Frontend::FunctionCall
            | Frontend::SslRequest
            | Frontend::GssEncRequest
            | Frontend::Cancel { .. }
            | Frontend::Startup { .. } => return,
        };
        self.pending.push_back(p);
    }

    /// PostgreSQL ignores Sync while in COPY FROM STDIN; a driver that sent
    /// Bind/Execute/Sync before it knew the statement was a COPY (as
    /// tokio-postgres does) gets no ReadyForQuery for that Sync. The Syncs
    /// queued behind the COPY's Execute before CopyDone are dropped.
    fn drop_syncs_read_in_copy(&mut self) {
        if !matches!(self.pending.front(), Some(Pending::Execute { .. })) {
            return;
        }
        if let Some(head) = self.pending.pop_front() {
            self.pending.retain(|p| !matches!(p, Pending::Sync));
            self.pending.push_front(head);
        }
    }

    pub(crate) fn backend(&mut self, msg: &Backend) {
        if !self.ready {
            return self.startup(msg);
        }
        match msg {
            Backend::ParseComplete => {
                if let Some(Pending::Parse(Parse { name, sql, types })) = self.pop() {
                    if let Some(old) = self.proto.take_statement(&name) {
                        self.finish_statement(old);
                    }
                    let kind = protocol::txn::classify(&sql);
                    self.proto
                        .parsed(name, &sql, kind, types, None, StmtRec::default());
                }
            }
            Backend::BindComplete => {
                if let Some(Pending::Bind(Bind {
                    portal,
                    statement,
                    param_formats,
                    params,
                    result_formats,
                })) = self.pop()
                {
                    if let Some(old) = self.proto.take_portal(&portal) {
                        self.finish_unread(old);
                    }
                    if let Some(s) = self.proto.statement_mut(&statement) {
                        s.extra.bound = true;
                    }
                    let before = std::mem::take(&mut self.idle);
                    let rec = PortalRec {
                        before,
                        ..PortalRec::default()
                    };
                    self.proto.bound(
                        portal,
                        &statement,
                        &param_formats,
                        &params,
                        result_formats,
                        rec,
                    );
                }
            }
            Backend::ParameterDescription(types) => {
                if let Some(Pending::DescribeStatement { params, .. }) = self.pending.front_mut() {
                    *params = Some(types.clone());
                }
            }
            Backend::RowDescription(fields) => {
                let cols: Arc<[Column]> = Arc::from(columns_of(fields));
                self.described(Described::Rows(cols));
            }
            Backend::NoData => self.described(Described::NoData),
            Backend::DataRow { count, values } => self.data_row(values, *count),
            Backend::CommandComplete(tag) => self.complete(Some(tag.clone())),
            Backend::EmptyQuery => self.complete(None),
            Backend::PortalSuspended => {
                if let Some(Pending::Execute { portal, max_rows }) = self.pop() {
                    self.suspended(&portal, max_rows);
                }
            }
            Backend::CloseComplete => {
                if let Some(Pending::Close(target, name)) = self.pop() {
                    if target == Target::Statement {
                        if let Some(stmt) = self.proto.take_statement(&name) {
                            self.finish_statement(stmt);
                        }
                    } else if let Some(portal) = self.proto.closed(target, &name) {
                        self.finish_unread(portal);
                    }
                }
            }
            Backend::Notice(fields) => self.notices.push(ErrorFields::from_wire(fields)),
            Backend::ParameterStatus { name, value } => {
                self.asynchronous(AsyncMessage::ParameterStatus {
                    name: name.clone(),
                    value: value.clone(),
                })
            }
            Backend::Notification {
                pid,
                channel,
                payload,
            } => self.asynchronous(AsyncMessage::Notification {
                pid: *pid,
                channel: channel.clone(),
                payload: payload.clone(),
            }),
            Backend::CopyInResponse(f) => {
                self.proto.copy_started();
                self.copy_response(
                    |r| r.copy_in = Some(shape(f)),
                    |p| p.copy_in = Some(shape(f)),
                );
            }
            Backend::CopyOutResponse(f) | Backend::CopyBothResponse(f) => {
                let out = CopyOut {
                    shape: shape(f),
                    data: Vec::new(),
                };
                let o2 = out.clone();
                self.copy_response(|r| r.copy_out = Some(out), |p| p.copy_out = Some(o2));
            }
            Backend::CopyData(d) => {
                let v = protocol::bytes_value(d.to_vec());
                let v2 = v.clone();
                self.copy_response(
                    |r| {
                        if let Some(c) = r.copy_out.as_mut() {
                            c.data.push(v);
                        }
                    },
                    |p| {
                        if let Some(c) = p.copy_out.as_mut() {
                            c.data.push(v2);
                        }
                    },
                );
            }
            Backend::CopyDone => {}
            Backend::Error(fields) => self.error(ErrorFields::from_wire(fields)),
            Backend::ReadyForQuery(status) => self.ready_for_query(*status),
            Backend::Authentication(_)
            | Backend::KeyData { .. }
            | Backend::NegotiateProtocolVersion
            | Backend::FunctionCallResponse => {}
        }
    }

    fn startup(&mut self, msg: &Backend) {
        match msg {
            Backend::ParameterStatus { name, value } => {
                if name == "server_version" {
                    self.server.version = value.clone();
                }
                // application_name is whatever the client chose to call
                // itself: not the server's, and it may carry anything. Only
                // its presence is kept; replay echoes each client's own.
                let value = if name == "application_name" {
                    String::new()
                } else {
                    value.clone()
                };
                self.server.parameters.insert(name.clone(), value);
            }
            Backend::KeyData { pid, .. } => self.server.backend_pid = *pid,
            Backend::ReadyForQuery(_) => {
                self.ready = true;
                self.events.push(TapEvent::Ready {
                    server: self.server.clone(),
                    startup_error: None,
                });
            }
            Backend::Error(fields) => {
                let fields = ErrorFields::from_wire(fields);
                // Authentication failures are about credentials, not the
                // database: they are not recorded.
                if !fields.code().starts_with("28") {
                    self.events.push(TapEvent::Ready {
                        server: self.server.clone(),
                        startup_error: Some(fields),
                    });
                }
            }
            _ => {}
        }
    }

    fn pop(&mut self) -> Option<Pending> {
        self.pending.pop_front()
    }

    /// An asynchronous message: it belongs after the last completion of the
    /// request in progress, else after the exchange just finished, else
    /// before the next one.
    fn asynchronous(&mut self, m: AsyncMessage) {
        if let Some(Pending::Simple { results, cur, .. }) = self.pending.front_mut() {
            if cur.is_none() {
                if let Some(last) = results.last_mut() {
                    last.after.push(m);
                    return;
                }
            }
        }
        let busy = self
            .pending
            .front()
            .is_some_and(|p| !matches!(p, Pending::Sync));
        match self.held.last_mut().and_then(|e| e.results.last_mut()) {
            Some(last) if !busy => last.after.push(m),
            _ => self.idle.push(m),
        }
    }

    /// Applies a COPY message to the result being built: the current
    /// simple-query statement or the executing portal.
    fn copy_response(
        &mut self,
        simple: impl FnOnce(&mut QueryResult),
        portal: impl FnOnce(&mut PortalRec),
    ) {
        match self.pending.front_mut() {
            Some(Pending::Simple { cur, .. }) => {
                if cur.is_none() {
                    let notices = std::mem::take(&mut self.notices);
                    *cur = Some(QueryResult {
                        notices,
                        ..QueryResult::default()
                    });
                }
                if let Some(cur) = cur {
                    simple(cur);
                }
            }
            Some(Pending::Execute { portal: name, .. }) => {
                if let Some(p) = self.proto.portal_mut(name) {
                    portal(&mut p.extra);
                }
            }
            _ => self.unanswered("a COPY message"),
        }
    }

    fn described(&mut self, cols: Described) {
        match self.pending.front_mut() {
            Some(Pending::DescribeStatement { .. }) => {
                if let Some(Pending::DescribeStatement { name, params }) = self.pop() {
                    self.proto.described_statement(&name, params, cols);
                    if let Some(s) = self.proto.statement_mut(&name) {
                        s.extra.described = true;
                    }
                }
            }
            Some(Pending::DescribePortal(_)) => {
                let Some(Pending::DescribePortal(name)) = self.pop() else {
                    return;
                };
                let cursor = self
                    .proto
                    .portal(&name)
                    .is_some_and(|p| p.statement.is_none());
                if cursor {
                    self.cursor_described(&name, &cols);
                }
                self.proto.described_portal(&name, cols);
            }
            Some(Pending::Simple { results, cur, .. }) => {
                results.extend(cur.take());
                let notices = std::mem::take(&mut self.notices);
                *cur = Some(QueryResult {
                    notices,
                    columns: cols.columns().map(|c| c.to_vec()),
                    ..QueryResult::default()
                });
            }
            _ => self.unanswered("a RowDescription or NoData"),
        }
    }

    fn data_row(&mut self, data: &[u8], count: i16) {
        let Ok(values) = data_row_values(data, count) else {
            return;
        };
        match self.pending.front_mut() {
            Some(Pending::Simple { cur: Some(cur), .. }) => {
                let types: Vec<u32> = cur.columns.iter().flatten().map(|c| c.type_oid).collect();
                cur.rows.push(row_values(&values, &types, &[]));
                return;
            }
            Some(Pending::Execute { portal, .. }) => {
                if let Some(p) = self.proto.portal_mut(portal) {
                    let types: Vec<u32> = p
                        .columns
                        .columns()
                        .map(|c| c.iter().map(|c| c.type_oid).collect())
                        .unwrap_or_default();
                    let row = row_values(&values, &types, &p.result_formats);
                    p.extra.rows.push(row);
                    return;
                }
            }
            _ => {}
        }
        self.unanswered("a DataRow");
    }

    /// A backend message that answers no request the tap knows of: the
    /// tap is out of step with the server, and says so.
    fn unanswered(&mut self, what: &str) {
        self.events.push(TapEvent::Lost {
            sql: format!("({what})"),
            reason: "no request the recorder knows was answering it".into(),
        });
    }

    fn complete(&mut self, tag: Option<String>) {
        match self.pending.front_mut() {
            Some(Pending::Simple { results, cur, .. }) => {
                let mut r = cur.take().unwrap_or_default();
                r.notices.extend(std::mem::take(&mut self.notices));
                r.empty = tag.is_none();
                r.tag = tag;
                results.push(r);
            }
            Some(Pending::Execute { .. }) => {
                let Some(Pending::Execute { portal, max_rows }) = self.pop() else {
                    return;
                };
                self.portal_done(&portal, max_rows, |r| {
                    r.empty = tag.is_none();
                    r.tag = tag;
                });
            }
            _ => self.unanswered(if tag.is_some() {
                "a CommandComplete"
            } else {
                "an EmptyQueryResponse"
            }),
        }
    }

    fn error(&mut self, fields: ErrorFields) {
        let head = self.pending.pop_front();
        let failed = |fields: ErrorFields| QueryResult {
            error: Some(fields),
            ..QueryResult::default()
        };
        match head {
            Some(Pending::Simple {
                sql,
                mut results,
                cur,
                before,
            }) => {
                let mut r = cur.unwrap_or_default();
                r.notices.extend(std::mem::take(&mut self.notices));
                r.error = Some(fields);
                r.tag = None;
                results.push(r);
                self.proto.failed(false);
                self.pending.push_front(Pending::Simple {
                    sql,
                    results,
                    cur: None,
                    before,
                });
                return;
            }
            Some(Pending::Parse(Parse { sql, .. })) => {
                let before = std::mem::take(&mut self.idle);
                self.emit(sql, None, None, Phase::Parse, before, vec![failed(fields)]);
            }
            Some(Pending::Bind(Bind {
                statement,
                param_formats,
                params,
                ..
            })) => match self.proto.statement(&statement) {
                Some(stmt) => {
                    let (sql, described) = (stmt.sql.to_string(), stmt.param_types.clone());
                    let params = stmt.bound_params(&param_formats, &params);
                    let before = std::mem::take(&mut self.idle);
                    self.emit(
                        sql,
                        Some(params),
                        described,
                        Phase::Bind,
                        before,
                        vec![failed(fields)],
                    );
                }
                None => self.events.push(TapEvent::Lost {
                    sql: format!("Bind of statement {statement:?}"),
                    reason: format!(
                        "the statement was unknown to the recorder ({})",
                        fields.message()
                    ),
                }),
            },
            Some(Pending::Execute { portal, max_rows }) => {
                if self.proto.portal(&portal).is_some_and(|p| p.done) {
                    self.rerun_refused(&portal, fields);
                } else {
                    self.portal_done(&portal, max_rows, |r| r.error = Some(fields));
                }
            }
            Some(Pending::Sync) => {
                self.pending.push_front(Pending::Sync);
                self.proto.failed(true);
                return;
            }
            Some(
                p @ (Pending::DescribeStatement { .. }
                | Pending::DescribePortal(_)
                | Pending::Close(..)),
            ) => {
                self.events.push(TapEvent::Lost {
                    sql: p.sql(),
                    reason: format!("the server refused it: {}", fields.message()),
                });
            }
            None => {}
        }
        self.proto.failed(true);
        // The server now ignores everything up to the next Sync.
        while matches!(self.pending.front(), Some(p) if !matches!(p, Pending::Sync)) {
            self.pending.pop_front();
        }
    }

    fn ready_for_query(&mut self, status: crate::wire::TxStatus) {
        match self.pop() {
            Some(Pending::Simple {
                sql,
                mut results,
                cur,
                before,
            }) => {
                results.extend(cur);
                if let Some(last) = results.last_mut() {
                    last.notices.extend(std::mem::take(&mut self.notices));
                }
                // Transaction effects of each statement (cursors declared,
                // portals closed at COMMIT) go through the model too.
                let stmts = protocol::txn::statements(&sql);
                for (i, r) in results.iter().enumerate() {
                    if let (Some(tag), Some(stmt)) = (&r.tag, stmts.get(i)) {
                        let kind = protocol::txn::classify(stmt);
                        for (_, portal) in self.proto.completed(stmt, kind, tag) {
                            self.finish_unread(portal);
                        }
                    }
                }
                if !results.is_empty() {
                    self.emit(sql, None, None, Phase::Execute, before, results);
                }
            }
            Some(Pending::Sync) | None => {}
            Some(other) => {
                // The server answered Sync while we expected something
                // else: report it and resynchronise on this Sync.
                self.events.push(TapEvent::Lost {
                    sql: other.sql(),
                    reason: "the server's answer did not match the request".into(),
                });
                while let Some(p) = self.pending.pop_front() {
                    if matches!(p, Pending::Sync) {
                        break;
                    }
                }
            }
        }
        if !self.notices.is_empty() {
            let notices: Vec<AsyncMessage> = std::mem::take(&mut self.notices)
                .into_iter()
                .map(|fields| AsyncMessage::Notice { fields })
                .collect();
            for n in notices {
                self.asynchronous(n);
            }
        }
        self.proto.set_status(status);
        for (_, portal) in self.proto.synced() {
            self.finish_unread(portal);
        }
        self.release();
    }

    fn release(&mut self) {
        for ex in std::mem::take(&mut self.held) {
            self.events.push(TapEvent::Exchange(ex));
        }
    }

    fn emit(
        &mut self,
        sql: String,
        params: Option<Vec<Param>>,
        param_types: Option<Vec<u32>>,
        phase: Phase,
        before: Vec<AsyncMessage>,
        results: Vec<QueryResult>,
    ) {
        let copy_in = self.copy_in.take();
        // The scope the query was sent in; a SET of the scope itself
        // belongs to the scope it leaves.
        let scope = self.proto.scope().map(|s| s.to_string());
        self.proto
            .note_scope(&sql, results.iter().map(|r| r.tag.as_deref()));
        self.held.push(Exchange {
            seq: 0,
            key: String::new(),
            sql,
            params,
            param_types,
            phase,
            before,
            copy_in,
            scope,
            results,
        });
    }
}

/// One asynchronous message, for a report (no payload: it may be data).
fn describe_async(m: &AsyncMessage) -> String {
    match m {
        AsyncMessage::ParameterStatus { name, .. } => format!("ParameterStatus {name}"),
        AsyncMessage::Notification { channel, .. } => format!("notification on {channel:?}"),
        AsyncMessage::Notice { fields } => format!("notice {}", fields.code()),
    }
}

/// A DataRow's values as canonical text (binary ones converted by type).
fn row_values(values: &[Option<&[u8]>], types: &[u32], formats: &[i16]) -> Vec<Value> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            canonical_value(
                *v,
                format_at(formats, i),
                types.get(i).copied().unwrap_or(0),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::TxStatus;

    /// A tap past startup.
    fn ready() -> Tap {
        let mut tap = Tap::new(None);
        tap.backend(&Backend::ReadyForQuery(TxStatus::Idle));
        tap
    }

    fn answered(tap: &mut Tap, sql: &str) {
        tap.frontend(&Frontend::Query(sql.into()));
        tap.backend(&Backend::CommandComplete("SELECT 1".into()));
        tap.backend(&Backend::ReadyForQuery(TxStatus::Idle));
    }

    fn notification() -> Backend {
        Backend::Notification {
            pid: 7,
            channel: "jobs".into(),
            payload: "secret payload".into(),
        }
    }

    /// What each Lost event names, and why.
    fn lost(events: &[TapEvent]) -> Vec<(&str, &str)> {
        events
            .iter()
            .filter_map(|e| match e {
                TapEvent::Lost { sql, reason } => Some((sql.as_str(), reason.as_str())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_notification_after_the_last_answer_is_reported_not_dropped() {
        let mut tap = ready();
        answered(&mut tap, "select 1");
        tap.backend(&notification());
        tap.close();
        let events = tap.drain();
        let lost = lost(&events);
        assert_eq!(lost.len(), 1, "{events:?}");
        let reason = lost[0].1;
        assert!(reason.contains("notification on \"jobs\""), "{reason}");
        assert!(!reason.contains("secret"), "{reason}");
    }

    #[test]
    fn an_answer_to_no_request_is_reported_not_dropped() {
        let mut tap = ready();
        tap.backend(&Backend::CommandComplete("SELECT 1".into()));
        tap.backend(&Backend::NoData);
        let events = tap.drain();
        let sqls: Vec<&str> = lost(&events).into_iter().map(|(sql, _)| sql).collect();
        assert_eq!(
            sqls,
            ["(a CommandComplete)", "(a RowDescription or NoData)"],
            "{events:?}"
        );
    }

    #[test]
    fn a_notification_while_idle_goes_before_the_next_request() {
        let mut tap = ready();
        answered(&mut tap, "select 1");
        tap.backend(&notification());
        answered(&mut tap, "select 2");
        tap.close();
        let events = tap.drain();
        assert!(lost(&events).is_empty(), "{events:?}");
        let second = events.iter().find_map(|e| match e {
            TapEvent::Exchange(ex) if ex.sql == "select 2" => Some(ex),
            _ => None,
        });
        assert!(second.is_some_and(|ex| ex.before.len() == 1), "{events:?}");
    }
}
