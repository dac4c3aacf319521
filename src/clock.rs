//! The service's clock, in Unix seconds, the unit every stored time and token claim uses.
//! It can be moved forward, so tests check expiry, login blocking and its release without
//! sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch, by the system clock.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The system clock plus an offset (zero outside tests).
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> i64 {
        now().saturating_add(self.offset.load(Ordering::Relaxed))
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }
}
