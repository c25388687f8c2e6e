//! The demo guide (`/demo`, `/demo/codes`): the demo users with their live TOTP codes, only
//! when the intranet runs with its own Fabrikam ID; the tutorial and the favicon.

use std::net::TcpListener;

use reqwest::StatusCode;
use serde_json::Value;

use crate::app::TestApp;
use crate::support::totp_code;

/// The codes of the step before, this one and the next (a step may end during the test).
fn live(user: &str) -> [String; 3] {
    [totp_code(user, -1), totp_code(user, 0), totp_code(user, 1)]
}

#[tokio::test]
async fn the_demo_guide_shows_each_users_factors_and_live_code_and_is_marked_demo_only() {
    let app = TestApp::spawn().await;
    let guide = app.get("/demo").await;
    assert_eq!(guide.status, StatusCode::OK, "anyone may read it: {}", guide.body);
    let text = crate::html::text(&guide.body);
    assert!(text.contains("Demo mode only"), "{text}");
    for user in ["alice", "bob"] {
        let shown = crate::html::attrs(&guide.body, &format!("[data-totp-user={user}]"), "data-totp-user");
        assert_eq!(shown.len(), 1, "{user}'s code");
        assert!(
            live(user).iter().any(|c| text.contains(c.as_str())),
            "{user}'s live code in {text}"
        );
    }
    assert!(text.contains("alice-password") && text.contains("carol-password"));
    assert!(text.contains("None yet"), "carol has no second factor: {text}");
    assert_eq!(
        crate::html::attrs(&guide.body, "script", "src"),
        ["/static/demo.js"],
        "the live codes come from a script file, never an inline one"
    );

    let codes = app.get("/demo/codes").await;
    assert_eq!(codes.status, StatusCode::OK);
    assert!(codes.body.ends_with("}\n"), "{:?}", codes.body);
    let json: Value = serde_json::from_str(&codes.body).unwrap();
    assert!(live("alice").contains(&json["codes"]["alice"].as_str().unwrap().to_owned()));
    assert!(json["codes"].get("carol").is_none());
    let remaining = json["remaining"].as_u64().unwrap();
    assert!((1..=30).contains(&remaining), "{remaining}");

    // The home page and the footer link to it and to the tutorial, which is served.
    let home = app.get("/").await;
    assert!(home.body.contains("href=\"/demo\"") && home.body.contains("href=\"/docs/tutorial.md\""));
    let tutorial = app.get("/docs/tutorial.md").await;
    assert_eq!(tutorial.status, StatusCode::OK);
    assert!(tutorial.body.contains("step-up"), "the tutorial itself");
}

#[tokio::test]
async fn against_another_provider_there_is_no_demo_guide() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let app = TestApp::spawn_with(|s| s.oidc_issuer_url = Some(format!("http://{closed}"))).await;
    assert_eq!(app.get("/demo").await.status, StatusCode::NOT_FOUND);
    let codes = app.get("/demo/codes").await;
    assert_eq!(codes.status, StatusCode::NOT_FOUND);
    assert!(!codes.body.contains("alice"));
    assert!(!app.get("/").await.body.contains("href=\"/demo\""));
}

#[tokio::test]
async fn the_menu_marks_the_current_page_and_the_page_has_a_skip_link() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    let customers = app.get("/customers").await;
    assert_eq!(
        crate::html::attrs(&customers.body, ".wide-menu nav a[aria-current]", "href"),
        ["/customers"]
    );
    assert_eq!(
        crate::html::attrs(&customers.body, ".wide-menu nav a[aria-current=page]", "href"),
        ["/customers"]
    );
    let customer = app.get("/customers/1").await;
    assert_eq!(
        crate::html::attrs(&customer.body, ".wide-menu nav a[aria-current=true]", "href"),
        ["/customers"],
        "a page below Customers marks its section"
    );
    assert_eq!(
        crate::html::attrs(&customers.body, "a.skip-link", "href"),
        ["#main"]
    );
    assert_eq!(crate::html::attrs(&customers.body, "main", "id"), ["main"]);
}

#[tokio::test]
async fn favicon_ico_is_served_and_json_errors_end_with_a_newline() {
    let app = TestApp::spawn().await;
    let icon = app.get("/favicon.ico").await;
    assert_eq!(icon.status, StatusCode::OK);
    assert_eq!(icon.headers[reqwest::header::CONTENT_TYPE], "image/x-icon");
    let api = app.get("/api/employees/1/salary").await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    assert!(api.body.ends_with("}\n"), "{:?}", api.body);
    assert!(app.get("/healthz").await.body.ends_with("}\n"));
}
