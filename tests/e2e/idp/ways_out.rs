//! The ways out of Fabrikam ID's sign-in pages and what they say: Cancel answers the client
//! with `access_denied` (OIDC Core §3.1.2.6), "Not alice?" signs out and starts the same
//! request over, the code pages say which application asks and why, and the remember-browser
//! box appears only where it changes something, ticked when the browser is remembered.

use reqwest::StatusCode;

use crate::support::*;

fn location(response: &reqwest::Response) -> url::Url {
    let raw = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .expect("a redirect");
    response.url().join(raw).unwrap()
}

fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn cancel_on_the_code_page_returns_access_denied_with_the_state_and_keeps_the_session() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, mfa) = idp.at_the_code_page(&browser, "alice").await;
    assert_eq!(mfa.path, "/mfa");
    let cancelled = browser.press(&mfa, "/cancel").await;
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    let to = location(&cancelled);
    assert!(to.as_str().starts_with(&idp.redirect_uri), "{to}");
    assert_eq!(query(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&to, "state").as_deref(), Some(flow.state.as_str()));
    assert_eq!(query(&to, "code"), None, "no code");
    // The request is over: a second Cancel has nothing to cancel.
    let again = browser.press(&mfa, "/cancel").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    // The password session stays: a plain sign-in needs no page.
    assert!(idp.signed_in(&browser).await);
    idp.sso_code(&browser, &[]).await;
}

#[tokio::test]
async fn cancel_on_the_login_and_enrolment_pages_returns_access_denied_too() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, login) = idp.at_the_login_page(&browser, &[]).await;
    assert!(
        login.text().contains("Cancel and return to Fabrikam intranet"),
        "{}",
        login.text()
    );
    assert!(!login.text().contains("Not "), "nobody to switch from yet");
    let to = location(&browser.press(&login, "/cancel").await);
    assert_eq!(query(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&to, "state").as_deref(), Some(flow.state.as_str()));

    let (flow, enroll) = idp.at_the_code_page(&browser, "carol").await;
    assert_eq!(enroll.path, "/enroll");
    let to = location(&browser.press(&enroll, "/cancel").await);
    assert_eq!(query(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&to, "state").as_deref(), Some(flow.state.as_str()));
}

#[tokio::test]
async fn cancel_without_the_pages_csrf_token_changes_nothing() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, mfa) = idp.at_the_code_page(&browser, "alice").await;
    let forged = browser
        .post_raw(&mfa.url.join("cancel").unwrap(), &[("csrf_token", "forged")])
        .await;
    assert!(forged.status().is_client_error(), "{}", forged.status());
    assert!(forged.headers().get(reqwest::header::LOCATION).is_none());
    // The pending request is intact: the code completes it.
    idp.finish_with_code(&browser, &mfa, &flow, &totp_code("alice", 0))
        .await;
}

#[tokio::test]
async fn not_alice_signs_out_and_the_same_request_continues_as_bob() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (flow, mfa) = idp.at_the_code_page(&browser, "alice").await;
    assert!(mfa.text().contains("Not alice?"), "{}", mfa.text());
    let switched = browser.press(&mfa, "/switch-user").await;
    assert_eq!(switched.status(), StatusCode::SEE_OTHER);
    assert!(location(&switched).path().ends_with("/login"));
    assert_eq!(
        browser.cookie(SESSION_COOKIE),
        None,
        "alice is signed out of Fabrikam ID"
    );
    assert!(
        idp.sessions().await.is_empty(),
        "her session ended at the provider too"
    );
    let login = browser.follow(switched).await.expect_page("/login");
    let mfa = browser
        .submit_login(&login, "bob", "bob-password")
        .await
        .expect_page("/mfa");
    assert!(mfa.text().contains("Not bob?"));
    let tokens = idp
        .finish_with_code(&browser, &mfa, &flow, &totp_code("bob", 0))
        .await;
    assert_eq!(tokens.id_claims["sub"], "bob");
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);
}

#[tokio::test]
async fn the_code_page_names_the_application_what_it_asked_for_and_whether_the_password_is_reused() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    // Password entered for this very request.
    let (_, mfa) = idp.at_the_code_page(&browser, "alice").await;
    let text = mfa.text();
    assert!(
        text.contains("Fabrikam intranet (127.0.0.1:18080) asks for a multi-factor sign-in"),
        "{text}"
    );
    assert!(text.contains("Signed in as alice with your password."), "{text}");
    assert!(
        !text.contains("fabrikam-intranet"),
        "never the technical id: {text}"
    );

    // A later step-up in the same browser: the password from the session is reused.
    let mfa = browser
        .authorize(&idp, &Flow::new(), &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/mfa");
    let text = mfa.text();
    assert!(
        text.contains("your password from just now still counts, so only the code is needed"),
        "{text}"
    );
}

#[tokio::test]
async fn with_mfa_at_login_the_code_page_says_fabrikam_id_asks_on_its_own() {
    let idp = spawn_idp(IdpOptions {
        mfa_at_login: true,
        ..IdpOptions::default()
    })
    .await;
    let browser = idp.browser();
    let (_, login) = idp.at_the_login_page(&browser, &[]).await;
    let mfa = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/mfa");
    assert!(
        mfa.text()
            .contains("when you sign in on a browser it does not remember"),
        "{}",
        mfa.text()
    );
}

#[tokio::test]
async fn the_remember_box_is_offered_only_with_mfa_at_login() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, mfa) = idp.at_the_code_page(&browser, "alice").await;
    assert!(
        !mfa.form().has_field("remember_browser"),
        "without IDP_MFA_AT_LOGIN remembering changes nothing: no box"
    );
}

#[tokio::test]
async fn the_remember_box_shows_the_browsers_state_and_unticking_it_forgets_the_browser() {
    let idp = spawn_idp(IdpOptions {
        mfa_at_login: true,
        ..IdpOptions::default()
    })
    .await;
    let browser = idp.browser();
    let (_, login) = idp.at_the_login_page(&browser, &[]).await;
    let mfa = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/mfa");
    let form = mfa.form();
    assert!(form.has_field("remember_browser"));
    assert!(
        crate::html::attrs(&mfa.html, "input[name=remember_browser][checked]", "name").is_empty(),
        "unticked on a browser not remembered"
    );
    assert!(mfa.text().contains("Remember this browser for 30 days"));
    assert!(
        mfa.text()
            .contains("Signing in here will need only your password")
    );
    browser
        .submit_code(&mfa, &totp_code("alice", 0), true)
        .await
        .callback()
        .code();
    assert!(browser.cookie(REMEMBER_COOKIE).is_some());

    // A step-up on the remembered browser: the box is ticked and says so.
    let mfa = browser
        .authorize(&idp, &Flow::new(), &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/mfa");
    assert_eq!(
        crate::html::attrs(&mfa.html, "input[name=remember_browser][checked]", "name"),
        ["remember_browser"],
        "ticked: this browser is remembered"
    );
    assert!(
        mfa.text().contains("This browser is remembered"),
        "{}",
        mfa.text()
    );
    assert!(mfa.text().contains("like this one"), "{}", mfa.text());
    // Unticked (not sent) on a page that showed it: the browser is forgotten.
    browser
        .submit_code(&mfa, &totp_code("alice", 1), false)
        .await
        .callback()
        .code();
    browser.forget_session();
    let (_, login) = idp.at_the_login_page(&browser, &[]).await;
    browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/mfa");
}

#[tokio::test]
async fn the_enrolment_page_groups_the_key_and_offers_a_copy_button_from_a_script_file() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, enroll) = idp.at_the_code_page(&browser, "carol").await;
    let key = enroll.element_text("totp-secret").unwrap();
    let at = enroll.html.find("id=\"totp-secret\">").expect("the key");
    let shown = &enroll.html[at..at + enroll.html[at..].find("</code>").unwrap()];
    let groups: Vec<&str> = shown
        .split("<span>")
        .skip(1)
        .map(|g| g.trim_end_matches("</span>"))
        .collect();
    assert!(groups.len() >= 7, "the key in groups: {shown}");
    assert!(
        groups[..groups.len() - 1].iter().all(|g| g.len() == 4),
        "{groups:?}"
    );
    assert_eq!(
        groups.concat(),
        key,
        "the element's text is the key itself, for scripts"
    );
    let scripts = crate::html::attrs(&enroll.html, "script", "src");
    assert_eq!(scripts, ["/static/copy.js"]);
    assert!(!enroll.html.contains("<script>"), "no inline script");
    let js = browser.get(&idp.url("static/copy.js")).await;
    assert_eq!(js.status(), StatusCode::OK);
    assert!(
        js.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let csp = browser.get(&idp.url("")).await.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(
        enroll
            .text()
            .contains("Fabrikam intranet (127.0.0.1:18080) asks for a multi-factor sign-in")
    );
}

#[tokio::test]
async fn favicon_ico_is_served() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let icon = idp.browser().get(&idp.url("favicon.ico")).await;
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(icon.headers()[reqwest::header::CONTENT_TYPE], "image/x-icon");
    assert_eq!(&icon.bytes().await.unwrap()[..4], &[0, 0, 1, 0], "an ICO file");
}

#[tokio::test]
async fn json_errors_end_with_a_newline() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let body = idp
        .post_token(&[("grant_type", "nonsense")])
        .await
        .text()
        .await
        .unwrap();
    assert!(body.starts_with('{') && body.ends_with("}\n"), "{body:?}");
}
