//! The step-up crate's example (`crates/actix-web-stepup/examples/bearer_api.rs`, the program
//! of the tutorial's section 10), run as its own process against Fabrikam ID: weak tokens get
//! RFC 9470's challenge, strong ones the report, a missing role a 403, another scheme a bare
//! challenge; `typ` is read as a media type; a provider naming another issuer stops the start.
//!
//! It runs the example binary, which `cargo test` at the workspace root builds but
//! `cargo test --test e2e` does not; so it is `#[ignore]`d and `.ci/run` builds the example
//! and runs it: `cargo build -p actix-web-stepup --example bearer_api && cargo test --test e2e
//! stepup_example -- --ignored`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use actix_web_stepup::StepUpRequest;
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::JwkSet};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::app::TestApp;
use crate::scenarios::provider_with_a_trailing_slash_issuer;

const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// `target/<profile>/examples/bearer_api`, next to this test binary's `deps/` directory.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/");
    profile_dir
        .join("examples")
        .join(format!("bearer_api{}", std::env::consts::EXE_SUFFIX))
}

/// The example started against `issuer` on port 0.
fn start_example(issuer: &str) -> Child {
    let binary = example_binary();
    assert!(
        binary.exists(),
        "{} is missing: cargo build -p actix-web-stepup --example bearer_api",
        binary.display()
    );
    Command::new(&binary)
        .env("OIDC_ISSUER_URL", issuer)
        .env("ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the example starts")
}

/// The report's URL, from the line the example prints once it listens.
async fn report_url(child: &mut Child) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the example prints its address within 30 s")
        .unwrap()
        .expect("a line");
    first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned()
}

/// An EC P-256 key in a PEM file for Fabrikam ID's ES256 signatures, so the test can sign
/// access tokens the provider could have issued (with a header it would not write).
fn ec_key_file() -> (std::path::PathBuf, Vec<u8>) {
    let key = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    let pem = p256::pkcs8::EncodePrivateKey::to_pkcs8_pem(&key, p256::pkcs8::LineEnding::LF).unwrap();
    let path = std::env::temp_dir().join(format!("fabrikam-example-{}.pem", fabrikam::web::random_token(9)));
    std::fs::write(&path, pem.as_bytes()).unwrap();
    (path, pem.as_bytes().to_vec())
}

#[tokio::test]
#[ignore = "needs the example built (cargo build -p actix-web-stepup --example bearer_api); run by .ci/run"]
async fn the_crates_example_guards_its_route_against_fabrikam_id() {
    let (key_file, key_pem) = ec_key_file();
    let app = TestApp::spawn_with(|s| s.idp_signing_key = Some(key_file.clone())).await;
    let mut child = start_example(&app.issuer);
    let report = report_url(&mut child).await;

    let call = |authorization: Option<String>| {
        let (client, report) = (app.plain.clone(), report.clone());
        async move {
            let mut request = client.get(&report);
            if let Some(authorization) = authorization {
                request = request.header("authorization", authorization);
            }
            let res = request.send().await.expect("the example answers");
            let challenge = res
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            (res.status(), challenge, res.text().await.unwrap())
        }
    };
    let bearer = |token: &str| Some(format!("Bearer {token}"));

    let (status, challenge, _) = call(None).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );
    // RFC 6750 §3.1: another scheme is no bearer token, so no error code either.
    let (status, challenge, _) = call(Some("Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=".into())).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );

    let (status, challenge, _) = call(bearer("not.a.token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some(r#"Bearer error="invalid_token""#));

    let weak = app.access_token("alice", false).await;
    let (status, challenge, body) = call(bearer(&weak)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let asked = StepUpRequest::from_www_authenticate(&challenge.expect("a challenge"))
        .unwrap()
        .expect("an RFC 9470 challenge");
    assert_eq!(
        (asked.acr_values, asked.max_age),
        (vec![MFA.to_owned()], Some(300))
    );

    let strong = app.access_token("alice", true).await;
    let (status, _, body) = call(bearer(&strong)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "Quarterly report for alice\n")
    );
    let (status, _, _) = call(Some(format!("bEaReR {strong}"))).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the scheme is case-insensitive (RFC 9110 §11.1)"
    );

    let bob = app.access_token("bob", true).await;
    let (status, challenge, _) = call(bearer(&bob)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "bob lacks hr: no step-up would help"
    );
    assert_eq!(challenge.as_deref(), Some(r#"Bearer error="insufficient_scope""#));

    // RFC 9068 §4 `typ` is a media type: any case, with or without `application/`.
    let jwks: JwkSet = app
        .plain
        .get(app.idp.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwks
        .keys
        .iter()
        .find(|k| {
            matches!(
                k.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)
            )
        })
        .and_then(|k| k.common.key_id.clone())
        .expect("the ES256 key is published");
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": app.issuer, "aud": "fabrikam-api", "sub": "alice", "client_id": "fabrikam-intranet",
        "iat": now, "exp": now + 300, "jti": "example-typ", "roles": ["hr"],
        "acr": MFA, "amr": ["pwd", "otp", "mfa"], "auth_time": now,
    });
    let key = EncodingKey::from_ec_pem(&key_pem).unwrap();
    for (typ, want) in [
        ("application/at+jwt", StatusCode::OK),
        ("AT+JWT", StatusCode::OK),
        ("Application/AT+JWT", StatusCode::OK),
        ("JWT", StatusCode::UNAUTHORIZED),
        ("application/jwt", StatusCode::UNAUTHORIZED),
    ] {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.into());
        header.kid = Some(kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        let (status, _, body) = call(bearer(&token)).await;
        assert_eq!(status, want, "typ {typ}: {body}");
    }
    child.kill().await.ok();
    std::fs::remove_file(key_file).ok();
}

#[tokio::test]
#[ignore = "needs the example built (cargo build -p actix-web-stepup --example bearer_api); run by .ci/run"]
async fn the_crates_example_refuses_to_start_when_discovery_names_another_issuer() {
    // The document names `<base>/`; the example is configured with `<base>`.
    let base = provider_with_a_trailing_slash_issuer().await;
    let child = start_example(&base);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the example stops within 30 s")
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "it never listened");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The message names both spellings (quoted, as main's error prints).
    for part in [
        "has issuer",
        &format!("{base}/\\\""),
        &format!("not \\\"{base}\\\""),
    ] {
        assert!(stderr.contains(part), "{part} in {stderr}");
    }
}
