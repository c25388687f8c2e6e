//! The intranet against providers other than the embedded one: down, spelling its issuer
//! differently, or called by another name.

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::app::TestApp;
use crate::scenarios::provider_with_a_trailing_slash_issuer;
use crate::stub_provider::{JwksMode, StubProvider, TestKey, silent_provider};

#[tokio::test]
async fn public_pages_work_while_the_provider_is_down() {
    // An issuer on a port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let app = TestApp::spawn_with(|s| s.oidc_issuer_url = Some(format!("http://{closed}"))).await;
    assert_eq!(app.get("/").await.status, StatusCode::OK);
    let login = app.get("/login").await;
    assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(login.body.contains("identity provider is unavailable"));
}

#[tokio::test]
async fn an_issuer_spelled_differently_is_reported_with_both_spellings() {
    let issuer = provider_with_a_trailing_slash_issuer().await;
    let app = TestApp::spawn_with(|s| s.oidc_issuer_url = Some(issuer.clone())).await;
    let login = app.get("/login").await;
    assert_eq!(login.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", login.body);
    assert!(
        login.body.contains("issuer does not match"),
        "not 'unavailable':\n{}",
        login.body
    );
    assert!(
        !login.body.contains("unavailable"),
        "the provider answered: it is not called unavailable"
    );
    assert!(
        login.body.contains(&format!("<code>{issuer}</code>")),
        "the configured spelling"
    );
    assert!(
        login.body.contains(&format!("<code>{issuer}/</code>")),
        "the discovered spelling"
    );
    assert!(login.headers.get("location").is_none(), "no login is started");
    assert_eq!(
        app.get("/").await.status,
        StatusCode::OK,
        "public pages still work"
    );
}

#[tokio::test]
async fn another_provider_is_named_by_its_host_unless_a_name_is_given() {
    let issuer = provider_with_a_trailing_slash_issuer().await;
    let app = TestApp::spawn_with(|s| s.oidc_issuer_url = Some(issuer.clone())).await;
    let home = app.get("/").await;
    assert!(home.body.contains("Sign-in by 127.0.0.1."), "{}", home.body);
    assert!(!home.body.contains("Fabrikam ID"));
    let login = app.get("/login").await;
    assert!(login.body.contains("127.0.0.1 answered"), "{}", login.body);

    let named = TestApp::spawn_with(|s| {
        s.oidc_issuer_url = Some(issuer.clone());
        s.oidc_provider_name = Some("Contoso Login".into());
    })
    .await;
    assert!(named.get("/").await.body.contains("Sign-in by Contoso Login."));
}

#[tokio::test]
async fn every_page_and_message_names_the_configured_provider() {
    let app = TestApp::spawn_with(|s| {
        s.oidc_provider_name = Some("Contoso Login".into());
        s.stepup_interstitial = true;
    })
    .await;
    let mut seen = vec![app.get("/").await];
    app.login_as("alice").await;
    for path in ["/", "/customers", "/customers/1", "/employees", "/me", "/nowhere"] {
        seen.push(app.get(path).await);
    }
    let interstitial = app.get("/employees/1/salary").await;
    assert!(
        interstitial
            .body
            .contains("This page shows salary data. Contoso Login will ask for your authenticator code."),
        "{}",
        interstitial.body
    );
    seen.push(interstitial);
    // A weak answer to a step-up: the refusal names the provider, once.
    app.idp.set_next_token(json!({"ignore_acr_values": true})).await;
    let refused = app
        .open("/login?return_to=/employees/1/salary&step_up=salary")
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains(
            "We asked Contoso Login for a fresh multi-factor sign-in, but the sign-in it returned did not \
                 include a second factor"
        ),
        "{}",
        refused.body
    );
    assert!(
        !refused.body.contains("did not complete the extra check"),
        "said once, without a flash repeating it: {}",
        refused.body
    );
    seen.push(refused);
    let salary = app
        .step_up_with_totp("alice", "/login?return_to=/employees/1/salary&step_up=salary")
        .await;
    assert!(
        salary.body.contains("after that Contoso Login will ask"),
        "{}",
        salary.body
    );
    seen.push(salary);
    for page in &seen {
        assert!(
            page.body.contains("Sign-in by Contoso Login."),
            "{}: the footer names the provider",
            page.url
        );
        assert!(
            !page.body.contains("Fabrikam ID"),
            "{} still says Fabrikam ID:\n{}",
            page.url,
            page.body
        );
    }
}

/// The intranet against `issuer`, waiting at most `timeout_secs` for it.
async fn against(issuer: &str, timeout_secs: u64) -> TestApp {
    TestApp::spawn_with(|s| {
        s.oidc_issuer_url = Some(issuer.to_owned());
        s.oidc_timeout_secs = timeout_secs;
    })
    .await
}

#[tokio::test]
async fn concurrent_logins_against_a_silent_provider_share_one_attempt_and_fail_within_the_timeout() {
    let (issuer, accepted) = silent_provider();
    let app = against(&issuer, 1).await;
    let started = Instant::now();
    let logins = (0..4).map(|_| {
        let browser = app.new_browser();
        let url = app.url("/login");
        async move {
            let res = browser.get(url).send().await.unwrap();
            (res.status(), started.elapsed(), res.text().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(logins).await;
    for (status, elapsed, body) in &answers {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.contains("identity provider is unavailable"));
        // Serialised behind one another they would take 4 × 1 s; shared, one timeout.
        assert!(
            *elapsed < Duration::from_millis(3000),
            "answered after {elapsed:?}"
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one discovery attempt for four logins"
    );
    // Public pages never waited.
    assert_eq!(app.get("/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_50_mb_jwks_is_refused() {
    let key = TestKey::generate("k1");
    let stub = StubProvider::start(&[&key]).await;
    stub.set_mode(JwksMode::Huge);
    let app = against(&stub.issuer, 5).await;
    let login = app.get("/login").await;
    assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE, "{}", login.body);
    assert!(login.body.contains("identity provider is unavailable"));
    let api = app
        .call_api("/api/employees/1/salary", Some(&stub.access_token(&key, "k1")))
        .await;
    assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", api.body);
    // Served a JWKS of normal size, the same site works.
    stub.set_mode(JwksMode::Serve);
    let api = app
        .call_api("/api/employees/1/salary", Some(&stub.access_token(&key, "k1")))
        .await;
    assert_eq!(api.status, StatusCode::OK, "{:?}", api.body);
}

#[tokio::test]
async fn unknown_kids_refetch_at_once_but_a_bounded_number_of_times() {
    let (k1, k2) = (TestKey::generate("k1"), TestKey::generate("k2"));
    let stub = StubProvider::start(&[&k1]).await;
    let app = against(&stub.issuer, 2).await;
    let salary = "/api/employees/1/salary";
    assert_eq!(
        app.call_api(salary, Some(&stub.access_token(&k1, "k1")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(stub.jwks_requests(), 1, "fetched once, at discovery");

    // The provider rotates: a token under the new kid works at once (one refetch).
    stub.publish(&k2);
    assert_eq!(
        app.call_api(salary, Some(&stub.access_token(&k2, "k2")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(stub.jwks_requests(), 2);

    // A forged kid: one refetch, then refused without another for a minute.
    for _ in 0..5 {
        let forged = app.call_api(salary, Some(&stub.access_token(&k2, "nope"))).await;
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(stub.jwks_requests(), 3, "one refetch for the unknown kid");
    // Random kids: a few refetches a minute in all, however many tokens.
    for i in 0..40 {
        let forged = app
            .call_api(salary, Some(&stub.access_token(&k2, &format!("random-{i}"))))
            .await;
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    }
    let refetches = stub.jwks_requests() - 1;
    assert_eq!(refetches, 10, "REFETCHES_PER_WINDOW refetches a minute");
    // Known keys kept working throughout.
    assert_eq!(
        app.call_api(salary, Some(&stub.access_token(&k1, "k1")))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_hung_jwks_refetch_stalls_only_the_token_that_needs_it() {
    let key = TestKey::generate("k1");
    let stub = StubProvider::start(&[&key]).await;
    let app = against(&stub.issuer, 2).await;
    let salary = "/api/employees/1/salary";
    let valid = stub.access_token(&key, "k1");
    assert_eq!(app.call_api(salary, Some(&valid)).await.status, StatusCode::OK);

    stub.set_mode(JwksMode::Hang);
    let unknown = stub.access_token(&key, "unknown");
    let (client, url) = (app.plain.clone(), app.url(salary));
    let waiting = tokio::spawn(async move {
        let res = client.get(url).bearer_auth(unknown).send().await.unwrap();
        res.status()
    });
    stub.wait_for_jwks_requests(2).await;
    // While that refetch hangs, tokens with a known kid are served.
    for _ in 0..5 {
        assert_eq!(app.call_api(salary, Some(&valid)).await.status, StatusCode::OK);
    }
    assert!(
        !waiting.is_finished(),
        "the unknown kid is still waiting for the JWKS"
    );
    assert_eq!(
        waiting.await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the refetch timed out: the provider is unavailable, not the token invalid"
    );
    assert_eq!(app.call_api(salary, Some(&valid)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn sign_ins_and_the_api_work_at_once_after_fabrikam_id_rotates_its_keys() {
    let app = TestApp::spawn().await;
    app.login_as("alice").await;
    let before = app.idp.provider.keys().await.unwrap();
    let after = app.idp.provider.rotate_keys(None, Some(0)).await.unwrap();
    assert_ne!(before.current, after.current, "new keys sign");
    // Straight away (no waiting out a refetch interval): a sign-in with a token under the new kid.
    app.forget_provider_session();
    let page = app.login_to("alice", "/customers").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = app.access_token("alice", true).await;
    assert_eq!(
        app.call_api("/api/employees/1/salary", Some(&token)).await.status,
        StatusCode::OK
    );
}
