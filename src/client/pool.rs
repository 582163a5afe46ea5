//! The connection pool: deadpool-postgres plus what it leaves to its users —
//! a typed acquire timeout, min idle kept warm, idle and lifetime retirement.
//!
//! deadpool's own metrics only know when a connection was last *taken*, so a
//! connection returned after an hour's work would look idle for an hour. The
//! [`Tracker`] records when each connection was created and when it was last
//! *returned*, on tokio's clock, keyed by the address of the connection's
//! statement cache (an `Arc` that lives exactly as long as the connection).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deadpool_postgres::{
    ClientWrapper, HookError, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod,
    Runtime, Timeouts,
};
use tokio::time::Instant;
use tokio_postgres::NoTls;

use super::secret::{Connector, Credentials, ProviderFailures};
use crate::Error;

/// What the pool looks like right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct PoolStats {
    /// Open connections nobody holds.
    pub idle: usize,
    /// Connections handed out and not yet returned.
    pub in_use: usize,
    /// The most connections the pool opens (`max_connections`).
    pub max: usize,
    /// Callers waiting in `acquire` for a connection.
    pub waiting: usize,
    /// Connections opened since the client was built.
    pub created: u64,
    /// Connections closed for being idle too long or too old.
    pub retired: u64,
}

/// Pool settings, already validated.
#[derive(Clone, Debug)]
pub(crate) struct PoolSettings {
    pub(crate) max_connections: usize,
    pub(crate) min_idle: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) acquire_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
}

/// Why a connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    /// Older than `max_lifetime`: closed wherever it is found.
    Lifetime,
    /// Idle longer than `idle_timeout`: closed by maintenance, keeping
    /// `min_idle` connections open.
    Idle,
}

#[derive(Clone, Copy)]
struct Times {
    created: Instant,
    returned: Option<Instant>,
}

/// Creation and return times of every open connection, and counters.
#[derive(Default)]
pub(crate) struct Tracker {
    times: Mutex<HashMap<usize, Times>>,
    created: AtomicU64,
    retired: AtomicU64,
    /// What the password provider last failed with, for [`pool_error`].
    pub(crate) password_failures: Arc<ProviderFailures>,
    /// The role connections log in as, for [`Error::PasswordProvider`].
    pub(crate) user: String,
    /// Each connection whose `search_path` a [`Tenant`](super::Tenant) set:
    /// `Some(schema)` while nothing else may have changed it, `None` once
    /// something may have (it is reset before the plain client uses it).
    /// Connections no tenant touched are not here.
    search_paths: Mutex<HashMap<usize, Option<Arc<str>>>>,
    /// Whether a tenant ever set a `search_path` on this pool: until one
    /// does, acquire and release never take the lock above.
    tenants_seen: std::sync::atomic::AtomicBool,
}

fn key(client: &ClientWrapper) -> usize {
    Arc::as_ptr(&client.statement_cache) as usize
}

impl Tracker {
    /// A tracker for a pool whose connections log in as `user`.
    pub(crate) fn for_user(user: &str) -> Self {
        Tracker {
            user: user.to_owned(),
            ..Tracker::default()
        }
    }

    fn with_times<T>(&self, f: impl FnOnce(&mut HashMap<usize, Times>) -> T) -> T {
        f(&mut self.times.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `f` on the known paths, or returns `T::default()` when no
    /// tenant ever set one (the common case: no lock on the hot path).
    fn with_paths<T: Default>(
        &self,
        f: impl FnOnce(&mut HashMap<usize, Option<Arc<str>>>) -> T,
    ) -> T {
        if !self.tenants_seen.load(Ordering::Acquire) {
            return T::default();
        }
        f(&mut self
            .search_paths
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// The tenant schema `client`'s `search_path` is known to be.
    pub(crate) fn search_path(&self, client: &ClientWrapper) -> Option<Arc<str>> {
        self.with_paths(|p| p.get(&key(client)).cloned().flatten())
    }

    /// Notes what `client`'s `search_path` is now: a tenant's schema, or
    /// (`None`) unknown, which only matters once a tenant has set it.
    pub(crate) fn set_search_path(&self, client: &ClientWrapper, schema: Option<Arc<str>>) {
        if schema.is_some() {
            self.tenants_seen.store(true, Ordering::Release);
        }
        self.with_paths(|p| match schema {
            Some(schema) => {
                p.insert(key(client), Some(schema));
            }
            None => {
                if let Some(known) = p.get_mut(&key(client)) {
                    *known = None;
                }
            }
        });
    }

    /// Whether a tenant set `client`'s `search_path` since it was opened
    /// or last reset.
    pub(crate) fn tenant_touched(&self, client: &ClientWrapper) -> bool {
        self.with_paths(|p| p.contains_key(&key(client)))
    }

    /// Forgets `client`'s `search_path`: it is new, closed, or reset to its
    /// session default.
    pub(crate) fn forget_search_path(&self, client: &ClientWrapper) {
        self.with_paths(|p| p.remove(&key(client)));
    }

    fn created(&self, client: &ClientWrapper) {
        // A new connection may sit where a closed one was: nothing is
        // known of its search_path.
        self.forget_search_path(client);
        self.created.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        self.with_times(|t| {
            t.insert(
                key(client),
                Times {
                    created: now,
                    returned: None,
                },
            )
        });
    }

    pub(crate) fn returned(&self, client: &ClientWrapper) {
        let now = Instant::now();
        self.with_times(|t| {
            if let Some(times) = t.get_mut(&key(client)) {
                times.returned = Some(now);
            }
        });
    }

    /// Why `client` should be closed instead of used, if it should.
    fn expired(&self, client: &ClientWrapper, settings: &PoolSettings) -> Option<Expiry> {
        let times = self.with_times(|t| t.get(&key(client)).copied())?;
        let now = Instant::now();
        if settings
            .max_lifetime
            .is_some_and(|max| now.duration_since(times.created) >= max)
        {
            return Some(Expiry::Lifetime);
        }
        let idle_since = times.returned?;
        settings
            .idle_timeout
            .is_some_and(|max| now.duration_since(idle_since) >= max)
            .then_some(Expiry::Idle)
    }

    fn retire(&self, client: &ClientWrapper) {
        self.forget_search_path(client);
        self.retired.fetch_add(1, Ordering::Relaxed);
        self.with_times(|t| t.remove(&key(client)));
    }
}

/// Builds the deadpool pool with pgsim's hooks.
/// `tls`: the connector for a server reached directly (Live mode), which
/// does what `sslmode` says; the recorder and the mock server are reached
/// in plaintext. `credentials`: the password each new connection opens
/// with, set on its own copy of `config`.
pub(crate) fn build(
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    credentials: Credentials,
    settings: &PoolSettings,
    tracker: &Arc<Tracker>,
) -> Result<Pool, Error> {
    let manager_config = ManagerConfig {
        // Only checks the socket is open: no extra round trip per
        // acquire, so recordings hold only what the caller sent.
        recycling_method: RecyclingMethod::Fast,
    };
    let failures = Arc::clone(&tracker.password_failures);
    let manager = match tls {
        Some(tls) => Manager::from_connect(
            config,
            Connector {
                tls,
                credentials,
                failures,
            },
            manager_config,
        ),
        None => Manager::from_connect(
            config,
            Connector {
                tls: NoTls,
                credentials,
                failures,
            },
            manager_config,
        ),
    };
    let on_create = Arc::clone(tracker);
    let on_recycle = Arc::clone(tracker);
    let recycle_settings = settings.clone();
    Pool::builder(manager)
        .max_size(settings.max_connections)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(settings.acquire_timeout),
            create: Some(settings.connect_timeout),
            recycle: Some(settings.connect_timeout),
        })
        .post_create(deadpool_postgres::Hook::sync_fn(move |client, _| {
            on_create.created(client);
            Ok(())
        }))
        .pre_recycle(deadpool_postgres::Hook::sync_fn(move |client, _| {
            // deadpool drops the connection and tries the next or opens
            // one. Idle connections are left to maintenance, which keeps
            // `min_idle` of them.
            if on_recycle.expired(client, &recycle_settings) == Some(Expiry::Lifetime) {
                on_recycle.retire(client);
                return Err(HookError::message("max lifetime reached"));
            }
            Ok(())
        }))
        .build()
        .map_err(|e| Error::Pool {
            reason: e.to_string(),
        })
}

/// Maps deadpool's error to pgsim's, typed.
pub(crate) fn pool_error(e: PoolError, settings: &PoolSettings, tracker: &Tracker) -> Error {
    use deadpool_postgres::TimeoutType;
    match e {
        PoolError::Timeout(TimeoutType::Wait) => Error::AcquireTimeout {
            waited: settings.acquire_timeout,
        },
        PoolError::Timeout(TimeoutType::Create | TimeoutType::Recycle) => Error::ConnectTimeout {
            timeout: settings.connect_timeout,
        },
        PoolError::Backend(e) => match tracker.password_failures.explain(&e) {
            Some(reason) => Error::PasswordProvider {
                user: tracker.user.clone(),
                reason,
            },
            None => Error::Postgres(e),
        },
        PoolError::Closed => Error::PoolClosed,
        other => Error::Pool {
            reason: other.to_string(),
        },
    }
}

pub(crate) fn stats(pool: &Pool, tracker: &Tracker) -> PoolStats {
    let status = pool.status();
    PoolStats {
        idle: status.available,
        in_use: status.size - status.available,
        max: status.max_size,
        waiting: status.waiting,
        created: tracker.created.load(Ordering::Relaxed),
        retired: tracker.retired.load(Ordering::Relaxed),
    }
}

/// Closes idle connections past their lifetime, and those idle longer than
/// the idle timeout beyond the `min_idle` kept warm.
pub(crate) fn retire_expired(pool: &Pool, tracker: &Tracker, settings: &PoolSettings) {
    let mut idle_over_min = pool.status().available.saturating_sub(settings.min_idle);
    pool.retain(|client, _| match tracker.expired(client, settings) {
        Some(Expiry::Lifetime) => {
            tracker.retire(client);
            false
        }
        Some(Expiry::Idle) if idle_over_min > 0 => {
            idle_over_min -= 1;
            tracker.retire(client);
            false
        }
        Some(Expiry::Idle) | None => true,
    });
}

/// Closes every idle connection now (those in use close when they come
/// back to a pool nobody holds any more).
pub(crate) fn close_idle(pool: &Pool, tracker: &Tracker) {
    pool.retain(|client, _| {
        tracker.retire(client);
        false
    });
}

/// Opens connections until `min_idle` are idle (within `max_connections`),
/// without ever making a caller wait: it only takes connections that are
/// free right now.
pub(crate) async fn top_up(
    pool: &Pool,
    settings: &PoolSettings,
    tracker: &Tracker,
) -> Result<Vec<Object>, Error> {
    let status = pool.status();
    let in_use = status.size - status.available;
    let want_idle = settings
        .min_idle
        .min(settings.max_connections.saturating_sub(in_use));
    if status.available >= want_idle {
        return Ok(Vec::new());
    }
    let now = Timeouts {
        wait: Some(Duration::ZERO),
        create: Some(settings.connect_timeout),
        recycle: Some(settings.connect_timeout),
    };
    // Holding `want_idle` at once forces the missing ones to be opened; the
    // caller returns them all to the pool.
    let mut held = Vec::with_capacity(want_idle);
    for _ in 0..want_idle {
        match pool.timeout_get(&now).await {
            Ok(obj) => held.push(obj),
            // Someone took the last free slot meanwhile: they need it more.
            Err(PoolError::Timeout(deadpool_postgres::TimeoutType::Wait)) => break,
            Err(e) => return Err(pool_error(e, settings, tracker)),
        }
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_timeout_maps_to_a_typed_error() {
        let settings = PoolSettings {
            max_connections: 1,
            min_idle: 0,
            connect_timeout: Duration::from_secs(3),
            acquire_timeout: Duration::from_millis(150),
            idle_timeout: None,
            max_lifetime: None,
        };
        let e = pool_error(
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait),
            &settings,
            &Tracker::default(),
        );
        assert!(
            matches!(e, Error::AcquireTimeout { waited } if waited == Duration::from_millis(150))
        );
        let e = pool_error(
            PoolError::Timeout(deadpool_postgres::TimeoutType::Create),
            &settings,
            &Tracker::default(),
        );
        assert!(
            matches!(e, Error::ConnectTimeout { timeout } if timeout == Duration::from_secs(3))
        );
        assert!(matches!(
            pool_error(PoolError::Closed, &settings, &Tracker::default()),
            Error::PoolClosed
        ));
    }
}
