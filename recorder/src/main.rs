//! `pgsim-recorder`: regenerates the bundled fixtures from a real server.
//!
//! ```text
//! PGSIM_LIVE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres \
//!     cargo run -p pgsim-recorder -- SUITE [CASE]
//! ```
//!
//! SUITE is `demo`, `toolkit`, `survey`, `routing` or `all`; CASE
//! re-records one case of a suite that has cases (`toolkit`) and leaves the
//! others' files untouched. See `fixtures/README.md`.

use std::process::ExitCode;

use pgsim_recorder::{routing, scenario, survey, toolkit};

const USAGE: &str = "usage: pgsim-recorder SUITE [CASE]  (SUITE: demo, toolkit, survey, routing or all; CASE: a toolkit case)";

/// What to record.
enum Suite {
    Demo,
    Toolkit(Option<String>),
    Survey,
    Routing,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Vec<Suite>, String> {
    let suite = args.next().ok_or_else(|| USAGE.to_owned())?;
    let case = args.next();
    if let Some(extra) = args.next() {
        return Err(format!("unexpected argument {extra:?}\n{USAGE}"));
    }
    let no_case = |suite: Suite, name: &str| match &case {
        Some(c) => Err(format!(
            "suite {name} has no cases (asked for {c:?}); only toolkit has: {}",
            case_names()
        )),
        None => Ok(vec![suite]),
    };
    match suite.as_str() {
        "demo" => no_case(Suite::Demo, "demo"),
        "survey" => no_case(Suite::Survey, "survey"),
        "routing" => no_case(Suite::Routing, "routing"),
        "toolkit" => {
            if let Some(c) = &case {
                toolkit::case(c)?;
            }
            Ok(vec![Suite::Toolkit(case)])
        }
        "all" => no_case(Suite::Demo, "all").map(|_| {
            vec![
                Suite::Demo,
                Suite::Toolkit(None),
                Suite::Survey,
                Suite::Routing,
            ]
        }),
        other => Err(format!("unknown suite {other:?}\n{USAGE}")),
    }
}

fn case_names() -> String {
    toolkit::cases()
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn record(url: &str, suite: Suite) -> Result<(), String> {
    let fixtures = scenario::repo_root().join("fixtures");
    match suite {
        Suite::Demo => {
            let live = scenario::Target::from_url(url)?;
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
        Suite::Toolkit(None) => {
            let out = fixtures.join("toolkit");
            let cases = toolkit::record_all(url, &out).await?;
            println!("recorded {cases} toolkit cases into {}", out.display());
        }
        Suite::Toolkit(Some(name)) => {
            let out = fixtures.join("toolkit");
            let dir = toolkit::record_case(url, &out, &name).await?;
            println!("recorded the toolkit case {name} into {}", dir.display());
        }
        Suite::Survey => {
            let out = fixtures.join("survey");
            let s = survey::record(url, &out).await?;
            println!(
                "recorded the survey scenario into {} ({} databases collected, {} failed)",
                out.display(),
                s.summary.collected,
                s.summary.failed
            );
        }
        Suite::Routing => {
            let replica = match std::env::var("PGSIM_REPLICA_URL") {
                Ok(url) => url,
                Err(_) => routing::start_replica()?,
            };
            let out = fixtures.join("routing");
            let lines = routing::record(url, &replica, &out).await?;
            println!(
                "recorded the routing scenario into {} ({} observations)",
                out.display(),
                lines.len()
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let suites = match parse(std::env::args().skip(1)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pgsim-recorder: {e}");
            return ExitCode::from(2);
        }
    };
    let Ok(url) = std::env::var("PGSIM_LIVE_URL") else {
        eprintln!("pgsim-recorder: set PGSIM_LIVE_URL to a real PostgreSQL (e.g. postgres://postgres:postgres@127.0.0.1:5432/postgres)");
        return ExitCode::FAILURE;
    };
    for suite in suites {
        if let Err(e) = record(&url, suite).await {
            eprintln!("pgsim-recorder: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Vec<Suite>, String> {
        parse(a.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn a_case_is_a_toolkit_case_and_only_toolkit_has_cases() {
        assert!(matches!(
            args(&["toolkit", "pool_lifecycle"]).as_deref(),
            Ok([Suite::Toolkit(Some(c))]) if c == "pool_lifecycle"
        ));
        assert!(matches!(
            args(&["toolkit"]).as_deref(),
            Ok([Suite::Toolkit(None)])
        ));
        let e = args(&["toolkit", "nope"]).err().unwrap_or_default();
        assert!(
            e.contains("no toolkit case \"nope\"") && e.contains("pool_lifecycle"),
            "{e}"
        );
        let e = args(&["demo", "queries"]).err().unwrap_or_default();
        assert!(e.contains("suite demo has no cases"), "{e}");
        assert!(args(&["all", "queries"]).is_err());
        assert_eq!(args(&["all"]).map(|s| s.len()), Ok(4));
        assert!(args(&[]).is_err_and(|e| e.starts_with("usage:")));
        assert!(args(&["tookit"]).is_err_and(|e| e.contains("unknown suite")));
        assert!(args(&["toolkit", "queries", "extra"]).is_err());
    }
}
