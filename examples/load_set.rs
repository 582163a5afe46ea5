//! Loads a fixture directory in-process, `rounds` times, and prints the
//! fastest and the median load and the resident memory the loaded set
//! holds: the load and memory columns of `benches/compare.sh`'s growth
//! table, without a server or a client in the measurement.
//!
//! ```text
//! load_set DIR [cold|warm|off] [ROUNDS]
//! ```
//!
//! `cold` removes the index cache before every round (a first start),
//! `warm` uses the cache a previous run wrote (every later start; run
//! `cold` once first), `off` turns the cache off (JSON only). Memory is
//! what the process holds after its last load over what it held before
//! its first: with one round, exactly what one loaded set costs.

#[path = "../benches/support/rss.rs"]
mod rss;
use rss::rss_kib;

use std::process::ExitCode;
use std::time::Instant;

use pgsim::replay::{LoadOptions, Replay, CACHE_DIR};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: load_set DIR [cold|warm|off] [ROUNDS]");
        return ExitCode::FAILURE;
    };
    let mode = args.get(1).map_or("warm", String::as_str);
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
    let dir = std::path::Path::new(dir);
    let options = LoadOptions {
        index_cache: mode != "off",
        ..LoadOptions::default()
    };
    let load = || Replay::load_with(dir, &options);
    let mut times = Vec::new();
    let mut kept = None;
    let base = rss_kib(None);
    for round in 0..rounds.max(1) {
        if mode == "cold" {
            let _ = std::fs::remove_dir_all(dir.join(CACHE_DIR));
        }
        drop(kept.take());
        let t = Instant::now();
        match load() {
            Ok(r) => {
                times.push(t.elapsed().as_secs_f64() * 1e3);
                if round + 1 == rounds.max(1) {
                    kept = Some(r);
                } else {
                    drop(r);
                }
            }
            Err(e) => {
                eprintln!("load_set: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let held = rss_kib(None).saturating_sub(base);
    let Some(replay) = kept else {
        return ExitCode::FAILURE;
    };
    times.sort_by(f64::total_cmp);
    let exchanges = replay.answer_count().max(1);
    println!(
        "mode={mode} files={} exchanges={} min_ms={:.1} median_ms={:.1} rss_mib={:.1} bytes_per_exchange={}",
        replay.load_stats().map_or(0, |s| s.files),
        replay.answer_count(),
        times[0],
        times[times.len() / 2],
        held as f64 / 1024.0,
        held * 1024 / exchanges as u64,
    );
    ExitCode::SUCCESS
}
