//! The Fabrikam intranet: the relying party. Public home page, customer pages after any
//! login, salary pages and the audit trail behind step-up requirements (the
//! `actix-web-stepup` crate), and a JSON API that answers with RFC 9470 challenges.
//!
//! Layers, each importing only those below it (no two modules import each other):
//!
//! - handlers: [`auth`] (login, callback, logout), [`pages`], [`api`];
//! - guards: [`stepup`] (the pages' `StepUpApp`, `CurrentUser`), [`errors`] (statuses and
//!   the one HTML error page, rendered with the request in hand);
//! - [`view`] (navigation, formatting), [`session`] (typed session access);
//! - [`state`] (`AppState`, the one clock and clock skew, the audit entry point),
//!   [`requirements`] (the named requirements and their markers);
//! - [`oidc`] (discovery, authorization requests, token validation, keys), [`data`] (the
//!   database), [`paths`] (every URL path).
//!
//! This file only assembles the server.

pub mod api;
pub mod auth;
pub mod backchannel;
pub mod data;
pub mod errors;
pub mod fetch;
pub mod flight;
pub mod health;
pub mod keys;
pub mod logins;
pub mod logout_token;
pub mod oidc;
pub mod pages;
pub mod paths;
pub mod redis_store;
pub mod requirements;
pub mod session;
pub mod state;
pub mod stepup;
pub mod view;

use std::net::TcpListener;
use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::{CookieSessionStore, SessionStore};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, guard, web};
use actix_web_stepup::StepUpApp;
use anyhow::Context;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::config::IntranetConfig;
use errors::AppError;
use logins::{Logins, SessionPolicy};
use oidc::Oidc;
use redis_store::RedisStore;
use state::{AppState, StoreKind};

/// Builds the intranet on an already-bound listener. Does not contact the provider: discovery
/// happens on the first login, so public pages work while the provider is down.
pub async fn build(config: IntranetConfig, listener: TcpListener) -> anyhow::Result<Server> {
    url::Url::parse(&config.issuer_url).context("OIDC_ISSUER_URL is not a URL")?;
    let key = session_key(config.session_secret.as_ref())?;
    let secure = config.public_url.scheme() == "https";
    let issuer_origin = url::Url::parse(&config.issuer_url)?
        .origin()
        .ascii_serialization();
    let requirements = web::Data::new(
        requirements::build(&config.stepup)
            .context("the step-up settings (STEPUP_PROFILE, STEPUP_ACR_VALUES, STEPUP_ACCEPT_AMR)")?,
    );
    let sessions = session_policy(&config)?;
    let db = data::Database::connect(&config.database_url).await?;
    let logins = Arc::new(
        Logins::load(db.clone(), config.clock.now())
            .await
            .context("cannot read the record of sign-ins")?,
    );
    // Other processes' sign-outs, read every few seconds for as long as this server lives.
    tokio::spawn(Logins::keep_in_sync(
        Arc::downgrade(&logins),
        config.clock.clone(),
    ));
    // Server-side sessions: the cookie carries only a (private) session id, so several intranet
    // processes with the same SESSION_SECRET share sessions, and logout deletes the session.
    let redis = match &config.redis_url {
        Some(url) => {
            if config.session_secret.is_none() {
                tracing::warn!(
                    "REDIS_URL without SESSION_SECRET: other intranet processes cannot read this one's cookies"
                );
            }
            Some(RedisStore::new(url.expose_secret(), config.redis_timeout).await?)
        }
        None => None,
    };
    let store = if redis.is_some() {
        StoreKind::Redis
    } else {
        StoreKind::Cookie
    };
    let state = web::Data::new(AppState {
        oidc: Oidc::new(
            config.issuer_url.clone(),
            config.client_id.clone(),
            config.client_secret.clone(),
            &config.public_url,
            config.roles_claim.clone(),
            state::CLOCK_SKEW,
            config.oidc_timeout,
        )?,
        db,
        requirements,
        api_audience: config.api_audience.clone(),
        roles_claim: config.roles_claim.clone(),
        interstitial: config.stepup.interstitial,
        provider_name: config.provider_name.clone(),
        sessions,
        logins,
        store,
        redis: redis.clone(),
        seen_logout_tokens: Default::default(),
        clock: config.clock.clone(),
        demo_users: config.demo_users.clone(),
    });
    // The logout form's redirect goes to the provider, and Chrome applies form-action to
    // redirects after a form post: allow the issuer's origin, nothing else. Scripts only from
    // our own files (the demo guide's live codes, which it fetches from /demo/codes).
    let csp = format!(
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; \
         form-action 'self' {issuer_origin}; frame-ancestors 'none'; base-uri 'none'"
    );
    let site = Site {
        state,
        key,
        secure,
        csp,
    };
    let server = match redis {
        Some(store) => site.serve(listener, move || store.clone())?,
        None => site.serve(listener, CookieSessionStore::default)?,
    };
    Ok(server)
}

/// Everything the app factory needs, for either session store.
struct Site {
    state: web::Data<AppState>,
    key: Key,
    secure: bool,
    csp: String,
}

impl Site {
    fn serve<S, F>(self, listener: TcpListener, store: F) -> std::io::Result<Server>
    where
        S: SessionStore + 'static,
        F: Fn() -> S + Clone + Send + 'static,
    {
        let Site {
            state,
            key,
            secure,
            csp,
        } = self;
        let requirements = state.requirements.clone();
        let state_ttl = actix_web::cookie::time::Duration::seconds(state.sessions.lifetime);
        let headers = crate::web::SecurityHeaders::new(&csp, secure);
        let pages = stepup::Pages {
            clock: state.clock.clone(),
        }
        .into_app_data();
        let bearer = api::BearerApi {
            clock: state.clock.clone(),
        }
        .into_app_data();
        let server =
            HttpServer::new(move || {
                let sessions = SessionMiddleware::builder(store(), key.clone())
                    .cookie_name(session::SESSION_COOKIE.to_owned())
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Lax)
                    .cookie_secure(secure)
                    .cookie_content_security(CookieContentSecurity::Private)
                    // A browser session; Redis forgets it when its lifetime is over.
                    .session_lifecycle(BrowserSession::default().state_ttl(state_ttl))
                    .build();
                // The pages: sessions, and one HTML error page (rendered inside the session
                // middleware, so error pages show who is signed in).
                let pages_scope = web::scope("")
                    .wrap(ErrorHandlers::new().default_handler(errors::render_html_errors))
                    .wrap(sessions)
                    .wrap(from_fn(errors::session_failures))
                    .route(paths::HOME, read().to(pages::home))
                    .route(paths::LOGIN, read().to(auth::login))
                    .route(paths::CALLBACK, read().to(auth::callback))
                    .route(paths::LOGOUT, web::post().to(auth::logout))
                    .route(paths::CUSTOMERS, read().to(pages::customers))
                    .route(paths::CUSTOMER, read().to(pages::customer))
                    .route(paths::EMPLOYEES, read().to(pages::employees))
                    .route(paths::SALARY, read().to(pages::salary))
                    .route(paths::ME, read().to(pages::me))
                    .route(paths::AUDIT, read().to(pages::audit))
                    .route(paths::DEMO, read().to(pages::demo_guide))
                    .default_service(web::to(pages::not_found));
                App::new()
                    .app_data(state.clone())
                    // For `StepUp<P>`: the named requirements, and how pages step up.
                    .app_data(requirements.clone())
                    .app_data(pages.clone())
                    .app_data(web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()))
                    .app_data(web::QueryConfig::default().error_handler(|e, _| {
                        AppError::BadRequest(format!("The address is malformed: {e}.")).into()
                    }))
                    .app_data(web::FormConfig::default().limit(16 * 1024).error_handler(|_, _| {
                        AppError::BadRequest("The form could not be read.".into()).into()
                    }))
                    .app_data(web::Data::new(headers.clone()))
                    .wrap(headers.middleware())
                    .wrap(from_fn(crate::web::request_log))
                    // Outside the session middleware: probes, stylesheets and the API never read
                    // or write a session (nor wait for its store).
                    .service(
                        web::resource(paths::HEALTHZ)
                            .route(read().to(health::healthz))
                            .default_service(web::to(api::method_not_allowed)),
                    )
                    .service(
                        web::resource(paths::READYZ)
                            .route(read().to(health::readyz))
                            .default_service(web::to(api::method_not_allowed)),
                    )
                    .service(web::resource(paths::STATIC).route(read().to(crate::web::static_asset)))
                    .service(web::resource(paths::FAVICON).route(read().to(crate::web::favicon)))
                    .service(web::resource(paths::TUTORIAL).route(read().to(pages::tutorial)))
                    // JSON, and no session: the codes are the same for everybody.
                    .service(
                        web::resource(paths::DEMO_CODES)
                            .route(read().to(pages::demo_codes))
                            .default_service(web::to(api::method_not_allowed)),
                    )
                    // Server to server: no session, no CSRF token (the signed logout token is
                    // the authentication); JSON answers.
                    .service(
                        web::resource(paths::BACKCHANNEL_LOGOUT)
                            .app_data(web::PayloadConfig::new(backchannel::MAX_BODY_BYTES))
                            .route(web::post().to(backchannel::receive))
                            .default_service(web::to(backchannel::method_not_allowed)),
                    )
                    // The API: bearer tokens, its own StepUpApp, JSON for every answer under /api.
                    .service(
                        web::resource(paths::API_SALARY)
                            .app_data(bearer.clone())
                            .app_data(
                                web::PathConfig::default()
                                    .error_handler(|_, _| errors::ApiError::NotFound.into()),
                            )
                            .route(read().to(api::salary))
                            .default_service(web::to(api::method_not_allowed)),
                    )
                    .service(web::scope(paths::API).default_service(web::to(api::unknown_path)))
                    .service(pages_scope)
            })
            .listen(listener)?
            .run();
        Ok(server)
    }
}

/// A route for `GET` and `HEAD` alike: RFC 9110 §9.3.2, a `HEAD` answers as the `GET` would,
/// without the body (actix-web leaves the body out).
fn read() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The session lifetimes from the settings, with a warning beyond NIST SP 800-63B-4's limits
/// for AAL2 (24 h overall, 1 h idle), which the salary pages' multi-factor sign-ins reach.
fn session_policy(config: &IntranetConfig) -> anyhow::Result<SessionPolicy> {
    let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let policy = SessionPolicy {
        lifetime: secs(config.session_lifetime),
        idle: secs(config.session_idle_timeout),
    };
    anyhow::ensure!(
        policy.idle <= policy.lifetime,
        "SESSION_IDLE_TIMEOUT_SECS ({}) is longer than SESSION_LIFETIME_SECS ({})",
        policy.idle,
        policy.lifetime
    );
    if policy.lifetime > 24 * 3600 || policy.idle > 3600 {
        tracing::warn!(
            lifetime = policy.lifetime,
            idle = policy.idle,
            "sessions outlast NIST SP 800-63B-4's limits for AAL2 (24 h overall, 1 h idle)"
        );
    }
    Ok(policy)
}

/// The cookie key from `SESSION_SECRET` (hex or base64, at least 64 bytes), or a random one
/// with a warning: sessions then do not survive a restart or span several processes.
fn session_key(secret: Option<&SecretString>) -> anyhow::Result<Key> {
    let Some(secret) = secret else {
        tracing::warn!(
            "SESSION_SECRET is not set: using a random key, so sessions end when the process does"
        );
        return Ok(Key::generate());
    };
    let text = secret.expose_secret().trim();
    let bytes = hex::decode(text)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .or_else(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok())
        .context("SESSION_SECRET must be hex or base64")?;
    // Key::from panics under 64 bytes; try_from reports it.
    Key::try_from(bytes.as_slice())
        .map_err(|_| anyhow::anyhow!("SESSION_SECRET must decode to at least 64 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_secret_needs_64_bytes_of_hex_or_base64() {
        assert!(session_key(Some(&SecretString::from("ab".repeat(64)))).is_ok());
        assert!(session_key(Some(&SecretString::from("ab".repeat(63)))).is_err());
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        assert!(session_key(Some(&SecretString::from(b64))).is_ok());
        assert!(session_key(Some(&SecretString::from("not a secret!"))).is_err());
        assert!(session_key(None).is_ok());
    }
}
