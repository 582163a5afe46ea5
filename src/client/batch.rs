//! Many statements without waiting for each answer, and large results read
//! in batches.
//!
//! - [`Client::pipeline`] sends statements on one connection without
//!   waiting: tokio-postgres writes each as soon as it is polled, so their
//!   Parse/Bind/Execute messages share round trips. Each statement's result
//!   comes back on its own; [`Client::pipeline_all`] stops at the first
//!   error instead.
//! - [`Client::query_cursor`] reads a result through a portal inside a
//!   transaction, `batch` rows at a time (Execute with a row limit), so a
//!   large result is never held whole.

use futures_util::future::join_all;
use tokio_postgres::Row;

use super::query::{check_param_count, query_error};
use super::Params;
use crate::{Client, Error, Result};

impl Client {
    /// Sends every statement on one connection without waiting for the
    /// answers in between; each gets its own result, in order. A statement
    /// whose parameters do not match its placeholders fails alone, before
    /// anything is sent; one that fails on the server does not stop the
    /// others (outside a transaction each statement is its own).
    pub async fn pipeline(
        &self,
        statements: &[(&str, Params<'_>)],
    ) -> Result<Vec<Result<Vec<Row>>>> {
        let conn = self.acquire().await?;
        // The connection's own query method: the parameter check, the
        // prepared-statement cache and the `pgsim.query` span, as for any
        // statement; polled together, the statements share round trips.
        let runs = statements
            .iter()
            .map(|&(sql, params)| conn.query(sql, params));
        Ok(join_all(runs).await)
    }

    /// [`Client::pipeline`], all or nothing for the caller: the rows of
    /// every statement, or the first error in statement order.
    pub async fn pipeline_all(&self, statements: &[(&str, Params<'_>)]) -> Result<Vec<Vec<Row>>> {
        for &(sql, params) in statements {
            check_param_count(sql, params.len())?;
        }
        self.pipeline(statements).await?.into_iter().collect()
    }

    /// Runs `sql` inside a transaction through a portal and hands its rows
    /// to `each`, `batch` rows at a time (the last batch may be shorter);
    /// returns how many rows were read. An error from `each` stops the
    /// reading and rolls the transaction back.
    pub async fn query_cursor<F>(
        &self,
        sql: &str,
        params: Params<'_>,
        batch: u32,
        mut each: F,
    ) -> Result<u64>
    where
        F: FnMut(Vec<Row>) -> Result<()>,
    {
        check_param_count(sql, params.len())?;
        let batch = i32::try_from(batch)
            .ok()
            .filter(|b| *b > 0)
            .ok_or_else(|| Error::Setting {
                setting: "query_cursor batch".into(),
                value: batch.to_string(),
                reason: "a batch is 1 row or more, at most i32::MAX".into(),
            })?;
        let mut conn = self.acquire().await?;
        let tx = conn.begin().await?;
        let portal = tx
            .driver()
            .bind(sql, params)
            .await
            .map_err(query_error(sql))?;
        let mut read = 0u64;
        loop {
            let rows = tx
                .driver()
                .query_portal(&portal, batch)
                .await
                .map_err(query_error(sql))?;
            let n = rows.len();
            read += n as u64;
            if n > 0 {
                if let Err(e) = each(rows) {
                    let _ = tx.rollback().await;
                    return Err(e);
                }
            }
            if n < batch as usize {
                break;
            }
        }
        drop(portal);
        tx.commit().await?;
        Ok(read)
    }
}
