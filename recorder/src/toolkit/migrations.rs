//! The `migrations` toolkit case: status, up, down on the bundled
//! `recorder/toolkit/migrations`, then copies of it that a changed, missing,
//! out-of-order, down-less or failing migration makes invalid.

use std::path::{Path, PathBuf};

use pgsim::client::{MigrationError, Migrations, NO_TRANSACTION};
use pgsim::{Client, Error};

use super::{count, outcome, reset, Lines};

/// The bundled migrations: 1 creates `mig_items`, 2 adds a column and
/// rows, 3 an index.
pub fn migrations_dir() -> PathBuf {
    crate::scenario::repo_root().join("recorder/toolkit/migrations")
}

/// A migration error by variant, with file names but no directories (the
/// copies live in temporary directories).
fn described(e: &Error) -> String {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    match e {
        Error::Migration(MigrationError::Changed {
            version,
            file,
            recorded,
            found,
        }) => format!(
            "changed: {version} {}, recorded {recorded}, found {found}",
            name(file)
        ),
        Error::Migration(MigrationError::Missing { version, name, .. }) => {
            format!("missing: {version} {name}")
        }
        Error::Migration(MigrationError::OutOfOrder {
            version,
            file,
            newest_applied,
        }) => format!(
            "out of order: {version} {} after {newest_applied}",
            name(file)
        ),
        Error::Migration(MigrationError::NoDown { version, file }) => {
            format!("no down: {version} needs {}", name(file))
        }
        Error::Migration(MigrationError::Failed { version, file, .. }) => format!(
            "failed: {version} {}, sqlstate {}",
            name(file),
            e.code().unwrap_or("none")
        ),
        other => format!("other: {other}"),
    }
}

fn shown<T: std::fmt::Debug>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => outcome(r),
        Err(e) => format!("error {}", described(e)),
    }
}

async fn status(out: &mut Lines, when: &str, m: &Migrations, c: &Client) {
    let lines: Vec<String> = m
        .status(c)
        .await
        .expect("status")
        .iter()
        .map(ToString::to_string)
        .collect();
    out.push(format!("status {when}: {}", lines.join(" | ")));
}

async fn exists(c: &Client, table: &str) -> bool {
    c.query_one("select to_regclass($1) is not null", &[&table])
        .await
        .expect("to_regclass")
        .get(0)
}

/// A copy of the bundled migrations in a temporary directory, changed by
/// `edit`.
fn copy_with(edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for entry in std::fs::read_dir(migrations_dir()).expect("the bundled migrations") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().expect("a file name");
        std::fs::copy(&path, dir.path().join(name)).expect("copy a migration");
    }
    edit(dir.path());
    dir
}

fn from(dir: &Path) -> Migrations {
    Migrations::from_dir(dir).expect("a valid migrations directory")
}

pub(super) async fn migrations(c: &Client) -> Lines {
    let mut out = Lines::new();
    reset(
        c,
        "drop table if exists pgsim_migrations; drop table if exists mig_items; \
         drop table if exists mig_bad",
    )
    .await;
    let m = from(&migrations_dir());
    status(&mut out, "fresh", &m, c).await;
    out.push(format!("up 2: {}", shown(&m.up(c, Some(2)).await)));
    status(&mut out, "after up 2", &m, c).await;
    out.push(format!("up: {}", shown(&m.up(c, None).await)));
    out.push(format!("up again: {}", shown(&m.up(c, None).await)));
    let rows: Vec<(i32, String, i32)> = c
        .query("select id, name, price from mig_items order by id", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    out.push(format!("rows: {rows:?}"));
    out.push(format!("indexes: {:?}", indexes(c).await));
    out.push(format!("down 1: {}", shown(&m.down(c, 1).await)));
    status(&mut out, "after down 1", &m, c).await;
    out.push(format!("down 2: {}", shown(&m.down(c, 2).await)));
    status(&mut out, "after down 2", &m, c).await;
    out.push(format!(
        "mig_items exists: {}",
        exists(c, "mig_items").await
    ));
    out.push(format!(
        "down with none applied: {}",
        shown(&m.down(c, 1).await)
    ));
    out.push(format!("up all: {}", shown(&m.up(c, None).await)));

    let changed = copy_with(|d| {
        let file = d.join("2_add_price.up.sql");
        let mut sql = std::fs::read_to_string(&file).expect("read");
        sql.push_str("-- edited after it was applied\n");
        std::fs::write(&file, sql).expect("edit");
    });
    let changed = from(changed.path());
    status(&mut out, "changed file", &changed, c).await;
    out.push(format!("check changed: {}", shown(&changed.check(c).await)));
    out.push(format!("up changed: {}", shown(&changed.up(c, None).await)));
    out.push(format!(
        "down changed: {}",
        shown(&changed.down(c, 1).await)
    ));

    let gone = copy_with(|d| {
        for f in ["3_index_name.up.sql", "3_index_name.down.sql"] {
            std::fs::remove_file(d.join(f)).expect("remove");
        }
    });
    let gone = from(gone.path());
    status(&mut out, "file missing", &gone, c).await;
    out.push(format!("up missing: {}", shown(&gone.up(c, None).await)));

    let early =
        copy_with(|d| std::fs::write(d.join("0_early.up.sql"), "select 1;\n").expect("write"));
    out.push(format!(
        "up out of order: {}",
        shown(&from(early.path()).up(c, None).await)
    ));

    let no_down =
        copy_with(|d| std::fs::remove_file(d.join("3_index_name.down.sql")).expect("remove"));
    out.push(format!(
        "down without a down file: {}",
        shown(&from(no_down.path()).down(c, 1).await)
    ));

    let bad = copy_with(|d| {
        std::fs::write(
            d.join("4_bad.up.sql"),
            "create table mig_bad (id int);\nselect 1 / 0;\n",
        )
        .expect("write")
    });
    let bad = from(bad.path());
    out.push(format!("up failing: {}", shown(&bad.up(c, None).await)));
    out.push(format!("mig_bad exists: {}", exists(c, "mig_bad").await));
    status(&mut out, "after the failure", &bad, c).await;

    // CREATE INDEX CONCURRENTLY refuses a transaction: without the mark
    // it fails (25001) and nothing is recorded; with it, it runs alone.
    let index_up = "create index concurrently mig_items_price on mig_items (price);\n";
    let in_tx = copy_with(|d| std::fs::write(d.join("4_price.up.sql"), index_up).expect("write"));
    out.push(format!(
        "concurrently in a transaction: {}",
        shown(&from(in_tx.path()).up(c, None).await)
    ));
    let outside = copy_with(|d| {
        std::fs::write(
            d.join("4_price.up.sql"),
            format!("{NO_TRANSACTION}\n{index_up}select 1;\n"),
        )
        .expect("write");
        std::fs::write(
            d.join("4_price.down.sql"),
            format!("{NO_TRANSACTION}\ndrop index concurrently mig_items_price;\n"),
        )
        .expect("write");
    });
    let outside = from(outside.path());
    out.push(format!(
        "up outside a transaction: {}",
        shown(&outside.up(c, None).await)
    ));
    status(&mut out, "after it", &outside, c).await;
    out.push(format!("indexes: {:?}", indexes(c).await));
    out.push(format!(
        "down outside a transaction: {}",
        shown(&outside.down(c, 1).await)
    ));
    out.push(format!("indexes: {:?}", indexes(c).await));

    out.push(format!("down 3: {}", shown(&m.down(c, 3).await)));
    out.push(format!(
        "recorded migrations: {}",
        count(c, "pgsim_migrations").await
    ));
    reset(c, "drop table pgsim_migrations").await;
    out
}

/// The indexes of `mig_items`, by name.
async fn indexes(c: &Client) -> Vec<String> {
    c.query(
        "select indexname::text from pg_indexes where tablename = 'mig_items' order by 1",
        &[],
    )
    .await
    .expect("indexes")
    .iter()
    .map(|r| r.get(0))
    .collect()
}
