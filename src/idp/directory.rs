//! The directory: the people Fabrikam ID signs in ([`UserSpec`]s from the configuration, or
//! changed at run time through test control), their argon2 password hashes, their TOTP secrets
//! (a user without one enrols it at their first step-up) and, per user, the last TOTP step
//! accepted and the throttle on wrong codes.
//!
//! Times are Unix seconds of the real clock ([`crate::clock::Clock::real`]), passed in by the
//! caller: TOTP codes and throttles follow the wall clock, never the test-control offset.
//!
//! Password guesses are throttled in [`super::throttle`]; the directory only holds the hashes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use totp_rs::{Builder, Secret, Totp};

use super::config::{UserSpec, present};
use super::passwords::Argon2Pool;

/// The issuer shown in authenticator apps.
pub const TOTP_ISSUER: &str = "Fabrikam ID";

/// Consecutive wrong codes after which a user's code checks are locked.
pub const MAX_CODE_FAILURES: u32 = 5;
/// The first lock; each further lock doubles it, up to [`MAX_LOCK_SECS`].
pub const FIRST_LOCK_SECS: i64 = 60;
pub const MAX_LOCK_SECS: i64 = 15 * 60;

/// A person in the directory, as the tokens describe them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub name: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    /// Further claims for the ID token and userinfo.
    pub claims: Map<String, Value>,
}

struct Entry {
    user: User,
    password_hash: String,
    totp: Option<Secret>,
    /// RFC 6238 §5.2: a code is accepted at most once; only later steps pass.
    last_step: Option<u64>,
    throttle: Throttle,
}

/// Per-user throttling of second-factor codes (RFC 4226 §7.3, RFC 6238 §5.2; OWASP ASVS 4.0
/// V2.2.1): a 6-digit code falls to about a million guesses, so after
/// [`MAX_CODE_FAILURES`] consecutive wrong codes every check is refused for a while, and each
/// lock doubles the next one. Times are Unix seconds on the real clock, like the TOTP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Throttle {
    failures: u32,
    locks: u32,
    locked_until: i64,
}

impl Throttle {
    /// Seconds left of the current lock, if any.
    fn locked_for(&self, now: i64) -> Option<i64> {
        (self.locked_until > now).then(|| self.locked_until - now)
    }

    fn fail(&mut self, now: i64) {
        self.failures += 1;
        if self.failures >= MAX_CODE_FAILURES {
            let secs = FIRST_LOCK_SECS
                .saturating_mul(1 << self.locks.min(16))
                .min(MAX_LOCK_SECS);
            self.locked_until = now + secs;
            self.locks = self.locks.saturating_add(1);
            self.failures = 0;
        }
    }

    fn succeed(&mut self) {
        *self = Self::default();
    }
}

/// Why a TOTP code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpRefusal {
    /// Not a code of this secret within ±1 step.
    Wrong,
    /// A valid code whose step was already used (or an older one).
    Replayed,
    /// The user has no second factor yet.
    NotEnrolled,
    /// Enrolment for a user who already has a second factor.
    AlreadyEnrolled,
    /// Too many wrong codes: no code is checked for this many more seconds.
    Locked { retry_after_secs: i64 },
}

impl TotpRefusal {
    /// A guess that was checked and failed: it counts towards the throttle.
    pub fn is_failed_guess(self) -> bool {
        matches!(self, Self::Wrong | Self::Replayed)
    }
}

pub struct Directory {
    entries: Mutex<HashMap<String, Entry>>,
    /// A hash to verify against when the user is unknown, so both paths cost the same.
    dummy_hash: String,
    /// Every argon2 hash and check runs on this pool's memory.
    pool: Arc<Argon2Pool>,
}

/// An RFC 6238 TOTP with the defaults (SHA-1, 6 digits, 30 s) and ±1 step of skew.
pub fn totp(secret: &Secret, account: &str) -> Option<Totp> {
    Builder::new()
        .with_secret(secret.clone())
        .with_skew(1)
        .with_issuer(Some(TOTP_ISSUER))
        .with_account_name(account)
        .build()
        .ok()
}

/// A user ready for the directory: the password hashed (argon2: call it off the async
/// runtime), the TOTP secret decoded. The spec must have passed [`UserSpec::validate`].
pub struct NewUser {
    user: User,
    password_hash: String,
    totp: Option<Secret>,
}

impl NewUser {
    pub fn from_spec(spec: &UserSpec, pool: &Argon2Pool) -> anyhow::Result<Self> {
        spec.validate()
            .map_err(|(field, problem)| anyhow::anyhow!("{field}: {problem}"))?;
        let password_hash = match (&spec.password, &spec.password_hash) {
            (Some(password), _) => pool.hash(password.expose_secret())?,
            (None, Some(hash)) => hash.clone(),
            (None, None) => anyhow::bail!("password: is missing"),
        };
        let totp = spec
            .totp_secret
            .as_deref()
            .map(Secret::try_from_base32)
            .transpose()
            .map_err(|e| anyhow::anyhow!("totp_secret: {e}"))?;
        Ok(Self {
            user: User {
                username: spec.username.clone(),
                name: spec.name.clone().unwrap_or_else(|| spec.username.clone()),
                email: spec.email.clone(),
                roles: spec.roles.clone(),
                claims: spec.claims.clone(),
            },
            password_hash,
            totp,
        })
    }
}

/// What test control shows of a user: everything but the password.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserView {
    pub username: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub roles: Vec<String>,
    #[serde(default)]
    pub claims: Map<String, Value>,
    /// The base32 TOTP secret, or `null` while the user has none (they enrol at their next
    /// step-up). Shown so a test can compute codes; test control is never on in production.
    pub totp_secret: Option<String>,
}

/// A change to a user: every field is optional; `totp_secret: null` removes the second
/// factor (the user enrols a new one at their next step-up), a claim set to `null` is removed.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub email: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub claims: Map<String, Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub totp_secret: Option<Option<String>>,
}

impl std::fmt::Debug for UserPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPatch")
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field(
                "totp_secret",
                &self
                    .totp_secret
                    .as_ref()
                    .map(|s| s.as_ref().map(|_| "[REDACTED]")),
            )
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// A directory of `users`, whose passwords are hashed and checked on `pool`'s memory
    /// (hashing each password: call it off the async runtime).
    pub fn new(users: &[UserSpec], pool: Arc<Argon2Pool>) -> anyhow::Result<Self> {
        let mut entries = HashMap::new();
        for spec in users {
            let new = NewUser::from_spec(spec, &pool)
                .map_err(|e| anyhow::anyhow!("user {:?}: {e}", spec.username))?;
            entries.insert(spec.username.clone(), Entry::new(new));
        }
        Ok(Self {
            entries: Mutex::new(entries),
            dummy_hash: super::passwords::DUMMY_HASH.to_owned(),
            pool,
        })
    }

    /// The demo users; passwords are `<user>-password`.
    pub fn demo() -> anyhow::Result<Self> {
        Self::new(&UserSpec::demo_users(), Arc::new(Argon2Pool::new(1)))
    }

    /// The argon2 pool the directory hashes with (for [`NewUser::from_spec`]).
    pub fn pool(&self) -> &Arc<Argon2Pool> {
        &self.pool
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn user(&self, username: &str) -> Option<User> {
        self.lock().get(username).map(|e| e.user.clone())
    }

    /// Every user, by name.
    pub fn views(&self) -> Vec<UserView> {
        let mut views: Vec<UserView> = self.lock().values().map(Entry::view).collect();
        views.sort_by(|a, b| a.username.cmp(&b.username));
        views
    }

    pub fn view(&self, username: &str) -> Option<UserView> {
        self.lock().get(username).map(Entry::view)
    }

    /// Every extra claim name any user has, for discovery's `claims_supported`.
    pub fn claim_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .lock()
            .values()
            .flat_map(|e| e.user.claims.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Adds a user or replaces one with the same name (their throttles and used TOTP steps
    /// start afresh; sessions signed in as them stay). `true` if the user is new.
    pub fn put(&self, new: NewUser) -> bool {
        let name = new.user.username.clone();
        self.lock().insert(name, Entry::new(new)).is_none()
    }

    /// Changes a user; `None` if there is none of that name. Hashes a new password: call it
    /// off the async runtime.
    pub fn patch(&self, username: &str, patch: &UserPatch) -> Option<anyhow::Result<UserView>> {
        // Hash first, outside the lock, and validate the result as a whole.
        let mut spec = {
            let entries = self.lock();
            let entry = entries.get(username)?;
            entry.spec_without_password()
        };
        if let Some(name) = &patch.name {
            spec.name = Some(name.clone());
        }
        if let Some(email) = &patch.email {
            spec.email = email.clone();
        }
        if let Some(roles) = &patch.roles {
            spec.roles = roles.clone();
        }
        for (k, v) in &patch.claims {
            if v.is_null() {
                spec.claims.remove(k);
            } else {
                spec.claims.insert(k.clone(), v.clone());
            }
        }
        if let Some(totp) = &patch.totp_secret {
            spec.totp_secret = totp.clone();
        }
        let new_hash = match &patch.password {
            Some(password) => {
                spec.password = Some(password.as_str().into());
                spec.password_hash = None;
                true
            }
            None => false,
        };
        if let Err((field, problem)) = spec.validate() {
            return Some(Err(anyhow::anyhow!("{field}: {problem}")));
        }
        let hashed = if new_hash {
            match spec.password.as_ref().map(|p| self.pool.hash(p.expose_secret())) {
                Some(Ok(h)) => Some(h),
                Some(Err(e)) => return Some(Err(e)),
                None => None,
            }
        } else {
            None
        };
        let mut entries = self.lock();
        let entry = entries.get_mut(username)?;
        let totp_changed = patch.totp_secret.is_some();
        entry.user = User {
            username: spec.username.clone(),
            name: spec.name.clone().unwrap_or_else(|| spec.username.clone()),
            email: spec.email.clone(),
            roles: spec.roles.clone(),
            claims: spec.claims.clone(),
        };
        if let Some(h) = hashed {
            entry.password_hash = h;
        }
        if totp_changed {
            entry.totp = spec
                .totp_secret
                .as_deref()
                .and_then(|s| Secret::try_from_base32(s).ok());
            entry.last_step = None;
            entry.throttle = Throttle::default();
        }
        Some(Ok(entry.view()))
    }

    /// Removes a user; `true` if there was one.
    pub fn remove(&self, username: &str) -> bool {
        self.lock().remove(username).is_some()
    }

    /// The user called `username` (if any) and the PHC string to check a password against:
    /// theirs, or for an unknown name a dummy hash, so both paths cost the same argon2 work.
    pub fn credentials(&self, username: &str) -> (Option<User>, String) {
        match self.lock().get(username) {
            Some(e) => (Some(e.user.clone()), e.password_hash.clone()),
            None => (None, self.dummy_hash.clone()),
        }
    }

    /// The user if `password` is theirs (blocking, on the calling thread, unthrottled; the
    /// server goes through `Idp::check_password`, which admits the attempt and waits for an
    /// argon2 permit).
    pub fn check_password(&self, username: &str, password: &str) -> Option<User> {
        let (user, hash) = self.credentials(username);
        let ok = self.pool.verify_now(&hash, password);
        user.filter(|_| ok)
    }

    pub fn has_totp(&self, username: &str) -> bool {
        self.lock().get(username).is_some_and(|e| e.totp.is_some())
    }

    /// Checks a TOTP code at `now` (RFC 6238 §5.2: ±1 step, each step once).
    pub fn check_totp(&self, username: &str, code: &str, now: i64) -> Result<(), TotpRefusal> {
        let mut entries = self.lock();
        let entry = entries.get_mut(username).ok_or(TotpRefusal::NotEnrolled)?;
        let secret = entry.totp.as_ref().ok_or(TotpRefusal::NotEnrolled)?;
        // Locked: refused unchecked, so a lock cannot be used to test guesses either.
        if let Some(retry_after_secs) = entry.throttle.locked_for(now) {
            return Err(TotpRefusal::Locked { retry_after_secs });
        }
        let checked = match check_code(secret, username, code, now) {
            None => Err(TotpRefusal::Wrong),
            Some(step) if entry.last_step.is_some_and(|last| step <= last) => Err(TotpRefusal::Replayed),
            Some(step) => Ok(step),
        };
        entry.record(checked, now)
    }

    /// Seconds left of the user's code lock, if their code checks are locked at `now`.
    pub fn code_lock(&self, username: &str, now: i64) -> Option<i64> {
        self.lock().get(username).and_then(|e| e.throttle.locked_for(now))
    }

    /// Enrols `secret` for a user without a second factor if `code` proves they hold it.
    pub fn enroll(&self, username: &str, secret: &Secret, code: &str, now: i64) -> Result<(), TotpRefusal> {
        let mut entries = self.lock();
        let entry = entries.get_mut(username).ok_or(TotpRefusal::NotEnrolled)?;
        // Checked under the same lock as the store: two enrolments racing (two tabs, or an
        // attacker with the password) cannot replace a secret already set up.
        if entry.totp.is_some() {
            return Err(TotpRefusal::AlreadyEnrolled);
        }
        if let Some(retry_after_secs) = entry.throttle.locked_for(now) {
            return Err(TotpRefusal::Locked { retry_after_secs });
        }
        let checked = check_code(secret, username, code, now).ok_or(TotpRefusal::Wrong);
        entry.record(checked, now)?;
        entry.totp = Some(secret.clone());
        Ok(())
    }
}

impl Entry {
    fn new(new: NewUser) -> Self {
        Self {
            user: new.user,
            password_hash: new.password_hash,
            totp: new.totp,
            last_step: None,
            throttle: Throttle::default(),
        }
    }

    fn view(&self) -> UserView {
        UserView {
            username: self.user.username.clone(),
            name: self.user.name.clone(),
            email: self.user.email.clone(),
            roles: self.user.roles.clone(),
            claims: self.user.claims.clone(),
            totp_secret: self.totp.as_ref().map(Secret::to_base32),
        }
    }

    /// The user as a spec, with the stored hash standing in for the password.
    fn spec_without_password(&self) -> UserSpec {
        UserSpec {
            username: self.user.username.clone(),
            password: None,
            password_hash: Some(self.password_hash.clone()),
            name: Some(self.user.name.clone()),
            email: self.user.email.clone(),
            roles: self.user.roles.clone(),
            claims: self.user.claims.clone(),
            totp_secret: self.totp.as_ref().map(Secret::to_base32),
        }
    }

    /// Counts a checked code: success resets the throttle and uses up the step.
    fn record(&mut self, checked: Result<u64, TotpRefusal>, now: i64) -> Result<(), TotpRefusal> {
        match checked {
            Ok(step) => {
                self.last_step = Some(step);
                self.throttle.succeed();
                Ok(())
            }
            Err(refusal) => {
                self.throttle.fail(now);
                Err(refusal)
            }
        }
    }
}

/// The matched step, if `code` is a valid code of `secret` at `now` ± 1 step.
fn check_code(secret: &Secret, account: &str, code: &str, now: i64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret, account)?.check(code, u64::try_from(now).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idp::config::{ALICE_TOTP, BOB_TOTP};

    fn code_at(b32: &str, t: i64) -> String {
        let secret = Secret::try_from_base32(b32).unwrap();
        totp(&secret, "x").unwrap().generate(t as u64).to_string()
    }

    #[test]
    fn passwords_are_checked_against_argon2_hashes() {
        let d = Directory::demo().unwrap();
        assert!(d.check_password("alice", "alice-password").is_some());
        assert!(d.check_password("alice", "bob-password").is_none());
        assert!(d.check_password("mallory", "mallory-password").is_none());
        assert!(d.lock()["alice"].password_hash.starts_with("$argon2"));
    }

    #[test]
    fn a_totp_step_is_accepted_once_and_older_steps_never() {
        let d = Directory::demo().unwrap();
        let t = 1_800_000_000;
        let now = code_at(ALICE_TOTP, t);
        let before = code_at(ALICE_TOTP, t - 30);
        assert_eq!(d.check_totp("alice", "000000x", t), Err(TotpRefusal::Wrong));
        assert_eq!(d.check_totp("alice", &now, t), Ok(()));
        assert_eq!(d.check_totp("alice", &now, t), Err(TotpRefusal::Replayed));
        assert_eq!(d.check_totp("alice", &before, t), Err(TotpRefusal::Replayed));
        assert_eq!(d.check_totp("alice", &code_at(ALICE_TOTP, t + 30), t), Ok(()));
        assert_eq!(
            d.check_totp("alice", &code_at(ALICE_TOTP, t + 90), t),
            Err(TotpRefusal::Wrong)
        );
        assert_eq!(d.check_totp("carol", &now, t), Err(TotpRefusal::NotEnrolled));
    }

    #[test]
    fn five_wrong_codes_lock_the_user_with_a_doubling_capped_lock_and_success_resets() {
        let d = Directory::demo().unwrap();
        let mut t = 1_800_000_000;
        let wrong = |t: i64| code_at(ALICE_TOTP, t + 300);
        let locked = |secs| {
            Err(TotpRefusal::Locked {
                retry_after_secs: secs,
            })
        };
        // Four wrong codes, then the right one: no lock, and the count starts again.
        for _ in 0..4 {
            assert_eq!(d.check_totp("alice", &wrong(t), t), Err(TotpRefusal::Wrong));
        }
        assert_eq!(d.check_totp("alice", &code_at(ALICE_TOTP, t), t), Ok(()));
        t += 30;
        for _ in 0..4 {
            assert_eq!(d.check_totp("alice", &wrong(t), t), Err(TotpRefusal::Wrong));
        }
        // The fifth in a row locks; the right code is then refused unchecked (and not used up).
        assert_eq!(d.check_totp("alice", &wrong(t), t), Err(TotpRefusal::Wrong));
        let right = code_at(ALICE_TOTP, t);
        assert_eq!(d.check_totp("alice", &right, t), locked(60));
        assert_eq!(d.check_totp("alice", &right, t + 59), locked(1));
        // bob is not affected.
        assert_eq!(d.check_totp("bob", &code_at(BOB_TOTP, t), t), Ok(()));
        // Each further lock doubles: 120, 240, 480, then 900 s at most.
        for expected in [120, 240, 480, 900, 900] {
            t += 2_000;
            for _ in 0..MAX_CODE_FAILURES {
                assert_eq!(d.check_totp("alice", &wrong(t), t), Err(TotpRefusal::Wrong));
            }
            assert_eq!(
                d.check_totp("alice", &code_at(ALICE_TOTP, t), t),
                locked(expected)
            );
        }
        // After the lock, the right code passes and resets everything.
        t += MAX_LOCK_SECS;
        assert_eq!(d.check_totp("alice", &code_at(ALICE_TOTP, t), t), Ok(()));
        assert_eq!(d.lock()["alice"].throttle, Throttle::default());
        // Replays count as failed guesses too.
        for _ in 0..MAX_CODE_FAILURES {
            assert_eq!(
                d.check_totp("alice", &code_at(ALICE_TOTP, t), t),
                Err(TotpRefusal::Replayed)
            );
        }
        assert_eq!(d.check_totp("alice", &code_at(ALICE_TOTP, t + 30), t), locked(60));
    }

    #[test]
    fn enrolment_never_replaces_a_second_factor_already_set_up() {
        let d = Directory::demo().unwrap();
        let t = 1_800_000_000;
        let first = Secret::try_from_base32(BOB_TOTP).unwrap();
        let second = Secret::try_from_base32(ALICE_TOTP).unwrap();
        assert_eq!(d.enroll("carol", &first, &code_at(BOB_TOTP, t), t), Ok(()));
        // A second enrolment that raced past the page's check is refused under the lock.
        assert_eq!(
            d.enroll("carol", &second, &code_at(ALICE_TOTP, t + 30), t + 30),
            Err(TotpRefusal::AlreadyEnrolled)
        );
        assert_eq!(d.check_totp("carol", &code_at(BOB_TOTP, t + 30), t + 30), Ok(()));
        assert_eq!(
            d.enroll("alice", &second, &code_at(ALICE_TOTP, t), t),
            Err(TotpRefusal::AlreadyEnrolled)
        );
    }
}
