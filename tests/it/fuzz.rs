//! A short fuzzing pass (the engine of `examples/fuzz`, which runs the
//! long one): over 100,000 hostile inputs read at an in-process mock server over
//! the demo fixtures, which must keep serving, never panic, frame every
//! answer, admit exactly `max_connections` sessions, and stay within its
//! memory bound.
//!
//! The pass runs in a child process of this test binary (the same test,
//! re-run alone with `PGSIM_FUZZ_CHILD` set): resident memory is a
//! process-wide figure, and the other tests of this binary, running in
//! parallel, would move it.

#[path = "../../examples/fuzz/engine/mod.rs"]
mod engine;

use crate::support::demo_dir;

const CHILD: &str = "PGSIM_FUZZ_CHILD";
const SEED: u64 = 20_261_202;
/// Inputs sent. Most connections end at their first hostile input, so the
/// server surely reads only about a fifth of them (see
/// `Planned::surely_read`): this many make that at least 100,000.
const INPUTS: u64 = 550_000;
/// Inputs the server must surely have read.
const READ: u64 = 100_000;

#[test]
fn a_hundred_thousand_hostile_inputs_leave_the_server_serving_in_bounded_memory() {
    if std::env::var_os(CHILD).is_some() {
        return fuzz_pass();
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "fuzz::a_hundred_thousand_hostile_inputs_leave_the_server_serving_in_bounded_memory",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs again");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "the fuzzing pass failed:\n{text}");
    assert!(text.contains("1 passed"), "the pass did not run:\n{text}");
}

fn fuzz_pass() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let corpus = engine::Corpus::load(&demo_dir()).expect("the demo fixtures load");
        let server = engine::start_server(&demo_dir())
            .await
            .expect("the server starts");
        let cfg = engine::Config {
            seed: SEED,
            inputs: INPUTS,
            // Far above what the pass takes (BENCHMARKS.md, "Fuzzing"):
            // only a run gone wrong reaches it.
            time_limit: std::time::Duration::from_secs(600),
            ..engine::Config::default()
        };
        let stats = match engine::run(&server, &corpus, &cfg, |_| {}).await {
            Ok(stats) => stats,
            Err(failure) => panic!("seed {SEED}: {failure}"),
        };
        println!("seed {SEED}:\n{stats}");
        assert!(stats.inputs >= INPUTS, "{stats}");
        assert!(stats.surely_read >= READ, "{stats}");
        assert!(
            stats.by_kind.iter().all(|&n| n > 0),
            "every kind of input ran: {stats}"
        );
        // The inputs reached the server's error paths and its answers alike.
        assert!(
            stats.fatal > 0 && stats.silent > 0 && stats.answered > 0,
            "{stats}"
        );
        assert_eq!(stats.timeouts, 0, "{stats}");
        assert_eq!(stats.malformed, 0, "{stats}");
        assert!(stats.batches >= 100 && stats.bursts >= 10, "{stats}");
        assert!(stats.rss_max <= stats.rss_bound, "{stats}");
        let report = server.shutdown().await;
        // Every fuzzing connection that got past startup was a session.
        assert!(
            report.sessions > stats.connections / 2,
            "{} sessions",
            report.sessions
        );
        assert!(report.misses.len() <= 100, "the miss record stays bounded");
        // Inputs reached copy-in: the recorded COPY was answered.
        assert!(
            !report.unused.iter().any(|u| u.file.contains("fuzz-copy")),
            "the recorded COPY FROM STDIN was never replayed"
        );
    });
}
