//! `pgsim-recorder`: regenerates the bundled fixtures from a real server.
//!
//! ```text
//! PGSIM_LIVE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres cargo run -p pgsim-recorder [demo|toolkit|survey|routing|all]
//! ```

#[allow(dead_code)]
mod routing;
#[allow(dead_code)] // shared with the integration tests, which use the rest
mod scenario;
#[allow(dead_code)]
mod survey;
#[allow(dead_code)]
mod toolkit;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(url) = std::env::var("PGSIM_LIVE_URL") else {
        eprintln!("pgsim-recorder: set PGSIM_LIVE_URL to a real PostgreSQL (e.g. postgres://postgres:postgres@127.0.0.1:5432/postgres)");
        return ExitCode::FAILURE;
    };
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let fixtures = scenario::repo_root().join("fixtures");
    let (demo, toolkit, survey, routing) = match which.as_str() {
        "all" => (true, true, true, true),
        "demo" => (true, false, false, false),
        "toolkit" => (false, true, false, false),
        "survey" => (false, false, true, false),
        "routing" => (false, false, false, true),
        other => {
            eprintln!(
                "pgsim-recorder: unknown scenario {other:?}: expected demo, toolkit, survey, routing or all"
            );
            return ExitCode::FAILURE;
        }
    };
    let result = async {
        if demo {
            let live = scenario::Target::from_url(&url)?;
            let out = fixtures.join("demo");
            let t = scenario::record(&live, &out).await?;
            scenario::save_transcript(&out, &t)?;
            println!(
                "recorded the demo scenario into {} ({} tokio-postgres steps, {} pgbench runs)",
                out.display(),
                t.tokio.len(),
                t.pgbench.len()
            );
        }
        if toolkit {
            let out = fixtures.join("toolkit");
            let cases = toolkit::record_all(&url, &out).await?;
            println!("recorded {cases} toolkit cases into {}", out.display());
        }
        if survey {
            let out = fixtures.join("survey");
            let s = survey::record(&url, &out).await?;
            println!(
                "recorded the survey scenario into {} ({} databases collected, {} failed)",
                out.display(),
                s.summary.collected,
                s.summary.failed
            );
        }
        if routing {
            let replica = match std::env::var("PGSIM_REPLICA_URL") {
                Ok(url) => url,
                Err(_) => routing::start_replica()?,
            };
            let out = fixtures.join("routing");
            let lines = routing::record(&url, &replica, &out).await?;
            println!(
                "recorded the routing scenario into {} ({} observations)",
                out.display(),
                lines.len()
            );
        }
        Ok::<_, String>(())
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgsim-recorder: {e}");
            ExitCode::FAILURE
        }
    }
}
