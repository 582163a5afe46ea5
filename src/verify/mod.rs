//! Drift check: re-run every recorded exchange against a live server and
//! say which answers changed.
//!
//! [`Verify::run`] loads a fixture set, starts an in-process
//! [`Recorder`](crate::Recorder) in front of the upstream (one per
//! subdirectory of the set, which are separate recordings), and replays
//! each recorded session through it with its own protocol client (which
//! sends the very messages the recorded client sent), one connection per
//! recorded session (its database, the upstream URL's credentials,
//! the session's `pgsim.scope` at startup), every session's exchanges in
//! recorded order. The re-recording is then compared with the recorded set
//! by [`compare_sets`](crate::diff::compare_sets): columns (names and
//! types), rows, command tags, SQLSTATEs.
//!
//! **It executes the recorded statements on the upstream, writes
//! included**: point it at a disposable database.
//!
//! How each exchange is sent:
//! - simple protocol (`params` absent): the SQL exactly as recorded, as
//!   one simple query;
//! - extended protocol: Parse (with the parameter types the client sent)
//!   and Describe, then Bind with the recorded values (text values in text
//!   format, as they are; raw values in their recorded format) and Execute;
//!   an error recorded at Parse is re-sent as Parse and Describe (then
//!   executed if it now parses and takes no parameter);
//! - `COPY ... FROM STDIN` with its recorded data, `COPY ... TO STDOUT`;
//! - the recording's own `BEGIN`/`COMMIT`/`ROLLBACK` as recorded; a
//!   session that ended inside a transaction is rolled back at its end
//!   (that `ROLLBACK` is not part of the re-recording).
//!
//! What is not re-sent, and so not verified, is listed by [`SkipReason`].

mod client;
mod pair;

pub use client::{describe_of, Describe};
mod run;
mod send;
mod session;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diff::{query_line, EntryKind, SetDiff};
use crate::fixture::{FixtureError, Rejected};

/// Where `pgsim verify --accept` writes the re-run answers, inside the
/// fixture directory (a dot directory: the loader does not read it as part
/// of the set).
pub const PENDING_DIR: &str = ".pgsim-pending";

/// The pending set of a fixture directory (see [`PENDING_DIR`]).
pub fn pending_dir(fixtures: &Path) -> PathBuf {
    fixtures.join(PENDING_DIR)
}

/// A drift check to run.
#[derive(Debug, Clone)]
pub struct Verify {
    fixtures: PathBuf,
    upstream: String,
    accept: bool,
    timeout: Duration,
}

impl Verify {
    /// Re-runs the fixture set in `fixtures` against `upstream` (a
    /// `postgres://` URL or a `key=value` connection string; its user and
    /// password are used for every session).
    pub fn new(fixtures: impl Into<PathBuf>, upstream: impl Into<String>) -> Self {
        Verify {
            fixtures: fixtures.into(),
            upstream: upstream.into(),
            accept: false,
            timeout: Duration::from_secs(60),
        }
    }

    /// Also writes the re-run answers as a pending set in
    /// `fixtures/.pgsim-pending` (replacing an earlier pending set), for
    /// `pgsim accept` (or [`replace_set`](crate::fixture::replace_set)).
    pub fn accept(mut self, accept: bool) -> Self {
        self.accept = accept;
        self
    }

    /// How long one exchange (or a connection) may take before the run
    /// gives up (default 60 s): a statement waiting forever on a lock is a
    /// run that cannot go on.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs the check. `Err` when it could not run; differences are in the
    /// `Ok` value.
    pub async fn run(self) -> Result<Verification, VerifyError> {
        run::run(self).await
    }
}

/// What a drift check found.
#[derive(Debug, Clone)]
pub struct Verification {
    /// The fixture directory.
    pub fixtures: PathBuf,
    /// The upstream, as `host:port` (never with its password).
    pub upstream: String,
    /// The recorded exchanges that were re-run, compared with their re-run.
    pub diff: SetDiff,
    /// Exchanges re-run and compared.
    pub rerun: usize,
    /// Exchanges the re-run recorded that pair with no recorded one (the
    /// re-run sends only recorded messages, so a server that answers as
    /// recorded leaves none). Not compared, not drift.
    pub extra: Vec<Extra>,
    /// Exchanges not re-run (not verified), in recorded order.
    pub skipped: Vec<Skipped>,
    /// Sessions whose connection was answered differently than recorded.
    pub sessions: Vec<SessionChange>,
    /// The pending set written with [`Verify::accept`].
    pub pending: Option<PathBuf>,
    /// Things worth saying that change no result (a session recorded as
    /// another role, a journal's torn last line).
    pub notes: Vec<String>,
}

impl Verification {
    /// Whether the server answers anything differently than recorded.
    pub fn drifted(&self) -> bool {
        !self.diff.is_empty() || !self.sessions.is_empty()
    }

    /// How many exchanges were skipped, per reason.
    pub fn skipped_by_reason(&self) -> BTreeMap<SkipReason, usize> {
        let mut counts = BTreeMap::new();
        for s in &self.skipped {
            *counts.entry(s.reason).or_insert(0) += 1;
        }
        counts
    }
}

/// A recorded exchange that was not re-run.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// Its file, relative to the fixture directory.
    pub file: PathBuf,
    /// Its `seq`.
    pub seq: u64,
    /// Its SQL.
    pub sql: String,
    /// Why.
    pub reason: SkipReason,
}

/// An exchange only the re-run recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extra {
    /// Its database.
    pub database: String,
    /// Its file in the re-recording (the pending set, with `--accept`).
    pub file: PathBuf,
    /// Its SQL on one line, with its parameters.
    pub sql: String,
}

/// Why a recorded exchange is not re-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// The Describe or an Execute of a `DECLARE`d cursor's portal (its
    /// `sql` starts with `pgsim:`): a protocol message with no SQL of its
    /// own, which cannot be sent without the cursor's whole session state.
    CursorPortal,
    /// Prepared and described, never executed (phase `describe`).
    DescribedOnly,
    /// A row-limited portal the client stopped reading: re-running it
    /// would read every row.
    SuspendedPortal,
    /// `COPY ... FROM STDIN` that the client ended with CopyFail (its
    /// message is part of the query key; not re-sent yet).
    CopyFail,
    /// A COPY inside a simple query of several statements.
    CopyInBatch,
    /// It holds a secret the recorder redacted: sending it would send the
    /// placeholder (an `ALTER ROLE` would set that password).
    Redacted,
    /// The session's connection was refused (see
    /// [`Verification::sessions`]).
    ConnectionRefused,
    /// The server closed the session's connection earlier (a FATAL error).
    ConnectionClosed,
}

impl SkipReason {
    /// What it means, for a report.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::CursorPortal => {
                "cursor portal messages (sql pgsim:..., no SQL of their own to send)"
            }
            SkipReason::DescribedOnly => "described only, never executed (phase describe)",
            SkipReason::SuspendedPortal => {
                "row-limited portals the client stopped reading (re-running reads every row)"
            }
            SkipReason::CopyFail => {
                "COPY FROM STDIN ended by the client's CopyFail (its message is part of the key)"
            }
            SkipReason::CopyInBatch => "COPY inside a simple query of several statements",
            SkipReason::Redacted => {
                "holding a secret redacted at record time (sending the placeholder would change the server)"
            }
            SkipReason::ConnectionRefused => "in a session whose connection was refused",
            SkipReason::ConnectionClosed => "after the server closed the session's connection",
        }
    }
}

/// A session whose connection the server answered differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChange {
    /// Its file, relative to the fixture directory.
    pub file: PathBuf,
    /// Its database.
    pub database: String,
    /// The recorded refusal's SQLSTATE (`None`: it was accepted).
    pub recorded: Option<String>,
    /// The SQLSTATE now (`None`: accepted).
    pub now: Option<String>,
}

/// Why a drift check could not run (exit status 2 of `pgsim verify`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The upstream URL does not parse, or is not one TCP server.
    #[error("invalid upstream: {message}")]
    Config {
        /// What is wrong (the URL shown without its password).
        message: String,
    },
    /// The upstream cannot be reached, or refuses the credentials.
    #[error("cannot connect to the upstream {server}: {message}")]
    Upstream {
        /// `host:port`.
        server: String,
        /// What the connection said.
        message: String,
    },
    /// The fixture directory is missing or unreadable, or a file could not
    /// be written.
    #[error(transparent)]
    Fixtures(#[from] FixtureError),
    /// Fixture files that do not load (checking the others would report
    /// their exchanges as gone).
    #[error("{}: {} fixture file(s) do not load:\n  {}", dir.display(), rejected.len(), list(rejected))]
    Refused {
        /// The fixture directory.
        dir: PathBuf,
        /// The files, each with its error.
        rejected: Vec<Rejected>,
    },
    /// A session or an exchange could not be re-run: its connection
    /// failed for another reason than the server refusing the database,
    /// the connection broke, no answer came in time.
    #[error("{} seq {seq}: {message}", file.display())]
    Exchange {
        /// The recorded session's file, relative to the fixture directory.
        file: PathBuf,
        /// The exchange (for a connection that failed, its first).
        seq: u64,
        /// What happened.
        message: String,
    },
    /// The recorder in front of the upstream could not start, or did not
    /// write everything the re-run sent.
    #[error("re-recording: {}", problems.join("; "))]
    Recording {
        /// What went wrong.
        problems: Vec<String>,
    },
}

fn list(rejected: &[Rejected]) -> String {
    let all: Vec<&str> = rejected.iter().map(|r| r.error.as_str()).collect();
    all.join("\n  ")
}

impl std::fmt::Display for Verification {
    /// The notes, each session and exchange that differs (where it was
    /// recorded, its SQL on one line, each difference), what was skipped,
    /// then one summary line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for s in &self.sessions {
            let was = |c: &Option<String>| match c {
                Some(code) => format!("refused with SQLSTATE {code}"),
                None => "accepted".to_owned(),
            };
            writeln!(
                f,
                "session {} (database {:?}): connection {} (was {})",
                s.file.display(),
                s.database,
                was(&s.now),
                was(&s.recorded)
            )?;
        }
        let mut scope: Option<(&Path, &str)> = None;
        for e in &self.diff.entries {
            crate::diff::database_header(f, &mut scope, e)?;
            write_entry(f, &e.kind)?;
        }
        if !self.extra.is_empty() {
            writeln!(f, "recorded by the re-run only, not compared:")?;
            for x in &self.extra {
                writeln!(f, "  database {:?}: {}", x.database, x.sql)?;
            }
        }
        let skipped = self.skipped_by_reason();
        if !skipped.is_empty() {
            writeln!(f, "not re-run, so not verified:")?;
            for (reason, n) in &skipped {
                writeln!(f, "  {n} {}", reason.describe())?;
            }
        }
        if let Some(p) = &self.pending {
            writeln!(
                f,
                "pending set written to {}: `pgsim accept {}` shows what it changes and puts it in place",
                p.display(),
                self.fixtures.display()
            )?;
            if !self.skipped.is_empty() {
                writeln!(
                    f,
                    "  it lacks the {} exchanges not re-run: accepting it drops them",
                    self.skipped.len()
                )?;
            }
        }
        let (_, removed, changed) = self.diff.counts();
        write!(
            f,
            "verified {} exchanges: {} differ, {} the same; {} skipped (not verified)",
            self.rerun,
            changed + removed,
            self.diff.same,
            self.skipped.len()
        )?;
        if !self.sessions.is_empty() {
            write!(
                f,
                "; {} session(s) connected differently",
                self.sessions.len()
            )?;
        }
        writeln!(f)
    }
}

/// One exchange that differs, without its database header.
fn write_entry(f: &mut std::fmt::Formatter<'_>, kind: &EntryKind) -> std::fmt::Result {
    match kind {
        EntryKind::Changed {
            recorded,
            differences,
            ..
        } => {
            writeln!(f, "  changed: {}", query_line(&recorded.exchange))?;
            writeln!(
                f,
                "      at {} seq {}",
                recorded.file.display(),
                recorded.exchange.seq
            )?;
            crate::diff::write_differences(f, differences)
        }
        EntryKind::Removed { recorded } => {
            writeln!(f, "  no answer now: {}", query_line(&recorded.exchange))?;
            writeln!(
                f,
                "      at {} seq {}: re-sent, but the re-run recorded no exchange of this query",
                recorded.file.display(),
                recorded.exchange.seq
            )
        }
        // What only the re-run holds is listed apart (`Verification::extra`).
        EntryKind::Added { .. } => Ok(()),
    }
}
