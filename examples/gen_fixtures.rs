//! Writes a synthetic fixture set of N pgbench-shaped exchanges, for the
//! scale benchmarks in `benches/compare.sh` (benchmark input only, never
//! committed under `fixtures/`).
//!
//! ```text
//! cargo run --release --example gen_fixtures -- /tmp/fx-1m 1000000
//! ```

#[path = "../benches/support/synth.rs"]
mod synth;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: gen_fixtures DIR EXCHANGES");
        return ExitCode::FAILURE;
    };
    match synth::write_set(dir.as_ref(), n, 50_000) {
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
