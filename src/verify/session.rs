//! Re-running the recorded sessions of one recording through a recorder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::{Conn, Connected};
use super::run::Upstream;
use super::send::{classify, send, Request};
use super::{SessionChange, SkipReason, Skipped, VerifyError};
use crate::fixture::Session;
use crate::wire::TxStatus;

/// Sent at the end of a session the recording left inside a transaction;
/// removed from the re-recording, which the recorded session never sent.
pub(super) const ROLLBACK: &str =
    "ROLLBACK /* pgsim verify: the recorded session ended in a transaction */";

/// What the sessions of every recording did.
#[derive(Default)]
pub(super) struct State {
    pub(super) rerun: usize,
    pub(super) skipped: Vec<Skipped>,
    /// (file as loaded, seq) of every exchange not sent.
    pub(super) not_sent: BTreeSet<(PathBuf, u64)>,
    pub(super) sessions: Vec<SessionChange>,
    pub(super) notes: BTreeSet<String>,
    /// The set's matching rules: their column rules relax the comparison.
    pub(super) rules: crate::fixture::Rules,
}

impl State {
    /// A skipped exchange that was verified after all (a description the
    /// re-run made again, see `pair`).
    pub(super) fn sent_after_all(&mut self, r: &Rerun<'_>, seq: u64) {
        self.not_sent.remove(&(r.path.clone(), seq));
        if let Some(i) = self
            .skipped
            .iter()
            .position(|s| s.seq == seq && s.file == r.file)
        {
            self.skipped.remove(i);
        }
    }

    fn skip(&mut self, s: &Rerun<'_>, index: usize, reason: SkipReason) {
        let ex = &s.session.exchanges[index];
        self.not_sent.insert((s.path.clone(), ex.seq));
        self.skipped.push(Skipped {
            file: s.file.clone(),
            seq: ex.seq,
            sql: ex.sql.clone(),
            reason,
        });
    }
}

/// A recorded session being re-run.
pub(super) struct Rerun<'a> {
    /// Its file, as loaded.
    pub(super) path: PathBuf,
    /// Its file, relative to the set (as reports name it).
    pub(super) file: PathBuf,
    pub(super) session: &'a Session,
    /// Which connection of its recording it was (0-based): the recorder
    /// numbers its files in that order.
    pub(super) opened: Option<usize>,
    conn: Option<Conn>,
    /// Why its exchanges are no longer sent.
    stopped: Option<SkipReason>,
}

impl<'a> Rerun<'a> {
    pub(super) fn new(path: PathBuf, file: PathBuf, session: &'a Session) -> Self {
        Rerun {
            path,
            file,
            session,
            opened: None,
            conn: None,
            stopped: None,
        }
    }
}

/// Re-runs `reruns` (the sessions of one recording) through a recorder
/// writing into `into`. Sessions are connected one at a time and every
/// exchange waits for its answer, so the recorder numbers the sessions in
/// connection order and records the exchanges in the order sent.
pub(super) async fn rerun_recording(
    upstream: &Upstream,
    reruns: &mut [Rerun<'_>],
    into: &Path,
    state: &mut State,
) -> Result<(), VerifyError> {
    let recorder = crate::Recorder::builder()
        .upstream(upstream.url.clone())
        .fixtures(into)
        .record_mode(crate::RecordMode::All)
        .start()
        .await
        .map_err(|e| VerifyError::Recording {
            problems: vec![format!("the recorder does not start: {e}")],
        })?;
    let result = rerun_sessions(upstream, recorder.addr(), reruns, state).await;
    for r in reruns.iter_mut() {
        close(r, upstream.timeout).await;
    }
    let summary = recorder.shutdown().await;
    result?;
    let mut problems = summary.errors;
    problems.extend(
        summary
            .lost
            .into_iter()
            .map(|l| format!("not written: {l}")),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(VerifyError::Recording { problems })
    }
}

async fn rerun_sessions(
    upstream: &Upstream,
    via: std::net::SocketAddr,
    reruns: &mut [Rerun<'_>],
    state: &mut State,
) -> Result<(), VerifyError> {
    let mut opened = 0;
    // Sessions without exchanges only connect (a refusal is recorded
    // that way); the others interleave in recorded order.
    for r in reruns.iter_mut() {
        if r.session.exchanges.is_empty() {
            connect(upstream, via, r, &mut opened, state).await?;
            close(r, upstream.timeout).await;
        }
    }
    let mut order: Vec<(u64, usize, usize)> = Vec::new();
    for (i, r) in reruns.iter().enumerate() {
        for (j, ex) in r.session.exchanges.iter().enumerate() {
            order.push((ex.seq, i, j));
        }
    }
    order.sort_by(|a, b| (a.0, &reruns[a.1].file, a.2).cmp(&(b.0, &reruns[b.1].file, b.2)));
    for (_, i, j) in order {
        let r = &mut reruns[i];
        let session = r.session;
        let ex = &session.exchanges[j];
        match r.stopped.map_or_else(|| classify(ex), Err) {
            Err(reason) => state.skip(r, j, reason),
            Ok(request) => {
                if r.opened.is_none() {
                    connect(upstream, via, r, &mut opened, state).await?;
                }
                if let Some(reason) = r.stopped {
                    state.skip(r, j, reason);
                } else {
                    exchange(r, j, &request, upstream.timeout).await?;
                    state.rerun += 1;
                }
            }
        }
        if j + 1 == r.session.exchanges.len() {
            end_session(r, upstream.timeout).await;
        }
    }
    Ok(())
}

/// Opens the session's connection through the recorder. A refusal by the
/// server (an unknown database, no CONNECT privilege) is an answer to
/// compare with the recorded one; anything else stops the run.
async fn connect(
    upstream: &Upstream,
    via: std::net::SocketAddr,
    r: &mut Rerun<'_>,
    opened: &mut usize,
    state: &mut State,
) -> Result<(), VerifyError> {
    if let Some(user) = upstream.config.get_user().filter(|u| *u != r.session.user) {
        state.notes.insert(format!(
            "sessions recorded as role {:?} are re-run as {user:?}, the upstream URL's",
            r.session.user
        ));
    }
    let recorded = r
        .session
        .startup_error
        .as_ref()
        .map(|e| e.code().to_owned());
    let first_seq = r.session.exchanges.first().map_or(0, |e| e.seq);
    let failed = |message: String| VerifyError::Exchange {
        file: r.file.clone(),
        seq: first_seq,
        message: format!("connecting to database {:?}: {message}", r.session.database),
    };
    let settings = upstream.session(r.session);
    let now = match tokio::time::timeout(upstream.timeout, Conn::connect(via, &settings)).await {
        Err(_) => return Err(failed(format!("no answer within {:?}", upstream.timeout))),
        Ok(Err(e)) => return Err(failed(e.to_string())),
        Ok(Ok(Connected::Ready(conn))) => {
            r.conn = Some(conn);
            None
        }
        Ok(Ok(Connected::Refused(error))) => {
            let code = error.code().to_owned();
            // Authentication is not part of a recording, and a connection
            // failure is not an answer: the run cannot go on.
            if code.starts_with("28") || code.starts_with("08") {
                return Err(failed(format!(
                    "{}: {} (SQLSTATE {code})",
                    error.get("severity").unwrap_or("FATAL"),
                    error.message()
                )));
            }
            Some(code)
        }
    };
    r.opened = Some(*opened);
    *opened += 1;
    if now.is_some() {
        r.stopped = Some(SkipReason::ConnectionRefused);
    }
    if now != recorded {
        state.sessions.push(SessionChange {
            file: r.file.clone(),
            database: r.session.database.clone(),
            recorded,
            now,
        });
    }
    Ok(())
}

/// Sends exchange `j` of `r`. The server's answer, error or not, is what
/// the recorder writes; only a broken connection or no answer in time
/// stops the run.
async fn exchange(
    r: &mut Rerun<'_>,
    j: usize,
    request: &Request<'_>,
    timeout: Duration,
) -> Result<(), VerifyError> {
    let seq = r.session.exchanges[j].seq;
    let failed = |message: String| VerifyError::Exchange {
        file: r.file.clone(),
        seq,
        message,
    };
    let Some(conn) = r.conn.as_mut() else {
        return Err(failed("no connection".into()));
    };
    match tokio::time::timeout(timeout, send(conn, request)).await {
        Err(_) => Err(failed(format!(
            "no answer within {timeout:?} (waiting for a lock another session holds?)"
        ))),
        Ok(Ok(_)) => {
            if conn.closed {
                r.stopped = Some(SkipReason::ConnectionClosed);
            }
            Ok(())
        }
        Ok(Err(e)) => Err(failed(e.to_string())),
    }
}

/// After a session's last exchange: a transaction it left open is rolled
/// back (so it holds no lock a later session waits for), and it closes.
async fn end_session(r: &mut Rerun<'_>, timeout: Duration) {
    if let Some(conn) = r.conn.as_mut() {
        if conn.status != TxStatus::Idle && !conn.closed {
            let _ = tokio::time::timeout(timeout, conn.simple(ROLLBACK, None)).await;
        }
    }
    close(r, timeout).await;
}

async fn close(r: &mut Rerun<'_>, timeout: Duration) {
    if let Some(conn) = r.conn.take() {
        let _ = tokio::time::timeout(timeout, conn.terminate()).await;
    }
}
