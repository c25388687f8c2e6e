//! The intranet's session: small whatever the provider sends (an ID token with hundreds of
//! groups still fits a cookie, and what cannot fit is refused on a page, never in a loop),
//! void once signed out (a copied cookie of the cookie store too), and bounded in time (an
//! idle timeout, and a lifetime that step-ups do not renew).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::TestApp;

/// The browser's session cookie, as `name=value`, in bytes.
fn cookie_size(app: &TestApp) -> usize {
    "fabrikam_session=".len() + app.cookie("fabrikam_session").expect("a session cookie").len()
}

#[tokio::test]
async fn an_id_token_with_hundreds_of_groups_still_fits_the_cookie() {
    let app = TestApp::spawn().await;
    let roles: Vec<String> = (0..200)
        .map(|i| format!("group-{i:03}-0f8fad5b-d9cb-469f"))
        .chain(["hr".into()])
        .collect();
    let groups: Vec<String> = (0..200)
        .map(|i| format!("{i:08}-7c9e-6679-7425-40de944be07a"))
        .collect();
    app.idp
        .set_next_token(json!({"id_token_claims": {"roles": roles, "groups": groups}}))
        .await;
    let page = app.login_to("alice", "/customers").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.url.path(), "/customers", "signed in at once, no loop");
    assert!(cookie_size(&app) < 4096, "{} bytes", cookie_size(&app));
    assert_eq!(app.audit_rows("login").await.len(), 1);
    let me = app.get("/me").await;
    assert!(
        me.body.contains("<code>hr, group-000-")
            && me.body.contains("(and 191 more that this site does not use)"),
        "{}",
        me.body
    );
    // The policy's role was kept, so the step-up and the salary work; /me says what was left out.
    let salary = app.step_up_with_totp("alice", "/employees/1/salary").await;
    assert_eq!(salary.status, StatusCode::OK, "{}", salary.body);
    // Sign-out still hands the provider its ID token hint (kept in the database).
    let out = app.sign_out_from(&salary).await;
    assert!(out.location_param("id_token_hint").is_some());
}

#[tokio::test]
async fn a_login_that_cannot_fit_the_cookie_gets_a_clear_page_and_no_loop() {
    let app = TestApp::spawn().await;
    // amr is kept whole (the policy reads it): 300 methods cannot fit in 4 KB.
    let amr: Vec<String> = (0..300).map(|i| format!("method-{i:04}")).collect();
    app.idp
        .set_next_token(json!({"id_token_claims": {"amr": amr}}))
        .await;
    let page = app.open("/customers").await;
    let page = app.password(&page, "alice").await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", page.body);
    assert!(
        page.body.contains("Your sign-in is too large to keep"),
        "{}",
        page.body
    );
    assert!(page.body.contains("REDIS_URL"));
    assert_eq!(
        app.get("/customers").await.status,
        StatusCode::FOUND,
        "no session"
    );
    assert!(app.audit_rows("login").await.is_empty(), "no login recorded");
}

#[tokio::test]
async fn a_signed_out_cookie_no_longer_works_even_copied_before_a_step_up() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    let before_step_up = app.cookie("fabrikam_session").unwrap();
    let salary = app.step_up_with_totp("alice", "/employees/1/salary").await;
    assert_eq!(salary.status, StatusCode::OK);
    let copied = app.cookie("fabrikam_session").unwrap();
    let replay = |cookie: String| {
        let client = app.plain.clone();
        let url = app.url("/employees/1/salary");
        async move {
            client
                .get(url)
                .header("cookie", format!("fabrikam_session={cookie}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        replay(copied.clone()).await,
        StatusCode::OK,
        "a copy works while signed in"
    );
    app.follow(app.sign_out_from(&salary).await).await;
    assert_eq!(
        replay(copied).await,
        StatusCode::FOUND,
        "the copy is dead after sign-out"
    );
    assert_eq!(
        replay(before_step_up).await,
        StatusCode::FOUND,
        "so is an older one"
    );
    // Signing in again is a new login, unaffected.
    app.login_as("alice").await;
    assert_eq!(app.get("/customers").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_idle_session_ends_without_being_rewritten_on_every_request() {
    // The demo's 30 min of inactivity, on the intranet's clock (the last-seen stamp is
    // rewritten at most every idle/6 = 300 s).
    let app = TestApp::spawn_with(|s| s.session_idle_timeout_secs = 1800).await;
    app.login_as("alice").await;
    assert_eq!(app.get("/customers").await.status, StatusCode::OK);
    let rewrites = |res: &reqwest::Response| {
        res.headers()
            .get_all("set-cookie")
            .iter()
            .filter(|c| c.to_str().unwrap_or("").starts_with("fabrikam_session="))
            .count()
    };
    let quiet = app.browser.get(app.url("/customers")).send().await.unwrap();
    assert_eq!(quiet.status(), StatusCode::OK);
    assert_eq!(rewrites(&quiet), 0, "a request soon after another writes nothing");
    // Activity keeps it alive past the idle timeout: 3 × 1,000 s, a request each time.
    for _ in 0..3 {
        app.advance_clock(1000);
        let active = app.browser.get(app.url("/customers")).send().await.unwrap();
        assert_eq!(active.status(), StatusCode::OK);
        assert_eq!(rewrites(&active), 1, "the last-seen stamp is refreshed");
    }
    app.advance_clock(1801);
    let idle = app.get("/customers").await;
    assert_eq!(
        idle.status,
        StatusCode::FOUND,
        "ended after 30 min without a request"
    );
    assert_eq!(idle.location().unwrap().path(), "/login");
}

#[tokio::test]
async fn a_step_up_does_not_renew_the_session_lifetime() {
    let app = TestApp::spawn_with(|s| {
        s.session_lifetime_secs = 8 * 3600;
        s.session_idle_timeout_secs = 1800;
    })
    .await;
    app.login_as("alice").await;
    // Active all day (a request every 20 min), stepping up near the end.
    for _ in 0..23 {
        app.advance_clock(1200);
        assert_eq!(app.get("/customers").await.status, StatusCode::OK);
    }
    // The provider's clock moves too, so its token is fresh on the intranet's clock.
    app.idp
        .set_clock_offset(app.settings.intranet_clock.offset())
        .await;
    let salary = app.step_up_with_totp("alice", "/employees/1/salary").await;
    assert_eq!(salary.status, StatusCode::OK, "{}", salary.body);
    app.advance_clock(1201);
    // 8 h 1 s after the first sign-in, 20 min after the step-up: over.
    let over = app.get("/customers").await;
    assert_eq!(over.status, StatusCode::FOUND);
    assert_eq!(over.location().unwrap().path(), "/login");
}

#[tokio::test]
async fn session_settings_out_of_bounds_stop_the_start() {
    let (s, _dir) = TestApp::settings(|s| {
        s.session_lifetime_secs = 60;
        s.session_idle_timeout_secs = 120;
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = s.intranet_config(
        fabrikam::config::url_for(listener.local_addr().unwrap()),
        "http://127.0.0.1:9".into(),
    );
    let error = fabrikam::intranet::build(config, listener)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("SESSION_IDLE_TIMEOUT_SECS"), "{error}");
    let _: Value = json!(null);
}

#[tokio::test]
async fn another_intranet_process_learns_of_a_sign_out_within_seconds() {
    // Two processes with the cookie store, one database, one SESSION_SECRET.
    let app = TestApp::spawn_with(|s| s.session_secret = Some("3c".repeat(64).into())).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let second = fabrikam::config::url_for(listener.local_addr().unwrap());
    let config = app.settings.intranet_config(second.clone(), app.issuer.clone());
    tokio::spawn(fabrikam::intranet::build(config, listener).await.unwrap());
    app.login_as("alice").await;
    let page = app.get(second.join("/customers").unwrap().as_str()).await;
    assert_eq!(page.status, StatusCode::OK, "the second process reads the cookie");
    let copied = app.cookie("fabrikam_session").unwrap();
    app.follow(app.sign_out_from(&page).await).await;
    // The first process ended the login; the second reads ended logins every 2 s.
    let replay = || {
        app.plain
            .get(second.join("/customers").unwrap())
            .header("cookie", format!("fabrikam_session={copied}"))
            .send()
    };
    let mut waited = Duration::ZERO;
    while replay().await.unwrap().status() == StatusCode::OK {
        assert!(
            waited < Duration::from_secs(5),
            "still signed in at the second process"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        waited += Duration::from_millis(250);
    }
    assert_eq!(replay().await.unwrap().status(), StatusCode::FOUND);
}
