//! Queries, shared by pooled connections and transactions: parameters are
//! counted before anything is sent, statements are prepared once per
//! connection, and errors carry the (sanitized) query.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use deadpool_postgres::GenericClient;
use futures_util::{Stream, StreamExt};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::pool::Tracker;
use super::txn::{Transaction, TransactionOptions};
use crate::validate::{check_params, sanitize_for_log};
use crate::{Error, Result};

/// Query parameters, as tokio-postgres takes them.
pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// `sql` as errors show it: one line, secrets hidden, long literals cut.
pub(crate) fn shown(sql: &str) -> String {
    sanitize_for_log(sql, &[])
}

pub(crate) fn query_error(sql: &str) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
    move |source| Error::Query {
        sql: shown(sql),
        source,
    }
}

pub(crate) fn checked(sql: &str, params: Params<'_>) -> Result<()> {
    check_params(sql, params.len()).map_err(|source| Error::Params {
        sql: shown(sql),
        source,
    })
}

pub(crate) async fn execute<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<u64> {
    checked(sql, params)?;
    let statement = c.prepare_cached(sql).await.map_err(query_error(sql))?;
    c.execute(&statement, params)
        .await
        .map_err(query_error(sql))
}

pub(crate) async fn query<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>> {
    checked(sql, params)?;
    let statement = c.prepare_cached(sql).await.map_err(query_error(sql))?;
    c.query(&statement, params).await.map_err(query_error(sql))
}

pub(crate) async fn stream<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<tokio_postgres::RowStream> {
    checked(sql, params)?;
    let statement = c.prepare_cached(sql).await.map_err(query_error(sql))?;
    c.query_raw(&statement, params.iter().copied())
        .await
        .map_err(query_error(sql))
}

/// At most one row; more is an error saying `expected`. Reads no further
/// than the second row.
pub(crate) async fn query_opt<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
    expected: &'static str,
) -> Result<Option<Row>> {
    let rows = stream(c, sql, params).await?;
    let mut rows = std::pin::pin!(rows);
    let first = rows.next().await.transpose().map_err(query_error(sql))?;
    if first.is_some()
        && rows
            .next()
            .await
            .transpose()
            .map_err(query_error(sql))?
            .is_some()
    {
        return Err(Error::TooManyRows {
            expected,
            sql: shown(sql),
        });
    }
    Ok(first)
}

pub(crate) async fn query_one<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Row> {
    query_opt(c, sql, params, "exactly one")
        .await?
        .ok_or_else(|| Error::NoRows { sql: shown(sql) })
}

pub(crate) async fn batch_execute<C: GenericClient>(c: &C, sql: &str) -> Result<()> {
    c.batch_execute(sql).await.map_err(query_error(sql))
}

/// The query methods, written once for [`Connection`] and [`Transaction`]:
/// each type provides `backend()` (the deadpool client to run on) and
/// `observe()` (sees every result before the caller).
macro_rules! query_methods {
    () => {
        /// Runs a statement and returns the number of rows it affected.
        /// The parameter count is checked against the placeholders first.
        pub async fn execute(
            &self,
            sql: &str,
            params: $crate::client::Params<'_>,
        ) -> $crate::Result<u64> {
            self.observe($crate::client::query::execute(self.backend(), sql, params).await)
        }

        /// Runs a query and returns all its rows.
        pub async fn query(
            &self,
            sql: &str,
            params: $crate::client::Params<'_>,
        ) -> $crate::Result<Vec<$crate::tokio_postgres::Row>> {
            self.observe($crate::client::query::query(self.backend(), sql, params).await)
        }

        /// Runs a query that must return exactly one row
        /// ([`Error::NoRows`](crate::Error::NoRows) or
        /// [`Error::TooManyRows`](crate::Error::TooManyRows) otherwise).
        pub async fn query_one(
            &self,
            sql: &str,
            params: $crate::client::Params<'_>,
        ) -> $crate::Result<$crate::tokio_postgres::Row> {
            self.observe($crate::client::query::query_one(self.backend(), sql, params).await)
        }

        /// Runs a query that returns at most one row.
        pub async fn query_opt(
            &self,
            sql: &str,
            params: $crate::client::Params<'_>,
        ) -> $crate::Result<Option<$crate::tokio_postgres::Row>> {
            self.observe(
                $crate::client::query::query_opt(self.backend(), sql, params, "at most one").await,
            )
        }

        /// Runs a query and streams its rows as they arrive, for results
        /// too large to hold at once.
        pub async fn query_stream(
            &self,
            sql: &str,
            params: $crate::client::Params<'_>,
        ) -> $crate::Result<$crate::client::RowStream> {
            let rows =
                self.observe($crate::client::query::stream(self.backend(), sql, params).await)?;
            Ok($crate::client::RowStream::new(rows, None))
        }

        /// Runs one or more `;`-separated statements over the simple query
        /// protocol (no parameters, no rows returned).
        pub async fn batch_execute(&self, sql: &str) -> $crate::Result<()> {
            self.observe($crate::client::query::batch_execute(self.backend(), sql).await)
        }
    };
}
pub(crate) use query_methods;

/// A connection taken from the pool; it goes back when dropped.
///
/// Statements it prepares stay cached on it for the next caller.
pub struct Connection {
    obj: Option<deadpool_postgres::Object>,
    tracker: Arc<Tracker>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(obj: deadpool_postgres::Object, tracker: Arc<Tracker>) -> Self {
        Connection {
            obj: Some(obj),
            tracker,
        }
    }

    fn object(&self) -> &deadpool_postgres::Object {
        // Only `Drop` takes it out.
        self.obj
            .as_ref()
            .expect("a connection holds its object until dropped")
    }

    fn backend(&self) -> &deadpool_postgres::Object {
        self.object()
    }

    fn observe<T>(&self, result: Result<T>) -> Result<T> {
        result
    }

    query_methods!();

    /// Starts a transaction with default options (`BEGIN`).
    pub async fn begin(&mut self) -> Result<Transaction<'_>> {
        self.begin_with(&TransactionOptions::default()).await
    }

    /// Starts a transaction with an isolation level, read-only or deferrable.
    pub async fn begin_with(&mut self, options: &TransactionOptions) -> Result<Transaction<'_>> {
        let obj = self
            .obj
            .as_mut()
            .expect("a connection holds its object until dropped");
        let mut builder = obj.build_transaction();
        if let Some(level) = options.isolation {
            builder = builder.isolation_level(level);
        }
        if let Some(read_only) = options.read_only {
            builder = builder.read_only(read_only);
        }
        if let Some(deferrable) = options.deferrable {
            builder = builder.deferrable(deferrable);
        }
        let tx = builder.start().await.map_err(query_error("BEGIN"))?;
        Ok(Transaction::new(tx))
    }

    /// Streams rows, keeping this connection until the stream is dropped.
    pub(crate) async fn into_stream(self, sql: &str, params: Params<'_>) -> Result<RowStream> {
        let rows = stream(self.backend(), sql, params).await?;
        Ok(RowStream::new(rows, Some(self)))
    }

    /// The driver's client, for anything pgsim does not wrap.
    pub fn driver(&self) -> &tokio_postgres::Client {
        self.object()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            self.tracker.returned(&obj);
        }
    }
}

/// Rows of a query, streamed. When it came from [`Client`](crate::Client),
/// it holds its pooled connection until dropped.
pub struct RowStream {
    rows: Pin<Box<tokio_postgres::RowStream>>,
    _conn: Option<Connection>,
}

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream").finish_non_exhaustive()
    }
}

impl RowStream {
    pub(crate) fn new(rows: tokio_postgres::RowStream, conn: Option<Connection>) -> Self {
        RowStream {
            rows: Box::pin(rows),
            _conn: conn,
        }
    }

    /// Rows affected, once the stream is exhausted (`None` before).
    pub fn rows_affected(&self) -> Option<u64> {
        self.rows.rows_affected()
    }
}

impl Stream for RowStream {
    type Item = Result<Row>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rows
            .as_mut()
            .poll_next(cx)
            .map(|row| row.map(|r| r.map_err(Error::Postgres)))
    }
}
