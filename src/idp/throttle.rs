//! Throttling of password guesses that an attacker can neither turn against the account's
//! owner nor reset by spraying (issue 11, findings 3 and 4).
//!
//! The design is OWASP's "device cookies" (Slow Down Online Guessing Attacks with Device
//! Cookies): a browser that has signed in as a user before carries a device cookie naming that
//! user (`fabrikam_idp_device`, sealed by [`super::session`]), and its guesses at that name count
//! against **its own budget**; every other browser's guesses at the name share **the name's
//! budget**. Each budget allows [`MAX_PASSWORD_FAILURES`] failures, then delays the next attempt
//! 30 s, doubling with each further failure up to 15 min; attempts inside a delay are refused
//! before any argon2 work. So strangers who guess at alice's name delay strangers (including a
//! browser alice never used), never alice in her own browser; and a thief of alice's device
//! cookie gets one more budget, not an unlimited one.
//!
//! Names known and unknown are throttled alike (a device cookie exists only for a real user,
//! and names the user it was issued for), so a refusal says nothing about which names exist.
//!
//! Memory is bounded without forgetting what matters: a record lives until it stops mattering
//! — [`FAILURE_WINDOW_SECS`] after its last failure while under the threshold, and
//! [`ESCALATED_MEMORY_SECS`] after it once the name earned a delay — and is **never evicted
//! while live**. When the table of names is full of live records, a name not yet in it is
//! refused unchecked ([`PasswordRefusal::Busy`], failing closed) rather than any record being
//! forgotten: spraying other names cannot reset alice's count (the attack run of issue 11
//! evicted her record from a 10,000-entry LRU table with 10,050 other names). Browsers with a
//! device cookie are not affected by a full name table. Device records are capped per user
//! ([`MAX_DEVICES_PER_USER`]); beyond it a device's guesses count against the name's budget.
//!
//! Times are Unix seconds on the real clock, like TOTP's.

use super::expiring::{ExpiringMap, Inserted, secret_key};

/// Failures a budget allows before its attempts are delayed.
pub const MAX_PASSWORD_FAILURES: u32 = 5;
/// The delay after the [`MAX_PASSWORD_FAILURES`]th failure; each further failure doubles it,
/// up to [`MAX_PASSWORD_DELAY_SECS`].
pub const FIRST_PASSWORD_DELAY_SECS: i64 = 30;
pub const MAX_PASSWORD_DELAY_SECS: i64 = 15 * 60;
/// Failures below the threshold are forgotten this long after the last one (a few typos
/// yesterday do not count today).
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;
/// A budget that earned a delay is remembered this long after its last failure or the end of
/// its delay, whichever is later: a patient guesser keeps meeting the longest delay.
pub const ESCALATED_MEMORY_SECS: i64 = 24 * 3600;
/// User names with live records at most. Each record costs under 200 bytes, so the table stays
/// under ~20 MB; filling it takes 100,000 argon2 checks of distinct names within 15 minutes
/// (about 110 a second), far beyond what the argon2 bound of one check per core allows.
pub const MAX_THROTTLED_NAMES: usize = 100_000;
/// Browsers with a budget of their own, per user and in all.
pub const MAX_DEVICES_PER_USER: usize = 16;
pub const MAX_THROTTLED_DEVICES: usize = 10_000;
/// How long a device cookie is honoured after the sign-in that issued it.
pub const DEVICE_TTL_SECS: i64 = 90 * 24 * 3600;

/// Why a password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRefusal {
    /// Checked, and not this user's password (or no such user).
    Wrong,
    /// Too many failures in this attempt's budget: not checked; try again in this many seconds.
    Delayed { retry_after_secs: i64 },
    /// The table of names is full of live records and this name is not in it: not checked
    /// (failing closed rather than forgetting a record); browsers with a device cookie for the
    /// name are not affected.
    Busy { retry_after_secs: i64 },
}

/// The budget an admitted attempt was counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The browser's own (it holds a device cookie for the name).
    Device([u8; 32]),
    /// The name's, shared by every other browser.
    Name([u8; 32]),
}

/// One budget's consecutive failures and the delay they earned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Failures {
    failures: u32,
    delayed_until: i64,
    last_failure: i64,
}

impl Failures {
    fn delayed_for(&self, now: i64) -> Option<i64> {
        (self.delayed_until > now).then(|| self.delayed_until - now)
    }

    /// Counts an attempt as failed (until it proves right), or refuses it with the seconds
    /// left of the delay. From the [`MAX_PASSWORD_FAILURES`]th failure on, each starts a delay
    /// twice as long as the last. Refused attempts do not count.
    fn admit(&mut self, now: i64) -> Result<(), i64> {
        if let Some(left) = self.delayed_for(now) {
            return Err(left);
        }
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        if let Some(beyond) = self.failures.checked_sub(MAX_PASSWORD_FAILURES) {
            let secs = FIRST_PASSWORD_DELAY_SECS
                .saturating_mul(1 << beyond.min(16))
                .min(MAX_PASSWORD_DELAY_SECS);
            self.delayed_until = now + secs;
        }
        Ok(())
    }

    /// Until when the record matters.
    fn expires_at(&self) -> i64 {
        if self.failures >= MAX_PASSWORD_FAILURES {
            self.delayed_until.max(self.last_failure) + ESCALATED_MEMORY_SECS
        } else {
            self.last_failure + FAILURE_WINDOW_SECS
        }
    }
}

fn name_key(username: &str) -> [u8; 32] {
    secret_key(username)
}

/// A device's key: the name and the cookie's random nonce (NUL cannot occur in a name).
fn device_key(username: &str, nonce: &str) -> [u8; 32] {
    secret_key(&format!("{username}\0{nonce}"))
}

/// The password throttle; see the module documentation.
#[derive(Debug)]
pub struct PasswordThrottle {
    names: ExpiringMap<[u8; 32], Failures>,
    devices: ExpiringMap<[u8; 32], Failures>,
}

impl PasswordThrottle {
    /// A throttle remembering at most `max_names` names ([`MAX_THROTTLED_NAMES`] for real).
    pub fn new(max_names: usize) -> Self {
        Self {
            names: ExpiringMap::new(max_names, max_names),
            devices: ExpiringMap::new(MAX_THROTTLED_DEVICES, MAX_DEVICES_PER_USER),
        }
    }

    /// Admits an attempt at `username` from a browser whose device cookie for that name
    /// carries `device` (its nonce), counting it as a failure until [`Self::succeed`] says
    /// otherwise; or refuses it unchecked.
    pub fn admit(
        &mut self,
        username: &str,
        device: Option<&str>,
        now: i64,
    ) -> Result<Budget, PasswordRefusal> {
        if let Some(nonce) = device {
            let key = device_key(username, nonce);
            self.devices.purge(now);
            let room =
                !self.devices.is_full() && self.devices.owned_by(username) < self.devices.per_owner_cap();
            if self.devices.get(&key, now).is_some() || room {
                return admit_in(&mut self.devices, key, Some(username), now).map(|()| Budget::Device(key));
            }
            // No room for this browser's own budget: it counts against the name's.
        }
        let key = name_key(username);
        self.names.purge(now);
        if self.names.get(&key, now).is_none() && self.names.is_full() {
            let soonest = self.names.soonest_expiry().unwrap_or(now + 1);
            let retry_after_secs = (soonest - now).clamp(1, MAX_PASSWORD_DELAY_SECS);
            tracing::warn!(
                cap = self.names.cap(),
                "password throttle full of live records: a new name was refused unchecked"
            );
            return Err(PasswordRefusal::Busy { retry_after_secs });
        }
        admit_in(&mut self.names, key, None, now).map(|()| Budget::Name(key))
    }

    /// The right password, in `budget`: it starts afresh.
    pub fn succeed(&mut self, budget: Budget) {
        match budget {
            Budget::Device(key) => self.devices.remove(&key),
            Budget::Name(key) => self.names.remove(&key),
        };
    }

    /// Seconds left of the delay an attempt at `username` with `device` would meet now.
    pub fn delayed_for(&mut self, username: &str, device: Option<&str>, now: i64) -> Option<i64> {
        if let Some(nonce) = device
            && let Some(record) = self.devices.get(&device_key(username, nonce), now)
        {
            return record.delayed_for(now);
        }
        self.names.get(&name_key(username), now)?.delayed_for(now)
    }
}

/// Admits an attempt against the record `key` of `table` (creating it), keeping its expiry.
fn admit_in(
    table: &mut ExpiringMap<[u8; 32], Failures>,
    key: [u8; 32],
    owner: Option<&str>,
    now: i64,
) -> Result<(), PasswordRefusal> {
    let admitted = match table.get_mut(&key, now) {
        Some(record) => {
            let admitted = record.admit(now);
            let expires_at = record.expires_at();
            table.set_expiry(&key, expires_at);
            admitted
        }
        None => {
            let mut record = Failures::default();
            let admitted = record.admit(now);
            // The caller made sure there is room: nothing live is evicted.
            let made_room = table.insert(key, record, owner, record.expires_at(), now);
            debug_assert_eq!(made_room, Inserted::Fitted);
            admitted
        }
    };
    admitted.map_err(|retry_after_secs| PasswordRefusal::Delayed { retry_after_secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delayed(secs: i64) -> Result<(), PasswordRefusal> {
        Err(PasswordRefusal::Delayed {
            retry_after_secs: secs,
        })
    }

    /// Admits without caring about the budget.
    fn admit(
        t: &mut PasswordThrottle,
        name: &str,
        device: Option<&str>,
        now: i64,
    ) -> Result<(), PasswordRefusal> {
        t.admit(name, device, now).map(drop)
    }

    #[test]
    fn five_failures_delay_the_budget_doubling_to_a_cap_and_success_resets() {
        let mut t = PasswordThrottle::new(100);
        let mut now = 1_800_000_000;
        for _ in 0..4 {
            assert_eq!(admit(&mut t, "alice", None, now), Ok(()));
        }
        // The fifth is still checked, and starts a 30 s delay.
        assert_eq!(admit(&mut t, "alice", None, now), Ok(()));
        assert_eq!(admit(&mut t, "alice", None, now), delayed(30));
        assert_eq!(admit(&mut t, "alice", None, now + 29), delayed(1));
        // Refused attempts do not count: after each delay one more failure doubles it.
        for expected in [60, 120, 240, 480, 900, 900] {
            now += MAX_PASSWORD_DELAY_SECS;
            assert_eq!(admit(&mut t, "alice", None, now), Ok(()));
            assert_eq!(admit(&mut t, "alice", None, now), delayed(expected));
        }
        assert_eq!(admit(&mut t, "bob", None, now), Ok(()), "bob is not affected");
        now += MAX_PASSWORD_DELAY_SECS;
        let budget = t.admit("alice", None, now).unwrap();
        t.succeed(budget);
        for _ in 0..MAX_PASSWORD_FAILURES {
            assert_eq!(admit(&mut t, "alice", None, now), Ok(()));
        }
        assert_eq!(admit(&mut t, "alice", None, now), delayed(30));
    }

    #[test]
    fn a_browser_with_a_device_cookie_keeps_its_own_budget_whatever_strangers_do() {
        let mut t = PasswordThrottle::new(100);
        let now = 1_800_000_000;
        // Strangers exhaust alice's name budget.
        for _ in 0..MAX_PASSWORD_FAILURES {
            assert_eq!(
                t.admit("alice", None, now).unwrap(),
                Budget::Name(name_key("alice"))
            );
        }
        assert_eq!(admit(&mut t, "alice", None, now), delayed(30));
        // alice's own browser is admitted, against its own budget...
        let own = t.admit("alice", Some("nonce-a"), now).unwrap();
        assert_eq!(own, Budget::Device(device_key("alice", "nonce-a")));
        t.succeed(own);
        // ...which is a budget too: her own browser's failures delay her own browser.
        for _ in 0..MAX_PASSWORD_FAILURES {
            assert_eq!(admit(&mut t, "alice", Some("nonce-a"), now), Ok(()));
        }
        assert_eq!(admit(&mut t, "alice", Some("nonce-a"), now), delayed(30));
        // Another of her browsers is not affected, nor is the name's budget changed by them.
        assert_eq!(admit(&mut t, "alice", Some("nonce-b"), now), Ok(()));
        assert_eq!(t.delayed_for("alice", None, now), Some(30));
        // Beyond the cap of browsers per user, a device counts against the name's budget.
        for i in 0..MAX_DEVICES_PER_USER {
            let _ = admit(&mut t, "alice", Some(&format!("more-{i}")), now);
        }
        assert_eq!(admit(&mut t, "alice", Some("one-too-many"), now), delayed(30));
    }

    #[test]
    fn unknown_names_are_throttled_exactly_like_known_ones() {
        let mut t = PasswordThrottle::new(100);
        let now = 1_800_000_000;
        let tries = |t: &mut PasswordThrottle, name: &str| -> Vec<_> {
            (0..=MAX_PASSWORD_FAILURES)
                .map(|_| admit(t, name, None, now))
                .collect()
        };
        let alice = tries(&mut t, "alice");
        assert_eq!(alice, tries(&mut t, "mallory"));
        assert_eq!(alice.last(), Some(&delayed(30)));
    }

    #[test]
    fn records_are_forgotten_when_they_stop_mattering_never_before() {
        let mut t = PasswordThrottle::new(100);
        let now = 1_800_000_000;
        // Four typos are forgotten 15 minutes after the last.
        for _ in 0..4 {
            admit(&mut t, "bob", None, now).unwrap();
        }
        admit(&mut t, "bob", None, now + FAILURE_WINDOW_SECS).unwrap();
        assert_eq!(t.names.len(), 1, "a fresh record, counting one");
        for _ in 0..3 {
            admit(&mut t, "bob", None, now + FAILURE_WINDOW_SECS).unwrap();
        }
        assert_eq!(admit(&mut t, "bob", None, now + FAILURE_WINDOW_SECS), Ok(()));
        // A name that earned a delay is remembered for a day after it: the next failure then
        // doubles the delay rather than starting over.
        let later = now + FAILURE_WINDOW_SECS + FIRST_PASSWORD_DELAY_SECS + ESCALATED_MEMORY_SECS - 1;
        assert_eq!(admit(&mut t, "bob", None, later), Ok(()));
        assert_eq!(admit(&mut t, "bob", None, later), delayed(60));
    }

    #[test]
    fn spraying_other_names_never_evicts_a_record_and_a_full_table_fails_closed() {
        // The real cap: alice's record survives 10,050 sprayed names, and the whole table.
        let mut t = PasswordThrottle::new(MAX_THROTTLED_NAMES);
        let now = 1_800_000_000;
        for _ in 0..MAX_PASSWORD_FAILURES {
            admit(&mut t, "alice", None, now).unwrap();
        }
        for i in 0..10_050 {
            admit(&mut t, &format!("sprayed-{i}"), None, now).unwrap();
        }
        assert_eq!(admit(&mut t, "alice", None, now), delayed(30));
        for i in 10_050..MAX_THROTTLED_NAMES - 1 {
            admit(&mut t, &format!("sprayed-{i}"), None, now).unwrap();
        }
        assert_eq!(t.names.len(), MAX_THROTTLED_NAMES);
        // Full of live records: a new name is refused unchecked, until records expire.
        assert_eq!(
            admit(&mut t, "carol", None, now),
            Err(PasswordRefusal::Busy {
                retry_after_secs: MAX_PASSWORD_DELAY_SECS
            })
        );
        assert_eq!(
            admit(&mut t, "alice", None, now + 1),
            delayed(29),
            "still remembered"
        );
        assert_eq!(
            admit(&mut t, "sprayed-7", None, now),
            Ok(()),
            "names in the table go on"
        );
        // alice's own browser is not affected by the full table.
        assert!(matches!(t.admit("alice", Some("n"), now), Ok(Budget::Device(_))));
        // When the sprayed records expire, new names are admitted again.
        assert_eq!(admit(&mut t, "carol", None, now + FAILURE_WINDOW_SECS), Ok(()));
        assert_eq!(admit(&mut t, "alice", None, now + FAILURE_WINDOW_SECS), Ok(()));
        assert_eq!(
            admit(&mut t, "alice", None, now + FAILURE_WINDOW_SECS),
            delayed(60)
        );
    }
}
