//! Record modes end to end through the `pgsim serve` binary, with psql as
//! the client: once, new, all and none, each against a real server.

use std::io::BufRead;
use std::path::Path;
use std::process::Command;

use crate::cli::{start, Reap};
use crate::support::{live_url, url_password};

/// `pgsim serve` on `dir` in `mode` (the CI variable as given).
fn serve(dir: &Path, mode: &str, upstream: &str, ci: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgsim"));
    c.args(["serve", "--listen", "127.0.0.1:0", "--record-mode", mode])
        .args(["--upstream", upstream])
        .arg("--fixtures")
        .arg(dir)
        .env_remove("PGSIM_RECORD_MODE")
        .env_remove("PGSIM_UPSTREAM");
    if ci {
        c.env("CI", "true");
    } else {
        c.env_remove("CI");
    }
    c
}

/// psql's output (and whether it succeeded) for `sql` on `port`.
fn psql(port: u16, password: &str, sql: &str) -> (bool, String) {
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-c", sql])
        .arg(format!(
            "host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=disable"
        ))
        .env("PGPASSWORD", password)
        .output()
        .expect("psql runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// SIGTERM, then everything it printed after its first line.
fn stop(child: Reap, out: impl BufRead) -> (bool, String) {
    stop_with("-TERM", child, out)
}

/// `signal`, then everything it printed after its first line.
fn stop_with(signal: &str, child: Reap, out: impl BufRead) -> (bool, String) {
    let mut child = child;
    let killed = Command::new("kill")
        .args([signal, &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.0.wait().expect("pgsim ends");
    let rest: String = out
        .lines()
        .map_while(Result::ok)
        .map(|l| l + "\n")
        .collect();
    (status.success(), rest)
}

fn fixture_count(dir: &Path) -> usize {
    pgsim::fixture::fixture_files(dir)
        .expect("the directory reads")
        .len()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("the directory reads")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // The index cache is meant to be there (and ignored by git).
        .filter(|n| n.starts_with('.') && n != pgsim::replay::CACHE_DIR)
        .collect()
}

#[test]
fn once_new_all_and_none_through_pgsim_serve() {
    let Some(live) = live_url() else { return };
    let password = url_password(&live);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let fixtures = dir.path().join("fixtures");
    // Nothing listens on port 1: a mode that must not record never needs it.
    let nowhere = "postgres://postgres@127.0.0.1:1/postgres";

    // once, under CI=true, with nothing recorded: refused, never inferred.
    let out = serve(&fixtures, "once", &live, true)
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("CI=true"), "{said}");

    // once, elsewhere: records the empty directory.
    let (child, port, out) = start(serve(&fixtures, "once", &live, false));
    let (ok, one) = psql(port, &password, "select 1 as a");
    assert!(ok && one.trim() == "1", "{one}");
    let (ok, summary) = stop(child, out);
    assert!(ok, "{summary}");
    assert_eq!(fixture_count(&fixtures), 1, "{summary}");

    // once again: the directory holds fixtures, so it replays (the
    // upstream is not even reachable).
    let (child, port, out) = start(serve(&fixtures, "once", nowhere, false));
    assert_eq!(psql(port, &password, "select 1 as a"), (true, one.clone()));
    assert!(stop(child, out).0);

    // new: the known session is not written twice, the new one is added.
    let (child, port, out) = start(serve(&fixtures, "new", &live, false));
    assert_eq!(psql(port, &password, "select 1 as a"), (true, one.clone()));
    let (ok, two) = psql(port, &password, "select 2 as b");
    assert!(ok && two.trim() == "2", "{two}");
    let (ok, summary) = stop(child, out);
    assert!(ok, "{summary}");
    assert!(
        summary.contains("1 new session(s) added") && summary.contains("1 already recorded"),
        "{summary}"
    );
    assert_eq!(fixture_count(&fixtures), 2);
    assert!(
        leftovers(&fixtures).is_empty(),
        "{:?}",
        leftovers(&fixtures)
    );

    // none: both replay, and a query never recorded is a miss that says
    // how to record it into this directory.
    let (child, port, out) = start(serve(&fixtures, "none", nowhere, false));
    assert_eq!(psql(port, &password, "select 1 as a"), (true, one.clone()));
    assert_eq!(psql(port, &password, "select 2 as b"), (true, two.clone()));
    let (ok, missed) = psql(port, &password, "select 3 as c");
    assert!(!ok && missed.contains("no recorded answer"), "{missed}");
    assert!(missed.contains("--record-mode new"), "{missed}");
    assert!(stop(child, out).0);

    // all: the new recording replaces the old set as a whole.
    let (child, port, out) = start(serve(&fixtures, "all", &live, false));
    let (ok, three) = psql(port, &password, "select 3 as c");
    assert!(ok && three.trim() == "3", "{three}");
    let (ok, summary) = stop(child, out);
    assert!(ok, "{summary}");
    assert!(summary.contains("replaced the fixtures"), "{summary}");
    assert_eq!(fixture_count(&fixtures), 1);
    assert!(
        leftovers(&fixtures).is_empty(),
        "{:?}",
        leftovers(&fixtures)
    );
    let (child, port, out) = start(serve(&fixtures, "none", nowhere, false));
    assert_eq!(psql(port, &password, "select 3 as c"), (true, three));
    let (ok, gone) = psql(port, &password, "select 1 as a");
    assert!(!ok, "the old answers are gone: {gone}");
    assert!(stop(child, out).0);
}

#[test]
fn a_bad_record_mode_is_refused_naming_the_choices() {
    let out = Command::new(env!("CARGO_BIN_EXE_pgsim"))
        .args(["serve", "--record-mode", "sometimes", "--fixtures", "x"])
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("none, once, new or all"), "{said}");
}

/// A Record-mode client whose upstream refuses it fails at build, with the
/// server's own error, and writes nothing.
#[tokio::test]
async fn a_recording_client_checks_its_upstream_at_build() {
    let Some(live) = live_url() else { return };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let wrong = live.replacen(
        &format!(":{}@", url_password(&live)),
        ":not-the-password@",
        1,
    );
    let err = pgsim::Client::builder()
        .url(&wrong)
        .mode(pgsim::Mode::Record {
            fixtures: dir.path().to_owned(),
        })
        .build()
        .await
        .expect_err("a wrong password");
    let text = err.to_string();
    assert!(text.contains("28P01"), "{text}");
    assert!(
        text.contains("recording needs the upstream server"),
        "{text}"
    );
    assert_eq!(fixture_count(dir.path()), 0);
}

#[test]
fn record_ends_on_sighup_with_its_journals_compacted() {
    let Some(live) = live_url() else { return };
    let password = url_password(&live);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let fixtures = dir.path().join("fixtures");
    let mut command = Command::new(env!("CARGO_BIN_EXE_pgsim"));
    command
        .args(["record", "--listen", "127.0.0.1:0", "--upstream", &live])
        .arg("--fixtures")
        .arg(&fixtures);
    let (child, port, out) = start(command);
    let (ok, one) = psql(port, &password, "select 1 as a");
    assert!(ok && one.trim() == "1", "{one}");
    // A closed terminal (SIGHUP) must not lose the recording.
    let (ok, summary) = stop_with("-HUP", child, out);
    assert!(ok, "{summary}");
    assert_eq!(fixture_count(&fixtures), 1, "{summary}");
    let names: Vec<String> = std::fs::read_dir(&fixtures)
        .expect("the directory reads")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with(".jsonl") && !n.starts_with('.')),
        "journals left: {names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with(".json")), "{names:?}");
}

/// A client still connected when the recorder shuts down is told, as
/// PostgreSQL's shutdown tells its clients: FATAL 57P01.
#[tokio::test]
async fn shutdown_ends_open_sessions_with_57p01() {
    let upstream = pgsim::MockServer::builder()
        .fixtures(crate::support::demo_dir())
        .start()
        .await
        .expect("an upstream");
    let dir = tempfile::tempdir().expect("a directory");
    let recorder = pgsim::Recorder::builder()
        .upstream(upstream.addr().to_string())
        .fixtures(dir.path())
        .start()
        .await
        .expect("the recorder starts");
    let (client, connection) = pgsim::tokio_postgres::connect(
        &recorder.url_for("pgsim_demo"),
        pgsim::tokio_postgres::NoTls,
    )
    .await
    .expect("connects through the recorder");
    let connection = tokio::spawn(connection);
    client
        .simple_query(crate::support::DEMO_PIN)
        .await
        .expect("answered");
    let summary = recorder.shutdown().await;
    let ended = connection.await.expect("the connection task");
    let e = ended.expect_err("the session was ended by the recorder");
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e}"));
    assert_eq!(db.code().code(), "57P01");
    assert_eq!(
        db.message(),
        "terminating connection due to administrator command"
    );
    assert_eq!(summary.exchanges, 1, "{summary}");
    assert!(summary.lost.is_empty(), "{summary}");
    drop(client);
}
