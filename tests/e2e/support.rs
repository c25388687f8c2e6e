//! Test support: Fabrikam ID on port 0 through the library's own [`TestProvider`], a browser,
//! and a relying party's helpers.
//!
//! - [`spawn_idp`] starts Fabrikam ID (test control on) with the intranet client registered;
//!   [`TestIdp::start`] starts it from any [`TestProviderBuilder`].
//! - [`Browser`] keeps cookies and never follows redirects on its own; its helpers follow
//!   the OP's own redirects and stop at an OP page ([`Landing::Page`]) or at the client's
//!   callback ([`Landing::Callback`]).
//! - [`TestIdp`] acts as one registered client: it redeems codes, verifies ID tokens with the
//!   `openidconnect` crate (as the intranet does), runs whole journeys (`login`, `step_up`,
//!   `at_the_code_page`, ...) and drives the test-control API through [`TestProvider`].

#![allow(dead_code)] // not every module uses every helper

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fabrikam::idp::control::NextToken;
use fabrikam::idp::{ClientRegistration, IdpConfig, TestProvider, TestProviderBuilder, TokenAuthMethod};
use openidconnect::core::{
    CoreClient, CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, Nonce, RedirectUrl};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use crate::html;

pub const CLIENT_ID: &str = "fabrikam-intranet";
pub const CLIENT_SECRET: &str = "fabrikam-demo-secret";
pub const ACR_PASSWORD: &str = "urn:fabrikam:acr:password";
pub const ACR_MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
/// The documented TOTP secrets (README).
pub const ALICE_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
pub const BOB_TOTP: &str = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";
pub const SESSION_COOKIE: &str = "fabrikam_idp_session";
pub const REMEMBER_COOKIE: &str = "fabrikam_idp_remember";
pub const SIGNIN_COOKIE: &str = "fabrikam_idp_signin";

/// How to start Fabrikam ID.
#[derive(Debug, Clone)]
pub struct IdpOptions {
    pub mfa_at_login: bool,
    pub test_control: bool,
    /// The relying party's public URL: redirect URI `<it>/callback`, post-logout `<it>/`.
    /// Nothing needs to listen there unless a test follows the redirect.
    pub rp_public_url: Url,
}

impl Default for IdpOptions {
    fn default() -> Self {
        Self {
            mfa_at_login: false,
            test_control: true,
            rp_public_url: Url::parse("http://127.0.0.1:18080/").expect("a valid URL"),
        }
    }
}

/// A running Fabrikam ID, seen by one of its clients.
pub struct TestIdp {
    /// The library's handle: issuer, control API; stops the server when the last is dropped.
    pub provider: Arc<TestProvider>,
    /// The issuer's base URL (always with a trailing slash; join paths onto it).
    pub issuer: Url,
    /// The issuer identifier exactly as `iss` and discovery carry it.
    pub issuer_id: String,
    pub config: IdpConfig,
    /// The client these helpers act as.
    pub client: ClientRegistration,
    pub client_id: String,
    pub redirect_uri: String,
    pub post_logout_redirect_uri: String,
    /// A plain client (no cookies, no redirects) for API calls.
    pub api: reqwest::Client,
}

/// Starts Fabrikam ID on `127.0.0.1:0` in this test's runtime, with the intranet's client.
pub async fn spawn_idp(options: IdpOptions) -> TestIdp {
    let client = ClientRegistration::for_intranet(
        CLIENT_ID,
        SecretString::from(CLIENT_SECRET),
        &options.rp_public_url,
    );
    let mut builder = TestProvider::builder()
        .client(client)
        .mfa_at_login(options.mfa_at_login);
    if !options.test_control {
        builder = builder.without_test_control();
    }
    TestIdp::start(builder).await
}

impl TestIdp {
    /// Starts Fabrikam ID from `builder`; the helpers act as its first client.
    pub async fn start(builder: TestProviderBuilder) -> TestIdp {
        let provider = builder.start().await.expect("Fabrikam ID starts");
        let client_id = provider.config().clients[0].client_id.clone();
        TestIdp::from_provider(Arc::new(provider), &client_id)
    }

    /// Starts Fabrikam ID with `config` on `listener` (its first client is the one the
    /// helpers act as).
    pub async fn spawn(config: IdpConfig, listener: std::net::TcpListener) -> TestIdp {
        let server = fabrikam::idp::build(config.clone(), listener)
            .await
            .expect("Fabrikam ID builds");
        tokio::spawn(server);
        TestIdp::new(config)
    }

    /// Helpers for a Fabrikam ID already running with `config`, acting as its first client.
    pub fn new(config: IdpConfig) -> TestIdp {
        let client_id = config.clients[0].client_id.clone();
        TestIdp::from_provider(Arc::new(TestProvider::attach(config)), &client_id)
    }

    fn from_provider(provider: Arc<TestProvider>, client_id: &str) -> TestIdp {
        let config = provider.config().clone();
        let client = config.client(client_id).expect("a registered client").clone();
        TestIdp {
            issuer: provider.base_url().clone(),
            issuer_id: provider.issuer().to_owned(),
            redirect_uri: client.redirect_uris[0].clone(),
            post_logout_redirect_uri: client
                .post_logout_redirect_uris
                .first()
                .cloned()
                .unwrap_or_default(),
            client_id: client.client_id.clone(),
            client,
            config,
            provider,
            api: no_redirects().build().unwrap(),
        }
    }

    /// The same provider, seen by another of its clients.
    pub fn as_client(&self, client_id: &str) -> TestIdp {
        TestIdp::from_provider(Arc::clone(&self.provider), client_id)
    }

    /// This client, answering at another of its redirect URIs.
    pub fn with_redirect_uri(mut self, uri: &str) -> TestIdp {
        assert!(self.client.has_redirect_uri(uri), "{uri} is registered");
        self.redirect_uri = uri.to_owned();
        self
    }
}

fn no_redirects() -> reqwest::ClientBuilder {
    reqwest::Client::builder().redirect(Policy::none())
}

/// PKCE, `state` and `nonce` of one authorization request.
#[derive(Debug, Clone)]
pub struct Flow {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

impl Flow {
    pub fn new() -> Self {
        Self {
            state: fabrikam::web::random_token(16),
            nonce: fabrikam::web::random_token(16),
            verifier: fabrikam::web::random_token(32),
        }
    }

    pub fn challenge(&self) -> String {
        fabrikam::web::pkce_s256(&self.verifier)
    }
}

/// Where the browser ended up.
#[derive(Debug)]
pub enum Landing {
    /// A page served by the OP (login, second factor, enrolment, error).
    Page(Page),
    /// A redirect to the client's redirect URI (not followed).
    Callback(Callback),
}

impl Landing {
    #[track_caller]
    pub fn page(self) -> Page {
        match self {
            Landing::Page(p) => p,
            Landing::Callback(c) => panic!("expected an OP page, got a redirect to {}", c.url),
        }
    }

    /// The OP page at `path` under the issuer (e.g. `/login`, `/mfa`, `/enroll`), status 200.
    #[track_caller]
    pub fn expect_page(self, path: &str) -> Page {
        let page = self.page();
        assert_eq!(
            page.path,
            path,
            "expected the page {path}, got {}: {}",
            page.url,
            page.text()
        );
        assert_eq!(page.status, 200, "page {path}: {}", page.text());
        page
    }

    #[track_caller]
    pub fn callback(self) -> Callback {
        match self {
            Landing::Callback(c) => c,
            Landing::Page(p) => panic!(
                "expected a redirect to the client, got {} ({}): {}",
                p.url,
                p.status,
                p.text()
            ),
        }
    }
}

/// An HTML page from the OP.
#[derive(Debug, Clone)]
pub struct Page {
    pub url: Url,
    /// The URL's path under the issuer (`/login` whatever the issuer's own path).
    pub path: String,
    pub status: u16,
    pub html: String,
}

impl Page {
    /// The page's (first) form.
    #[track_caller]
    pub fn form(&self) -> html::Form {
        html::forms(&self.html)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{} has no form: {}", self.url, self.text()))
    }

    /// The page's form that posts to a path ending in `suffix` (`/cancel`, `/switch-user`).
    #[track_caller]
    pub fn form_to(&self, suffix: &str) -> html::Form {
        html::forms(&self.html)
            .into_iter()
            .find(|f| f.action.ends_with(suffix))
            .unwrap_or_else(|| panic!("{} has no form to {suffix}: {}", self.url, self.text()))
    }

    /// The hidden inputs of the page's form.
    pub fn hidden_fields(&self) -> Vec<(String, String)> {
        self.form().hidden()
    }

    /// The absolute URL the page's (first) form posts to.
    pub fn form_action(&self) -> Url {
        self.url.join(&self.form().action).expect("a valid form action")
    }

    /// The text of the element with `id`, e.g. `totp-secret`.
    pub fn element_text(&self, id: &str) -> Option<String> {
        html::element_text(&self.html, id)
    }

    /// The page's visible words, for messages and assertions.
    pub fn text(&self) -> String {
        html::text(&self.html)
    }
}

/// The query of a redirect to the client.
#[derive(Debug, Clone)]
pub struct Callback {
    pub url: Url,
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl Callback {
    fn from_url(url: Url) -> Self {
        let get = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        Self {
            code: get("code"),
            state: get("state"),
            error: get("error"),
            error_description: get("error_description"),
            url,
        }
    }

    #[track_caller]
    pub fn code(&self) -> String {
        assert_eq!(self.error, None, "the OP answered with an error: {}", self.url);
        self.code.clone().expect("a code in the callback")
    }
}

/// A browser: a cookie jar, no automatic redirects.
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    pub issuer: Url,
}

impl Browser {
    /// The value of a cookie the OP set in this browser.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.issuer)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }

    /// Sets a cookie for the OP (e.g. a copy of another browser's session cookie).
    pub fn set_cookie(&self, name: &str, value: &str) {
        let path = self.issuer.path().trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path={path}"), &self.issuer);
    }

    /// Drops the OP session cookie, keeping the others (a new browser session).
    pub fn forget_session(&self) {
        let path = self.issuer.path().trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        let expired = format!("{SESSION_COOKIE}=; Max-Age=0; Path={path}");
        self.jar.add_cookie_str(&expired, &self.issuer);
    }

    pub async fn get(&self, url: &Url) -> reqwest::Response {
        self.client
            .get(url.clone())
            .send()
            .await
            .expect("GET reaches the OP")
    }

    /// Follows every redirect, across servers (e.g. intranet → OP → intranet), and returns
    /// the first response that is not a redirect.
    pub async fn follow_all(&self, mut response: reqwest::Response) -> reqwest::Response {
        for _ in 0..20 {
            if !response.status().is_redirection() {
                return response;
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .expect("a redirect has a Location");
            let next = response.url().join(location).expect("a valid Location");
            response = self.get(&next).await;
        }
        panic!("more than 20 redirects");
    }

    /// Whether `url` is one of the OP's own (same origin, under the issuer's path).
    fn is_op(&self, url: &Url) -> bool {
        let prefix = self.issuer.path().trim_end_matches('/');
        url.origin() == self.issuer.origin() && url.path().starts_with(prefix)
    }

    /// Follows the OP's own redirects until an OP page or a redirect away from the OP.
    pub async fn follow(&self, mut response: reqwest::Response) -> Landing {
        for _ in 0..10 {
            let url = response.url().clone();
            if !response.status().is_redirection() {
                let status = response.status().as_u16();
                let html = response.text().await.unwrap_or_default();
                let prefix = self.issuer.path().trim_end_matches('/');
                let path = url.path().strip_prefix(prefix).unwrap_or(url.path());
                let path = if path.is_empty() { "/" } else { path }.to_owned();
                return Landing::Page(Page {
                    url,
                    path,
                    status,
                    html,
                });
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .expect("a redirect has a Location");
            let next = url.join(location).expect("a valid Location");
            if !self.is_op(&next) {
                return Landing::Callback(Callback::from_url(next));
            }
            response = self.get(&next).await;
        }
        panic!("too many redirects inside the OP");
    }

    /// `GET /authorize` with the usual code-flow parameters plus `extra` (an empty value
    /// removes a parameter), then follows the OP's redirects.
    pub async fn authorize(&self, idp: &TestIdp, flow: &Flow, extra: &[(&str, &str)]) -> Landing {
        let url = idp.authorize_url(flow, extra);
        let response = self.get(&url).await;
        self.follow(response).await
    }

    /// Posts `page`'s form with its hidden fields plus `fields`.
    pub async fn submit(&self, page: &Page, fields: &[(&str, &str)]) -> Landing {
        let response = self.submit_raw(page, fields).await;
        self.follow(response).await
    }

    /// Posts exactly `fields` to `url` (no hidden fields added); the raw response.
    pub async fn post_raw(&self, url: &Url, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(url.clone())
            .form(fields)
            .send()
            .await
            .expect("POST reaches the OP")
    }

    /// Posts `page`'s form with its hidden fields plus `fields`; the raw response.
    pub async fn submit_raw(&self, page: &Page, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form = page.hidden_fields();
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.client
            .post(page.form_action())
            .form(&form)
            .send()
            .await
            .expect("POST reaches the OP")
    }

    /// Presses the button of `page`'s form to `suffix` (a form of hidden fields only, such as
    /// Cancel or "Not alice?"); the raw response.
    pub async fn press(&self, page: &Page, suffix: &str) -> reqwest::Response {
        let form = page.form_to(suffix);
        let url = page.url.join(&form.action).expect("a valid form action");
        self.client
            .post(url)
            .form(&form.hidden())
            .send()
            .await
            .expect("POST reaches the OP")
    }

    /// Fills in the login page.
    pub async fn submit_login(&self, page: &Page, user: &str, password: &str) -> Landing {
        self.submit(page, &[("username", user), ("password", password)])
            .await
    }

    /// Fills in the second-factor page (optionally ticking "remember this browser").
    pub async fn submit_code(&self, page: &Page, code: &str, remember_browser: bool) -> Landing {
        if remember_browser {
            self.submit(page, &[("code", code), ("remember_browser", "on")])
                .await
        } else {
            self.submit(page, &[("code", code)]).await
        }
    }
}

/// A TOTP code of a documented user's secret, `step_offset` 30-second steps from now.
/// Codes of later steps stay valid if a step boundary passes during the test (±1 skew).
pub fn totp_code(user: &str, step_offset: i64) -> String {
    let secret = match user {
        "alice" => ALICE_TOTP,
        "bob" => BOB_TOTP,
        other => panic!("{other} has no documented TOTP secret"),
    };
    totp_code_for_secret(secret, step_offset)
}

/// A TOTP code of any base32 secret (e.g. the one carol reads off the enrolment page).
pub fn totp_code_for_secret(base32: &str, step_offset: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(base32).expect("a base32 secret");
    let totp = totp_rs::Builder::new()
        .with_secret(secret)
        .build()
        .expect("an RFC 6238 TOTP");
    let now = chrono::Utc::now().timestamp() + step_offset * 30;
    totp.generate(now as u64).to_string()
}

/// The claims of a JWT, without verification (to look; verification is separate).
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

/// The header of a JWT.
pub fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().expect("a JWT has a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON header")
}

/// The `amr` claim as strings.
pub fn amr(claims: &Value) -> Vec<String> {
    serde_json::from_value(claims["amr"].clone()).expect("amr is an array of strings")
}

/// A `claims` parameter asking for an essential `acr` among `values` (OIDC Core §5.5.1.1).
pub fn essential_acr(values: &[&str]) -> String {
    json!({ "id_token": { "acr": { "essential": true, "values": values } } }).to_string()
}

/// A successful token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub body: Value,
    pub id_token: String,
    pub access_token: String,
    /// Unverified claims, for looking at; [`TestIdp::verify_id_token`] verifies.
    pub id_claims: Value,
    pub access_claims: Value,
}

impl TestIdp {
    pub fn url(&self, path: &str) -> Url {
        self.provider.url(path)
    }

    pub fn browser(&self) -> Browser {
        let jar = Arc::new(Jar::default());
        let client = no_redirects()
            .cookie_provider(jar.clone())
            .build()
            .expect("a client");
        Browser {
            client,
            jar,
            issuer: self.issuer.clone(),
        }
    }

    /// An authorization URL for this client; `extra` adds or (with "") removes parameters.
    pub fn authorize_url(&self, flow: &Flow, extra: &[(&str, &str)]) -> Url {
        let challenge = flow.challenge();
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", "openid profile email"),
            ("state", &flow.state),
            ("nonce", &flow.nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra {
            params.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        let mut url = self.url("/authorize");
        url.query_pairs_mut().extend_pairs(params);
        url
    }

    /// `GET /logout` with `params`.
    pub fn logout_url(&self, params: &[(&str, &str)]) -> Url {
        let mut url = self.url("/logout");
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        url
    }

    /// `POST /token` as this client, authenticating as it registered: its secret with
    /// client_secret_basic (also when it registered no method) or client_secret_post, or its
    /// client_id alone if public; the raw response.
    pub async fn redeem_raw(&self, code: &str, verifier: &str) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut request = self.api.post(self.url("/token"));
        let secret = self.client.client_secret.as_ref().map(|s| s.expose_secret());
        match (self.client.token_auth_method(), secret) {
            (TokenAuthMethod::ClientSecretPost, Some(secret)) => {
                form.extend([("client_id", self.client_id.as_str()), ("client_secret", secret)]);
            }
            (_, Some(secret)) => request = request.basic_auth(&self.client_id, Some(secret)),
            (_, None) => form.push(("client_id", &self.client_id)),
        }
        request.form(&form).send().await.expect("POST /token")
    }

    /// Redeems a code that must succeed.
    pub async fn redeem(&self, code: &str, flow: &Flow) -> Tokens {
        let response = self.redeem_raw(code, &flow.verifier).await;
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON token response");
        assert_eq!(status, 200, "the token endpoint refused the code: {body}");
        let id_token = body["id_token"].as_str().expect("an id_token").to_owned();
        let access_token = body["access_token"].as_str().expect("an access_token").to_owned();
        Tokens {
            id_claims: jwt_claims(&id_token),
            access_claims: jwt_claims(&access_token),
            body,
            id_token,
            access_token,
        }
    }

    /// Discovery through the `openidconnect` crate, as the intranet does it.
    pub async fn metadata(&self) -> CoreProviderMetadata {
        let http = no_redirects().build().unwrap();
        let issuer = IssuerUrl::new(self.issuer_id.clone()).unwrap();
        CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .expect("discovery parses")
    }

    /// Verifies an ID token as an `openidconnect` RP would (OIDC Core §3.1.3.7), with the
    /// algorithms discovery advertises (RS256, ES256).
    pub async fn verify_id_token(&self, id_token: &str, nonce: &str) -> Result<CoreIdTokenClaims, String> {
        let client = CoreClient::from_provider_metadata(
            self.metadata().await,
            ClientId::new(self.client_id.clone()),
            self.client
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).unwrap());
        let verifier = client.id_token_verifier().set_allowed_algs(vec![
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        ]);
        let token: CoreIdToken = id_token.parse().map_err(|e| format!("unparsable: {e}"))?;
        token
            .claims(&verifier, &Nonce::new(nonce.to_owned()))
            .cloned()
            .map_err(|e| e.to_string())
    }

    // ---- journeys ----

    /// `browser` at the login page of a new authorization request (`extra` parameters).
    pub async fn at_the_login_page(&self, browser: &Browser, extra: &[(&str, &str)]) -> (Flow, Page) {
        let flow = Flow::new();
        let page = browser.authorize(self, &flow, extra).await.expect_page("/login");
        (flow, page)
    }

    /// `browser` signed in as `user` with the password, on the second-factor page of a
    /// step-up (`/mfa`, or `/enroll` for a user without a second factor).
    pub async fn at_the_code_page(&self, browser: &Browser, user: &str) -> (Flow, Page) {
        let (flow, login) = self.at_the_login_page(browser, &[("acr_values", ACR_MFA)]).await;
        let page = browser
            .submit_login(&login, user, &format!("{user}-password"))
            .await
            .page();
        (flow, page)
    }

    /// A password sign-in of `user` in `browser` (which must have no OP session), up to the
    /// code in the callback, not redeemed.
    pub async fn code_after_login(
        &self,
        browser: &Browser,
        user: &str,
        extra: &[(&str, &str)],
    ) -> (Flow, String) {
        let (flow, page) = self.at_the_login_page(browser, extra).await;
        let callback = browser
            .submit_login(&page, user, &format!("{user}-password"))
            .await
            .callback();
        assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
        (flow, callback.code())
    }

    /// A code for `browser`, which is signed in already (SSO: no page on the way).
    pub async fn sso_code(&self, browser: &Browser, extra: &[(&str, &str)]) -> (Flow, String) {
        let flow = Flow::new();
        let code = browser.authorize(self, &flow, extra).await.callback().code();
        (flow, code)
    }

    /// A full password login of `user` in `browser` (which must not have an OP session).
    pub async fn login(&self, browser: &Browser, user: &str, extra: &[(&str, &str)]) -> (Flow, Tokens) {
        let (flow, code) = self.code_after_login(browser, user, extra).await;
        let tokens = self.redeem(&code, &flow).await;
        (flow, tokens)
    }

    /// A step-up of `user` in `browser`: `acr_values` = the MFA class plus `extra`; signs in
    /// with the password if the OP asks, then enters the TOTP of `step_offset` (use 0, then 1,
    /// ... within one test: each step is accepted once).
    pub async fn step_up(
        &self,
        browser: &Browser,
        user: &str,
        step_offset: i64,
        extra: &[(&str, &str)],
    ) -> (Flow, Tokens) {
        let flow = Flow::new();
        let mut params = vec![("acr_values", ACR_MFA)];
        params.extend_from_slice(extra);
        let mut page = browser.authorize(self, &flow, &params).await.page();
        if page.path == "/login" {
            page = browser
                .submit_login(&page, user, &format!("{user}-password"))
                .await
                .page();
        }
        assert_eq!(page.path, "/mfa", "the OP asks for the second factor");
        let callback = browser
            .submit_code(&page, &totp_code(user, step_offset), false)
            .await
            .callback();
        assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
        let tokens = self.redeem(&callback.code(), &flow).await;
        (flow, tokens)
    }

    /// A step-up in `browser`, which is signed in already: the OP must ask only the second
    /// factor (`/mfa`), which gets `code`; the code from the callback is redeemed.
    pub async fn sso_step_up(&self, browser: &Browser, code: &str, extra: &[(&str, &str)]) -> (Flow, Tokens) {
        let flow = Flow::new();
        let mut params = vec![("acr_values", ACR_MFA)];
        params.extend_from_slice(extra);
        let mfa = browser.authorize(self, &flow, &params).await.expect_page("/mfa");
        let tokens = self.finish_with_code(browser, &mfa, &flow, code).await;
        (flow, tokens)
    }

    /// Enters `code` on the second-factor or enrolment `page` of `flow`, expects the answer
    /// at the client's callback, and redeems it.
    pub async fn finish_with_code(&self, browser: &Browser, page: &Page, flow: &Flow, code: &str) -> Tokens {
        let callback = browser.submit_code(page, code, false).await.callback();
        assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
        self.redeem(&callback.code(), flow).await
    }

    /// `GET path` under the issuer, which must answer 200 with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .api
            .get(self.url(path))
            .send()
            .await
            .expect("GET reaches the OP");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    /// `GET /userinfo` with `access_token` as the bearer token; the raw response.
    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        self.api
            .get(self.url("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("GET /userinfo")
    }

    /// `POST /token` with exactly `form` (no client authentication added); the raw response.
    pub async fn post_token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.api
            .post(self.url("/token"))
            .form(form)
            .send()
            .await
            .expect("POST /token")
    }

    /// Whether `browser` still has an OP session (a plain request is answered without a page).
    pub async fn signed_in(&self, browser: &Browser) -> bool {
        matches!(
            browser.authorize(self, &Flow::new(), &[]).await,
            Landing::Callback(_)
        )
    }

    // ---- test control (through the library's TestProvider) ----

    /// `PUT /test-control/next-token` with `body` (the JSON shape of `NextToken`).
    pub async fn set_next_token(&self, body: Value) {
        let next: NextToken = serde_json::from_value(body).expect("a next-token body");
        self.provider
            .set_next_token(&next)
            .await
            .expect("PUT /test-control/next-token");
    }

    pub async fn set_clock_offset(&self, offset_secs: i64) {
        self.provider
            .set_clock_offset(offset_secs)
            .await
            .expect("PUT /test-control/clock");
    }

    pub async fn reset(&self) {
        self.provider.reset().await.expect("POST /test-control/reset");
    }

    /// The live provider sessions (test control).
    pub async fn sessions(&self) -> Vec<fabrikam::idp::sessions::SessionView> {
        self.provider
            .sessions()
            .await
            .expect("GET /test-control/sessions")
    }

    /// The `params` of the last authorization requests, oldest first.
    pub async fn authorize_requests(&self) -> Vec<Value> {
        self.provider
            .authorize_requests(None)
            .await
            .expect("GET /test-control/authorize-requests")
            .into_iter()
            .map(Value::Object)
            .collect()
    }
}
