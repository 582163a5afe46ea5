//! Connects to a PostgreSQL URL as soon as something listens there, runs
//! one query and exits: the client half of the time-to-first-answered-query
//! measurement in `benches/compare.sh`, the same for pgsim and for a fresh
//! cluster so only the server side differs.
//!
//! ```text
//! first_query 'host=127.0.0.1 port=6543 user=postgres dbname=pgsim_demo' 'select count(*) from events' [T0_NS]
//! ```
//!
//! With `T0_NS` (nanoseconds since the epoch, taken by the caller just
//! before it started the server) it prints the microseconds from then to
//! the answer, and to the first accepted connection. It polls every 100 µs.
//! A query with `$1` is sent over the extended protocol with the int4 `1`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(sql)) = (args.next(), args.next()) else {
        eprintln!("usage: first_query CONNINFO SQL");
        return ExitCode::FAILURE;
    };
    let t0: Option<u128> = args.next().and_then(|t| t.parse().ok());
    let since = || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        t0.map(|t0| now.saturating_sub(t0) / 1000)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        // A listening socket first, so the time to listen shows apart.
        if tokio::net::TcpStream::connect(addr(&url)).await.is_err() {
            tokio::time::sleep(Duration::from_micros(100)).await;
            continue;
        }
        let listening = since();
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                // A query with a parameter (the synthetic sets') is sent
                // over the extended protocol with the int4 1.
                let answered = if sql.contains("$1") {
                    client.query(&sql, &[&1i32]).await.map(drop)
                } else {
                    client.simple_query(&sql).await.map(drop)
                };
                return match answered {
                    Ok(_) => {
                        if let (Some(l), Some(a)) = (listening, since()) {
                            println!("listening_us={l} answered_us={a}");
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("first_query: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            Err(_) => tokio::time::sleep(Duration::from_micros(100)).await,
        }
    }
    eprintln!("first_query: nothing answered within 60 s");
    ExitCode::FAILURE
}

/// `host:port` of a connection string, as tokio-postgres reads it.
fn addr(conninfo: &str) -> String {
    let config = conninfo.parse::<tokio_postgres::Config>().ok();
    let host = config
        .as_ref()
        .and_then(|c| c.get_hosts().first().cloned())
        .and_then(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => Some(h),
            #[allow(unreachable_patterns)]
            _ => None,
        })
        .unwrap_or_else(|| "127.0.0.1".into());
    let port = config
        .as_ref()
        .and_then(|c| c.get_ports().first().copied())
        .unwrap_or(5432);
    format!("{host}:{port}")
}
