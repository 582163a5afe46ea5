//! What one client can make the mock server hold or wait for: message
//! size, startup and idle timeouts, open connections, the miss record
//! (defaults and PostgreSQL's counterparts in `docs/LIMITS.md`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::wire;

/// Answers pending for one connection are written out once they pass this
/// many bytes, before the next message is read: a pipelined batch is
/// answered as it is read (with the socket's backpressure), not buffered.
pub(crate) const FLUSH_AT: usize = 64 * 1024;

/// The bounds one server enforces; set through [`super::MockServerBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Largest message accepted (length word included); PostgreSQL's own
    /// per-type limits apply below it.
    pub(crate) max_message_size: usize,
    /// Time from accept to the end of authentication.
    pub(crate) startup_timeout: Duration,
    /// Time an idle session (outside a transaction) may wait for its next
    /// message; `None`: forever.
    pub(crate) idle_timeout: Option<Duration>,
    /// Time a session idle inside a transaction block may wait; `None`:
    /// forever.
    pub(crate) idle_in_transaction_timeout: Option<Duration>,
    /// Sessions open at once.
    pub(crate) max_connections: usize,
}

/// PostgreSQL's `authentication_timeout` default.
pub(crate) const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// PostgreSQL's `max_connections` default.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 100;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: wire::MAX_MESSAGE_LEN,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            idle_timeout: None,
            idle_in_transaction_timeout: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The connection slots of one server (`max_connections`).
#[derive(Debug, Default)]
pub(crate) struct Slots {
    taken: AtomicUsize,
}

/// One taken slot, given back on drop.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    slots: &'a Slots,
}

impl Slots {
    /// A slot, unless `max` are taken.
    pub(crate) fn take(&self, max: usize) -> Option<Slot<'_>> {
        let taken = self.taken.fetch_add(1, Ordering::AcqRel);
        if taken >= max {
            self.taken.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot { slots: self })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.slots.taken.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_refuse_past_the_maximum_and_come_back_on_drop() {
        let slots = Slots::default();
        let a = slots.take(2);
        let b = slots.take(2);
        assert!(a.is_some() && b.is_some());
        assert!(slots.take(2).is_none());
        drop(a);
        assert!(slots.take(2).is_some());
    }
}
