//! Throws hostile byte streams at an in-process mock server over the
//! bundled demo fixtures (random bytes, mutated valid protocol streams,
//! absurd declared lengths, oversized startup packets, truncated
//! messages, bursts past `max_connections`), checking after each batch
//! that the server still answers and its memory stays bounded.
//!
//! ```text
//! cargo run --release --example fuzz -- --inputs 10000000 --seed 1 --time-limit 1200
//! cargo run --release --example fuzz -- --seed 1 --connection 4711   # replay one connection
//! ```
//!
//! The engine is `engine/`, shared with `tests/it/fuzz.rs`.

mod engine;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug)]
struct Args {
    /// Stop after the batch that reaches this many inputs.
    #[arg(long, default_value_t = 1_000_000)]
    inputs: u64,
    /// Every input comes from this seed (and the connection's number).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after the batch that ends past this many seconds.
    #[arg(long, default_value_t = 600)]
    time_limit: u64,
    /// Connections per batch (a health check after each).
    #[arg(long, default_value_t = 128)]
    batch: u64,
    /// Most inputs on one connection.
    #[arg(long, default_value_t = 16)]
    max_inputs: u64,
    /// Connections in flight at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Print a progress line every this many batches.
    #[arg(long, default_value_t = 500)]
    progress: u64,
    /// Only replay connection N of the seed: print what it sent and how it
    /// ended.
    #[arg(long)]
    connection: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let corpus = match engine::Corpus::load(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fuzz: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match engine::start_server(&dir).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fuzz: the mock server does not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(i) = args.connection {
        let planned = engine::connection_bytes(args.seed, i, args.max_inputs, &corpus);
        println!(
            "connection {i} of seed {}: {} bytes, inputs by kind {:?}, {} surely read",
            args.seed,
            planned.bytes.len(),
            planned.kinds,
            planned.surely_read
        );
        println!("{}", hex(&planned.bytes));
        let (outcome, malformed) = engine::send(server.addr(), &planned.bytes).await;
        println!("outcome: {outcome:?}; malformed answer: {malformed:?}");
        let report = server.shutdown().await;
        println!(
            "server: {} sessions, {} queries, {} misses",
            report.sessions, report.queries, report.missed
        );
        return ExitCode::SUCCESS;
    }
    let cfg = engine::Config {
        seed: args.seed,
        inputs: args.inputs,
        time_limit: Duration::from_secs(args.time_limit),
        batch_connections: args.batch,
        max_inputs_per_connection: args.max_inputs,
        parallel: args.parallel,
        progress_every: args.progress,
    };
    println!("fuzz: seed {}, up to {} inputs or {} s, {} connections per batch, up to {} inputs per connection, {} in flight",
        cfg.seed, cfg.inputs, args.time_limit, cfg.batch_connections, cfg.max_inputs_per_connection, cfg.parallel);
    let result = engine::run(&server, &corpus, &cfg, |s| {
        println!(
            "  {} inputs, {} connections, {:.0} s, RSS {:.1} MiB (max {:.1})",
            s.inputs,
            s.connections,
            s.elapsed.as_secs_f64(),
            engine::rss() as f64 / 1048576.0,
            s.rss_max as f64 / 1048576.0
        );
    })
    .await;
    let report = server.shutdown().await;
    println!(
        "server: {} sessions, {} queries, {} misses ({} detailed, {} left out)",
        report.sessions,
        report.queries,
        report.missed,
        report.misses.len(),
        report.misses_left_out
    );
    let copy_unused = report.unused.iter().any(|u| u.file.contains("fuzz-copy"));
    println!(
        "the recorded COPY FROM STDIN was {}",
        if copy_unused {
            "never replayed"
        } else {
            "replayed"
        }
    );
    match result {
        Ok(stats) => {
            println!("{stats}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            println!("FAIL: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
