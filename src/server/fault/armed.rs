//! Faults armed in a running server: per-fault counters, the seeded
//! draws, and what a query or a new connection gets.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Effect, Fault, TOO_MANY_CLIENTS};
use crate::fixture::ErrorFields;

/// How often one fault matched and fired, from [`crate::MockServer::faults`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultStats {
    /// The fault's [`Fault::describe`].
    pub fault: String,
    /// The spec it was parsed from.
    pub spec: String,
    /// Events it matched: queries its regex matched, or new connections
    /// for `refuse`.
    pub matched: u64,
    /// Events it fired on.
    pub fired: u64,
}

impl fmt::Display for FaultStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: matched {}, fired {}",
            self.fault, self.matched, self.fired
        )
    }
}

/// What a query gets instead of its recorded answer.
#[derive(Debug, Clone)]
pub(crate) enum Injected {
    /// This ErrorResponse.
    Error(ErrorFields),
    /// No answer: the connection closes.
    Drop,
}

/// What the faults decided for one query.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    /// Wait this long before the answer is written.
    pub(crate) delay: Duration,
    /// Replace the answer (the recorded answer is then not consumed).
    pub(crate) injected: Option<Injected>,
}

#[derive(Debug)]
struct Armed {
    fault: Fault,
    matched: AtomicU64,
    fired: AtomicU64,
}

/// A server's faults with their counters and the seed.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    seed: u64,
    armed: Vec<Armed>,
}

impl Faults {
    pub(crate) fn new(faults: Vec<Fault>, seed: u64) -> Self {
        let armed = faults
            .into_iter()
            .map(|fault| Armed {
                fault,
                matched: AtomicU64::new(0),
                fired: AtomicU64::new(0),
            })
            .collect();
        Faults { seed, armed }
    }

    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// Decides the faults for one query, in the order they were given:
    /// latencies add up; the first error or drop that fires replaces the
    /// answer, and the faults after it do not see the query.
    pub(crate) fn on_query(&self, sql: &str) -> Decision {
        let mut decision = Decision::default();
        for (index, armed) in self.armed.iter().enumerate() {
            if !armed.fault.acts_on_queries() || !armed.fault.matches(sql) {
                continue;
            }
            let Some(draw) = armed.roll(self.seed, index) else {
                continue;
            };
            match &armed.fault.effect {
                Effect::Latency { min, max } => {
                    decision.delay += Duration::from_millis(pick(*min, *max, draw));
                }
                Effect::Error { code, message } => {
                    let message = message
                        .clone()
                        .unwrap_or_else(|| format!("pgsim fault: injected {code}"));
                    let fields = ErrorFields::error(code, message, None);
                    decision.injected = Some(Injected::Error(fields));
                    break;
                }
                Effect::Drop => {
                    decision.injected = Some(Injected::Drop);
                    break;
                }
                Effect::Refuse => {}
            }
        }
        decision
    }

    /// The FATAL error a new connection gets when a `refuse` fault fires.
    pub(crate) fn on_connect(&self) -> Option<ErrorFields> {
        self.armed
            .iter()
            .enumerate()
            .filter(|(_, armed)| !armed.fault.acts_on_queries())
            .find_map(|(index, armed)| armed.roll(self.seed, index))
            .map(|_| ErrorFields::fatal(TOO_MANY_CLIENTS, "sorry, too many clients already".into()))
    }

    pub(crate) fn stats(&self) -> Vec<FaultStats> {
        self.armed
            .iter()
            .map(|a| FaultStats {
                fault: a.fault.describe(),
                spec: a.fault.spec.clone(),
                matched: a.matched.load(Ordering::Relaxed),
                fired: a.fired.load(Ordering::Relaxed),
            })
            .collect()
    }
}

impl Armed {
    /// Counts a matching event and decides whether the fault fires on it;
    /// when it does, returns a further random word for the effect.
    fn roll(&self, seed: u64, index: usize) -> Option<u64> {
        let event = self.matched.fetch_add(1, Ordering::Relaxed);
        let draw = draw(seed, index as u64, event);
        if self.fault.p.is_some_and(|p| unit(draw) >= p) {
            return None;
        }
        match self.fault.times {
            Some(times) => {
                self.fired
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        (n < times).then_some(n + 1)
                    })
                    .ok()?;
            }
            None => {
                self.fired.fetch_add(1, Ordering::Relaxed);
            }
        }
        Some(splitmix64(draw))
    }
}

/// SplitMix64's output function over `x` plus its increment.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random word for the `event`-th matching event of fault `index`.
fn draw(seed: u64, index: u64, event: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ index) ^ event)
}

/// A word as a number in [0, 1), from its top 53 bits.
fn unit(word: u64) -> f64 {
    (word >> 11) as f64 / (1u64 << 53) as f64
}

/// A number in `min..=max`, uniform up to a bias below 2^-64 per value.
fn pick(min: u64, max: u64, word: u64) -> u64 {
    let span = u128::from(max - min) + 1;
    let offset = (u128::from(word) * span) >> 64;
    min + offset as u64
}
