//! The real binary, as `cargo run` starts it: it logs no password, code, token, cookie or CSRF
//! token while a user signs in, steps up and reads a salary; and it logs an issuer mismatch
//! as what it is, with both spellings. Checked on its actual output.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::app::TestApp;

/// A free loopback port (closed again at once: the binary binds it moments later).
pub fn free_port() -> std::net::SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The binary, killed when dropped, with its stdout and stderr in `log`.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `fabrikam <mode>` with `env`, none of the developer's addresses or provider
    /// settings, and its output in `log`.
    pub fn start(mode: &str, env: &[(&str, String)], log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_fabrikam"));
        command.arg(mode);
        for name in [
            "FABRIKAM_PUBLIC_URL",
            "IDP_ISSUER_URL",
            "OIDC_ISSUER_URL",
            "OIDC_PROVIDER_NAME",
            "IDP_CONFIG",
            "IDP_SIGNING_KEY",
            "IDP_RSA_SIGNING_KEY",
        ] {
            command.env_remove(name);
        }
        let child = command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("the fabrikam binary starts");
        Self { child, log }
    }

    /// Ends it at once with SIGKILL (no shutdown, no flush), as a crash or the OOM killer
    /// would, and waits for it to be gone.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("the process ends");
    }

    /// Everything it has logged so far, a moment after the last request.
    async fn log(&self) -> String {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut text = String::new();
        std::fs::File::open(&self.log)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fabrikam demo` as a process on free loopback ports, with a fresh `TestApp::settings`
/// database and passkey store and `RUST_LOG=rust_log` (its output in `server.log` beside the
/// database), once it answers; and the test helpers for it.
pub async fn demo_process(rust_log: &str) -> (Process, TestApp) {
    let (s, data_dir) = TestApp::settings(|_| {});
    let (site, idp) = (free_port(), free_port());
    let process = Process::start(
        "demo",
        &[
            ("FABRIKAM_ADDR", site.to_string()),
            ("IDP_ADDR", idp.to_string()),
            ("DATABASE_URL", s.database_url.clone()),
            ("IDP_PASSKEY_STORE", s.idp_passkey_store.clone()),
            ("RUST_LOG", rust_log.to_owned()),
        ],
        data_dir.join("server.log"),
    );
    // The binary first: the test opens the same database, and two processes that migrate a
    // new SQLite file at once may both try to create its tables (one then fails to start).
    let client = reqwest::Client::new();
    first_answer(&client, &format!("http://{site}/healthz")).await;
    let public = fabrikam::config::url_for(site);
    let app = TestApp::attach(
        s.clone(),
        data_dir,
        site,
        fabrikam::idp::IdpConfig::from_settings(&s, idp, &public).unwrap(),
    )
    .await;
    (process, app)
}

/// GETs `url` until the binary answers (at most 10 s).
pub async fn first_answer(client: &reqwest::Client, url: &str) -> reqwest::Response {
    for _ in 0..100 {
        if let Ok(res) = client.get(url).send().await {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the binary does not answer {url}");
}

#[tokio::test]
async fn the_binary_never_logs_secrets_codes_or_tokens() {
    let (process, app) = demo_process("debug").await;

    // Sign in, step up, read a salary, sign out: every secret the log could catch.
    let mfa = app.login_to("alice", "/employees/1/salary").await;
    let salary = app.submit_totp(&mfa, "alice").await;
    assert_eq!(salary.status, StatusCode::OK, "{}", salary.body);
    let session = app.cookie("fabrikam_session").expect("a session cookie");
    let csrf = TestApp::csrf_of(&salary);
    app.follow(app.sign_out_from(&salary).await).await;
    let api = app
        .call_api("/api/employees/1/salary", Some("eyJhbGciOiJub25lIn0.e30."))
        .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);

    let text = process.log().await;
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
        ("a query string", "id_token_hint=".to_owned()),
        ("a form field", "password=".to_owned()),
    ] {
        assert!(
            !text.contains(&needle),
            "{what} appears in the log: {needle}\n{text}"
        );
    }
}

#[tokio::test]
async fn the_binary_logs_an_issuer_mismatch_with_both_spellings() {
    let issuer = crate::scenarios::provider_with_a_trailing_slash_issuer().await;
    let (s, data_dir) = TestApp::settings(|_| {});
    let site = free_port();
    let process = Process::start(
        "intranet",
        &[
            ("FABRIKAM_ADDR", site.to_string()),
            ("OIDC_ISSUER_URL", issuer.clone()),
            ("DATABASE_URL", s.database_url.clone()),
            ("IDP_PASSKEY_STORE", s.idp_passkey_store.clone()),
            ("RUST_LOG", "info".into()),
        ],
        data_dir.join("intranet.log"),
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = first_answer(&client, &format!("http://{site}/login")).await;
    assert_eq!(login.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = process.log().await;
    drop(process);
    let _ = std::fs::remove_dir_all(&data_dir);
    assert!(
        text.contains(&format!("configured={issuer} ")) && text.contains(&format!("discovered={issuer}/")),
        "the log shows both spellings:\n{text}"
    );
    assert!(
        !text.contains("unavailable"),
        "and does not call it unavailable:\n{text}"
    );
}

#[tokio::test]
async fn two_intranets_started_together_on_a_new_database_both_serve() {
    // sqlx takes no lock when it migrates SQLite: before the retry in `Database::connect`,
    // one of the two processes stopped with "table customers already exists" every time.
    let (s, data_dir) = TestApp::settings(|_| {});
    let started: Vec<_> = (0..2)
        .map(|i| {
            let site = free_port();
            let process = Process::start(
                "intranet",
                &[
                    ("FABRIKAM_ADDR", site.to_string()),
                    ("OIDC_ISSUER_URL", "http://127.0.0.1:9".into()),
                    ("DATABASE_URL", s.database_url.clone()),
                    ("RUST_LOG", "info".into()),
                ],
                data_dir.join(format!("intranet-{i}.log")),
            );
            (site, process)
        })
        .collect();
    let client = reqwest::Client::new();
    for (site, process) in &started {
        let health = first_answer(&client, &format!("http://{site}/healthz")).await;
        assert_eq!(health.status(), StatusCode::OK, "{}", process.log().await);
        let home = client.get(format!("http://{site}/")).send().await.unwrap();
        assert_eq!(home.status(), StatusCode::OK, "{}", process.log().await);
    }
    drop(started);
    let _ = std::fs::remove_dir_all(&data_dir);
}
