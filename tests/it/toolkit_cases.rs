//! The client toolkit, case by case: each runs in Replay against the bundled
//! fixtures and must see what the live server showed when they were
//! recorded; with a live server it is recorded again into a temporary
//! directory, must still see the same, and that recording must replay to
//! the same transcript.

use pgsim::client::Closed;
use pgsim::Mode;

use crate::support::{assert_replayed, assert_same_lines, live_url, LIVE_LOCK};
use pgsim_recorder::toolkit::{self, load_lines, run_case};

/// In Replay only the user and database of the URL matter.
const REPLAY_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

async fn check(name: &str) {
    let case = toolkit::case(name).expect("a toolkit case");
    let bundled = toolkit::fixtures_dir().join(name);
    let expected = load_lines(&bundled).expect("bundled transcript");

    let (lines, closed) = run_case(&case, REPLAY_URL, Mode::Replay { fixtures: bundled })
        .await
        .expect("replay the bundled fixtures");
    assert_same_lines(
        &lines,
        &expected,
        &format!("{name}: replay vs recorded transcript"),
    );
    assert_replayed(&closed, name, true);

    let Some(url) = live_url() else {
        return;
    };
    let _live = LIVE_LOCK.lock().await;
    toolkit::setup(&url).await.expect("toolkit database");
    let dir = tempfile::tempdir().expect("temp dir");
    let (live, closed) = run_case(
        &case,
        &url,
        Mode::Record {
            fixtures: dir.path().into(),
        },
    )
    .await
    .expect("record live");
    assert!(
        matches!(closed, Closed::Recorded(ref s) if s.exchanges > 0),
        "{closed:?}"
    );
    assert_same_lines(
        &live,
        &expected,
        &format!("{name}: live today vs bundled transcript"),
    );
    let (replayed, closed) = run_case(
        &case,
        REPLAY_URL,
        Mode::Replay {
            fixtures: dir.path().into(),
        },
    )
    .await
    .expect("replay the new recording");
    assert_same_lines(
        &replayed,
        &live,
        &format!("{name}: replay of today's recording vs live"),
    );
    assert_replayed(&closed, name, true);
}

#[tokio::test]
async fn queries_check_parameters_cache_statements_and_stream_rows() {
    check("queries").await;
}

#[tokio::test]
async fn typed_values_survive_every_mode() {
    check("values").await;
}

#[tokio::test]
async fn exhausted_pool_gives_a_typed_timeout_and_serves_waiters() {
    check("pool_exhaustion").await;
}

#[tokio::test]
async fn pool_keeps_min_idle_warm_and_retires_idle_connections() {
    check("pool_lifecycle").await;
}

#[tokio::test]
async fn pool_replaces_connections_past_max_lifetime() {
    check("pool_max_lifetime").await;
}

#[tokio::test]
async fn statement_timeout_cancels_slow_statements() {
    check("statement_timeout").await;
}

#[tokio::test]
async fn transactions_commit_roll_back_and_keep_savepoints() {
    check("transactions").await;
}

#[tokio::test]
async fn closure_transactions_retry_serialization_failures_within_a_bound() {
    check("transaction_retry").await;
}

#[tokio::test]
async fn readme_example_runs_in_every_mode() {
    check("readme").await;
}

/// Keyset pages (integer and text keys, both directions, the token handed
/// back as a string) and limit/offset pages over a table larger than a page.
#[tokio::test]
async fn keyset_and_offset_pages_walk_every_row_once() {
    check("pagination").await;
}

/// Pipelined statements (per-statement results, or the first error) and a
/// 250-row result read through a portal in batches of 100.
#[tokio::test]
async fn pipelines_and_cursors_read_what_the_server_sent() {
    check("batches").await;
}

/// Every file under `dir` with its bytes, by path relative to `dir`.
fn files(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
    ) {
        for entry in std::fs::read_dir(dir).expect("a fixture directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under the root").to_owned();
                out.insert(rel, std::fs::read(&path).expect("a fixture file"));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[tokio::test]
async fn re_recording_one_case_leaves_the_other_cases_untouched() {
    let Some(url) = live_url() else {
        return;
    };
    let _live = LIVE_LOCK.lock().await;
    let copy = tempfile::tempdir().expect("temp dir");
    for (rel, bytes) in files(&toolkit::fixtures_dir()) {
        let target = copy.path().join(&rel);
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("a case directory");
        std::fs::write(&target, bytes).expect("copy a fixture");
    }
    let before = files(copy.path());
    let dir = toolkit::record_case(&url, copy.path(), "readme")
        .await
        .expect("re-record one case");
    assert_eq!(dir, copy.path().join("readme"));
    let after = files(copy.path());
    let others = |m: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>| {
        m.iter()
            .filter(|(p, _)| !p.starts_with("readme"))
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    assert!(others(&before).len() > 10, "the other cases were copied");
    assert!(
        others(&before) == others(&after),
        "another case's files changed"
    );
    assert_eq!(
        load_lines(&dir).expect("the new transcript"),
        load_lines(&toolkit::fixtures_dir().join("readme")).expect("the bundled transcript")
    );
    assert!(
        after.contains_key(std::path::Path::new("readme/session-0001.json")),
        "{:?}",
        after.keys().collect::<Vec<_>>()
    );
}

/// Toolkit metrics per statement kind and node, hooks around every query,
/// acquire and release (a failing and a panicking hook change nothing),
/// and the health report with its serialized form: the same in Replay,
/// live, and in a replay of today's recording.
#[tokio::test]
async fn metrics_hooks_and_health_see_every_query_in_every_mode() {
    check("observability").await;
}

/// The whole of `metrics_text()` after the `observability` case replayed
/// (latency buckets included) parses as Prometheus text, and says what the
/// case did; an application's own registry gets the same under its prefix.
#[tokio::test]
async fn client_metrics_parse_as_prometheus_text() {
    let case = toolkit::Case {
        name: "observability",
        configure: toolkit::case("observability")
            .expect("the observability case")
            .configure,
        run: |c| {
            Box::pin(async move {
                let run = toolkit::case("observability")
                    .expect("the observability case")
                    .run;
                run(c).await;
                let mut registry = pgsim::prometheus_client::registry::Registry::with_prefix("app");
                c.register_metrics(&mut registry);
                let mut theirs = String::new();
                pgsim::prometheus_client::encoding::prometheus_text::encode(&mut theirs, &registry)
                    .expect("encode the application's registry");
                vec![c.metrics_text(), theirs]
            })
        },
    };
    let bundled = toolkit::fixtures_dir().join("observability");
    let (texts, closed) = run_case(&case, REPLAY_URL, Mode::Replay { fixtures: bundled })
        .await
        .expect("replay the bundled fixtures");
    assert_replayed(&closed, "observability", true);
    let ours = crate::metrics::Metrics::parse(&texts[0]);
    let select = [("node", "primary"), ("kind", "select")];
    // Five selects: the rows, the division, the missing row, the count and
    // the health check.
    assert_eq!(ours.value("pgsim_client_queries_total", &select), 5.0);
    assert_eq!(
        ours.observations("pgsim_client_query_duration_seconds", &select),
        5.0
    );
    assert_eq!(
        ours.value(
            "pgsim_client_query_errors_total",
            &[("kind", "insert"), ("class", "23")]
        ),
        1.0
    );
    assert_eq!(
        ours.value("pgsim_client_pool_acquire_timeouts_total", &[]),
        1.0
    );
    assert_eq!(
        ours.value(
            "pgsim_client_hook_failures_total",
            &[("hook", "after_query")]
        ),
        1.0
    );
    let theirs = crate::metrics::Metrics::parse(&texts[1]);
    assert_eq!(theirs.value("app_pgsim_client_queries_total", &select), 5.0);
}

#[tokio::test]
async fn tenants_see_only_their_own_schema_or_database() {
    check("tenancy").await;
}

#[tokio::test]
async fn the_password_provider_is_asked_once_per_new_connection() {
    check("credentials").await;
}

#[tokio::test]
async fn migrations_apply_revert_in_order_and_refuse_changed_files() {
    check("migrations").await;
}

#[tokio::test]
async fn backup_and_restore_run_pg_dump_and_pg_restore_and_verify_row_counts() {
    check("backup_restore").await;
}
