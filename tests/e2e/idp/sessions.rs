//! Provider sessions kept server-side (issue 11, findings 2 and 6): the cookie is only an id, a
//! session ends at sign-out for every copy of it, at its idle timeout and at its absolute
//! lifetime; anonymous requests store nothing, so no flood of them can push out a sign-in in
//! progress.

use std::time::Duration;

use fabrikam::idp::TestProvider;

use crate::support::*;

/// alice signed in with both factors in `browser`, and the value of her session cookie.
async fn alice_stepped_up(idp: &TestIdp, browser: &Browser) -> (Tokens, String) {
    let (_, tokens) = idp.step_up(browser, "alice", 0, &[]).await;
    let cookie = browser.cookie(SESSION_COOKIE).expect("a session cookie");
    (tokens, cookie)
}

#[tokio::test]
async fn a_copy_of_the_session_cookie_taken_before_sign_out_signs_nobody_in_afterwards() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (tokens, copied) = alice_stepped_up(&idp, &browser).await;

    // The copy works while the session lives (this is what a stolen cookie gives)...
    let thief = idp.browser();
    thief.set_cookie(SESSION_COOKIE, &copied);
    assert!(idp.signed_in(&thief).await, "the copy names the live session");

    // ...and after alice signs out, it names nothing: not for a plain sign-in, not for a
    // step-up, whose second factor the session had already done.
    let url = idp.logout_url(&[("id_token_hint", &tokens.id_token)]);
    let signed_out = browser.get(&url).await;
    assert_eq!(signed_out.status(), 200);
    let thief = idp.browser();
    thief.set_cookie(SESSION_COOKIE, &copied);
    thief
        .authorize(&idp, &Flow::new(), &[])
        .await
        .expect_page("/login");
    thief
        .authorize(&idp, &Flow::new(), &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/login");
    assert!(idp.sessions().await.is_empty(), "nothing left server-side");
}

#[tokio::test]
async fn the_cookie_is_only_an_id_and_the_server_keeps_the_session() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, tokens) = idp.login(&browser, "alice", &[]).await;
    let cookie = browser.cookie(SESSION_COOKIE).unwrap();
    // 256 random bits, base64url: nothing to read, nothing to forge.
    assert_eq!(cookie.len(), 43, "{cookie}");
    assert!(
        cookie
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let sessions = idp.sessions().await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].username, "alice");
    assert_eq!(tokens.id_claims["sid"], sessions[0].sid.as_str());
    assert_eq!(sessions[0].clients, [CLIENT_ID]);
    assert!(!sessions[0].second_factor);
    // A guessed or stale id signs nobody in (and the browser is told to drop it).
    let guesser = idp.browser();
    guesser.set_cookie(SESSION_COOKIE, &"A".repeat(43));
    let response = guesser.get(&idp.authorize_url(&Flow::new(), &[])).await;
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with(&format!("{SESSION_COOKIE}=;")));
    assert!(cleared, "the unknown id is removed from the browser");
    guesser.follow(response).await.expect_page("/login");

    // Revocation through test control ends it too.
    assert!(idp.provider.end_session(&sessions[0].sid).await.unwrap());
    assert!(!idp.signed_in(&browser).await);
    assert!(!idp.provider.end_session(&sessions[0].sid).await.unwrap(), "gone");
}

#[tokio::test]
async fn signing_in_again_replaces_the_session_id_and_the_old_one_names_nothing() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, first) = idp.login(&browser, "alice", &[]).await;
    let before = browser.cookie(SESSION_COOKIE).unwrap();
    // prompt=login: the password again, under a new id (against fixation); same sid.
    let (flow, page) = idp.at_the_login_page(&browser, &[("prompt", "login")]).await;
    let callback = browser
        .submit_login(&page, "alice", "alice-password")
        .await
        .callback();
    let again = idp.redeem(&callback.code(), &flow).await;
    let after = browser.cookie(SESSION_COOKIE).unwrap();
    assert_ne!(before, after);
    assert_eq!(first.id_claims["sid"], again.id_claims["sid"]);
    let old = idp.browser();
    old.set_cookie(SESSION_COOKIE, &before);
    assert!(!idp.signed_in(&old).await);
    // The second factor rotates it as well.
    idp.sso_step_up(&browser, &totp_code("alice", 0), &[]).await;
    assert_ne!(browser.cookie(SESSION_COOKIE).unwrap(), after);
    assert_eq!(idp.sessions().await.len(), 1);
    assert!(idp.sessions().await[0].second_factor);
}

#[tokio::test]
async fn an_idle_session_ends_but_use_keeps_it_alive() {
    let idp = TestIdp::start(TestProvider::builder().session_idle_secs(3)).await;
    let browser = idp.browser();
    idp.login(&browser, "alice", &[]).await;
    // Each use restarts the idle timer (times are whole seconds, so 1 s apart stays under 3).
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(idp.signed_in(&browser).await);
    }
    tokio::time::sleep(Duration::from_millis(4_100)).await;
    browser
        .authorize(&idp, &Flow::new(), &[])
        .await
        .expect_page("/login");
    assert!(idp.sessions().await.is_empty());
}

#[tokio::test]
async fn a_busy_session_still_ends_at_its_lifetime() {
    let idp = TestIdp::start(
        TestProvider::builder()
            .session_lifetime_secs(3)
            .session_idle_secs(600),
    )
    .await;
    let browser = idp.browser();
    idp.login(&browser, "alice", &[]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(idp.signed_in(&browser).await, "in use");
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    browser
        .authorize(&idp, &Flow::new(), &[])
        .await
        .expect_page("/login");
}

#[tokio::test]
async fn a_flood_of_anonymous_authorize_requests_stores_nothing_and_evicts_no_sign_in() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, login) = idp.at_the_login_page(&browser, &[]).await;

    // 10,500 anonymous requests (the old table held 10,000), 16 at a time, to 127.0.0.1 only.
    let url = idp.authorize_url(&Flow::new(), &[]);
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (api, url) = (idp.api.clone(), url.clone());
        flood.spawn(async move {
            let mut pages = 0;
            for _ in 0..10_500 / 16 + 1 {
                let response = api.get(url.clone()).send().await.expect("the OP answers");
                assert_eq!(response.status(), 302);
                pages += 1;
            }
            pages
        });
    }
    let mut sent = 0;
    // Bounded in time as well as in count.
    let all = async {
        while let Some(pages) = flood.join_next().await {
            sent += pages.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(180), all)
        .await
        .expect("the flood ends within 3 minutes");
    assert!(sent >= 10_500);
    assert!(
        idp.sessions().await.is_empty(),
        "anonymous requests created no session"
    );

    // alice's sign-in, started before the flood, completes.
    let callback = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .callback();
    assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
    idp.redeem(&callback.code(), &flow).await;
}

#[tokio::test]
async fn a_tampered_sign_in_cookie_is_no_sign_in_and_no_error() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, login) = idp.at_the_login_page(&browser, &[]).await;
    let sealed = browser.cookie(SIGNIN_COOKIE).unwrap();
    let mut bytes = sealed.into_bytes();
    bytes[20] = if bytes[20] == b'A' { b'B' } else { b'A' };
    browser.set_cookie(SIGNIN_COOKIE, &String::from_utf8(bytes).unwrap());
    // The form's CSRF token was in the cookie: the post is refused and signs nobody in.
    let response = browser
        .submit_raw(&login, &[("username", "alice"), ("password", "alice-password")])
        .await;
    assert_eq!(response.status(), 403);
    assert!(idp.sessions().await.is_empty());
    // The pages say there is no sign-in in progress.
    let mfa = browser.get(&idp.url("/mfa")).await;
    assert_eq!(mfa.status(), 400);
    assert!(mfa.text().await.unwrap().contains("no sign-in in progress"));
}
