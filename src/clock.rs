//! A server's one clock, in Unix seconds (`i64` everywhere). Fabrikam ID and the intranet
//! each have their own; a test shifts either without touching the other's or the machine's.
//!
//! The intranet reads only [`Clock::now`] (`intranet::state::AppState::now`). Fabrikam ID reads
//! it two ways: [`Clock::now`] is the provider's time — real time shifted by the
//! test-control offset — and dates everything the provider issues or checks against what it
//! issued (tokens, codes, `auth_time`, `max_age`, key grace periods). [`Clock::real`] is real
//! time, unshifted, for what must follow the wall clock whatever a test does: TOTP codes
//! (RFC 6238 §4 counts from the Unix epoch, as the person's authenticator app does),
//! throttles and lock-outs, and how long pending sign-ins and remembered browsers live.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Offsets beyond a century are refused, so no time arithmetic can overflow.
pub const MAX_OFFSET_SECS: i64 = 100 * 366 * 24 * 3600;

/// Real time plus an offset that a test may set (Fabrikam ID's through test control, the
/// intranet's through the handle in `Settings::intranet_clock`). Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    /// Real time, unshifted.
    pub fn real(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// The provider's time: real time plus the offset.
    pub fn now(&self) -> i64 {
        self.real().saturating_add(self.offset())
    }

    pub fn offset(&self) -> i64 {
        self.offset_secs.load(Ordering::Relaxed)
    }

    /// Moves [`Clock::now`] `secs` further from real time (a test's "wait").
    pub fn advance(&self, secs: i64) -> Result<(), OffsetOutOfRange> {
        self.set_offset(self.offset().saturating_add(secs))
    }

    /// Shifts [`Clock::now`] by `secs` from real time; refused beyond ±[`MAX_OFFSET_SECS`].
    pub fn set_offset(&self, secs: i64) -> Result<(), OffsetOutOfRange> {
        if secs.checked_abs().is_none_or(|s| s > MAX_OFFSET_SECS) {
            return Err(OffsetOutOfRange);
        }
        self.offset_secs.store(secs, Ordering::Relaxed);
        Ok(())
    }
}

/// A clock offset beyond ±100 years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("offset_secs must be within ±100 years")]
pub struct OffsetOutOfRange;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_shifts_now_but_not_real_time() {
        let clock = Clock::default();
        clock.set_offset(3600).unwrap();
        let (real, now) = (clock.real(), clock.now());
        assert!((now - real - 3600).abs() <= 1, "{now} vs {real}");
        assert_eq!(clock.set_offset(MAX_OFFSET_SECS + 1), Err(OffsetOutOfRange));
        assert_eq!(clock.set_offset(i64::MIN), Err(OffsetOutOfRange));
        assert_eq!(clock.offset(), 3600, "a refused offset changes nothing");
        let handle = clock.clone();
        handle.advance(60).unwrap();
        assert_eq!(clock.offset(), 3660, "clones share the offset");
    }
}
