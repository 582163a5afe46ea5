//! Retrying transient failures with exponential backoff and seeded jitter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How backoff delays are randomized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Jitter {
    /// The exponential delay itself.
    #[default]
    None,
    /// A uniform pick between zero and the exponential delay ("full
    /// jitter"), from the policy's seeded generator.
    Full,
}

/// When and how often a statement that failed with a transient error
/// ([`Error::is_transient`](crate::Error::is_transient)) is tried again.
///
/// Single statements outside a transaction are retried only when they are
/// read-only ([`is_read_only`](crate::validate::is_read_only)) or
/// [`retry_writes`](Self::retry_writes) is set: a write whose connection
/// broke may have been applied.
///
/// ```
/// use pgsim::client::{Jitter, RetryPolicy};
/// use std::time::Duration;
/// let policy = RetryPolicy::exponential(Duration::from_millis(10)).max_attempts(4);
/// assert_eq!(
///     policy.schedule(),
///     [Duration::from_millis(10), Duration::from_millis(20), Duration::from_millis(40)]
/// );
/// let jittered = policy.clone().jitter(Jitter::Full).seed(7);
/// assert_eq!(jittered.schedule(), jittered.schedule()); // same seed, same delays
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    base: Duration,
    max_delay: Duration,
    max_attempts: u32,
    max_elapsed: Option<Duration>,
    jitter: Jitter,
    seed: u64,
    retry_writes: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::none()
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> Self {
        RetryPolicy {
            base: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_attempts: 1,
            max_elapsed: None,
            jitter: Jitter::None,
            seed: 0,
            retry_writes: false,
        }
    }

    /// Waits `base`, then `2 * base`, `4 * base`... (at most 1 s each), for
    /// 3 attempts in all.
    pub fn exponential(base: Duration) -> Self {
        RetryPolicy {
            base,
            max_delay: Duration::from_secs(1),
            max_attempts: 3,
            ..RetryPolicy::none()
        }
    }

    /// The first wait (it doubles from there).
    pub(crate) fn base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// Attempts in all, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The longest single wait.
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.max_delay = max;
        self
    }

    /// No retry starts once this much time has passed since the first
    /// attempt.
    pub fn max_elapsed(mut self, max: Duration) -> Self {
        self.max_elapsed = Some(max);
        self
    }

    /// Randomizes the waits.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The seed of the jitter: the same seed and the same failures give the
    /// same waits.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Also retry statements that may write.
    pub fn retry_writes(mut self, yes: bool) -> Self {
        self.retry_writes = yes;
        self
    }

    /// Attempts in all.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    pub(crate) fn may_retry_writes(&self) -> bool {
        self.retry_writes
    }

    /// Whether another attempt may start after `attempt` attempts, `elapsed`
    /// after the first.
    pub(crate) fn allows(&self, attempt: u32, elapsed: Duration) -> bool {
        attempt < self.max_attempts && self.max_elapsed.is_none_or(|max| elapsed < max)
    }

    /// After failed attempt `attempt` (1-based), started at `started`:
    /// waits the backoff and returns true when another attempt may start,
    /// returns false at once when none may. Statement and transaction
    /// retries both wait here, and say so in a `pgsim.retry` event: `what`
    /// is retried, after which attempt, the wait and the error's SQLSTATE
    /// (or `timeout`, `connection`).
    pub(crate) async fn wait_to_retry(
        &self,
        attempt: u32,
        started: Instant,
        draws: &Draws,
        what: &'static str,
        error: &crate::Error,
    ) -> bool {
        if !self.allows(attempt, started.elapsed()) {
            return false;
        }
        let delay = self.delay(attempt, draws.next());
        tracing::info!(
            name: "pgsim.retry",
            what,
            failed_attempt = attempt,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = crate::trace::error_outcome(error),
        );
        tokio::time::sleep(delay).await;
        true
    }

    /// The wait after failed attempt `attempt` (1-based), using random draw
    /// number `draw` of this policy's seed.
    pub fn delay(&self, attempt: u32, draw: u64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        let cap = self.base.saturating_mul(1 << doublings).min(self.max_delay);
        match self.jitter {
            Jitter::None => cap,
            Jitter::Full => {
                let word = splitmix64(splitmix64(self.seed) ^ draw);
                let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(((u128::from(word) * u128::from(nanos)) >> 64) as u64)
            }
        }
    }

    /// Every wait a run of failures would see, in order (draws 0, 1, ...).
    pub fn schedule(&self) -> Vec<Duration> {
        (1..self.max_attempts)
            .map(|attempt| self.delay(attempt, u64::from(attempt - 1)))
            .collect()
    }
}

/// Numbers the random draws of one client, so jitter depends only on the
/// seed and the order of failures.
#[derive(Debug, Default)]
pub(crate) struct Draws(AtomicU64);

impl Draws {
    pub(crate) fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// A well-mixed 64-bit hash (splitmix64's finalizer).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_doubles_up_to_the_cap() {
        let p = RetryPolicy::exponential(Duration::from_millis(100))
            .max_attempts(6)
            .max_delay(Duration::from_millis(500));
        let ms: Vec<u128> = p.schedule().iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn full_jitter_stays_under_the_delay_and_follows_the_seed() {
        let p = RetryPolicy::exponential(Duration::from_millis(100))
            .max_attempts(8)
            .jitter(Jitter::Full);
        let a = p.clone().seed(1).schedule();
        assert_eq!(a, p.clone().seed(1).schedule());
        assert_ne!(a, p.clone().seed(2).schedule());
        let plain = p.clone().jitter(Jitter::None).schedule();
        for (j, cap) in a.iter().zip(&plain) {
            assert!(j <= cap, "{j:?} > {cap:?}");
        }
    }

    #[test]
    fn attempts_and_elapsed_bound_retries() {
        let p = RetryPolicy::exponential(Duration::from_millis(1))
            .max_attempts(3)
            .max_elapsed(Duration::from_secs(1));
        assert!(p.allows(1, Duration::ZERO) && p.allows(2, Duration::ZERO));
        assert!(!p.allows(3, Duration::ZERO));
        assert!(!p.allows(1, Duration::from_secs(1)));
        assert!(!RetryPolicy::none().allows(1, Duration::ZERO));
    }
}
