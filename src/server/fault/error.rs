//! Why a fault spec does not parse.

/// A fault spec that cannot be parsed. Every message quotes the spec and
/// says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultError {
    /// The spec is empty, or has an empty item (two commas in a row).
    #[error("invalid fault spec {spec:?}: empty item (specs are comma-separated key=value items)")]
    EmptyItem {
        /// The whole spec.
        spec: String,
    },
    /// A key or bare word pgsim does not know.
    #[error(
        "invalid fault spec {spec:?}: unknown key {key:?} \
         (known: match, error, message, latency, times, p, drop, refuse)"
    )]
    UnknownKey {
        /// The whole spec.
        spec: String,
        /// The unknown key.
        key: String,
    },
    /// A key that needs a value was given without one.
    #[error("invalid fault spec {spec:?}: {key} needs a value, as in {key}={expected}")]
    MissingValue {
        /// The whole spec.
        spec: String,
        /// The key.
        key: String,
        /// What the value looks like.
        expected: &'static str,
    },
    /// A value that is malformed or out of range.
    #[error("invalid fault spec {spec:?}: {key}={value:?}: {reason}")]
    BadValue {
        /// The whole spec.
        spec: String,
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same key twice.
    #[error("invalid fault spec {spec:?}: {key} is given twice")]
    Repeated {
        /// The whole spec.
        spec: String,
        /// The repeated key.
        key: String,
    },
    /// No effect: none of `error=`, `latency=`, `drop`, `refuse`.
    #[error(
        "invalid fault spec {spec:?}: no effect \
         (give one of error=SQLSTATE, latency=MS, drop, refuse)"
    )]
    MissingEffect {
        /// The whole spec.
        spec: String,
    },
    /// Two effects in one spec.
    #[error(
        "invalid fault spec {spec:?}: two effects, {first} and {second} \
         (a fault has exactly one; give two faults instead)"
    )]
    TwoEffects {
        /// The whole spec.
        spec: String,
        /// The effect given first.
        first: &'static str,
        /// The effect given second.
        second: &'static str,
    },
    /// A key that does not apply to the spec's effect.
    #[error("invalid fault spec {spec:?}: {key} cannot be used with {effect} ({why})")]
    NotApplicable {
        /// The whole spec.
        spec: String,
        /// The key that does not apply.
        key: &'static str,
        /// The spec's effect.
        effect: &'static str,
        /// Why not.
        why: &'static str,
    },
}

impl FaultError {
    /// The spec that failed to parse.
    pub fn spec(&self) -> &str {
        match self {
            FaultError::EmptyItem { spec }
            | FaultError::UnknownKey { spec, .. }
            | FaultError::MissingValue { spec, .. }
            | FaultError::BadValue { spec, .. }
            | FaultError::Repeated { spec, .. }
            | FaultError::MissingEffect { spec }
            | FaultError::TwoEffects { spec, .. }
            | FaultError::NotApplicable { spec, .. } => spec,
        }
    }
}
