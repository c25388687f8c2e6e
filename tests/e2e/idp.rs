//! Fabrikam ID end to end: a relying party's view over HTTP, with tokens verified by the
//! `openidconnect` crate.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, TokenResponse,
};
use serde_json::{Value, json};

use crate::support::*;

fn amr(claims: &Value) -> Vec<String> {
    serde_json::from_value(claims["amr"].clone()).expect("amr is an array of strings")
}

fn essential_acr(values: &[&str]) -> String {
    json!({ "id_token": { "acr": { "essential": true, "values": values } } }).to_string()
}

#[tokio::test]
async fn discovery_parses_with_openidconnect_and_advertises_the_contract() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let metadata = idp.metadata().await;
    assert_eq!(metadata.issuer().as_str(), idp.issuer_id);
    assert!(
        !idp.issuer_id.ends_with('/'),
        "the contract writes the issuer without a slash"
    );
    let doc: Value = idp
        .api
        .get(idp.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], idp.issuer_id);
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["ES256"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["claims_parameter_supported"], json!(true));
    assert_eq!(doc["grant_types_supported"], json!(["authorization_code"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(doc["acr_values_supported"], json!([ACR_PASSWORD, ACR_MFA]));
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "end_session_endpoint",
    ] {
        let url = doc[endpoint]
            .as_str()
            .unwrap_or_else(|| panic!("{endpoint} is advertised"));
        assert!(url.starts_with(idp.issuer.as_str()), "{endpoint} = {url}");
    }
    let jwks: Value = idp
        .api
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()) && key.get("d").is_none());
}

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
    assert_eq!(jwt_header(&tokens.id_token)["alg"], "ES256");
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
    let info = idp
        .api
        .get(idp.url("/userinfo"))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
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
    let flow = Flow::new();
    let page = browser.authorize(&idp, &flow, &[]).await.expect_page("/login");
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
async fn acr_values_prompt_the_totp_and_yield_the_multi_factor_acr_with_a_new_auth_time() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let login = browser
        .authorize(&idp, &flow, &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/login");
    let mfa = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/mfa");
    assert!(mfa.text().contains("alice"));
    // Move the OP clock so the second factor's time differs from the password's.
    idp.set_clock_offset(90).await;
    let callback = browser
        .submit_code(&mfa, &totp_code("alice", 0), false)
        .await
        .callback();
    assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
    let tokens = idp.redeem(&callback.code(), &flow).await;
    let claims = idp
        .verify_id_token(&tokens.id_token, &flow.nonce)
        .await
        .expect("verifies");
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some(ACR_MFA));
    assert_eq!(amr(&tokens.id_claims), ["pwd", "otp", "mfa"]);
    assert_eq!(amr(&tokens.access_claims), ["pwd", "otp", "mfa"]);
    let auth_time = tokens.id_claims["auth_time"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        auth_time >= now + 85,
        "auth_time is when the second factor was completed"
    );
}

#[tokio::test]
async fn an_sso_step_up_asks_only_the_second_factor_and_always_asks_it() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, first) = idp.login(&browser, "alice", &[]).await;
    let password_time = first.id_claims["auth_time"].as_i64().unwrap();

    // SSO: a plain request reuses the session without any prompt.
    let flow = Flow::new();
    let sso = browser.authorize(&idp, &flow, &[]).await.callback();
    assert_eq!(amr(&idp.redeem(&sso.code(), &flow).await.id_claims), ["pwd"]);

    idp.set_clock_offset(60).await;
    let flow = Flow::new();
    let mfa = browser
        .authorize(&idp, &flow, &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/mfa");
    let callback = browser
        .submit_code(&mfa, &totp_code("alice", 0), false)
        .await
        .callback();
    let tokens = idp.redeem(&callback.code(), &flow).await;
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);
    assert!(tokens.id_claims["auth_time"].as_i64().unwrap() >= password_time + 60);

    // A second step-up asks again, even though this session already did MFA.
    let flow = Flow::new();
    let again = browser
        .authorize(&idp, &flow, &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/mfa");
    let callback = browser
        .submit_code(&again, &totp_code("alice", 1), false)
        .await
        .callback();
    assert_eq!(
        idp.redeem(&callback.code(), &flow).await.id_claims["acr"],
        ACR_MFA
    );
}

#[tokio::test]
async fn with_mfa_at_login_a_remembered_browser_skips_the_totp_honestly_but_a_step_up_still_asks() {
    let idp = spawn_idp(IdpOptions {
        mfa_at_login: true,
        ..IdpOptions::default()
    })
    .await;
    let browser = idp.browser();
    let flow = Flow::new();
    let login = browser.authorize(&idp, &flow, &[]).await.expect_page("/login");
    let mfa = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/mfa");
    let callback = browser
        .submit_code(&mfa, &totp_code("alice", 0), true)
        .await
        .callback();
    assert_eq!(
        idp.redeem(&callback.code(), &flow).await.id_claims["acr"],
        ACR_MFA
    );
    assert!(
        browser.cookie(REMEMBER_COOKIE).is_some(),
        "remember-browser cookie set"
    );

    // A new OP session in the same browser: the password only, and the tokens say so.
    browser.forget_session();
    let (_, tokens) = idp.login(&browser, "alice", &[]).await;
    assert_eq!(tokens.id_claims["acr"], ACR_PASSWORD);
    assert_eq!(amr(&tokens.id_claims), ["pwd"]);

    // A step-up still demands the code, remembered browser or not.
    let flow = Flow::new();
    let mfa = browser
        .authorize(&idp, &flow, &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/mfa");
    let callback = browser
        .submit_code(&mfa, &totp_code("alice", 1), false)
        .await
        .callback();
    assert_eq!(
        idp.redeem(&callback.code(), &flow).await.id_claims["acr"],
        ACR_MFA
    );

    // The cookie is per user: bob in the same browser is asked for his code.
    browser.forget_session();
    let flow = Flow::new();
    let login = browser.authorize(&idp, &flow, &[]).await.expect_page("/login");
    browser
        .submit_login(&login, "bob", "bob-password")
        .await
        .expect_page("/mfa");

    // And another browser is not remembered at all.
    let other = idp.browser();
    let login = other
        .authorize(&idp, &Flow::new(), &[])
        .await
        .expect_page("/login");
    other
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/mfa");
}

#[tokio::test]
async fn an_essential_acr_claim_for_mfa_is_met_with_the_second_factor() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let claims = essential_acr(&[ACR_MFA]);
    let login = browser
        .authorize(&idp, &flow, &[("claims", &claims)])
        .await
        .expect_page("/login");
    let mfa = browser
        .submit_login(&login, "bob", "bob-password")
        .await
        .expect_page("/mfa");
    let callback = browser
        .submit_code(&mfa, &totp_code("bob", 0), false)
        .await
        .callback();
    let tokens = idp.redeem(&callback.code(), &flow).await;
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);
}

#[tokio::test]
async fn an_essential_acr_the_op_cannot_meet_ends_in_unmet_authentication_requirements() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let claims = essential_acr(&["urn:example:gold"]);
    let callback = browser
        .authorize(&idp, &flow, &[("claims", &claims)])
        .await
        .callback();
    assert_eq!(
        callback.error.as_deref(),
        Some("unmet_authentication_requirements")
    );
    assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
    assert_eq!(callback.code, None);
}

#[tokio::test]
async fn unknown_voluntary_acr_values_are_ignored_and_the_password_suffices() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let (_, tokens) = idp
        .login(&idp.browser(), "alice", &[("acr_values", "urn:example:gold")])
        .await;
    assert_eq!(tokens.id_claims["acr"], ACR_PASSWORD);
}

#[tokio::test]
async fn max_age_zero_and_prompt_login_ask_for_the_password_again() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, first) = idp.login(&browser, "alice", &[]).await;
    let first_time = first.id_claims["auth_time"].as_i64().unwrap();
    idp.set_clock_offset(30).await;
    let (_, second) = idp.login(&browser, "alice", &[("max_age", "0")]).await;
    assert!(second.id_claims["auth_time"].as_i64().unwrap() >= first_time + 30);
    let (_, third) = idp.login(&browser, "alice", &[("prompt", "login")]).await;
    assert_eq!(third.id_claims["sub"], "alice");
    // A generous max_age reuses the session.
    let flow = Flow::new();
    browser
        .authorize(&idp, &flow, &[("max_age", "3600")])
        .await
        .callback()
        .code();
}

#[tokio::test]
async fn prompt_none_needs_a_session_and_cannot_ask_for_a_second_factor() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let callback = browser
        .authorize(&idp, &flow, &[("prompt", "none")])
        .await
        .callback();
    assert_eq!(callback.error.as_deref(), Some("login_required"));
    assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));

    idp.login(&browser, "alice", &[]).await;
    let silent = browser
        .authorize(&idp, &Flow::new(), &[("prompt", "none")])
        .await
        .callback();
    assert!(silent.code.is_some(), "a session answers prompt=none");
    let step_up = browser
        .authorize(&idp, &Flow::new(), &[("prompt", "none"), ("acr_values", ACR_MFA)])
        .await
        .callback();
    assert_eq!(step_up.error.as_deref(), Some("interaction_required"));
}

#[tokio::test]
async fn a_wrong_password_shows_the_login_page_again_and_changes_nothing() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let login = browser.authorize(&idp, &flow, &[]).await.expect_page("/login");
    let again = browser
        .submit_login(&login, "alice", "wrong")
        .await
        .expect_page("/login");
    assert!(
        again.text().contains("do not match"),
        "a clear message: {}",
        again.text()
    );
    let unknown = browser
        .submit_login(&again, "mallory", "mallory-password")
        .await
        .expect_page("/login");
    assert!(unknown.text().contains("do not match"));
    // The pending request survived: the right password completes it.
    let callback = browser
        .submit_login(&unknown, "alice", "alice-password")
        .await
        .callback();
    assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
    idp.redeem(&callback.code(), &flow).await;
}

#[tokio::test]
async fn a_wrong_totp_is_refused_and_a_used_one_cannot_be_replayed() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let login = browser
        .authorize(&idp, &flow, &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/login");
    let mfa = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/mfa");
    let wrong = browser
        .submit_code(&mfa, &totp_code("alice", 5), false)
        .await
        .expect_page("/mfa");
    assert!(wrong.text().contains("not right"), "{}", wrong.text());
    let garbage = browser
        .submit_code(&wrong, "12ab56", false)
        .await
        .expect_page("/mfa");
    let code = totp_code("alice", 0);
    browser
        .submit_code(&garbage, &code, false)
        .await
        .callback()
        .code();

    let mfa = browser
        .authorize(&idp, &Flow::new(), &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/mfa");
    let replayed = browser.submit_code(&mfa, &code, false).await.expect_page("/mfa");
    assert!(replayed.text().contains("already used"), "{}", replayed.text());
}

#[tokio::test]
async fn a_code_is_single_use() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let login = browser.authorize(&idp, &flow, &[]).await.expect_page("/login");
    let code = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .callback()
        .code();
    assert_eq!(idp.redeem_raw(&code, &flow.verifier).await.status(), 200);
    let replay = idp.redeem_raw(&code, &flow.verifier).await;
    assert_eq!(replay.status(), 400);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn pkce_is_required_s256_only_and_the_verifier_must_match() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let missing = browser
        .authorize(
            &idp,
            &flow,
            &[("code_challenge", ""), ("code_challenge_method", "")],
        )
        .await;
    let missing = missing.callback();
    assert_eq!(missing.error.as_deref(), Some("invalid_request"));
    assert_eq!(missing.state.as_deref(), Some(flow.state.as_str()));
    let plain = browser
        .authorize(&idp, &flow, &[("code_challenge_method", "plain")])
        .await
        .callback();
    assert_eq!(plain.error.as_deref(), Some("invalid_request"));

    let login = browser.authorize(&idp, &flow, &[]).await.expect_page("/login");
    let code = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .callback()
        .code();
    let wrong = idp.redeem_raw(&code, &Flow::new().verifier).await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // The failed attempt used the code up.
    assert_eq!(idp.redeem_raw(&code, &flow.verifier).await.status(), 400);
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_client_gets_an_error_page_and_no_redirect() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    for extra in [
        [("redirect_uri", "http://evil.example/callback")],
        [("redirect_uri", "http://127.0.0.1:18080/callback/../evil")],
        [("client_id", "someone-else")],
    ] {
        let response = browser.get(&idp.authorize_url(&flow, &extra)).await;
        assert_eq!(response.status(), 400, "{extra:?}");
        assert!(response.headers().get("location").is_none());
        let html = response.text().await.unwrap();
        assert!(
            html.contains("Fabrikam ID") && html.contains("not registered"),
            "{html}"
        );
    }
}

#[tokio::test]
async fn client_authentication_basic_and_post_work_and_a_wrong_secret_is_invalid_client() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let form = |code: &str, flow: &Flow, extra: &[(&'static str, &'static str)]| {
        let mut f: Vec<(String, String)> = vec![
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code.to_owned()),
            ("redirect_uri".into(), idp.redirect_uri.clone()),
            ("code_verifier".into(), flow.verifier.clone()),
        ];
        f.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        f
    };
    let (flow, _) = idp.login(&browser, "alice", &[]).await;
    let _ = flow;

    let flow = Flow::new();
    let code = browser.authorize(&idp, &flow, &[]).await.callback().code();
    let wrong = idp
        .api
        .post(idp.url("/token"))
        .basic_auth(CLIENT_ID, Some("not-the-secret"))
        .form(&form(&code, &flow, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("www-authenticate").is_some());
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_client");

    let flow = Flow::new();
    let code = browser.authorize(&idp, &flow, &[]).await.callback().code();
    let post = idp
        .api
        .post(idp.url("/token"))
        .form(&form(
            &code,
            &flow,
            &[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200, "client_secret_post");

    let flow = Flow::new();
    let code = browser.authorize(&idp, &flow, &[]).await.callback().code();
    let none = idp
        .api
        .post(idp.url("/token"))
        .form(&form(&code, &flow, &[("client_id", CLIENT_ID)]))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
}

#[tokio::test]
async fn the_openidconnect_crate_completes_a_step_up_flow_end_to_end() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let client = CoreClient::from_provider_metadata(
        idp.metadata().await,
        ClientId::new(CLIENT_ID.into()),
        Some(ClientSecret::new(CLIENT_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(idp.redirect_uri.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_auth_context_value(AuthenticationContextClass::new(ACR_MFA.into()))
        .set_max_age(std::time::Duration::from_secs(600))
        .set_pkce_challenge(challenge)
        .url();
    let browser = idp.browser();
    let login = browser
        .follow(browser.get(&url).await)
        .await
        .expect_page("/login");
    let mfa = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/mfa");
    let callback = browser
        .submit_code(&mfa, &totp_code("alice", 0), false)
        .await
        .callback();
    assert_eq!(callback.state.as_deref(), Some(state.secret().as_str()));
    let response = client
        .exchange_code(AuthorizationCode::new(callback.code()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("openidconnect redeems the code");
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = response
        .id_token()
        .unwrap()
        .claims(&verifier, &nonce)
        .expect("verifies");
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some(ACR_MFA));
    assert!(response.access_token().secret().split('.').count() == 3);
    // A client built from the metadata takes its allowed algorithms from
    // `id_token_signing_alg_values_supported`, so its default verifier accepts ES256 too.
    assert!(
        response
            .id_token()
            .unwrap()
            .claims(&client.id_token_verifier(), &nonce)
            .is_ok()
    );
}

#[tokio::test]
async fn carol_enrols_a_totp_from_the_secret_on_the_page_and_it_counts_as_mfa() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let login = browser
        .authorize(&idp, &flow, &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/login");
    let enroll = browser
        .submit_login(&login, "carol", "carol-password")
        .await
        .expect_page("/enroll");
    assert!(
        enroll.html.contains("src=\"data:image/svg+xml;base64,"),
        "a QR code image"
    );
    let secret = enroll
        .element_text("totp-secret")
        .expect("the secret is shown for manual entry");
    let wrong = browser
        .submit_code(&enroll, &totp_code_for_secret(&secret, 5), false)
        .await
        .expect_page("/enroll");
    assert_eq!(
        wrong.element_text("totp-secret").as_deref(),
        Some(secret.as_str()),
        "same secret after a typo"
    );
    let callback = browser
        .submit_code(&wrong, &totp_code_for_secret(&secret, 0), false)
        .await
        .callback();
    let tokens = idp.redeem(&callback.code(), &flow).await;
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);
    assert_eq!(amr(&tokens.id_claims), ["pwd", "otp", "mfa"]);

    // Enrolled for the life of the process: the next step-up asks for her code.
    let flow = Flow::new();
    let mfa = browser
        .authorize(&idp, &flow, &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/mfa");
    let callback = browser
        .submit_code(&mfa, &totp_code_for_secret(&secret, 1), false)
        .await
        .callback();
    assert_eq!(
        idp.redeem(&callback.code(), &flow).await.id_claims["acr"],
        ACR_MFA
    );
}

#[tokio::test]
async fn logout_with_an_id_token_hint_ends_the_op_session_and_returns_to_the_client() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, tokens) = idp.login(&browser, "alice", &[]).await;
    // Not registered for the client: no redirect.
    let mut bad = idp.url("/logout");
    bad.query_pairs_mut()
        .append_pair("id_token_hint", &tokens.id_token)
        .append_pair("post_logout_redirect_uri", "http://evil.example/");
    let refused = browser.get(&bad).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.headers().get("location").is_none());
    // The session is still there.
    browser.authorize(&idp, &Flow::new(), &[]).await.callback().code();

    let mut url = idp.url("/logout");
    url.query_pairs_mut()
        .append_pair("id_token_hint", &tokens.id_token)
        .append_pair("post_logout_redirect_uri", &idp.post_logout_redirect_uri)
        .append_pair("client_id", CLIENT_ID)
        .append_pair("state", "bye");
    let callback = browser.follow(browser.get(&url).await).await.callback();
    assert_eq!(
        callback.url.as_str().split('?').next(),
        Some(idp.post_logout_redirect_uri.as_str())
    );
    assert_eq!(callback.state.as_deref(), Some("bye"));
    browser
        .authorize(&idp, &Flow::new(), &[])
        .await
        .expect_page("/login");
}

#[tokio::test]
async fn logout_refuses_a_hint_signed_by_someone_else() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    idp.set_next_token(json!({ "signature": "wrong-key" })).await;
    let (_, tokens) = idp.login(&browser, "alice", &[]).await;
    let mut url = idp.url("/logout");
    url.query_pairs_mut()
        .append_pair("id_token_hint", &tokens.id_token)
        .append_pair("post_logout_redirect_uri", &idp.post_logout_redirect_uri);
    let response = browser.get(&url).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    // Without any parameter: the OP asks (RP-Initiated Logout 1.0 §2), then signs out.
    let ask = browser
        .follow(browser.get(&idp.url("/logout")).await)
        .await
        .expect_page("/logout");
    let page = browser.submit(&ask, &[]).await.page();
    assert_eq!(page.status, 200);
    assert!(page.text().contains("signed out of Fabrikam ID"));
    browser
        .authorize(&idp, &Flow::new(), &[])
        .await
        .expect_page("/login");
}

#[tokio::test]
async fn a_login_post_without_the_csrf_token_is_refused_and_signs_nobody_in() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let login = browser.authorize(&idp, &flow, &[]).await.expect_page("/login");
    let response = browser
        .client
        .post(login.form_action())
        .form(&[("username", "alice"), ("password", "alice-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let forged = browser
        .client
        .post(login.form_action())
        .form(&[
            ("username", "alice"),
            ("password", "alice-password"),
            ("csrf_token", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    browser
        .authorize(&idp, &Flow::new(), &[])
        .await
        .expect_page("/login");
}

#[tokio::test]
async fn garbage_gets_a_clean_4xx_and_the_server_keeps_answering() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let api = &idp.api;
    let long = format!("{}?client_id={}", idp.url("/authorize"), "a".repeat(10 * 1024));
    let r = api.get(long).send().await.unwrap();
    assert!(r.status().is_client_error(), "10 kB query: {}", r.status());

    let r = api
        .get(format!(
            "{}?client_id=%FF%FE&redirect_uri=%C3",
            idp.url("/authorize")
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "non-UTF-8 query: {}", r.status());

    let r = api
        .post(idp.url("/token"))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");

    let r = api
        .post(idp.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'c', b'o', b'd', b'e', b'=', 0xff, 0xfe])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "non-UTF-8 form: {}", r.status());

    let r = api
        .post(idp.url("/login"))
        .body("{}")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    let r = api
        .post(idp.url("/mfa"))
        .form(&[("code", "123456")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    let r = api.get(idp.url("/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let r = api.delete(idp.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = api.get(idp.url("/no-such-page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = api
        .get(format!("{}?id_token_hint=x.y.z", idp.url("/logout")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let r = api
        .get(idp.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "still answering");
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_the_stylesheet_is_served() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let r = browser.get(&idp.authorize_url(&Flow::new(), &[])).await;
    let login = browser.follow(r).await.expect_page("/login");
    assert!(!login.html.contains("<script") && !login.html.contains("style="));
    let r = browser.get(&idp.url("/login")).await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self' http://127.0.0.1:18080"),
        "{csp}"
    );
    let cookie = browser.cookie(SESSION_COOKIE);
    assert!(cookie.is_some(), "the OP session cookie has its own name");
    let css = browser.get(&idp.url("/static/idp.css")).await;
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let home = browser.get(&idp.url("/")).await;
    assert!(home.text().await.unwrap().contains("Fabrikam ID"));
}

// ---- test control ----

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
    let r = idp
        .api
        .get(idp.url("/userinfo"))
        .bearer_auth(&wrong.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    idp.set_next_token(json!({ "signature": "none" })).await;
    let (flow, none) = idp.login(&idp.browser(), "alice", &[]).await;
    assert_eq!(jwt_header(&none.id_token)["alg"], "none");
    assert!(none.id_token.ends_with('.'));
    assert!(idp.verify_id_token(&none.id_token, &flow.nonce).await.is_err());

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
    let flow = Flow::new();
    let login = browser.authorize(&idp, &flow, &[]).await.expect_page("/login");
    let code = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .callback()
        .code();
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
async fn a_max_age_older_than_the_password_login_asks_for_it_again() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    idp.login(&browser, "alice", &[]).await;
    idp.set_clock_offset(120).await;
    browser
        .authorize(&idp, &Flow::new(), &[("max_age", "300")])
        .await
        .callback()
        .code();
    let login = browser
        .authorize(&idp, &Flow::new(), &[("max_age", "60")])
        .await
        .expect_page("/login");
    assert!(
        login.html.contains("value=\"alice\""),
        "the user name is filled in: {}",
        login.html
    );
}

#[tokio::test]
async fn authorize_also_accepts_a_form_post() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let url = idp.authorize_url(&flow, &[]);
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let response = browser
        .client
        .post(idp.url("/authorize"))
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let login = browser.follow(response).await.expect_page("/login");
    let callback = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .callback();
    assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
}

#[tokio::test]
async fn the_step_up_helper_yields_mfa_tokens() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, tokens) = idp.step_up(&browser, "bob", 0, &[]).await;
    idp.verify_id_token(&tokens.id_token, &flow.nonce)
        .await
        .expect("verifies");
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);
    // follow_all stops at the first page that is not a redirect: here the login page.
    let other = idp.browser();
    let response = other.get(&idp.authorize_url(&Flow::new(), &[])).await;
    let last = other.follow_all(response).await;
    assert_eq!((last.url().path(), last.status().as_u16()), ("/login", 200));
}

#[tokio::test]
async fn a_code_is_bound_to_its_redirect_uri() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let login = browser.authorize(&idp, &flow, &[]).await.expect_page("/login");
    let code = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .callback()
        .code();
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

// ---- hardening: throttling, resource bounds, logout confirmation ----

/// `browser` signed in as `user` with the password, on the second-factor page of a step-up.
async fn at_the_code_page(idp: &TestIdp, browser: &Browser, user: &str) -> (Flow, Page) {
    let flow = Flow::new();
    let login = browser
        .authorize(idp, &flow, &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/login");
    let page = browser
        .submit_login(&login, user, &format!("{user}-password"))
        .await
        .page();
    (flow, page)
}

#[tokio::test]
async fn five_wrong_codes_lock_the_users_code_checks_and_another_user_is_unaffected() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, mut mfa) = at_the_code_page(&idp, &browser, "alice").await;
    assert_eq!(mfa.url.path(), "/mfa");
    for i in 0..4 {
        mfa = browser
            .submit_code(&mfa, &totp_code("alice", 5 + i), false)
            .await
            .expect_page("/mfa");
        assert!(mfa.text().contains("not right"), "{}", mfa.text());
    }
    // The fifth wrong code starts the lock, and the page says so at once.
    let locked = browser
        .submit_code(&mfa, &totp_code("alice", 9), false)
        .await
        .page();
    assert_eq!(locked.status, 429, "{}", locked.text());
    assert!(
        locked.text().contains("Too many attempts. Try again in 60 s"),
        "{}",
        locked.text()
    );
    // The right code is refused too while the lock lasts, with Retry-After (RFC 6585 §4).
    let right = browser
        .submit_raw(&locked, &[("code", &totp_code("alice", 0))])
        .await;
    assert_eq!(right.status(), 429);
    let retry_after: u64 = right.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let text = right.text().await.unwrap();
    assert!(text.contains("Too many attempts. Try again in"), "{text}");
    // A new sign-in in another browser does not escape the lock: it is the user's.
    let other = idp.browser();
    let (_, mfa) = at_the_code_page(&idp, &other, "alice").await;
    let again = other
        .submit_code(&mfa, &totp_code("alice", 0), false)
        .await
        .page();
    assert_eq!(again.status, 429);

    // bob is not affected.
    let (flow, tokens) = idp.step_up(&idp.browser(), "bob", 0, &[]).await;
    idp.verify_id_token(&tokens.id_token, &flow.nonce)
        .await
        .expect("bob steps up");
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);
}

#[tokio::test]
async fn wrong_enrolment_codes_count_towards_the_lock_too() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, mut enroll) = at_the_code_page(&idp, &browser, "carol").await;
    assert_eq!(enroll.url.path(), "/enroll");
    let secret = enroll.element_text("totp-secret").unwrap();
    for i in 0..4 {
        enroll = browser
            .submit_code(&enroll, &totp_code_for_secret(&secret, 5 + i), false)
            .await
            .expect_page("/enroll");
    }
    let locked = browser
        .submit_code(&enroll, &totp_code_for_secret(&secret, 9), false)
        .await
        .page();
    assert_eq!(locked.status, 429, "{}", locked.text());
    let right = browser
        .submit_code(&locked, &totp_code_for_secret(&secret, 0), false)
        .await
        .page();
    assert_eq!(right.status, 429);
    assert!(right.text().contains("Too many attempts"), "{}", right.text());
}

#[tokio::test]
async fn many_concurrent_wrong_logins_all_get_the_login_page_again() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let mut logins = tokio::task::JoinSet::new();
    // Four guesses per name, so every one of them reaches argon2 under the per-name throttle.
    for i in 0..24 {
        let name = ["alice", "bob", "mallory", "nobody", "carol", "eve"][i % 6];
        let browser = idp.browser();
        let page = browser
            .authorize(&idp, &Flow::new(), &[])
            .await
            .expect_page("/login");
        logins.spawn(async move {
            browser
                .submit_login(&page, name, "not-the-password")
                .await
                .expect_page("/login")
                .text()
        });
    }
    while let Some(text) = logins.join_next().await {
        assert!(text.unwrap().contains("do not match"));
    }
    // And the right password still works.
    idp.login(&idp.browser(), "alice", &[]).await;
}

#[tokio::test]
async fn five_failed_passwords_delay_the_name_even_for_the_right_one_and_another_user_is_unaffected() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let flow = Flow::new();
    let mut login = browser.authorize(&idp, &flow, &[]).await.expect_page("/login");
    for i in 0..4 {
        login = browser
            .submit_login(&login, "alice", &format!("guess-{i}"))
            .await
            .expect_page("/login");
        assert!(login.text().contains("do not match"), "{}", login.text());
    }
    // The fifth failure starts the delay, and the page says so at once.
    let delayed = browser.submit_login(&login, "alice", "guess-4").await.page();
    assert_eq!(delayed.status, 429, "{}", delayed.text());
    let message = "Too many failed sign-ins for this account. Try again in";
    assert!(delayed.text().contains(message), "{}", delayed.text());
    // The right password is refused unchecked while it lasts, with Retry-After (RFC 6585 §4).
    let right = browser
        .submit_raw(&delayed, &[("username", "alice"), ("password", "alice-password")])
        .await;
    assert_eq!(right.status(), 429);
    let retry_after: u64 = right.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let text = right.text().await.unwrap();
    assert!(text.contains(message), "{text}");
    assert!(!signed_in(&idp, &browser).await, "nobody signed in");
    // The delay is the name's: another browser gets it too.
    let other = idp.browser();
    let login = other
        .authorize(&idp, &Flow::new(), &[])
        .await
        .expect_page("/login");
    let again = other.submit_login(&login, "alice", "alice-password").await.page();
    assert_eq!(again.status, 429, "{}", again.text());
    // A name nobody has is delayed in the same way, so the refusal reveals nothing.
    let mut login = other
        .authorize(&idp, &Flow::new(), &[])
        .await
        .expect_page("/login");
    for i in 0..4 {
        login = other
            .submit_login(&login, "mallory", &format!("guess-{i}"))
            .await
            .expect_page("/login");
    }
    let unknown = other.submit_login(&login, "mallory", "guess-4").await.page();
    assert_eq!(unknown.status, 429, "{}", unknown.text());
    assert!(unknown.text().contains(message), "{}", unknown.text());

    // bob is not affected, in the same browser.
    let login = browser.authorize(&idp, &flow, &[]).await.expect_page("/login");
    let callback = browser
        .submit_login(&login, "bob", "bob-password")
        .await
        .callback();
    assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
    let tokens = idp.redeem(&callback.code(), &flow).await;
    assert_eq!(tokens.id_claims["sub"], "bob");
}

#[tokio::test]
async fn a_state_or_nonce_over_512_bytes_is_refused_with_invalid_request() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let long = "x".repeat(513);
    let mut flow = Flow::new();
    flow.state = long.clone();
    let callback = browser.authorize(&idp, &flow, &[]).await.callback();
    assert_eq!(callback.error.as_deref(), Some("invalid_request"));
    assert_eq!(callback.state.as_deref(), Some(long.as_str()));
    let flow = Flow::new();
    let callback = browser
        .authorize(&idp, &flow, &[("nonce", &long)])
        .await
        .callback();
    assert_eq!(callback.error.as_deref(), Some("invalid_request"));
    assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
    let mut flow = Flow::new();
    flow.state = "y".repeat(512);
    browser.authorize(&idp, &flow, &[]).await.expect_page("/login");
}

#[tokio::test]
async fn a_step_up_after_an_old_password_session_asks_only_the_code_and_gives_a_new_auth_time() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, first) = idp.login(&browser, "alice", &[]).await;
    let password_time = first.id_claims["auth_time"].as_i64().unwrap();
    // 700 s later the password is older than max_age=600, but the step-up's fresh second
    // factor is an active authentication of its own (OIDC Core §3.1.2.1 max_age).
    idp.set_clock_offset(700).await;
    let flow = Flow::new();
    let mfa = browser
        .authorize(&idp, &flow, &[("acr_values", ACR_MFA), ("max_age", "600")])
        .await
        .expect_page("/mfa");
    let callback = browser
        .submit_code(&mfa, &totp_code("alice", 0), false)
        .await
        .callback();
    let tokens = idp.redeem(&callback.code(), &flow).await;
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);
    assert_eq!(amr(&tokens.id_claims), ["pwd", "otp", "mfa"]);
    let auth_time = tokens.id_claims["auth_time"].as_i64().unwrap();
    assert!(auth_time >= password_time + 700, "a new auth_time: {auth_time}");
    // max_age=0 and prompt=login still ask for the password, step-up or not.
    for extra in [("max_age", "0"), ("prompt", "login")] {
        browser
            .authorize(&idp, &Flow::new(), &[("acr_values", ACR_MFA), extra])
            .await
            .expect_page("/login");
    }
}

#[tokio::test]
async fn a_code_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, mfa) = at_the_code_page(&idp, &browser, "alice").await;
    let code = totp_code("alice", 0);
    let action = mfa.form_action();
    let missing = browser.post_raw(&action, &[("code", &code)]).await;
    assert_eq!(missing.status(), 403);
    let forged = browser
        .post_raw(&action, &[("code", &code), ("csrf_token", "forged")])
        .await;
    assert_eq!(forged.status(), 403);
    // Nothing changed: the code was not used up and the pending sign-in is intact.
    let callback = browser.submit_code(&mfa, &code, false).await.callback();
    assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
    assert_eq!(
        idp.redeem(&callback.code(), &flow).await.id_claims["acr"],
        ACR_MFA
    );
}

#[tokio::test]
async fn an_enrolment_post_without_the_csrf_token_is_refused_and_enrols_nothing() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, enroll) = at_the_code_page(&idp, &browser, "carol").await;
    assert_eq!(enroll.url.path(), "/enroll");
    let secret = enroll.element_text("totp-secret").unwrap();
    let code = totp_code_for_secret(&secret, 0);
    let action = enroll.form_action();
    assert_eq!(browser.post_raw(&action, &[("code", &code)]).await.status(), 403);
    let forged = browser
        .post_raw(&action, &[("code", &code), ("csrf_token", "forged")])
        .await;
    assert_eq!(forged.status(), 403);
    // Still not enrolled: the enrolment page is offered again, with the same secret.
    let again = browser
        .follow(browser.get(&action).await)
        .await
        .expect_page("/enroll");
    assert_eq!(again.element_text("totp-secret"), Some(secret));
    let callback = browser.submit_code(&again, &code, false).await.callback();
    assert_eq!(
        idp.redeem(&callback.code(), &flow).await.id_claims["acr"],
        ACR_MFA
    );
}

/// Whether `browser` still has an OP session (a plain request is answered without a page).
async fn signed_in(idp: &TestIdp, browser: &Browser) -> bool {
    matches!(
        browser.authorize(idp, &Flow::new(), &[]).await,
        Landing::Callback(_)
    )
}

fn logout_url(idp: &TestIdp, params: &[(&str, &str)]) -> url::Url {
    let mut url = idp.url("/logout");
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    url
}

#[tokio::test]
async fn logout_without_a_hint_asks_and_only_the_confirmation_with_its_csrf_token_ends_the_session() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    idp.login(&browser, "alice", &[]).await;

    // A bare GET (e.g. an <img> on another site) only asks.
    let ask = browser
        .follow(browser.get(&logout_url(&idp, &[])).await)
        .await
        .expect_page("/logout");
    assert!(ask.text().contains("Sign out of Fabrikam ID?"), "{}", ask.text());
    assert!(ask.text().contains("Alice Ashford"));
    assert!(signed_in(&idp, &browser).await, "asking changes nothing");

    // POSTs without this session's token change nothing.
    let logout = idp.url("/logout");
    let forged = browser.post_raw(&logout, &[("csrf_token", "forged")]).await;
    assert_eq!(forged.status(), 403);
    let stranger = idp.browser();
    let bare = stranger.post_raw(&logout, &[]).await;
    assert!(bare.headers().get("location").is_none());
    let bare = browser.post_raw(&logout, &[]).await;
    assert_eq!(bare.status(), 200, "a bare POST is a request, so it only asks");
    assert!(bare.text().await.unwrap().contains("Sign out of Fabrikam ID?"));
    assert!(signed_in(&idp, &browser).await);

    // The confirmation ends it.
    let done = browser.submit(&ask, &[]).await.page();
    assert_eq!(done.status, 200);
    assert!(
        done.text().contains("signed out of Fabrikam ID"),
        "{}",
        done.text()
    );
    assert!(!signed_in(&idp, &browser).await);
}

#[tokio::test]
async fn logout_with_a_hint_for_another_user_asks_and_the_confirmation_returns_to_the_client() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let bobs = idp.browser();
    let (_, bob_tokens) = idp.login(&bobs, "bob", &[]).await;
    let browser = idp.browser();
    idp.login(&browser, "alice", &[]).await;

    let url = logout_url(
        &idp,
        &[
            ("id_token_hint", &bob_tokens.id_token),
            ("post_logout_redirect_uri", &idp.post_logout_redirect_uri),
            ("state", "bye"),
        ],
    );
    let ask = browser
        .follow(browser.get(&url).await)
        .await
        .expect_page("/logout");
    assert!(
        signed_in(&idp, &browser).await,
        "bob's hint does not sign alice out"
    );
    let fields = ask.hidden_fields();
    let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(
        field("post_logout_redirect_uri"),
        Some(idp.post_logout_redirect_uri.as_str())
    );
    assert_eq!(field("state"), Some("bye"));
    assert_eq!(field("client_id"), Some(CLIENT_ID));
    assert!(field("id_token_hint").is_none(), "no token in the page");

    let callback = browser.submit(&ask, &[]).await.callback();
    assert_eq!(
        callback.url.as_str().split('?').next(),
        Some(idp.post_logout_redirect_uri.as_str())
    );
    assert_eq!(callback.state.as_deref(), Some("bye"));
    assert!(!signed_in(&idp, &browser).await);
    assert!(signed_in(&idp, &bobs).await, "bob's own session is untouched");
}

#[tokio::test]
async fn logout_with_a_valid_hint_or_without_an_op_session_needs_no_confirmation() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, tokens) = idp.login(&browser, "alice", &[]).await;
    // By POST too (RP-Initiated Logout 1.0 §2: OPs support GET and POST).
    let response = browser
        .post_raw(
            &idp.url("/logout"),
            &[
                ("id_token_hint", &tokens.id_token),
                ("post_logout_redirect_uri", &idp.post_logout_redirect_uri),
                ("state", "s1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let callback = browser.follow(response).await.callback();
    assert_eq!(callback.state.as_deref(), Some("s1"));
    assert!(!signed_in(&idp, &browser).await);

    // No OP session: straight back to the client.
    let url = logout_url(
        &idp,
        &[
            ("client_id", CLIENT_ID),
            ("post_logout_redirect_uri", &idp.post_logout_redirect_uri),
            ("state", "s2"),
        ],
    );
    let callback = browser.follow(browser.get(&url).await).await.callback();
    assert_eq!(callback.state.as_deref(), Some("s2"));
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
