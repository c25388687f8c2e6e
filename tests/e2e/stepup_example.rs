//! The step-up crate's example (`crates/actix-web-stepup/examples/bearer_api.rs`, the program
//! of the tutorial's section 10), run as its own process against Fabrikam ID: weak tokens get
//! RFC 9470's challenge, strong ones the report, a missing role a 403.
//!
//! It runs the example binary, which `cargo test` at the workspace root builds but
//! `cargo test --test e2e` does not; so it is `#[ignore]`d and `.ci/run` builds the example
//! and runs it: `cargo build -p actix-web-stepup --example bearer_api && cargo test --test e2e
//! stepup_example -- --ignored`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use actix_web_stepup::StepUpRequest;
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::app::TestApp;

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

#[tokio::test]
#[ignore = "needs the example built (cargo build -p actix-web-stepup --example bearer_api); run by .ci/run"]
async fn the_crates_example_guards_its_route_against_fabrikam_id() {
    let app = TestApp::spawn().await;
    let binary = example_binary();
    assert!(
        binary.exists(),
        "{} is missing: cargo build -p actix-web-stepup --example bearer_api",
        binary.display()
    );
    let mut child = Command::new(&binary)
        .env("OIDC_ISSUER_URL", &app.issuer)
        .env("ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the example starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the example prints its address within 30 s")
        .unwrap()
        .expect("a line");
    let report = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();

    let call = |token: Option<String>| {
        let (client, report) = (app.plain.clone(), report.clone());
        async move {
            let mut request = client.get(&report);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let res = request.send().await.expect("the example answers");
            let challenge = res
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            (res.status(), challenge, res.text().await.unwrap())
        }
    };

    let (status, challenge, _) = call(None).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );

    let (status, challenge, _) = call(Some("not.a.token".into())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some(r#"Bearer error="invalid_token""#));

    let weak = app.access_token("alice", false).await;
    let (status, challenge, body) = call(Some(weak)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let asked = StepUpRequest::from_www_authenticate(&challenge.expect("a challenge"))
        .unwrap()
        .expect("an RFC 9470 challenge");
    assert_eq!(
        (asked.acr_values, asked.max_age),
        (vec![MFA.to_owned()], Some(300))
    );

    let strong = app.access_token("alice", true).await;
    let (status, _, body) = call(Some(strong)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "Quarterly report for alice\n")
    );

    let bob = app.access_token("bob", true).await;
    let (status, challenge, _) = call(Some(bob)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "bob lacks hr: no step-up would help"
    );
    assert_eq!(challenge.as_deref(), Some(r#"Bearer error="insufficient_scope""#));
    child.kill().await.ok();
}
