//! Pairing each re-run exchange with the recorded exchange it re-sent,
//! and comparing them.
//!
//! Not by query key, as `pgsim diff` pairs two recordings: the key of a
//! re-run can differ from the recorded one exactly when the answer
//! changed (a statement that now fails at Parse is recorded without the
//! parameters its client bound). Instead each recorded session is paired
//! with the re-recorded session of its connection (the recorder numbers
//! sessions in the order they connected, and verify connects one at a
//! time), and within a session each sent exchange with the next
//! re-recorded exchange of the same SQL (verify sends the SQL exactly as
//! recorded; whatever else the re-recording holds is left over and
//! listed apart: it is no recorded answer).

use std::path::{Path, PathBuf};

use std::collections::BTreeSet;

use super::session::{Rerun, State, ROLLBACK};
use super::{Extra, VerifyError};
use crate::diff::{compare_exchanges, query_line, Entry, EntryKind, Located, SetDiff};
use crate::fixture::{
    fixture_files, load_file, Exchange, FixtureError, FixtureSet, LoadedSession, Phase, Session,
};

/// What the comparison found so far.
#[derive(Default)]
pub(super) struct Comparison {
    /// Changed and unanswered exchanges, with the recorded seq they sort by.
    entries: Vec<(u64, Entry)>,
    /// Pairs answered the same.
    same: usize,
    /// Re-recorded exchanges that pair with no recorded one.
    extra: Vec<Extra>,
    /// Recorded descriptions that paired with a re-recorded one without
    /// being sent (see [`compare_session`]).
    described: usize,
}

impl Comparison {
    /// The differences, by recording, database and recorded order; the
    /// extra exchanges; how many descriptions were verified unsent.
    pub(super) fn finish(mut self) -> (SetDiff, Vec<Extra>, usize) {
        self.entries
            .sort_by(|(a, x), (b, y)| (&x.dir, &x.database, a).cmp(&(&y.dir, &y.database, b)));
        let diff = SetDiff {
            entries: self.entries.into_iter().map(|(_, e)| e).collect(),
            same: self.same,
        };
        (diff, self.extra, self.described)
    }
}

/// Adds to `found` what differs between the sessions of one recording
/// (`subdir` of the set) and their re-recording, loaded from under `root`.
pub(super) fn compare_recording(
    subdir: &Path,
    reruns: &[Rerun<'_>],
    rerun: &FixtureSet,
    root: &Path,
    state: &mut State,
    found: &mut Comparison,
) -> Result<(), VerifyError> {
    let mut recorded: Vec<&Rerun<'_>> = reruns.iter().filter(|r| r.opened.is_some()).collect();
    recorded.sort_by_key(|r| r.opened);
    let mut now: Vec<&LoadedSession> = rerun
        .sessions
        .iter()
        .filter(|s| subdir_of(root, &s.path) == subdir)
        .collect();
    now.sort_by(|a, b| a.path.cmp(&b.path));
    if recorded.len() != now.len() {
        return Err(VerifyError::Recording {
            problems: vec![format!(
                "{} connections were made for {}, the re-recording holds {} sessions",
                recorded.len(),
                if subdir.as_os_str().is_empty() {
                    "the set".to_owned()
                } else {
                    subdir.display().to_string()
                },
                now.len()
            )],
        });
    }
    for (r, n) in recorded.into_iter().zip(now) {
        if r.session.database != n.session.database {
            return Err(VerifyError::Recording {
                problems: vec![format!(
                    "{} (database {:?}) was re-recorded as {} of database {:?}",
                    r.file.display(),
                    r.session.database,
                    relative(root, &n.path).display(),
                    n.session.database
                )],
            });
        }
        compare_session(subdir, r, n, root, state, found);
    }
    Ok(())
}

/// Pairs and compares one session. Each sent exchange pairs with the next
/// re-recorded exchange of the same SQL. Then a re-recorded description
/// left over pairs with a recorded one of the same SQL: descriptions are
/// not sent, but sending a statement re-records the description it made
/// as it made it when recorded (a statement prepared, then refused at
/// Bind, leaves one), and that pair is compared too.
fn compare_session(
    subdir: &Path,
    r: &Rerun<'_>,
    n: &LoadedSession,
    root: &Path,
    state: &mut State,
    found: &mut Comparison,
) {
    let now_file = relative(root, &n.path).to_owned();
    let rules = state.rules.clone();
    let mut paired = vec![false; n.session.exchanges.len()];
    let compare = |ex: &Exchange,
                   k: usize,
                   paired: &mut [bool],
                   found: &mut Comparison,
                   notes: &mut BTreeSet<String>| {
        paired[k] = true;
        let now = &n.session.exchanges[k];
        if now.scope != ex.scope {
            notes.insert(format!(
                "{} seq {} was re-run in scope {:?}, recorded in scope {:?}",
                r.file.display(),
                ex.seq,
                now.scope,
                ex.scope
            ));
        }
        let mut differences = compare_exchanges(ex, now);
        let normalized = crate::key::normalize(&ex.sql);
        differences.retain(|d| match &d.change {
            crate::diff::Change::Value { column, .. } => {
                let name = column.split(" #").next().unwrap_or(column);
                match rules.ignored_column(&normalized, name) {
                    Some(rule) => {
                        notes.insert(format!(
                            "rule {rule:?} ignored column {name:?} of {} seq {}",
                            r.file.display(),
                            ex.seq
                        ));
                        false
                    }
                    None => true,
                }
            }
            _ => true,
        });
        if differences.is_empty() {
            found.same += 1;
        } else {
            found.entries.push((
                ex.seq,
                entry(
                    subdir,
                    r,
                    EntryKind::Changed {
                        recorded: located(&r.file, ex),
                        now: located(&now_file, now),
                        differences,
                    },
                ),
            ));
        }
    };
    let mut next = 0;
    let mut unsent = Vec::new();
    for ex in &r.session.exchanges {
        if state.not_sent.contains(&(r.path.clone(), ex.seq)) {
            unsent.push(ex);
            continue;
        }
        let found_at = n.session.exchanges[next..]
            .iter()
            .position(|now| now.sql == ex.sql)
            .map(|k| next + k);
        match found_at {
            Some(k) => {
                next = k + 1;
                compare(ex, k, &mut paired, found, &mut state.notes);
            }
            None => found.entries.push((
                ex.seq,
                entry(
                    subdir,
                    r,
                    EntryKind::Removed {
                        recorded: located(&r.file, ex),
                    },
                ),
            )),
        }
    }
    for ex in unsent.into_iter().filter(|ex| ex.phase == Phase::Describe) {
        let left =
            n.session.exchanges.iter().enumerate().position(|(k, now)| {
                !paired[k] && now.phase == Phase::Describe && now.sql == ex.sql
            });
        if let Some(k) = left {
            compare(ex, k, &mut paired, found, &mut state.notes);
            state.sent_after_all(r, ex.seq);
            found.described += 1;
        }
    }
    for (k, now) in n.session.exchanges.iter().enumerate() {
        if !paired[k] {
            found.extra.push(Extra {
                database: n.session.database.clone(),
                file: now_file.clone(),
                sql: query_line(now),
            });
        }
    }
}

fn entry(subdir: &Path, r: &Rerun<'_>, kind: EntryKind) -> Entry {
    Entry {
        database: r.session.database.clone(),
        dir: subdir.to_owned(),
        kind,
    }
}

fn located(file: &Path, ex: &Exchange) -> Located {
    Located {
        file: file.to_owned(),
        exchange: Box::new(ex.clone()),
    }
}

fn relative<'p>(root: &Path, path: &'p Path) -> &'p Path {
    path.strip_prefix(root).unwrap_or(path)
}

/// Removes the [`ROLLBACK`] verify added from the re-recorded files.
pub(super) fn strip_rollbacks(dir: &Path) -> Result<(), FixtureError> {
    for path in fixture_files(dir)? {
        let (mut session, _) = load_file(&path)?;
        let before = session.exchanges.len();
        session.exchanges.retain(|e| e.sql != ROLLBACK);
        if session.exchanges.len() != before {
            write_session(&path, &session)?;
        }
    }
    Ok(())
}

/// Writes a session as the recorder does (pretty JSON, through a
/// temporary file and a rename).
fn write_session(path: &Path, session: &Session) -> Result<(), FixtureError> {
    let mut text = serde_json::to_string_pretty(session).map_err(|e| FixtureError::Invalid {
        path: path.to_owned(),
        at: "session".into(),
        message: format!("cannot serialize: {e}"),
    })?;
    text.push('\n');
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(|e| FixtureError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| FixtureError::io(path, e))
}

/// The subdirectory of a set's file (its recording), relative to the
/// set's directory `dir`.
pub(super) fn subdir_of(dir: &Path, path: &Path) -> PathBuf {
    relative(dir, path)
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}
