//! The intranet against providers other than the embedded one: down, spelling its issuer
//! differently, or called by another name.

use std::net::TcpListener;

use reqwest::StatusCode;
use serde_json::json;

use crate::app::TestApp;
use crate::scenarios::provider_with_a_trailing_slash_issuer;

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
    // A weak answer to a step-up: the flash and the refusal name the provider.
    app.idp.set_next_token(json!({"ignore_acr_values": true})).await;
    let refused = app
        .open("/login?return_to=/employees/1/salary&step_up=salary")
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused
            .body
            .contains("Contoso Login did not complete the extra check we asked for"),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("We asked Contoso Login for a fresh multi-factor sign-in")
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
