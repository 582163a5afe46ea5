//! The one model of a session's protocol state, used by the mock server
//! (which decides the answers) and by the recorder's tap (which watches a
//! real server give them): prepared statements and what Describe said of
//! them, portals and how many rows each has delivered, SQL cursors as
//! portals, the error-until-Sync rule, COPY FROM STDIN in progress and the
//! transaction status. Pure data: no I/O, no pgwire.
//!
//! Each side feeds it the same transitions (`parsed`, `bound`, `described_*`,
//! `delivered`, `failed`, `completed`, `synced`), so a protocol rule lives
//! here once instead of once per side.

pub(crate) mod names;
pub(crate) mod scope;
pub(crate) mod txn;

use std::collections::HashMap;
use std::sync::Arc;

use crate::fixture::{Column, Param, Value};
use crate::wire::{Target, TxStatus};
pub(crate) use txn::TxKind;

/// What Describe has said about the rows of a statement or portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Described {
    /// Nobody asked (yet).
    Unknown,
    /// NoData: the statement returns no rows.
    NoData,
    /// RowDescription.
    Rows(Arc<[Column]>),
}

impl Described {
    /// The columns, when rows were described.
    pub(crate) fn columns(&self) -> Option<&Arc<[Column]>> {
        match self {
            Described::Rows(c) => Some(c),
            Described::Unknown | Described::NoData => None,
        }
    }
}

/// A prepared statement.
#[derive(Debug, Clone)]
pub(crate) struct Statement<S> {
    /// Its name ("" for the unnamed statement), shared with its portals.
    pub(crate) name: Arc<str>,
    pub(crate) sql: Arc<str>,
    pub(crate) kind: TxKind,
    /// Types given by Parse (0 = unspecified).
    pub(crate) parse_types: Vec<u32>,
    /// Types the server described (ParameterDescription), when known.
    pub(crate) param_types: Option<Vec<u32>>,
    pub(crate) columns: Described,
    /// What the side using the model keeps per statement.
    pub(crate) extra: S,
}

impl<S> Statement<S> {
    /// Bind's parameter values as canonical values, with their types: the
    /// one definition of what a bound parameter is recorded and keyed as.
    pub(crate) fn bound_params(
        &self,
        formats: &[i16],
        values: &[Option<bytes::Bytes>],
    ) -> Vec<Param> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let type_oid = self.bind_type(i);
                let format = crate::replay::format_at(formats, i);
                let value = crate::replay::canonical_value(v.as_deref(), format, type_oid);
                Param { type_oid, value }
            })
            .collect()
    }

    /// The type of bound parameter `i`: described, else given to Parse,
    /// else 0.
    fn bind_type(&self, i: usize) -> u32 {
        self.param_types
            .as_ref()
            .and_then(|t| t.get(i).copied())
            .filter(|t| *t != 0)
            .or_else(|| self.parse_types.get(i).copied())
            .unwrap_or(0)
    }
}

/// A portal: a bound statement, or a cursor made by DECLARE.
#[derive(Debug, Clone)]
pub(crate) struct Portal<P> {
    pub(crate) sql: Arc<str>,
    pub(crate) kind: TxKind,
    /// Name of the statement it was bound from (None for a DECLAREd cursor).
    pub(crate) statement: Option<Arc<str>>,
    /// Bound parameters as canonical values, with their types.
    pub(crate) params: Vec<Param>,
    /// Result format codes as Bind gave them.
    pub(crate) result_formats: Vec<i16>,
    pub(crate) columns: Described,
    /// Rows delivered by Execute so far.
    pub(crate) delivered: usize,
    /// Execute messages run so far.
    pub(crate) executions: u32,
    /// An Execute ran it to completion (it stays open until Sync or the end
    /// of the transaction; what another Execute answers follows from it).
    pub(crate) done: bool,
    pub(crate) extra: P,
}

/// Portals closed by one transition, by name (sorted).
pub(crate) type Closed<P> = Vec<(String, Portal<P>)>;

/// COPY FROM STDIN in progress: the data received so far.
#[derive(Debug, Default)]
pub(crate) struct CopyInProgress {
    pub(crate) data: Vec<u8>,
}

/// The protocol state of one session.
#[derive(Debug)]
pub(crate) struct Protocol<S, P> {
    statements: HashMap<String, Statement<S>>,
    portals: HashMap<String, Portal<P>>,
    status: TxStatus,
    /// After an error in the extended protocol, messages up to Sync are ignored.
    skipping: bool,
    copy: Option<CopyInProgress>,
    /// The session's `pgsim.scope` (see [`scope`]).
    scope: Option<Arc<str>>,
}

impl<S, P> Default for Protocol<S, P> {
    fn default() -> Self {
        Protocol {
            statements: HashMap::new(),
            portals: HashMap::new(),
            status: TxStatus::Idle,
            skipping: false,
            copy: None,
            scope: None,
        }
    }
}

/// How one Execute of a row-limited portal ends, by PostgreSQL's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchEnd {
    /// `max_rows` rows were sent: PortalSuspended (even if none remain).
    Suspended,
    /// The portal ran out: CommandComplete with this batch's row count.
    Complete,
    /// The recording stops before the rows this Execute asks for.
    NotRecorded,
}

/// The rows one Execute sends and how it ends. `delivered` rows were sent
/// before, `recorded` rows exist, `complete` says whether the recording saw
/// the portal finish.
pub(crate) fn batch(
    delivered: usize,
    max_rows: i32,
    recorded: usize,
    complete: bool,
) -> (std::ops::Range<usize>, BatchEnd) {
    let start = delivered.min(recorded);
    let want = usize::try_from(max_rows).ok().filter(|n| *n > 0);
    match want {
        Some(n) if start + n <= recorded => (start..start + n, BatchEnd::Suspended),
        _ if complete => (start..recorded, BatchEnd::Complete),
        _ => (start..recorded, BatchEnd::NotRecorded),
    }
}

/// The command tag of the Execute that finishes a portal after `rows` rows
/// in this batch: PostgreSQL counts the rows of this Execute only, so a
/// portal read in batches ends with `SELECT 0` when the last batch was full.
pub(crate) fn batch_tag(recorded: &str, rows: usize, whole: bool) -> std::borrow::Cow<'_, str> {
    if whole {
        return recorded.into();
    }
    match recorded.rsplit_once(' ') {
        Some((head, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
            format!("{head} {rows}").into()
        }
        _ => recorded.into(),
    }
}

/// The pseudo-SQL under which a Describe of a DECLAREd cursor's portal is
/// recorded: not SQL (so no query's key can collide with it, normalization
/// keeps it whole), readable in a fixture.
pub(crate) fn describe_cursor_sql(name: &str) -> String {
    format!(
        "{}describe portal {}",
        crate::fixture::PROTOCOL_SQL_PREFIX,
        quote_ident(name)
    )
}

/// The pseudo-SQL under which an Execute of a DECLAREd cursor's portal is
/// recorded, with its row limit (an Execute answers differently from the
/// FETCH it resembles: it ends in PortalSuspended, so it must not share
/// that FETCH's key).
pub(crate) fn execute_cursor_sql(name: &str, max_rows: i32) -> String {
    format!(
        "{}execute portal {} max_rows {max_rows}",
        crate::fixture::PROTOCOL_SQL_PREFIX,
        quote_ident(name)
    )
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl<S, P: Default> Protocol<S, P> {
    /// The transaction status (what ReadyForQuery reports).
    pub(crate) fn status(&self) -> TxStatus {
        self.status
    }

    /// Sets the status from a ReadyForQuery the real server sent.
    pub(crate) fn set_status(&mut self, status: TxStatus) {
        self.status = status;
    }

    /// Whether a frontend message of this kind is ignored: after an error in
    /// the extended protocol everything up to Sync is.
    pub(crate) fn ignores(&self, is_sync_or_terminate: bool) -> bool {
        self.skipping && !is_sync_or_terminate
    }

    pub(crate) fn statement(&self, name: &str) -> Option<&Statement<S>> {
        self.statements.get(name)
    }

    pub(crate) fn portal(&self, name: &str) -> Option<&Portal<P>> {
        self.portals.get(name)
    }

    pub(crate) fn portal_mut(&mut self, name: &str) -> Option<&mut Portal<P>> {
        self.portals.get_mut(name)
    }

    /// Removes a statement (about to be replaced, or the session ending).
    pub(crate) fn take_statement(&mut self, name: &str) -> Option<Statement<S>> {
        self.statements.remove(name)
    }

    /// Every statement still prepared, sorted by name (the session is ending).
    pub(crate) fn take_all_statements(&mut self) -> Vec<(String, Statement<S>)> {
        let mut all: Vec<_> = self.statements.drain().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub(crate) fn statement_mut(&mut self, name: &str) -> Option<&mut Statement<S>> {
        self.statements.get_mut(name)
    }

    /// ParseComplete: the statement exists (an unnamed one is replaced).
    /// `kind` is [`txn::classify`] of `sql` (the caller has usually needed
    /// it already); `described` the parameter types, when known.
    pub(crate) fn parsed(
        &mut self,
        name: String,
        sql: &str,
        kind: TxKind,
        types: Vec<u32>,
        described: Option<Vec<u32>>,
        extra: S,
    ) {
        let stmt = Statement {
            name: Arc::from(name.as_str()),
            sql: Arc::from(sql),
            kind,
            parse_types: types,
            param_types: described,
            columns: Described::Unknown,
            extra,
        };
        self.statements.insert(name, stmt);
    }

    /// BindComplete: the portal exists, its parameters canonical under the
    /// statement's types. `None` when the statement does not exist.
    pub(crate) fn bound(
        &mut self,
        portal: String,
        statement: &str,
        param_formats: &[i16],
        params: &[Option<bytes::Bytes>],
        result_formats: Vec<i16>,
        extra: P,
    ) -> Option<&mut Portal<P>> {
        let stmt = self.statements.get(statement)?;
        let params = stmt.bound_params(param_formats, params);
        let p = Portal {
            sql: Arc::clone(&stmt.sql),
            kind: stmt.kind,
            statement: Some(Arc::clone(&stmt.name)),
            params,
            result_formats,
            columns: stmt.columns.clone(),
            delivered: 0,
            executions: 0,
            done: false,
            extra,
        };
        Some(match self.portals.entry(portal) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                e.insert(p);
                e.into_mut()
            }
            std::collections::hash_map::Entry::Vacant(e) => e.insert(p),
        })
    }

    /// ParameterDescription + RowDescription/NoData for a statement.
    pub(crate) fn described_statement(
        &mut self,
        name: &str,
        params: Option<Vec<u32>>,
        columns: Described,
    ) {
        // A portal already bound from it and not described itself has the
        // same columns: a driver that sends Parse, Bind, Describe statement
        // and Execute in one batch (tokio-postgres's query_typed) reads its
        // rows with them.
        for p in self.portals.values_mut() {
            if p.columns == Described::Unknown && p.statement.as_deref() == Some(name) {
                p.columns = columns.clone();
            }
        }
        if let Some(s) = self.statements.get_mut(name) {
            if params.is_some() {
                s.param_types = params;
            }
            s.columns = columns;
        }
    }

    /// RowDescription/NoData for a portal. The statement it was bound from
    /// learns its columns too: a driver that describes once and then only
    /// binds and executes (pgjdbc's named statements) still has them.
    pub(crate) fn described_portal(&mut self, name: &str, columns: Described) {
        let Some(p) = self.portals.get_mut(name) else {
            return;
        };
        p.columns = columns.clone();
        if let Some(stmt) = p
            .statement
            .as_ref()
            .and_then(|s| self.statements.get_mut(&**s))
        {
            if stmt.columns == Described::Unknown {
                stmt.columns = columns;
            }
        }
    }

    /// An Execute of `portal` sent `rows` rows; `finished` when it
    /// completed the portal.
    pub(crate) fn delivered(&mut self, portal: &str, rows: usize, finished: bool) {
        if let Some(p) = self.portals.get_mut(portal) {
            p.delivered += rows;
            p.executions += 1;
            p.done |= finished;
        }
    }

    /// CloseComplete.
    pub(crate) fn closed(&mut self, target: Target, name: &str) -> Option<Portal<P>> {
        match target {
            Target::Statement => {
                self.statements.remove(name);
                None
            }
            Target::Portal => self.portals.remove(name),
        }
    }

    /// An ErrorResponse. `extended` errors make the server skip to Sync.
    pub(crate) fn failed(&mut self, extended: bool) {
        self.status = txn::after_error(self.status);
        self.skipping |= extended;
        self.copy = None;
    }

    /// A statement of `kind` completed with `tag`; returns the portals the
    /// end of a transaction closed, so a tap can finish them.
    pub(crate) fn completed(&mut self, sql: &str, kind: TxKind, tag: &str) -> Closed<P> {
        self.status = txn::after_tag(self.status, kind, tag);
        if kind == TxKind::Declare && tag == "DECLARE CURSOR" {
            if let Some(name) = txn::declared_cursor(sql) {
                self.declare(name, sql);
            }
        }
        if self.status == TxStatus::Idle && matches!(kind, TxKind::Commit | TxKind::Rollback) {
            return self.end_transaction();
        }
        Closed::new()
    }

    /// The session's current `pgsim.scope`.
    pub(crate) fn scope(&self) -> Option<&Arc<str>> {
        self.scope.as_ref()
    }

    /// Sets the scope the session started in.
    pub(crate) fn start_scope(&mut self, scope: Option<String>) {
        self.scope = scope.map(Arc::from);
    }

    /// Follows `SET pgsim.scope` / `RESET` among the statements of `sql`
    /// that completed with `tags` (one per statement, `None` for one that
    /// did not complete).
    pub(crate) fn note_scope<'t>(
        &mut self,
        sql: &str,
        tags: impl Iterator<Item = Option<&'t str>>,
    ) {
        if !scope::may_change(sql) {
            return;
        }
        let statements = txn::statements(sql);
        for (stmt, tag) in statements.iter().zip(tags) {
            if let Some(change) = tag.and_then(|t| scope::after_statement(stmt, t)) {
                self.scope = change.map(Arc::from);
            }
        }
    }

    fn declare(&mut self, name: String, sql: &str) {
        let p = Portal {
            sql: Arc::from(sql),
            kind: TxKind::Other,
            statement: None,
            params: Vec::new(),
            result_formats: Vec::new(),
            columns: Described::Unknown,
            delivered: 0,
            executions: 0,
            done: false,
            extra: P::default(),
        };
        self.portals.insert(name, p);
    }

    /// Sync / ReadyForQuery: skipping ends; outside a transaction block
    /// every portal is gone. Returns the portals closed.
    pub(crate) fn synced(&mut self) -> Closed<P> {
        if self.sync_ends_portals() {
            return self.end_transaction();
        }
        Closed::new()
    }

    /// [`Protocol::synced`] for a side that has nothing to finish (the
    /// mock server): the portals are dropped in place.
    pub(crate) fn synced_quietly(&mut self) {
        if self.sync_ends_portals() {
            self.portals.clear();
        }
    }

    fn sync_ends_portals(&mut self) -> bool {
        self.skipping = false;
        self.status == TxStatus::Idle
    }

    fn end_transaction(&mut self) -> Closed<P> {
        let mut closed: Closed<P> = self.portals.drain().collect();
        closed.sort_by(|a, b| a.0.cmp(&b.0));
        closed
    }

    /// Removes a portal (a Bind about to replace it, or the session ending).
    pub(crate) fn take_portal(&mut self, name: &str) -> Option<Portal<P>> {
        self.portals.remove(name)
    }

    /// Puts back a portal taken with [`Protocol::take_portal`].
    pub(crate) fn restore_portal(&mut self, name: String, portal: Portal<P>) {
        self.portals.insert(name, portal);
    }

    /// Every portal still open, sorted by name (the session is ending).
    pub(crate) fn take_all_portals(&mut self) -> Closed<P> {
        self.end_transaction()
    }

    /// CopyInResponse was sent: data follows (a client may already have
    /// sent some, pipelined behind its COPY: it is kept).
    pub(crate) fn copy_started(&mut self) {
        self.copy.get_or_insert_with(CopyInProgress::default);
    }

    /// CopyData from the client.
    pub(crate) fn copy_data(&mut self, data: &[u8]) {
        self.copy
            .get_or_insert_with(CopyInProgress::default)
            .data
            .extend_from_slice(data);
    }

    /// CopyDone or CopyFail: the data as a recorded value.
    pub(crate) fn copy_finished(&mut self, failed: Option<String>) -> crate::fixture::CopyIn {
        let data = self.copy.take().map(|c| c.data).unwrap_or_default();
        crate::fixture::CopyIn {
            data: bytes_value(data),
            failed,
        }
    }
}

/// Bytes as a recorded value: text when UTF-8, else raw hex.
pub(crate) fn bytes_value(data: Vec<u8>) -> Value {
    match String::from_utf8(data) {
        Ok(text) => Value::Text(text),
        Err(e) => Value::Raw {
            hex: hex::encode(e.as_bytes()),
            format: crate::fixture::Format::Binary,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_batch_suspends_even_when_no_rows_remain() {
        assert_eq!(batch(0, 500, 1000, true), (0..500, BatchEnd::Suspended));
        assert_eq!(
            batch(500, 500, 1000, true),
            (500..1000, BatchEnd::Suspended)
        );
        assert_eq!(
            batch(1000, 500, 1000, true),
            (1000..1000, BatchEnd::Complete)
        );
        assert_eq!(batch(900, 300, 1000, true), (900..1000, BatchEnd::Complete));
        assert_eq!(batch(0, 0, 3, true), (0..3, BatchEnd::Complete));
        assert_eq!(batch(0, 5, 3, false), (0..3, BatchEnd::NotRecorded));
        assert_eq!(batch(0, 3, 3, false), (0..3, BatchEnd::Suspended));
    }

    #[test]
    fn the_last_batch_counts_only_its_own_rows() {
        assert_eq!(batch_tag("SELECT 1000", 0, false), "SELECT 0");
        assert_eq!(batch_tag("SELECT 1000", 1000, true), "SELECT 1000");
        assert_eq!(batch_tag("INSERT 0 5", 2, false), "INSERT 0 2");
        assert_eq!(batch_tag("SHOW", 1, false), "SHOW");
    }

    #[test]
    fn a_portal_describe_teaches_the_statement_its_columns() {
        let mut p: Protocol<(), ()> = Protocol::default();
        p.parsed("s1".into(), "select 1", TxKind::Other, vec![], None, ());
        p.bound("".into(), "s1", &[], &[], vec![1], ()).unwrap();
        let cols: Arc<[Column]> = Arc::from(Vec::new());
        p.described_portal("", Described::Rows(Arc::clone(&cols)));
        assert_eq!(p.statement("s1").unwrap().columns, Described::Rows(cols));
    }
}
