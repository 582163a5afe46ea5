//! One rate limit shared by every query of a survey.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

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

impl RateLimiter {
    /// At most `queries_per_second` (a positive, finite number; anything
    /// else means no limit).
    pub fn new(queries_per_second: f64) -> Self {
        let interval = (queries_per_second.is_finite() && queries_per_second > 0.0)
            .then(|| Duration::from_secs_f64(1.0 / queries_per_second));
        RateLimiter {
            interval,
            next: Mutex::new(None),
        }
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
        let limiter = Arc::new(RateLimiter::new(5.0));
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
        let limiter = RateLimiter::new(10.0);
        limiter.acquire().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_or_nonsense_means_unlimited() {
        for qps in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let limiter = RateLimiter::new(qps);
            let start = Instant::now();
            for _ in 0..100 {
                limiter.acquire().await;
            }
            assert_eq!(start.elapsed(), Duration::ZERO, "{qps}");
        }
    }
}
