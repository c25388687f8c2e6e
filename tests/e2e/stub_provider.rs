//! Providers that misbehave, on 127.0.0.1 port 0, for the intranet's fault tests:
//!
//! - [`silent_provider`]: accepts connections and never answers (a hung provider);
//! - [`StubProvider`]: serves a discovery document and a JWKS of P-256 keys it holds, and can
//!   be told to hang on the JWKS, serve an enormous one, or publish another key; it counts the
//!   JWKS requests. Tests mint access tokens with its keys.

#![allow(dead_code)] // not every test uses every switch

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};

/// A provider that accepts TCP connections and never says a word; returns its URL and how
/// many connections it has accepted. The connections stay open until the test ends.
pub fn silent_provider() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(64) {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (url, accepted)
}

/// A P-256 signing key with its `kid`.
pub struct TestKey {
    pub kid: String,
    pub pem: String,
    encoding: EncodingKey,
    pub jwk: Jwk,
}

impl TestKey {
    pub fn generate(kid: &str) -> Self {
        let secret = loop {
            let bytes: [u8; 32] = rand::random();
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                break secret;
            }
        };
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            kid: kid.to_owned(),
            pem,
            encoding,
            jwk,
        }
    }

    /// The P-256 key in `pem` (PKCS#8), published under `kid`.
    pub fn from_pem(pem: &str, kid: &str) -> Self {
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            kid: kid.to_owned(),
            pem: pem.to_owned(),
            encoding,
            jwk,
        }
    }

    /// `claims` signed with this key as ES256, with `typ` in the header.
    pub fn sign(&self, typ: Option<&str>, claims: &Value) -> String {
        self.sign_as(&self.kid, typ, claims)
    }

    /// ... under another `kid`.
    pub fn sign_as(&self, kid: &str, typ: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// How the stub answers for its JWKS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksMode {
    Serve,
    /// Never answers (the intranet times out).
    Hang,
    /// 50 MB of valid-looking JSON.
    Huge,
}

struct Shared {
    published: Mutex<Vec<Jwk>>,
    mode: Mutex<JwksMode>,
    jwks_requests: AtomicUsize,
    hung: AtomicBool,
}

/// A provider that serves only discovery and its JWKS (see the module docs).
pub struct StubProvider {
    pub issuer: String,
    shared: Arc<Shared>,
}

impl StubProvider {
    /// Starts with `keys` published.
    pub async fn start(keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            published: Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect()),
            mode: Mutex::new(JwksMode::Serve),
            jwks_requests: AtomicUsize::new(0),
            hung: AtomicBool::new(false),
        });
        let document = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        let state = shared.clone();
        let server = HttpServer::new(move || {
            let document = document.clone();
            App::new()
                .app_data(web::Data::from(state.clone()))
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(move || {
                        let document = document.clone();
                        async move { HttpResponse::Ok().json(document) }
                    }),
                )
                .route("/jwks", web::get().to(jwks))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { issuer, shared }
    }

    pub fn set_mode(&self, mode: JwksMode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Publishes `key` next to the others (a rotation).
    pub fn publish(&self, key: &TestKey) {
        self.shared.published.lock().unwrap().push(key.jwk.clone());
    }

    /// How many times the JWKS was asked for.
    pub fn jwks_requests(&self) -> usize {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// Waits (at most 10 s) until the JWKS has been asked for `n` times.
    pub async fn wait_for_jwks_requests(&self, n: usize) {
        for _ in 0..200 {
            if self.jwks_requests() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the JWKS was asked for {} times, not {n}", self.jwks_requests());
    }

    /// An RFC 9068 access token from this provider for `sub`, multi-factor and fresh, with
    /// role hr, signed by `key` (under `kid`).
    pub fn access_token(&self, key: &TestKey, kid: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "iss": self.issuer, "sub": "alice", "aud": "fabrikam-api", "client_id": "fabrikam-intranet",
            "iat": now, "exp": now + 300, "jti": fabrikam::web::random_token(8),
            "acr": "http://schemas.openid.net/pape/policies/2007/06/multi-factor",
            "amr": ["pwd", "otp", "mfa"], "auth_time": now, "roles": ["hr"],
        });
        key.sign_as(kid, Some("at+jwt"), &claims)
    }
}

async fn jwks(state: web::Data<Shared>) -> HttpResponse {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let mode = *state.mode.lock().unwrap();
    match mode {
        JwksMode::Serve => {
            let keys = state.published.lock().unwrap().clone();
            HttpResponse::Ok().json(JwkSet { keys })
        }
        JwksMode::Hang => {
            state.hung.store(true, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
        JwksMode::Huge => {
            // {"keys": [], "padding": "xxxx…"}: 50 MB, streamed so the stub need not hold it.
            let chunk = web::Bytes::from(vec![b'x'; 1024 * 1024]);
            let body = futures_util::stream::iter(
                std::iter::once(web::Bytes::from_static(br#"{"keys": [], "padding": ""#))
                    .chain(std::iter::repeat_n(chunk, 50))
                    .chain(std::iter::once(web::Bytes::from_static(br#""}"#)))
                    .map(Ok::<_, std::convert::Infallible>),
            );
            HttpResponse::Ok()
                .content_type("application/json")
                .streaming(body)
        }
    }
}
