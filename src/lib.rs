#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod client;
pub mod diff;
mod error;
pub mod fixture;
pub mod key;
mod listen;
mod metrics;
mod protocol;
mod record;
pub mod replay;
mod server;
pub mod survey;
mod tls;
mod trace;
pub mod types;
pub mod validate;
pub mod verify;
mod wire;

pub use client::{Client, ClientBuilder, ConnectionString, Mode};
pub use error::{is_transient_sqlstate, Error, Result};
pub use record::{Plan, RecordMode, RecordSummary, Recorder, RecorderBuilder};
pub use replay::{Replay, Report, SQLSTATE_NO_RECORDING};
pub use server::fault::{Fault, FaultError, FaultStats};
pub use server::{AuthMethod, MockServer, MockServerBuilder};
pub use tls::{tls_connector, SslMode, TlsSource};

/// The pool crate [`Client`] is built on, re-exported so versions never mix.
pub use deadpool_postgres;
/// The metrics crate of [`Client::register_metrics`], for the registry type.
pub use prometheus_client;
/// The driver crate pgsim speaks through, re-exported so versions never mix.
pub use tokio_postgres;
