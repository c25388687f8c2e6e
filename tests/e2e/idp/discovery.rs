//! Discovery (OpenID Connect Discovery 1.0 §3) and the JWKS.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn discovery_parses_with_openidconnect_and_advertises_the_contract() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let metadata = idp.metadata().await;
    assert_eq!(metadata.issuer().as_str(), idp.issuer_id);
    assert!(
        !idp.issuer_id.ends_with('/'),
        "the contract writes the issuer without a slash"
    );
    let doc: Value = idp.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], idp.issuer_id);
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    // OIDC Core §15.1: RS256 is mandatory; ES256 is offered too.
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["claims_parameter_supported"], json!(true));
    assert_eq!(doc["grant_types_supported"], json!(["authorization_code"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(doc["acr_values_supported"], json!([ACR_PASSWORD, ACR_MFA]));
    // Back-Channel Logout 1.0 §2.1.
    assert_eq!(doc["backchannel_logout_supported"], json!(true));
    assert_eq!(doc["backchannel_logout_session_supported"], json!(true));
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "end_session_endpoint",
    ] {
        let url = doc[endpoint]
            .as_str()
            .unwrap_or_else(|| panic!("{endpoint} is advertised"));
        assert!(url.starts_with(idp.issuer.as_str()), "{endpoint} = {url}");
    }
}

#[tokio::test]
async fn the_jwks_publishes_one_rsa_and_one_p256_key_with_distinct_thumbprint_kids() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let response = idp.api.get(idp.url("/jwks")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=60")
    );
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{jwks}");
    let (rsa, ec) = (&keys[0], &keys[1]);
    assert_eq!(
        (rsa["kty"].as_str(), rsa["alg"].as_str()),
        (Some("RSA"), Some("RS256"))
    );
    assert_eq!(
        (ec["kty"].as_str(), ec["crv"].as_str(), ec["alg"].as_str()),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert_ne!(rsa["kid"], ec["kid"]);
    for key in keys {
        assert_eq!(key["use"], "sig");
        // RFC 7638: the kid is the SHA-256 thumbprint of the required members.
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
        assert_eq!(
            key["kid"].as_str().unwrap(),
            jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256).unwrap()
        );
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(key.get(private).is_none(), "{private} is never published");
        }
    }
    // The RSA modulus is 2048 bits.
    let n = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        rsa["n"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(n.len(), 256);
}

#[tokio::test]
async fn head_answers_wherever_get_does_with_the_same_headers_and_no_body() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let authorize = idp.authorize_url(&Flow::new(), &[]);
    let paths = [
        "/.well-known/openid-configuration",
        "/jwks",
        "/",
        "/login",
        "/static/idp.css",
        "/logout",
        "/test-control/users",
        "/test-control/sessions",
    ];
    let mut urls: Vec<url::Url> = paths.iter().map(|p| idp.url(p)).collect();
    urls.push(authorize);
    for url in urls {
        let get = idp.api.get(url.clone()).send().await.unwrap();
        let head = idp.api.head(url.clone()).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {url}");
        assert!(
            head.status().is_success() || head.status().is_redirection(),
            "HEAD {url}: {}",
            head.status()
        );
        for name in ["content-type", "cache-control", "content-security-policy"] {
            assert_eq!(
                head.headers().get(name),
                get.headers().get(name),
                "HEAD {url}: {name}"
            );
        }
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {url} has no body");
    }
    // Methods that were never allowed still are not.
    let delete = idp.api.delete(idp.url("/jwks")).send().await.unwrap();
    assert_eq!(delete.status(), 405);
}
