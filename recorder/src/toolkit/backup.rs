//! The `backup_restore` toolkit case: a schema of `pgsim_toolkit` backed up
//! with `pg_dump` and restored with `pg_restore` into
//! `pgsim_toolkit_restore`, both through the case's client (so through its
//! recorder or mock server), verified by row counts.

use pgsim::client::{Backup, BackupError, BackupOptions, RestoreOptions, TableCount};
use pgsim::{Client, Error};

use super::{outcome, reset, Lines};

/// The database the case restores into (dropped and created by the case).
pub(super) const RESTORE_DB: &str = "pgsim_toolkit_restore";

fn counts(counts: &[TableCount]) -> String {
    let each: Vec<String> = counts
        .iter()
        .map(|t| format!("{}.{} {}", t.schema, t.table, t.rows))
        .collect();
    each.join(", ")
}

/// A backup error by variant, without paths or the tool's own words.
fn described<T: std::fmt::Debug>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => outcome(r),
        Err(Error::Backup(BackupError::Start { tool, .. })) => format!(
            "error cannot start {}",
            tool.file_name().unwrap_or_default().to_string_lossy()
        ),
        Err(Error::Backup(BackupError::Tool { tool, stderr, .. })) => format!(
            "error {} failed, stderr says already exists: {}",
            tool.file_name().unwrap_or_default().to_string_lossy(),
            stderr.contains("already exists")
        ),
        Err(Error::Backup(BackupError::Mismatch {
            database,
            differences,
        })) => {
            let each: Vec<String> = differences
                .iter()
                .map(|d| format!("{}.{} {} -> {:?}", d.schema, d.table, d.before, d.after))
                .collect();
            format!("error mismatch in {database}: {}", each.join(", "))
        }
        Err(other) => format!("error other: {other}"),
    }
}

async fn fresh_target(c: &Client) {
    reset(
        c,
        &format!("drop database if exists {RESTORE_DB} with (force)"),
    )
    .await;
    reset(c, &format!("create database {RESTORE_DB}")).await;
}

pub(super) async fn backup_restore(c: &Client) -> Lines {
    let mut out = Lines::new();
    reset(
        c,
        "drop schema if exists br_src cascade; create schema br_src; \
         create table br_src.items (id int primary key, name text not null); \
         insert into br_src.items select i, 'item ' || i from generate_series(1, 25) i; \
         create table br_src.\"Notes\" (id serial primary key, item int references br_src.items, body text); \
         insert into br_src.\"Notes\" (item, body) values (1, 'first'), (2, 'it''s'), (2, null); \
         create table br_src.empty (id int)",
    )
    .await;
    fresh_target(c).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("br_src.dump");

    let backup = c
        .backup(&BackupOptions::new(&file).schema("br_src"))
        .await
        .expect("back up br_src");
    out.push(format!(
        "backup of {} schema {:?}: {}",
        backup.database,
        backup.schema,
        counts(&backup.counts)
    ));
    let from_file = Backup::from_file(&file).expect("the counts file");
    out.push(format!("counts file matches: {}", from_file == backup));

    let restored = c.restore(&backup, &RestoreOptions::new(RESTORE_DB)).await;
    out.push(format!(
        "restore into {RESTORE_DB}: {}",
        match &restored {
            Ok(r) => format!("verified {}", counts(r)),
            Err(_) => described(&restored),
        }
    ));
    let target = c
        .connect_to_database(RESTORE_DB)
        .await
        .expect("the restored database");
    let notes: Option<String> = target
        .query_one(
            "select string_agg(coalesce(body, '<null>'), ',' order by id) from br_src.\"Notes\"",
            &[],
        )
        .await
        .expect("restored notes")
        .get(0);
    out.push(format!("restored notes: {notes:?}"));
    let next: i32 = target
        .query_one(
            "insert into br_src.\"Notes\" (item, body) values (3, 'new') returning id",
            &[],
        )
        .await
        .expect("the sequence was restored")
        .get(0);
    out.push(format!("next note id: {next}"));
    target.close().await.expect("close the restored database");

    let again = c.restore(&backup, &RestoreOptions::new(RESTORE_DB)).await;
    out.push(format!("restore again: {}", described(&again)));

    // A counts file that says more rows than the dump holds: the restore
    // runs, and its verification fails naming the table.
    let counts_file = Backup::counts_path(&file);
    let text = std::fs::read_to_string(&counts_file).expect("read the counts file");
    let edited = text.replacen("\"rows\": 25", "\"rows\": 26", 1);
    assert_ne!(text, edited, "the counts file holds items' 25 rows");
    std::fs::write(&counts_file, edited).expect("edit the counts file");
    fresh_target(c).await;
    let tampered = Backup::from_file(&file).expect("the edited counts file");
    let mismatch = c.restore(&tampered, &RestoreOptions::new(RESTORE_DB)).await;
    out.push(format!(
        "restore with wrong counts: {}",
        described(&mismatch)
    ));

    let missing = c
        .backup(&BackupOptions::new(dir.path().join("x.dump")).pg_dump("/nonexistent/pg_dump"))
        .await;
    out.push(format!("missing pg_dump: {}", described(&missing)));

    // One schema restored into the database it came from, once dropped.
    reset(c, "drop schema br_src cascade").await;
    let same = c
        .restore(&backup, &RestoreOptions::new(super::TOOLKIT_DB))
        .await;
    out.push(format!(
        "restore into {}: {}",
        super::TOOLKIT_DB,
        match &same {
            Ok(r) => format!("verified {}", counts(r)),
            Err(_) => described(&same),
        }
    ));

    reset(c, &format!("drop database {RESTORE_DB} with (force)")).await;
    reset(c, "drop schema br_src cascade").await;
    out
}
