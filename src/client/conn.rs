//! A connection taken from the pool, the rows it streams, and one attempt
//! of a closure transaction on it.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::{FutureExt, Stream};
use tokio_postgres::Row;

use tokio::time::Instant;

use super::observe::Observed;
use super::pool::Tracker;
use super::query::{query_methods, Method, Statement, Streamed};
use super::txn::{Transaction, TransactionOptions};
use crate::{Error, Result};

/// A connection taken from the pool; it goes back when dropped.
///
/// Statements it prepares stay cached on it for the next caller.
pub struct Connection {
    obj: Option<deadpool_postgres::Object>,
    tracker: Arc<Tracker>,
    /// The node it is a connection to (`primary`, `replica-1`...), for
    /// spans, metrics and hooks.
    node: Observed,
    /// When a caller took it (not for maintenance's own), for the release
    /// hook.
    acquired: Option<Instant>,
    /// Checked out by a [`Tenant`](super::Tenant), which keeps track of its
    /// `search_path`; any other use forgets it when returned.
    pub(crate) tenant: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection maintenance opened and gives back at once.
    pub(crate) fn new(
        obj: deadpool_postgres::Object,
        tracker: Arc<Tracker>,
        node: Observed,
    ) -> Self {
        Connection {
            obj: Some(obj),
            tracker,
            node,
            acquired: None,
            tenant: false,
        }
    }

    /// A connection a caller took: its release is reported to the hooks.
    pub(crate) fn acquired(mut self) -> Self {
        self.acquired = Some(Instant::now());
        self
    }

    /// The tenant schema this connection's `search_path` is known to be.
    pub(crate) fn search_path(&self) -> Option<Arc<str>> {
        self.tracker.search_path(self.object())
    }

    /// Notes what this connection's `search_path` is now (`None`: unknown).
    pub(crate) fn set_search_path(&self, schema: Option<Arc<str>>) {
        self.tracker.set_search_path(self.object(), schema);
    }

    /// Resets `search_path` to the session's default when a tenant set it,
    /// so a tenant's schema never shows through the plain client.
    pub(crate) async fn reset_tenant_path(&self) -> Result<()> {
        if self.tracker.tenant_touched(self.object()) {
            self.batch_execute("reset search_path").await?;
            self.tracker.forget_search_path(self.object());
        }
        Ok(())
    }

    fn object(&self) -> &deadpool_postgres::Object {
        // Only `Drop` takes it out.
        self.obj
            .as_ref()
            .expect("a connection holds its object until dropped")
    }

    pub(crate) async fn run<M: Method>(&self, statement: Statement<'_, M>) -> Result<M::Output> {
        statement.check()?;
        statement.run(self.object(), &self.node).await
    }

    async fn stream(&self, statement: Statement<'_, Streamed>) -> Result<RowStream> {
        Ok(RowStream::new(self.run(statement).await?, None))
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
        let span = tracing::info_span!(
            "pgsim.transaction",
            node = &*self.node.name,
            isolation = tracing::field::Empty,
            read_only = options.read_only,
            attempt = 1u32,
            outcome = tracing::field::Empty,
        );
        if let Some(level) = options.isolation {
            span.record("isolation", tracing::field::debug(level));
        }
        let tx = self.node.control("BEGIN", &span, builder.start()).await;
        match tx {
            Ok(tx) => Ok(Transaction::new(tx, self.node.clone(), span)),
            Err(e) => {
                span.record("outcome", "begin failed");
                Err(e)
            }
        }
    }

    /// Streams rows, keeping this connection until the stream is dropped.
    pub(crate) async fn into_stream(self, statement: Statement<'_, Streamed>) -> Result<RowStream> {
        let rows = self.run(statement).await?;
        Ok(RowStream::new(rows, Some(self)))
    }

    /// One attempt of a closure transaction: commit on `Ok`, roll back on
    /// `Err` or panic (the panic then carries on).
    pub(crate) async fn attempt_transaction<T, F>(
        &mut self,
        options: &TransactionOptions,
        attempt: u32,
        f: &mut F,
    ) -> Result<T>
    where
        F: AsyncFnMut(&mut Transaction<'_>) -> Result<T>,
    {
        let mut tx = self.begin_with(options).await?.with_attempt(attempt);
        match AssertUnwindSafe(f(&mut tx)).catch_unwind().await {
            Ok(Ok(value)) => tx.commit().await.map(|()| value),
            Ok(Err(e)) => {
                // The closure's error is the one that matters; a failed
                // rollback means a broken connection, which the pool will
                // not reuse.
                let _ = tx.rollback().await;
                Err(e)
            }
            Err(panic) => {
                let _ = tx.rollback().await;
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// The driver's client, for anything pgsim does not wrap.
    pub fn driver(&self) -> &tokio_postgres::Client {
        self.object()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            if !self.tenant {
                // Anything may have changed its search_path meanwhile.
                self.tracker.set_search_path(&obj, None);
            }
            self.tracker.returned(&obj);
            drop(obj);
            // Not while unwinding from a panic: a hook that panicked then
            // would abort the process.
            if let Some(at) = self.acquired.filter(|_| !std::thread::panicking()) {
                self.node.released(at.elapsed());
            }
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
