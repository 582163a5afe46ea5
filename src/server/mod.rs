//! The mock server: replays a fixture set over the PostgreSQL wire protocol.

pub(crate) mod auth;
mod conn;
pub(crate) mod fault;
mod limits;
mod metrics;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

pub use self::auth::AuthMethod;
use self::fault::{Fault, FaultStats, Faults};
use self::limits::{Limits, Slots};
use crate::fixture::FixtureSet;
use crate::listen::listen;
use crate::replay::{LoadOptions, LoadStats, Replay, Report};
use crate::Error;

/// Sessions per database and in all: how many are open now and the most at
/// once.
#[derive(Debug, Default)]
pub(crate) struct SessionCounter {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// (open now, peak) per database.
    per_database: BTreeMap<String, (usize, usize)>,
    open: usize,
    peak: usize,
}

pub(crate) struct SessionGuard<'a> {
    counter: &'a SessionCounter,
    database: String,
}

impl SessionCounter {
    pub(crate) fn enter(&self, database: &str) -> SessionGuard<'_> {
        if let Ok(mut counts) = self.counts.lock() {
            let entry = counts.per_database.entry(database.to_owned()).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(entry.0);
            counts.open += 1;
            counts.peak = counts.peak.max(counts.open);
        }
        SessionGuard {
            counter: self,
            database: database.to_owned(),
        }
    }

    fn peaks(&self) -> BTreeMap<String, usize> {
        self.counts
            .lock()
            .map(|c| {
                c.per_database
                    .iter()
                    .map(|(k, v)| (k.clone(), v.1))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn peak(&self) -> usize {
        self.counts.lock().map(|c| c.peak).unwrap_or_default()
    }

    /// Sessions open now, per database.
    fn open_now(&self) -> BTreeMap<String, usize> {
        self.counts
            .lock()
            .map(|c| {
                c.per_database
                    .iter()
                    .map(|(k, v)| (k.clone(), v.0))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counter.counts.lock() {
            if let Some(entry) = counts.per_database.get_mut(&self.database) {
                entry.0 = entry.0.saturating_sub(1);
            }
            counts.open = counts.open.saturating_sub(1);
        }
    }
}

/// State shared by every connection of one server.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) replay: Arc<Replay>,
    /// How each role authenticates.
    pub(crate) auth: auth::Auth,
    /// TLS after SSLRequest, when on.
    pub(crate) tls: Option<crate::tls::Tls>,
    pub(crate) sessions: SessionCounter,
    pub(crate) faults: Faults,
    pub(crate) cancels: conn::CancelKeys,
    /// Strict order: each connection must replay one recorded session's
    /// queries exactly in order.
    pub(crate) strict_order: bool,
    /// Any role may connect, answered from every role's recordings.
    pub(crate) any_role: bool,
    pub(crate) limits: Limits,
    pub(crate) slots: Slots,
    /// The most answer bytes any connection held before writing them.
    pub(crate) output_peak: AtomicUsize,
    /// Set on shutdown: sessions waiting for a message end with 57P01.
    pub(crate) shutdown: watch::Sender<bool>,
    /// What only the metrics count (answers by source, latency).
    pub(crate) served: metrics::Served,
}

/// A fault as given to the builder: parsed by [`MockServerBuilder::start`],
/// in the order given (the order decides which fault wins and each fault's
/// index in the seeded draws).
#[derive(Debug)]
enum FaultSource {
    Spec(String),
    Parsed(Fault),
}

/// Builds a [`MockServer`].
#[derive(Debug, Default)]
pub struct MockServerBuilder {
    fixtures: Option<PathBuf>,
    set: Option<FixtureSet>,
    listen: Option<SocketAddr>,
    password: Option<String>,
    auth_method: Option<AuthMethod>,
    roles: Vec<(String, AuthMethod, String)>,
    auth_file: Option<PathBuf>,
    tls: Option<crate::TlsSource>,
    faults: Vec<FaultSource>,
    seed: u64,
    fail_on: FailOn,
    strict_order: bool,
    any_role: bool,
    limits: Limits,
    miss_details: Option<usize>,
    load: Option<LoadOptions>,
    metrics_listen: Option<SocketAddr>,
}

/// What makes a [`MockServer`] fail the test that dropped or shut it down.
#[derive(Debug, Clone, Copy, Default)]
struct FailOn {
    misses: bool,
    unused: bool,
}

impl MockServerBuilder {
    /// Lets any role connect and answers it from every role's recordings.
    /// By default only a role some recorded session connected as may
    /// connect (another gets `28000 role "..." does not exist`, as from
    /// PostgreSQL), and each role is answered only from the sessions
    /// recorded as it: what one role was allowed to see, another may not.
    pub fn any_role(mut self) -> Self {
        self.any_role = true;
        self
    }

    /// Strict order: each connection must send exactly the queries of one
    /// recorded session, in their order; the first that deviates is a miss
    /// (`PGS01`) naming what the recording sends next and what this
    /// connection sent before. For single-connection clients: a pool hands
    /// queries to its connections in any order.
    pub fn strict_order(mut self) -> Self {
        self.strict_order = true;
        self
    }

    /// Panics when the server is dropped or shut down after a miss (unless
    /// the thread is already panicking), with the report: a test that
    /// forgets to check [`MockServer::report`] still fails.
    pub fn fail_on_misses(mut self) -> Self {
        self.fail_on.misses = true;
        self
    }

    /// Panics likewise when recorded answers were never used: the test no
    /// longer does what was recorded (re-record it, or trim the fixtures).
    pub fn fail_on_unused(mut self) -> Self {
        self.fail_on.unused = true;
        self
    }

    /// Replays the fixture directory `dir`.
    pub fn fixtures(mut self, dir: impl Into<PathBuf>) -> Self {
        self.fixtures = Some(dir.into());
        self
    }

    /// How the fixture directory is loaded (the index cache, worker
    /// threads); default [`LoadOptions::default`].
    pub fn load_options(mut self, options: LoadOptions) -> Self {
        self.load = Some(options);
        self
    }

    /// Replays an already loaded fixture set.
    pub fn fixture_set(mut self, set: FixtureSet) -> Self {
        self.set = Some(set);
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, any free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Demands this password of every role (with [`auth_method`](Self::auth_method),
    /// cleartext by default) instead of trust.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The method [`password`](Self::password) is checked with (default
    /// `Password`, cleartext; PostgreSQL's own default is `ScramSha256`).
    pub fn auth_method(mut self, method: AuthMethod) -> Self {
        self.auth_method = Some(method);
        self
    }

    /// How `role` authenticates, whatever the default: `Trust` needs no
    /// password; `Password`, `Md5` and `ScramSha256` check `password` as
    /// PostgreSQL does, wording a refusal as it does (`28P01 password
    /// authentication failed for user "..."`).
    pub fn role_auth(
        mut self,
        role: impl Into<String>,
        method: AuthMethod,
        password: impl Into<String>,
    ) -> Self {
        self.roles.push((role.into(), method, password.into()));
        self
    }

    /// Answers SSLRequest with `S` and speaks TLS (and offers SCRAM with
    /// channel binding) with this certificate; without it the server
    /// answers `N`, as a PostgreSQL with `ssl = off`.
    pub fn tls(mut self, source: crate::TlsSource) -> Self {
        self.tls = Some(source);
        self
    }

    /// Reads the roles' authentication from a file (JSON: a `default` and
    /// `roles`, each a `method` and its `password_env` or `password_file`;
    /// see docs/LIMITS.md, "Authentication"). What the builder says of a
    /// role wins over the file.
    pub fn auth_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.auth_file = Some(path.into());
        self
    }

    /// Injects the fault `spec` (grammar in `docs/FAULTS.md`), e.g.
    /// `match=^select abalance,error=40001,times=2`. The spec is parsed by
    /// [`start`](Self::start), which returns a bad one as [`Error::Fault`].
    pub fn fault(mut self, spec: impl Into<String>) -> Self {
        self.faults.push(FaultSource::Spec(spec.into()));
        self
    }

    /// Injects parsed faults, after those given so far.
    pub fn faults(mut self, faults: impl IntoIterator<Item = Fault>) -> Self {
        self.faults
            .extend(faults.into_iter().map(FaultSource::Parsed));
        self
    }

    /// The seed every random fault decision derives from (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The largest message a client may send, length word included
    /// (default and most: 1 GiB - 2 bytes, PostgreSQL's own limit). A
    /// longer declared length closes the connection before its body is
    /// read, as PostgreSQL does (it logs 08P01 "invalid message length" and
    /// sends nothing). PostgreSQL's smaller limits for some message types
    /// (10000 bytes for Sync, Execute, ..., and for the startup packet)
    /// apply below it.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.limits.max_message_size = bytes.min(crate::wire::MAX_MESSAGE_LEN);
        self
    }

    /// How long a connection may take from accept to the end of
    /// authentication (default 60 s, PostgreSQL's `authentication_timeout`);
    /// then it is closed without a message, as PostgreSQL does.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.limits.startup_timeout = timeout;
        self
    }

    /// Ends a session idle outside a transaction for this long with FATAL
    /// `57P05` "terminating connection due to idle-session timeout", as
    /// PostgreSQL's `idle_session_timeout` (default: never).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Ends a session idle inside a transaction block (failed or not) for
    /// this long with FATAL `25P03` "terminating connection due to
    /// idle-in-transaction timeout", as PostgreSQL's
    /// `idle_in_transaction_session_timeout` (default: never). A client
    /// that opens a transaction and stalls otherwise holds its connection
    /// slot forever.
    pub fn idle_in_transaction_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_in_transaction_timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Sessions open at once (default 100, PostgreSQL's `max_connections`);
    /// one more is refused with FATAL `53300` "sorry, too many clients
    /// already" once its startup packet is read.
    pub fn max_connections(mut self, sessions: usize) -> Self {
        self.limits.max_connections = sessions;
        self
    }

    /// Distinct missed queries the report details (SQL, key, closest
    /// recording, count; default 100): misses of further queries are
    /// counted, and the report says how many it left out, so memory stays
    /// bounded however many different queries miss.
    pub fn miss_details(mut self, queries: usize) -> Self {
        self.miss_details = Some(queries);
        self
    }

    /// Answers `GET /metrics` on `addr` (port 0: any free one; see
    /// [`MockServer::metrics_addr`]) in the Prometheus text format:
    /// sessions, queries, misses, answers by database and source, faults
    /// fired, query latency (docs/LIMITS.md, "Metrics"). Without it the
    /// same text is still had from [`MockServer::metrics_text`].
    pub fn metrics_listen(mut self, addr: SocketAddr) -> Self {
        self.metrics_listen = Some(addr);
        self
    }

    /// Parses the faults, loads the fixtures, binds and starts serving.
    pub async fn start(self) -> Result<MockServer, Error> {
        let faults = self
            .faults
            .into_iter()
            .map(|source| match source {
                FaultSource::Spec(spec) => Fault::parse(&spec),
                FaultSource::Parsed(fault) => Ok(fault),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut replay = match (self.set, self.fixtures) {
            (Some(set), _) => Replay::new(set),
            (None, Some(dir)) => Replay::load_with(&dir, &self.load.unwrap_or_default())?,
            (None, None) => Replay::new(FixtureSet::default()),
        };
        if let Some(queries) = self.miss_details {
            replay.limit_miss_details(queries);
        }
        let tls = self.tls.as_ref().map(crate::tls::Tls::new).transpose()?;
        let mut auth = match &self.auth_file {
            Some(path) => auth::load_file(path)?,
            None => auth::Auth::default(),
        };
        if let Some(p) = self.password {
            let method = self.auth_method.unwrap_or(AuthMethod::Password);
            auth.default = Some(auth::RoleAuth::new(method, p));
        }
        for (role, method, password) in self.roles {
            auth.roles
                .insert(role, auth::RoleAuth::new(method, password));
        }
        let served = metrics::Served::new(&replay);
        let shared = Arc::new(Shared {
            replay: Arc::new(replay),
            auth,
            tls,
            sessions: SessionCounter::default(),
            faults: Faults::new(faults, self.seed),
            cancels: conn::CancelKeys::default(),
            strict_order: self.strict_order,
            any_role: self.any_role,
            limits: self.limits,
            slots: Slots::default(),
            output_peak: AtomicUsize::new(0),
            shutdown: watch::channel(false).0,
            served,
        });
        let collector = metrics::Collector {
            shared: Arc::clone(&shared),
        };
        let metrics = crate::metrics::Endpoint::start(collector, self.metrics_listen).await?;
        let for_sessions = Arc::clone(&shared);
        let next_id = AtomicI32::new(1);
        let listening = listen(self.listen, move |stream| {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            conn::serve(stream, Arc::clone(&for_sessions), id)
        })
        .await?;
        Ok(MockServer {
            addr: listening.addr,
            shared,
            stop: listening.stop,
            task: Some(listening.task),
            fail_on: self.fail_on,
            metrics,
        })
    }
}

/// A PostgreSQL server that replays recorded fixtures.
///
/// ```no_run
/// # async fn demo() -> Result<(), pgsim::Error> {
/// let server = pgsim::MockServer::builder().fixtures("fixtures/demo").start().await?;
/// let (client, connection) =
///     tokio_postgres::connect(&server.url_for("pgsim_demo"), tokio_postgres::NoTls).await?;
/// tokio::spawn(connection);
/// let row = client.query_one("select 1 + 1 as two", &[]).await?;
/// # let _ = row;
/// println!("{}", server.report());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    fail_on: FailOn,
    metrics: crate::metrics::Endpoint,
}

impl MockServer {
    /// Starts configuring a server.
    pub fn builder() -> MockServerBuilder {
        MockServerBuilder::default()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connection URL for database `postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// A connection URL for `database` (user `postgres`, no TLS).
    pub fn url_for(&self, database: &str) -> String {
        local_url(self.addr, "postgres", None, database, None)
    }

    /// A connection URL for `database` as `role` (no password, no TLS):
    /// only a recorded role may connect, answered from its own recordings
    /// (see [`MockServerBuilder::any_role`]).
    pub fn url_as(&self, role: &str, database: &str) -> String {
        local_url(self.addr, role, None, database, None)
    }

    /// A connection URL for `database` whose connections are in `scope`
    /// (`options=-c pgsim.scope=...`): answered only from exchanges
    /// recorded in that scope. The same option works against PostgreSQL,
    /// so a test can use one URL shape live, recording and replaying.
    pub fn scoped_url(&self, database: &str, scope: &str) -> String {
        local_url(self.addr, "postgres", None, database, Some(scope))
    }

    /// The CA certificate (PEM) a client trusts to verify this server's
    /// TLS certificate (`sslrootcert`), when TLS is on.
    pub fn tls_root_cert(&self) -> Option<&[u8]> {
        self.shared.tls.as_ref().map(|t| t.root_pem.as_slice())
    }

    /// What has been served so far.
    pub fn report(&self) -> Report {
        self.shared.replay.report()
    }

    /// Warnings from loading the fixtures (torn journal lines).
    pub fn warnings(&self) -> &[String] {
        self.shared.replay.warnings()
    }

    /// What loading the fixture directory did (files from the index cache,
    /// files parsed); `None` for a set given with
    /// [`MockServerBuilder::fixture_set`].
    pub fn load_stats(&self) -> Option<&LoadStats> {
        self.shared.replay.load_stats()
    }

    /// Number of databases with recorded sessions.
    pub fn database_count(&self) -> usize {
        self.shared.replay.database_names().count()
    }

    /// Fixture files refused at load, each with its error (path and
    /// position). The rest of the set serves; a query only a refused file
    /// could answer misses, and the miss names the file.
    pub fn rejected(&self) -> &[crate::fixture::Rejected] {
        self.shared.replay.rejected()
    }

    /// Each fault in the order given, with how often it matched and fired.
    pub fn faults(&self) -> Vec<FaultStats> {
        self.shared.faults.stats()
    }

    /// The seed of the fault decisions (print it with a failure, so the run
    /// can be repeated).
    pub fn seed(&self) -> u64 {
        self.shared.faults.seed()
    }

    /// The most sessions open at once, per database.
    pub fn peak_sessions(&self) -> BTreeMap<String, usize> {
        self.shared.sessions.peaks()
    }

    /// The most sessions open at once, all databases together.
    pub fn peak_total_sessions(&self) -> usize {
        self.shared.sessions.peak()
    }

    /// The most answer bytes one connection held before writing them out:
    /// answers are written once they pass 64 KiB, so this stays near that
    /// (plus one answer) however many queries a client pipelines.
    pub fn peak_output_buffer(&self) -> usize {
        self.shared.output_peak.load(Ordering::Relaxed)
    }

    /// Where `GET /metrics` is answered, when
    /// [`MockServerBuilder::metrics_listen`] asked for it.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.addr()
    }

    /// The metrics `GET /metrics` answers, now, in the Prometheus text
    /// format (version 0.0.4); with or without the endpoint.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), pgsim::Error> {
    /// let server = pgsim::MockServer::builder().fixtures("fixtures/demo").start().await?;
    /// assert!(server.metrics_text().contains("pgsim_queries_total 0"));
    /// # Ok(()) }
    /// ```
    pub fn metrics_text(&self) -> String {
        self.metrics.text()
    }

    /// Stops accepting, ends every session waiting for its next message
    /// with FATAL `57P01` "terminating connection due to administrator
    /// command" (as PostgreSQL's shutdown does), lets the others finish
    /// (2 s at most) and returns the final report (panicking with it when a
    /// `fail_on_*` option of the builder says so).
    pub async fn shutdown(mut self) -> Report {
        let _ = self.shared.shutdown.send(true);
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.metrics.stop().await;
        let report = self.shared.replay.report();
        self.enforce(&report);
        report
    }

    /// The builder's `fail_on_*` options.
    fn enforce(&self, report: &Report) {
        if std::thread::panicking() {
            return;
        }
        let misses = self.fail_on.misses && report.missed > 0;
        let unused = self.fail_on.unused && !report.unused.is_empty();
        if misses || unused {
            panic!(
                "pgsim MockServer: {} misses, {} recorded answers never used (fail_on_{}):\n{report}",
                report.missed,
                report.unused.len(),
                if misses { "misses" } else { "unused" }
            );
        }
    }
}

impl Drop for MockServer {
    /// Like wiremock's verification on drop: a server that missed queries
    /// or left recorded answers unused says so (on stderr, where a failing
    /// test's output shows it), with the closest recordings. It panics only
    /// with [`MockServerBuilder::fail_on_misses`] or
    /// [`MockServerBuilder::fail_on_unused`].
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let report = self.shared.replay.report();
            if report.missed > 0 || !report.unused.is_empty() {
                let what = if report.missed == 0 {
                    "recorded answers never used"
                } else {
                    "misses"
                };
                eprint!("pgsim MockServer dropped with {what}:\n{report}");
                // The faults may explain the misses; the seed repeats the run.
                let faults = self.shared.faults.stats();
                for (i, f) in faults.iter().enumerate() {
                    eprintln!("  fault #{} {f}", i + 1);
                }
                if !faults.is_empty() {
                    eprintln!("  fault seed {}", self.shared.faults.seed());
                }
            }
            self.enforce(&report);
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so any
/// name fits in a URL path or user part.
/// A `postgres://` URL for a pgsim server listening at `addr` (no TLS),
/// with `scope` as the startup `pgsim.scope` when given.
pub(crate) fn local_url(
    addr: SocketAddr,
    user: &str,
    password: Option<&str>,
    database: &str,
    scope: Option<&str>,
) -> String {
    let password = password.map_or_else(String::new, |p| format!(":{}", percent_encode(p)));
    let mut url = format!(
        "postgres://{}{password}@{}:{}/{}?sslmode=disable",
        percent_encode(user),
        addr.ip(),
        addr.port(),
        percent_encode(database)
    );
    if let Some(scope) = scope {
        let escaped: String = scope
            .chars()
            .flat_map(|c| match c {
                ' ' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        url += "&options=";
        url += &percent_encode(&format!("-c pgsim.scope={escaped}"));
    }
    url
}

pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::local_url;

    #[test]
    fn local_urls_carry_credentials_database_and_scope_encoded_and_parse_back() {
        let addr = "127.0.0.1:6543".parse().expect("an address");
        let url = local_url(
            addr,
            "app user",
            Some("p@ss:w/rd"),
            "it's db",
            Some("a b\\c"),
        );
        assert_eq!(
            url,
            "postgres://app%20user:p%40ss%3Aw%2Frd@127.0.0.1:6543/it%27s%20db?sslmode=disable&options=-c%20pgsim.scope%3Da%5C%20b%5C%5Cc"
        );
        let config: tokio_postgres::Config = url.parse().expect("tokio-postgres reads it");
        assert_eq!(config.get_user(), Some("app user"));
        assert_eq!(config.get_password(), Some(&b"p@ss:w/rd"[..]));
        assert_eq!(config.get_dbname(), Some("it's db"));
        assert_eq!(config.get_options(), Some("-c pgsim.scope=a\\ b\\\\c"));
        assert_eq!(
            local_url(addr, "postgres", None, "postgres", None),
            "postgres://postgres@127.0.0.1:6543/postgres?sslmode=disable"
        );
    }
}
