//! Record modes, as VCR users know them: what a run does with a fixture
//! directory. One definition for `pgsim serve --record-mode`,
//! `PGSIM_RECORD_MODE`, the builders and [`Mode`](crate::Mode).

use std::path::Path;

use crate::Error;

/// What a run does with its fixture directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecordMode {
    /// Replay only; a query nothing answers is an error. The default.
    #[default]
    None,
    /// Record when the directory holds no fixtures, else replay. Under
    /// `CI=true` an empty directory is an error instead: CI records only
    /// when told to (`all` or `new`).
    Once,
    /// Every session goes to the upstream and is recorded; at the end the
    /// sessions the directory already answered identically are dropped and
    /// the others are added. Re-records what is missing, nothing twice.
    New,
    /// Re-record everything: the new set replaces the old one when the run
    /// ends, all at once (see [`crate::fixture::replace_set`]); a run that
    /// lost an exchange keeps the old set.
    All,
}

/// What a record mode means for one directory right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Serve the fixtures.
    Replay,
    /// Proxy to the upstream and record, in this mode (`New` or `All`).
    Record(RecordMode),
}

impl RecordMode {
    /// The environment's choice (`PGSIM_RECORD_MODE`), if any.
    pub fn from_env() -> Result<Option<RecordMode>, Error> {
        match std::env::var("PGSIM_RECORD_MODE") {
            Ok(v) if !v.trim().is_empty() => v.parse().map(Some),
            _ => Ok(None),
        }
    }

    /// Whether this mode writes fixtures in any case.
    pub fn writes(self) -> bool {
        matches!(self, RecordMode::New | RecordMode::All)
    }

    /// What this mode does with `dir` now (`ci`: running under `CI=true`).
    pub fn plan(self, dir: &Path, ci: bool) -> Result<Plan, Error> {
        match self {
            RecordMode::None => Ok(Plan::Replay),
            RecordMode::New | RecordMode::All => Ok(Plan::Record(self)),
            RecordMode::Once => {
                let empty = !dir.exists() || crate::fixture::fixture_files(dir)?.is_empty();
                match (empty, ci) {
                    (false, _) => Ok(Plan::Replay),
                    (true, false) => Ok(Plan::Record(RecordMode::All)),
                    (true, true) => Err(Error::Config(format!(
                        "record mode once: {} holds no fixtures, and under CI=true pgsim does not record unless told to: commit the fixtures, or pass --record-mode all (PGSIM_RECORD_MODE=all)",
                        dir.display()
                    ))),
                }
            }
        }
    }
}

impl std::str::FromStr for RecordMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(RecordMode::None),
            "once" => Ok(RecordMode::Once),
            "new" | "new_episodes" => Ok(RecordMode::New),
            "all" => Ok(RecordMode::All),
            other => Err(Error::Config(format!(
                "unknown record mode {other:?}: expected none, once, new or all"
            ))),
        }
    }
}

impl std::fmt::Display for RecordMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordMode::None => "none",
            RecordMode::Once => "once",
            RecordMode::New => "new",
            RecordMode::All => "all",
        })
    }
}

/// Whether a query's recordings in `existing` already hold this answer:
/// the same key, in the same scope, answered the same way.
pub(crate) struct Known {
    answers:
        std::collections::HashMap<(String, Option<String>), Vec<Vec<crate::fixture::QueryResult>>>,
    databases: std::collections::HashSet<String>,
}

impl Known {
    pub(crate) fn new(set: &crate::fixture::FixtureSet) -> Self {
        let mut answers: std::collections::HashMap<_, Vec<_>> = std::collections::HashMap::new();
        let mut databases = std::collections::HashSet::new();
        for s in &set.sessions {
            databases.insert(s.session.database.clone());
            for ex in &s.session.exchanges {
                answers
                    .entry((ex.key.clone(), ex.scope.clone()))
                    .or_default()
                    .push(ex.results.clone());
            }
        }
        Known { answers, databases }
    }

    /// Whether every exchange of `session` is already recorded, answered
    /// the same (by [`crate::diff::compare_results`]).
    pub(crate) fn holds(&self, session: &crate::fixture::Session) -> bool {
        if !self.databases.contains(&session.database) {
            return false;
        }
        session.exchanges.iter().all(|ex| {
            self.answers
                .get(&(ex.key.clone(), ex.scope.clone()))
                .is_some_and(|recorded| {
                    recorded
                        .iter()
                        .any(|r| crate::diff::compare_results(r, &ex.results).is_empty())
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        for m in [
            RecordMode::None,
            RecordMode::Once,
            RecordMode::New,
            RecordMode::All,
        ] {
            assert_eq!(m.to_string().parse::<RecordMode>().unwrap(), m);
        }
        let err = "sometimes".parse::<RecordMode>().unwrap_err().to_string();
        assert!(err.contains("none, once, new or all"), "{err}");
    }

    #[test]
    fn once_records_an_empty_directory_except_under_ci() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            RecordMode::Once.plan(dir.path(), false).unwrap(),
            Plan::Record(RecordMode::All)
        );
        let err = RecordMode::Once
            .plan(dir.path(), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("CI=true"), "{err}");
        std::fs::write(dir.path().join("session-0001.json"), "{}").unwrap();
        assert_eq!(
            RecordMode::Once.plan(dir.path(), true).unwrap(),
            Plan::Replay
        );
        assert_eq!(
            RecordMode::None.plan(dir.path(), false).unwrap(),
            Plan::Replay
        );
        assert_eq!(
            RecordMode::New.plan(dir.path(), true).unwrap(),
            Plan::Record(RecordMode::New)
        );
    }
}
