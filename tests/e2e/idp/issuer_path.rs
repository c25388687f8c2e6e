//! An issuer with a path (`http://host:9090/realms/fabrikam`, as Keycloak spells them): every
//! endpoint, page, form, asset, cookie and redirect lives under it; nothing at the root.

use fabrikam::idp::{ClientRegistration, TestProvider};
use secrecy::SecretString;
use serde_json::Value;
use url::Url;

use crate::html;
use crate::support::*;

async fn realm() -> TestIdp {
    TestIdp::start(
        TestProvider::builder()
            .issuer_path("/realms/fabrikam")
            .client(ClientRegistration::for_intranet(
                CLIENT_ID,
                SecretString::from(CLIENT_SECRET),
                &Url::parse("http://127.0.0.1:18080/").unwrap(),
            ))
            .mfa_at_login(true),
    )
    .await
}

#[tokio::test]
async fn discovery_and_every_endpoint_are_under_the_issuers_path_and_nothing_at_the_root() {
    let idp = realm().await;
    assert!(idp.issuer_id.ends_with("/realms/fabrikam"), "{}", idp.issuer_id);
    let metadata = idp.metadata().await;
    assert_eq!(metadata.issuer().as_str(), idp.issuer_id);
    let doc: Value = idp
        .api
        .get(format!("{}/.well-known/openid-configuration", idp.issuer_id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "end_session_endpoint",
    ] {
        let url = doc[endpoint].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/", idp.issuer_id)),
            "{endpoint} = {url}"
        );
        let r = idp.api.get(url).send().await.unwrap();
        assert_ne!(r.status(), 404, "{endpoint} is served at {url}");
    }
    let root = idp.issuer.join("/").unwrap();
    for path in [
        ".well-known/openid-configuration",
        "authorize",
        "jwks",
        "login",
        "static/idp.css",
        "test-control/keys",
    ] {
        let r = idp.api.get(root.join(path).unwrap()).send().await.unwrap();
        assert_eq!(r.status(), 404, "/{path} is not served at the root");
    }
    let keys = idp.api.get(idp.url("/test-control/keys")).send().await.unwrap();
    assert_eq!(keys.status(), 200, "test control lives under the path too");
    for home in [idp.issuer_id.clone(), format!("{}/", idp.issuer_id)] {
        let r = idp.api.get(&home).send().await.unwrap();
        assert_eq!(r.status(), 200, "{home}");
    }
}

#[tokio::test]
async fn a_sign_in_with_step_up_and_sign_out_stay_under_the_path() {
    let idp = realm().await;
    let browser = idp.browser();
    let flow = Flow::new();
    let response = browser.get(&idp.authorize_url(&flow, &[])).await;
    assert_eq!(response.headers()["location"], "/realms/fabrikam/login");
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Path=/realms/fabrikam"), "{cookie}");
    let login = browser.follow(response).await.expect_page("/login");
    assert_eq!(login.url.path(), "/realms/fabrikam/login");
    assert_eq!(login.form().action, "/realms/fabrikam/login");
    let css = html::attrs(&login.html, "link[rel=stylesheet]", "href");
    assert_eq!(css, ["/realms/fabrikam/static/idp.css"]);
    let served = browser.get(&login.url.join(&css[0]).unwrap()).await;
    assert_eq!(served.status(), 200);
    // IDP_MFA_AT_LOGIN: the second factor page, and the remember-browser cookie's path.
    let mfa = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/mfa");
    assert_eq!(mfa.form().action, "/realms/fabrikam/mfa");
    let response = browser
        .submit_raw(
            &mfa,
            &[("code", &totp_code("alice", 0)), ("remember_browser", "on")],
        )
        .await;
    let remember = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(REMEMBER_COOKIE))
        .expect("a remember-browser cookie");
    assert!(remember.contains("Path=/realms/fabrikam"), "{remember}");
    let callback = browser.follow(response).await.callback();
    let tokens = idp.redeem(&callback.code(), &flow).await;
    assert_eq!(tokens.id_claims["iss"], idp.issuer_id.as_str());
    idp.verify_id_token(&tokens.id_token, &flow.nonce).await.unwrap();

    // Sign out through the advertised end_session_endpoint; the confirmation posts under it.
    let ask = browser
        .follow(browser.get(&idp.logout_url(&[])).await)
        .await
        .expect_page("/logout");
    assert_eq!(ask.form().action, "/realms/fabrikam/logout");
    let home_links = html::attrs(&ask.html, "a.button", "href");
    assert_eq!(home_links, ["/realms/fabrikam/"]);
    let done = browser.submit(&ask, &[]).await.page();
    assert!(done.text().contains("signed out of Fabrikam ID"));
    assert!(!idp.signed_in(&browser).await);

    // Error pages under the path link home under the path.
    let missing = browser.get(&idp.url("/no-such-page")).await;
    assert_eq!(missing.status(), 404);
    let body = missing.text().await.unwrap();
    assert_eq!(html::attrs(&body, "p.muted a", "href"), ["/realms/fabrikam/"]);
    assert_eq!(
        html::attrs(&body, "link[rel=stylesheet]", "href"),
        ["/realms/fabrikam/static/idp.css"]
    );
}

#[tokio::test]
async fn the_intranet_signs_in_and_steps_up_against_a_provider_whose_issuer_has_a_path() {
    use crate::app::TestApp;
    let intranet = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let provider = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let intranet_addr = intranet.local_addr().unwrap();
    let mut issuer = fabrikam::config::url_for(provider.local_addr().unwrap());
    issuer.set_path("/realms/fabrikam");
    let (s, data_dir) = TestApp::settings(|s| s.idp_issuer_url = Some(issuer.to_string()));
    let demo = fabrikam::startup::demo(&s, intranet, provider).await.unwrap();
    assert_eq!(demo.issuer, issuer.as_str());
    tokio::spawn(demo.idp);
    tokio::spawn(demo.intranet);
    let app = TestApp::attach(s, data_dir, intranet_addr, demo.idp_config).await;
    let start = app.get("/login?return_to=/employees/1/salary").await;
    let location = start.location().expect("a redirect to the provider");
    assert!(
        location.as_str().starts_with(&format!("{issuer}/authorize?")),
        "{location}"
    );
    let mfa = app.login_to("alice", "/employees/1/salary").await;
    assert_eq!(mfa.url.path(), "/realms/fabrikam/mfa");
    let salary = app.submit_totp(&mfa, "alice").await;
    assert_eq!(salary.url.path(), "/employees/1/salary");
    assert!(salary.body.contains("104,000 EUR"), "{}", salary.body);
}

#[tokio::test]
async fn an_issuer_with_a_slash_at_the_root_is_advertised_as_given_and_every_endpoint_is_served() {
    use crate::app::TestApp;
    let intranet = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let provider = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let intranet_addr = intranet.local_addr().unwrap();
    // As Auth0 spells its issuers: the root, with its slash.
    let issuer = format!("http://{}/", provider.local_addr().unwrap());
    let (s, data_dir) = TestApp::settings(|s| s.idp_issuer_url = Some(issuer.clone()));
    let demo = fabrikam::startup::demo(&s, intranet, provider).await.unwrap();
    assert_eq!(demo.issuer, issuer);
    tokio::spawn(demo.idp);
    tokio::spawn(demo.intranet);
    let app = TestApp::attach(s, data_dir, intranet_addr, demo.idp_config).await;
    let doc: Value = app
        .idp
        .api
        .get(format!("{issuer}.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], issuer.as_str(), "exactly as given");
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "end_session_endpoint",
    ] {
        let url = doc[endpoint].as_str().unwrap();
        let path = url
            .strip_prefix(issuer.as_str())
            .unwrap_or_else(|| panic!("{endpoint} = {url}"));
        assert!(!path.starts_with('/'), "{endpoint} = {url}: no //");
        let r = app.idp.api.get(url).send().await.unwrap();
        assert_ne!(r.status(), 404, "{endpoint} is served at {url}");
    }
    // The tokens carry it as iss, an RP verifies them, and the intranet signs in against it.
    let (flow, tokens) = app.idp.login(&app.idp.browser(), "bob", &[]).await;
    assert_eq!(tokens.id_claims["iss"], issuer.as_str());
    assert_eq!(tokens.access_claims["iss"], issuer.as_str());
    app.idp
        .verify_id_token(&tokens.id_token, &flow.nonce)
        .await
        .unwrap();
    assert_eq!(app.idp.userinfo(&tokens.access_token).await.status(), 200);
    let start = app.get("/login?return_to=/customers").await;
    let location = start.location().expect("a redirect to the provider");
    assert!(
        location.as_str().starts_with(&format!("{issuer}authorize?")),
        "{location}"
    );
    let customers = app.login_to("alice", "/customers").await;
    assert_eq!(customers.url.path(), "/customers");
    assert_eq!(customers.status, reqwest::StatusCode::OK, "{}", customers.body);
}
