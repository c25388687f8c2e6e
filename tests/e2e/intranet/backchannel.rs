//! `POST /backchannel-logout` (OpenID Connect Back-Channel Logout 1.0): a logout token signed
//! with Fabrikam ID's key ends the intranet sessions of its `sid` (or all of its `sub`'s);
//! any invalid token gets `400` with a JSON error and changes nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::now;
use crate::app::TestApp;
use crate::stub_provider::TestKey;

/// Signs in `user` in `browser` with the provider's session id `sid` in the ID token.
async fn sign_in(browser: &TestApp, user: &str, sid: &str) {
    browser
        .idp
        .set_next_token(json!({"id_token_claims": {"sid": sid}}))
        .await;
    browser.login_as(user).await;
}

async fn signed_in(browser: &TestApp) -> bool {
    browser.get("/customers").await.status == StatusCode::OK
}

#[tokio::test]
async fn a_logout_token_for_a_sid_ends_that_session_only() {
    let (app, key) = TestApp::spawn_with_known_key(|_| {}).await;
    let (second, bob) = (app.another_browser(), app.another_browser());
    sign_in(&app, "alice", "sid-a").await;
    sign_in(&second, "alice", "sid-b").await;
    sign_in(&bob, "bob", "sid-c").await;
    let token = key.sign(
        Some("logout+jwt"),
        &app.logout_claims(json!({"sid": "sid-a", "sub": "alice"})),
    );
    let (status, headers, _) = app.post_logout_token(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-store");
    assert!(!signed_in(&app).await, "the session of sid-a ended");
    assert!(
        signed_in(&second).await && signed_in(&bob).await,
        "no other session"
    );
    let rows = app.audit_rows("logout_by_provider").await;
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].detail.contains("sid-a") && rows[0].detail.contains("1 session"),
        "{}",
        rows[0].detail
    );
    // Without a typ (it is only recommended) and with only a sid: also accepted.
    let token = key.sign(None, &app.logout_claims(json!({"sid": "sid-c"})));
    assert_eq!(app.post_logout_token(&token).await.0, StatusCode::OK);
    assert!(!signed_in(&bob).await);
}

#[tokio::test]
async fn a_logout_token_with_only_a_sub_ends_all_of_that_users_sessions() {
    let (app, key) = TestApp::spawn_with_known_key(|_| {}).await;
    let (second, bob) = (app.another_browser(), app.another_browser());
    sign_in(&app, "alice", "sid-a").await;
    sign_in(&second, "alice", "sid-b").await;
    sign_in(&bob, "bob", "sid-c").await;
    let token = key.sign(Some("logout+jwt"), &app.logout_claims(json!({"sub": "alice"})));
    assert_eq!(app.post_logout_token(&token).await.0, StatusCode::OK);
    assert!(
        !signed_in(&app).await && !signed_in(&second).await,
        "both of alice's sessions"
    );
    assert!(signed_in(&bob).await, "not bob's");
    // Signing in again works: the provider ended sessions, not the account.
    app.forget_provider_session();
    app.login_as("alice").await;
    assert!(signed_in(&app).await);
}

/// An unsecured JWS (RFC 7515 Appendix A.5) of `claims`.
fn unsigned(claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!(
        "{}.{}.",
        part(&json!({"alg": "none", "typ": "logout+jwt"})),
        part(claims)
    )
}

#[tokio::test]
async fn invalid_logout_tokens_get_400_and_change_nothing() {
    let (app, key) = TestApp::spawn_with_known_key(|_| {}).await;
    sign_in(&app, "alice", "sid-a").await;
    let target = json!({"sid": "sid-a", "sub": "alice"});
    let with = |extra: Value| {
        let mut c = app.logout_claims(target.clone());
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let sign = |c: &Value| key.sign(Some("logout+jwt"), c);
    let forger = TestKey::generate(&key.kid);
    let hmac = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("logout+jwt".into());
        let secret = jsonwebtoken::EncodingKey::from_secret(b"fabrikam-demo-secret").unwrap();
        jsonwebtoken::encode(&header, &with(json!({})), &secret).unwrap()
    };
    let (_, id_tokens) = app.idp.login(&app.idp.browser(), "alice", &[]).await;
    let cases = [
        (
            forger.sign(Some("logout+jwt"), &with(json!({}))),
            "signed by another key under the kid",
        ),
        (
            key.sign_as("no-such-kid", Some("logout+jwt"), &with(json!({}))),
            "unknown kid",
        ),
        (unsigned(&with(json!({}))), "alg none"),
        (hmac, "HS256 with the client secret"),
        (key.sign(Some("JWT"), &with(json!({}))), "typ JWT"),
        (
            sign(&with(json!({"iss": "http://evil.example"}))),
            "another issuer",
        ),
        (sign(&with(json!({"aud": "another-client"}))), "another audience"),
        (sign(&with(json!({"aud": null}))), "no audience"),
        (sign(&with(json!({"iat": now() + 3600}))), "issued in the future"),
        (
            sign(&with(json!({"iat": now() - 3600, "exp": null}))),
            "issued an hour ago",
        ),
        (sign(&with(json!({"exp": now() - 300}))), "expired"),
        (sign(&with(json!({"iat": null}))), "no iat"),
        (sign(&with(json!({"jti": null}))), "no jti"),
        (sign(&with(json!({"events": null}))), "no events"),
        (sign(&with(json!({"events": {"urn:other": {}}}))), "another event"),
        (sign(&with(json!({"nonce": "n-0S6_WzA2Mj"}))), "a nonce"),
        (
            sign(&with(json!({"sid": null, "sub": null}))),
            "neither sid nor sub",
        ),
        (id_tokens.id_token.clone(), "an ID token"),
        ("not.a.jwt".to_owned(), "garbage"),
    ];
    for (token, what) in &cases {
        let (status, headers, body) = app.post_logout_token(token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(headers["cache-control"], "no-store", "{what}");
        assert!(body["error"].is_string(), "{what}: {body}");
        assert!(signed_in(&app).await, "{what} changed nothing");
    }
    // Not a form, no token, two tokens, GET.
    let json_body = app
        .plain
        .post(app.url("/backchannel-logout"))
        .json(&json!({"logout_token": sign(&with(json!({})))}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::BAD_REQUEST);
    let two = app
        .plain
        .post(app.url("/backchannel-logout"))
        .form(&[("logout_token", "a"), ("logout_token", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.post_logout_token("").await.0, StatusCode::BAD_REQUEST);
    let get = app
        .plain
        .get(app.url("/backchannel-logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(signed_in(&app).await);
    assert!(app.audit_rows("logout_by_provider").await.is_empty());

    // A valid token works once; replayed, it is refused.
    let other = sign(&app.logout_claims(json!({"sid": "sid-nobody"})));
    assert_eq!(app.post_logout_token(&other).await.0, StatusCode::OK);
    let (status, _, body) = app.post_logout_token(&other).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "replayed: {body}");
    assert!(signed_in(&app).await);
}
