//! A circuit breaker per node: closed, open after repeated failures,
//! half-open after a cooldown, where one probe decides.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// When a node's breaker opens and how long it stays open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open it.
    pub failure_threshold: u32,
    /// How long it stays open before one probe is let through.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    /// 5 consecutive failures, 30 s cooldown.
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// Where a breaker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls are refused until the cooldown ends.
    Open,
    /// One probe is in flight; its outcome closes or reopens the breaker.
    HalfOpen,
}

/// A state's name in `pgsim.breaker` events.
fn state_name(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half-open",
    }
}

/// A breaker's state and how often it moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerSnapshot {
    /// Now.
    pub state: BreakerState,
    /// Consecutive failures counted while closed.
    pub failures: u32,
    /// Times it opened.
    pub opened: u64,
    /// Times it let a probe through.
    pub half_opened: u64,
    /// Times a probe closed it.
    pub closed: u64,
    /// Probes dropped before they reported (a caller's timeout, a
    /// cancelled task); each counts as a failed probe.
    pub abandoned: u64,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    open_until: Option<Instant>,
    opened: u64,
    half_opened: u64,
    closed: u64,
    abandoned: u64,
}

/// One node's breaker. Time is tokio's, so a paused clock drives it.
#[derive(Debug)]
pub(crate) struct Breaker {
    /// The node it guards, for its `pgsim.breaker` events.
    node: String,
    config: Option<BreakerConfig>,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// `None`: never opens.
    pub(crate) fn new(node: String, config: Option<BreakerConfig>) -> Self {
        Breaker {
            node,
            config,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                open_until: None,
                opened: 0,
                half_opened: 0,
                closed: 0,
                abandoned: 0,
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs `f` on the state and emits a `pgsim.breaker` event (node,
    /// from, to) when it moved the breaker to another state.
    fn moving<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let (from, to, out) = self.with(|b| {
            let from = b.state;
            let out = f(b);
            (from, b.state, out)
        });
        if from != to {
            tracing::info!(
                name: "pgsim.breaker",
                node = self.node.as_str(),
                from = state_name(from),
                to = state_name(to),
            );
        }
        out
    }

    /// Leave for one call to the node now, or `None` when the breaker
    /// refuses it. After the cooldown the first caller gets the probe;
    /// others are refused until it reports.
    pub(crate) fn allow(&self) -> Option<Permit<'_>> {
        if self.config.is_none() {
            return Some(Permit::new(self, None));
        }
        self.moving(|b| match b.state {
            BreakerState::Closed => Some(None),
            BreakerState::HalfOpen => None,
            BreakerState::Open => {
                if b.open_until.is_some_and(|t| Instant::now() >= t) {
                    b.state = BreakerState::HalfOpen;
                    b.half_opened += 1;
                    Some(Some(b.half_opened))
                } else {
                    None
                }
            }
        })
        .map(|probe| Permit::new(self, probe))
    }

    fn success(&self) {
        self.moving(|b| {
            if b.state == BreakerState::HalfOpen {
                b.closed += 1;
            }
            b.state = BreakerState::Closed;
            b.failures = 0;
            b.open_until = None;
        });
    }

    fn failure(&self) {
        let Some(config) = &self.config else {
            return;
        };
        self.moving(|b| Self::fail(b, config));
    }

    fn fail(b: &mut Inner, config: &BreakerConfig) {
        b.failures = b.failures.saturating_add(1);
        let trips = match b.state {
            BreakerState::HalfOpen => true,
            BreakerState::Closed => b.failures >= config.failure_threshold,
            BreakerState::Open => false,
        };
        if trips {
            b.state = BreakerState::Open;
            b.opened += 1;
            b.open_until = Some(Instant::now() + config.cooldown);
        }
    }

    /// Probe number `probe` was dropped without a report: when it is still
    /// the one in flight, it failed (the caller gave up waiting for it).
    fn abandon(&self, probe: u64) {
        let Some(config) = &self.config else {
            return;
        };
        self.moving(|b| {
            b.abandoned += 1;
            if b.state == BreakerState::HalfOpen && b.half_opened == probe {
                Self::fail(b, config);
            }
        });
    }

    pub(crate) fn snapshot(&self) -> BreakerSnapshot {
        self.with(|b| BreakerSnapshot {
            state: b.state,
            failures: b.failures,
            opened: b.opened,
            half_opened: b.half_opened,
            closed: b.closed,
            abandoned: b.abandoned,
        })
    }
}

/// Leave for one call, from [`Breaker::allow`]: report how the call went
/// with [`success`](Self::success) or [`failure`](Self::failure). A probe
/// dropped without a report (its future cancelled by a timeout) reports a
/// failure from `Drop`, so a half-open breaker always hears back.
#[must_use = "a permit reports how the call went"]
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    /// The probe's number (`half_opened` when it was let through), or
    /// `None` for a call through a closed breaker.
    probe: Option<u64>,
}

impl<'a> Permit<'a> {
    fn new(breaker: &'a Breaker, probe: Option<u64>) -> Self {
        Permit { breaker, probe }
    }

    /// The call got an answer: closes the breaker.
    pub(crate) fn success(mut self) {
        self.probe = None;
        self.breaker.success();
    }

    /// The call failed in a way that counts against the node.
    pub(crate) fn failure(mut self) {
        self.probe = None;
        self.breaker.failure();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(probe) = self.probe.take() {
            self.breaker.abandon(probe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(
            "test".into(),
            Some(BreakerConfig {
                failure_threshold: 3,
                cooldown: Duration::from_secs(10),
            }),
        )
    }

    /// Opens `b` with three failures and waits out its cooldown.
    async fn trip_and_cool_down(b: &Breaker) {
        for _ in 0..3 {
            b.failure();
        }
        tokio::time::advance(Duration::from_secs(10)).await;
    }

    /// Collects `pgsim.breaker` events as `node from->to`.
    #[derive(Clone, Default)]
    struct Moves(std::sync::Arc<Mutex<Vec<String>>>);

    struct Fields(std::collections::BTreeMap<&'static str, String>);

    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name(), format!("{value:?}"));
        }

        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            self.0.insert(field.name(), value.into());
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Moves {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if event.metadata().name() != "pgsim.breaker" {
                return;
            }
            let mut fields = Fields(Default::default());
            event.record(&mut fields);
            let f = |k| fields.0.get(k).cloned().unwrap_or_default();
            let line = format!("{} {}->{}", f("node"), f("from"), f("to"));
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_state_change_is_a_breaker_event() {
        use tracing_subscriber::layer::SubscriberExt;
        let moves = Moves::default();
        // tracing caches callsite interest process-wide; another test
        // thread hitting these callsites with no subscriber would cache
        // "never". A global default wanting every span prevents that, and
        // the cache is rebuilt with this scoped one in place.
        static ANCHOR: std::sync::Once = std::sync::Once::new();
        ANCHOR.call_once(|| {
            let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        });
        let _scope =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(moves.clone()));
        tracing::callsite::rebuild_interest_cache();
        let b = breaker();
        trip_and_cool_down(&b).await;
        b.allow().expect("the probe").failure();
        tokio::time::advance(Duration::from_secs(10)).await;
        b.allow().expect("the next probe").success();
        b.failure();
        let seen = moves.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(
            seen,
            [
                "test closed->open",
                "test open->half-open",
                "test half-open->open",
                "test open->half-open",
                "test half-open->closed",
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn opens_rejects_half_opens_and_closes_on_a_good_probe() {
        let b = breaker();
        for _ in 0..2 {
            b.allow().expect("closed").failure();
        }
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        b.failure();
        assert_eq!(b.snapshot().state, BreakerState::Open);
        assert!(b.allow().is_none(), "rejects while open");
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(b.allow().is_none(), "still cooling down");
        tokio::time::advance(Duration::from_secs(1)).await;
        let probe = b.allow().expect("the probe goes through");
        assert_eq!(b.snapshot().state, BreakerState::HalfOpen);
        assert!(b.allow().is_none(), "one probe at a time");
        probe.success();
        let s = b.snapshot();
        assert_eq!(
            (s.state, s.opened, s.half_opened, s.closed),
            (BreakerState::Closed, 1, 1, 1)
        );
        assert!(b.allow().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_another_cooldown() {
        let b = breaker();
        trip_and_cool_down(&b).await;
        b.allow().expect("the probe").failure();
        let s = b.snapshot();
        assert_eq!((s.state, s.opened), (BreakerState::Open, 2));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(b.allow().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_probe_fails_and_a_stale_one_leaves_the_next_alone() {
        let b = breaker();
        trip_and_cool_down(&b).await;
        drop(b.allow().expect("the probe"));
        let s = b.snapshot();
        assert_eq!((s.state, s.opened, s.abandoned), (BreakerState::Open, 2, 1));
        tokio::time::advance(Duration::from_secs(10)).await;
        let first = b.allow().expect("a second probe");
        // A call let through while closed closes it; the breaker trips
        // again and lets a new probe through before the first is dropped.
        b.success();
        trip_and_cool_down(&b).await;
        let second = b.allow().expect("a third probe");
        drop(first);
        assert_eq!(
            b.snapshot().state,
            BreakerState::HalfOpen,
            "not the stale probe's"
        );
        second.success();
        assert_eq!(b.snapshot().state, BreakerState::Closed);
    }

    #[test]
    fn success_resets_the_count_and_no_config_never_opens() {
        let b = breaker();
        b.failure();
        b.failure();
        b.success();
        b.failure();
        b.failure();
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        let never = Breaker::new("test".into(), None);
        for _ in 0..100 {
            never.allow().expect("never opens").failure();
        }
        assert!(never.allow().is_some());
    }
}
