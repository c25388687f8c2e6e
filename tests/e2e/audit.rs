//! The audit trail, asserted on rows (not logs), its page (behind its own requirement), and the
//! step-up interstitial.

use reqwest::StatusCode;
use serde_json::json;

use crate::app::TestApp;
use crate::authenticator::SoftPasskey;

const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

#[tokio::test]
async fn a_step_up_and_a_salary_view_leave_rows_with_the_acr_and_amr() {
    let app = TestApp::spawn().await;
    let page = app.login_with_mfa("alice", "/employees/1/salary").await;
    assert_eq!(page.status, StatusCode::OK);

    let logins = app.audit_rows("login").await;
    assert_eq!(logins.len(), 2);
    assert!(
        logins[0].detail.contains("acr=urn:fabrikam:acr:password") && logins[0].detail.contains("amr=pwd")
    );
    assert!(logins[1].detail.contains(MFA) && logins[1].detail.contains("amr=pwd otp mfa"));
    let requested = app.audit_rows("step_up_requested").await;
    assert_eq!(requested.len(), 1);
    assert!(requested[0].detail.contains(MFA) && requested[0].detail.contains("max_age = 600"));
    assert!(requested[0].detail.contains("/employees/1/salary"));
    assert_eq!(app.audit_rows("step_up_succeeded").await.len(), 1);
    let views = app.audit_rows("salary_viewed").await;
    assert_eq!(views.len(), 1);
    let view = &views[0];
    assert_eq!(view.subject.as_deref(), Some("alice"));
    assert!(view.detail.contains("employee 1") && view.detail.contains("amr=pwd otp mfa"));
    assert_eq!(view.client_addr.as_deref(), Some("127.0.0.1"));
    assert!(view.request_id.as_deref().is_some_and(|id| !id.is_empty()));
    assert!(view.at > 0);

    // Never a token or code in the trail.
    let (all, _) = app.db.audit(&Default::default(), 0, 1000).await.unwrap();
    for row in all {
        assert!(!row.detail.contains("eyJ"), "no JWT in {row:?}");
    }
}

#[tokio::test]
async fn refusals_failures_and_logouts_are_recorded() {
    let app = TestApp::spawn().await;
    app.login_as("bob").await;
    assert_eq!(app.get("/employees/1/salary").await.status, StatusCode::FORBIDDEN);
    let forbidden = app.audit_rows("forbidden").await;
    assert_eq!(forbidden.len(), 1);
    assert_eq!(forbidden[0].subject.as_deref(), Some("bob"));
    assert!(forbidden[0].detail.contains("hr"));

    let alice = TestApp::spawn().await;
    let home = alice.login_as("alice").await;
    alice.idp.set_next_token(json!({"ignore_acr_values": true})).await;
    let page = alice.open("/employees/1/salary").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body.contains("did not include a second factor"),
        "the refusal explains the failure:\n{}",
        page.body
    );
    let failed = alice.audit_rows("step_up_failed").await;
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].detail.contains("acr=urn:fabrikam:acr:password"),
        "{}",
        failed[0].detail
    );
    assert!(alice.audit_rows("salary_viewed").await.is_empty());

    // The step-up's login renewed the session and its CSRF token: the old one is dead.
    let stale = alice
        .post_form(
            alice.url("/logout"),
            &[("csrf_token".into(), TestApp::csrf_of(&home))],
        )
        .await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    let out = alice
        .post_form(
            alice.url("/logout"),
            &[("csrf_token".into(), TestApp::csrf_of(&page))],
        )
        .await;
    let back = alice.follow(out).await;
    assert!(
        back.body.contains("You have signed out"),
        "a flash after logout:\n{}",
        back.body
    );
    assert_eq!(alice.audit_rows("logout").await.len(), 1);
}

#[tokio::test]
async fn no_audit_row_no_salary() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    let mfa = app.open("/employees/1/salary").await;
    // Make every audit write fail from now on.
    app.db
        .execute_for_tests(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'read-only'); END",
        )
        .await
        .unwrap();
    let page = app.submit_totp(&mfa, "alice").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{}", page.body);
    assert!(page.body.contains("audit trail is unavailable"));
    assert!(!page.body.contains("104,000"), "the salary is not shown");
    assert_eq!(
        app.get("/customers").await.status,
        StatusCode::OK,
        "other pages still work"
    );
}

#[tokio::test]
async fn the_audit_page_needs_hr_and_a_fresh_passkey_and_filters() {
    let app = TestApp::spawn_localhost_with(|_| {}).await;
    app.login_as("alice").await;
    let first = app.get("/audit").await;
    assert_eq!(first.status, StatusCode::FOUND);
    assert_eq!(
        first.location_param("acr_values").as_deref(),
        Some("phr"),
        "the audit page steps up to the phishing-resistant class"
    );
    let mut key = SoftPasskey::new(21, &app.issuer);
    let page = app.step_up_with_passkey("alice", &mut key, "/audit").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.url.path(), "/audit");
    app.get("/employees/2/salary").await;

    let all = app.get("/audit").await;
    assert!(all.body.contains("step_up_succeeded") && all.body.contains("salary_viewed"));
    let views = app.get("/audit?event=salary_viewed&user=alice").await;
    assert!(views.body.contains("employee 2"));
    assert!(
        !views.body.contains("event event-step_up_requested"),
        "filtered by event:\n{}",
        views.body
    );
    let nobody = app.get("/audit?user=nobody").await;
    assert!(nobody.body.contains("No events match"));
    assert_eq!(
        app.get("/audit?event=bogus").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.get("/audit?page=-5").await.status, StatusCode::OK);

    let bob = TestApp::spawn().await;
    bob.login_as("bob").await;
    assert_eq!(bob.get("/audit").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_audit_page_paginates_newest_first() {
    let app = TestApp::spawn_localhost_with(|_| {}).await;
    app.login_as("alice").await;
    let mut key = SoftPasskey::new(22, &app.issuer);
    app.step_up_with_passkey("alice", &mut key, "/audit").await;
    for id in 1..=30 {
        assert_eq!(
            app.get(&format!("/employees/{}/salary", id % 15 + 1))
                .await
                .status,
            StatusCode::OK
        );
    }
    let first = app.get("/audit?event=salary_viewed").await;
    assert!(first.body.contains("Page 1 of 2"), "{}", first.body);
    assert!(first.body.contains("rel=\"next\""));
    let last_id = 1; // the 30th view: 30 % 15 + 1
    let newest = first.body.find(&format!("employee {last_id} (")).unwrap();
    let older = first.body.find("employee 2 (").unwrap();
    assert!(newest < older, "newest first");
    let second = app.get("/audit?event=salary_viewed&page=2").await;
    assert!(second.body.contains("Page 2 of 2") && second.body.contains("rel=\"prev\""));
}

#[tokio::test]
async fn the_interstitial_explains_and_its_button_starts_the_step_up() {
    let app = TestApp::spawn_with(|s| s.stepup_interstitial = true).await;
    app.login_as("alice").await;
    let page = app.get("/employees/1/salary").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("This page shows salary data. Fabrikam ID will ask for your authenticator code.")
    );
    assert!(!page.body.contains("104,000"));
    let href = crate::html::link_starting_with(&page.body, "/login?").expect("a Continue link");
    let go = app.get(&href).await;
    assert_eq!(go.status, StatusCode::FOUND);
    assert!(
        go.location()
            .unwrap()
            .as_str()
            .starts_with(&format!("{}/authorize", app.issuer))
    );
    assert_eq!(go.location_param("acr_values").as_deref(), Some(MFA));
    assert_eq!(go.location_param("max_age").as_deref(), Some("600"));
    let salary = app.submit_totp(&app.follow(go).await, "alice").await;
    assert_eq!(salary.url.path(), "/employees/1/salary");
    assert!(salary.body.contains("104,000 EUR"));
    // The audit trail's interstitial announces a passkey, not a code.
    let audit = app.get("/audit").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(
        audit
            .body
            .contains("This page shows the audit trail. Fabrikam ID will ask for your passkey."),
        "{}",
        audit.body
    );
    assert!(!audit.body.contains("authenticator code"), "{}", audit.body);
}
