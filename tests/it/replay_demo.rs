//! Replay mode: the bundled fixtures served by the mock server to real
//! clients, compared with what the live server gave the same clients when
//! the fixtures were recorded. No PostgreSQL needed.

use pgsim::tokio_postgres::{self, NoTls};

use crate::support::{assert_same_lines, demo_server, expected, mock_target, DEMO_PIN};
use pgsim_recorder::scenario::{self, DEMO_DB, PGBENCH_RUNS};

/// The whole scenario in recorded order (tokio-postgres, then psql, then
/// pgbench) against one mock server: answers to the same query are served in
/// the order they were recorded across sessions, so order matters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_sees_exactly_what_the_live_server_sent() {
    let server = demo_server().await;
    let want = expected();
    let got = scenario::run_all(&mock_target(&server)).await.unwrap();
    assert_same_lines(&got.tokio, &want.tokio, "tokio-postgres transcript");
    assert_same_lines(
        &got.psql.lines().map(str::to_owned).collect::<Vec<_>>(),
        &want.psql.lines().map(str::to_owned).collect::<Vec<_>>(),
        "psql output",
    );
    for (i, (mode, _, _)) in PGBENCH_RUNS.into_iter().enumerate() {
        assert_eq!(got.pgbench[i], want.pgbench[i], "pgbench -M {mode}");
        assert!(got.pgbench[i].failed.contains(" 0 ("), "pgbench -M {mode}");
    }
    let report = server.report();
    assert!(report.misses.is_empty(), "{report}");
}

#[tokio::test]
async fn pgbench_alone_replays_every_mode_with_zero_misses() {
    let server = demo_server().await;
    let want = expected().pgbench;
    for (i, (mode, clients, tx)) in PGBENCH_RUNS.into_iter().enumerate() {
        let target = mock_target(&server);
        let got = tokio::task::spawn_blocking(move || {
            scenario::pgbench_workload(&target, mode, clients, tx)
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(got, want[i], "pgbench -M {mode}");
    }
    let report = server.report();
    assert!(report.misses.is_empty(), "{report}");
}

#[tokio::test]
async fn many_connections_replay_what_one_connection_recorded() {
    let server = demo_server().await;
    let target = mock_target(&server);
    let one = scenario::tokio_reads(&target.connect(DEMO_DB).await.unwrap()).await;
    assert_same_lines(
        &one,
        &expected().tokio[..one.len()],
        "reads on one connection",
    );
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let t = target.clone();
        tasks.push(tokio::spawn(async move {
            scenario::tokio_reads(&t.connect(DEMO_DB).await.unwrap()).await
        }));
    }
    for task in tasks {
        assert_same_lines(
            &task.await.unwrap(),
            &one,
            "reads on a concurrent connection",
        );
    }
    assert!(server.report().misses.is_empty(), "{}", server.report());
}

#[tokio::test]
async fn a_miss_names_the_query_its_key_and_the_closest_recording() {
    let server = demo_server().await;
    let (client, conn) = tokio_postgres::connect(&server.url_for(DEMO_DB), NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let err = client
        .simple_query("select name from items where id = 100")
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), pgsim::SQLSTATE_NO_RECORDING);
    assert!(
        db.message()
            .contains("select name from items where id = 100"),
        "{}",
        db.message()
    );
    let key = pgsim::key::query_key("select name from items where id = 100", &[]).to_string();
    assert!(
        db.message().contains(&key),
        "message names the key: {}",
        db.message()
    );
    let detail = db.detail().unwrap_or_default();
    assert!(
        detail.contains("select name from items where id = 99"),
        "{detail}"
    );
    // Bound parameters that were never recorded: the detail names the parameter.
    let err = client
        .query(
            "select name, price, scores from items where id = $1",
            &[&7i32],
        )
        .await
        .unwrap_err();
    let detail = err
        .as_db_error()
        .and_then(|d| d.detail())
        .unwrap_or_default()
        .to_owned();
    assert!(detail.contains("parameter $1 differs"), "{detail}");
    // The connection stays usable.
    let rows = client
        .query(
            "select id, name from items where id = $1 and active = $2",
            &[&1i32, &true],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(1), "apple");
    let report = server.report();
    assert_eq!(report.misses.len(), 2, "{report}");
}

#[tokio::test]
async fn an_unknown_database_is_refused_like_postgres_does() {
    let server = demo_server().await;
    let Err(err) = tokio_postgres::connect(&server.url_for("no_such_db"), NoTls).await else {
        panic!("connected to an unknown database")
    };
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "3D000");
    assert_eq!(db.message(), "database \"no_such_db\" does not exist");
}

#[tokio::test]
async fn the_report_lists_answers_never_used() {
    let server = demo_server().await;
    let count = "select count(*) from events";
    let unused = |r: &pgsim::Report| {
        r.unused
            .iter()
            .filter(|u| pgsim::key::normalize(&u.sql) == count)
            .count()
    };
    let before = unused(&server.report());
    assert!(before >= 4, "several recorded answers for {count}");
    let (client, conn) = tokio_postgres::connect(&server.url_for(DEMO_DB), NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.simple_query(DEMO_PIN).await.unwrap();
    client.simple_query(count).await.unwrap();
    drop(client);
    let report = server.shutdown().await;
    assert_eq!(report.sessions, 1);
    assert_eq!(report.queries, 2);
    assert_eq!(
        unused(&report),
        before - 1,
        "only the served answer left the list"
    );
    assert!(
        report
            .unused
            .iter()
            .any(|u| u.sql.contains("pgbench_accounts")),
        "pgbench answers unused"
    );
}

#[tokio::test]
async fn count_answers_follow_recorded_order_then_repeat() {
    let server = demo_server().await;
    let (client, conn) = tokio_postgres::connect(&server.url_for(DEMO_DB), NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.simple_query(DEMO_PIN).await.unwrap();
    let mut counts = Vec::new();
    for _ in 0..6 {
        let row = client
            .query_one("select count(*) from events", &[])
            .await
            .unwrap();
        counts.push(row.get::<_, i64>(0));
    }
    // Recorded over the extended protocol: 3 before the insert, then 4, 4, 5.
    assert_eq!(counts, vec![3, 4, 4, 5, 5, 5]);
}

/// A server on the bundled demo fixtures with `configure`'s options.
async fn demo_server_with(
    configure: impl FnOnce(pgsim::MockServerBuilder) -> pgsim::MockServerBuilder,
) -> pgsim::MockServer {
    configure(pgsim::MockServer::builder().fixtures(crate::support::demo_dir()))
        .start()
        .await
        .expect("the bundled fixtures load")
}

async fn demo_client(server: &pgsim::MockServer) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&server.url_for(DEMO_DB), NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test]
async fn the_report_counts_each_missed_query_once_with_how_often() {
    let server = demo_server().await;
    let client = demo_client(&server).await;
    for _ in 0..3 {
        client
            .simple_query("select 'never recorded'")
            .await
            .unwrap_err();
    }
    client.simple_query("select 'nor this'").await.unwrap_err();
    let report = server.shutdown().await;
    assert_eq!(report.missed, 4);
    assert_eq!(report.misses.len(), 2, "one per distinct query");
    assert_eq!(report.misses[0].count, 3);
    let text = report.to_string();
    assert_eq!(text.matches("  miss").count(), 2, "{text}");
    assert!(
        text.contains("miss x3 [pgsim_demo] \"select 'never recorded'\""),
        "{text}"
    );
}

#[tokio::test]
#[should_panic(expected = "fail_on_misses")]
async fn fail_on_misses_fails_the_test_that_drops_the_server() {
    let server = demo_server_with(|b| b.fail_on_misses()).await;
    let client = demo_client(&server).await;
    client
        .simple_query("select 'never recorded'")
        .await
        .unwrap_err();
    drop(server);
}

#[tokio::test]
#[should_panic(expected = "fail_on_unused")]
async fn fail_on_unused_fails_a_test_that_left_recorded_answers() {
    let server = demo_server_with(|b| b.fail_on_unused()).await;
    let client = demo_client(&server).await;
    client.simple_query(DEMO_PIN).await.unwrap();
    let _ = server.shutdown().await;
}

#[tokio::test]
async fn fail_on_misses_lets_a_clean_run_pass() {
    let server = demo_server_with(|b| b.fail_on_misses()).await;
    let client = demo_client(&server).await;
    client.simple_query(DEMO_PIN).await.unwrap();
    let report = server.shutdown().await;
    assert!(report.misses.is_empty());
}

/// Strict order: the tokio-postgres session's own first two queries are
/// answered; a query out of its order is a miss that shows what the
/// recording sends next and what the connection sent before.
#[tokio::test]
async fn strict_order_answers_the_recorded_sequence_and_reports_a_deviation() {
    let server = demo_server_with(|b| b.strict_order()).await;
    let client = demo_client(&server).await;
    client.simple_query(DEMO_PIN).await.unwrap();
    let row = client
        .query_one(
            "select id, name from items where id = $1 and active = $2",
            &[&1i32, &true],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(1), "apple");
    let err = client
        .simple_query("select count(*) from events")
        .await
        .expect_err("not next in the recording");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), pgsim::SQLSTATE_NO_RECORDING);
    assert!(
        db.message().contains("breaks the recorded order"),
        "{}",
        db.message()
    );
    let detail = db.detail().unwrap_or_default();
    assert!(detail.contains("session-0001.json#2"), "{detail}");
    assert!(
        detail.contains("select * from items order by id"),
        "{detail}"
    );
    // A fresh connection starting elsewhere deviates at once.
    let other = demo_client(&server).await;
    let err = other
        .simple_query("select 'never recorded'")
        .await
        .expect_err("no session starts so");
    assert!(err
        .as_db_error()
        .and_then(|d| d.detail())
        .is_some_and(|d| d.contains("This connection sent before it: nothing")));
    let report = server.shutdown().await;
    assert_eq!(report.misses.len(), 2);
}
