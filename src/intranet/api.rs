//! The JSON API: salaries for callers holding an RFC 9068 access token from the provider,
//! under *the same* step-up requirement as the pages. Too weak or too old → RFC 9470's
//! `insufficient_user_authentication` challenge, which a client answers by stepping up.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};

use super::AppState;
use super::data::AuditEvent;
use super::errors::{ApiError, describe_request};
use super::extractors::{RequestMeta, now};
use super::policy::{AuthState, Decision, Shortfall, evaluate};

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

/// `GET /api/employees/{id}/salary`
pub async fn salary(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let token = bearer_token(&req)?;
    let claims = validate_access_token(&state, token).await?;
    let auth = AuthState::from_claims(&claims, &state.roles_claim, now())
        .ok_or_else(|| ApiError::InvalidToken("no sub".into()))?;
    let requirement = &state.salary_requirement;
    let subject = Some(auth.subject.as_str());
    match evaluate(&auth, requirement, now()) {
        Decision::Allow { .. } => {}
        Decision::Forbidden { missing_role } => {
            let detail = format!("{} needs role {missing_role}", req.path());
            let _ = state.audit(&meta, subject, AuditEvent::Forbidden, detail).await;
            return Err(ApiError::Forbidden { missing_role });
        }
        // An access token never "answers" a step-up of ours, so both are the same challenge.
        Decision::StepUp { request, shortfall } | Decision::StepUpFailed { request, shortfall } => {
            let detail = format!("API challenge: {} ({shortfall:?})", describe_request(&request));
            let _ = state
                .audit(&meta, subject, AuditEvent::StepUpRequested, detail)
                .await;
            let description = match shortfall {
                Shortfall::Stale => "a more recent authentication is required",
                _ => "a multi-factor authentication is required",
            };
            return Err(ApiError::InsufficientAuthentication {
                request,
                description: description.into(),
            });
        }
    }
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
    let detail = format!(
        "employee {} via API; acr={} amr={}",
        employee.id,
        auth.acr.as_deref().unwrap_or("-"),
        auth.amr.join(" ")
    );
    // No audit row, no salary.
    state
        .audit(&meta, subject, AuditEvent::SalaryViewedApi, detail)
        .await
        .map_err(ApiError::database)?;
    Ok(HttpResponse::Ok().json(json!({"employee": employee, "salary_history": history})))
}

/// RFC 6750 §2.1: `Authorization: Bearer <token>`.
fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::MissingToken)?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::InvalidToken("not ASCII".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim())
        }
        _ => Err(ApiError::MissingToken),
    }
}

/// RFC 9068 §4: `typ` is `at+jwt`, signature by the issuer's keys, `iss`, `aud` = our API,
/// `exp`. An unknown `kid` refetches the JWKS once.
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
    let key = match find_key(state, &kid, false).await? {
        Some(key) => key,
        None => find_key(state, &kid, true)
            .await?
            .ok_or_else(|| ApiError::InvalidToken("unknown kid".into()))?,
    };
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[&state.api_audience]);
    validation.set_issuer(&[state.oidc.issuer()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 60;
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| ApiError::InvalidToken(e.to_string()))?;
    Ok(data.claims)
}

async fn find_key(state: &AppState, kid: &str, refetch: bool) -> Result<Option<DecodingKey>, ApiError> {
    let jwks = state.oidc.jwks_json(refetch).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot get the provider's keys");
        ApiError::Unavailable
    })?;
    let set: JwkSet = serde_json::from_value(jwks).map_err(|e| ApiError::InvalidToken(e.to_string()))?;
    Ok(set.find(kid).and_then(|jwk| DecodingKey::from_jwk(jwk).ok()))
}
