//! Passkeys at Fabrikam ID, the pages and their JSON ceremony endpoints: the step-up page
//! (`GET /passkey`: sign in with a passkey, or create the first one), the account page
//! (`GET /account`: list, add, remove), and the four `POST /passkeys/...` endpoints
//! `static/passkey.js` calls. Every POST carries the CSRF token (a form field, or
//! `csrf_token` in the JSON body); every ceremony's state stays in the server-side session.
//!
//! **Adding a passkey needs a recent second factor** (a code or a passkey in the last
//! [`REGISTER_WITHIN_SECS`]): with a password alone, someone who phished it could register
//! their own key and pass every phishing-resistant check afterwards (NIST SP 800-63B-4 §4.1.2.2:
//! binding an authenticator needs authentication at the level the account has). Registering
//! does not itself sign in: the new passkey is then used once, like any other.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::authorize::resume_pending;
use super::errors::PageError;
use super::passkeys::{CEREMONY_TTL_SECS, PasskeyError, Passkeys, StoredPasskey};
use super::paths::Links;
use super::protocol::AuthState;
use super::session::IdpSession;
use super::sessions::Ceremony;
use super::state::Idp;
use super::views::{page, see};

/// How recent a second factor must be to add a passkey: 10 minutes.
pub const REGISTER_WITHIN_SECS: i64 = 10 * 60;

/// Whether `auth` completed a second factor recently enough to add a passkey.
fn may_register(auth: &AuthState, now: i64) -> bool {
    auth.last_second_factor()
        .is_some_and(|at| now - at <= REGISTER_WITHIN_SECS)
}

/// A passkey as the pages list it.
struct Listed {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

fn listed(p: &StoredPasskey) -> Listed {
    let day = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    };
    Listed {
        id: p.id(),
        name: p.name.clone(),
        created: day(p.created_at),
        last_used: p.last_used_at.map(day).unwrap_or_else(|| "never".into()),
    }
}

#[derive(Template)]
#[template(path = "idp/passkey.html")]
struct PasskeyPage<'a> {
    links: &'a Links,
    app: Option<String>,
    user: String,
    has_passkey: bool,
    may_register: bool,
    has_totp: bool,
    csrf: String,
}

/// `GET /passkey`: the step-up page when the request needs the phishing-resistant class.
pub async fn passkey_page(session: IdpSession, idp: web::Data<Idp>) -> Result<HttpResponse, PageError> {
    let Some(passkeys) = idp.passkeys.as_ref() else {
        return Err(PageError::NotFound);
    };
    let auth = match (session.auth(), session.pending()) {
        (Some(auth), Some(_)) => auth,
        _ => return Err(PageError::no_pending_request()),
    };
    page(
        PasskeyPage {
            links: &idp.links,
            app: super::pages::app_label(&idp, &session),
            has_passkey: passkeys.has_any(&auth.user),
            may_register: may_register(&auth, idp.now()),
            has_totp: idp.directory.has_totp(&auth.user),
            user: auth.user,
            csrf: session.csrf_token(),
        },
        StatusCode::OK,
    )
}

#[derive(Template)]
#[template(path = "idp/account.html")]
struct AccountPage<'a> {
    links: &'a Links,
    user: String,
    name: String,
    passkeys_offered: bool,
    passkeys: Vec<Listed>,
    may_register: bool,
    has_totp: bool,
    message: Option<String>,
    error: Option<String>,
    csrf: String,
}

fn account_page(
    idp: &Idp,
    session: &IdpSession,
    auth: AuthState,
    message: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let name = idp
        .directory
        .user(&auth.user)
        .map(|u| u.name)
        .unwrap_or_else(|| auth.user.clone());
    let list = idp
        .passkeys
        .as_ref()
        .map(|p| p.list(&auth.user).iter().map(listed).collect())
        .unwrap_or_default();
    page(
        AccountPage {
            links: &idp.links,
            name,
            passkeys_offered: idp.passkeys.is_some(),
            passkeys: list,
            may_register: may_register(&auth, idp.now()),
            has_totp: idp.directory.has_totp(&auth.user),
            user: auth.user,
            message,
            error,
            csrf: session.csrf_token(),
        },
        status,
    )
}

/// `GET /account`: the signed-in user's passkeys; signed out, the login page.
pub async fn account(session: IdpSession, idp: web::Data<Idp>) -> Result<HttpResponse, PageError> {
    match session.auth() {
        Some(auth) => account_page(&idp, &session, auth, None, None, StatusCode::OK),
        None => Ok(see(&idp.links.login, StatusCode::FOUND)),
    }
}

#[derive(Deserialize)]
pub struct VerifyForm {
    csrf_token: Option<String>,
    code: Option<String>,
}

/// `POST /account/verify`: a current code, so that a passkey may be added. Wrong codes count
/// against the user's lock-out like any other ([`super::directory`]).
pub async fn account_verify(
    session: IdpSession,
    idp: web::Data<Idp>,
    form: web::Form<VerifyForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    if !session.csrf_ok(form.csrf_token.as_deref()) {
        return Err(PageError::csrf());
    }
    let Some(auth) = session.auth() else {
        return Ok(see(&idp.links.login, StatusCode::SEE_OTHER));
    };
    let code = form.code.unwrap_or_default();
    if let Err(refusal) = idp.directory.check_totp(&auth.user, &code, idp.clock.real()) {
        tracing::info!(user = %auth.user, ?refusal, "account: code refused");
        let error = match idp.directory.code_lock(&auth.user, idp.clock.real()) {
            Some(secs) => format!("Too many attempts. Try again in {secs} s."),
            None => {
                "That code is not right. Enter the current 6-digit code from your authenticator app.".into()
            }
        };
        return account_page(&idp, &session, auth, None, Some(error), StatusCode::OK);
    }
    session.second_factor_done(idp.now());
    tracing::info!(user = %auth.user, "account: second factor accepted");
    Ok(see(&idp.links.account, StatusCode::SEE_OTHER))
}

#[derive(Deserialize)]
pub struct RemoveForm {
    csrf_token: Option<String>,
    passkey: Option<String>,
}

/// `POST /account/passkeys/remove`: removes one of the user's passkeys (needs a recent second
/// factor, as adding one does).
pub async fn account_remove(
    session: IdpSession,
    idp: web::Data<Idp>,
    form: web::Form<RemoveForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    if !session.csrf_ok(form.csrf_token.as_deref()) {
        return Err(PageError::csrf());
    }
    let (Some(auth), Some(passkeys)) = (session.auth(), idp.passkeys.as_ref()) else {
        return Ok(see(&idp.links.login, StatusCode::SEE_OTHER));
    };
    if !may_register(&auth, idp.now()) {
        let error = "Enter a code from your authenticator first.".to_owned();
        return account_page(&idp, &session, auth, None, Some(error), StatusCode::FORBIDDEN);
    }
    let id = form.passkey.unwrap_or_default();
    let removed = passkeys
        .remove(&auth.user, &id)
        .map_err(|e| PageError::Unexpected(e.into()))?;
    let (message, error) = if removed {
        tracing::info!(user = %auth.user, "passkey removed");
        (Some("The passkey was removed.".to_owned()), None)
    } else {
        (None, Some("No such passkey.".to_owned()))
    };
    account_page(&idp, &session, auth, message, error, StatusCode::OK)
}

/// An error of the JSON endpoints: `{"error": ..., "message": ...}`, the message for people.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    #[error("{0}")]
    Refused(&'static str, String, StatusCode),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl CeremonyError {
    fn forbidden(code: &'static str, message: &str) -> Self {
        Self::Refused(code, message.to_owned(), StatusCode::FORBIDDEN)
    }

    fn bad(code: &'static str, message: &str) -> Self {
        Self::Refused(code, message.to_owned(), StatusCode::BAD_REQUEST)
    }
}

impl ResponseError for CeremonyError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Refused(_, _, status) => *status,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, message) = match self {
            Self::Refused(code, message, _) => (*code, message.clone()),
            Self::Unexpected(e) => {
                tracing::error!(error = %e, "passkey ceremony failed");
                (
                    "server_error",
                    "Fabrikam ID could not complete this. Try again.".to_owned(),
                )
            }
        };
        HttpResponse::build(self.status_code())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "error": code, "message": message }))
    }
}

impl From<PasskeyError> for CeremonyError {
    fn from(e: PasskeyError) -> Self {
        match e {
            PasskeyError::Rejected(why) => {
                tracing::info!(error = %why, "passkey answer refused");
                Self::bad(
                    "passkey_rejected",
                    "The passkey's answer was not accepted. Try again.",
                )
            }
            PasskeyError::Duplicate => Self::bad("duplicate", "This passkey is already registered."),
            PasskeyError::TooMany => Self::bad("too_many", "You have as many passkeys as you may register."),
            e @ PasskeyError::Store { .. } => Self::Unexpected(e.into()),
        }
    }
}

#[derive(Deserialize)]
pub struct OptionsBody {
    csrf_token: Option<String>,
}

#[derive(Deserialize)]
pub struct RegisterBody {
    csrf_token: Option<String>,
    #[serde(default)]
    name: String,
    credential: RegisterPublicKeyCredential,
}

#[derive(Deserialize)]
pub struct SignInBody {
    csrf_token: Option<String>,
    credential: PublicKeyCredential,
}

/// The signed-in user and the relying party, after the CSRF check.
fn ceremony_context<'a>(
    session: &IdpSession,
    idp: &'a Idp,
    csrf: Option<&str>,
) -> Result<(AuthState, &'a Passkeys), CeremonyError> {
    let passkeys = idp.passkeys.as_ref().ok_or_else(|| {
        CeremonyError::Refused(
            "not_available",
            "Passkeys need Fabrikam ID at a host name such as localhost, not an IP address.".into(),
            StatusCode::NOT_FOUND,
        )
    })?;
    if !session.csrf_ok(csrf) {
        return Err(CeremonyError::forbidden(
            "csrf",
            "This page has expired. Reload it and try again.",
        ));
    }
    let auth = session
        .auth()
        .ok_or_else(|| CeremonyError::forbidden("login_required", "Sign in first."))?;
    Ok((auth, passkeys))
}

/// `POST /passkeys/register/options`: the options for `navigator.credentials.create`.
pub async fn register_options(
    session: IdpSession,
    idp: web::Data<Idp>,
    body: web::Json<OptionsBody>,
) -> Result<HttpResponse, CeremonyError> {
    let (auth, passkeys) = ceremony_context(&session, &idp, body.csrf_token.as_deref())?;
    if !may_register(&auth, idp.now()) {
        return Err(CeremonyError::forbidden(
            "second_factor_required",
            "Enter a code from your authenticator first: adding a passkey needs it.",
        ));
    }
    let display = idp
        .directory
        .user(&auth.user)
        .map(|u| u.name)
        .unwrap_or_else(|| auth.user.clone());
    let (options, state) = passkeys.start_registration(&auth.user, &display)?;
    session.set_ceremony(Ceremony::Register {
        state,
        started_at: idp.clock.real(),
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(options))
}

/// `POST /passkeys/register`: verifies the new passkey and stores it.
pub async fn register(
    session: IdpSession,
    idp: web::Data<Idp>,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, CeremonyError> {
    let body = body.into_inner();
    let (auth, passkeys) = ceremony_context(&session, &idp, body.csrf_token.as_deref())?;
    let now = idp.clock.real();
    let state = match session.take_ceremony() {
        Some(Ceremony::Register { state, started_at }) if now - started_at <= CEREMONY_TTL_SECS => state,
        _ => {
            return Err(CeremonyError::bad(
                "no_ceremony",
                "No passkey registration is in progress (or it took too long). Start again.",
            ));
        }
    };
    // Checked again: the ceremony may have started just inside the window.
    if !may_register(&auth, idp.now()) {
        return Err(CeremonyError::forbidden(
            "second_factor_required",
            "Enter a code from your authenticator first: adding a passkey needs it.",
        ));
    }
    let stored = passkeys.finish_registration(&auth.user, &body.name, &body.credential, &state, now)?;
    tracing::info!(user = %auth.user, passkey = %stored.name, "passkey registered");
    let next = if session.pending().is_some() {
        &idp.links.passkey
    } else {
        &idp.links.account
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "registered": stored.name, "next": next })))
}

/// `POST /passkeys/sign-in/options`: the options for `navigator.credentials.get`, for the
/// pending sign-in.
pub async fn sign_in_options(
    session: IdpSession,
    idp: web::Data<Idp>,
    body: web::Json<OptionsBody>,
) -> Result<HttpResponse, CeremonyError> {
    let (auth, passkeys) = ceremony_context(&session, &idp, body.csrf_token.as_deref())?;
    let Some(pending) = session.pending() else {
        return Err(CeremonyError::bad(
            "no_pending_request",
            "There is no sign-in in progress. Go back to the application and start again.",
        ));
    };
    let Some((options, state)) = passkeys.start_authentication(&auth.user)? else {
        return Err(CeremonyError::bad("no_passkey", "You have no passkey yet."));
    };
    session.set_ceremony(Ceremony::SignIn {
        state,
        pending_id: pending.id,
        started_at: idp.clock.real(),
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(options))
}

/// `POST /passkeys/sign-in`: verifies the assertion; it is the pending sign-in's second factor
/// (and its phishing-resistant one). Answers where the browser goes next.
pub async fn sign_in(
    req: HttpRequest,
    session: IdpSession,
    idp: web::Data<Idp>,
    body: web::Json<SignInBody>,
) -> Result<HttpResponse, CeremonyError> {
    let body = body.into_inner();
    let (auth, passkeys) = ceremony_context(&session, &idp, body.csrf_token.as_deref())?;
    let now = idp.clock.real();
    let pending = session.pending();
    let state = match (session.take_ceremony(), pending) {
        (
            Some(Ceremony::SignIn {
                state,
                pending_id,
                started_at,
            }),
            Some(p),
        ) if p.id == pending_id && now - started_at <= CEREMONY_TTL_SECS => state,
        _ => {
            return Err(CeremonyError::bad(
                "no_ceremony",
                "No passkey sign-in is in progress for this request (or it took too long). Start again.",
            ));
        }
    };
    let result = passkeys.finish_authentication(&auth.user, &body.credential, &state, now)?;
    session.passkey_done(idp.now(), result.user_verified());
    tracing::info!(user = %auth.user, user_verified = result.user_verified(), "passkey accepted");
    let res = resume_pending(&req, &idp, &session, StatusCode::SEE_OTHER).map_err(|e| match e {
        PageError::Unexpected(e) => CeremonyError::Unexpected(e),
        other => CeremonyError::bad("cannot_continue", &other.to_string()),
    })?;
    let next = res
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or(&idp.links.home)
        .to_owned();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "next": next })))
}
