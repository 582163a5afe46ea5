//! `pgsim diff`: what changed between two fixture sets.

use std::path::Path;
use std::process::ExitCode;

use pgsim::diff::{compare_sets, Side};
use pgsim::fixture::FixtureSet;

/// Exit status when the two sets answer differently.
const DIFFERENT: u8 = 1;
/// Exit status when the comparison could not run.
const CANNOT_RUN: u8 = 2;

pub(crate) fn run(recorded: &Path, now: &Path) -> ExitCode {
    match show(recorded, now, "pgsim diff") {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(DIFFERENT),
        Err(()) => ExitCode::from(CANNOT_RUN),
    }
}

/// Prints what `now` changed relative to `recorded` (`who` heads the
/// output): `Ok(true)` when they differ, `Err` when a side does not load
/// (said on stderr; nothing was compared).
pub(crate) fn show(recorded: &Path, now: &Path, who: &str) -> Result<bool, ()> {
    let (a, b) = match (load(recorded), load(now)) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            for e in [a.err(), b.err()].into_iter().flatten() {
                eprintln!("{who}: {e}");
            }
            eprintln!("{who}: cannot compare (nothing was compared)");
            return Err(());
        }
    };
    out!(
        "{who}: {} (recorded) -> {} (now)",
        recorded.display(),
        now.display()
    );
    let diff = compare_sets(
        Side {
            dir: recorded,
            set: &a,
        },
        Side { dir: now, set: &b },
    );
    out!("{}", diff.to_string().trim_end());
    Ok(!diff.is_empty())
}

/// The set of `dir`, refused whole when any file of it does not load: a
/// comparison that skipped a file would report its exchanges as removed.
fn load(dir: &Path) -> Result<FixtureSet, String> {
    if !dir.is_dir() {
        return Err(format!("{}: not a fixture directory", dir.display()));
    }
    let set = pgsim::fixture::load_dir(dir).map_err(|e| e.to_string())?;
    for w in &set.warnings {
        eprintln!("warning: {w}");
    }
    if !set.rejected.is_empty() {
        let files: Vec<String> = set.rejected.iter().map(|r| r.error.clone()).collect();
        return Err(format!(
            "{}: {} fixture file(s) do not load:\n  {}",
            dir.display(),
            files.len(),
            files.join("\n  ")
        ));
    }
    if set.sessions.is_empty() {
        eprintln!("warning: {} holds no fixture files", dir.display());
    }
    Ok(set)
}
