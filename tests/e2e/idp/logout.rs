//! `/logout` (RP-Initiated Logout 1.0): it always ends what it should — signed out or asked,
//! never an error page that leaves the provider session alive.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn logout_with_an_id_token_hint_ends_the_op_session_and_returns_to_the_client() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, tokens) = idp.login(&browser, "alice", &[]).await;
    let url = idp.logout_url(&[
        ("id_token_hint", &tokens.id_token),
        ("post_logout_redirect_uri", &idp.post_logout_redirect_uri),
        ("client_id", CLIENT_ID),
        ("state", "bye"),
    ]);
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
async fn a_valid_hint_with_an_unregistered_return_address_still_ends_the_session_without_redirecting() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (_, tokens) = idp.login(&browser, "alice", &[]).await;
    // RP-Initiated Logout 1.0 §2-3: no redirect to an unregistered URI, but the request is
    // valid: the session ends and the person stays on the signed-out page, told why.
    let url = idp.logout_url(&[
        ("id_token_hint", &tokens.id_token),
        ("post_logout_redirect_uri", "http://evil.example/"),
        ("state", "s"),
    ]);
    let response = browser.get(&url).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("location").is_none(), "no redirect");
    let text = crate::html::text(&response.text().await.unwrap());
    assert!(text.contains("You are signed out of Fabrikam ID"), "{text}");
    assert!(text.contains("has not registered for after sign-out"), "{text}");
    assert!(!text.contains("evil.example"), "the address is not echoed");
    // Signed out: the next sign-in asks for the password, it does not complete silently.
    browser
        .authorize(&idp, &Flow::new(), &[])
        .await
        .expect_page("/login");
}

#[tokio::test]
async fn the_default_client_may_return_to_its_url_with_or_without_the_trailing_slash() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let registered = &idp.client.post_logout_redirect_uris;
    assert_eq!(registered, &["http://127.0.0.1:18080/", "http://127.0.0.1:18080"]);
    for uri in registered {
        let browser = idp.browser();
        let (_, tokens) = idp.login(&browser, "alice", &[]).await;
        let url = idp.logout_url(&[
            ("id_token_hint", &tokens.id_token),
            ("post_logout_redirect_uri", uri),
        ]);
        let response = browser.get(&url).await;
        assert_eq!(response.status(), 302);
        // Exactly as registered: no slash added or dropped, no stray `?`.
        assert_eq!(response.headers()["location"], uri.as_str());
        assert!(!idp.signed_in(&browser).await);
    }
}

#[tokio::test]
async fn a_hint_fabrikam_id_did_not_issue_makes_it_ask_and_say_why() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    idp.set_next_token(json!({ "signature": "wrong-key" })).await;
    let (_, tokens) = idp.login(&browser, "alice", &[]).await;
    let url = idp.logout_url(&[
        ("id_token_hint", &tokens.id_token),
        ("post_logout_redirect_uri", &idp.post_logout_redirect_uri),
    ]);
    let ask = browser
        .follow(browser.get(&url).await)
        .await
        .expect_page("/logout");
    assert!(ask.text().contains("did not issue"), "{}", ask.text());
    assert!(idp.signed_in(&browser).await, "asked, not yet signed out");
    assert!(
        ask.form().value("post_logout_redirect_uri").is_none(),
        "an untrusted request gets no return address"
    );
    let done = browser.submit(&ask, &[]).await.page();
    assert_eq!(done.status, 200);
    assert!(done.text().contains("signed out of Fabrikam ID"));
    assert!(!idp.signed_in(&browser).await);
}

#[tokio::test]
async fn no_bad_logout_request_leaves_the_session_alive_silently() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let long = "x".repeat(9 * 1024);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("a garbage hint", vec![("id_token_hint", "x.y.z")]),
        (
            "a return address without a client",
            vec![("post_logout_redirect_uri", "http://127.0.0.1:18080/")],
        ),
        (
            "an unregistered return address",
            vec![
                ("client_id", CLIENT_ID),
                ("post_logout_redirect_uri", "http://evil.example/"),
            ],
        ),
        (
            "a client_id that is not the hint's audience",
            vec![("id_token_hint", "HINT"), ("client_id", "someone-else")],
        ),
        (
            "an unknown client",
            vec![
                ("client_id", "nobody"),
                ("post_logout_redirect_uri", "http://127.0.0.1:18080/"),
            ],
        ),
        ("a CSRF token in the URL", vec![("csrf_token", "t")]),
        ("a query over 8 KiB", vec![("state", long.as_str())]),
    ];
    for (what, params) in cases {
        let browser = idp.browser();
        let (_, tokens) = idp.login(&browser, "alice", &[]).await;
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|&(k, v)| (k, if v == "HINT" { tokens.id_token.as_str() } else { v }))
            .collect();
        let response = browser.get(&idp.logout_url(&params)).await;
        assert!(
            response.headers().get("location").is_none(),
            "{what}: no redirect"
        );
        let status = response.status();
        let page = browser.follow(response).await.page();
        assert_eq!(status, 200, "{what}: {}", page.text());
        // Either signed out already, or asked with a working form: never left alive unasked.
        if idp.signed_in(&browser).await {
            assert_eq!(page.path, "/logout", "{what}");
            assert!(
                page.text().contains("Sign out of Fabrikam ID?"),
                "{what}: {}",
                page.text()
            );
            let done = browser.submit(&page, &[]).await.page();
            assert!(done.text().contains("signed out of Fabrikam ID"), "{what}");
            assert!(!idp.signed_in(&browser).await, "{what}: the confirmation ends it");
        }
    }
    // An unreadable POST body and a stale confirmation form ask again too.
    let browser = idp.browser();
    idp.login(&browser, "alice", &[]).await;
    let unreadable = browser
        .client
        .post(idp.url("/logout"))
        .header("content-type", "application/json")
        .body("{\"id_token_hint\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(unreadable.status(), 200);
    let html = unreadable.text().await.unwrap();
    assert!(crate::html::text(&html).contains("could not be read"), "{html}");
    let stale = browser
        .post_raw(&idp.url("/logout"), &[("csrf_token", "stale")])
        .await;
    assert_eq!(stale.status(), 403);
    let html = stale.text().await.unwrap();
    assert!(crate::html::text(&html).contains("Confirm again"), "{html}");
    let form = crate::html::form_with_field(&html, "csrf_token").expect("a fresh form");
    let again = browser
        .post_raw(
            &idp.url("/logout"),
            &[("csrf_token", form.value("csrf_token").unwrap())],
        )
        .await;
    assert_eq!(again.status(), 200);
    assert!(!idp.signed_in(&browser).await);
}

#[tokio::test]
async fn logout_without_a_hint_asks_and_only_the_confirmation_with_its_csrf_token_ends_the_session() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    idp.login(&browser, "alice", &[]).await;

    // A bare GET (e.g. an <img> on another site) only asks.
    let ask = browser
        .follow(browser.get(&idp.logout_url(&[])).await)
        .await
        .expect_page("/logout");
    assert!(ask.text().contains("Sign out of Fabrikam ID?"), "{}", ask.text());
    assert!(ask.text().contains("Alice Ashford"));
    assert!(idp.signed_in(&browser).await, "asking changes nothing");

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
    assert!(idp.signed_in(&browser).await);

    // The confirmation ends it.
    let done = browser.submit(&ask, &[]).await.page();
    assert_eq!(done.status, 200);
    assert!(
        done.text().contains("signed out of Fabrikam ID"),
        "{}",
        done.text()
    );
    assert!(!idp.signed_in(&browser).await);
}

#[tokio::test]
async fn logout_with_a_hint_for_another_user_asks_and_the_confirmation_returns_to_the_client() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let bobs = idp.browser();
    let (_, bob_tokens) = idp.login(&bobs, "bob", &[]).await;
    let browser = idp.browser();
    idp.login(&browser, "alice", &[]).await;

    let url = idp.logout_url(&[
        ("id_token_hint", &bob_tokens.id_token),
        ("post_logout_redirect_uri", &idp.post_logout_redirect_uri),
        ("state", "bye"),
    ]);
    let ask = browser
        .follow(browser.get(&url).await)
        .await
        .expect_page("/logout");
    assert!(
        idp.signed_in(&browser).await,
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
    assert!(!idp.signed_in(&browser).await);
    assert!(idp.signed_in(&bobs).await, "bob's own session is untouched");
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
    assert!(!idp.signed_in(&browser).await);

    // No OP session: straight back to the client.
    let url = idp.logout_url(&[
        ("client_id", CLIENT_ID),
        ("post_logout_redirect_uri", &idp.post_logout_redirect_uri),
        ("state", "s2"),
    ]);
    let callback = browser.follow(browser.get(&url).await).await.callback();
    assert_eq!(callback.state.as_deref(), Some("s2"));
}

#[tokio::test]
async fn an_access_token_or_a_token_for_no_registered_client_is_no_id_token_hint() {
    let idp = spawn_idp(IdpOptions::default()).await;
    // Both are signed by Fabrikam ID and name alice: a hint that were taken for an ID token
    // would sign her out at once and send her back. Neither is an ID token for a client.
    for what in ["an access token", "an ID token for no registered client"] {
        let browser = idp.browser();
        if what != "an access token" {
            idp.set_next_token(json!({ "id_token_claims": { "aud": "not-a-client" } }))
                .await;
        }
        let (_, tokens) = idp.login(&browser, "alice", &[]).await;
        let hint = match what {
            "an access token" => {
                assert_eq!(jwt_header(&tokens.access_token)["typ"], "at+jwt");
                tokens.access_token.clone()
            }
            _ => {
                assert_eq!(tokens.id_claims["aud"], "not-a-client", "the deviation was used");
                tokens.id_token.clone()
            }
        };
        let response = browser
            .get(&idp.logout_url(&[
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", &idp.post_logout_redirect_uri),
            ]))
            .await;
        assert!(
            response.headers().get("location").is_none(),
            "{what}: no redirect"
        );
        let ask = browser.follow(response).await.expect_page("/logout");
        assert!(
            ask.text().contains("not an ID token issued to an application"),
            "{what}: {}",
            ask.text()
        );
        assert!(idp.signed_in(&browser).await, "{what}: asked, not signed out");
        assert!(
            ask.form().value("post_logout_redirect_uri").is_none(),
            "{what}: no return address"
        );
    }
}
