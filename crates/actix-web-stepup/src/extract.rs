//! The [`StepUp<P>`] extractor and the [`StepUpApp`] trait through which it reads the
//! current login, starts a step-up and refuses, so the crate needs no template engine,
//! session store or OpenID Connect client of its own.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::error::{ErrorInternalServerError, InternalError};
use actix_web::http::header;
use actix_web::{Error, FromRequest, HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::auth_state::AuthState;
use crate::decision::{Decision, Shortfall, evaluate};
use crate::requirement::{Protected, Requirement, Requirements, StepUpRequest};

/// A boxed future that need not be `Send` (actix-web runs each request on one thread).
///
/// ```
/// use actix_web_stepup::BoxFuture;
///
/// let answer: BoxFuture<'static, u8> = Box::pin(async { 42 });
/// assert_eq!(actix_web::rt::System::new().block_on(answer), 42);
/// ```
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A step-up the app must start: the login, the requirement it falls short of, what to ask
/// the provider for, and why. [`StepUp<P>`] hands it to [`StepUpApp::start_step_up`].
///
/// ```
/// use actix_web_stepup::StepUpNeeded;
///
/// /// What an app would put in its authorization request.
/// fn authorize_params(needed: &StepUpNeeded<'_>) -> Vec<(&'static str, String)> {
///     let mut params = vec![("acr_values", needed.request.acr_values.join(" "))];
///     if let Some(max_age) = needed.request.max_age {
///         params.push(("max_age", max_age.to_string()));
///     }
///     params
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct StepUpNeeded<'a> {
    /// The current login.
    pub user: &'a AuthState,
    /// The requirement of the route.
    pub requirement: &'a Requirement,
    /// The authorization request's step-up parameters.
    pub request: StepUpRequest,
    /// What is wrong with the login.
    pub shortfall: Shortfall,
}

impl<'a> StepUpNeeded<'a> {
    /// The step-up [`StepUp<P>`] would hand over for `user` falling short of `requirement`:
    /// its `request` is [`Requirement::step_up_request`]. For unit tests of an app's
    /// [`StepUpApp::start_step_up`] (the fields stay public, to adjust).
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_web_stepup::{AuthState, Requirement, Shortfall, StepUpNeeded};
    ///
    /// let salary = Requirement::builder("salary").accept_amr("mfa").max_age(Duration::from_secs(600)).build()?;
    /// let alice = AuthState::new("alice", 1_800_000_000);
    /// let needed = StepUpNeeded::new(&alice, &salary, Shortfall::WeakAuthentication);
    /// assert_eq!(needed.request.max_age, Some(600));
    /// assert_eq!(needed.requirement.name(), "salary");
    /// # Ok::<(), actix_web_stepup::RequirementError>(())
    /// ```
    pub fn new(user: &'a AuthState, requirement: &'a Requirement, shortfall: Shortfall) -> Self {
        Self {
            user,
            requirement,
            request: requirement.step_up_request(),
            shortfall,
        }
    }
}

/// Why [`StepUp<P>`] refuses a request without starting a step-up, handed to
/// [`StepUpApp::refuse`].
///
/// ```
/// use actix_web::error::{ErrorForbidden, ErrorInternalServerError, ErrorUnauthorized};
/// use actix_web_stepup::Refusal;
///
/// /// Plain-text refusals.
/// fn as_error(refusal: Refusal<'_>) -> actix_web::Error {
///     match refusal {
///         Refusal::LoginRequired { .. } => ErrorUnauthorized("sign in first"),
///         Refusal::Forbidden { missing_role, .. } => ErrorForbidden(format!("role {missing_role} needed")),
///         Refusal::StepUpFailed { request, .. } => ErrorForbidden(format!("we asked for {request}")),
///         other => ErrorInternalServerError(format!("{other:?}")),
///     }
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Refusal<'a> {
    /// No login at all: sign in first (a redirect to the login for pages, a bare `401` with
    /// `WWW-Authenticate: Bearer` for APIs, RFC 6750 §3.1).
    LoginRequired {
        /// The requirement of the route.
        requirement: &'a Requirement,
    },
    /// A role is missing; no step-up would help.
    Forbidden {
        /// The current login.
        user: &'a AuthState,
        /// The requirement of the route.
        requirement: &'a Requirement,
        /// The first missing role.
        missing_role: String,
    },
    /// The login answered a step-up for this requirement and fell short on arrival: say so,
    /// and offer a deliberate retry instead of redirecting again.
    StepUpFailed {
        /// The current login (the provider's answer).
        user: &'a AuthState,
        /// The requirement of the route.
        requirement: &'a Requirement,
        /// What the step-up asked for.
        request: StepUpRequest,
        /// What is wrong with the answer.
        shortfall: Shortfall,
    },
    /// The route names a requirement that is not registered: a bug in the app.
    UnknownRequirement {
        /// The name [`Protected::NAME`] gave.
        name: &'static str,
    },
}

/// What the app provides to [`StepUp<P>`]: the current login, the clock, how a step-up
/// starts and how refusals look. Register one in app data with
/// [`into_app_data`](StepUpApp::into_app_data) (an actix `Scope` may register its own, as
/// an `/api` scope reading bearer tokens does next to pages reading a session).
///
/// The provided methods suit a bearer-token API: a step-up is answered with RFC 9470's
/// `401` challenge and refusals are JSON errors. A browser app overrides
/// [`start_step_up`](StepUpApp::start_step_up) to redirect to its provider and
/// [`refuse`](StepUpApp::refuse) to render its pages.
///
/// ```
/// use actix_web::{Error, HttpRequest, HttpResponse};
/// use actix_web_stepup::{AuthState, BoxFuture, StepUpApp, StepUpNeeded};
///
/// /// A browser app: the login lives in the session, a step-up redirects to the provider.
/// struct Site;
///
/// impl StepUpApp for Site {
///     fn current_auth<'a>(&'a self, req: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
///         // e.g. `TypedSession::from_request(req).auth()` in a real app.
///         Box::pin(async { Ok(None) })
///     }
///
///     fn start_step_up<'a>(&'a self, req: &'a HttpRequest, needed: StepUpNeeded<'a>)
///         -> BoxFuture<'a, Result<HttpResponse, Error>> {
///         Box::pin(async move {
///             // Build an authorization request with needed.request.acr_values and max_age,
///             // remember needed.requirement.name() with its state and nonce, then:
///             Ok(HttpResponse::Found()
///                 .insert_header(("Location", "https://id.example/authorize?..."))
///                 .finish())
///         })
///     }
/// }
///
/// let data = Site.into_app_data(); // App::new().app_data(data)
/// ```
pub trait StepUpApp: Send + Sync + 'static {
    /// The login of this request (from the session, or a bearer token the app validates),
    /// or `None` when there is none. An `Err` (say, an invalid token) is returned as is.
    ///
    /// ```
    /// use actix_web::{Error, HttpRequest};
    /// use actix_web_stepup::{AuthState, BoxFuture, StepUpApp};
    ///
    /// /// Everyone is alice with a password (a test double).
    /// struct Fixed;
    /// impl StepUpApp for Fixed {
    ///     fn current_auth<'a>(&'a self, _: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
    ///         Box::pin(async { Ok(Some(AuthState::new("alice", 0))) })
    ///     }
    /// }
    /// let req = actix_web::test::TestRequest::default().to_http_request();
    /// let login = actix_web::rt::System::new().block_on(Fixed.current_auth(&req)).unwrap();
    /// assert_eq!(login.unwrap().subject, "alice");
    /// ```
    fn current_auth<'a>(&'a self, req: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>>;

    /// The app's clock in Unix seconds, passed to [`evaluate`] as `now`. Override it to
    /// share the app's one clock (and to test with a fixed time).
    ///
    /// ```
    /// use actix_web::{Error, HttpRequest};
    /// use actix_web_stepup::{AuthState, BoxFuture, StepUpApp};
    ///
    /// struct Api;
    /// impl StepUpApp for Api {
    ///     fn current_auth<'a>(&'a self, _: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
    ///         Box::pin(async { Ok(None) })
    ///     }
    /// }
    /// assert!(Api.now() > 1_700_000_000, "the system clock by default");
    /// ```
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// Starts a step-up and returns the response that does it (a redirect to the provider's
    /// authorization endpoint, or a page explaining it). The app builds the authorization
    /// request (`acr_values`, `max_age`, a fresh `state`, `nonce` and PKCE) and must remember
    /// `needed.requirement.name()` with it, so that the login that comes back can be marked
    /// with [`AuthState::answering_step_up`].
    ///
    /// By default: RFC 9470's `401` with `WWW-Authenticate: Bearer
    /// error="insufficient_user_authentication", …` and a JSON body, for APIs
    /// ([`challenge_response`]); the example of [`StepUpApp`] overrides it with a redirect.
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_web::{test, web, App, Error, HttpRequest};
    /// use actix_web_stepup::*;
    ///
    /// struct Report;
    /// impl Protected for Report { const NAME: &'static str = "report"; }
    /// struct PasswordOnly;
    /// impl StepUpApp for PasswordOnly {
    ///     fn current_auth<'a>(&'a self, _: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
    ///         Box::pin(async { Ok(Some(AuthState::new("alice", 0))) })
    ///     }
    /// }
    /// actix_web::rt::System::new().block_on(async {
    ///     let r = Requirement::builder("report").accept_amr("mfa").max_age(Duration::from_secs(60)).build().unwrap();
    ///     let app = test::init_service(
    ///         App::new()
    ///             .app_data(web::Data::new(Requirements::new().with(r).unwrap()))
    ///             .app_data(PasswordOnly.into_app_data())
    ///             .route("/", web::get().to(|_: StepUp<Report>| async { "report" })),
    ///     ).await;
    ///     let res = test::call_service(&app, test::TestRequest::get().to_request()).await;
    ///     assert_eq!(res.status(), 401);
    ///     let challenge = res.headers().get("www-authenticate").unwrap().to_str().unwrap();
    ///     assert!(challenge.ends_with("max_age=60"));
    /// });
    /// ```
    fn start_step_up<'a>(
        &'a self,
        req: &'a HttpRequest,
        needed: StepUpNeeded<'a>,
    ) -> BoxFuture<'a, Result<HttpResponse, Error>> {
        let _ = req;
        Box::pin(async move { Ok(challenge_response(&needed.request, needed.shortfall)) })
    }

    /// The error response for a refusal. By default JSON errors for APIs:
    /// `401` + `WWW-Authenticate: Bearer` without a login, `403` + `error="insufficient_scope"`
    /// for a missing role, `403` for a failed step-up, `500` for an unknown requirement.
    ///
    /// ```
    /// use actix_web::error::ErrorForbidden;
    /// use actix_web::{Error, HttpRequest};
    /// use actix_web_stepup::{AuthState, BoxFuture, Refusal, StepUpApp};
    ///
    /// /// Refusals as the app's own errors (a page renderer would take it from there).
    /// struct Site;
    /// impl StepUpApp for Site {
    ///     fn current_auth<'a>(&'a self, _: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
    ///         Box::pin(async { Ok(None) })
    ///     }
    ///     fn refuse<'a>(&'a self, _: &'a HttpRequest, refusal: Refusal<'a>) -> BoxFuture<'a, Error> {
    ///         Box::pin(async move { ErrorForbidden(format!("refused: {refusal:?}")) })
    ///     }
    /// }
    /// ```
    fn refuse<'a>(&'a self, req: &'a HttpRequest, refusal: Refusal<'a>) -> BoxFuture<'a, Error> {
        let _ = req;
        Box::pin(async move { default_refusal(&refusal) })
    }

    /// This app as the app data [`StepUp<P>`] looks for.
    ///
    /// ```
    /// use actix_web::{App, Error, HttpRequest};
    /// use actix_web_stepup::{AuthState, BoxFuture, StepUpApp};
    ///
    /// struct Anonymous;
    /// impl StepUpApp for Anonymous {
    ///     fn current_auth<'a>(&'a self, _: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
    ///         Box::pin(async { Ok(None) })
    ///     }
    /// }
    /// let app = App::new().app_data(Anonymous.into_app_data());
    /// ```
    fn into_app_data(self) -> web::Data<dyn StepUpApp>
    where
        Self: Sized,
    {
        web::Data::from(Arc::new(self) as Arc<dyn StepUpApp>)
    }
}

/// RFC 9470 §3's `401` for a step-up, with a JSON body (`error`, `error_description`). The
/// description follows the shortfall: a stronger authentication for a weak one, a more recent
/// one for a stale one, a fresh one with a valid `auth_time` when it was missing or in the
/// future.
///
/// ```
/// use actix_web::http::{StatusCode, header};
/// use actix_web_stepup::{challenge_response, Shortfall, StepUpRequest};
///
/// let request = StepUpRequest { acr_values: vec!["urn:x:mfa".into()], max_age: Some(60), auth_context: None };
/// let res = challenge_response(&request, Shortfall::Stale);
/// assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(
///     res.headers().get(header::WWW_AUTHENTICATE).unwrap(),
///     "Bearer error=\"insufficient_user_authentication\", \
///      error_description=\"a more recent authentication is required\", \
///      acr_values=\"urn:x:mfa\", max_age=60"
/// );
/// ```
pub fn challenge_response(request: &StepUpRequest, shortfall: Shortfall) -> HttpResponse {
    let description = match shortfall {
        Shortfall::WeakAuthentication => "a stronger authentication is required",
        Shortfall::Stale => "a more recent authentication is required",
        // Not a stronger login: a new one whose time the token states (and believably so).
        Shortfall::MissingAuthTime | Shortfall::FutureAuthTime => {
            "a fresh authentication with a valid auth_time is required"
        }
    };
    HttpResponse::Unauthorized()
        .insert_header((
            header::WWW_AUTHENTICATE,
            request.challenge(Some(description)).to_string(),
        ))
        .json(json!({"error": crate::challenge::INSUFFICIENT_USER_AUTHENTICATION, "error_description": description}))
}

fn default_refusal(refusal: &Refusal<'_>) -> Error {
    let (mut res, code, description) = match refusal {
        Refusal::LoginRequired { .. } => {
            let mut res = HttpResponse::Unauthorized();
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            (res, "unauthorized", "authentication is required".to_owned())
        }
        Refusal::Forbidden { missing_role, .. } => {
            let mut res = HttpResponse::Forbidden();
            res.insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="insufficient_scope""#));
            (
                res,
                "insufficient_scope",
                format!("the role {missing_role} is required"),
            )
        }
        Refusal::StepUpFailed { request, .. } => (
            HttpResponse::Forbidden(),
            "step_up_failed",
            format!("the provider did not complete the step-up that was asked for ({request})"),
        ),
        Refusal::UnknownRequirement { name } => (
            HttpResponse::InternalServerError(),
            "server_error",
            format!("no requirement named {name:?} is registered"),
        ),
    };
    let response = res.json(json!({"error": code, "error_description": description}));
    InternalError::from_response(description, response).into()
}

/// A login that satisfies the requirement `P` names, right now. Take it as a handler
/// argument and the handler runs only when the check passed:
///
/// - no login → [`StepUpApp::refuse`] with [`Refusal::LoginRequired`];
/// - a role missing → [`Refusal::Forbidden`], at once: stepping up would not help;
/// - too weak or too old → [`StepUpApp::start_step_up`] (a redirect to the provider with
///   `acr_values` and `max_age`, or an RFC 9470 challenge);
/// - the login *is* the provider's answer to a step-up for `P` and fell short on arrival →
///   [`Refusal::StepUpFailed`], never another redirect (no loop).
///
/// It needs two app data: the [`Requirements`] (as `web::Data<Requirements>`) and a
/// [`StepUpApp`] ([`StepUpApp::into_app_data`]). A requirement name that is not registered
/// is refused with [`Refusal::UnknownRequirement`] (a `500` by default).
///
/// ```
/// use std::time::Duration;
/// use actix_web::{test, web, App, Error, HttpRequest};
/// use actix_web_stepup::*;
///
/// struct Payroll;
/// impl Protected for Payroll { const NAME: &'static str = "payroll"; }
///
/// /// Reads a login from a test header (a real app reads its session or a validated token).
/// struct FromHeader;
/// impl StepUpApp for FromHeader {
///     fn current_auth<'a>(&'a self, req: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
///         let amr = req.headers().get("x-amr").and_then(|v| v.to_str().ok()).map(str::to_owned);
///         Box::pin(async move {
///             Ok(amr.map(|amr| {
///                 let mut login = AuthState::new("carol", 1_800_000_000);
///                 login.amr = amr.split(' ').map(str::to_owned).collect();
///                 login.roles = vec!["payroll".into()];
///                 login.auth_time = Some(1_800_000_000);
///                 login
///             }))
///         })
///     }
///     fn now(&self) -> i64 { 1_800_000_010 }
/// }
///
/// async fn export(access: StepUp<Payroll>) -> String {
///     format!("export for {}", access.user().subject)
/// }
///
/// actix_web::rt::System::new().block_on(async {
///     let requirements = Requirements::new().with(
///         Requirement::builder("payroll").accept_amr("mfa").role("payroll")
///             .max_age(Duration::from_secs(300)).build().unwrap(),
///     ).unwrap();
///     let app = test::init_service(
///         App::new()
///             .app_data(web::Data::new(requirements))
///             .app_data(FromHeader.into_app_data())
///             .route("/export", web::get().to(export)),
///     ).await;
///
///     let weak = test::TestRequest::get().uri("/export").insert_header(("x-amr", "pwd")).to_request();
///     let res = test::call_service(&app, weak).await;
///     assert_eq!(res.status(), 401, "the default StepUpApp answers with RFC 9470's challenge");
///     let challenge = res.headers().get("www-authenticate").unwrap().to_str().unwrap();
///     assert_eq!(StepUpRequest::from_www_authenticate(challenge).unwrap().unwrap().max_age, Some(300));
///
///     let strong = test::TestRequest::get().uri("/export").insert_header(("x-amr", "pwd mfa")).to_request();
///     assert_eq!(test::call_and_read_body(&app, strong).await, "export for carol");
/// });
/// ```
#[derive(Debug)]
pub struct StepUp<P> {
    user: AuthState,
    valid_until: Option<i64>,
    requirement: PhantomData<fn() -> P>,
}

impl<P> StepUp<P> {
    /// The login that satisfied the requirement.
    ///
    /// ```
    /// use actix_web_stepup::{Protected, StepUp};
    ///
    /// struct Salary;
    /// impl Protected for Salary { const NAME: &'static str = "salary"; }
    ///
    /// async fn salary(access: StepUp<Salary>) -> String {
    ///     format!("salaries for {}", access.user().display_name())
    /// }
    /// ```
    pub fn user(&self) -> &AuthState {
        &self.user
    }

    /// Until when (Unix seconds) the requirement holds; `None` if it has no `max_age`.
    ///
    /// ```
    /// use actix_web_stepup::{Protected, StepUp};
    ///
    /// struct Salary;
    /// impl Protected for Salary { const NAME: &'static str = "salary"; }
    ///
    /// async fn salary(access: StepUp<Salary>) -> String {
    ///     match access.valid_until() {
    ///         Some(t) => format!("visible until {t}"),
    ///         None => "visible".to_owned(),
    ///     }
    /// }
    /// ```
    pub fn valid_until(&self) -> Option<i64> {
        self.valid_until
    }

    /// The login, by value.
    ///
    /// ```
    /// use actix_web_stepup::{AuthState, Protected, StepUp};
    ///
    /// struct Salary;
    /// impl Protected for Salary { const NAME: &'static str = "salary"; }
    ///
    /// async fn salary(access: StepUp<Salary>) -> String {
    ///     let login: AuthState = access.into_user();
    ///     login.subject
    /// }
    /// ```
    pub fn into_user(self) -> AuthState {
        self.user
    }
}

impl<P: Protected> FromRequest for StepUp<P> {
    type Error = Error;
    type Future = BoxFuture<'static, Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let (user, valid_until) = guard(&req, P::NAME).await?;
            Ok(StepUp {
                user,
                valid_until,
                requirement: PhantomData,
            })
        })
    }
}

/// The whole step-up path: the app's login → [`evaluate`] → the app's step-up or refusal.
async fn guard(req: &HttpRequest, name: &'static str) -> Result<(AuthState, Option<i64>), Error> {
    let app = req
        .app_data::<web::Data<dyn StepUpApp>>()
        .cloned()
        .ok_or_else(|| ErrorInternalServerError("actix-web-stepup: no StepUpApp in app data"))?;
    let requirements = req
        .app_data::<web::Data<Requirements>>()
        .cloned()
        .ok_or_else(|| ErrorInternalServerError("actix-web-stepup: no Requirements in app data"))?;
    let Some(requirement) = requirements.get(name) else {
        return Err(app.refuse(req, Refusal::UnknownRequirement { name }).await);
    };
    let Some(user) = app.current_auth(req).await? else {
        return Err(app.refuse(req, Refusal::LoginRequired { requirement }).await);
    };
    match evaluate(&user, requirement, app.now()) {
        Decision::Allow { valid_until } => Ok((user, valid_until)),
        Decision::Forbidden { missing_role } => {
            let refusal = Refusal::Forbidden {
                user: &user,
                requirement,
                missing_role,
            };
            Err(app.refuse(req, refusal).await)
        }
        Decision::StepUpFailed { request, shortfall } => {
            let refusal = Refusal::StepUpFailed {
                user: &user,
                requirement,
                request,
                shortfall,
            };
            Err(app.refuse(req, refusal).await)
        }
        Decision::StepUp { request, shortfall } => {
            let needed = StepUpNeeded {
                user: &user,
                requirement,
                request,
                shortfall,
            };
            let response = app.start_step_up(req, needed).await?;
            Err(InternalError::from_response("step-up started", response).into())
        }
    }
}
