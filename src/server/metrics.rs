//! What `pgsim serve --metrics-listen` shows (docs/LIMITS.md, "Metrics").
//!
//! Sessions, queries, misses and faults are read at scrape time from the
//! counters the report and the fault stats already keep; only answers by
//! source and the latency histogram are counted for the metrics, each an
//! atomic add on counters resolved once per session (no map lookup, no
//! lock per query).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::DescriptorEncoder;

use super::Shared;
use crate::metrics::{self, Histogram, Kind};

/// Where an answer to a query came from. The label values are fixed, so
/// the series stay bounded: one per database and source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A recorded answer of the fixture set.
    Recording,
    /// No recorded answer: the miss error (`PGS01`).
    Miss,
    /// An injected fault's error or dropped connection.
    Fault,
}

impl Source {
    const ALL: [Source; 3] = [Source::Recording, Source::Miss, Source::Fault];

    fn label(self) -> &'static str {
        match self {
            Source::Recording => "recording",
            Source::Miss => "miss",
            Source::Fault => "fault",
        }
    }

    fn index(self) -> usize {
        match self {
            Source::Recording => 0,
            Source::Miss => 1,
            Source::Fault => 2,
        }
    }
}

/// One database's answer counters, by [`Source`].
#[derive(Debug, Default)]
pub(crate) struct PerDatabase {
    answers: [AtomicU64; Source::ALL.len()],
}

impl PerDatabase {
    pub(crate) fn count(&self, source: Source) {
        self.answers[source.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, source: Source) -> u64 {
        self.answers[source.index()].load(Ordering::Relaxed)
    }
}

/// The counters only the metrics keep, in the server's shared state.
#[derive(Debug, Default)]
pub(crate) struct Served {
    /// One entry per database of the fixture set (the only ones a session
    /// can be in), fixed at start: sessions borrow theirs.
    databases: BTreeMap<String, PerDatabase>,
    /// From a Query or Execute message received to its answer written.
    pub(crate) latency: Histogram,
    /// Recorded answers loaded (fixed at start).
    recorded: u64,
}

impl Served {
    pub(crate) fn new(replay: &crate::replay::Replay) -> Self {
        Served {
            databases: replay
                .database_names()
                .map(|name| (name.to_owned(), PerDatabase::default()))
                .collect(),
            latency: Histogram::default(),
            recorded: replay.answer_count() as u64,
        }
    }

    /// The counters of database `name`.
    pub(crate) fn database(&self, name: &str) -> Option<&PerDatabase> {
        self.databases.get(name)
    }
}

/// Reads a server's state at scrape time.
#[derive(Debug)]
pub(super) struct Collector {
    pub(super) shared: Arc<Shared>,
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let shared = &self.shared;
        let served = &shared.served;
        let e = &mut encoder;
        let (sessions, queries, missed) = shared.replay.served_counts();
        metrics::counter(
            e,
            "sessions_started",
            "Client sessions started (authenticated, answered from a fixture set).",
            sessions,
        )?;
        let open = shared.sessions.open_now();
        metrics::family(
            e,
            "sessions_active",
            "Client sessions open now, per database.",
            Kind::Gauge,
            served.databases.keys().map(|db| {
                let n = open.get(db).copied().unwrap_or(0) as u64;
                ([("database", db.as_str())], n)
            }),
        )?;
        metrics::gauge(
            e,
            "sessions_peak",
            "The most client sessions open at once.",
            shared.sessions.peak() as u64,
        )?;
        metrics::counter(
            e,
            "queries",
            "Queries answered or missed (simple queries and Executes).",
            queries,
        )?;
        metrics::counter(
            e,
            "misses",
            "Queries with no recorded answer (SQLSTATE PGS01).",
            missed,
        )?;
        metrics::family(
            e,
            "answers",
            "Answers per database and source: recording (the fixture set), miss, fault (injected).",
            Kind::Counter,
            served.databases.iter().flat_map(|(db, counts)| {
                Source::ALL.into_iter().map(move |s| {
                    (
                        [("database", db.as_str()), ("source", s.label())],
                        counts.get(s),
                    )
                })
            }),
        )?;
        let faults = shared.faults.stats();
        let numbered = |i: usize, n: u64| ([("fault", (i + 1).to_string())], n);
        metrics::family(
            e,
            "faults_matched",
            "Events each fault matched (queries its regex matched; new connections for refuse), by its 1-based position as given.",
            Kind::Counter,
            faults.iter().enumerate().map(|(i, f)| numbered(i, f.matched)),
        )?;
        metrics::family(
            e,
            "faults_fired",
            "Times each fault fired, by its 1-based position as given.",
            Kind::Counter,
            faults.iter().enumerate().map(|(i, f)| numbered(i, f.fired)),
        )?;
        served.latency.encode(
            e,
            "query_duration_seconds",
            "Server-side time from a Query or Execute message received to its answer written, injected latency included.",
        )?;
        metrics::gauge(
            e,
            "recorded_answers",
            "Recorded answers the fixture set holds.",
            served.recorded,
        )?;
        metrics::gauge(
            e,
            "fixture_files_rejected",
            "Fixture files refused at load (their queries miss).",
            shared.replay.rejected().len() as u64,
        )?;
        Ok(())
    }
}
