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

use sha2::{Digest, Sha256};

use super::{Client, Route, Transaction};
use crate::{Error, Result};

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
        let read_dir = |source| MigrationError::ReadDir {
            dir: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir)? {
            let path = entry.map_err(read_dir)?.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "sql") {
                files.push(path);
            }
        }
        files.sort();
        Ok(Migrations {
            dir: dir.to_owned(),
            migrations: parse_files(&files)?,
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
            let applied_now = client
                .transaction(async |tx| {
                    let versions = locked_versions(tx).await?;
                    if versions.contains(&m.version) {
                        return Ok(false);
                    }
                    if let Some(&newest) = versions.last().filter(|&&v| v > m.version) {
                        return Err(out_of_order(m.version, &m.up, newest));
                    }
                    tx.batch_execute(&m.up_sql)
                        .await
                        .map_err(|e| failed(m.version, &m.up, e))?;
                    tx.execute(INSERT, &[&m.version, &m.name, &m.checksum])
                        .await?;
                    Ok(true)
                })
                .await?;
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
            let reverted = client
                .transaction(async |tx| {
                    let versions = locked_versions(tx).await?;
                    if !versions.contains(&m.version) {
                        return Ok(false);
                    }
                    if let Some(&newest) = versions.last().filter(|&&v| v > m.version) {
                        return Err(out_of_order(m.version, file, newest));
                    }
                    tx.batch_execute(sql)
                        .await
                        .map_err(|e| failed(m.version, file, e))?;
                    tx.execute(DELETE, &[&m.version]).await?;
                    Ok(true)
                })
                .await?;
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
    let rows = tx
        .query("select version from pgsim_migrations order by version", &[])
        .await?;
    rows.iter()
        .map(|r| r.try_get::<_, i64>(0).map_err(Error::from))
        .collect()
}

/// Up or down, from a file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// `<version>_<name>.(up|down).sql`: its version, name and direction.
fn parse_name(file_name: &str) -> std::result::Result<(i64, &str, Direction), String> {
    let (stem, direction) = if let Some(stem) = file_name.strip_suffix(".up.sql") {
        (stem, Direction::Up)
    } else if let Some(stem) = file_name.strip_suffix(".down.sql") {
        (stem, Direction::Down)
    } else {
        return Err("a migration file is named <version>_<name>.up.sql or .down.sql".into());
    };
    let Some((digits, name)) = stem.split_once('_') else {
        return Err("no `_` between the version and the name (<version>_<name>)".into());
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the version {digits:?} is not decimal digits"));
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("the name {name:?} is not [A-Za-z0-9_]+"));
    }
    let version = digits
        .parse::<i64>()
        .map_err(|_| format!("the version {digits} is larger than a bigint"))?;
    Ok((version, name, direction))
}

/// The migrations in `files` (every `.sql` file of the directory), by
/// version.
fn parse_files(files: &[PathBuf]) -> Result<Vec<Migration>> {
    let bad = |file: &Path, reason: String| -> Error {
        MigrationError::BadFile {
            file: file.to_owned(),
            reason,
        }
        .into()
    };
    let mut ups: BTreeMap<i64, Migration> = BTreeMap::new();
    let mut downs: Vec<(i64, String, &PathBuf)> = Vec::new();
    for file in files {
        let file_name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad(file, "the file name is not UTF-8".into()))?;
        let (version, name, direction) = parse_name(file_name).map_err(|r| bad(file, r))?;
        match direction {
            Direction::Up => {
                let bytes = read(file)?;
                let checksum = hex::encode(Sha256::digest(&bytes));
                let up_sql =
                    String::from_utf8(bytes).map_err(|_| bad(file, "not UTF-8 text".into()))?;
                if let Some(other) = ups.get(&version) {
                    return Err(bad(
                        file,
                        format!("version {version} also has {}", other.up.display()),
                    ));
                }
                ups.insert(
                    version,
                    Migration {
                        version,
                        name: name.to_owned(),
                        up: file.clone(),
                        down: None,
                        checksum,
                        up_sql,
                        down_sql: None,
                    },
                );
            }
            Direction::Down => downs.push((version, name.to_owned(), file)),
        }
    }
    for (version, name, file) in downs {
        let Some(up) = ups.get_mut(&version).filter(|m| m.name == name) else {
            return Err(bad(
                file,
                format!("a down file without its up file {version}_{name}.up.sql"),
            ));
        };
        if let Some(other) = &up.down {
            return Err(bad(
                file,
                format!("version {version} also has {}", other.display()),
            ));
        }
        let sql = String::from_utf8(read(file)?).map_err(|_| bad(file, "not UTF-8 text".into()))?;
        up.down = Some(file.clone());
        up.down_sql = Some(sql);
    }
    Ok(ups.into_values().collect())
}

fn read(file: &Path) -> Result<Vec<u8>> {
    std::fs::read(file).map_err(|source| {
        MigrationError::ReadFile {
            file: file.to_owned(),
            source,
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn bad_file(files: &[(&str, &str)]) -> (String, String) {
        let dir = dir_with(files);
        match Migrations::from_dir(dir.path()) {
            Err(Error::Migration(MigrationError::BadFile { file, reason })) => (
                file.file_name().unwrap().to_string_lossy().into_owned(),
                reason,
            ),
            other => panic!("expected a bad file, got {other:?}"),
        }
    }

    #[test]
    fn migrations_are_ordered_by_numeric_version() {
        let dir = dir_with(&[
            ("10_ten.up.sql", "select 10"),
            ("9_nine.up.sql", "select 9"),
            ("0002_two.up.sql", "select 2"),
            ("0002_two.down.sql", "select -2"),
            ("README.md", "not a migration"),
        ]);
        let m = Migrations::from_dir(dir.path()).unwrap();
        let versions: Vec<(i64, &str)> = m
            .migrations()
            .iter()
            .map(|m| (m.version, m.name.as_str()))
            .collect();
        assert_eq!(versions, [(2, "two"), (9, "nine"), (10, "ten")]);
        assert!(m.migrations()[0].down.is_some());
        assert!(m.migrations()[1].down.is_none());
        assert_eq!(m.migrations()[0].down_sql.as_deref(), Some("select -2"));
    }

    #[test]
    fn checksum_is_sha256_hex_of_the_up_file() {
        let dir = dir_with(&[("1_a.up.sql", "abc")]);
        let m = Migrations::from_dir(dir.path()).unwrap();
        assert_eq!(
            m.migrations()[0].checksum,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn badly_named_sql_files_are_errors_naming_the_file() {
        for name in [
            "1_a.sql",
            "a_b.up.sql",
            "1.up.sql",
            "_x.up.sql",
            "1_.up.sql",
            "1_a-b.up.sql",
            "99999999999999999999_big.up.sql",
        ] {
            let (file, reason) = bad_file(&[(name, "select 1")]);
            assert_eq!(file, name, "{reason}");
        }
    }

    #[test]
    fn a_version_with_two_up_files_is_an_error() {
        let (file, reason) = bad_file(&[("1_a.up.sql", ""), ("01_b.up.sql", "")]);
        assert_eq!(file, "1_a.up.sql");
        assert!(reason.contains("01_b.up.sql"), "{reason}");
    }

    #[test]
    fn a_down_without_its_up_is_an_error() {
        let (file, reason) = bad_file(&[("1_a.up.sql", ""), ("2_b.down.sql", "")]);
        assert_eq!(file, "2_b.down.sql");
        assert!(reason.contains("2_b.up.sql"), "{reason}");
        let (file, _) = bad_file(&[("1_a.up.sql", ""), ("1_b.down.sql", "")]);
        assert_eq!(file, "1_b.down.sql");
    }

    #[test]
    fn a_missing_directory_names_it() {
        let e = Migrations::from_dir("/nonexistent/pgsim-migrations").unwrap_err();
        assert!(
            matches!(&e, Error::Migration(MigrationError::ReadDir { .. })),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("/nonexistent/pgsim-migrations"),
            "{e}"
        );
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
