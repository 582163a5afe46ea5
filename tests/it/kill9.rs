//! `kill -9` of `pgsim record` while `pgbench -c 4` writes through it
//! (issue 13): what it wrote loads, serves nothing torn, and agrees with
//! what the live server committed.
//!
//! How the recorder's journal makes this hold (`src/record/mod.rs`,
//! `src/record/writer.rs`, `src/fixture/journal.rs`): the proxy shows each
//! backend frame to the session's tap *before* forwarding it, and the tap
//! hands a finished exchange to the writer thread when its ReadyForQuery
//! arrives; the writer appends it to the session's `.jsonl` journal as one
//! line with one `write`. So a client sees the answer to its COMMIT only
//! after the exchange is on its way to the file, and cannot start another
//! transaction before. A kill leaves each journal with its complete lines
//! and at most one torn last line, which the loader skips with a warning.
//!
//! The committed count is the live server's (`pgbench_history` gains one
//! row per committed TPC-B-like transaction); pgbench's own report is not
//! used, as its connections die mid-run. Per client, at most one
//! transaction can be committed on the server and not recorded: the one
//! whose COMMIT the server had answered when the recorder died, its answer
//! not yet read by the recorder, or read and not yet written by the writer
//! thread (which writes each exchange as it arrives, long before the same
//! client can finish the seven round trips of another transaction). So
//! with 4 clients: `recorded <= committed <= recorded + 4`.

use std::process::{Command, Stdio};
use std::time::Duration;

use pgsim::fixture::load_dir;

use crate::cli::{start, Reap};
use crate::support::live_target;

const DB: &str = "pgsim_kill9";
const CLIENTS: u64 = 4;

fn conninfo(host: &str, port: u16, user: &str) -> String {
    format!("host={host} port={port} user={user} dbname={DB} sslmode=disable")
}

async fn history_rows(live: &pgsim_recorder::scenario::Target) -> i64 {
    let client = live.connect(DB).await.expect("the scratch database");
    client
        .query_one("select count(*) from pgbench_history", &[])
        .await
        .expect("pgbench_history")
        .get(0)
}

/// Whether an exchange is a COMMIT the server answered COMMIT (pgbench's
/// `END;`, or a COMMIT).
fn is_commit(ex: &pgsim::fixture::Exchange) -> bool {
    let sql = ex
        .sql
        .trim()
        .trim_end_matches(';')
        .trim()
        .to_ascii_lowercase();
    (sql == "end" || sql == "commit")
        && ex.results.last().and_then(|r| r.tag.as_deref()) == Some("COMMIT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_pgbench_loses_at_most_the_commits_in_flight() {
    let Some(live) = live_target() else { return };
    // A scratch database, initialised directly on the live server.
    let admin = live.connect("postgres").await.expect("the live server");
    let exists = admin
        .query_opt("select 1 from pg_database where datname = $1", &[&DB])
        .await
        .expect("pg_database");
    if exists.is_none() {
        if let Err(e) = admin.batch_execute(&format!("create database {DB}")).await {
            // Another run created it meanwhile.
            assert_eq!(e.code().map(|c| c.code()), Some("42P04"), "{e}");
        }
    }
    let init = Command::new("pgbench")
        .args(["-i", "-q", "-s", "1"])
        .arg(conninfo(&live.host, live.port, &live.user))
        .env("PGPASSWORD", &live.password)
        .output()
        .expect("pgbench runs");
    assert!(
        init.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let before = history_rows(&live).await;

    let dir = tempfile::tempdir().unwrap();
    let mut record = Command::new(env!("CARGO_BIN_EXE_pgsim"));
    record
        .args(["record", "--upstream"])
        .arg(format!("{}:{}", live.host, live.port))
        .args(["--listen", "127.0.0.1:0", "--fixtures"])
        .arg(dir.path());
    let (mut recorder, port, _stdout) = start(record);

    // The default TPC-B-like script (BEGIN; UPDATE; SELECT; UPDATE;
    // UPDATE; INSERT; END;), simple protocol, through the recorder.
    let mut pgbench = Reap(
        Command::new("pgbench")
            .args(["-n", "-c", &CLIENTS.to_string(), "-T", "30"])
            .arg(conninfo("127.0.0.1", port, &live.user))
            .env("PGPASSWORD", &live.password)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbench runs"),
    );
    // Kill while it runs: after 1.5 s, and once it has committed something.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..100 {
        if history_rows(&live).await > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        pgbench.0.try_wait().unwrap().is_none(),
        "pgbench ended before the kill"
    );
    recorder.0.kill().unwrap(); // SIGKILL
    recorder.0.wait().unwrap();
    // pgbench's clients lose their connections and stop.
    let mut ended = false;
    for _ in 0..300 {
        if pgbench.0.try_wait().unwrap().is_some() {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ended, "pgbench kept running after the recorder died");
    let committed = history_rows(&live).await - before;

    // Every file loads; each journal has at most its last line torn, and
    // the loader serves exactly the complete lines.
    let set = load_dir(dir.path()).expect("the fixture directory reads");
    assert!(set.rejected.is_empty(), "{:?}", set.rejected);
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(set.sessions.len(), files, "every file is a loaded session");
    // Sessions that ended before the kill (pgbench's first connection)
    // were compacted to `.json`; the killed ones stay `.jsonl` journals.
    let (mut journals, mut torn) = (0, 0);
    for loaded in &set.sessions {
        if loaded.path.extension().is_some_and(|e| e == "json") {
            continue;
        }
        let bytes = std::fs::read(&loaded.path).unwrap();
        journals += 1;
        torn += usize::from(bytes.last() != Some(&b'\n'));
        // Every complete line but the session header is one exchange.
        let complete = bytes.iter().filter(|b| **b == b'\n').count() - 1;
        assert_eq!(
            loaded.session.exchanges.len(),
            complete,
            "{:?}: nothing torn is served",
            loaded.path
        );
    }
    assert!(journals as u64 >= CLIENTS, "{journals} journals");
    assert_eq!(set.warnings.len(), torn, "{:?}", set.warnings);

    let recorded = set
        .sessions
        .iter()
        .flat_map(|s| &s.session.exchanges)
        .filter(|ex| is_commit(ex))
        .count() as i64;
    println!(
        "kill -9 under pgbench -c {CLIENTS}: {committed} transactions committed on the server, {recorded} COMMITs recorded, {} exchanges in {} files ({journals} journals left by the kill), {torn} torn lines",
        set.exchange_count(),
        set.sessions.len()
    );
    assert!(recorded > 0, "nothing was recorded before the kill");
    assert!(
        recorded <= committed && committed <= recorded + CLIENTS as i64,
        "{recorded} COMMITs recorded, {committed} committed on the server (at most {CLIENTS} in flight)"
    );

    // What was recorded replays: a recorded UPDATE gets its recorded tag.
    let update = set
        .sessions
        .iter()
        .flat_map(|s| &s.session.exchanges)
        .find(|ex| ex.sql.starts_with("UPDATE pgbench_accounts"))
        .expect("an UPDATE was recorded")
        .clone();
    let server = pgsim::MockServer::builder()
        .fixture_set(set)
        .start()
        .await
        .expect("the killed recording replays");
    let client = crate::support::connect(&server.url_for(DB)).await;
    let answer = client
        .simple_query(&update.sql)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", update.sql));
    let tag = answer.iter().find_map(|m| match m {
        pgsim::tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
        _ => None,
    });
    assert_eq!(tag, Some(1), "{}", update.sql);
    let report = server.shutdown().await;
    assert_eq!(report.missed, 0, "{report}");
}
