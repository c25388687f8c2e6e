//! OpenID Connect Discovery 1.0 §3 metadata and the JWKS (RFC 7517 §5).

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::errors::OAuthError;
use super::keys::SigningAlg;
use super::paths::{self, absolute};
use super::protocol::{ACR_MFA, ACR_PASSWORD, SCOPES};
use super::state::Idp;

/// The claims every ID token or userinfo answer may carry.
const CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "azp",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "sid",
    "name",
    "email",
    "roles",
];

/// `GET /.well-known/openid-configuration`.
pub async fn configuration(idp: web::Data<Idp>) -> HttpResponse {
    let url = |path| absolute(&idp.issuer_url, path);
    let mut claims: Vec<String> = CLAIMS.iter().map(|c| c.to_string()).collect();
    claims.extend(idp.directory.claim_names());
    let algs: Vec<&str> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
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
            // RS256 first: OIDC Core §15.1 makes it mandatory, and it is the default.
            "id_token_signing_alg_values_supported": algs,
            "scopes_supported": SCOPES,
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "prompt_values_supported": ["none", "login"],
            "acr_values_supported": [ACR_PASSWORD, ACR_MFA],
            "claims_supported": claims,
            // Back-Channel Logout 1.0 §2.1: logout tokens are sent, and carry `sid`.
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
        }))
}

/// `GET /jwks`: every published key. The first request may wait for the RSA key generated in
/// the background at start.
pub async fn jwks(idp: web::Data<Idp>) -> Result<HttpResponse, OAuthError> {
    idp.keys.ready().await.map_err(OAuthError::server_error)?;
    let jwks = idp.keys.jwks(idp.now()).map_err(OAuthError::server_error)?;
    // Short caching: a rotation shows within a minute (RPs also refetch for an unknown kid).
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .json(jwks))
}
