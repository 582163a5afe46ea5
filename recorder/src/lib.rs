//! The scenarios that regenerate pgsim's bundled fixtures from a real
//! PostgreSQL, and replay them in pgsim's integration tests: the same code
//! runs live (to record `fixtures/<suite>`) and against the mock server (to
//! prove replay gives what live gave). `fixtures/README.md` lists the
//! suites, what each proves and how to re-record it; the `pgsim-recorder`
//! binary runs them.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod routing;
pub mod scenario;
pub mod survey;
pub mod toolkit;
