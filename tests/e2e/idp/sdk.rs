//! Client libraries and the callback paths of common SDKs against Fabrikam ID.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, TokenResponse,
};

use crate::support::*;

#[tokio::test]
async fn the_openidconnect_crate_completes_a_step_up_flow_end_to_end() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let client = CoreClient::from_provider_metadata(
        idp.metadata().await,
        ClientId::new(CLIENT_ID.into()),
        Some(ClientSecret::new(CLIENT_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(idp.redirect_uri.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_auth_context_value(AuthenticationContextClass::new(ACR_MFA.into()))
        .set_max_age(std::time::Duration::from_secs(600))
        .set_pkce_challenge(challenge)
        .url();
    let browser = idp.browser();
    let login = browser
        .follow(browser.get(&url).await)
        .await
        .expect_page("/login");
    let mfa = browser
        .submit_login(&login, "alice", "alice-password")
        .await
        .expect_page("/mfa");
    let callback = browser
        .submit_code(&mfa, &totp_code("alice", 0), false)
        .await
        .callback();
    assert_eq!(callback.state.as_deref(), Some(state.secret().as_str()));
    let response = client
        .exchange_code(AuthorizationCode::new(callback.code()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("openidconnect redeems the code");
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    let claims = response
        .id_token()
        .unwrap()
        .claims(&verifier, &nonce)
        .expect("verifies");
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some(ACR_MFA));
    assert!(response.access_token().secret().split('.').count() == 3);
    // A client built from the metadata takes its allowed algorithms from
    // `id_token_signing_alg_values_supported`, so its default verifier accepts the token too.
    assert!(
        response
            .id_token()
            .unwrap()
            .claims(&client.id_token_verifier(), &nonce)
            .is_ok()
    );
}
