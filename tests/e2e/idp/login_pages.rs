//! The pages a person sees: password, second factor, enrolment; their CSRF protection,
//! throttles, and the answers to garbage.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn a_wrong_password_shows_the_login_page_again_and_changes_nothing() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, login) = idp.at_the_login_page(&browser, &[]).await;
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
    let (_, mfa) = idp.at_the_code_page(&browser, "alice").await;
    assert_eq!(mfa.path, "/mfa");
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
async fn carol_enrols_a_totp_from_the_secret_on_the_page_and_it_counts_as_mfa() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, login) = idp.at_the_login_page(&browser, &[("acr_values", ACR_MFA)]).await;
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
    let tokens = idp
        .finish_with_code(&browser, &wrong, &flow, &totp_code_for_secret(&secret, 0))
        .await;
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);
    assert_eq!(amr(&tokens.id_claims), ["pwd", "otp", "mfa"]);

    // Enrolled for the life of the process: the next step-up asks for her code.
    let (_, tokens) = idp
        .sso_step_up(&browser, &totp_code_for_secret(&secret, 1), &[])
        .await;
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);
}

#[tokio::test]
async fn a_login_post_without_the_csrf_token_is_refused_and_signs_nobody_in() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, login) = idp.at_the_login_page(&browser, &[]).await;
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
    // A garbage hint without a session: nothing to end; the signed-out page says why.
    let r = api
        .get(format!("{}?id_token_hint=x.y.z", idp.url("/logout")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("did not issue"));

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
    // Nobody is signed in: no provider session, only the encrypted pending sign-in.
    assert_eq!(browser.cookie(SESSION_COOKIE), None);
    assert!(browser.cookie(SIGNIN_COOKIE).is_some());
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

#[tokio::test]
async fn five_wrong_codes_lock_the_users_code_checks_and_another_user_is_unaffected() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, mut mfa) = idp.at_the_code_page(&browser, "alice").await;
    assert_eq!(mfa.path, "/mfa");
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
    let (_, mfa) = idp.at_the_code_page(&other, "alice").await;
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
    let (_, mut enroll) = idp.at_the_code_page(&browser, "carol").await;
    assert_eq!(enroll.path, "/enroll");
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
    assert!(!idp.signed_in(&browser).await, "nobody signed in");
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
async fn a_code_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, mfa) = idp.at_the_code_page(&browser, "alice").await;
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
    let (flow, enroll) = idp.at_the_code_page(&browser, "carol").await;
    assert_eq!(enroll.path, "/enroll");
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
