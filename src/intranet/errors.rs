//! The intranet's errors and how each becomes a response.
//!
//! Use [`AppError`] in page handlers and extractors: it renders the one HTML error page (or a
//! redirect, for the two "go elsewhere first" cases). Use [`ApiError`] under `/api`: it renders
//! JSON and the RFC 6750 / RFC 9470 `WWW-Authenticate` challenges. Internal causes go to the
//! log; pages say what happened and what to do, never why in code.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use base64::Engine;
use serde_json::json;

use super::oidc::OidcError;
use super::paths;
use super::policy::{Shortfall, StepUpRequest};

/// A summary of what came back from the provider, shown on the step-up-failed page.
#[derive(Debug, Clone)]
pub struct Obtained {
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub auth_time: Option<i64>,
}

/// What a failed step-up asked for and got, for its 403 page.
#[derive(Debug, Clone)]
pub struct StepUpFailure {
    pub asked: StepUpRequest,
    pub obtained: Obtained,
    pub shortfall: Shortfall,
    /// Where "Try again" leads.
    pub retry: String,
    pub nav: super::pages::Nav,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Not logged in: go to the login, then come back.
    #[error("login required")]
    LoginRequired { return_to: String },
    /// Go to the provider (a step-up).
    #[error("redirect to the identity provider")]
    Redirect(url::Url),
    #[error("role {missing_role} missing")]
    Forbidden {
        missing_role: String,
        nav: Option<Box<super::pages::Nav>>,
    },
    /// `STEPUP_INTERSTITIAL`: explain the coming step-up instead of redirecting at once.
    #[error("step-up interstitial")]
    Interstitial {
        continue_to: String,
        shortfall: Shortfall,
        nav: Box<super::pages::Nav>,
    },
    #[error("step-up failed")]
    StepUpFailed(Box<StepUpFailure>),
    #[error("not found")]
    NotFound,
    /// A salary view could not be written to the audit trail, so it is not shown.
    #[error("the audit trail cannot be written")]
    AuditUnavailable,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the form's CSRF token is missing or wrong")]
    Csrf,
    #[error("the identity provider answered with an error: {error}")]
    ProviderError {
        error: String,
        description: Option<String>,
        /// Whether the login was a step-up.
        step_up: bool,
        /// The header of the page: the user may still be signed in.
        nav: Box<super::pages::Nav>,
    },
    /// A step-up came back signed in as somebody else: the session is left as it was.
    #[error("a step-up for {expected} was answered by {got}")]
    WrongUser {
        expected: String,
        got: String,
        nav: Box<super::pages::Nav>,
    },
    #[error(transparent)]
    Login(#[from] OidcError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Unexpected(anyhow::Error::new(e).context("database"))
    }
}

#[derive(Template)]
#[template(path = "intranet/error.html")]
struct ErrorPage<'a> {
    nav: super::pages::Nav,
    status: u16,
    title: &'a str,
    message: String,
    details: Vec<(&'static str, String)>,
    action: Option<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "intranet/interstitial.html")]
struct InterstitialPage {
    nav: super::pages::Nav,
    continue_to: String,
    stale: bool,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::LoginRequired { .. } | AppError::Redirect(_) => StatusCode::FOUND,
            AppError::Forbidden { .. } | AppError::StepUpFailed(_) | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::Interstitial { .. } => StatusCode::OK,
            AppError::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::NotFound => StatusCode::NOT_FOUND,
            // A step-up the provider could not perform is a refusal, like a weak answer.
            AppError::ProviderError { step_up: true, .. } | AppError::WrongUser { .. } => {
                StatusCode::FORBIDDEN
            }
            AppError::BadRequest(_) | AppError::ProviderError { .. } => StatusCode::BAD_REQUEST,
            AppError::Login(OidcError::Discovery(_)) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Login(_) => StatusCode::BAD_REQUEST,
            AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let location = match self {
            AppError::LoginRequired { return_to } => Some(paths::login_to(return_to)),
            AppError::Redirect(url) => Some(url.to_string()),
            _ => None,
        };
        if let Some(location) = location {
            return HttpResponse::Found()
                .insert_header((header::LOCATION, location))
                .finish();
        }
        match self {
            AppError::Unexpected(e) => tracing::error!(error = ?e, "unexpected error"),
            AppError::Login(e) => tracing::warn!(error = %e, "login failed"),
            other => tracing::info!(error = %other, "request refused"),
        }
        let status = self.status_code();
        let body = match self {
            AppError::Interstitial {
                continue_to,
                shortfall,
                nav,
            } => InterstitialPage {
                nav: nav.as_ref().clone(),
                continue_to: continue_to.clone(),
                stale: *shortfall == Shortfall::Stale,
            }
            .render(),
            _ => self.page(status.as_u16()).render(),
        }
        .unwrap_or_else(|_| "Something went wrong.".to_owned());
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
}

impl AppError {
    fn page(&self, status: u16) -> ErrorPage<'static> {
        let mut details = Vec::new();
        let mut action = Some(("Back to the home page", paths::HOME.to_owned()));
        let (title, message) = match self {
            AppError::Forbidden { missing_role, .. } => (
                "You do not have access to this page",
                format!(
                    "This page needs the role “{missing_role}”, which your account does not have. Signing in \
                     again or with a second factor would not change that: authentication proves who you are, \
                     authorization decides what you may see. Ask an administrator if you need access."
                ),
            ),
            AppError::StepUpFailed(failure) => {
                let StepUpFailure { asked, obtained, shortfall, retry, .. } = failure.as_ref();
                details.push(("We asked for", describe_request(asked)));
                details.push(("The provider returned", describe_obtained(obtained)));
                action = Some(("Try again", retry.clone()));
                (
                    "Your sign-in is not strong enough for this page",
                    format!(
                        "We asked Fabrikam's identity provider for a fresh multi-factor sign-in, but the sign-in it \
                         returned {}. We will not ask again automatically, so you are not sent round in circles.",
                        match shortfall {
                            Shortfall::WeakAuthentication => "did not include a second factor",
                            Shortfall::Stale => "was older than this page allows",
                            Shortfall::MissingAuthTime => "did not say when it happened",
                            Shortfall::FutureAuthTime => "claimed to happen in the future",
                        }
                    ),
                )
            }
            AppError::NotFound => ("Page not found", "There is nothing at this address.".to_owned()),
            AppError::BadRequest(why) => ("That request could not be handled", why.clone()),
            AppError::Csrf => (
                "This form has expired",
                "The form was missing its security token or came from another page. Go back, reload and try again."
                    .to_owned(),
            ),
            AppError::ProviderError { error, description, .. } => {
                details.push(("Error", error.clone()));
                if let Some(d) = description {
                    details.push(("Description", d.clone()));
                }
                action = Some(("Sign in again", paths::LOGIN.to_owned()));
                ("The identity provider did not sign you in", "The sign-in was cancelled or refused.".to_owned())
            }
            AppError::Login(OidcError::Discovery(_)) => (
                "The identity provider is unavailable",
                "Fabrikam could not reach its identity provider. Public pages still work; try signing in again in a \
                 moment."
                    .to_owned(),
            ),
            AppError::Login(_) => {
                action = Some(("Sign in again", paths::LOGIN.to_owned()));
                (
                    "Sign-in failed",
                    "The answer from the identity provider could not be verified, so you were not signed in."
                        .to_owned(),
                )
            }
            AppError::WrongUser { expected, got, .. } => (
                "The extra check was done by someone else",
                format!(
                    "You are signed in as {expected}, but the identity provider confirmed {got}. Nothing \
                     changed: you are still signed in as {expected}. To switch users, sign out first."
                ),
            ),
            AppError::AuditUnavailable => (
                "The audit trail is unavailable",
                "Salary data is only shown when the view can be recorded in the audit trail, and it cannot be \
                 right now. Nothing was shown; please try again later."
                    .to_owned(),
            ),
            AppError::LoginRequired { .. }
            | AppError::Redirect(_)
            | AppError::Interstitial { .. }
            | AppError::Unexpected(_) => (
                "Something went wrong",
                "An unexpected error occurred. It has been logged; please try again.".to_owned(),
            ),
        };
        // Refusals raised by the extractors know who is signed in; other errors render
        // without the request, so their header shows no user.
        let nav = match self {
            AppError::Forbidden { nav: Some(nav), .. } => nav.as_ref().clone(),
            AppError::StepUpFailed(failure) => failure.nav.clone(),
            AppError::ProviderError { nav, .. } | AppError::WrongUser { nav, .. } => nav.as_ref().clone(),
            _ => super::pages::Nav::anonymous(),
        };
        ErrorPage {
            nav,
            status,
            title,
            message,
            details,
            action,
        }
    }
}

/// "acr one of X, at most N seconds old"
pub fn describe_request(req: &StepUpRequest) -> String {
    let mut parts = Vec::new();
    if !req.acr_values.is_empty() {
        parts.push(format!("acr_values = {}", req.acr_values.join(" ")));
    }
    if let Some(context) = &req.auth_context {
        parts.push(format!("authentication context {context}"));
    }
    let mut s = parts.join(", ");
    if let Some(max_age) = req.max_age {
        s.push_str(&format!(", max_age = {max_age} s"));
    }
    s
}

fn describe_obtained(o: &Obtained) -> String {
    let auth_time = o
        .auth_time
        .map_or_else(|| "none".to_owned(), super::pages::format_time);
    format!(
        "acr = {}, amr = [{}], auth_time = {auth_time}",
        o.acr.as_deref().unwrap_or("none"),
        o.amr.join(", ")
    )
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
    #[error("not found")]
    NotFound,
    #[error("the identity provider is unavailable")]
    Unavailable,
    /// The database (or the audit trail) cannot be used: nothing is served.
    #[error("the database is unavailable")]
    Database,
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
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unavailable | ApiError::Database => StatusCode::SERVICE_UNAVAILABLE,
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
                // and max_age (an integer).
                let mut challenge = format!(
                    r#"Bearer error="insufficient_user_authentication", error_description="{}""#,
                    description.replace(['"', '\\'], ""),
                );
                if !request.acr_values.is_empty() {
                    let values = request.acr_values.join(" ").replace(['"', '\\'], "");
                    challenge.push_str(&format!(r#", acr_values="{values}""#));
                }
                if let Some(context) = &request.auth_context {
                    // Entra's claims challenge (base64 of the claims request), which MSAL reads.
                    let claims = json!({"access_token": {"acrs": {"essential": true, "value": context}}});
                    let encoded = base64::engine::general_purpose::STANDARD.encode(claims.to_string());
                    challenge.push_str(&format!(r#", claims="{encoded}""#));
                }
                if let Some(max_age) = request.max_age {
                    challenge.push_str(&format!(", max_age={max_age}"));
                }
                (
                    "insufficient_user_authentication",
                    description.clone(),
                    Some(challenge),
                )
            }
            ApiError::Forbidden { missing_role } => (
                "insufficient_scope",
                format!("the role {missing_role} is required"),
                Some(r#"Bearer error="insufficient_scope""#.to_owned()),
            ),
            ApiError::NotFound => ("not_found", "no such employee".to_owned(), None),
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
        };
        let mut res = HttpResponse::build(self.status_code());
        if let Some(challenge) = challenge {
            res.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        res.json(json!({"error": code, "error_description": description}))
    }
}
