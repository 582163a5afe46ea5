//! Surveying a whole server: the bundled recording replays to the recorded
//! survey byte for byte; with a live server the scenario is built, surveyed
//! through the recorder, and the recording replays to the same survey.

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use pgsim::client::Closed;
use pgsim::survey::{OrderingStrategy, Survey, TableKind};
use pgsim::{Client, MockServer, Mode};

use crate::cli::start;
use crate::support::{assert_replayed, live_url, LIVE_LOCK};
use pgsim_recorder::survey::{self as scenario, config, fixtures_dir, to_json};

/// In Replay only the database name of the URL matters.
const REPLAY_URL: &str = "postgres://pgsim_surveyor@127.0.0.1:5432/postgres";

fn expected() -> String {
    let path = fixtures_dir().join("expected/survey.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the scenario's world must look like in any survey of it.
fn assert_scenario(s: &Survey) {
    assert_eq!(s.server.user, scenario::SURVEYOR);
    assert!(!s.server.superuser);
    let names: Vec<&str> = s.databases.iter().map(|d| d.info.name.as_str()).collect();
    for db in scenario::AWKWARD_DBS.iter().chain([&scenario::SHOP_DB]) {
        assert!(names.contains(db), "{db} collected: {names:?}");
    }
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted: {names:?}");
    assert!(!names.iter().any(|n| n.starts_with("template")));
    assert_eq!(s.summary.excluded_system, 2);
    let locked = s
        .failures
        .iter()
        .find(|f| f.database == scenario::LOCKED_DB)
        .expect("the locked database is reported as failed");
    assert_eq!(locked.sqlstate.as_deref(), Some("42501"));
    assert_eq!(s.summary.failed, s.failures.len());
    assert_eq!(s.summary.collected + s.summary.failed, s.summary.total);

    let shop = s
        .databases
        .iter()
        .find(|d| d.info.name == scenario::SHOP_DB)
        .expect("shop");
    let table = |schema: &str, name: &str| {
        shop.schemas
            .iter()
            .find(|sc| sc.name == schema)
            .and_then(|sc| sc.tables.iter().find(|t| t.name == name))
            .unwrap_or_else(|| panic!("{schema}.{name} surveyed"))
    };
    let ordering = |name: &str| {
        table("public", name)
            .sample
            .as_ref()
            .unwrap_or_else(|| panic!("{name} sampled"))
            .ordering
            .clone()
    };
    let pk = |cols: &[&str]| OrderingStrategy::PrimaryKey {
        columns: cols.iter().map(|c| c.to_string()).collect(),
    };
    assert_eq!(ordering("customers"), pk(&["id"]));
    assert_eq!(ordering("order_lines"), pk(&["order_id", "line_no"]));
    assert_eq!(ordering("Order \"Lines\""), pk(&["Line Id"]));
    assert_eq!(
        ordering("events"),
        OrderingStrategy::Timestamp {
            column: "created_at".into()
        }
    );
    assert_eq!(
        ordering("audit_log"),
        OrderingStrategy::Serial {
            column: "seq".into()
        }
    );
    assert_eq!(
        ordering("tickets"),
        OrderingStrategy::Serial { column: "n".into() }
    );
    assert_eq!(ordering("blobs"), OrderingStrategy::Random { seed: 0 });

    let customers = table("public", "customers")
        .sample
        .as_ref()
        .expect("sample");
    let ids: Vec<i64> = customers
        .rows
        .iter()
        .map(|r| r.0[0].1.as_i64().expect("id is a number"))
        .collect();
    assert_eq!(ids, [25, 24, 23], "most recent first");
    assert_eq!(customers.row_estimate, Some(25));
    assert_eq!(
        customers.rows[0].0[3].1,
        serde_json::json!("2024-01-02T01:00:00Z"),
        "timestamps in ISO 8601"
    );
    let items = table("inventory", "items").sample.as_ref().expect("items");
    let big = items
        .rows
        .iter()
        .find_map(|r| r.0[1].1.as_str().map(str::to_owned));
    assert_eq!(
        big.as_deref(),
        Some("9223372036854775807"),
        "bigint beyond 2^53 as a string"
    );

    let never = table("public", "never_analyzed")
        .sample
        .as_ref()
        .expect("sample");
    assert_eq!(never.row_estimate, None);
    assert!(never
        .warnings
        .iter()
        .any(|w| w.contains("never been analyzed")));
    let empty = table("public", "empty_table")
        .sample
        .as_ref()
        .expect("sample");
    assert!(empty.rows.is_empty() && empty.warnings.iter().any(|w| w.contains("empty")));
    let secret = table("public", "secret_payroll");
    assert!(secret.sample.is_none());
    assert_eq!(
        secret.error.as_ref().and_then(|e| e.sqlstate.as_deref()),
        Some("42501")
    );
    assert_eq!(table("public", "active_customers").kind, TableKind::View);
    assert_eq!(
        table("public", "measurements").kind,
        TableKind::PartitionedTable
    );
    assert_eq!(
        table("public", "order_totals").kind,
        TableKind::MaterializedView
    );
    let fk = &table("public", "order_lines").foreign_keys[0];
    assert_eq!(
        (
            fk.referenced_table.as_str(),
            fk.on_delete.as_str(),
            fk.on_update.as_str()
        ),
        ("orders", "restrict", "cascade")
    );
}

#[tokio::test]
async fn bundled_survey_replays_byte_for_byte() {
    let (survey, closed) = scenario::run(
        REPLAY_URL,
        Mode::Replay {
            fixtures: fixtures_dir(),
        },
        &config(4),
    )
    .await
    .expect("replayed survey");
    assert_replayed(&closed, "survey", false);
    assert_scenario(&survey);
    assert_eq!(to_json(&survey), expected());
}

/// A mock server over the bundled survey, and a client pointed at it in
/// Live mode, so the test can read the server's session counts.
async fn served() -> (MockServer, Client) {
    let server = MockServer::builder()
        .fixtures(fixtures_dir())
        .start()
        .await
        .expect("survey fixtures load");
    let client = Client::builder()
        .url(format!(
            "postgres://pgsim_surveyor@127.0.0.1:{}/postgres",
            server.addr().port()
        ))
        .survey_settings()
        .build()
        .await
        .expect("client");
    (server, client)
}

#[tokio::test]
async fn max_concurrency_bounds_the_sessions_open_at_once() {
    for limit in [1, 2, 4] {
        let (server, client) = served().await;
        let survey = client
            .collect_all_databases(&config(limit))
            .await
            .expect("survey");
        assert_eq!(to_json(&survey), expected(), "limit {limit}");
        // The client's own connection plus one per database in flight.
        let peak = server.peak_total_sessions();
        assert!(peak <= limit + 1, "limit {limit}: {peak} sessions at once");
        if limit == 1 {
            assert_eq!(peak, 2);
        } else {
            assert!(
                peak > 2,
                "limit {limit}: databases never overlapped ({peak})"
            );
        }
        let report = server.report();
        assert!(report.misses.is_empty(), "{report}");
    }
}

#[tokio::test]
async fn rate_limit_spaces_every_query_of_the_survey() {
    let (server, client) = served().await;
    let mut limited = config(4);
    limited.queries_per_second = 200.0;
    let started = tokio::time::Instant::now();
    let survey = client
        .collect_all_databases(&limited)
        .await
        .expect("survey");
    let elapsed = started.elapsed();
    assert_eq!(to_json(&survey), expected());
    // Every catalog and sample query passed the one shared limiter.
    let queries = server.report().queries;
    let floor = Duration::from_secs_f64((queries - 1) as f64 / 200.0);
    assert!(
        elapsed >= floor,
        "{queries} queries at 200/s took {elapsed:?}, under the {floor:?} the limit allows"
    );
}

#[tokio::test]
async fn stop_at_the_first_failure_when_asked() {
    let (_server, client) = served().await;
    let mut strict = config(1);
    strict.continue_on_error = false;
    let e = client
        .collect_all_databases(&strict)
        .await
        .expect_err("the locked database stops the survey");
    assert_eq!(e.code(), Some("42501"), "{e}");
}

#[tokio::test]
async fn live_survey_and_its_recording_agree() {
    let Some(url) = live_url() else {
        return;
    };
    let _live = LIVE_LOCK.lock().await;
    scenario::setup(&url).await.expect("survey world");
    let dir = tempfile::tempdir().expect("temp dir");
    let surveyor = scenario::surveyor_url(&url).expect("surveyor url");
    let (live, closed) = scenario::run(
        &surveyor,
        Mode::Record {
            fixtures: dir.path().into(),
        },
        &config(4),
    )
    .await
    .expect("live survey");
    assert!(matches!(closed, Closed::Recorded(_)), "{closed:?}");
    assert_scenario(&live);
    let (replayed, closed) = scenario::run(
        REPLAY_URL,
        Mode::Replay {
            fixtures: dir.path().into(),
        },
        &config(4),
    )
    .await
    .expect("replayed survey");
    assert_replayed(&closed, "survey", false);
    assert_eq!(to_json(&replayed), to_json(&live));
}

fn pgsim(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgsim"));
    c.args(args);
    c
}

fn survey_cli(url: &str) -> String {
    let out = pgsim(&[
        "survey",
        "--url",
        url,
        "--sample",
        "3",
        "--exclude",
        scenario::EXCLUDE,
        "--clock",
        "fixed",
    ])
    .output()
    .expect("pgsim survey runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 JSON")
}

#[tokio::test]
async fn cli_survey_is_the_same_live_and_against_pgsim_serve() {
    let Some(url) = live_url() else {
        return;
    };
    let _live = LIVE_LOCK.lock().await;
    scenario::setup(&url).await.expect("survey world");
    let live = pgsim::ConnectionString::parse(&url).expect("live url");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir_arg = dir.path().to_str().expect("utf-8 temp dir");
    let upstream = live.address();
    let (mut recorder, port, mut recorder_out) = start(pgsim(&[
        "record",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--fixtures",
        dir_arg,
    ]));
    let recorded = tokio::task::spawn_blocking(move || {
        survey_cli(&format!(
            "postgres://{}:surveyor@127.0.0.1:{port}/postgres",
            scenario::SURVEYOR
        ))
    })
    .await
    .expect("survey through the recorder");
    let stopped = Command::new("kill")
        .args(["-TERM", &recorder.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    assert!(recorder.0.wait().expect("recorder exits").success());
    let mut summary = String::new();
    recorder_out.read_to_string(&mut summary).expect("summary");
    assert!(summary.contains("sessions"), "{summary}");

    let (_server, port, _out) = start(pgsim(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--fixtures",
        dir_arg,
    ]));
    let replayed = tokio::task::spawn_blocking(move || {
        survey_cli(&format!(
            "postgres://{}@127.0.0.1:{port}/postgres",
            scenario::SURVEYOR
        ))
    })
    .await
    .expect("survey against serve");
    assert_eq!(replayed, recorded);
    let json: serde_json::Value = serde_json::from_str(&recorded).expect("JSON");
    assert_eq!(json["server"]["user"], scenario::SURVEYOR);
    assert_eq!(json["collected_at"], "1970-01-01T00:00:00Z");
    assert!(json["failures"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f["database"] == scenario::LOCKED_DB)));
}

/// Names PostgreSQL accepts and URLs and SQL must encode: generated (from a
/// fixed seed), created on the live server, reached through the recorder and
/// again in replay of that recording.
#[tokio::test]
async fn generated_awkward_database_names_are_reached_live_and_replayed() {
    use proptest::strategy::{Strategy, ValueTree};
    let Some(url) = live_url() else {
        return;
    };
    let _live = LIVE_LOCK.lock().await;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    // The prefix keeps them out of the scenario's survey (`pgsim_*`).
    let strategy = "pgsim_gen[a-zA-Z0-9 '\"\\-_.é☃%/?#@:]{1,12}";
    let mut names: Vec<String> = (0..5)
        .map(|_| {
            strategy
                .new_tree(&mut runner)
                .expect("a generated name")
                .current()
        })
        .collect();
    names.sort();
    names.dedup();
    let (admin, conn) = pgsim::tokio_postgres::connect(&url, pgsim::tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(conn);
    for name in &names {
        let quoted = pgsim::validate::quote_identifier(name);
        // One statement per call: CREATE DATABASE refuses a transaction block.
        for sql in [
            format!("drop database if exists {quoted} with (force)"),
            format!("create database {quoted}"),
        ] {
            admin
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let reach = |mode: Mode| {
        let names = names.clone();
        let url = url.clone();
        async move {
            let client = Client::builder()
                .url(&url)
                .mode(mode)
                .build()
                .await
                .expect("client");
            let listed = client
                .list_databases(&pgsim::survey::ListOptions::default())
                .await
                .expect("databases");
            let mut seen = Vec::new();
            for name in &names {
                assert!(
                    listed.databases.iter().any(|d| &d.name == name),
                    "{name:?} listed"
                );
                let db = client
                    .connect_to_database(name)
                    .await
                    .expect("a pool for it");
                let current: String = db
                    .query_one("select current_database()::text", &[])
                    .await
                    .unwrap_or_else(|e| panic!("{name:?}: {e}"))
                    .get(0);
                db.close().await.expect("close");
                seen.push(current);
            }
            client.close().await.expect("close");
            seen
        }
    };
    let live = reach(Mode::Record {
        fixtures: dir.path().into(),
    })
    .await;
    assert_eq!(live, names, "each pool reached its own database");
    let replayed = reach(Mode::Replay {
        fixtures: dir.path().into(),
    })
    .await;
    assert_eq!(replayed, live);
    for name in &names {
        let quoted = pgsim::validate::quote_identifier(name);
        admin
            .batch_execute(&format!("drop database if exists {quoted} with (force)"))
            .await
            .unwrap_or_else(|e| panic!("drop {name:?}: {e}"));
    }
}

#[tokio::test]
async fn a_rate_limit_that_is_negative_not_finite_or_too_small_is_refused() {
    let (server, client) = served().await;
    let before = server.report().queries;
    for qps in [
        -1.0,
        -0.5,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-300,
        f64::MIN_POSITIVE,
    ] {
        let mut bad = config(4);
        bad.queries_per_second = qps;
        let Err(e) = client.collect_all_databases(&bad).await else {
            panic!("{qps}: a survey ran instead of refusing the rate");
        };
        assert!(
            matches!(&e, pgsim::Error::Setting { setting, .. } if setting == "queries_per_second"),
            "{qps}: {e}"
        );
    }
    assert_eq!(server.report().queries, before, "nothing was sent");
}

#[test]
fn cli_survey_refuses_a_nonsense_qps_before_connecting() {
    for qps in ["-1", "NaN", "inf", "1e-300"] {
        let out = pgsim(&[
            "survey",
            "--url",
            "postgres://nobody@127.0.0.1:1/postgres",
            &format!("--qps={qps}"),
        ])
        .output()
        .expect("pgsim survey runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{qps}: {stderr}");
        assert!(stderr.contains("--qps"), "{qps}: names the flag: {stderr}");
        assert!(
            !stderr.contains("127.0.0.1"),
            "{qps}: no connection tried: {stderr}"
        );
    }
}

/// Each table's sampled rows, by database, schema and table.
fn samples(s: &Survey) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for db in &s.databases {
        for schema in &db.schemas {
            for t in &schema.tables {
                let rows = t.sample.as_ref().map(|x| format!("{:?}", x.rows));
                out.push((
                    format!("{}.{}.{}", db.info.name, schema.name, t.name),
                    rows.unwrap_or_default(),
                ));
            }
        }
    }
    out
}

#[tokio::test]
async fn two_live_surveys_sample_the_same_rows_even_in_random_order() {
    let Some(url) = live_url() else {
        return;
    };
    let _live = LIVE_LOCK.lock().await;
    scenario::setup(&url).await.expect("survey world");
    let surveyor = scenario::surveyor_url(&url).expect("surveyor url");
    let mut surveys = Vec::new();
    for _ in 0..2 {
        let (survey, _) = scenario::run(&surveyor, Mode::Live, &config(4))
            .await
            .expect("live survey");
        surveys.push(samples(&survey));
    }
    // blobs, measurements and order_totals have nothing to order by: their
    // samples come from the random order. (Sizes may move between two
    // surveys of a live server; the rows sampled must not.)
    assert!(surveys[0].iter().any(|(t, _)| t.ends_with(".blobs")));
    let differ: Vec<_> = surveys[0]
        .iter()
        .zip(&surveys[1])
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert!(
        differ.is_empty(),
        "sampled differently the second time: {differ:?}"
    );
    assert_eq!(surveys[0].len(), surveys[1].len());
}
