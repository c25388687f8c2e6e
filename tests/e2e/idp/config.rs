//! `IDP_CONFIG`: clients and users from a TOML file; without it, the demo defaults exactly; a
//! bad file stops the start, naming the file, the entry and the field.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fabrikam::config::Settings;
use fabrikam::idp::{IdpConfig, SigningAlg, TestProvider};
use serde_json::{Value, json};
use url::Url;

use crate::support::*;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fabrikam-id.toml");

fn settings(file: Option<&Path>) -> Settings {
    let mut s = Settings::defaults();
    s.idp_issuer_url = None;
    s.fabrikam_public_url = None;
    s.idp_config = file.map(Path::to_owned);
    s
}

fn addr() -> std::net::SocketAddr {
    "127.0.0.1:9090".parse().unwrap()
}

fn public() -> Url {
    Url::parse("http://127.0.0.1:8080/").unwrap()
}

#[tokio::test]
async fn the_example_file_serves_every_sdk_callback_with_its_own_algorithm_and_its_users() {
    let idp = TestIdp::start(TestProvider::builder().config_file(EXAMPLE)).await;
    let ids: Vec<&str> = idp.config.clients.iter().map(|c| c.client_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "fabrikam-intranet",
            "spring-app",
            "aspnet-app",
            "express-app",
            "nextjs-app",
            "django-app",
            "spa",
            "rust-app"
        ]
    );
    let callbacks: Vec<&str> = idp
        .config
        .clients
        .iter()
        .flat_map(|c| c.redirect_uris.iter().map(String::as_str))
        .collect();
    for path in [
        "/login/oauth2/code/fabrikam",
        "/signin-oidc",
        "/callback",
        "/api/auth/callback/fabrikam",
        "/oidc/callback/",
    ] {
        assert!(
            callbacks.iter().any(|c| c.ends_with(path)),
            "{path} in {callbacks:?}"
        );
    }
    // One sign-in as dave, then every client gets a code by SSO and redeems it as it
    // authenticates (the SPA with PKCE alone), with its registered algorithm.
    let browser = idp.browser();
    let (_, dave) = idp.login(&browser, "dave", &[]).await;
    assert_eq!(dave.id_claims["department"], "finance");
    assert_eq!(dave.id_claims["employee_number"], 4711);
    assert_eq!(dave.id_claims["roles"], json!(["payroll"]));
    for client in &idp.config.clients {
        let app = idp.as_client(&client.client_id);
        let (flow, code) = app.sso_code(&browser, &[]).await;
        let tokens = app.redeem(&code, &flow).await;
        assert_eq!(tokens.id_claims["aud"], client.client_id.as_str());
        let alg = match client.client_id.as_str() {
            "rust-app" => SigningAlg::ES256,
            _ => SigningAlg::RS256,
        };
        assert_eq!(client.id_token_signed_response_alg, alg);
        assert_eq!(
            jwt_header(&tokens.id_token)["alg"],
            alg.as_str(),
            "{}",
            client.client_id
        );
        app.verify_id_token(&tokens.id_token, &flow.nonce)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", client.client_id));
    }
    // erin steps up with the secret from the file; the demo users are there too.
    let erin = idp.browser();
    let (flow, mfa) = idp.at_the_code_page(&erin, "erin").await;
    assert_eq!(mfa.path, "/mfa");
    let callback = erin
        .submit_code(
            &mfa,
            &totp_code_for_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 0),
            false,
        )
        .await
        .callback();
    let tokens = idp.redeem(&callback.code(), &flow).await;
    assert_eq!(tokens.id_claims["acr"], ACR_MFA);
    assert_eq!(tokens.id_claims["roles"], json!(["hr", "payroll"]));
    let users: Vec<String> = idp
        .provider
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(users, ["alice", "bob", "carol", "dave", "erin"]);
    // The login page names the application by its registered name.
    let spring = idp.as_client("spring-app");
    let (_, login) = spring.at_the_login_page(&spring.browser(), &[]).await;
    assert!(
        login.text().contains("Spring Boot demo (localhost:8081)"),
        "{}",
        login.text()
    );
}

#[tokio::test]
async fn without_a_file_fabrikam_id_serves_exactly_the_demo_defaults() {
    let config = IdpConfig::from_settings(&settings(None), addr(), &public()).unwrap();
    assert_eq!(config.clients.len(), 1);
    let client = &config.clients[0];
    assert_eq!(client.client_id, "fabrikam-intranet");
    assert_eq!(client.redirect_uris, ["http://127.0.0.1:8080/callback"]);
    assert_eq!(
        client.post_logout_redirect_uris,
        ["http://127.0.0.1:8080/", "http://127.0.0.1:8080"]
    );
    assert_eq!(client.id_token_signed_response_alg, SigningAlg::RS256);
    assert!(client.token_endpoint_auth_method.is_none(), "basic or post");
    let names: Vec<&str> = config.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert_eq!(config.users[0].totp_secret.as_deref(), Some(ALICE_TOTP));
    assert_eq!(config.users[1].totp_secret.as_deref(), Some(BOB_TOTP));
    assert_eq!(
        config.users[2].totp_secret, None,
        "carol enrols at her first step-up"
    );

    // And the example file adds to them only what it declares.
    let example = IdpConfig::from_settings(&settings(Some(Path::new(EXAMPLE))), addr(), &public()).unwrap();
    assert_eq!(example.clients[0].client_id, "fabrikam-intranet");
    assert_eq!(example.clients[0].redirect_uris, client.redirect_uris);
    assert_eq!(example.origin.as_deref(), Some(EXAMPLE));
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fabrikam-config-{}", fabrikam::web::random_token(9)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const GOOD_CLIENT: &str = "[[clients]]\nclient_id = \"app\"\nclient_secret = \"s\"\nredirect_uris = [\"http://127.0.0.1:3000/cb\"]\n";

#[tokio::test]
async fn a_bad_file_stops_the_start_with_an_error_naming_the_file_the_entry_and_the_field() {
    let dir = temp_dir();
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "unknown-field.toml",
            format!("{GOOD_CLIENT}\n[[clients]]\nclient_id = \"b\"\ncolour = \"red\"\n"),
            &[":8:1", "clients[1]", "colour", "unknown field"],
        ),
        (
            "missing-field.toml",
            "[[clients]]\nclient_id = \"b\"\nclient_secret = \"s\"\n".into(),
            &["clients[0]", "redirect_uris", "missing field"],
        ),
        (
            "wrong-type.toml",
            format!("{GOOD_CLIENT}[[users]]\nusername = \"dave\"\npassword = \"p\"\nroles = \"hr\"\n"),
            &["users[0]", "invalid type"],
        ),
        (
            "bad-url.toml",
            "[[clients]]\nclient_id = \"b\"\nclient_secret = \"s\"\nredirect_uris = [\"http://ok/cb\", \"/relative\"]\n".into(),
            &["clients[0] (client_id \"b\")", "redirect_uris[1]", "not an absolute URL"],
        ),
        (
            "public-with-secret.toml",
            "[[clients]]\nclient_id = \"spa\"\ntoken_endpoint_auth_method = \"none\"\nclient_secret = \"s\"\nredirect_uris = [\"http://a/cb\"]\n".into(),
            &["clients[0] (client_id \"spa\")", "client_secret", "public client"],
        ),
        (
            "unknown-method.toml",
            "[[clients]]\nclient_id = \"b\"\nclient_secret = \"s\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\nredirect_uris = [\"http://a/cb\"]\n".into(),
            &["clients[0]", "token_endpoint_auth_method", "private_key_jwt"],
        ),
        (
            "duplicate-client.toml",
            format!("{GOOD_CLIENT}{GOOD_CLIENT}"),
            &["clients[1] (client_id \"app\")", "client_id", "registered twice"],
        ),
        (
            "reserved-claim.toml",
            format!("{GOOD_CLIENT}[[users]]\nusername = \"dave\"\npassword = \"p\"\nclaims = {{ sub = \"admin\" }}\n"),
            &["users[0] (username \"dave\")", "claims.sub"],
        ),
        (
            "short-totp.toml",
            format!("{GOOD_CLIENT}[[users]]\nusername = \"dave\"\npassword = \"p\"\ntotp_secret = \"JBSWY3DP\"\n"),
            &["users[0]", "totp_secret", "128 bits"],
        ),
        (
            "demo-user-twice.toml",
            format!("include_demo_users = true\n{GOOD_CLIENT}[[users]]\nusername = \"alice\"\npassword = \"p\"\n"),
            &["users[3] (username \"alice\")", "username", "declared twice"],
        ),
        (
            "client-is-the-api.toml",
            "[[clients]]\nclient_id = \"fabrikam-api\"\nclient_secret = \"s\"\nredirect_uris = [\"http://a/cb\"]\n".into(),
            &["clients[0] (client_id \"fabrikam-api\")", "client_id", "is the API audience (API_AUDIENCE"],
        ),
        (
            "bcrypt-hash.toml",
            format!("{GOOD_CLIENT}[[users]]\nusername = \"dave\"\npassword_hash = \"$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW\"\n"),
            &["users[0] (username \"dave\")", "password_hash", "is a bcrypt hash", "argon2 PHC string"],
        ),
        (
            "pbkdf2-hash.toml",
            format!("{GOOD_CLIENT}[[users]]\nusername = \"erin\"\npassword_hash = \"$pbkdf2-sha256$29000$N2ZMrRVibHFOyRkDYAwBYA$Sa/5OaUq8bdxLtDh6bLA38qJ3wY8JnwVxDzYXqVbgOY\"\n"),
            &["users[0] (username \"erin\")", "password_hash", "\"pbkdf2-sha256\" hash, not argon2"],
        ),
        (
            "plain-text-hash.toml",
            format!("{GOOD_CLIENT}[[users]]\nusername = \"frank\"\npassword_hash = \"frank-password\"\n"),
            &["users[0] (username \"frank\")", "password_hash", "is not a PHC string"],
        ),
        (
            "broken-argon2.toml",
            format!("{GOOD_CLIENT}[[users]]\nusername = \"gina\"\npassword_hash = \"$argon2id$nonsense\"\n"),
            &["users[0] (username \"gina\")", "password_hash", "not a valid argon2 PHC string"],
        ),
        ("no-clients.toml", "include_demo_users = true\n".into(), &["no client is registered"]),
        ("syntax.toml", "[[clients]\nclient_id = \"b\"\n".into(), &[":1:"]),
    ];
    for (name, text, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let error = IdpConfig::from_settings(&settings(Some(&path)), addr(), &public())
            .err()
            .unwrap_or_else(|| panic!("{name} is refused"));
        let message = format!("{error:#}");
        assert!(message.contains(&path.display().to_string()), "{name}: {message}");
        for part in expected {
            assert!(message.contains(part), "{name}: {part:?} in {message}");
        }
    }
    let missing = IdpConfig::from_settings(&settings(Some(&dir.join("none.toml"))), addr(), &public());
    assert!(format!("{:#}", missing.unwrap_err()).contains("none.toml: the file: -: cannot be read"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Runs `fabrikam idp` with `IDP_CONFIG=path` and expects it to stop by itself, without
/// announcing itself or listening; its stderr.
async fn the_binary_refuses(path: &Path) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fabrikam"))
        .arg("idp")
        .env("IDP_CONFIG", path)
        .env("IDP_ADDR", port.to_string())
        .env_remove("IDP_ISSUER_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("fabrikam idp kept running with a bad IDP_CONFIG");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout).is_empty(),
        "it never announced itself"
    );
    assert!(std::net::TcpStream::connect(port).is_err(), "nothing listens");
    stderr
}

#[tokio::test]
async fn the_binary_refuses_a_bad_file_before_serving_anything() {
    let dir = temp_dir();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        format!("{GOOD_CLIENT}[[users]]\nusername = \"dave\"\npassword = \"p\"\nemail = \"nope\"\n"),
    )
    .unwrap();
    let stderr = the_binary_refuses(&path).await;
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(
        stderr.contains("users[0] (username \"dave\")") && stderr.contains("email"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_user_given_by_argon2_hash_signs_in_and_any_other_hash_stops_the_start() {
    let dir = temp_dir();
    let path = dir.join("hashes.toml");
    let hash = fabrikam::idp::passwords::Argon2Pool::new(1)
        .hash("dave-password")
        .unwrap();
    std::fs::write(
        &path,
        format!("{GOOD_CLIENT}[[users]]\nusername = \"dave\"\npassword_hash = \"{hash}\"\n"),
    )
    .unwrap();
    let idp = TestIdp::start(TestProvider::builder().config_file(&path)).await;
    let (_, tokens) = idp.login(&idp.browser(), "dave", &[]).await;
    assert_eq!(tokens.id_claims["sub"], "dave");
    // The hash is not the password.
    let stranger = idp.browser();
    let (_, page) = idp.at_the_login_page(&stranger, &[]).await;
    let again = stranger.submit_login(&page, "dave", &hash).await;
    assert!(!matches!(again, Landing::Callback(_)), "the hash signs nobody in");
    // A bcrypt hash (what many user stores hold) stops the binary, naming the user.
    std::fs::write(
        &path,
        format!(
            "{GOOD_CLIENT}[[users]]\nusername = \"dave\"\npassword_hash = \"$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW\"\n"
        ),
    )
    .unwrap();
    let stderr = the_binary_refuses(&path).await;
    assert!(
        stderr.contains("users[0] (username \"dave\")")
            && stderr.contains("password_hash")
            && stderr.contains("is a bcrypt hash"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_demo_refuses_a_file_that_leaves_out_the_intranets_client() {
    let dir = temp_dir();
    let path = dir.join("no-intranet.toml");
    std::fs::write(&path, GOOD_CLIENT).unwrap();
    let (mut s, data_dir) = crate::app::TestApp::settings(|_| {});
    s.idp_config = Some(path.clone());
    let result = fabrikam::startup::demo(
        &s,
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    )
    .await;
    let message = format!("{:#}", result.err().expect("the demo refuses to start"));
    assert!(message.contains("no-intranet.toml"), "{message}");
    assert!(message.contains("include_default_client = true"), "{message}");
    // With it, the demo starts and the intranet signs in through the file's provider.
    std::fs::write(
        &path,
        format!("include_default_client = true\ninclude_demo_users = true\n{GOOD_CLIENT}"),
    )
    .unwrap();
    let app = crate::app::TestApp::spawn_with(|s| s.idp_config = Some(path.clone())).await;
    app.login_as("alice").await;
    let second = app.idp.as_client("app");
    let (_, tokens) = second.login(&second.browser(), "bob", &[]).await;
    assert_eq!(
        tokens.id_claims["aud"], "app",
        "a second application at the same provider"
    );
    let _: Value = tokens.id_claims;
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(data_dir).ok();
}
