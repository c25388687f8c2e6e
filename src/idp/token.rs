//! `/token` (OIDC Core §3.1.3, RFC 6749 §4.1.3): authenticates the client, redeems a code once
//! with its PKCE verifier, and issues the ID token and an RFC 9068 access token, both signed
//! with the client's registered algorithm.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::{ClientRegistration, TokenAuthMethod};
use super::control::{TokenDeviation, merge_claims};
use super::directory::User;
use super::errors::OAuthError;
use super::keys::{Keys, SignatureMode};
use super::protocol::is_pkce_value;
use super::state::{CodeGrant, Idp, TOKEN_TTL_SECS};
use crate::web::{NO_STORE, pkce_s256, random_token, secrets_equal};

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 6749 §2.3.1: the Basic credentials are form-urlencoded before base64.
fn basic_credentials(req: &HttpRequest) -> Option<Result<(String, String), ()>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let parse = || -> Option<(String, String)> {
        let value = value.to_str().ok()?;
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        Some((unescape(id)?, unescape(secret)?))
    };
    Some(parse().ok_or(()))
}

/// How the client presented itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presented {
    Basic,
    Post,
    /// `client_id` alone: a public client (OIDC Core §9 `none`).
    Nothing,
}

/// Client authentication (OIDC Core §9): `client_secret_basic`, `client_secret_post`, or
/// `none` for public clients — never two at once (RFC 6749 §2.3) and only the method the
/// client registered (`client_secret_basic` when it registered none); secrets compared in
/// constant time. It runs before the code is looked at, so a refused client spends no code.
fn authenticate<'a>(
    req: &HttpRequest,
    idp: &'a Idp,
    form: &TokenForm,
) -> Result<&'a ClientRegistration, OAuthError> {
    let (client_id, secret, presented) = match (basic_credentials(req), &form.client_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        (Some(Err(())), None) => {
            return Err(OAuthError::invalid_client(
                true,
                "the Basic credentials cannot be read (RFC 6749 section 2.3.1)",
            ));
        }
        (Some(Ok((id, secret))), None) => {
            if form.client_id.as_deref().is_some_and(|c| c != id) {
                return Err(OAuthError::invalid_client(
                    true,
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, Some(secret), Presented::Basic)
        }
        (None, Some(secret)) => match &form.client_id {
            Some(id) => (id.clone(), Some(secret.clone()), Presented::Post),
            None => return Err(OAuthError::invalid_client(false, "client_id is missing")),
        },
        (None, None) => match &form.client_id {
            Some(id) => (id.clone(), None, Presented::Nothing),
            None => {
                return Err(OAuthError::invalid_client(
                    false,
                    "client authentication is required",
                ));
            }
        },
    };
    let basic = presented == Presented::Basic;
    let Some(client) = idp.client(&client_id) else {
        tracing::info!(?client_id, "token request from an unknown client");
        return Err(OAuthError::invalid_client(basic, "unknown client"));
    };
    // Dynamic Client Registration 1.0 §2: a client that registers no method uses
    // client_secret_basic; one that registers a method uses that one alone.
    let method = client.token_auth_method();
    let method_ok = match method {
        TokenAuthMethod::None => presented == Presented::Nothing,
        TokenAuthMethod::ClientSecretBasic => presented == Presented::Basic,
        TokenAuthMethod::ClientSecretPost => presented == Presented::Post,
    };
    if !method_ok {
        tracing::info!(
            ?client_id,
            ?presented,
            registered = method.as_str(),
            "client used a method it did not register"
        );
        let description = match method {
            TokenAuthMethod::None => "a public client sends no client secret".to_owned(),
            method => format!("this client authenticates with {}", method.as_str()),
        };
        // RFC 6749 §5.2: the Basic challenge whenever the client tried Basic, and also when it
        // must use Basic (it tells a client that posted its secret what to do instead).
        let challenge = basic || method == TokenAuthMethod::ClientSecretBasic;
        return Err(OAuthError::invalid_client(challenge, description));
    }
    if presented == Presented::Nothing {
        return Ok(client);
    }
    use secrecy::ExposeSecret;
    let expected = client.client_secret.as_ref().map(|s| s.expose_secret());
    match (expected, secret.as_deref()) {
        (Some(expected), Some(given)) if secrets_equal(expected, given) => Ok(client),
        _ => {
            tracing::info!(?client_id, "client authentication failed");
            Err(OAuthError::invalid_client(basic, "the client secret is wrong"))
        }
    }
}

/// `POST /token`.
pub async fn token(
    req: HttpRequest,
    idp: web::Data<Idp>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, OAuthError> {
    let form = form.into_inner();
    let client = authenticate(&req, &idp, &form)?;
    if form.grant_type.as_deref() != Some("authorization_code") {
        return Err(match form.grant_type {
            None => OAuthError::invalid_request("grant_type is missing"),
            Some(_) => OAuthError::unsupported_grant_type(),
        });
    }
    let code = form
        .code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    // Taken out before any check: a code is redeemed at most once, successfully or not.
    let grant = idp
        .take_code(code)
        .ok_or_else(|| OAuthError::invalid_grant("unknown, used or expired code"))?;
    let now = idp.now();
    if grant.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code expired"));
    }
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    // RFC 6749 §4.1.3: the same redirect_uri as in the authorization request.
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    // RFC 7636 §4.6: BASE64URL(SHA256(verifier)) must equal the challenge.
    match form.code_verifier.as_deref() {
        Some(v) if is_pkce_value(v) && secrets_equal(&pkce_s256(v), &grant.code_challenge) => {}
        Some(_) => return Err(OAuthError::invalid_grant("the PKCE code_verifier does not match")),
        None => return Err(OAuthError::invalid_grant("the PKCE code_verifier is missing")),
    }
    let Some(user) = idp.directory.user(&grant.user) else {
        return Err(OAuthError::invalid_grant(
            "the user of this code no longer exists",
        ));
    };
    let deviation = if idp.test_control {
        idp.control().take_token_deviation(&client.client_id)
    } else {
        TokenDeviation::default()
    };
    // The first RS256 token may wait for the key generated in the background.
    idp.keys
        .prepare(deviation.signature)
        .await
        .map_err(OAuthError::server_error)?;
    let body = issue(&idp, client, &grant, &user, deviation, now).map_err(OAuthError::server_error)?;
    tracing::info!(user = %grant.user, client = %grant.client_id, acr = grant.auth.acr, "tokens issued");
    Ok(HttpResponse::Ok()
        .insert_header(NO_STORE)
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body))
}

fn issue(
    idp: &Idp,
    client: &ClientRegistration,
    grant: &CodeGrant,
    user: &User,
    deviation: TokenDeviation,
    now: i64,
) -> anyhow::Result<Value> {
    let exp = now + TOKEN_TTL_SECS;
    // OIDC Core §2 and §5.1; acr/amr/auth_time per §2 and RFC 8176. The user's extra claims
    // first, so none can stand in for a claim Fabrikam ID sets (the configuration refuses
    // those names anyway).
    let mut id = user.claims.clone();
    merge_claims(
        &mut id,
        json!({
            "iss": idp.issuer, "sub": user.username, "aud": grant.client_id, "azp": grant.client_id,
            "exp": exp, "iat": now, "auth_time": grant.auth.auth_time,
            "acr": grant.auth.acr, "amr": grant.auth.amr, "sid": grant.sid,
            "roles": user.roles, "name": user.name, "email": user.email,
        })
        .as_object()
        .expect("an object"),
    );
    if let Some(nonce) = &grant.nonce {
        id.insert("nonce".into(), json!(nonce));
    }
    // RFC 9068 §2.2: the claims of a JWT access token.
    let mut access = json!({
        "iss": idp.issuer, "sub": user.username, "aud": idp.api_audience, "client_id": grant.client_id,
        "iat": now, "exp": exp, "jti": random_token(16), "scope": grant.scope,
        "acr": grant.auth.acr, "amr": grant.auth.amr, "auth_time": grant.auth.auth_time,
        "roles": user.roles,
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    merge_claims(&mut id, &deviation.id_token_claims);
    merge_claims(&mut access, &deviation.access_token_claims);
    // Both tokens with the client's registered algorithm (RS256 unless it chose ES256).
    let alg = client.id_token_signed_response_alg;
    let id_token = match deviation.signature {
        SignatureMode::Hs256ClientSecret => {
            use secrecy::ExposeSecret;
            let secret = client.client_secret.as_ref().ok_or_else(|| {
                anyhow::anyhow!("test control: hs256-client-secret needs a client with a secret")
            })?;
            Keys::sign_hs256(Some("JWT"), &id, secret.expose_secret().as_bytes())?
        }
        mode => idp.keys.sign(alg, Some("JWT"), &id, mode)?,
    };
    // The access token is MACed by no client secret (its audience is the API, not the client).
    let access_mode = match deviation.signature {
        SignatureMode::Hs256ClientSecret => SignatureMode::Valid,
        mode => mode,
    };
    // RFC 9068 §2.1: `typ: at+jwt` (test control may replace or drop it).
    let access_typ = match &deviation.access_token_typ {
        None => Some("at+jwt"),
        Some(typ) => typ.as_deref(),
    };
    let access_token = idp.keys.sign(alg, access_typ, &access, access_mode)?;
    Ok(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_TTL_SECS,
        "id_token": id_token,
        "scope": grant.scope,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn with_basic(raw: &str) -> HttpRequest {
        let value = format!("Basic {}", STANDARD.encode(raw));
        TestRequest::default()
            .insert_header((header::AUTHORIZATION, value))
            .to_http_request()
    }

    #[test]
    fn basic_credentials_are_form_urlencoded_inside_base64() {
        // RFC 6749 §2.3.1: "a b" / "p:w%" travel as "a+b:p%3Aw%25".
        let parsed = basic_credentials(&with_basic("a+b:p%3Aw%25"));
        assert_eq!(parsed, Some(Ok(("a b".to_owned(), "p:w%".to_owned()))));
        assert_eq!(basic_credentials(&with_basic("no-colon")), Some(Err(())));
        assert_eq!(basic_credentials(&TestRequest::default().to_http_request()), None);
        let bearer = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Bearer x"))
            .to_http_request();
        assert_eq!(basic_credentials(&bearer), Some(Err(())));
    }
}
