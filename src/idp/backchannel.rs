//! OpenID Connect Back-Channel Logout 1.0, the provider's half: when a provider session ends,
//! Fabrikam ID posts a logout token to every client that received a code in it and registered
//! a `backchannel_logout_uri`, so their sessions end too.
//!
//! What ends a session and sends logout tokens: sign-out (RP-Initiated Logout, which also
//! notifies the client that asked), a sign-in as another user in the same browser, and
//! revocation (test control: a session, or a user removed). What does not: the idle timeout and
//! the absolute lifetime. They mean "ask the person again at the next sign-in", not "the person
//! left": a user busy at an application for an hour without visiting the provider has an idle
//! provider session, and the application's session is its own to end.
//!
//! Each token is sent on its own task, at once and concurrently, with a short timeout and no
//! redirects followed (`Idp::http`, built in [`super::state`]); sign-out never waits for it or fails because of it. The outcome is
//! logged (client, status or error, never the token) and, with test control, recorded for
//! `GET /test-control/backchannel-logouts`.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::control::BackchannelLogout;
use super::keys::SignatureMode;
use super::sessions::EndedSession;
use super::state::Idp;

/// The event a logout token carries (§2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The JOSE `typ` of a logout token (§2.4, explicit typing per RFC 8725 §3.11).
pub const TYP: &str = "logout+jwt";
/// How long a logout token is valid: two minutes is plenty to deliver it now.
pub const LOGOUT_TOKEN_TTL_SECS: i64 = 120;
/// The claims of a logout token for `client_id` about `ended` (§2.4): `iss`, `aud`, `iat`,
/// `exp`, `jti`, `events`, and both `sub` and `sid` (so clients that need either have it);
/// never `nonce`, which §2.4 forbids so a logout token cannot pass for an ID token.
pub fn claims(issuer: &str, client_id: &str, ended: &EndedSession, now: i64) -> Map<String, Value> {
    let claims = json!({
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL_SECS,
        "jti": crate::web::random_token(16),
        "sub": ended.user,
        "sid": ended.sid,
        "events": { EVENT: {} },
    });
    claims.as_object().cloned().unwrap_or_default()
}

/// Tells every client of `ended` that has a `backchannel_logout_uri` (§2.5). Returns at once:
/// each token is signed and sent on a task of its own.
pub fn notify(idp: &Arc<Idp>, ended: EndedSession) {
    for client_id in &ended.clients {
        let Some(client) = idp.client(client_id) else {
            continue;
        };
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            continue;
        };
        let alg = client.id_token_signed_response_alg;
        let idp = Arc::clone(idp);
        let claims = claims(&idp.issuer, client_id, &ended, idp.now());
        let client_id = client_id.clone();
        tokio::spawn(async move {
            // The client's ID-token algorithm; RS256 may wait for the key made at start.
            let token = match idp
                .keys
                .ready()
                .await
                .and_then(|()| idp.keys.sign(alg, Some(TYP), &claims, SignatureMode::Valid))
            {
                Ok(token) => token,
                Err(e) => {
                    tracing::error!(client = %client_id, error = ?e, "logout token could not be signed");
                    return;
                }
            };
            let jti = claims["jti"].as_str().unwrap_or_default().to_owned();
            if idp.test_control {
                idp.control().record_logout(BackchannelLogout {
                    client_id: client_id.clone(),
                    uri: uri.clone(),
                    logout_token: token.clone(),
                    jti: jti.clone(),
                    sub: claims["sub"].as_str().unwrap_or_default().to_owned(),
                    sid: claims["sid"].as_str().unwrap_or_default().to_owned(),
                    sent_at: claims["iat"].as_i64().unwrap_or_default(),
                    status: None,
                    error: None,
                });
            }
            let started = Instant::now();
            let sent = idp
                .http
                .post(&uri)
                .form(&[("logout_token", token.as_str())])
                .send()
                .await;
            let millis = started.elapsed().as_millis();
            let (status, error) = match sent {
                // §2.8: 200 when the logout succeeded (204 is common too), 400 when not.
                Ok(response) if response.status().is_success() => {
                    tracing::info!(client = %client_id, status = response.status().as_u16(), millis, "back-channel logout delivered");
                    (Some(response.status().as_u16()), None)
                }
                Ok(response) => {
                    tracing::warn!(client = %client_id, status = response.status().as_u16(), millis, "back-channel logout refused by the client");
                    (Some(response.status().as_u16()), None)
                }
                Err(e) => {
                    let error = if e.is_timeout() {
                        "timed out".to_owned()
                    } else if e.is_connect() {
                        "could not connect".to_owned()
                    } else {
                        "the request failed".to_owned()
                    };
                    tracing::warn!(client = %client_id, %error, millis, "back-channel logout not delivered");
                    (None, Some(error))
                }
            };
            if idp.test_control {
                idp.control().logout_done(&jti, status, error);
            }
        });
    }
}
