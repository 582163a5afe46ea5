//! Synthetic fixture sets for benchmarks: pgbench-shaped exchanges
//! (`SELECT abalance FROM pgbench_accounts WHERE aid = $1`, one int4 row).
//! Benchmark inputs only: never committed under `fixtures/`.
//! Included by path into benches and examples, each using part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use pgsim::fixture::{
    Column, Exchange, Param, QueryResult, ServerInfo, Session, Value, FORMAT_VERSION,
};

/// The SQL every synthetic exchange uses.
pub const SQL: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";

/// How the exchanges of a synthetic set differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// pgbench -S: one statement, a distinct parameter each.
    Pgbench,
    /// One key recorded every time (the parameter `1`), each answer its own.
    OneKey,
    /// A distinct statement each (a column alias of its own), so each is
    /// its own prepared statement: the cost per distinct statement.
    DistinctSql,
}

/// A session of `n` exchanges with distinct parameters, starting at `first`.
pub fn session(first: u64, n: u64) -> Session {
    session_of(first, n, Shape::Pgbench)
}

/// A session of `n` exchanges of `shape`, starting at `first`.
pub fn session_of(first: u64, n: u64, shape: Shape) -> Session {
    let one_key = shape == Shape::OneKey;
    let exchanges = (first..first + n)
        .map(|i| Exchange {
            seq: i,
            key: String::new(),
            sql: if shape == Shape::DistinctSql {
                format!("SELECT abalance AS a{i} FROM pgbench_accounts WHERE aid = $1;")
            } else {
                SQL.to_owned()
            },
            params: Some(vec![Param {
                type_oid: 23,
                value: Value::Text(if one_key { 1 } else { i + 1 }.to_string()),
            }]),
            param_types: Some(vec![23]),
            phase: Default::default(),
            before: Vec::new(),
            copy_in: None,
            scope: None,
            results: vec![QueryResult {
                columns: Some(vec![Column {
                    name: "abalance".into(),
                    type_oid: 23,
                    typmod: -1,
                    type_size: 4,
                    table_oid: 16398,
                    column_id: 3,
                }]),
                rows: vec![vec![Value::Text(((i * 7919) % 10_000).to_string())]],
                tag: Some("SELECT 1".into()),
                ..QueryResult::default()
            }],
        })
        .collect();
    let mut parameters = BTreeMap::new();
    parameters.insert("server_version".to_owned(), "15.18".to_owned());
    parameters.insert("client_encoding".to_owned(), "UTF8".to_owned());
    parameters.insert("DateStyle".to_owned(), "ISO, MDY".to_owned());
    parameters.insert("integer_datetimes".to_owned(), "on".to_owned());
    Session {
        format_version: FORMAT_VERSION,
        pgsim_version: env!("CARGO_PKG_VERSION").to_owned(),
        database: "bench".into(),
        user: "postgres".into(),
        server: ServerInfo {
            version: "15.18".into(),
            parameters,
            backend_pid: 1,
        },
        startup_error: None,
        exchanges,
    }
}

/// Writes `total` exchanges into `dir`, `per_file` per session file.
pub fn write_set(dir: &Path, total: u64, per_file: u64) -> std::io::Result<()> {
    write_set_of(dir, total, per_file, Shape::Pgbench)
}

/// [`write_set`] of exchanges of `shape`.
pub fn write_set_of(dir: &Path, total: u64, per_file: u64, shape: Shape) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut first = 0;
    let mut file = 1;
    while first < total {
        let n = per_file.min(total - first);
        let text = serde_json::to_string_pretty(&session_of(first, n, shape))
            .map_err(std::io::Error::other)?;
        std::fs::write(dir.join(format!("session-{file:04}.json")), text + "\n")?;
        first += n;
        file += 1;
    }
    Ok(())
}
