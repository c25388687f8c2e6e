//! HTTP methods and media types: `HEAD` answers wherever `GET` does (RFC 9110 §9.3.2), and
//! every path under `/api/` answers JSON, whatever is wrong with the request.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::app::TestApp;

/// Sends `method path` with the browser's cookies (and a bearer token, if any).
async fn send(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.browser.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("an answer")
}

/// `HEAD path` answers with `GET path`'s status, type and headers, and no body.
async fn head_matches_get(app: &TestApp, path: &str, token: Option<&str>) {
    let get = send(app, Method::GET, path, token).await;
    let head = send(app, Method::HEAD, path, token).await;
    assert_eq!(head.status(), get.status(), "HEAD {path}");
    for name in [
        "content-type",
        "cache-control",
        "content-security-policy",
        "location",
    ] {
        let value = |r: &reqwest::Response| r.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let (g, h) = (value(&get), value(&head));
        // A redirect's target carries fresh state and nonce: compare where it goes, not them.
        if name == "location" {
            let base = |v: Option<String>| v.map(|v| v.split('?').next().unwrap().to_owned());
            assert_eq!(base(h), base(g), "HEAD {path}: {name}");
        } else {
            assert_eq!(h, g, "HEAD {path}: {name}");
        }
    }
    assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path} has no body");
}

#[tokio::test]
async fn head_answers_wherever_get_does() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        "/healthz",
        "/static/fabrikam.css",
        "/customers",
        "/no/such/page",
    ] {
        head_matches_get(&app, path, None).await;
    }
    app.login_as("alice").await;
    for path in [
        "/",
        "/customers",
        "/customers/1",
        "/employees",
        "/me",
        "/employees/1/salary",
        "/login",
    ] {
        head_matches_get(&app, path, None).await;
    }
    let strong = app.access_token("alice", true).await;
    head_matches_get(&app, "/api/employees/1/salary", Some(&strong)).await;
    head_matches_get(&app, "/api/employees/1/salary", None).await;
    let ok = send(&app, Method::HEAD, "/customers", None).await;
    assert_eq!(
        ok.status(),
        StatusCode::OK,
        "a page that answers GET answers HEAD with 200"
    );
}

/// The API's answer is JSON with an `error` and the security headers.
async fn json_error(res: reqwest::Response, status: StatusCode, error: &str, what: &str) {
    assert_eq!(res.status(), status, "{what}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{what}: {:?}",
        res.headers()["content-type"]
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(res.headers()["cache-control"], "no-store", "{what}");
    let body: Value = res
        .json()
        .await
        .unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
    assert_eq!(body["error"], error, "{what}: {body}");
}

#[tokio::test]
async fn every_path_under_api_answers_json() {
    let app = TestApp::spawn().await;
    let strong = app.access_token("alice", true).await;
    for (path, token, status, error) in [
        (
            "/api/employees/abc/salary",
            Some(strong.as_str()),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/employees/99999999999999999999/salary",
            Some(&strong),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/employees/abc/salary",
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_request",
        ),
        ("/api/nothing/here", None, StatusCode::NOT_FOUND, "not_found"),
        ("/api/", None, StatusCode::NOT_FOUND, "not_found"),
        ("/api", None, StatusCode::NOT_FOUND, "not_found"),
        (
            "/api/employees",
            Some(&strong),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let res = send(&app, Method::GET, path, token).await;
        json_error(res, status, error, path).await;
    }
    // The same with a session cookie: the API never falls through to the pages.
    app.login_as("alice").await;
    let res = send(&app, Method::GET, "/api/employees/abc/salary", Some(&strong)).await;
    json_error(res, StatusCode::NOT_FOUND, "not_found", "with a cookie").await;
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let res = send(&app, method.clone(), "/api/employees/1/salary", Some(&strong)).await;
        assert_eq!(res.headers()["allow"], "GET, HEAD", "{method}");
        json_error(
            res,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            method.as_str(),
        )
        .await;
    }
    let res = send(&app, Method::POST, "/healthz", None).await;
    json_error(
        res,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "POST /healthz",
    )
    .await;
    // Pages keep their HTML error pages.
    let page = send(&app, Method::GET, "/customers/abc", None).await;
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}
