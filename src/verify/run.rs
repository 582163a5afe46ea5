//! Running a drift check: the recorders, the sessions, the comparison.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::NoTls;

use super::client::Settings;
use super::pair::{compare_recording, strip_rollbacks, subdir_of, Comparison};
use super::session::{rerun_recording, Rerun, State};
use super::{Verification, Verify, VerifyError, PENDING_DIR};
use crate::fixture::{load_dir, FixtureError, FixtureSet, Session, RULES_FILE};

pub(super) async fn run(v: Verify) -> Result<Verification, VerifyError> {
    let upstream = Upstream::parse(&v.upstream, v.timeout)?;
    if !v.fixtures.is_dir() {
        return Err(FixtureError::io(
            &v.fixtures,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a fixture directory"),
        )
        .into());
    }
    let mut notes = Vec::new();
    match crate::fixture::finish_replacement(&v.fixtures)? {
        crate::fixture::Leftover::None => {}
        other => notes.push(format!(
            "an interrupted replacement of the fixture set was finished first ({other:?})"
        )),
    }
    let recorded = load_dir(&v.fixtures)?;
    if !recorded.rejected.is_empty() {
        return Err(VerifyError::Refused {
            dir: v.fixtures.clone(),
            rejected: recorded.rejected,
        });
    }
    notes.extend(recorded.warnings.iter().cloned());
    upstream.check().await?;

    let scratch = Scratch::new(&v.fixtures, v.accept)?;
    let mut state = State {
        rules: recorded.rules.clone(),
        ..State::default()
    };
    let mut recordings = groups(&v.fixtures, &recorded);
    for (subdir, reruns) in recordings.iter_mut() {
        let into = scratch.path.join(subdir.as_path());
        std::fs::create_dir_all(&into).map_err(|e| FixtureError::io(&into, e))?;
        copy_rules(&v.fixtures, subdir, &into)?;
        rerun_recording(&upstream, reruns, &into, &mut state).await?;
    }
    strip_rollbacks(&scratch.path)?;
    let rerun = load_dir(&scratch.path)?;
    if !rerun.rejected.is_empty() {
        return Err(VerifyError::Recording {
            problems: rerun.rejected.iter().map(|r| r.error.clone()).collect(),
        });
    }
    let mut found = Comparison::default();
    for (subdir, reruns) in &recordings {
        compare_recording(
            subdir,
            reruns,
            &rerun,
            &scratch.path,
            &mut state,
            &mut found,
        )?;
    }
    let (diff, extra, described) = found.finish();
    notes.extend(std::mem::take(&mut state.notes));
    let pending = if v.accept {
        Some(scratch.keep_as(&super::pending_dir(&v.fixtures))?)
    } else {
        None
    };
    Ok(Verification {
        fixtures: v.fixtures,
        upstream: upstream.server,
        diff,
        rerun: state.rerun + described,
        extra,
        skipped: state.skipped,
        sessions: state.sessions,
        pending,
        notes,
    })
}

/// The upstream: its connection settings and its name for messages.
pub(super) struct Upstream {
    pub(super) url: String,
    pub(super) config: tokio_postgres::Config,
    server: String,
    pub(super) timeout: Duration,
}

impl Upstream {
    fn parse(url: &str, timeout: Duration) -> Result<Self, VerifyError> {
        let invalid = |message: String| VerifyError::Config { message };
        // Validated (one TCP host, a user...) with errors that hide the
        // password; then read for what a connection needs.
        let checked = crate::ConnectionString::parse(url).map_err(|e| invalid(e.to_string()))?;
        let config: tokio_postgres::Config = url.parse().map_err(|e| invalid(format!("{e}")))?;
        Ok(Upstream {
            url: url.to_owned(),
            config,
            server: checked.address(),
            timeout,
        })
    }

    /// Connects once directly, so that an unreachable server or refused
    /// credentials stop the run before anything is sent.
    async fn check(&self) -> Result<(), VerifyError> {
        let mut config = self.config.clone();
        config
            .connect_timeout(self.timeout)
            .ssl_mode(SslMode::Disable);
        let failed = |message: String| VerifyError::Upstream {
            server: self.server.clone(),
            message,
        };
        match tokio::time::timeout(self.timeout, config.connect(NoTls)).await {
            Ok(Ok((client, connection))) => {
                drop(client);
                let _ = connection.await;
                Ok(())
            }
            Ok(Err(e)) => Err(failed(error_text(&e))),
            Err(_) => Err(failed(format!("no answer within {:?}", self.timeout))),
        }
    }

    /// The settings of a re-run session: its database, in its startup
    /// scope, with the upstream URL's role and password.
    pub(super) fn session(&self, s: &Session) -> Settings {
        let scope = s.exchanges.first().and_then(|e| e.scope.as_deref());
        let options = [
            self.config.get_options().map(str::to_owned),
            scope.map(|s| format!("-c pgsim.scope={}", escape_option(s))),
        ];
        let options: Vec<String> = options.into_iter().flatten().collect();
        Settings {
            user: self
                .config
                .get_user()
                .map_or_else(|| s.user.clone(), str::to_owned),
            password: self.config.get_password().map(<[u8]>::to_vec),
            database: s.database.clone(),
            options: (!options.is_empty()).then(|| options.join(" ")),
        }
    }
}

/// A value in a startup `options` string: backslash before whitespace and
/// backslashes, as PostgreSQL splits it.
pub(super) fn escape_option(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_whitespace() || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A tokio-postgres error with the server's SQLSTATE when there is one.
pub(super) fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => e.to_string(),
    }
}

/// The sessions of each subdirectory (a separate recording), by
/// subdirectory relative to the set.
fn groups<'a>(dir: &Path, set: &'a FixtureSet) -> BTreeMap<PathBuf, Vec<Rerun<'a>>> {
    let mut out: BTreeMap<PathBuf, Vec<Rerun<'a>>> = BTreeMap::new();
    for s in &set.sessions {
        let file = s.path.strip_prefix(dir).unwrap_or(&s.path).to_owned();
        out.entry(subdir_of(dir, &s.path))
            .or_default()
            .push(Rerun::new(s.path.clone(), file, &s.session));
    }
    out
}

/// The matching rules the group was recorded under, so the re-recording
/// computes the same query keys: the subdirectory's own, else the set's.
fn copy_rules(dir: &Path, subdir: &Path, into: &Path) -> Result<(), FixtureError> {
    let own = dir.join(subdir).join(RULES_FILE);
    let from = if own.is_file() {
        own
    } else {
        dir.join(RULES_FILE)
    };
    if from.is_file() {
        let to = into.join(RULES_FILE);
        std::fs::copy(&from, &to).map_err(|e| FixtureError::io(&to, e))?;
    }
    Ok(())
}

/// Where the re-run is recorded: a fresh temporary directory, or for
/// `--accept` a dot directory of the fixture set (the same filesystem,
/// so it can become the pending set and later replace the set by
/// renames). Removed when dropped unless kept.
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    fn new(fixtures: &Path, accept: bool) -> Result<Self, FixtureError> {
        let path = if accept {
            let path = fixtures.join(format!("{PENDING_DIR}.partial"));
            if path.exists() {
                // An earlier run's unfinished re-recording: ours to remove.
                std::fs::remove_dir_all(&path).map_err(|e| FixtureError::io(&path, e))?;
            }
            std::fs::create_dir(&path).map_err(|e| FixtureError::io(&path, e))?;
            path
        } else {
            fresh_temp_dir()?
        };
        Ok(Scratch { path, keep: false })
    }

    /// Renames the re-recording to `to` (replacing what was there).
    fn keep_as(mut self, to: &Path) -> Result<PathBuf, FixtureError> {
        if to.exists() {
            std::fs::remove_dir_all(to).map_err(|e| FixtureError::io(to, e))?;
        }
        std::fs::rename(&self.path, to).map_err(|e| FixtureError::io(&self.path, e))?;
        self.keep = true;
        Ok(to.to_owned())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn fresh_temp_dir() -> Result<PathBuf, FixtureError> {
    let base = std::env::temp_dir();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut last = None;
    for n in 0..100 {
        let path = base.join(format!("pgsim-verify-{}-{stamp}-{n}", std::process::id()));
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(FixtureError::io(&path, e)),
        }
    }
    Err(FixtureError::io(
        &base,
        last.unwrap_or_else(|| std::io::Error::other("no fresh directory name")),
    ))
}
