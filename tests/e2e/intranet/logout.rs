//! `POST /logout`: CSRF-protected, ends the intranet's session and the provider's
//! (RP-Initiated Logout 1.0).

use reqwest::StatusCode;

use crate::app::TestApp;

#[tokio::test]
async fn logout_needs_the_csrf_token_and_ends_both_sessions() {
    let app = TestApp::spawn().await;
    let home = app.login_as("alice").await;

    let forged = app.post_form(app.url("/logout"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let wrong = app
        .post_form(app.url("/logout"), &[("csrf_token".into(), "x".repeat(43))])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(
        wrong.body.contains("This form has expired") && wrong.body.contains("Alice Ashford"),
        "an error page, still signed in:\n{}",
        wrong.body
    );
    assert_eq!(
        app.get("/customers").await.status,
        StatusCode::OK,
        "still logged in"
    );

    let out = app.sign_out_from(&home).await;
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
    let login = app.open("/login").await;
    assert!(
        login.has_form_field("password"),
        "provider session gone: the password is asked again"
    );
}

#[tokio::test]
async fn a_tab_opened_before_a_step_up_can_still_sign_out_after_confirming() {
    let app = TestApp::spawn().await;
    let old_tab = app.login_as("alice").await;
    // The step-up renews the session and its CSRF token: the old tab's form is stale.
    let salary = app.step_up_with_totp("alice", "/employees/1/salary").await;
    assert_ne!(TestApp::csrf_of(&old_tab), TestApp::csrf_of(&salary));
    let stale = app.sign_out_from(&old_tab).await;
    assert_eq!(
        stale.status,
        StatusCode::FORBIDDEN,
        "the stale form alone signs nobody out"
    );
    assert!(stale.body.contains("This form has expired"), "{}", stale.body);
    assert!(
        stale.body.contains("Do you want to sign out now?"),
        "{}",
        stale.body
    );
    assert_eq!(
        app.get("/customers").await.status,
        StatusCode::OK,
        "still signed in"
    );
    // The confirmation's own form carries the current token, and signs out.
    let confirm = crate::html::forms(&stale.body)
        .into_iter()
        .rfind(|f| f.action == "/logout")
        .expect("a sign-out form on the page");
    assert_eq!(
        confirm.value("csrf_token"),
        Some(TestApp::csrf_of(&salary).as_str())
    );
    let out = app.post_form(app.url("/logout"), &confirm.hidden()).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    app.follow(out).await;
    assert_eq!(
        app.get("/customers").await.status,
        StatusCode::FOUND,
        "signed out"
    );
    // Signed out, a stale form says so rather than offering to sign out again.
    let again = app.sign_out_from(&old_tab).await;
    assert!(again.body.contains("already signed out"), "{}", again.body);
}
