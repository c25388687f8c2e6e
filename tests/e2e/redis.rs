//! Server-side sessions in Redis, against a real `redis-server` each test starts on a free
//! 127.0.0.1 port (and stops, pauses or restarts to inject faults): several intranet
//! processes share sessions, logout ends a session everywhere, and an outage costs each
//! request the deadline (`REDIS_TIMEOUT_MS`) — a `503` page with a body and the security
//! headers — with service back by itself when Redis is. `#[ignore]`d: they need
//! `redis-server` on the PATH (`.ci/run` installs it and runs them).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;

use crate::app::TestApp;
use crate::intranet::readiness::readiness;

/// A `redis-server` on 127.0.0.1, its data in a temporary directory (append-only file, so a
/// restart keeps the sessions), killed when dropped.
pub struct RedisProcess {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisProcess {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("fabrikam-redis-{}", fabrikam::web::random_token(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self {
            port,
            dir,
            child: None,
        };
        redis.spawn();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH (apt-get install redis-server)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Freezes the process (SIGSTOP): connections stay open and nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Kills it (SIGKILL): connections drop, the port refuses.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.resume();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Both servers with sessions in `redis`, waiting at most 300 ms for it.
async fn app_with(redis: &RedisProcess) -> TestApp {
    let url = redis.url();
    TestApp::spawn_with(|s| {
        s.redis_url = Some(SecretString::from(url));
        s.session_secret = Some(SecretString::from("5a".repeat(64)));
        s.redis_timeout_ms = 300;
    })
    .await
}

/// GET `path` in the browser: the status, the time taken and the response.
async fn timed(app: &TestApp, path: &str) -> (StatusCode, Duration, crate::app::Visit) {
    let started = Instant::now();
    let visit = app.get(path).await;
    (visit.status, started.elapsed(), visit)
}

#[tokio::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn two_intranet_processes_share_sessions_and_logout_ends_them_everywhere() {
    let redis = RedisProcess::start();
    let app = app_with(&redis).await;
    // A second intranet process with the same settings, against the same provider.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let second = fabrikam::config::url_for(listener.local_addr().unwrap());
    let config = app.settings.intranet_config(second.clone(), app.issuer.clone());
    tokio::spawn(
        fabrikam::intranet::build(config, listener)
            .await
            .expect("the second intranet builds"),
    );

    app.login_as("alice").await;
    // Cookies are not scoped by port: the browser presents the same session to both.
    let page = app.get(second.join("/customers").unwrap().as_str()).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "the second process knows the session"
    );
    assert!(page.body.contains("Alice Ashford"));

    // The cookie holds only a session id. Copy it, log out at the second process, replay it.
    let copied = app.cookie("fabrikam_session").expect("a session cookie");
    let out = app
        .post_form(
            second.join("/logout").unwrap(),
            &[("csrf_token".into(), TestApp::csrf_of(&page))],
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/customers").await.status,
        StatusCode::FOUND,
        "logged out in the first process too"
    );
    let replay = app
        .plain
        .get(app.url("/customers"))
        .header("cookie", format!("fabrikam_session={copied}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        replay.status(),
        StatusCode::FOUND,
        "the copied session id is dead in Redis"
    );
}

#[tokio::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn a_stopped_redis_costs_each_request_the_deadline_and_service_returns_with_it() {
    let mut redis = RedisProcess::start();
    let app = app_with(&redis).await;
    app.login_as("alice").await;
    assert_eq!(app.get("/customers").await.status, StatusCode::OK);

    // Frozen: every request that needs the session answers 503 within the deadline.
    redis.pause();
    let (status, took, page) = timed(&app, "/customers").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{}", page.body);
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert!(
        page.body.contains("Sessions are unavailable"),
        "a page with a body: {}",
        page.body
    );
    for header in [
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
    ] {
        assert!(page.headers.contains_key(header), "{header} on the 503 page");
    }
    assert_eq!(page.headers["cache-control"], "no-store");
    // Concurrent requests do not queue behind one another.
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..8).map(|_| app.get("/customers"))).await;
    assert!(
        answers
            .iter()
            .all(|v| v.status == StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "8 at once took {:?}",
        started.elapsed()
    );
    // What needs no session never waits: liveness, anonymous pages, the stylesheet, the API.
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["session_store"]["status"], "down", "{body}");
    assert_eq!(body["checks"]["session_store"]["kind"], "redis");
    assert_eq!(body["checks"]["database"]["status"], "up");
    let anonymous = app.new_browser();
    assert_eq!(app.get_with(&anonymous, "/").await.status, StatusCode::OK);
    assert_eq!(app.get("/static/fabrikam.css").await.status, StatusCode::OK);
    let api = app.call_api("/api/employees/1/salary", None).await;
    assert_eq!(
        (api.status, api.body["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_request"))
    );

    // Back: the same session works at once, no restart.
    redis.resume();
    assert_eq!(readiness(&app).await.0, StatusCode::OK);
    let (status, took, _) = timed(&app, "/customers").await;
    assert_eq!(status, StatusCode::OK, "the session survived the pause");
    assert!(
        took < Duration::from_secs(2),
        "first request after the pause took {took:?}"
    );

    // Killed (connections drop, the port refuses), then restarted with its data.
    redis.kill();
    let (status, took, _) = timed(&app, "/customers").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    redis.restart();
    let mut back = None;
    for attempt in 0..20 {
        let (status, took, _) = timed(&app, "/customers").await;
        assert!(
            took < Duration::from_secs(2),
            "request {attempt} after the restart took {took:?}"
        );
        if status == StatusCode::OK {
            back = Some(attempt);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back.is_some(), "the session works again after Redis restarted");
    for _ in 0..5 {
        let (status, took, _) = timed(&app, "/customers").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            took < Duration::from_secs(1),
            "no slow requests after recovery: {took:?}"
        );
    }
}

#[tokio::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn the_intranet_starts_while_redis_is_down_and_serves_sessions_once_it_is_up() {
    let mut redis = RedisProcess::start();
    redis.kill();
    let app = app_with(&redis).await;
    assert_eq!(app.get("/").await.status, StatusCode::OK, "public pages work");
    let login = app.get("/login").await;
    assert_eq!(
        login.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "nowhere to keep the sign-in"
    );
    redis.restart();
    app.login_as("alice").await;
    assert_eq!(app.get("/customers").await.status, StatusCode::OK);
}

#[tokio::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn a_back_channel_logout_ends_a_session_kept_in_redis() {
    let redis = RedisProcess::start();
    let url = redis.url();
    let (app, key) = TestApp::spawn_with_known_key(|s| {
        s.redis_url = Some(SecretString::from(url));
        s.session_secret = Some(SecretString::from("5a".repeat(64)));
    })
    .await;
    app.idp
        .set_next_token(json!({"id_token_claims": {"sid": "sid-redis"}}))
        .await;
    app.login_as("alice").await;
    let copied = app.cookie("fabrikam_session").unwrap();
    assert_eq!(app.get("/customers").await.status, StatusCode::OK);
    let token = key.sign(
        Some("logout+jwt"),
        &app.logout_claims(json!({"sid": "sid-redis"})),
    );
    assert_eq!(app.post_logout_token(&token).await.0, StatusCode::OK);
    assert_eq!(app.get("/customers").await.status, StatusCode::FOUND, "ended");
    let replay = app
        .plain
        .get(app.url("/customers"))
        .header("cookie", format!("fabrikam_session={copied}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::FOUND, "and its session id is dead");
}
