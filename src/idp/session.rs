//! The browser's side of Fabrikam ID: its cookies, read and written only here, through the
//! [`IdpSession`] extractor (and [`write_cookies`], the middleware that sets them on the way
//! out).
//!
//! - `fabrikam_idp_session` ([`COOKIE_NAME`]): an unguessable id (256 random bits) naming a
//!   server-side session ([`super::sessions`]). Only a correct password creates one; sign-out
//!   removes it, so a copy taken before sign-out signs nobody in afterwards.
//! - `fabrikam_idp_signin` ([`SIGNIN_COOKIE`]): the pending authorization request, and the
//!   CSRF token of a browser not signed in, encrypted and authenticated with the process key
//!   (AES-256-GCM, the `cookie` crate's private jar; the cookie's name is bound in as
//!   associated data). Anonymous `/authorize` requests therefore store nothing on the server,
//!   and no flood of them can push out a sign-in in progress (issue 11, finding 6; the
//!   pending request survives the login pages in one short-lived value, as kanidm does). It
//!   is taken out ("destroyed on resume") when the request is answered; what the person has
//!   done for it, and its wrong codes, are kept in the server-side session, where replaying an
//!   old cookie cannot reset them.
//! - `fabrikam_idp_device` ([`DEVICE_COOKIE`]): after a correct password, the user name and a
//!   random nonce, sealed like the sign-in cookie: this browser's guesses at that name count
//!   against a budget of its own ([`super::throttle`]), so strangers' wrong passwords cannot
//!   lock the user out of it. Kept 90 days.
//! - `fabrikam_idp_remember` ([`REMEMBER_COOKIE`]): a random value the provider maps to the user
//!   (set by the second-factor page).
//!
//! Every cookie is `HttpOnly`, `SameSite=Lax`, `Secure` over https, and scoped to the issuer's
//! path; the first two last as long as the browser session.

use std::cell::RefCell;
use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite, time::Duration as CookieDuration};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use serde::{Deserialize, Serialize};

use super::protocol::{AuthState, AuthorizeRequest, Progress};
use super::sessions::{EndedSession, MAX_CODE_FAILURES_PER_SIGN_IN, OpSession, SignInProgress};
use super::state::{Idp, PENDING_TTL_SECS};
use super::throttle::DEVICE_TTL_SECS;
use crate::web::{random_token, secrets_equal};

pub const COOKIE_NAME: &str = "fabrikam_idp_session";
/// The encrypted pending sign-in (and a signed-out browser's CSRF token).
pub const SIGNIN_COOKIE: &str = "fabrikam_idp_signin";
/// The device cookie: the user name this browser signed in as, sealed.
pub const DEVICE_COOKIE: &str = "fabrikam_idp_device";
/// The remember-browser cookie: a random value the OP maps to the user.
pub const REMEMBER_COOKIE: &str = "fabrikam_idp_remember";
/// The hidden form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
/// Browsers drop cookies over 4,096 bytes; a sign-in cookie longer than this is refused
/// before it is set (a real request is far below: `state` and `nonce` are capped at 512).
pub const MAX_SIGNIN_COOKIE_LEN: usize = 3_800;

/// An authorization request waiting while the person signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// Random: binds the server-side progress to this request.
    pub id: String,
    pub request: AuthorizeRequest,
    /// Real clock: a sign-in left half-way is forgotten after [`PENDING_TTL_SECS`].
    pub expires_at: i64,
}

impl PendingSignIn {
    pub fn new(request: AuthorizeRequest, now: i64) -> Self {
        Self {
            id: random_token(16),
            request,
            expires_at: now + PENDING_TTL_SECS,
        }
    }
}

/// The pending request does not fit in a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sign-in request is too large to keep while the person signs in")]
pub struct TooLarge;

/// What the sign-in cookie holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SignIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    csrf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<PendingSignIn>,
}

/// What the device cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Device {
    user: String,
    nonce: String,
    /// Real clock.
    expires_at: i64,
}

/// A cookie change to send with the response.
#[derive(Debug, Clone)]
enum Change {
    Set(String),
    Remove,
}

struct Inner {
    idp: web::Data<Idp>,
    /// The session cookie's value in force: as presented, or new.
    session: RefCell<Option<String>>,
    session_change: RefCell<Option<Change>>,
    signin: RefCell<SignIn>,
    signin_change: RefCell<Option<Change>>,
    device: Option<Device>,
    device_change: RefCell<Option<Change>>,
}

/// The provider's view of this browser: its server-side session (if signed in), its pending
/// sign-in and its CSRF token. Changes are sent as cookies by [`write_cookies`].
#[derive(Clone)]
pub struct IdpSession(Rc<Inner>);

impl FromRequest for IdpSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(inner) = req.extensions().get::<Rc<Inner>>() {
            return ready(Ok(Self(Rc::clone(inner))));
        }
        let Some(idp) = req.app_data::<web::Data<Idp>>().cloned() else {
            return ready(Err(actix_web::error::ErrorInternalServerError(
                "Fabrikam ID's state is missing",
            )));
        };
        let session = req
            .cookie(COOKIE_NAME)
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 64);
        let signin = req
            .cookie(SIGNIN_COOKIE)
            .and_then(|c| open(&idp.cookie_key, SIGNIN_COOKIE, c.value()))
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        let device = req
            .cookie(DEVICE_COOKIE)
            .and_then(|c| open(&idp.cookie_key, DEVICE_COOKIE, c.value()))
            .and_then(|json| serde_json::from_str(&json).ok());
        let inner = Rc::new(Inner {
            idp,
            session: RefCell::new(session),
            session_change: RefCell::new(None),
            signin: RefCell::new(signin),
            signin_change: RefCell::new(None),
            device,
            device_change: RefCell::new(None),
        });
        req.extensions_mut().insert(Rc::clone(&inner));
        ready(Ok(Self(inner)))
    }
}

impl IdpSession {
    fn idp(&self) -> &Idp {
        &self.0.idp
    }

    fn now(&self) -> i64 {
        self.idp().clock.real()
    }

    fn cookie(&self) -> Option<String> {
        self.0.session.borrow().clone()
    }

    fn set_session_cookie(&self, value: Option<String>) {
        *self.0.session_change.borrow_mut() = Some(match &value {
            Some(v) => Change::Set(v.clone()),
            None => Change::Remove,
        });
        *self.0.session.borrow_mut() = value;
    }

    /// The live server-side session, touched (its idle timeout starts again). A cookie that
    /// names nothing (expired, ended) is removed from the browser.
    pub fn current(&self) -> Option<OpSession> {
        let cookie = self.cookie()?;
        let found = self.idp().sessions.get(&cookie, self.now());
        if found.is_none() {
            self.set_session_cookie(None);
        }
        found
    }

    /// Changes the live session, if there is one.
    fn update<R>(&self, f: impl FnOnce(&mut OpSession) -> R) -> Option<R> {
        let cookie = self.cookie()?;
        self.idp().sessions.update(&cookie, self.now(), f)
    }

    /// The signed-in user; nobody when the session ended or expired.
    pub fn auth(&self) -> Option<AuthState> {
        self.current().map(|s| s.auth)
    }

    /// A password sign-in of `user` at `now` (the provider's clock): a new session under a new
    /// id (against fixation). The browser's previous session ends; if it was the same user's,
    /// the new one keeps its `sid` and the clients it served (the person re-authenticated, the
    /// applications are the same), else the previous one is returned: it ended, and its
    /// applications must hear of it.
    pub fn log_in(&self, user: &str, now: i64) -> (AuthState, Option<EndedSession>) {
        let previous = self.cookie().and_then(|c| self.idp().sessions.end(&c));
        let (sid, clients, ended) = match previous {
            Some(p) if p.user == user => (p.sid, p.clients.into_iter().collect(), None),
            other => (random_token(16), Default::default(), other),
        };
        let auth = AuthState {
            user: user.to_owned(),
            password_at: now,
            mfa_at: None,
            sid,
        };
        let sign_in = self.pending().map(|p| SignInProgress {
            pending_id: p.id,
            progress: Progress {
                password_done: true,
                second_factor_done: false,
            },
            code_failures: 0,
        });
        let cookie = self
            .idp()
            .sessions
            .create(auth.clone(), clients, sign_in, self.now());
        self.set_session_cookie(Some(cookie));
        (auth, ended)
    }

    /// The second factor was completed at `now` (the provider's clock), for the pending
    /// sign-in if any. The session continues under a new id (a privilege change).
    pub fn second_factor_done(&self, now: i64) {
        let pending = self.pending().map(|p| p.id);
        self.update(|s| {
            s.auth.mfa_at = Some(now);
            s.enroll_secret = None;
            if let Some(id) = pending {
                let progress = s.sign_in.take().filter(|p| p.pending_id == id);
                let mut progress = progress.unwrap_or(SignInProgress {
                    pending_id: id,
                    ..SignInProgress::default()
                });
                progress.progress.second_factor_done = true;
                s.sign_in = Some(progress);
            }
        });
        if let Some(rotated) = self
            .cookie()
            .and_then(|c| self.idp().sessions.rotate(&c, self.now()))
        {
            self.set_session_cookie(Some(rotated));
        }
    }

    /// Ends the server-side session and forgets the pending sign-in (the remember-browser
    /// cookie is separate and stays). Returns what ended, if anything.
    pub fn log_out(&self) -> Option<EndedSession> {
        self.clear_pending();
        let ended = self.cookie().and_then(|c| self.idp().sessions.end(&c));
        self.set_session_cookie(None);
        ended
    }

    /// The nonce of this browser's device cookie if it names `username` and is still valid.
    pub fn device_for(&self, username: &str) -> Option<String> {
        let now = self.now();
        self.0
            .device
            .as_ref()
            .filter(|d| d.user == username && d.expires_at > now)
            .map(|d| d.nonce.clone())
    }

    /// A new device cookie for `username`, after a correct password (a new nonce each time:
    /// the old one's budget was just cleared).
    pub fn remember_device(&self, username: &str) {
        let device = Device {
            user: username.to_owned(),
            nonce: random_token(16),
            expires_at: self.now() + DEVICE_TTL_SECS,
        };
        if let Ok(json) = serde_json::to_string(&device) {
            let sealed = seal(&self.idp().cookie_key, DEVICE_COOKIE, json);
            *self.0.device_change.borrow_mut() = Some(Change::Set(sealed));
        }
    }

    /// Records that `client_id` received a code in this session.
    pub fn add_client(&self, client_id: &str) {
        self.update(|s| s.clients.insert(client_id.to_owned()));
    }

    /// The browser's pending sign-in, unless it expired.
    pub fn pending(&self) -> Option<PendingSignIn> {
        let now = self.now();
        self.0
            .signin
            .borrow()
            .pending
            .clone()
            .filter(|p| p.expires_at > now)
    }

    /// Keeps `pending` in the browser while the person signs in (replacing any other).
    pub fn set_pending(&self, pending: PendingSignIn) -> Result<(), TooLarge> {
        let mut signin = self.0.signin.borrow().clone();
        signin.pending = Some(pending);
        self.write_signin(signin)
    }

    /// Forgets the pending sign-in, in the browser and its progress in the session.
    pub fn clear_pending(&self) {
        let had = self.0.signin.borrow().pending.is_some();
        if had {
            let mut signin = self.0.signin.borrow().clone();
            signin.pending = None;
            // Smaller than before: it fits.
            let _ = self.write_signin(signin);
        }
        self.update(|s| s.sign_in = None);
    }

    /// What has been done for the pending sign-in `pending_id` in this session.
    pub fn progress(&self, pending_id: &str) -> Progress {
        self.current()
            .and_then(|s| s.sign_in)
            .filter(|p| p.pending_id == pending_id)
            .map(|p| p.progress)
            .unwrap_or_default()
    }

    /// Counts a wrong code against the pending sign-in; after
    /// [`MAX_CODE_FAILURES_PER_SIGN_IN`] it is ended and `false` says so.
    pub fn code_failed(&self) -> bool {
        let Some(pending) = self.pending() else {
            return false;
        };
        let failures = self.update(|s| {
            let progress = s.sign_in.get_or_insert_with(SignInProgress::default);
            if progress.pending_id != pending.id {
                *progress = SignInProgress {
                    pending_id: pending.id.clone(),
                    ..SignInProgress::default()
                };
            }
            progress.code_failures += 1;
            progress.code_failures
        });
        match failures {
            Some(n) if n < MAX_CODE_FAILURES_PER_SIGN_IN => true,
            _ => {
                self.clear_pending();
                false
            }
        }
    }

    /// This browser's CSRF token: its session's, or before sign-in the sign-in cookie's
    /// (created on first use).
    pub fn csrf_token(&self) -> String {
        if let Some(session) = self.current() {
            return session.csrf;
        }
        if let Some(token) = self.0.signin.borrow().csrf.clone() {
            return token;
        }
        let token = random_token(32);
        let mut signin = self.0.signin.borrow().clone();
        signin.csrf = Some(token.clone());
        // A token alone always fits.
        let _ = self.write_signin(signin);
        token
    }

    /// Compares a submitted CSRF token with this browser's, in constant time: the session's
    /// when signed in (so a token planted before sign-in is worth nothing after), else the
    /// sign-in cookie's.
    pub fn csrf_ok(&self, submitted: Option<&str>) -> bool {
        let expected = match self.current() {
            Some(session) => Some(session.csrf),
            None => self.0.signin.borrow().csrf.clone(),
        };
        match (expected, submitted) {
            (Some(expected), Some(given)) => secrets_equal(&expected, given),
            _ => false,
        }
    }

    pub fn enroll_secret(&self) -> Option<String> {
        self.current().and_then(|s| s.enroll_secret)
    }

    pub fn set_enroll_secret(&self, base32: &str) {
        self.update(|s| s.enroll_secret = Some(base32.to_owned()));
    }

    fn write_signin(&self, signin: SignIn) -> Result<(), TooLarge> {
        let change = if signin.csrf.is_none() && signin.pending.is_none() {
            Change::Remove
        } else {
            let json = serde_json::to_string(&signin).map_err(|_| TooLarge)?;
            let sealed = seal(&self.idp().cookie_key, SIGNIN_COOKIE, json);
            if sealed.len() > MAX_SIGNIN_COOKIE_LEN {
                return Err(TooLarge);
            }
            Change::Set(sealed)
        };
        *self.0.signin.borrow_mut() = signin;
        *self.0.signin_change.borrow_mut() = Some(change);
        Ok(())
    }

    /// The `Set-Cookie`s this request's changes need.
    fn cookies(&self) -> Vec<Cookie<'static>> {
        let idp = self.idp();
        let mut out = Vec::new();
        let device_age = Some(CookieDuration::seconds(DEVICE_TTL_SECS));
        for (name, change, max_age) in [
            (COOKIE_NAME, self.0.session_change.borrow().clone(), None),
            (SIGNIN_COOKIE, self.0.signin_change.borrow().clone(), None),
            (DEVICE_COOKIE, self.0.device_change.borrow().clone(), device_age),
        ] {
            match change {
                None => {}
                Some(Change::Set(value)) => out.push(browser_cookie(idp, name, value, max_age)),
                Some(Change::Remove) => out.push(browser_cookie(
                    idp,
                    name,
                    String::new(),
                    Some(CookieDuration::ZERO),
                )),
            }
        }
        out
    }
}

/// A cookie of Fabrikam ID's: `HttpOnly`, `SameSite=Lax`, `Secure` over https, the issuer's
/// path; a browser-session cookie unless `max_age` is given.
pub fn browser_cookie(
    idp: &Idp,
    name: &'static str,
    value: String,
    max_age: Option<CookieDuration>,
) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, value)
        .path(idp.links.cookie_path().to_owned())
        .http_only(true)
        .secure(idp.secure_cookies)
        .same_site(SameSite::Lax)
        .finish();
    if let Some(max_age) = max_age {
        cookie.set_max_age(max_age);
    }
    cookie
}

/// Encrypts and authenticates `value` for the cookie `name` (AES-256-GCM with `key`; the
/// name is associated data, so one cookie's value is worthless as another's).
pub fn seal(key: &Key, name: &'static str, value: String) -> String {
    let mut jar = CookieJar::new();
    jar.private_mut(key).add(Cookie::new(name, value));
    jar.get(name).map(|c| c.value().to_owned()).unwrap_or_default()
}

/// The value [`seal`] sealed, if `sealed` is authentic.
pub fn open(key: &Key, name: &'static str, sealed: &str) -> Option<String> {
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::new(name, sealed.to_owned()));
    jar.private(key).get(name).map(|c| c.value().to_owned())
}

/// Middleware: sets the cookies [`IdpSession`] changed while the request was handled, on
/// every response, errors included.
pub async fn write_cookies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let inner = res.request().extensions().get::<Rc<Inner>>().cloned();
    if let Some(inner) = inner {
        for cookie in IdpSession(inner).cookies() {
            res.response_mut().add_cookie(&cookie)?;
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_name() {
        let key = Key::generate();
        let sealed = seal(&key, SIGNIN_COOKIE, "{\"csrf\":\"x\"}".into());
        assert!(!sealed.contains("csrf"), "encrypted");
        assert_eq!(
            open(&key, SIGNIN_COOKIE, &sealed).as_deref(),
            Some("{\"csrf\":\"x\"}")
        );
        assert_eq!(open(&Key::generate(), SIGNIN_COOKIE, &sealed), None);
        assert_eq!(open(&key, COOKIE_NAME, &sealed), None, "bound to its name");
        let mut tampered = sealed.clone().into_bytes();
        tampered[10] ^= 1;
        assert_eq!(
            open(&key, SIGNIN_COOKIE, &String::from_utf8_lossy(&tampered)),
            None
        );
    }
}
