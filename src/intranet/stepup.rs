//! The intranet's pages as a `StepUpApp` of the `actix-web-stepup` crate, and the guards
//! built on the session. The step-up path is a straight line:
//!
//! `StepUp<P>` (the crate's extractor) → `evaluate` (the crate) → [`Pages::start_step_up`]
//! → [`begin`] → `Oidc::authorization_request` (`oidc.rs`).
//!
//! `/login?step_up=<name>` (`auth.rs`) joins the same line at [`begin`].

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{Error, FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use actix_web_stepup::{
    AuthState, BoxFuture, Protected, Refusal, Requirement, Shortfall, StepUpApp, StepUpNeeded, StepUpRequest,
};
use askama::Template;
use futures_util::future::{Ready, ready};

use super::data::AuditEvent;
use super::errors::{AppError, StepUpFailure};
use super::oidc::LoginIntent;
use super::paths;
use super::requirements::AuditAccess;
use super::session::TypedSession;
use super::state::{AppState, RequestMeta, audit_forbidden};
use super::view::Nav;
use crate::clock::Clock;

/// Where the user wanted to go: this request's path and query, if it is a safe one.
pub fn here(req: &HttpRequest) -> String {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    paths::safe_return_to(target).unwrap_or(paths::HOME).to_owned()
}

/// The application state, or a 500 if it is not registered (a bug).
pub fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    AppState::of(req).ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("AppState is not registered")))
}

/// Any signed-in user. Anonymous requests are redirected to `/login?return_to=<here>`.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub AuthState);

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // A session that cannot be read (tampered, or from an old key) counts as anonymous.
        let auth = TypedSession::from_request(req).auth().ok().flatten();
        ready(
            auth.map(CurrentUser)
                .ok_or_else(|| AppError::LoginRequired { return_to: here(req) }),
        )
    }
}

/// The intranet's pages: the login lives in the session; a step-up redirects to the
/// provider (or, with `STEPUP_INTERSTITIAL`, explains first); refusals are [`AppError`]s,
/// rendered as pages by `errors::render_html_errors`.
pub struct Pages {
    /// The intranet's one clock (the same as `AppState`'s).
    pub clock: Clock,
}

impl StepUpApp for Pages {
    fn current_auth<'a>(&'a self, req: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
        // A session that cannot be read (tampered, or from an old key) counts as anonymous.
        let auth = TypedSession::from_request(req).auth().ok().flatten();
        Box::pin(async move { Ok(auth) })
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    fn start_step_up<'a>(
        &'a self,
        req: &'a HttpRequest,
        needed: StepUpNeeded<'a>,
    ) -> BoxFuture<'a, Result<HttpResponse, Error>> {
        Box::pin(async move {
            let state = app_state(req)?;
            if state.interstitial {
                return Ok(interstitial(req, needed.requirement, needed.shortfall));
            }
            let url = begin(
                req,
                &state,
                needed.user,
                needed.requirement,
                needed.request,
                needed.shortfall,
                here(req),
            )
            .await?;
            Ok(redirect(url.as_str()))
        })
    }

    fn refuse<'a>(&'a self, req: &'a HttpRequest, refusal: Refusal<'a>) -> BoxFuture<'a, Error> {
        Box::pin(async move {
            let error = match refusal {
                Refusal::LoginRequired { .. } => AppError::LoginRequired { return_to: here(req) },
                Refusal::Forbidden {
                    user, missing_role, ..
                } => {
                    audit_forbidden(req, &user.subject, &missing_role).await;
                    AppError::Forbidden { missing_role }
                }
                Refusal::StepUpFailed {
                    user,
                    requirement,
                    request,
                    shortfall,
                } => AppError::StepUpFailed(Box::new(StepUpFailure {
                    asked: request,
                    obtained: user.clone(),
                    shortfall,
                    retry: paths::step_up_to(&here(req), requirement.name()),
                })),
                other => AppError::Unexpected(anyhow::anyhow!("step-up misconfigured: {other:?}")),
            };
            error.into()
        })
    }
}

/// Starts a step-up login for `requirement`: records it, keeps the pending login in the
/// session and returns the provider's URL.
pub async fn begin(
    req: &HttpRequest,
    state: &AppState,
    user: &AuthState,
    requirement: &Requirement,
    request: StepUpRequest,
    shortfall: Shortfall,
    return_to: String,
) -> Result<url::Url, AppError> {
    tracing::info!(sub = %user.subject, requirement = requirement.name(), %shortfall, "stepping up");
    let detail = format!("{request} for {return_to} ({shortfall})");
    let _ = state
        .audit(
            &RequestMeta::of(req),
            Some(&user.subject),
            AuditEvent::StepUpRequested,
            detail,
        )
        .await;
    let intent = LoginIntent {
        return_to,
        step_up: Some((requirement.name().to_owned(), request)),
    };
    let (url, pending) = state.oidc.authorization_request(intent, state.now()).await?;
    TypedSession::from_request(req)
        .set_pending_login(&pending)
        .map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(url)
}

pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .finish()
}

#[derive(Template)]
#[template(path = "intranet/interstitial.html")]
struct InterstitialPage {
    nav: Nav,
    /// What the page shows, e.g. "salary data".
    what: &'static str,
    continue_to: String,
    stale: bool,
    /// The requirement asks for the phishing-resistant class: a passkey, not a code.
    passkey: bool,
}

/// `STEPUP_INTERSTITIAL`: a page that explains the coming step-up, with a Continue link to
/// `/login?return_to=<here>&step_up=<requirement>`.
fn interstitial(req: &HttpRequest, requirement: &Requirement, shortfall: Shortfall) -> HttpResponse {
    let page = InterstitialPage {
        nav: Nav::of(req),
        what: if requirement.name() == AuditAccess::NAME {
            "the audit trail"
        } else {
            "salary data"
        },
        continue_to: paths::step_up_to(&here(req), requirement.name()),
        stale: shortfall == Shortfall::Stale,
        passkey: requirement
            .acr_values()
            .iter()
            .any(|v| v == actix_web_stepup::ACR_PHR),
    };
    match page.render() {
        Ok(body) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => AppError::Unexpected(e.into()).error_response(),
    }
}
