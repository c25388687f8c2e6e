//! Pages, headers and errors: what anyone sees, what needs a login, caching, the error pages,
//! and garbage input.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::TestApp;

#[tokio::test]
async fn anonymous_visitors_see_the_home_page_with_security_headers() {
    let app = TestApp::spawn().await;
    let home = app.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Sign in"));
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(home.headers["x-frame-options"], "DENY");
    assert_eq!(home.headers["x-content-type-options"], "nosniff");
    assert!(home.headers.contains_key("referrer-policy"));
    let css = app.get("/static/fabrikam.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn anonymous_requests_to_login_pages_are_sent_to_login() {
    let app = TestApp::spawn().await;
    for path in [
        "/customers",
        "/customers/1",
        "/employees",
        "/employees/1/salary",
        "/me",
        "/audit",
    ] {
        let visit = app.get(path).await;
        assert_eq!(visit.status, StatusCode::FOUND, "{path}");
        let location = visit.location().unwrap();
        assert_eq!(location.path(), "/login", "{path}");
        assert_eq!(visit.location_param("return_to").as_deref(), Some(path));
    }
}

#[tokio::test]
async fn health_is_json_and_unknown_paths_are_404_pages() {
    let app = TestApp::spawn().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&health.body).unwrap(),
        json!({"status": "ok"})
    );
    let missing = app.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("Page not found"));
    assert!(
        missing.body.contains(">Sign in</a>"),
        "signed out, the header offers to sign in"
    );
}

#[tokio::test]
async fn error_pages_show_who_is_signed_in() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    for (path, status) in [
        ("/no/such/page", StatusCode::NOT_FOUND),
        ("/customers/999", StatusCode::NOT_FOUND),
        ("/customers/abc", StatusCode::NOT_FOUND),
        ("/login?return_to=//evil.example", StatusCode::BAD_REQUEST),
    ] {
        let page = app.get(path).await;
        assert_eq!(page.status, status, "{path}");
        assert!(
            page.body.contains("Alice Ashford") && page.body.contains("csrf_token"),
            "{path}: the header shows alice and her sign-out form:\n{}",
            page.body
        );
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}

#[tokio::test]
async fn every_page_is_uncacheable_and_anonymous_visits_create_no_session() {
    let app = TestApp::spawn().await;
    let home = app.get("/").await;
    assert_eq!(home.headers["cache-control"], "no-store");
    assert!(
        !home
            .headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("fabrikam_session=")),
        "no session for an anonymous visit"
    );
    assert!(!home.body.contains("csrf_token"));
    app.login_as("alice").await;
    for path in ["/", "/customers", "/customers/1", "/employees", "/me"] {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_eq!(page.headers["cache-control"], "no-store", "{path}");
        assert!(page.body.contains("csrf_token"), "{path} has the logout form");
    }
    assert_eq!(
        app.get("/static/fabrikam.css").await.headers["cache-control"],
        "public, max-age=3600"
    );
}

#[tokio::test]
async fn an_https_site_sends_hsts_and_secure_cookies() {
    let app = TestApp::spawn_with(|s| {
        s.fabrikam_public_url = Some("https://intranet.fabrikam.example/".parse().unwrap())
    })
    .await;
    let home = app.get("/").await;
    assert_eq!(home.headers["strict-transport-security"], "max-age=31536000");
    let login = app.get("/login").await;
    let cookie = login.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("fabrikam_session=") && cookie.contains("Secure"),
        "{cookie}"
    );
    let plain = TestApp::spawn().await;
    assert!(
        plain
            .get("/")
            .await
            .headers
            .get("strict-transport-security")
            .is_none()
    );
}

#[tokio::test]
async fn reading_pages_does_not_rewrite_the_session_cookie() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    app.get("/customers").await; // the first page after login may still carry changes
    for path in ["/customers", "/employees", "/me", "/"] {
        let page = app.get(path).await;
        assert!(
            page.headers.get("set-cookie").is_none(),
            "{path} sent a new session cookie"
        );
    }
}

#[tokio::test]
async fn me_explains_the_claims_and_every_registered_requirement() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    let me = app.get("/me").await;
    assert!(me.body.contains("<code>urn:fabrikam:acr:password</code>"));
    for panel in ["Salary pages", "The audit trail"] {
        assert!(me.body.contains(&format!("<h2>{panel}</h2>")), "{panel}");
    }
    assert!(me.body.contains("at most 600 s old") && me.body.contains("at most 300 s old"));
    assert!(me.body.contains("Not satisfied (not strong enough)"));
}

#[tokio::test]
async fn garbage_input_gets_clean_errors_and_the_site_keeps_answering() {
    let app = TestApp::spawn().await;
    let long = "x".repeat(10_000);
    for path in [
        format!("/login?return_to=/{long}"),
        "/login?return_to=%FF%FE".to_owned(),
        format!("/login?step_up={long}"),
        format!("/callback?code={long}&state={long}"),
        "/callback?state=%00%01".to_owned(),
        "/customers/99999999999999999999999".to_owned(),
        "/employees/-1/salary".to_owned(),
        "/audit?page=abc".to_owned(),
    ] {
        let visit = app.get(&path).await;
        assert!(
            visit.status.is_client_error() || visit.status.is_redirection(),
            "{}: {}",
            &path[..path.len().min(60)],
            visit.status
        );
    }
    for header in [
        "Bearer",
        "Bearer ",
        "Basic abc",
        "Bearer a.b",
        "Bearer ...",
        &format!("Bearer {long}"),
    ] {
        let res = app
            .plain
            .get(app.url("/api/employees/1/salary"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{}",
            &header[..header.len().min(30)]
        );
        let body: Value = res.json().await.expect("a JSON error");
        assert!(body["error"].is_string());
    }
    let form = app
        .plain
        .post(app.url("/logout"))
        .header("content-type", "application/json")
        .body("{}")
        .send();
    assert_eq!(form.await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/healthz").await.status,
        StatusCode::OK,
        "still answering"
    );
}
