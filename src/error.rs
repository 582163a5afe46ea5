use std::net::SocketAddr;
use std::time::Duration;

use crate::fixture::FixtureError;

/// Everything that can go wrong in pgsim's library API.
///
/// Callers ask questions instead of matching strings: [`Error::code`] for the
/// SQLSTATE, [`Error::is_timeout`], [`Error::is_transient`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A fixture file could not be read, parsed or written.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    /// The server or proxy could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A fault spec given to [`crate::MockServerBuilder::fault`] does not parse.
    #[error(transparent)]
    Fault(#[from] crate::FaultError),
    /// A setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A setting (builder method or environment variable) has a value it
    /// cannot take.
    #[error("invalid {setting} = {value:?}: {reason}")]
    Setting {
        /// The builder method or environment variable.
        setting: String,
        /// The value given (a password in it is hidden).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A connection string is malformed or names something pgsim cannot
    /// connect to.
    #[error("invalid connection string {url}: {reason}")]
    Url {
        /// The string, with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A recording client could not reach or log in to the real server:
    /// checked when the client is built, with the server's own error.
    #[error("recording needs the upstream server {address}: {}", describe(source))]
    Upstream {
        /// Its host and port.
        address: String,
        /// The driver's error, with the server's fields.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A PostgreSQL client error (from tokio-postgres), outside any query.
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// A query failed: the server answered an error, or the connection broke.
    #[error("{} (in `{sql}`)", describe(source))]
    Query {
        /// The query, sanitized for logs ([`crate::validate::sanitize_for_log`]).
        sql: String,
        /// The driver's error, with the server's fields.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The parameters given do not match the query's placeholders; nothing
    /// was sent to the server.
    #[error("{source} (in `{sql}`)")]
    Params {
        /// The query, sanitized for logs.
        sql: String,
        /// Expected and given counts.
        #[source]
        source: crate::validate::ParamCountError,
    },
    /// `query_one` found no row.
    #[error("query returned no rows, expected exactly one (in `{sql}`)")]
    NoRows {
        /// The query, sanitized for logs.
        sql: String,
    },
    /// `query_one` or `query_opt` found more than one row.
    #[error("query returned more than one row, expected {expected} (in `{sql}`)")]
    TooManyRows {
        /// `"exactly one"` or `"at most one"`.
        expected: &'static str,
        /// The query, sanitized for logs.
        sql: String,
    },
    /// Every pooled connection stayed in use for the whole acquire timeout.
    #[error("no pooled connection became free within {waited:?} (max_connections reached)")]
    AcquireTimeout {
        /// The acquire timeout that ran out.
        waited: Duration,
    },
    /// Opening a new connection took longer than the connect timeout.
    #[error("could not connect within {timeout:?}")]
    ConnectTimeout {
        /// The connect timeout that ran out.
        timeout: Duration,
    },
    /// The client was closed.
    #[error("the connection pool is closed")]
    PoolClosed,
    /// Another pool failure (a hook or runtime problem).
    #[error("connection pool: {reason}")]
    Pool {
        /// What deadpool reported.
        reason: String,
    },
    /// `commit` was called on a transaction a failed statement had aborted;
    /// the server rolled it back.
    #[error("the transaction was aborted by an earlier error and has been rolled back")]
    TransactionAborted,
    /// A closure transaction hit a serialization failure or deadlock on
    /// every attempt it was allowed.
    #[error("transaction gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        last: Box<Error>,
    },
    /// The connection broke after `COMMIT` was sent, before its answer
    /// came: the transaction may have been applied or not. pgsim never runs
    /// it again (not even a closure transaction); check what the server
    /// holds before trying again. Not [transient](Error::is_transient).
    #[error(
        "the connection broke after COMMIT was sent: the transaction may have been applied or not, \
         so it was not retried; check the data before running it again ({source})"
    )]
    CommitOutcomeUnknown {
        /// The broken connection's error.
        #[source]
        source: Box<Error>,
    },
    /// The node's circuit breaker is open: it failed repeatedly and is left
    /// alone until its cooldown ends.
    #[error("circuit breaker open for {node}: it failed repeatedly, retry after its cooldown")]
    CircuitOpen {
        /// `primary`, `replica-1`, ...
        node: String,
    },
    /// Closing a client with replicas failed on some nodes. Every node was
    /// closed all the same (each recorder finished, each mock server shut
    /// down); `closed` holds what the others reported.
    #[error("closing failed on {}", describe_nodes(failed))]
    Close {
        /// Each node that failed, by name (`primary`, `replica-1`, ...).
        failed: std::collections::BTreeMap<String, Error>,
        /// What closing each other node found, by name.
        closed: std::collections::BTreeMap<String, crate::client::Closed>,
    },
    /// Recording could not write every exchange it saw.
    #[error("recording incomplete: {}", errors.join("; "))]
    Recording {
        /// One line per problem.
        errors: Vec<String>,
    },
    /// The password provider
    /// ([`ClientBuilder::password_provider`](crate::ClientBuilder::password_provider))
    /// failed when a new connection needed a password; no connection was
    /// attempted.
    #[error("the password provider failed to give the password of role {user}: {reason}")]
    PasswordProvider {
        /// The role the connection would log in as.
        user: String,
        /// What the provider said (its error's `Display`).
        reason: String,
    },
    /// A tenant name ([`Client::tenant_schema`](crate::Client::tenant_schema),
    /// [`Client::tenant_database`](crate::Client::tenant_database)) that
    /// cannot name a tenant's schema or database.
    #[error("invalid tenant name {name:?}: {reason}")]
    Tenant {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A migrations directory is invalid, or applying or reverting it
    /// failed ([`crate::client::Migrations`]).
    #[error(transparent)]
    Migration(#[from] crate::client::MigrationError),
    /// `pg_dump` or `pg_restore` could not run or failed, or a restore's
    /// row counts differ from its backup's ([`crate::Client::backup`]).
    #[error(transparent)]
    Backup(#[from] crate::client::BackupError),
}

impl Error {
    /// The SQLSTATE, when the error came from a server (real or mock).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Postgres(e) | Error::Query { source: e, .. } => e.code().map(|c| c.code()),
            Error::RetriesExhausted { last, .. } => last.code(),
            Error::Migration(crate::client::MigrationError::Failed { source, .. }) => source.code(),
            _ => None,
        }
    }

    /// The server's error, with its detail, hint and position.
    pub fn as_db_error(&self) -> Option<&tokio_postgres::error::DbError> {
        match self {
            Error::Postgres(e) | Error::Query { source: e, .. } => e.as_db_error(),
            Error::RetriesExhausted { last, .. } => last.as_db_error(),
            Error::Migration(crate::client::MigrationError::Failed { source, .. }) => {
                source.as_db_error()
            }
            _ => None,
        }
    }

    /// A timeout: acquiring a pooled connection, connecting, or the server
    /// cancelling a statement (57014, e.g. `statement_timeout`; 55P03,
    /// `lock_timeout`; 25P04, idle in transaction).
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::AcquireTimeout { .. } | Error::ConnectTimeout { .. } => true,
            _ => matches!(self.code(), Some("57014" | "55P03" | "25P04")),
        }
    }

    /// Worth trying again as it was: pool and connection timeouts, a broken
    /// connection, SQLSTATE class 08 (connection exception), 40001
    /// (serialization failure), 40P01 (deadlock), 57P01..57P03 (shutdown,
    /// cannot connect now) and 53300 (too many connections). Never a
    /// constraint violation (23), a syntax or permission error (42) or a
    /// statement timeout.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::AcquireTimeout { .. } | Error::ConnectTimeout { .. } => true,
            Error::CircuitOpen { .. } => true,
            Error::Postgres(e) | Error::Query { source: e, .. } => {
                broken_connection(e) || e.code().is_some_and(|c| is_transient_sqlstate(c.code()))
            }
            _ => false,
        }
    }

    /// The connection broke or was refused: no answer came (closed socket,
    /// I/O error), or the server sent a connection-class error (08xxx,
    /// 57P01..57P03, 53300). Whatever was in flight may or may not have run.
    pub fn is_connection_error(&self) -> bool {
        match self {
            Error::Postgres(e) | Error::Query { source: e, .. } => broken_connection(e),
            Error::RetriesExhausted { last, .. } => last.is_connection_error(),
            _ => false,
        }
    }

    /// A write reached a server that only reads (25006, e.g. a replica).
    pub fn is_read_only_transaction(&self) -> bool {
        self.code() == Some("25006")
    }

    /// A serialization failure (40001) or deadlock (40P01): what a
    /// transaction retries from its start.
    pub fn is_serialization_failure(&self) -> bool {
        matches!(self.code(), Some("40001" | "40P01"))
    }
}

/// The driver's error with what it wraps: the server's severity, SQLSTATE
/// and message, or the I/O error behind a broken connection.
fn describe(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => {
            // The DETAIL and HINT are where a miss explains itself (the
            // closest recorded query, how to record this one).
            let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("; DETAIL: {detail}"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; HINT: {hint}"));
            }
            text
        }
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

/// `replica-1: ...; primary: ...`.
fn describe_nodes(failed: &std::collections::BTreeMap<String, Error>) -> String {
    let each: Vec<String> = failed.iter().map(|(n, e)| format!("{n}: {e}")).collect();
    each.join("; ")
}

/// Whether a SQLSTATE marks a failure that may pass if tried again.
pub fn is_transient_sqlstate(code: &str) -> bool {
    is_connection_sqlstate(code) || matches!(code, "40001" | "40P01")
}

/// Connection exceptions (08), shutdown and cannot-connect-now (57P01..03),
/// too many connections (53300).
fn is_connection_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// The connection broke or was refused: a connection-class SQLSTATE, or no
/// answer at all (closed socket, I/O error).
fn broken_connection(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => is_connection_sqlstate(code.code()),
        None => {
            e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
        }
    }
}

/// `Result` with pgsim's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    #[test]
    fn errors_are_send_sync_static() {
        fn check<T: Send + Sync + 'static>() {}
        check::<super::Error>();
        check::<super::FixtureError>();
        check::<crate::wire::WireError>();
        check::<crate::FaultError>();
    }

    #[test]
    fn transient_sqlstates_follow_their_class() {
        for code in [
            "08000", "08006", "08P01", "40001", "40P01", "57P01", "57P03", "53300",
        ] {
            assert!(super::is_transient_sqlstate(code), "{code}");
        }
        for code in [
            "23505", "23503", "42601", "42501", "57014", "22012", "25P02", "53100",
        ] {
            assert!(!super::is_transient_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn timeouts_are_transient_and_say_so() {
        let e = super::Error::AcquireTimeout {
            waited: std::time::Duration::from_millis(200),
        };
        assert!(e.is_timeout() && e.is_transient());
        assert_eq!(e.code(), None);
        assert!(e.to_string().contains("200ms"), "{e}");
    }
}
