//! `pgsim-recorder`: regenerates the bundled fixtures from a real server.
//!
//! ```text
//! PGSIM_LIVE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres cargo run -p pgsim-recorder
//! ```

#[allow(dead_code)] // shared with the integration tests, which use the rest
mod scenario;

use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(url) = std::env::var("PGSIM_LIVE_URL") else {
        eprintln!("pgsim-recorder: set PGSIM_LIVE_URL to a real PostgreSQL (e.g. postgres://postgres:postgres@127.0.0.1:5432/postgres)");
        return ExitCode::FAILURE;
    };
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo"));
    let result = async {
        let live = scenario::Target::from_url(&url)?;
        let transcript = scenario::record(&live, &out).await?;
        scenario::save_transcript(&out, &transcript)?;
        Ok::<_, String>(transcript)
    }
    .await;
    match result {
        Ok(t) => {
            println!(
                "recorded the demo scenario into {} ({} tokio-postgres steps, {} pgbench runs)",
                out.display(),
                t.tokio.len(),
                t.pgbench.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pgsim-recorder: {e}");
            ExitCode::FAILURE
        }
    }
}
