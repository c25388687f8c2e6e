//! `/userinfo` (OIDC Core §5.3): the claims of the user an access token was issued for.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::control::merge_claims;
use super::errors::OAuthError;
use super::state::Idp;

/// `GET`/`POST /userinfo` with `Authorization: Bearer <access token>` (RFC 6750 §2.1).
pub async fn userinfo(req: HttpRequest, idp: web::Data<Idp>) -> Result<HttpResponse, OAuthError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| OAuthError::invalid_token("a bearer access token is required"))?;
    idp.keys.ready().await.map_err(OAuthError::server_error)?;
    let token = idp
        .keys
        .verify(token, &idp.issuer, idp.now(), true)
        .map_err(|_| OAuthError::invalid_token("the access token is invalid or expired"))?;
    // Only our access tokens: RFC 9068 §4 has a resource server check `typ` (at+jwt) and that
    // the audience is the API. An ID token (typ JWT, aud a client) is not a bearer credential.
    if !token.is_access_token() {
        return Err(OAuthError::invalid_token(
            "only an access token (typ at+jwt) is accepted here, not an ID token",
        ));
    }
    if !token.audiences().contains(&idp.api_audience.as_str()) {
        return Err(OAuthError::invalid_token(
            "the token is not an access token for this OP",
        ));
    }
    let claims = token.claims;
    let user = claims
        .get("sub")
        .and_then(Value::as_str)
        .and_then(|sub| idp.directory.user(sub))
        .ok_or_else(|| OAuthError::invalid_token("the token's subject is unknown"))?;
    let mut claims = user.claims.clone();
    merge_claims(
        &mut claims,
        json!({ "sub": user.username, "name": user.name, "email": user.email, "roles": user.roles })
            .as_object()
            .expect("an object"),
    );
    Ok(HttpResponse::Ok().json(claims))
}
