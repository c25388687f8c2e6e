//! Fabrikam ID's sessions, kept server-side: the browser's `fabrikam_idp_session` cookie
//! carries only an unguessable id (256 random bits); who is signed in, how, since when, and
//! which clients received tokens live here. Ending a session removes it, so a copy of the
//! cookie taken before sign-out signs nobody in afterwards (issue 11, finding 2: the provider's
//! session used to be a stateless signed cookie that nothing could revoke).
//!
//! A session ends at the first of:
//! - its **absolute lifetime** from the password sign-in (`IDP_SESSION_LIFETIME_SECS`, default
//!   12 h), whatever the activity;
//! - an **idle timeout** (`IDP_SESSION_IDLE_SECS`, default 30 min) without a request to
//!   Fabrikam ID that presents it;
//! - sign-out (RP-Initiated Logout), a sign-in as another user in the same browser, or
//!   revocation (test control).
//!
//! The defaults are the AAL2 limits of NIST SP 800-63B-3 §4.2.3 (12 hours overall, 30 minutes
//! of inactivity), within those of SP 800-63B-4 §2.2.3 (24 hours, 1 hour), and close to
//! Keycloak's (SSO Session Max 10 h, Idle 30 min). An identity provider's session is worth
//! more than any one application's — it signs the user in everywhere — so it takes the
//! stricter bound. A new password sign-in starts both clocks again (§2.2.3: reauthentication
//! extends the session).
//!
//! Memory is bounded: only a correct password creates a session (anonymous visitors create
//! none: their pending sign-in travels in an encrypted cookie, see [`super::session`]); a user
//! has at most [`MAX_SESSIONS_PER_USER`] (a new one ends their least recently used), and the
//! table at most [`MAX_SESSIONS`] (a new one ends the least recently used overall). Sessions
//! are kept by expiry ([`ExpiringMap`]), so no operation scans the table.
//!
//! Times here are on the real clock ([`crate::clock::Clock::real`]): a test-control clock
//! offset changes what tokens say, not how long a browser stays signed in.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde::Serialize;

use super::config::{
    DEFAULT_IDLE_SECS, DEFAULT_LIFETIME_SECS, MAX_CONFIGURED_SECS, MAX_SESSIONS, MAX_SESSIONS_PER_USER,
};
use super::expiring::{ExpiringMap, Inserted, secret_key};
use super::protocol::{AuthState, Progress};

/// Wrong codes one sign-in may take before it is ended (the per-user lock is in the
/// directory; this bounds one sign-in even across locks).
pub const MAX_CODE_FAILURES_PER_SIGN_IN: u32 = 10;

/// A signed-in browser, as the server keeps it.
#[derive(Debug, Clone)]
pub struct OpSession {
    /// Who, and when each factor was completed (on the provider's clock, for `auth_time`).
    pub auth: AuthState,
    /// The synchronizer token of this session's forms.
    pub csrf: String,
    /// When the password was checked (real clock): the absolute lifetime counts from here.
    pub created_at: i64,
    /// The last request that presented the session (real clock).
    pub last_active: i64,
    /// The clients that received a code in this session (for back-channel logout).
    pub clients: BTreeSet<String>,
    /// What has been done for the browser's pending sign-in.
    pub sign_in: Option<SignInProgress>,
    /// A TOTP secret being enrolled (base32).
    pub enroll_secret: Option<String>,
    /// A passkey ceremony in progress: its state stays server-side, as `webauthn-rs` requires
    /// (a replayed or forged answer cannot bring its own challenge), and is taken out once.
    pub ceremony: Option<Ceremony>,
}

/// A WebAuthn ceremony waiting for the authenticator's answer.
#[derive(Debug, Clone)]
pub enum Ceremony {
    /// Registering a new passkey.
    Register {
        state: webauthn_rs::prelude::PasskeyRegistration,
        /// Real clock.
        started_at: i64,
    },
    /// Signing in with a passkey, for the pending sign-in `pending_id`.
    SignIn {
        state: webauthn_rs::prelude::PasskeyAuthentication,
        pending_id: String,
        /// Real clock.
        started_at: i64,
    },
}

/// Progress of one pending sign-in, bound to it by its id: a password entered for one request
/// does not count for another (`prompt=login`, `max_age`), and its wrong codes are counted
/// here, where a replayed cookie cannot reset them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInProgress {
    pub pending_id: String,
    pub progress: Progress,
    pub code_failures: u32,
}

/// A session that was ended, for whoever must hear of it (back-channel logout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    pub user: String,
    pub sid: String,
    pub clients: Vec<String>,
}

/// What test control shows of a session (never the cookie).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SessionView {
    /// The `sid` claim of the session's ID tokens.
    pub sid: String,
    pub username: String,
    /// Unix seconds (real clock).
    pub created_at: i64,
    pub last_active_at: i64,
    /// When it ends unless used again (the idle timeout) or at the latest (the lifetime).
    pub expires_at: i64,
    /// Whether a second factor was completed in this session.
    pub second_factor: bool,
    /// The clients that received a code in this session.
    pub clients: Vec<String>,
}

/// Limits of the session table: the constants above, or smaller ones in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub lifetime_secs: u64,
    pub idle_secs: u64,
    pub max_sessions: usize,
    pub max_per_user: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            lifetime_secs: DEFAULT_LIFETIME_SECS,
            idle_secs: DEFAULT_IDLE_SECS,
            max_sessions: MAX_SESSIONS,
            max_per_user: MAX_SESSIONS_PER_USER,
        }
    }
}

/// The sessions, by the SHA-256 of their cookie value.
#[derive(Debug)]
pub struct Sessions {
    table: Mutex<ExpiringMap<[u8; 32], OpSession>>,
    lifetime: i64,
    idle: i64,
}

fn secs(s: u64) -> i64 {
    i64::try_from(s.min(MAX_CONFIGURED_SECS))
        .unwrap_or(i64::MAX)
        .max(1)
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            table: Mutex::new(ExpiringMap::new(limits.max_sessions, limits.max_per_user)),
            lifetime: secs(limits.lifetime_secs),
            idle: secs(limits.idle_secs),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ExpiringMap<[u8; 32], OpSession>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When `s` ends if nothing happens: its idle timeout, or its lifetime if sooner.
    fn expires_at(&self, s: &OpSession) -> i64 {
        (s.created_at + self.lifetime).min(s.last_active + self.idle)
    }

    /// A new session for `auth` (carrying `clients` over from a session it replaces), and the
    /// cookie value that names it: 256 random bits.
    pub fn create(
        &self,
        auth: AuthState,
        clients: BTreeSet<String>,
        sign_in: Option<SignInProgress>,
        now: i64,
    ) -> String {
        let cookie = crate::web::random_token(32);
        let user = auth.user.clone();
        let session = OpSession {
            auth,
            csrf: crate::web::random_token(32),
            created_at: now,
            last_active: now,
            clients,
            sign_in,
            enroll_secret: None,
            ceremony: None,
        };
        let expires_at = self.expires_at(&session);
        match self
            .lock()
            .insert(secret_key(&cookie), session, Some(&user), expires_at, now)
        {
            Inserted::Fitted => {}
            Inserted::EvictedOwners(..) => tracing::info!(
                %user,
                "too many sessions for one user: their least recently used was ended"
            ),
            Inserted::EvictedSoonest(_, s) => tracing::warn!(
                user = %s.auth.user,
                "session table full: the least recently used session was ended"
            ),
        }
        cookie
    }

    /// The live session `cookie` names, touched: its idle timeout starts again.
    pub fn get(&self, cookie: &str, now: i64) -> Option<OpSession> {
        self.update(cookie, now, |s| s.clone())
    }

    /// Changes the live session `cookie` names (touching it); `None` if there is none.
    pub fn update<R>(&self, cookie: &str, now: i64, f: impl FnOnce(&mut OpSession) -> R) -> Option<R> {
        let key = secret_key(cookie);
        let mut table = self.lock();
        let session = table.get_mut(&key, now)?;
        session.last_active = now;
        let result = f(session);
        let expires_at = self.expires_at(session);
        table.set_expiry(&key, expires_at);
        Some(result)
    }

    /// The same session under a new cookie value (after a privilege change: the second
    /// factor), the old value naming nothing any more.
    pub fn rotate(&self, cookie: &str, now: i64) -> Option<String> {
        let mut table = self.lock();
        let old = secret_key(cookie);
        table.get(&old, now)?;
        let expires_at = table.expiry(&old)?;
        let session = table.remove(&old)?;
        let user = session.auth.user.clone();
        let new = crate::web::random_token(32);
        table.insert(secret_key(&new), session, Some(&user), expires_at, now);
        Some(new)
    }

    /// Ends the session `cookie` names (live or just expired): what ended.
    pub fn end(&self, cookie: &str) -> Option<EndedSession> {
        self.lock().remove(&secret_key(cookie)).map(ended)
    }

    /// Ends every session of `user`.
    pub fn end_user(&self, user: &str) -> Vec<EndedSession> {
        self.lock()
            .remove_owned(user)
            .into_iter()
            .map(|(_, s)| ended(s))
            .collect()
    }

    /// Ends the session whose ID tokens carry `sid`. A scan: for test control only.
    pub fn end_sid(&self, sid: &str, now: i64) -> Option<EndedSession> {
        let mut table = self.lock();
        let key = table
            .iter_live(now)
            .find(|(_, s, _)| s.auth.sid == sid)
            .map(|(k, _, _)| *k)?;
        table.remove(&key).map(ended)
    }

    /// Every live session, soonest to end first (for test control).
    pub fn views(&self, now: i64) -> Vec<SessionView> {
        self.lock()
            .iter_live(now)
            .map(|(_, s, expires_at)| SessionView {
                sid: s.auth.sid.clone(),
                username: s.auth.user.clone(),
                created_at: s.created_at,
                last_active_at: s.last_active,
                expires_at,
                second_factor: s.auth.mfa_at.is_some(),
                clients: s.clients.iter().cloned().collect(),
            })
            .collect()
    }

    /// How many sessions are stored (live or not yet purged).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn ended(s: OpSession) -> EndedSession {
    EndedSession {
        user: s.auth.user,
        sid: s.auth.sid,
        clients: s.clients.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(user: &str) -> AuthState {
        AuthState {
            user: user.into(),
            password_at: 0,
            mfa_at: None,
            passkey: None,
            sid: format!("sid-{user}"),
        }
    }

    fn sessions(lifetime_secs: u64, idle_secs: u64) -> Sessions {
        Sessions::new(SessionLimits {
            lifetime_secs,
            idle_secs,
            ..SessionLimits::default()
        })
    }

    #[test]
    fn a_session_ends_after_its_idle_timeout_and_use_postpones_it() {
        let s = sessions(3_600, 60);
        let cookie = s.create(auth("alice"), BTreeSet::new(), None, 1_000);
        assert_eq!(cookie.len(), 43, "256 bits, base64url");
        assert!(s.get(&cookie, 1_059).is_some());
        assert!(
            s.get(&cookie, 1_118).is_some(),
            "the last use restarted the idle timer"
        );
        assert!(s.get(&cookie, 1_178).is_none(), "60 s idle");
        assert!(s.is_empty(), "and it is gone");
    }

    #[test]
    fn a_session_ends_at_its_lifetime_however_busy() {
        let s = sessions(100, 60);
        let cookie = s.create(auth("alice"), BTreeSet::new(), None, 1_000);
        for t in (1_000..1_100).step_by(30) {
            assert!(s.get(&cookie, t).is_some(), "at {t}");
        }
        assert!(s.get(&cookie, 1_100).is_none());
    }

    #[test]
    fn ending_rotating_and_revoking_leave_the_old_cookie_naming_nothing() {
        let s = sessions(3_600, 600);
        let cookie = s.create(auth("alice"), BTreeSet::from(["app".to_owned()]), None, 0);
        let rotated = s.rotate(&cookie, 1).unwrap();
        assert!(s.get(&cookie, 2).is_none());
        assert_eq!(s.get(&rotated, 2).unwrap().auth.user, "alice");
        assert_eq!(
            s.end(&rotated),
            Some(EndedSession {
                user: "alice".into(),
                sid: "sid-alice".into(),
                clients: vec!["app".into()],
            })
        );
        assert!(s.get(&rotated, 3).is_none());
        let a = s.create(auth("bob"), BTreeSet::new(), None, 0);
        let b = s.create(auth("bob"), BTreeSet::new(), None, 0);
        assert_eq!(s.views(1).len(), 2);
        assert_eq!(s.end_user("bob").len(), 2);
        assert!(s.get(&a, 1).is_none() && s.get(&b, 1).is_none());
        let c = s.create(auth("carol"), BTreeSet::new(), None, 0);
        assert!(s.end_sid("sid-carol", 1).is_some());
        assert!(s.get(&c, 1).is_none());
    }

    #[test]
    fn sessions_are_capped_per_user_and_in_all_ending_the_least_recently_used() {
        let s = Sessions::new(SessionLimits {
            max_sessions: 4,
            max_per_user: 2,
            ..SessionLimits::default()
        });
        let a1 = s.create(auth("alice"), BTreeSet::new(), None, 0);
        let a2 = s.create(auth("alice"), BTreeSet::new(), None, 1);
        assert!(s.get(&a1, 2).is_some(), "a1 used last");
        let a3 = s.create(auth("alice"), BTreeSet::new(), None, 3);
        assert!(s.get(&a2, 4).is_none(), "alice's least recently used went");
        assert!(s.get(&a1, 4).is_some() && s.get(&a3, 4).is_some());
        let b = s.create(auth("bob"), BTreeSet::new(), None, 5);
        s.create(auth("carol"), BTreeSet::new(), None, 6);
        s.create(auth("dave"), BTreeSet::new(), None, 7);
        assert_eq!(s.len(), 4);
        assert!(s.get(&b, 8).is_some());
        // The real limits.
        let real = SessionLimits::default();
        assert_eq!(
            (
                real.lifetime_secs,
                real.idle_secs,
                real.max_sessions,
                real.max_per_user
            ),
            (12 * 3600, 30 * 60, 10_000, 100)
        );
    }
}
