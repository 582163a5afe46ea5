//! Helpers shared by the integration tests.

use std::path::PathBuf;

use pgsim::client::Closed;
use pgsim::MockServer;

use pgsim_recorder::scenario::{self, Target};

/// The live server's URL from `PGSIM_LIVE_URL`. Without it the live tests
/// skip locally, but with `CI=true` a missing URL fails the test.
pub fn live_url() -> Option<String> {
    live_var("PGSIM_LIVE_URL", "a live test")
}

/// The live replica's URL from `PGSIM_REPLICA_URL` (`.ci/replica.sh` starts
/// one), with the same rule as [`live_url`].
pub fn live_replica_url() -> Option<String> {
    live_var("PGSIM_REPLICA_URL", "a live replica test")
}

fn live_var(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but {var} is not set: live tests must run in CI (see .ci/run)")
        }
        Err(_) => {
            eprintln!("{var} not set: skipping {what} (set it to run against a real PostgreSQL)");
            None
        }
    }
}

/// Asserts a replay missed nothing (and, with `all_used`, asked for every
/// recorded answer); a client with replicas is checked node by node.
pub fn assert_replayed(closed: &Closed, what: &str, all_used: bool) {
    match closed {
        Closed::Replayed(report) => {
            assert!(report.misses.is_empty(), "{what}: misses\n{report}");
            assert!(
                !all_used || report.unused.is_empty(),
                "{what}: recorded answers never asked for\n{report}"
            );
        }
        Closed::Nodes(nodes) => {
            for (node, closed) in nodes {
                assert_replayed(closed, &format!("{what}/{node}"), all_used);
            }
        }
        other => panic!("{what}: expected a replay report, got {other:?}"),
    }
}

/// The live server from `PGSIM_LIVE_URL` (see [`live_url`]).
pub fn live_target() -> Option<Target> {
    live_url()
        .map(|url| Target::from_url(&url).expect("PGSIM_LIVE_URL must be a valid PostgreSQL URL"))
}

/// Serialises live tests that rebuild the demo database.
pub static LIVE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Only the tokio-postgres session of the demo recording sent this: a
/// connection that sends it first is answered as that session. Queries
/// other clients of the recording also sent (`select count(*) from
/// events`, answered differently by psql's session) are otherwise
/// ambiguous, and a miss (docs/FIXTURES.md, "Which answer a connection gets").
pub const DEMO_PIN: &str = "select * from items order by id";

pub fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo")
}

pub async fn demo_server() -> MockServer {
    MockServer::builder()
        .fixtures(demo_dir())
        .start()
        .await
        .expect("bundled fixtures load")
}

/// The target for a mock server (credentials are ignored: trust auth).
pub fn mock_target(server: &MockServer) -> Target {
    Target {
        host: "127.0.0.1".into(),
        port: server.addr().port(),
        user: "postgres".into(),
        password: String::new(),
    }
}

pub fn expected() -> scenario::Transcript {
    scenario::load_transcript(&demo_dir()).expect("bundled transcript")
}

/// Asserts two transcripts line by line, naming the first difference.
pub fn assert_same_lines(got: &[String], want: &[String], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: line {} differs", i + 1);
    }
    assert_eq!(got.len(), want.len(), "{what}: different number of lines");
}

/// The password in a PostgreSQL URL ("" when none).
pub fn url_password(url: &str) -> String {
    let config: tokio_postgres::Config = url.parse().expect("a valid PostgreSQL URL");
    config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default()
}

/// A recorder to the live server at `url` into a fresh directory, and the
/// URL a client uses to go through it.
pub async fn recording(url: &str) -> (tempfile::TempDir, pgsim::Recorder, String) {
    let dir = tempfile::tempdir().unwrap();
    let recorder = pgsim::Recorder::builder()
        .upstream(url)
        .fixtures(dir.path())
        .start()
        .await
        .expect("the recorder starts");
    // Callers append a path or a query: no query of its own here.
    let rec_url = format!(
        "postgres://postgres:{}@{}/postgres",
        url_password(url),
        recorder.addr()
    );
    (dir, recorder, rec_url)
}

/// A tokio-postgres client on `url`, its connection driven in the
/// background; panics naming the URL when it cannot connect.
pub async fn connect(url: &str) -> pgsim::tokio_postgres::Client {
    let (client, conn) = pgsim::tokio_postgres::connect(url, pgsim::tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(conn);
    client
}

/// Connects to `url` expecting the server to refuse: its SQLSTATE and
/// message.
pub async fn refusal(url: &str) -> (String, String) {
    match pgsim::tokio_postgres::connect(url, pgsim::tokio_postgres::NoTls).await {
        Ok(_) => panic!("{url} was let in"),
        Err(e) => {
            let db = e
                .as_db_error()
                .unwrap_or_else(|| panic!("not a server's refusal: {e}"));
            (db.code().code().to_owned(), db.message().to_owned())
        }
    }
}

/// Copies the tree at `from` into `to` (created), the files `keep` keeps
/// (directories are walked whenever `keep` keeps them).
pub fn copy_tree(
    from: &std::path::Path,
    to: &std::path::Path,
    keep: &dyn Fn(&std::path::Path) -> bool,
) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("a directory to copy") {
        let path = entry.expect("a directory entry").path();
        if !keep(&path) {
            continue;
        }
        let target = to.join(path.file_name().expect("a file name"));
        if path.is_dir() {
            copy_tree(&path, &target, keep);
        } else {
            std::fs::copy(&path, &target).expect("copy a file");
        }
    }
}

/// The live server's `url` for another database, as a libpq key=value
/// string (plaintext, the URL's user and password).
pub fn with_database(url: &str, database: &str) -> String {
    let config: tokio_postgres::Config = url.parse().expect("a valid PostgreSQL URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        other => panic!("a TCP host, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "host={host} port={port} user={} password='{}' dbname={database} sslmode=disable",
        config.get_user().unwrap_or("postgres"),
        url_password(url)
    )
}
