//! Routing between one primary and N replicas: reads round robin across
//! healthy replicas, everything else to the primary; health, breakers,
//! retries and statistics per node.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::{Breaker, BreakerConfig, BreakerSnapshot, Permit};
use super::pool::PoolStats;
use super::query::{query_methods, Method, Statement, Streamed};
use super::retry::{Draws, RetryPolicy};
use super::RowStream;
use crate::validate::classify;
use crate::{Client, Error, Result};

/// Where a statement goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Reads to a healthy replica, the rest to the primary.
    Auto,
    /// The primary, whatever the statement.
    Primary,
    /// A healthy replica (the primary when none is), whatever the statement.
    Replica,
}

/// What a node said when its health was checked.
///
/// Its serialized form (serde; `serde_json::to_string` for JSON) is
/// stable: the fields below under the same names, durations as `lag_ms`
/// and `latency_ms` (milliseconds, fractional), `pool` as [`PoolStats`]'
/// fields, and `recent` as `{"window_s", "queries", "errors"}`. New fields
/// may be added; none is renamed or removed.
///
/// ```
/// # fn demo(health: &pgsim::client::NodeHealth) -> serde_json::Result<()> {
/// let json = serde_json::to_string(health)?; // {"node":"primary","reachable":true,...}
/// let back: pgsim::client::NodeHealth = serde_json::from_str(&json)?;
/// # let _ = back; Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct NodeHealth {
    /// `primary`, `replica-1`, ...
    pub node: String,
    /// It answered the health query.
    pub reachable: bool,
    /// Whether it takes reads (or, for the primary, anything).
    pub healthy: bool,
    /// Why not, when it is not.
    pub reason: Option<String>,
    /// `pg_is_in_recovery()`: a replica says true.
    pub in_recovery: Option<bool>,
    /// How far a replica's replay is behind (zero when it has replayed
    /// everything it received).
    #[serde(rename = "lag_ms", with = "millis")]
    pub lag: Option<Duration>,
    /// How long the health query took, connection taken (round trip).
    #[serde(rename = "latency_ms", with = "millis")]
    pub latency: Option<Duration>,
    /// The node's pool when it was checked.
    pub pool: PoolStats,
    /// Statements on the node in the last minute, and how many failed on
    /// the server or its connection (pgsim's own refusals, such as a
    /// missing row, are not the node's errors).
    pub recent: RecentErrors,
}

/// Statements and errors on a node over a recent window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RecentErrors {
    /// How far back it counts, in seconds.
    pub window_s: u64,
    /// Statements run.
    pub queries: u64,
    /// Of which failed with a server error, a timeout or a broken
    /// connection.
    pub errors: u64,
}

impl RecentErrors {
    /// `errors / queries`, 0 when nothing ran.
    pub fn error_rate(&self) -> f64 {
        if self.queries == 0 {
            0.0
        } else {
            self.errors as f64 / self.queries as f64
        }
    }
}

/// `Option<Duration>` as fractional milliseconds.
mod millis {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(|d| d.as_secs_f64() * 1e3).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            None => Ok(None),
            Some(ms) => Duration::try_from_secs_f64(ms / 1e3)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Routing counters, per node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoutingStats {
    /// Statements that were not read-only, run on the primary.
    pub primary_writes: u64,
    /// Read-only statements run on the primary.
    pub primary_reads: u64,
    /// Reads per replica.
    pub replica_reads: BTreeMap<String, u64>,
    /// Transaction attempts, always on the primary.
    pub transactions: u64,
    /// Reads that went to the primary because no replica was healthy.
    pub fallbacks: u64,
    /// Reads moved to another node after a replica's connection failed.
    pub failovers: u64,
    /// Retries after a transient error (with backoff).
    pub retries: u64,
    /// Each node's circuit breaker.
    pub breakers: BTreeMap<String, BreakerSnapshot>,
}

pub(crate) struct Node {
    pub(crate) name: String,
    healthy: AtomicBool,
    breaker: Breaker,
    served: AtomicU64,
}

impl Node {
    fn new(name: String, breaker: Option<BreakerConfig>) -> Self {
        Node {
            name: name.clone(),
            healthy: AtomicBool::new(true),
            breaker: Breaker::new(name.clone(), breaker),
            served: AtomicU64::new(0),
        }
    }

    /// Leave to send it a call: it is healthy and its breaker lets it.
    fn permit(&self) -> Option<Permit<'_>> {
        if self.healthy.load(Ordering::Relaxed) {
            self.breaker.allow()
        } else {
            None
        }
    }
}

pub(crate) struct Replica {
    pub(crate) node: Node,
    pub(crate) client: Client,
}

impl Replica {
    pub(crate) fn new(name: String, client: Client, breaker: Option<BreakerConfig>) -> Self {
        Replica {
            node: Node::new(name, breaker),
            client,
        }
    }
}

/// The routing state of a client; a client without replicas has an empty
/// list and routes everything to itself.
pub(crate) struct Routing {
    primary: Node,
    pub(crate) replicas: Vec<Replica>,
    next: AtomicUsize,
    retry: RetryPolicy,
    pub(crate) draws: Draws,
    max_lag: Option<Duration>,
    primary_writes: AtomicU64,
    fallbacks: AtomicU64,
    failovers: AtomicU64,
    retries: AtomicU64,
    pub(crate) transactions: AtomicU64,
    last_health: Mutex<Vec<NodeHealth>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Primary,
    Replica(usize),
}

impl Routing {
    pub(crate) fn new(
        replicas: Vec<Replica>,
        retry: RetryPolicy,
        breaker: Option<BreakerConfig>,
        max_lag: Option<Duration>,
    ) -> Self {
        Routing {
            primary: Node::new("primary".into(), breaker),
            replicas,
            next: AtomicUsize::new(0),
            retry,
            draws: Draws::default(),
            max_lag,
            primary_writes: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            last_health: Mutex::new(Vec::new()),
        }
    }

    /// The node for a statement, with its breaker's permit (which must
    /// hear how the call went: see [`record`](Self::record)).
    fn pick(&self, read: bool, route: Route, skip: &[usize]) -> Result<(Target, Permit<'_>)> {
        let to_replica = match route {
            Route::Auto => read,
            Route::Replica => true,
            Route::Primary => false,
        };
        if to_replica && !self.replicas.is_empty() {
            let n = self.replicas.len();
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            for k in 0..n {
                let i = (start + k) % n;
                if skip.contains(&i) {
                    continue;
                }
                if let Some(permit) = self.replicas[i].node.permit() {
                    return Ok((Target::Replica(i), permit));
                }
            }
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        match self.primary.breaker.allow() {
            Some(permit) => Ok((Target::Primary, permit)),
            None => Err(Error::CircuitOpen {
                node: self.primary.name.clone(),
            }),
        }
    }

    fn node_of(&self, target: Target) -> &Node {
        match target {
            Target::Primary => &self.primary,
            Target::Replica(i) => &self.replicas[i].node,
        }
    }

    /// Feeds one attempt's outcome to the node's breaker (through the
    /// permit `pick` gave), health and counters.
    fn record<T>(&self, target: Target, permit: Permit<'_>, read: bool, result: &Result<T>) {
        let node = self.node_of(target);
        let answered = match result {
            Ok(_) => true,
            Err(e) => e.as_db_error().is_some(),
        };
        match result {
            Err(e) if e.is_transient() => {
                permit.failure();
                if e.is_connection_error() {
                    node.healthy.store(false, Ordering::Relaxed);
                }
            }
            _ => permit.success(),
        }
        if answered {
            node.served.fetch_add(1, Ordering::Relaxed);
            if target == Target::Primary && !read {
                self.primary_writes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn stats(&self) -> RoutingStats {
        let primary_served = self.primary.served.load(Ordering::Relaxed);
        let primary_writes = self.primary_writes.load(Ordering::Relaxed);
        let mut breakers = BTreeMap::new();
        breakers.insert(self.primary.name.clone(), self.primary.breaker.snapshot());
        for r in &self.replicas {
            breakers.insert(r.node.name.clone(), r.node.breaker.snapshot());
        }
        RoutingStats {
            primary_writes,
            primary_reads: primary_served - primary_writes,
            replica_reads: self
                .replicas
                .iter()
                .map(|r| (r.node.name.clone(), r.node.served.load(Ordering::Relaxed)))
                .collect(),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
            failovers: self.failovers.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            transactions: self.transactions.load(Ordering::Relaxed),
            breakers,
        }
    }

    pub(crate) fn last_health(&self) -> Vec<NodeHealth> {
        self.last_health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The health query: role and, on a replica, replay lag in seconds.
const HEALTH_SQL: &str = "select pg_is_in_recovery(), \
     case when not pg_is_in_recovery() then null \
          when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0::float8 \
          else extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 end";

impl Client {
    /// Runs `op` on the node `route` picks for a statement (`read`: it is
    /// read-only), with failover of reads away from a replica whose
    /// connection failed, and retries of transient errors as the retry
    /// policy allows.
    pub(crate) async fn routed<T, F, Fut>(&self, read: bool, route: Route, op: F) -> Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let routing = &self.inner.routing;
        let started = Instant::now();
        let mut attempt = 1;
        let mut failed_replicas = Vec::new();
        loop {
            // Held across the call: dropped with it (a caller's timeout),
            // a probe reports a failure instead of wedging its breaker.
            let (target, permit) = routing.pick(read, route, &failed_replicas)?;
            let node = match target {
                Target::Primary => self.clone(),
                Target::Replica(i) => routing.replicas[i].client.clone(),
            };
            let result = op(node).await;
            routing.record(target, permit, read, &result);
            let Err(e) = result else {
                return result;
            };
            if let Target::Replica(i) = target {
                // A read is safe to send again: move it to another node at
                // once, without counting an attempt.
                if e.is_connection_error() {
                    failed_replicas.push(i);
                    routing.failovers.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            let may_resend = read || routing.retry.may_retry_writes();
            if !(e.is_transient()
                && may_resend
                && routing
                    .retry
                    .wait_to_retry(attempt, started, &routing.draws, "statement", &e)
                    .await)
            {
                return Err(e);
            }
            routing.retries.fetch_add(1, Ordering::Relaxed);
            attempt += 1;
        }
    }

    /// The pool of one node by name (`primary`, `replica-1`, ...), to reach
    /// it whatever its health: administration, or a replica's own
    /// functions. `None` for an unknown name.
    pub fn node(&self, name: &str) -> Option<Client> {
        let routing = &self.inner.routing;
        if name == routing.primary.name {
            return Some(self.clone());
        }
        routing
            .replicas
            .iter()
            .find(|r| r.node.name == name)
            .map(|r| r.client.clone())
    }

    /// Routing counters and breaker states, per node.
    pub fn routing_stats(&self) -> RoutingStats {
        self.inner.routing.stats()
    }

    /// The health each node showed at the last check.
    pub fn last_health(&self) -> Vec<NodeHealth> {
        self.inner.routing.last_health()
    }

    /// Checks every node now: reachable, role (`pg_is_in_recovery()`) and,
    /// on replicas, replay lag. A replica that is unreachable, not in
    /// recovery, or over `max_replica_lag` leaves the read rotation until a
    /// check finds it well again.
    pub async fn check_health(&self) -> Vec<NodeHealth> {
        let routing = &self.inner.routing;
        let mut out = vec![check_node(self, &routing.primary, false, None).await];
        for r in &routing.replicas {
            out.push(check_node(&r.client, &r.node, true, routing.max_lag).await);
        }
        *routing
            .last_health
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = out.clone();
        out
    }
}

async fn check_node(
    client: &Client,
    node: &Node,
    replica: bool,
    max_lag: Option<Duration>,
) -> NodeHealth {
    let started = Instant::now();
    let answer = async {
        let conn = client.acquire().await?;
        let row = conn.query_one(HEALTH_SQL, &[]).await?;
        let in_recovery: bool = row.try_get(0).map_err(Error::Postgres)?;
        let lag: Option<f64> = row.try_get(1).map_err(Error::Postgres)?;
        Ok::<_, Error>((in_recovery, lag))
    }
    .await;
    let took = started.elapsed();
    let (queries, errors) = client.inner.observed.recent();
    let mut health = NodeHealth {
        node: node.name.clone(),
        reachable: false,
        in_recovery: None,
        lag: None,
        healthy: false,
        reason: None,
        latency: None,
        pool: client.pool_stats(),
        recent: RecentErrors {
            window_s: super::observe::RECENT_WINDOW.as_secs(),
            queries,
            errors,
        },
    };
    match answer {
        Err(e) => health.reason = Some(format!("unreachable: {e}")),
        Ok((in_recovery, lag)) => {
            health.reachable = true;
            health.latency = Some(took);
            health.in_recovery = Some(in_recovery);
            health.lag = lag.map(|s| Duration::from_secs_f64(s.max(0.0)));
            health.reason = if replica && !in_recovery {
                Some("not in recovery: a replica was promoted or misnamed".into())
            } else if !replica && in_recovery {
                Some("the primary is in recovery".into())
            } else {
                match (health.lag, max_lag) {
                    (Some(lag), Some(max)) if lag > max => {
                        Some(format!("replay lag {lag:?} over the {max:?} allowed"))
                    }
                    _ => None,
                }
            };
            health.healthy = health.reason.is_none();
        }
    }
    node.healthy.store(health.healthy, Ordering::Relaxed);
    health
}

/// A client with a fixed [`Route`], from [`Client::on`].
#[derive(Clone, Copy, Debug)]
pub struct Routed<'a> {
    client: &'a Client,
    route: Route,
}

impl Client {
    /// The same client, routing every statement by `route` instead of by
    /// what it does: `client.on(Route::Primary).query(...)` reads from the
    /// primary.
    pub fn on(&self, route: Route) -> Routed<'_> {
        Routed {
            client: self,
            route,
        }
    }
}

impl Routed<'_> {
    /// Any statement, on the node the route picks for it: parameters are
    /// counted before a connection is even taken.
    pub(crate) async fn run<M: Method>(&self, statement: Statement<'_, M>) -> Result<M::Output> {
        statement.check()?;
        let (statement, read) = classified(statement);
        self.client
            .routed(read, self.route, |node| async move {
                node.acquire().await?.run(statement).await
            })
            .await
    }

    /// A stream holds its pooled connection until dropped. Only opening the
    /// stream is retried, never a half-read one.
    pub(crate) async fn stream(&self, statement: Statement<'_, Streamed>) -> Result<RowStream> {
        statement.check()?;
        let (statement, read) = classified(statement);
        self.client
            .routed(read, self.route, |node| async move {
                node.acquire().await?.into_stream(statement).await
            })
            .await
    }

    query_methods!();
}

/// `statement` with its kind found, and whether it is read-only: one
/// lexing for routing, the span, the metrics and the hooks.
fn classified<M>(statement: Statement<'_, M>) -> (Statement<'_, M>, bool) {
    let (kind, read) = classify(statement.sql);
    (
        Statement {
            kind: Some(kind),
            ..statement
        },
        read,
    )
}
