//! Back-Channel Logout 1.0, the provider's half: when a provider session ends, every client
//! that received a code in it and registered a `backchannel_logout_uri` gets a logout token,
//! checked here by a small receiver on port 0 the way a relying party would (signature through
//! the JWKS, the claims of §2.4), and shown by test control.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use fabrikam::idp::control::BackchannelLogout;
use fabrikam::idp::{ClientRegistration, SigningAlg, TestProvider};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::SecretString;
use serde_json::{Value, json};
use url::Url;

use crate::support::*;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// One POST a receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    content_type: String,
    form: HashMap<String, String>,
}

/// A relying party's back-channel logout endpoints: every POST is recorded and answered 200,
/// except under `/hang`, which never answers.
struct Receiver {
    base: Url,
    got: Arc<Mutex<Vec<Received>>>,
    server: ServerHandle,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    got: web::Data<Arc<Mutex<Vec<Received>>>>,
) -> HttpResponse {
    if req.path().starts_with("/hang") {
        std::future::pending::<()>().await;
    }
    let form = url::form_urlencoded::parse(&body).into_owned().collect();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    got.lock().unwrap().push(Received {
        path: req.path().to_owned(),
        content_type,
        form,
    });
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .finish()
}

async fn receiver() -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = fabrikam::config::url_for(listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let data = web::Data::new(Arc::clone(&got));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::post().to(record))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Receiver {
        base,
        got,
        server: handle,
    }
}

impl Receiver {
    fn url(&self, path: &str) -> String {
        self.base.join(path).unwrap().to_string()
    }

    /// Waits (up to 5 s) until `n` posts arrived; returns them, in the order of their paths.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..100 {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n {
                let mut got = got;
                got.sort_by(|a, b| a.path.cmp(&b.path));
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{n} back-channel logouts expected, got {:?}",
            self.got.lock().unwrap()
        );
    }
}

/// Test control's record of the logouts, once every one has an outcome (up to `secs`).
async fn logouts_settled(idp: &TestIdp, client_id: Option<&str>, secs: u64) -> Vec<BackchannelLogout> {
    for _ in 0..secs * 20 {
        let list = idp.provider.backchannel_logouts(client_id).await.unwrap();
        if !list.is_empty() && list.iter().all(|l| l.status.is_some() || l.error.is_some()) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the back-channel logouts did not settle");
}

/// Validates a logout token as a relying party does (Back-Channel Logout 1.0 §2.6): the
/// signature with the JWKS key its `kid` names, `alg`, `typ`, `iss`, `aud`, `iat`, `exp`,
/// `jti`, the event, and no `nonce`. Returns the claims.
async fn validate(idp: &TestIdp, token: &str, alg: Algorithm, aud: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, alg);
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: JwkSet = serde_json::from_value(idp.get_json("/jwks").await).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the kid is published");
    let mut validation = Validation::new(alg);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[idp.issuer_id.as_str()]);
    validation.set_required_spec_claims(&["iss", "aud", "iat", "exp", "jti"]);
    let claims = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the logout token verifies")
        .claims;
    assert_eq!(claims["events"], json!({ EVENT: {} }));
    assert!(
        claims.get("nonce").is_none(),
        "§2.4: a logout token never has a nonce"
    );
    let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
    assert!(iat < exp && exp - iat <= 120, "short-lived: {iat}..{exp}");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    claims
}

/// A provider whose first client (the one the helpers act as) is the intranet's registration
/// at the receiver, plus an ES256 client with its own back-channel URI, a client without one,
/// and one that never gets a code.
async fn provider_for(rp: &Receiver) -> TestIdp {
    let intranet = ClientRegistration::for_intranet(CLIENT_ID, SecretString::from(CLIENT_SECRET), &rp.base);
    TestIdp::start(
        TestProvider::builder()
            .client(intranet)
            .client(
                ClientRegistration::confidential("es-app", "s", [rp.url("/es/callback").as_str()])
                    .with_id_token_alg(SigningAlg::ES256)
                    .with_backchannel_logout_uri(&rp.url("/es/backchannel")),
            )
            .client(ClientRegistration::confidential(
                "no-backchannel",
                "s",
                [rp.url("/nb/callback").as_str()],
            ))
            .client(
                ClientRegistration::confidential("unused", "s", [rp.url("/unused/callback").as_str()])
                    .with_backchannel_logout_uri(&rp.url("/unused/backchannel")),
            )
            .demo_users(),
    )
    .await
}

#[tokio::test]
async fn signing_out_sends_each_client_of_the_session_a_logout_token_it_can_verify() {
    let rp = receiver().await;
    let idp = provider_for(&rp).await;
    let browser = idp.browser();
    let (_, tokens) = idp.login(&browser, "alice", &[]).await;
    let sid = tokens.id_claims["sid"].as_str().unwrap().to_owned();
    // SSO into two more applications; "unused" never gets a code in this session.
    for client in ["es-app", "no-backchannel"] {
        let other = idp.as_client(client);
        let (flow, code) = other.sso_code(&browser, &[]).await;
        other.redeem(&code, &flow).await;
    }
    // bob's session, in another browser, is none of this.
    let bobs = idp.browser();
    idp.login(&bobs, "bob", &[]).await;

    let url = idp.logout_url(&[("id_token_hint", &tokens.id_token)]);
    let signed_out = browser.get(&url).await;
    assert_eq!(signed_out.status(), 200, "signed out at once");

    let got = rp.wait_for(2).await;
    assert_eq!(
        got.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        ["/backchannel-logout", "/es/backchannel"]
    );
    for (received, (client, alg)) in got
        .iter()
        .zip([(CLIENT_ID, Algorithm::RS256), ("es-app", Algorithm::ES256)])
    {
        // §2.5: a form POST with the token and nothing else.
        assert_eq!(received.content_type, "application/x-www-form-urlencoded");
        assert_eq!(received.form.keys().collect::<Vec<_>>(), ["logout_token"]);
        let claims = validate(&idp, &received.form["logout_token"], alg, client).await;
        assert_eq!(claims["sid"], sid.as_str());
        assert_eq!(claims["sub"], "alice");
    }

    // Test control shows what was sent, with the receivers' answers.
    let sent = logouts_settled(&idp, None, 5).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    for logout in &sent {
        assert_eq!(logout.status, Some(200));
        assert_eq!(
            (logout.sid.as_str(), logout.sub.as_str()),
            (sid.as_str(), "alice")
        );
        assert!(got.iter().any(|r| r.form["logout_token"] == logout.logout_token));
    }
    let es = idp.provider.backchannel_logouts(Some("es-app")).await.unwrap();
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].uri, rp.url("/es/backchannel"));
    assert!(idp.signed_in(&bobs).await, "bob's session is untouched");
    assert_eq!(
        rp.got.lock().unwrap().len(),
        2,
        "nothing for bob's or an unused client"
    );
}

#[tokio::test]
async fn revocation_and_a_sign_in_as_someone_else_end_sessions_with_logout_tokens_too() {
    let rp = receiver().await;
    let idp = provider_for(&rp).await;
    // Revoked through test control.
    let browser = idp.browser();
    let (_, tokens) = idp.login(&browser, "alice", &[]).await;
    let sid = tokens.id_claims["sid"].as_str().unwrap().to_owned();
    assert!(idp.provider.end_session(&sid).await.unwrap());
    let got = rp.wait_for(1).await;
    let claims = validate(&idp, &got[0].form["logout_token"], Algorithm::RS256, CLIENT_ID).await;
    assert_eq!(claims["sid"], sid.as_str());
    assert!(!idp.signed_in(&browser).await);

    // bob signs in over carol's session in one browser: carol's session ended.
    let shared = idp.browser();
    let (_, carols) = idp.login(&shared, "carol", &[]).await;
    let (_, login) = idp.at_the_login_page(&shared, &[("prompt", "login")]).await;
    shared
        .submit_login(&login, "bob", "bob-password")
        .await
        .callback();
    rp.wait_for(2).await;

    // Removing a user ends their sessions, with a logout token each.
    let (_, bobs) = idp.login(&idp.browser(), "bob", &[]).await;
    assert!(idp.provider.remove_user("bob").await.unwrap());
    let mut ended = Vec::new();
    for received in rp.wait_for(4).await {
        let claims = validate(&idp, &received.form["logout_token"], Algorithm::RS256, CLIENT_ID).await;
        ended.push((claims["sub"].clone(), claims["sid"].clone()));
    }
    assert!(
        ended.contains(&(json!("carol"), carols.id_claims["sid"].clone())),
        "{ended:?}"
    );
    assert!(
        ended.contains(&(json!("bob"), bobs.id_claims["sid"].clone())),
        "{ended:?}"
    );
}

#[tokio::test]
async fn a_client_that_never_answers_delays_neither_the_sign_out_nor_the_other_clients() {
    let rp = receiver().await;
    let intranet = ClientRegistration::for_intranet(CLIENT_ID, SecretString::from(CLIENT_SECRET), &rp.base);
    let idp = TestIdp::start(
        TestProvider::builder()
            .client(intranet)
            .client(
                ClientRegistration::confidential("stuck", "s", [rp.url("/hang/callback").as_str()])
                    .with_backchannel_logout_uri(&rp.url("/hang/backchannel")),
            )
            .demo_users(),
    )
    .await;
    let browser = idp.browser();
    let (_, tokens) = idp.login(&browser, "alice", &[]).await;
    let stuck = idp.as_client("stuck");
    let (flow, code) = stuck.sso_code(&browser, &[]).await;
    stuck.redeem(&code, &flow).await;

    let signed_out = browser
        .get(&idp.logout_url(&[("id_token_hint", &tokens.id_token)]))
        .await;
    assert_eq!(signed_out.status(), 200);
    // The answering client got its token while the other still hangs...
    let got = rp.wait_for(1).await;
    assert_eq!(got[0].path, "/backchannel-logout");
    let pending = idp.provider.backchannel_logouts(Some("stuck")).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].status, pending[0].error.as_deref()),
        (None, None),
        "still waiting"
    );
    // ...and after the timeout (5 s) the stuck one is recorded as not delivered.
    let settled = logouts_settled(&idp, Some("stuck"), 10).await;
    assert_eq!(settled[0].error.as_deref(), Some("timed out"));
}
