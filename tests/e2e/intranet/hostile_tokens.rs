//! ID tokens that must be refused (OIDC Core §3.1.3.7): each deviation ends on an error page
//! and creates or upgrades no session.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::now;
use crate::app::TestApp;

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
async fn an_id_token_that_expired_within_the_clock_skew_is_accepted() {
    // OIDC Core §3.1.3.7 rule 9 with the intranet's one 30 s allowance for clock skew, as
    // access and logout tokens get.
    let app = TestApp::spawn().await;
    app.idp
        .set_next_token(json!({"id_token_claims": {"exp": now() - 10}}))
        .await;
    let page = app.login_to("alice", "/customers").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.url.path(), "/customers");
}

#[tokio::test]
async fn a_forged_step_up_token_does_not_upgrade_the_session() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    app.idp.set_next_token(json!({"signature": "wrong-key"})).await;
    let page = app.step_up_with_totp("alice", "/employees/1/salary").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    let me = app.get("/me").await;
    assert_eq!(me.status, StatusCode::OK, "the password session survives");
    assert!(
        me.body.contains("<code>urn:fabrikam:acr:password</code>"),
        "and was not upgraded:\n{}",
        me.body
    );
}

#[tokio::test]
async fn roles_and_extra_claims_come_from_the_validated_token() {
    // The roles claim is read through openidconnect's typed additional claims: a token that
    // carries `hr` as a space-separated string still counts, one without roles does not.
    let app = TestApp::spawn().await;
    app.idp
        .set_next_token(json!({"id_token_claims": {"roles": "hr auditors"}}))
        .await;
    app.login_as("alice").await;
    let me = app.get("/me").await;
    assert!(me.body.contains("<code>hr, auditors</code>"), "{}", me.body);
    let other = TestApp::spawn().await;
    other
        .idp
        .set_next_token(json!({"id_token_claims": {"roles": null}}))
        .await;
    other.login_as("alice").await;
    let page = other.get("/employees/1/salary").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "no roles claim: no hr");
}

#[tokio::test]
async fn an_id_token_macd_with_the_client_secret_is_refused_at_the_callback() {
    // The algorithm-confusion forgery: HS256 keyed with the intranet's own client secret, which
    // anyone holding that secret could have made. The intranet expects the provider's
    // asymmetric signature (it never accepts an HMAC algorithm), so no session.
    let app = TestApp::spawn().await;
    app.idp
        .set_next_token(json!({"signature": "hs256-client-secret"}))
        .await;
    let page = app.login_to("alice", "/customers").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("Sign-in failed"), "{}", page.body);
    assert!(page.body.contains("could not be verified"), "{}", page.body);
    assert_eq!(
        app.get("/customers").await.status,
        StatusCode::FOUND,
        "no session"
    );
    assert_eq!(app.get("/me").await.status, StatusCode::FOUND, "no session");
}
