//! The accessibility audit: every page of both servers at a desktop (1280 × 900) and a phone
//! (390 × 844) viewport, each run through axe-core and checked for page-level horizontal
//! overflow, with a screenshot per page (`target/screenshots/w<width>-NN-<page>.png`).
//!
//! axe-core is not vendored: `scripts/browser-tests.sh` downloads a pinned release from npm,
//! checks its SHA-256 and passes its path in `AXE_SCRIPT`. A test fails on any `serious` or
//! `critical` violation; every result (all impacts) is printed and written to
//! `target/screenshots/axe-<width>.txt`.

use std::fmt::Write as _;

use fantoccini::Locator;
use serde_json::{Value, json};

use super::{ALICE_TOTP, Browser, Servers, servers_with, totp};

/// `AXE_SCRIPT`: the path of axe.min.js (set by scripts/browser-tests.sh).
fn axe_source() -> String {
    let path = std::env::var("AXE_SCRIPT").unwrap_or_else(|_| {
        panic!("AXE_SCRIPT is not set: run the browser suite with scripts/browser-tests.sh, which fetches axe-core")
    });
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read AXE_SCRIPT={path}: {e}"))
}

/// One page's findings.
struct Finding {
    page: String,
    /// `(rule id, impact, help, targets)`.
    violations: Vec<(String, String, String, Vec<String>)>,
    scroll_width: i64,
    client_width: i64,
}

impl Finding {
    fn serious(&self) -> impl Iterator<Item = &(String, String, String, Vec<String>)> {
        self.violations
            .iter()
            .filter(|v| v.1 == "serious" || v.1 == "critical")
    }
}

/// Runs the audit page by page and reports at the end (so one run shows every problem).
struct Audit {
    browser: Browser,
    axe: String,
    width: u32,
    findings: Vec<Finding>,
}

impl Audit {
    async fn start(width: u32, height: u32) -> Audit {
        let test = if width >= 1000 { "w1280" } else { "w390" };
        let browser = Browser::start_at(test, width, height).await;
        Audit {
            browser,
            axe: axe_source(),
            width,
            findings: Vec::new(),
        }
    }

    /// Audits the page the browser is on now, named `page`.
    async fn check(&mut self, page: &str) {
        let client = &self.browser.client;
        // Injected by WebDriver (not subject to the page's CSP); the page loads no script of
        // its own for this.
        client.execute(&self.axe, vec![]).await.expect("axe-core loads");
        let result = client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(r.violations.map(v => ({
                      id: v.id, impact: v.impact, help: v.help,
                      targets: v.nodes.map(n => n.target.join(' ')) }))))
                   .catch(e => done({ error: String(e) }));",
                vec![],
            )
            .await
            .expect("axe runs");
        if let Some(error) = result.get("error") {
            panic!("axe failed on {page}: {error}");
        }
        let violations = result
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                let targets = v["targets"]
                    .as_array()
                    .map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                (s("id"), s("impact"), s("help"), targets)
            })
            .collect();
        let widths = client
            .execute(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth, window.innerWidth]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            widths[2].as_i64(),
            Some(i64::from(self.width)),
            "{page}: the viewport is {} px wide",
            self.width
        );
        self.browser.shot(page).await;
        self.findings.push(Finding {
            page: page.to_owned(),
            violations,
            scroll_width: widths[0].as_i64().unwrap_or(0),
            client_width: widths[1].as_i64().unwrap_or(0),
        });
    }

    /// Goes to `url`, waits for a heading with `heading`, audits it as `page`.
    async fn visit(&mut self, url: &str, heading: &str, page: &str) {
        self.browser.goto(url).await;
        self.browser.expect_heading(heading).await;
        self.check(page).await;
    }

    /// Prints and saves the results; fails on serious or critical violations or overflow.
    async fn finish(self) {
        let mut report = format!("axe-core at {} px: page, violations by impact\n", self.width);
        let mut failures = Vec::new();
        for f in &self.findings {
            let mut by_impact = std::collections::BTreeMap::<&str, usize>::new();
            for v in &f.violations {
                *by_impact.entry(v.1.as_str()).or_default() += 1;
            }
            let _ = writeln!(
                report,
                "{:<28} {:>2} violations {:?}  width {}/{}",
                f.page,
                f.violations.len(),
                by_impact,
                f.scroll_width,
                f.client_width
            );
            for v in &f.violations {
                let _ = writeln!(report, "    {} ({}): {} at {:?}", v.0, v.1, v.2, v.3);
            }
            for v in f.serious() {
                failures.push(format!("{}: {} ({}) {} at {:?}", f.page, v.0, v.1, v.2, v.3));
            }
            if f.scroll_width > f.client_width {
                failures.push(format!(
                    "{}: the page is {} px wide in a {} px viewport",
                    f.page, f.scroll_width, f.client_width
                ));
            }
        }
        println!("{report}");
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        // Appended: several tests audit at one width (scripts/browser-tests.sh starts afresh).
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("axe-{}.txt", self.width)))
            .and_then(|mut f| f.write_all(report.as_bytes()))
            .unwrap();
        self.browser.close().await;
        assert!(
            failures.is_empty(),
            "{} problems:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// Every page of both servers, in the order a visitor meets them.
async fn audit_every_page(width: u32, height: u32) {
    let app = servers_with(|s| s.test_control = true).await;
    let Servers { intranet, idp, .. } = &app;
    let mut a = Audit::start(width, height).await;

    // Anonymous.
    a.visit(&format!("{intranet}/"), "Welcome", "home").await;
    a.visit(&format!("{intranet}/demo"), "Demo guide", "demo-guide")
        .await;
    a.visit(&format!("{intranet}/no-such-page"), "Page not found", "not-found")
        .await;
    a.visit(&format!("{idp}/"), "Fabrikam ID", "idp-home").await;
    a.visit(&format!("{idp}/mfa"), "", "idp-error").await;

    // A sign-in, cancelled at the provider.
    a.browser
        .goto(&format!("{intranet}/login?return_to=/customers"))
        .await;
    a.browser.expect_heading("Sign in").await;
    a.check("idp-sign-in").await;
    a.browser.click("form[action$='/cancel'] button").await;
    a.browser.expect_heading("You cancelled signing in").await;
    a.check("sign-in-cancelled").await;

    // alice: password, then the pages.
    a.browser
        .goto(&format!("{intranet}/login?return_to=/customers"))
        .await;
    a.browser.expect_heading("Sign in").await;
    a.browser.fill("#username", "alice").await;
    a.browser.fill("#password", "alice-password").await;
    a.browser.click("form button[type=submit]").await;
    a.browser.expect_heading("Customers").await;
    a.check("customers").await;
    a.visit(&format!("{intranet}/customers/1"), "", "customer").await;
    a.visit(&format!("{intranet}/employees"), "Employees", "employees")
        .await;
    a.visit(&format!("{intranet}/me"), "My sign-in", "me-password")
        .await;

    // A step-up the provider answers weakly (test control): the refusal page, once.
    reqwest::Client::new()
        .put(format!("{idp}/test-control/next-token"))
        .json(&json!({"ignore_acr_values": true}))
        .send()
        .await
        .expect("test control answers");
    a.visit(
        &format!("{intranet}/employees/2/salary"),
        "not strong enough",
        "step-up-failed",
    )
    .await;

    // Try again: the code page, Cancel, the calm page, Try again, the code.
    a.browser.click("a.button[href*='step_up=salary']").await;
    a.browser.expect_heading("Verify it's you").await;
    a.check("idp-second-factor").await;
    a.browser.click("form[action$='/cancel'] button").await;
    a.browser.expect_heading("You cancelled the extra check").await;
    a.check("step-up-cancelled").await;
    a.browser.click("a.button[href*='step_up=salary']").await;
    a.browser.expect_heading("Verify it's you").await;
    a.browser.fill("#code", &totp(ALICE_TOTP)).await;
    a.browser.click("form button[type=submit]").await;
    a.browser.expect_heading("Bob Brennan").await;
    a.check("salary").await;
    a.visit(&format!("{intranet}/me"), "My sign-in", "me-multi-factor")
        .await;
    // The audit trail needs a passkey: Fabrikam ID's passkey page, then the trail.
    a.browser.add_virtual_authenticator().await;
    a.visit(&format!("{intranet}/audit"), "Use your passkey", "idp-passkey")
        .await;
    a.browser.click("#passkey-register").await;
    a.browser.expect_heading("Audit trail").await;
    a.check("audit").await;

    // Signing out at the provider: the confirmation, then the signed-out page.
    a.visit(
        &format!("{idp}/logout"),
        "Sign out of Fabrikam ID?",
        "idp-sign-out",
    )
    .await;
    a.browser
        .click("form[action$='/logout'] button[type=submit]")
        .await;
    a.browser.expect_heading("signed out").await;
    a.check("idp-signed-out").await;

    // bob is refused; carol enrols, and the form is above the fold.
    a.browser.goto(&format!("{intranet}/employees/1/salary")).await;
    a.browser.expect_heading("Sign in").await;
    a.browser.fill("#username", "bob").await;
    a.browser.fill("#password", "bob-password").await;
    a.browser.click("form button[type=submit]").await;
    a.browser.expect_heading("You do not have access").await;
    a.check("refused").await;
    a.visit(
        &format!("{idp}/logout"),
        "Sign out of Fabrikam ID?",
        "idp-sign-out-bob",
    )
    .await;
    a.browser
        .click("form[action$='/logout'] button[type=submit]")
        .await;
    a.browser.expect_heading("signed out").await;
    a.browser.goto(&format!("{intranet}/employees/3/salary")).await;
    a.browser.expect_heading("Sign in").await;
    a.browser.fill("#username", "carol").await;
    a.browser.fill("#password", "carol-password").await;
    a.browser.click("form button[type=submit]").await;
    a.browser.expect_heading("Set up your authenticator").await;
    a.check("idp-enroll").await;
    let bottom = a
        .browser
        .client
        .execute(
            "return document.querySelector('form[action$=\"/enroll\"] button[type=submit]').getBoundingClientRect().bottom <= window.innerHeight",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        bottom,
        json!(true),
        "the enrolment form is above the fold at {width} px"
    );
    a.finish().await;
    drop(app);
}

/// The interstitial page needs its own setting.
async fn audit_the_interstitial(width: u32, height: u32) {
    let app = servers_with(|s| s.stepup_interstitial = true).await;
    let mut a = Audit::start(width, height).await;
    a.browser
        .goto(&format!("{}/login?return_to=/employees", app.intranet))
        .await;
    a.browser.expect_heading("Sign in").await;
    a.browser.fill("#username", "alice").await;
    a.browser.fill("#password", "alice-password").await;
    a.browser.click("form button[type=submit]").await;
    a.browser.expect_heading("Employees").await;
    a.visit(
        &format!("{}/employees/1/salary", app.intranet),
        "Confirm it is you",
        "interstitial",
    )
    .await;
    a.finish().await;
}

#[tokio::test]
#[ignore = "needs Chromium, chromedriver and axe-core (scripts/browser-tests.sh)"]
async fn every_page_at_1280_px_has_no_serious_axe_violation_and_no_overflow() {
    audit_every_page(1280, 900).await;
}

#[tokio::test]
#[ignore = "needs Chromium, chromedriver and axe-core (scripts/browser-tests.sh)"]
async fn every_page_at_390_px_has_no_serious_axe_violation_and_no_overflow() {
    audit_every_page(390, 844).await;
}

#[tokio::test]
#[ignore = "needs Chromium, chromedriver and axe-core (scripts/browser-tests.sh)"]
async fn the_step_up_interstitial_passes_the_audit_at_both_widths() {
    audit_the_interstitial(1280, 900).await;
    audit_the_interstitial(390, 844).await;
}

#[tokio::test]
#[ignore = "needs Chromium and chromedriver (scripts/browser-tests.sh)"]
async fn on_a_phone_the_menu_opens_without_a_script_and_marks_the_current_page() {
    let app = servers_with(|_| {}).await;
    let mut b = Browser::start_at("menu", 390, 844).await;
    b.goto(&format!("{}/demo", app.intranet)).await;
    b.expect_heading("Demo guide").await;
    let link = b
        .client
        .find(Locator::Css("nav a[href='/customers']"))
        .await
        .unwrap();
    assert!(!link.is_displayed().await.unwrap(), "closed on a phone");
    b.click(".menu > summary").await;
    b.shot("menu-open").await;
    let current = b
        .client
        .find(Locator::Css(".menu nav a[aria-current=page]"))
        .await
        .expect("the current page is marked");
    assert_eq!(current.attr("href").await.unwrap().as_deref(), Some("/demo"));
    b.click(".menu nav a[href='/customers']").await;
    b.expect_heading("Sign in").await;
    // The header takes one row: well under the 170 px it took when it wrapped.
    b.goto(&format!("{}/", app.intranet)).await;
    b.expect_heading("Welcome").await;
    let height = b
        .client
        .execute(
            "return document.querySelector('.site-header').getBoundingClientRect().height",
            vec![],
        )
        .await
        .unwrap();
    assert!(height.as_f64().unwrap() < 80.0, "header {height} px high");
    b.close().await;
}
