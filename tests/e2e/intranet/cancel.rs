//! Cancelling at Fabrikam ID: the intranet gets `error=access_denied` and shows a calm page
//! with a way to try again; nothing about the session changes, and the trail says so.

use reqwest::StatusCode;

use crate::app::TestApp;
use crate::support::totp_code;

#[tokio::test]
async fn a_cancelled_step_up_shows_a_calm_page_keeps_the_session_and_can_be_tried_again() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    let mfa = app.open("/employees/1/salary").await;
    assert!(mfa.has_form_field("code"), "{}", mfa.body);
    assert!(mfa.body.contains("Fabrikam intranet"), "the application by name");
    let page = app.press(&mfa, "/cancel").await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "a calm page, not an error: {}",
        page.body
    );
    assert_eq!(page.url.path(), "/callback");
    assert!(
        page.body.contains("You cancelled the extra check"),
        "{}",
        page.body
    );
    assert!(page.body.contains("the salary stays hidden"), "{}", page.body);
    assert!(!page.body.contains("Error 4"), "no alarm: {}", page.body);
    assert!(!page.body.contains("104,000"), "no salary");
    // Still signed in, with the password only.
    let me = app.get("/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert!(
        me.body.contains("<code>urn:fabrikam:acr:password</code>"),
        "{}",
        me.body
    );
    let cancelled = app.audit_rows("step_up_cancelled").await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].subject.as_deref(), Some("alice"));
    assert!(app.audit_rows("step_up_failed").await.is_empty());

    // Try again: the step-up starts over and succeeds.
    let retry = crate::html::attrs(&page.body, "a.button", "href")
        .into_iter()
        .find(|h| h.contains("step_up=salary"))
        .expect("a Try again link");
    let mfa = app.open(&retry).await;
    let salary = app.submit_totp_code(&mfa, &totp_code("alice", 0)).await;
    assert_eq!(salary.status, StatusCode::OK, "{}", salary.body);
    assert!(salary.body.contains("Salary history"));
}

#[tokio::test]
async fn a_cancelled_sign_in_shows_a_calm_page_and_signs_nobody_in() {
    let app = TestApp::spawn().await;
    let login = app.open("/customers").await;
    assert!(login.has_form_field("password"), "{}", login.body);
    let page = app.press(&login, "/cancel").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("You cancelled signing in"), "{}", page.body);
    assert!(
        page.body.contains("return_to=%2Fcustomers"),
        "Sign in goes back where it was going"
    );
    assert_eq!(
        app.get("/customers").await.status,
        StatusCode::FOUND,
        "still anonymous"
    );
}

#[tokio::test]
async fn a_forged_access_denied_is_refused_like_any_answer_with_the_wrong_state() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    let mfa = app.open("/employees/1/salary").await;
    assert!(mfa.has_form_field("code"));
    let forged = app.get("/callback?error=access_denied&state=not-the-state").await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{}", forged.body);
    assert!(!forged.body.contains("You cancelled"));
}
