//! The client toolkit: one API in Live, Record and Replay mode.
//!
//! A [`Client`] is a deadpool-postgres pool of tokio-postgres connections.
//! In Live mode it connects to the server; in Record mode to an in-process
//! [`Recorder`] in front of the server; in Replay mode to an in-process
//! [`MockServer`]. The pool and the driver run for real in every mode, and
//! callers always get tokio-postgres [`Row`](tokio_postgres::Row)s.

mod backup;
mod batch;
mod breaker;
mod config;
mod conn;
mod env;
mod migrate;
mod observe;
mod page;
mod pool;
pub(crate) mod query;
mod retry;
mod route;
mod secret;
mod tenant;
mod txn;
pub(crate) mod url;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tracing::Instrument;

pub use backup::{Backup, BackupError, BackupOptions, CountDifference, RestoreOptions, TableCount};
pub use breaker::{BreakerConfig, BreakerSnapshot, BreakerState};
pub use config::{ClientBuilder, Mode};
pub use conn::{Connection, RowStream};
pub use migrate::{
    Migration, MigrationError, MigrationState, MigrationStatus, Migrations, LOCK_KEY,
    MIGRATIONS_TABLE, NO_TRANSACTION,
};
pub use observe::{AcquireEvent, Hook, HookResult, QueryDone, QueryEvent, ReleaseEvent};
pub use page::{Keyset, Page, PageKey, PageToken, MAX_PAGE_SIZE};
pub use pool::PoolStats;
pub use query::Params;
pub use retry::{Jitter, RetryPolicy};
pub use route::{NodeHealth, RecentErrors, Route, Routed, RoutingStats};
pub use secret::{Password, PasswordProvider, ProviderError};
pub use tenant::{Tenant, DEFAULT_MAX_TENANT_POOLS};
pub use txn::{IsolationLevel, Transaction, TransactionOptions};
pub use url::{redact, ConnectionString, MAX_NAME_BYTES};

use crate::{Error, MockServer, RecordSummary, Recorder, Report, Result};
use pool::{PoolSettings, Tracker};
use route::{Replica, Routing};

/// A pool of connections to PostgreSQL — the real one, the real one
/// through the recorder, or a mock replaying fixtures. Cheap to clone.
///
/// Its query methods take a pooled connection per statement and route it
/// by what it does: a read-only statement to a healthy replica when there
/// are replicas, anything else to the primary ([`on`](Self::on) to choose),
/// retried as the [`RetryPolicy`] allows.
///
/// ```no_run
/// # async fn demo() -> pgsim::Result<()> {
/// use pgsim::{Client, Mode};
/// use std::time::Duration;
/// let client = Client::builder()
///     .url("postgres://app@127.0.0.1:5432/app")
///     .mode(Mode::Replay { fixtures: "fixtures/app".into() })
///     .max_connections(8)
///     .acquire_timeout(Duration::from_millis(200))
///     .build()
///     .await?;
/// let rows = client.query("select id, name from users where active = $1", &[&true]).await?;
/// # let _ = rows;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    pool: deadpool_postgres::Pool,
    tracker: Arc<Tracker>,
    settings: PoolSettings,
    url: ConnectionString,
    mode: Mode,
    backend: Arc<Backend>,
    /// Whether closing this client stops the recorder or mock server
    /// (false for [`Client::connect_to_database`]'s pools, which share it).
    owns_backend: bool,
    builder: ClientBuilder,
    routing: Routing,
    /// `primary` or `replica-N`: the node this pool reaches, with its
    /// counters and the client's hooks.
    observed: observe::Observed,
    /// Background maintenance and health checks, stopped on close or drop.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// [`Client::tenant_database`]'s pools, least recently used first.
    tenant_pools: tenant::TenantPools,
}

enum Backend {
    Live,
    Record {
        addr: std::net::SocketAddr,
        recorder: Mutex<Option<Recorder>>,
    },
    Replay {
        addr: std::net::SocketAddr,
        server: Mutex<Option<MockServer>>,
    },
}

impl Backend {
    /// Where connections go instead of the connection string's host.
    fn addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Backend::Live => None,
            Backend::Record { addr, .. } | Backend::Replay { addr, .. } => Some(*addr),
        }
    }
}

/// What closing a [`Client`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Closed {
    /// Live mode: nothing to report.
    Live,
    /// A pool from [`Client::connect_to_database`]: its recorder or mock
    /// server is reported when the client it came from closes.
    Pool,
    /// Record mode: what the recorder wrote.
    Recorded(RecordSummary),
    /// Replay mode: what the mock server served, and missed.
    Replayed(Report),
    /// A client with replicas: what closing each node found, by name
    /// (`primary`, `replica-1`, ...).
    Nodes(BTreeMap<String, Closed>),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner.url)
            .field("mode", &self.inner.mode)
            .field("pool", &self.pool_stats())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ClientBuilder {
    /// Validates the settings, starts the recorder or mock server the mode
    /// needs, opens `min_idle` connections and returns the client.
    ///
    /// With replicas, each node gets its own pool and, in Record and Replay
    /// mode, its own recorder or mock server over `<fixtures>/primary`,
    /// `<fixtures>/replica-1`, ...
    pub async fn build(self) -> Result<Client> {
        self.pool_settings()?;
        let observer = observe::Observer::new(self.hooks.clone());
        if self.replicas.is_empty() {
            let routing = Routing::new(Vec::new(), self.retry.clone(), self.breaker.clone(), None);
            return self.build_node(observer.node("primary"), routing).await;
        }
        let mut replicas = Vec::new();
        for (i, url) in self.replicas.iter().enumerate() {
            let name = format!("replica-{}", i + 1);
            let mut node = self.clone();
            node.url = Some(url.clone());
            node.replicas.clear();
            node.mode = self.mode.node(&name);
            let routing = Routing::new(Vec::new(), RetryPolicy::none(), None, None);
            let client = node.build_node(observer.node(&name), routing).await?;
            replicas.push(Replica::new(name, client, self.breaker.clone()));
        }
        let routing = Routing::new(
            replicas,
            self.retry.clone(),
            self.breaker.clone(),
            self.max_replica_lag,
        );
        let mut primary = self.clone();
        primary.mode = self.mode.node("primary");
        let client = primary
            .build_node(observer.node("primary"), routing)
            .await?;
        client.check_health().await;
        if let Some(every) = self.health_interval {
            let task = tokio::spawn(run_every(
                Arc::downgrade(&client.inner),
                every,
                |c| async move {
                    c.check_health().await;
                },
            ));
            lock(&client.inner.tasks).push(task);
        }
        Ok(client)
    }

    /// One node's pool (and its recorder or mock server), in a
    /// `pgsim.connect` span: mode, node, host, port, database and user —
    /// never the password.
    async fn build_node(self, node: observe::Observed, routing: Routing) -> Result<Client> {
        let span = tracing::info_span!(
            "pgsim.connect",
            mode = self.mode.name(),
            node = &*node.name,
            host = tracing::field::Empty,
            port = tracing::field::Empty,
            database = tracing::field::Empty,
            user = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let built = self
            .build_node_in(node, routing, &span)
            .instrument(span.clone())
            .await;
        span.record("outcome", crate::trace::outcome(&built));
        built
    }

    async fn build_node_in(
        self,
        node: observe::Observed,
        routing: Routing,
        span: &tracing::Span,
    ) -> Result<Client> {
        let raw = self.url.as_ref().ok_or_else(|| Error::Setting {
            setting: "url".into(),
            value: String::new(),
            reason: "no connection string: call .url() or set PGSIM_URL (or DATABASE_URL, or PGHOST/PGUSER/PGDATABASE)".into(),
        })?;
        let mut url = ConnectionString::parse(&raw.text)?.with_password(raw.password.clone());
        if let Some(database) = &self.database {
            url = url.with_database(database)?;
        }
        if let Some(password) = &self.default_password {
            url.default_password(password);
        }
        span.record("host", url.host());
        span.record("port", url.port());
        span.record("database", url.database());
        span.record("user", url.user());
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let (fixtures, plan) = match &self.mode {
            Mode::Live => (None, crate::Plan::Replay),
            Mode::Record { fixtures } => {
                (Some(fixtures), crate::Plan::Record(crate::RecordMode::All))
            }
            Mode::Replay { fixtures } => (Some(fixtures), crate::Plan::Replay),
            Mode::Fixtures { fixtures, record } => (Some(fixtures), record.plan(fixtures, ci)?),
        };
        let backend = match (fixtures, plan) {
            (None, _) => Backend::Live,
            (Some(fixtures), crate::Plan::Record(mode)) => {
                // The upstream is checked now, so a wrong password or a
                // server that is down fails the build with the server's own
                // error (and leaves no empty session in the fixtures).
                let mut config = url.driver_config(&self.driver_settings());
                if let Some(password) = self.password_now(&url).await? {
                    config.password(password.expose());
                }
                let checked = match url.tls()? {
                    Some(tls) => config.connect(tls).await.map(drop),
                    None => config.connect(tokio_postgres::NoTls).await.map(drop),
                };
                drop(config);
                checked.map_err(|source| Error::Upstream {
                    address: url.address(),
                    source,
                })?;
                let (ssl, root) = url.tls_settings();
                let recorder = Recorder::builder()
                    .upstream(url.address())
                    .upstream_tls(ssl, root)
                    .fixtures(fixtures)
                    .record_mode(mode)
                    .start()
                    .await?;
                Backend::Record {
                    addr: recorder.addr(),
                    recorder: Mutex::new(Some(recorder)),
                }
            }
            (Some(fixtures), crate::Plan::Replay) => {
                let server = MockServer::builder().fixtures(fixtures).start().await?;
                Backend::Replay {
                    addr: server.addr(),
                    server: Mutex::new(Some(server)),
                }
            }
        };
        Client::assemble(self, url, Arc::new(backend), true, routing, node).await
    }
}

impl Client {
    /// A pool for `url` through `backend`, with `builder`'s settings.
    async fn assemble(
        builder: ClientBuilder,
        url: ConnectionString,
        backend: Arc<Backend>,
        owns_backend: bool,
        routing: Routing,
        observed: observe::Observed,
    ) -> Result<Client> {
        let settings = builder.pool_settings()?;
        let driver = builder.driver_settings();
        let (config, tls) = match backend.addr() {
            None => (url.driver_config(&driver), url.tls()?),
            Some(addr) => (url.driver_config_at(addr, &driver), None),
        };
        let tracker = Arc::new(Tracker::for_user(url.user()));
        let credentials = builder.credentials(&url);
        let pool = pool::build(config, tls, credentials, &settings, &tracker)?;
        let client = Client {
            inner: Arc::new(Inner {
                pool,
                tracker,
                settings,
                url,
                mode: builder.mode.clone(),
                backend,
                owns_backend,
                tasks: Mutex::new(Vec::new()),
                builder: builder.clone(),
                routing,
                observed,
                tenant_pools: tenant::TenantPools::default(),
            }),
        };
        client.maintain().await?;
        if let Some(every) = builder.maintenance_every() {
            let task = tokio::spawn(run_every(
                Arc::downgrade(&client.inner),
                every,
                |c| async move {
                    let _ = c.maintain().await;
                },
            ));
            lock(&client.inner.tasks).push(task);
        }
        Ok(client)
    }

    /// A new pool on the same server (the same recorder or mock server in
    /// Record and Replay mode) with the same settings and credentials, for
    /// another database. Any name PostgreSQL accepts works (spaces, quotes,
    /// non-ASCII); an empty or over-63-byte name is [`Error::Url`]. Closing
    /// it closes only its own pool.
    pub async fn connect_to_database(&self, database: &str) -> Result<Client> {
        let url = self.inner.url.with_database(database)?;
        let builder = self.inner.builder.clone();
        let routing = Routing::new(
            Vec::new(),
            builder.retry.clone(),
            builder.breaker.clone(),
            None,
        );
        Client::assemble(
            builder,
            url,
            Arc::clone(&self.inner.backend),
            false,
            routing,
            self.inner.observed.clone(),
        )
        .await
    }
}

/// Runs `job` on the client every `every` until the client is dropped. A
/// failure (a server down) is the job's to note; the next tick tries again,
/// and callers see the failure themselves when they query.
async fn run_every<F, Fut>(client: Weak<Inner>, every: std::time::Duration, job: F)
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = client.upgrade() else {
            return;
        };
        job(Client { inner }).await;
    }
}

impl Client {
    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from the environment
    /// ([`ClientBuilder::from_env`]).
    pub async fn from_env() -> Result<Client> {
        ClientBuilder::from_env()?.build().await
    }

    /// The mode it runs in.
    pub fn mode(&self) -> &Mode {
        &self.inner.mode
    }

    /// The connection string (its `Display` hides the password).
    pub fn url(&self) -> &ConnectionString {
        &self.inner.url
    }

    /// Takes a connection from the pool, opening one if none is idle and
    /// fewer than `max_connections` are open; otherwise waits up to the
    /// acquire timeout, then fails with [`Error::AcquireTimeout`].
    ///
    /// Runs in a `pgsim.acquire` span (node, outcome). A connection a
    /// [`Tenant`] last used gets `reset search_path` first, so no tenant's
    /// schema shows through the plain client.
    pub async fn acquire(&self) -> Result<Connection> {
        let conn = self.acquire_as_is().await?;
        conn.reset_tenant_path().await?;
        Ok(conn)
    }

    /// [`acquire`](Self::acquire) leaving `search_path` as it is (for a
    /// [`Tenant`], which sets its own).
    pub(crate) async fn acquire_as_is(&self) -> Result<Connection> {
        let inner = &self.inner;
        let span = tracing::debug_span!(
            "pgsim.acquire",
            node = &*inner.observed.name,
            outcome = tracing::field::Empty,
        );
        let started = tokio::time::Instant::now();
        let obj = inner
            .pool
            .get()
            .instrument(span.clone())
            .await
            .map_err(|e| pool::pool_error(e, &inner.settings, &inner.tracker));
        span.record("outcome", crate::trace::outcome(&obj));
        inner.observed.acquired(started.elapsed(), &obj);
        Ok(Connection::new(obj?, Arc::clone(&inner.tracker), inner.observed.clone()).acquired())
    }

    /// Idle, in use, max and waiting connections, and how many were opened
    /// and retired.
    pub fn pool_stats(&self) -> PoolStats {
        pool::stats(&self.inner.pool, &self.inner.tracker)
    }

    /// Runs one maintenance pass now (it also runs in the background):
    /// closes connections past their idle timeout (beyond `min_idle`) or
    /// lifetime, then opens connections until `min_idle` are idle.
    pub async fn maintain(&self) -> Result<()> {
        let inner = &self.inner;
        pool::retire_expired(&inner.pool, &inner.tracker, &inner.settings);
        for obj in pool::top_up(&inner.pool, &inner.settings, &inner.tracker).await? {
            drop(Connection::new(
                obj,
                Arc::clone(&inner.tracker),
                inner.observed.clone(),
            ));
        }
        Ok(())
    }

    /// Any statement, routed by what it does: see [`on`](Self::on) to
    /// choose.
    async fn run<M: query::Method>(&self, statement: query::Statement<'_, M>) -> Result<M::Output> {
        self.on(Route::Auto).run(statement).await
    }

    async fn stream(&self, statement: query::Statement<'_, query::Streamed>) -> Result<RowStream> {
        self.on(Route::Auto).stream(statement).await
    }

    query::query_methods!();

    /// Runs `f` in a transaction: commits when it returns `Ok`, rolls back
    /// when it returns `Err` or panics, and runs it again from the start on
    /// a serialization failure (40001) or deadlock (40P01), up to 3
    /// attempts ([`transaction_with`](Self::transaction_with) to change).
    ///
    /// ```no_run
    /// # async fn demo(client: &pgsim::Client) -> pgsim::Result<()> {
    /// let moved = client
    ///     .transaction(async |tx| {
    ///         tx.execute("update accounts set balance = balance - 10 where id = $1", &[&1i32]).await?;
    ///         tx.execute("update accounts set balance = balance + 10 where id = $1", &[&2i32]).await
    ///     })
    ///     .await?;
    /// # let _ = moved;
    /// # Ok(()) }
    /// ```
    pub async fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: AsyncFnMut(&mut Transaction<'_>) -> Result<T>,
    {
        self.transaction_with(&TransactionOptions::default(), f)
            .await
    }

    /// [`transaction`](Self::transaction) with isolation, read-only and
    /// retry options. When every attempt fails with a serialization failure,
    /// deadlock or broken connection the error is
    /// [`Error::RetriesExhausted`]. A connection that breaks once `COMMIT`
    /// is sent is never retried: the error is
    /// [`Error::CommitOutcomeUnknown`], as the transaction may be applied.
    pub async fn transaction_with<T, F>(&self, options: &TransactionOptions, f: F) -> Result<T>
    where
        F: AsyncFnMut(&mut Transaction<'_>) -> Result<T>,
    {
        self.transaction_via(options, f, || self.acquire()).await
    }

    /// [`transaction_with`](Self::transaction_with) on connections taken by
    /// `acquire` (a [`Tenant`]'s, which sets its `search_path` first).
    pub(crate) async fn transaction_via<T, F, A, AF>(
        &self,
        options: &TransactionOptions,
        mut f: F,
        acquire: A,
    ) -> Result<T>
    where
        F: AsyncFnMut(&mut Transaction<'_>) -> Result<T>,
        A: Fn() -> AF,
        AF: std::future::Future<Output = Result<Connection>>,
    {
        let routing = &self.inner.routing;
        let started = tokio::time::Instant::now();
        let mut attempt = 1;
        loop {
            let mut conn = acquire().await?;
            routing
                .transactions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match conn.attempt_transaction(options, attempt, &mut f).await {
                Err(e) if e.is_serialization_failure() || e.is_connection_error() => {
                    drop(conn);
                    if !options
                        .retry()
                        .wait_to_retry(attempt, started, &routing.draws, "transaction", &e)
                        .await
                    {
                        return Err(Error::RetriesExhausted {
                            attempts: attempt,
                            last: Box::new(e),
                        });
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// What the mock server has served so far (Replay mode only).
    pub fn replay_report(&self) -> Option<Report> {
        match &*self.inner.backend {
            Backend::Replay { server, .. } => lock(server).as_ref().map(MockServer::report),
            Backend::Live | Backend::Record { .. } => None,
        }
    }

    /// Closes the pool and, in Record mode, finishes every fixture file
    /// (an incomplete recording is an error); in Replay mode returns what
    /// was served and missed. Clones of this client fail with
    /// [`Error::PoolClosed`] afterwards. With replicas every node is closed
    /// even when one fails; then the error is [`Error::Close`], naming each
    /// node that failed.
    pub async fn close(&self) -> Result<Closed> {
        for task in lock(&self.inner.tasks).drain(..) {
            task.abort();
        }
        self.inner.pool.close();
        if !self.inner.owns_backend {
            return Ok(Closed::Pool);
        }
        if self.inner.routing.replicas.is_empty() {
            return self.close_backend().await;
        }
        // Every node is closed whatever another's close said: a replica's
        // error must not leave the primary's recording unfinished.
        let mut closed = BTreeMap::new();
        let mut failed = BTreeMap::new();
        for r in &self.inner.routing.replicas {
            match Box::pin(r.client.close()).await {
                Ok(c) => {
                    closed.insert(r.node.name.clone(), c);
                }
                Err(e) => {
                    failed.insert(r.node.name.clone(), e);
                }
            }
        }
        match self.close_backend().await {
            Ok(c) => {
                closed.insert("primary".to_owned(), c);
            }
            Err(e) => {
                failed.insert("primary".to_owned(), e);
            }
        }
        if failed.is_empty() {
            Ok(Closed::Nodes(closed))
        } else {
            Err(Error::Close { failed, closed })
        }
    }

    async fn close_backend(&self) -> Result<Closed> {
        match &*self.inner.backend {
            Backend::Live => Ok(Closed::Live),
            Backend::Record { recorder, .. } => {
                let Some(recorder) = lock(recorder).take() else {
                    return Err(Error::PoolClosed);
                };
                let summary = recorder.shutdown().await;
                if summary.errors.is_empty() {
                    Ok(Closed::Recorded(summary))
                } else {
                    Err(Error::Recording {
                        errors: summary.errors,
                    })
                }
            }
            Backend::Replay { server, .. } => {
                let Some(server) = lock(server).take() else {
                    return Err(Error::PoolClosed);
                };
                Ok(Closed::Replayed(server.shutdown().await))
            }
        }
    }
}
