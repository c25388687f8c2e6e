//! Test support: start Fabrikam ID on port 0 and act as a browser and a relying party.
//!
//! - [`spawn_idp`] starts Fabrikam ID (test control on) with the intranet client registered.
//! - [`Browser`] keeps cookies and never follows redirects on its own; its helpers follow
//!   the OP's own redirects and stop at an OP page ([`Landing::Page`]) or at the client's
//!   callback ([`Landing::Callback`]).
//! - [`TestIdp`] redeems codes, verifies ID tokens with the `openidconnect` crate (as the
//!   intranet does) and drives the test-control API.

#![allow(dead_code)] // not every module uses every helper

use std::net::TcpListener;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fabrikam::config::{ClientRegistration, IdpConfig, url_for};
use openidconnect::core::{
    CoreClient, CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, Nonce, RedirectUrl};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;
use secrecy::SecretString;
use serde_json::{Value, json};
use url::Url;

pub const CLIENT_ID: &str = "fabrikam-intranet";
pub const CLIENT_SECRET: &str = "fabrikam-demo-secret";
pub const ACR_PASSWORD: &str = "urn:fabrikam:acr:password";
pub const ACR_MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
/// The documented TOTP secrets (DESIGN.md).
pub const ALICE_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
pub const BOB_TOTP: &str = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";
pub const SESSION_COOKIE: &str = "fabrikam_idp_session";
pub const REMEMBER_COOKIE: &str = "fabrikam_idp_remember";

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

/// A running Fabrikam ID.
pub struct TestIdp {
    /// The issuer's base URL (always with a trailing slash; join paths onto it).
    pub issuer: Url,
    /// The issuer identifier exactly as `iss` and discovery carry it (no trailing slash).
    pub issuer_id: String,
    pub config: IdpConfig,
    pub redirect_uri: String,
    pub post_logout_redirect_uri: String,
    /// A plain client (no cookies, no redirects) for API calls.
    pub api: reqwest::Client,
}

/// Starts Fabrikam ID on `127.0.0.1:0` in this test's runtime.
pub async fn spawn_idp(options: IdpOptions) -> TestIdp {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let issuer = url_for(listener.local_addr().expect("a bound address"));
    let client = ClientRegistration::for_intranet(
        CLIENT_ID,
        SecretString::from(CLIENT_SECRET),
        &options.rp_public_url,
    );
    let config = IdpConfig {
        issuer,
        clients: vec![client],
        mfa_at_login: options.mfa_at_login,
        test_control: options.test_control,
        api_audience: "fabrikam-api".into(),
        signing_key_pem: None,
    };
    TestIdp::spawn(config, listener).await
}

impl TestIdp {
    /// Starts Fabrikam ID with `config` (its first client is the one the helpers act as).
    pub async fn spawn(config: IdpConfig, listener: TcpListener) -> TestIdp {
        let server = fabrikam::idp::build(config.clone(), listener)
            .await
            .expect("Fabrikam ID builds");
        tokio::spawn(server);
        TestIdp::new(config)
    }

    /// Helpers for a Fabrikam ID already running with `config`.
    pub fn new(config: IdpConfig) -> TestIdp {
        let client = &config.clients[0];
        let redirect_uri = client.redirect_uris[0].to_string();
        let post_logout_redirect_uri = client.post_logout_redirect_uris[0].to_string();
        let issuer = fabrikam::config::with_trailing_slash(&config.issuer);
        TestIdp {
            issuer_id: fabrikam::config::issuer_id(&issuer),
            issuer,
            config,
            redirect_uri,
            post_logout_redirect_uri,
            api: no_redirects().build().unwrap(),
        }
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

    /// The OP page at `path` (e.g. `/login`, `/mfa`, `/enroll`), with status 200.
    #[track_caller]
    pub fn expect_page(self, path: &str) -> Page {
        let page = self.page();
        assert_eq!(
            page.url.path(),
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
#[derive(Debug)]
pub struct Page {
    pub url: Url,
    pub status: u16,
    pub html: String,
}

impl Page {
    /// The hidden inputs of the page's form.
    pub fn hidden_fields(&self) -> Vec<(String, String)> {
        inputs(&self.html)
            .into_iter()
            .filter(|attrs| attr(attrs, "type").as_deref() == Some("hidden"))
            .filter_map(|attrs| Some((attr(&attrs, "name")?, attr(&attrs, "value").unwrap_or_default())))
            .collect()
    }

    /// The absolute URL the page's (first) form posts to.
    pub fn form_action(&self) -> Url {
        let start = self.html.find("<form").expect("the page has a form");
        let tag = &self.html[start..start + self.html[start..].find('>').unwrap()];
        let action = attr(tag, "action").expect("the form has an action");
        self.url.join(&action).expect("a valid form action")
    }

    /// The text of the element with `id`, e.g. `totp-secret`.
    pub fn element_text(&self, id: &str) -> Option<String> {
        let marker = format!("id=\"{id}\"");
        let at = self.html.find(&marker)?;
        let open_end = at + self.html[at..].find('>')? + 1;
        let close = open_end + self.html[open_end..].find('<')?;
        Some(unescape(self.html[open_end..close].trim()))
    }

    /// The page's visible words, roughly (tags removed), for messages and assertions.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in self.html.chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    out.push(' ');
                }
                _ if !in_tag => out.push(c),
                _ => {}
            }
        }
        unescape(&out.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

/// The attribute strings of every `<input ...>` tag.
fn inputs(html: &str) -> Vec<String> {
    html.match_indices("<input")
        .filter_map(|(i, _)| html[i..].find('>').map(|end| html[i..i + end].to_owned()))
        .collect()
}

/// `name="value"` from a tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = start + tag[start..].find('"')?;
    Some(unescape(&tag[start..end]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// The query of a redirect to the client.
#[derive(Debug, Clone)]
pub struct Callback {
    pub url: Url,
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
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

    /// Drops the OP session cookie, keeping the others (a new browser session).
    pub fn forget_session(&self) {
        let expired = format!("{SESSION_COOKIE}=; Max-Age=0; Path=/");
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

    /// Follows the OP's own redirects until an OP page or a redirect away from the OP.
    pub async fn follow(&self, mut response: reqwest::Response) -> Landing {
        for _ in 0..10 {
            let url = response.url().clone();
            if !response.status().is_redirection() {
                let status = response.status().as_u16();
                let html = response.text().await.unwrap_or_default();
                return Landing::Page(Page { url, status, html });
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .expect("a redirect has a Location");
            let next = url.join(location).expect("a valid Location");
            if next.origin() != self.issuer.origin() {
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
        let mut form = page.hidden_fields();
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let response = self
            .client
            .post(page.form_action())
            .form(&form)
            .send()
            .await
            .expect("POST reaches the OP");
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
        self.issuer
            .join(path.trim_start_matches('/'))
            .expect("a valid path")
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

    /// An authorization URL for the registered client; `extra` adds or (with "") removes
    /// parameters.
    pub fn authorize_url(&self, flow: &Flow, extra: &[(&str, &str)]) -> Url {
        let challenge = flow.challenge();
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
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

    /// `POST /token` with client_secret_basic; the raw response.
    pub async fn redeem_raw(&self, code: &str, verifier: &str) -> reqwest::Response {
        self.api
            .post(self.url("/token"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .expect("POST /token")
    }

    /// Redeems a code that must succeed.
    pub async fn redeem(&self, code: &str, flow: &Flow) -> Tokens {
        let response = self.redeem_raw(code, &flow.verifier).await;
        assert_eq!(response.status(), 200, "token endpoint refused the code");
        let body: Value = response.json().await.expect("a JSON token response");
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

    /// Verifies an ID token as an `openidconnect` RP would (OIDC Core §3.1.3.7), ES256 allowed.
    pub async fn verify_id_token(&self, id_token: &str, nonce: &str) -> Result<CoreIdTokenClaims, String> {
        let client = CoreClient::from_provider_metadata(
            self.metadata().await,
            ClientId::new(CLIENT_ID.into()),
            Some(ClientSecret::new(CLIENT_SECRET.into())),
        )
        .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).unwrap());
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
        let token: CoreIdToken = id_token.parse().map_err(|e| format!("unparsable: {e}"))?;
        token
            .claims(&verifier, &Nonce::new(nonce.to_owned()))
            .cloned()
            .map_err(|e| e.to_string())
    }

    /// A full password login of `user` in `browser` (which must not have an OP session).
    pub async fn login(&self, browser: &Browser, user: &str, extra: &[(&str, &str)]) -> (Flow, Tokens) {
        let flow = Flow::new();
        let page = browser.authorize(self, &flow, extra).await.expect_page("/login");
        let callback = browser
            .submit_login(&page, user, &format!("{user}-password"))
            .await
            .callback();
        assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
        let tokens = self.redeem(&callback.code(), &flow).await;
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
        if page.url.path() == "/login" {
            page = browser
                .submit_login(&page, user, &format!("{user}-password"))
                .await
                .page();
        }
        assert_eq!(page.url.path(), "/mfa", "the OP asks for the second factor");
        let callback = browser
            .submit_code(&page, &totp_code(user, step_offset), false)
            .await
            .callback();
        assert_eq!(callback.state.as_deref(), Some(flow.state.as_str()));
        let tokens = self.redeem(&callback.code(), &flow).await;
        (flow, tokens)
    }

    // ---- test control ----

    pub async fn set_next_token(&self, body: Value) {
        let r = self
            .api
            .put(self.url("/test-control/next-token"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "PUT /test-control/next-token");
    }

    pub async fn set_clock_offset(&self, offset_secs: i64) {
        let r = self
            .api
            .put(self.url("/test-control/clock"))
            .json(&json!({ "offset_secs": offset_secs }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "PUT /test-control/clock");
    }

    pub async fn reset(&self) {
        let r = self
            .api
            .post(self.url("/test-control/reset"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "POST /test-control/reset");
    }

    /// The `params` of the last authorization requests, oldest first.
    pub async fn authorize_requests(&self) -> Vec<Value> {
        let r = self
            .api
            .get(self.url("/test-control/authorize-requests"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let list: Vec<Value> = r.json().await.unwrap();
        list.into_iter().map(|entry| entry["params"].clone()).collect()
    }
}
