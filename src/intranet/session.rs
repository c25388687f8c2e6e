//! Typed access to the intranet's session: one struct per thing stored, one key each.
//!
//! Handlers and extractors never call `Session::get` with a string of their own.

use actix_session::{Session, SessionExt, SessionGetError, SessionInsertError};
use actix_web::HttpRequest;
use actix_web_stepup::AuthState;

use super::oidc::PendingLogin;
use super::state::now;
use crate::web::{random_token, secrets_equal};

/// The intranet's session cookie. Its own name: cookies are not isolated by port, and
/// Fabrikam ID on the same host has its own.
pub const SESSION_COOKIE: &str = "fabrikam_session";

const PENDING_LOGIN: &str = "pending_login";
const AUTH: &str = "auth";
const ID_TOKEN: &str = "id_token";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";

/// How long a login lasts, however active: an absolute limit (OWASP Session Management
/// cheat sheet). With the cookie store a copied cookie is otherwise valid until then; with
/// Redis, logout deletes the session at once.
pub const SESSION_LIFETIME_SECS: i64 = 8 * 3600;

/// Whether a login accepted at `auth.received_at` still counts at `now`.
pub fn is_current(auth: &AuthState, now: i64) -> bool {
    now.saturating_sub(auth.received_at) <= SESSION_LIFETIME_SECS
}

/// The session, typed.
pub struct TypedSession(pub Session);

impl TypedSession {
    pub fn from_request(req: &HttpRequest) -> Self {
        Self(req.get_session())
    }

    /// The login, unless it is older than [`SESSION_LIFETIME_SECS`]: a copied cookie (or
    /// a forgotten tab) does not stay signed in forever.
    pub fn auth(&self) -> Result<Option<AuthState>, SessionGetError> {
        let auth: Option<AuthState> = self.0.get(AUTH)?;
        Ok(auth.filter(|a| is_current(a, now())))
    }

    /// Stores a new login. The session id is renewed first, so a session id planted before
    /// the login (session fixation) is worthless afterwards.
    pub fn log_in(&self, auth: &AuthState, id_token: &str) -> Result<(), SessionInsertError> {
        self.0.renew();
        self.0.insert(AUTH, auth)?;
        self.0.insert(ID_TOKEN, id_token)?;
        // A fresh CSRF token for the fresh session.
        self.0.insert(CSRF, random_token(32))
    }

    /// The raw ID token kept for `id_token_hint` at RP-initiated logout.
    pub fn id_token(&self) -> Option<String> {
        self.0.get(ID_TOKEN).ok().flatten()
    }

    /// Forgets everything and moves to a new session id. (Not `purge`: that would also drop
    /// the flash message that tells the user they signed out.)
    pub fn log_out(&self) {
        self.0.clear();
        self.0.renew();
    }

    /// Keeps a login started at the provider until its callback; taken out exactly once, so
    /// a replayed callback fails.
    pub fn set_pending_login(&self, pending: &PendingLogin) -> Result<(), SessionInsertError> {
        self.0.insert(PENDING_LOGIN, pending)
    }

    /// Takes the pending login out; a second call returns `None`.
    pub fn take_pending_login(&self) -> Option<PendingLogin> {
        self.0
            .remove_as::<PendingLogin>(PENDING_LOGIN)
            .and_then(Result::ok)
    }

    /// The CSRF token of this session, created on first use (synchronizer token pattern,
    /// OWASP CSRF cheat sheet). Every form carries it as a hidden input. Only signed-in pages
    /// have forms, so anonymous visitors never get a session just for this.
    pub fn csrf_token(&self) -> String {
        if let Ok(Some(token)) = self.0.get::<String>(CSRF) {
            return token;
        }
        let token = random_token(32);
        // A failed insert only means the next form gets another token.
        let _ = self.0.insert(CSRF, &token);
        token
    }

    /// Whether `submitted` is this session's CSRF token.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        match self.0.get::<String>(CSRF) {
            Ok(Some(token)) => secrets_equal(&token, submitted),
            _ => false,
        }
    }

    pub fn set_flash(&self, message: &str) {
        let _ = self.0.insert(FLASH, message);
    }

    /// The one-time message for the next page, if any.
    pub fn take_flash(&self) -> Option<String> {
        // Look before removing: `remove` marks the session changed even when the key is
        // absent, which would rewrite the cookie (or the Redis entry) on every page view.
        let flash = self.0.get::<String>(FLASH).ok().flatten()?;
        self.0.remove(FLASH);
        Some(flash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_lasts_eight_hours_at_most() {
        let mut auth = AuthState::new("alice", 1_000);
        assert!(is_current(&auth, 1_000 + SESSION_LIFETIME_SECS));
        assert!(!is_current(&auth, 1_001 + SESSION_LIFETIME_SECS));
        auth.received_at = i64::MIN;
        assert!(!is_current(&auth, i64::MAX), "no overflow");
    }
}
