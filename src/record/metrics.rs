//! What `pgsim record --metrics-listen` shows (docs/LIMITS.md, "Metrics"):
//! the recorder's summary as it grows, read at scrape time, and the
//! upstream's latency, timed in the tap the proxy already locks per frame.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::DescriptorEncoder;

use super::Shared;
use crate::metrics;

/// Requests waiting for the upstream's ReadyForQuery, at most this many
/// timed per session (a client pipelining more is answered, not timed).
const TIMED_AT_ONCE: usize = 1024;

/// The upstream round trips of one session: each Query or Sync forwarded
/// is answered by exactly one ReadyForQuery, in order.
#[derive(Debug, Default)]
pub(super) struct RoundTrips {
    asked: VecDeque<Instant>,
}

impl RoundTrips {
    /// A frame the client sent, as it is forwarded.
    pub(super) fn client_frame(&mut self, kind: u8) {
        if matches!(kind, b'Q' | b'S') && self.asked.len() < TIMED_AT_ONCE {
            self.asked.push_back(Instant::now());
        }
    }

    /// A frame the upstream sent, as it is forwarded.
    pub(super) fn server_frame(&mut self, kind: u8, shared: &Shared) {
        if kind == b'Z' {
            if let Some(asked) = self.asked.pop_front() {
                shared.upstream_latency.observe(asked.elapsed());
            }
        }
    }
}

/// Reads a recorder's state at scrape time.
pub(super) struct Collector {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").finish_non_exhaustive()
    }
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let shared = &self.shared;
        let e = &mut encoder;
        let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
        metrics::counter(
            e,
            "record_sessions_started",
            "Client sessions proxied to the upstream and recorded.",
            load(&shared.sessions),
        )?;
        metrics::gauge(
            e,
            "record_sessions_active",
            "Recorded client sessions open now.",
            load(&shared.active),
        )?;
        metrics::counter(
            e,
            "record_exchanges",
            "Exchanges recorded (sent to the fixture writer).",
            load(&shared.exchanges),
        )?;
        let lost = shared.lost.lock().map_or(0, |l| l.len()) as u64;
        metrics::counter(
            e,
            "record_exchanges_lost",
            "Requests not recorded (refused as not loadable, undecodable, or in a session that never started); the summary lists each.",
            lost,
        )?;
        metrics::counter(
            e,
            "record_write_errors",
            "Problems writing fixture files; the summary lists each.",
            shared.writer.error_count() as u64,
        )?;
        metrics::counter(
            e,
            "record_redacted",
            "Secret values written as the redaction placeholder.",
            load(&shared.redacted),
        )?;
        shared.upstream_latency.encode(
            e,
            "record_upstream_duration_seconds",
            "Time from a Query or Sync forwarded to the upstream to its ReadyForQuery back.",
        )
    }
}
