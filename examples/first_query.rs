//! Connects to a PostgreSQL URL as soon as something listens there, runs
//! one query and exits: the client half of the time-to-first-answered-query
//! measurement in `benches/compare.sh`, the same for pgsim and for a fresh
//! cluster so only the server side differs.
//!
//! ```text
//! first_query 'host=127.0.0.1 port=6543 user=postgres dbname=pgsim_demo' 'select count(*) from events'
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(sql)) = (args.next(), args.next()) else {
        eprintln!("usage: first_query CONNINFO SQL");
        return ExitCode::FAILURE;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                return match client.simple_query(&sql).await {
                    Ok(_) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("first_query: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    eprintln!("first_query: nothing answered within 60 s");
    ExitCode::FAILURE
}
