//! Seeded fault injection: a [`Fault`] is parsed from a spec such as
//! `match=^select abalance,error=40001,times=2`, and the server asks
//! `Faults` before it answers a query or accepts a connection.
//!
//! Every random decision is a pure function of (seed, fault index, the n-th
//! event that fault matched), so the same seed and the same client events
//! give the same faults however the connections are scheduled. The grammar
//! and the rules are in `docs/FAULTS.md`.

mod armed;
mod error;

use std::fmt;
use std::str::FromStr;

use regex::{Regex, RegexBuilder};

pub use armed::FaultStats;
pub(crate) use armed::{Faults, Injected};
pub use error::FaultError;

/// What PostgreSQL answers a connection beyond `max_connections`.
const TOO_MANY_CLIENTS: &str = "53300";

/// A fault the mock server injects: one effect, on the queries a regex
/// matches, limited by a count and/or a probability.
///
/// ```
/// let fault: pgsim::Fault = "match=^select abalance,error=40001,times=2".parse()?;
/// assert_eq!(
///     fault.describe(),
///     "error 40001 on queries matching /^select abalance/ (case-insensitive), at most 2 times"
/// );
/// # Ok::<(), pgsim::FaultError>(())
/// ```
#[derive(Clone)]
pub struct Fault {
    spec: String,
    matcher: Option<Regex>,
    effect: Effect,
    times: Option<u64>,
    p: Option<f64>,
}

/// What a fault does when it fires.
#[derive(Debug, Clone, PartialEq)]
enum Effect {
    /// An ErrorResponse (severity ERROR) instead of the recorded answer.
    Error {
        code: String,
        message: Option<String>,
    },
    /// A delay (milliseconds, inclusive range) before the answer.
    Latency { min: u64, max: u64 },
    /// The connection closes without an answer.
    Drop,
    /// A new connection gets FATAL 53300 and is closed.
    Refuse,
}

/// The keys and bare words of a spec while it is parsed.
#[derive(Default)]
struct Parts {
    matcher: Option<Regex>,
    effect: Option<(&'static str, Effect)>,
    message: Option<String>,
    times: Option<u64>,
    p: Option<f64>,
}

impl Fault {
    /// Parses a spec (see `docs/FAULTS.md`): comma-separated `key=value`
    /// items and bare words, with exactly one effect.
    pub fn parse(spec: &str) -> Result<Fault, FaultError> {
        let mut parts = Parts::default();
        for item in spec.split(',') {
            parse_item(spec, item.trim(), &mut parts)?;
        }
        let owned = || spec.to_owned();
        let Some((name, mut effect)) = parts.effect else {
            return Err(FaultError::MissingEffect { spec: owned() });
        };
        match &mut effect {
            Effect::Error { message, .. } => *message = parts.message,
            Effect::Latency { .. } | Effect::Drop | Effect::Refuse => {
                if parts.message.is_some() {
                    return Err(FaultError::NotApplicable {
                        spec: owned(),
                        key: "message",
                        effect: name,
                        why: "only error= sends a message",
                    });
                }
            }
        }
        if effect == Effect::Refuse && parts.matcher.is_some() {
            return Err(FaultError::NotApplicable {
                spec: owned(),
                key: "match",
                effect: name,
                why: "refuse acts on new connections, before any query",
            });
        }
        Ok(Fault {
            spec: owned(),
            matcher: parts.matcher,
            effect,
            times: parts.times,
            p: parts.p,
        })
    }

    /// The spec this fault was parsed from.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// A one-line description for logs and reports, e.g. `latency 10..50 ms
    /// on every query, with probability 0.25`.
    pub fn describe(&self) -> String {
        let mut s = match &self.effect {
            Effect::Error {
                code,
                message: Some(m),
            } => format!("error {code} {m:?}"),
            Effect::Error {
                code,
                message: None,
            } => format!("error {code}"),
            Effect::Latency { min, max } if min == max => format!("latency {min} ms"),
            Effect::Latency { min, max } => format!("latency {min}..{max} ms"),
            Effect::Drop => "drop the connection".to_owned(),
            Effect::Refuse => format!("refuse with {TOO_MANY_CLIENTS}"),
        };
        match &self.effect {
            Effect::Refuse => s.push_str(" on every new connection"),
            Effect::Error { .. } | Effect::Latency { .. } | Effect::Drop => match &self.matcher {
                Some(re) => s.push_str(&format!(
                    " on queries matching /{}/ (case-insensitive)",
                    re.as_str()
                )),
                None => s.push_str(" on every query"),
            },
        }
        if let Some(p) = self.p {
            s.push_str(&format!(", with probability {p}"));
        }
        match self.times {
            Some(1) => s.push_str(", at most once"),
            Some(n) => s.push_str(&format!(", at most {n} times")),
            None => {}
        }
        s
    }

    fn acts_on_queries(&self) -> bool {
        match self.effect {
            Effect::Error { .. } | Effect::Latency { .. } | Effect::Drop => true,
            Effect::Refuse => false,
        }
    }

    fn matches(&self, sql: &str) -> bool {
        self.matcher.as_ref().is_none_or(|re| re.is_match(sql))
    }
}

/// Applies one trimmed item of `spec` to `parts`.
fn parse_item(spec: &str, item: &str, parts: &mut Parts) -> Result<(), FaultError> {
    let owned = || spec.to_owned();
    if item.is_empty() {
        return Err(FaultError::EmptyItem { spec: owned() });
    }
    let (key, value) = match item.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v)),
        None => (item, None),
    };
    let bad = |reason: String| FaultError::BadValue {
        spec: owned(),
        key: key.to_owned(),
        value: value.unwrap_or_default().to_owned(),
        reason,
    };
    let repeated = || FaultError::Repeated {
        spec: owned(),
        key: key.to_owned(),
    };
    let expected = match key {
        "match" => "REGEX",
        "error" => "SQLSTATE",
        "message" => "TEXT",
        "latency" => "MS or latency=MIN..MAX",
        "times" => "N",
        "p" => "0.25",
        "drop" | "refuse" => "",
        _ => {
            return Err(FaultError::UnknownKey {
                spec: owned(),
                key: key.to_owned(),
            })
        }
    };
    let value = match (value, expected.is_empty()) {
        (None, true) => "",
        (Some(_), true) => return Err(bad(format!("{key} takes no value"))),
        (None, false) => {
            return Err(FaultError::MissingValue {
                spec: owned(),
                key: key.to_owned(),
                expected,
            })
        }
        (Some(v), false) => v,
    };
    let effect = match key {
        "match" => {
            if parts.matcher.is_some() {
                return Err(repeated());
            }
            if value.is_empty() {
                return Err(bad(
                    "empty pattern (leave match out to match every query)".into()
                ));
            }
            let re = RegexBuilder::new(value)
                .case_insensitive(true)
                .build()
                .map_err(|e| bad(format!("not a valid regex: {e}")))?;
            parts.matcher = Some(re);
            None
        }
        "message" => {
            if parts.message.is_some() {
                return Err(repeated());
            }
            if value.is_empty() {
                return Err(bad("empty message".into()));
            }
            parts.message = Some(value.to_owned());
            None
        }
        "times" => {
            if parts.times.is_some() {
                return Err(repeated());
            }
            let n: u64 = value
                .trim()
                .parse()
                .map_err(|_| bad("not a whole number".into()))?;
            if n == 0 {
                return Err(bad(
                    "must be at least 1 (remove the fault to disable it)".into()
                ));
            }
            parts.times = Some(n);
            None
        }
        "p" => {
            if parts.p.is_some() {
                return Err(repeated());
            }
            let p: f64 = value
                .trim()
                .parse()
                .map_err(|_| bad("not a number".into()))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(bad("a probability must be between 0 and 1".into()));
            }
            parts.p = Some(p);
            None
        }
        "error" => Some(("error", parse_sqlstate(value).map_err(bad)?)),
        "latency" => Some(("latency", parse_latency(value).map_err(bad)?)),
        "drop" => Some(("drop", Effect::Drop)),
        "refuse" => Some(("refuse", Effect::Refuse)),
        _ => {
            return Err(FaultError::UnknownKey {
                spec: owned(),
                key: key.to_owned(),
            })
        }
    };
    if let Some((name, effect)) = effect {
        match &parts.effect {
            Some((first, _)) if *first == name => return Err(repeated()),
            Some((first, _)) => {
                return Err(FaultError::TwoEffects {
                    spec: owned(),
                    first,
                    second: name,
                })
            }
            None => parts.effect = Some((name, effect)),
        }
    }
    Ok(())
}

fn parse_sqlstate(value: &str) -> Result<Effect, String> {
    let valid = value.len() == 5
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    if !valid {
        return Err("a SQLSTATE is 5 characters from 0-9 and A-Z, e.g. 40001".into());
    }
    Ok(Effect::Error {
        code: value.to_owned(),
        message: None,
    })
}

fn parse_latency(value: &str) -> Result<Effect, String> {
    let ms = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("{:?} is not a whole number of milliseconds", s.trim()))
    };
    let (min, max) = match value.split_once("..") {
        Some((a, b)) => (ms(a)?, ms(b)?),
        None => (ms(value)?, ms(value)?),
    };
    if min > max {
        return Err(format!("MIN..MAX with MIN ({min}) above MAX ({max})"));
    }
    Ok(Effect::Latency { min, max })
}

impl FromStr for Fault {
    type Err = FaultError;

    fn from_str(spec: &str) -> Result<Self, FaultError> {
        Fault::parse(spec)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl fmt::Debug for Fault {
    /// The description, so a failing test names the rule (a regex's own
    /// Debug output says little).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Fault").field(&self.describe()).finish()
    }
}

#[cfg(test)]
mod tests;
