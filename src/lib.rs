#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod error;
pub mod fixture;
pub mod key;
mod listen;
mod record;
pub mod replay;
mod server;
pub mod types;
pub mod validate;
mod wire;

pub use error::{Error, Result};
pub use record::{RecordSummary, Recorder, RecorderBuilder};
pub use replay::{Replay, Report, SQLSTATE_NO_RECORDING};
pub use server::{MockServer, MockServerBuilder};

/// The driver crate pgsim speaks through, re-exported so versions never mix.
pub use tokio_postgres;
