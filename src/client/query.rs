//! Statements, shared by every type that runs them (client, routed client,
//! pooled connection, transaction): parameters are counted before anything
//! is sent, statements are prepared once per connection, and errors carry
//! the (sanitized) query. The query methods themselves are written once, in
//! [`query_methods`].

use std::future::Future;

use deadpool_postgres::GenericClient;
use futures_util::StreamExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use tracing::Instrument;

use super::observe::Observed;
use crate::validate::{check_params, sanitize_for_log, statement_kind, StatementKind};
use crate::{Error, Result};

/// Query parameters, as tokio-postgres takes them.
pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// `sql` as errors show it: one line, secrets hidden, long literals cut.
pub(crate) fn shown(sql: &str) -> String {
    sanitize_for_log(sql, &[])
}

/// pgsim's check of `given` parameters against the placeholders of `sql`,
/// as every query method makes it before anything is sent.
pub(crate) fn check_param_count(sql: &str, given: usize) -> Result<()> {
    check_params(sql, given).map_err(|source| Error::Params {
        sql: shown(sql),
        source,
    })
}

pub(crate) fn query_error(sql: &str) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
    move |source| Error::Query {
        sql: shown(sql),
        source,
    }
}

/// One call of a query method: the SQL, its parameters, and the method
/// that says how to read the answer.
#[derive(Clone, Copy)]
pub(crate) struct Statement<'a, M> {
    pub(crate) sql: &'a str,
    /// Its kind, when the caller already found it (routing does, with
    /// the same lexing as its read-only check).
    pub(crate) kind: Option<StatementKind>,
    pub(crate) params: Params<'a>,
    pub(crate) method: M,
}

impl<M: Method> Statement<'_, M> {
    /// pgsim's own checks, before a connection is even taken: the
    /// parameter count against the placeholders.
    pub(crate) fn check(&self) -> Result<()> {
        if !M::COUNTS_PARAMS {
            return Ok(());
        }
        check_param_count(self.sql, self.params.len())
    }

    /// Sends it on `c` (a pooled connection or a transaction to `node`)
    /// and reads the answer, in a `pgsim.query` span; [`check`](Self::check)
    /// first.
    /// Counted in the node's metrics and run between its hooks.
    pub(crate) async fn run<C: GenericClient + Sync>(
        self,
        c: &C,
        node: &Observed,
    ) -> Result<M::Output> {
        let kind = self.kind.unwrap_or_else(|| statement_kind(self.sql));
        let span = tracing::debug_span!(
            "pgsim.query",
            kind = kind.as_str(),
            node = &*node.name,
            sql = %crate::trace::Sql(self.sql),
            outcome = tracing::field::Empty,
        );
        let result = node
            .query(
                self.sql,
                kind,
                M::rows,
                self.method
                    .read(self.sql, self.params, c)
                    .instrument(span.clone()),
            )
            .await;
        span.record("outcome", crate::trace::outcome(&result));
        result
    }
}

/// How a query method sends a statement and reads its answer.
pub(crate) trait Method: Copy + Send + Sync {
    /// What the caller gets.
    type Output: Send;

    /// Whether the parameters are counted against the placeholders (not
    /// for a batch, whose `$` text may be anything).
    const COUNTS_PARAMS: bool = true;

    /// Rows its answer returned or affected, for hooks, when it says.
    fn rows(output: &Self::Output) -> Option<u64> {
        let _ = output;
        None
    }

    fn read<C: GenericClient + Sync>(
        self,
        sql: &str,
        params: Params<'_>,
        c: &C,
    ) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// `execute`: rows affected.
#[derive(Clone, Copy)]
pub(crate) struct Execute;

/// `query`: every row.
#[derive(Clone, Copy)]
pub(crate) struct Query;

/// `query_one` (`exactly`) or `query_opt`: at most one row, reading no
/// further than the second; no row is `None`, which `query_one` turns into
/// [`Error::NoRows`].
#[derive(Clone, Copy)]
pub(crate) struct AtMostOne {
    pub(crate) exactly: bool,
}

/// `query_stream`: the driver's row stream.
#[derive(Clone, Copy)]
pub(crate) struct Streamed;

/// `batch_execute`: `;`-separated statements over the simple protocol.
#[derive(Clone, Copy)]
pub(crate) struct Batch;

async fn prepared<C: GenericClient + Sync>(c: &C, sql: &str) -> Result<tokio_postgres::Statement> {
    c.prepare_cached(sql).await.map_err(query_error(sql))
}

impl Method for Execute {
    type Output = u64;

    fn rows(affected: &u64) -> Option<u64> {
        Some(*affected)
    }

    async fn read<C: GenericClient + Sync>(
        self,
        sql: &str,
        params: Params<'_>,
        c: &C,
    ) -> Result<u64> {
        let statement = prepared(c, sql).await?;
        c.execute(&statement, params)
            .await
            .map_err(query_error(sql))
    }
}

impl Method for Query {
    type Output = Vec<Row>;

    fn rows(rows: &Vec<Row>) -> Option<u64> {
        Some(rows.len() as u64)
    }

    async fn read<C: GenericClient + Sync>(
        self,
        sql: &str,
        params: Params<'_>,
        c: &C,
    ) -> Result<Vec<Row>> {
        let statement = prepared(c, sql).await?;
        c.query(&statement, params).await.map_err(query_error(sql))
    }
}

impl Method for Streamed {
    type Output = tokio_postgres::RowStream;

    async fn read<C: GenericClient + Sync>(
        self,
        sql: &str,
        params: Params<'_>,
        c: &C,
    ) -> Result<tokio_postgres::RowStream> {
        let statement = prepared(c, sql).await?;
        c.query_raw(&statement, params.iter().copied())
            .await
            .map_err(query_error(sql))
    }
}

impl Method for AtMostOne {
    type Output = Option<Row>;

    fn rows(row: &Option<Row>) -> Option<u64> {
        Some(u64::from(row.is_some()))
    }

    async fn read<C: GenericClient + Sync>(
        self,
        sql: &str,
        params: Params<'_>,
        c: &C,
    ) -> Result<Option<Row>> {
        let rows = Streamed.read(sql, params, c).await?;
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
                expected: if self.exactly {
                    "exactly one"
                } else {
                    "at most one"
                },
                sql: shown(sql),
            });
        }
        Ok(first)
    }
}

impl Method for Batch {
    type Output = ();
    const COUNTS_PARAMS: bool = false;

    async fn read<C: GenericClient + Sync>(self, sql: &str, _: Params<'_>, c: &C) -> Result<()> {
        c.batch_execute(sql).await.map_err(query_error(sql))
    }
}

/// The query methods, written once for [`Client`](crate::Client),
/// [`Routed`](crate::client::Routed), [`Connection`](crate::client::Connection)
/// and [`Transaction`](crate::client::Transaction). Each type provides two
/// private methods: `run(statement)`, which checks and runs a
/// [`Statement`] of any [`Method`] where that type runs things, and
/// `stream(statement)`, which does the same for [`Streamed`] rows and keeps
/// whatever the rows need (a routed stream holds its pooled connection).
macro_rules! query_methods {
    () => {
        /// Runs a statement and returns the number of rows it affected.
        /// The parameter count is checked against the placeholders before
        /// anything is sent.
        pub async fn execute(
            &self,
            sql: &str,
            params: $crate::client::Params<'_>,
        ) -> $crate::Result<u64> {
            self.run($crate::client::query::Statement {
                sql,
                kind: None,
                params,
                method: $crate::client::query::Execute,
            })
            .await
        }

        /// Runs a query and returns all its rows.
        pub async fn query(
            &self,
            sql: &str,
            params: $crate::client::Params<'_>,
        ) -> $crate::Result<Vec<$crate::tokio_postgres::Row>> {
            self.run($crate::client::query::Statement {
                sql,
                kind: None,
                params,
                method: $crate::client::query::Query,
            })
            .await
        }

        /// Runs a query that must return exactly one row
        /// ([`Error::NoRows`](crate::Error::NoRows) or
        /// [`Error::TooManyRows`](crate::Error::TooManyRows) otherwise).
        pub async fn query_one(
            &self,
            sql: &str,
            params: $crate::client::Params<'_>,
        ) -> $crate::Result<$crate::tokio_postgres::Row> {
            let one = $crate::client::query::Statement {
                sql,
                kind: None,
                params,
                method: $crate::client::query::AtMostOne { exactly: true },
            };
            self.run(one).await?.ok_or_else(|| $crate::Error::NoRows {
                sql: $crate::client::query::shown(sql),
            })
        }

        /// Runs a query that returns at most one row
        /// ([`Error::TooManyRows`](crate::Error::TooManyRows) otherwise).
        pub async fn query_opt(
            &self,
            sql: &str,
            params: $crate::client::Params<'_>,
        ) -> $crate::Result<Option<$crate::tokio_postgres::Row>> {
            let opt = $crate::client::query::Statement {
                sql,
                kind: None,
                params,
                method: $crate::client::query::AtMostOne { exactly: false },
            };
            self.run(opt).await
        }

        /// Runs a query and streams its rows as they arrive, for results
        /// too large to hold at once. From a client, the stream holds its
        /// pooled connection until dropped; only opening it is retried,
        /// never a half-read one.
        pub async fn query_stream(
            &self,
            sql: &str,
            params: $crate::client::Params<'_>,
        ) -> $crate::Result<$crate::client::RowStream> {
            self.stream($crate::client::query::Statement {
                sql,
                kind: None,
                params,
                method: $crate::client::query::Streamed,
            })
            .await
        }

        /// Runs one or more `;`-separated statements over the simple query
        /// protocol (no parameters, no rows returned).
        pub async fn batch_execute(&self, sql: &str) -> $crate::Result<()> {
            self.run($crate::client::query::Statement {
                sql,
                kind: None,
                params: &[],
                method: $crate::client::query::Batch,
            })
            .await
        }
    };
}
pub(crate) use query_methods;
