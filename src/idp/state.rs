//! The state Fabrikam ID shares between requests: configuration, keys, the directory, and the
//! short-lived server-side records (codes, pending sign-ins, remembered browsers).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use url::Url;

use super::directory::Directory;
use super::keys::Keys;
use super::protocol::{Authentication, AuthorizeRequest, Progress};
use super::test_control::TestControl;
use crate::config::{ClientRegistration, IdpConfig};

/// Codes live 60 seconds (RFC 6749 §4.1.2 recommends at most 10 minutes).
pub const CODE_TTL_SECS: i64 = 60;
/// A sign-in left half-way is forgotten after 15 minutes.
pub const PENDING_TTL_SECS: i64 = 15 * 60;
/// The remember-browser cookie lasts 30 days.
pub const REMEMBER_TTL_SECS: i64 = 30 * 24 * 3600;
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

/// A sign-in in progress: the validated request and what the person has done so far.
#[derive(Debug, Clone)]
pub struct Pending {
    pub request: AuthorizeRequest,
    pub progress: Progress,
    created_at: i64,
}

pub struct Idp {
    /// The issuer identifier exactly as it appears in `iss` and discovery.
    pub issuer: String,
    pub issuer_url: Url,
    pub clients: Vec<ClientRegistration>,
    pub mfa_at_login: bool,
    pub test_control: bool,
    pub api_audience: String,
    pub secure_cookies: bool,
    pub keys: Keys,
    pub directory: Directory,
    codes: Mutex<HashMap<String, CodeGrant>>,
    pending: Mutex<HashMap<String, Pending>>,
    /// Remember-browser cookie value → (user, expiry on the real clock).
    remembered: Mutex<HashMap<String, (String, i64)>>,
    pub control: Mutex<TestControl>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn real_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Idp {
    pub fn new(config: &IdpConfig) -> anyhow::Result<Self> {
        Ok(Self {
            issuer: crate::config::issuer_id(&config.issuer),
            issuer_url: config.issuer.clone(),
            clients: config.clients.clone(),
            mfa_at_login: config.mfa_at_login,
            test_control: config.test_control,
            api_audience: config.api_audience.clone(),
            secure_cookies: config.issuer.scheme() == "https",
            keys: Keys::load_or_generate(config.signing_key_pem.as_deref())?,
            directory: Directory::demo()?,
            codes: Mutex::default(),
            pending: Mutex::default(),
            remembered: Mutex::default(),
            control: Mutex::default(),
        })
    }

    /// The OP's clock: real time shifted by the test-control offset. Everything the OP issues
    /// reads it; TOTP checks do not.
    pub fn now(&self) -> i64 {
        real_now().saturating_add(self.control().offset_secs)
    }

    pub fn control(&self) -> MutexGuard<'_, TestControl> {
        lock(&self.control)
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientRegistration> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    /// Stores a code grant and returns the code: 256 random bits.
    pub fn issue_code(&self, grant: CodeGrant) -> String {
        let code = crate::web::random_token(32);
        let mut codes = lock(&self.codes);
        let now = self.now();
        codes.retain(|_, g| g.expires_at > now - CODE_TTL_SECS);
        codes.insert(code.clone(), grant);
        code
    }

    /// Takes a code out: whatever happens next, it cannot be redeemed twice.
    pub fn take_code(&self, code: &str) -> Option<CodeGrant> {
        lock(&self.codes).remove(code)
    }

    pub fn add_pending(&self, request: AuthorizeRequest) -> String {
        let id = crate::web::random_token(32);
        let now = real_now();
        let mut pending = lock(&self.pending);
        pending.retain(|_, p| now - p.created_at < PENDING_TTL_SECS);
        pending.insert(
            id.clone(),
            Pending {
                request,
                progress: Progress::default(),
                created_at: now,
            },
        );
        id
    }

    pub fn pending(&self, id: &str) -> Option<Pending> {
        let now = real_now();
        lock(&self.pending)
            .get(id)
            .filter(|p| now - p.created_at < PENDING_TTL_SECS)
            .cloned()
    }

    pub fn update_pending(&self, id: &str, f: impl FnOnce(&mut Progress)) {
        if let Some(p) = lock(&self.pending).get_mut(id) {
            f(&mut p.progress);
        }
    }

    pub fn take_pending(&self, id: &str) -> Option<Pending> {
        lock(&self.pending).remove(id)
    }

    /// A new remember-browser value for `user`.
    pub fn remember_browser(&self, user: &str) -> String {
        let value = crate::web::random_token(32);
        let now = real_now();
        let mut remembered = lock(&self.remembered);
        remembered.retain(|_, (_, exp)| *exp > now);
        remembered.insert(value.clone(), (user.to_owned(), now + REMEMBER_TTL_SECS));
        value
    }

    /// Whether the remember-browser cookie value was issued to `user` and is still valid.
    pub fn is_remembered(&self, value: &str, user: &str) -> bool {
        lock(&self.remembered)
            .get(value)
            .is_some_and(|(u, exp)| u == user && *exp > real_now())
    }
}
