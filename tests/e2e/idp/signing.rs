//! Signing: RS256 by default (OIDC Core §15.1, Dynamic Client Registration §2), ES256 for a
//! client that registers it, keys from PEM files, and key rotation through test control.

use fabrikam::idp::{ClientRegistration, IdpConfig, KeySource, SigningAlg, TestProvider};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use openidconnect::core::CoreClient;
use openidconnect::{ClientId, ClientSecret, Nonce, RedirectUrl};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};

use crate::support::*;

async fn jwks(idp: &TestIdp) -> JwkSet {
    idp.api
        .get(idp.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies `token` as a strict RP with jsonwebtoken: only `alg`, the key found by `kid`.
async fn strict_verify(idp: &TestIdp, token: &str, alg: Algorithm, aud: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let set = jwks(idp).await;
    let jwk = set
        .find(header.kid.as_deref().ok_or("no kid")?)
        .ok_or("the kid is not in the JWKS")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(alg);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[idp.issuer_id.as_str()]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_client_that_registers_no_algorithm_gets_rs256_tokens_a_strict_rp_accepts() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let (flow, tokens) = idp.login(&idp.browser(), "alice", &[]).await;
    assert_eq!(jwt_header(&tokens.id_token)["alg"], "RS256");
    assert_eq!(jwt_header(&tokens.access_token)["alg"], "RS256");
    let claims = strict_verify(&idp, &tokens.id_token, Algorithm::RS256, CLIENT_ID)
        .await
        .expect("an RS256-only RP accepts the ID token");
    assert_eq!(claims["nonce"], flow.nonce.as_str());
    strict_verify(&idp, &tokens.access_token, Algorithm::RS256, "fabrikam-api")
        .await
        .expect("and the access token");
    // openidconnect with its defaults for a client built from discovery.
    let client = CoreClient::from_provider_metadata(
        idp.metadata().await,
        ClientId::new(CLIENT_ID.into()),
        Some(ClientSecret::new(CLIENT_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(idp.redirect_uri.clone()).unwrap());
    let token: openidconnect::core::CoreIdToken = tokens.id_token.parse().unwrap();
    token
        .claims(&client.id_token_verifier(), &Nonce::new(flow.nonce.clone()))
        .expect("openidconnect's default verifier accepts it");
}

#[tokio::test]
async fn a_client_that_registers_es256_gets_es256_tokens_and_the_other_client_still_rs256() {
    let es = ClientRegistration::confidential("es-app", "es-secret", ["http://127.0.0.1:18081/cb"])
        .with_id_token_alg(SigningAlg::ES256);
    let rs = ClientRegistration::confidential("rs-app", "rs-secret", ["http://127.0.0.1:18082/cb"]);
    let idp = TestIdp::start(TestProvider::builder().client(es).client(rs)).await;
    let browser = idp.browser();
    let (flow, tokens) = idp.login(&browser, "bob", &[]).await;
    assert_eq!(jwt_header(&tokens.id_token)["alg"], "ES256");
    assert_eq!(jwt_header(&tokens.access_token)["alg"], "ES256");
    idp.verify_id_token(&tokens.id_token, &flow.nonce).await.unwrap();
    assert!(
        strict_verify(&idp, &tokens.id_token, Algorithm::RS256, "es-app")
            .await
            .is_err(),
        "an RS256-only RP refuses it, as it should"
    );
    strict_verify(&idp, &tokens.id_token, Algorithm::ES256, "es-app")
        .await
        .unwrap();
    // The same browser, SSO, for the other client.
    let rs = idp.as_client("rs-app");
    let (flow, code) = rs.sso_code(&browser, &[]).await;
    let tokens = rs.redeem(&code, &flow).await;
    assert_eq!(jwt_header(&tokens.id_token)["alg"], "RS256");
    rs.verify_id_token(&tokens.id_token, &flow.nonce).await.unwrap();
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fabrikam-keys-{}", fabrikam::web::random_token(9)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn keys_from_pem_files_are_published_and_used_and_bad_ones_stop_the_start() {
    let dir = temp_dir();
    let rsa_key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
    let rsa_pem = dir.join("rsa.pem");
    std::fs::write(&rsa_pem, rsa_key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    let rsa_pkcs1 = dir.join("rsa-pkcs1.pem");
    std::fs::write(
        &rsa_pkcs1,
        rsa_key.to_pkcs1_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    let ec_key = p256::SecretKey::from_slice(&[42u8; 32]).unwrap();
    let ec_pem = dir.join("ec.pem");
    std::fs::write(
        &ec_pem,
        p256::pkcs8::EncodePrivateKey::to_pkcs8_pem(&ec_key, p256::pkcs8::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();

    // Through the settings, as IDP_SIGNING_KEY and IDP_RSA_SIGNING_KEY set them.
    let mut s = fabrikam::config::Settings::defaults();
    s.idp_issuer_url = None;
    s.idp_config = None;
    s.idp_signing_key = Some(ec_pem.clone());
    s.idp_rsa_signing_key = Some(rsa_pem.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let public = url::Url::parse("http://127.0.0.1:18080/").unwrap();
    let config = IdpConfig::from_settings(&s, listener.local_addr().unwrap(), &public).unwrap();
    tokio::spawn(fabrikam::idp::build(config.clone(), listener).await.unwrap());
    let idp = TestIdp::new(config);
    let published = jwks(&idp).await;
    let (_, tokens) = idp.login(&idp.browser(), "alice", &[]).await;
    let kid = jwt_header(&tokens.id_token)["kid"].as_str().unwrap().to_owned();
    assert_eq!(published.keys[0].common.key_id.as_deref(), Some(kid.as_str()));

    // The same files give the same kids (RFC 7638: the thumbprint of the key); PKCS#1 too.
    let again = TestIdp::start(TestProvider::builder().signing_keys(
        KeySource::File(ec_pem.clone()),
        KeySource::File(rsa_pkcs1.clone()),
    ))
    .await;
    assert_eq!(jwks(&again).await, published);

    // Bad keys: the error names the file and what is wrong, and nothing starts.
    let small = rsa::PrivateKey::new(&mut getrandom::SysRng, 1024).unwrap();
    let small_pem = dir.join("small.pem");
    std::fs::write(&small_pem, small.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    for (ec, rsa, expected) in [
        (ec_pem.clone(), small_pem.clone(), "1024 bits; at least 2048"),
        (ec_pem.clone(), garbage.clone(), "not a PEM RSA private key"),
        (
            rsa_pem.clone(),
            rsa_pem.clone(),
            "not a PKCS#8 PEM P-256 private key",
        ),
        (dir.join("missing.pem"), rsa_pem.clone(), "cannot read"),
    ] {
        let result = TestProvider::builder()
            .signing_keys(KeySource::File(ec.clone()), KeySource::File(rsa.clone()))
            .start()
            .await;
        let message = format!("{:#}", result.err().expect("a bad key stops the start"));
        assert!(message.contains(expected), "{message}");
        let named = if expected == "cannot read" || expected.contains("P-256") {
            &ec
        } else {
            &rsa
        };
        assert!(message.contains(&named.display().to_string()), "{message}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_rotated_key_signs_at_once_and_the_old_one_stays_published_for_its_grace_period() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    let (old_flow, old) = idp.login(&browser, "alice", &[]).await;
    let old_kid = jwt_header(&old.id_token)["kid"].as_str().unwrap().to_owned();
    let before = idp.provider.keys().await.unwrap();
    assert_eq!(before.current[&SigningAlg::RS256], old_kid);

    let after = idp
        .provider
        .rotate_keys(Some(SigningAlg::RS256), Some(600))
        .await
        .unwrap();
    let new_kid = after.current[&SigningAlg::RS256].clone();
    assert_ne!(new_kid, old_kid);
    assert_eq!(
        after.current[&SigningAlg::ES256],
        before.current[&SigningAlg::ES256]
    );
    let published: Vec<String> = jwks(&idp)
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(published.len(), 3, "{published:?}");
    assert_eq!(published[0], new_kid, "the current RSA key first");
    assert!(
        published.contains(&old_kid),
        "the old key stays in its grace period"
    );

    // New tokens use the new key; both old and new verify against the JWKS.
    let (flow, code) = idp.sso_code(&browser, &[]).await;
    let new = idp.redeem(&code, &flow).await;
    assert_eq!(jwt_header(&new.id_token)["kid"], new_kid.as_str());
    idp.verify_id_token(&new.id_token, &flow.nonce).await.unwrap();
    idp.verify_id_token(&old.id_token, &old_flow.nonce)
        .await
        .expect("an old token within the grace period still verifies");
    // The provider itself still accepts the old key (userinfo, logout hints) in the grace.
    let info = idp.userinfo(&old.access_token).await;
    assert_eq!(info.status(), 200);

    // After the grace period (the provider's clock), the old key is gone.
    idp.set_clock_offset(601).await;
    let published = jwks(&idp).await;
    assert_eq!(published.keys.len(), 2);
    assert!(published.find(&old_kid).is_none());
    let info = idp.userinfo(&old.access_token).await;
    assert_eq!(info.status(), 401, "expired anyway, and its key withdrawn");

    // grace_secs 0 withdraws the old key at once; no body rotates every algorithm.
    let status = idp.provider.rotate_keys(None, Some(0)).await.unwrap();
    assert_eq!(status.published.len(), 2);
    assert!(!status.published.contains(&new_kid));
    let r = idp
        .api
        .post(idp.url("/test-control/keys/rotate"))
        .json(&json!({ "alg": "HS256" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "unknown algorithms are refused");
    let r = idp
        .api
        .post(idp.url("/test-control/keys/rotate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "an empty body rotates both");
    let rotated: Value = r.json().await.unwrap();
    assert_ne!(
        rotated["current"]["ES256"],
        json!(status.current[&SigningAlg::ES256])
    );
}
