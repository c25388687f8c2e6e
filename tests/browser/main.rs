//! Browser tests: the tutorial's path in headless Chromium through chromedriver — alice signs
//! in, browses customers, steps up with a computed TOTP code and sees a salary, creates a
//! passkey (chromedriver's virtual authenticator) and opens the audit trail with it, then signs
//! out; a session that only did a code is refused at the audit trail with the explanation;
//! carol enrolls a second factor from the secret on the page; bob is refused.
//!
//! `#[ignore]`d so `cargo test` passes without a browser. With Debian's `chromium` and
//! `chromium-driver` installed:
//!
//! ```sh
//! chromedriver --port=9515 &
//! WEBDRIVER_URL=http://127.0.0.1:9515 cargo test --test browser -- --ignored
//! ```
//!
//! Each step saves a screenshot under `target/screenshots/` (or `$SCREENSHOT_DIR`).

mod audit;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use fabrikam::config::Settings;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Both servers on port 0, with their own database, in this test's runtime.
struct Servers {
    intranet: String,
    /// Fabrikam ID's test control (on, for the test that needs a provider ignoring acr_values).
    provider: fabrikam::idp::TestProvider,
    /// Fabrikam ID's issuer, without a trailing slash.
    idp: String,
    data_dir: PathBuf,
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

async fn servers() -> Servers {
    servers_with(|_| {}).await
}

/// Both servers, with the demo settings changed by `configure`.
async fn servers_with(configure: impl FnOnce(&mut Settings)) -> Servers {
    let mut s = Settings::defaults();
    s.fabrikam_public_url = None;
    s.oidc_issuer_url = None;
    s.idp_issuer_url = None;
    s.idp_config = None;
    let data_dir = std::env::temp_dir().join(format!("fabrikam-browser-{}", fabrikam::web::random_token(9)));
    std::fs::create_dir_all(&data_dir).unwrap();
    s.database_url = format!("sqlite:{}", data_dir.join("fabrikam.db").display());
    s.idp_passkey_store = data_dir.join("passkeys.json").display().to_string();
    s.test_control = true;
    configure(&mut s);
    let demo = fabrikam::startup::demo(
        &s,
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    )
    .await
    .expect("both servers build");
    tokio::spawn(demo.idp);
    tokio::spawn(demo.intranet);
    Servers {
        intranet: demo.intranet_url.as_str().trim_end_matches('/').to_owned(),
        idp: demo.issuer.trim_end_matches('/').to_owned(),
        provider: fabrikam::idp::TestProvider::attach(demo.idp_config),
        data_dir,
    }
}

/// WebDriver's "Add Virtual Authenticator" (Web Authentication Level 2 §11.3), which
/// chromedriver implements; fantoccini has no typed wrapper, so it is sent raw.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/webauthn/authenticator",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// A headless Chromium session that names and saves a screenshot per step.
struct Browser {
    client: Client,
    test: &'static str,
    step: usize,
    user_data_dir: PathBuf,
}

impl Browser {
    async fn start(test: &'static str) -> Browser {
        Browser::start_at(test, 1280, 900).await
    }

    /// A browser whose viewport is `width` × `height` CSS pixels.
    async fn start_at(test: &'static str, width: u32, height: u32) -> Browser {
        let webdriver = std::env::var("WEBDRIVER_URL").unwrap_or_else(|_| "http://127.0.0.1:9515".into());
        let user_data_dir =
            std::env::temp_dir().join(format!("fabrikam-chromium-{}", fabrikam::web::random_token(9)));
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", user_data_dir.display()),
        ];
        let mut options = json!({"args": args, "binary": chromium_binary()});
        // Chrome's windows are at least 500 px wide: narrower viewports are phones, emulated.
        if width < 500 {
            options["mobileEmulation"] =
                json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0}});
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|e| panic!("cannot start Chromium through {webdriver}: {e}"));
        Browser {
            client,
            test,
            step: 0,
            user_data_dir,
        }
    }

    /// Saves `target/screenshots/<test>-<n>-<name>.png`.
    async fn shot(&mut self, name: &str) {
        self.step += 1;
        let dir = std::env::var_os("SCREENSHOT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("target")
                    .join("screenshots")
            });
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(
            dir.join(format!("{}-{:02}-{name}.png", self.test, self.step)),
            png,
        )
        .unwrap();
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    async fn click(&self, css: &str) {
        self.client
            .wait()
            .for_element(Locator::Css(css))
            .await
            .expect(css)
            .click()
            .await
            .expect("click");
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .wait()
            .for_element(Locator::Css(css))
            .await
            .expect(css);
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Waits until the page's `<h1>` contains `text`; returns the whole body text.
    async fn expect_heading(&self, text: &str) -> String {
        let mut last = String::new();
        // Up to 15 s: CI machines are shared, and a step-up is several redirects.
        for _ in 0..150 {
            if let Ok(h1) = self.client.find(Locator::Css("h1")).await {
                last = h1.text().await.unwrap_or_default();
                if last.contains(text) {
                    return self
                        .client
                        .find(Locator::Css("body"))
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        panic!("expected a heading with {text:?} at {url}, found {last:?}");
    }

    /// Gives the browser a platform authenticator with a verified user (a passkey provider).
    async fn add_virtual_authenticator(&self) {
        self.client
            .issue_cmd(AddVirtualAuthenticator)
            .await
            .expect("chromedriver adds a virtual authenticator");
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// Signs in at Fabrikam ID's page.
    async fn sign_in_at_provider(&mut self, user: &str) {
        self.expect_heading("Sign in").await;
        self.fill("#username", user).await;
        self.fill("#password", &format!("{user}-password")).await;
        self.shot("provider-sign-in").await;
        self.click("form button[type=submit]").await;
    }

    async fn close(self) {
        let _ = self.client.close().await;
        let _ = std::fs::remove_dir_all(&self.user_data_dir);
    }
}

fn chromium_binary() -> String {
    std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// The RFC 6238 code for a base32 secret at this moment.
fn totp(base32: &str) -> String {
    let secret = totp_rs::Secret::try_from_base32(base32).expect("base32");
    let totp = totp_rs::Builder::new()
        .with_secret(secret)
        .build()
        .expect("a TOTP");
    totp.generate_current().to_string()
}

const ALICE_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

#[tokio::test]
#[ignore = "needs Chromium and chromedriver (WEBDRIVER_URL); run by .ci/run"]
async fn alice_signs_in_browses_steps_up_sees_a_salary_and_signs_out() {
    let app = servers().await;
    let mut b = Browser::start("alice").await;
    b.goto(&app.intranet).await;
    b.expect_heading("Welcome to the Fabrikam intranet").await;
    b.shot("home").await;

    b.click(".session a[href='/login']").await;
    b.sign_in_at_provider("alice").await;
    let home = b.expect_heading("Welcome").await;
    assert!(
        home.contains("Alice") && home.contains("password"),
        "signed in with a password badge:\n{home}"
    );
    b.shot("signed-in").await;

    b.click("nav a[href='/customers']").await;
    let customers = b.expect_heading("Customers").await;
    assert!(customers.contains("Northwind Traders"));
    b.shot("customers").await;

    b.click("nav a[href='/employees']").await;
    b.expect_heading("Employees").await;
    b.shot("employees").await;
    b.click("a[href='/employees/1/salary']").await;

    // Fabrikam ID asks only for the second factor: the password session is reused.
    b.expect_heading("Verify it's you").await;
    b.shot("provider-second-factor").await;
    b.fill("#code", &totp(ALICE_TOTP)).await;
    b.click("form button[type=submit]").await;
    let salary = b.expect_heading("Alice Ashford").await;
    assert!(
        salary.contains("Salary history") && salary.contains("104,000 EUR"),
        "{salary}"
    );
    assert!(
        salary.contains("multi-factor"),
        "the badge shows the step-up:\n{salary}"
    );
    assert_eq!(b.path().await, "/employees/1/salary");
    b.shot("salary").await;

    b.click("nav a[href='/me']").await;
    let me = b.expect_heading("My sign-in").await;
    assert!(me.contains("pwd, otp, mfa") && me.contains("Satisfied now"));
    b.shot("me").await;

    // The audit trail needs a passkey: Fabrikam ID asks for one, and alice creates it (her
    // code from the salary step-up is recent enough), then signs in with it.
    b.add_virtual_authenticator().await;
    b.click("nav a[href='/audit']").await;
    let passkey = b.expect_heading("Use your passkey").await;
    assert!(passkey.contains("phishing-resistant"), "{passkey}");
    b.shot("provider-passkey").await;
    b.click("#passkey-register").await;
    let audit = b.expect_heading("Audit trail").await;
    assert!(audit.contains("salary_viewed") && audit.contains("step_up_succeeded"));
    assert!(
        audit.contains("phishing-resistant"),
        "the badge shows the passkey sign-in:\n{audit}"
    );
    b.shot("audit").await;

    b.click(".session button[type=submit]").await;
    let after = b.expect_heading("Welcome").await;
    assert!(after.contains("You have signed out"), "{after}");
    assert!(after.contains("Sign in"));
    b.shot("signed-out").await;
    b.close().await;
}

#[tokio::test]
#[ignore = "needs Chromium and chromedriver (WEBDRIVER_URL); run by .ci/run"]
async fn a_session_that_only_did_a_code_is_refused_at_the_audit_trail_with_the_explanation() {
    let app = servers().await;
    let mut b = Browser::start("totp-only").await;
    b.goto(&format!("{}/employees/1/salary", app.intranet)).await;
    b.sign_in_at_provider("alice").await;
    b.expect_heading("Verify it's you").await;
    b.fill("#code", &totp(ALICE_TOTP)).await;
    b.click("form button[type=submit]").await;
    b.expect_heading("Alice Ashford").await;
    // A provider that ignores acr_values=phr and answers with the code it has.
    app.provider
        .set_next_token(&fabrikam::idp::control::NextToken {
            ignore_acr_values: true,
            ..Default::default()
        })
        .await
        .expect("test control");
    b.click("nav a[href='/audit']").await;
    let refused = b
        .expect_heading("Your sign-in is not strong enough for this page")
        .await;
    assert!(
        refused.contains("phishing-resistant sign-in (a passkey)")
            && refused.contains("not phishing-resistant")
            && refused.contains("multi-factor"),
        "{refused}"
    );
    b.shot("refused-audit").await;
    b.close().await;
}

#[tokio::test]
#[ignore = "needs Chromium and chromedriver (WEBDRIVER_URL); run by .ci/run"]
async fn carol_enrolls_an_authenticator_from_the_secret_on_the_page() {
    let app = servers().await;
    let mut b = Browser::start("carol").await;
    b.goto(&format!("{}/employees/3/salary", app.intranet)).await;
    b.sign_in_at_provider("carol").await;
    b.expect_heading("Set up your authenticator").await;
    b.shot("enroll").await;
    let secret = b
        .client
        .find(Locator::Id("totp-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let secret: String = secret.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    b.fill("#code", &totp(&secret)).await;
    b.click("form button[type=submit]").await;
    let salary = b.expect_heading("Carol Castillo").await;
    assert!(salary.contains("81,000 EUR"), "{salary}");
    b.shot("salary").await;
    b.close().await;
}

#[tokio::test]
#[ignore = "needs Chromium and chromedriver (WEBDRIVER_URL); run by .ci/run"]
async fn bob_is_refused_a_salary_without_being_asked_for_a_code() {
    let app = servers().await;
    let mut b = Browser::start("bob").await;
    b.goto(&format!("{}/employees/1/salary", app.intranet)).await;
    b.sign_in_at_provider("bob").await;
    let refused = b.expect_heading("You do not have access to this page").await;
    assert!(
        refused.contains("“hr”") && refused.contains("authorization decides"),
        "{refused}"
    );
    assert_eq!(b.path().await, "/employees/1/salary", "no detour to the provider");
    b.shot("refused").await;
    b.close().await;
}
