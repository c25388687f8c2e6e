//! Extractors that guard handlers: [`CurrentUser`] for any login, [`StepUp`] for pages that
//! demand a requirement of the step-up policy. A handler that takes one cannot run unless the
//! check passed; the extractor turns the policy's [`Decision`] into the right response.

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::{LocalBoxFuture, Ready, ready};

use super::AppState;
use super::data::AuditEvent;
use super::errors::{AppError, Obtained, StepUpFailure, describe_request};
use super::oidc::LoginIntent;
use super::pages::Nav;
use super::paths;
use super::policy::{AuthState, Decision, Requirement, Shortfall, StepUpRequest, evaluate};
use super::session::TypedSession;
use crate::web::RequestId;

/// The current time in Unix seconds: the policy's `now`.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Where the user wanted to go: this request's path and query.
pub fn here(req: &HttpRequest) -> String {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    paths::safe_return_to(target).unwrap_or(paths::HOME).to_owned()
}

fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("AppState is not registered")))
}

/// What the audit trail records about a request: its id and the client's address (the
/// TCP peer: forwarding headers are not trusted).
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}

impl RequestMeta {
    pub fn of(req: &HttpRequest) -> Self {
        Self {
            request_id: req.extensions().get::<RequestId>().map(|id| id.0.clone()),
            client_addr: req.peer_addr().map(|a| a.ip().to_string()),
        }
    }
}

impl FromRequest for RequestMeta {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}

/// Any logged-in user. Anonymous requests are redirected to `/login?return_to=<here>`.
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

/// Names a requirement of the step-up policy, for use as `StepUp<P>`.
pub trait Protected {
    fn requirement(state: &AppState) -> &Requirement;
}

/// Salary pages, the salary API and the audit trail: role `hr` and a fresh multi-factor
/// login, built from `STEPUP_ACR_VALUES`, `STEPUP_ACCEPT_AMR` and `STEPUP_MAX_AGE_SECS`.
pub struct SalaryAccess;

impl Protected for SalaryAccess {
    fn requirement(state: &AppState) -> &Requirement {
        &state.salary_requirement
    }
}

/// A user who satisfies requirement `P` right now.
///
/// - allowed → the handler runs;
/// - too weak or too old → `302` to the provider with `acr_values` and `max_age` (or, with
///   `STEPUP_INTERSTITIAL`, a page explaining what will happen, with a Continue button);
/// - a step-up for `P` just came back still too weak → `403` saying so (no loop);
/// - a role missing → `403` at once (stepping up would not help).
#[derive(Debug)]
pub struct StepUp<P> {
    pub user: AuthState,
    /// Until when (Unix seconds) the requirement holds.
    pub valid_until: Option<i64>,
    _requirement: PhantomData<P>,
}

impl<P: Protected + 'static> FromRequest for StepUp<P> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)?;
            let session = TypedSession::from_request(&req);
            let Some(user) = session.auth().ok().flatten() else {
                return Err(AppError::LoginRequired {
                    return_to: here(&req),
                });
            };
            let requirement = P::requirement(&state);
            match evaluate(&user, requirement, now()) {
                Decision::Allow { valid_until } => Ok(StepUp {
                    user,
                    valid_until,
                    _requirement: PhantomData,
                }),
                Decision::Forbidden { missing_role } => {
                    let detail = format!("{} needs role {missing_role}", req.path());
                    let meta = RequestMeta::of(&req);
                    let _ = state
                        .audit(&meta, Some(&user.subject), AuditEvent::Forbidden, detail)
                        .await;
                    Err(AppError::Forbidden {
                        missing_role,
                        nav: Some(Box::new(Nav::of(&req))),
                    })
                }
                Decision::StepUpFailed { request, shortfall } => {
                    Err(AppError::StepUpFailed(Box::new(StepUpFailure {
                        asked: request,
                        obtained: Obtained {
                            acr: user.acr.clone(),
                            amr: user.amr.clone(),
                            auth_time: user.auth_time,
                        },
                        shortfall,
                        retry: paths::step_up_to(&here(&req), &requirement.id),
                        nav: Nav::of(&req),
                    })))
                }
                Decision::StepUp {
                    request: _,
                    shortfall,
                } if state.interstitial => Err(AppError::Interstitial {
                    continue_to: paths::step_up_to(&here(&req), &requirement.id),
                    shortfall,
                    nav: Box::new(Nav::of(&req)),
                }),
                Decision::StepUp { request, shortfall } => {
                    let url = start_step_up(&req, &state, &user, requirement, request, shortfall, here(&req))
                        .await?;
                    Err(AppError::Redirect(url))
                }
            }
        })
    }
}

/// Starts a step-up login for `requirement`: records it, keeps the pending login in the
/// session and returns the provider's URL. Used by `StepUp` and by `/login?step_up=`.
pub async fn start_step_up(
    req: &HttpRequest,
    state: &AppState,
    user: &AuthState,
    requirement: &Requirement,
    request: StepUpRequest,
    shortfall: Shortfall,
    return_to: String,
) -> Result<url::Url, AppError> {
    tracing::info!(sub = %user.subject, requirement = %requirement.id, ?shortfall, "stepping up");
    let detail = format!("{} for {return_to} ({shortfall:?})", describe_request(&request));
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
        step_up: Some((requirement.id.clone(), request)),
    };
    let (url, pending) = state.oidc.authorization_request(intent, now()).await?;
    TypedSession::from_request(req)
        .set_pending_login(&pending)
        .map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(url)
}
