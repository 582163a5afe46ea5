//! The routing scenario: a client with a real primary and two replica nodes
//! (both the machine's streaming standby, so every replica answer is a real
//! standby's) reads, writes, hits 25006 on a forced replica write, sees
//! real replay lag take the replicas out of rotation and bring them back.
//! Recorded into `fixtures/routing/{primary,replica-1,replica-2}`.
//!
//! Used by the `pgsim-recorder` binary and pgsim's integration tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pgsim::client::{Closed, Route, RoutingStats};
use pgsim::{Client, Error, Mode};

use crate::toolkit::TOOLKIT_DB;

/// What the scenario saw, one line per observation.
pub type Lines = Vec<String>;

/// The replica's URL: `PGSIM_REPLICA_URL` (`.ci/replica.sh` starts one).
pub const DEFAULT_REPLICA_URL: &str = "postgres://postgres:postgres@127.0.0.1:5433/postgres";

/// Starts (or finds running) a streaming replica of the machine's primary
/// with `.ci/replica.sh`, and returns its URL.
pub fn start_replica() -> Result<String, String> {
    let script = crate::scenario::repo_root().join(".ci/replica.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if url.is_empty() {
        Ok(DEFAULT_REPLICA_URL.to_owned())
    } else {
        Ok(url)
    }
}

/// The lag that takes a replica out of rotation in the scenario.
pub const MAX_LAG: Duration = Duration::from_millis(500);

/// The read every node recorded (replayed answers repeat, so fault tests
/// can send it to any node any number of times).
pub const READ: &str = "select v from rt_items where id = $1";
/// The write of the scenario's transaction.
pub const UPDATE: &str = "update rt_items set v = $1 where id = $2";

/// Where the bundled routing fixtures live.
pub fn fixtures_dir() -> PathBuf {
    crate::scenario::repo_root().join("fixtures/routing")
}

/// The scenario's client: `primary` and two replica nodes, both `replica`.
pub async fn client(primary: &str, replica: &str, mode: Mode) -> Result<Client, String> {
    Client::builder()
        .primary(primary)
        .replica(replica)
        .replica(replica)
        .database(TOOLKIT_DB)
        .mode(mode)
        .max_replica_lag(MAX_LAG)
        .max_connections(2)
        .build()
        .await
        .map_err(|e| format!("routing client: {e}"))
}

fn outcome<T: std::fmt::Debug>(r: &Result<T, Error>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("error {}", e.code().unwrap_or("(no sqlstate)")),
    }
}

/// Per-node counts gained since `before`.
fn delta(before: &RoutingStats, after: &RoutingStats) -> String {
    let reads: Vec<String> = after
        .replica_reads
        .iter()
        .map(|(node, n)| {
            format!(
                "{node} +{}",
                n - before.replica_reads.get(node).copied().unwrap_or(0)
            )
        })
        .collect();
    format!(
        "primary writes +{}, transactions +{}, primary reads +{}, {}, fallbacks +{}",
        after.primary_writes - before.primary_writes,
        after.transactions - before.transactions,
        after.primary_reads - before.primary_reads,
        reads.join(", "),
        after.fallbacks - before.fallbacks
    )
}

/// Polls `check` every 50 ms until it holds (at most 10 s). Replayed, the
/// same answers come back in the same order, so it polls as often as live.
async fn until<F, Fut>(what: &str, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("gave up waiting until {what}"))
}

async fn replicas_have(c: &Client, rows: i64) -> bool {
    // Both replica nodes are the same standby: one read each.
    let mut all = true;
    for _ in 0..2 {
        let n = c
            .on(Route::Replica)
            .query_one("select count(*) from rt_items", &[])
            .await
            .map(|r| r.get::<_, i64>(0));
        all &= n.is_ok_and(|n| n == rows);
    }
    all
}

async fn all_healthy(c: &Client) -> bool {
    c.check_health().await.iter().all(|h| h.healthy)
}

/// One read, with where it went.
async fn routed_read(c: &Client) -> String {
    let before = c.routing_stats();
    let read = c
        .query_one(READ, &[&1i32])
        .await
        .map(|r| r.get::<_, String>(0));
    format!("{}, {}", outcome(&read), delta(&before, &c.routing_stats()))
}

/// The scenario's body; asserts what must hold in every mode.
pub async fn run(c: &Client) -> Result<Lines, String> {
    let mut out = Lines::new();
    let health = c.last_health();
    let roles: Vec<String> = health
        .iter()
        .map(|h| format!("{} in recovery {:?}", h.node, h.in_recovery))
        .collect();
    out.push(format!("health at build: {}", roles.join(", ")));
    assert_eq!(
        health
            .iter()
            .filter(|h| h.in_recovery == Some(true))
            .count(),
        2
    );

    // A run that stopped half way may have left replay paused.
    c.node("replica-1")
        .ok_or("no replica-1")?
        .batch_execute("select pg_wal_replay_resume()")
        .await
        .map_err(|e| e.to_string())?;
    c.batch_execute(
        "drop table if exists rt_items; create table rt_items (id int primary key, v text); \
         insert into rt_items select g, 'v' || g from generate_series(1, 3) g",
    )
    .await
    .map_err(|e| e.to_string())?;
    until("the replicas have the rows", || replicas_have(c, 3)).await?;
    until("the replicas are healthy", || all_healthy(c)).await?;

    let before = c.routing_stats();
    let mut seen = Vec::new();
    for id in 1..=4i32 {
        let v: String = c
            .query_one(READ, &[&(id % 3 + 1)])
            .await
            .map_err(|e| e.to_string())?
            .get(0);
        seen.push(v);
    }
    c.execute(UPDATE, &[&"changed", &1i32])
        .await
        .map_err(|e| e.to_string())?;
    c.query("select v from rt_items where id = 1 for update", &[])
        .await
        .map_err(|e| e.to_string())?;
    let moved = c
        .transaction(async |tx| {
            tx.execute(UPDATE, &[&"in a transaction", &2i32]).await?;
            tx.query_one("select v from rt_items where id = 2", &[])
                .await
                .map(|r| r.get::<_, String>(0))
        })
        .await;
    let forced = c
        .on(Route::Primary)
        .query_one(READ, &[&1i32])
        .await
        .map(|r| r.get::<_, String>(0));
    let after = c.routing_stats();
    out.push(format!(
        "reads {seen:?}; transaction {}; forced primary read {}",
        outcome(&moved),
        outcome(&forced)
    ));
    out.push(format!("routed: {}", delta(&before, &after)));
    assert_eq!(
        after.replica_reads["replica-1"] - before.replica_reads["replica-1"],
        2,
        "rotation"
    );
    assert_eq!(
        after.replica_reads["replica-2"] - before.replica_reads["replica-2"],
        2,
        "rotation"
    );

    let wrong = c
        .on(Route::Replica)
        .execute("insert into rt_items values (9, 'x')", &[])
        .await;
    assert!(
        wrong.as_ref().is_err_and(Error::is_read_only_transaction),
        "{wrong:?}"
    );
    out.push(format!("write forced to a replica: {}", outcome(&wrong)));
    // Every node answers the read the fault tests send anywhere.
    for route in [Route::Primary, Route::Replica, Route::Replica] {
        c.on(route)
            .query_one(READ, &[&3i32])
            .await
            .map_err(|e| e.to_string())?;
    }

    // Real lag: pause replay on the standby, commit on the primary, wait.
    c.node("replica-1")
        .ok_or("no replica-1")?
        .batch_execute("select pg_wal_replay_pause()")
        .await
        .map_err(|e| e.to_string())?;
    c.execute("insert into rt_items values (4, 'while paused')", &[])
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(MAX_LAG * 2).await;
    until("the replicas lag", || async {
        c.check_health().await.iter().filter(|h| !h.healthy).count() == 2
    })
    .await?;
    let lagging: Vec<String> = c
        .last_health()
        .iter()
        .filter(|h| !h.healthy)
        .map(|h| h.node.clone())
        .collect();
    out.push(format!("over max lag: {lagging:?}"));
    let before = c.routing_stats();
    out.push(format!("read while lagging: {}", routed_read(c).await));
    assert_eq!(c.routing_stats().fallbacks - before.fallbacks, 1);

    // Routing now sends everything to the primary: reach the standby by name.
    c.node("replica-1")
        .ok_or("no replica-1")?
        .batch_execute("select pg_wal_replay_resume()")
        .await
        .map_err(|e| e.to_string())?;
    until("the replicas catch up", || all_healthy(c)).await?;
    out.push(format!("read after catching up: {}", routed_read(c).await));
    Ok(out)
}

/// Builds the client, runs the scenario and closes it.
pub async fn run_mode(primary: &str, replica: &str, mode: Mode) -> Result<(Lines, Closed), String> {
    let c = client(primary, replica, mode).await?;
    let lines = run(&c).await?;
    let closed = c.close().await.map_err(|e| e.to_string())?;
    Ok((lines, closed))
}

/// Records into `dir` (emptied first) with the transcript in
/// `dir/expected/lines.txt`.
pub async fn record(primary: &str, replica: &str, dir: &Path) -> Result<Lines, String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    crate::toolkit::setup(primary).await?;
    let (lines, _) = run_mode(
        primary,
        replica,
        Mode::Record {
            fixtures: dir.to_owned(),
        },
    )
    .await?;
    std::fs::create_dir_all(dir.join("expected")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("expected/lines.txt"), lines.join("\n") + "\n")
        .map_err(|e| e.to_string())?;
    Ok(lines)
}
