//! Transactions: options, savepoints, the failed state, and one attempt of a
//! closure transaction (the retry loop is on [`Client`](crate::Client)).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
pub use tokio_postgres::IsolationLevel;

use super::query::{query_error, query_methods, Connection};
use crate::validate::quote_identifier_if_needed;
use crate::{Error, Result};

/// How a transaction starts, and how a closure transaction retries.
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
    max_attempts: u32,
    backoff: Duration,
    max_backoff: Duration,
}

impl Default for TransactionOptions {
    fn default() -> Self {
        TransactionOptions {
            isolation: None,
            read_only: None,
            deferrable: None,
            max_attempts: 3,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
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
        self.max_attempts = attempts.max(1);
        self
    }

    /// The wait before the second attempt; it doubles for each further one.
    pub fn backoff(mut self, base: Duration) -> Self {
        self.backoff = base;
        self
    }

    /// The longest wait between attempts.
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// The number of attempts allowed.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait before attempt `attempt` (2 or later): `backoff * 2^(attempt-2)`,
    /// at most `max_backoff`.
    pub fn backoff_before(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(30);
        self.backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
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
    pub(crate) fn new(inner: deadpool_postgres::Transaction<'a>) -> Self {
        Transaction {
            inner,
            failed: AtomicBool::new(false),
            attempt: 1,
            savepoint: false,
        }
    }

    fn backend(&self) -> &deadpool_postgres::Transaction<'a> {
        &self.inner
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
        match self.inner.savepoint(quoted.as_str()).await {
            Ok(inner) => Ok(Transaction {
                inner,
                failed: AtomicBool::new(false),
                attempt,
                savepoint: true,
            }),
            Err(e) => {
                if e.as_db_error().is_some() {
                    failed.store(true, Ordering::Relaxed);
                }
                Err(query_error("SAVEPOINT")(e))
            }
        }
    }

    /// `COMMIT` (or `RELEASE SAVEPOINT`). On a failed transaction it rolls
    /// back and returns [`Error::TransactionAborted`]. When the connection
    /// breaks once `COMMIT` is sent, the error is
    /// [`Error::CommitOutcomeUnknown`]: it may have been applied.
    pub async fn commit(self) -> Result<()> {
        if self.is_failed() {
            self.inner
                .rollback()
                .await
                .map_err(query_error("ROLLBACK"))?;
            return Err(Error::TransactionAborted);
        }
        let savepoint = self.savepoint;
        match self.inner.commit().await.map_err(query_error("COMMIT")) {
            Err(e) if !savepoint && e.is_connection_error() => Err(Error::CommitOutcomeUnknown {
                source: Box::new(e),
            }),
            other => other,
        }
    }

    /// `ROLLBACK` (or `ROLLBACK TO SAVEPOINT` and `RELEASE`).
    pub async fn rollback(self) -> Result<()> {
        self.inner.rollback().await.map_err(query_error("ROLLBACK"))
    }
}

/// One attempt of a closure transaction: commit on `Ok`, roll back on `Err`
/// or panic (the panic then carries on).
pub(crate) async fn attempt<T, F>(
    conn: &mut Connection,
    options: &TransactionOptions,
    attempt: u32,
    f: &mut F,
) -> Result<T>
where
    F: AsyncFnMut(&mut Transaction<'_>) -> Result<T>,
{
    let mut tx = conn.begin_with(options).await?;
    tx.attempt = attempt;
    match AssertUnwindSafe(f(&mut tx)).catch_unwind().await {
        Ok(Ok(value)) => tx.commit().await.map(|()| value),
        Ok(Err(e)) => {
            // The closure's error is the one that matters; a failed rollback
            // means a broken connection, which the pool will not reuse.
            let _ = tx.rollback().await;
            Err(e)
        }
        Err(panic) => {
            let _ = tx.rollback().await;
            std::panic::resume_unwind(panic)
        }
    }
}
