//! Per-route **step-up authentication** for [actix-web]: a route names a [`Requirement`]
//! (roles, and how strong and how fresh the login must be, read from OpenID Connect's `acr`,
//! `amr` and `auth_time`), and a handler that takes [`StepUp<P>`] runs only when the current
//! login meets it. A login that is too weak or too old is sent to step up (a new
//! authorization request with `acr_values` and `max_age`, or RFC 9470's `401` challenge for
//! an API); a missing role is refused at once; and a provider that answers a step-up with a
//! login that still falls short gets a refusal, never a redirect loop.
//!
//! The pieces:
//!
//! - [`Requirement`] (built with [`Requirement::builder`], optionally from a provider
//!   [`Profile`]) and the registry [`Requirements`], kept in app data;
//! - [`AuthState`], read from validated ID-token or access-token claims
//!   ([`AuthState::from_claims`]);
//! - [`evaluate`]: the pure decision, `(&AuthState, &Requirement, now) -> Decision`;
//! - [`StepUp<P>`], the extractor, and [`StepUpApp`], the trait through which the app gives
//!   it the current login and decides how a step-up starts and how refusals look (so the
//!   crate needs no template engine, session store or OIDC client);
//! - [`Challenge`] and [`StepUpRequest::challenge`] /
//!   [`StepUpRequest::from_www_authenticate`]: RFC 9470 both ways.
//!
//! ```
//! use std::time::Duration;
//! use actix_web::{dev::ServiceResponse, test, web, App, Error, HttpRequest};
//! use actix_web_stepup::{AuthState, BoxFuture, Profile, Protected, Requirement, Requirements};
//! use actix_web_stepup::{StepUp, StepUpApp, StepUpRequest};
//!
//! /// The salary pages' requirement, by name.
//! struct SalaryAccess;
//! impl Protected for SalaryAccess {
//!     const NAME: &'static str = "salary";
//! }
//!
//! /// The app's side: where the login is (a real app reads its session or validates a bearer
//! /// token; this one is handed a login) and how a step-up starts (the default: RFC 9470).
//! struct Api(AuthState);
//! impl StepUpApp for Api {
//!     fn current_auth<'a>(&'a self, _req: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
//!         Box::pin(async { Ok(Some(self.0.clone())) })
//!     }
//!     fn now(&self) -> i64 {
//!         1_800_000_060
//!     }
//! }
//!
//! async fn salary(access: StepUp<SalaryAccess>) -> String {
//!     format!("{} may see salaries until {:?}", access.user().display_name(), access.valid_until())
//! }
//!
//! /// `GET /salary` as `login`, in an app with the requirements and the `StepUpApp` as app data.
//! async fn visit(requirements: &web::Data<Requirements>, login: AuthState) -> ServiceResponse {
//!     let app = App::new()
//!         .app_data(requirements.clone())
//!         .app_data(Api(login).into_app_data())
//!         .route("/salary", web::get().to(salary));
//!     let app = test::init_service(app).await;
//!     test::call_service(&app, test::TestRequest::get().uri("/salary").to_request()).await
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! let requirements = web::Data::new(Requirements::new().with(
//!     Requirement::builder("salary")
//!         .profile(Profile::Auth0)
//!         .role("hr")
//!         .max_age(Duration::from_secs(600))
//!         .build()?,
//! )?);
//! let mut alice = AuthState::new("alice", 1_800_000_000);
//! alice.roles = vec!["hr".into()];
//! alice.amr = vec!["pwd".into()];
//! alice.auth_time = Some(1_800_000_000);
//!
//! // A password-only login: RFC 9470's challenge asks for multi-factor, at most 600 s old.
//! let res = visit(&requirements, alice.clone()).await;
//! assert_eq!(res.status(), 401);
//! let asked = StepUpRequest::from_www_authenticate_values(res.headers().get_all("www-authenticate"))?;
//! assert_eq!(asked.unwrap().max_age, Some(600));
//!
//! // The same user after a second factor: the handler runs.
//! alice.amr.push("mfa".into());
//! let res = visit(&requirements, alice).await;
//! assert_eq!(res.status(), 200);
//! assert_eq!(test::read_body(res).await, "alice may see salaries until Some(1800000630)");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Security
//!
//! What this crate checks:
//!
//! - **the login against the requirement, on every guarded request**: roles first (a missing
//!   role is never a reason to step up), then an accepted `acr`, Entra `acrs` context or
//!   `amr` value being *present* (OIDC Core §3.1.3.7 rule 12: the client checks the `acr` it
//!   got, since a provider may ignore `acr_values`, §5.5.1.1), then `auth_time` against
//!   `max_age` with the clock skew you allow (rule 13) as real elapsed time, refusing a
//!   missing `auth_time` and one more than the skew after the token arrived (a provider
//!   clock running fast can neither lengthen the window nor wait its way into it);
//! - **no redirect loop**: a login marked as the answer to a step-up for a requirement
//!   ([`AuthState::answering_step_up`]) that fell short *on arrival* is refused, not sent
//!   back to the provider;
//! - **requirement values that are safe to send**: names and `acr`/`amr`/auth-context
//!   values are plain visible ASCII, so they travel in URLs and quoted strings unchanged
//!   (roles, only ever compared, may hold spaces but no control characters);
//! - **challenge syntax**: a [`Challenge`] can only be built valid (scheme and parameter
//!   names RFC 9110 tokens, each name once, a token68 or parameters, values quoted with
//!   escapes and without control characters), so what it writes is one well-formed
//!   challenge that no name or value can extend (no header injection); the parser reads
//!   hostile input in linear time without panicking.
//!
//! What it leaves to the app:
//!
//! - **token validation**. [`AuthState`] must come from a token you validated in full: for an
//!   ID token signature and `alg`, `iss`, `aud`, `azp`, `exp`, `iat` and `nonce` (OIDC Core
//!   §3.1.3.7); for an access token its signature, `typ` `at+jwt`, `iss`, `aud` and `exp`
//!   (RFC 9068 §4). The crate never sees a token.
//! - **the authorization request and its answer**: `state`, `nonce`, PKCE (RFC 7636), the
//!   code exchange, and marking the answer with [`AuthState::answering_step_up`] only when
//!   it really answers that request (and is the same user: a step-up answered by another
//!   account must not replace the session).
//! - **sessions**: where the [`AuthState`] is kept, and keeping it **tamper-proof**: an
//!   encrypted or signed cookie (such as actix-session's cookie store with a private or
//!   signed key) or a server-side store, never a plain cookie or anything the client can
//!   edit, since it would write its own `acr`, `amr`, `auth_time`, roles and `received_at`;
//!   renewing the session id on every login and step-up (session fixation); an absolute
//!   session lifetime; logout.
//! - **CSRF** on state-changing routes, **open redirects** (a `return_to` must be a
//!   same-site relative path), security headers, and what goes in logs (never a token).
//! - **the clock**: [`StepUpApp::now`] is the time every decision is made at.
//!
//! [actix-web]: https://actix.rs

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's code, compiled with the doctests so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod auth_state;
mod challenge;
mod decision;
mod extract;
mod requirement;

pub use auth_state::{AuthState, ClaimsError, string_list};
pub use challenge::{Challenge, ChallengeError, INSUFFICIENT_USER_AUTHENTICATION};
pub use decision::{Decision, Shortfall, evaluate};
pub use extract::{BoxFuture, Refusal, StepUp, StepUpApp, StepUpNeeded, challenge_response};
pub use requirement::{
    ACR_PHR, ACR_PHRH, DEFAULT_CLOCK_SKEW, DuplicateRequirement, PAPE_MULTI_FACTOR, Profile, Protected,
    Requirement, RequirementBuilder, RequirementError, Requirements, StepUpRequest,
};
