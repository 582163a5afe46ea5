//! `pgsim verify` and `pgsim accept`: a drift check against a live server,
//! and putting its re-run answers in place.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use pgsim::verify::{pending_dir, Verify};

/// Exit status when the server answers differently than recorded.
const DRIFT: u8 = 1;
/// Exit status when the check could not run.
const CANNOT_RUN: u8 = 2;

pub(crate) async fn verify(
    fixtures: &Path,
    upstream: Option<String>,
    accept: bool,
    timeout: Duration,
) -> ExitCode {
    let Some(upstream) = upstream.or_else(|| std::env::var("DATABASE_URL").ok()) else {
        eprintln!("pgsim verify: pass --upstream, or set PGSIM_UPSTREAM or DATABASE_URL");
        return ExitCode::from(CANNOT_RUN);
    };
    let run = Verify::new(fixtures, upstream)
        .accept(accept)
        .timeout(timeout)
        .run()
        .await;
    match run {
        Ok(v) => {
            out!(
                "pgsim verify: {} against {}",
                v.fixtures.display(),
                v.upstream
            );
            out!("{}", v.to_string().trim_end());
            if v.drifted() {
                ExitCode::from(DRIFT)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("pgsim verify: {e}");
            eprintln!("pgsim verify: could not run; nothing is reported as verified");
            ExitCode::from(CANNOT_RUN)
        }
    }
}

pub(crate) fn accept(fixtures: &Path) -> ExitCode {
    let pending = pending_dir(fixtures);
    if !pending.is_dir() {
        eprintln!(
            "pgsim accept: {} holds no pending set: run pgsim verify --accept first",
            fixtures.display()
        );
        return ExitCode::from(CANNOT_RUN);
    }
    // What a crashed replacement left is finished before anything is read.
    match pgsim::fixture::finish_replacement(fixtures) {
        Ok(pgsim::fixture::Leftover::None) => {}
        Ok(other) => eprintln!(
            "pgsim accept: an interrupted replacement of {} was finished first ({other:?})",
            fixtures.display()
        ),
        Err(e) => {
            eprintln!("pgsim accept: {e}");
            return ExitCode::from(CANNOT_RUN);
        }
    }
    if crate::diff_cmd::show(fixtures, &pending, "pgsim accept").is_err() {
        return ExitCode::from(CANNOT_RUN);
    }
    match pgsim::fixture::replace_set(fixtures, &pending) {
        Ok(()) => {
            out!(
                "pgsim accept: the pending set replaced the fixtures of {}",
                fixtures.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pgsim accept: {e}");
            eprintln!(
                "pgsim accept: the fixtures of {} were not replaced",
                fixtures.display()
            );
            ExitCode::from(CANNOT_RUN)
        }
    }
}
