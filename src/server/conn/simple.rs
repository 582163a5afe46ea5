//! The simple query protocol: one Query, every statement's result, then
//! ReadyForQuery.

use bytes::BytesMut;

use super::{aborted, CopyWait, Session};
use crate::fixture::ErrorFields;
use crate::key;
use crate::protocol::{txn, TxKind};
use crate::replay::{put_copy_out, Answer, Completion, Formats};
use crate::server::fault::Injected;
use crate::wire::{self, TxStatus, WireError};

/// Whether `normalized` starts with COPY (cheap test before looking for a
/// recorded CopyInResponse).
pub(super) fn is_copy(normalized: &str) -> bool {
    normalized
        .get(..4)
        .is_some_and(|w| w.eq_ignore_ascii_case("copy"))
}

impl Session<'_> {
    pub(super) fn simple_query(&mut self, sql: &str, out: &mut BytesMut) -> Result<(), WireError> {
        self.shared.replay.count_query();
        let normalized = key::normalize(sql);
        if normalized.is_empty() {
            wire::put_empty_query(out)?;
            return self.ready(out);
        }
        if self.status() == TxStatus::Failed {
            let all: Vec<TxKind> = txn::statements(sql)
                .iter()
                .map(|s| txn::classify(s))
                .collect();
            let first = all.first().copied().unwrap_or(TxKind::Other);
            if !txn::allowed_when_failed(first) {
                wire::put_error(out, aborted(self.db, "exec_simple_query").to_wire())?;
                return self.ready(out);
            }
            if first == TxKind::Commit && all.len() == 1 {
                wire::put_command_complete(out, "ROLLBACK")?;
                self.proto.set_status(TxStatus::Idle);
                self.proto.synced_quietly();
                return self.ready(out);
            }
        }
        let decision = self.shared.faults.on_query(sql);
        self.delay += decision.delay;
        if decision.injected.is_some() {
            self.count(super::Source::Fault);
        }
        match decision.injected {
            Some(Injected::Error(e)) => {
                wire::put_error(out, e.to_wire())?;
                self.proto.failed(false);
                return self.ready(out);
            }
            Some(Injected::Drop) => {
                self.hang_up = true;
                return Ok(());
            }
            None => {}
        }
        if is_copy(&normalized) {
            if let Some(shape) = self
                .db
                .statement(&normalized)
                .and_then(|i| i.copy_in.as_ref())
            {
                return self.start_copy_in(sql, &normalized, shape, true, out);
            }
        }
        let key = key::query_key_normalized(&normalized, &[]);
        match self.lookup(&key, sql, &[]) {
            Ok(answer) => self.put_simple_answer(sql, answer, out)?,
            Err(e) => {
                wire::put_error(out, e.to_wire())?;
                self.proto.failed(false);
            }
        }
        self.proto.synced_quietly();
        self.ready(out)
    }

    /// Every recorded result of a simple query, in order; stops at an error
    /// as the server did. ReadyForQuery is the caller's.
    pub(super) fn put_simple_answer(
        &mut self,
        sql: &str,
        answer: &Answer,
        out: &mut BytesMut,
    ) -> Result<(), WireError> {
        answer.put_before(out)?;
        self.proto.note_scope(
            sql,
            answer.results.iter().map(|r| match &r.completion {
                Completion::Tag(tag) => Some(&**tag),
                _ => None,
            }),
        );
        // Statements are split only when a tag needs them (ROLLBACK vs
        // ROLLBACK TO, DECLARE's cursor name): the hot path scans once.
        let mut statements: Option<Vec<String>> = None;
        for (i, result) in answer.results.iter().enumerate() {
            self.wait_if_canceled(&result.completion);
            for n in &result.notices {
                wire::put_notice(out, n.to_wire())?;
            }
            if let Some(columns) = &result.columns {
                self.put_text_description(columns, out)?;
                match result.data_rows(&Formats::AllText, 0..result.row_count()) {
                    Ok(rows) => out.extend_from_slice(&rows),
                    Err(e) => {
                        wire::put_error(out, e.to_wire())?;
                        self.proto.failed(false);
                        return Ok(());
                    }
                }
            }
            if let Some(copy) = result.copy_out() {
                put_copy_out(out, copy)?;
            }
            match &result.completion {
                Completion::Tag(tag) => {
                    wire::put_command_complete(out, tag)?;
                    if matches!(&**tag, "ROLLBACK" | "DECLARE CURSOR") {
                        let all = statements.get_or_insert_with(|| txn::statements(sql));
                        let stmt = all.get(i).map_or("", String::as_str);
                        self.proto.completed(stmt, txn::classify(stmt), tag);
                    } else {
                        self.proto.completed("", TxKind::Other, tag);
                    }
                }
                Completion::Empty => wire::put_empty_query(out)?,
                Completion::Error(e) => {
                    wire::put_error(out, e.to_wire())?;
                    self.proto.failed(false);
                    return self.report(result.after());
                }
                Completion::Suspended => {
                    // Only portals suspend; a simple query never recorded one.
                    let e = ErrorFields::error(
                        crate::replay::SQLSTATE_NO_RECORDING,
                        "pgsim: the recording of this query is incomplete".into(),
                        None,
                    );
                    wire::put_error(out, e.to_wire())?;
                    self.proto.failed(false);
                    return Ok(());
                }
            }
            self.report(result.after())?;
        }
        Ok(())
    }

    /// Sends the recorded CopyInResponse and waits for the client's data.
    pub(super) fn start_copy_in(
        &mut self,
        sql: &str,
        normalized: &str,
        shape: &crate::fixture::CopyShape,
        simple: bool,
        out: &mut BytesMut,
    ) -> Result<(), WireError> {
        wire::put_copy_response(out, true, &crate::replay::copy_format(shape))?;
        self.proto.copy_started();
        self.copy = Some(CopyWait {
            sql: sql.to_owned(),
            normalized: normalized.to_owned(),
            simple,
            received: 0,
        });
        Ok(())
    }
}
