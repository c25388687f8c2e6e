//! `/userinfo`: only an RFC 9068 access token (`typ` at+jwt, `aud` the API) is a bearer
//! credential here; an ID token never is, whatever its audience says.

use serde_json::{Value, json};

use crate::support::*;

/// The `error_description` of a refused `/userinfo` call, after checking the RFC 6750 §3
/// challenge.
async fn refused(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    body["error_description"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn userinfo_refuses_an_id_token_even_one_whose_audience_is_the_api() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    // An ID token (typ JWT) that carries the API's audience: only its typ gives it away.
    idp.set_next_token(json!({ "id_token_claims": { "aud": "fabrikam-api" } }))
        .await;
    let (_, tokens) = idp.login(&browser, "alice", &[]).await;
    assert_eq!(jwt_header(&tokens.id_token)["typ"], "JWT");
    assert_eq!(tokens.id_claims["aud"], "fabrikam-api");
    let description = refused(idp.userinfo(&tokens.id_token).await).await;
    assert!(description.contains("typ at+jwt"), "{description}");
    // The access token of the same response is accepted.
    let info = idp.userinfo(&tokens.access_token).await;
    assert_eq!(info.status(), 200);
    assert_eq!(info.json::<Value>().await.unwrap()["sub"], "alice");
}

#[tokio::test]
async fn userinfo_accepts_at_jwt_in_either_spelling_and_refuses_an_access_token_of_another_type() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let browser = idp.browser();
    idp.login(&browser, "alice", &[]).await;
    // RFC 9068 §4: at+jwt or application/at+jwt, compared without regard to case.
    for (typ, accepted) in [
        (json!("application/at+jwt"), true),
        (json!("AT+JWT"), true),
        (json!("JWT"), false),
        (json!(null), false),
    ] {
        idp.set_next_token(json!({ "access_token_typ": typ })).await;
        let (flow, code) = idp.sso_code(&browser, &[]).await;
        let tokens = idp.redeem(&code, &flow).await;
        assert_eq!(
            jwt_header(&tokens.access_token).get("typ"),
            typ.as_str().map(|t| json!(t)).as_ref()
        );
        let response = idp.userinfo(&tokens.access_token).await;
        if accepted {
            assert_eq!(response.status(), 200, "typ {typ}");
        } else {
            let description = refused(response).await;
            assert!(description.contains("typ at+jwt"), "typ {typ}: {description}");
        }
    }
}
