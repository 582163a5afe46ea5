//! Scoped answers: a replayed connection is answered from the recorded
//! client it is, never from another one (docs/FIXTURES.md, "Which answer a
//! connection gets"). Each test records real clients live, then replays
//! them alone, reversed, interleaved and side by side.

use std::process::{Command, Stdio};
use std::time::Duration;

use pgsim::client::Closed;
use pgsim::{Client, MockServer, Mode};

use crate::support::{connect, live_url, recording, url_password};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// One client of the "same SQL, different data" workload: every statement
/// is the same for every client, only the bound value differs.
struct Worker {
    client: tokio_postgres::Client,
    name: &'static str,
}

const STEPS: usize = 7;

impl Worker {
    /// Step `i`, printed as the client saw it.
    async fn step(&self, i: usize) -> String {
        let c = &self.client;
        let rows = |r: Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>| match r {
            Ok(rows) => rows
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join(","),
            Err(e) => format!("error: {e}"),
        };
        let second = format!("{}-2", self.name);
        match i {
            0 => rows(
                c.query("create temp table scoped_t (v text)", &[])
                    .await
                    .map(|_| Vec::new()),
            ),
            1 => rows(c.query("select count(*)::text from scoped_t", &[]).await),
            2 => rows(
                c.query(
                    "insert into scoped_t values ($1) returning v",
                    &[&self.name],
                )
                .await,
            ),
            3 => rows(c.query("select v from scoped_t order by v", &[]).await),
            4 => rows(
                c.query("insert into scoped_t values ($1) returning v", &[&second])
                    .await,
            ),
            5 => rows(c.query("select v from scoped_t order by v", &[]).await),
            _ => rows(c.query("select count(*)::text from scoped_t", &[]).await),
        }
    }

    async fn run(&self) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..STEPS {
            out.push(self.step(i).await);
        }
        out
    }
}

async fn worker(url: &str, name: &'static str) -> Worker {
    Worker {
        client: connect(url).await,
        name,
    }
}

fn assert_clean(report: &pgsim::Report, what: &str) {
    assert!(report.misses.is_empty(), "{what}: misses\n{report}");
}

#[tokio::test]
async fn independent_clients_replay_alone_reversed_interleaved_and_concurrently() {
    let Some(live) = live_url() else { return };
    let (dir, recorder, rec_url) = recording(&live).await;
    let alpha_live = worker(&rec_url, "alpha").await.run().await;
    let beta_live = worker(&rec_url, "beta").await.run().await;
    let summary = recorder.shutdown().await;
    assert!(summary.lost.is_empty(), "{summary}");
    assert_ne!(alpha_live, beta_live, "the clients saw different data");
    assert!(beta_live[3].contains("beta"), "{beta_live:?}");

    let server = || async {
        MockServer::builder()
            .fixtures(dir.path())
            .start()
            .await
            .expect("the recording loads")
    };
    // The second client alone.
    let s = server().await;
    assert_eq!(worker(&s.url(), "beta").await.run().await, beta_live);
    assert_clean(&s.shutdown().await, "beta alone");
    // Reversed.
    let s = server().await;
    assert_eq!(worker(&s.url(), "beta").await.run().await, beta_live);
    assert_eq!(worker(&s.url(), "alpha").await.run().await, alpha_live);
    assert_clean(&s.shutdown().await, "reversed");
    // Interleaved, step by step.
    let s = server().await;
    let (a, b) = (
        worker(&s.url(), "alpha").await,
        worker(&s.url(), "beta").await,
    );
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    for i in 0..STEPS {
        got_b.push(b.step(i).await);
        got_a.push(a.step(i).await);
    }
    assert_eq!((got_a, got_b), (alpha_live.clone(), beta_live.clone()));
    assert_clean(&s.shutdown().await, "interleaved");
    // Concurrently, several times over (the interleaving varies).
    for round in 0..5 {
        let s = server().await;
        let (a, b) = (
            worker(&s.url(), "alpha").await,
            worker(&s.url(), "beta").await,
        );
        let (got_a, got_b) = tokio::join!(a.run(), b.run());
        assert_eq!(got_a, alpha_live, "round {round}");
        assert_eq!(got_b, beta_live, "round {round}");
        assert_clean(&s.shutdown().await, "concurrent");
    }
}

#[tokio::test]
async fn answers_no_history_can_tell_apart_are_a_miss_naming_both_recordings() {
    let Some(live) = live_url() else { return };
    let (dir, recorder, rec_url) = recording(&live).await;
    let mut live_pids = Vec::new();
    for _ in 0..2 {
        let c = connect(&rec_url).await;
        let row = c.query_one("select pg_backend_pid()", &[]).await.unwrap();
        live_pids.push(row.get::<_, i32>(0));
    }
    let summary = recorder.shutdown().await;
    assert_eq!(summary.files.len(), 2, "{summary}");
    let server = MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    let c = connect(&server.url()).await;
    let err = c
        .query_one("select pg_backend_pid()", &[])
        .await
        .expect_err("two clients answered it differently");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), pgsim::SQLSTATE_NO_RECORDING);
    let detail = db.detail().unwrap_or_default();
    for f in &summary.files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(detail.contains(&name), "{detail} names {name}");
    }
    assert!(db.hint().unwrap_or_default().contains("pgsim.scope"));
    let report = server.shutdown().await;
    assert_eq!(report.misses.len(), 1);
    assert!(
        report.misses[0]
            .nearest
            .as_deref()
            .is_some_and(|n| n.starts_with("ambiguous")),
        "{report}"
    );
}

#[tokio::test]
async fn pgsim_scope_picks_the_answers_recorded_in_it() {
    let Some(live) = live_url() else { return };
    let (dir, recorder, rec_url) = recording(&live).await;
    let pid = |c: tokio_postgres::Client| async move {
        c.query_one("select pg_backend_pid()", &[])
            .await
            .unwrap()
            .get::<_, i32>(0)
    };
    let options = |scope: &str| format!("{rec_url}?options=-c%20pgsim.scope%3D{scope}");
    // A real PostgreSQL takes the setting, at startup and by SET.
    let one = pid(connect(&options("one")).await).await;
    let two = pid(connect(&options("two")).await).await;
    let c = connect(&rec_url).await;
    c.batch_execute("SET pgsim.scope = 'three'").await.unwrap();
    let shown: String = c.query_one("show pgsim.scope", &[]).await.unwrap().get(0);
    assert_eq!(shown, "three");
    let three = pid(c).await;
    let summary = recorder.shutdown().await;
    assert!(summary.lost.is_empty(), "{summary}");

    let server = MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    assert_eq!(
        pid(connect(&server.scoped_url("postgres", "two")).await).await,
        two
    );
    assert_eq!(
        pid(connect(&server.scoped_url("postgres", "one")).await).await,
        one
    );
    let c = connect(&server.url()).await;
    c.batch_execute("SET pgsim.scope = 'three'").await.unwrap();
    assert_eq!(pid(c).await, three);
    // Without a scope nothing answers it, and the miss says where it is.
    let c = connect(&server.url()).await;
    let err = c
        .query_one("select pg_backend_pid()", &[])
        .await
        .expect_err("recorded only in scopes");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), pgsim::SQLSTATE_NO_RECORDING);
    let detail = db.detail().unwrap_or_default();
    for scope in ["\"one\"", "\"two\"", "\"three\""] {
        assert!(detail.contains(scope), "{detail}");
    }
    drop(server);
}

/// The toolkit's pool recorded with 2 connections, replayed with 16 (and
/// 1): every answer as recorded, not one miss, although each query now
/// comes on whichever connection the pool hands out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_2_recorded_replays_with_16_and_with_1() {
    let Some(live) = live_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let setup = connect(&live).await;
    setup
        .batch_execute("drop table if exists pgsim_pool_t; create table pgsim_pool_t (v int)")
        .await
        .unwrap();
    let run = |mode: Mode, max: usize| {
        let live = live.clone();
        async move {
            let client = Client::builder()
                .url(&live)
                .mode(mode)
                .max_connections(max)
                .build()
                .await
                .expect("the client builds");
            let mut out = Vec::new();
            for round in 0..4i32 {
                // Side by side: the pool spreads these over its connections.
                let mut tasks = Vec::new();
                for i in 0..16i32 {
                    let client = client.clone();
                    tasks.push(tokio::spawn(async move {
                        let row = client
                            .query_one("select $1::int4 * 10 + $2::int4", &[&round, &i])
                            .await
                            .map_err(|e| e.to_string())?;
                        Ok::<i32, String>(row.get(0))
                    }));
                }
                for t in tasks {
                    out.push(format!("{:?}", t.await.unwrap()));
                }
                // One after another: the same query answered differently
                // over time, on whichever connection.
                client
                    .execute("insert into pgsim_pool_t values ($1)", &[&round])
                    .await
                    .unwrap();
                let n: i64 = client
                    .query_one("select count(*) from pgsim_pool_t", &[])
                    .await
                    .unwrap()
                    .get(0);
                out.push(format!("count {n}"));
            }
            let closed = client.close().await.unwrap();
            (out, closed)
        }
    };
    let (live_out, closed) = run(
        Mode::Record {
            fixtures: dir.path().to_owned(),
        },
        2,
    )
    .await;
    assert!(
        matches!(closed, Closed::Recorded(ref s) if s.lost.is_empty()),
        "{closed:?}"
    );
    assert!(live_out.contains(&"count 4".to_owned()), "{live_out:?}");
    for max in [16, 1] {
        let (out, closed) = run(
            Mode::Replay {
                fixtures: dir.path().to_owned(),
            },
            max,
        )
        .await;
        assert_eq!(out, live_out, "replay with {max} connections");
        match closed {
            Closed::Replayed(report) => assert!(report.misses.is_empty(), "{report}"),
            other => panic!("{other:?}"),
        }
    }
    setup
        .batch_execute("drop table pgsim_pool_t")
        .await
        .unwrap();
}

/// psql and psycopg: two runs of one script with different data, the
/// second replayed alone and then both reversed print what they printed
/// live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_and_psycopg_clients_replay_alone_and_reversed() {
    let Some(live) = live_url() else { return };
    let psql_ok = Command::new("psql").arg("--version").output().is_ok();
    let psycopg_ok = Command::new("python3")
        .args(["-c", "import psycopg"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !(psql_ok && psycopg_ok) {
        assert!(
            !ci(),
            "CI=true but psql or psycopg is missing (see .ci/run)"
        );
        eprintln!("!!! scoped: SKIPPING the psql/psycopg test: psql or psycopg missing");
        return;
    }
    let (dir, recorder, rec_url) = recording(&live).await;
    let password = url_password(&live);
    let addr = recorder.addr();
    let conninfo = |port: u16| {
        format!("host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=disable")
    };
    let clients = |port: u16| {
        let conninfo = conninfo(port);
        let password = password.clone();
        move |kind: &str, name: &str| -> String {
            let out = match kind {
                "psql" => {
                    let script = "create temp table scoped_p (v text);\n\
                                  select count(*) from scoped_p;\n\
                                  insert into scoped_p values (:'name');\n\
                                  select v from scoped_p order by v;\n";
                    let mut child = Command::new("psql")
                        .args(["-X", "-A", "-t", "-v", &format!("name={name}"), "-f", "-"])
                        .arg(&conninfo)
                        .env("PGPASSWORD", &password)
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("psql starts");
                    use std::io::Write;
                    child
                        .stdin
                        .take()
                        .expect("stdin")
                        .write_all(script.as_bytes())
                        .expect("script written");
                    child.wait_with_output().expect("psql runs")
                }
                _ => {
                    let script = "import sys, psycopg\n\
                        with psycopg.connect(sys.argv[1]) as c:\n\
                        \x20   c.execute('create temp table scoped_y (v text)')\n\
                        \x20   print(c.execute('select count(*) from scoped_y').fetchall())\n\
                        \x20   c.execute('insert into scoped_y values (%s)', (sys.argv[2],))\n\
                        \x20   print(c.execute('select v from scoped_y order by v').fetchall())\n";
                    Command::new("python3")
                        .args(["-c", script, &conninfo, name])
                        .env("PGPASSWORD", &password)
                        .output()
                        .expect("python3 runs")
                }
            };
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr)
        }
    };
    let _ = rec_url;
    let record = clients(addr.port());
    let mut live_out = Vec::new();
    for kind in ["psql", "psycopg"] {
        for name in ["alpha", "beta"] {
            let r = record.clone();
            let (k, n) = (kind.to_owned(), name.to_owned());
            let out = tokio::task::spawn_blocking(move || r(&k, &n))
                .await
                .unwrap();
            assert!(out.contains(name), "{kind} {name} live: {out}");
            live_out.push(((kind, name), out));
        }
    }
    let summary = recorder.shutdown().await;
    assert!(summary.lost.is_empty(), "{summary}");
    for order in [vec![1usize], vec![1, 0], vec![3], vec![3, 2]] {
        let server = MockServer::builder()
            .fixtures(dir.path())
            .start()
            .await
            .unwrap();
        let replay = clients(server.addr().port());
        for i in order.clone() {
            let ((kind, name), want) = &live_out[i];
            let r = replay.clone();
            let (k, n) = (kind.to_string(), name.to_string());
            let got = tokio::task::spawn_blocking(move || r(&k, &n))
                .await
                .unwrap();
            assert_eq!(&got, want, "{kind} {name} in order {order:?}");
        }
        let report = tokio::time::timeout(Duration::from_secs(10), server.shutdown())
            .await
            .expect("shuts down");
        assert!(report.misses.is_empty(), "{report}");
    }
}
