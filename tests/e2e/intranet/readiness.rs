//! `GET /healthz` is liveness (the process answers) and `GET /readyz` readiness: the database,
//! the session store and the provider, each named with whether it answers.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::TestApp;
use crate::stub_provider::silent_provider;

/// `/readyz`: its status and JSON body.
pub async fn readiness(app: &TestApp) -> (StatusCode, Value) {
    let res = app.plain.get(app.url("/readyz")).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.expect("JSON"))
}

#[tokio::test]
async fn readyz_names_each_dependency_and_says_it_answers() {
    let app = TestApp::spawn().await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {
            "database": {"status": "up"},
            "session_store": {"status": "up", "kind": "cookie"},
            "provider": {"status": "up"},
        }})
    );
}

#[tokio::test]
async fn readyz_reports_a_provider_that_is_down_or_silent_within_its_deadline() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (silent, _) = silent_provider();
    for issuer in [format!("http://{closed}"), silent] {
        let app = TestApp::spawn_with(|s| s.oidc_issuer_url = Some(issuer.clone())).await;
        let started = Instant::now();
        let (status, body) = readiness(&app).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{issuer}: {:?}",
            started.elapsed()
        );
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{issuer}: {body}");
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["checks"]["provider"]["status"], "down", "{body}");
        assert!(body["checks"]["provider"]["error"].is_string());
        assert_eq!(body["checks"]["database"]["status"], "up");
        // Liveness is another question: the process answers.
        assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
        assert_eq!(app.get("/").await.status, StatusCode::OK);
    }
}
