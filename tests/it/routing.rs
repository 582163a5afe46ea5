//! Routing, resilience and faults. The scenario recorded from a real
//! primary and standby replays to what live showed; the outage tests run
//! the same client against one mock server per node with faults injected,
//! deterministically.

use std::time::Duration;

use pgsim::client::{BreakerConfig, BreakerState, Closed, Jitter, RetryPolicy};
use pgsim::{Client, ClientBuilder, Error, MockServer, Mode};

use crate::support::{assert_replayed, assert_same_lines, live_replica_url, live_url, LIVE_LOCK};
use pgsim_recorder::routing::{self as scenario, fixtures_dir, READ, UPDATE};
use pgsim_recorder::toolkit::TOOLKIT_DB;

/// In Replay only the database matters.
const REPLAY_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn expected() -> Vec<String> {
    let path = fixtures_dir().join("expected/lines.txt");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn replayed_fully(closed: &Closed) {
    assert!(
        matches!(closed, Closed::Nodes(nodes) if nodes.len() == 3),
        "expected one report per node, got {closed:?}"
    );
    assert_replayed(closed, "routing", false);
}

#[tokio::test]
async fn primary_and_replicas_replay_what_they_recorded() {
    let (lines, closed) = scenario::run_mode(
        REPLAY_URL,
        REPLAY_URL,
        Mode::Replay {
            fixtures: fixtures_dir(),
        },
    )
    .await
    .expect("replay");
    assert_same_lines(&lines, &expected(), "routing replay vs recording");
    replayed_fully(&closed);

    let Some(primary) = live_url() else {
        return;
    };
    let Some(replica) = live_replica_url() else {
        return;
    };
    let _live = LIVE_LOCK.lock().await;
    pgsim_recorder::toolkit::setup(&primary)
        .await
        .expect("toolkit database");
    let dir = tempfile::tempdir().expect("temp dir");
    let (live, _) = scenario::run_mode(
        &primary,
        &replica,
        Mode::Record {
            fixtures: dir.path().into(),
        },
    )
    .await
    .expect("live primary and replica");
    assert_same_lines(&live, &expected(), "live today vs bundled transcript");
    let (again, closed) = scenario::run_mode(
        REPLAY_URL,
        REPLAY_URL,
        Mode::Replay {
            fixtures: dir.path().into(),
        },
    )
    .await
    .expect("replay of today's recording");
    assert_same_lines(&again, &live, "replay of today's recording vs live");
    replayed_fully(&closed);
}

/// One mock server per node over the bundled routing fixtures, with faults.
struct Nodes {
    primary: MockServer,
    replicas: [MockServer; 2],
}

async fn node(name: &str, faults: &[&str]) -> MockServer {
    let mut b = MockServer::builder()
        .fixtures(fixtures_dir().join(name))
        .seed(7);
    for f in faults {
        b = b.fault(*f);
    }
    b.start().await.expect("node fixtures load")
}

impl Nodes {
    async fn start(primary: &[&str], r1: &[&str], r2: &[&str]) -> Nodes {
        Nodes {
            primary: node("primary", primary).await,
            replicas: [node("replica-1", r1).await, node("replica-2", r2).await],
        }
    }

    fn builder(&self) -> ClientBuilder {
        let url =
            |s: &MockServer| format!("postgres://postgres@127.0.0.1:{}/postgres", s.addr().port());
        Client::builder()
            .primary(url(&self.primary))
            .replica(url(&self.replicas[0]))
            .replica(url(&self.replicas[1]))
            .database(TOOLKIT_DB)
            .max_connections(2)
    }

    /// Only the primary, for single-node resilience tests.
    fn primary_only(&self) -> ClientBuilder {
        Client::builder()
            .url(format!(
                "postgres://postgres@127.0.0.1:{}/postgres",
                self.primary.addr().port()
            ))
            .database(TOOLKIT_DB)
            .max_connections(2)
    }
}

async fn reads(c: &Client, n: usize) {
    for _ in 0..n {
        let v: String = c
            .query_one(READ, &[&3i32])
            .await
            .expect("read served")
            .get(0);
        assert_eq!(v, "v3");
    }
}

fn replica_reads(c: &Client) -> (u64, u64) {
    let s = c.routing_stats();
    (s.replica_reads["replica-1"], s.replica_reads["replica-2"])
}

#[tokio::test]
async fn an_unreachable_replica_leaves_the_rotation_and_rejoins() {
    // The health check at build is refused; the next connection is not.
    let nodes = Nodes::start(&[], &["refuse,times=1"], &[]).await;
    let c = nodes.builder().build().await.expect("client");
    let at_build = c.last_health();
    assert!(!at_build[1].healthy && at_build[2].healthy, "{at_build:?}");
    reads(&c, 4).await;
    assert_eq!(
        replica_reads(&c),
        (0, 4),
        "only the reachable replica reads"
    );
    assert!(
        c.check_health().await.iter().all(|h| h.healthy),
        "the fault ended"
    );
    reads(&c, 4).await;
    assert_eq!(replica_reads(&c), (2, 6), "back in rotation");
    assert_eq!(c.routing_stats().fallbacks, 0);
}

#[tokio::test]
async fn reads_fall_back_to_the_primary_when_no_replica_is_reachable() {
    let nodes = Nodes::start(&[], &["refuse"], &["refuse"]).await;
    let c = nodes.builder().build().await.expect("client");
    reads(&c, 3).await;
    c.execute(UPDATE, &[&"changed", &1i32])
        .await
        .expect("write");
    let s = c.routing_stats();
    assert_eq!((s.primary_reads, s.primary_writes, s.fallbacks), (3, 1, 3));
    assert_eq!(replica_reads(&c), (0, 0));
}

#[tokio::test]
async fn a_replica_that_drops_a_read_hands_it_to_the_next_node_at_once() {
    let nodes = Nodes::start(&[], &["match=rt_items,drop,times=1"], &[]).await;
    let c = nodes.builder().build().await.expect("client");
    reads(&c, 3).await;
    let s = c.routing_stats();
    assert_eq!(s.failovers, 1);
    assert_eq!(replica_reads(&c), (0, 3));
    assert_eq!(nodes.replicas[0].faults()[0].fired, 1);
}

#[tokio::test(start_paused = true)]
async fn two_serialization_failures_then_success_on_the_seeded_schedule() {
    let nodes = Nodes::start(
        &["match=^select v from rt_items,error=40001,times=2"],
        &[],
        &[],
    )
    .await;
    let policy = RetryPolicy::exponential(Duration::from_millis(100))
        .max_attempts(3)
        .jitter(Jitter::Full)
        .seed(7);
    let c = nodes
        .primary_only()
        .retry(policy.clone())
        .build()
        .await
        .expect("client");
    let started = tokio::time::Instant::now();
    let v: String = c
        .query_one(READ, &[&3i32])
        .await
        .expect("third attempt")
        .get(0);
    assert_eq!(v, "v3");
    assert_eq!(c.routing_stats().retries, 2, "three attempts in all");
    let waited: Duration = policy.schedule().iter().sum();
    assert!(
        started.elapsed() >= waited,
        "{:?} < {waited:?}",
        started.elapsed()
    );
    assert_eq!(nodes.primary.faults()[0].fired, 2);
}

#[tokio::test]
async fn a_unique_violation_is_never_retried() {
    let nodes = Nodes::start(&["match=^update,error=23505"], &[], &[]).await;
    let policy = RetryPolicy::exponential(Duration::from_millis(1))
        .max_attempts(5)
        .retry_writes(true);
    let c = nodes
        .primary_only()
        .retry(policy)
        .build()
        .await
        .expect("client");
    let e = c
        .execute(UPDATE, &[&"changed", &1i32])
        .await
        .expect_err("23505");
    assert_eq!(e.code(), Some("23505"));
    assert_eq!(c.routing_stats().retries, 0);
    assert_eq!(nodes.primary.faults()[0].matched, 1);
}

/// The primary's breaker cools down this long.
const COOLDOWN: Duration = Duration::from_secs(10);

/// A primary-only client whose breaker opens after two failures for
/// [`COOLDOWN`], opened by two reads the primary's first faults fail with
/// 53300.
async fn tripped_breaker(nodes: &Nodes) -> Client {
    let c = nodes
        .primary_only()
        .circuit_breaker(BreakerConfig {
            failure_threshold: 2,
            cooldown: COOLDOWN,
        })
        .build()
        .await
        .expect("client");
    for _ in 0..2 {
        let e = c.query_one(READ, &[&3i32]).await.expect_err("injected");
        assert_eq!(e.code(), Some("53300"));
    }
    c
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_rejects_half_opens_and_closes() {
    let nodes = Nodes::start(&["match=rt_items,error=53300,times=3"], &[], &[]).await;
    let c = tripped_breaker(&nodes).await;
    let read = || c.query_one(READ, &[&3i32]);
    let state = |c: &Client| c.routing_stats().breakers["primary"];
    assert_eq!(state(&c).state, BreakerState::Open);
    assert!(
        matches!(read().await, Err(Error::CircuitOpen { .. })),
        "rejected fast"
    );
    assert_eq!(
        nodes.primary.faults()[0].matched,
        2,
        "nothing sent while open"
    );
    tokio::time::advance(COOLDOWN).await;
    assert_eq!(
        read().await.expect_err("the probe fails").code(),
        Some("53300")
    );
    assert_eq!(
        state(&c).state,
        BreakerState::Open,
        "a failed probe reopens"
    );
    tokio::time::advance(COOLDOWN).await;
    read().await.expect("the probe succeeds");
    let s = state(&c);
    assert_eq!(
        (s.state, s.opened, s.half_opened, s.closed),
        (BreakerState::Closed, 2, 2, 1)
    );
}

#[tokio::test]
async fn a_connection_dropped_mid_transaction_retries_the_whole_transaction() {
    let nodes = Nodes::start(&["match=^update rt_items,drop,times=1"], &[], &[]).await;
    let c = nodes.primary_only().build().await.expect("client");
    let mut attempts = Vec::new();
    let v = c
        .transaction(async |tx| {
            attempts.push(tx.attempt());
            tx.execute(UPDATE, &[&"in a transaction", &2i32]).await?;
            tx.query_one("select v from rt_items where id = 2", &[])
                .await
                .map(|r| r.get::<_, String>(0))
        })
        .await
        .expect("the second attempt commits");
    assert_eq!((attempts, v.as_str()), (vec![1, 2], "in a transaction"));
}

#[tokio::test]
async fn without_the_closure_a_dropped_connection_is_a_typed_error_and_nothing_is_resent() {
    let nodes = Nodes::start(&["match=^update rt_items,drop,times=1"], &[], &[]).await;
    let c = nodes.primary_only().build().await.expect("client");
    let mut conn = c.acquire().await.expect("connection");
    let tx = conn.begin().await.expect("begin");
    let e = tx
        .execute(UPDATE, &[&"in a transaction", &2i32])
        .await
        .expect_err("dropped");
    assert!(e.is_connection_error() && e.code().is_none(), "{e}");
    drop(tx);
    drop(conn);
    assert_eq!(
        nodes.primary.faults()[0].matched,
        1,
        "the update was sent once"
    );
}

#[tokio::test]
async fn injected_latency_exhausts_the_pool_into_a_typed_timeout() {
    let nodes = Nodes::start(&["match=rt_items,latency=400"], &[], &[]).await;
    let c = nodes
        .primary_only()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(50))
        .build()
        .await
        .expect("client");
    let slow = {
        let c = c.clone();
        tokio::spawn(async move { c.query_one(READ, &[&3i32]).await.map(|_| ()) })
    };
    while c.pool_stats().in_use == 0 {
        tokio::task::yield_now().await;
    }
    let e = c
        .query_one(READ, &[&3i32])
        .await
        .expect_err("pool exhausted");
    assert!(matches!(e, Error::AcquireTimeout { .. }), "{e}");
    slow.await.expect("task").expect("the slow read completes");
}

#[tokio::test(start_paused = true)]
async fn a_probe_dropped_by_a_timeout_reopens_the_breaker_instead_of_wedging_it() {
    // Two errors open the breaker; the probe after the cooldown is slow and
    // its caller gives up on it.
    let nodes = Nodes::start(
        &[
            "match=rt_items,error=53300,times=2",
            "match=rt_items,latency=60000,times=1",
        ],
        &[],
        &[],
    )
    .await;
    let c = tripped_breaker(&nodes).await;
    let read = || c.query_one(READ, &[&3i32]);
    tokio::time::advance(COOLDOWN).await;
    let gave_up = tokio::time::timeout(Duration::from_secs(1), read()).await;
    assert!(gave_up.is_err(), "the probe is still waiting: {gave_up:?}");
    let s = c.routing_stats().breakers["primary"];
    assert_eq!(
        (s.state, s.half_opened, s.opened),
        (BreakerState::Open, 1, 2),
        "an abandoned probe counts as a failed one"
    );
    tokio::time::advance(COOLDOWN).await;
    read()
        .await
        .expect("the next probe goes through and succeeds");
    assert_eq!(
        c.routing_stats().breakers["primary"].state,
        BreakerState::Closed
    );
}

#[tokio::test]
async fn a_connection_dropped_at_commit_is_outcome_unknown_and_never_rerun() {
    let nodes = Nodes::start(&["match=^commit,drop,times=1"], &[], &[]).await;
    let c = nodes.primary_only().build().await.expect("client");
    let mut attempts = Vec::new();
    let e = c
        .transaction(async |tx| {
            attempts.push(tx.attempt());
            tx.execute(UPDATE, &[&"in a transaction", &2i32]).await
        })
        .await
        .expect_err("COMMIT got no answer");
    assert_eq!(attempts, [1], "the closure ran once");
    assert!(
        matches!(e, Error::CommitOutcomeUnknown { .. }),
        "a typed error, got {e}"
    );
    assert!(!e.is_transient(), "not worth retrying blindly: {e}");
    assert!(e.to_string().contains("may have been applied"), "{e}");
    assert_eq!(nodes.primary.faults()[0].matched, 1, "COMMIT was sent once");
}

#[tokio::test]
async fn close_closes_every_node_even_after_one_fails() {
    let c = scenario::client(
        REPLAY_URL,
        REPLAY_URL,
        Mode::Replay {
            fixtures: fixtures_dir(),
        },
    )
    .await
    .expect("client");
    // Closing replica-1 on its own makes the client's close fail there.
    let replica_1 = c.node("replica-1").expect("replica-1");
    replica_1.close().await.expect("replica-1 closes once");
    let e = c.close().await.expect_err("replica-1 was already closed");
    let text = e.to_string();
    assert!(text.contains("replica-1"), "names the node: {text}");
    assert!(
        c.replay_report().is_none(),
        "the primary's mock server was shut down as well"
    );
    let replica_2 = c.node("replica-2").expect("replica-2");
    assert!(replica_2.replay_report().is_none(), "and replica-2's");
    match e {
        Error::Close { failed, closed } => {
            assert_eq!(failed.keys().collect::<Vec<_>>(), ["replica-1"]);
            assert!(
                matches!(failed["replica-1"], Error::PoolClosed),
                "{failed:?}"
            );
            assert_eq!(closed.keys().collect::<Vec<_>>(), ["primary", "replica-2"]);
        }
        other => panic!("expected Error::Close, got {other:?}"),
    }
}

#[tokio::test]
async fn a_manual_commit_that_gets_no_answer_is_outcome_unknown_too() {
    let nodes = Nodes::start(&["match=^commit,drop,times=1"], &[], &[]).await;
    let c = nodes.primary_only().build().await.expect("client");
    let mut conn = c.acquire().await.expect("connection");
    let tx = conn.begin().await.expect("begin");
    tx.execute(UPDATE, &[&"in a transaction", &2i32])
        .await
        .expect("update");
    let e = tx.commit().await.expect_err("COMMIT got no answer");
    assert!(
        matches!(e, Error::CommitOutcomeUnknown { .. }) && !e.is_connection_error(),
        "{e}"
    );
}

/// Metrics and health name every node: reads per replica, the failover
/// of a dropped read as a connection error of replica-1, writes on the
/// primary; health says each node's role, pool and recent errors, and its
/// JSON form reads back the same.
#[tokio::test]
async fn metrics_and_health_report_every_node() {
    let nodes = Nodes::start(&[], &["match=rt_items,drop,times=1"], &[]).await;
    let c = nodes.builder().build().await.expect("client");
    reads(&c, 3).await;
    c.execute(UPDATE, &[&"changed", &1i32])
        .await
        .expect("write");
    let m = crate::metrics::Metrics::parse(&c.metrics_text());
    assert_eq!(
        m.value("pgsim_client_reads_total", &[("node", "replica-2")]),
        3.0
    );
    assert_eq!(
        m.value("pgsim_client_reads_total", &[("node", "replica-1")]),
        0.0
    );
    assert_eq!(m.value("pgsim_client_failovers_total", &[]), 1.0);
    assert_eq!(
        m.value(
            "pgsim_client_query_errors_total",
            &[("node", "replica-1"), ("class", "connection")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "pgsim_client_queries_total",
            &[("node", "primary"), ("kind", "update")]
        ),
        1.0
    );
    assert_eq!(
        m.value("pgsim_client_writes_total", &[("node", "primary")]),
        1.0
    );
    for node in ["primary", "replica-1", "replica-2"] {
        assert_eq!(
            m.value(
                "pgsim_client_breaker_state",
                &[("node", node), ("state", "closed")]
            ),
            1.0
        );
        assert_eq!(
            m.value("pgsim_client_pool_max_connections", &[("node", node)]),
            2.0
        );
    }

    let health = c.check_health().await;
    let roles: Vec<_> = health
        .iter()
        .map(|h| (h.node.as_str(), h.healthy, h.in_recovery))
        .collect();
    assert_eq!(
        roles,
        [
            ("primary", true, Some(false)),
            ("replica-1", true, Some(true)),
            ("replica-2", true, Some(true))
        ]
    );
    assert!(health
        .iter()
        .all(|h| h.latency.is_some() && h.pool.max == 2));
    assert_eq!(health[1].recent.errors, 1, "{:?}", health[1]);
    assert_eq!(health[2].recent.errors, 0);
    assert!(health[1].recent.error_rate() > 0.0 && health[1].recent.error_rate() < 1.0);
    let json = serde_json::to_string(&health).expect("health serializes");
    let back: Vec<pgsim::client::NodeHealth> =
        serde_json::from_str(&json).expect("health deserializes");
    assert_eq!(back, health);
    assert!(
        json.contains(r#""node":"replica-1""#) && json.contains(r#""latency_ms":"#),
        "{json}"
    );
}
