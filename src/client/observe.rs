//! What a client shows of itself: metrics per statement kind and node,
//! hooks around queries and connections, and each node's recent errors for
//! [`Client::check_health`].
//!
//! Counters are atomics kept per node and found once, when the node's pool
//! is built, never looked up per query. Pool, routing and breaker figures
//! are read where they already are ([`Client::pool_stats`],
//! [`Client::routing_stats`]) by a prometheus-client
//! [`Collector`](prometheus_client::collector::Collector) at scrape time,
//! as the mock server's `/metrics` does (`src/metrics.rs`, whose lock-free
//! histogram this shares), so the text and the stats never disagree.
//!
//! Hooks run inline on the caller's task and are synchronous: a hook that
//! must do I/O sends an event to its own task. A hook that fails or panics
//! is counted (`pgsim_client_hook_failures_total`) and logged as a
//! `tracing` warning; the query goes on as if it had not been there.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use super::breaker::BreakerState;
use crate::metrics::{self, Histogram, Kind};
use crate::validate::{sanitize_for_log, StatementKind};
use crate::{Client, Error, Result};

/// What a hook returns: an error is counted and logged, never passed on.
pub type HookResult = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Code run around every query and connection of a client, registered
/// with [`ClientBuilder::hook`](super::ClientBuilder::hook). Every method
/// has an empty default: implement the ones you need.
///
/// A hook runs on the task that runs the query, so it should be quick. An
/// error or a panic in a hook never breaks the query: it is counted in
/// `pgsim_client_hook_failures_total{hook=...}` and logged as a `tracing`
/// warning.
///
/// ```
/// use pgsim::client::{Hook, HookResult, QueryDone, QueryEvent};
/// struct SlowQueries;
/// impl Hook for SlowQueries {
///     fn after_query(&self, query: &QueryEvent<'_>, done: &QueryDone<'_>) -> HookResult {
///         if done.duration > std::time::Duration::from_millis(100) {
///             eprintln!("slow {} on {}: {}", query.kind, query.node, query.sql());
///         }
///         Ok(())
///     }
/// }
/// let builder = pgsim::Client::builder().hook(SlowQueries);
/// # let _ = builder;
/// ```
pub trait Hook: Send + Sync + 'static {
    /// Before a statement is sent.
    fn before_query(&self, query: &QueryEvent<'_>) -> HookResult {
        let _ = query;
        Ok(())
    }

    /// After its answer (or error) arrived.
    fn after_query(&self, query: &QueryEvent<'_>, done: &QueryDone<'_>) -> HookResult {
        let _ = (query, done);
        Ok(())
    }

    /// After a caller asked the pool for a connection, whether it got one
    /// or not.
    fn on_acquire(&self, acquired: &AcquireEvent<'_>) -> HookResult {
        let _ = acquired;
        Ok(())
    }

    /// When a connection a caller held goes back to the pool (not when it
    /// is dropped while the thread unwinds from a panic: a second panic
    /// there would abort the process).
    fn on_release(&self, released: &ReleaseEvent<'_>) -> HookResult {
        let _ = released;
        Ok(())
    }
}

/// A statement about to run, or that ran.
#[derive(Debug)]
#[non_exhaustive]
pub struct QueryEvent<'a> {
    /// The node it runs on: `primary`, `replica-1`, ...
    pub node: &'a str,
    /// What it does.
    pub kind: StatementKind,
    /// Its SQL as the caller gave it (for [`sql`](Self::sql)).
    raw: &'a str,
    /// [`sql`](Self::sql), made at the first call.
    shown: std::cell::OnceCell<String>,
}

impl QueryEvent<'_> {
    /// Its SQL as logs show it ([`sanitize_for_log`]: one line, secrets
    /// masked, long literals cut). Parameter values are never given. Made
    /// at the first call, so hooks that never read it never pay for it.
    pub fn sql(&self) -> &str {
        self.shown.get_or_init(|| sanitize_for_log(self.raw, &[]))
    }
}

/// How a statement ended.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct QueryDone<'a> {
    /// From sending it to its answer read.
    pub duration: Duration,
    /// Rows returned or affected, when the method knows them (not for a
    /// stream or a batch).
    pub rows: Option<u64>,
    /// Its error, when it failed.
    pub error: Option<&'a Error>,
}

impl QueryDone<'_> {
    /// `ok`, the SQLSTATE the server answered, `timeout`, `connection` or
    /// `error` (as spans' `outcome` fields say it).
    pub fn outcome(&self) -> &str {
        self.error.map_or("ok", crate::trace::error_outcome)
    }
}

/// A caller asked the pool for a connection.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct AcquireEvent<'a> {
    /// The node whose pool it asked.
    pub node: &'a str,
    /// How long it waited.
    pub waited: Duration,
    /// Why it got none ([`Error::AcquireTimeout`], a connect error...).
    pub error: Option<&'a Error>,
}

/// A connection went back to the pool.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ReleaseEvent<'a> {
    /// The node it is a connection to.
    pub node: &'a str,
    /// How long the caller held it.
    pub held: Duration,
}

/// Where a hook runs, for its failure counter.
#[derive(Clone, Copy)]
enum Point {
    BeforeQuery,
    AfterQuery,
    Acquire,
    Release,
}

impl Point {
    const ALL: [Point; 4] = [
        Point::BeforeQuery,
        Point::AfterQuery,
        Point::Acquire,
        Point::Release,
    ];

    fn name(self) -> &'static str {
        match self {
            Point::BeforeQuery => "before_query",
            Point::AfterQuery => "after_query",
            Point::Acquire => "on_acquire",
            Point::Release => "on_release",
        }
    }
}

/// The hooks and per-node counters of one client, its replicas and the
/// pools [`Client::connect_to_database`] made from it.
#[derive(Default)]
pub(crate) struct Observer {
    hooks: Vec<Arc<dyn Hook>>,
    nodes: Mutex<BTreeMap<Arc<str>, Arc<NodeStats>>>,
    hook_failures: [AtomicU64; Point::ALL.len()],
}

impl Observer {
    pub(crate) fn new(hooks: Vec<Arc<dyn Hook>>) -> Arc<Self> {
        Arc::new(Observer {
            hooks,
            ..Observer::default()
        })
    }

    /// The counters of node `name`, made at its first pool.
    pub(crate) fn node(self: &Arc<Self>, name: &str) -> Observed {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        let (name, stats) = match nodes.get_key_value(name) {
            Some((name, stats)) => (Arc::clone(name), Arc::clone(stats)),
            None => {
                let name: Arc<str> = name.into();
                let stats = Arc::new(NodeStats::new());
                nodes.insert(Arc::clone(&name), Arc::clone(&stats));
                (name, stats)
            }
        };
        Observed {
            name,
            observer: Arc::clone(self),
            stats,
        }
    }

    fn nodes(&self) -> Vec<(Arc<str>, Arc<NodeStats>)> {
        self.nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(n, s)| (Arc::clone(n), Arc::clone(s)))
            .collect()
    }

    /// Runs every hook's `point`; a failure or panic is counted and
    /// logged, never passed on.
    fn call(&self, point: Point, f: impl Fn(&dyn Hook) -> HookResult) {
        for hook in &self.hooks {
            let failure = match std::panic::catch_unwind(AssertUnwindSafe(|| f(hook.as_ref()))) {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    format!("panicked: {what}")
                }
            };
            self.hook_failures[point as usize].fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                hook = point.name(),
                error = %failure,
                "a pgsim hook failed; the query goes on"
            );
        }
    }
}

/// One node's counters.
pub(crate) struct NodeStats {
    kinds: [KindStats; StatementKind::ALL.len()],
    acquire_timeouts: AtomicU64,
    recent: Recent,
}

#[derive(Default)]
struct KindStats {
    count: AtomicU64,
    /// Errors by class: a SQLSTATE's first two characters, or `timeout`,
    /// `connection`, `client` (pgsim's own checks: no rows, too many).
    errors: Mutex<BTreeMap<String, u64>>,
    latency: Histogram,
}

impl NodeStats {
    fn new() -> Self {
        NodeStats {
            kinds: std::array::from_fn(|_| KindStats::default()),
            acquire_timeouts: AtomicU64::new(0),
            recent: Recent::new(),
        }
    }

    fn record<T>(&self, kind: StatementKind, took: Duration, result: &Result<T>) {
        let stats = &self.kinds[kind.index()];
        stats.count.fetch_add(1, Ordering::Relaxed);
        stats.latency.observe(took);
        let class = result.as_ref().err().map(error_class);
        if let Some(class) = &class {
            *stats
                .errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(class.clone())
                .or_default() += 1;
        }
        self.recent.record(class.is_some_and(|c| c != CLIENT_CLASS));
    }
}

const CLIENT_CLASS: &str = "client";

/// An error's class for the error counter: its span outcome
/// ([`crate::trace::error_outcome`]), a SQLSTATE cut to its class and
/// pgsim's own `error` named `client`.
fn error_class(e: &Error) -> String {
    match (e.code(), crate::trace::error_outcome(e)) {
        (Some(_), code) => code.chars().take(2).collect(),
        (None, "error") => CLIENT_CLASS.into(),
        (None, what) => what.into(),
    }
}

/// How long [`Recent`] looks back.
pub(crate) const RECENT_WINDOW: Duration = Duration::from_secs(60);
const RECENT_SLOTS: u64 = 6;

/// Queries and errors in the last [`RECENT_WINDOW`], in slots of a sixth
/// of it. Lock-free, hence approximate: a query that lands while its slot
/// is being reused for a new period may be lost.
struct Recent {
    start: Instant,
    slots: [RecentSlot; RECENT_SLOTS as usize],
}

#[derive(Default)]
struct RecentSlot {
    /// Which period it counts (0: none yet).
    period: AtomicU64,
    queries: AtomicU64,
    errors: AtomicU64,
}

impl Recent {
    fn new() -> Self {
        Recent {
            start: Instant::now(),
            slots: std::array::from_fn(|_| RecentSlot::default()),
        }
    }

    fn period_now(&self) -> u64 {
        let slot = RECENT_WINDOW.as_nanos() / u128::from(RECENT_SLOTS);
        u64::try_from(self.start.elapsed().as_nanos() / slot).unwrap_or(u64::MAX - 1) + 1
    }

    fn record(&self, error: bool) {
        let period = self.period_now();
        let slot = &self.slots[(period % RECENT_SLOTS) as usize];
        if slot.period.load(Ordering::Relaxed) != period
            && slot.period.swap(period, Ordering::Relaxed) != period
        {
            slot.queries.store(0, Ordering::Relaxed);
            slot.errors.store(0, Ordering::Relaxed);
        }
        slot.queries.fetch_add(1, Ordering::Relaxed);
        if error {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queries and errors in the window.
    fn counts(&self) -> (u64, u64) {
        let now = self.period_now();
        let oldest = now.saturating_sub(RECENT_SLOTS - 1);
        self.slots
            .iter()
            .filter(|s| (oldest..=now).contains(&s.period.load(Ordering::Relaxed)))
            .fold((0, 0), |(q, e), s| {
                (
                    q + s.queries.load(Ordering::Relaxed),
                    e + s.errors.load(Ordering::Relaxed),
                )
            })
    }
}

/// A node's name, counters and its client's hooks: what a pool, its
/// connections and their transactions carry to report what they do.
#[derive(Clone)]
pub(crate) struct Observed {
    pub(crate) name: Arc<str>,
    observer: Arc<Observer>,
    stats: Arc<NodeStats>,
}

impl Observed {
    /// Runs `run`, the statement `sql` of kind `kind`, between the hooks,
    /// and counts it. `rows` says how many rows its answer holds.
    pub(crate) async fn query<T>(
        &self,
        sql: &str,
        kind: StatementKind,
        rows: impl FnOnce(&T) -> Option<u64>,
        run: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let hooked = !self.observer.hooks.is_empty();
        let event = QueryEvent {
            node: &self.name,
            kind,
            raw: sql,
            shown: std::cell::OnceCell::new(),
        };
        if hooked {
            self.observer
                .call(Point::BeforeQuery, |h| h.before_query(&event));
        }
        let started = Instant::now();
        let result = run.await;
        let duration = started.elapsed();
        self.stats.record(kind, duration, &result);
        if hooked {
            let done = QueryDone {
                duration,
                rows: result.as_ref().ok().and_then(rows),
                error: result.as_ref().err(),
            };
            self.observer
                .call(Point::AfterQuery, |h| h.after_query(&event, &done));
        }
        result
    }

    /// Transaction control the driver sends itself (`BEGIN`, `COMMIT`,
    /// `ROLLBACK`, `SAVEPOINT`), in `span`: counted and hooked as a
    /// `transaction` statement, its error naming `sql`.
    pub(crate) async fn control<T>(
        &self,
        sql: &'static str,
        span: &tracing::Span,
        run: impl std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        use futures_util::FutureExt;
        use tracing::Instrument;
        let run = run
            .instrument(span.clone())
            .map(|r| r.map_err(super::query::query_error(sql)));
        self.query(sql, StatementKind::Transaction, |_| None, run)
            .await
    }

    /// A caller waited `waited` for a connection and got `result`.
    pub(crate) fn acquired<T>(&self, waited: Duration, result: &Result<T>) {
        if let Err(Error::AcquireTimeout { .. }) = result {
            self.stats.acquire_timeouts.fetch_add(1, Ordering::Relaxed);
        }
        let event = AcquireEvent {
            node: &self.name,
            waited,
            error: result.as_ref().err(),
        };
        self.observer.call(Point::Acquire, |h| h.on_acquire(&event));
    }

    /// A caller gave a connection back after holding it `held`.
    pub(crate) fn released(&self, held: Duration) {
        let event = ReleaseEvent {
            node: &self.name,
            held,
        };
        self.observer.call(Point::Release, |h| h.on_release(&event));
    }

    /// Queries and server or connection errors on this node in the last
    /// [`RECENT_WINDOW`].
    pub(crate) fn recent(&self) -> (u64, u64) {
        self.stats.recent.counts()
    }

    pub(crate) fn observer(&self) -> &Arc<Observer> {
        &self.observer
    }
}

impl Client {
    /// Every metric of this client, its replicas and the pools
    /// [`connect_to_database`](Self::connect_to_database) made from it, in
    /// the Prometheus text format (see README, "Metrics", for the list).
    pub fn metrics_text(&self) -> String {
        let mut registry = Registry::default();
        self.register_metrics(&mut registry);
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
            text = format!("# pgsim: encoding the metrics failed: {e}\n");
        }
        text
    }

    /// Adds this client's metrics to a registry the application already
    /// has (names prefixed `pgsim_client_`, under the registry's own
    /// prefix). They are read at each scrape; once the client is dropped
    /// they are gone.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry
            .sub_registry_with_prefix(metrics::PREFIX)
            .register_collector(Box::new(ClientCollector {
                client: Arc::downgrade(&self.inner),
            }));
    }
}

/// Reads a client's counters, pools and routing at scrape time.
#[derive(Debug)]
struct ClientCollector {
    client: Weak<super::Inner>,
}

impl prometheus_client::collector::Collector for ClientCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let Some(inner) = self.client.upgrade() else {
            return Ok(());
        };
        let client = Client { inner };
        let e = &mut encoder;
        let observer = client.inner.observed.observer();
        let nodes = observer.nodes();
        let per_kind = || {
            nodes.iter().flat_map(|(node, stats)| {
                StatementKind::ALL
                    .into_iter()
                    .map(move |kind| (node, kind, &stats.kinds[kind.index()]))
                    .filter(|(_, _, s)| s.count.load(Ordering::Relaxed) > 0)
            })
        };
        metrics::family(
            e,
            "client_queries",
            "Statements run, per node and kind (select, insert, update, delete, ddl, transaction, other).",
            Kind::Counter,
            per_kind().map(|(node, kind, s)| {
                (
                    [("node", &**node), ("kind", kind.as_str())],
                    s.count.load(Ordering::Relaxed),
                )
            }),
        )?;
        let errors: Vec<_> = per_kind()
            .flat_map(|(node, kind, s)| {
                let classes = s
                    .errors
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                classes.into_iter().map(move |(class, n)| {
                    (
                        [
                            ("node", node.to_string()),
                            ("kind", kind.as_str().to_owned()),
                            ("class", class),
                        ],
                        n,
                    )
                })
            })
            .collect();
        metrics::family(
            e,
            "client_query_errors",
            "Statements that failed, per node, kind and class: the SQLSTATE's class (its first two characters), or timeout, connection, client (pgsim's own checks).",
            Kind::Counter,
            errors,
        )?;
        metrics::histograms(
            e,
            "client_query_duration_seconds",
            "Time from sending a statement to its answer read, per node and kind.",
            per_kind()
                .map(|(node, kind, s)| ([("node", &**node), ("kind", kind.as_str())], &s.latency)),
        )?;
        let mut pools = vec![(client.inner.observed.name.clone(), client.clone())];
        for r in &client.inner.routing.replicas {
            pools.push((r.client.inner.observed.name.clone(), r.client.clone()));
        }
        let pool_stats: Vec<_> = pools
            .iter()
            .map(|(node, c)| (&**node, c.pool_stats()))
            .collect();
        metrics::family(
            e,
            "client_pool_connections",
            "Open connections per node: idle, or in use by a caller.",
            Kind::Gauge,
            pool_stats.iter().flat_map(|(node, s)| {
                [
                    ([("node", *node), ("state", "idle")], s.idle as u64),
                    ([("node", *node), ("state", "in_use")], s.in_use as u64),
                ]
            }),
        )?;
        let per_node = |f: fn(&super::PoolStats) -> u64| {
            pool_stats
                .iter()
                .map(move |(node, s)| ([("node", *node)], f(s)))
        };
        metrics::family(
            e,
            "client_pool_max_connections",
            "The most connections each node's pool opens.",
            Kind::Gauge,
            per_node(|s| s.max as u64),
        )?;
        metrics::family(
            e,
            "client_pool_waiting",
            "Callers waiting for a connection, per node.",
            Kind::Gauge,
            per_node(|s| s.waiting as u64),
        )?;
        metrics::family(
            e,
            "client_pool_connections_created",
            "Connections opened, per node.",
            Kind::Counter,
            per_node(|s| s.created),
        )?;
        metrics::family(
            e,
            "client_pool_connections_retired",
            "Connections closed for being idle too long or too old, per node.",
            Kind::Counter,
            per_node(|s| s.retired),
        )?;
        metrics::family(
            e,
            "client_pool_acquire_timeouts",
            "Callers that waited the whole acquire timeout for a connection, per node.",
            Kind::Counter,
            nodes.iter().map(|(node, s)| {
                (
                    [("node", &**node)],
                    s.acquire_timeouts.load(Ordering::Relaxed),
                )
            }),
        )?;
        let routing = client.routing_stats();
        let primary = &*client.inner.observed.name;
        metrics::family(
            e,
            "client_reads",
            "Read-only statements routed to each node.",
            Kind::Counter,
            std::iter::once((primary, routing.primary_reads))
                .chain(
                    routing
                        .replica_reads
                        .iter()
                        .map(|(node, n)| (node.as_str(), *n)),
                )
                .map(|(node, n)| ([("node", node)], n)),
        )?;
        metrics::family(
            e,
            "client_writes",
            "Statements that were not read-only, routed to the primary.",
            Kind::Counter,
            [([("node", primary)], routing.primary_writes)],
        )?;
        metrics::counter(
            e,
            "client_transactions",
            "Closure transaction attempts (always on the primary).",
            routing.transactions,
        )?;
        metrics::counter(
            e,
            "client_fallbacks",
            "Reads sent to the primary because no replica was healthy.",
            routing.fallbacks,
        )?;
        metrics::counter(
            e,
            "client_failovers",
            "Reads moved to another node after a replica's connection failed.",
            routing.failovers,
        )?;
        metrics::counter(
            e,
            "client_retries",
            "Statements sent again after a transient error.",
            routing.retries,
        )?;
        metrics::family(
            e,
            "client_breaker_state",
            "Each node's circuit breaker: 1 for the state it is in (closed, open, half_open), 0 for the others.",
            Kind::Gauge,
            routing.breakers.iter().flat_map(|(node, b)| {
                [
                    (BreakerState::Closed, "closed"),
                    (BreakerState::Open, "open"),
                    (BreakerState::HalfOpen, "half_open"),
                ]
                .map(|(state, name)| {
                    (
                        [("node", node.as_str()), ("state", name)],
                        u64::from(b.state == state),
                    )
                })
            }),
        )?;
        metrics::family(
            e,
            "client_hook_failures",
            "Hook calls that returned an error or panicked (the query went on), per hook method.",
            Kind::Counter,
            Point::ALL.map(|p| {
                (
                    [("hook", p.name())],
                    observer.hook_failures[p as usize].load(Ordering::Relaxed),
                )
            }),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn recent_counts_forget_what_is_older_than_the_window() {
        let recent = Recent::new();
        recent.record(false);
        recent.record(true);
        assert_eq!(recent.counts(), (2, 1));
        tokio::time::advance(RECENT_WINDOW / 2).await;
        recent.record(true);
        assert_eq!(recent.counts(), (3, 2));
        tokio::time::advance(RECENT_WINDOW / 2 + Duration::from_secs(1)).await;
        assert_eq!(
            recent.counts(),
            (1, 1),
            "the first two are out of the window"
        );
        tokio::time::advance(RECENT_WINDOW * 3).await;
        assert_eq!(recent.counts(), (0, 0));
        recent.record(false);
        assert_eq!(recent.counts(), (1, 0), "a reused slot starts from zero");
    }

    #[test]
    fn error_classes_are_sqlstate_classes_or_what_failed() {
        assert_eq!(
            error_class(&Error::AcquireTimeout {
                waited: Duration::from_millis(1)
            }),
            "timeout"
        );
        assert_eq!(
            error_class(&Error::NoRows {
                sql: "select 1".into()
            }),
            CLIENT_CLASS
        );
    }

    struct Failing;
    impl Hook for Failing {
        fn before_query(&self, _: &QueryEvent<'_>) -> HookResult {
            Err("no".into())
        }
        fn after_query(&self, _: &QueryEvent<'_>, _: &QueryDone<'_>) -> HookResult {
            panic!("a hook's bug")
        }
    }

    #[tokio::test]
    async fn a_failing_or_panicking_hook_is_counted_and_the_query_goes_on() {
        let observer = Observer::new(vec![Arc::new(Failing)]);
        let node = observer.node("primary");
        let answer = node
            .query("select 1", StatementKind::Select, |_| None, async {
                Ok::<_, Error>(7)
            })
            .await;
        assert_eq!(answer.ok(), Some(7));
        let failures = |p: Point| observer.hook_failures[p as usize].load(Ordering::Relaxed);
        assert_eq!(failures(Point::BeforeQuery), 1);
        assert_eq!(failures(Point::AfterQuery), 1);
        assert_eq!(node.recent(), (1, 0));
        assert!(Arc::ptr_eq(&observer.node("primary").stats, &node.stats));
    }
}
