//! `StepUp<P>` in an actix-web app: every decision becomes the right response, the app's
//! `StepUpApp` is called exactly when it should be, and a weak answer to a step-up is
//! refused instead of redirected again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{App, Error, HttpRequest, HttpResponse, test, web};
use actix_web_stepup::{
    AuthState, BoxFuture, Profile, Protected, Refusal, Requirement, Requirements, StepUp, StepUpApp,
    StepUpNeeded, StepUpRequest,
};

const NOW: i64 = 1_800_000_000;

struct Salary;
impl Protected for Salary {
    const NAME: &'static str = "salary";
}

struct Audit;
impl Protected for Audit {
    const NAME: &'static str = "audit";
}

struct Unregistered;
impl Protected for Unregistered {
    const NAME: &'static str = "nobody-registered-me";
}

/// A browser-like app: the login is whatever the test put in `login`; a step-up redirects
/// and is counted; refusals are plain pages naming their kind.
struct Site {
    login: Mutex<Option<AuthState>>,
    step_ups: AtomicUsize,
}

impl StepUpApp for Site {
    fn current_auth<'a>(&'a self, _: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
        let login = self.login.lock().unwrap().clone();
        Box::pin(async move { Ok(login) })
    }

    fn now(&self) -> i64 {
        NOW
    }

    fn start_step_up<'a>(
        &'a self,
        _: &'a HttpRequest,
        needed: StepUpNeeded<'a>,
    ) -> BoxFuture<'a, Result<HttpResponse, Error>> {
        self.step_ups.fetch_add(1, Ordering::SeqCst);
        let location = format!(
            "https://id.example/authorize?acr_values={}&max_age={}&for={}",
            needed.request.acr_values.join("+"),
            needed.request.max_age.unwrap_or_default(),
            needed.requirement.name()
        );
        Box::pin(async move {
            Ok(HttpResponse::Found()
                .insert_header((header::LOCATION, location))
                .finish())
        })
    }

    fn refuse<'a>(&'a self, _: &'a HttpRequest, refusal: Refusal<'a>) -> BoxFuture<'a, Error> {
        let (status, body) = match refusal {
            Refusal::LoginRequired { requirement } => (
                StatusCode::UNAUTHORIZED,
                format!("login for {}", requirement.name()),
            ),
            Refusal::Forbidden { missing_role, .. } => {
                (StatusCode::FORBIDDEN, format!("missing {missing_role}"))
            }
            Refusal::StepUpFailed {
                shortfall, request, ..
            } => (
                StatusCode::FORBIDDEN,
                format!("step-up failed: {shortfall}; asked {request}"),
            ),
            Refusal::UnknownRequirement { name } => {
                (StatusCode::INTERNAL_SERVER_ERROR, format!("unknown {name}"))
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "?".to_owned()),
        };
        Box::pin(async move {
            actix_web::error::InternalError::from_response(
                body.clone(),
                HttpResponse::build(status).body(body),
            )
            .into()
        })
    }
}

fn requirements() -> Requirements {
    let mfa = Requirement::builder("salary").profile(Profile::Custom).role("hr");
    Requirements::new()
        .with(mfa.clone().max_age(Duration::from_secs(600)).build().unwrap())
        .unwrap()
        .with(
            Requirement::builder("audit")
                .profile(Profile::Custom)
                .role("hr")
                .max_age(Duration::from_secs(300))
                .build()
                .unwrap(),
        )
        .unwrap()
}

fn alice(amr: &[&str], auth_time: i64) -> AuthState {
    let mut login = AuthState::new("alice", NOW);
    login.roles = vec!["hr".into()];
    login.amr = amr.iter().map(|s| s.to_string()).collect();
    login.auth_time = Some(auth_time);
    login
}

async fn salary(access: StepUp<Salary>) -> String {
    format!(
        "salary for {} until {:?}",
        access.user().subject,
        access.valid_until()
    )
}

async fn audit(access: StepUp<Audit>) -> String {
    format!("audit for {}", access.into_user().subject)
}

async fn broken(_: StepUp<Unregistered>) -> &'static str {
    "never"
}

/// Calls `path` as `login` and returns the status and the Location (or else the body).
async fn visit(login: Option<AuthState>, path: &str) -> (StatusCode, String) {
    let site = Site {
        login: Mutex::new(login),
        step_ups: AtomicUsize::new(0),
    };
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(requirements()))
            .app_data(site.into_app_data())
            .route("/salary", web::get().to(salary))
            .route("/audit", web::get().to(audit))
            .route("/broken", web::get().to(broken)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
    let status = res.status();
    let location = res
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    (status, location.unwrap_or(body))
}

#[actix_web::test]
async fn each_decision_becomes_its_response() {
    let cases: Vec<(&str, Option<AuthState>, &str, StatusCode, &str)> = vec![
        (
            "anonymous",
            None,
            "/salary",
            StatusCode::UNAUTHORIZED,
            "login for salary",
        ),
        (
            "fresh mfa",
            Some(alice(&["pwd", "mfa"], NOW - 10)),
            "/salary",
            StatusCode::OK,
            "salary for alice until Some(1800000620)",
        ),
        (
            "password only: step up with the salary's max_age",
            Some(alice(&["pwd"], NOW)),
            "/salary",
            StatusCode::FOUND,
            "https://id.example/authorize?acr_values=http://schemas.openid.net/pape/policies/2007/06/multi-factor&max_age=600&for=salary",
        ),
        (
            "mfa 400 s old: fine for salary",
            Some(alice(&["mfa"], NOW - 400)),
            "/salary",
            StatusCode::OK,
            "salary for alice until Some(1800000230)",
        ),
        (
            "mfa 400 s old: stale for the audit trail's 300 s",
            Some(alice(&["mfa"], NOW - 400)),
            "/audit",
            StatusCode::FOUND,
            "https://id.example/authorize?acr_values=http://schemas.openid.net/pape/policies/2007/06/multi-factor&max_age=300&for=audit",
        ),
        (
            "a weak answer to the salary step-up: refused, not redirected",
            Some(alice(&["pwd"], NOW).answering_step_up("salary")),
            "/salary",
            StatusCode::FORBIDDEN,
            "step-up failed: not strong enough; asked acr_values = http://schemas.openid.net/pape/policies/2007/06/multi-factor, max_age = 600 s",
        ),
        (
            "... which is no failed audit step-up",
            Some(alice(&["pwd"], NOW).answering_step_up("salary")),
            "/audit",
            StatusCode::FOUND,
            "https://id.example/authorize?acr_values=http://schemas.openid.net/pape/policies/2007/06/multi-factor&max_age=300&for=audit",
        ),
        (
            "no role: forbidden at once",
            Some({
                let mut bob = alice(&["pwd", "mfa"], NOW);
                bob.roles = vec!["sales".into()];
                bob
            }),
            "/salary",
            StatusCode::FORBIDDEN,
            "missing hr",
        ),
        (
            "an unregistered requirement is the app's bug, reported",
            Some(alice(&["mfa"], NOW)),
            "/broken",
            StatusCode::INTERNAL_SERVER_ERROR,
            "unknown nobody-registered-me",
        ),
    ];
    for (what, login, path, status, want) in cases {
        let (got_status, got) = visit(login, path).await;
        assert_eq!((got_status, got.as_str()), (status, want), "{what}");
    }
}

#[actix_web::test]
async fn a_forbidden_user_and_a_failed_step_up_start_no_step_up() {
    let site = std::sync::Arc::new(Site {
        login: Mutex::new(None),
        step_ups: AtomicUsize::new(0),
    });
    let data = web::Data::from(site.clone() as std::sync::Arc<dyn StepUpApp>);
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(requirements()))
            .app_data(data)
            .route("/salary", web::get().to(salary)),
    )
    .await;
    let mut bob = alice(&["pwd"], NOW);
    bob.roles = vec!["sales".into()];
    for login in [bob, alice(&["pwd"], NOW).answering_step_up("salary")] {
        *site.login.lock().unwrap() = Some(login);
        let res = test::call_service(&app, test::TestRequest::get().uri("/salary").to_request()).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(site.step_ups.load(Ordering::SeqCst), 0, "no step-up was started");
    *site.login.lock().unwrap() = Some(alice(&["pwd"], NOW));
    let res = test::call_service(&app, test::TestRequest::get().uri("/salary").to_request()).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(
        site.step_ups.load(Ordering::SeqCst),
        1,
        "one step-up for a weak login"
    );
}

/// An API: the default `StepUpApp` methods answer with RFC 9470 and JSON errors.
struct Api(Option<AuthState>);

impl StepUpApp for Api {
    fn current_auth<'a>(&'a self, _: &'a HttpRequest) -> BoxFuture<'a, Result<Option<AuthState>, Error>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }

    fn now(&self) -> i64 {
        NOW
    }
}

async fn call_api(login: Option<AuthState>) -> (StatusCode, Option<String>, serde_json::Value) {
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(requirements()))
            .app_data(Api(login).into_app_data())
            .route("/salary", web::get().to(salary)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/salary").to_request()).await;
    let status = res.status();
    let challenge = res
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = test::read_body(res).await;
    (
        status,
        challenge,
        serde_json::from_slice(&body).unwrap_or_default(),
    )
}

#[actix_web::test]
async fn the_default_app_answers_apis_with_rfc_9470_and_rfc_6750() {
    let (status, challenge, body) = call_api(Some(alice(&["pwd"], NOW))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let asked = StepUpRequest::from_www_authenticate(&challenge.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(asked.max_age, Some(600));
    assert_eq!(asked.acr_values, [actix_web_stepup::PAPE_MULTI_FACTOR]);
    assert_eq!(body["error"], "insufficient_user_authentication");

    let (status, challenge, _) = call_api(Some(alice(&["mfa"], NOW - 3600))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge
            .unwrap()
            .contains("a more recent authentication is required")
    );

    let (status, challenge, body) = call_api(None).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );
    assert_eq!(body["error"], "unauthorized");

    let mut bob = alice(&["mfa"], NOW);
    bob.roles.clear();
    let (status, challenge, body) = call_api(Some(bob)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(challenge.as_deref(), Some(r#"Bearer error="insufficient_scope""#));
    assert_eq!(body["error_description"], "the role hr is required");

    let (status, _, body) = call_api(Some(alice(&["mfa"], NOW))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn missing_app_data_is_a_server_error_not_a_pass() {
    let app = test::init_service(App::new().route("/salary", web::get().to(salary))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/salary").to_request()).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let app = test::init_service(
        App::new()
            .app_data(Api(Some(alice(&["mfa"], NOW))).into_app_data())
            .route("/salary", web::get().to(salary)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/salary").to_request()).await;
    assert_eq!(
        res.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "no Requirements registered"
    );
}

#[actix_web::test]
async fn a_scope_can_bring_its_own_step_up_app() {
    let site = web::Data::from(std::sync::Arc::new(Site {
        login: Mutex::new(Some(alice(&["pwd"], NOW))),
        step_ups: AtomicUsize::new(0),
    }) as std::sync::Arc<dyn StepUpApp>);
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(requirements()))
            .app_data(site)
            .route("/salary", web::get().to(salary))
            .service(
                web::scope("/api")
                    .app_data(Api(Some(alice(&["pwd"], NOW))).into_app_data())
                    .route("/salary", web::get().to(salary)),
            ),
    )
    .await;
    let page = test::call_service(&app, test::TestRequest::get().uri("/salary").to_request()).await;
    assert_eq!(page.status(), StatusCode::FOUND, "pages redirect");
    let api = test::call_service(&app, test::TestRequest::get().uri("/api/salary").to_request()).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED, "the API scope challenges");
}

#[actix_web::test]
async fn each_shortfall_is_described_for_what_it_needs() {
    use actix_web_stepup::{Challenge, Shortfall, challenge_response};

    let cases = [
        (
            Shortfall::WeakAuthentication,
            "a stronger authentication is required",
        ),
        (Shortfall::Stale, "a more recent authentication is required"),
        (
            Shortfall::MissingAuthTime,
            "a fresh authentication with a valid auth_time is required",
        ),
        (
            Shortfall::FutureAuthTime,
            "a fresh authentication with a valid auth_time is required",
        ),
    ];
    for (shortfall, want) in cases {
        let res = challenge_response(&StepUpRequest::default(), shortfall);
        let header = res
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .unwrap()
            .to_str()
            .unwrap();
        let challenge = &Challenge::parse_all(header).unwrap()[0];
        assert_eq!(challenge.param("error_description"), Some(want), "{shortfall:?}");
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error_description"], want, "{shortfall:?}");
    }
    // Through the extractor: a strong login without auth_time is asked for a fresh one.
    let mut login = alice(&["mfa"], NOW);
    login.auth_time = None;
    let (status, challenge, _) = call_api(Some(login)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge
            .unwrap()
            .contains("a fresh authentication with a valid auth_time"),
        "not a stronger one"
    );
}
