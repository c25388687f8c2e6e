//! Typed access to the intranet's session: one struct per thing stored, one key each, and the
//! session's life: an absolute lifetime from the first sign-in, an idle timeout (NIST SP
//! 800-63B-4 §2.2.3 at AAL2: overall at most 24 h, inactivity at most 1 h), and a login id
//! that a sign-out or back-channel logout voids in either store (`logins.rs`).
//!
//! Handlers and extractors never call `Session::get` with a string of their own. What is kept
//! is small whatever the provider sends (a cookie holds about 4 KB): the claims the step-up
//! policy reads, the roles it names (others only while they are few), and a login id — never
//! the ID token, which the database keeps for the provider's logout.

use std::collections::HashMap;

use super::logins::{SessionLogin, Verdict};
use super::oidc::PendingLogin;
use super::state::AppState;
use crate::web::{random_token, secrets_equal};
use actix_session::{Session, SessionExt, SessionGetError, SessionInsertError};
use actix_web::web::Data;
use actix_web::{HttpMessage, HttpRequest};
use actix_web_stepup::AuthState;
use serde::{Deserialize, Serialize};

/// The intranet's session cookie. Its own name: cookies are not isolated by port, and
/// Fabrikam ID on the same host has its own.
pub const SESSION_COOKIE: &str = "fabrikam_session";

const PENDING_LOGIN: &str = "pending_login";
const AUTH: &str = "auth";
const LOGIN: &str = "login";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";

/// Roles beyond the policy's kept at most (for `/me`), and their total length at most.
const MAX_OTHER_ROLES: usize = 16;
const MAX_OTHER_ROLES_BYTES: usize = 256;
/// Display claims are cut to this many characters.
const MAX_DISPLAY_CHARS: usize = 200;

/// The login as the session keeps it: every role the policy names (`policy_roles`), other
/// roles only while they are few and short (a provider may send hundreds of groups), names cut
/// to a display length. Returns it with the number of roles left out.
pub fn for_session(mut auth: AuthState, policy_roles: &[&str]) -> (AuthState, usize) {
    let all = std::mem::take(&mut auth.roles);
    let total = all.len();
    let (mut kept, others): (Vec<String>, Vec<String>) =
        all.into_iter().partition(|r| policy_roles.contains(&r.as_str()));
    let mut budget = MAX_OTHER_ROLES_BYTES;
    for role in others {
        if kept.len() >= MAX_OTHER_ROLES + policy_roles.len() || role.len() > budget {
            break;
        }
        budget -= role.len();
        kept.push(role);
    }
    let dropped = total - kept.len();
    auth.roles = kept;
    let cut = |s: Option<String>| s.map(|s| s.chars().take(MAX_DISPLAY_CHARS).collect());
    auth.name = cut(auth.name);
    auth.email = cut(auth.email);
    (auth, dropped)
}

/// The session, typed.
#[derive(Clone)]
pub struct TypedSession {
    pub session: Session,
    state: Option<Data<AppState>>,
    /// The request, whose extensions keep the login once it is judged ([`Judged`]).
    req: HttpRequest,
}

/// The outcome of [`TypedSession::auth`] for this request, kept in the request's extensions:
/// a page asks for the login twice (its guard and the navigation), and each answer costs
/// two JSON decodes and a look at the ended logins. Removed by every change to the login.
#[derive(Clone)]
struct Judged(Option<AuthState>);

impl TypedSession {
    pub fn from_request(req: &HttpRequest) -> Self {
        Self {
            session: req.get_session(),
            state: AppState::of(req),
            req: req.clone(),
        }
    }

    /// The login, if it is current: not signed out (here, in another process, or by the
    /// provider's back-channel logout), within its lifetime and not idle. A session that
    /// fails is emptied of its login. Refreshes the last-seen stamp when it is old enough.
    /// Judged once per request; later calls in the same request get the same answer.
    pub fn auth(&self) -> Result<Option<AuthState>, SessionGetError> {
        if let Some(Judged(auth)) = self.req.extensions().get::<Judged>() {
            return Ok(auth.clone());
        }
        let auth = self.judge()?;
        self.req.extensions_mut().insert(Judged(auth.clone()));
        Ok(auth)
    }

    /// Forgets this request's [`Judged`] login: the next [`Self::auth`] reads the session.
    fn rejudge(&self) {
        self.req.extensions_mut().remove::<Judged>();
    }

    fn judge(&self) -> Result<Option<AuthState>, SessionGetError> {
        // A login the session holds in another form (written by an earlier version) is
        // dropped, not read again on every request: the user signs in again.
        let (auth, login) = match (self.session.get::<StoredAuth>(AUTH), self.stored_login()) {
            (Ok(auth), Ok(login)) => (auth.map(AuthState::from), login),
            _ => {
                tracing::info!("a session's login is in an unknown form; dropped");
                self.forget_login();
                return Ok(None);
            }
        };
        let Some(auth) = auth else {
            return Ok(None);
        };
        // Without the state (never in the app) nothing can be checked: fail closed.
        let (Some(login), Some(state)) = (login, self.state.as_ref()) else {
            self.forget_login();
            return Ok(None);
        };
        let now = state.now();
        let void = state.logins.is_void(&login.id, login.started_at);
        match state.sessions.judge(&login, void, now) {
            Verdict::Current => Ok(Some(auth)),
            Verdict::Touch => {
                let touched = SessionLogin {
                    last_seen: now,
                    ..login
                };
                // A failed write only means the stamp is refreshed on a later request.
                let _ = self.session.insert(LOGIN, StoredLogin::from(&touched));
                Ok(Some(auth))
            }
            Verdict::Ended(why) => {
                tracing::info!(sub = %auth.subject, reason = why, "session ended");
                self.forget_login();
                Ok(None)
            }
        }
    }

    /// The session's login record, if it has a current login (call [`Self::auth`] first).
    pub fn login(&self) -> Option<SessionLogin> {
        self.stored_login().ok().flatten()
    }

    fn stored_login(&self) -> Result<Option<SessionLogin>, SessionGetError> {
        Ok(self.session.get::<StoredLogin>(LOGIN)?.map(SessionLogin::from))
    }

    /// Whether the session, with this login in it, fits `budget` (the cookie store's limit;
    /// `None`: no limit). `Err` carries the size it would take.
    pub fn check_fits(
        &self,
        auth: &AuthState,
        login: &SessionLogin,
        budget: Option<usize>,
    ) -> Result<(), usize> {
        let Some(budget) = budget else {
            return Ok(());
        };
        // The values as `Session::insert` will store them: JSON strings.
        let mut entries: HashMap<String, String> = self.session.entries().clone();
        entries.insert(
            AUTH.into(),
            serde_json::to_string(&StoredAuth::from(auth)).unwrap_or_default(),
        );
        entries.insert(
            LOGIN.into(),
            serde_json::to_string(&StoredLogin::from(login)).unwrap_or_default(),
        );
        entries.insert(
            CSRF.into(),
            serde_json::to_string(&random_token(32)).unwrap_or_default(),
        );
        let bytes = cookie_bytes(&entries);
        if bytes > budget { Err(bytes) } else { Ok(()) }
    }

    /// Stores a new login. The session id is renewed first, so a session id planted before
    /// the login (session fixation) is worthless afterwards.
    pub fn log_in(&self, auth: &AuthState, login: &SessionLogin) -> Result<(), SessionInsertError> {
        self.rejudge();
        self.session.renew();
        self.session.insert(AUTH, StoredAuth::from(auth))?;
        self.session.insert(LOGIN, StoredLogin::from(login))?;
        // A fresh CSRF token for the fresh session.
        self.session.insert(CSRF, random_token(32))
    }

    /// Forgets everything and moves to a new session id. (Not `purge`: that would also drop
    /// the flash message that tells the user they signed out.)
    pub fn log_out(&self) {
        self.rejudge();
        self.session.clear();
        self.session.renew();
    }

    /// Drops the login (and its CSRF token), keeping a sign-in in progress, under a new id.
    fn forget_login(&self) {
        self.rejudge();
        self.session.remove(AUTH);
        self.session.remove(LOGIN);
        self.session.remove(CSRF);
        // Kept in the session by earlier versions, in the database now.
        self.session.remove("id_token");
        self.session.renew();
    }

    /// Keeps a login started at the provider until its callback; taken out exactly once, so
    /// a replayed callback fails.
    pub fn set_pending_login(&self, pending: &PendingLogin) -> Result<(), SessionInsertError> {
        self.session.insert(PENDING_LOGIN, pending)
    }

    /// The pending login, left in place.
    pub fn pending_login(&self) -> Option<PendingLogin> {
        self.session.get::<PendingLogin>(PENDING_LOGIN).ok().flatten()
    }

    /// Takes the pending login out; a second call returns `None`.
    pub fn take_pending_login(&self) -> Option<PendingLogin> {
        self.session
            .remove_as::<PendingLogin>(PENDING_LOGIN)
            .and_then(Result::ok)
    }

    /// The CSRF token of this session, created on first use (synchronizer token pattern,
    /// OWASP CSRF cheat sheet). Every form carries it as a hidden input. Only signed-in pages
    /// have forms, so anonymous visitors never get a session just for this.
    pub fn csrf_token(&self) -> String {
        if let Ok(Some(token)) = self.session.get::<String>(CSRF) {
            return token;
        }
        let token = random_token(32);
        // A failed insert only means the next form gets another token.
        let _ = self.session.insert(CSRF, &token);
        token
    }

    /// Whether `submitted` is this session's CSRF token.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        match self.session.get::<String>(CSRF) {
            Ok(Some(token)) => secrets_equal(&token, submitted),
            _ => false,
        }
    }

    pub fn set_flash(&self, message: &str) {
        let _ = self.session.insert(FLASH, message);
    }

    /// The one-time message for the next page, if any.
    pub fn take_flash(&self) -> Option<String> {
        // Look before removing: `remove` marks the session changed even when the key is
        // absent, which would rewrite the cookie (or the Redis entry) on every page view.
        let flash = self.session.get::<String>(FLASH).ok().flatten()?;
        self.session.remove(FLASH);
        Some(flash)
    }
}

/// The login as the session stores it: a JSON array, fields in a fixed order and no names.
/// Every signed-in request decrypts, decodes and parses the session, and it was 46 %
/// larger with field names (469 bytes of JSON for alice; the names were also escaped once more
/// inside the session's map); the cost of those steps follows the size (callgrind,
/// BENCHMARKS.md). A session written by an earlier version does not parse, so it counts as
/// signed out and the user signs in again.
#[derive(Serialize, Deserialize)]
struct StoredAuth(
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<String>,
    Option<i64>,
    Vec<String>,
    Vec<String>,
    i64,
    Option<String>,
);

impl From<&AuthState> for StoredAuth {
    fn from(auth: &AuthState) -> Self {
        // Destructured whole: a field added to AuthState stops the build here.
        let AuthState {
            subject,
            name,
            email,
            acr,
            amr,
            auth_time,
            acrs,
            roles,
            received_at,
            step_up_for,
        } = auth.clone();
        Self(
            subject,
            name,
            email,
            acr,
            amr,
            auth_time,
            acrs,
            roles,
            received_at,
            step_up_for,
        )
    }
}

impl From<StoredAuth> for AuthState {
    fn from(s: StoredAuth) -> Self {
        let StoredAuth(subject, name, email, acr, amr, auth_time, acrs, roles, received_at, step_up_for) = s;
        AuthState {
            subject,
            name,
            email,
            acr,
            amr,
            auth_time,
            acrs,
            roles,
            received_at,
            step_up_for,
        }
    }
}

/// [`SessionLogin`] as the session stores it, like [`StoredAuth`].
#[derive(Serialize, Deserialize)]
struct StoredLogin(String, i64, i64, usize);

impl From<&SessionLogin> for StoredLogin {
    fn from(login: &SessionLogin) -> Self {
        let SessionLogin {
            id,
            started_at,
            last_seen,
            dropped_roles,
        } = login.clone();
        Self(id, started_at, last_seen, dropped_roles)
    }
}

impl From<StoredLogin> for SessionLogin {
    fn from(StoredLogin(id, started_at, last_seen, dropped_roles): StoredLogin) -> Self {
        SessionLogin {
            id,
            started_at,
            last_seen,
            dropped_roles,
        }
    }
}

/// The `Set-Cookie` header a session state takes with the cookie store (an encrypted, private
/// cookie): the JSON, plus AES-GCM's nonce and tag, in base64, percent-encoded where it has
/// `/` or `=` (counted twice as often as chance would have them), and the attributes.
pub fn cookie_bytes(entries: &HashMap<String, String>) -> usize {
    let json = serde_json::to_string(entries).map_or(0, |s| s.len());
    let sealed = json + 12 + 16;
    let base64 = sealed.div_ceil(3) * 4;
    // The cookie's encoding escapes some of base64's characters (2 bytes more each; how
    // many is random): 1/16 and a constant keep the estimate above the real size.
    let encoded = base64 + base64 / 16 + 16;
    let attributes = "; HttpOnly; SameSite=Lax; Secure; Path=/".len();
    SESSION_COOKIE.len() + 1 + encoded + attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_keeps_the_policys_roles_and_a_few_others() {
        let mut auth = AuthState::new("alice", 0);
        auth.roles = ["staff", "hr", "auditors"].map(String::from).to_vec();
        let (kept, dropped) = for_session(auth.clone(), &["hr"]);
        assert_eq!(
            (kept.roles, dropped),
            (vec!["hr".into(), "staff".into(), "auditors".into()], 0)
        );
        auth.roles = (0..200)
            .map(|i| format!("group-{i:03}"))
            .chain(["hr".into()])
            .collect();
        auth.name = Some("x".repeat(5000));
        let (kept, dropped) = for_session(auth, &["hr"]);
        assert_eq!(kept.roles[0], "hr", "the policy's role, wherever it was");
        assert_eq!(kept.roles.len(), 17);
        assert_eq!(dropped, 201 - 17);
        assert_eq!(kept.name.unwrap().len(), MAX_DISPLAY_CHARS);
    }

    #[test]
    fn every_change_to_the_login_forgets_the_judged_one() {
        let req = actix_web::test::TestRequest::default().to_http_request();
        let typed = TypedSession::from_request(&req);
        let judged = |req: &HttpRequest| req.extensions().get::<Judged>().map(|j| j.0.clone());
        let alice = AuthState::new("alice", 1);
        let login = SessionLogin {
            id: "l".into(),
            started_at: 1,
            last_seen: 1,
            dropped_roles: 0,
        };
        // Once judged, later calls in the request get that answer without reading the session.
        req.extensions_mut().insert(Judged(Some(alice.clone())));
        assert_eq!(typed.auth().unwrap(), Some(alice.clone()));
        typed.log_in(&alice, &login).unwrap();
        assert_eq!(judged(&req), None, "log_in forgets the judged login");
        req.extensions_mut().insert(Judged(Some(alice.clone())));
        typed.log_out();
        assert_eq!(judged(&req), None, "log_out forgets it");
        assert_eq!(typed.auth().unwrap(), None, "and the next call finds nobody");
        req.extensions_mut().insert(Judged(Some(alice)));
        typed.forget_login();
        assert_eq!(judged(&req), None, "forget_login forgets it");
    }

    #[test]
    fn the_stored_login_keeps_every_field_in_fewer_bytes() {
        let mut auth = AuthState::new("alice", 1_800_000_001);
        auth.name = Some("Alice Ashford".into());
        auth.email = Some("alice@fabrikam.example".into());
        auth.acr = Some("urn:fabrikam:acr:password".into());
        auth.amr = vec!["pwd".into(), "otp".into()];
        auth.auth_time = Some(1_800_000_000);
        auth.acrs = vec!["c1".into()];
        auth.roles = vec!["hr".into()];
        auth.step_up_for = Some("salary".into());
        let stored = serde_json::to_string(&StoredAuth::from(&auth)).unwrap();
        let back: StoredAuth = serde_json::from_str(&stored).unwrap();
        assert_eq!(AuthState::from(back), auth);
        assert!(
            stored.len() < serde_json::to_string(&auth).unwrap().len() * 3 / 4,
            "{stored}"
        );
        let login = SessionLogin {
            id: "id".into(),
            started_at: 1,
            last_seen: 2,
            dropped_roles: 3,
        };
        let stored = serde_json::to_string(&StoredLogin::from(&login)).unwrap();
        assert_eq!(stored, r#"["id",1,2,3]"#);
        assert_eq!(
            SessionLogin::from(serde_json::from_str::<StoredLogin>(&stored).unwrap()),
            login
        );
        // A session of the earlier, named form is not read as a login.
        let named = serde_json::to_string(&auth).unwrap();
        assert!(serde_json::from_str::<StoredAuth>(&named).is_err());
    }

    #[test]
    fn the_cookie_estimate_is_close_to_the_real_cookie() {
        use actix_web::cookie::{Cookie, CookieJar, Key};
        let key = Key::generate();
        for size in [10, 500, 2_000, 2_800] {
            let entries: HashMap<String, String> = [("k".to_owned(), "v".repeat(size))].into();
            let mut jar = CookieJar::new();
            jar.private_mut(&key).add(Cookie::new(
                SESSION_COOKIE,
                serde_json::to_string(&entries).unwrap(),
            ));
            let mut cookie = jar.delta().next().unwrap().clone();
            cookie.set_http_only(true);
            cookie.set_secure(true);
            cookie.set_path("/");
            cookie.set_same_site(actix_web::cookie::SameSite::Lax);
            let real = cookie.encoded().to_string().len();
            let estimate = cookie_bytes(&entries);
            assert!(estimate >= real, "{size}: estimate {estimate} < real {real}");
            assert!(
                estimate <= real + real / 20 + 24,
                "{size}: estimate {estimate} far above {real}"
            );
        }
    }
}
