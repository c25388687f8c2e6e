//! Signing in: the authorization request, the callback, `return_to`, and the session cookie.

use reqwest::StatusCode;

use crate::app::{TestApp, Visit, urlencode};

#[tokio::test]
async fn a_password_login_opens_customer_pages_and_lands_on_return_to() {
    let app = TestApp::spawn().await;
    let page = app.login_to("alice", "/customers").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.url.path(), "/customers");
    assert!(page.body.contains("Northwind Traders"));
    assert!(
        page.body.contains("password"),
        "the badge shows a password sign-in"
    );
    let detail = app.get("/customers/1").await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("Maria Anders"));
    assert_eq!(app.get("/customers/999").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/customers/abc").await.status, StatusCode::NOT_FOUND);
    let employees = app.get("/employees").await;
    assert_eq!(employees.status, StatusCode::OK);
    assert!(employees.body.contains("/employees/1/salary"));
    assert!(!employees.body.contains("104,000"), "no salaries on the list");
}

#[tokio::test]
async fn the_session_cookie_has_its_own_name_and_safe_attributes() {
    let app = TestApp::spawn().await;
    let start = app.get("/login").await;
    let cookie = start
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("fabrikam_session="))
        .expect("the pending login is kept in the session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http in tests: {cookie}");
}

#[tokio::test]
async fn login_requests_carry_fresh_state_nonce_and_pkce() {
    let app = TestApp::spawn().await;
    let a = app.get("/login").await;
    let b = app.new_browser();
    let b = app.get_with(&b, "/login").await;
    let auth = a.location().unwrap();
    assert_eq!(
        auth.as_str().split('?').next().unwrap(),
        format!("{}/authorize", app.issuer)
    );
    let param = |v: &Visit, n: &str| v.location_param(n).unwrap_or_else(|| panic!("no {n}"));
    for name in ["state", "nonce"] {
        // 32 random bytes, base64url: 43 characters, 256 bits.
        assert!(param(&a, name).len() >= 22, "{name} has at least 128 bits");
        assert_ne!(param(&a, name), param(&b, name), "{name} is fresh");
    }
    assert_eq!(param(&a, "code_challenge_method"), "S256");
    assert_eq!(param(&a, "response_type"), "code");
    assert!(param(&a, "scope").split(' ').any(|s| s == "openid"));
    assert_eq!(param(&a, "redirect_uri"), app.url("/callback").as_str());
    assert!(
        a.location_param("acr_values").is_none(),
        "a plain login does not ask for MFA"
    );
}

#[tokio::test]
async fn return_to_accepts_only_relative_paths() {
    let app = TestApp::spawn().await;
    for bad in [
        "//evil.example/",
        "/\\evil.example",
        "https://evil.example/",
        "evil",
        "/\t/evil.example",
    ] {
        let visit = app.get(&format!("/login?return_to={}", urlencode(bad))).await;
        assert_eq!(visit.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(visit.headers.get("location").is_none(), "{bad}");
    }
}

#[tokio::test]
async fn callbacks_are_single_use_and_bound_to_the_browser() {
    let app = TestApp::spawn().await;
    let callback = app.callback_url("alice").await;

    // Another browser cannot use it: it has no pending login.
    let other = app.new_browser();
    let stolen = app.get_with(&other, callback.as_str()).await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST);

    // Tampered state: refused, and nothing changes (a page that sends the browser to
    // /callback with a made-up state cannot cancel the sign-in in progress).
    let mut tampered = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                format!("{v}x")
            } else {
                v.to_string()
            };
            (k.to_string(), v)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let refused = app.get(tampered.as_str()).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("does not belong to this browser"),
        "{}",
        refused.body
    );
    assert_eq!(
        app.get("/customers").await.status,
        StatusCode::FOUND,
        "no session"
    );
    // The genuine answer still completes the sign-in, once.
    let genuine = app.get(callback.as_str()).await;
    assert_eq!(genuine.status, StatusCode::FOUND, "{}", genuine.body);
    assert_eq!(app.get("/customers").await.status, StatusCode::OK);
    let again = app.get(callback.as_str()).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "pending login taken once");
    assert!(again.body.contains("No sign-in is in progress"), "{}", again.body);
}

/// A code from `callback`, and a callback path that hands it to another browser's own login
/// (with that browser's state): code injection (OAuth 2.0 Security BCP, RFC 9700 §4.5).
async fn inject(app: &TestApp, other: &reqwest::Client, callback: &url::Url) -> String {
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let start = app.get_with(other, "/login").await;
    let state = start.location_param("state").unwrap();
    format!("/callback?code={}&state={}", urlencode(&code), urlencode(&state))
}

#[tokio::test]
async fn a_code_stolen_before_use_signs_in_nobody_in_another_browser() {
    // alice's browser has a code it has not used yet; an attacker's browser, with a login of
    // its own in progress, gets that code with its own state. The state matches, but the
    // code was bound to alice's PKCE challenge (RFC 7636 §4.6), so the provider refuses it.
    let app = TestApp::spawn().await;
    let unused = app.callback_url("alice").await;
    let attacker = app.new_browser();
    let injected = inject(&app, &attacker, &unused).await;
    let refused = app.get_with(&attacker, &injected).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("Sign-in failed"), "{}", refused.body);
    assert_eq!(
        app.get_with(&attacker, "/customers").await.status,
        StatusCode::FOUND,
        "no session for the attacker"
    );
}

#[tokio::test]
async fn a_used_code_signs_in_nobody_in_another_browser() {
    let app = TestApp::spawn().await;
    let first = app.callback_url("alice").await;
    assert_eq!(
        app.get(first.as_str()).await.status,
        StatusCode::FOUND,
        "first use logs in"
    );
    let other = app.new_browser();
    let replay = inject(&app, &other, &first).await;
    let refused = app.get_with(&other, &replay).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(
        app.get_with(&other, "/customers").await.status,
        StatusCode::FOUND,
        "no session"
    );
    // (The provider's own refusal of a second redemption, PKCE aside, is tested in
    // idp::token.)
}

#[tokio::test]
async fn provider_errors_on_the_callback_are_explained() {
    // (access_denied, the person's Cancel, has its own calm page: intranet::cancel.)
    let app = TestApp::spawn().await;
    let start = app.get("/login").await;
    let state = start.location_param("state").unwrap();
    let page = app
        .get(&format!(
            "/callback?error=server_error&error_description=%3Cscript%3E&state={state}"
        ))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("server_error"));
    assert!(!page.body.contains("<script>"), "provider text is escaped");
}

#[tokio::test]
async fn a_tampered_session_cookie_is_anonymous() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    let cookie = app.cookie("fabrikam_session").expect("a session cookie");
    let customers = |value: String| {
        app.plain
            .get(app.url("/customers"))
            .header("cookie", format!("fabrikam_session={value}"))
            .send()
    };
    // The signed-in cookie, sent by a client without a jar, opens the page...
    assert_eq!(customers(cookie.clone()).await.unwrap().status(), StatusCode::OK);
    // ...and with one character changed in the middle of the encrypted value, it does not.
    let mut bytes = cookie.into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let res = customers(String::from_utf8(bytes).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/login"));
}
