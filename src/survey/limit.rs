//! One rate limit shared by every query of a survey.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::{Error, Result};

/// A token bucket holding one token, refilled `queries_per_second` times a
/// second, shared by every task of a survey: N queries take at least
/// `(N - 1) / qps` however many databases are in flight. Waiting goes
/// through tokio's clock, so a paused clock makes it instant in tests.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    /// When the next query may start.
    next: Mutex<Option<Instant>>,
}

/// The longest wait between two queries a limit may ask for: a rate under
/// one query a day is a mistake (and tiny rates overflow a `Duration`).
pub const MAX_QUERY_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

impl RateLimiter {
    /// At most `queries_per_second`; 0 means no limit. A negative, NaN or
    /// infinite rate, or one under one query a day ([`MAX_QUERY_INTERVAL`]), is
    /// [`Error::Setting`] for `queries_per_second`.
    pub fn new(queries_per_second: f64) -> Result<Self> {
        let refuse = |reason: &str| Error::Setting {
            setting: "queries_per_second".into(),
            value: queries_per_second.to_string(),
            reason: format!(
                "{reason}; give 0 for no limit, or a rate of at least one query a day (1/86400)"
            ),
        };
        if queries_per_second == 0.0 {
            return Ok(RateLimiter::unlimited());
        }
        if !queries_per_second.is_finite() {
            return Err(refuse("not a finite number"));
        }
        if queries_per_second < 0.0 {
            return Err(refuse("a rate cannot be negative"));
        }
        let interval = Duration::try_from_secs_f64(1.0 / queries_per_second)
            .ok()
            .filter(|i| *i <= MAX_QUERY_INTERVAL)
            .ok_or_else(|| refuse("so small a rate waits more than a day between queries"))?;
        Ok(RateLimiter {
            interval: Some(interval),
            next: Mutex::new(None),
        })
    }

    /// No limit.
    pub fn unlimited() -> Self {
        RateLimiter {
            interval: None,
            next: Mutex::new(None),
        }
    }

    /// Waits for this query's turn.
    pub async fn acquire(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = Instant::now();
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let at = next.map_or(now, |n| n.max(now));
            *next = Some(at + interval);
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn n_queries_take_n_minus_one_intervals_across_tasks() {
        let limiter = Arc::new(RateLimiter::new(5.0).expect("a rate"));
        let start = Instant::now();
        // Four "databases" in flight, 5 queries each: 20 queries at 5/s.
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                tokio::spawn(async move {
                    let mut at = Vec::new();
                    for _ in 0..5 {
                        limiter.acquire().await;
                        at.push(Instant::now());
                    }
                    at
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.extend(t.await.unwrap());
        }
        times.sort();
        assert_eq!(
            times.last().unwrap().duration_since(start),
            Duration::from_millis(3800)
        );
        for pair in times.windows(2) {
            assert!(pair[1].duration_since(pair[0]) >= Duration::from_millis(200));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_limiter_does_not_bank_a_burst() {
        let limiter = RateLimiter::new(10.0).expect("a rate");
        limiter.acquire().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_means_unlimited() {
        for qps in [0.0, -0.0] {
            let limiter = RateLimiter::new(qps).expect("no limit");
            let start = Instant::now();
            for _ in 0..100 {
                limiter.acquire().await;
            }
            assert_eq!(start.elapsed(), Duration::ZERO, "{qps}");
        }
    }

    #[test]
    fn nonsense_and_vanishing_rates_are_refused_saying_why() {
        for (qps, why) in [
            (-1.0, "negative"),
            (f64::NAN, "finite"),
            (f64::INFINITY, "finite"),
            (f64::NEG_INFINITY, "finite"),
            (1e-300, "more than a day"),
            (f64::MIN_POSITIVE, "more than a day"),
            (1.0 / 86_401.0, "more than a day"),
        ] {
            let e = RateLimiter::new(qps).expect_err("refused");
            let text = e.to_string();
            assert!(
                text.contains("queries_per_second") && text.contains(why),
                "{qps}: {text}"
            );
        }
        assert!(RateLimiter::new(1.0 / 86_400.0).is_ok(), "one a day");
        assert!(RateLimiter::new(1e300).is_ok(), "huge is just fast");
    }
}
