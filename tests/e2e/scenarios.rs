//! Scenario helpers on `TestApp`: one method per user journey (open a page and land where the
//! browser lands, step up with a code, get an access token, call the API, sign out), so tests
//! say what happens instead of repeating the OIDC dance.

use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, web};
use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

use crate::app::{TestApp, Visit};
use crate::authenticator::SoftPasskey;
use crate::stub_provider::TestKey;

/// The event that makes a JWT a logout token (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What the API answered: status, `WWW-Authenticate` (if any) and the JSON body.
#[derive(Debug)]
pub struct ApiAnswer {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub body: Value,
}

impl TestApp {
    /// Both servers (settings changed by `configure`), Fabrikam ID signing ES256 with a key the
    /// test holds too: to mint logout tokens as Fabrikam ID would.
    pub async fn spawn_with_known_key(
        configure: impl FnOnce(&mut fabrikam::config::Settings),
    ) -> (TestApp, TestKey) {
        let key = TestKey::generate("unused");
        let pem = std::env::temp_dir().join(format!("fabrikam-es256-{}.pem", fabrikam::web::random_token(6)));
        std::fs::write(&pem, &key.pem).unwrap();
        let app = TestApp::spawn_with(|s| {
            s.idp_signing_key = Some(pem.clone());
            configure(s);
        })
        .await;
        let _ = std::fs::remove_file(&pem);
        let status = app.idp.provider.keys().await.unwrap();
        let kid = &status.current[&fabrikam::idp::SigningAlg::ES256];
        (app, TestKey::from_pem(&key.pem, kid))
    }

    /// A logout token's claims for the intranet, changed by `extra` (`null` removes a claim).
    pub fn logout_claims(&self, extra: Value) -> Value {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "iss": self.issuer, "aud": "fabrikam-intranet", "iat": now, "exp": now + 120,
            "jti": fabrikam::web::random_token(12), "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        });
        for (k, v) in extra.as_object().expect("an object") {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    }

    /// Posts `logout_token=<token>` as Fabrikam ID would: no cookie, no CSRF token.
    pub async fn post_logout_token(&self, token: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let res = self
            .plain
            .post(self.url("/backchannel-logout"))
            .form(&[("logout_token", token)])
            .send()
            .await
            .unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, res.json().await.unwrap_or(Value::Null))
    }

    /// Opens `path` and follows every redirect: the page the browser ends on (for a page that
    /// steps up, the provider's second-factor page).
    pub async fn open(&self, path: &str) -> Visit {
        self.follow(self.get(path).await).await
    }

    /// Opens `path`, which sends a signed-in `user` to step up, and answers the provider's
    /// second-factor page with the user's current code: the page the browser ends on.
    pub async fn step_up_with_totp(&self, user: &str, path: &str) -> Visit {
        let mfa = self.open(path).await;
        self.submit_totp(&mfa, user).await
    }

    /// Opens `path`, which sends a signed-in `user` to a phishing-resistant step-up, and
    /// answers Fabrikam ID's passkey page with `key`: a code first and a new passkey if the
    /// user has none, then a sign-in with it. The page the browser ends on.
    pub async fn step_up_with_passkey(&self, user: &str, key: &mut SoftPasskey, path: &str) -> Visit {
        let mut page = self.open(path).await;
        assert_eq!(page.url.path(), "/passkey", "the passkey page:\n{}", page.body);
        let data = |page: &Visit, id: &str, attr: &str| {
            crate::html::attrs(&page.body, &format!("#{id}"), attr).pop()
        };
        if let Some(href) = data(&page, "verify-first", "href") {
            let code_page = self
                .follow(self.get(page.url.join(&href).unwrap().as_str()).await)
                .await;
            page = self.submit_totp(&code_page, user).await;
        }
        if let Some(options) = data(&page, "passkey-register", "data-options") {
            let csrf = data(&page, "passkey-register", "data-csrf").unwrap();
            let options = self
                .post_json(page.url.join(&options).unwrap(), json!({ "csrf_token": csrf }))
                .await;
            let credential = key.register(&options);
            let finish = data(&page, "passkey-register", "data-finish").unwrap();
            self.post_json(
                page.url.join(&finish).unwrap(),
                json!({ "csrf_token": csrf, "name": "Test key", "credential": credential }),
            )
            .await;
        }
        let csrf = data(&page, "passkey-sign-in", "data-csrf").expect("a passkey sign-in button");
        let options = data(&page, "passkey-sign-in", "data-options").unwrap();
        let options = self
            .post_json(page.url.join(&options).unwrap(), json!({ "csrf_token": csrf }))
            .await;
        let credential = key.sign_in(&options);
        let finish = data(&page, "passkey-sign-in", "data-finish").unwrap();
        let answer = self
            .post_json(
                page.url.join(&finish).unwrap(),
                json!({ "csrf_token": csrf, "credential": credential }),
            )
            .await;
        let next = answer["next"].as_str().expect("where to go next");
        self.follow(self.get(next).await).await
    }

    /// Posts `body` as JSON with the browser's cookies; the JSON answer, which must be a 200.
    pub async fn post_json(&self, url: Url, body: Value) -> Value {
        let res = self
            .browser
            .post(url.clone())
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = res.status();
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "{url}: {answer}");
        answer
    }

    /// Signs in as `user` with the password, then steps up on `path` with the code.
    pub async fn login_with_mfa(&self, user: &str, path: &str) -> Visit {
        self.login_as(user).await;
        self.step_up_with_totp(user, path).await
    }

    /// Posts the logout form of `page` (its CSRF token), without following the redirect.
    pub async fn sign_out_from(&self, page: &Visit) -> Visit {
        let csrf = TestApp::csrf_of(page);
        self.post_form(self.url("/logout"), &[("csrf_token".into(), csrf)])
            .await
    }

    /// Runs a password login up to the provider's redirect to our callback, not following it.
    pub async fn callback_url(&self, user: &str) -> Url {
        let page = self.open("/login").await;
        let answer = self
            .submit_no_follow(
                &page,
                &[("username", user), ("password", &format!("{user}-password"))],
            )
            .await;
        let location = answer.location().expect("the OP redirects back");
        assert_eq!(location.path(), "/callback");
        location
    }

    /// An access token for `user` from Fabrikam ID, with a second factor when `mfa`, obtained
    /// as a client would (authorize as the intranet's client, sign in, redeem the code).
    pub async fn access_token(&self, user: &str, mfa: bool) -> String {
        let browser = self.idp.browser();
        let (_, tokens) = if mfa {
            self.idp.step_up(&browser, user, 0, &[]).await
        } else {
            self.idp.login(&browser, user, &[]).await
        };
        tokens.access_token
    }

    /// `GET path` on the intranet with `Authorization: Bearer <token>` (or none).
    pub async fn call_api(&self, path: &str, token: Option<&str>) -> ApiAnswer {
        let mut request = self.plain.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let res = request.send().await.expect("the API answers");
        let status = res.status();
        let challenge = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().expect("an ASCII challenge").to_owned());
        let body = res.json().await.unwrap_or(Value::Null);
        ApiAnswer {
            status,
            challenge,
            body,
        }
    }
}

/// A provider that serves only its discovery document (and an empty JWKS), naming its issuer
/// `<base>/`: with the trailing slash, as Auth0 spells it. Returns `<base>` without it.
pub async fn provider_with_a_trailing_slash_issuer() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let document = json!({
        "issuer": format!("{base}/"),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let server = HttpServer::new(move || {
        let document = document.clone();
        App::new()
            .route(
                "/.well-known/openid-configuration",
                web::get().to(move || {
                    let document = document.clone();
                    async move { HttpResponse::Ok().json(document) }
                }),
            )
            .route(
                "/jwks",
                web::get().to(|| async { HttpResponse::Ok().json(json!({"keys": []})) }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    base
}
