//! `fabrikam::idp::TestProvider`, the Rust API for test suites: started on a free port from a
//! configuration, its issuer, its typed control operations; stopped when dropped.

use std::time::Duration;

use fabrikam::idp::control::NextToken;
use fabrikam::idp::directory::UserPatch;
use fabrikam::idp::{ClientRegistration, SigningAlg, TestProvider, UserSpec};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn a_test_provider_starts_from_a_configuration_and_its_control_operations_work() {
    let provider = TestProvider::builder()
        .client(ClientRegistration::confidential(
            "suite",
            "suite-secret",
            ["http://127.0.0.1:19000/cb"],
        ))
        .user(UserSpec::new("dave", "dave-password").with_roles(["payroll"]))
        .start()
        .await
        .unwrap();
    assert!(provider.issuer().starts_with("http://127.0.0.1:"));
    assert!(!provider.issuer().ends_with('/'));
    let doc: Value = reqwest::get(provider.discovery_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], provider.issuer());
    assert_eq!(
        provider.config().clients.len(),
        1,
        "the client given replaces the demo's"
    );

    // Users: typed, and what a sign-in then yields.
    let users = provider.users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].roles, ["payroll"]);
    let frank = provider
        .put_user(&UserSpec::new("frank", "frank-password").with_totp_secret(BOB_TOTP))
        .await
        .unwrap();
    assert_eq!(frank.totp_secret.as_deref(), Some(BOB_TOTP));
    let patch = UserPatch {
        roles: Some(vec!["hr".into()]),
        ..UserPatch::default()
    };
    let changed = provider.patch_user("frank", &patch).await.unwrap().unwrap();
    assert_eq!(changed.roles, ["hr"]);
    assert!(provider.patch_user("nobody", &patch).await.unwrap().is_none());
    assert!(provider.remove_user("frank").await.unwrap());
    assert!(!provider.remove_user("frank").await.unwrap());
    assert!(provider.user("frank").await.unwrap().is_none());
    let bad = provider
        .put_user(&UserSpec::new("x", "p").with_email("nope"))
        .await;
    assert!(format!("{:#}", bad.unwrap_err()).contains("email"));

    // Keys.
    let before = provider.keys().await.unwrap();
    let after = provider
        .rotate_keys(Some(SigningAlg::ES256), Some(0))
        .await
        .unwrap();
    assert_ne!(
        before.current[&SigningAlg::ES256],
        after.current[&SigningAlg::ES256]
    );
    assert_eq!(
        before.current[&SigningAlg::RS256],
        after.current[&SigningAlg::RS256]
    );

    // Deviations, the clock and the request log, through a real sign-in.
    let idp = TestIdp::new(provider.config().clone());
    provider
        .set_next_token(&NextToken {
            client_id: Some("suite".into()),
            id_token_claims: json!({ "aud": "other" }).as_object().unwrap().clone(),
            ..NextToken::default()
        })
        .await
        .unwrap();
    provider.set_clock_offset(-3600).await.unwrap();
    let (_, tokens) = idp.login(&idp.browser(), "dave", &[]).await;
    assert_eq!(tokens.id_claims["aud"], "other");
    let iat = tokens.id_claims["iat"].as_i64().unwrap();
    assert!(iat < chrono::Utc::now().timestamp() - 3500, "the shifted clock");
    provider.reset().await.unwrap();
    let requests = provider.authorize_requests(Some("suite")).await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["client_id"], "suite");
    provider
        .set_next_token(&NextToken {
            signature: Some(fabrikam::idp::keys::SignatureMode::None),
            ..NextToken::default()
        })
        .await
        .unwrap();
    provider.clear_next_token(None).await.unwrap();
    let (_, tokens) = idp.login(&idp.browser(), "dave", &[]).await;
    assert_eq!(jwt_header(&tokens.id_token)["alg"], "RS256", "cleared");

    // Dropped: the server stops.
    let discovery = provider.discovery_url();
    drop(idp);
    drop(provider);
    let mut stopped = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if reqwest::get(discovery.clone()).await.is_err() {
            stopped = true;
            break;
        }
    }
    assert!(stopped, "the provider stops when dropped");
}

#[tokio::test]
async fn without_test_control_the_control_operations_fail_clearly() {
    let provider = TestProvider::builder()
        .without_test_control()
        .start()
        .await
        .unwrap();
    let error = provider.set_clock_offset(5).await.unwrap_err();
    assert!(format!("{error:#}").contains("404"), "{error:#}");
    assert!(provider.keys().await.is_err());
}

/// Whether `token`'s signature verifies with the key `idp`'s JWKS publishes under its `kid`
/// (its claims are not checked: only whose key signed it).
async fn signed_by_a_key_of(idp: &TestIdp, token: &str) -> bool {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = idp
        .api
        .get(idp.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let Some(jwk) = header.kid.as_deref().and_then(|kid| jwks.find(kid)) else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok()
}

#[tokio::test]
async fn providers_of_one_process_share_the_rsa_key_unless_one_asks_for_its_own() {
    let first = TestIdp::start(TestProvider::builder()).await;
    let second = TestIdp::start(TestProvider::builder()).await;
    let own = TestIdp::start(TestProvider::builder().own_rsa_key()).await;
    let rs256 = |status: fabrikam::idp::keys::KeyStatus| status.current[&SigningAlg::RS256].clone();
    let es256 = |status: fabrikam::idp::keys::KeyStatus| status.current[&SigningAlg::ES256].clone();
    let (first_keys, second_keys, own_keys) = (
        first.provider.keys().await.unwrap(),
        second.provider.keys().await.unwrap(),
        own.provider.keys().await.unwrap(),
    );
    // What the TestProvider documentation warns of: one RS256 key and kid for both...
    assert_eq!(rs256(first_keys.clone()), rs256(second_keys.clone()));
    let (_, tokens) = first.login(&first.browser(), "alice", &[]).await;
    assert_eq!(jwt_header(&tokens.id_token)["alg"], "RS256");
    assert!(signed_by_a_key_of(&first, &tokens.id_token).await);
    assert!(
        signed_by_a_key_of(&second, &tokens.id_token).await,
        "another provider's JWKS verifies it: only iss tells them apart"
    );
    // ...but not for the provider with its own key, either way.
    assert_ne!(rs256(own_keys.clone()), rs256(first_keys.clone()));
    assert!(!signed_by_a_key_of(&own, &tokens.id_token).await);
    let (flow, mine) = own.login(&own.browser(), "alice", &[]).await;
    own.verify_id_token(&mine.id_token, &flow.nonce).await.unwrap();
    assert!(signed_by_a_key_of(&own, &mine.id_token).await);
    assert!(!signed_by_a_key_of(&first, &mine.id_token).await);
    // P-256 keys are every provider's own.
    assert_ne!(es256(first_keys), es256(second_keys));
}
