//! The tap's portals: an Execute's rows gathered over any number of
//! row-limited Executes, PortalSuspended, a portal closed or dropped before
//! it completed (recorded as `suspended`), a second Execute of a completed
//! portal, DECLAREd cursors as portals, and statements only described.

use super::{PortalRec, StmtRec, Tap, TapEvent};
use crate::fixture::{ErrorFields, Phase, QueryResult};
use crate::protocol::{self, Described, Portal};

impl Tap {
    /// A Describe of a DECLAREd cursor's portal is recorded as its own
    /// exchange under a pseudo-SQL, so replay can answer it.
    pub(super) fn cursor_described(&mut self, name: &str, cols: &Described) {
        let result = QueryResult {
            columns: cols.columns().map(|c| c.to_vec()),
            tag: Some("DESCRIBE".into()),
            ..QueryResult::default()
        };
        self.emit(
            protocol::describe_cursor_sql(name),
            None,
            None,
            Phase::Execute,
            Vec::new(),
            vec![result],
        );
    }

    /// An Execute finished its portal (CommandComplete, EmptyQuery, an
    /// error, or for a cursor portal PortalSuspended): the exchange is the
    /// portal's rows so far plus this outcome.
    pub(super) fn portal_done(
        &mut self,
        name: &str,
        max_rows: i32,
        outcome: impl FnOnce(&mut QueryResult),
    ) {
        let mut r = QueryResult::default();
        outcome(&mut r);
        let Some(p) = self.proto.portal_mut(name) else {
            self.events.push(TapEvent::Lost {
                sql: format!("Execute of portal {name:?}"),
                reason: "the recorder does not know the portal (executed after it completed?)"
                    .into(),
            });
            return;
        };
        if p.statement.is_some() {
            if p.done {
                // A later Execute of a completed portal: PostgreSQL answers
                // it from the portal alone, so it adds nothing.
                return;
            }
            let rows = p.extra.rows.len();
            if p.executions > 0 {
                // Earlier Executes suspended: the final tag counted only
                // the last batch; the recording keeps the whole portal's
                // count, as one Execute says it.
                if let Some(tag) = r.tag.take() {
                    r.tag = Some(protocol::batch_tag(&tag, rows, false).into_owned());
                }
            }
            let (sql, kind, tag) = (p.sql.clone(), p.kind, r.tag.clone());
            if let Some(mut portal) = self.proto.take_portal(name) {
                self.finish_portal(&mut portal, r);
                // It stays open until Sync or the end of the transaction.
                portal.done = true;
                self.proto.restore_portal(name.to_owned(), portal);
            }
            // Transaction effects (a DECLAREd cursor, portals closed at
            // COMMIT) go through the model, as on the server.
            if let Some(tag) = tag {
                for (_, portal) in self.proto.completed(&sql, kind, &tag) {
                    self.finish_unread(portal);
                }
            }
            return;
        }
        // Each Execute of a DECLAREd cursor's portal is its own exchange,
        // under the FETCH it is equivalent to.
        r.rows = std::mem::take(&mut p.extra.rows);
        r.columns = p.columns.columns().map(|c| c.to_vec());
        r.columns_unknown = p.columns == Described::Unknown && r.error.is_none();
        r.notices = std::mem::take(&mut p.extra.notices);
        r.notices.extend(std::mem::take(&mut self.notices));
        let n = r.rows.len();
        self.proto.delivered(name, n, r.tag.is_some());
        let sql = protocol::execute_cursor_sql(name, max_rows);
        self.emit(sql, None, None, Phase::Execute, Vec::new(), vec![r]);
    }

    /// An Execute of a portal that already completed failed. PostgreSQL
    /// refuses to run a portal twice only when it returns no rows (55000),
    /// which is what the recording lacked if the client never described
    /// it: the portal's exchange learns it returns no rows, and replay
    /// answers the same refusal. Anything else is reported, not guessed.
    pub(super) fn rerun_refused(&mut self, name: &str, fields: ErrorFields) {
        let learned = fields.code() == "55000"
            && self.proto.portal(name).is_some_and(|p| {
                let sql = p.sql.clone();
                let params = p.params.clone();
                self.held
                    .iter_mut()
                    .rev()
                    .find(|e| *e.sql == *sql && e.params.as_ref() == Some(&params))
                    .and_then(|e| e.results.first_mut())
                    .map(|r| r.columns_unknown = false)
                    .is_some()
            });
        if !learned {
            self.events.push(TapEvent::Lost {
                sql: format!("Execute of completed portal {name:?}"),
                reason: format!("its refusal is not recorded: {}", fields.message()),
            });
        }
    }

    /// PortalSuspended: the rows so far stay with the portal.
    pub(super) fn suspended(&mut self, name: &str, max_rows: i32) {
        let Some(p) = self.proto.portal_mut(name) else {
            return;
        };
        if p.statement.is_none() {
            return self.portal_done(name, max_rows, |r| r.suspended = true);
        }
        let n = p.extra.rows.len().saturating_sub(p.delivered);
        self.proto.delivered(name, n, false);
    }

    /// A statement that goes away: if it was described but never executed,
    /// its description is recorded, so replay answers the same Describe.
    pub(super) fn finish_statement(&mut self, stmt: protocol::Statement<StmtRec>) {
        if !stmt.extra.described || stmt.extra.bound {
            return;
        }
        let result = QueryResult {
            columns: stmt.columns.columns().map(|c| c.to_vec()),
            tag: Some("DESCRIBE".into()),
            ..QueryResult::default()
        };
        self.emit(
            stmt.sql.to_string(),
            None,
            stmt.param_types,
            Phase::Describe,
            Vec::new(),
            vec![result],
        );
    }

    /// A portal that will not be read further (closed, re-bound, the
    /// transaction ended): if rows were read from it and it never
    /// completed, it is recorded as suspended.
    pub(super) fn finish_unread(&mut self, mut portal: Portal<PortalRec>) {
        if portal.statement.is_some() && portal.executions > 0 && !portal.done {
            let r = QueryResult {
                suspended: true,
                ..QueryResult::default()
            };
            self.finish_portal(&mut portal, r);
        }
    }

    pub(super) fn finish_portal(&mut self, p: &mut Portal<PortalRec>, mut result: QueryResult) {
        result.columns = p.columns.columns().map(|c| c.to_vec());
        result.rows = std::mem::take(&mut p.extra.rows);
        // Unknown stays unknown: an undescribed statement must not teach
        // replay that it returns no rows.
        result.columns_unknown = p.columns == Described::Unknown && result.error.is_none();
        result.notices = std::mem::take(&mut p.extra.notices);
        result.notices.extend(std::mem::take(&mut self.notices));
        result.copy_out = p.extra.copy_out.take();
        result.copy_in = p.extra.copy_in.take();
        let before = std::mem::take(&mut p.extra.before);
        let types = p
            .statement
            .as_ref()
            .and_then(|s| self.proto.statement(s))
            .and_then(|s| s.param_types.clone());
        self.emit(
            p.sql.to_string(),
            Some(p.params.clone()),
            types,
            Phase::Execute,
            before,
            vec![result],
        );
    }
}
