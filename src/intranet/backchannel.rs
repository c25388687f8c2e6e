//! `POST /backchannel-logout`: the relying party's half of OpenID Connect Back-Channel Logout
//! 1.0. The provider posts a `logout_token` (form-encoded, §2.5) when a session of its ends;
//! a valid one (`logout_token.rs`) ends the matching intranet logins in either session store
//! (`logins.rs`, §2.7): those of its `sid`, or with no `sid` all of its `sub`'s.
//!
//! Server to server: no session, no CSRF token (the signed token is the authentication), and
//! an invalid token changes nothing. Answers `200` when done, `400` with a JSON error
//! otherwise (§2.8), never cached.

use crate::web::JsonLine;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::data::AuditEvent;
use super::logout_token::{self, LogoutTokenError};
use super::state::{AppState, CLOCK_SKEW, RequestMeta};

/// The largest body read: a logout token is a few kilobytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `POST /backchannel-logout` with `logout_token=<JWT>`.
pub async fn receive(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let Ok(body) = body else {
        return refuse("invalid_request", "the body could not be read");
    };
    if !form {
        return refuse(
            "invalid_request",
            "expected a form (application/x-www-form-urlencoded)",
        );
    }
    let mut tokens = url::form_urlencoded::parse(&body).filter(|(k, _)| k == "logout_token");
    let (Some((_, token)), None) = (tokens.next(), tokens.next()) else {
        return refuse("invalid_request", "expected exactly one logout_token");
    };
    let now = state.now();
    let request = match logout_token::validate(&state.oidc, &token, now).await {
        Ok(request) => request,
        Err(LogoutTokenError::Invalid(why)) => {
            tracing::warn!(reason = %why, "back-channel logout refused");
            return refuse("invalid_request", "the logout token is invalid");
        }
        Err(LogoutTokenError::Unavailable(e)) => {
            tracing::warn!(error = %e, "back-channel logout: cannot check the token");
            return refuse("temporarily_unavailable", "the provider's keys cannot be fetched");
        }
    };
    // §2.6 step 8: each token once. Claimed before acting, given back if the logout fails.
    if !state.seen_logout_tokens.claim(&request.jti, now) {
        tracing::warn!(jti = %request.jti, "back-channel logout refused: a replayed logout token");
        return refuse("invalid_request", "the logout token was used before");
    }
    let ended = state
        .logins
        // Stamped now, after the checks (which may have fetched the provider's keys), so other
        // processes' syncs see it; only sign-ins made before the token was issued end.
        .end_matching(
            request.sub.as_deref(),
            request.sid.as_deref(),
            request
                .iat
                .saturating_add(i64::try_from(CLOCK_SKEW.as_secs()).unwrap_or(0)),
            state.now(),
        )
        .await;
    let ended = match ended {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "back-channel logout: cannot end the sessions");
            state.seen_logout_tokens.release(&request.jti);
            return refuse("temporarily_unavailable", "the sessions could not be ended");
        }
    };
    tracing::info!(
        sub = request.sub.as_deref().unwrap_or("-"),
        ended,
        "back-channel logout"
    );
    let detail = format!(
        "the provider ended {} (sid {}); {ended} session(s) ended",
        request.sub.as_deref().unwrap_or("a session"),
        request.sid.as_deref().unwrap_or("-"),
    );
    let _ = state
        .audit(
            &RequestMeta::of(&req),
            request.sub.as_deref(),
            AuditEvent::LogoutByProvider,
            detail,
        )
        .await;
    HttpResponse::Ok().finish()
}

/// §2.8: `400` with `error` (and a description) as JSON.
fn refuse(error: &str, description: &str) -> HttpResponse {
    HttpResponse::BadRequest().json_line(json!({"error": error, "error_description": description}))
}

/// Anything but `POST`: a JSON 405 with `Allow: POST`.
pub async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .json_line(json!({"error": "method_not_allowed", "error_description": "post a logout_token"}))
}
