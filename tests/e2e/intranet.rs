//! The intranet against Fabrikam ID, over HTTP, as a browser: login, step-up, refusals, and
//! the hostile cases driven through Fabrikam ID's test-control API.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::{TestApp, urlencode};
use crate::support::{totp_code, totp_code_for_secret};

const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

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
}

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
    let param = |v: &crate::app::Visit, n: &str| v.location_param(n).unwrap_or_else(|| panic!("no {n}"));
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
async fn alice_steps_up_with_totp_and_sees_the_salary() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    let salary = app.get("/employees/1/salary").await;
    assert_eq!(salary.status, StatusCode::FOUND);
    let location = salary.location().unwrap();
    assert!(
        location
            .as_str()
            .starts_with(&format!("{}/authorize", app.issuer)),
        "{location}"
    );
    assert_eq!(salary.location_param("acr_values").as_deref(), Some(MFA));
    assert_eq!(salary.location_param("max_age").as_deref(), Some("600"));
    let claims: Value =
        serde_json::from_str(&salary.location_param("claims").expect("essential acr")).unwrap();
    assert_eq!(
        claims,
        json!({"id_token": {"acr": {"essential": true, "values": [MFA]}}})
    );

    // Fabrikam ID already has alice's password session: it asks only for the code.
    let mfa_page = app.follow(salary).await;
    assert!(
        !mfa_page.has_form_field("password"),
        "only the second factor is asked:\n{}",
        mfa_page.body
    );
    let page = app.submit_totp(&mfa_page, "alice").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.url.path(), "/employees/1/salary");
    assert!(page.body.contains("Salary history") && page.body.contains("104,000 EUR"));
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(
        page.body.contains("multi-factor"),
        "the badge shows the new assurance"
    );

    // /me explains the claims now held.
    let me = app.get("/me").await;
    assert!(me.body.contains(MFA) && me.body.contains("otp") && me.body.contains("Satisfied now"));
    // Another salary page: no new step-up while the login is fresh.
    assert_eq!(app.get("/employees/2/salary").await.status, StatusCode::OK);
    assert_eq!(
        app.get("/employees/99/salary").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bob_is_refused_at_once_without_a_step_up() {
    let app = TestApp::spawn().await;
    app.login_as("bob").await;
    let before = app.idp.authorize_requests().await.len();
    let salary = app.get("/employees/1/salary").await;
    assert_eq!(salary.status, StatusCode::FORBIDDEN);
    assert!(
        salary.body.contains("“hr”"),
        "the page names the missing role:\n{}",
        salary.body
    );
    assert_eq!(
        app.idp.authorize_requests().await.len(),
        before,
        "no step-up was started"
    );
    // Customers still work for him.
    assert_eq!(app.get("/customers").await.status, StatusCode::OK);
}

#[tokio::test]
async fn carol_enrolls_a_second_factor_during_her_first_step_up() {
    let app = TestApp::spawn().await;
    app.login_as("carol").await;
    let enroll = app.follow(app.get("/employees/3/salary").await).await;
    let marker = "id=\"totp-secret\"";
    let at = enroll
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("the secret is on the page:\n{}", enroll.body));
    let after = &enroll.body[at..];
    let secret: String = after[after.find('>').unwrap() + 1..]
        .chars()
        .take_while(|c| *c != '<')
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    assert!(secret.len() >= 16, "a base32 secret: {secret}");
    let page = app
        .submit_totp_code(&enroll, &totp_code_for_secret(&secret, 0))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Salary history"));
}

#[tokio::test]
async fn a_remembered_browser_skips_the_code_at_login_but_salary_still_steps_up() {
    let app = TestApp::spawn_with(|s| s.idp_mfa_at_login = true).await;
    // With MFA at login, the first login asks for the code; alice ticks "remember".
    let mfa = app.login_to("alice", "/").await;
    assert!(
        mfa.has_form_field("code"),
        "MFA at login asks for the code:\n{}",
        mfa.body
    );
    let home = app
        .submit(
            &mfa,
            &[("code", &totp_code("alice", 0)), ("remember_browser", "on")],
        )
        .await;
    assert_eq!(home.url.path(), "/");
    let logout = app
        .submit_no_follow(&home, &[("csrf_token", &TestApp::csrf_of(&home))])
        .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    app.follow(logout).await;

    // The remembered browser: password only, and the token honestly says so.
    let home = app.login_to("alice", "/").await;
    assert_eq!(
        home.url.path(),
        "/",
        "no code asked on a remembered browser:\n{}",
        home.body
    );
    let me = app.get("/me").await;
    assert!(
        me.body.contains("<code>urn:fabrikam:acr:password</code>"),
        "{}",
        me.body
    );
    assert!(!me.body.contains("<code>pwd, otp, mfa</code>"));

    // A salary page still demands the code.
    let mfa = app.follow(app.get("/employees/1/salary").await).await;
    assert!(
        mfa.has_form_field("code"),
        "step-up asks for the code on a remembered browser"
    );
    let page = app.submit_totp_code(&mfa, &totp_code("alice", 1)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Salary history"));
}

#[tokio::test]
async fn a_multi_factor_login_that_ages_past_max_age_steps_up_again() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    // The step-up's token says the second factor happened 628 s ago: within 600 s + 30 s skew.
    app.idp
        .set_next_token(json!({"id_token_claims": {"auth_time": now() - 628}}))
        .await;
    let mfa = app.follow(app.get("/employees/1/salary").await).await;
    let page = app.submit_totp(&mfa, "alice").await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "fresh enough on arrival:\n{}",
        page.body
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let again = app.get("/employees/1/salary").await;
    assert_eq!(
        again.status,
        StatusCode::FOUND,
        "stale now: step up again, not a failure page"
    );
    assert_eq!(again.location_param("max_age").as_deref(), Some("600"));
}

#[tokio::test]
async fn a_provider_that_ignores_acr_values_gets_a_403_and_no_loop() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    app.idp.set_next_token(json!({"ignore_acr_values": true})).await;
    let before = app.idp.authorize_requests().await.len();
    let page = app.follow(app.get("/employees/1/salary").await).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert_eq!(page.url.path(), "/employees/1/salary");
    assert!(page.body.contains("not strong enough"));
    assert!(
        page.body.contains("urn:fabrikam:acr:password"),
        "it says what came back"
    );
    assert!(page.body.contains(MFA), "it says what was asked");
    assert_eq!(
        app.idp.authorize_requests().await.len(),
        before + 1,
        "exactly one step-up, no loop"
    );
    // And it stays a 403 (no automatic retry) until the user chooses to try again.
    assert_eq!(app.get("/employees/1/salary").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_stale_answer_to_a_step_up_is_refused_not_looped() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    app.idp
        .set_next_token(json!({"id_token_claims": {"auth_time": now() - 3600}}))
        .await;
    let mfa = app.follow(app.get("/employees/1/salary").await).await;
    let page = app.submit_totp(&mfa, "alice").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("older than this page allows"));
}

/// Logs alice in with a deviating ID token and checks she ends on an error page without a session.
async fn refused_login(deviation: Value, what: &str) {
    let app = TestApp::spawn().await;
    app.idp.set_next_token(deviation).await;
    let page = app.login_to("alice", "/customers").await;
    assert!(
        page.status.is_client_error() || page.status.is_server_error(),
        "{what}: {} {}",
        page.status,
        page.body
    );
    assert!(page.body.contains("Sign-in failed"), "{what}: {}", page.body);
    let customers = app.get("/customers").await;
    assert_eq!(
        customers.status,
        StatusCode::FOUND,
        "{what}: no session was created"
    );
}

#[tokio::test]
async fn forged_or_misaddressed_id_tokens_create_no_session() {
    let cases = [
        (json!({"signature": "wrong-key"}), "bad signature"),
        (json!({"signature": "none"}), "alg none"),
        (json!({"id_token_claims": {"aud": "someone-else"}}), "wrong aud"),
        (
            json!({"id_token_claims": {"aud": ["fabrikam-intranet", "someone-else"], "azp": "someone-else"}}),
            "wrong azp",
        ),
        (
            json!({"id_token_claims": {"azp": "someone-else"}}),
            "azp of another client",
        ),
        (
            json!({"id_token_claims": {"iss": "http://evil.example"}}),
            "wrong iss",
        ),
        (json!({"id_token_claims": {"exp": now() - 120}}), "expired"),
        (
            json!({"id_token_claims": {"iat": now() + 3600}}),
            "issued in the future",
        ),
        (
            json!({"id_token_claims": {"nonce": "not-the-nonce"}}),
            "wrong nonce",
        ),
        (json!({"id_token_claims": {"nonce": null}}), "missing nonce"),
    ];
    for (deviation, what) in cases {
        refused_login(deviation, what).await;
    }
}

#[tokio::test]
async fn a_forged_step_up_token_does_not_upgrade_the_session() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    app.idp.set_next_token(json!({"signature": "wrong-key"})).await;
    let mfa = app.follow(app.get("/employees/1/salary").await).await;
    let page = app.submit_totp(&mfa, "alice").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    let me = app.get("/me").await;
    assert_eq!(me.status, StatusCode::OK, "the password session survives");
    assert!(
        me.body.contains("<code>urn:fabrikam:acr:password</code>"),
        "and was not upgraded:\n{}",
        me.body
    );
}

/// Runs a login up to the provider's redirect to our callback, without following it.
async fn callback_url(app: &TestApp, user: &str) -> url::Url {
    let page = app.follow(app.get("/login").await).await;
    let answer = app
        .submit_no_follow(
            &page,
            &[("username", user), ("password", &format!("{user}-password"))],
        )
        .await;
    let location = answer.location().expect("the OP redirects back");
    assert_eq!(location.path(), "/callback");
    location
}

#[tokio::test]
async fn callbacks_are_single_use_and_bound_to_the_browser() {
    let app = TestApp::spawn().await;
    let callback = callback_url(&app, "alice").await;

    // Another browser cannot use it: it has no pending login.
    let other = app.new_browser();
    let stolen = app.get_with(&other, callback.as_str()).await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST);

    // Tampered state: refused, and the pending login is gone.
    let mut tampered = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            (
                k.to_string(),
                if k == "state" {
                    format!("{v}x")
                } else {
                    v.to_string()
                },
            )
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(app.get(tampered.as_str()).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get(callback.as_str()).await.status,
        StatusCode::BAD_REQUEST,
        "pending login taken once"
    );
    assert_eq!(
        app.get("/customers").await.status,
        StatusCode::FOUND,
        "no session"
    );
}

#[tokio::test]
async fn a_replayed_code_is_refused_by_the_provider_and_creates_no_session() {
    let app = TestApp::spawn().await;
    let first = callback_url(&app, "alice").await;
    let code = first
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    assert_eq!(
        app.get(first.as_str()).await.status,
        StatusCode::FOUND,
        "first use logs in"
    );

    // A second browser starts its own login and is handed the used code with its own state.
    let other = app.new_browser();
    let start = app.get_with(&other, "/login").await;
    let state = start.location_param("state").unwrap();
    let replay = format!("/callback?code={}&state={}", urlencode(&code), urlencode(&state));
    let refused = app.get_with(&other, &replay).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(
        app.get_with(&other, "/customers").await.status,
        StatusCode::FOUND,
        "no session"
    );
}

#[tokio::test]
async fn provider_errors_on_the_callback_are_explained() {
    let app = TestApp::spawn().await;
    let start = app.get("/login").await;
    let state = start.location_param("state").unwrap();
    let page = app
        .get(&format!(
            "/callback?error=access_denied&error_description=%3Cscript%3E&state={state}"
        ))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("access_denied"));
    assert!(!page.body.contains("<script>"), "provider text is escaped");
}

#[tokio::test]
async fn an_unmet_essential_acr_ends_in_a_clear_refusal() {
    let app = TestApp::spawn_with(|s| s.stepup_acr_values = Some("urn:example:acr:unknown".into())).await;
    app.login_as("alice").await;
    let page = app.follow(app.get("/employees/1/salary").await).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("unmet_authentication_requirements"));
}

#[tokio::test]
async fn a_tampered_session_cookie_is_anonymous() {
    let app = TestApp::spawn().await;
    let start = app.plain.get(app.url("/login")).send().await.unwrap();
    let cookie = start
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("fabrikam_session="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .unwrap();
    // Flip one character in the middle of the encrypted value.
    let mut bytes = cookie.into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(bytes).unwrap();
    let res = app
        .plain
        .get(app.url("/customers"))
        .header("cookie", format!("fabrikam_session={forged}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/login"));
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
async fn logout_needs_the_csrf_token_and_ends_both_sessions() {
    let app = TestApp::spawn().await;
    let home = app.login_as("alice").await;
    let csrf = TestApp::csrf_of(&home);

    let forged = app.post_form(app.url("/logout"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let wrong = app
        .post_form(app.url("/logout"), &[("csrf_token".into(), "x".repeat(43))])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/customers").await.status,
        StatusCode::OK,
        "still logged in"
    );

    let out = app
        .post_form(app.url("/logout"), &[("csrf_token".into(), csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let end_session = out.location().unwrap();
    assert!(
        end_session
            .as_str()
            .starts_with(&format!("{}/logout", app.issuer)),
        "{end_session}"
    );
    assert!(
        out.location_param("id_token_hint").is_some(),
        "the one token allowed in a URL"
    );
    assert_eq!(
        out.location_param("post_logout_redirect_uri").as_deref(),
        Some(app.url("/").as_str())
    );
    let back = app.follow(out).await;
    assert_eq!(back.url.as_str(), app.url("/").as_str());
    assert_eq!(
        app.get("/customers").await.status,
        StatusCode::FOUND,
        "intranet session gone"
    );
    let login = app.follow(app.get("/login").await).await;
    assert!(
        login.has_form_field("password"),
        "provider session gone: the password is asked again"
    );
}

/// An access token for `user` from Fabrikam ID, with MFA when `mfa`, obtained as a client
/// would (authorize as the intranet's registered client, log in, redeem the code).
async fn access_token(app: &TestApp, user: &str, mfa: bool) -> String {
    let browser = app.idp.browser();
    let (_, tokens) = if mfa {
        app.idp.step_up(&browser, user, 0, &[]).await
    } else {
        app.idp.login(&browser, user, &[]).await
    };
    tokens.access_token
}

/// Parses `Bearer k="v", k2=v2` into pairs.
fn parse_challenge(header: &str) -> Vec<(String, String)> {
    let rest = header.strip_prefix("Bearer ").expect("a Bearer challenge");
    let mut out = Vec::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=').expect("key=value");
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').expect("closing quote");
            (quoted[..end].to_owned(), &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.push((key.trim().to_owned(), value));
        s = after.trim_start_matches(',').trim();
    }
    out
}

#[tokio::test]
async fn the_api_challenges_weak_tokens_per_rfc_9470_and_serves_strong_ones() {
    let app = TestApp::spawn().await;
    let api = app.url("/api/employees/1/salary");

    let none = app.plain.get(api.clone()).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");

    let garbage = app
        .plain
        .get(api.clone())
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
    assert!(
        garbage.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    let weak = access_token(&app, "alice", false).await;
    let res = app
        .plain
        .get(api.clone())
        .bearer_auth(&weak)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = parse_challenge(res.headers()["www-authenticate"].to_str().unwrap());
    let field = |k: &str| challenge.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(
        field("error").as_deref(),
        Some("insufficient_user_authentication")
    );
    assert!(field("error_description").is_some_and(|d| !d.is_empty()));
    assert_eq!(field("acr_values").as_deref(), Some(MFA));
    assert_eq!(field("max_age").as_deref(), Some("600"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_user_authentication");

    let strong = access_token(&app, "alice", true).await;
    let res = app
        .plain
        .get(api.clone())
        .bearer_auth(&strong)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["employee"]["id"], 1);
    assert_eq!(body["salary_history"][2]["amount"], 104_000);
    let missing = app
        .plain
        .get(app.url("/api/employees/99/salary"))
        .bearer_auth(&strong)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let bob = access_token(&app, "bob", true).await;
    let res = app.plain.get(api.clone()).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_api_refuses_tokens_that_are_not_its_access_tokens() {
    let app = TestApp::spawn().await;
    let api = app.url("/api/employees/1/salary");
    for (deviation, what) in [
        (
            json!({"access_token_claims": {"aud": "another-api"}}),
            "wrong audience",
        ),
        (
            json!({"access_token_claims": {"iss": "http://evil.example"}}),
            "wrong issuer",
        ),
        (json!({"access_token_claims": {"exp": now() - 300}}), "expired"),
        (json!({"signature": "wrong-key"}), "forged"),
        (json!({"signature": "none"}), "unsigned"),
    ] {
        app.idp.set_next_token(deviation).await;
        // A password-only token: validation fails before the policy is even asked.
        let token = access_token(&app, "alice", false).await;
        let res = app
            .plain
            .get(api.clone())
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
    }
}

#[tokio::test]
async fn public_pages_work_while_the_provider_is_down() {
    // An issuer on a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = TestApp::spawn_with(|s| s.oidc_issuer_url = Some(format!("http://{closed}"))).await;
    assert_eq!(app.get("/").await.status, StatusCode::OK);
    let login = app.get("/login").await;
    assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(login.body.contains("identity provider is unavailable"));
}

#[tokio::test]
async fn the_entra_profile_asks_for_an_authentication_context() {
    let app = TestApp::spawn_with(|s| s.stepup_profile = fabrikam::config::StepUpProfile::Entra).await;
    app.login_as("alice").await;
    let salary = app.get("/employees/1/salary").await;
    assert_eq!(salary.status, StatusCode::FOUND);
    assert_eq!(salary.location_param("acr_values"), None);
    let claims: Value = serde_json::from_str(&salary.location_param("claims").unwrap()).unwrap();
    assert_eq!(
        claims,
        json!({"id_token": {"acrs": {"essential": true, "value": "c1"}}})
    );
    // Fabrikam ID knows no authentication contexts: its answer lacks `acrs`, and the
    // intranet says so instead of looping.
    let page = app.follow(salary).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("authentication context c1"));
}

#[tokio::test]
async fn a_step_up_answered_by_another_user_changes_nothing() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    app.forget_provider_session();
    let page = app.follow(app.get("/employees/1/salary").await).await;
    let mfa = app.password(&page, "bob").await;
    let refused = app.submit_totp(&mfa, "bob").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("done by someone else"));
    let me = app.get("/me").await;
    assert!(
        me.body.contains("<code>alice</code>"),
        "still alice:\n{}",
        me.body
    );
    assert!(
        me.body.contains("<code>urn:fabrikam:acr:password</code>"),
        "and not upgraded"
    );
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
async fn the_api_refuses_a_jwt_that_is_not_typed_as_an_access_token() {
    let app = TestApp::spawn().await;
    let api = app.url("/api/employees/1/salary");
    for typ in [json!("JWT"), Value::Null] {
        app.idp.set_next_token(json!({"access_token_typ": typ})).await;
        let token = access_token(&app, "alice", false).await;
        let res = app
            .plain
            .get(api.clone())
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "typ {typ}");
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }
    // An ID token is a JWT from the same issuer and keys, but not an access token for this API.
    let (_, tokens) = app.idp.login(&app.idp.browser(), "alice", &[]).await;
    let res = app
        .plain
        .get(api)
        .bearer_auth(&tokens.id_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
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
async fn garbage_input_gets_clean_errors_and_the_site_keeps_answering() {
    let app = TestApp::spawn().await;
    let long = "x".repeat(10_000);
    for path in [
        format!("/login?return_to=/{long}"),
        "/login?return_to=%FF%FE".to_owned(),
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
    let api = app.url("/api/employees/1/salary");
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
            .get(api.clone())
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
