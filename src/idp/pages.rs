//! The pages a person sees at Fabrikam ID: home, password login, second factor (TOTP) and
//! TOTP enrolment. Each form carries a CSRF token; each success resumes the pending sign-in.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use totp_rs::Secret;

use super::authorize::resume_pending;
use super::backchannel;
use super::directory::{TotpRefusal, totp};
use super::errors::PageError;
use super::paths::Links;
use super::protocol::{AuthState, Level};
use super::session::{IdpSession, REMEMBER_COOKIE, browser_cookie};
use super::state::{Idp, REMEMBER_TTL_SECS};
use super::throttle::PasswordRefusal;
use super::views::{page, redirect_error, see};

/// The application asking, as shown to the person: its registered name (`client_name`) and
/// where it lives, so a look-alike name on another host stands out.
pub struct App {
    pub name: String,
    pub host: String,
}

pub fn app_of(idp: &Idp, session: &IdpSession) -> Option<App> {
    let pending = session.pending()?;
    let host = url::Url::parse(&pending.request.redirect_uri)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        })
        .unwrap_or_default();
    let name = idp
        .client(&pending.request.client_id)
        .map_or(pending.request.client_id.as_str(), |c| c.display_name())
        .to_owned();
    Some(App { name, host })
}

/// [`app_of`] in one phrase: "Fabrikam intranet at localhost:8080".
pub fn app_label(idp: &Idp, session: &IdpSession) -> Option<String> {
    app_of(idp, session).map(|app| format!("{} at {}", app.name, app.host))
}

/// Why a second-factor page is shown, in words, from the pending request and the session.
pub struct Why {
    /// What the application asked for ("a multi-factor sign-in"), or `None` when Fabrikam ID
    /// asks on its own (`IDP_MFA_AT_LOGIN` on a browser it does not remember).
    pub asked: Option<&'static str>,
    /// "12 min ago" when the password is reused from this browser's session rather than
    /// entered for this request.
    pub password_reused: Option<String>,
}

impl Why {
    fn of(idp: &Idp, session: &IdpSession, auth: &AuthState) -> Self {
        let pending = session.pending();
        let asked = pending
            .as_ref()
            .and_then(|p| match p.request.requirements.class() {
                Level::Password => None,
                Level::MultiFactor => Some("a multi-factor sign-in"),
                Level::PhishingResistant => Some("a phishing-resistant sign-in (a passkey)"),
            });
        let entered_now = pending.is_some_and(|p| session.progress(&p.id).password_done);
        Why {
            asked,
            password_reused: (!entered_now).then(|| ago(idp.now() - auth.password_at)),
        }
    }
}

/// "just now", "4 min ago", "3 h ago", "2 days ago".
fn ago(secs: i64) -> String {
    match secs {
        ..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// The remember-browser choice on the second-factor page. Offered only with
/// `IDP_MFA_AT_LOGIN` (without it a remembered browser changes nothing); ticked when this
/// browser is already remembered for the user, and unticking it forgets the browser.
pub struct RememberChoice {
    pub remembered: bool,
}

fn remember_choice(req: &HttpRequest, idp: &Idp, user: &str) -> Option<RememberChoice> {
    idp.mfa_at_login.then(|| RememberChoice {
        remembered: req
            .cookie(REMEMBER_COOKIE)
            .is_some_and(|c| idp.is_remembered(c.value(), user)),
    })
}

/// `"JBSWY3DP…"` → `["JBSW", "Y3DP", …]`: the secret as people copy it, four by four.
fn groups_of_four(secret: &str) -> Vec<String> {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

#[derive(Template)]
#[template(path = "idp/home.html")]
struct HomePage<'a> {
    links: &'a Links,
    user: Option<String>,
}

/// `GET /`: what Fabrikam ID is, and who is signed in here.
pub async fn home(session: IdpSession, idp: web::Data<Idp>) -> Result<HttpResponse, PageError> {
    let user = session
        .auth()
        .and_then(|a| idp.directory.user(&a.user))
        .map(|u| u.name);
    page(
        HomePage {
            links: &idp.links,
            user,
        },
        StatusCode::OK,
    )
}

#[derive(Template)]
#[template(path = "idp/login.html")]
struct LoginPage<'a> {
    links: &'a Links,
    app: Option<App>,
    error: Option<String>,
    username: String,
    /// Signed in here already (the password is checked again): offer "Not <user>?".
    signed_in_as: Option<String>,
    csrf: String,
}

/// `GET /login` (the user name is filled in when re-checking a signed-in user's password).
pub async fn login_page(session: IdpSession, idp: web::Data<Idp>) -> Result<HttpResponse, PageError> {
    let app = app_of(&idp, &session);
    let signed_in_as = session.auth().map(|a| a.user);
    page(
        LoginPage {
            links: &idp.links,
            app,
            error: None,
            username: signed_in_as.clone().unwrap_or_default(),
            signed_in_as,
            csrf: session.csrf_token(),
        },
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf_token: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// `POST /login`: checks the password; a wrong one shows the page again and changes nothing.
/// After too many failures for the user name the page comes back with 429 and `Retry-After`,
/// the password unchecked, until the name's delay is over (see [`super::directory`]).
pub async fn login(
    req: HttpRequest,
    session: IdpSession,
    idp: web::Data<Idp>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    if !session.csrf_ok(form.csrf_token.as_deref()) {
        return Err(PageError::csrf());
    }
    let again = |error: &str, username: String, status| {
        page(
            LoginPage {
                links: &idp.links,
                app: app_of(&idp, &session),
                error: Some(error.to_owned()),
                username,
                signed_in_as: session.auth().map(|a| a.user),
                csrf: session.csrf_token(),
            },
            status,
        )
    };
    let (Some(username), Some(password)) = (form.username, form.password) else {
        return again(
            "Enter your user name and password.",
            String::new(),
            StatusCode::BAD_REQUEST,
        );
    };
    let username = username.trim().to_owned();
    // This browser's own budget for the name, if it signed in as it before.
    let device = session.device_for(&username);
    let checked = idp
        .clone()
        .into_inner()
        .check_password(username.clone(), password, device.clone())
        .await?;
    let refused = match checked {
        Ok(_) => None,
        Err(PasswordRefusal::Delayed { retry_after_secs }) => {
            // Debug-quoted: the name is whatever was posted, possibly with line breaks.
            tracing::info!(
                ?username,
                known_browser = device.is_some(),
                retry_after_secs,
                "password login refused unchecked: too many failures"
            );
            Some((retry_after_secs, "Too many failed sign-ins for this account."))
        }
        Err(PasswordRefusal::Busy { retry_after_secs }) => {
            tracing::info!(
                ?username,
                "password login refused unchecked: the throttle is full"
            );
            Some((
                retry_after_secs,
                "Too many failed sign-ins at Fabrikam ID from browsers it does not know.",
            ))
        }
        Err(PasswordRefusal::Wrong) => {
            tracing::info!("password login failed");
            // This failure may have been the one that started a delay: say so at once.
            idp.password_delay(&username, device.as_deref())
                .map(|secs| (secs, "Too many failed sign-ins for this account."))
        }
    };
    if let Some((secs, why)) = refused {
        let message = format!("{why} Try again in {secs} s.");
        let mut res = again(&message, username, StatusCode::TOO_MANY_REQUESTS)?;
        with_retry_after(&mut res, Some(secs));
        return Ok(res);
    }
    let Ok(user) = checked else {
        return again(
            "That user name and password do not match. Try again.",
            username,
            StatusCode::OK,
        );
    };
    let (_, replaced) = session.log_in(&user.username, idp.now());
    session.remember_device(&user.username);
    tracing::info!(user = %user.username, "password accepted");
    if let Some(ended) = replaced {
        tracing::info!(user = %ended.user, "the browser's session of another user ended");
        backchannel::notify(&idp, ended);
    }
    if session.pending().is_some() {
        resume_pending(&req, &idp, &session, StatusCode::SEE_OTHER)
    } else {
        Ok(see(&idp.links.home, StatusCode::SEE_OTHER))
    }
}

/// The signed-in user a second-factor page needs, with a sign-in pending.
fn second_factor_context(session: &IdpSession) -> Result<AuthState, PageError> {
    match (session.auth(), session.pending()) {
        (Some(auth), Some(_)) => Ok(auth),
        _ => Err(PageError::no_pending_request()),
    }
}

#[derive(Template)]
#[template(path = "idp/mfa.html")]
struct MfaPage<'a> {
    links: &'a Links,
    app: Option<App>,
    why: Why,
    remember: Option<RememberChoice>,
    user: String,
    error: Option<String>,
    csrf: String,
    /// The user has a passkey: offer it next to the code.
    has_passkey: bool,
}

fn has_passkey(idp: &Idp, user: &str) -> bool {
    idp.passkeys.as_ref().is_some_and(|p| p.has_any(user))
}

impl<'a> MfaPage<'a> {
    fn new(req: &HttpRequest, idp: &'a Idp, session: &IdpSession, auth: &AuthState) -> Self {
        MfaPage {
            links: &idp.links,
            app: app_of(idp, session),
            why: Why::of(idp, session, auth),
            remember: remember_choice(req, idp, &auth.user),
            user: auth.user.clone(),
            error: None,
            csrf: session.csrf_token(),
            has_passkey: has_passkey(idp, &auth.user),
        }
    }
}

/// `GET /mfa`.
pub async fn mfa_page(
    req: HttpRequest,
    session: IdpSession,
    idp: web::Data<Idp>,
) -> Result<HttpResponse, PageError> {
    let auth = second_factor_context(&session)?;
    if !idp.directory.has_totp(&auth.user) {
        return Ok(see(&idp.links.enroll, StatusCode::SEE_OTHER));
    }
    page(MfaPage::new(&req, &idp, &session, &auth), StatusCode::OK)
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf_token: Option<String>,
    code: Option<String>,
    remember_browser: Option<String>,
    /// Sent by a page that showed the remember-browser box (ticked or not): an unticked box
    /// then means "do not remember this browser", and a remembered one is forgotten.
    remember_browser_shown: Option<String>,
}

/// `POST /mfa`: checks the TOTP code (RFC 6238 §5.2: ±1 step, each step once).
pub async fn mfa(
    req: HttpRequest,
    session: IdpSession,
    idp: web::Data<Idp>,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    if !session.csrf_ok(form.csrf_token.as_deref()) {
        return Err(PageError::csrf());
    }
    let auth = second_factor_context(&session)?;
    let code = form.code.unwrap_or_default();
    if let Err(refusal) = idp.directory.check_totp(&auth.user, &code, idp.clock.real()) {
        tracing::info!(user = %auth.user, ?refusal, "second factor refused");
        let (error, status, retry_after) = refusal_message(&idp, &session, &auth.user, refusal)?;
        let mut res = page(
            MfaPage {
                error: Some(error),
                ..MfaPage::new(&req, &idp, &session, &auth)
            },
            status,
        )?;
        with_retry_after(&mut res, retry_after);
        return Ok(res);
    }
    let user = auth.user;
    session.second_factor_done(idp.now());
    tracing::info!(%user, "second factor accepted");
    let mut res = resume_pending(&req, &idp, &session, StatusCode::SEE_OTHER)?;
    let remembered = req.cookie(REMEMBER_COOKIE);
    let cookie = if form.remember_browser.is_some() {
        let value = idp.remember_browser(&user);
        let max_age = Some(CookieDuration::seconds(REMEMBER_TTL_SECS));
        Some(browser_cookie(&idp, REMEMBER_COOKIE, value, max_age))
    } else if form.remember_browser_shown.is_some()
        && let Some(old) = remembered.filter(|c| idp.is_remembered(c.value(), &user))
    {
        // The box was shown ticked (this browser is remembered) and the person unticked it.
        idp.forget_browser(old.value());
        tracing::info!(%user, "browser no longer remembered");
        Some(browser_cookie(
            &idp,
            REMEMBER_COOKIE,
            String::new(),
            Some(CookieDuration::ZERO),
        ))
    } else {
        None
    };
    if let Some(cookie) = cookie {
        res.add_cookie(&cookie)
            .map_err(|e| PageError::Unexpected(e.into()))?;
    }
    Ok(res)
}

/// What to tell the person after a refused code, with the status and `Retry-After`.
/// Failed guesses count against the pending sign-in; the last one allowed ends it (the
/// person starts again from the application), so one sign-in cannot guess on forever.
fn refusal_message(
    idp: &Idp,
    session: &IdpSession,
    user: &str,
    refusal: TotpRefusal,
) -> Result<(String, StatusCode, Option<i64>), PageError> {
    if refusal.is_failed_guess() && !session.code_failed() {
        tracing::info!(%user, "too many wrong codes: the pending sign-in was ended");
        return Err(PageError::TooManyAttempts(
            "Too many wrong codes for this sign-in. Go back to the application and start again.".into(),
        ));
    }
    let locked = match refusal {
        TotpRefusal::Locked { retry_after_secs } => Some(retry_after_secs),
        // This wrong code may have been the one that started a lock: say so at once.
        TotpRefusal::Wrong | TotpRefusal::Replayed => idp.directory.code_lock(user, idp.clock.real()),
        TotpRefusal::NotEnrolled | TotpRefusal::AlreadyEnrolled => None,
    };
    if let Some(secs) = locked {
        let message = format!("Too many attempts. Try again in {secs} s.");
        return Ok((message, StatusCode::TOO_MANY_REQUESTS, Some(secs)));
    }
    let message = match refusal {
        TotpRefusal::Replayed => "That code was already used. Wait for the next code and enter it.",
        TotpRefusal::NotEnrolled => "You have no authenticator set up yet.",
        TotpRefusal::AlreadyEnrolled => "An authenticator is already set up for this account.",
        TotpRefusal::Wrong | TotpRefusal::Locked { .. } => {
            "That code is not right. Enter the current 6-digit code from your authenticator app."
        }
    };
    Ok((message.into(), StatusCode::OK, None))
}

/// RFC 6585 §4: a 429 may say when to come back.
fn with_retry_after(res: &mut HttpResponse, secs: Option<i64>) {
    if let Some(secs) = secs
        && let Ok(value) = actix_web::http::header::HeaderValue::from_str(&secs.to_string())
    {
        res.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, value);
    }
}

#[derive(Template)]
#[template(path = "idp/enroll.html")]
struct EnrollPage<'a> {
    links: &'a Links,
    app: Option<App>,
    why: Why,
    user: String,
    /// The base32 secret, four characters a group.
    secret: Vec<String>,
    qr_data_uri: String,
    error: Option<String>,
    csrf: String,
}

/// This session's enrolment secret, created on first view.
fn enroll_secret(session: &IdpSession) -> Result<Secret, PageError> {
    if let Some(b32) = session.enroll_secret()
        && let Ok(secret) = Secret::try_from_base32(&b32)
    {
        return Ok(secret);
    }
    let secret = Secret::generate();
    session.set_enroll_secret(&secret.to_base32());
    Ok(secret)
}

fn enroll_page(
    idp: &Idp,
    session: &IdpSession,
    auth: &AuthState,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let secret = enroll_secret(session)?;
    let user = auth.user.clone();
    let uri = totp(&secret, &user)
        .and_then(|t| t.to_url().ok())
        .ok_or_else(|| PageError::Unexpected(anyhow::anyhow!("cannot build the otpauth URI")))?;
    let svg = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| PageError::Unexpected(e.into()))?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .build();
    page(
        EnrollPage {
            links: &idp.links,
            app: app_of(idp, session),
            why: Why::of(idp, session, auth),
            user,
            secret: groups_of_four(&secret.to_base32()),
            qr_data_uri: format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg)),
            error,
            csrf: session.csrf_token(),
        },
        status,
    )
}

/// `GET /enroll`: a QR code and the base32 secret of a new TOTP.
pub async fn enroll_form(session: IdpSession, idp: web::Data<Idp>) -> Result<HttpResponse, PageError> {
    let auth = second_factor_context(&session)?;
    if idp.directory.has_totp(&auth.user) {
        return Ok(see(&idp.links.mfa, StatusCode::SEE_OTHER));
    }
    enroll_page(&idp, &session, &auth, None, StatusCode::OK)
}

/// `POST /enroll`: a valid code enrols the secret and counts as the second factor.
pub async fn enroll(
    req: HttpRequest,
    session: IdpSession,
    idp: web::Data<Idp>,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    if !session.csrf_ok(form.csrf_token.as_deref()) {
        return Err(PageError::csrf());
    }
    let auth = second_factor_context(&session)?;
    if idp.directory.has_totp(&auth.user) {
        return Err(PageError::bad_request(
            "An authenticator is already set up for this account.",
        ));
    }
    let secret = enroll_secret(&session)?;
    let code = form.code.unwrap_or_default();
    match idp.directory.enroll(&auth.user, &secret, &code, idp.clock.real()) {
        Ok(()) => {}
        Err(TotpRefusal::AlreadyEnrolled) => {
            return Err(PageError::bad_request(
                "An authenticator is already set up for this account.",
            ));
        }
        Err(refusal) => {
            tracing::info!(user = %auth.user, ?refusal, "enrolment code refused");
            let (mut error, status, retry_after) = refusal_message(&idp, &session, &auth.user, refusal)?;
            if refusal == TotpRefusal::Wrong && status == StatusCode::OK {
                error = "That code is not right. Scan the QR code (or type the key) and enter the \
                         current code."
                    .into();
            }
            let mut res = enroll_page(&idp, &session, &auth, Some(error), status)?;
            with_retry_after(&mut res, retry_after);
            return Ok(res);
        }
    }
    tracing::info!(user = %auth.user, "TOTP enrolled");
    session.second_factor_done(idp.now());
    resume_pending(&req, &idp, &session, StatusCode::SEE_OTHER)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf_token: Option<String>,
}

/// `POST /cancel`: the person gives up on the pending sign-in (the Cancel button of the
/// sign-in, code and enrolment pages). The application gets `error=access_denied` with its
/// `state` (OIDC Core §3.1.2.6, RFC 6749 §4.1.2.1: "the resource owner ... denied the
/// request"); a Fabrikam ID session, if any, stays as it was.
pub async fn cancel(session: IdpSession, form: web::Form<CsrfForm>) -> Result<HttpResponse, PageError> {
    if !session.csrf_ok(form.csrf_token.as_deref()) {
        return Err(PageError::csrf());
    }
    let pending = session.pending().ok_or_else(PageError::no_pending_request)?;
    session.clear_pending();
    tracing::info!(client_id = %pending.request.client_id, "sign-in cancelled by the person");
    Ok(redirect_error(
        &pending.request.redirect_uri,
        pending.request.state.as_deref(),
        "access_denied",
        "the user cancelled the sign-in",
        StatusCode::SEE_OTHER,
    ))
}

/// `POST /switch-user` ("Not alice?"): signs this browser out of Fabrikam ID (the
/// applications it served hear of it by back-channel logout) and shows the sign-in page again
/// for the same pending request.
pub async fn switch_user(
    session: IdpSession,
    idp: web::Data<Idp>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    if !session.csrf_ok(form.csrf_token.as_deref()) {
        return Err(PageError::csrf());
    }
    let pending = session.pending();
    if let Some(ended) = session.log_out() {
        tracing::info!(user = %ended.user, "signed out to sign in as someone else");
        backchannel::notify(&idp, ended);
    }
    let Some(pending) = pending else {
        return Ok(see(&idp.links.home, StatusCode::SEE_OTHER));
    };
    // Smaller than when it was first kept: it fits.
    let _ = session.set_pending(pending);
    Ok(see(&idp.links.login, StatusCode::SEE_OTHER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_shown_four_by_four() {
        assert_eq!(
            groups_of_four("JBSWY3DPEHPK3PXPJB"),
            ["JBSW", "Y3DP", "EHPK", "3PXP", "JB"]
        );
        assert!(groups_of_four("").is_empty());
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(5), "just now");
        assert_eq!(ago(240), "4 min ago");
        assert_eq!(ago(3 * 3600 + 5), "3 h ago");
        assert_eq!(ago(2 * 86_400), "2 days ago");
    }
}
