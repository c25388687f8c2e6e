//! Passkeys at Fabrikam ID and the phishing-resistant class `phr` (OpenID EAP ACR Values
//! 1.0): registration, the step-up, honest `acr`/`amr`, and the rules around it — a code never
//! reaches `phr`, a remembered browser never counts, `prompt=none` and `max_age` behave, the
//! store survives a restart, and hostile answers change nothing. A software authenticator
//! (`crate::authenticator`) answers the ceremonies.

use fabrikam::idp::{ClientRegistration, TestProvider, TestProviderBuilder};
use secrecy::SecretString;
use serde_json::{Value, json};
use url::Url;

use crate::authenticator::SoftPasskey;
use crate::html;
use crate::support::*;

const PHR: &str = "phr";

fn intranet_client() -> ClientRegistration {
    ClientRegistration::for_intranet(
        CLIENT_ID,
        SecretString::from(CLIENT_SECRET),
        &Url::parse("http://127.0.0.1:18080/").unwrap(),
    )
}

fn localhost() -> TestProviderBuilder {
    TestProvider::builder().localhost().client(intranet_client())
}

async fn localhost_idp() -> TestIdp {
    TestIdp::start(localhost()).await
}

fn origin(idp: &TestIdp) -> String {
    idp.issuer.origin().ascii_serialization()
}

/// The `data-` attribute `attr` of the element `#id` on `page`.
#[track_caller]
fn data(page: &Page, id: &str, attr: &str) -> String {
    html::attrs(&page.html, &format!("#{id}"), attr)
        .pop()
        .unwrap_or_else(|| panic!("no #{id}[{attr}] on {}: {}", page.url, page.text()))
}

async fn post_json(browser: &Browser, url: &Url, body: &Value) -> (u16, Value) {
    let res = browser
        .client
        .post(url.clone())
        .json(body)
        .send()
        .await
        .expect("POST reaches Fabrikam ID");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Presses the page's "Create a passkey" button with `key`: the options, then the answer.
async fn register(browser: &Browser, page: &Page, key: &mut SoftPasskey) -> (u16, Value) {
    let csrf = data(page, "passkey-register", "data-csrf");
    let options_url = page
        .url
        .join(&data(page, "passkey-register", "data-options"))
        .unwrap();
    let (status, options) = post_json(browser, &options_url, &json!({ "csrf_token": csrf })).await;
    if status != 200 {
        return (status, options);
    }
    let credential = key.register(&options);
    let finish = page
        .url
        .join(&data(page, "passkey-register", "data-finish"))
        .unwrap();
    post_json(
        browser,
        &finish,
        &json!({ "csrf_token": csrf, "name": "Test key", "credential": credential }),
    )
    .await
}

/// The options of a passkey sign-in from the page's "Sign in with your passkey" button.
async fn sign_in_options(browser: &Browser, page: &Page) -> (String, Value) {
    let csrf = data(page, "passkey-sign-in", "data-csrf");
    let url = page
        .url
        .join(&data(page, "passkey-sign-in", "data-options"))
        .unwrap();
    let (status, options) = post_json(browser, &url, &json!({ "csrf_token": csrf })).await;
    assert_eq!(status, 200, "sign-in options: {options}");
    (csrf, options)
}

async fn send_assertion(browser: &Browser, page: &Page, csrf: &str, credential: Value) -> (u16, Value) {
    let url = page
        .url
        .join(&data(page, "passkey-sign-in", "data-finish"))
        .unwrap();
    post_json(
        browser,
        &url,
        &json!({ "csrf_token": csrf, "credential": credential }),
    )
    .await
}

/// Presses "Sign in with your passkey" with `key`; the JSON answer (`next`: where to go).
async fn use_passkey(browser: &Browser, page: &Page, key: &mut SoftPasskey) -> (u16, Value) {
    let (csrf, options) = sign_in_options(browser, page).await;
    let credential = key.sign_in(&options);
    send_assertion(browser, page, &csrf, credential).await
}

/// The code in the callback URL a ceremony answered with.
#[track_caller]
fn code_in(answer: &Value) -> String {
    let next = Url::parse(answer["next"].as_str().expect("a next URL")).expect("an absolute URL");
    assert!(
        next.as_str().starts_with("http://127.0.0.1:18080/callback"),
        "{next}"
    );
    next.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {next}"))
}

/// alice, in a new browser, asks for `phr`: password, then (no passkey yet) a code, then she
/// creates `key` and signs in with it. The tokens, and the browser signed in.
async fn alice_registers_and_steps_up(idp: &TestIdp, key: &mut SoftPasskey) -> (Browser, Tokens) {
    let browser = idp.browser();
    let (flow, login) = idp.at_the_login_page(&browser, &[("acr_values", PHR)]).await;
    let first = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/passkey");
    assert!(first.text().contains("phishing-resistant"), "{}", first.text());
    let verify = first.url.join(&data(&first, "verify-first", "href")).unwrap();
    let code_page = browser
        .follow(browser.get(&verify).await)
        .await
        .expect_page("/mfa");
    let page = browser
        .submit_code(&code_page, &totp_code("alice", 0), false)
        .await
        .expect_page("/passkey");
    let (status, registered) = register(&browser, &page, key).await;
    assert_eq!(status, 200, "registration: {registered}");
    let (status, answer) = use_passkey(&browser, &page, key).await;
    assert_eq!(status, 200, "sign-in: {answer}");
    let tokens = idp.redeem(&code_in(&answer), &flow).await;
    (browser, tokens)
}

#[tokio::test]
async fn alice_creates_a_passkey_during_a_phr_step_up_and_gets_phr_with_an_honest_amr() {
    let idp = localhost_idp().await;
    let mut key = SoftPasskey::new(1, &origin(&idp));
    let (_, tokens) = alice_registers_and_steps_up(&idp, &mut key).await;
    assert_eq!(tokens.id_claims["acr"], PHR);
    assert_eq!(amr(&tokens.id_claims), ["pwd", "otp", "pop", "user", "mfa"]);
    assert_eq!(tokens.access_claims["acr"], PHR, "the access token says the same");
    let claims = tokens.id_claims.clone();
    let auth_time = claims["auth_time"].as_i64().unwrap();
    assert!(
        auth_time >= claims["iat"].as_i64().unwrap() - 5,
        "auth_time is the passkey's"
    );
}

#[tokio::test]
async fn without_user_verification_the_passkey_is_refused_and_nothing_is_issued() {
    let idp = localhost_idp().await;
    let mut key = SoftPasskey::new(2, &origin(&idp));
    let (browser, _) = alice_registers_and_steps_up(&idp, &mut key).await;
    key.verifies_user = false;
    // SSO: straight to the passkey page, which now offers the passkey.
    let page = browser
        .authorize(&idp, &Flow::new(), &[("acr_values", PHR)])
        .await
        .expect_page("/passkey");
    let (status, answer) = use_passkey(&browser, &page, &mut key).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "passkey_rejected");
}

#[tokio::test]
async fn a_totp_sign_in_never_satisfies_phr_nor_a_remembered_browser() {
    let idp = localhost_idp().await;
    let browser = idp.browser();
    // alice remembers this browser after a code.
    let (_, code_page) = idp.at_the_code_page(&browser, "alice").await;
    browser
        .submit_code(&code_page, &totp_code("alice", 0), true)
        .await
        .callback()
        .code();
    assert!(browser.cookie(REMEMBER_COOKIE).is_some());
    // acr_values=phr: the passkey page, never a code.
    let landing = browser
        .authorize(&idp, &Flow::new(), &[("acr_values", PHR)])
        .await;
    let page = landing.expect_page("/passkey");
    assert!(!html::forms(&page.html).iter().any(|f| f.has_field("code")));
    // An essential phr claim: the same.
    let essential = essential_acr(&[PHR]);
    let landing = browser
        .authorize(&idp, &Flow::new(), &[("claims", &essential)])
        .await;
    landing.expect_page("/passkey");
    // Entering another code there does not get past it: back to the passkey page.
    let code_page = browser
        .follow(browser.get(&idp.url("/mfa")).await)
        .await
        .expect_page("/mfa");
    browser
        .submit_code(&code_page, &totp_code("alice", 1), false)
        .await
        .expect_page("/passkey");
}

#[tokio::test]
async fn prompt_none_asking_phr_is_interaction_required_even_right_after_a_passkey() {
    let idp = localhost_idp().await;
    let mut key = SoftPasskey::new(3, &origin(&idp));
    let (browser, _) = alice_registers_and_steps_up(&idp, &mut key).await;
    let flow = Flow::new();
    let callback = browser
        .authorize(&idp, &flow, &[("acr_values", PHR), ("prompt", "none")])
        .await
        .callback();
    assert_eq!(callback.error.as_deref(), Some("interaction_required"));
    assert!(callback.error_description.unwrap().contains("passkey"));
    assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
    // Without phr the same session answers at once, honestly: phr was reached, and the
    // plain request reports what was reached.
    let flow = Flow::new();
    let code = browser
        .authorize(&idp, &flow, &[("prompt", "none")])
        .await
        .callback()
        .code();
    let tokens = idp.redeem(&code, &flow).await;
    assert_eq!(tokens.id_claims["acr"], PHR);
}

#[tokio::test]
async fn max_age_zero_with_phr_asks_the_password_then_the_passkey() {
    let idp = localhost_idp().await;
    let mut key = SoftPasskey::new(4, &origin(&idp));
    let (browser, _) = alice_registers_and_steps_up(&idp, &mut key).await;
    let flow = Flow::new();
    let login = browser
        .authorize(&idp, &flow, &[("acr_values", PHR), ("max_age", "0")])
        .await
        .expect_page("/login");
    let page = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/passkey");
    let (status, answer) = use_passkey(&browser, &page, &mut key).await;
    assert_eq!(status, 200, "{answer}");
    let tokens = idp.redeem(&code_in(&answer), &flow).await;
    assert_eq!(tokens.id_claims["acr"], PHR);
    // A generous max_age still asks for the passkey again: phr is always proved now.
    browser
        .authorize(&idp, &Flow::new(), &[("acr_values", PHR), ("max_age", "3600")])
        .await
        .expect_page("/passkey");
}

#[tokio::test]
async fn a_passkey_on_the_code_page_meets_the_multi_factor_class_and_says_so() {
    let idp = localhost_idp().await;
    let mut key = SoftPasskey::new(5, &origin(&idp));
    let (browser, _) = alice_registers_and_steps_up(&idp, &mut key).await;
    let flow = Flow::new();
    let page = browser
        .authorize(&idp, &flow, &[("acr_values", ACR_MFA)])
        .await
        .expect_page("/mfa");
    let (status, answer) = use_passkey(&browser, &page, &mut key).await;
    assert_eq!(status, 200, "{answer}");
    let tokens = idp.redeem(&code_in(&answer), &flow).await;
    assert_eq!(tokens.id_claims["acr"], ACR_MFA, "the class the RP asked for");
    assert!(amr(&tokens.id_claims).contains(&"pop".to_owned()));
}

#[tokio::test]
async fn discovery_offers_phr_at_localhost_only_and_never_phrh() {
    let idp = localhost_idp().await;
    let meta: Value = idp
        .api
        .get(idp.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["acr_values_supported"], json!([ACR_PASSWORD, ACR_MFA, PHR]));
    let amrs = meta["amr_values_supported"].as_array().unwrap();
    assert!(amrs.contains(&json!("pop")) && amrs.contains(&json!("user")));

    let ip = spawn_idp(IdpOptions::default()).await;
    let meta: Value = ip
        .api
        .get(ip.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["acr_values_supported"], json!([ACR_PASSWORD, ACR_MFA]));
    // An essential phr there cannot be met; a voluntary one is ignored.
    let browser = ip.browser();
    let callback = browser
        .authorize(&ip, &Flow::new(), &[("claims", &essential_acr(&[PHR]))])
        .await
        .callback();
    assert_eq!(
        callback.error.as_deref(),
        Some("unmet_authentication_requirements")
    );
    let browser = idp.browser();
    let callback = browser
        .authorize(&idp, &Flow::new(), &[("claims", &essential_acr(&["phrh"]))])
        .await
        .callback();
    assert_eq!(
        callback.error.as_deref(),
        Some("unmet_authentication_requirements")
    );
}

#[tokio::test]
async fn passkeys_survive_a_restart_in_the_store_file() {
    let dir = std::env::temp_dir().join(format!("fabrikam-e2e-{}", fabrikam::web::random_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("passkeys.json");
    let mut key;
    {
        let idp = TestIdp::start(localhost().passkey_store(&store)).await;
        key = SoftPasskey::new(6, &origin(&idp));
        alice_registers_and_steps_up(&idp, &mut key).await;
    }
    let saved = std::fs::read_to_string(&store).unwrap();
    assert!(saved.contains("alice") && saved.contains("Test key"), "{saved}");
    // A new provider (a new port, so a new origin) on the same file knows alice's passkey.
    let idp = TestIdp::start(localhost().passkey_store(&store)).await;
    key.origin = origin(&idp);
    let browser = idp.browser();
    let (flow, login) = idp.at_the_login_page(&browser, &[("acr_values", PHR)]).await;
    let page = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/passkey");
    let (status, answer) = use_passkey(&browser, &page, &mut key).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(idp.redeem(&code_in(&answer), &flow).await.id_claims["acr"], PHR);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn hostile_ceremonies_change_nothing() {
    let idp = localhost_idp().await;
    let mut key = SoftPasskey::new(7, &origin(&idp));
    let (browser, _) = alice_registers_and_steps_up(&idp, &mut key).await;
    let page = browser
        .authorize(&idp, &Flow::new(), &[("acr_values", PHR)])
        .await
        .expect_page("/passkey");

    // No CSRF token: refused before anything starts.
    let url = page
        .url
        .join(&data(&page, "passkey-sign-in", "data-options"))
        .unwrap();
    let (status, answer) = post_json(&browser, &url, &json!({})).await;
    assert_eq!((status, answer["error"].as_str()), (403, Some("csrf")));

    // A look-alike site's origin in the client data: refused.
    let mut phished = SoftPasskey::new(7, "http://localhost.evil.example");
    phished.user_handle = key.user_handle.clone();
    let (csrf, options) = sign_in_options(&browser, &page).await;
    let (status, _) = send_assertion(&browser, &page, &csrf, phished.sign_in(&options)).await;
    assert_eq!(status, 400, "a phished assertion");
    // The ceremony was taken out by that answer: the right one now finds none.
    let (status, answer) = send_assertion(&browser, &page, &csrf, key.sign_in(&options)).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("no_ceremony")));

    // Another key's signature over a real challenge: refused.
    let mut stranger = SoftPasskey::new(8, &origin(&idp));
    stranger.user_handle = key.user_handle.clone();
    let (csrf, options) = sign_in_options(&browser, &page).await;
    let mut forged = stranger.sign_in(&options);
    forged["id"] = json!(key.sign_in(&options)["id"]);
    forged["rawId"] = forged["id"].clone();
    let (status, _) = send_assertion(&browser, &page, &csrf, forged).await;
    assert_eq!(status, 400, "a forged signature");

    // A replayed assertion (its challenge used): refused.
    let (csrf, options) = sign_in_options(&browser, &page).await;
    let good = key.sign_in(&options);
    let (status, _) = send_assertion(&browser, &page, &csrf, good.clone()).await;
    assert_eq!(status, 200);
    let page = browser
        .authorize(&idp, &Flow::new(), &[("acr_values", PHR)])
        .await
        .expect_page("/passkey");
    let (csrf, _) = sign_in_options(&browser, &page).await;
    let (status, _) = send_assertion(&browser, &page, &csrf, good).await;
    assert_eq!(status, 400, "a replayed assertion");
}

#[tokio::test]
async fn adding_a_passkey_needs_a_recent_second_factor() {
    let idp = localhost_idp().await;
    let browser = idp.browser();
    // bob signs in with his password only, then opens his account page.
    let (_, login) = idp.at_the_login_page(&browser, &[]).await;
    browser
        .submit_login(&login, "bob", "bob-password")
        .await
        .callback()
        .code();
    let account = browser
        .follow(browser.get(&idp.url("/account")).await)
        .await
        .expect_page("/account");
    assert!(
        html::attrs(&account.html, "#passkey-register", "data-csrf").is_empty(),
        "no Add button before a code"
    );
    // Calling the endpoint anyway is refused.
    let csrf = account
        .hidden_fields()
        .into_iter()
        .find(|(k, _)| k == "csrf_token")
        .unwrap()
        .1;
    let (status, answer) = post_json(
        &browser,
        &idp.url("/passkeys/register/options"),
        &json!({ "csrf_token": csrf }),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("second_factor_required"))
    );
    // After a code on the account page, a passkey can be added there.
    let account = browser
        .submit(&account, &[("code", &totp_code("bob", 0))])
        .await
        .expect_page("/account");
    let mut key = SoftPasskey::new(9, &origin(&idp));
    let (status, answer) = register(&browser, &account, &mut key).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["next"].as_str().unwrap().ends_with("/account"));
    let account = browser
        .follow(browser.get(&idp.url("/account")).await)
        .await
        .expect_page("/account");
    assert!(account.text().contains("Test key"), "{}", account.text());
    // The same authenticator cannot be registered twice.
    let (status, answer) = register(&browser, &account, &mut key).await;
    assert_eq!(status, 400, "{answer}");
    // Removing it: a form with the CSRF token; without the token nothing changes.
    let remove = html::forms(&account.html)
        .into_iter()
        .find(|f| f.has_field("passkey"))
        .expect("a remove form");
    let passkey_id = remove.value("passkey").unwrap().to_owned();
    let forged = browser
        .post_raw(&idp.url("/account/passkeys/remove"), &[("passkey", &passkey_id)])
        .await;
    assert_eq!(forged.status(), 403, "no CSRF token");
    let csrf = remove.value("csrf_token").unwrap().to_owned();
    let after = browser
        .post_raw(
            &idp.url("/account/passkeys/remove"),
            &[("csrf_token", &csrf), ("passkey", &passkey_id)],
        )
        .await;
    let after = after.text().await.unwrap();
    assert!(after.contains("The passkey was removed"), "{after}");
    assert!(!after.contains("Test key"), "{after}");
}

#[tokio::test]
async fn a_store_that_cannot_be_written_refuses_the_registration_and_keeps_nothing() {
    // The store's directory is a regular file: no write can succeed, even as root.
    let blocker = std::env::temp_dir().join(format!("fabrikam-e2e-{}", fabrikam::web::random_token(6)));
    std::fs::write(&blocker, "not a directory").unwrap();
    let idp = TestIdp::start(localhost().passkey_store(blocker.join("passkeys.json"))).await;
    let browser = idp.browser();
    let (_, login) = idp.at_the_login_page(&browser, &[("acr_values", PHR)]).await;
    let first = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/passkey");
    let verify = first.url.join(&data(&first, "verify-first", "href")).unwrap();
    let code_page = browser
        .follow(browser.get(&verify).await)
        .await
        .expect_page("/mfa");
    let page = browser
        .submit_code(&code_page, &totp_code("alice", 0), false)
        .await
        .expect_page("/passkey");
    let mut key = SoftPasskey::new(10, &origin(&idp));
    let (status, answer) = register(&browser, &page, &mut key).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (500, Some("server_error")),
        "{answer}"
    );
    assert!(
        !answer.to_string().contains("passkeys.json"),
        "no path in the answer: {answer}"
    );
    // Nothing was kept in memory either: the page still offers to create one.
    let again = browser
        .follow(browser.get(&page.url).await)
        .await
        .expect_page("/passkey");
    assert!(!html::attrs(&again.html, "#passkey-register", "data-csrf").is_empty());
    std::fs::remove_file(&blocker).unwrap();
}

#[tokio::test]
async fn the_passkey_script_is_a_file_the_csp_allows_and_the_pages_have_no_inline_script() {
    let idp = localhost_idp().await;
    let script = idp.api.get(idp.url("/static/passkey.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    let browser = idp.browser();
    let (_, login) = idp.at_the_login_page(&browser, &[("acr_values", PHR)]).await;
    let page = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/passkey");
    let scripts = html::attrs(&page.html, "script", "src");
    assert_eq!(scripts, ["/static/passkey.js"]);
    assert!(!page.html.contains("<script>"), "no inline script");
    let csp = idp.api.get(idp.url("/login")).send().await.unwrap().headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    // Without a sign-in in progress, the passkey page is an error page, the account page
    // sends to the login page, and the ceremonies answer JSON errors.
    let stranger = idp.browser();
    assert_eq!(stranger.get(&idp.url("/passkey")).await.status(), 400);
    let account = stranger.get(&idp.url("/account")).await;
    assert_eq!(account.status(), 302);
    let (status, answer) = post_json(
        &stranger,
        &idp.url("/passkeys/sign-in/options"),
        &json!({ "csrf_token": "x" }),
    )
    .await;
    assert_eq!((status, answer["error"].as_str()), (403, Some("csrf")));
}
