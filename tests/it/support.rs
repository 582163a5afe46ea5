//! Helpers shared by the integration tests.

use std::path::PathBuf;

use pgsim::MockServer;

use crate::scenario::{self, Target};

/// The live server's URL from `PGSIM_LIVE_URL`. Without it the live tests
/// skip locally, but with `CI=true` a missing URL fails the test.
pub fn live_url() -> Option<String> {
    match std::env::var("PGSIM_LIVE_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but PGSIM_LIVE_URL is not set: live tests must run in CI (see .ci/run)")
        }
        Err(_) => {
            eprintln!("PGSIM_LIVE_URL not set: skipping a live test (set it to run against a real PostgreSQL)");
            None
        }
    }
}

/// The live server from `PGSIM_LIVE_URL` (see [`live_url`]).
pub fn live_target() -> Option<Target> {
    live_url()
        .map(|url| Target::from_url(&url).expect("PGSIM_LIVE_URL must be a valid PostgreSQL URL"))
}

/// Serialises live tests that rebuild the demo database.
pub static LIVE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
