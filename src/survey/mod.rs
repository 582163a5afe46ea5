//! Surveying a whole server: every database's catalog and a sample of each
//! table, with a concurrency limit, one shared rate limit and per-database
//! failures — the same live, recorded and replayed.
//!
//! ```no_run
//! # async fn demo() -> pgsim::Result<()> {
//! use pgsim::survey::{ListOptions, MultiDatabaseConfig};
//! let client = pgsim::Client::builder()
//!     .url("postgres://surveyor@127.0.0.1:5432/postgres")
//!     .build()
//!     .await?;
//! let survey = client
//!     .collect_all_databases(&MultiDatabaseConfig {
//!         list: ListOptions::default().exclude("tmp_*"),
//!         queries_per_second: 50.0,
//!         ..MultiDatabaseConfig::default()
//!     })
//!     .await?;
//! println!("{}", serde_json::to_string_pretty(&survey).unwrap_or_default());
//! # Ok(()) }
//! ```

mod catalog;
mod collect;
mod glob;
mod limit;
mod model;
mod sample;

pub use collect::rfc3339;
pub use glob::Glob;
pub use limit::{RateLimiter, MAX_QUERY_INTERVAL};
pub use model::*;
pub use sample::{detect_ordering, iso8601, order_by, sample_sql, to_json, TIMESTAMP_NAMES};

use catalog::Scope;

use crate::{Client, Error, Result};

/// Server settings every survey connection uses, so text output (dates,
/// bytea, floats) is the same on every server and in every mode.
pub const SESSION_SETTINGS: [(&str, &str); 4] = [
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, YMD"),
    ("bytea_output", "hex"),
    ("extra_float_digits", "1"),
];

impl crate::ClientBuilder {
    /// Adds [`SESSION_SETTINGS`], which surveys and samples expect.
    pub fn survey_settings(self) -> Self {
        SESSION_SETTINGS
            .iter()
            .fold(self, |b, (name, value)| b.server_setting(*name, *value))
    }
}

/// Catalog and sampling, on the toolkit's client.
impl Client {
    /// Version, user, superuser, and the address the server answered on.
    pub async fn server_info(&self) -> Result<ServerInfo> {
        catalog::server_info(self, &RateLimiter::unlimited()).await
    }

    /// The server's databases, sorted by name, without `template0` and
    /// `template1` unless asked, and without those matching an exclude glob.
    pub async fn list_databases(&self, options: &ListOptions) -> Result<DatabaseList> {
        catalog::list_databases(self, &RateLimiter::unlimited(), options).await
    }

    /// Schema names, sorted; `pg_*` and `information_schema` only with
    /// `include_system`.
    pub async fn schemas(&self, include_system: bool) -> Result<Vec<String>> {
        catalog::schemas(self, &RateLimiter::unlimited(), include_system).await
    }

    /// Tables, views, materialized views and foreign tables of `schema`.
    pub async fn tables(&self, schema: &str) -> Result<Vec<TableInfo>> {
        let scope = Scope {
            include_system: true,
            schema: Some(schema),
            table: None,
        };
        catalog::tables(self, &RateLimiter::unlimited(), scope).await
    }

    /// The table, or [`Error::NoRows`] naming it.
    async fn table(&self, schema: &str, table: &str) -> Result<TableInfo> {
        let scope = one(schema, table);
        catalog::tables(self, &RateLimiter::unlimited(), scope)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NoRows {
                sql: format!("table {}", crate::validate::quote_qualified(schema, table)),
            })
    }

    /// A table's columns, in order.
    pub async fn columns(&self, schema: &str, table: &str) -> Result<Vec<ColumnInfo>> {
        let mut all = catalog::columns(self, &RateLimiter::unlimited(), one(schema, table)).await?;
        Ok(all.remove(&key(schema, table)).unwrap_or_default())
    }

    /// A table's indexes, by name.
    pub async fn indexes(&self, schema: &str, table: &str) -> Result<Vec<IndexInfo>> {
        let mut all = catalog::indexes(self, &RateLimiter::unlimited(), one(schema, table)).await?;
        Ok(all.remove(&key(schema, table)).unwrap_or_default())
    }

    /// A table's foreign keys, by name.
    pub async fn foreign_keys(&self, schema: &str, table: &str) -> Result<Vec<ForeignKey>> {
        let mut all =
            catalog::foreign_keys(self, &RateLimiter::unlimited(), one(schema, table)).await?;
        Ok(all.remove(&key(schema, table)).unwrap_or_default())
    }

    /// The planner's row estimate; `None` when the table was never analyzed.
    pub async fn row_estimate(&self, schema: &str, table: &str) -> Result<Option<i64>> {
        Ok(self.table(schema, table).await?.row_estimate)
    }

    /// How the table's most recent rows are found ([`detect_ordering`];
    /// a random order has [`DEFAULT_SEED`]).
    pub async fn detect_ordering_strategy(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<OrderingStrategy> {
        let columns = self.columns(schema, table).await?;
        let indexes = self.indexes(schema, table).await?;
        Ok(detect_ordering(&columns, &indexes, DEFAULT_SEED))
    }

    /// The table's most recent rows as JSON, with its row estimate and
    /// warnings. Connect with [`SESSION_SETTINGS`] for ISO timestamps.
    pub async fn sample_table(
        &self,
        schema: &str,
        table: &str,
        config: &SamplingConfig,
    ) -> Result<Sample> {
        let info = self.table(schema, table).await?;
        let columns = self.columns(schema, table).await?;
        let indexes = self.indexes(schema, table).await?;
        let limiter = RateLimiter::unlimited();
        sample::sample(self, &limiter, &info, &columns, &indexes, config).await
    }

    /// Surveys every database of the server (see [`MultiDatabaseConfig`]).
    pub async fn collect_all_databases(&self, config: &MultiDatabaseConfig) -> Result<Survey> {
        collect::collect_all(self, config).await
    }
}

fn one<'a>(schema: &'a str, table: &'a str) -> Scope<'a> {
    Scope {
        include_system: true,
        schema: Some(schema),
        table: Some(table),
    }
}

fn key(schema: &str, table: &str) -> (String, String) {
    (schema.to_owned(), table.to_owned())
}
