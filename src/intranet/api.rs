//! The JSON API: salaries for callers holding an RFC 9068 access token from the provider,
//! under *the same* `salary` requirement as the pages, through the same `StepUp<P>`
//! extractor. Here the login is the bearer token ([`BearerApi`], registered on the API's
//! resource), and too weak or too old a token gets RFC 9470's
//! `insufficient_user_authentication` challenge, which a client answers by stepping up.

use actix_web::http::header;
use actix_web::{Error, HttpRequest, HttpResponse, ResponseError, web};
use actix_web_stepup::{AuthState, BoxFuture, Refusal, Shortfall, StepUp, StepUpApp, StepUpNeeded};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value, json};

use super::data::AuditEvent;
use super::errors::ApiError;
use super::requirements::SalaryAccess;
use super::state::{AppState, CLOCK_SKEW, RequestMeta, audit_forbidden};
use crate::clock::Clock;

/// Asymmetric algorithms only: `none` and HMAC are never accepted for access tokens.
const ALLOWED_ALGS: &[Algorithm] = &[
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

/// `GET /api/employees/{id}/salary`: runs only when `StepUp<SalaryAccess>` allowed the token.
pub async fn salary(
    access: StepUp<SalaryAccess>,
    state: web::Data<AppState>,
    meta: RequestMeta,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let auth = access.user();
    let employee = state
        .db
        .employee(*id)
        .await
        .map_err(ApiError::database)?
        .ok_or(ApiError::NotFound)?;
    let history = state
        .db
        .salary_history(employee.id)
        .await
        .map_err(ApiError::database)?;
    let detail = format!("employee {} via API; {auth}", employee.id);
    // No audit row, no salary.
    state
        .audit(&meta, Some(&auth.subject), AuditEvent::SalaryViewedApi, detail)
        .await
        .map_err(ApiError::database)?;
    Ok(HttpResponse::Ok().json(json!({"employee": employee, "salary_history": history})))
}

/// Any other path under `/api`: a JSON 404, never the HTML page.
pub async fn unknown_path() -> HttpResponse {
    ApiError::UnknownPath.error_response()
}

/// A method other than `GET` or `HEAD` on a JSON endpoint: a JSON 405 with `Allow`.
pub async fn method_not_allowed() -> HttpResponse {
    ApiError::MethodNotAllowed.error_response()
}

/// The API as a `StepUpApp`: the login is the bearer token, a step-up is RFC 9470's
/// challenge, refusals are JSON (RFC 6750 §3.1).
pub struct BearerApi {
    /// The intranet's one clock (the same as `AppState`'s).
    pub clock: Clock,
}

impl StepUpApp for BearerApi {
    fn current_auth<'a>(&'a self, req: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
        Box::pin(async move {
            let Some(token) = bearer_token(req) else {
                return Ok(None);
            };
            let state =
                AppState::of(req).ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("no AppState")))?;
            let claims = validate_access_token(&state, token).await?;
            let auth = AuthState::from_claims(&claims, &state.roles_claim, state.now())
                .map_err(|e| ApiError::InvalidToken(e.to_string()))?;
            Ok(Some(auth))
        })
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
            let StepUpNeeded {
                user,
                request,
                shortfall,
                ..
            } = needed;
            if let Some(state) = AppState::of(req) {
                let detail = format!("API challenge: {request} ({shortfall})");
                let _ = state
                    .audit(
                        &RequestMeta::of(req),
                        Some(&user.subject),
                        AuditEvent::StepUpRequested,
                        detail,
                    )
                    .await;
            }
            let description = match shortfall {
                Shortfall::Stale => "a more recent authentication is required",
                _ => "a multi-factor authentication is required",
            };
            let error = ApiError::InsufficientAuthentication {
                request,
                description: description.into(),
            };
            Ok(error.error_response())
        })
    }

    fn refuse<'a>(&'a self, req: &'a HttpRequest, refusal: Refusal<'a>) -> BoxFuture<'a, Error> {
        Box::pin(async move {
            let error = match refusal {
                Refusal::LoginRequired { .. } => ApiError::MissingToken,
                Refusal::Forbidden {
                    user, missing_role, ..
                } => {
                    audit_forbidden(req, &user.subject, &missing_role).await;
                    ApiError::Forbidden { missing_role }
                }
                // An access token never answers a step-up of ours; should one claim to, the
                // client gets the same challenge as for any weak token.
                Refusal::StepUpFailed { request, .. } => ApiError::InsufficientAuthentication {
                    request,
                    description: "a multi-factor authentication is required".into(),
                },
                other => ApiError::Unexpected(anyhow::anyhow!("step-up misconfigured: {other:?}")),
            };
            error.into()
        })
    }
}

/// RFC 6750 §2.1: `Authorization: Bearer <token>`; anything else counts as no token.
fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Some(token.trim())
        }
        _ => None,
    }
}

/// RFC 9068 §4: `typ` is `at+jwt`, signature by the issuer's keys, `iss`, `aud` = our API,
/// `exp`, `iat` and `nbf` (with the one clock skew). An unknown `kid` refetches the JWKS
/// (bounded: see `oidc.rs`).
async fn validate_access_token(state: &AppState, token: &str) -> Result<Map<String, Value>, ApiError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| ApiError::InvalidToken(e.to_string()))?;
    let typ = header.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
    if typ != "at+jwt" && typ != "application/at+jwt" {
        return Err(ApiError::InvalidToken(format!("typ is {typ:?}, not at+jwt")));
    }
    if !ALLOWED_ALGS.contains(&header.alg) {
        return Err(ApiError::InvalidToken(format!(
            "alg {:?} is not allowed",
            header.alg
        )));
    }
    let kid = header
        .kid
        .ok_or_else(|| ApiError::InvalidToken("no kid".into()))?;
    let key = state
        .oidc
        .jwt_key(&kid)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot get the provider's keys");
            ApiError::Unavailable
        })?
        .ok_or_else(|| ApiError::InvalidToken("unknown kid".into()))?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[&state.api_audience]);
    validation.set_issuer(&[state.oidc.issuer()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // `exp`, `iat` and `nbf` are checked below against the intranet's one clock, not
    // jsonwebtoken's.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| ApiError::InvalidToken(e.to_string()))?
        .claims;
    // RFC 9068 §2.2 requires exp and iat; RFC 7519 §4.1.5: never before nbf. Each against
    // the intranet's one clock, with the one skew.
    let skew = i64::try_from(CLOCK_SKEW.as_secs()).unwrap_or(0);
    let now = state.now();
    let exp = numeric_date(&claims, "exp")?.ok_or_else(|| ApiError::InvalidToken("no exp".into()))?;
    if now > exp.saturating_add(skew) {
        return Err(ApiError::InvalidToken("expired".into()));
    }
    let iat = numeric_date(&claims, "iat")?.ok_or_else(|| ApiError::InvalidToken("no iat".into()))?;
    if iat > now.saturating_add(skew) {
        return Err(ApiError::InvalidToken("issued in the future".into()));
    }
    if let Some(nbf) = numeric_date(&claims, "nbf")?
        && nbf > now.saturating_add(skew)
    {
        return Err(ApiError::InvalidToken("not valid yet (nbf)".into()));
    }
    Ok(claims)
}

/// A NumericDate claim (RFC 7519 §2) as whole seconds: absent is `None`, anything but a number
/// is an invalid token. `as` saturates, so a huge float cannot overflow.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, ApiError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| ApiError::InvalidToken(format!("{name} is not a number"))),
    }
}
