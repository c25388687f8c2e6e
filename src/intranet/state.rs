//! The intranet's application state, its one clock and its one clock-skew allowance, and
//! the audit-trail entry point every handler shares.
//!
//! Everything that needs the time asks [`AppState::now`] (the one [`Clock`], which tests shift); everything that tolerates a difference
//! between our clock and the provider's uses [`CLOCK_SKEW`]: the step-up requirements'
//! `auth_time` checks, the ID token's `iat` (OIDC Core §3.1.3.7 rule 10) and the access
//! token's `exp` (RFC 9068 §4).

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use actix_web_stepup::Requirements;
use futures_util::future::{Ready, ready};

use std::sync::Arc;

use super::data::{self, AuditEvent};
use super::logins::{Logins, SessionPolicy};
use super::logout_token::SeenTokens;
use super::oidc::Oidc;
use super::redis_store::RedisStore;
use crate::clock::Clock;
use crate::web::RequestId;

/// How far the provider's clock may differ from ours.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);

/// What every handler can reach (as `web::Data<AppState>`).
pub struct AppState {
    pub oidc: Oidc,
    pub db: data::Database,
    /// Every named step-up requirement (also registered on its own for `StepUp<P>`).
    pub requirements: web::Data<Requirements>,
    /// The `aud` access tokens for `/api/...` must carry.
    pub api_audience: String,
    /// The claim that carries roles.
    pub roles_claim: String,
    /// Show a "you will be asked for your code" page instead of redirecting at once.
    pub interstitial: bool,
    /// The provider's name as pages show it (`OIDC_PROVIDER_NAME`).
    pub provider_name: String,
    /// How long sessions last.
    pub sessions: SessionPolicy,
    /// Ended logins (checked on every request, in memory) and the record of all logins.
    pub logins: Arc<Logins>,
    /// Where sessions are kept.
    pub store: StoreKind,
    /// The Redis store, if sessions are kept there (for `/readyz`).
    pub redis: Option<RedisStore>,
    /// The `jti`s of logout tokens already used.
    pub seen_logout_tokens: SeenTokens,
    /// The intranet's one clock.
    pub clock: Clock,
    /// The embedded provider's users for the demo guide (`fabrikam demo` only; else empty).
    pub demo_users: Vec<crate::config::DemoUser>,
}

/// Where sessions are kept, as far as pages and probes care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// An encrypted cookie: at most about 4 KB.
    Cookie,
    /// Redis (`REDIS_URL`): the cookie holds only the session's id.
    Redis,
}

impl StoreKind {
    /// The most a session may take in its cookie, if the store puts it there.
    pub fn cookie_budget(self) -> Option<usize> {
        match self {
            StoreKind::Cookie => Some(super::logins::MAX_COOKIE_BYTES),
            StoreKind::Redis => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Cookie => "cookie",
            StoreKind::Redis => "redis",
        }
    }
}

impl AppState {
    /// The current time in Unix seconds, on the intranet's one clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Writes an audit row. Callers decide whether a failure stops the request: it must
    /// for salary views; elsewhere it is logged.
    pub async fn audit(
        &self,
        meta: &RequestMeta,
        subject: Option<&str>,
        event: AuditEvent,
        detail: impl Into<String>,
    ) -> Result<(), sqlx::Error> {
        let entry = data::AuditEntry {
            at: self.now(),
            subject: subject.map(str::to_owned),
            event,
            request_id: meta.request_id.clone(),
            client_addr: meta.client_addr.clone(),
            detail: detail.into(),
        };
        self.db.record(&entry).await.inspect_err(|e| {
            tracing::error!(error = %e, event = event.as_str(), "cannot write the audit trail");
        })
    }

    /// The roles claim as `/me` names it: the common case plainly, a custom claim generically.
    pub fn roles_claim_name(&self) -> &'static str {
        if self.roles_claim == "roles" {
            "roles"
        } else {
            "roles (custom claim)"
        }
    }

    /// The state registered with the app, from a request.
    pub fn of(req: &HttpRequest) -> Option<web::Data<AppState>> {
        req.app_data::<web::Data<AppState>>().cloned()
    }
}

/// Records that `subject` was refused this request's page for lacking `missing_role` (and
/// was not sent to step up: no sign-in gives a role).
pub async fn audit_forbidden(req: &HttpRequest, subject: &str, missing_role: &str) {
    if let Some(state) = AppState::of(req) {
        let detail = format!("{} needs role {missing_role}", req.path());
        let meta = RequestMeta::of(req);
        let _ = state
            .audit(&meta, Some(subject), AuditEvent::Forbidden, detail)
            .await;
    }
}

/// What the audit trail records about a request: its id and the client's address (the TCP
/// peer: forwarding headers are not trusted).
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}

impl RequestMeta {
    pub fn of(req: &HttpRequest) -> Self {
        Self {
            request_id: req.extensions().get::<RequestId>().map(|id| id.to_string()),
            client_addr: req.peer_addr().map(|a| a.ip().to_string()),
        }
    }
}

impl FromRequest for RequestMeta {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}
