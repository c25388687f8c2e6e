//! The intranet's errors, their status codes, and the one HTML error page.
//!
//! Use [`AppError`] in page handlers and guards: its `error_response` gives the status (or
//! the redirect, for "sign in first"), and [`render_html_errors`], installed with actix-web's
//! `ErrorHandlers`, renders the page *with the request in hand*, so the header shows who is
//! signed in. `AppError` carries facts, never a view model. Use [`ApiError`] under `/api`:
//! JSON and the RFC 6750 / RFC 9470 `WWW-Authenticate` challenges, left as they are by the
//! page renderer. Internal causes go to the log; pages say what happened and what to do.

use crate::web::JsonLine;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{HttpResponse, ResponseError};
use actix_web_stepup::{AuthState, Shortfall, StepUpRequest};
use askama::Template;
use serde_json::json;

use super::logins::MAX_COOKIE_BYTES;
use super::oidc::OidcError;
use super::paths;
use super::session::SESSION_COOKIE;
use super::state::{AppState, StoreKind};
use super::view::{Nav, format_time};
use crate::web::SecurityHeaders;

/// What a failed step-up asked for and got, for its 403 page.
#[derive(Debug, Clone)]
pub struct StepUpFailure {
    pub asked: StepUpRequest,
    /// The provider's answer, as the session holds it.
    pub obtained: AuthState,
    pub shortfall: Shortfall,
    /// Where "Try again" leads.
    pub retry: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Not logged in: go to the login, then come back.
    #[error("login required")]
    LoginRequired { return_to: String },
    #[error("role {missing_role} missing")]
    Forbidden { missing_role: String },
    #[error("step-up failed")]
    StepUpFailed(Box<StepUpFailure>),
    #[error("not found")]
    NotFound,
    /// A salary view could not be written to the audit trail, so it is not shown.
    #[error("the audit trail cannot be written")]
    AuditUnavailable,
    /// Something that must be recorded (a sign-in) cannot be: nothing was done.
    #[error("the database is unavailable")]
    DatabaseUnavailable,
    /// The session store (Redis) did not answer in time: nobody can be recognised.
    #[error("the session store is unavailable")]
    SessionStoreUnavailable,
    /// The session would not fit in its cookie: the sign-in is refused (no loop).
    #[error("the session would take a cookie of {bytes:?} bytes")]
    SessionTooLarge { bytes: Option<usize> },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the identity provider answered with an error: {error}")]
    ProviderError {
        error: String,
        description: Option<String>,
        /// Whether the login was a step-up.
        step_up: bool,
    },
    /// A step-up came back signed in as somebody else: the session is left as it was.
    #[error("a step-up for {expected} was answered by {got}")]
    WrongUser { expected: String, got: String },
    #[error(transparent)]
    Login(#[from] OidcError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// A database that fails is unavailable (`503`), not a bug.
impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database error");
        AppError::DatabaseUnavailable
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::LoginRequired { .. } => StatusCode::FOUND,
            AppError::Forbidden { .. } | AppError::StepUpFailed(_) => StatusCode::FORBIDDEN,
            AppError::AuditUnavailable
            | AppError::DatabaseUnavailable
            | AppError::SessionStoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::SessionTooLarge { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::NotFound => StatusCode::NOT_FOUND,
            // A step-up the provider could not perform is a refusal, like a weak answer.
            AppError::ProviderError { step_up: true, .. } | AppError::WrongUser { .. } => {
                StatusCode::FORBIDDEN
            }
            AppError::BadRequest(_) | AppError::ProviderError { .. } => StatusCode::BAD_REQUEST,
            AppError::Login(OidcError::Discovery(_)) => StatusCode::SERVICE_UNAVAILABLE,
            // Reachable, but not the provider we are configured for: our configuration is wrong.
            AppError::Login(OidcError::IssuerMismatch { .. }) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Login(_) => StatusCode::BAD_REQUEST,
            AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The status, and a plain-text body that [`render_html_errors`] replaces with the page.
    fn error_response(&self) -> HttpResponse {
        if let AppError::LoginRequired { return_to } = self {
            return HttpResponse::Found()
                .insert_header((header::LOCATION, paths::login_to(return_to)))
                .finish();
        }
        match self {
            AppError::Unexpected(e) => tracing::error!(error = ?e, "unexpected error"),
            AppError::Login(e @ OidcError::IssuerMismatch { .. }) => {
                tracing::error!(error = %e, "login failed")
            }
            AppError::Login(e) => tracing::warn!(error = %e, "login failed"),
            other => tracing::info!(error = %other, "request refused"),
        }
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(self.status_code().canonical_reason().unwrap_or("error"))
    }
}

/// The words of an error page.
struct Content {
    title: &'static str,
    message: String,
    details: Vec<(&'static str, String)>,
    action: Option<(&'static str, String)>,
}

impl Content {
    fn new(title: &'static str, message: impl Into<String>) -> Self {
        Self {
            title,
            message: message.into(),
            details: Vec::new(),
            action: Some(("Back to the home page", paths::HOME.to_owned())),
        }
    }

    /// For errors raised outside the intranet's code (actix's own 404, 405, 413, ...).
    fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::new("Page not found", "There is nothing at this address."),
            s if s.is_client_error() => Self::new(
                "That request could not be handled",
                format!("The server answered {s}."),
            ),
            _ => Self::new(
                "Something went wrong",
                "An unexpected error occurred. It has been logged; please try again.",
            ),
        }
    }
}

impl AppError {
    /// The page's words; `provider` is the provider's display name.
    fn content(&self, provider: &str) -> Content {
        match self {
            AppError::Forbidden { missing_role } => Content::new(
                "You do not have access to this page",
                format!(
                    "This page needs the role “{missing_role}”, which your account does not have. Signing in \
                     again or with a second factor would not change that: authentication proves who you are, \
                     authorization decides what you may see. Ask an administrator if you need access."
                ),
            ),
            AppError::StepUpFailed(failure) => {
                let StepUpFailure {
                    asked,
                    obtained,
                    shortfall,
                    retry,
                } = failure.as_ref();
                let phr = asked
                    .acr_values
                    .iter()
                    .any(|v| v == actix_web_stepup::ACR_PHR || v == actix_web_stepup::ACR_PHRH);
                let (class, weak) = if phr {
                    (
                        "phishing-resistant sign-in (a passkey)",
                        match obtained.acr.as_deref() {
                            Some(acr) => format!(
                                "was of the class “{acr}”, not phishing-resistant: a password or a code from an app \
                                 can be phished, a passkey cannot"
                            ),
                            None => "did not say which class it was".to_owned(),
                        },
                    )
                } else {
                    (
                        "multi-factor sign-in",
                        "did not include a second factor".to_owned(),
                    )
                };
                let mut c = Content::new(
                    "Your sign-in is not strong enough for this page",
                    format!(
                        "We asked {provider} for a fresh {class}, but the sign-in it returned {}. We \
                         will not ask again automatically, so you are not sent round in circles.",
                        match shortfall {
                            Shortfall::WeakAuthentication => weak.as_str(),
                            Shortfall::Stale => "was older than this page allows",
                            Shortfall::MissingAuthTime => "did not say when it happened",
                            Shortfall::FutureAuthTime => "claimed to happen in the future",
                            _ => "did not meet this page's requirement",
                        }
                    ),
                );
                c.details.push(("Asked for", asked.to_string()));
                c.details.push(("Received", obtained.to_string()));
                if let Some(t) = obtained.auth_time {
                    c.details.push(("Authenticated at", format_time(t)));
                }
                c.action = Some(("Try again", retry.clone()));
                c
            }
            AppError::NotFound => Content::for_status(StatusCode::NOT_FOUND),
            AppError::BadRequest(why) => Content::new("That request could not be handled", why.clone()),
            AppError::ProviderError {
                error, description, ..
            } => {
                let why = match error.as_str() {
                    // OIDC Core §5.5.1.1 / OpenID Connect Core errata: an essential acr it cannot meet.
                    "unmet_authentication_requirements" => format!(
                        "{provider} cannot perform the kind of sign-in this page needs (for the audit trail: a \
                         phishing-resistant one, with a passkey), so it refused rather than sign you in with less."
                    ),
                    _ => format!("{provider} cancelled or refused the sign-in."),
                };
                let mut c = Content::new("The identity provider did not sign you in", why);
                c.details.push(("Error", error.clone()));
                if let Some(d) = description {
                    c.details.push(("Description", d.clone()));
                }
                c.action = Some(("Sign in again", paths::LOGIN.to_owned()));
                c
            }
            AppError::Login(OidcError::Discovery(_)) => Content::new(
                "The identity provider is unavailable",
                format!(
                    "Fabrikam could not reach {provider}. Public pages still work; try signing in again in a moment."
                ),
            ),
            AppError::Login(OidcError::IssuerMismatch {
                configured,
                discovered,
            }) => {
                let mut c = Content::new(
                    "The identity provider's issuer does not match the configuration",
                    format!(
                        "{provider} answered, but its discovery document names a different issuer than this site is \
                         configured for, so no token from it could be trusted (OpenID Connect Discovery 1.0 §4.3). \
                         An administrator must set OIDC_ISSUER_URL to exactly the discovered issuer, trailing \
                         slash and all."
                    ),
                );
                c.details
                    .push(("Configured (OIDC_ISSUER_URL)", configured.clone()));
                c.details.push(("Discovered (issuer)", discovered.clone()));
                c
            }
            AppError::Login(_) => {
                let mut c = Content::new(
                    "Sign-in failed",
                    format!("The answer from {provider} could not be verified, so you were not signed in."),
                );
                c.action = Some(("Sign in again", paths::LOGIN.to_owned()));
                c
            }
            AppError::WrongUser { expected, got } => Content::new(
                "The extra check was done by someone else",
                format!(
                    "You are signed in as {expected}, but {provider} confirmed {got}. Nothing changed: you are \
                     still signed in as {expected}. To switch users, sign out first."
                ),
            ),
            AppError::DatabaseUnavailable => Content::new(
                "The database is unavailable",
                "Fabrikam cannot use its database right now, so nothing was shown or changed. Please try again \
                 in a moment.",
            ),
            AppError::SessionStoreUnavailable => Content::new(
                "Sessions are unavailable",
                "Fabrikam cannot reach the store that remembers who is signed in, so it cannot tell who you are \\
                 right now. Nothing was changed, and public pages still work. Please try again in a moment.",
            ),
            AppError::SessionTooLarge { bytes } => {
                let mut c = Content::new(
                    "Your sign-in is too large to keep",
                    format!(
                        "{provider} sent more about your account than fits in this site's session cookie, so you \\
                         were not signed in (rather than being sent round in circles). An administrator can keep \\
                         sessions on the server (REDIS_URL) or have the provider send fewer claims."
                    ),
                );
                if let Some(bytes) = bytes {
                    c.details.push(("Session size", format!("about {bytes} bytes")));
                }
                c.details
                    .push(("Largest cookie a browser keeps", "4096 bytes".to_owned()));
                c
            }
            AppError::AuditUnavailable => Content::new(
                "The audit trail is unavailable",
                "Salary data is only shown when the view can be recorded in the audit trail, and it cannot be \
                 right now. Nothing was shown; please try again later.",
            ),
            AppError::LoginRequired { .. } | AppError::Unexpected(_) => {
                Content::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

#[derive(Template)]
#[template(path = "intranet/error.html")]
struct ErrorPage {
    nav: Nav,
    status: u16,
    title: &'static str,
    message: String,
    details: Vec<(&'static str, String)>,
    action: Option<(&'static str, String)>,
}

/// Marks a 4xx/5xx response that is already a whole page (the logout confirmation), so
/// [`render_html_errors`] leaves it as it is.
pub fn complete_page(mut res: HttpResponse) -> HttpResponse {
    res.extensions_mut().insert(CompletePage);
    res
}

#[derive(Debug, Clone, Copy)]
struct CompletePage;

/// `ErrorHandlers` hook for every 4xx and 5xx: renders the HTML error page with this
/// request's navigation. JSON errors (the API's) and [`complete_page`]s pass through unchanged.
pub fn render_html_errors<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || res.response().extensions().get::<CompletePage>().is_some() {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let nav = Nav::of(res.request());
    let content = match res.response().error().and_then(|e| e.as_error::<AppError>()) {
        Some(error) => error.content(&nav.provider),
        None => Content::for_status(status),
    };
    let (req, _) = res.into_parts();
    let response = error_page(nav, status, content);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}

fn error_page(nav: Nav, status: StatusCode, content: Content) -> HttpResponse {
    let page = ErrorPage {
        nav,
        status: status.as_u16(),
        title: content.title,
        message: content.message,
        details: content.details,
        action: content.action,
    }
    .render()
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot render the error page");
        "Something went wrong.".to_owned()
    });
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page)
}

/// Middleware around the session middleware: what the session store could not do becomes an
/// error page with a body and the security headers instead of actix-session's empty 500 —
/// `503` when Redis does not answer in time, a clear refusal when a session would not fit its
/// cookie (the browser would drop it and sign in again forever). The page shows nobody as
/// signed in: the session could not be read or kept.
///
/// A store failure reaches here as an `Err`, without the request (actix routing needs the
/// request's only reference, so none can be kept across the call): the page leaves as an
/// `InternalError` carrying the whole response, security headers included.
pub async fn session_failures(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<Data<AppState>>().cloned();
    let headers = req.app_data::<Data<SecurityHeaders>>().cloned();
    match next.call(req).await {
        Ok(res) => {
            let too_large = res
                .headers()
                .get_all(header::SET_COOKIE)
                .filter(|c| c.as_bytes().starts_with(SESSION_COOKIE.as_bytes()))
                .map(|c| c.len())
                .find(|&bytes| bytes > MAX_COOKIE_BYTES);
            let Some(bytes) = too_large else {
                return Ok(res.map_into_boxed_body());
            };
            let error = AppError::SessionTooLarge { bytes: Some(bytes) };
            tracing::error!(error = %error, "the session cannot be kept in its cookie");
            let nav = Nav::anonymous(state.as_ref().map(|s| s.get_ref()));
            let content = error.content(&nav.provider);
            let (req, _) = res.into_parts();
            Ok(ServiceResponse::new(
                req,
                error_page(nav, error.status_code(), content),
            ))
        }
        Err(e) => {
            let error = match state.as_ref().map(|s| s.store) {
                Some(StoreKind::Redis) => AppError::SessionStoreUnavailable,
                // The cookie store's only failure: a session over 4 KB of JSON.
                _ => AppError::SessionTooLarge { bytes: None },
            };
            tracing::error!(error = %error, cause = %e, "the session store failed");
            let nav = Nav::anonymous(state.as_ref().map(|s| s.get_ref()));
            let content = error.content(&nav.provider);
            let mut page = error_page(nav, error.status_code(), content);
            if let Some(headers) = headers {
                headers.apply(&mut page);
            }
            Err(InternalError::from_response(error, page).into())
        }
    }
}

/// Errors of the JSON API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// RFC 6750 §3.1: no token at all → a bare challenge.
    #[error("no access token")]
    MissingToken,
    #[error("invalid access token: {0}")]
    InvalidToken(String),
    /// RFC 9470 §3: the token's authentication is too weak or too old.
    #[error("insufficient user authentication")]
    InsufficientAuthentication {
        request: StepUpRequest,
        description: String,
    },
    #[error("role {missing_role} missing")]
    Forbidden { missing_role: String },
    /// No employee with that id (or an id that is not a number).
    #[error("not found")]
    NotFound,
    /// Nothing at this path under `/api`.
    #[error("no API at this path")]
    UnknownPath,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the identity provider is unavailable")]
    Unavailable,
    /// The database (or the audit trail) cannot be used: nothing is served.
    #[error("the database is unavailable")]
    Database,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    pub fn database(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database error in the API");
        ApiError::Database
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MissingToken
            | ApiError::InvalidToken(_)
            | ApiError::InsufficientAuthentication { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::UnknownPath => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable | ApiError::Database => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, description, challenge) = match self {
            ApiError::MissingToken => (
                "invalid_request",
                "an access token is required".to_owned(),
                Some("Bearer".to_owned()),
            ),
            ApiError::InvalidToken(why) => {
                tracing::info!(reason = %why, "access token refused");
                (
                    "invalid_token",
                    "the access token is invalid".to_owned(),
                    Some(
                        r#"Bearer error="invalid_token", error_description="the access token is invalid""#
                            .to_owned(),
                    ),
                )
            }
            ApiError::InsufficientAuthentication { request, description } => {
                // RFC 9470 §3: error, error_description, acr_values (space-separated, quoted)
                // and max_age (an integer), and Entra's claims challenge for an authentication
                // context, written by the step-up crate.
                let challenge = request.challenge(Some(description));
                (
                    "insufficient_user_authentication",
                    description.clone(),
                    Some(challenge.to_string()),
                )
            }
            ApiError::Forbidden { missing_role } => (
                "insufficient_scope",
                format!("the role {missing_role} is required"),
                Some(r#"Bearer error="insufficient_scope""#.to_owned()),
            ),
            ApiError::NotFound => ("not_found", "no such employee".to_owned(), None),
            ApiError::UnknownPath => ("not_found", "there is no API at this path".to_owned(), None),
            ApiError::MethodNotAllowed => (
                "method_not_allowed",
                "this path answers GET and HEAD only".to_owned(),
                None,
            ),
            ApiError::Unavailable => (
                "temporarily_unavailable",
                "the identity provider is unavailable".to_owned(),
                None,
            ),
            ApiError::Database => (
                "temporarily_unavailable",
                "the service cannot record this access right now".to_owned(),
                None,
            ),
            ApiError::Unexpected(e) => {
                tracing::error!(error = ?e, "unexpected error in the API");
                ("server_error", "an unexpected error occurred".to_owned(), None)
            }
        };
        let mut res = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::MethodNotAllowed) {
            res.insert_header((header::ALLOW, "GET, HEAD"));
        }
        if let Some(challenge) = challenge {
            res.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        res.json_line(json!({"error": code, "error_description": description}))
    }
}
