//! `pgsim verify` and `pgsim accept` through the binary: a session recorded
//! from the live server verifies clean, then the server's schema and data
//! change and each change is named; `--accept` and `pgsim accept` put the
//! new answers in place. Without a server or with a refused file it cannot
//! run (exit status 2).

use std::path::Path;
use std::process::{Command, Output};

use futures_util::SinkExt as _;
use pgsim::tokio_postgres;

use crate::support::{connect, demo_dir, live_url, recording};

/// `pgsim ARGS`, with the environment's fallbacks removed.
fn pgsim(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgsim"))
        .args(args)
        .arg(dir)
        .env_remove("PGSIM_UPSTREAM")
        .env_remove("DATABASE_URL")
        .env_remove("PGSIM_FIXTURES")
        .output()
        .expect("pgsim runs")
}

fn verify(dir: &Path, upstream: &str, extra: &[&str]) -> Output {
    let mut args = vec!["verify", "--upstream", upstream];
    args.extend_from_slice(extra);
    args.push("--fixtures");
    pgsim(&args, dir)
}

/// Exit status, stdout and stderr, for assertions that show all of it.
fn result(out: &Output) -> (Option<i32>, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// A database of its own, dropped when the test ends, however it ends.
struct Scratch {
    admin: String,
    name: String,
}

impl Scratch {
    async fn create(admin: &str) -> (Scratch, tokio_postgres::Client) {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_nanos();
        let name = format!("pgsim_verify_{}_{stamp}", std::process::id());
        execute(admin, &format!("create database {name}")).await;
        let scratch = Scratch {
            admin: admin.to_owned(),
            name,
        };
        let client = connect(&scratch.url()).await;
        (scratch, client)
    }

    fn url(&self) -> String {
        with_database(&self.admin, &self.name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (admin, sql) = (
            self.admin.clone(),
            format!("drop database if exists {} with (force)", self.name),
        );
        // Drop runs outside any runtime's reach: a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(execute(&admin, &sql));
        })
        .join();
    }
}

fn with_database(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{db}")
}

async fn execute(url: &str, sql: &str) {
    connect(url)
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

const SCHEMA: &str = "
    create table items (id int primary key, name text not null, price numeric(8,2));
    insert into items values (1, 'apple', 1.25), (2, 'banana', 0.50), (3, 'cherry', 9.00);
    create table codes (v text);
    insert into codes values ('x');
    create table events (id serial primary key, item_id int, note text);
";

/// The session verify re-runs: simple and extended queries, a write, a
/// failing query, COPY both ways, a scope, and a second session left
/// inside a transaction.
async fn record_session(url: &str, db: &str) -> tempfile::TempDir {
    let (dir, recorder, rec_url) = recording(url).await;
    let through = with_database(&rec_url, db);
    {
        let client = connect(&through).await;
        client
            .simple_query("select * from items order by id")
            .await
            .expect("a simple select");
        let rows = client
            .query("select name from items where id = $1", &[&2i32])
            .await
            .expect("an extended select");
        assert_eq!(rows[0].get::<_, String>(0), "banana");
        client
            .execute(
                "insert into events (item_id, note) values ($1, $2)",
                &[&1i32, &"verify"],
            )
            .await
            .expect("an insert");
        let err = client
            .query("select v::int from codes", &[])
            .await
            .expect_err("text that is not a number");
        assert_eq!(err.code().map(|c| c.code()), Some("22P02"));
        let sink = client
            .copy_in::<_, bytes::Bytes>("copy events (item_id, note) from stdin")
            .await
            .expect("copy in starts");
        let mut sink = std::pin::pin!(sink);
        sink.send(bytes::Bytes::from_static(b"2\tcopied\n3\tcopied\n"))
            .await
            .expect("copy data");
        assert_eq!(sink.finish().await.expect("copy in ends"), 2);
        let out = client
            .copy_out("copy (select id, name from items order by id) to stdout")
            .await
            .expect("copy out");
        let mut out = std::pin::pin!(out);
        while futures_util::TryStreamExt::try_next(&mut out)
            .await
            .expect("copy data")
            .is_some()
        {}
        client
            .batch_execute("set pgsim.scope = 'verify'")
            .await
            .expect("a scope");
        client
            .query(
                "select count(*) from items where price > $1::text::numeric",
                &[&"1.00"],
            )
            .await
            .expect("a select in the scope");
        client
            .simple_query("select count(*) from items")
            .await
            .expect("a simple select in the scope");
        // Prepared, never executed: recorded as a description only.
        drop(
            client
                .prepare("select 1 as described")
                .await
                .expect("prepare"),
        );
    }
    {
        let client = connect(&through).await;
        client.batch_execute("begin").await.expect("begin");
        client
            .simple_query("select id from items where id = 1 for update")
            .await
            .expect("a row lock");
        // Ends inside the transaction: verify rolls it back.
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let summary = recorder.shutdown().await;
    assert!(
        summary.errors.is_empty() && summary.lost.is_empty(),
        "{summary}"
    );
    assert_eq!(summary.sessions, 2, "{summary}");
    dir
}

#[tokio::test]
async fn verify_names_what_changed_and_accept_puts_the_new_answers_in_place() {
    let Some(live) = live_url() else { return };
    let (db, admin) = Scratch::create(&live).await;
    admin.batch_execute(SCHEMA).await.expect("the schema");
    let dir = record_session(&live, &db.name).await;
    let upstream = db.url();

    let (code, text) = result(&verify(dir.path(), &upstream, &[]));
    assert_eq!(code, Some(0), "an unchanged server verifies clean:\n{text}");
    assert!(
        text.contains("verified 11 exchanges: 0 differ, 11 the same; 1 skipped (not verified)"),
        "{text}"
    );
    assert!(text.contains("1 described only"), "{text}");
    assert!(!text.contains("only in the re-run"), "{text}");

    admin
        .batch_execute(
            "update items set name = 'pear' where id = 2;
             alter table items drop column price;
             drop table codes;",
        )
        .await
        .expect("the drift");
    let (code, text) = result(&verify(dir.path(), &upstream, &[]));
    assert_eq!(code, Some(1), "drift:\n{text}");
    for expected in [
        // The changed row value, in the simple and the extended select.
        "row 2 column name: recorded 'banana', now 'pear'",
        "changed: select name from items where id = $1 with $1 = '2'",
        // The dropped column.
        "column price dropped (was numeric (1700))",
        // The new SQLSTATEs.
        "changed: select v::int from codes",
        "SQLSTATE 42P01 (was 22P02)",
        "SQLSTATE 42703 (was ok)",
        // COPY TO sends the new name too.
        "COPY data message 2: recorded '2\\tbanana\\n', now '2\\tpear\\n'",
        // Where each was recorded.
        "at session-0001.json seq ",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        text.contains("verified 11 exchanges: 5 differ, 6 the same"),
        "{text}"
    );

    let (code, text) = result(&verify(dir.path(), &upstream, &["--accept"]));
    assert_eq!(code, Some(1), "--accept still reports the drift:\n{text}");
    assert!(text.contains("pending set written to"), "{text}");
    let pending = pgsim::verify::pending_dir(dir.path());
    assert!(pending.join("session-0001.json").is_file(), "{text}");
    let listed = pgsim::fixture::load_dir(dir.path()).expect("the set loads");
    assert_eq!(
        listed.sessions.len(),
        2,
        "the pending set is not read as part of the set"
    );

    let (code, text) = result(&pgsim(&["accept"], dir.path()));
    assert_eq!(code, Some(0), "accept:\n{text}");
    assert!(
        text.contains("column price dropped"),
        "accept shows the diff:\n{text}"
    );
    assert!(text.contains("replaced the fixtures"), "{text}");
    assert!(!pending.exists(), "the pending set moved in");

    let (code, text) = result(&verify(dir.path(), &upstream, &[]));
    assert_eq!(code, Some(0), "the accepted set verifies clean:\n{text}");
}

#[test]
fn verify_cannot_run_without_its_server_or_with_a_file_that_does_not_load() {
    // Port 1 on the loopback: nothing listens, the connection is refused.
    let unreachable = "postgres://postgres:secret@127.0.0.1:1/postgres";
    let (code, text) = result(&verify(&demo_dir(), unreachable, &[]));
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("cannot connect to the upstream 127.0.0.1:1"),
        "{text}"
    );
    assert!(!text.contains("secret"), "no password in messages: {text}");

    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::copy(
        demo_dir().join("session-0001.json"),
        dir.path().join("session-0001.json"),
    )
    .expect("a copy");
    std::fs::write(dir.path().join("session-0002.json"), "{ not json").expect("a bad file");
    let (code, text) = result(&verify(dir.path(), unreachable, &[]));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("session-0002.json"), "names the file: {text}");

    let (code, text) = result(&verify(dir.path(), "mysql://x@y/z", &[]));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("invalid upstream"), "{text}");

    let (code, text) = result(&pgsim(&["accept"], dir.path()));
    assert_eq!(code, Some(2), "no pending set: {text}");
    assert!(text.contains("no pending set"), "{text}");
}

/// A column rule of `pgsim-rules.json` makes the drift check ignore a
/// column whose values change on every run, and the output says so.
#[tokio::test]
async fn a_column_rule_keeps_a_clock_column_out_of_the_drift_check() {
    let Some(live) = live_url() else { return };
    let (dir, recorder, rec_url) = crate::support::recording(&live).await;
    let c = crate::support::connect(&rec_url).await;
    c.simple_query("select clock_timestamp()::text as at, 1 as one")
        .await
        .expect("live");
    drop(c);
    assert!(recorder.shutdown().await.lost.is_empty());
    let (code, text) = result(&verify(dir.path(), &live, &[]));
    assert_eq!(code, Some(1), "the clock moved:\n{text}");
    assert!(text.contains("column at"), "{text}");
    std::fs::write(
        dir.path().join(pgsim::fixture::RULES_FILE),
        r#"{"rules": [{"name": "clock", "query": "^select clock_timestamp", "column": "at", "match": "any"}]}"#,
    )
    .expect("rules written");
    let (code, text) = result(&verify(dir.path(), &live, &[]));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("rule \"clock\" ignored column \"at\""),
        "{text}"
    );
}
