//! The state Fabrikam ID shares between requests: configuration, the one clock, keys, the
//! directory, test control's state, the server-side sessions, and the short-lived records
//! (codes, remembered browsers). Handlers sit above it; it imports no handler.

use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::cookie::Key;
use url::Url;

use super::config::{ClientRegistration, IdpConfig};
use super::control::TestControl;
use super::directory::{Directory, User};
use super::expiring::{ExpiringMap, Inserted, secret_key};
use super::keys::Keys;
use super::passkeys::{self, Passkeys};
use super::passwords::{Argon2Pool, default_slots};
use super::paths::Links;
use super::protocol::{Authentication, Level};
use super::sessions::{SessionLimits, Sessions};
use super::throttle::{PasswordRefusal, PasswordThrottle};
use crate::clock::Clock;

/// Codes live 60 seconds (RFC 6749 §4.1.2 recommends at most 10 minutes).
pub const CODE_TTL_SECS: i64 = 60;
/// Codes not yet redeemed, per user: a new one beyond it withdraws that user's oldest, so one
/// session minting codes in a loop cannot grow the table (issue 11 minted 3,500 a second).
pub const MAX_CODES_PER_USER: usize = 16;
/// Codes not yet redeemed, in all (bounded anyway by users × [`MAX_CODES_PER_USER`]).
pub const MAX_CODES: usize = 10_000;
/// A sign-in left half-way is forgotten after 15 minutes (its encrypted cookie says when).
pub const PENDING_TTL_SECS: i64 = 15 * 60;
/// The remember-browser cookie lasts 30 days.
pub const REMEMBER_TTL_SECS: i64 = 30 * 24 * 3600;
/// Remembered browsers per user; a new one beyond it forgets that user's oldest (which then
/// asks for the second factor again).
pub const MAX_REMEMBERED_PER_USER: usize = 32;
/// Remembered browsers in all.
pub const MAX_REMEMBERED: usize = 10_000;
/// How long a client may take to answer a back-channel logout, in all, and to accept the
/// connection: sign-out never waits for it, but a task and a connection do.
pub const BACKCHANNEL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
pub const BACKCHANNEL_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// ID and access tokens live 5 minutes.
pub const TOKEN_TTL_SECS: i64 = 300;

/// An issued authorization code, bound to what it was issued for (RFC 6749 §4.1.3).
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub user: String,
    pub auth: Authentication,
    pub scope: String,
    pub sid: String,
    pub expires_at: i64,
}

pub struct Idp {
    /// The issuer identifier exactly as it appears in `iss` and discovery.
    pub issuer: String,
    pub issuer_url: Url,
    /// The pages' own URLs, under the issuer's path.
    pub links: Links,
    pub clients: Vec<ClientRegistration>,
    pub mfa_at_login: bool,
    pub test_control: bool,
    pub api_audience: String,
    pub secure_cookies: bool,
    pub clock: Clock,
    pub keys: Arc<Keys>,
    pub directory: Directory,
    /// Passkeys: the WebAuthn relying party and the store; `None` at an issuer whose host is
    /// an IP address (WebAuthn needs a host name), where `phr` is not offered either.
    pub passkeys: Option<Passkeys>,
    /// The authentication classes this provider offers (discovery, `acr_values`).
    pub offered: &'static [Level],
    /// Codes by [`secret_key`], owned by their user, expiring on the real clock.
    codes: Mutex<ExpiringMap<[u8; 32], CodeGrant>>,
    /// The provider sessions (the browser's cookie holds only an id).
    pub sessions: Sessions,
    /// Sends back-channel logout tokens: [`BACKCHANNEL_TIMEOUT`], no redirects (a token goes
    /// to the registered URI and nowhere else).
    pub http: reqwest::Client,
    /// Seals the sign-in and device cookies: new per process, so sign-ins in progress and
    /// device budgets (like the sessions) do not survive a restart, as in a demo they need not.
    pub cookie_key: Key,
    /// Every argon2 hash and check: at most one per core at once, each on reused memory.
    pub passwords: Arc<Argon2Pool>,
    password_throttle: Mutex<PasswordThrottle>,
    /// Remember-browser cookie values by [`secret_key`] → the user, expiring on the real clock.
    remembered: Mutex<ExpiringMap<[u8; 32], String>>,
    control: Mutex<TestControl>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Idp {
    /// Validates `config` whole (a bad entry is an error naming it; nothing starts half
    /// configured), loads or generates the keys and hashes the users' passwords.
    pub fn new(config: &IdpConfig) -> anyhow::Result<Self> {
        config.validate()?;
        if config.users.is_empty() {
            tracing::warn!("no users are configured: nobody can sign in until test control adds some");
        }
        // The passwords are hashed before the keys are made: a generated RSA key starts on a
        // background thread, which should not compete with argon2 for the cores at start.
        let passwords = Arc::new(Argon2Pool::new(default_slots()));
        let directory = Directory::new(&config.users, Arc::clone(&passwords))?;
        let keys = Arc::new(Keys::new(&config.signing_key, &config.rsa_signing_key)?);
        let passkeys = if passkeys::supported(&config.issuer) {
            Some(Passkeys::new(&config.issuer, config.passkey_store.as_deref())?)
        } else {
            tracing::info!(
                issuer = %config.issuer,
                "passkeys and acr phr are off: WebAuthn needs the issuer at a host name (such as localhost), not an IP address"
            );
            None
        };
        Ok(Self {
            issuer: config.issuer_id.clone(),
            issuer_url: config.issuer.clone(),
            links: Links::new(&config.issuer),
            clients: config.clients.clone(),
            mfa_at_login: config.mfa_at_login,
            test_control: config.test_control,
            api_audience: config.api_audience.clone(),
            secure_cookies: config.issuer.scheme() == "https",
            clock: Clock::default(),
            keys,
            directory,
            offered: Level::offered(passkeys.is_some()),
            passkeys,
            codes: Mutex::new(ExpiringMap::new(MAX_CODES, MAX_CODES_PER_USER)),
            sessions: Sessions::new(SessionLimits {
                lifetime_secs: config.session_lifetime_secs,
                idle_secs: config.session_idle_secs,
                max_sessions: config.limits.max_sessions,
                max_per_user: config.limits.max_sessions_per_user,
            }),
            cookie_key: Key::generate(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(BACKCHANNEL_TIMEOUT)
                .connect_timeout(BACKCHANNEL_CONNECT_TIMEOUT)
                .build()?,
            passwords,
            password_throttle: Mutex::new(PasswordThrottle::new(config.limits.max_throttled_names)),
            remembered: Mutex::new(ExpiringMap::new(MAX_REMEMBERED, MAX_REMEMBERED_PER_USER)),
            control: Mutex::default(),
        })
    }

    /// The provider's time (see [`Clock::now`]).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Test control's recorded requests and waiting deviations.
    pub fn control(&self) -> MutexGuard<'_, TestControl> {
        lock(&self.control)
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientRegistration> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    /// Stores a code grant and returns the code: 256 random bits. The table is kept by expiry
    /// (O(log n) a code, never a scan); a user's 17th outstanding code withdraws their oldest.
    pub fn issue_code(&self, grant: CodeGrant) -> String {
        let code = crate::web::random_token(32);
        let now = self.clock.real();
        let user = grant.user.clone();
        let made_room =
            lock(&self.codes).insert(secret_key(&code), grant, Some(&user), now + CODE_TTL_SECS, now);
        match made_room {
            Inserted::Fitted => {}
            Inserted::EvictedOwners(..) => {
                tracing::info!(%user, "too many codes outstanding: the user's oldest was withdrawn");
            }
            Inserted::EvictedSoonest(..) => {
                tracing::warn!(
                    cap = MAX_CODES,
                    "code table full: the code expiring soonest was withdrawn"
                );
            }
        }
        code
    }

    /// Takes a code out: whatever happens next, it cannot be redeemed twice.
    pub fn take_code(&self, code: &str) -> Option<CodeGrant> {
        let key = secret_key(code);
        let mut codes = lock(&self.codes);
        let live = codes.expiry(&key).is_some_and(|at| at > self.clock.real());
        codes.remove(&key).filter(|_| live)
    }

    /// Checks a password. First the attempt is admitted by the throttle (see
    /// [`super::throttle`]): against the budget of this browser if it holds a device cookie
    /// for the name (`device`, the cookie's nonce), else against the name's; an attempt inside
    /// a delay, or at a new name while the throttle is full, is refused with no argon2 work.
    /// Then argon2 runs on the pool (at most one check per core at once, each on reused
    /// memory; see [`Argon2Pool::verify`]). Unknown names cost the same as known ones.
    pub async fn check_password(
        self: Arc<Self>,
        username: String,
        password: String,
        device: Option<String>,
    ) -> anyhow::Result<Result<User, PasswordRefusal>> {
        let now = self.clock.real();
        let budget = match self.throttle().admit(&username, device.as_deref(), now) {
            Ok(budget) => budget,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let (user, hash) = self.directory.credentials(&username);
        let ok = Arc::clone(&self.passwords).verify(hash, password).await?;
        match user.filter(|_| ok) {
            Some(user) => {
                self.throttle().succeed(budget);
                Ok(Ok(user))
            }
            None => Ok(Err(PasswordRefusal::Wrong)),
        }
    }

    /// Seconds left of the delay the next attempt at `username` from this browser (`device`:
    /// its device cookie's nonce for the name) would meet.
    pub fn password_delay(&self, username: &str, device: Option<&str>) -> Option<i64> {
        self.throttle().delayed_for(username, device, self.clock.real())
    }

    fn throttle(&self) -> MutexGuard<'_, PasswordThrottle> {
        lock(&self.password_throttle)
    }

    /// A new remember-browser value for `user`.
    pub fn remember_browser(&self, user: &str) -> String {
        let value = crate::web::random_token(32);
        let now = self.clock.real();
        let key = secret_key(&value);
        lock(&self.remembered).insert(key, user.to_owned(), Some(user), now + REMEMBER_TTL_SECS, now);
        value
    }

    /// Forgets a remember-browser value (the person unticked the box).
    pub fn forget_browser(&self, value: &str) {
        lock(&self.remembered).remove(&secret_key(value));
    }

    /// Whether the remember-browser cookie value was issued to `user` and is still valid.
    pub fn is_remembered(&self, value: &str, user: &str) -> bool {
        lock(&self.remembered)
            .get(&secret_key(value), self.clock.real())
            .is_some_and(|u| u == user)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use secrecy::SecretString;

    /// A configuration with one client `c` whose public URL is `rp`.
    pub(crate) fn test_config(rp: &str) -> IdpConfig {
        IdpConfig::demo(
            Url::parse("http://127.0.0.1:9090").unwrap(),
            ClientRegistration::for_intranet("c", SecretString::from("s"), &Url::parse(rp).unwrap()),
        )
    }

    fn idp() -> Arc<Idp> {
        Arc::new(Idp::new(&test_config("http://127.0.0.1:8080/")).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_guesses_at_one_name_are_cut_off_before_argon2() {
        let idp = idp();
        let checks: Vec<_> = (0..20)
            .map(|_| tokio::spawn(Arc::clone(&idp).check_password("alice".into(), "wrong".into(), None)))
            .collect();
        let mut wrong = 0;
        for check in checks {
            match check.await.unwrap().unwrap() {
                Err(PasswordRefusal::Wrong) => wrong += 1,
                Err(PasswordRefusal::Delayed { retry_after_secs }) => {
                    assert!((1..=30).contains(&retry_after_secs), "{retry_after_secs}");
                }
                other => panic!("a wrong password was not refused as wrong or delayed: {other:?}"),
            }
        }
        // Each attempt counts when admitted, so at most five hashes ever ran for the name.
        assert_eq!(wrong, crate::idp::throttle::MAX_PASSWORD_FAILURES);
        let right = Arc::clone(&idp).check_password("alice".into(), "alice-password".into(), None);
        assert!(matches!(
            right.await.unwrap(),
            Err(PasswordRefusal::Delayed { .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_checks_run_at_most_one_per_core_at_once() {
        let idp = idp();
        let limit = idp.passwords.slots();
        // Distinct names, so the per-name throttle lets every check through to argon2.
        let checks: Vec<_> = (0..limit * 3 + 4)
            .map(|i| tokio::spawn(Arc::clone(&idp).check_password(format!("user-{i}"), "wrong".into(), None)))
            .collect();
        for check in checks {
            assert_eq!(check.await.unwrap().unwrap().unwrap_err(), PasswordRefusal::Wrong);
        }
        let peak = idp.passwords.peak_concurrent();
        assert!((1..=limit).contains(&peak), "peak {peak}, limit {limit}");
        assert!(
            idp.passwords.buffers_allocated() <= limit,
            "one buffer per permit"
        );
    }
}
