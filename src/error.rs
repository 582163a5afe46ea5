use std::net::SocketAddr;

use crate::fixture::FixtureError;

/// Everything that can go wrong in pgsim's library API.
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
    /// A setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A PostgreSQL client error (from tokio-postgres).
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
}

impl Error {
    /// The SQLSTATE, when the error came from a server (real or mock).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Postgres(e) => e.code().map(|c| c.code()),
            _ => None,
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
    }
}
