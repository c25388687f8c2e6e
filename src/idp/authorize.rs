//! `/authorize` (OIDC Core §3.1.2): validates the request, keeps it server-side while the
//! person signs in, and answers the client with a code or an error once the decision allows.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::errors::PageError;
use super::protocol::{self, Context, Decision, Rejection};
use super::session::{IdpSession, REMEMBER_COOKIE};
use super::state::{CODE_TTL_SECS, CodeGrant, Idp};
use super::views::{redirect_error, redirect_to, see};

/// Longer queries are refused before parsing (a real request is far below this).
pub const MAX_QUERY_LEN: usize = 8 * 1024;

/// `GET /authorize`.
pub async fn get(
    req: HttpRequest,
    idp: web::Data<Idp>,
    session: IdpSession,
) -> Result<HttpResponse, PageError> {
    if req.query_string().len() > MAX_QUERY_LEN {
        return Err(PageError::bad_request("The sign-in request is too large."));
    }
    let params = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|_| PageError::bad_request("The sign-in request is malformed."))?
        .into_inner();
    start(&req, &idp, &session, params, StatusCode::FOUND)
}

/// `POST /authorize` (OIDC Core §3.1.2.1 allows form-encoded POST).
pub async fn post(
    req: HttpRequest,
    idp: web::Data<Idp>,
    session: IdpSession,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    start(&req, &idp, &session, form.into_inner(), StatusCode::SEE_OTHER)
}

fn start(
    req: &HttpRequest,
    idp: &Idp,
    session: &IdpSession,
    params: Vec<(String, String)>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let ignore_acr = if idp.test_control {
        let client_id = params
            .iter()
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.as_str());
        let mut control = idp.control();
        control.record(&params);
        client_id.is_some_and(|c| control.take_ignore_acr_values(c))
    } else {
        false
    };
    let request = match protocol::parse_request(&params, &idp.clients, ignore_acr) {
        Ok(request) => request,
        Err(Rejection::Page(message)) => {
            tracing::info!(%message, "authorize request refused with an error page");
            return Err(PageError::BadRequest(message));
        }
        Err(Rejection::Redirect {
            redirect_uri,
            state,
            error,
            description,
        }) => {
            tracing::info!(error, %description, "authorize request refused");
            return Ok(redirect_error(
                &redirect_uri,
                state.as_deref(),
                error,
                &description,
                status,
            ));
        }
    };
    // A new request replaces any sign-in this browser left half-way.
    if let Some(old) = session.pending_id() {
        idp.take_pending(&old);
    }
    let id = idp.add_pending(request);
    session.set_pending_id(&id)?;
    resume(req, idp, session, status)
}

/// Moves the pending sign-in on: to a login page, or back to the client with a code or an
/// error. Called by `/authorize` and after each login page succeeds.
pub fn resume(
    req: &HttpRequest,
    idp: &Idp,
    session: &IdpSession,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let id = session.pending_id().ok_or_else(PageError::no_pending_request)?;
    let pending = idp.pending(&id).ok_or_else(PageError::no_pending_request)?;
    // A user removed from the directory (test control) is signed in no more.
    let auth = session.auth().filter(|a| idp.directory.user(&a.user).is_some());
    let remembered = match (&auth, req.cookie(REMEMBER_COOKIE)) {
        (Some(a), Some(c)) => idp.is_remembered(c.value(), &a.user),
        _ => false,
    };
    let ctx = Context {
        now: idp.now(),
        mfa_at_login: idp.mfa_at_login,
        remembered,
    };
    let request = &pending.request;
    match protocol::decide(&request.requirements, auth.as_ref(), pending.progress, ctx) {
        Decision::PromptPassword => Ok(see(&idp.links.login, status)),
        Decision::PromptSecondFactor => {
            let user = auth.map(|a| a.user).unwrap_or_default();
            let page = if idp.directory.has_totp(&user) {
                &idp.links.mfa
            } else {
                &idp.links.enroll
            };
            Ok(see(page, status))
        }
        Decision::Fail(failure) => {
            // Taken out: this request is finished and cannot be resumed again.
            idp.take_pending(&id);
            session.clear_pending_id();
            tracing::info!(
                error = failure.error(),
                ?failure,
                "authorize request ended with an error"
            );
            Ok(redirect_error(
                &request.redirect_uri,
                request.state.as_deref(),
                failure.error(),
                failure.description(),
                status,
            ))
        }
        Decision::Issue => {
            let Some(pending) = idp.take_pending(&id) else {
                return Err(PageError::no_pending_request());
            };
            session.clear_pending_id();
            let request = pending.request;
            let Some(auth) = auth else {
                return Err(PageError::no_pending_request());
            };
            let code = idp.issue_code(CodeGrant {
                client_id: request.client_id,
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge,
                nonce: request.nonce,
                user: auth.user.clone(),
                auth: protocol::authentication(&auth, &request.requirements),
                scope: request.scope,
                sid: auth.sid.clone(),
                expires_at: ctx.now + CODE_TTL_SECS,
            });
            let mut pairs = vec![("code", code.as_str())];
            if let Some(state) = request.state.as_deref() {
                pairs.push(("state", state));
            }
            Ok(redirect_to(&request.redirect_uri, &pairs, status))
        }
    }
}
