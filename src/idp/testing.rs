//! [`TestProvider`]: Fabrikam ID started inside a test suite, on a free port, with its
//! test-control API, and a typed client for that API.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use actix_web::dev::ServerHandle;
use anyhow::Context;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use url::Url;

use super::config::{ClientRegistration, ConfigFile, IdpConfig, IdpLimits, UserSpec};
use super::control::{BackchannelLogout, NextToken};
use super::directory::{UserPatch, UserView};
use super::keys::{KeySource, KeyStatus, SigningAlg};
use super::sessions::SessionView;
use crate::config::{url_for, with_trailing_slash};

/// Fabrikam ID for a test suite: started on `127.0.0.1` and a free port, with the test-control
/// API on, and driven through it — deviant tokens, users changed at run time, a shifted
/// clock, key rotation.
///
/// Without [`TestProviderBuilder::client`] it serves the demo's client (`fabrikam-intranet`,
/// secret `fabrikam-demo-secret` sent with HTTP Basic, `client_secret_basic`, redirect URI
/// `http://127.0.0.1:8080/callback`); without
/// [`TestProviderBuilder::user`] the demo users alice, bob and carol (password: the user name
/// followed by `-password`; TOTP secrets in the README).
///
/// It needs a Tokio runtime (`#[tokio::test]`, `#[actix_web::test]` or `#[tokio::main]`); the
/// server runs as a task of that runtime and stops when the `TestProvider` is dropped.
///
/// # Example
///
/// ```
/// use fabrikam::idp::{ClientRegistration, TestProvider, UserSpec};
/// use fabrikam::idp::control::NextToken;
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// let provider = TestProvider::builder()
///     .client(ClientRegistration::confidential(
///         "my-app",
///         "my-secret",
///         ["http://127.0.0.1:3000/callback"],
///     ))
///     .user(UserSpec::new("dave", "dave-password").with_roles(["payroll"]))
///     .start()
///     .await?;
///
/// // Point the application under test at the issuer; it discovers the rest.
/// let discovery: serde_json::Value = reqwest::get(provider.discovery_url()).await?.json().await?;
/// assert_eq!(discovery["issuer"], provider.issuer());
///
/// // The next ID token for my-app carries the wrong audience: the app must refuse it.
/// provider
///     .set_next_token(&NextToken {
///         client_id: Some("my-app".into()),
///         id_token_claims: json!({ "aud": "someone-else" }).as_object().unwrap().clone(),
///         ..NextToken::default()
///     })
///     .await?;
/// # Ok(())
/// # }
/// ```
///
/// # Security
///
/// A test fixture, not an identity provider to deploy. The test-control API it relies on lets
/// anyone who can reach the port mint tokens with any claims, change users and move the
/// clock: it listens on `127.0.0.1` only, and must never be enabled on a provider real people
/// use.
///
/// **The RSA key is shared.** Generating a 2048-bit RSA key is slow, so by default every
/// provider the test process starts signs RS256 with one key generated once per process, and
/// publishes it under the same `kid` (see [`super::keys`]): an RS256 token from one provider
/// verifies against another provider's JWKS, and only `iss` tells them apart (a relying party
/// must check it anyway, OIDC Core §3.1.3.7 rule 2). A suite that tests what its application
/// does with a token signed by another issuer's key, or that compares `kid`s across
/// providers, calls [`TestProviderBuilder::own_rsa_key`]. ES256 keys are never shared.
///
/// What it checks is what Fabrikam ID checks (PKCE, exact
/// redirect URIs, single-use codes, client authentication); what your application does with
/// the tokens is what your tests are for.
pub struct TestProvider {
    issuer: String,
    base: Url,
    config: IdpConfig,
    http: reqwest::Client,
    server: Option<ServerHandle>,
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // Sends the stop command at once; nobody needs to wait for it to finish.
            drop(server.stop(false));
        }
    }
}

/// How a [`TestProvider`] is started; from [`TestProvider::builder`].
#[derive(Debug, Default)]
pub struct TestProviderBuilder {
    issuer_path: String,
    clients: Vec<ClientRegistration>,
    users: Vec<UserSpec>,
    demo_users: bool,
    config_file: Option<PathBuf>,
    mfa_at_login: bool,
    no_test_control: bool,
    api_audience: Option<String>,
    signing_key: KeySource,
    rsa_signing_key: KeySource,
    session_lifetime_secs: Option<u64>,
    session_idle_secs: Option<u64>,
    limits: Option<IdpLimits>,
    localhost: bool,
    passkey_store: Option<PathBuf>,
}

impl TestProviderBuilder {
    /// Names the issuer `http://localhost:<port>` instead of `http://127.0.0.1:<port>` (it
    /// still listens on 127.0.0.1 only): WebAuthn needs a host name, so only then are
    /// passkeys and `acr` `phr` offered.
    ///
    /// ```
    /// # async fn run() -> anyhow::Result<()> {
    /// let idp = fabrikam::idp::TestProvider::builder().localhost().start().await?;
    /// assert!(idp.issuer().starts_with("http://localhost:"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn localhost(mut self) -> Self {
        self.localhost = true;
        self
    }

    /// Keeps registered passkeys in `path` (a JSON file, created at the first registration)
    /// instead of in memory, so a provider started later on the same file knows them.
    pub fn passkey_store(mut self, path: impl AsRef<Path>) -> Self {
        self.passkey_store = Some(path.as_ref().to_owned());
        self
    }

    /// Serves the issuer under a path, e.g. `/realms/fabrikam` (as Keycloak spells them).
    pub fn issuer_path(mut self, path: &str) -> Self {
        self.issuer_path = path.trim_end_matches('/').to_owned();
        self
    }

    /// Registers a client (the first one replaces the demo's).
    pub fn client(mut self, client: ClientRegistration) -> Self {
        self.clients.push(client);
        self
    }

    /// Adds a user (the first one replaces the demo users, unless [`Self::demo_users`]).
    pub fn user(mut self, user: UserSpec) -> Self {
        self.users.push(user);
        self
    }

    /// Keeps alice, bob and carol next to the users added.
    pub fn demo_users(mut self) -> Self {
        self.demo_users = true;
        self
    }

    /// Clients and users from an `IDP_CONFIG` TOML file (before those added here).
    pub fn config_file(mut self, path: impl AsRef<Path>) -> Self {
        self.config_file = Some(path.as_ref().to_owned());
        self
    }

    /// Asks every sign-in for the second factor unless the browser is remembered
    /// (`IDP_MFA_AT_LOGIN`).
    pub fn mfa_at_login(mut self, on: bool) -> Self {
        self.mfa_at_login = on;
        self
    }

    /// Leaves the test-control API off (its routes then answer 404; the control methods fail).
    pub fn without_test_control(mut self) -> Self {
        self.no_test_control = true;
        self
    }

    /// The `aud` of access tokens (default `fabrikam-api`).
    pub fn api_audience(mut self, audience: &str) -> Self {
        self.api_audience = Some(audience.to_owned());
        self
    }

    /// Signing keys from PEM (default: generated; the RSA key shared, see [`TestProvider`]).
    pub fn signing_keys(mut self, es256: KeySource, rs256: KeySource) -> Self {
        self.signing_key = es256;
        self.rsa_signing_key = rs256;
        self
    }

    /// Generates an RSA key for this provider alone instead of signing RS256 with the key the
    /// test process shares between providers (see [`TestProvider`]): its RS256 tokens then
    /// verify against no other provider's JWKS. Costs one RSA key generation (made in the
    /// background, waited for at the first RS256 token or JWKS request). Replaces an RS256
    /// key given to [`Self::signing_keys`].
    ///
    /// ```
    /// use fabrikam::idp::{SigningAlg, TestProvider};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> anyhow::Result<()> {
    /// let shared = TestProvider::builder().start().await?;
    /// let own = TestProvider::builder().own_rsa_key().start().await?;
    /// let rs256 = |keys: fabrikam::idp::keys::KeyStatus| keys.current[&SigningAlg::RS256].clone();
    /// assert_ne!(rs256(shared.keys().await?), rs256(own.keys().await?));
    /// # Ok(())
    /// # }
    /// ```
    pub fn own_rsa_key(mut self) -> Self {
        self.rsa_signing_key = KeySource::GenerateOwn;
        self
    }

    /// A provider session's absolute lifetime (`IDP_SESSION_LIFETIME_SECS`; default 12 h):
    /// short ones let a suite test what its application does when the provider's session is
    /// gone.
    pub fn session_lifetime_secs(mut self, secs: u64) -> Self {
        self.session_lifetime_secs = Some(secs);
        self
    }

    /// A provider session's idle timeout (`IDP_SESSION_IDLE_SECS`; default 30 min).
    pub fn session_idle_secs(mut self, secs: u64) -> Self {
        self.session_idle_secs = Some(secs);
        self
    }

    /// Caps on the provider's tables, lower than the real ones to test floods quickly.
    pub fn limits(mut self, limits: IdpLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// The configuration for a provider bound to `addr`: what [`Self::start`] runs.
    pub fn config(&self, addr: std::net::SocketAddr) -> anyhow::Result<IdpConfig> {
        let mut issuer = url_for(addr);
        if self.localhost {
            issuer.set_host(Some("localhost"))?;
        }
        issuer.set_path(&self.issuer_path);
        let demo_client = ClientRegistration::for_intranet(
            "fabrikam-intranet",
            SecretString::from("fabrikam-demo-secret"),
            &Url::parse("http://127.0.0.1:8080/")?,
        );
        let mut config = IdpConfig::demo(issuer, demo_client);
        if let Some(path) = &self.config_file {
            ConfigFile::load(path)?.apply(&mut config, &path.display().to_string());
        }
        if !self.clients.is_empty() {
            if self.config_file.is_none() {
                config.clients.clear();
            }
            config.clients.extend(self.clients.iter().cloned());
        }
        if !self.users.is_empty() {
            if self.config_file.is_none() && !self.demo_users {
                config.users.clear();
            }
            config.users.extend(self.users.iter().cloned());
        }
        config.mfa_at_login = self.mfa_at_login;
        config.test_control = !self.no_test_control;
        if let Some(audience) = &self.api_audience {
            config.api_audience = audience.clone();
        }
        config.signing_key = self.signing_key.clone();
        config.rsa_signing_key = self.rsa_signing_key.clone();
        if let Some(secs) = self.session_lifetime_secs {
            config.session_lifetime_secs = secs;
        }
        if let Some(secs) = self.session_idle_secs {
            config.session_idle_secs = secs;
        }
        if let Some(limits) = self.limits {
            config.limits = limits;
        }
        config.passkey_store = self.passkey_store.clone();
        config.validate()?;
        Ok(config)
    }

    /// Binds `127.0.0.1:0`, builds and starts the provider.
    pub async fn start(self) -> anyhow::Result<TestProvider> {
        let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
        let config = self.config(listener.local_addr()?)?;
        let server = super::server::build(config.clone(), listener).await?;
        let handle = server.handle();
        tokio::spawn(server);
        let mut provider = TestProvider::attach(config);
        provider.server = Some(handle);
        Ok(provider)
    }
}

impl TestProvider {
    /// A builder: clients, users, options.
    pub fn builder() -> TestProviderBuilder {
        TestProviderBuilder::default()
    }

    /// The demo's client and users, test control on.
    pub async fn start() -> anyhow::Result<Self> {
        Self::builder().start().await
    }

    /// The control API of a Fabrikam ID already running with `config` (e.g. started by
    /// `fabrikam::startup::demo`, or `fabrikam idp --test-control` elsewhere); it is not
    /// stopped on drop.
    pub fn attach(config: IdpConfig) -> Self {
        let base = with_trailing_slash(&config.issuer);
        Self {
            issuer: config.issuer_id.clone(),
            base,
            config,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a reqwest client builds"),
            server: None,
        }
    }

    /// The issuer identifier, exactly as `iss` and discovery carry it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The issuer as a base URL, always with a trailing slash (join relative paths onto it).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `path` (e.g. `/authorize`) under the issuer.
    pub fn url(&self, path: &str) -> Url {
        self.base
            .join(path.trim_start_matches('/'))
            .expect("a path joins onto the issuer")
    }

    /// OpenID Connect Discovery 1.0 §4: `<issuer>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> Url {
        self.url(super::paths::DISCOVERY)
    }

    /// The configuration it runs with (its clients and the users it started with).
    pub fn config(&self) -> &IdpConfig {
        &self.config
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> anyhow::Result<Option<T>> {
        let url = self.url(path);
        let mut request = self.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}: Fabrikam ID does not answer"))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND && path.starts_with("/test-control/users/") {
            return Ok(None);
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            anyhow::bail!("{method} {path}: {status}: {text}");
        }
        if status == StatusCode::NO_CONTENT {
            return Ok(serde_json::from_value(Value::Null).ok());
        }
        Ok(Some(response.json().await.with_context(|| {
            format!("{method} {path}: not the JSON expected")
        })?))
    }

    /// `PUT /test-control/next-token`: deviations for the next `/authorize` and `/token` (for
    /// `next.client_id` only, when set).
    pub async fn set_next_token(&self, next: &NextToken) -> anyhow::Result<()> {
        self.call::<()>(reqwest::Method::PUT, "/test-control/next-token", Some(next))
            .await
            .map(drop)
    }

    /// `DELETE /test-control/next-token`: drops deviations not yet used (one client's, or all).
    pub async fn clear_next_token(&self, client_id: Option<&str>) -> anyhow::Result<()> {
        let path = match client_id {
            Some(c) => format!("/test-control/next-token?client_id={}", encode(c)),
            None => "/test-control/next-token".into(),
        };
        self.call::<()>(reqwest::Method::DELETE, &path, None::<&()>)
            .await
            .map(drop)
    }

    /// `PUT /test-control/clock`: shifts the provider's clock by `offset_secs` from real time.
    pub async fn set_clock_offset(&self, offset_secs: i64) -> anyhow::Result<()> {
        let body = json!({ "offset_secs": offset_secs });
        self.call::<()>(reqwest::Method::PUT, "/test-control/clock", Some(&body))
            .await
            .map(drop)
    }

    /// `POST /test-control/reset`: no deviation, no clock offset.
    pub async fn reset(&self) -> anyhow::Result<()> {
        self.call::<()>(reqwest::Method::POST, "/test-control/reset", None::<&()>)
            .await
            .map(drop)
    }

    /// The parameters of the last authorization requests, oldest first (one client's, or all).
    pub async fn authorize_requests(
        &self,
        client_id: Option<&str>,
    ) -> anyhow::Result<Vec<Map<String, Value>>> {
        let path = match client_id {
            Some(c) => format!("/test-control/authorize-requests?client_id={}", encode(c)),
            None => "/test-control/authorize-requests".into(),
        };
        let list: Vec<Value> = self
            .call(reqwest::Method::GET, &path, None::<&()>)
            .await?
            .unwrap_or_default();
        Ok(list
            .into_iter()
            .filter_map(|entry| entry.get("params").and_then(Value::as_object).cloned())
            .collect())
    }

    /// Every user.
    pub async fn users(&self) -> anyhow::Result<Vec<UserView>> {
        Ok(self
            .call(reqwest::Method::GET, "/test-control/users", None::<&()>)
            .await?
            .unwrap_or_default())
    }

    /// One user, or `None`.
    pub async fn user(&self, username: &str) -> anyhow::Result<Option<UserView>> {
        let path = format!("/test-control/users/{}", encode(username));
        self.call(reqwest::Method::GET, &path, None::<&()>).await
    }

    /// Adds `user`, or replaces the user of that name.
    pub async fn put_user(&self, user: &UserSpec) -> anyhow::Result<UserView> {
        let path = format!("/test-control/users/{}", encode(&user.username));
        self.call(reqwest::Method::PUT, &path, Some(user))
            .await?
            .context("the user was not stored")
    }

    /// Changes some of a user's fields; `None` if there is no such user.
    pub async fn patch_user(&self, username: &str, patch: &UserPatch) -> anyhow::Result<Option<UserView>> {
        let path = format!("/test-control/users/{}", encode(username));
        self.call(reqwest::Method::PATCH, &path, Some(patch)).await
    }

    /// Removes a user; `false` if there was none.
    pub async fn remove_user(&self, username: &str) -> anyhow::Result<bool> {
        let path = format!("/test-control/users/{}", encode(username));
        let url = self.url(&path);
        let status = self.http.delete(url).send().await?.status();
        match status {
            StatusCode::NO_CONTENT => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            other => anyhow::bail!("DELETE {path}: {other}"),
        }
    }

    /// The back-channel logouts sent, oldest first (one client's, or all): each with its
    /// logout token and, once known, the receiver's status or the error.
    pub async fn backchannel_logouts(
        &self,
        client_id: Option<&str>,
    ) -> anyhow::Result<Vec<BackchannelLogout>> {
        let path = match client_id {
            Some(c) => format!("/test-control/backchannel-logouts?client_id={}", encode(c)),
            None => "/test-control/backchannel-logouts".into(),
        };
        Ok(self
            .call(reqwest::Method::GET, &path, None::<&()>)
            .await?
            .unwrap_or_default())
    }

    /// The live provider sessions (`GET /test-control/sessions`).
    pub async fn sessions(&self) -> anyhow::Result<Vec<SessionView>> {
        Ok(self
            .call(reqwest::Method::GET, "/test-control/sessions", None::<&()>)
            .await?
            .unwrap_or_default())
    }

    /// Ends the provider session whose ID tokens carry `sid` (revocation); `false` if there
    /// is none.
    pub async fn end_session(&self, sid: &str) -> anyhow::Result<bool> {
        let path = format!("/test-control/sessions/{}", encode(sid));
        let status = self.http.delete(self.url(&path)).send().await?.status();
        match status {
            StatusCode::NO_CONTENT => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            other => anyhow::bail!("DELETE {path}: {other}"),
        }
    }

    /// Which `kid` signs each algorithm, and every published one.
    pub async fn keys(&self) -> anyhow::Result<KeyStatus> {
        self.call(reqwest::Method::GET, "/test-control/keys", None::<&()>)
            .await?
            .context("no key status")
    }

    /// Rotates the key of `alg` (or of every algorithm): the new key signs from now on, the old
    /// one stays published for `grace_secs` (default 300; 0 withdraws it at once).
    pub async fn rotate_keys(
        &self,
        alg: Option<SigningAlg>,
        grace_secs: Option<i64>,
    ) -> anyhow::Result<KeyStatus> {
        let mut body = Map::new();
        if let Some(alg) = alg {
            body.insert("alg".into(), json!(alg));
        }
        if let Some(grace) = grace_secs {
            body.insert("grace_secs".into(), json!(grace));
        }
        self.call(reqwest::Method::POST, "/test-control/keys/rotate", Some(&body))
            .await?
            .context("no key status")
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// docs/testing.md, whose Rust example is compiled with the doctests so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../docs/testing.md")]
pub struct TestingGuide;
