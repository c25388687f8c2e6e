//! The state Fabrikam ID shares between requests: configuration, the one clock, keys, the
//! directory, test control's state, and the short-lived server-side records (codes, pending
//! sign-ins, remembered browsers). Handlers sit above it; it imports no handler.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use url::Url;

use super::clock::Clock;
use super::config::{ClientRegistration, IdpConfig};
use super::control::TestControl;
use super::directory::{Directory, PasswordRefusal, User};
use super::expiring::{ExpiringMap, Inserted, secret_key};
use super::keys::Keys;
use super::passwords::{Argon2Pool, default_slots};
use super::paths::Links;
use super::protocol::{Authentication, AuthorizeRequest, Progress};

/// Codes live 60 seconds (RFC 6749 §4.1.2 recommends at most 10 minutes).
pub const CODE_TTL_SECS: i64 = 60;
/// Codes not yet redeemed, per user: a new one beyond it withdraws that user's oldest, so one
/// session minting codes in a loop cannot grow the table (issue 11 minted 3,500 a second).
pub const MAX_CODES_PER_USER: usize = 16;
/// Codes not yet redeemed, in all (bounded anyway by users × [`MAX_CODES_PER_USER`]).
pub const MAX_CODES: usize = 10_000;
/// A sign-in left half-way is forgotten after 15 minutes.
pub const PENDING_TTL_SECS: i64 = 15 * 60;
/// The remember-browser cookie lasts 30 days.
pub const REMEMBER_TTL_SECS: i64 = 30 * 24 * 3600;
/// Remembered browsers per user; a new one beyond it forgets that user's oldest (which then
/// asks for the second factor again).
pub const MAX_REMEMBERED_PER_USER: usize = 32;
/// Remembered browsers in all.
pub const MAX_REMEMBERED: usize = 10_000;
/// ID and access tokens live 5 minutes.
pub const TOKEN_TTL_SECS: i64 = 300;
/// At most this many sign-ins are pending at once; beyond it the oldest is forgotten, so
/// anonymous `/authorize` requests cannot grow the table without bound (OWASP API4:2023,
/// unrestricted resource consumption). Evicting rather than refusing keeps new sign-ins
/// working during a flood, which then has to outpace a person typing to hurt them.
pub const MAX_PENDING: usize = 10_000;
/// Wrong codes one pending sign-in may take before it is ended (the per-user lock is in
/// the directory; this bounds one sign-in even across locks).
pub const MAX_CODE_FAILURES_PER_SIGN_IN: u32 = 10;

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

/// A sign-in in progress: the validated request and what the person has done so far.
#[derive(Debug, Clone)]
pub struct Pending {
    pub request: AuthorizeRequest,
    pub progress: Progress,
    created_at: i64,
    code_failures: u32,
}

/// The pending sign-ins: a map by id plus the ids oldest first, so expiry and the cap cost
/// O(1) amortized per insert instead of a scan of the whole table under the lock.
struct PendingTable {
    entries: HashMap<String, Pending>,
    /// (created_at, id), oldest first. Ids taken out early stay until they reach the front
    /// or a compaction drops them; every id in `entries` is here.
    order: VecDeque<(i64, String)>,
    cap: usize,
}

impl PendingTable {
    fn new(cap: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    fn insert(&mut self, id: String, request: AuthorizeRequest, now: i64) {
        let mut evicted = 0usize;
        while let Some((created_at, _)) = self.order.front() {
            let expired = now - created_at >= PENDING_TTL_SECS;
            if !expired && self.entries.len() < self.cap {
                break;
            }
            if let Some((_, old)) = self.order.pop_front()
                && self.entries.remove(&old).is_some()
                && !expired
            {
                evicted += 1;
            }
        }
        if evicted > 0 {
            tracing::warn!(
                evicted,
                cap = self.cap,
                "pending sign-ins full: the oldest were forgotten"
            );
        }
        // Finished sign-ins leave their ids behind; drop them once they outnumber the cap.
        if self.order.len() >= 2 * self.cap {
            let entries = &self.entries;
            self.order.retain(|(_, id)| entries.contains_key(id));
        }
        self.entries.insert(
            id.clone(),
            Pending {
                request,
                progress: Progress::default(),
                created_at: now,
                code_failures: 0,
            },
        );
        self.order.push_back((now, id));
    }

    fn get_mut(&mut self, id: &str, now: i64) -> Option<&mut Pending> {
        self.entries
            .get_mut(id)
            .filter(|p| now - p.created_at < PENDING_TTL_SECS)
    }

    fn take(&mut self, id: &str) -> Option<Pending> {
        self.entries.remove(id)
    }
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
    /// Codes by [`secret_key`], owned by their user, expiring on the real clock.
    codes: Mutex<ExpiringMap<[u8; 32], CodeGrant>>,
    pending: Mutex<PendingTable>,
    /// Every argon2 hash and check: at most one per core at once, each on reused memory.
    pub passwords: Arc<Argon2Pool>,
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
        for client in config
            .clients
            .iter()
            .filter(|c| c.backchannel_logout_uri.is_some())
        {
            tracing::warn!(
                client = %client.client_id,
                "backchannel_logout_uri is recorded, but Fabrikam ID does not send logout tokens yet"
            );
        }
        if config.users.is_empty() {
            tracing::warn!("no users are configured: nobody can sign in until test control adds some");
        }
        // The passwords are hashed before the keys are made: a generated RSA key starts on a
        // background thread, which should not compete with argon2 for the cores at start.
        let passwords = Arc::new(Argon2Pool::new(default_slots()));
        let directory = Directory::new(&config.users, Arc::clone(&passwords))?;
        let keys = Arc::new(Keys::new(&config.signing_key, &config.rsa_signing_key)?);
        Ok(Self {
            issuer: crate::config::issuer_id(&config.issuer),
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
            codes: Mutex::new(ExpiringMap::new(MAX_CODES, MAX_CODES_PER_USER)),
            pending: Mutex::new(PendingTable::new(MAX_PENDING)),
            passwords,
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

    /// Checks a password: first the attempt is admitted by the per-name throttle (a name
    /// whose failures earned a delay is refused with no argon2 work), then argon2 runs on the
    /// pool (at most one check per core at once, each on reused memory; see
    /// [`Argon2Pool::verify`]). Unknown names cost the same as known ones.
    pub async fn check_password(
        self: Arc<Self>,
        username: String,
        password: String,
    ) -> anyhow::Result<Result<User, PasswordRefusal>> {
        if let Err(refusal) = self
            .directory
            .admit_password_attempt(&username, self.clock.real())
        {
            return Ok(Err(refusal));
        }
        let (user, hash) = self.directory.credentials(&username);
        let ok = Arc::clone(&self.passwords).verify(hash, password).await?;
        match user.filter(|_| ok) {
            Some(user) => {
                self.directory.password_succeeded(&username);
                Ok(Ok(user))
            }
            None => Ok(Err(PasswordRefusal::Wrong)),
        }
    }

    pub fn add_pending(&self, request: AuthorizeRequest) -> String {
        let id = crate::web::random_token(32);
        lock(&self.pending).insert(id.clone(), request, self.clock.real());
        id
    }

    pub fn pending(&self, id: &str) -> Option<Pending> {
        lock(&self.pending)
            .get_mut(id, self.clock.real())
            .map(|p| p.clone())
    }

    pub fn update_pending(&self, id: &str, f: impl FnOnce(&mut Progress)) {
        if let Some(p) = lock(&self.pending).get_mut(id, self.clock.real()) {
            f(&mut p.progress);
        }
    }

    /// Counts a wrong code against a pending sign-in; after
    /// [`MAX_CODE_FAILURES_PER_SIGN_IN`] it is ended and `false` says so.
    pub fn pending_code_failed(&self, id: &str) -> bool {
        let mut pending = lock(&self.pending);
        let Some(p) = pending.get_mut(id, self.clock.real()) else {
            return false;
        };
        p.code_failures += 1;
        if p.code_failures >= MAX_CODE_FAILURES_PER_SIGN_IN {
            pending.take(id);
            return false;
        }
        true
    }

    pub fn take_pending(&self, id: &str) -> Option<Pending> {
        lock(&self.pending).take(id)
    }

    /// A new remember-browser value for `user`.
    pub fn remember_browser(&self, user: &str) -> String {
        let value = crate::web::random_token(32);
        let now = self.clock.real();
        let key = secret_key(&value);
        lock(&self.remembered).insert(key, user.to_owned(), Some(user), now + REMEMBER_TTL_SECS, now);
        value
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
    use crate::idp::protocol::Requirements;
    use secrecy::SecretString;

    fn request(state: &str) -> AuthorizeRequest {
        AuthorizeRequest {
            client_id: "c".into(),
            redirect_uri: "http://rp.example/callback".into(),
            state: Some(state.into()),
            nonce: None,
            scope: "openid".into(),
            code_challenge: "x".into(),
            requirements: Requirements::default(),
        }
    }

    #[test]
    fn the_pending_table_is_capped_by_evicting_the_oldest() {
        let mut table = PendingTable::new(3);
        for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
            table.insert(id.into(), request(id), 1_000 + i as i64);
        }
        assert_eq!(table.entries.len(), 3);
        assert!(table.get_mut("a", 1_010).is_none(), "the oldest was evicted");
        for id in ["b", "c", "d"] {
            assert!(table.get_mut(id, 1_010).is_some(), "{id} stays");
        }
    }

    #[test]
    fn pending_sign_ins_expire_and_finished_ones_do_not_pile_up() {
        let mut table = PendingTable::new(4);
        table.insert("old".into(), request("old"), 1_000);
        let later = 1_000 + PENDING_TTL_SECS;
        assert!(table.get_mut("old", later).is_none(), "expired on read");
        table.insert("new".into(), request("new"), later);
        assert!(!table.entries.contains_key("old"), "expired on insert");
        // Sign-ins that finish at once leave ids behind; compaction keeps them bounded.
        for i in 0..1_000 {
            let id = format!("done-{i}");
            table.insert(id.clone(), request(&id), later);
            assert!(table.take(&id).is_some());
        }
        assert!(table.order.len() <= 2 * table.cap, "{}", table.order.len());
        assert!(table.get_mut("new", later).is_some());
        assert!(
            table
                .entries
                .keys()
                .all(|k| table.order.iter().any(|(_, id)| id == k))
        );
    }

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

    #[test]
    fn ten_wrong_codes_end_a_pending_sign_in() {
        let idp = idp();
        let id = idp.add_pending(request("s"));
        for _ in 1..MAX_CODE_FAILURES_PER_SIGN_IN {
            assert!(idp.pending_code_failed(&id));
        }
        assert!(!idp.pending_code_failed(&id));
        assert!(idp.pending(&id).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_guesses_at_one_name_are_cut_off_before_argon2() {
        let idp = idp();
        let checks: Vec<_> = (0..20)
            .map(|_| tokio::spawn(Arc::clone(&idp).check_password("alice".into(), "wrong".into())))
            .collect();
        let mut wrong = 0;
        for check in checks {
            match check.await.unwrap().unwrap() {
                Err(PasswordRefusal::Wrong) => wrong += 1,
                Err(PasswordRefusal::Delayed { retry_after_secs }) => {
                    assert!((1..=30).contains(&retry_after_secs), "{retry_after_secs}");
                }
                Ok(_) => panic!("a wrong password was accepted"),
            }
        }
        // Each attempt counts when admitted, so at most five hashes ever ran for the name.
        assert_eq!(wrong, crate::idp::directory::MAX_PASSWORD_FAILURES);
        let right = Arc::clone(&idp).check_password("alice".into(), "alice-password".into());
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
            .map(|i| tokio::spawn(Arc::clone(&idp).check_password(format!("user-{i}"), "wrong".into())))
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
