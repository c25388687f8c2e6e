//! Step-up: a weak or stale login is sent back to the provider with `acr_values` and
//! `max_age`; the answer is checked; a missing role or a weak answer is refused without a loop;
//! each registered requirement steps up on its own.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{MFA, now};
use crate::app::TestApp;
use crate::authenticator::SoftPasskey;
use crate::support::{totp_code, totp_code_for_secret};

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
    for path in [
        "/employees/1/salary",
        "/audit",
        "/login?step_up=salary&return_to=/audit",
    ] {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            page.body.contains("“hr”"),
            "{path}: the page names the missing role:\n{}",
            page.body
        );
        assert!(
            page.body.contains("Bob Brennan"),
            "{path}: bob is still signed in"
        );
    }
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
    let enroll = app.open("/employees/3/salary").await;
    // The key is shown four characters a group; its text is the key itself.
    let secret = crate::html::element_text(&enroll.body, "totp-secret")
        .unwrap_or_else(|| panic!("the secret is on the page:\n{}", enroll.body));
    assert!(
        secret.len() >= 26 && secret.chars().all(|c| c.is_ascii_alphanumeric()),
        "{secret}"
    );
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
    let logout = app.sign_out_from(&home).await;
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
    let mfa = app.open("/employees/1/salary").await;
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
    // The step-up's token says the second factor happened 610 s ago: within 600 s + 30 s skew
    // (20 s to spare for a slow machine; the intranet's clock, not a sleep, ages it below).
    app.idp
        .set_next_token(json!({"id_token_claims": {"auth_time": now() - 610}}))
        .await;
    let page = app.step_up_with_totp("alice", "/employees/1/salary").await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "fresh enough on arrival:\n{}",
        page.body
    );
    app.advance_clock(21);
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
    let page = app.open("/employees/1/salary").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert_eq!(page.url.path(), "/employees/1/salary");
    assert!(page.body.contains("not strong enough"));
    assert!(
        page.body.contains("urn:fabrikam:acr:password"),
        "it says what came back"
    );
    assert!(page.body.contains(MFA), "it says what was asked");
    assert!(
        page.body.contains(
            "We asked Fabrikam ID for a fresh multi-factor sign-in, but the sign-in it returned did not \
                 include a second factor"
        ),
        "it names the provider"
    );
    assert_eq!(
        app.idp.authorize_requests().await.len(),
        before + 1,
        "exactly one step-up, no loop"
    );
    // And it stays a 403 (no automatic retry) until the user chooses to try again.
    assert_eq!(app.get("/employees/1/salary").await.status, StatusCode::FORBIDDEN);
    let try_again = app
        .get("/login?return_to=/employees/1/salary&step_up=salary")
        .await;
    assert_eq!(try_again.status, StatusCode::FOUND, "Try again starts a step-up");
    assert_eq!(try_again.location_param("acr_values").as_deref(), Some(MFA));
}

#[tokio::test]
async fn a_stale_answer_to_a_step_up_is_refused_not_looped() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    app.idp
        .set_next_token(json!({"id_token_claims": {"auth_time": now() - 3600}}))
        .await;
    let page = app.step_up_with_totp("alice", "/employees/1/salary").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("older than this page allows"));
}

#[tokio::test]
async fn an_unmet_essential_acr_ends_in_a_clear_refusal() {
    let app = TestApp::spawn_with(|s| s.stepup_acr_values = Some("urn:example:acr:unknown".into())).await;
    app.login_as("alice").await;
    let page = app.open("/employees/1/salary").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("unmet_authentication_requirements"));
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
    let page = app.open("/employees/1/salary").await;
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
async fn the_audit_trail_steps_a_totp_session_up_again_to_a_passkey() {
    let app = TestApp::spawn_localhost_with(|_| {}).await;
    app.login_as("alice").await;
    // A salary step-up whose second factor happened 400 s ago: fresh for salaries (600 s),
    // too old for the audit trail (300 s).
    app.idp
        .set_next_token(json!({"id_token_claims": {"auth_time": now() - 400}}))
        .await;
    let salary = app.step_up_with_totp("alice", "/employees/1/salary").await;
    assert_eq!(salary.status, StatusCode::OK, "{}", salary.body);
    let audit = app.get("/audit").await;
    assert_eq!(
        audit.status,
        StatusCode::FOUND,
        "the audit trail steps up on its own, not a failure:\n{}",
        audit.body
    );
    assert_eq!(audit.location_param("max_age").as_deref(), Some("300"));
    assert_eq!(audit.location_param("acr_values").as_deref(), Some("phr"));
    let mut key = SoftPasskey::new(23, &app.issuer);
    let page = app.step_up_with_passkey("alice", &mut key, "/audit").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.url.path(), "/audit");
    let me = app.get("/me").await;
    assert!(me.body.contains("phishing-resistant"), "{}", me.body);
    assert_eq!(
        app.get("/employees/2/salary").await.status,
        StatusCode::OK,
        "and salaries still open"
    );
}

#[tokio::test]
async fn a_weak_answer_to_the_audit_step_up_fails_only_the_audit_trail() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    app.idp.set_next_token(json!({"ignore_acr_values": true})).await;
    let page = app.open("/audit").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("max_age = 300 s"), "it says what was asked");
    assert!(
        page.body.contains("phishing-resistant") && page.body.contains("urn:fabrikam:acr:password"),
        "it says what was asked and what the provider delivered:\n{}",
        page.body
    );
    assert!(
        page.body.contains("step_up=audit"),
        "Try again steps up to the audit trail's requirement"
    );
    // The same weak token did not answer a salary step-up: salaries step up normally.
    let salary = app.get("/employees/1/salary").await;
    assert_eq!(salary.status, StatusCode::FOUND, "{}", salary.body);
    assert_eq!(salary.location_param("max_age").as_deref(), Some("600"));
}

#[tokio::test]
async fn a_totp_answer_to_the_audit_step_up_is_refused_with_the_explanation() {
    let app = TestApp::spawn_localhost_with(|_| {}).await;
    app.login_as("alice").await;
    let salary = app.step_up_with_totp("alice", "/employees/1/salary").await;
    assert_eq!(salary.status, StatusCode::OK, "{}", salary.body);
    // A provider that ignores acr_values=phr and answers with the session it has: a code.
    app.idp.set_next_token(json!({"ignore_acr_values": true})).await;
    let page = app.open("/audit").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    for words in [
        "phishing-resistant sign-in (a passkey)",
        "not phishing-resistant",
        MFA,
        "Try again",
    ] {
        assert!(page.body.contains(words), "{words}:\n{}", page.body);
    }
    assert_eq!(
        app.get("/employees/2/salary").await.status,
        StatusCode::OK,
        "the multi-factor session still opens salaries"
    );
}

#[tokio::test]
async fn at_127_0_0_1_the_provider_cannot_meet_phr_and_the_page_says_so() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    let page = app.open("/audit").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(
        page.body.contains("unmet_authentication_requirements"),
        "{}",
        page.body
    );
    assert!(page.body.contains("passkey"), "{}", page.body);
    // Salaries work as before at 127.0.0.1.
    let salary = app.step_up_with_totp("alice", "/employees/1/salary").await;
    assert_eq!(salary.status, StatusCode::OK, "{}", salary.body);
}

#[tokio::test]
async fn signed_out_try_again_asks_for_the_requirement_in_one_sign_in() {
    // The session ended while the failure page or interstitial was open: Try again signs in
    // and steps up in one trip to the provider.
    let app = TestApp::spawn().await;
    let start = app
        .get("/login?return_to=/employees/1/salary&step_up=salary")
        .await;
    assert_eq!(start.status, StatusCode::FOUND);
    assert_eq!(start.location_param("acr_values").as_deref(), Some(MFA));
    assert_eq!(start.location_param("max_age").as_deref(), Some("600"));
    let mfa = app.password(&app.follow(start).await, "alice").await;
    let page = app.submit_totp(&mfa, "alice").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.url.path(), "/employees/1/salary");
    assert!(page.body.contains("Salary history"));
    assert_eq!(app.audit_rows("step_up_succeeded").await.len(), 1);
}

#[tokio::test]
async fn login_steps_up_to_any_registered_requirement_by_name() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    let audit = app.get("/login?return_to=/audit&step_up=audit").await;
    assert_eq!(audit.status, StatusCode::FOUND);
    assert_eq!(audit.location_param("max_age").as_deref(), Some("300"));
    let salary = app.get("/login?return_to=/me&step_up=salary").await;
    assert_eq!(salary.location_param("max_age").as_deref(), Some("600"));
    let unknown = app.get("/login?return_to=/me&step_up=payroll").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.body.contains("Unknown step-up requirement"));
    // Already satisfied: straight back to where the user was going.
    app.step_up_with_totp("alice", "/employees/1/salary").await;
    let done = app.get("/login?return_to=/me&step_up=salary").await;
    assert_eq!(done.status, StatusCode::FOUND);
    assert_eq!(done.location().unwrap().path(), "/me");
}
