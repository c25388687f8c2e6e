//! The database file removed or made read-only while the intranet runs (a real file, really
//! removed or chmod-ed): writes that must last fail closed — no salary is shown without its
//! audit row in the real file, no sign-in is accepted unrecorded — and the site says so.

use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;

use super::readiness::readiness;
use crate::app::TestApp;

const SALARY: &str = "/employees/2/salary";

/// Rows of `event` in the database file at the path now (opened afresh, as after a restart).
async fn rows_in_the_file(app: &TestApp, event: &str) -> usize {
    use fabrikam::intranet::data::{AuditEvent, AuditFilter, Database};
    let db = Database::connect(&app.settings.database_url).await.unwrap();
    let filter = AuditFilter {
        subject: None,
        event: AuditEvent::parse(event),
    };
    db.audit(&filter, 0, 1000).await.unwrap().1 as usize
}

#[tokio::test]
async fn a_removed_database_file_fails_closed() {
    let app = TestApp::spawn().await;
    let page = app.login_with_mfa("alice", "/employees/1/salary").await;
    assert_eq!(page.status, StatusCode::OK);
    // The next code: the one of the step-up above is used.
    let (_, tokens) = app.idp.step_up(&app.idp.browser(), "alice", 1, &[]).await;
    let token = tokens.access_token;
    let file = app.data_dir.join("fabrikam.db");
    std::fs::remove_file(&file).unwrap();

    for _ in 0..5 {
        let page = app.get(SALARY).await;
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{}", page.body);
        // The view's audit row cannot be written, or the employee not even read.
        assert!(
            page.body.contains("The audit trail is unavailable")
                || page.body.contains("The database is unavailable"),
            "{}",
            page.body
        );
        assert!(
            !page.body.contains("Salary history"),
            "no salary without its audit row"
        );
    }
    let api = app.call_api("/api/employees/2/salary", Some(&token)).await;
    assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(api.body["error"], "temporarily_unavailable");
    // A new sign-in could not be recorded (nor ended later): refused.
    let other = app.another_browser();
    let login = other.login_to("bob", "/customers").await;
    assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE, "{}", login.body);
    assert!(login.body.contains("The database is unavailable"));
    assert_eq!(
        other.get("/customers").await.status,
        StatusCode::FOUND,
        "not signed in"
    );
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["database"]["status"], "down");
    assert!(
        body["checks"]["database"]["error"]
            .as_str()
            .unwrap()
            .contains("removed"),
        "{body}"
    );
    assert_eq!(
        app.get("/healthz").await.status,
        StatusCode::OK,
        "alive, not ready"
    );
    // What a restart would find at the path: no row of a view that was not shown.
    assert_eq!(rows_in_the_file(&app, "salary_viewed").await, 0);
}

#[tokio::test]
async fn a_read_only_database_file_fails_closed_until_it_is_writable_again() {
    let app = TestApp::spawn().await;
    app.login_with_mfa("alice", "/employees/1/salary").await;
    let file = app.data_dir.join("fabrikam.db");
    let set_mode = |mode| std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    set_mode(0o444);
    let page = app.get(SALARY).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{}", page.body);
    assert!(!page.body.contains("Salary history"));
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["checks"]["database"]["error"]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{body}"
    );
    set_mode(0o644);
    assert_eq!(readiness(&app).await.0, StatusCode::OK);
    let page = app.get(SALARY).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "writable again, no restart: {}",
        page.body
    );
    assert_eq!(
        rows_in_the_file(&app, "salary_viewed").await,
        2,
        "both views shown are in the file"
    );
}
