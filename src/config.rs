//! Settings: one struct read from the command line and the environment (the same names), with
//! demo defaults, turned into the configuration of each server.
//!
//! Every variable of the README's configuration table is a field here; nothing else in the
//! crate reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use url::Url;

use crate::clock::Clock;

/// The MFA class that Auth0 issues and the demo requests on step-up.
pub const PAPE_MULTI_FACTOR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

#[derive(Debug, Parser)]
#[command(
    name = "fabrikam",
    version,
    about = "Step-up authentication demo: the Fabrikam intranet and Fabrikam ID"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// The intranet and Fabrikam ID in one process (the default).
    Demo,
    /// The intranet alone, against the provider at OIDC_ISSUER_URL.
    Intranet,
    /// Fabrikam ID, the mock OpenID Provider, alone.
    Idp,
}

/// Every setting, with the demo's defaults. Each field is also an environment variable.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Intranet bind address (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "FABRIKAM_ADDR", default_value = "127.0.0.1:8080", global = true)]
    pub fabrikam_addr: SocketAddr,
    /// Base URL the browser sees for the intranet (default http://<FABRIKAM_ADDR>).
    #[arg(long, env = "FABRIKAM_PUBLIC_URL", global = true)]
    pub fabrikam_public_url: Option<Url>,
    /// The OpenID Provider's issuer (default: the embedded Fabrikam ID).
    #[arg(long, env = "OIDC_ISSUER_URL", global = true)]
    pub oidc_issuer_url: Option<String>,
    /// The provider's name as the intranet's pages show it (default: "Fabrikam ID" for the
    /// embedded provider, else the issuer's host).
    #[arg(long, env = "OIDC_PROVIDER_NAME", global = true)]
    pub oidc_provider_name: Option<String>,
    #[arg(
        long,
        env = "OIDC_CLIENT_ID",
        default_value = "fabrikam-intranet",
        global = true
    )]
    pub oidc_client_id: String,
    #[arg(
        long,
        env = "OIDC_CLIENT_SECRET",
        default_value = "fabrikam-demo-secret",
        hide_default_value = true,
        global = true
    )]
    pub oidc_client_secret: SecretString,
    /// How multi-factor is requested and recognised: a preset per provider. STEPUP_ACR_VALUES
    /// and STEPUP_ACCEPT_AMR override its values.
    #[arg(long, env = "STEPUP_PROFILE", value_enum, default_value_t = StepUpProfile::Custom, global = true)]
    pub stepup_profile: StepUpProfile,
    /// Space-separated acr values requested and accepted on step-up (with the entra profile:
    /// the authentication context id). Default: the profile's, for custom the PAPE
    /// multi-factor URI.
    #[arg(long, env = "STEPUP_ACR_VALUES", global = true)]
    pub stepup_acr_values: Option<String>,
    /// An amr value that also satisfies the step-up policy; empty = acr only. Default: the
    /// profile's, for custom `mfa`.
    #[arg(long, env = "STEPUP_ACCEPT_AMR", global = true)]
    pub stepup_accept_amr: Option<String>,
    /// How fresh (auth_time) a multi-factor login must be for salary pages.
    #[arg(long, env = "STEPUP_MAX_AGE_SECS", default_value_t = 600, global = true)]
    pub stepup_max_age_secs: u64,
    /// Show an explanation page with a Continue button before a step-up, instead of
    /// redirecting to the provider at once.
    #[arg(long, env = "STEPUP_INTERSTITIAL", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub stepup_interstitial: bool,
    /// At least 64 bytes, hex or base64, for the session cookie key (default: random per process).
    #[arg(long, env = "SESSION_SECRET", hide_env_values = true, global = true)]
    pub session_secret: Option<SecretString>,
    /// How long an intranet session lasts at most, from its first sign-in (step-ups do not
    /// renew it). NIST SP 800-63B-4 allows at most 24 h at AAL2.
    #[arg(long, env = "SESSION_LIFETIME_SECS", default_value_t = 8 * 3600, value_parser = clap::value_parser!(u64).range(2..=30 * 24 * 3600), global = true)]
    pub session_lifetime_secs: u64,
    /// An intranet session ends after this long without a request. NIST SP 800-63B-4 allows at
    /// most 1 h at AAL2.
    #[arg(long, env = "SESSION_IDLE_TIMEOUT_SECS", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(2..=30 * 24 * 3600), global = true)]
    pub session_idle_timeout_secs: u64,
    /// Redis for server-side sessions shared by several intranet processes.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, global = true)]
    pub redis_url: Option<SecretString>,
    /// How long the intranet waits for Redis on each call before it answers 503.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=10_000), global = true)]
    pub redis_timeout_ms: u64,
    /// Demo data and the audit log.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite:fabrikam.db",
        global = true
    )]
    pub database_url: String,
    /// Fabrikam ID bind address.
    #[arg(long, env = "IDP_ADDR", default_value = "127.0.0.1:9090", global = true)]
    pub idp_addr: SocketAddr,
    /// Fabrikam ID's issuer URL (default http://<IDP_ADDR>), advertised exactly as written
    /// (`http://host:9090/` keeps its slash, as Auth0 spells issuers).
    #[arg(long, env = "IDP_ISSUER_URL", global = true, value_parser = absolute_url)]
    pub idp_issuer_url: Option<String>,
    /// Ask every login for the second factor unless the browser is remembered.
    #[arg(long, env = "IDP_MFA_AT_LOGIN", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub idp_mfa_at_login: bool,
    /// How long a Fabrikam ID session lasts from its password sign-in, whatever the activity.
    #[arg(long, env = "IDP_SESSION_LIFETIME_SECS", default_value_t = 12 * 3600, global = true)]
    pub idp_session_lifetime_secs: u64,
    /// How long a Fabrikam ID session lasts without a request to Fabrikam ID.
    #[arg(long, env = "IDP_SESSION_IDLE_SECS", default_value_t = 30 * 60, global = true)]
    pub idp_session_idle_secs: u64,
    /// A PKCS#8 PEM file with Fabrikam ID's P-256 key for ES256 (default: generated at start).
    #[arg(long, env = "IDP_SIGNING_KEY", global = true)]
    pub idp_signing_key: Option<PathBuf>,
    /// A PEM file (PKCS#8 or PKCS#1) with Fabrikam ID's RSA key for RS256, at least 2048 bits
    /// (default: generated at start, in the background).
    #[arg(long, env = "IDP_RSA_SIGNING_KEY", global = true)]
    pub idp_rsa_signing_key: Option<PathBuf>,
    /// A TOML file declaring Fabrikam ID's clients and users (default: the demo users and the
    /// intranet's client). See examples/fabrikam-id.toml.
    #[arg(
        long = "idp-config",
        visible_alias = "config",
        env = "IDP_CONFIG",
        global = true
    )]
    pub idp_config: Option<PathBuf>,
    /// The JSON file where Fabrikam ID keeps registered passkeys, so they survive a restart
    /// (written at the first registration; an empty value keeps them in memory only).
    #[arg(
        long,
        env = "IDP_PASSKEY_STORE",
        default_value = "fabrikam-id-passkeys.json",
        global = true
    )]
    pub idp_passkey_store: String,
    /// Expose Fabrikam ID's JSON test-control API under /test-control (never in production).
    #[arg(long, env = "IDP_TEST_CONTROL", default_value_t = false, global = true)]
    pub test_control: bool,
    /// The aud that access tokens for /api/... must carry (RFC 9068).
    #[arg(long, env = "API_AUDIENCE", default_value = "fabrikam-api", global = true)]
    pub api_audience: String,
    /// ID-token claim (array of strings) that carries the user's roles.
    #[arg(long, env = "ROLES_CLAIM", default_value = "roles", global = true)]
    pub roles_claim: String,
    /// How long the intranet waits for the provider (discovery, keys, token endpoint) before
    /// it answers 503.
    #[arg(long, env = "OIDC_TIMEOUT_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=120), global = true)]
    pub oidc_timeout_secs: u64,
    /// The intranet's clock: real time unless a test (holding a clone) shifts it. Not a
    /// command-line flag or environment variable.
    #[arg(skip)]
    pub intranet_clock: Clock,
}

/// Presets for how real providers request and report multi-factor sign-ins
/// (`intranet::requirements` maps them to the `actix-web-stepup` crate's `Profile`, which holds the values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StepUpProfile {
    /// Auth0: the PAPE multi-factor URI in `acr_values`; `amr` contains `mfa`.
    Auth0,
    /// Okta: `urn:okta:loa:2fa:any`.
    Okta,
    /// Keycloak: acr names mapped to levels of assurance (`gold` = level 2).
    Keycloak,
    /// Microsoft Entra ID: an authentication context (`c1`) requested with the `claims`
    /// parameter and reported in the `acrs` claim.
    Entra,
    /// Fabrikam ID and anything else: STEPUP_ACR_VALUES and STEPUP_ACCEPT_AMR as given
    /// (default: the PAPE multi-factor URI, `mfa`).
    Custom,
}

/// The step-up requirement of the salary pages, as configured.
#[derive(Debug, Clone)]
pub struct StepUpConfig {
    pub profile: StepUpProfile,
    /// `STEPUP_ACR_VALUES`, split; `None` = the profile's.
    pub acr_values: Option<Vec<String>>,
    /// `STEPUP_ACCEPT_AMR`: `None` = the profile's, `Some(None)` = set empty (acr only).
    pub accept_amr: Option<Option<String>>,
    pub max_age: Duration,
    pub interstitial: bool,
}

/// What the intranet needs to run.
#[derive(Debug, Clone)]
pub struct IntranetConfig {
    pub public_url: Url,
    /// Exactly as the provider spells it (`iss` is compared as a string, OIDC Core §3.1.3.7).
    pub issuer_url: String,
    /// The provider's name on pages and in messages.
    pub provider_name: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub stepup: StepUpConfig,
    pub session_secret: Option<SecretString>,
    pub redis_url: Option<SecretString>,
    pub database_url: String,
    pub api_audience: String,
    pub roles_claim: String,
    /// `OIDC_TIMEOUT_SECS`.
    pub oidc_timeout: Duration,
    /// `SESSION_LIFETIME_SECS`.
    pub session_lifetime: Duration,
    /// `SESSION_IDLE_TIMEOUT_SECS`.
    pub session_idle_timeout: Duration,
    /// `REDIS_TIMEOUT_MS`.
    pub redis_timeout: Duration,
    /// The intranet's one clock (`Settings::intranet_clock`).
    pub clock: Clock,
    /// The embedded provider's users, for the demo guide page (`/demo`, with their live TOTP
    /// codes). Only `fabrikam demo` fills it; empty everywhere else, and `/demo` is then a 404.
    pub demo_users: Vec<DemoUser>,
}

/// A user of the embedded Fabrikam ID as the intranet's demo guide shows them. Demo mode only:
/// a real site never knows its users' passwords or second factors.
#[derive(Clone)]
pub struct DemoUser {
    pub username: String,
    pub name: String,
    pub roles: Vec<String>,
    /// Shown only when it is the documented demo password (`<username>-password`).
    pub documented_password: Option<String>,
    /// The base32 TOTP secret, if the user has one from the configuration.
    pub totp_secret: Option<SecretString>,
}

impl std::fmt::Debug for DemoUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoUser")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `http://<addr>/` for a bound address.
pub fn url_for(addr: SocketAddr) -> Url {
    Url::parse(&format!("http://{addr}/")).expect("a socket address makes a valid URL")
}

/// The demo's public URL for a bound address: `http://localhost:<port>/` for a loopback
/// address, since WebAuthn (passkeys) needs a host name, not an IP address, as its relying
/// party id; `http://<addr>/` for any other.
pub fn public_url_for(addr: SocketAddr) -> Url {
    if addr.ip().is_loopback() {
        Url::parse(&format!("http://localhost:{}/", addr.port())).expect("a valid URL")
    } else {
        url_for(addr)
    }
}

impl Settings {
    /// The settings with no environment and no flags: the demo's defaults.
    pub fn defaults() -> Self {
        Cli::parse_from(["fabrikam"]).settings
    }

    /// The intranet's public URL, given the address it is bound to.
    pub fn intranet_public_url(&self, bound: SocketAddr) -> Url {
        self.fabrikam_public_url
            .clone()
            .unwrap_or_else(|| public_url_for(bound))
    }

    /// Fabrikam ID's issuer URL (to serve and join paths onto), given the address it is bound
    /// to.
    pub fn idp_issuer(&self, bound: SocketAddr) -> Url {
        self.idp_issuer_url
            .as_deref()
            .and_then(|u| Url::parse(u).ok())
            .unwrap_or_else(|| public_url_for(bound))
    }

    /// Fabrikam ID's issuer identifier, as `iss` and discovery carry it: `IDP_ISSUER_URL`
    /// exactly as written (OIDC Discovery 1.0 §4.3 compares it as a string), else
    /// `http://localhost:<port>` for a loopback bind (`http://<bound>` otherwise).
    pub fn idp_issuer_id(&self, bound: SocketAddr) -> String {
        match &self.idp_issuer_url {
            Some(issuer) if Url::parse(issuer).is_ok() => issuer.clone(),
            _ => issuer_id(&public_url_for(bound)),
        }
    }

    /// The intranet's configuration; `default_issuer` (the embedded Fabrikam ID) is used when
    /// `OIDC_ISSUER_URL` is unset.
    pub fn intranet_config(&self, public_url: Url, default_issuer: String) -> IntranetConfig {
        let provider_name = match (&self.oidc_provider_name, &self.oidc_issuer_url) {
            (Some(name), _) if !name.trim().is_empty() => name.trim().to_owned(),
            (_, None) => "Fabrikam ID".to_owned(),
            // Another provider: its host is a name people recognise (`login.example.com`).
            (_, Some(issuer)) => Url::parse(issuer)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "the identity provider".to_owned()),
        };
        IntranetConfig {
            public_url,
            issuer_url: self.oidc_issuer_url.clone().unwrap_or(default_issuer),
            provider_name,
            client_id: self.oidc_client_id.clone(),
            client_secret: self.oidc_client_secret.clone(),
            stepup: StepUpConfig {
                profile: self.stepup_profile,
                acr_values: self
                    .stepup_acr_values
                    .as_deref()
                    .map(|v| v.split_whitespace().map(str::to_owned).collect()),
                accept_amr: self
                    .stepup_accept_amr
                    .as_deref()
                    .map(|a| Some(a.trim().to_owned()).filter(|a| !a.is_empty())),
                max_age: Duration::from_secs(self.stepup_max_age_secs),
                interstitial: self.stepup_interstitial,
            },
            session_secret: self.session_secret.clone(),
            redis_url: self.redis_url.clone(),
            database_url: self.database_url.clone(),
            api_audience: self.api_audience.clone(),
            roles_claim: self.roles_claim.clone(),
            oidc_timeout: Duration::from_secs(self.oidc_timeout_secs),
            session_lifetime: Duration::from_secs(self.session_lifetime_secs),
            session_idle_timeout: Duration::from_secs(self.session_idle_timeout_secs),
            redis_timeout: Duration::from_millis(self.redis_timeout_ms),
            clock: self.intranet_clock.clone(),
            demo_users: Vec::new(),
        }
    }
}

/// The issuer identifier, as `iss` and discovery carry it and RPs compare it (exactly, OIDC
/// Core §3.1.3.7 rule 2): a root URL without its trailing slash (`http://127.0.0.1:9090`, as
/// the README writes it), any other URL unchanged.
pub fn issuer_id(url: &Url) -> String {
    if url.path() == "/" && url.query().is_none() && url.fragment().is_none() {
        url.as_str().trim_end_matches('/').to_owned()
    } else {
        url.as_str().to_owned()
    }
}

/// Clap's check of `IDP_ISSUER_URL`: an absolute URL, kept as written.
fn absolute_url(value: &str) -> Result<String, String> {
    Url::parse(value)
        .map(|_| value.to_owned())
        .map_err(|e| format!("{value:?} is not an absolute URL: {e}"))
}

/// `http://host/app` → `http://host/app/`, so that `join` appends rather than replaces.
pub fn with_trailing_slash(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_readme() {
        let s = Settings::defaults();
        assert_eq!(s.fabrikam_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.idp_addr.to_string(), "127.0.0.1:9090");
        assert_eq!(s.oidc_client_id, "fabrikam-intranet");
        assert_eq!(s.stepup_profile, StepUpProfile::Custom);
        assert_eq!(
            s.stepup_acr_values, None,
            "the profile's: the PAPE URI for custom"
        );
        assert_eq!(s.stepup_accept_amr, None, "the profile's: mfa for custom");
        assert_eq!(s.stepup_max_age_secs, 600);
        assert_eq!(s.api_audience, "fabrikam-api");
        assert_eq!(s.roles_claim, "roles");
        assert!(!s.idp_mfa_at_login);
        assert_eq!(
            (s.idp_session_lifetime_secs, s.idp_session_idle_secs),
            (43_200, 1_800)
        );
        assert!(!s.test_control);
    }

    #[test]
    fn public_urls_default_to_localhost_for_loopback_addresses_only() {
        let s = Settings::defaults();
        assert_eq!(
            s.intranet_public_url(s.fabrikam_addr).as_str(),
            "http://localhost:8080/"
        );
        assert_eq!(s.idp_issuer(s.idp_addr).as_str(), "http://localhost:9090/");
        assert_eq!(
            public_url_for("10.0.0.5:80".parse().unwrap()).as_str(),
            "http://10.0.0.5/"
        );
        assert_eq!(
            public_url_for("[::1]:9090".parse().unwrap()).as_str(),
            "http://localhost:9090/"
        );
    }

    #[test]
    fn empty_accept_amr_means_acr_only() {
        let mut s = Settings::defaults();
        s.stepup_accept_amr = Some(String::new());
        let c = s.intranet_config(url_for(s.fabrikam_addr), issuer_id(&url_for(s.idp_addr)));
        assert_eq!(c.issuer_url, "http://127.0.0.1:9090");
        assert_eq!(c.stepup.accept_amr, Some(None));
    }

    #[test]
    fn the_provider_is_named_by_setting_else_by_issuer() {
        let mut s = Settings::defaults();
        let config =
            |s: &Settings| s.intranet_config(url_for(s.fabrikam_addr), "http://127.0.0.1:9090".into());
        assert_eq!(config(&s).provider_name, "Fabrikam ID", "the embedded provider");
        s.oidc_issuer_url = Some("https://login.example.com/tenant/".into());
        assert_eq!(config(&s).provider_name, "login.example.com");
        s.oidc_provider_name = Some("  Contoso Login ".into());
        assert_eq!(config(&s).provider_name, "Contoso Login");
        s.oidc_provider_name = Some(String::new());
        assert_eq!(config(&s).provider_name, "login.example.com", "empty = unset");
    }

    #[test]
    fn issuer_ids_have_no_trailing_slash_at_the_root() {
        let root = Url::parse("http://127.0.0.1:9090").unwrap();
        assert_eq!(issuer_id(&root), "http://127.0.0.1:9090");
        let path = Url::parse("https://id.example/tenant/").unwrap();
        assert_eq!(issuer_id(&path), "https://id.example/tenant/");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Settings::defaults();
        assert!(!format!("{s:?}").contains("fabrikam-demo-secret"));
    }
}
