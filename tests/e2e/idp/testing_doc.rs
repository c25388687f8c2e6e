//! docs/testing.md stays true: its control-API table names only routes that exist, and its
//! scenarios' request bodies, sent as written, have the effects it describes.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::*;

const DOC: &str = include_str!("../../../docs/testing.md");

/// Every `METHOD /test-control/...` the document mentions.
fn documented_routes() -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for method in ["GET", "PUT", "POST", "PATCH", "DELETE"] {
        let marker = format!("`{method} /test-control/");
        for (i, _) in DOC.match_indices(&marker) {
            let rest = &DOC[i + 1 + method.len() + 1..];
            let path: String = rest
                .chars()
                .take_while(|c| !matches!(c, '`' | '[') && !c.is_whitespace())
                .collect();
            routes.push((method.to_owned(), path));
        }
    }
    routes.sort();
    routes.dedup();
    routes
}

/// The body of the `curl ... $ISSUER<path>` command under `heading`, with the shell's
/// `$((now - N))` evaluated.
fn scenario(heading: &str, path: &str) -> Value {
    let section = DOC.split(heading).nth(1).expect("the scenario is documented");
    let command = section
        .split("```sh")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("a shell block");
    assert!(command.contains(&format!("$ISSUER{path}")), "{command}");
    let data = command.split("-d ").nth(1).expect("a body").trim();
    let mut body = data.trim_matches(|c| c == '\'' || c == '"').replace("\\\"", "\"");
    let now = chrono::Utc::now().timestamp();
    while let Some(start) = body.find("$((now - ") {
        let end = start + body[start..].find("))").unwrap() + 2;
        let secs: i64 = body[start + 9..end - 2].parse().unwrap();
        body.replace_range(start..end, &(now - secs).to_string());
    }
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{heading}: {e}: {body}"))
}

#[tokio::test]
async fn every_control_route_the_document_names_exists() {
    let idp = spawn_idp(IdpOptions::default()).await;
    let routes = documented_routes();
    let names: HashSet<&str> = routes.iter().map(|(_, p)| p.as_str()).collect();
    for expected in [
        "authorize-requests",
        "next-token",
        "clock",
        "reset",
        "users",
        "keys",
        "keys/rotate",
        "sessions",
    ] {
        assert!(
            names
                .iter()
                .any(|p| p.trim_start_matches("/test-control/").starts_with(expected)),
            "{expected} is documented"
        );
    }
    // The deleting ones last, on a user and a session that are not needed afterwards.
    let (_, tokens) = idp.login(&idp.browser(), "bob", &[]).await;
    let sid = tokens.id_claims["sid"].as_str().unwrap().to_owned();
    let (deletes, others): (Vec<_>, Vec<_>) = routes.iter().partition(|(m, _)| m == "DELETE");
    for (method, path) in others.into_iter().chain(deletes) {
        let url = idp.url(&path.replace("{username}", "carol").replace("{sid}", &sid));
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let status = idp
            .api
            .request(method.clone(), url)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status != 404 && status != 405, "{method} {path}: {status}");
    }
}

#[tokio::test]
async fn the_documented_scenarios_do_what_the_document_says() {
    use fabrikam::idp::{ClientRegistration, TestProvider};
    let idp = TestIdp::start(
        TestProvider::builder()
            .client(ClientRegistration::confidential(
                "my-app",
                "s",
                ["http://127.0.0.1:18095/cb"],
            ))
            .demo_users(),
    )
    .await;
    let put = |body: Value| {
        let idp = &idp;
        async move {
            let r = idp
                .api
                .put(idp.url("/test-control/next-token"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204, "{body}");
        }
    };

    // A weak answer to a step-up.
    put(scenario(
        "### A weak answer to a step-up",
        "/test-control/next-token",
    ))
    .await;
    let (_, tokens) = idp
        .login(&idp.browser(), "alice", &[("acr_values", ACR_MFA)])
        .await;
    assert_eq!(tokens.id_claims["acr"], ACR_PASSWORD);
    assert_eq!(amr(&tokens.id_claims), ["pwd"]);

    // An expired token.
    put(scenario("### An expired token", "/test-control/next-token")).await;
    let (flow, tokens) = idp.login(&idp.browser(), "alice", &[]).await;
    let error = idp
        .verify_id_token(&tokens.id_token, &flow.nonce)
        .await
        .unwrap_err();
    assert!(error.to_lowercase().contains("expir"), "{error}");

    // A wrong audience.
    put(scenario("### A wrong audience", "/test-control/next-token")).await;
    let (flow, tokens) = idp.login(&idp.browser(), "alice", &[]).await;
    assert_eq!(tokens.id_claims["aud"], "someone-else");
    assert!(idp.verify_id_token(&tokens.id_token, &flow.nonce).await.is_err());

    // A key rotation.
    let body = scenario("### A key rotation", "/test-control/keys/rotate");
    assert_eq!(body, json!({ "alg": "RS256", "grace_secs": 300 }));
    let before = idp.provider.keys().await.unwrap();
    let r = idp
        .api
        .post(idp.url("/test-control/keys/rotate"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (flow, tokens) = idp.login(&idp.browser(), "alice", &[]).await;
    let kid = jwt_header(&tokens.id_token)["kid"].as_str().unwrap().to_owned();
    assert_ne!(kid, before.current[&fabrikam::idp::SigningAlg::RS256]);
    idp.verify_id_token(&tokens.id_token, &flow.nonce).await.unwrap();
}
