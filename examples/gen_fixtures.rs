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
//! recorded N times (one queue of N answers).

#[path = "../benches/support/synth.rs"]
mod synth;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: gen_fixtures DIR EXCHANGES [one-key]");
        return ExitCode::FAILURE;
    };
    let one_key = match args.next().as_deref() {
        None => false,
        Some("one-key") => true,
        Some(other) => {
            eprintln!("gen_fixtures: unknown shape {other:?} (one-key)");
            return ExitCode::FAILURE;
        }
    };
    match synth::write_set_of(dir.as_ref(), n, 50_000, one_key) {
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
