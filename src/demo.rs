//! `pgsim demo`: the whole loop on the bundled fixtures, no PostgreSQL
//! anywhere, ending in one verdict.
//!
//! 1. The recorded survey: `pgsim survey`'s own code surveys the mock
//!    server replaying `fixtures/survey`, and its JSON must be byte for
//!    byte the one the real server gave.
//! 2. Every recorded session of `fixtures/demo` is sent again to a mock
//!    server replaying it, message for message as its client sent it
//!    (simple queries, bound parameters with the Describe its client
//!    sent, COPY with its data, statements inside failed transactions),
//!    through an in-process recorder: that is [`pgsim::verify`] with the
//!    mock server as its upstream. The re-recording must equal the
//!    recording, every recorded answer must have been served, none missed,
//!    and every stored key must be the key of its SQL and values (a file
//!    edited by hand is named).
//!
//! The verdict is one line; `--list` adds one line per exchange.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pgsim::fixture::{FixtureSet, LoadedSession};
use pgsim::verify::{Describe, Verification, Verify};

use crate::survey_cmd::SurveyCheck;

/// What `pgsim demo` was asked.
pub(crate) struct Options {
    pub(crate) fixtures: PathBuf,
    pub(crate) survey_fixtures: PathBuf,
    pub(crate) list: bool,
}

/// Runs the demo: exit 0 when everything replayed identically, 1 when
/// something differed (named), `Err` when it could not run.
pub(crate) async fn run(opts: &Options) -> Result<ExitCode, String> {
    println!(
        "pgsim demo: no PostgreSQL runs here; pgsim's mock server answers from fixtures a real PostgreSQL recorded.\n"
    );
    let survey = crate::survey_cmd::demo(&opts.survey_fixtures).await?;
    let set = pgsim::fixture::load_dir(&opts.fixtures).map_err(|e| e.to_string())?;
    let replay = replay(&opts.fixtures, set).await?;

    let (total, collected, failed) = survey.databases;
    println!(
        "  survey  {}: `pgsim survey` of {total} databases ({collected} collected, {failed} refused as recorded), {} queries: JSON {} {}",
        opts.survey_fixtures.display(),
        survey.queries,
        if survey.identical { "identical to" } else { "DIFFERS from" },
        survey.expected.display()
    );
    if opts.list {
        for line in survey.summary.lines() {
            println!("          {line}");
        }
    }
    let p = &replay.protocols;
    let ways: Vec<String> = [
        (p.simple, "simple queries"),
        (
            p.portal,
            "bound with the portal described (libpq's way: pgbench, psql's \\bind)",
        ),
        (
            p.statement,
            "bound with the statement described (tokio-postgres's way)",
        ),
        (p.nothing, "bound with nothing described"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    println!(
        "  replay  {}: {} sessions, {} exchanges sent again message for message, through the mock server and a recorder:\n          {}\n          in {:.2} s ({:.0} exchanges/s)",
        opts.fixtures.display(),
        replay.sessions,
        replay.total,
        ways.join(", "),
        replay.took.as_secs_f64(),
        replay.total as f64 / replay.took.as_secs_f64().max(1e-9),
    );
    if opts.list {
        list(&replay);
    }
    let problems = problems(&survey, &replay);
    println!();
    if problems.is_empty() {
        println!(
            "PASS: {total_ex} of {total_ex} recorded answers replayed identically, 0 unused, 0 missed; the survey is the recorded one byte for byte",
            total_ex = replay.total
        );
        println!(
            "next: cargo run -- serve --fixtures {}   then: psql \"host=127.0.0.1 port=6543 user=postgres dbname=pgsim_demo sslmode=disable\"",
            opts.fixtures.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", replay.verification);
    for p in &problems {
        println!("{p}");
    }
    let same = replay.verification.diff.same;
    println!(
        "FAIL: {same} of {} recorded answers replayed identically; {} problem(s) above",
        replay.total,
        problems.len()
    );
    Ok(ExitCode::FAILURE)
}

/// How the recorded exchanges were sent, by protocol.
#[derive(Default)]
struct Protocols {
    simple: usize,
    portal: usize,
    statement: usize,
    nothing: usize,
}

struct Replayed {
    sessions: usize,
    total: usize,
    protocols: Protocols,
    verification: Verification,
    report: pgsim::Report,
    rejected: Vec<String>,
    /// Exchanges whose stored key is not the key of their SQL and values.
    edited: Vec<String>,
    /// (file, seq) of every recorded exchange, in file order.
    exchanges: Vec<(PathBuf, u64, String)>,
    took: Duration,
}

async fn replay(dir: &Path, set: FixtureSet) -> Result<Replayed, String> {
    let mut protocols = Protocols::default();
    let mut edited = Vec::new();
    let mut exchanges = Vec::new();
    for LoadedSession { path, session } in &set.sessions {
        let file = path.strip_prefix(dir).unwrap_or(path).to_owned();
        for ex in &session.exchanges {
            match pgsim::verify::describe_of(ex) {
                None => protocols.simple += 1,
                Some(Describe::Statement) => protocols.statement += 1,
                Some(Describe::Nothing) => protocols.nothing += 1,
                Some(Describe::Portal) => protocols.portal += 1,
            }
            let key = pgsim::replay::exchange_key(ex, &set.rules).to_string();
            if key != ex.key {
                edited.push(format!(
                    "{} seq {}: the stored key {} is not the key of its SQL and values ({key}): the file was edited after it was recorded",
                    file.display(),
                    ex.seq,
                    ex.key
                ));
            }
            exchanges.push((file.clone(), ex.seq, pgsim::diff::query_line(ex)));
        }
    }
    let rejected = set.rejected.iter().map(|r| r.error.clone()).collect();
    let sessions = set.sessions.len();
    // The upstream URL's database only has to exist: each session then
    // connects to its own.
    let database = set
        .sessions
        .iter()
        .find(|s| s.session.startup_error.is_none())
        .map(|s| s.session.database.clone())
        .ok_or_else(|| format!("{}: no session to replay", dir.display()))?;
    let server = pgsim::MockServer::builder()
        .fixture_set(set)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let verification = Verify::new(dir, server.url_for(&database))
        .timeout(Duration::from_secs(30))
        .run()
        .await
        .map_err(|e| e.to_string());
    let took = started.elapsed();
    let report = server.shutdown().await;
    Ok(Replayed {
        sessions,
        total: exchanges.len(),
        protocols,
        verification: verification?,
        report,
        rejected,
        edited,
        exchanges,
        took,
    })
}

/// Everything that keeps the verdict from PASS, one line each.
fn problems(survey: &SurveyCheck, r: &Replayed) -> Vec<String> {
    let mut out = Vec::new();
    if !survey.identical {
        out.push(format!(
            "the replayed survey differs from {}",
            survey.expected.display()
        ));
    }
    if !survey.report.misses.is_empty() || !survey.report.unused.is_empty() {
        out.push(format!(
            "the survey's replay was not exact:\n{}",
            survey.report
        ));
    }
    out.extend(r.rejected.iter().map(|e| format!("does not load: {e}")));
    out.extend(r.edited.iter().cloned());
    let v = &r.verification;
    if !v.skipped.is_empty() {
        out.push(format!(
            "{} exchange(s) could not be sent again (listed above)",
            v.skipped.len()
        ));
    }
    if !v.extra.is_empty() {
        out.push(format!(
            "{} exchange(s) answered that were never recorded (listed above)",
            v.extra.len()
        ));
    }
    if v.drifted() {
        out.push(format!(
            "{} exchange(s) and {} session(s) answered differently than recorded (listed above)",
            v.diff.entries.len(),
            v.sessions.len()
        ));
    }
    if !r.report.misses.is_empty() || !r.report.unused.is_empty() {
        out.push(format!(
            "the mock server's report:\n{}",
            r.report.to_string().trim_end()
        ));
    }
    out
}

/// `--list`: every recorded exchange and how it replayed.
fn list(r: &Replayed) {
    let v = &r.verification;
    let mut differs = BTreeSet::new();
    for e in &v.diff.entries {
        if let pgsim::diff::EntryKind::Changed { recorded, .. }
        | pgsim::diff::EntryKind::Removed { recorded } = &e.kind
        {
            differs.insert((e.dir.join(&recorded.file), recorded.exchange.seq));
        }
    }
    let skipped: BTreeSet<(PathBuf, u64)> =
        v.skipped.iter().map(|s| (s.file.clone(), s.seq)).collect();
    for (file, seq, sql) in &r.exchanges {
        let key = (file.clone(), *seq);
        let status = if differs.contains(&key) {
            "DIFFERS"
        } else if skipped.contains(&key) {
            "skipped"
        } else {
            "same"
        };
        println!(
            "          {status:<7} {} seq {seq:<4} {sql}",
            file.display()
        );
    }
}
