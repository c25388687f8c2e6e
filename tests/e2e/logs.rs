//! The real binary, as `cargo run` starts it, logs no password, code, token, cookie or CSRF
//! token while a user signs in, steps up and reads a salary. Checked on its actual output.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::app::TestApp;

/// A free loopback port (closed again at once: the binary binds it moments later).
fn free_port() -> std::net::SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_never_logs_secrets_codes_or_tokens() {
    let (s, data_dir) = TestApp::settings(|_| {});
    let (site, idp) = (free_port(), free_port());
    let log_path = data_dir.join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_fabrikam"))
        .arg("demo")
        .env("FABRIKAM_ADDR", site.to_string())
        .env("IDP_ADDR", idp.to_string())
        .env("DATABASE_URL", &s.database_url)
        .env("RUST_LOG", "debug")
        .env_remove("FABRIKAM_PUBLIC_URL")
        .env_remove("IDP_ISSUER_URL")
        .env_remove("IDP_CONFIG")
        .env_remove("OIDC_ISSUER_URL")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("the fabrikam binary starts");
    let _process = Process(child);
    let public = fabrikam::config::url_for(site);
    let idp_config = fabrikam::idp::IdpConfig::from_settings(&s, idp, &public).unwrap();
    let app = TestApp::attach(s.clone(), data_dir, site, idp_config).await;
    let mut up = false;
    for _ in 0..100 {
        if app.plain.get(app.url("/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the binary answers /healthz");

    // Sign in, step up, read a salary, sign out: every secret the log could catch.
    let mfa = app.login_to("alice", "/employees/1/salary").await;
    let salary = app.submit_totp(&mfa, "alice").await;
    assert_eq!(salary.status, StatusCode::OK, "{}", salary.body);
    let session = app.cookie("fabrikam_session").expect("a session cookie");
    let csrf = TestApp::csrf_of(&salary);
    app.follow(
        app.post_form(app.url("/logout"), &[("csrf_token".into(), csrf.clone())])
            .await,
    )
    .await;
    let api = app
        .plain
        .get(app.url("/api/employees/1/salary"))
        .bearer_auth("eyJhbGciOiJub25lIn0.e30.")
        .send()
        .await;
    assert_eq!(api.unwrap().status(), StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut text = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.contains("path=/callback"),
        "the log is the server's:\n{text}"
    );
    for (what, needle) in [
        ("the password", "alice-password".to_owned()),
        ("the session cookie", session),
        ("the CSRF token", csrf),
        ("a JWT", "eyJ".to_owned()),
        ("a query string", "code=".to_owned()),
        ("a query string", "state=".to_owned()),
        ("a query string", "id_token_hint".to_owned()),
        ("a form field", "password=".to_owned()),
    ] {
        assert!(!text.contains(&needle), "{what} appears in the log: {needle}");
    }
}
