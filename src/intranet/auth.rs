//! Login, callback and logout: the relying party's half of the authorization code flow
//! (OIDC Core §3.1) and of RP-Initiated Logout 1.0.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_stepup::{Decision, evaluate};
use askama::Template;
use serde::Deserialize;

use super::data::AuditEvent;
use super::errors::{AppError, complete_page};
use super::logins::{NewLogin, SessionLogin};
use super::oidc::{LoginIntent, PendingLogin};
use super::paths;
use super::session::{TypedSession, for_session};
use super::state::{AppState, RequestMeta};
use super::stepup::{begin, redirect};
use super::view::Nav;
use crate::web::secrets_equal;

/// A pending login older than this is refused at the callback.
const LOGIN_TIMEOUT_SECS: i64 = 15 * 60;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    /// A requirement's name (`salary`, `audit`): step up to it rather than sign in plainly.
    step_up: Option<String>,
}

/// `GET /login?return_to=/path[&step_up=<requirement>]`: starts the code flow and sends the
/// browser to the provider. With `step_up` (the interstitial's Continue and the failure
/// page's Try again) a signed-in user is asked for exactly what that registered requirement
/// needs.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let return_to = match query.return_to.as_deref() {
        None => paths::HOME,
        Some(candidate) => paths::safe_return_to(candidate).ok_or_else(|| {
            AppError::BadRequest("return_to must be a path on this site, such as /customers.".into())
        })?,
    };
    let requirement = match query.step_up.as_deref() {
        None => None,
        Some(name) => Some(
            state
                .requirements
                .get(name)
                .ok_or_else(|| AppError::BadRequest("Unknown step-up requirement.".into()))?,
        ),
    };
    let session = TypedSession::from_request(&req);
    if let (Some(requirement), Ok(Some(user))) = (requirement, session.auth()) {
        return match evaluate(&user, requirement, state.now()) {
            Decision::Allow { .. } => Ok(redirect(return_to)),
            Decision::Forbidden { missing_role } => Err(AppError::Forbidden { missing_role }),
            // The user asked to try again: a fresh step-up, whatever the last one returned.
            Decision::StepUp { request, shortfall } | Decision::StepUpFailed { request, shortfall } => {
                let url = begin(
                    &req,
                    &state,
                    &user,
                    requirement,
                    request,
                    shortfall,
                    return_to.to_owned(),
                )
                .await?;
                Ok(redirect(url.as_str()))
            }
        };
    }
    // Signed out (the session ended while the page was open): one sign-in that asks for
    // what the requirement needs at once, rather than a plain one and then a step-up.
    let intent = LoginIntent {
        return_to: return_to.to_owned(),
        step_up: requirement.map(|r| (r.name().to_owned(), r.step_up_request())),
    };
    let (url, pending) = state.oidc.authorization_request(intent, state.now()).await?;
    session
        .set_pending_login(&pending)
        .map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(redirect(url.as_str()))
}

/// The provider's answer (OIDC Core §3.1.2.5 and §3.1.2.6).
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /callback`: checks `state`, redeems the code with the PKCE verifier, validates the ID
/// token (nonce included), rotates the session id and sends the user where they were going.
/// Anything wrong: an error page, and the session is not created or upgraded.
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let session = TypedSession::from_request(&req);
    let no_login = || {
        AppError::BadRequest("No sign-in is in progress in this browser, or it was already completed.".into())
    };
    let query = query.into_inner();
    // RFC 6749 §10.12: the state must be the one this browser sent. An answer with another
    // state changes nothing, so a page that sends the browser to /callback with a made-up
    // one cannot cancel the sign-in in progress.
    let expected = session.pending_login().ok_or_else(no_login)?.state;
    let state_ok = query
        .state
        .as_deref()
        .is_some_and(|s| secrets_equal(s, &expected));
    if !state_ok {
        return Err(AppError::BadRequest(
            "The sign-in answer does not belong to this browser's sign-in.".into(),
        ));
    }
    // Taken out whatever happens next: an answer with the right state is used once (kanidm:
    // "prevent UI loops").
    let pending = session.take_pending_login().ok_or_else(no_login)?;
    if state.now() - pending.started_at > LOGIN_TIMEOUT_SECS {
        return Err(AppError::BadRequest(
            "The sign-in took too long. Please start again.".into(),
        ));
    }
    if let Some(error) = query.error {
        // OIDC Core §3.1.2.6. `unmet_authentication_requirements` (§5.5.1.1) answers an
        // essential acr the provider cannot meet.
        let error = printable(&error);
        if error == "access_denied" {
            // The person pressed Cancel at the provider: a choice, not a failure.
            return cancelled(&req, &state, &meta, &session, &pending).await;
        }
        if pending.step_up_for.is_some() {
            let subject = session.auth().ok().flatten().map(|a| a.subject);
            let detail = format!("the provider answered {error}");
            let _ = state
                .audit(&meta, subject.as_deref(), AuditEvent::StepUpFailed, detail)
                .await;
        }
        return Err(AppError::ProviderError {
            error,
            description: query.error_description.map(|d| printable(&d)),
            step_up: pending.step_up_for.is_some(),
        });
    }
    let code = query
        .code
        .ok_or_else(|| AppError::BadRequest("The sign-in answer has no code.".into()))?;
    let signed_in = state.oidc.finish_login(&pending, code, state.now()).await?;
    let current = session.auth().ok().flatten();
    // A step-up strengthens *this* user's login. If the provider answered for someone else
    // (another account signed in at the provider meanwhile), keep the session as it was.
    let auth = signed_in.auth;
    if pending.step_up_for.is_some()
        && let Some(current) = &current
        && current.subject != auth.subject
    {
        let detail = format!("answered by {}", auth.subject);
        let _ = state
            .audit(&meta, Some(&current.subject), AuditEvent::StepUpFailed, detail)
            .await;
        return Err(AppError::WrongUser {
            expected: current.display_name().to_owned(),
            got: auth.display_name().to_owned(),
        });
    }
    tracing::info!(
        sub = %auth.subject,
        acr = auth.acr.as_deref().unwrap_or("-"),
        amr = %auth.amr.join(" "),
        step_up_for = pending.step_up_for.as_deref().unwrap_or("-"),
        "login"
    );
    // Only what the policy needs goes into the session, so it fits a cookie whatever the
    // provider sends.
    let policy_roles: Vec<&str> = state
        .requirements
        .iter()
        .flat_map(|r| r.roles().iter().map(String::as_str))
        .collect();
    let (auth, dropped_roles) = for_session(auth, &policy_roles);
    // Within one session the login stays the same one (a step-up, or signing in again as the
    // same person): same id, same start, so neither renews the session's lifetime.
    let previous = current.and_then(|c| Some((c, session.login()?)));
    let now = state.now();
    let (login, same, replaced) = match previous {
        Some((current, login)) if current.subject == auth.subject => (
            SessionLogin {
                last_seen: now,
                dropped_roles,
                ..login
            },
            true,
            None,
        ),
        other => (
            SessionLogin {
                dropped_roles,
                ..SessionLogin::new(now)
            },
            false,
            other,
        ),
    };
    // Refuse before anything is recorded: a session that does not fit its cookie would be
    // dropped by the browser, which would then sign in again, and again.
    session
        .check_fits(&auth, &login, state.store.cookie_budget())
        .map_err(|bytes| AppError::SessionTooLarge { bytes: Some(bytes) })?;
    let recorded = if same {
        state
            .logins
            .renew(&login.id, signed_in.sid.as_deref(), &signed_in.id_token)
            .await
            .map(|_| ())
    } else {
        state
            .logins
            .begin(NewLogin {
                login_id: &login.id,
                subject: &auth.subject,
                sid: signed_in.sid.as_deref(),
                started_at: login.started_at,
                expires_at: login.expires_at(&state.sessions),
                id_token: &signed_in.id_token,
            })
            .await
    };
    // A login that cannot be recorded could not be ended by a sign-out elsewhere or by the
    // provider's back-channel logout: refused.
    recorded.map_err(|e| {
        tracing::error!(error = %e, "cannot record a sign-in");
        AppError::DatabaseUnavailable
    })?;
    if let Some((old, old_login)) = replaced {
        // Another person signed in in this browser: the previous login ends.
        state
            .logins
            .end(&old_login.id, old_login.expires_at(&state.sessions), now)
            .await;
        tracing::info!(sub = %old.subject, "replaced by another sign-in");
    }
    session
        .log_in(&auth, &login)
        .map_err(|e| AppError::Unexpected(e.into()))?;
    let _ = state
        .audit(&meta, Some(&auth.subject), AuditEvent::Login, auth.to_string())
        .await;
    if let Some(requirement) = pending
        .step_up_for
        .as_deref()
        .and_then(|name| state.requirements.get(name))
    {
        // Judge the answer now, as the page will: the provider may have ignored what we asked.
        match evaluate(&auth, requirement, now) {
            Decision::Allow { .. } => {
                let detail = format!("{auth} for {}", pending.return_to);
                let _ = state
                    .audit(&meta, Some(&auth.subject), AuditEvent::StepUpSucceeded, detail)
                    .await;
            }
            decision => {
                let detail = format!("got {auth}; {decision}");
                let _ = state
                    .audit(&meta, Some(&auth.subject), AuditEvent::StepUpFailed, detail)
                    .await;
                // No flash: the page's own refusal (403, Try again) says it once.
            }
        }
    }
    let target = paths::safe_return_to(&pending.return_to).unwrap_or(paths::HOME);
    Ok(redirect(target))
}

/// "You cancelled the extra check": a calm page (200) with a way to try again. The session is
/// left exactly as it was.
#[derive(Template)]
#[template(path = "intranet/cancelled.html")]
struct CancelledPage {
    nav: Nav,
    /// The step-up's requirement, or `None` for a plain sign-in.
    step_up: Option<String>,
    /// "the salary", "the audit trail": what stays hidden.
    hidden: &'static str,
    retry: String,
}

async fn cancelled(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
    session: &TypedSession,
    pending: &PendingLogin,
) -> Result<HttpResponse, AppError> {
    let return_to = paths::safe_return_to(&pending.return_to).unwrap_or(paths::HOME);
    let retry = match &pending.step_up_for {
        Some(requirement) => {
            let subject = session.auth().ok().flatten().map(|a| a.subject);
            let detail = format!("cancelled at the provider, for {return_to}");
            let _ = state
                .audit(meta, subject.as_deref(), AuditEvent::StepUpCancelled, detail)
                .await;
            paths::step_up_to(return_to, requirement)
        }
        None => paths::login_to(return_to),
    };
    tracing::info!(
        step_up_for = pending.step_up_for.as_deref().unwrap_or("-"),
        "sign-in cancelled at the provider"
    );
    let hidden = match pending.step_up_for.as_deref() {
        Some("salary") => "the salary",
        Some("audit") => "the audit trail",
        _ => "that page",
    };
    let page = CancelledPage {
        nav: Nav::of(req),
        step_up: pending.step_up_for.clone(),
        hidden,
        retry,
    }
    .render()
    .map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page))
}

/// Keeps a provider's error text short and printable before it reaches a page.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// "This form has expired": sign out now? (with this session's CSRF token).
#[derive(Template)]
#[template(path = "intranet/logout_confirm.html")]
struct LogoutConfirmPage {
    nav: Nav,
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf_token: Option<String>,
}

/// `POST /logout` with the session's CSRF token: forgets the session, then ends the
/// provider's session too (RP-Initiated Logout 1.0 §2) when it offers an end-session endpoint.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, AppError> {
    let session = TypedSession::from_request(&req);
    if !form
        .csrf_token
        .as_deref()
        .is_some_and(|t| session.csrf_matches(t))
    {
        // A tab opened before the last sign-in (or step-up, which renews the session and its
        // token) still has to be able to sign out: ask again with this session's token
        // instead of a dead end. Nothing changes without the fresh token (CSRF holds).
        tracing::info!("logout with a stale or missing CSRF token: asking for confirmation");
        let page = LogoutConfirmPage { nav: Nav::of(&req) }
            .render()
            .map_err(|e| AppError::Unexpected(e.into()))?;
        return Ok(complete_page(
            HttpResponse::Forbidden()
                .content_type("text/html; charset=utf-8")
                .body(page),
        ));
    }
    let mut id_token = None;
    if let Ok(Some(auth)) = session.auth()
        && let Some(login) = session.login()
    {
        tracing::info!(sub = %auth.subject, "logout");
        // Ended for good, in either store: a copy of this session's cookie signs nobody in.
        id_token = state
            .logins
            .end(&login.id, login.expires_at(&state.sessions), state.now())
            .await;
        let _ = state
            .audit(&meta, Some(&auth.subject), AuditEvent::Logout, "")
            .await;
    }
    session.log_out();
    session.set_flash("You have signed out of Fabrikam.");
    let target = match state.oidc.logout_url(id_token).await {
        Some(url) => url.to_string(),
        None => paths::HOME.to_owned(),
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target))
        .finish())
}
