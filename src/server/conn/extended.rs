//! The extended query protocol: Parse, Bind, Describe and Execute answered
//! from the replay index, row-limited Execute with PortalSuspended exactly as
//! PostgreSQL sends it, DECLAREd cursors as portals.

use std::time::Duration;

use bytes::BytesMut;

use super::{aborted, no_portal, no_statement, Resolved, ServerPortal, ServerStmt, Session};
use crate::fixture::ErrorFields;
use crate::key;
use crate::protocol::{self, txn, BatchEnd, TxKind};
use crate::replay::{
    put_columns, put_copy_out, with_bound_params, with_param_values, Answer, Completion, Formats,
    EMPTY_STATEMENT, SQLSTATE_NO_RECORDING,
};
use crate::server::fault::Injected;
use crate::wire::{self, Bind, Parse, Target, TxStatus, WireError};

/// Whether a result that was never described still shows it returns rows:
/// it has rows, or a query (not CREATE TABLE AS, which shares the tag)
/// completed with `SELECT n`.
fn returns_rows(result: &crate::replay::PreparedResult, sql: &str) -> bool {
    if result.row_count() > 0 {
        return true;
    }
    let tag_says = matches!(&result.completion, Completion::Tag(t) if t.starts_with("SELECT ") || t.starts_with("FETCH "));
    let first = sql
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    tag_says
        && matches!(
            first.as_str(),
            "select" | "with" | "values" | "table" | "fetch"
        )
}

/// What PostgreSQL 15 answers an Execute of a portal that already ran.
fn cannot_run(name: &str) -> ErrorFields {
    let mut e = ErrorFields::error("55000", format!("portal \"{name}\" cannot be run"), None);
    for (k, v) in [
        ("file", "portalmem.c"),
        ("line", "400"),
        ("routine", "MarkPortalActive"),
    ] {
        e.0.insert(k.into(), v.into());
    }
    e
}

fn not_recorded(what: String) -> ErrorFields {
    let mut e = ErrorFields::error(SQLSTATE_NO_RECORDING, what, None);
    e.0.insert(
        "hint".into(),
        "Record this client against a real server (pgsim record) so the recording holds it.".into(),
    );
    e
}

impl<'a> Session<'a> {
    pub(super) fn parse(&mut self, p: Parse, out: &mut BytesMut) -> Result<(), WireError> {
        let Parse { name, sql, types } = p;
        let normalized: std::sync::Arc<str> = std::sync::Arc::from(&*key::normalize(&sql));
        let kind = txn::classify(&sql);
        if self.status() == TxStatus::Failed && !txn::allowed_when_failed(kind) {
            return self.fail(out, &aborted(self.db, "exec_parse_message"));
        }
        let db = self.db;
        let info = if normalized.is_empty() {
            &EMPTY_STATEMENT
        } else {
            match db.statement(&normalized) {
                Some(info) => info,
                None => {
                    let scope = self.proto.scope().cloned();
                    let ahead = self.diagnosed.take();
                    let e = super::off_io(&sql, db, || {
                        self.shared.replay.miss(
                            db,
                            &sql,
                            &[],
                            scope.as_deref(),
                            &crate::replay::Lookup::Missing(Vec::new()),
                            ahead.as_ref(),
                        )
                    });
                    // A miss at Parse never reaches Bind: its span is here.
                    self.query_span = super::query_span(false);
                    self.trace_sql(&normalized);
                    self.count(super::Source::Miss);
                    return self.fail(out, &e);
                }
            }
        };
        if let Some(answer) = &info.parse_error {
            answer.mark_used();
            if self.refuse_as_recorded(answer, out)? {
                return Ok(());
            }
        }
        // Binding uses the recorded (described) types, as the real server
        // resolved them, unless Parse named one.
        let described: Vec<u32> = match &info.param_types {
            Some(t) => t
                .iter()
                .enumerate()
                .map(|(i, t)| types.get(i).copied().filter(|o| *o != 0).unwrap_or(*t))
                .collect(),
            None => types.clone(),
        };
        let extra = ServerStmt { normalized, info };
        self.proto
            .parsed(name, &sql, kind, types, Some(described), extra);
        wire::put_parse_complete(out)
    }

    pub(super) fn bind(&mut self, b: Bind, out: &mut BytesMut) -> Result<(), WireError> {
        let Bind {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        } = b;
        let statement = statement.as_str();
        let failed = self.status() == TxStatus::Failed;
        let Some(stmt) = self.proto.statement(statement) else {
            return self.fail(out, &no_statement(statement));
        };
        if failed && !txn::allowed_when_failed(stmt.kind) {
            let e = aborted(self.db, "exec_bind_message");
            return self.fail(out, &e);
        }
        let kind = stmt.kind;
        let info = stmt.extra.info;
        let normalized = std::sync::Arc::clone(&stmt.extra.normalized);
        let sql = stmt.sql.clone();
        self.trace_sql(&normalized);
        let formats = Formats::from_codes(&result_formats);
        let extra = ServerPortal {
            formats,
            normalized,
            ..ServerPortal::default()
        };
        let Some(p) = self.proto.bound(
            portal.clone(),
            statement,
            &param_formats,
            &params,
            result_formats,
            extra,
        ) else {
            return self.fail(out, &no_statement(statement));
        };
        let mut delay = Duration::ZERO;
        let resolved = if failed && kind == TxKind::Commit {
            Resolved::CommitOfFailed
        } else if let Some(shape) = info.copy_in.as_ref() {
            Resolved::CopyIn(shape)
        } else {
            // Faults decide before the lookup: an injected error or drop
            // leaves the recorded answer for the retry.
            let decision = self.shared.faults.on_query(&sql);
            delay = decision.delay;
            if let Some(injected) = decision.injected {
                self.count(super::Source::Fault);
                let columns = info.columns.clone().flatten();
                Resolved::Injected { injected, columns }
            } else {
                let rules = self.shared.replay.rules();
                let relaxed = rules.relax(&p.extra.normalized, &p.params);
                let key = match &relaxed {
                    Some((values, _)) => with_param_values(values, |v| {
                        key::query_key_normalized(&p.extra.normalized, v)
                    }),
                    None => with_bound_params(&p.params, |v| {
                        key::query_key_normalized(&p.extra.normalized, v)
                    }),
                };
                let values: Vec<_> = p.params.iter().map(|p| p.value.clone()).collect();
                match self.lookup(&key, &sql, &values) {
                    Ok(a) => {
                        if let Some((_, applied)) = &relaxed {
                            self.shared.replay.note_relaxed(applied, a);
                        }
                        Resolved::Answer(a)
                    }
                    Err(e) => Resolved::Miss(e),
                }
            }
        };
        if let Resolved::Answer(a) = &resolved {
            if a.phase == crate::fixture::Phase::Bind && self.refuse_as_recorded(a, out)? {
                self.delay += delay;
                self.proto.take_portal(&portal);
                return Ok(());
            }
        }
        if let Some(p) = self.proto.portal_mut(&portal) {
            p.extra.resolved = resolved;
            p.extra.delay = delay;
        }
        wire::put_bind_complete(out)
    }

    /// A recorded refusal of Parse or Bind, if `answer` is one: what the
    /// server sent before it, the error, and what it reported after (the
    /// error aborted a transaction that SET a reported setting: its
    /// ParameterStatus precedes the ReadyForQuery).
    fn refuse_as_recorded(
        &mut self,
        answer: &Answer,
        out: &mut BytesMut,
    ) -> Result<bool, WireError> {
        let Some(result) = answer.results.first() else {
            return Ok(false);
        };
        let Completion::Error(e) = &result.completion else {
            return Ok(false);
        };
        answer.put_before(out)?;
        for n in &result.notices {
            wire::put_notice(out, n.to_wire())?;
        }
        self.fail(out, e)?;
        self.report(result.after())?;
        Ok(true)
    }

    pub(super) fn describe(
        &mut self,
        target: Target,
        name: &str,
        out: &mut BytesMut,
    ) -> Result<(), WireError> {
        if target == Target::Statement {
            let Some(stmt) = self.proto.statement(name) else {
                return self.fail(out, &no_statement(name));
            };
            let info = stmt.extra.info;
            let sql = stmt.sql.clone();
            let Some(columns) = &info.columns else {
                let e = not_recorded(format!(
                    "pgsim: the recording never described statement {sql:?}"
                ));
                return self.fail(out, &e);
            };
            wire::put_parameter_description(out, stmt.param_types.as_deref().unwrap_or(&[]))?;
            return match columns {
                Some(columns) => self.put_text_description(&columns.clone(), out),
                None => wire::put_no_data(out),
            };
        }
        let Some(portal) = self.proto.portal(name) else {
            return self.fail(out, &no_portal(name));
        };
        if matches!(portal.extra.resolved, Resolved::Cursor) {
            let formats = portal.extra.formats.clone();
            let sql = protocol::describe_cursor_sql(name);
            let key = key::query_key_normalized(&key::normalize(&sql), &[]);
            return match self.find(&key, &sql, &[]) {
                Ok(a) => match a.results.first().map(|r| &r.columns) {
                    Some(Some(columns)) => put_columns(out, columns, &formats),
                    _ => wire::put_no_data(out),
                },
                Err(e) => self.fail(out, &e),
            };
        }
        let described = match &portal.extra.resolved {
            Resolved::Answer(a) => match a.results.first() {
                Some(r) if !r.columns_unknown => Some(r.columns.clone()),
                // The recording never asked: the statement's description
                // from another recording may still be known.
                _ => self
                    .proto
                    .statement(portal.statement.as_deref().unwrap_or(""))
                    .and_then(|s| s.extra.info.columns.clone()),
            },
            Resolved::Miss(e) => {
                let e = e.clone();
                return self.fail(out, &e);
            }
            Resolved::CommitOfFailed | Resolved::CopyIn(_) => Some(None),
            Resolved::Injected { columns, .. } => Some(columns.clone()),
            Resolved::Cursor => None,
        };
        let formats = portal.extra.formats.clone();
        match described {
            Some(Some(columns)) => put_columns(out, &columns, &formats),
            Some(None) => wire::put_no_data(out),
            None => {
                let e = not_recorded(format!(
                    "pgsim: the recording never described portal {name:?} ({:?})",
                    portal.sql
                ));
                self.fail(out, &e)
            }
        }
    }

    pub(super) fn execute(
        &mut self,
        name: &str,
        max_rows: i32,
        out: &mut BytesMut,
    ) -> Result<(), WireError> {
        self.shared.replay.count_query();
        let Some(portal) = self.proto.portal_mut(name) else {
            return self.fail(out, &no_portal(name));
        };
        self.delay += std::mem::take(&mut portal.extra.delay);
        let answer: &'a Answer = match &portal.extra.resolved {
            Resolved::Answer(a) => a,
            Resolved::Miss(err) => {
                let err = err.clone();
                return self.fail(out, &err);
            }
            Resolved::CommitOfFailed => {
                wire::put_command_complete(out, "ROLLBACK")?;
                self.proto.set_status(TxStatus::Idle);
                self.proto.completed("", TxKind::Rollback, "ROLLBACK");
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
            Resolved::CopyIn(shape) => {
                let shape = (*shape).clone();
                let (sql, normalized) = (portal.sql.to_string(), portal.extra.normalized.clone());
                return self.start_copy_in(&sql, &normalized, &shape, false, out);
            }
            Resolved::Cursor => return self.execute_cursor(name, max_rows, out),
        };
        let (kind, sql, done) = (portal.kind, portal.sql.clone(), portal.done);
        let (delivered, executions) = (portal.delivered, portal.executions);
        let formats = portal.extra.formats.clone();
        let Some(result) = answer.results.first() else {
            return wire::put_empty_query(out);
        };
        if executions == 0 {
            answer.put_before(out)?;
            for n in &result.notices {
                wire::put_notice(out, n.to_wire())?;
            }
        }
        self.wait_if_canceled(&result.completion);
        if done && result.columns.is_none() && !returns_rows(result, &sql) {
            if result.columns_unknown {
                let e = not_recorded(format!(
                    "pgsim: the recording does not say whether {:?} returns rows, which decides what a second Execute of its portal answers",
                    &*sql
                ));
                return self.fail(out, &e);
            }
            if !result.columns_unknown {
                // A portal that returns no rows runs once; PostgreSQL 15
                // refuses a second Execute (portalmem.c, MarkPortalActive).
                return self.fail(out, &cannot_run(name));
            }
        }
        if let Completion::Error(err) = &result.completion {
            let rows = result
                .data_rows(&formats, delivered..result.row_count())
                .unwrap_or_default();
            out.extend_from_slice(&rows);
            let err = (**err).clone();
            self.fail(out, &err)?;
            return self.report(result.after());
        }
        if let Some(copy) = result.copy_out() {
            put_copy_out(out, copy)?;
        }
        let complete = !matches!(result.completion, Completion::Suspended);
        let (range, end) = protocol::batch(delivered, max_rows, result.row_count(), complete);
        if end == BatchEnd::NotRecorded {
            let e = not_recorded(format!(
                "pgsim: the recording of {:?} holds only {} rows (the recorded client stopped reading there); this Execute asks for more",
                &*sql,
                result.row_count()
            ));
            return self.fail(out, &e);
        }
        let n = range.len();
        match result.data_rows(&formats, range) {
            Ok(rows) => out.extend_from_slice(&rows),
            Err(err) => return self.fail(out, &err),
        }
        self.proto.delivered(name, n, end == BatchEnd::Complete);
        if end == BatchEnd::Suspended {
            return wire::put_portal_suspended(out);
        }
        match &result.completion {
            Completion::Tag(tag) => {
                let tag = protocol::batch_tag(tag, n, executions == 0);
                wire::put_command_complete(out, &tag)?;
                self.proto.note_scope(&sql, std::iter::once(Some(&*tag)));
                self.proto.completed(&sql, kind, &tag);
            }
            Completion::Empty => wire::put_empty_query(out)?,
            Completion::Error(_) | Completion::Suspended => {}
        }
        if done {
            // A later Execute of a completed portal (`SELECT 0`): what the
            // server reported after it ran went out the first time.
            return Ok(());
        }
        self.report(result.after())
    }

    /// Execute of a DECLAREd cursor's portal: recorded as the FETCH it is.
    fn execute_cursor(
        &mut self,
        name: &str,
        max_rows: i32,
        out: &mut BytesMut,
    ) -> Result<(), WireError> {
        let sql = protocol::execute_cursor_sql(name, max_rows);
        let key = key::query_key_normalized(&key::normalize(&sql), &[]);
        let answer = match self.lookup(&key, &sql, &[]) {
            Ok(answer) => answer,
            Err(e) => return self.fail(out, &e),
        };
        let formats = self
            .proto
            .portal(name)
            .map(|p| p.extra.formats.clone())
            .unwrap_or_default();
        let Some(result) = answer.results.first() else {
            return wire::put_empty_query(out);
        };
        match result.data_rows(&formats, 0..result.row_count()) {
            Ok(rows) => out.extend_from_slice(&rows),
            Err(err) => return self.fail(out, &err),
        }
        let finished = !matches!(result.completion, Completion::Suspended);
        self.proto.delivered(name, result.row_count(), finished);
        match &result.completion {
            Completion::Suspended => wire::put_portal_suspended(out),
            Completion::Tag(tag) => wire::put_command_complete(out, tag),
            Completion::Empty => wire::put_empty_query(out),
            Completion::Error(e) => {
                let e = (**e).clone();
                self.fail(out, &e)
            }
        }
    }
}
