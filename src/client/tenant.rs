//! Multi-tenancy: a tenant per schema ([`Client::tenant_schema`], every
//! checkout sets `search_path` to that schema alone) or per database
//! ([`Client::tenant_database`], a pool per tenant made on demand, at most
//! `max_tenant_pools` of them, the least recently used closed past that).

use std::sync::Arc;

use super::query::{query_methods, Method, Statement, Streamed};
use super::{Connection, RowStream, Transaction, TransactionOptions};
use crate::validate::{quote_identifier, statement_kind, validate_identifier, StatementKind};
use crate::{Client, Error, Result};

/// How many tenant database pools a client keeps by default.
pub const DEFAULT_MAX_TENANT_POOLS: usize = 16;

/// Names no tenant may take: schemas every role shares, which would let a
/// tenant see what is not its own.
const SHARED_SCHEMAS: [&str; 2] = ["public", "information_schema"];

/// Checks `name` as a tenant's schema or database name: an identifier that
/// needs no quoting ([`validate_identifier`]: non-empty, at most 63 bytes,
/// a letter or `_` then letters, digits, `_` or `$`, lowercase, not a
/// reserved keyword), not `pg_*` (PostgreSQL's own), `public` or
/// `information_schema`.
pub(crate) fn check_tenant_name(name: &str) -> Result<()> {
    let refuse = |reason: String| Error::Tenant {
        name: name.to_owned(),
        reason,
    };
    validate_identifier(name).map_err(|e| {
        // The validator's advice to quote does not apply: tenant names
        // are never quoted.
        let why = e.to_string();
        let why = why.split("; quote it").next().unwrap_or(&why);
        refuse(format!(
            "{why} (tenant names are used unquoted: lowercase letters, digits, _ and $)"
        ))
    })?;
    if name.starts_with("pg_") {
        return Err(refuse(
            "names starting with pg_ are PostgreSQL's own".into(),
        ));
    }
    if SHARED_SCHEMAS.contains(&name) {
        return Err(refuse(format!(
            "{name} is shared by every role, not a tenant's own"
        )));
    }
    Ok(())
}

/// The statement that points a connection at one tenant's schema, and
/// only it (no `public`, no `$user`): session-wide, so it holds after the
/// transaction it may run in commits, and sent outside transactions.
const SET_SEARCH_PATH: &str = "select set_config('search_path', $1, false)";

/// Whether `sql` may have changed the session's `search_path` (or undone a
/// change): anything but a plain select, insert, update, delete or DDL, and
/// any statement naming `search_path` (`kind`: what `sql` is).
fn changes_path(sql: &str, kind: StatementKind) -> bool {
    let plain = matches!(
        kind,
        StatementKind::Select
            | StatementKind::Insert
            | StatementKind::Update
            | StatementKind::Delete
            | StatementKind::Ddl
    );
    !plain || sql.to_ascii_lowercase().contains("search_path")
}

/// `statement` with its kind found (once, for its span and metrics too),
/// and whether it may change `search_path`.
fn kind_found<M>(statement: Statement<'_, M>) -> (Statement<'_, M>, bool) {
    let kind = statement_kind(statement.sql);
    (
        Statement {
            kind: Some(kind),
            ..statement
        },
        changes_path(statement.sql, kind),
    )
}

/// One tenant of a schema-per-tenant client, from
/// [`Client::tenant_schema`]: the same query methods as [`Client`], each on
/// a pooled connection whose `search_path` is the tenant's schema alone, so
/// unqualified names resolve there (and nowhere else), whichever tenant
/// used the connection before. Cheap to clone.
///
/// Statements go to the primary, without the client's retry policy. Each
/// connection remembers which tenant's `search_path` it has, so a tenant
/// taking back its own connection sends nothing more; a connection used by
/// anything else (the plain client, a statement that is not a plain
/// select/insert/update/delete/DDL or that names `search_path`, a
/// transaction) has it set again on its next checkout. The plain client
/// never sees a tenant's schema: a connection a tenant used gets `reset
/// search_path` (back to the session's default) before the plain client's
/// first statement on it.
///
/// ```no_run
/// # async fn demo(client: &pgsim::Client) -> pgsim::Result<()> {
/// let acme = client.tenant_schema("t_acme")?;
/// // `items` is t_acme.items, whichever tenant used the connection last.
/// acme.execute("insert into items (name) values ($1)", &[&"anvil"]).await?;
/// let n: i64 = acme.query_one("select count(*) from items", &[]).await?.get(0);
/// # let _ = n;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Tenant {
    client: Client,
    schema: Arc<str>,
    /// `schema` quoted, as `search_path` takes it.
    path: Arc<str>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A handle for the tenant whose rows live in schema `name` (checked as
    /// [`Tenant`] says; a bad name is [`Error::Tenant`], naming it). The
    /// schema is not created or checked here: a missing one makes
    /// unqualified names fail to resolve (42P01), never fall back to another
    /// schema.
    pub fn tenant_schema(&self, name: &str) -> Result<Tenant> {
        check_tenant_name(name)?;
        Ok(Tenant {
            client: self.clone(),
            schema: name.into(),
            path: quote_identifier(name).into(),
        })
    }
}

impl Tenant {
    /// The tenant's schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The client it runs on.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A pooled connection whose `search_path` is this tenant's schema
    /// (set unless the connection is known to have it already). What runs
    /// on it is not watched, so the next checkout sets it again.
    pub async fn acquire(&self) -> Result<Connection> {
        let mut conn = self.checkout().await?;
        conn.tenant = false;
        Ok(conn)
    }

    /// [`acquire`](Self::acquire) for statements this handle runs itself
    /// and watches: the connection keeps its known `search_path` when
    /// returned.
    async fn checkout(&self) -> Result<Connection> {
        let mut conn = self.client.acquire_as_is().await?;
        if conn.search_path().as_deref() != Some(&*self.schema) {
            conn.set_search_path(None);
            conn.query_one(SET_SEARCH_PATH, &[&&*self.path]).await?;
            conn.set_search_path(Some(Arc::clone(&self.schema)));
        }
        conn.tenant = true;
        Ok(conn)
    }

    async fn run<M: Method>(&self, statement: Statement<'_, M>) -> Result<M::Output> {
        statement.check()?;
        let (statement, changes) = kind_found(statement);
        let conn = self.checkout().await?;
        let result = conn.run(statement).await;
        if changes {
            conn.set_search_path(None);
        }
        result
    }

    async fn stream(&self, statement: Statement<'_, Streamed>) -> Result<RowStream> {
        statement.check()?;
        let (statement, changes) = kind_found(statement);
        let conn = self.checkout().await?;
        if changes {
            conn.set_search_path(None);
        }
        conn.into_stream(statement).await
    }

    query_methods!();

    /// [`Client::transaction`] in this tenant's schema: `search_path` is
    /// set before `BEGIN`, so it holds whether the transaction commits or
    /// rolls back.
    pub async fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: AsyncFnMut(&mut Transaction<'_>) -> Result<T>,
    {
        self.transaction_with(&TransactionOptions::default(), f)
            .await
    }

    /// [`Client::transaction_with`] in this tenant's schema.
    pub async fn transaction_with<T, F>(&self, options: &TransactionOptions, f: F) -> Result<T>
    where
        F: AsyncFnMut(&mut Transaction<'_>) -> Result<T>,
    {
        self.client
            // What the closure runs is not watched: set it again next time.
            .transaction_via(options, f, || self.acquire())
            .await
    }
}

/// The pools of [`Client::tenant_database`], least recently used first.
#[derive(Default)]
pub(crate) struct TenantPools {
    pools: tokio::sync::Mutex<Vec<(String, Client)>>,
}

impl Client {
    /// The pool for the tenant whose rows live in database `name` (checked
    /// as [`Tenant`] says; a bad name is [`Error::Tenant`]): made on first
    /// use by [`connect_to_database`](Self::connect_to_database) (same
    /// server, settings and credentials), then kept. At most
    /// [`max_tenant_pools`](crate::ClientBuilder::max_tenant_pools) are
    /// kept: making one more lets the least recently used go. Its idle
    /// connections close at once; a caller still holding it goes on using
    /// it (a request in flight never fails for another tenant's arrival),
    /// and its connections close when the last holder drops it. Asking for
    /// that tenant again makes a new pool.
    pub async fn tenant_database(&self, name: &str) -> Result<Client> {
        check_tenant_name(name)?;
        let mut pools = self.inner.tenant_pools.pools.lock().await;
        if let Some(i) = pools.iter().position(|(n, _)| n == name) {
            let entry = pools.remove(i);
            let client = entry.1.clone();
            pools.push(entry);
            return Ok(client);
        }
        let client = self.connect_to_database(name).await?;
        pools.push((name.to_owned(), client.clone()));
        let over = pools
            .len()
            .saturating_sub(self.inner.builder.max_tenant_pools);
        for (_, evicted) in pools.drain(..over) {
            super::pool::close_idle(&evicted.inner.pool, &evicted.inner.tracker);
        }
        Ok(client)
    }

    /// The tenant databases with a pool open, least recently used first.
    pub async fn tenant_pools(&self) -> Vec<String> {
        let pools = self.inner.tenant_pools.pools.lock().await;
        pools.iter().map(|(n, _)| n.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn may_change_search_path(sql: &str) -> bool {
        changes_path(sql, statement_kind(sql))
    }

    fn reason(name: &str) -> String {
        match check_tenant_name(name) {
            Err(Error::Tenant { name: n, reason }) => {
                assert_eq!(n, name);
                reason
            }
            other => panic!("{name:?}: expected a tenant error, got {other:?}"),
        }
    }

    #[test]
    fn tenant_names_are_plain_identifiers_of_their_own() {
        for ok in ["t_acme", "acme", "_x", "tenant_42", "a$b"] {
            assert!(check_tenant_name(ok).is_ok(), "{ok}");
        }
        assert!(reason("").contains("empty"));
        assert!(reason(&"a".repeat(64)).contains("64 bytes"));
        assert!(reason("Acme").contains("uppercase"));
        assert!(reason("acme; drop table x").contains("invalid character"));
        assert!(reason("t_acme\"").contains("invalid character"));
        assert!(reason("1acme").contains("invalid character"));
        assert!(reason("select").contains("reserved"));
        assert!(reason("pg_catalog").contains("pg_"));
        assert!(reason("public").contains("shared"));
        assert!(reason("information_schema").contains("shared"));
        assert!(check_tenant_name(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn only_plain_statements_keep_the_search_path_known() {
        for keeps in [
            "select * from items",
            "insert into items values (1)",
            "update items set a = 1 where id = 2",
            "delete from items where id = 1",
            "create table items (id int)",
        ] {
            assert!(!may_change_search_path(keeps), "{keeps}");
        }
        for changes in [
            "set search_path to other",
            "reset all",
            "discard all",
            "rollback",
            "select set_config('search_path', 'x', false)",
            "select 1; set search_path = x",
        ] {
            assert!(may_change_search_path(changes), "{changes}");
        }
    }
}
