//! Runs the catalog queries psql sent for its meta-commands (read back from
//! a recorded fixture set) `reps` times over one connection and prints the
//! elapsed milliseconds: the catalog-heavy workload of `benches/compare.sh`,
//! with a client light enough that the server's cost shows.
//!
//! ```text
//! catalog_load FIXTURES 'host=127.0.0.1 port=6543 user=postgres dbname=x' 20
//! ```

use std::process::ExitCode;
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, url, reps] = args.as_slice() else {
        eprintln!("usage: catalog_load FIXTURES CONNINFO REPS");
        return ExitCode::FAILURE;
    };
    let reps: usize = reps.parse().unwrap_or(1);
    let set = match pgsim::fixture::load_dir(dir) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("catalog_load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut exchanges: Vec<_> = set
        .sessions
        .iter()
        .flat_map(|s| s.session.exchanges.iter())
        .collect();
    exchanges.sort_by_key(|e| e.seq);
    let queries: Vec<&str> = exchanges
        .iter()
        .filter(|e| e.params.is_none())
        .map(|e| e.sql.as_str())
        .collect();
    let (client, conn) = match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("catalog_load: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn(conn);
    let start = Instant::now();
    for _ in 0..reps {
        for q in &queries {
            if let Err(e) = client.simple_query(q).await {
                eprintln!("catalog_load: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "{} {}",
        start.elapsed().as_secs_f64() * 1000.0,
        queries.len() * reps
    );
    ExitCode::SUCCESS
}
