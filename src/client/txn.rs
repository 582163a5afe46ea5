//! Transactions: options, savepoints and the failed state (one attempt of
//! a closure transaction is on [`Connection`](super::Connection), the retry
//! loop on [`Client`](crate::Client)).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use tokio_postgres::IsolationLevel;
use tracing::Instrument;

use super::observe::Observed;
use super::query::{query_methods, Method, Statement, Streamed};
use super::retry::RetryPolicy;
use super::RowStream;
use crate::validate::quote_identifier_if_needed;
use crate::{Error, Result};

/// How a transaction starts, and how a closure transaction retries (the
/// same exponential backoff as [`RetryPolicy`], without jitter).
///
/// ```
/// use pgsim::client::{IsolationLevel, TransactionOptions};
/// use std::time::Duration;
/// let options = TransactionOptions::new()
///     .isolation(IsolationLevel::Serializable)
///     .max_attempts(5)
///     .backoff(Duration::from_millis(20));
/// assert_eq!(options.backoff_before(2), Duration::from_millis(20));
/// assert_eq!(options.backoff_before(4), Duration::from_millis(80));
/// ```
#[derive(Clone, Debug)]
pub struct TransactionOptions {
    pub(crate) isolation: Option<IsolationLevel>,
    pub(crate) read_only: Option<bool>,
    pub(crate) deferrable: Option<bool>,
    retry: RetryPolicy,
}

impl Default for TransactionOptions {
    fn default() -> Self {
        TransactionOptions {
            isolation: None,
            read_only: None,
            deferrable: None,
            retry: RetryPolicy::exponential(Duration::from_millis(10)),
        }
    }
}

impl TransactionOptions {
    /// The server's default isolation, read-write, 3 attempts, 10 ms backoff
    /// doubling up to 1 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// `ISOLATION LEVEL ...`.
    pub fn isolation(mut self, level: IsolationLevel) -> Self {
        self.isolation = Some(level);
        self
    }

    /// `READ ONLY` (or `READ WRITE` with `false`).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = Some(read_only);
        self
    }

    /// `DEFERRABLE` (only meaningful for serializable read-only).
    pub fn deferrable(mut self, deferrable: bool) -> Self {
        self.deferrable = Some(deferrable);
        self
    }

    /// Attempts a closure transaction makes before giving up on
    /// serialization failures and deadlocks (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.retry = self.retry.max_attempts(attempts);
        self
    }

    /// The wait before the second attempt; it doubles for each further one.
    pub fn backoff(mut self, base: Duration) -> Self {
        self.retry = self.retry.base(base);
        self
    }

    /// The longest wait between attempts.
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.retry = self.retry.max_delay(max);
        self
    }

    /// The number of attempts allowed.
    pub fn attempts(&self) -> u32 {
        self.retry.attempts()
    }

    /// The wait before attempt `attempt` (2 or later): `backoff * 2^(attempt-2)`,
    /// at most `max_backoff`.
    pub fn backoff_before(&self, attempt: u32) -> Duration {
        self.retry.delay(attempt.saturating_sub(1), 0)
    }

    /// The retry schedule of a closure transaction.
    pub(crate) fn retry(&self) -> &RetryPolicy {
        &self.retry
    }
}

/// An open transaction (or savepoint). Dropping it without `commit` rolls
/// it back.
///
/// After a statement fails on the server, the transaction is *failed*, as
/// on the server: [`commit`](Transaction::commit) then rolls back and
/// returns [`Error::TransactionAborted`] instead of pretending to commit.
pub struct Transaction<'a> {
    inner: deadpool_postgres::Transaction<'a>,
    failed: AtomicBool,
    attempt: u32,
    /// A savepoint's commit is a `RELEASE`, not the transaction's commit.
    savepoint: bool,
    /// The node it runs on, for its statements' spans, metrics and hooks.
    node: Observed,
    /// Its `pgsim.transaction` span: statements run inside it, and commit
    /// or rollback record its `outcome` (`dropped` when neither ran).
    span: TxSpan,
}

/// A transaction's span, which says `outcome = "dropped"` when the
/// transaction is dropped without commit or rollback (the driver then
/// rolls it back).
struct TxSpan {
    span: tracing::Span,
    ended: bool,
}

impl TxSpan {
    fn new(span: tracing::Span) -> Self {
        TxSpan { span, ended: false }
    }
}

impl std::ops::Deref for TxSpan {
    type Target = tracing::Span;

    fn deref(&self) -> &tracing::Span {
        &self.span
    }
}

impl Drop for TxSpan {
    fn drop(&mut self) {
        if !self.ended {
            self.span.record("outcome", "dropped");
        }
    }
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("failed", &self.is_failed())
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl<'a> Transaction<'a> {
    /// The driver's transaction (portals: see `batch.rs`).
    pub(crate) fn driver(&self) -> &tokio_postgres::Transaction<'a> {
        &self.inner
    }

    pub(crate) fn new(
        inner: deadpool_postgres::Transaction<'a>,
        node: Observed,
        span: tracing::Span,
    ) -> Self {
        Transaction {
            inner,
            failed: AtomicBool::new(false),
            attempt: 1,
            savepoint: false,
            node,
            span: TxSpan::new(span),
        }
    }

    /// The same transaction as attempt `attempt` of a closure transaction.
    pub(crate) fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self.span.record("attempt", attempt);
        self
    }

    /// A server error aborts the transaction; pgsim's own checks (parameter
    /// count, row count) do not reach the server and leave it usable.
    fn observe<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.as_db_error().is_some() {
                self.failed.store(true, Ordering::Relaxed);
            }
        }
        result
    }

    async fn run<M: Method>(&self, statement: Statement<'_, M>) -> Result<M::Output> {
        statement.check()?;
        let answer = statement
            .run(&self.inner, &self.node)
            .instrument(self.span.clone())
            .await;
        self.observe(answer)
    }

    async fn stream(&self, statement: Statement<'_, Streamed>) -> Result<RowStream> {
        Ok(RowStream::new(self.run(statement).await?, None))
    }

    query_methods!();

    /// Whether a failed statement has aborted this transaction (or
    /// savepoint); only a rollback makes it usable again.
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Which attempt of a closure transaction this is (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// `SAVEPOINT name`: a nested transaction. Rolling it back (or dropping
    /// it) undoes only what was done inside it and clears its failure;
    /// committing it releases the savepoint. Any name works: it is quoted
    /// when needed.
    pub async fn savepoint(&mut self, name: &str) -> Result<Transaction<'_>> {
        let quoted = quote_identifier_if_needed(name);
        let attempt = self.attempt;
        let failed = &self.failed;
        let node = self.node.clone();
        let span = tracing::info_span!(
            parent: &*self.span,
            "pgsim.transaction",
            node = &*node.name,
            savepoint = true,
            attempt,
            outcome = tracing::field::Empty,
        );
        let started = node
            .control("SAVEPOINT", &span, self.inner.savepoint(quoted.as_str()))
            .await;
        match started {
            Ok(inner) => Ok(Transaction {
                inner,
                failed: AtomicBool::new(false),
                attempt,
                savepoint: true,
                node,
                span: TxSpan::new(span),
            }),
            Err(e) => {
                if e.as_db_error().is_some() {
                    failed.store(true, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    /// `COMMIT` (or `RELEASE SAVEPOINT`). On a failed transaction it rolls
    /// back and returns [`Error::TransactionAborted`]. When the connection
    /// breaks once `COMMIT` is sent, the error is
    /// [`Error::CommitOutcomeUnknown`]: it may have been applied.
    pub async fn commit(mut self) -> Result<()> {
        self.span.ended = true;
        let span = self.span.clone();
        if self.is_failed() {
            span.record("outcome", "aborted");
            self.rollback_quietly().await?;
            return Err(Error::TransactionAborted);
        }
        let savepoint = self.savepoint;
        let node = self.node.clone();
        let answer = node.control("COMMIT", &span, self.inner.commit()).await;
        let answer = match answer {
            Err(e) if !savepoint && e.is_connection_error() => Err(Error::CommitOutcomeUnknown {
                source: Box::new(e),
            }),
            other => other,
        };
        span.record(
            "outcome",
            match &answer {
                Ok(()) => "commit",
                Err(Error::CommitOutcomeUnknown { .. }) => "unknown",
                Err(e) => crate::trace::error_outcome(e),
            },
        );
        answer
    }

    /// `ROLLBACK` (or `ROLLBACK TO SAVEPOINT` and `RELEASE`).
    pub async fn rollback(mut self) -> Result<()> {
        self.span.ended = true;
        self.span.record("outcome", "rollback");
        self.rollback_quietly().await
    }

    /// `ROLLBACK`, leaving the span's outcome as it is.
    async fn rollback_quietly(self) -> Result<()> {
        let node = self.node.clone();
        let span = self.span.clone();
        node.control("ROLLBACK", &span, self.inner.rollback()).await
    }
}
