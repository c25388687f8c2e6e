//! `/token` and `/userinfo`: client authentication (confidential and public clients, only the
//! registered method), single-use codes bound to client, redirect URI and PKCE, the tokens.

use fabrikam::idp::{ClientRegistration, TestProvider, TokenAuthMethod, UserSpec};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn password_login_gives_pwd_amr_and_the_password_acr_in_a_verifiable_id_token() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, tokens) = idp.login(&browser, "alice", &[]).await;
    let claims = idp
        .verify_id_token(&tokens.id_token, &flow.nonce)
        .await
        .expect("openidconnect accepts the ID token");
    assert_eq!(claims.subject().as_str(), "alice");
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some(ACR_PASSWORD));
    let methods: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(methods, ["pwd"]);
    assert!(claims.auth_time().is_some());
    let id = &tokens.id_claims;
    assert_eq!(id["roles"], json!(["hr"]));
    assert_eq!(id["email"], "alice@fabrikam.example");
    assert_eq!(id["azp"], CLIENT_ID);
    assert!(id["sid"].is_string() && id["name"].is_string());
    assert_eq!(jwt_header(&tokens.id_token)["alg"], "RS256");
    assert!(jwt_header(&tokens.id_token)["kid"].is_string());
    assert_eq!(tokens.body["token_type"], "Bearer");
    assert!(tokens.body["expires_in"].as_i64().is_some_and(|e| e > 0));
    // A wrong nonce is caught by the RP's verification (§3.1.3.7 rule 11).
    assert!(
        idp.verify_id_token(&tokens.id_token, "another-nonce")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_access_token_is_an_rfc9068_jwt_for_the_api_and_userinfo_names_the_same_subject() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let (_, tokens) = idp.login(&idp.browser(), "bob", &[]).await;
    assert_eq!(jwt_header(&tokens.access_token)["typ"], "at+jwt");
    let at = &tokens.access_claims;
    assert_eq!(at["aud"], "fabrikam-api");
    assert_eq!(at["client_id"], CLIENT_ID);
    assert_eq!(at["sub"], "bob");
    assert_eq!(at["roles"], json!(["sales"]));
    assert_eq!(at["acr"], ACR_PASSWORD);
    for claim in ["iss", "iat", "exp", "jti", "scope", "amr", "auth_time"] {
        assert!(at.get(claim).is_some(), "access token lacks {claim}");
    }
    let info = idp.userinfo(&tokens.access_token).await;
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["sub"], tokens.id_claims["sub"]);
    assert_eq!(info["roles"], json!(["sales"]));
    // The ID token is not an access token, and garbage is not either.
    for bad in [tokens.id_token.as_str(), "garbage"] {
        let r = idp
            .api
            .get(idp.url("/userinfo"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }
}

#[tokio::test]
async fn token_responses_are_not_cached() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, page) = idp.at_the_login_page(&browser, &[]).await;
    let code = browser
        .submit_login(&page, "alice", "alice-password")
        .await
        .callback()
        .code();
    let r = idp.redeem_raw(&code, &flow.verifier).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn a_code_is_single_use() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, code) = idp.code_after_login(&browser, "alice", &[]).await;
    assert_eq!(idp.redeem_raw(&code, &flow.verifier).await.status(), 200);
    let replay = idp.redeem_raw(&code, &flow.verifier).await;
    assert_eq!(replay.status(), 400);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_users_outstanding_codes_are_capped_and_the_oldest_is_withdrawn_first() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let first = idp.code_after_login(&browser, "alice", &[]).await;
    // Signed in: each request mints a code at once (SSO), as a script looping on /authorize would.
    let mut codes = vec![first];
    for _ in 0..fabrikam::idp::state::MAX_CODES_PER_USER {
        codes.push(idp.sso_code(&browser, &[]).await);
    }
    // The 17th withdrew the first; the others all stand.
    let (flow, oldest) = &codes[0];
    let refused = idp.redeem_raw(oldest, &flow.verifier).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "invalid_grant");
    for (flow, code) in &codes[1..] {
        assert_eq!(idp.redeem_raw(code, &flow.verifier).await.status(), 200);
    }
    // Another user's codes are not touched by alice's.
    let bobs = idp.browser();
    let (flow, code) = idp.code_after_login(&bobs, "bob", &[]).await;
    for _ in 0..fabrikam::idp::state::MAX_CODES_PER_USER {
        idp.sso_code(&browser, &[]).await;
    }
    assert_eq!(idp.redeem_raw(&code, &flow.verifier).await.status(), 200);
}

/// The form of a token request for `code`, plus `extra` (client authentication in the body).
fn token_form(idp: &TestIdp, code: &str, flow: &Flow, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = vec![
        ("grant_type".into(), "authorization_code".into()),
        ("code".into(), code.to_owned()),
        ("redirect_uri".into(), idp.redirect_uri.clone()),
        ("code_verifier".into(), flow.verifier.clone()),
    ];
    form.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    form
}

#[tokio::test]
async fn a_client_that_registers_no_method_authenticates_with_client_secret_basic_only() {
    // The intranet's client registers no token_endpoint_auth_method: OIDC Dynamic Client
    // Registration 1.0 §2 makes that client_secret_basic, and only that.
    let idp = spawn_idp(IdpOptions::default()).await;
    assert_eq!(idp.client.token_endpoint_auth_method, None);
    let browser = idp.browser();
    // Signed in once; each code below comes by SSO.
    idp.login(&browser, "alice", &[]).await;

    let (flow, code) = idp.sso_code(&browser, &[]).await;
    let wrong = idp
        .api
        .post(idp.url("/token"))
        .basic_auth(CLIENT_ID, Some("not-the-secret"))
        .form(&token_form(&idp, &code, &flow, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("www-authenticate").is_some());
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_client");

    // The right secret in the body is the wrong method: refused, and the code stays unspent
    // (client authentication comes before the code is taken).
    let (flow, code) = idp.sso_code(&browser, &[]).await;
    let post = idp
        .api
        .post(idp.url("/token"))
        .form(&token_form(
            &idp,
            &code,
            &flow,
            &[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 401, "client_secret_post from a basic client");
    assert_eq!(
        post.headers()["www-authenticate"],
        r#"Basic realm="Fabrikam ID""#,
        "the challenge says which method to use"
    );
    let body: Value = post.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(
        body["error_description"],
        "this client authenticates with client_secret_basic"
    );

    let none = idp
        .api
        .post(idp.url("/token"))
        .form(&token_form(&idp, &code, &flow, &[("client_id", CLIENT_ID)]))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401, "no authentication at all");

    let basic = idp
        .api
        .post(idp.url("/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&token_form(&idp, &code, &flow, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200, "client_secret_basic");
}

#[tokio::test]
async fn a_client_that_registers_client_secret_post_authenticates_with_it_only() {
    let app = ClientRegistration::confidential("post-app", "p0st", ["http://127.0.0.1:18085/cb"])
        .with_token_endpoint_auth_method(TokenAuthMethod::ClientSecretPost);
    let idp = TestIdp::start(TestProvider::builder().client(app)).await;
    let browser = idp.browser();
    let (flow, code) = idp.code_after_login(&browser, "alice", &[]).await;
    let basic = idp
        .api
        .post(idp.url("/token"))
        .basic_auth("post-app", Some("p0st"))
        .form(&token_form(&idp, &code, &flow, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    assert!(
        basic.headers().get("www-authenticate").is_some(),
        "it tried Basic"
    );
    let body: Value = basic.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(
        body["error_description"],
        "this client authenticates with client_secret_post"
    );
    // The refusal spent nothing: the same code, posted as registered, is redeemed.
    assert_eq!(
        idp.api
            .post(idp.url("/token"))
            .form(&token_form(
                &idp,
                &code,
                &flow,
                &[("client_id", "post-app"), ("client_secret", "p0st")],
            ))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // And the support client posts the secret for a client that registered post.
    let (flow, code) = idp.sso_code(&browser, &[]).await;
    idp.redeem(&code, &flow).await;
}

#[tokio::test]
async fn a_code_is_bound_to_its_redirect_uri() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, code) = idp.code_after_login(&browser, "alice", &[]).await;
    let r = idp
        .api
        .post(idp.url("/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:18080/other"),
            ("code_verifier", flow.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn a_public_client_redeems_with_pkce_alone_and_may_not_send_a_secret() {
    let spa = ClientRegistration::public("spa", ["http://127.0.0.1:5173/callback"]);
    let idp = TestIdp::start(TestProvider::builder().client(spa)).await;
    assert!(idp.client.client_secret.is_none());
    let browser = idp.browser();
    let (_, code) = idp.code_after_login(&browser, "alice", &[]).await;
    // Without the verifier, a public client has nothing: refused.
    let no_pkce = idp
        .post_token(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", idp.redirect_uri.as_str()),
            ("client_id", "spa"),
        ])
        .await;
    assert_eq!(no_pkce.status(), 400);
    assert_eq!(no_pkce.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let (flow, code) = idp.sso_code(&browser, &[]).await;
    let tokens = idp.redeem(&code, &flow).await;
    idp.verify_id_token(&tokens.id_token, &flow.nonce).await.unwrap();
    assert_eq!(tokens.id_claims["aud"], "spa");
    // A secret from a public client is refused: it registered `none`.
    let (flow, code) = idp.sso_code(&browser, &[]).await;
    let with_secret = idp
        .api
        .post(idp.url("/token"))
        .basic_auth("spa", Some("guess"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", idp.redirect_uri.as_str()),
            ("code_verifier", flow.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(with_secret.status(), 401);
    let body: Value = with_secret.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(
        body["error_description"],
        "a public client sends no client secret"
    );
}

#[tokio::test]
async fn a_confidential_client_authenticates_only_with_the_method_it_registered() {
    let basic = ClientRegistration::confidential("basic-only", "s3cret", ["http://127.0.0.1:18083/cb"])
        .with_token_endpoint_auth_method(TokenAuthMethod::ClientSecretBasic);
    let idp = TestIdp::start(TestProvider::builder().client(basic)).await;
    let browser = idp.browser();
    let (flow, code) = idp.code_after_login(&browser, "alice", &[]).await;
    let post = idp
        .post_token(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", idp.redirect_uri.as_str()),
            ("code_verifier", flow.verifier.as_str()),
            ("client_id", "basic-only"),
            ("client_secret", "s3cret"),
        ])
        .await;
    assert_eq!(post.status(), 401);
    let body: Value = post.json().await.unwrap();
    assert_eq!(
        body["error_description"],
        "this client authenticates with client_secret_basic"
    );
    // Nothing at all: a confidential client must authenticate.
    let (flow, code) = idp.sso_code(&browser, &[]).await;
    let none = idp
        .post_token(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", idp.redirect_uri.as_str()),
            ("code_verifier", flow.verifier.as_str()),
            ("client_id", "basic-only"),
        ])
        .await;
    assert_eq!(none.status(), 401);
    let (flow, code) = idp.sso_code(&browser, &[]).await;
    idp.redeem(&code, &flow).await;
    // Unknown clients and wrong secrets each say so.
    for (id, secret, description) in [
        ("nobody", "x", "unknown client"),
        ("basic-only", "wrong", "the client secret is wrong"),
    ] {
        let r = idp
            .api
            .post(idp.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "authorization_code"), ("code", "c")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(r.json::<Value>().await.unwrap()["error_description"], description);
    }
}

#[tokio::test]
async fn a_users_configured_claims_reach_the_id_token_and_userinfo_and_absent_email_is_left_out() {
    let dave = UserSpec::new("dave", "dave-password")
        .with_name("Dave Dunn")
        .with_roles(["payroll", "hr"])
        .with_claim("department", json!("finance"))
        .with_claim("employee_number", json!(4711));
    let idp = TestIdp::start(
        TestProvider::builder()
            .client(ClientRegistration::confidential(
                "app",
                "s",
                ["http://127.0.0.1:18084/cb"],
            ))
            .user(dave),
    )
    .await;
    let (flow, tokens) = idp.login(&idp.browser(), "dave", &[]).await;
    idp.verify_id_token(&tokens.id_token, &flow.nonce).await.unwrap();
    let id = &tokens.id_claims;
    assert_eq!(id["sub"], "dave");
    assert_eq!(id["name"], "Dave Dunn");
    assert_eq!(id["roles"], json!(["payroll", "hr"]));
    assert_eq!(id["department"], "finance");
    assert_eq!(id["employee_number"], 4711);
    assert!(id.get("email").is_none(), "no email configured, no email claim");
    assert_eq!(tokens.access_claims["roles"], json!(["payroll", "hr"]));
    let info: Value = idp
        .api
        .get(idp.url("/userinfo"))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["department"], "finance");
    assert_eq!(info["sub"], "dave");
    assert!(info.get("email").is_none());
    // Discovery lists the configured claim names too.
    let doc: Value = idp
        .api
        .get(idp.provider.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = doc["claims_supported"].as_array().unwrap();
    assert!(claims.contains(&json!("department")) && claims.contains(&json!("employee_number")));
    // alice is not there: the users given replace the demo users.
    let browser = idp.browser();
    let (_, login) = idp.at_the_login_page(&browser, &[]).await;
    let again = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/login");
    assert!(again.text().contains("do not match"), "{}", again.text());
}
