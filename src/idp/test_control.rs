//! The test-control API (`--test-control`, never in the demo): read the last authorization
//! requests, shift the provider's clock, make the next tokens deviate (for any client or for
//! one), add and change users, and rotate the signing keys — so relying parties can prove they
//! refuse bad tokens and survive what real providers do. Every path is under the issuer.
//! Errors are JSON: `{"error": "invalid_request", "error_description": "..."}`.
//!
//! - `GET /test-control/authorize-requests[?client_id=c]`: `[{"params": {...}}]`, the last 50,
//!   oldest first (only client `c`'s with the query).
//! - `PUT /test-control/clock` `{"offset_secs": i64}`: shifts the provider's clock (see
//!   [`crate::clock`]); 204.
//! - `PUT /test-control/next-token` ([`NextToken`]; every field optional, unknown fields
//!   refused; each deviation is used once, by the next `/authorize` or successful `/token`;
//!   with `"client_id"` only by that client's, and those win over unscoped ones); 204.
//! - `DELETE /test-control/next-token[?client_id=c]`: drops deviations not yet used (client
//!   `c`'s, or all); 204.
//! - `POST /test-control/reset`: no deviation, no clock offset (the request log, users and
//!   keys stay); 204.
//! - `GET /test-control/users`: every user ([`UserView`]: no password; the TOTP secret so a
//!   test can compute codes).
//! - `GET /test-control/users/{username}`: one user, or 404.
//! - `PUT /test-control/users/{username}` ([`UserSpec`], `username` optional): adds or
//!   replaces the user; 201 or 200 with the [`UserView`].
//! - `PATCH /test-control/users/{username}` ([`UserPatch`]): changes some fields; 200 with
//!   the [`UserView`], or 404.
//! - `DELETE /test-control/users/{username}`: removes the user and ends their provider
//!   sessions (sending back-channel logouts); 204 or 404.
//! - `GET /test-control/backchannel-logouts[?client_id=c]`: the last 50 back-channel logouts
//!   sent ([`BackchannelLogout`](super::control::BackchannelLogout): client, URI, the logout
//!   token, `sid`, `sub`, and the receiver's status or the error once known), oldest first.
//! - `GET /test-control/sessions`: the live provider sessions ([`SessionView`](super::sessions::SessionView): `sid`, user,
//!   times, the clients served; never the cookie), soonest to end first.
//! - `DELETE /test-control/sessions/{sid}`: ends that session (revocation, sending
//!   back-channel logouts); 204 or 404.
//! - `GET /test-control/keys`: [`KeyStatus`], which `kid` signs per algorithm and every
//!   published one.
//! - `POST /test-control/keys/rotate` `{"alg": "RS256" | "ES256", "grace_secs": 300}` (both
//!   optional: every algorithm, 300 s): new keys become current; the old ones stay published
//!   for the grace period on the provider's clock (0: withdrawn at once); 200 with the
//!   [`KeyStatus`].

use crate::web::JsonLine;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::backchannel;
use super::config::UserSpec;
use super::control::NextToken;
use super::directory::{NewUser, UserPatch, UserView};
use super::keys::{KeyStatus, SignatureMode, SigningAlg};
use super::state::Idp;
use crate::clock::MAX_OFFSET_SECS;
use crate::web::get_or_head;

/// The grace period of a rotated key when the request names none.
pub const DEFAULT_GRACE_SECS: i64 = 300;

pub fn routes(cfg: &mut web::ServiceConfig) {
    use super::paths;
    cfg.route(paths::TC_AUTHORIZE_REQUESTS, get_or_head().to(authorize_requests))
        .route(paths::TC_CLOCK, web::put().to(set_clock))
        .route(paths::TC_NEXT_TOKEN, web::put().to(set_next_token))
        .route(paths::TC_NEXT_TOKEN, web::delete().to(clear_next_token))
        .route(paths::TC_RESET, web::post().to(reset))
        .route(paths::TC_USERS, get_or_head().to(users))
        .route(paths::TC_USER, get_or_head().to(user))
        .route(paths::TC_USER, web::put().to(put_user))
        .route(paths::TC_USER, web::patch().to(patch_user))
        .route(paths::TC_USER, web::delete().to(delete_user))
        .route(
            paths::TC_BACKCHANNEL_LOGOUTS,
            get_or_head().to(backchannel_logouts),
        )
        .route(paths::TC_SESSIONS, get_or_head().to(sessions))
        .route(paths::TC_SESSION, web::delete().to(end_session))
        .route(paths::TC_KEYS, get_or_head().to(keys))
        .route(paths::TC_ROTATE_KEYS, web::post().to(rotate_keys));
}

fn invalid(description: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest().json_line(json!({
        "error": "invalid_request", "error_description": description.to_string(),
    }))
}

fn not_found(what: &str) -> HttpResponse {
    HttpResponse::NotFound().json_line(json!({ "error": "not_found", "error_description": what }))
}

fn server_error(e: impl std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "test control failed");
    HttpResponse::InternalServerError().json_line(json!({
        "error": "server_error", "error_description": e.to_string(),
    }))
}

#[derive(Deserialize)]
struct ClientFilter {
    client_id: Option<String>,
}

/// `GET /test-control/authorize-requests[?client_id=c]`.
async fn authorize_requests(idp: web::Data<Idp>, filter: web::Query<ClientFilter>) -> HttpResponse {
    let list: Vec<Value> = idp
        .control()
        .requests(filter.client_id.as_deref())
        .into_iter()
        .map(|p| json!({ "params": p }))
        .collect();
    HttpResponse::Ok().json(list)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Clock {
    offset_secs: i64,
}

/// `PUT /test-control/clock` `{"offset_secs": i64}`.
async fn set_clock(idp: web::Data<Idp>, body: web::Json<Clock>) -> HttpResponse {
    match idp.clock.set_offset(body.offset_secs) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => invalid(format_args!("{e} ({MAX_OFFSET_SECS} s)")),
    }
}

/// `PUT /test-control/next-token`: replaces the waiting deviations (for its client or any).
async fn set_next_token(idp: web::Data<Idp>, body: web::Json<NextToken>) -> HttpResponse {
    let next = body.into_inner();
    if let Some(client) = &next.client_id
        && idp.client(client).is_none()
    {
        return invalid(format_args!("no client {client:?} is registered"));
    }
    // A wrong RSA key is generated on first use: do it now, not in the next /token.
    let mode = next.signature.unwrap_or_default();
    if mode == SignatureMode::Hs256ClientSecret
        && let Some(client) = next.client_id.as_deref().and_then(|c| idp.client(c))
        && client.client_secret.is_none()
    {
        return invalid(format_args!(
            "hs256-client-secret needs a client secret, and {:?} is a public client",
            client.client_id
        ));
    }
    if let Err(e) = idp.keys.prepare(mode).await {
        return server_error(e);
    }
    idp.control().set(next);
    HttpResponse::NoContent().finish()
}

/// `DELETE /test-control/next-token[?client_id=c]`.
async fn clear_next_token(idp: web::Data<Idp>, filter: web::Query<ClientFilter>) -> HttpResponse {
    idp.control().clear(filter.client_id.as_deref());
    HttpResponse::NoContent().finish()
}

/// `POST /test-control/reset`: no deviation, no clock offset (the request log, users and
/// keys stay).
async fn reset(idp: web::Data<Idp>) -> HttpResponse {
    idp.control().clear(None);
    idp.clock.set_offset(0).expect("zero is in range");
    HttpResponse::NoContent().finish()
}

/// `GET /test-control/users`.
async fn users(idp: web::Data<Idp>) -> HttpResponse {
    HttpResponse::Ok().json(idp.directory.views())
}

/// `GET /test-control/users/{username}`.
async fn user(idp: web::Data<Idp>, username: web::Path<String>) -> HttpResponse {
    match idp.directory.view(&username) {
        Some(view) => HttpResponse::Ok().json(view),
        None => not_found("no such user"),
    }
}

/// `PUT /test-control/users/{username}`: adds or replaces the user.
async fn put_user(
    idp: web::Data<Idp>,
    username: web::Path<String>,
    body: web::Json<UserSpec>,
) -> HttpResponse {
    let mut spec = body.into_inner();
    if spec.username.is_empty() {
        spec.username = username.into_inner();
    } else if spec.username != *username {
        return invalid("the body's username differs from the path's");
    }
    let name = spec.username.clone();
    // argon2 off the async runtime.
    let pool = std::sync::Arc::clone(idp.directory.pool());
    let built = web::block(move || NewUser::from_spec(&spec, &pool)).await;
    let new = match built {
        Ok(Ok(new)) => new,
        Ok(Err(e)) => return invalid(format_args!("{e:#}")),
        Err(e) => return server_error(e),
    };
    let created = idp.directory.put(new);
    tracing::info!(user = %name, created, "test control: user set");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let view: Option<UserView> = idp.directory.view(&name);
    HttpResponse::build(status).json(view)
}

/// `PATCH /test-control/users/{username}`: changes some fields.
async fn patch_user(
    idp: web::Data<Idp>,
    username: web::Path<String>,
    body: web::Json<UserPatch>,
) -> HttpResponse {
    let patch = body.into_inner();
    let idp = idp.into_inner();
    let changed = web::block({
        let idp = idp.clone();
        move || idp.directory.patch(&username, &patch)
    })
    .await;
    match changed {
        Ok(Some(Ok(view))) => HttpResponse::Ok().json(view),
        Ok(Some(Err(e))) => invalid(format_args!("{e:#}")),
        Ok(None) => not_found("no such user"),
        Err(e) => server_error(e),
    }
}

/// `DELETE /test-control/users/{username}`: the user and their provider sessions.
async fn delete_user(idp: web::Data<Idp>, username: web::Path<String>) -> HttpResponse {
    if !idp.directory.remove(&username) {
        return not_found("no such user");
    }
    let ended = idp.sessions.end_user(&username);
    tracing::info!(user = %username, sessions = ended.len(), "test control: user removed");
    for session in ended {
        backchannel::notify(&idp, session);
    }
    HttpResponse::NoContent().finish()
}

/// `GET /test-control/backchannel-logouts[?client_id=c]`.
async fn backchannel_logouts(idp: web::Data<Idp>, filter: web::Query<ClientFilter>) -> HttpResponse {
    HttpResponse::Ok().json(idp.control().logouts(filter.client_id.as_deref()))
}

/// `GET /test-control/sessions`.
async fn sessions(idp: web::Data<Idp>) -> HttpResponse {
    HttpResponse::Ok().json(idp.sessions.views(idp.clock.real()))
}

/// `DELETE /test-control/sessions/{sid}`: revokes one provider session.
async fn end_session(idp: web::Data<Idp>, sid: web::Path<String>) -> HttpResponse {
    match idp.sessions.end_sid(&sid, idp.clock.real()) {
        Some(ended) => {
            tracing::info!(user = %ended.user, "test control: session revoked");
            backchannel::notify(&idp, ended);
            HttpResponse::NoContent().finish()
        }
        None => not_found("no such session"),
    }
}

/// `GET /test-control/keys`.
async fn keys(idp: web::Data<Idp>) -> HttpResponse {
    if let Err(e) = idp.keys.ready().await {
        return server_error(e);
    }
    match idp.keys.status(idp.now()) {
        Ok(status) => HttpResponse::Ok().json(status),
        Err(e) => server_error(e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    alg: Option<SigningAlg>,
    grace_secs: Option<i64>,
}

/// `POST /test-control/keys/rotate` `{"alg"?, "grace_secs"?}` (an empty body rotates all).
async fn rotate_keys(idp: web::Data<Idp>, body: web::Bytes) -> HttpResponse {
    let body: Rotate = if body.iter().all(u8::is_ascii_whitespace) {
        Rotate::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(e) => return invalid(e),
        }
    };
    let grace = body.grace_secs.unwrap_or(DEFAULT_GRACE_SECS);
    if !(0..=MAX_OFFSET_SECS).contains(&grace) {
        return invalid("grace_secs must be between 0 and 100 years");
    }
    let algs: Vec<SigningAlg> = body.alg.map_or(SigningAlg::ALL.to_vec(), |a| vec![a]);
    let idp = idp.into_inner();
    let rotated: Result<anyhow::Result<KeyStatus>, _> = web::block({
        let idp = idp.clone();
        // RSA generation blocks: off the async runtime.
        move || {
            let now = idp.now();
            for alg in algs {
                idp.keys.rotate(alg, grace, now)?;
            }
            idp.keys.status(now)
        }
    })
    .await;
    match rotated {
        Ok(Ok(status)) => HttpResponse::Ok().json(status),
        Ok(Err(e)) => server_error(e),
        Err(e) => server_error(e),
    }
}
