//! The test-control API over HTTP: recorded requests, deviations (for any client or one),
//! the clock, users changed at run time.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn test_control_records_the_authorization_requests() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    browser
        .authorize(&idp, &Flow::new(), &[("acr_values", ACR_MFA), ("max_age", "600")])
        .await;
    let requests = idp.authorize_requests().await;
    let last = requests.last().expect("one request recorded");
    assert_eq!(last["acr_values"], ACR_MFA);
    assert_eq!(last["max_age"], "600");
    assert_eq!(last["client_id"], CLIENT_ID);
}

#[tokio::test]
async fn test_control_ignore_acr_values_issues_an_honest_password_result_once() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    idp.set_next_token(json!({ "ignore_acr_values": true })).await;
    let (_, tokens) = idp.login(&browser, "alice", &[("acr_values", ACR_MFA)]).await;
    assert_eq!(tokens.id_claims["acr"], ACR_PASSWORD);
    assert_eq!(amr(&tokens.id_claims), ["pwd"]);
    // Used once: the next step-up is honoured.
    browser
        .authorize(&idp, &Flow::new(), &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/mfa");
}

#[tokio::test]
async fn test_control_claims_overrides_change_the_next_tokens_only() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    idp.set_next_token(json!({
        "id_token_claims": { "aud": "someone-else", "nonce": null, "auth_time": 1000 },
        "access_token_claims": { "aud": "other-api", "acr": ACR_MFA },
    }))
    .await;
    let (flow, tokens) = idp.login(&browser, "alice", &[]).await;
    assert_eq!(tokens.id_claims["aud"], "someone-else");
    assert!(tokens.id_claims.get("nonce").is_none());
    assert_eq!(tokens.id_claims["auth_time"], 1000);
    assert_eq!(tokens.access_claims["aud"], "other-api");
    assert_eq!(tokens.access_claims["acr"], ACR_MFA);
    assert!(
        idp.verify_id_token(&tokens.id_token, &flow.nonce).await.is_err(),
        "the RP refuses it"
    );

    let (flow, normal) = idp.login(&idp.browser(), "alice", &[]).await;
    assert_eq!(normal.id_claims["aud"], CLIENT_ID);
    idp.verify_id_token(&normal.id_token, &flow.nonce)
        .await
        .expect("back to normal");
}

#[tokio::test]
async fn test_control_signature_modes_break_verification() {
    let idp = spawn_idp(IdpOptions::default()).await;
    idp.set_next_token(json!({ "signature": "wrong-key" })).await;
    let (flow, wrong) = idp.login(&idp.browser(), "alice", &[]).await;
    assert_eq!(
        jwt_header(&wrong.id_token)["kid"],
        jwt_header(&idp.login(&idp.browser(), "bob", &[]).await.1.id_token)["kid"]
    );
    assert!(idp.verify_id_token(&wrong.id_token, &flow.nonce).await.is_err());
    let r = idp.userinfo(&wrong.access_token).await;
    assert_eq!(r.status(), 401);

    idp.set_next_token(json!({ "signature": "none" })).await;
    let (flow, none) = idp.login(&idp.browser(), "alice", &[]).await;
    assert_eq!(jwt_header(&none.id_token)["alg"], "none");
    assert!(none.id_token.ends_with('.'));
    assert!(idp.verify_id_token(&none.id_token, &flow.nonce).await.is_err());

    // The algorithm-confusion forgery: the ID token MACed with HS256 under the client secret
    // (no kid: no published key made it); the access token stays valid.
    idp.set_next_token(json!({ "signature": "hs256-client-secret" }))
        .await;
    let (flow, hs) = idp.login(&idp.browser(), "alice", &[]).await;
    let header = jwt_header(&hs.id_token);
    assert_eq!((header["alg"].as_str(), header.get("kid")), (Some("HS256"), None));
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[idp.issuer_id.as_str()]);
    let key = jsonwebtoken::DecodingKey::from_secret(CLIENT_SECRET.as_bytes()).unwrap();
    let claims = jsonwebtoken::decode::<Value>(&hs.id_token, &key, &validation)
        .expect("MACed with the client secret")
        .claims;
    assert_eq!(claims["nonce"], flow.nonce.as_str());
    assert!(idp.verify_id_token(&hs.id_token, &flow.nonce).await.is_err());
    assert_eq!(jwt_header(&hs.access_token)["alg"], "RS256");
    assert_eq!(idp.userinfo(&hs.access_token).await.status(), 200);
    // A public client has no secret to MAC with: refused when it is named.
    let spa = fabrikam::idp::ClientRegistration::public("spa", ["http://127.0.0.1:5173/cb"]);
    let provider = fabrikam::idp::TestProvider::builder()
        .client(spa)
        .start()
        .await
        .unwrap();
    let next =
        serde_json::from_value(json!({ "signature": "hs256-client-secret", "client_id": "spa" })).unwrap();
    let refused = provider.set_next_token(&next).await.unwrap_err();
    assert!(
        format!("{refused:#}").contains("400")
            && format!("{refused:#}").contains("spa\\\" is a public client"),
        "{refused:#}"
    );

    // DELETE clears a deviation that was set but not yet used.
    idp.set_next_token(json!({ "signature": "none" })).await;
    let r = idp
        .api
        .delete(idp.url("/test-control/next-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (flow, ok) = idp.login(&idp.browser(), "alice", &[]).await;
    idp.verify_id_token(&ok.id_token, &flow.nonce)
        .await
        .expect("valid again");
}

#[tokio::test]
async fn test_control_clock_shifts_what_the_op_issues_and_reset_restores_it() {
    let idp = spawn_idp(IdpOptions::default()).await;
    idp.set_clock_offset(-3600).await;
    let (flow, old) = idp.login(&idp.browser(), "alice", &[]).await;
    let now = chrono::Utc::now().timestamp();
    let iat = old.id_claims["iat"].as_i64().unwrap();
    assert!(
        (now - 3600 - 5..=now - 3600 + 5).contains(&iat),
        "iat {iat} is an hour ago"
    );
    assert!(old.id_claims["exp"].as_i64().unwrap() < now, "already expired");
    assert!(
        idp.verify_id_token(&old.id_token, &flow.nonce).await.is_err(),
        "the RP sees it expired"
    );

    // Codes expire after 60 s of the OP's clock.
    let browser = idp.browser();
    let (flow, code) = idp.code_after_login(&browser, "alice", &[]).await;
    idp.set_clock_offset(-3600 + 61).await;
    let expired = idp.redeem_raw(&code, &flow.verifier).await;
    assert_eq!(expired.json::<Value>().await.unwrap()["error"], "invalid_grant");

    idp.reset().await;
    let (_, fresh) = idp.login(&idp.browser(), "alice", &[]).await;
    assert!((fresh.id_claims["iat"].as_i64().unwrap() - now).abs() <= 5);
}

#[tokio::test]
async fn without_test_control_its_routes_do_not_exist() {
    let idp = spawn_idp(IdpOptions {
        test_control: false,
        ..IdpOptions::default()
    })
    .await;
    let r = idp
        .api
        .get(idp.url("/test-control/authorize-requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = idp
        .api
        .put(idp.url("/test-control/clock"))
        .json(&json!({"offset_secs": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn test_control_access_token_typ_replaces_or_drops_at_jwt_once() {
    let idp = spawn_idp(IdpOptions::default()).await;
    idp.set_next_token(json!({ "access_token_typ": "JWT" })).await;
    let (_, tokens) = idp.login(&idp.browser(), "alice", &[]).await;
    assert_eq!(jwt_header(&tokens.access_token)["typ"], "JWT");
    assert_eq!(
        jwt_header(&tokens.id_token)["typ"],
        "JWT",
        "the ID token is unchanged"
    );
    let (_, next) = idp.login(&idp.browser(), "alice", &[]).await;
    assert_eq!(jwt_header(&next.access_token)["typ"], "at+jwt", "used once");

    idp.set_next_token(json!({ "access_token_typ": null })).await;
    let (_, untyped) = idp.login(&idp.browser(), "alice", &[]).await;
    assert!(jwt_header(&untyped.access_token).get("typ").is_none());
    let r = idp
        .api
        .put(idp.url("/test-control/next-token"))
        .json(&json!({ "access_token_header": { "typ": "JWT" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "unknown options are refused");
}

#[tokio::test]
async fn users_are_added_changed_and_removed_at_run_time() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let erin = idp.url("/test-control/users/erin");
    let put = idp
        .api
        .put(erin.clone())
        .json(&json!({ "password": "erin-password", "roles": ["sales"], "email": "erin@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let view: Value = put.json().await.unwrap();
    assert_eq!(view["username"], "erin");
    assert!(view.get("password").is_none() && view.get("password_hash").is_none());
    assert_eq!(
        view["totp_secret"],
        Value::Null,
        "she enrols at her first step-up"
    );
    let (_, tokens) = idp.login(&idp.browser(), "erin", &[]).await;
    assert_eq!(tokens.id_claims["roles"], json!(["sales"]));
    assert_eq!(tokens.id_claims["email"], "erin@example.com");
    let (_, enroll) = idp.at_the_code_page(&idp.browser(), "erin").await;
    assert_eq!(enroll.path, "/enroll");

    // Roles, claims, password and second factor change; the next sign-in says so.
    let patch = idp
        .api
        .patch(erin.clone())
        .json(&json!({
            "roles": ["hr"], "claims": { "team": "payroll" }, "password": "new-password",
            "totp_secret": ALICE_TOTP,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    assert_eq!(patch.json::<Value>().await.unwrap()["roles"], json!(["hr"]));
    let browser = idp.browser();
    let (flow, login) = idp.at_the_login_page(&browser, &[("acr_values", ACR_MFA)]).await;
    let refused = browser
        .submit_login(&login, "erin", "erin-password")
        .await
        .expect_page("/login");
    assert!(
        refused.text().contains("do not match"),
        "the old password no longer works"
    );
    let mfa = browser
        .submit_login(&refused, "erin", "new-password")
        .await
        .expect_page("/mfa");
    let tokens = idp
        .finish_with_code(&browser, &mfa, &flow, &totp_code_for_secret(ALICE_TOTP, 0))
        .await;
    assert_eq!(tokens.id_claims["roles"], json!(["hr"]));
    assert_eq!(tokens.id_claims["team"], "payroll");
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);

    // Bad changes are refused whole, naming the field; nothing changes.
    for (body, field) in [
        (json!({ "claims": { "acr": "x" } }), "claims.acr"),
        (json!({ "totp_secret": "not base32!" }), "totp_secret"),
        (json!({ "roles": [""] }), "roles[0]"),
        (json!({ "colour": "red" }), "colour"),
    ] {
        let r = idp.api.patch(erin.clone()).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let text = r.text().await.unwrap();
        assert!(text.contains(field), "{body}: {text}");
    }
    let r = idp
        .api
        .put(erin.clone())
        .json(&json!({ "username": "mallory", "password": "p" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "the path names the user");
    let unchanged: Value = idp
        .api
        .get(erin.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["roles"], json!(["hr"]));
    assert_eq!(unchanged["totp_secret"], ALICE_TOTP);

    // Removed: her session no longer signs her in, and she is gone from the list.
    let r = idp.api.delete(erin.clone()).send().await.unwrap();
    assert_eq!(r.status(), 204);
    browser
        .authorize(&idp, &Flow::new(), &[])
        .await
        .expect_page("/login");
    assert_eq!(idp.api.get(erin.clone()).send().await.unwrap().status(), 404);
    assert_eq!(idp.api.delete(erin).send().await.unwrap().status(), 404);
    let all = idp.get_json("/test-control/users").await;
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
}

#[tokio::test]
async fn deviations_scoped_to_a_client_reach_only_its_tokens_while_two_suites_run_at_once() {
    use fabrikam::idp::{ClientRegistration, TestProvider};
    let idp = TestIdp::start(
        TestProvider::builder()
            .client(ClientRegistration::confidential(
                "app-a",
                "a",
                ["http://127.0.0.1:18091/cb"],
            ))
            .client(ClientRegistration::confidential(
                "app-b",
                "b",
                ["http://127.0.0.1:18092/cb"],
            )),
    )
    .await;
    let b = idp.as_client("app-b");
    let a = idp;
    a.set_next_token(json!({ "client_id": "app-a", "id_token_claims": { "aud": "evil" } }))
        .await;
    b.set_next_token(json!({ "client_id": "app-b", "ignore_acr_values": true }))
        .await;
    // Both suites at once, each with its own browser.
    let suite_a = async {
        let browser = a.browser();
        let (_, tokens) = a.login(&browser, "alice", &[]).await;
        let (flow, code) = a.sso_code(&browser, &[]).await;
        (tokens, a.redeem(&code, &flow).await)
    };
    let suite_b = async {
        let browser = b.browser();
        let (_, tokens) = b.login(&browser, "bob", &[("acr_values", ACR_MFA)]).await;
        let (flow, code) = b.sso_code(&browser, &[]).await;
        (tokens, b.redeem(&code, &flow).await)
    };
    let ((a_first, a_next), (b_first, b_next)) = tokio::join!(suite_a, suite_b);
    assert_eq!(a_first.id_claims["aud"], "evil", "app-a's deviation");
    assert_eq!(a_next.id_claims["aud"], "app-a", "used once");
    assert_eq!(
        b_first.id_claims["aud"], "app-b",
        "app-a's deviation did not reach app-b"
    );
    assert_eq!(
        b_first.id_claims["acr"], ACR_PASSWORD,
        "app-b's: the step-up was ignored"
    );
    assert_eq!(b_next.id_claims["aud"], "app-b");

    // A deviation for a client that does not exist is refused.
    let r = a
        .api
        .put(a.url("/test-control/next-token"))
        .json(&json!({ "client_id": "nobody", "signature": "none" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Clearing one client's leaves the other's.
    a.set_next_token(json!({ "client_id": "app-a", "signature": "none" }))
        .await;
    b.set_next_token(json!({ "client_id": "app-b", "signature": "none" }))
        .await;
    let r = a
        .api
        .delete(a.url("/test-control/next-token?client_id=app-a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, a_tokens) = a.login(&a.browser(), "alice", &[]).await;
    assert_eq!(jwt_header(&a_tokens.id_token)["alg"], "RS256");
    let (_, b_tokens) = b.login(&b.browser(), "alice", &[]).await;
    assert_eq!(jwt_header(&b_tokens.id_token)["alg"], "none");
    // The request log filters by client.
    let only_b = a.provider.authorize_requests(Some("app-b")).await.unwrap();
    assert!(!only_b.is_empty() && only_b.iter().all(|p| p["client_id"] == "app-b"));
}
