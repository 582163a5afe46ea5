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
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    open_until: Option<Instant>,
    opened: u64,
    half_opened: u64,
    closed: u64,
}

/// One node's breaker. Time is tokio's, so a paused clock drives it.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: Option<BreakerConfig>,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// `None`: never opens.
    pub(crate) fn new(config: Option<BreakerConfig>) -> Self {
        Breaker {
            config,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                open_until: None,
                opened: 0,
                half_opened: 0,
                closed: 0,
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether a call may go to the node now. After the cooldown the first
    /// caller becomes the probe; others are refused until it reports.
    pub(crate) fn allow(&self) -> bool {
        if self.config.is_none() {
            return true;
        }
        self.with(|b| match b.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => false,
            BreakerState::Open => {
                if b.open_until.is_some_and(|t| Instant::now() >= t) {
                    b.state = BreakerState::HalfOpen;
                    b.half_opened += 1;
                    true
                } else {
                    false
                }
            }
        })
    }

    pub(crate) fn success(&self) {
        self.with(|b| {
            if b.state == BreakerState::HalfOpen {
                b.closed += 1;
            }
            b.state = BreakerState::Closed;
            b.failures = 0;
            b.open_until = None;
        });
    }

    pub(crate) fn failure(&self) {
        let Some(config) = &self.config else {
            return;
        };
        self.with(|b| {
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
        });
    }

    pub(crate) fn snapshot(&self) -> BreakerSnapshot {
        self.with(|b| BreakerSnapshot {
            state: b.state,
            failures: b.failures,
            opened: b.opened,
            half_opened: b.half_opened,
            closed: b.closed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(Some(BreakerConfig {
            failure_threshold: 3,
            cooldown: Duration::from_secs(10),
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn opens_rejects_half_opens_and_closes_on_a_good_probe() {
        let b = breaker();
        for _ in 0..2 {
            assert!(b.allow());
            b.failure();
        }
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        b.failure();
        assert_eq!(b.snapshot().state, BreakerState::Open);
        assert!(!b.allow(), "rejects while open");
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!b.allow(), "still cooling down");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(b.allow(), "the probe goes through");
        assert_eq!(b.snapshot().state, BreakerState::HalfOpen);
        assert!(!b.allow(), "one probe at a time");
        b.success();
        let s = b.snapshot();
        assert_eq!(
            (s.state, s.opened, s.half_opened, s.closed),
            (BreakerState::Closed, 1, 1, 1)
        );
        assert!(b.allow());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_another_cooldown() {
        let b = breaker();
        for _ in 0..3 {
            b.failure();
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(b.allow());
        b.failure();
        let s = b.snapshot();
        assert_eq!((s.state, s.opened), (BreakerState::Open, 2));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!b.allow());
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
        let never = Breaker::new(None);
        for _ in 0..100 {
            never.failure();
        }
        assert!(never.allow());
    }
}
