//! Salary views under concurrent load keep the rule "no audit row, no salary": the audit
//! rows are written by group commit (several views a transaction), and a page leaves only once
//! the transaction with its row has committed. Checked over HTTP on the rows in the database
//! file, in this process and against the real binary killed with SIGKILL mid-load. Bounded in
//! requests and time; only 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;

use crate::app::TestApp;
use crate::logs::demo_process;

const SALARY: &str = "/employees/1/salary";
/// Concurrent browsers' requests (what the load benchmark uses).
const CONNECTIONS: usize = 32;

/// `salary_viewed` rows in the database file at the path (opened afresh, as after a restart).
async fn salary_rows(database_url: &str) -> i64 {
    use fabrikam::intranet::data::{AuditEvent, AuditFilter, Database};
    let db = Database::connect(database_url).await.unwrap();
    let filter = AuditFilter {
        subject: None,
        event: Some(AuditEvent::SalaryViewed),
    };
    db.audit(&filter, 0, 1).await.unwrap().1
}

/// Whether `res` is a salary page that reached the client whole.
async fn is_salary_page(res: reqwest::Response) -> bool {
    res.status() == StatusCode::OK
        && res
            .text()
            .await
            .is_ok_and(|body| body.contains("Salary history") && body.contains("104,000"))
}

#[tokio::test]
async fn every_salary_page_served_under_concurrent_load_has_exactly_one_row() {
    let app = TestApp::spawn().await;
    let page = app.login_with_mfa("alice", SALARY).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let before = salary_rows(&app.settings.database_url).await;

    const EACH: usize = 10;
    let url = app.url(SALARY);
    let served = Arc::new(AtomicUsize::new(0));
    let mut browsers = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        // The same cookies: alice's session, as wrk sends it.
        let (client, url, served) = (app.browser.clone(), url.clone(), served.clone());
        browsers.spawn(async move {
            for _ in 0..EACH {
                let res = client
                    .get(url.clone())
                    .send()
                    .await
                    .expect("the intranet answers");
                if is_salary_page(res).await {
                    served.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    tokio::time::timeout(Duration::from_secs(120), browsers.join_all())
        .await
        .expect("bounded: the load ends");

    let served = served.load(Ordering::Relaxed);
    assert_eq!(served, CONNECTIONS * EACH, "every request got its page");
    let rows = salary_rows(&app.settings.database_url).await - before;
    assert_eq!(
        rows, served as i64,
        "one row per salary page served, no more, no fewer"
    );
}

#[tokio::test]
async fn a_process_killed_mid_load_has_a_row_for_every_salary_page_it_served() {
    let (mut process, app) = demo_process("warn").await;
    let page = app.login_with_mfa("alice", SALARY).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let before = salary_rows(&app.settings.database_url).await;

    // Browsers read the salary page until the process is gone (at most 400 requests each).
    const KILL_AFTER: usize = 150;
    let url = app.url(SALARY);
    let served = Arc::new(AtomicUsize::new(0));
    let mut browsers = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let (client, url, served) = (app.browser.clone(), url.clone(), served.clone());
        browsers.spawn(async move {
            for _ in 0..400 {
                let Ok(res) = client.get(url.clone()).send().await else {
                    return;
                };
                if is_salary_page(res).await {
                    served.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while served.load(Ordering::Relaxed) < KILL_AFTER {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the binary served {KILL_AFTER} salary pages within 60 s"
    );
    // Mid-load: dozens of views are in flight, queued or in a transaction.
    process.kill();
    tokio::time::timeout(Duration::from_secs(60), browsers.join_all())
        .await
        .expect("bounded: the browsers stop when the process is gone");

    let served = served.load(Ordering::Relaxed) as i64;
    let rows = salary_rows(&app.settings.database_url).await - before;
    assert!(served >= KILL_AFTER as i64);
    assert!(
        rows >= served,
        "{served} salary pages reached the client but only {rows} rows survived the kill"
    );
    // A row may outlive its page (committed, then killed before the answer left), at most
    // one per browser.
    assert!(
        rows <= served + CONNECTIONS as i64,
        "{rows} rows for {served} pages and {CONNECTIONS} browsers"
    );
}
