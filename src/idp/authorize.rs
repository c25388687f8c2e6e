//! `/authorize` (OIDC Core §3.1.2): validates the request, keeps it in the browser's encrypted
//! sign-in cookie while the person signs in (nothing is stored for an anonymous request), and
//! answers the client with a code or an error once the decision allows.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::errors::PageError;
use super::protocol::{self, Context, Decision, Rejection};
use super::session::{IdpSession, PendingSignIn, REMEMBER_COOKIE};
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
    resume(
        req,
        idp,
        session,
        PendingSignIn::new(request, idp.clock.real()),
        status,
    )
}

/// Resumes the browser's pending sign-in once a login page succeeded.
pub fn resume_pending(
    req: &HttpRequest,
    idp: &web::Data<Idp>,
    session: &IdpSession,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let pending = session.pending().ok_or_else(PageError::no_pending_request)?;
    resume(req, idp, session, pending, status)
}

/// Moves `pending` on: to a login page (keeping it in the browser), or back to the client
/// with a code or an error (taking it out: the request is finished and cannot be resumed
/// again, kanidm's guard against loops).
pub fn resume(
    req: &HttpRequest,
    idp: &Idp,
    session: &IdpSession,
    pending: PendingSignIn,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
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
    let progress = session.progress(&pending.id);
    let request = &pending.request;
    let decision = protocol::decide(&request.requirements, auth.as_ref(), progress, ctx);
    let page = match decision {
        Decision::PromptPassword => &idp.links.login,
        Decision::PromptSecondFactor => {
            let user = auth.map(|a| a.user).unwrap_or_default();
            if idp.directory.has_totp(&user) {
                &idp.links.mfa
            } else {
                &idp.links.enroll
            }
        }
        Decision::Fail(failure) => {
            session.clear_pending();
            tracing::info!(
                error = failure.error(),
                ?failure,
                "authorize request ended with an error"
            );
            return Ok(redirect_error(
                &request.redirect_uri,
                request.state.as_deref(),
                failure.error(),
                failure.description(),
                status,
            ));
        }
        Decision::Issue => {
            session.clear_pending();
            let Some(auth) = auth else {
                return Err(PageError::no_pending_request());
            };
            let request = pending.request;
            let code = idp.issue_code(CodeGrant {
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge,
                nonce: request.nonce,
                user: auth.user.clone(),
                auth: protocol::authentication(&auth, &request.requirements),
                scope: request.scope,
                sid: auth.sid.clone(),
                expires_at: ctx.now + CODE_TTL_SECS,
            });
            // Back-Channel Logout 1.0 §2.3: remember which clients this session served.
            session.add_client(&request.client_id);
            let mut pairs = vec![("code", code.as_str())];
            if let Some(state) = request.state.as_deref() {
                pairs.push(("state", state));
            }
            return Ok(redirect_to(&request.redirect_uri, &pairs, status));
        }
    };
    if session.set_pending(pending.clone()).is_err() {
        tracing::info!("authorize request too large to keep while the person signs in");
        return Ok(redirect_error(
            &request.redirect_uri,
            request.state.as_deref(),
            "invalid_request",
            "the request is too large for Fabrikam ID to keep while the user signs in",
            status,
        ));
    }
    Ok(see(page, status))
}
