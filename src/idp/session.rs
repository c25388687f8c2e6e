//! Typed access to the OP session cookie (`fabrikam_idp_session`): who is signed in and how,
//! which sign-in is pending, the CSRF token, and an enrolment secret being set up.

use std::future::{Ready, ready};

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::protocol::AuthState;
use crate::web::{random_token, secrets_equal};

pub const COOKIE_NAME: &str = "fabrikam_idp_session";
/// The remember-browser cookie: a random value the OP maps to the user.
pub const REMEMBER_COOKIE: &str = "fabrikam_idp_remember";
/// The hidden form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

const AUTH: &str = "auth";
const PENDING: &str = "pending";
const CSRF: &str = "csrf";
const ENROLL_SECRET: &str = "enroll_secret";

pub struct IdpSession(Session);

impl FromRequest for IdpSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self(req.get_session())))
    }
}

impl IdpSession {
    /// The signed-in user; an unreadable value counts as nobody.
    pub fn auth(&self) -> Option<AuthState> {
        self.0.get(AUTH).ok().flatten()
    }

    /// A password login: a new session id (against fixation), no second factor yet.
    pub fn log_in(&self, user: &str, now: i64) -> anyhow::Result<AuthState> {
        self.0.renew();
        let state = AuthState {
            user: user.to_owned(),
            password_at: now,
            mfa_at: None,
            sid: random_token(16),
        };
        self.0.insert(AUTH, &state)?;
        self.0.remove(ENROLL_SECRET);
        Ok(state)
    }

    /// The second factor was completed at `now`.
    pub fn second_factor_done(&self, mut state: AuthState, now: i64) -> anyhow::Result<()> {
        state.mfa_at = Some(now);
        self.0.insert(AUTH, &state)?;
        Ok(())
    }

    /// Ends the OP session (the remember-browser cookie is separate and stays).
    pub fn log_out(&self) {
        self.0.purge();
    }

    pub fn pending_id(&self) -> Option<String> {
        self.0.get(PENDING).ok().flatten()
    }

    pub fn set_pending_id(&self, id: &str) -> anyhow::Result<()> {
        Ok(self.0.insert(PENDING, id)?)
    }

    pub fn clear_pending_id(&self) {
        self.0.remove(PENDING);
    }

    /// This session's CSRF token, created on first use.
    pub fn csrf_token(&self) -> anyhow::Result<String> {
        if let Some(token) = self.0.get::<String>(CSRF).ok().flatten() {
            return Ok(token);
        }
        let token = random_token(32);
        self.0.insert(CSRF, &token)?;
        Ok(token)
    }

    /// Compares a submitted CSRF token with the session's, in constant time.
    pub fn csrf_ok(&self, submitted: Option<&str>) -> bool {
        match (self.0.get::<String>(CSRF).ok().flatten(), submitted) {
            (Some(expected), Some(given)) => secrets_equal(&expected, given),
            _ => false,
        }
    }

    pub fn enroll_secret(&self) -> Option<String> {
        self.0.get(ENROLL_SECRET).ok().flatten()
    }

    pub fn set_enroll_secret(&self, base32: &str) -> anyhow::Result<()> {
        Ok(self.0.insert(ENROLL_SECRET, base32)?)
    }

    pub fn clear_enroll_secret(&self) {
        self.0.remove(ENROLL_SECRET);
    }
}
