//! pg_dump and pg_restore, the real tools, through `pgsim record` in front
//! of the live server and then through `pgsim serve` on that recording: the
//! replayed dump must list the same archive as the recorded one, and
//! restoring it through the mock server must succeed as it did live.

use std::path::Path;
use std::process::Command;

use crate::cli::start;
use crate::support::{connect, live_url, url_password, with_database};

const SOURCE_DB: &str = "br_cli";
const TARGET_DB: &str = "br_cli_restore";

/// Drops and creates the source database with two schemas of rows, and an
/// empty target database.
async fn setup(url: &str) {
    let admin = teardown(url).await;
    for db in [SOURCE_DB, TARGET_DB] {
        admin
            .batch_execute(&format!("create database {db}"))
            .await
            .expect("create");
    }
    let source = connect(&with_database(url, SOURCE_DB)).await;
    source
        .batch_execute(
            "create table items (id int primary key, name text not null); \
             insert into items select i, 'item ' || i from generate_series(1, 40) i; \
             create schema br_extra; \
             create table br_extra.notes (id serial primary key, item int references items, body text); \
             insert into br_extra.notes (item, body) values (1, 'a'), (2, null), (3, 'c''s')",
        )
        .await
        .expect("source tables");
}

/// Drops both databases; returns the connection it used.
async fn teardown(url: &str) -> pgsim::tokio_postgres::Client {
    let admin = connect(url).await;
    for db in [SOURCE_DB, TARGET_DB] {
        admin
            .batch_execute(&format!("drop database if exists {db} with (force)"))
            .await
            .expect("drop");
    }
    admin
}

/// Runs a PostgreSQL client tool at `127.0.0.1:port` as the live user, its
/// connection settings in the environment only; panics with its stderr
/// when it fails.
fn tool(name: &str, port: u16, database: &str, password: &str, args: &[&std::ffi::OsStr]) {
    let mut command = Command::new(name);
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("PG") {
            command.env_remove(var);
        }
    }
    let out = command
        .args(args)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .env("PGUSER", "postgres")
        .env("PGPASSWORD", password)
        .env("PGDATABASE", database)
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?} through port {port}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn dump(port: u16, password: &str, file: &Path) {
    tool(
        "pg_dump",
        port,
        SOURCE_DB,
        password,
        &[
            "--format=custom".as_ref(),
            "--file".as_ref(),
            file.as_os_str(),
        ],
    );
}

fn restore(port: u16, password: &str, file: &Path) {
    tool(
        "pg_restore",
        port,
        TARGET_DB,
        password,
        &[
            "--no-owner".as_ref(),
            "--exit-on-error".as_ref(),
            "--single-transaction".as_ref(),
            "--dbname".as_ref(),
            TARGET_DB.as_ref(),
            file.as_os_str(),
        ],
    );
}

/// `pg_restore --list` of a dump without its header comments (they hold
/// the time it was made).
fn listing(file: &Path) -> Vec<String> {
    let out = Command::new("pg_restore")
        .arg("--list")
        .arg(file)
        .output()
        .expect("pg_restore --list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Ends `pgsim record` or `pgsim serve` with SIGTERM and returns what it
/// printed after its first line.
fn stop(mut child: crate::cli::Reap, out: impl std::io::BufRead) -> String {
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.0.wait().expect("wait");
    assert!(status.success(), "{status}");
    out.lines()
        .map_while(Result::ok)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn pg_dump_and_pg_restore_replay_through_serve_as_recorded() {
    let Some(url) = live_url() else {
        return;
    };
    setup(&url).await;
    let password = url_password(&url);
    let dir = tempfile::tempdir().expect("temp dir");
    let fixtures = dir.path().join("fixtures");
    let recorded_dump = dir.path().join("recorded.dump");
    let replayed_dump = dir.path().join("replayed.dump");

    // sslmode=prefer: over TLS the server offers SCRAM channel binding,
    // which the recorder must not pass on to libpq.
    let upstream = if url.contains('?') {
        format!("{url}&sslmode=prefer")
    } else {
        format!("{url}?sslmode=prefer")
    };
    let mut record = Command::new(env!("CARGO_BIN_EXE_pgsim"));
    record
        .args(["record", "--listen", "127.0.0.1:0", "--upstream", &upstream])
        .arg("--fixtures")
        .arg(&fixtures);
    let (child, port, out) = start(record);
    dump(port, &password, &recorded_dump);
    restore(port, &password, &recorded_dump);
    let summary = stop(child, out);
    assert!(summary.contains("sessions"), "{summary}");

    let live_target = connect(&with_database(&url, TARGET_DB)).await;
    let restored: i64 = live_target
        .query_one("select count(*) from br_extra.notes", &[])
        .await
        .expect("restored live")
        .get(0);
    assert_eq!(restored, 3);
    drop(live_target);
    teardown(&url).await;

    let mut serve = Command::new(env!("CARGO_BIN_EXE_pgsim"));
    serve
        .args(["serve", "--listen", "127.0.0.1:0", "--fixtures"])
        .arg(&fixtures);
    let (child, port, out) = start(serve);
    dump(port, &password, &replayed_dump);
    restore(port, &password, &replayed_dump);
    let summary = stop(child, out);
    assert!(summary.contains(" 0 misses"), "{summary}");

    let recorded = listing(&recorded_dump);
    assert!(
        recorded
            .iter()
            .any(|l| l.contains("TABLE DATA br_extra notes")),
        "{recorded:#?}"
    );
    assert_eq!(listing(&replayed_dump), recorded);
}

#[tokio::test]
async fn recorded_empty_queries_are_answered_and_not_reported_unused() {
    // pg_restore sends the dump's comment-only header as queries: the
    // server answers EmptyQueryResponse, and so does the mock, by itself.
    let Some(url) = live_url() else {
        return;
    };
    let (dir, recorder, rec_url) = crate::support::recording(&url).await;
    let sent = ["--\n-- PostgreSQL database dump\n--\n\n", "\n", "select 1"];
    let live = connect(&rec_url).await;
    for sql in sent {
        live.simple_query(sql).await.expect("live");
    }
    drop(live);
    let summary = recorder.shutdown().await;
    assert!(summary.errors.is_empty(), "{summary}");
    let server = pgsim::MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .expect("the recording loads");
    let replayed = connect(&server.url_for("postgres")).await;
    for sql in sent {
        replayed.simple_query(sql).await.expect("replayed");
    }
    drop(replayed);
    let report = server.shutdown().await;
    assert!(
        report.misses.is_empty() && report.unused.is_empty(),
        "{report}"
    );
}

#[tokio::test]
async fn a_whole_database_backs_up_and_restores_with_every_user_schema_counted() {
    use pgsim::client::{BackupError, BackupOptions, RestoreOptions};
    const SOURCE: &str = "br_whole";
    const TARGET: &str = "br_whole_restore";
    let Some(url) = live_url() else {
        return;
    };
    let admin = connect(&url).await;
    for db in [SOURCE, TARGET] {
        for sql in [
            format!("drop database if exists {db} with (force)"),
            format!("create database {db}"),
        ] {
            admin.batch_execute(&sql).await.expect("a fresh database");
        }
    }
    let client = pgsim::Client::builder()
        .url(with_database(&url, SOURCE))
        .max_connections(2)
        .build()
        .await
        .expect("a live client");
    client
        .batch_execute(
            "create table items (id int primary key); \
             insert into items select generate_series(1, 12); \
             create schema \"Br Extra\"; \
             create table \"Br Extra\".\"Odd Name\" (v text); \
             insert into \"Br Extra\".\"Odd Name\" values ('a'), ('b')",
        )
        .await
        .expect("source tables");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("whole.dump");
    let backup = client
        .backup(&BackupOptions::new(&file))
        .await
        .expect("back up the whole database");
    let counted: Vec<(String, String, i64)> = backup
        .counts
        .iter()
        .map(|t| (t.schema.clone(), t.table.clone(), t.rows))
        .collect();
    assert_eq!(
        counted,
        [
            ("Br Extra".to_owned(), "Odd Name".to_owned(), 2),
            ("public".to_owned(), "items".to_owned(), 12),
        ]
    );
    assert_eq!(backup.schema, None);
    let restored = client
        .restore(&backup, &RestoreOptions::new(TARGET))
        .await
        .expect("restore and verify");
    assert_eq!(restored, backup.counts);
    // A wrong binary is a typed error naming it.
    let missing = client
        .restore(
            &backup,
            &RestoreOptions::new(TARGET).pg_restore("/nonexistent/pg_restore"),
        )
        .await
        .expect_err("no such binary");
    assert!(
        matches!(&missing, pgsim::Error::Backup(BackupError::Start { tool, .. }) if tool.ends_with("pg_restore")),
        "{missing:?}"
    );
    client.close().await.expect("close");
    for db in [SOURCE, TARGET] {
        admin
            .batch_execute(&format!("drop database {db} with (force)"))
            .await
            .expect("drop");
    }
}
