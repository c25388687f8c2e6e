//! `GET /api/employees/{id}/salary`: RFC 9068 access tokens, the salary requirement through
//! the same extractor, and RFC 9470 challenges.

use actix_web_stepup::StepUpRequest;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{MFA, now};
use crate::app::TestApp;

const SALARY: &str = "/api/employees/1/salary";

#[tokio::test]
async fn the_api_challenges_weak_tokens_per_rfc_9470_and_serves_strong_ones() {
    let app = TestApp::spawn().await;

    let none = app.call_api(SALARY, None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.challenge.as_deref(), Some("Bearer"), "RFC 6750 §3.1");

    let garbage = app.call_api(SALARY, Some("not.a.jwt")).await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert!(garbage.challenge.unwrap().contains("invalid_token"));

    let weak = app.access_token("alice", false).await;
    let res = app.call_api(SALARY, Some(&weak)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let challenge = res.challenge.expect("a challenge");
    assert_eq!(
        challenge,
        format!(
            r#"Bearer error="insufficient_user_authentication", error_description="a multi-factor authentication is required", acr_values="{MFA}", max_age=600"#
        ),
        "RFC 9470 §3, spelled as its examples are"
    );
    let asked = StepUpRequest::from_www_authenticate(&challenge)
        .unwrap()
        .expect("an RFC 9470 challenge");
    assert_eq!(
        (asked.acr_values, asked.max_age),
        (vec![MFA.to_owned()], Some(600))
    );
    assert_eq!(res.body["error"], "insufficient_user_authentication");

    let strong = app.access_token("alice", true).await;
    let res = app.call_api(SALARY, Some(&strong)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["employee"]["id"], 1);
    assert_eq!(res.body["salary_history"][2]["amount"], 104_000);
    let missing = app.call_api("/api/employees/99/salary", Some(&strong)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let bob = app.access_token("bob", true).await;
    let res = app.call_api(SALARY, Some(&bob)).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.challenge.as_deref(),
        Some(r#"Bearer error="insufficient_scope""#)
    );
    assert_eq!(app.audit_rows("salary_viewed_api").await.len(), 1);
}

#[tokio::test]
async fn the_api_refuses_tokens_that_are_not_its_access_tokens() {
    let app = TestApp::spawn().await;
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
        let token = app.access_token("alice", false).await;
        let res = app.call_api(SALARY, Some(&token)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{what}");
        let challenge = res.challenge.unwrap_or_default();
        assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
    }
}

#[tokio::test]
async fn the_api_refuses_a_jwt_that_is_not_typed_as_an_access_token() {
    let app = TestApp::spawn().await;
    for typ in [json!("JWT"), Value::Null] {
        app.idp.set_next_token(json!({"access_token_typ": typ})).await;
        let token = app.access_token("alice", false).await;
        let res = app.call_api(SALARY, Some(&token)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "typ {typ}");
        assert!(res.challenge.unwrap_or_default().contains("invalid_token"));
    }
    // An ID token is a JWT from the same issuer and keys, but not an access token for this API.
    let (_, tokens) = app.idp.login(&app.idp.browser(), "alice", &[]).await;
    let res = app.call_api(SALARY, Some(&tokens.id_token)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_api_refuses_tokens_not_yet_valid_or_issued_in_the_future() {
    let app = TestApp::spawn().await;
    // RFC 7519 §4.1.5 (nbf), RFC 9068 §2.2 (iat required) and §4, with the one clock skew.
    for (claims, what) in [
        (json!({"nbf": now() + 3600}), "nbf an hour ahead"),
        (json!({"iat": now() + 86_400}), "iat a day ahead"),
        (json!({"iat": null}), "no iat"),
        (json!({"nbf": "soon"}), "nbf not a number"),
    ] {
        app.idp
            .set_next_token(json!({"access_token_claims": claims}))
            .await;
        // Password-only: validation fails before the policy is asked.
        let token = app.access_token("alice", false).await;
        let res = app.call_api(SALARY, Some(&token)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{what}: {:?}", res.body);
        assert!(
            res.challenge.unwrap_or_default().contains("invalid_token"),
            "{what}"
        );
    }
    // In the past, or ahead within the skew: valid (a weak token then meets the policy's
    // challenge, not invalid_token; a strong one gets the salary).
    app.idp
        .set_next_token(json!({"access_token_claims": {"iat": now() + 10}}))
        .await;
    let weak = app.access_token("alice", false).await;
    let res = app.call_api(SALARY, Some(&weak)).await;
    assert!(
        res.challenge
            .unwrap_or_default()
            .contains("insufficient_user_authentication")
    );
    app.idp
        .set_next_token(json!({"access_token_claims": {"nbf": now() - 60, "iat": now() - 60}}))
        .await;
    let strong = app.access_token("alice", true).await;
    let res = app.call_api(SALARY, Some(&strong)).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.body);
}

#[tokio::test]
async fn with_the_entra_profile_the_challenge_carries_the_authentication_context_as_claims() {
    let app = TestApp::spawn_with(|s| s.stepup_profile = fabrikam::config::StepUpProfile::Entra).await;
    let weak = app.access_token("alice", false).await;
    let res = app.call_api(SALARY, Some(&weak)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let challenge = res.challenge.expect("a challenge");
    // Base64 of {"access_token":{"acrs":{"essential":true,"value":"c1"}}}, as Microsoft's
    // claims challenges spell it.
    assert!(
        challenge.ends_with(
            r#"max_age=600, claims="eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19""#
        ),
        "{challenge}"
    );
    let asked = StepUpRequest::from_www_authenticate(&challenge)
        .unwrap()
        .expect("an RFC 9470 challenge");
    assert_eq!(
        (asked.auth_context.as_deref(), asked.acr_values.len()),
        (Some("c1"), 0)
    );
}
