//! Fault injection: faults given as specs to the mock server over the
//! bundled fixtures, seen by a real client.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use pgsim::tokio_postgres::{self, Client, NoTls};
use pgsim::MockServer;

use crate::cli::{start, Reap};
use crate::support::{demo_dir, DEMO_PIN};
use pgsim_recorder::scenario::DEMO_DB;

/// Recorded over the extended protocol with the answers 3, 4, 4, 5 (and
/// twice more by psql), served in that order.
const COUNT: &str = "select count(*) from events";
const MATCH_COUNT: &str = r"match=^select count\(\*\) from events$";

async fn server_with(faults: &[&str], seed: u64) -> MockServer {
    let mut builder = MockServer::builder().fixtures(demo_dir()).seed(seed);
    for spec in faults {
        builder = builder.fault(*spec);
    }
    builder
        .start()
        .await
        .expect("fault specs parse, fixtures load")
}

async fn connect(server: &MockServer) -> Client {
    let (client, conn) = tokio_postgres::connect(&server.url_for(DEMO_DB), NoTls)
        .await
        .expect("connects");
    tokio::spawn(conn);
    client.simple_query(DEMO_PIN).await.expect("pinned");
    client
}

/// The SQLSTATE of a failed query, or a panic naming what came instead.
fn code(result: Result<impl std::fmt::Debug, tokio_postgres::Error>) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => match e.code() {
            Some(c) => c.code().to_owned(),
            None => panic!("expected a server error, got {e}"),
        },
    }
}

async fn count(client: &Client) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one(COUNT, &[]).await?.get(0))
}

#[tokio::test]
async fn a_retry_after_injected_serialization_failures_gets_the_recorded_answer() {
    let fault = format!("{MATCH_COUNT},error=40001,times=2");
    let server = server_with(&[&fault], 0).await;
    let client = connect(&server).await;
    for attempt in 1..=2 {
        let err = count(&client).await.expect_err("the fault fires");
        let db = err.as_db_error().expect("a server error");
        assert_eq!(db.code().code(), "40001", "attempt {attempt}");
        assert_eq!(db.message(), "pgsim fault: injected 40001");
        assert_eq!(db.severity(), "ERROR");
    }
    assert_eq!(
        count(&client).await.ok(),
        Some(3),
        "the first recorded answer"
    );
    assert_eq!(count(&client).await.ok(), Some(4), "then the second");
    let stats = server.faults();
    assert_eq!((stats[0].matched, stats[0].fired), (4, 2), "{stats:?}");
    assert!(server.report().misses.is_empty(), "{}", server.report());
}

#[tokio::test]
async fn an_injected_error_fails_the_transaction_until_rollback() {
    let fault = format!("{MATCH_COUNT},error=40001,times=2");
    let server = server_with(&[&fault], 0).await;
    let client = connect(&server).await;
    // Simple query protocol.
    client.batch_execute("begin").await.expect("begin");
    assert_eq!(code(client.simple_query(COUNT).await), "40001");
    assert_eq!(code(client.simple_query("select 1").await), "25P02");
    assert_eq!(code(client.simple_query(COUNT).await), "25P02");
    client.batch_execute("rollback").await.expect("rollback");
    // Extended query protocol: the error comes at Execute.
    client.batch_execute("begin").await.expect("begin");
    assert_eq!(code(count(&client).await), "40001");
    assert_eq!(code(client.query("select 1", &[]).await), "25P02");
    assert_eq!(code(count(&client).await), "25P02");
    client.batch_execute("rollback").await.expect("rollback");
    // `begin` was sent only by psql's recorded session: the connection
    // now follows it, whose count is 5.
    assert_eq!(count(&client).await.ok(), Some(5), "nothing was consumed");
    let stats = server.faults();
    assert_eq!((stats[0].matched, stats[0].fired), (3, 2), "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn latency_delays_the_answer_on_the_tokio_clock() {
    let fixed = format!("{MATCH_COUNT},latency=250");
    let server = server_with(&[&fixed, "match=where id = 99,latency=100..200"], 3).await;
    let client = connect(&server).await;
    let start = tokio::time::Instant::now();
    assert_eq!(count(&client).await.ok(), Some(3));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    let start = tokio::time::Instant::now();
    client
        .simple_query("select name from items where id = 99")
        .await
        .expect("recorded");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    let fired: Vec<u64> = server.faults().iter().map(|f| f.fired).collect();
    assert_eq!(fired, [1, 1]);
}

#[tokio::test]
async fn drop_closes_the_connection_and_the_next_one_is_served() {
    let fault = format!("{MATCH_COUNT},drop,times=2");
    let server = server_with(&[&fault], 0).await;
    for simple in [false, true] {
        let client = connect(&server).await;
        let err = if simple {
            client.simple_query(COUNT).await.map(|_| ()).unwrap_err()
        } else {
            count(&client).await.map(|_| ()).unwrap_err()
        };
        assert!(err.is_closed(), "simple protocol {simple}: {err:?}");
        assert!(client.is_closed() || client.simple_query("select 1").await.is_err());
    }
    let client = connect(&server).await;
    assert_eq!(
        count(&client).await.ok(),
        Some(3),
        "the drops consumed nothing"
    );
    let stats = server.faults();
    assert_eq!((stats[0].matched, stats[0].fired), (3, 2), "{stats:?}");
}

#[tokio::test]
async fn refuse_answers_too_many_clients_then_lets_the_next_one_in() {
    let server = server_with(&["refuse,times=1"], 0).await;
    let Err(err) = tokio_postgres::connect(&server.url_for(DEMO_DB), NoTls).await else {
        panic!("the first connection should be refused")
    };
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "53300");
    assert_eq!(db.severity(), "FATAL");
    assert_eq!(db.message(), "sorry, too many clients already");
    let client = connect(&server).await;
    assert_eq!(count(&client).await.ok(), Some(3));
    assert_eq!(server.report().sessions, 1, "the refused one is no session");
    let stats = server.faults();
    assert_eq!((stats[0].matched, stats[0].fired), (2, 1), "{stats:?}");
}

/// Which of 40 executions of one query the fault hit, on a fresh server.
async fn fire_pattern(seed: u64) -> Vec<bool> {
    let fault = format!("{MATCH_COUNT},error=40001,p=0.5");
    let server = server_with(&[&fault], seed).await;
    let client = connect(&server).await;
    let mut pattern = Vec::new();
    for _ in 0..40 {
        match count(&client).await {
            Ok(_) => pattern.push(false),
            Err(e) if e.code().map(|c| c.code()) == Some("40001") => pattern.push(true),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    let fired = pattern.iter().filter(|f| **f).count() as u64;
    assert_eq!(server.faults()[0].fired, fired);
    pattern
}

#[tokio::test]
async fn the_same_seed_fires_the_same_pattern_on_fresh_servers() {
    let first = fire_pattern(7).await;
    assert_eq!(first, fire_pattern(7).await, "seed 7 twice");
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
    assert_ne!(
        first,
        fire_pattern(8).await,
        "another seed, another pattern"
    );
}

#[tokio::test]
async fn faults_given_parsed_and_as_specs_keep_their_order() {
    let parsed: pgsim::Fault = "drop,times=1".parse().expect("parses");
    let server = MockServer::builder()
        .fixtures(demo_dir())
        .faults([parsed])
        .fault("error=40001")
        .start()
        .await
        .expect("starts");
    let described: Vec<String> = server.faults().into_iter().map(|f| f.fault).collect();
    assert_eq!(
        described,
        [
            "drop the connection on every query, at most once",
            "error 40001 on every query"
        ]
    );
    let Err(err) = MockServer::builder().fault("error=4001").start().await else {
        panic!("a bad spec should stop start()")
    };
    assert!(matches!(err, pgsim::Error::Fault(_)), "{err:?}");
    assert!(err.to_string().contains("\"error=4001\""), "{err}");
}

#[test]
fn serve_rejects_a_bad_fault_spec_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_pgsim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--fault", "error=4001"])
        .arg("--fixtures")
        .arg(demo_dir())
        .env_remove("PGSIM_FAULTS")
        .output()
        .expect("runs pgsim");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid fault spec \"error=4001\""), "{err}");
    assert!(err.contains("a SQLSTATE is 5 characters"), "{err}");
}

#[test]
fn serve_reads_faults_from_the_environment_and_prints_them_with_the_seed() {
    let mut child = Reap(
        Command::new(env!("CARGO_BIN_EXE_pgsim"))
            .args(["serve", "--listen", "127.0.0.1:0", "--fixtures"])
            .arg(demo_dir())
            .env(
                "PGSIM_FAULTS",
                "match=^select abalance,error=40001,times=2;refuse,p=0.1;",
            )
            .env("PGSIM_SEED", "7")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs pgsim"),
    );
    let stderr = child.0.stderr.take().expect("piped");
    // After the line saying how the fixtures loaded.
    let lines: Vec<String> = BufReader::new(stderr)
        .lines()
        .filter(|l| {
            l.as_ref()
                .map_or(true, |l| !l.starts_with("pgsim serve: loaded"))
        })
        .take(3)
        .collect::<Result<_, _>>()
        .expect("reads stderr");
    assert_eq!(
        lines,
        [
            "pgsim serve: fault seed 7",
            "pgsim serve: fault #1: error 40001 on queries matching /^select abalance/ \
             (case-insensitive), at most 2 times",
            "pgsim serve: fault #2: refuse with 53300 on every new connection, \
             with probability 0.1",
        ]
    );
}

/// psql's SQLSTATE for its last error (`\set VERBOSITY verbose` prints it).
fn psql(port: u16, sql: &str) -> (bool, String) {
    let out = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "VERBOSITY=verbose",
            "-c",
            DEMO_PIN,
            "-c",
            sql,
        ])
        .arg(format!(
            "host=127.0.0.1 port={port} user=postgres dbname={DEMO_DB} sslmode=disable"
        ))
        .output()
        .expect("psql runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn serve_with_faults_gives_psql_exactly_the_injected_errors_refusal_and_latency() {
    let mut serve = Command::new(env!("CARGO_BIN_EXE_pgsim"));
    serve
        .args(["serve", "--listen", "127.0.0.1:0", "--seed", "3"])
        .args(["--fault", "refuse,times=1"])
        .args(["--fault", "match=^select count,error=40001,times=2"])
        .args(["--fault", "match=^select name from items,latency=300"])
        .arg("--fixtures")
        .arg(demo_dir())
        .stderr(Stdio::null());
    let (_serve, port, _stdout) = start(serve);

    let (ok, text) = psql(port, "select 1");
    // psql prints no SQLSTATE for a refused connection: 53300's message.
    assert!(
        !ok && text.contains("FATAL:  sorry, too many clients already"),
        "the first connection is refused: {text}"
    );
    for _ in 0..2 {
        let (ok, text) = psql(port, COUNT);
        assert!(!ok && text.contains("40001"), "an injected 40001: {text}");
    }
    let (ok, text) = psql(port, COUNT);
    assert!(ok, "the third try gets the recording: {text}");
    let last = text.trim().lines().last().unwrap_or_default();
    assert!(last.parse::<i64>().is_ok(), "{text}");

    // The delayed answer arrives after an undelayed one sent later.
    let slow = std::thread::spawn(move || {
        let sent = std::time::Instant::now();
        let (ok, text) = psql(port, "select name from items where id = 99");
        (ok, text, sent.elapsed(), std::time::Instant::now())
    });
    std::thread::sleep(Duration::from_millis(50));
    let (ok, text) = psql(port, COUNT);
    assert!(ok, "{text}");
    let fast_done = std::time::Instant::now();
    let (ok, text, slow_took, slow_done) = slow.join().expect("slow psql");
    assert!(ok, "{text}");
    assert!(
        fast_done < slow_done,
        "the delayed query finished after one sent later"
    );
    assert!(slow_took >= Duration::from_millis(300), "{slow_took:?}");
}
