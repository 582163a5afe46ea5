//! Backup and restore through `pg_dump` and `pg_restore`, verified by the
//! row count of every table before the dump and after the restore.
//!
//! The tools get their connection settings through the environment of the
//! child process (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`,
//! `PGSSLMODE`, `PGOPTIONS`, ...), never on their command line, so the
//! password never shows in `ps`. In Record and Replay mode they connect to
//! the client's recorder or mock server (plaintext) with the client's
//! server settings, `pgsim.scope` among them: their sessions are recorded
//! and replayed with the client's own.
//!
//! ```no_run
//! # async fn demo(client: &pgsim::Client) -> pgsim::Result<()> {
//! use pgsim::client::{BackupOptions, RestoreOptions};
//! let backup = client.backup(&BackupOptions::new("/tmp/shop.dump").schema("shop")).await?;
//! let verified = client.restore(&backup, &RestoreOptions::new("shop_copy")).await?;
//! for t in verified {
//!     println!("{}.{}: {} rows", t.schema, t.table, t.rows);
//! }
//! # Ok(()) }
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Client;
use crate::survey::TableKind;
use crate::validate::{quote_identifier, quote_qualified};
use crate::Result;

mod tool;
use tool::{conninfo_dbname, run_tool};

/// The counts file's format.
const COUNTS_FORMAT: u32 = 1;

/// What went wrong backing up or restoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The tool could not be started (not installed, not on `PATH`).
    #[error(
        "cannot run {}: {source} (install PostgreSQL's client tools or give its path in the options)",
        tool.display()
    )]
    Start {
        /// The binary.
        tool: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The tool exited with an error.
    #[error("{} failed ({status}): {stderr}", tool.display())]
    Tool {
        /// The binary.
        tool: PathBuf,
        /// How it exited.
        status: String,
        /// What it wrote to stderr, passwords redacted.
        stderr: String,
    },
    /// The counts file next to a dump could not be written or read.
    #[error("counts file {}: {reason}", file.display())]
    CountsFile {
        /// The file (`<dump>.counts.json`).
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The restored database does not hold the rows the backup counted.
    #[error(
        "restore into {database} differs from the backup: {}",
        describe(differences)
    )]
    Mismatch {
        /// The target database.
        database: String,
        /// Each table whose count differs, or that is missing.
        differences: Vec<CountDifference>,
    },
}

/// A table whose row count after a restore is not the one before the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CountDifference {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub table: String,
    /// Rows before the dump.
    pub before: i64,
    /// Rows after the restore (`None`: no such table).
    pub after: Option<i64>,
}

fn describe(differences: &[CountDifference]) -> String {
    let each: Vec<String> = differences
        .iter()
        .map(|d| {
            let after = d.after.map_or("missing".to_owned(), |n| n.to_string());
            format!(
                "{}: {} before, {after} after",
                quote_qualified(&d.schema, &d.table),
                d.before
            )
        })
        .collect();
    each.join("; ")
}

/// A table's row count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TableCount {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub table: String,
    /// Its rows (`count(*)`).
    pub rows: i64,
}

/// What [`Client::backup`] made: the dump file and the counts taken before
/// it (also in `<file>.counts.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Backup {
    /// The dump (`pg_dump --format=custom`).
    #[serde(skip)]
    pub file: PathBuf,
    /// The database dumped.
    pub database: String,
    /// The schema dumped (`None`: the whole database).
    pub schema: Option<String>,
    /// Every table in scope, by schema and name, counted before the dump.
    pub counts: Vec<TableCount>,
}

/// The counts file's content.
#[derive(Serialize, Deserialize)]
struct CountsFile {
    format_version: u32,
    #[serde(flatten)]
    backup: Backup,
}

impl Backup {
    /// The counts file next to a dump: `<file>.counts.json`.
    pub fn counts_path(file: &Path) -> PathBuf {
        let mut name = file.as_os_str().to_owned();
        name.push(".counts.json");
        PathBuf::from(name)
    }

    /// A backup from its dump file, with the counts [`Client::backup`]
    /// wrote next to it.
    pub fn from_file(file: impl Into<PathBuf>) -> Result<Backup> {
        let file = file.into();
        let counts = Self::counts_path(&file);
        let bad = |reason: String| BackupError::CountsFile {
            file: counts.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&counts).map_err(|e| bad(e.to_string()))?;
        let read: CountsFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if read.format_version != COUNTS_FORMAT {
            return Err(bad(format!(
                "format_version {} (this pgsim reads {COUNTS_FORMAT})",
                read.format_version
            ))
            .into());
        }
        Ok(Backup {
            file,
            ..read.backup
        })
    }

    fn write_counts(&self) -> Result<()> {
        let counts = Self::counts_path(&self.file);
        let content = CountsFile {
            format_version: COUNTS_FORMAT,
            backup: self.clone(),
        };
        let bad = |reason: String| BackupError::CountsFile {
            file: counts.clone(),
            reason,
        };
        let text = serde_json::to_string_pretty(&content).map_err(|e| bad(e.to_string()))?;
        std::fs::write(&counts, text + "\n").map_err(|e| bad(e.to_string()))?;
        Ok(())
    }
}

/// What to back up, and where.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    file: PathBuf,
    schema: Option<String>,
    pg_dump: PathBuf,
}

impl BackupOptions {
    /// The client's whole database into `file` (its directory must exist),
    /// with `pg_dump` from `PATH`.
    pub fn new(file: impl Into<PathBuf>) -> Self {
        BackupOptions {
            file: file.into(),
            schema: None,
            pg_dump: "pg_dump".into(),
        }
    }

    /// Only this schema (its exact name: it is quoted for `pg_dump`).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The `pg_dump` binary to run.
    pub fn pg_dump(mut self, path: impl Into<PathBuf>) -> Self {
        self.pg_dump = path.into();
        self
    }
}

/// Where to restore, and with what.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    database: String,
    pg_restore: PathBuf,
}

impl RestoreOptions {
    /// Into `database` (on the client's server; it must exist), with
    /// `pg_restore` from `PATH`.
    pub fn new(database: impl Into<String>) -> Self {
        RestoreOptions {
            database: database.into(),
            pg_restore: "pg_restore".into(),
        }
    }

    /// The `pg_restore` binary to run.
    pub fn pg_restore(mut self, path: impl Into<PathBuf>) -> Self {
        self.pg_restore = path.into();
        self
    }
}

impl Client {
    /// Counts the rows of every table in scope (the schema, or every user
    /// schema), then runs `pg_dump --format=custom` into the options' file
    /// and writes the counts next to it (`<file>.counts.json`).
    pub async fn backup(&self, options: &BackupOptions) -> Result<Backup> {
        let counts = count_tables(self, options.schema.as_deref()).await?;
        let mut args: Vec<OsString> = vec![
            "--format=custom".into(),
            "--no-password".into(),
            "--file".into(),
            options.file.clone().into(),
        ];
        if let Some(schema) = &options.schema {
            args.push("--schema".into());
            args.push(quote_identifier(schema).into());
        }
        let database = self.url().database().to_owned();
        run_tool(self, &options.pg_dump, &args, &database).await?;
        let backup = Backup {
            file: options.file.clone(),
            database,
            schema: options.schema.clone(),
            counts,
        };
        backup.write_counts()?;
        Ok(backup)
    }

    /// Runs `pg_restore --no-owner --exit-on-error --single-transaction`
    /// of the backup into the options' database, then counts the backup's
    /// tables there: any difference is [`BackupError::Mismatch`]. Returns
    /// the counts, which equal the backup's.
    pub async fn restore(
        &self,
        backup: &Backup,
        options: &RestoreOptions,
    ) -> Result<Vec<TableCount>> {
        let args: Vec<OsString> = vec![
            "--no-owner".into(),
            "--exit-on-error".into(),
            "--single-transaction".into(),
            "--no-password".into(),
            "--dbname".into(),
            conninfo_dbname(&options.database).into(),
            backup.file.clone().into(),
        ];
        run_tool(self, &options.pg_restore, &args, &options.database).await?;
        let target = self.connect_to_database(&options.database).await?;
        let counted = verify(&target, backup).await;
        target.close().await?;
        let (after, differences) = counted?;
        if differences.is_empty() {
            Ok(after)
        } else {
            Err(BackupError::Mismatch {
                database: options.database.clone(),
                differences,
            }
            .into())
        }
    }
}

/// The backup's tables counted in `target`: the counts, and how they
/// differ from the backup's.
async fn verify(
    target: &Client,
    backup: &Backup,
) -> Result<(Vec<TableCount>, Vec<CountDifference>)> {
    let after = count_tables(target, backup.schema.as_deref()).await?;
    let mut differences = Vec::new();
    for before in &backup.counts {
        let found = after
            .iter()
            .find(|a| a.schema == before.schema && a.table == before.table)
            .map(|a| a.rows);
        if found != Some(before.rows) {
            differences.push(CountDifference {
                schema: before.schema.clone(),
                table: before.table.clone(),
                before: before.rows,
                after: found,
            });
        }
    }
    Ok((after, differences))
}

/// Every table (ordinary or partitioned) of `schema`, or of every user
/// schema, with its `count(*)`, by schema and name.
async fn count_tables(client: &Client, schema: Option<&str>) -> Result<Vec<TableCount>> {
    let schemas = match schema {
        Some(s) => vec![s.to_owned()],
        None => client.schemas(false).await?,
    };
    let mut counts = Vec::new();
    for schema in &schemas {
        for t in client.tables(schema).await? {
            if !matches!(t.kind, TableKind::Table | TableKind::PartitionedTable) {
                continue;
            }
            let sql = format!("select count(*) from {}", quote_qualified(schema, &t.name));
            let rows: i64 = client
                .on(super::Route::Primary)
                .query_one(&sql, &[])
                .await?
                .try_get(0)?;
            counts.push(TableCount {
                schema: schema.clone(),
                table: t.name,
                rows,
            });
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn the_counts_file_sits_next_to_the_dump() {
        assert_eq!(
            Backup::counts_path(Path::new("/tmp/a.dump")),
            Path::new("/tmp/a.dump.counts.json")
        );
    }

    #[test]
    fn counts_round_trip_through_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let backup = Backup {
            file: dir.path().join("x.dump"),
            database: "shop".into(),
            schema: Some("s".into()),
            counts: vec![TableCount {
                schema: "s".into(),
                table: "t".into(),
                rows: 3,
            }],
        };
        backup.write_counts().unwrap();
        assert_eq!(Backup::from_file(&backup.file).unwrap(), backup);
    }

    #[test]
    fn a_missing_counts_file_names_it() {
        let e = Backup::from_file("/nonexistent/x.dump").unwrap_err();
        assert!(
            matches!(&e, Error::Backup(BackupError::CountsFile { .. })),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("/nonexistent/x.dump.counts.json"),
            "{e}"
        );
    }

    #[test]
    fn mismatches_list_table_before_and_after() {
        let e = BackupError::Mismatch {
            database: "copy".into(),
            differences: vec![
                CountDifference {
                    schema: "s".into(),
                    table: "t".into(),
                    before: 3,
                    after: Some(2),
                },
                CountDifference {
                    schema: "s".into(),
                    table: "u".into(),
                    before: 1,
                    after: None,
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "restore into copy differs from the backup: s.t: 3 before, 2 after; s.u: 1 before, missing after"
        );
    }
}
