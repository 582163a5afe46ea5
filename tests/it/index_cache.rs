//! The index cache (`DIR/.pgsim-cache/index.bin`) end to end: a warm load
//! serves exactly what a cold one does, and a changed fixture, a corrupt,
//! truncated or stale cache, or the cache turned off are each noticed.

use std::path::Path;

use pgsim::replay::{LoadOptions, CACHE_DIR, CACHE_FILE};
use pgsim::tokio_postgres::{self, NoTls};
use pgsim::MockServer;
use pgsim_recorder::scenario;

use crate::support::{assert_same_lines, copy_tree, demo_dir, expected, mock_target, DEMO_PIN};

/// A copy of the demo fixtures without any cache.
fn demo_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    copy_tree(&demo_dir(), dir.path(), &|p| {
        p.file_name().is_none_or(|n| n != CACHE_DIR)
    });
    dir
}

async fn start(dir: &Path, options: LoadOptions) -> MockServer {
    MockServer::builder()
        .fixtures(dir)
        .load_options(options)
        .start()
        .await
        .expect("the copied fixtures load")
}

fn cached() -> LoadOptions {
    LoadOptions {
        index_cache: true,
        ..LoadOptions::default()
    }
}

/// The whole demo scenario against `server`, compared with what the live
/// server sent when it was recorded.
async fn assert_replays_the_demo(server: &MockServer, what: &str) {
    let want = expected();
    let got = scenario::run_all(&mock_target(server))
        .await
        .expect("the scenario runs against the mock");
    assert_same_lines(&got.tokio, &want.tokio, &format!("{what}: tokio-postgres"));
    let lines = |s: &str| s.lines().map(str::to_owned).collect::<Vec<_>>();
    assert_same_lines(
        &lines(&got.psql),
        &lines(&want.psql),
        &format!("{what}: psql"),
    );
    assert_eq!(got.pgbench, want.pgbench, "{what}: pgbench");
    let report = server.report();
    assert!(report.misses.is_empty(), "{what}: {report}");
}

/// The names of the demo's items, as the pinned query returns them.
async fn item_names(server: &MockServer) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(&server.url_for(scenario::DEMO_DB), NoTls)
        .await
        .expect("connects to the mock");
    tokio::spawn(conn);
    client
        .query(DEMO_PIN, &[])
        .await
        .expect("the pinned query replays")
        .iter()
        .map(|r| r.get::<_, String>("name"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_load_serves_every_client_what_a_cold_one_does() {
    let dir = demo_copy();
    let cold = start(dir.path(), cached()).await;
    let stats = cold.load_stats().expect("loaded from a directory").clone();
    assert!(
        stats.files > 5 && stats.parsed == stats.files && stats.from_cache == 0,
        "{stats:?}"
    );
    assert!(stats.cache_written, "{stats:?}");
    assert!(dir.path().join(CACHE_DIR).join(CACHE_FILE).is_file());
    let cold_warnings = cold.warnings().to_vec();
    assert_replays_the_demo(&cold, "cold").await;
    cold.shutdown().await;

    let warm = start(dir.path(), cached()).await;
    let again = warm.load_stats().expect("loaded from a directory");
    assert_eq!(
        (again.from_cache, again.parsed),
        (stats.files, 0),
        "{again:?}"
    );
    assert!(
        !again.cache_written,
        "nothing changed, nothing written: {again:?}"
    );
    assert_eq!(warm.warnings(), cold_warnings.as_slice());
    assert_replays_the_demo(&warm, "warm").await;
    warm.shutdown().await;

    // Not committed: the cache ignores itself.
    let ignore = std::fs::read_to_string(dir.path().join(CACHE_DIR).join(".gitignore"))
        .expect("the cache directory has a .gitignore");
    assert!(ignore.lines().any(|l| l.trim() == "*"), "{ignore}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixture_edited_after_caching_is_read_again_from_its_json() {
    let dir = demo_copy();
    let first = start(dir.path(), cached()).await;
    assert_eq!(item_names(&first).await[0], "apple");
    first.shutdown().await;

    // Same length, same name, same timestamps' second: only the content
    // hash can tell.
    let mut edited = 0;
    for path in pgsim::fixture::fixture_files(dir.path()).expect("lists") {
        let text = std::fs::read_to_string(&path).expect("reads");
        if text.contains(DEMO_PIN) && text.contains("\"apple\"") {
            std::fs::write(&path, text.replace("\"apple\"", "\"apfel\"")).expect("writes");
            edited += 1;
        }
    }
    assert_eq!(edited, 1, "one session sent the pinned query");
    let second = start(dir.path(), cached()).await;
    let stats = second.load_stats().expect("loaded").clone();
    assert_eq!(
        (stats.parsed, stats.from_cache + 1),
        (1, stats.files),
        "{stats:?}"
    );
    assert!(stats.cache_written, "{stats:?}");
    assert_eq!(item_names(&second).await[0], "apfel");
    second.shutdown().await;

    let third = start(dir.path(), cached()).await;
    assert_eq!(third.load_stats().expect("loaded").parsed, 0);
    assert_eq!(item_names(&third).await[0], "apfel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_truncated_cache_is_said_ignored_and_rebuilt() {
    let dir = demo_copy();
    start(dir.path(), cached()).await.shutdown().await;
    let path = dir.path().join(CACHE_DIR).join(CACHE_FILE);
    let good = std::fs::read(&path).expect("the cache was written");

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let half = good[..good.len() / 2].to_vec();
    for (what, bad) in [("a flipped byte", flipped), ("a truncated file", half)] {
        std::fs::write(&path, &bad).expect("writes");
        let server = start(dir.path(), cached()).await;
        let stats = server.load_stats().expect("loaded").clone();
        assert_eq!(stats.from_cache, 0, "{what}: {stats:?}");
        assert!(stats.cache_written, "{what}: rebuilt");
        let said = server.warnings().join("\n");
        assert!(
            said.contains("index cache ignored and rebuilt") && said.contains(CACHE_FILE),
            "{what}: {said}"
        );
        assert_replays_the_demo(&server, what).await;
        server.shutdown().await;
        let rebuilt = start(dir.path(), cached()).await;
        assert_eq!(rebuilt.load_stats().expect("loaded").parsed, 0, "{what}");
        assert!(rebuilt
            .warnings()
            .iter()
            .all(|w| !w.contains("index cache")));
        rebuilt.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_files_and_new_rules_make_the_cache_stale_without_a_word() {
    let dir = demo_copy();
    start(dir.path(), cached()).await.shutdown().await;
    let files = pgsim::fixture::fixture_files(dir.path()).expect("lists");
    let last = files.last().expect("the demo has files");
    std::fs::remove_file(last).expect("removes");
    let fewer = start(dir.path(), cached()).await;
    let stats = fewer.load_stats().expect("loaded").clone();
    assert_eq!(
        (stats.files, stats.parsed),
        (files.len() - 1, 0),
        "{stats:?}"
    );
    assert!(
        stats.cache_written,
        "the cache no longer holds the removed file"
    );
    fewer.shutdown().await;

    // Rules change how keys are made: every file is keyed again.
    std::fs::write(
        dir.path().join("pgsim-rules.json"),
        r#"{"rules": [{"query": "^select nothing", "param": 1, "match": "any"}]}"#,
    )
    .expect("writes the rules");
    let ruled = start(dir.path(), cached()).await;
    let stats = ruled.load_stats().expect("loaded").clone();
    assert_eq!(
        (stats.parsed, stats.from_cache),
        (stats.files, 0),
        "{stats:?}"
    );
    assert!(ruled.warnings().iter().all(|w| !w.contains("index cache")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_turned_off_is_neither_read_nor_written() {
    let dir = demo_copy();
    let off = LoadOptions {
        index_cache: false,
        ..LoadOptions::default()
    };
    let server = start(dir.path(), off.clone()).await;
    let stats = server.load_stats().expect("loaded").clone();
    assert!(
        !stats.cache_written && stats.parsed == stats.files,
        "{stats:?}"
    );
    assert!(!dir.path().join(CACHE_DIR).exists());
    server.shutdown().await;

    // A cache made earlier is not read either.
    start(dir.path(), cached()).await.shutdown().await;
    let server = start(dir.path(), off).await;
    assert_eq!(server.load_stats().expect("loaded").from_cache, 0);
}

#[test]
fn pgsim_serve_says_where_its_fixtures_came_from() {
    use std::process::{Command, Stdio};
    let dir = demo_copy();
    let said = |extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pgsim"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--fixtures"])
            .arg(dir.path())
            .args(extra)
            .env_remove("PGSIM_INDEX_CACHE")
            .stderr(Stdio::piped());
        // Its first line on stdout comes after the load was reported.
        let (mut child, _port, _out) = crate::cli::start(command);
        let _ = child.0.kill();
        let mut stderr = String::new();
        std::io::Read::read_to_string(
            &mut child.0.stderr.take().expect("stderr is piped"),
            &mut stderr,
        )
        .expect("stderr reads");
        stderr
    };
    let n = pgsim::fixture::fixture_files(dir.path())
        .expect("lists")
        .len();
    let cold = said(&[]);
    assert!(
        cold.contains(&format!("loaded {n} fixture file(s)"))
            && cold.contains(&format!(
                "(0 from the index cache, {n} parsed; index cache written)"
            )),
        "{cold}"
    );
    let warm = said(&[]);
    assert!(
        warm.contains(&format!("({n} from the index cache, 0 parsed)")),
        "{warm}"
    );
    let off = said(&["--no-index-cache"]);
    assert!(
        off.contains(&format!("(0 from the index cache, {n} parsed)")),
        "{off}"
    );
}

#[tokio::test]
async fn an_empty_directory_gets_no_cache() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = start(dir.path(), cached()).await;
    let stats = server.load_stats().expect("loaded").clone();
    assert!(stats.files == 0 && !stats.cache_written, "{stats:?}");
    assert!(!dir.path().join(CACHE_DIR).exists());
}
