//! Writes a synthetic fixture set of N pgbench-shaped exchanges, for the
//! scale benchmarks in `benches/compare.sh` (benchmark input only, never
//! committed under `fixtures/`).
//!
//! ```text
//! cargo run --release --example gen_fixtures -- /tmp/fx-1m 1000000
//! cargo run --release --example gen_fixtures -- /tmp/fx-one 100000 one-key
//! ```
//!
//! `one-key`: every exchange with the same parameter, so one key is
//! recorded N times (one queue of N answers). `distinct-sql`: every
//! exchange its own statement (the cost per distinct statement).

#[path = "../benches/support/synth.rs"]
mod synth;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: gen_fixtures DIR EXCHANGES [pgbench|one-key|distinct-sql]");
        return ExitCode::FAILURE;
    };
    let shape = match args.next().as_deref() {
        None | Some("pgbench") => synth::Shape::Pgbench,
        Some("one-key") => synth::Shape::OneKey,
        Some("distinct-sql") => synth::Shape::DistinctSql,
        Some(other) => {
            eprintln!("gen_fixtures: unknown shape {other:?} (pgbench, one-key, distinct-sql)");
            return ExitCode::FAILURE;
        }
    };
    match synth::write_set_of(dir.as_ref(), n, 50_000, shape) {
        Ok(()) => {
            println!("wrote {n} exchanges into {dir} (database \"bench\")");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_fixtures: {e}");
            ExitCode::FAILURE
        }
    }
}
