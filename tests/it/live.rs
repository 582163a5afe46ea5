//! Record mode against the real PostgreSQL (`PGSIM_LIVE_URL`): re-record
//! the demo scenario and prove the recording replays identically.

use std::time::Duration;

use pgsim::tokio_postgres::{self, NoTls};

use crate::support::{assert_same_lines, expected, live_target, mock_target, LIVE_LOCK};
use pgsim_recorder::scenario::{self, DEMO_DB};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_scenario_rerecorded_live_replays_identically() {
    let Some(live) = live_target() else { return };
    let _lock = LIVE_LOCK.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let recorded = scenario::record(&live, dir.path()).await.unwrap();
    // The bundled fixtures still describe reality.
    let bundled = expected();
    assert_same_lines(
        &recorded.tokio,
        &bundled.tokio,
        "live tokio-postgres vs bundled transcript",
    );
    assert_eq!(
        recorded.psql, bundled.psql,
        "live psql vs bundled transcript"
    );
    assert_eq!(recorded.pgbench, bundled.pgbench);
    // And the fresh recording replays exactly.
    let server = pgsim::MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    let replayed = scenario::run_all(&mock_target(&server)).await.unwrap();
    assert_same_lines(
        &replayed.tokio,
        &recorded.tokio,
        "replayed vs live tokio-postgres",
    );
    assert_eq!(replayed.psql, recorded.psql);
    assert_eq!(replayed.pgbench, recorded.pgbench);
    let report = server.report();
    assert!(report.misses.is_empty(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_record_without_mixing() {
    let Some(live) = live_target() else { return };
    let dir = tempfile::tempdir().unwrap();
    let recorder = scenario::start_recorder(&live, dir.path()).await.unwrap();
    let target = live.at(recorder.addr());
    let mut tasks = Vec::new();
    for i in 0..8i32 {
        let t = target.clone();
        tasks.push(tokio::spawn(async move {
            let client = t.connect("postgres").await.unwrap();
            for j in 0..20i32 {
                let row = client
                    .query_one("select $1::int4 * 1000 + $2::int4 as n", &[&i, &j])
                    .await
                    .unwrap();
                assert_eq!(row.get::<_, i32>(0), i * 1000 + j);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let summary = recorder.shutdown().await;
    assert!(summary.errors.is_empty(), "{summary}");
    assert_eq!(summary.sessions, 8);
    let set = pgsim::fixture::load_dir(dir.path()).unwrap();
    assert_eq!(set.sessions.len(), 8);
    for s in &set.sessions {
        let firsts: Vec<_> = s
            .session
            .exchanges
            .iter()
            .map(|e| e.params.as_ref().unwrap()[0].value.clone())
            .collect();
        assert_eq!(firsts.len(), 20, "{}", s.path.display());
        assert!(
            firsts.windows(2).all(|w| w[0] == w[1]),
            "one session's file holds only its own queries"
        );
    }
    // Replayed by 16 connections where 8 recorded: no misses.
    let server = pgsim::MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    for i in 0..16i32 {
        let (client, conn) = tokio_postgres::connect(&server.url(), NoTls).await.unwrap();
        tokio::spawn(conn);
        let row = client
            .query_one(
                "select $1::int4 * 1000 + $2::int4 as n",
                &[&(i % 8), &19i32],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), (i % 8) * 1000 + 19);
    }
    assert!(server.report().misses.is_empty(), "{}", server.report());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_recording_leaves_valid_fixtures() {
    let Some(live) = live_target() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = crate::cli::Reap(
        std::process::Command::new(env!("CARGO_BIN_EXE_pgsim"))
            .args([
                "record",
                "--upstream",
                &format!("{}:{}", live.host, live.port),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--fixtures",
            ])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut target = live.clone();
    target.host = "127.0.0.1".into();
    target.port = port;
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) = target.connect("postgres").await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = client.expect("the recorder came up");
    for i in 0..25i32 {
        client
            .query_one("select $1::int4 as i", &[&i])
            .await
            .unwrap();
    }
    // Every answered exchange has been handed to the writer; give it a moment
    // to reach the file, then kill without warning.
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let set =
        pgsim::fixture::load_dir(dir.path()).expect("every fixture file is valid after kill -9");
    assert_eq!(set.exchange_count(), 25);
    let journals = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "jsonl")
        .count();
    assert_eq!(journals, 1, "the interrupted session stays a journal");
    // And it replays.
    let server = pgsim::MockServer::builder()
        .fixture_set(set)
        .start()
        .await
        .unwrap();
    let (c, conn) = tokio_postgres::connect(&server.url(), NoTls).await.unwrap();
    tokio::spawn(conn);
    assert_eq!(
        c.query_one("select $1::int4 as i", &[&24i32])
            .await
            .unwrap()
            .get::<_, i32>(0),
        24
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_database_is_recorded_and_replayed() {
    let Some(live) = live_target() else { return };
    let dir = tempfile::tempdir().unwrap();
    let recorder = scenario::start_recorder(&live, dir.path()).await.unwrap();
    let live_err = live
        .at(recorder.addr())
        .connect("pgsim_missing_db")
        .await
        .unwrap_err();
    recorder.shutdown().await;
    let set = pgsim::fixture::load_dir(dir.path()).unwrap();
    let refused = set
        .sessions
        .iter()
        .find_map(|s| s.session.startup_error.clone())
        .expect("startup error recorded");
    assert_eq!(refused.code(), "3D000");
    let server = pgsim::MockServer::builder()
        .fixture_set(set)
        .start()
        .await
        .unwrap();
    let Err(err) = tokio_postgres::connect(&server.url_for("pgsim_missing_db"), NoTls).await else {
        panic!("connected to a refused database")
    };
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "3D000");
    assert!(
        live_err.contains(db.message()),
        "{live_err} vs {}",
        db.message()
    );
    let _ = DEMO_DB;
}
