//! What a survey reports. Every list is sorted and every map ordered, so
//! the JSON of two surveys of the same server differs only where the server
//! did.

use std::time::SystemTime;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::glob::Glob;

/// The server a client talks to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    /// `version()`.
    pub version: String,
    /// `server_version_num`, e.g. 150004.
    pub version_num: i32,
    /// `current_user`.
    pub user: String,
    /// Whether that role is a superuser.
    pub superuser: bool,
    /// The address the server answered on (`inet_server_addr()`; `None`
    /// over a Unix socket). Never the password.
    pub host: Option<String>,
    /// The port it answered on (`inet_server_port()`).
    pub port: Option<i32>,
}

/// One database of the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DatabaseInfo {
    /// Its name.
    pub name: String,
    /// The owning role.
    pub owner: String,
    /// Server encoding, e.g. `UTF8`.
    pub encoding: String,
    /// `LC_COLLATE`.
    pub collate: String,
    /// `LC_CTYPE`.
    pub ctype: String,
    /// Size on disk; `None` when the role may not connect (PostgreSQL
    /// refuses to tell).
    pub size_bytes: Option<i64>,
    /// `datistemplate`.
    pub is_template: bool,
    /// `template0` or `template1`.
    pub is_system: bool,
    /// `datallowconn`.
    pub allow_connections: bool,
    /// `has_database_privilege(..., 'CONNECT')` for the current role.
    pub can_connect: bool,
}

/// Which databases [`list_databases`](crate::Client::list_databases) returns.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Keep `template0` and `template1` (excluded by default).
    pub include_system: bool,
    /// Leave out databases whose name matches any of these globs.
    pub exclude: Vec<Glob>,
}

impl ListOptions {
    /// Excludes names matching `pattern` (`*`, `?`, `[...]`).
    pub fn exclude(mut self, pattern: &str) -> Self {
        self.exclude.push(Glob::new(pattern));
        self
    }
}

/// The databases listed and how many were left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DatabaseList {
    /// Sorted by name.
    pub databases: Vec<DatabaseInfo>,
    /// System databases left out.
    pub excluded_system: usize,
    /// Databases left out by an exclude pattern.
    pub excluded_by_pattern: usize,
}

/// What kind of relation a table is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// An ordinary table (`r`).
    Table,
    /// A partitioned table (`p`).
    PartitionedTable,
    /// A view (`v`).
    View,
    /// A materialized view (`m`).
    MaterializedView,
    /// A foreign table (`f`).
    ForeignTable,
}

/// A table, view or other relation rows can be read from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableInfo {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: TableKind,
    /// The planner's row estimate (`reltuples`); `None` when never analyzed
    /// or not a table.
    pub row_estimate: Option<i64>,
}

/// A column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColumnInfo {
    /// Its name.
    pub name: String,
    /// Its type as SQL writes it (`format_type`), e.g. `numeric(12,2)`.
    pub data_type: String,
    /// The underlying type's name (`pg_type.typname`, through domains),
    /// e.g. `numeric`, `_int4` for `int4[]`.
    pub type_name: String,
    /// Whether it may be NULL.
    pub nullable: bool,
    /// Its default expression.
    pub default: Option<String>,
    /// `always` or `by default` for identity columns.
    pub identity: Option<String>,
    /// `stored` for generated columns.
    pub generated: Option<String>,
}

/// An index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IndexInfo {
    /// Its name.
    pub name: String,
    /// Key columns in order (an expression's text for expression columns).
    pub columns: Vec<String>,
    /// `UNIQUE`.
    pub unique: bool,
    /// The primary key's index.
    pub primary: bool,
}

/// A foreign key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForeignKey {
    /// The constraint's name.
    pub name: String,
    /// The referencing columns, in order.
    pub columns: Vec<String>,
    /// The referenced table's schema.
    pub referenced_schema: String,
    /// The referenced table.
    pub referenced_table: String,
    /// The referenced columns, in order.
    pub referenced_columns: Vec<String>,
    /// `no action`, `restrict`, `cascade`, `set null` or `set default`.
    pub on_update: String,
    /// Same, on delete.
    pub on_delete: String,
}

/// How "most recent" rows are found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum OrderingStrategy {
    /// By the primary key, all its columns in key order.
    PrimaryKey {
        /// The key's columns.
        columns: Vec<String>,
    },
    /// By a creation or update timestamp.
    Timestamp {
        /// The column.
        column: String,
    },
    /// By a serial or identity column.
    Serial {
        /// The column.
        column: String,
    },
    /// Nothing to order by: rows in an order that looks random but is a
    /// hash of each row's text and the seed, so the same seed samples the
    /// same rows of the same data, live or replayed.
    Random {
        /// [`SamplingConfig::seed`].
        seed: u64,
    },
}

/// How many rows to sample, and how to pick them where nothing orders them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamplingConfig {
    /// Rows per table (0: none).
    pub rows: usize,
    /// The seed of the random order of tables with no primary key,
    /// timestamp or serial column ([`OrderingStrategy::Random`]): the same
    /// seed picks the same rows of the same data. Default
    /// [`DEFAULT_SEED`].
    pub seed: u64,
}

/// The seed a survey's random order uses unless told otherwise.
pub const DEFAULT_SEED: u64 = 0;

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            rows: 10,
            seed: DEFAULT_SEED,
        }
    }
}

/// One sampled row: a JSON object keyed by column name, in column order.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleRow(pub Vec<(String, serde_json::Value)>);

impl Serialize for SampleRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A table's sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// How rows were ordered.
    pub ordering: OrderingStrategy,
    /// The ORDER BY clause used, identifiers quoted.
    pub order_by: String,
    /// The planner's row estimate (`None`: unknown).
    pub row_estimate: Option<i64>,
    /// The most recent rows first.
    pub rows: Vec<SampleRow>,
    /// Random fallback, empty table, unknown estimate.
    pub warnings: Vec<String>,
}

/// Where survey timestamps come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock; durations measured.
    #[default]
    System,
    /// This instant for `collected_at` and zero durations, so two surveys
    /// of the same recording are identical byte for byte.
    Fixed(SystemTime),
}

/// What [`collect_all_databases`](crate::Client::collect_all_databases) does.
#[derive(Clone, Debug)]
pub struct MultiDatabaseConfig {
    /// Which databases.
    pub list: ListOptions,
    /// Include `pg_*` and `information_schema` schemas.
    pub include_system_schemas: bool,
    /// Rows sampled per table.
    pub sampling: SamplingConfig,
    /// One limit for every query of the survey, across databases (0: none;
    /// negative, not finite or under one a day: refused, see
    /// [`RateLimiter::new`](crate::survey::RateLimiter::new)).
    pub queries_per_second: f64,
    /// Databases collected at once (at least 1).
    pub max_concurrency: usize,
    /// Keep going after a database fails (recording the failure).
    pub continue_on_error: bool,
    /// Timestamps.
    pub clock: Clock,
    /// Called as each database finishes (the CLI prints a line).
    pub progress: Option<Progress>,
}

/// What a [`Progress`] callback is told: the database, how long it took,
/// and its failure if it failed.
pub type ProgressFn = dyn Fn(&str, std::time::Duration, Option<&Failure>) + Send + Sync;

/// A callback told about each database as it finishes.
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<ProgressFn>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

impl Default for MultiDatabaseConfig {
    fn default() -> Self {
        MultiDatabaseConfig {
            list: ListOptions::default(),
            include_system_schemas: false,
            sampling: SamplingConfig::default(),
            queries_per_second: 0.0,
            max_concurrency: 4,
            continue_on_error: true,
            clock: Clock::System,
            progress: None,
        }
    }
}

/// A failure, with the server's SQLSTATE when there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The database.
    pub database: String,
    /// SQLSTATE.
    pub sqlstate: Option<String>,
    /// The message.
    pub message: String,
}

/// A table as surveyed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableSurvey {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: TableKind,
    /// Columns in order.
    pub columns: Vec<ColumnInfo>,
    /// Indexes by name.
    pub indexes: Vec<IndexInfo>,
    /// Foreign keys by name.
    pub foreign_keys: Vec<ForeignKey>,
    /// The sample, when it could be read.
    pub sample: Option<Sample>,
    /// Why it could not be read (e.g. 42501); the survey goes on.
    pub error: Option<Failure>,
}

/// A schema as surveyed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SchemaSurvey {
    /// Its name.
    pub name: String,
    /// Its tables by name.
    pub tables: Vec<TableSurvey>,
}

/// A database as surveyed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DatabaseSurvey {
    /// What the server lists about it.
    #[serde(flatten)]
    pub info: DatabaseInfo,
    /// How long it took (0 with a fixed clock).
    pub duration_ms: u64,
    /// Its schemas by name.
    pub schemas: Vec<SchemaSurvey>,
}

/// Counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Databases the survey set out to collect.
    pub total: usize,
    /// Collected.
    pub collected: usize,
    /// Failed.
    pub failed: usize,
    /// System databases left out.
    pub excluded_system: usize,
    /// Left out by an exclude pattern.
    pub excluded_by_pattern: usize,
}

/// A whole server surveyed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Survey {
    /// `pgsim-survey/1`.
    pub format: &'static str,
    /// When (RFC 3339, UTC).
    pub collected_at: String,
    /// How long it took (0 with a fixed clock).
    pub duration_ms: u64,
    /// The server.
    pub server: ServerInfo,
    /// Counts.
    pub summary: Summary,
    /// Databases collected, by name.
    pub databases: Vec<DatabaseSurvey>,
    /// Databases that failed, by name.
    pub failures: Vec<Failure>,
}
