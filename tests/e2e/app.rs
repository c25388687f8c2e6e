//! `TestApp`: Fabrikam ID and the intranet on port 0 in this process, and a browser-like
//! client (cookie jar, redirects followed by hand) with helpers that hide the OIDC dance.

use std::net::TcpListener;
use std::sync::Arc;

use fabrikam::config::Settings;
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderMap;
use url::Url;

use crate::html;
use crate::support::{TestIdp, totp_code};

/// One HTTP response, read whole.
#[derive(Debug)]
pub struct Visit {
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Visit {
    pub fn location(&self) -> Option<Url> {
        let loc = self.headers.get("location")?.to_str().ok()?;
        self.url.join(loc).ok()
    }

    pub fn is_redirect(&self) -> bool {
        self.status.is_redirection()
    }

    /// The query parameter `name` of the redirect target.
    pub fn location_param(&self, name: &str) -> Option<String> {
        self.location()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn has_form_field(&self, name: &str) -> bool {
        html::form_with_field(&self.body, name).is_some()
    }
}

/// Both servers and a browser.
pub struct TestApp {
    /// The intranet's base URL, `http://127.0.0.1:<port>` (or `localhost`).
    pub base: Url,
    /// Fabrikam ID's issuer, `http://127.0.0.1:<port>` (or `localhost`).
    pub issuer: String,
    /// Fabrikam ID, with the support module's helpers (test control, token flows).
    pub idp: TestIdp,
    /// Cookie-keeping, redirects off: the tests follow redirects themselves.
    pub browser: reqwest::Client,
    /// The browser's cookies.
    jar: Arc<Jar>,
    /// A client without cookies or redirects, for the test-control API and bearer calls.
    pub plain: reqwest::Client,
    /// The intranet's database (a file in `data_dir`), for checking audit rows.
    pub db: fabrikam::intranet::data::Database,
    /// Where the database lives (removed on drop by the `TestApp` that made it).
    pub data_dir: std::path::PathBuf,
    owns_data_dir: bool,
    /// The settings both servers were built from.
    pub settings: Settings,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self.owns_data_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

fn browser() -> reqwest::Client {
    browser_with_jar(Arc::new(Jar::default()))
}

fn browser_with_jar(jar: Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with the demo settings, changed by `configure`; test control is on. Both servers
    /// are addressed as `127.0.0.1` unless `configure` says otherwise: everything but passkeys
    /// works there.
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_at("127.0.0.1", configure).await
    }

    /// As [`Self::spawn_with`], both servers addressed as `localhost` (the demo's default):
    /// Fabrikam ID offers passkeys and `phr`, which the audit trail needs.
    pub async fn spawn_localhost_with(configure: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_at("localhost", configure).await
    }

    async fn spawn_at(host: &str, configure: impl FnOnce(&mut Settings)) -> Self {
        // Server logs only on request: `TEST_LOG=1 cargo test`.
        if std::env::var_os("TEST_LOG").is_some() {
            // For the life of the test binary (the guard would stop the log when dropped).
            std::mem::forget(fabrikam::telemetry::init());
        }
        let (mut s, data_dir) = Self::settings(configure);
        let intranet_listener = TcpListener::bind("127.0.0.1:0").expect("bind intranet");
        let intranet_addr = intranet_listener.local_addr().unwrap();
        let idp_listener = TcpListener::bind("127.0.0.1:0").expect("bind idp");
        let at = |port: u16| Url::parse(&format!("http://{host}:{port}/")).unwrap();
        s.fabrikam_public_url
            .get_or_insert_with(|| at(intranet_addr.port()));
        s.idp_issuer_url
            .get_or_insert_with(|| format!("http://{host}:{}", idp_listener.local_addr().unwrap().port()));
        let demo = fabrikam::startup::demo(&s, intranet_listener, idp_listener)
            .await
            .expect("both servers build");
        tokio::spawn(demo.idp);
        tokio::spawn(demo.intranet);
        Self::attach(s, data_dir, intranet_addr, demo.idp_config).await
    }

    /// The demo settings for a test, changed by `configure`, with a database in a fresh
    /// temporary directory (removed when the `TestApp` is dropped).
    pub fn settings(configure: impl FnOnce(&mut Settings)) -> (Settings, std::path::PathBuf) {
        let mut s = Settings::defaults();
        // Never inherit a developer's environment for addresses and issuers.
        s.fabrikam_public_url = None;
        s.oidc_issuer_url = None;
        s.idp_issuer_url = None;
        s.idp_config = None;
        s.session_secret = None;
        s.test_control = true;
        let data_dir = std::env::temp_dir().join(format!("fabrikam-e2e-{}", fabrikam::web::random_token(9)));
        std::fs::create_dir_all(&data_dir).expect("a temporary directory");
        s.database_url = format!("sqlite:{}", data_dir.join("fabrikam.db").display());
        s.idp_passkey_store = data_dir.join("passkeys.json").display().to_string();
        configure(&mut s);
        (s, data_dir)
    }

    /// Helpers for servers already running with `s`: the intranet bound at `intranet_addr`,
    /// browsed at its public URL (cookies follow the host name), and Fabrikam ID with
    /// `idp_config`.
    pub async fn attach(
        s: Settings,
        data_dir: std::path::PathBuf,
        intranet_addr: std::net::SocketAddr,
        idp_config: fabrikam::idp::IdpConfig,
    ) -> Self {
        // The host the browser uses, on the bound port: `localhost` when the public URL says
        // so (cookies follow the host name), else the bound address (a public URL such as
        // https://intranet.fabrikam.example is only a name in these tests).
        let public = s.intranet_public_url(intranet_addr);
        let host = match public.host_str() {
            Some("localhost") => "localhost".to_owned(),
            _ => intranet_addr.ip().to_string(),
        };
        let base = Url::parse(&format!("http://{host}:{}", intranet_addr.port())).unwrap();
        let jar = Arc::new(Jar::default());
        let db = fabrikam::intranet::data::Database::connect(&s.database_url)
            .await
            .expect("the test database");
        TestApp {
            base,
            issuer: idp_config.issuer_id.clone(),
            idp: TestIdp::new(idp_config),
            db,
            data_dir,
            owns_data_dir: true,
            settings: s,
            browser: browser_with_jar(jar.clone()),
            jar,
            plain: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// Moves the intranet's clock `secs` ahead (Fabrikam ID's is its own: see
    /// `TestIdp::set_clock`), instead of sleeping.
    pub fn advance_clock(&self, secs: i64) {
        self.settings
            .intranet_clock
            .advance(secs)
            .expect("a clock offset within a century");
    }

    /// Another browser (its own cookies) on the same servers, with the same helpers. Drop it
    /// before `self`.
    pub fn another_browser(&self) -> TestApp {
        let jar = Arc::new(Jar::default());
        TestApp {
            base: self.base.clone(),
            issuer: self.issuer.clone(),
            idp: TestIdp::new(self.idp.config.clone()),
            db: self.db.clone(),
            data_dir: self.data_dir.clone(),
            owns_data_dir: false,
            settings: self.settings.clone(),
            browser: browser_with_jar(jar.clone()),
            jar,
            plain: self.plain.clone(),
        }
    }

    /// The value of the browser's cookie `name` for the intranet.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.base)?;
        let prefix = format!("{name}=");
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|c| c.strip_prefix(prefix.as_str()))
            .map(str::to_owned)
    }

    /// Drops the browser's session at Fabrikam ID (as if it expired there), keeping the
    /// intranet's.
    pub fn forget_provider_session(&self) {
        let idp = Url::parse(&self.issuer).unwrap();
        self.jar
            .add_cookie_str("fabrikam_idp_session=gone; Max-Age=0; Path=/", &idp);
    }

    /// A second browser (its own cookies) against the same servers.
    pub fn new_browser(&self) -> reqwest::Client {
        browser()
    }

    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }

    pub async fn read(url: Url, res: reqwest::Response) -> Visit {
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap_or_default();
        Visit {
            url,
            status,
            headers,
            body,
        }
    }

    /// GET without following redirects.
    pub async fn get(&self, path_or_url: &str) -> Visit {
        self.get_with(&self.browser, path_or_url).await
    }

    pub async fn get_with(&self, client: &reqwest::Client, path_or_url: &str) -> Visit {
        let url = self.base.join(path_or_url).unwrap();
        let res = client.get(url.clone()).send().await.expect("GET");
        Self::read(url, res).await
    }

    pub async fn post_form(&self, url: Url, fields: &[(String, String)]) -> Visit {
        let res = self
            .browser
            .post(url.clone())
            .form(fields)
            .send()
            .await
            .expect("POST");
        Self::read(url, res).await
    }

    /// Follows redirects as a browser would, until a page that is not a redirect.
    pub async fn follow(&self, mut visit: Visit) -> Visit {
        for _ in 0..15 {
            let Some(next) = visit.location().filter(|_| visit.is_redirect()) else {
                return visit;
            };
            let res = self.browser.get(next.clone()).send().await.expect("GET");
            visit = Self::read(next, res).await;
        }
        panic!("redirect loop ending at {}", visit.url);
    }

    /// Fills the form that has a field named `fields[0].0`, keeping its hidden inputs, submits
    /// it and follows redirects.
    pub async fn submit(&self, page: &Visit, fields: &[(&str, &str)]) -> Visit {
        let visit = self.submit_no_follow(page, fields).await;
        self.follow(visit).await
    }

    pub async fn submit_no_follow(&self, page: &Visit, fields: &[(&str, &str)]) -> Visit {
        let key = fields[0].0;
        let form = html::form_with_field(&page.body, key)
            .unwrap_or_else(|| panic!("no form with a field {key} at {}:\n{}", page.url, page.body));
        // What the browser sends untouched (unticked checkboxes are not), then the fields given.
        let mut values: Vec<(String, String)> = form
            .defaults()
            .into_iter()
            .filter(|(n, _)| !fields.iter().any(|(k, _)| k == n))
            .collect();
        values.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let action = page.url.join(&form.action).unwrap();
        self.post_form(action, &values).await
    }

    /// Presses the button of the page's form that posts to a path ending in `suffix` (a form
    /// of hidden fields only: Cancel, "Not alice?") and follows redirects.
    pub async fn press(&self, page: &Visit, suffix: &str) -> Visit {
        let form = html::forms(&page.body)
            .into_iter()
            .find(|f| f.action.ends_with(suffix))
            .unwrap_or_else(|| panic!("no form to {suffix} at {}:\n{}", page.url, page.body));
        let action = page.url.join(&form.action).unwrap();
        let visit = self.post_form(action, &form.hidden()).await;
        self.follow(visit).await
    }

    /// Signs in with the password at Fabrikam ID, starting from `/login?return_to=<to>`;
    /// returns the page after following every redirect (the intranet page, or the OP's
    /// second-factor page if one is asked for).
    pub async fn login_to(&self, user: &str, to: &str) -> Visit {
        let start = self.get(&format!("/login?return_to={}", urlencode(to))).await;
        assert_eq!(
            start.status,
            StatusCode::FOUND,
            "login starts with a redirect: {}",
            start.body
        );
        let page = self.follow(start).await;
        self.password(&page, user).await
    }

    pub async fn login_as(&self, user: &str) -> Visit {
        let page = self.login_to(user, "/").await;
        assert_eq!(page.url.path(), "/", "login as {user} lands home:\n{}", page.body);
        page
    }

    /// Answers the OP's password page.
    pub async fn password(&self, page: &Visit, user: &str) -> Visit {
        assert!(
            page.has_form_field("password"),
            "expected the password page at {}:\n{}",
            page.url,
            page.body
        );
        self.submit(
            page,
            &[("username", user), ("password", &format!("{user}-password"))],
        )
        .await
    }

    /// Answers the OP's second-factor page with the user's current code.
    pub async fn submit_totp(&self, page: &Visit, user: &str) -> Visit {
        self.submit_totp_code(page, &totp_code(user, 0)).await
    }

    pub async fn submit_totp_code(&self, page: &Visit, code: &str) -> Visit {
        assert!(
            page.has_form_field("code"),
            "expected the second-factor page at {}:\n{}",
            page.url,
            page.body
        );
        self.submit(page, &[("code", code)]).await
    }

    /// The CSRF token of the intranet page's logout form.
    pub fn csrf_of(page: &Visit) -> String {
        html::form_with_field(&page.body, "csrf_token")
            .and_then(|f| f.value("csrf_token").map(str::to_owned))
            .expect("a page with a logout form")
    }

    /// Every audit row for `event`, oldest first.
    pub async fn audit_rows(&self, event: &str) -> Vec<fabrikam::intranet::data::AuditRow> {
        use fabrikam::intranet::data::{AuditEvent, AuditFilter};
        let filter = AuditFilter {
            subject: None,
            event: Some(AuditEvent::parse(event).expect("an event name")),
        };
        let (mut rows, _) = self.db.audit(&filter, 0, 1000).await.expect("audit rows");
        rows.reverse();
        rows
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
