//! `/authorize` (OIDC Core §3.1.2): assurance (`acr_values`, the `claims` parameter,
//! `max_age`, `prompt`), PKCE, exact redirect URIs, and errors that each say what is wrong.

use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn acr_values_prompt_the_totp_and_yield_the_multi_factor_acr_with_a_new_auth_time() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, mfa) = idp.at_the_code_page(&browser, "alice").await;
    assert_eq!(mfa.path, "/mfa");
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
    let (_, tokens) = idp.sso_step_up(&browser, &totp_code("alice", 0), &[]).await;
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);
    assert!(tokens.id_claims["auth_time"].as_i64().unwrap() >= password_time + 60);

    // A second step-up asks again, even though this session already did MFA.
    let (_, tokens) = idp.sso_step_up(&browser, &totp_code("alice", 1), &[]).await;
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);
}

#[tokio::test]
async fn with_mfa_at_login_a_remembered_browser_skips_the_totp_honestly_but_a_step_up_still_asks() {
    let idp = spawn_idp(IdpOptions {
        mfa_at_login: true,
        ..IdpOptions::default()
    })
    .await;
    let browser = idp.browser();
    let (flow, login) = idp.at_the_login_page(&browser, &[]).await;
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
    let (_, tokens) = idp.sso_step_up(&browser, &totp_code("alice", 1), &[]).await;
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);

    // The cookie is per user: bob in the same browser is asked for his code.
    browser.forget_session();
    let (_, login) = idp.at_the_login_page(&browser, &[]).await;
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
    let tokens = idp
        .finish_with_code(&browser, &mfa, &flow, &totp_code("bob", 0))
        .await;
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
    let tokens = idp
        .finish_with_code(&browser, &mfa, &flow, &totp_code("alice", 0))
        .await;
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
async fn each_authorization_error_carries_its_own_description() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let error = |callback: Callback| {
        (
            callback.error.expect("an error"),
            callback.error_description.expect("an error_description"),
        )
    };
    let browser = idp.browser();
    let nobody = error(
        browser
            .authorize(&idp, &Flow::new(), &[("prompt", "none")])
            .await
            .callback(),
    );
    let unmet = error(
        browser
            .authorize(
                &idp,
                &Flow::new(),
                &[("claims", &essential_acr(&["urn:example:gold"]))],
            )
            .await
            .callback(),
    );
    idp.login(&browser, "alice", &[]).await;
    idp.set_clock_offset(120).await;
    let too_old = error(
        browser
            .authorize(&idp, &Flow::new(), &[("prompt", "none"), ("max_age", "60")])
            .await
            .callback(),
    );
    let fresh = error(
        browser
            .authorize(&idp, &Flow::new(), &[("prompt", "none"), ("max_age", "0")])
            .await
            .callback(),
    );
    let step_up = error(
        browser
            .authorize(&idp, &Flow::new(), &[("prompt", "none"), ("acr_values", ACR_MFA)])
            .await
            .callback(),
    );
    let bad_scope = error(
        browser
            .authorize(&idp, &Flow::new(), &[("scope", "profile")])
            .await
            .callback(),
    );
    assert_eq!(nobody.0, "login_required");
    assert!(nobody.1.contains("no user is signed in"), "{}", nobody.1);
    assert_eq!(too_old.0, "login_required");
    assert!(too_old.1.contains("older than max_age"), "{}", too_old.1);
    assert_eq!(fresh.0, "login_required");
    assert!(fresh.1.contains("max_age=0"), "{}", fresh.1);
    assert_eq!(step_up.0, "interaction_required");
    assert!(step_up.1.contains("second factor"), "{}", step_up.1);
    assert_eq!(unmet.0, "unmet_authentication_requirements");
    assert!(
        unmet.1.contains(ACR_MFA) && unmet.1.contains(ACR_PASSWORD),
        "{}",
        unmet.1
    );
    assert_eq!(bad_scope.0, "invalid_scope");
    let all = [
        &nobody.1,
        &too_old.1,
        &fresh.1,
        &step_up.1,
        &unmet.1,
        &bad_scope.1,
    ];
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "{all:#?}");

    // With IDP_MFA_AT_LOGIN, a silent request of a browser not remembered says so.
    let strict = spawn_idp(IdpOptions {
        mfa_at_login: true,
        ..IdpOptions::default()
    })
    .await;
    let browser = strict.browser();
    let (_, login) = strict.at_the_login_page(&browser, &[]).await;
    browser
        .submit_login(&login, "bob", "bob-password")
        .await
        .expect_page("/mfa");
    let at_login = error(
        browser
            .authorize(&strict, &Flow::new(), &[("prompt", "none")])
            .await
            .callback(),
    );
    assert_eq!(at_login.0, "interaction_required");
    assert!(at_login.1.contains("IDP_MFA_AT_LOGIN"), "{}", at_login.1);
    assert_ne!(at_login.1, step_up.1);
}
