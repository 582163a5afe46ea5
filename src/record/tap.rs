//! Watches both directions of one proxied session and assembles exchanges:
//! each frontend request is queued with what it expects back, each backend
//! message is matched to the head of that queue. Authentication messages are
//! never looked at beyond their kind, so no password or SCRAM proof is kept.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::fixture::{Column, ErrorFields, Exchange, Param, Phase, QueryResult, ServerInfo, Value};
use crate::replay::{canonical_params, canonical_value, format_at};
use crate::wire::{data_row_values, BackendMessage, FrontendMessage};

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
}

#[derive(Debug, Clone, Default)]
struct StmtRec {
    sql: String,
    parse_oids: Vec<u32>,
    param_types: Option<Vec<u32>>,
    columns: Option<Option<Vec<Column>>>,
}

#[derive(Debug, Default)]
struct PortalRec {
    stmt: StmtRec,
    params: Vec<Param>,
    result_formats: Vec<i16>,
    columns: Option<Option<Vec<Column>>>,
    rows: Vec<Vec<Value>>,
    notices: Vec<ErrorFields>,
}

#[derive(Debug)]
enum Pending {
    Simple {
        sql: String,
        results: Vec<QueryResult>,
        cur: Option<QueryResult>,
    },
    Parse {
        name: String,
        sql: String,
        oids: Vec<u32>,
    },
    Bind {
        portal: String,
        stmt: String,
        formats: Vec<i16>,
        params: Vec<Option<Bytes>>,
        result_formats: Vec<i16>,
    },
    DescribeStmt(String),
    DescribePortal(String),
    Execute(String),
    Close,
    Sync,
}

/// The assembler for one session.
#[derive(Debug, Default)]
pub(crate) struct Tap {
    ready: bool,
    server: ServerInfo,
    statements: HashMap<String, StmtRec>,
    portals: HashMap<String, PortalRec>,
    pending: VecDeque<Pending>,
    notices: Vec<ErrorFields>,
    events: Vec<TapEvent>,
}

impl Tap {
    /// Events produced since the last call.
    pub(crate) fn drain(&mut self) -> Vec<TapEvent> {
        std::mem::take(&mut self.events)
    }

    pub(crate) fn frontend(&mut self, msg: &FrontendMessage) {
        let p = match msg {
            FrontendMessage::Query(q) => Pending::Simple {
                sql: q.query.clone(),
                results: Vec::new(),
                cur: None,
            },
            FrontendMessage::Parse(p) => Pending::Parse {
                name: p.name.clone().unwrap_or_default(),
                sql: p.query.clone(),
                oids: p.type_oids.clone(),
            },
            FrontendMessage::Bind(b) => Pending::Bind {
                portal: b.portal_name.clone().unwrap_or_default(),
                stmt: b.statement_name.clone().unwrap_or_default(),
                formats: b.parameter_format_codes.clone(),
                params: b.parameters.clone(),
                result_formats: b.result_column_format_codes.clone(),
            },
            FrontendMessage::Describe(d) if d.target_type == b'S' => {
                Pending::DescribeStmt(d.name.clone().unwrap_or_default())
            }
            FrontendMessage::Describe(d) => {
                Pending::DescribePortal(d.name.clone().unwrap_or_default())
            }
            FrontendMessage::Execute(e) => Pending::Execute(e.name.clone().unwrap_or_default()),
            FrontendMessage::Close(c) => {
                let name = c.name.clone().unwrap_or_default();
                if c.target_type == b'S' {
                    self.statements.remove(&name);
                } else {
                    self.portals.remove(&name);
                }
                Pending::Close
            }
            FrontendMessage::Sync(_) => Pending::Sync,
            _ => return,
        };
        self.pending.push_back(p);
    }

    pub(crate) fn backend(&mut self, msg: &BackendMessage) {
        match msg {
            BackendMessage::ParameterStatus(p) if !self.ready => {
                if p.name == "server_version" {
                    self.server.version = p.value.clone();
                }
                self.server
                    .parameters
                    .insert(p.name.clone(), p.value.clone());
            }
            BackendMessage::BackendKeyData(k) if !self.ready => self.server.backend_pid = k.pid,
            BackendMessage::ReadyForQuery(_) if !self.ready => {
                self.ready = true;
                self.events.push(TapEvent::Ready {
                    server: self.server.clone(),
                    startup_error: None,
                });
            }
            BackendMessage::ErrorResponse(e) if !self.ready => {
                let fields = ErrorFields::from_wire(&e.fields);
                // Authentication failures are about credentials, not the
                // database: they are not recorded.
                if !fields.code().starts_with("28") {
                    self.events.push(TapEvent::Ready {
                        server: self.server.clone(),
                        startup_error: Some(fields),
                    });
                }
            }
            _ if !self.ready => {}
            BackendMessage::ParseComplete(_) => {
                if let Some(Pending::Parse { name, sql, oids }) = self.pop() {
                    let rec = StmtRec {
                        sql,
                        parse_oids: oids,
                        ..StmtRec::default()
                    };
                    self.statements.insert(name, rec);
                }
            }
            BackendMessage::BindComplete(_) => {
                if let Some(Pending::Bind {
                    portal,
                    stmt,
                    formats,
                    params,
                    result_formats,
                }) = self.pop()
                {
                    let stmt = self.statements.get(&stmt).cloned().unwrap_or_default();
                    let params = bound_params(&stmt, &formats, &params);
                    let rec = PortalRec {
                        stmt,
                        params,
                        result_formats,
                        ..PortalRec::default()
                    };
                    self.portals.insert(portal, rec);
                }
            }
            BackendMessage::ParameterDescription(d) => {
                if let Some(Pending::DescribeStmt(name)) = self.pending.front() {
                    if let Some(s) = self.statements.get_mut(name) {
                        s.param_types = Some(d.types.clone());
                    }
                }
            }
            BackendMessage::RowDescription(d) => {
                let cols: Vec<Column> = d
                    .fields
                    .iter()
                    .map(|f| Column {
                        name: f.name.clone(),
                        type_oid: f.type_id,
                        typmod: f.type_modifier,
                        type_size: f.type_size,
                        table_oid: f.table_id as u32,
                        column_id: f.column_id,
                    })
                    .collect();
                self.described(Some(cols));
            }
            BackendMessage::NoData(_) => self.described(None),
            BackendMessage::DataRow(row) => self.data_row(&row.data, row.field_count),
            BackendMessage::CommandComplete(c) => self.complete(Some(c.tag.clone()), false),
            BackendMessage::EmptyQueryResponse(_) => self.complete(None, true),
            BackendMessage::PortalSuspended(_) => {
                self.pop();
            }
            BackendMessage::CloseComplete(_) => {
                self.pop();
            }
            BackendMessage::NoticeResponse(n) => {
                self.notices.push(ErrorFields::from_wire(&n.fields))
            }
            BackendMessage::ErrorResponse(e) => self.error(ErrorFields::from_wire(&e.fields)),
            BackendMessage::ReadyForQuery(_) => match self.pop() {
                Some(Pending::Simple {
                    sql,
                    mut results,
                    cur,
                }) => {
                    results.extend(cur);
                    if !results.is_empty() {
                        self.emit(sql, None, None, Phase::Execute, results);
                    }
                }
                Some(Pending::Sync) | None => {}
                Some(other) => {
                    // The server answered Sync while we expected something
                    // else: resynchronise on this Sync.
                    let _ = other;
                    while let Some(p) = self.pending.pop_front() {
                        if matches!(p, Pending::Sync) {
                            break;
                        }
                    }
                }
            },
            _ => {}
        }
    }

    fn pop(&mut self) -> Option<Pending> {
        self.pending.pop_front()
    }

    fn described(&mut self, cols: Option<Vec<Column>>) {
        match self.pending.front_mut() {
            Some(Pending::DescribeStmt(name)) => {
                let name = name.clone();
                self.pending.pop_front();
                if let Some(s) = self.statements.get_mut(&name) {
                    s.columns = Some(cols);
                }
            }
            Some(Pending::DescribePortal(name)) => {
                let name = name.clone();
                self.pending.pop_front();
                if let Some(p) = self.portals.get_mut(&name) {
                    p.columns = Some(cols);
                }
            }
            Some(Pending::Simple { results, cur, .. }) => {
                results.extend(cur.take());
                let notices = std::mem::take(&mut self.notices);
                *cur = Some(QueryResult {
                    notices,
                    columns: cols,
                    ..QueryResult::default()
                });
            }
            _ => {}
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
            }
            Some(Pending::Execute(portal)) => {
                if let Some(p) = self.portals.get_mut(portal.as_str()) {
                    let cols = p
                        .columns
                        .clone()
                        .or_else(|| p.stmt.columns.clone())
                        .flatten()
                        .unwrap_or_default();
                    let types: Vec<u32> = cols.iter().map(|c| c.type_oid).collect();
                    let row = row_values(&values, &types, &p.result_formats);
                    p.rows.push(row);
                }
            }
            _ => {}
        }
    }

    fn complete(&mut self, tag: Option<String>, empty: bool) {
        match self.pending.front_mut() {
            Some(Pending::Simple { results, cur, .. }) => {
                let mut r = cur.take().unwrap_or_default();
                r.notices.extend(std::mem::take(&mut self.notices));
                r.tag = tag;
                r.empty = empty;
                results.push(r);
            }
            Some(Pending::Execute(_)) => {
                if let Some(Pending::Execute(portal)) = self.pop() {
                    let result = QueryResult {
                        tag,
                        empty,
                        ..QueryResult::default()
                    };
                    self.finish_portal(&portal, result, Phase::Execute);
                }
            }
            _ => {}
        }
    }

    fn finish_portal(&mut self, portal: &str, mut result: QueryResult, phase: Phase) {
        let Some(p) = self.portals.get_mut(portal) else {
            return;
        };
        result.columns = p
            .columns
            .clone()
            .or_else(|| p.stmt.columns.clone())
            .flatten();
        result.rows = std::mem::take(&mut p.rows);
        result.notices = std::mem::take(&mut p.notices);
        result.notices.extend(std::mem::take(&mut self.notices));
        let params = p.params.clone();
        let (sql, types) = (p.stmt.sql.clone(), p.stmt.param_types.clone());
        self.emit(sql, Some(params), types, phase, vec![result]);
    }

    fn error(&mut self, fields: ErrorFields) {
        let head = self.pending.pop_front();
        match head {
            Some(Pending::Simple {
                sql,
                mut results,
                cur,
            }) => {
                let mut r = cur.unwrap_or_default();
                r.notices.extend(std::mem::take(&mut self.notices));
                r.error = Some(fields);
                r.tag = None;
                results.push(r);
                self.pending.push_front(Pending::Simple {
                    sql,
                    results,
                    cur: None,
                });
                return;
            }
            Some(Pending::Parse { sql, .. }) => {
                let result = QueryResult {
                    error: Some(fields),
                    ..QueryResult::default()
                };
                self.emit(sql, None, None, Phase::Parse, vec![result]);
            }
            Some(Pending::Bind {
                stmt,
                formats,
                params,
                ..
            }) => {
                let stmt = self.statements.get(&stmt).cloned().unwrap_or_default();
                let params = bound_params(&stmt, &formats, &params);
                let result = QueryResult {
                    error: Some(fields),
                    ..QueryResult::default()
                };
                self.emit(
                    stmt.sql.clone(),
                    Some(params),
                    stmt.param_types.clone(),
                    Phase::Bind,
                    vec![result],
                );
            }
            Some(Pending::Execute(portal)) => {
                let result = QueryResult {
                    error: Some(fields),
                    ..QueryResult::default()
                };
                self.finish_portal(&portal, result, Phase::Execute);
            }
            Some(Pending::Sync) => {
                self.pending.push_front(Pending::Sync);
                return;
            }
            Some(Pending::DescribeStmt(_) | Pending::DescribePortal(_) | Pending::Close) | None => {
            }
        }
        // The server now ignores everything up to the next Sync.
        while matches!(self.pending.front(), Some(p) if !matches!(p, Pending::Sync)) {
            self.pending.pop_front();
        }
    }

    fn emit(
        &mut self,
        sql: String,
        params: Option<Vec<Param>>,
        param_types: Option<Vec<u32>>,
        phase: Phase,
        results: Vec<QueryResult>,
    ) {
        self.events.push(TapEvent::Exchange(Exchange {
            seq: 0,
            key: String::new(),
            sql,
            params,
            param_types,
            phase,
            results,
        }));
    }
}

/// Bound parameters as recorded: canonical values with their types.
fn bound_params(stmt: &StmtRec, formats: &[i16], values: &[Option<Bytes>]) -> Vec<Param> {
    let types = param_types(stmt, values.len());
    canonical_params(formats, values, &types)
        .into_iter()
        .zip(types)
        .map(|(value, type_oid)| Param { type_oid, value })
        .collect()
}

fn param_types(stmt: &StmtRec, n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| {
            stmt.param_types
                .as_ref()
                .and_then(|t| t.get(i).copied())
                .or_else(|| stmt.parse_oids.get(i).copied())
                .unwrap_or(0)
        })
        .collect()
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
