//! Errors of Fabrikam ID. Browser-facing handlers return [`PageError`], which becomes the one
//! HTML error page; `/token` and `/userinfo` return [`OAuthError`], the RFC 6749 §5.2 JSON
//! shape (RFC 6750 §3 for bearer tokens). Pages say what went wrong; causes go to the log.
//!
//! An error response carries an [`ErrorView`] (title and message) and a plain-text body;
//! `views::render_errors` turns it into the HTML page with the request in hand, so the page's
//! links follow the issuer's path.

use crate::web::JsonLine;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::web::NO_STORE;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The request cannot be served as sent; the text is shown to the person.
    #[error("{0}")]
    BadRequest(String),
    /// A form without a valid CSRF token, and the like.
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    /// Too many attempts (wrong codes); the text says what to do now.
    #[error("{0}")]
    TooManyAttempts(String),

    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl PageError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }
    pub fn csrf() -> Self {
        Self::Forbidden(
            "This form expired or did not come from Fabrikam ID. Go back, reload the page and try again."
                .into(),
        )
    }
    pub fn no_pending_request() -> Self {
        Self::BadRequest(
            "There is no sign-in in progress (it may have finished or expired). Go back to the \
             application and start again."
                .into(),
        )
    }
}

/// What an error page says; rendered as HTML by `views::render_errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorView {
    pub title: String,
    pub message: String,
}

/// The error page with `status` (plain text until `views::render_errors` renders it).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let mut res = HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(format!("{title}: {message}"));
    res.extensions_mut().insert(ErrorView {
        title: title.to_owned(),
        message: message.to_owned(),
    });
    res
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            Self::BadRequest(m) => error_page(status, "This request cannot be completed", m),
            Self::Forbidden(m) => error_page(status, "Request refused", m),
            Self::NotFound => error_page(status, "Page not found", "There is nothing at this address."),
            Self::TooManyAttempts(m) => error_page(status, "Too many attempts", m),
            Self::Unexpected(e) => {
                tracing::error!(error = ?e, "unexpected error");
                error_page(
                    status,
                    "Something went wrong",
                    "Fabrikam ID could not finish this request. Please try again.",
                )
            }
        }
    }
}

/// An OAuth 2.0 error response (RFC 6749 §5.2; RFC 6750 §3 for `invalid_token`).
#[derive(Debug, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    pub www_authenticate: Option<String>,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            www_authenticate: None,
        }
    }
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
    /// RFC 6749 §5.2: 401, with a `Basic` challenge when the client tried Basic.
    pub fn invalid_client(used_basic: bool, description: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description);
        if used_basic {
            e.www_authenticate = Some(r#"Basic realm="Fabrikam ID""#.into());
        }
        e
    }
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }
    pub fn unsupported_grant_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code is supported",
        )
    }
    /// RFC 6750 §3.1: the access token is missing, expired or not ours.
    pub fn invalid_token(description: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description);
        e.www_authenticate = Some(r#"Bearer realm="Fabrikam ID", error="invalid_token""#.into());
        e
    }
    pub fn server_error(cause: anyhow::Error) -> Self {
        tracing::error!(error = ?cause, "token endpoint failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the token could not be issued",
        )
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        tracing::info!(error = self.error, description = %self.description, "OAuth error");
        let mut res = HttpResponse::build(self.status);
        res.insert_header(NO_STORE)
            .insert_header((header::PRAGMA, "no-cache"));
        if let Some(challenge) = &self.www_authenticate {
            res.insert_header((header::WWW_AUTHENTICATE, challenge.clone()));
        }
        res.json_line(json!({ "error": self.error, "error_description": self.description }))
    }
}
