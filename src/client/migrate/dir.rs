//! Reading a migrations directory: file names, versions, pairs of up and
//! down files, checksums.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Migration, MigrationError};
use crate::{Error, Result};

/// The migrations of `dir` (every `.sql` file in it, by name), by version.
pub(super) fn migrations_in(dir: &Path) -> Result<Vec<Migration>> {
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
    parse_files(&files)
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
    use super::super::{MigrationError, Migrations};
    use crate::Error;

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
}
