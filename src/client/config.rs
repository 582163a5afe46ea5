//! The client builder and its environment variables.

use std::path::PathBuf;
use std::time::Duration;

use super::breaker::BreakerConfig;
use super::pool::PoolSettings;
use super::retry::RetryPolicy;
use super::secret::{Password, PasswordProvider, ProviderError, SplitUrl};
use super::url::DriverSettings;
use crate::{Error, Result};

/// Where a [`Client`](crate::Client)'s queries go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Straight to the real server.
    Live,
    /// To the real server through an in-process recording proxy that writes
    /// every exchange to `fixtures`; the recording replaces what was there
    /// when the client closes (record mode `all`).
    Record {
        /// The fixture directory (created if missing).
        fixtures: PathBuf,
    },
    /// To an in-process [`MockServer`](crate::MockServer) replaying
    /// `fixtures`; no server needed.
    Replay {
        /// The fixture directory.
        fixtures: PathBuf,
    },
    /// `fixtures` used as a [`RecordMode`](crate::RecordMode) says, decided
    /// at build: `none` replays, `once` records only into an empty
    /// directory (refused under `CI=true`), `new` records and adds what the
    /// directory does not already answer, `all` re-records.
    Fixtures {
        /// The fixture directory.
        fixtures: PathBuf,
        /// What to do with it.
        record: crate::RecordMode,
    },
}

impl Mode {
    /// `live`, `record`, `replay` or `fixtures`, for spans.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Record { .. } => "record",
            Mode::Replay { .. } => "replay",
            Mode::Fixtures { .. } => "fixtures",
        }
    }

    /// The mode of one node of a client with replicas: its own fixture
    /// directory under this one.
    pub(crate) fn node(&self, name: &str) -> Mode {
        match self {
            Mode::Live => Mode::Live,
            Mode::Record { fixtures } => Mode::Record {
                fixtures: fixtures.join(name),
            },
            Mode::Replay { fixtures } => Mode::Replay {
                fixtures: fixtures.join(name),
            },
            Mode::Fixtures { fixtures, record } => Mode::Fixtures {
                fixtures: fixtures.join(name),
                record: *record,
            },
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Live => f.write_str("live"),
            Mode::Record { fixtures } => write!(f, "record into {}", fixtures.display()),
            Mode::Replay { fixtures } => write!(f, "replay from {}", fixtures.display()),
            Mode::Fixtures { fixtures, record } => {
                write!(f, "fixtures {} (record mode {record})", fixtures.display())
            }
        }
    }
}

/// Configures a [`Client`](crate::Client). Every setting has a default;
/// only the connection string is required.
///
/// | setting | default | environment |
/// | --- | --- | --- |
/// | [`url`](Self::url) | — | `PGSIM_URL`, else `DATABASE_URL`, else `PGHOST` `PGPORT` `PGUSER` `PGDATABASE` (`PGPASSWORD` fills a missing password) |
/// | [`mode`](Self::mode) | Live | `PGSIM_MODE` (`live`, `record`, `replay`) with `PGSIM_FIXTURES` |
/// | [`max_connections`](Self::max_connections) | 10 | `PGSIM_MAX_CONNECTIONS` |
/// | [`min_idle`](Self::min_idle) | 0 | `PGSIM_MIN_IDLE` |
/// | [`connect_timeout`](Self::connect_timeout) | 10 s | `PGSIM_CONNECT_TIMEOUT_MS`, else `PGCONNECT_TIMEOUT` (seconds) |
/// | [`acquire_timeout`](Self::acquire_timeout) | 30 s | `PGSIM_ACQUIRE_TIMEOUT_MS` |
/// | [`idle_timeout`](Self::idle_timeout) | 10 min | `PGSIM_IDLE_TIMEOUT_S` (0: never) |
/// | [`max_lifetime`](Self::max_lifetime) | 30 min | `PGSIM_MAX_LIFETIME_S` (0: never) |
/// | [`statement_timeout`](Self::statement_timeout) | none | `PGSIM_STATEMENT_TIMEOUT_MS` (0: none) |
/// | [`max_tenant_pools`](Self::max_tenant_pools) | 16 | `PGSIM_MAX_TENANT_POOLS` |
/// | [`password_provider`](Self::password_provider) | none | — |
///
/// `Debug` hides the password: the builder keeps connection strings with
/// their password taken out, as a [`Password`].
#[derive(Clone)]
pub struct ClientBuilder {
    pub(crate) url: Option<SplitUrl>,
    pub(crate) database: Option<String>,
    pub(crate) default_password: Option<Password>,
    pub(crate) password_provider: Option<PasswordProvider>,
    pub(crate) mode: Mode,
    /// The pool's numbers, checked against each other by `build`.
    pub(crate) pool: PoolSettings,
    pub(crate) statement_timeout: Option<Duration>,
    pub(crate) maintenance_interval: Option<Duration>,
    pub(crate) server_settings: Vec<(String, String)>,
    pub(crate) replicas: Vec<SplitUrl>,
    pub(crate) max_replica_lag: Option<Duration>,
    pub(crate) health_interval: Option<Duration>,
    pub(crate) retry: RetryPolicy,
    pub(crate) breaker: Option<BreakerConfig>,
    pub(crate) max_tenant_pools: usize,
    pub(crate) hooks: Vec<std::sync::Arc<dyn super::Hook>>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            url: None,
            database: None,
            default_password: None,
            password_provider: None,
            mode: Mode::Live,
            pool: PoolSettings {
                max_connections: 10,
                min_idle: 0,
                connect_timeout: Duration::from_secs(10),
                acquire_timeout: Duration::from_secs(30),
                idle_timeout: Some(Duration::from_secs(600)),
                max_lifetime: Some(Duration::from_secs(1800)),
            },
            statement_timeout: None,
            maintenance_interval: None,
            server_settings: Vec::new(),
            replicas: Vec::new(),
            max_replica_lag: None,
            health_interval: None,
            retry: RetryPolicy::none(),
            breaker: None,
            max_tenant_pools: super::DEFAULT_MAX_TENANT_POOLS,
            hooks: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("mode", &self.mode)
            .field("max_connections", &self.pool.max_connections)
            .field("min_idle", &self.pool.min_idle)
            .field("connect_timeout", &self.pool.connect_timeout)
            .field("acquire_timeout", &self.pool.acquire_timeout)
            .field("idle_timeout", &self.pool.idle_timeout)
            .field("max_lifetime", &self.pool.max_lifetime)
            .field("statement_timeout", &self.statement_timeout)
            .field("replicas", &self.replicas)
            .field("password_provider", &self.password_provider)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("max_tenant_pools", &self.max_tenant_pools)
            .field("hooks", &self.hooks.len())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The server: a `postgres://` URL or a libpq `key=value` string (see
    /// [`ConnectionString`](crate::ConnectionString)). In Replay mode only
    /// the user and database are used.
    ///
    /// A password in it is taken out at once into a [`Password`] (the
    /// string itself is zeroized); the rest is checked by `build`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(SplitUrl::new(url.into()));
        self
    }

    /// Asks `provider` for the password each time a new connection opens,
    /// on every node, in every mode (Record and Replay too): a rotated
    /// password is used by connections opened after the rotation, while
    /// open ones carry on. It wins over a password in the connection string
    /// and `PGPASSWORD`. A provider error fails that connection with
    /// [`Error::PasswordProvider`], naming the role, never a password.
    ///
    /// ```no_run
    /// # async fn demo() -> pgsim::Result<()> {
    /// use pgsim::client::Password;
    /// let client = pgsim::Client::builder()
    ///     .url("postgres://app@db/app")
    ///     .password_provider(|| async { Ok(Password::from_env("APP_DB_PASSWORD").ok_or("APP_DB_PASSWORD is not set")?) })
    ///     .build()
    ///     .await?;
    /// # let _ = client;
    /// # Ok(()) }
    /// ```
    pub fn password_provider<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::result::Result<Password, ProviderError>>
            + Send
            + 'static,
    {
        self.password_provider = Some(PasswordProvider::new(provider));
        self
    }

    /// The primary: the same as [`url`](Self::url).
    pub fn primary(self, url: impl Into<String>) -> Self {
        self.url(url)
    }

    /// A replica: read-only statements go round robin across healthy
    /// replicas (see [`Client::on`](crate::Client::on) to choose per call). Each replica gets
    /// its own pool with the same settings.
    pub fn replica(mut self, url: impl Into<String>) -> Self {
        self.replicas.push(SplitUrl::new(url.into()));
        self
    }

    /// A replica whose replay lags more than this leaves the read rotation
    /// until a health check finds it caught up (default: no limit).
    pub fn max_replica_lag(mut self, lag: Duration) -> Self {
        self.max_replica_lag = Some(lag);
        self
    }

    /// Checks every node's health this often in the background (default:
    /// only at build and on [`Client::check_health`](crate::Client::check_health)).
    pub fn health_interval(mut self, every: Duration) -> Self {
        self.health_interval = Some(every);
        self
    }

    /// Retries transient errors of single statements (default: none).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// A circuit breaker per node (default: none).
    pub fn circuit_breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = Some(config);
        self
    }

    /// Adds a [`Hook`](super::Hook) run around every query, acquire and
    /// release of the client, its replicas and the pools
    /// [`connect_to_database`](crate::Client::connect_to_database) makes.
    /// Hooks run in the order they were added.
    pub fn hook(mut self, hook: impl super::Hook) -> Self {
        self.hooks.push(std::sync::Arc::new(hook));
        self
    }

    /// Connects to `database` instead of the connection string's (any name
    /// PostgreSQL accepts; it is encoded, not refused).
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// Live, Record or Replay.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The most connections open at once (at least 1).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.pool.max_connections = n;
        self
    }

    /// Connections kept open and idle, ready for a burst (at most
    /// `max_connections`). They are opened by `build`.
    pub fn min_idle(mut self, n: usize) -> Self {
        self.pool.min_idle = n;
        self
    }

    /// How long opening one connection (TCP and authentication) may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.pool.connect_timeout = timeout;
        self
    }

    /// How long [`acquire`](crate::Client::acquire) waits for a free
    /// connection when `max_connections` are in use, before
    /// [`Error::AcquireTimeout`]. Zero: fail at once.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.pool.acquire_timeout = timeout;
        self
    }

    /// Idle connections beyond `min_idle` are closed after this long unused
    /// (`None`: never).
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.pool.idle_timeout = timeout.into();
        self
    }

    /// Connections are closed once this old, when next returned or found
    /// idle (`None`: never).
    pub fn max_lifetime(mut self, lifetime: impl Into<Option<Duration>>) -> Self {
        self.pool.max_lifetime = lifetime.into();
        self
    }

    /// PostgreSQL's `statement_timeout` on every connection, set in the
    /// startup packet (`None`: the server's default). A statement running
    /// longer fails with 57014 ([`Error::is_timeout`]).
    pub fn statement_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.statement_timeout = timeout.into();
        self
    }

    /// A server setting for every connection (`-c name=value` in the
    /// startup packet), such as `("TimeZone", "UTC")`.
    pub fn server_setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.server_settings.push((name.into(), value.into()));
        self
    }

    /// Puts every connection in `scope` (`-c pgsim.scope=NAME` in the
    /// startup packet): a placeholder setting PostgreSQL accepts, recorded
    /// with each exchange, and in replay only exchanges recorded in the same
    /// scope answer. Give each test its own, so tests replay alone or in any
    /// order (docs/FIXTURES.md, "Which answer a connection gets").
    pub fn scope(self, scope: impl Into<String>) -> Self {
        self.server_setting("pgsim.scope", scope)
    }

    /// How often idle connections are retired and `min_idle` restored in
    /// the background (default: a quarter of the shortest of idle timeout
    /// and max lifetime, at most 30 s).
    pub fn maintenance_interval(mut self, every: Duration) -> Self {
        self.maintenance_interval = Some(every);
        self
    }

    /// The most pools [`Client::tenant_database`](crate::Client::tenant_database)
    /// keeps open, one per tenant database (at least 1; default
    /// [`DEFAULT_MAX_TENANT_POOLS`](crate::client::DEFAULT_MAX_TENANT_POOLS)): past it, the
    /// least recently used one is let go (its idle connections closed; a
    /// caller still holding it keeps it until dropped).
    pub fn max_tenant_pools(mut self, n: usize) -> Self {
        self.max_tenant_pools = n;
        self
    }

    /// Checks the numbers against each other.
    pub(crate) fn pool_settings(&self) -> Result<PoolSettings> {
        let invalid = |setting: &str, value: String, reason: &str| Error::Setting {
            setting: setting.to_owned(),
            value,
            reason: reason.to_owned(),
        };
        if self.pool.max_connections == 0 {
            return Err(invalid(
                "max_connections",
                "0".into(),
                "at least 1 connection is needed",
            ));
        }
        if self.pool.min_idle > self.pool.max_connections {
            return Err(invalid(
                "min_idle",
                self.pool.min_idle.to_string(),
                &format!("more than max_connections ({})", self.pool.max_connections),
            ));
        }
        if self.max_tenant_pools == 0 {
            return Err(invalid(
                "max_tenant_pools",
                "0".into(),
                "at least 1 tenant pool is needed",
            ));
        }
        if self.pool.connect_timeout.is_zero() {
            return Err(invalid(
                "connect_timeout",
                "0s".into(),
                "no connection opens in no time",
            ));
        }
        for (setting, value) in [
            ("idle_timeout", self.pool.idle_timeout),
            ("max_lifetime", self.pool.max_lifetime),
            ("statement_timeout", self.statement_timeout),
        ] {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(invalid(setting, "0s".into(), "use None to turn it off"));
            }
        }
        if self
            .statement_timeout
            .is_some_and(|d| d.as_millis() > i32::MAX as u128)
        {
            return Err(invalid(
                "statement_timeout",
                format!("{:?}", self.statement_timeout),
                "PostgreSQL takes at most 2147483647 ms",
            ));
        }
        Ok(self.pool.clone())
    }

    pub(crate) fn driver_settings(&self) -> DriverSettings {
        let mut settings: Vec<(String, String)> = self.server_settings.clone();
        if let Some(t) = self.statement_timeout {
            settings.push(("statement_timeout".into(), t.as_millis().to_string()));
        }
        DriverSettings {
            connect_timeout: Some(self.pool.connect_timeout),
            settings,
        }
    }

    pub(crate) fn maintenance_every(&self) -> Option<Duration> {
        if let Some(every) = self.maintenance_interval {
            return Some(every);
        }
        let shortest = [self.pool.idle_timeout, self.pool.max_lifetime]
            .into_iter()
            .flatten()
            .min();
        match shortest {
            Some(d) => Some((d / 4).clamp(Duration::from_millis(10), Duration::from_secs(30))),
            None if self.pool.min_idle > 0 => Some(Duration::from_secs(30)),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_against_each_other() {
        let b = ClientBuilder::default().max_connections(2).min_idle(3);
        assert!(
            matches!(b.pool_settings(), Err(Error::Setting { setting, .. }) if setting == "min_idle")
        );
        let b = ClientBuilder::default().idle_timeout(Duration::ZERO);
        assert!(b.pool_settings().is_err());
        let b = ClientBuilder::default()
            .idle_timeout(None)
            .max_lifetime(None);
        assert_eq!(b.maintenance_every(), None);
        let b = ClientBuilder::default().idle_timeout(Duration::from_millis(200));
        assert_eq!(b.maintenance_every(), Some(Duration::from_millis(50)));
    }

    #[test]
    fn debug_hides_the_password() {
        let b = ClientBuilder::default()
            .url("postgres://app:hunter2@db/app")
            .replica("host=replica user=app password='hunter3'")
            .password_provider(|| async { Ok(Password::new("hunter4")) });
        let shown = format!("{b:?}");
        for secret in ["hunter2", "hunter3", "hunter4"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("postgres://app@db/app (password ***)"),
            "{shown}"
        );
        assert!(shown.contains("PasswordProvider"), "{shown}");
    }
}
