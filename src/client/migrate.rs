//! Versioned migrations with rollback: a directory of
//! `<version>_<name>.up.sql` / `<version>_<name>.down.sql` files, applied
//! in version order, each in its own transaction together with its row in
//! the `pgsim_migrations` table (version, name, sha256 of the up file,
//! applied_at).
//!
//! Every transaction takes `pg_advisory_xact_lock(`[`LOCK_KEY`]`)` first and
//! reads the table again under the lock, so two migrators never apply (or
//! revert) the same version. Nothing runs while an applied migration's file
//! has changed or is gone.
//!
//! ```no_run
//! # async fn demo(client: &pgsim::Client) -> pgsim::Result<()> {
//! use pgsim::client::Migrations;
//! let migrations = Migrations::from_dir("migrations")?;
//! let applied = migrations.up(client, None).await?;
//! for s in migrations.status(client).await? {
//!     println!("{s}");
//! }
//! let reverted = migrations.down(client, 1).await?;
//! # let _ = (applied, reverted);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Client, Route, Transaction};
use crate::{Error, Result};

mod dir;

/// The table that records applied migrations.
pub const MIGRATIONS_TABLE: &str = "pgsim_migrations";

/// The advisory lock every migration transaction takes first
/// (`pg_advisory_xact_lock`): the bytes of `pgsim_mg`.
pub const LOCK_KEY: i64 = 0x7067_7369_6d5f_6d67;

const CREATE_TABLE: &str = "create table if not exists pgsim_migrations (\
     version bigint primary key, \
     name text not null, \
     checksum text not null, \
     applied_at timestamptz not null default now())";
const LOCK: &str = "select pg_advisory_xact_lock($1)";
const APPLIED: &str = "select version, name, checksum from pgsim_migrations order by version";
const INSERT: &str = "insert into pgsim_migrations (version, name, checksum) values ($1, $2, $3)";
const DELETE: &str = "delete from pgsim_migrations where version = $1";

/// What is wrong with a migrations directory, or with applying it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// The directory could not be listed.
    #[error("cannot read the migrations directory {}: {source}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A migration file could not be read.
    #[error("cannot read migration file {}: {source}", file.display())]
    ReadFile {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A `.sql` file that is not a valid migration file: a bad name, a
    /// version given twice, a down file without its up file, or not UTF-8.
    #[error("migration file {}: {reason}", file.display())]
    BadFile {
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An applied migration's up file is not what was applied.
    #[error(
        "migration {version} was applied from a different {}: recorded checksum {recorded}, \
         the file's is {found}; restore the file (a changed migration needs a new version)",
        file.display()
    )]
    Changed {
        /// Its version.
        version: i64,
        /// Its up file.
        file: PathBuf,
        /// The checksum in `pgsim_migrations`.
        recorded: String,
        /// The checksum of the file now.
        found: String,
    },
    /// A version recorded as applied has no up file in the directory.
    #[error(
        "migration {version} ({name}) is applied but {} has no {version}_{name}.up.sql",
        dir.display()
    )]
    Missing {
        /// Its version.
        version: i64,
        /// Its name as recorded.
        name: String,
        /// The directory.
        dir: PathBuf,
    },
    /// A pending migration is older than the newest applied one (for
    /// `down`: a newer migration was applied by another migrator meanwhile).
    #[error(
        "migration {version} ({}) is out of order: migration {newest_applied} is already applied",
        file.display()
    )]
    OutOfOrder {
        /// The pending (or to-be-reverted) version.
        version: i64,
        /// Its file.
        file: PathBuf,
        /// The newest applied version.
        newest_applied: i64,
    },
    /// `down` needs a down file the directory does not have.
    #[error("migration {version} cannot be reverted: {} does not exist", file.display())]
    NoDown {
        /// Its version.
        version: i64,
        /// The down file it needs.
        file: PathBuf,
    },
    /// A migration's SQL failed; its transaction was rolled back.
    #[error("migration {version} ({}) failed and was rolled back: {source}", file.display())]
    Failed {
        /// Its version.
        version: i64,
        /// The up or down file that failed.
        file: PathBuf,
        /// The server's error (its SQLSTATE: [`Error::code`]).
        #[source]
        source: Box<Error>,
    },
}

/// One migration: its version, name and files.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migration {
    /// Its version (the numeric value of the file name's digits).
    pub version: i64,
    /// The name after the version.
    pub name: String,
    /// The up file.
    pub up: PathBuf,
    /// The down file, if there is one.
    pub down: Option<PathBuf>,
    /// sha256 (hex) of the up file's bytes.
    pub checksum: String,
    up_sql: String,
    down_sql: Option<String>,
}

/// Whether a migration is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationState {
    /// Recorded in `pgsim_migrations`.
    Applied,
    /// Not applied yet.
    Pending,
}

/// One line of [`Migrations::status`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// Its version.
    pub version: i64,
    /// Its name (as recorded, for an applied version without a file).
    pub name: String,
    /// Applied or pending.
    pub state: MigrationState,
    /// Applied from an up file whose checksum differs from the file's now.
    pub checksum_changed: bool,
    /// Applied, but its up file is not in the directory.
    pub missing_file: bool,
}

impl std::fmt::Display for MigrationStatus {
    /// `2 add_price applied`, with `(changed)` or `(file missing)` after.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
        };
        write!(f, "{} {} {state}", self.version, self.name)?;
        if self.checksum_changed {
            write!(f, " (changed)")?;
        }
        if self.missing_file {
            write!(f, " (file missing)")?;
        }
        Ok(())
    }
}

/// A directory of migrations, in version order.
#[derive(Clone, Debug)]
pub struct Migrations {
    dir: PathBuf,
    migrations: Vec<Migration>,
}

/// A recorded row of `pgsim_migrations`.
#[derive(Debug)]
struct Applied {
    name: String,
    checksum: String,
}

impl Migrations {
    /// Reads `dir`: every `<version>_<name>.up.sql` and `.down.sql` (version:
    /// decimal digits, its value unique; name: `[A-Za-z0-9_]+`). Files not
    /// ending in `.sql` are ignored; any other `.sql` file, a version with
    /// two up files, or a down file without its up file is
    /// [`MigrationError::BadFile`] naming the file.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Migrations> {
        let dir = dir.as_ref();
        Ok(Migrations {
            dir: dir.to_owned(),
            migrations: dir::migrations_in(dir)?,
        })
    }

    /// The directory it was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The migrations, by version.
    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// Every migration of the directory, applied or pending, and every
    /// applied version whose file is gone, by version. Creates
    /// `pgsim_migrations` if it is missing.
    pub async fn status(&self, client: &Client) -> Result<Vec<MigrationStatus>> {
        let applied = applied(client).await?;
        let mut status: BTreeMap<i64, MigrationStatus> = BTreeMap::new();
        for m in &self.migrations {
            let recorded = applied.get(&m.version);
            status.insert(
                m.version,
                MigrationStatus {
                    version: m.version,
                    name: m.name.clone(),
                    state: match recorded {
                        Some(_) => MigrationState::Applied,
                        None => MigrationState::Pending,
                    },
                    checksum_changed: recorded.is_some_and(|a| a.checksum != m.checksum),
                    missing_file: false,
                },
            );
        }
        for (&version, a) in &applied {
            status.entry(version).or_insert_with(|| MigrationStatus {
                version,
                name: a.name.clone(),
                state: MigrationState::Applied,
                checksum_changed: false,
                missing_file: true,
            });
        }
        Ok(status.into_values().collect())
    }

    /// Checks that every applied migration's up file is there, unchanged:
    /// [`MigrationError::Changed`] or [`MigrationError::Missing`] otherwise.
    pub async fn check(&self, client: &Client) -> Result<()> {
        self.check_applied(&applied(client).await?)
    }

    /// Applies the pending migrations in version order (the first `n` of
    /// them with `Some(n)`), each in its own transaction; returns the
    /// versions applied. Refuses to start when [`check`](Self::check) fails
    /// or a pending version is older than the newest applied one
    /// ([`MigrationError::OutOfOrder`]); stops at the first that fails
    /// ([`MigrationError::Failed`]), after the ones before it committed.
    pub async fn up(&self, client: &Client, n: Option<usize>) -> Result<Vec<i64>> {
        let applied = applied(client).await?;
        self.check_applied(&applied)?;
        let newest = applied.keys().next_back().copied();
        let pending: Vec<&Migration> = self
            .migrations
            .iter()
            .filter(|m| !applied.contains_key(&m.version))
            .collect();
        if let (Some(newest), Some(first)) = (newest, pending.first()) {
            if first.version < newest {
                return Err(out_of_order(first.version, &first.up, newest));
            }
        }
        let mut done = Vec::new();
        for m in pending.into_iter().take(n.unwrap_or(usize::MAX)) {
            let decide = |versions: &[i64]| {
                if versions.contains(&m.version) {
                    return Ok(false);
                }
                if let Some(&newest) = versions.last().filter(|&&v| v > m.version) {
                    return Err(out_of_order(m.version, &m.up, newest));
                }
                Ok(true)
            };
            let step = Step {
                version: m.version,
                file: &m.up,
                sql: &m.up_sql,
                record: INSERT,
                params: &[&m.version, &m.name, &m.checksum],
            };
            let applied_now = step.run(client, decide).await?;
            if applied_now {
                done.push(m.version);
            }
        }
        Ok(done)
    }

    /// Reverts the `n` newest applied migrations, newest first, each with
    /// its down file in its own transaction; returns the versions reverted.
    /// Refuses to start when [`check`](Self::check) fails or one of them
    /// has no down file ([`MigrationError::NoDown`]).
    pub async fn down(&self, client: &Client, n: usize) -> Result<Vec<i64>> {
        let applied = applied(client).await?;
        self.check_applied(&applied)?;
        let mut revert = Vec::new();
        for version in applied.keys().rev().take(n) {
            let m = self
                .get(*version)
                .ok_or_else(|| missing(self, *version, &applied))?;
            let (Some(file), Some(sql)) = (&m.down, &m.down_sql) else {
                return Err(MigrationError::NoDown {
                    version: m.version,
                    file: self.dir.join(format!("{}_{}.down.sql", m.version, m.name)),
                }
                .into());
            };
            revert.push((m, file, sql));
        }
        let mut done = Vec::new();
        for (m, file, sql) in revert {
            let decide = |versions: &[i64]| {
                if !versions.contains(&m.version) {
                    return Ok(false);
                }
                if let Some(&newest) = versions.last().filter(|&&v| v > m.version) {
                    return Err(out_of_order(m.version, file, newest));
                }
                Ok(true)
            };
            let step = Step {
                version: m.version,
                file,
                sql,
                record: DELETE,
                params: &[&m.version],
            };
            let reverted = step.run(client, decide).await?;
            if reverted {
                done.push(m.version);
            }
        }
        Ok(done)
    }

    fn get(&self, version: i64) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.version == version)
    }

    fn check_applied(&self, applied: &BTreeMap<i64, Applied>) -> Result<()> {
        for (&version, a) in applied {
            let m = self
                .get(version)
                .ok_or_else(|| missing(self, version, applied))?;
            if m.checksum != a.checksum {
                return Err(MigrationError::Changed {
                    version,
                    file: m.up.clone(),
                    recorded: a.checksum.clone(),
                    found: m.checksum.clone(),
                }
                .into());
            }
        }
        Ok(())
    }
}

fn missing(migrations: &Migrations, version: i64, applied: &BTreeMap<i64, Applied>) -> Error {
    MigrationError::Missing {
        version,
        name: applied
            .get(&version)
            .map(|a| a.name.clone())
            .unwrap_or_default(),
        dir: migrations.dir.clone(),
    }
    .into()
}

fn out_of_order(version: i64, file: &Path, newest_applied: i64) -> Error {
    MigrationError::OutOfOrder {
        version,
        file: file.to_owned(),
        newest_applied,
    }
    .into()
}

fn failed(version: i64, file: &Path, source: Error) -> Error {
    MigrationError::Failed {
        version,
        file: file.to_owned(),
        source: Box::new(source),
    }
    .into()
}

/// The applied migrations, read from the primary after creating the table
/// if it is missing (under the lock, so two migrators do not race to
/// create it).
async fn applied(client: &Client) -> Result<BTreeMap<i64, Applied>> {
    client
        .transaction(async |tx| {
            tx.execute(LOCK, &[&LOCK_KEY]).await?;
            tx.batch_execute(CREATE_TABLE).await
        })
        .await?;
    let rows = client.on(Route::Primary).query(APPLIED, &[]).await?;
    let mut applied = BTreeMap::new();
    for row in rows {
        applied.insert(
            row.try_get::<_, i64>(0)?,
            Applied {
                name: row.try_get(1)?,
                checksum: row.try_get(2)?,
            },
        );
    }
    Ok(applied)
}

/// Takes the migration lock in `tx` and reads the applied versions again,
/// in order.
async fn locked_versions(tx: &Transaction<'_>) -> Result<Vec<i64>> {
    tx.execute(LOCK, &[&LOCK_KEY]).await?;
    versions(tx.query(VERSIONS, &[]).await?)
}

const VERSIONS: &str = "select version from pgsim_migrations order by version";

fn versions(rows: Vec<tokio_postgres::Row>) -> Result<Vec<i64>> {
    rows.iter()
        .map(|r| r.try_get::<_, i64>(0).map_err(Error::from))
        .collect()
}

/// The first line that marks a file to run outside a transaction.
pub const NO_TRANSACTION: &str = "-- pgsim:no-transaction";

/// Whether `sql` starts (after blank lines) with [`NO_TRANSACTION`].
fn outside_transaction(sql: &str) -> bool {
    sql.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.eq_ignore_ascii_case(NO_TRANSACTION))
}

/// Applying or reverting one migration: its file's SQL, then `record`
/// (the row's insert or delete) with `params`.
struct Step<'a> {
    version: i64,
    file: &'a Path,
    sql: &'a str,
    record: &'a str,
    params: super::Params<'a>,
}

impl Step<'_> {
    /// Runs the step when `decide`, shown the applied versions under the
    /// lock, says so; returns whether it ran.
    ///
    /// In one transaction with its row, under `pg_advisory_xact_lock`; or,
    /// for a file marked [`NO_TRANSACTION`] (`CREATE INDEX CONCURRENTLY`
    /// and the like), statement by statement on one connection under the
    /// session lock `pg_advisory_lock`, the row written after the last
    /// statement. A failure there leaves what ran before it applied and no
    /// row: the error says which file, and the migration can be fixed and
    /// run again.
    async fn run(&self, client: &Client, decide: impl Fn(&[i64]) -> Result<bool>) -> Result<bool> {
        if !outside_transaction(self.sql) {
            return client
                .transaction(async |tx| {
                    if !decide(&locked_versions(tx).await?)? {
                        return Ok(false);
                    }
                    tx.batch_execute(self.sql)
                        .await
                        .map_err(|e| failed(self.version, self.file, e))?;
                    tx.execute(self.record, self.params).await?;
                    Ok(true)
                })
                .await;
        }
        let conn = client.acquire().await?;
        conn.execute("select pg_advisory_lock($1)", &[&LOCK_KEY])
            .await?;
        let ran = async {
            if !decide(&versions(conn.query(VERSIONS, &[]).await?)?)? {
                return Ok(false);
            }
            // One statement per message: several in one simple query run
            // as one implicit transaction, which these statements refuse.
            for statement in crate::validate::statements(self.sql) {
                let text = self.sql[statement.range].trim();
                if statement.lexemes.is_empty() || text.is_empty() {
                    continue;
                }
                conn.batch_execute(text)
                    .await
                    .map_err(|e| failed(self.version, self.file, e))?;
            }
            conn.execute(self.record, self.params).await?;
            Ok::<_, Error>(true)
        }
        .await;
        let unlocked = conn
            .execute("select pg_advisory_unlock($1)", &[&LOCK_KEY])
            .await;
        let ran = ran?;
        unlocked?;
        Ok(ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_first_line_mark_runs_a_file_outside_a_transaction() {
        assert!(outside_transaction(
            "-- pgsim:no-transaction\ncreate index concurrently i on t (a);"
        ));
        assert!(outside_transaction(
            "\n  -- PGSIM:NO-TRANSACTION  \nselect 1"
        ));
        assert!(!outside_transaction("select 1;\n-- pgsim:no-transaction\n"));
        assert!(!outside_transaction(
            "-- pgsim:no-transaction please\nselect 1"
        ));
        assert!(!outside_transaction(""));
    }

    #[test]
    fn status_lines_say_state_and_problems() {
        let s = MigrationStatus {
            version: 2,
            name: "add_price".into(),
            state: MigrationState::Applied,
            checksum_changed: true,
            missing_file: false,
        };
        assert_eq!(s.to_string(), "2 add_price applied (changed)");
    }
}
