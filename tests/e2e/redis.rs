//! Server-side sessions in Redis: several intranet processes share them, and logout ends a
//! session everywhere. Needs a Redis server; `.ci/run` starts one and sets `REDIS_TEST_URL`.

use std::net::TcpListener;

use reqwest::StatusCode;
use secrecy::SecretString;

use crate::app::TestApp;

#[tokio::test]
#[ignore = "needs a Redis server (REDIS_TEST_URL); run by .ci/run"]
async fn two_intranet_processes_share_sessions_and_logout_ends_them_everywhere() {
    let redis = std::env::var("REDIS_TEST_URL").expect("REDIS_TEST_URL names a Redis server");
    let secret = "5a".repeat(64);
    let app = TestApp::spawn_with(|s| {
        s.redis_url = Some(SecretString::from(redis));
        s.session_secret = Some(SecretString::from(secret));
    })
    .await;
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
