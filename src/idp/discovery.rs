//! OpenID Connect Discovery 1.0 §3 metadata and the JWKS.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::paths::{self, absolute};
use super::protocol::{ACR_MFA, ACR_PASSWORD, SCOPES};
use super::state::Idp;

/// `GET /.well-known/openid-configuration`.
pub async fn configuration(idp: web::Data<Idp>) -> HttpResponse {
    let url = |path| absolute(&idp.issuer_url, path);
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-cache"))
        .json(json!({
            "issuer": idp.issuer,
            "authorization_endpoint": url(paths::AUTHORIZE),
            "token_endpoint": url(paths::TOKEN),
            "jwks_uri": url(paths::JWKS),
            "userinfo_endpoint": url(paths::USERINFO),
            "end_session_endpoint": url(paths::LOGOUT),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": SCOPES,
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "prompt_values_supported": ["none", "login"],
            "acr_values_supported": [ACR_PASSWORD, ACR_MFA],
            "claims_supported": [
                "iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "acr", "amr",
                "sid", "name", "email", "roles"
            ],
        }))
}

/// `GET /jwks`.
pub async fn jwks(idp: web::Data<Idp>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "public, max-age=300"))
        .json(idp.keys.jwks())
}
