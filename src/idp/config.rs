//! Fabrikam ID's configuration: the clients it serves, the people it signs in, and its keys —
//! the demo's defaults, or an `IDP_CONFIG` TOML file ([`ConfigFile`]) — validated whole before
//! the provider starts, so a bad entry stops the start with an error naming the file, the
//! entry and the field, and the provider never runs half-configured.
//!
//! Client fields are named as in OpenID Connect Dynamic Client Registration 1.0 §2 (and
//! Back-Channel Logout 1.0 §2.2, RP-Initiated Logout 1.0 §3.1), so a registration reads the
//! same here as at any provider. The same [`ClientRegistration`] and [`UserSpec`] types are read
//! from TOML, from the test-control JSON and built in Rust ([`super::TestProvider`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::keys::{KeySource, SigningAlg};
use crate::config::{Settings, with_trailing_slash};

/// The documented TOTP secrets of the demo users (README), RFC 6238 defaults.
pub const ALICE_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
pub const BOB_TOTP: &str = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";

/// The demo users' documented passwords (`<user>-password`), hashed once ahead of time:
/// argon2id with the OWASP parameters `Argon2Pool::hash` uses (19 MiB, 2 passes, 1 lane).
/// Hashing them at every start cost about 35 ms each (release build), most of the start-up
/// time (BENCHMARKS.md, issue 10); the passwords are public, so their hashes may be too.
/// A unit test checks each against its password.
pub const DEMO_PASSWORD_HASHES: [(&str, &str); 3] = [
    (
        "alice",
        "$argon2id$v=19$m=19456,t=2,p=1$VpT8/uYsZqlbdqqEB+nvCg$zTmkspj5MI+cO94cL67+8LWFHL+d9hw4abej8wyoglU",
    ),
    (
        "bob",
        "$argon2id$v=19$m=19456,t=2,p=1$4/sSz0laxh/3s4KuB7b5fg$a9W7BvBNn8gPStR8z930FoZNfZ/mbOsXjW5CFZsYSN8",
    ),
    (
        "carol",
        "$argon2id$v=19$m=19456,t=2,p=1$AkPO39UAu7KlFWPX6T6jng$shEujic53K3DRAZ2IGOOCEucp/2TR83gmAYob5uuDys",
    ),
];

/// Claims Fabrikam ID sets itself: a user's `claims` may not name them (`name`, `email` and
/// `roles` have fields of their own).
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "c_hash",
    "client_id",
    "scope",
    "name",
    "email",
    "roles",
];

/// How a client authenticates at the token endpoint (OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// HTTP Basic with the client secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// The client secret in the form body.
    ClientSecretPost,
    /// A public client: no secret, PKCE only (RFC 7636; RFC 8252 §8.4).
    None,
}

impl TokenAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

/// A client (relying party) registered at Fabrikam ID.
///
/// Redirect URIs are kept exactly as registered: `redirect_uri` and
/// `post_logout_redirect_uri` are compared to them as strings (OIDC Core §3.1.2.1,
/// RP-Initiated Logout 1.0 §3), so `http://host` and `http://host/` are different addresses.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRegistration {
    pub client_id: String,
    /// The application's name, as the sign-in pages show it (default: the client id).
    #[serde(default)]
    pub client_name: Option<String>,
    /// `None` for a public client (`token_endpoint_auth_method = "none"`).
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// As registered; `None` means `client_secret_basic` (Dynamic Client Registration 1.0 §2),
    /// see [`Self::token_auth_method`].
    #[serde(default)]
    pub token_endpoint_auth_method: Option<TokenAuthMethod>,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// The ID tokens' `alg`; RS256 when not registered (Dynamic Client Registration §2).
    #[serde(default)]
    pub id_token_signed_response_alg: SigningAlg,
    /// Back-Channel Logout 1.0 §2.2: where Fabrikam ID posts a logout token when a provider
    /// session in which this client received a code ends.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// Back-Channel Logout 1.0 §2.2: the client needs `sid` in logout tokens. Fabrikam ID
    /// always sends both `sid` and `sub`, so this only records the client's wish.
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
}

impl std::fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("client_id", &self.client_id)
            .field("public", &self.is_public())
            .field("redirect_uris", &self.redirect_uris)
            .field("id_token_signed_response_alg", &self.id_token_signed_response_alg)
            .finish_non_exhaustive()
    }
}

impl ClientRegistration {
    /// A confidential client: a secret sent with `client_secret_basic` (register
    /// `client_secret_post` with [`Self::with_token_endpoint_auth_method`]), redirect URIs,
    /// RS256 ID tokens.
    pub fn confidential<'a>(
        client_id: &str,
        client_secret: &str,
        redirect_uris: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_name: None,
            client_secret: Some(SecretString::from(client_secret)),
            token_endpoint_auth_method: None,
            redirect_uris: redirect_uris.into_iter().map(str::to_owned).collect(),
            post_logout_redirect_uris: Vec::new(),
            id_token_signed_response_alg: SigningAlg::RS256,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
        }
    }

    /// A public client (a single-page or native app): no secret, PKCE only.
    pub fn public<'a>(client_id: &str, redirect_uris: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            client_secret: None,
            token_endpoint_auth_method: Some(TokenAuthMethod::None),
            ..Self::confidential(client_id, "", redirect_uris)
        }
    }

    /// The intranet as a client: redirect URI `<public>/callback`; post-logout URIs
    /// `<public>/` and `<public>` (SDKs send either spelling); back-channel logout URI
    /// `<public>/backchannel-logout`, with `sid` required.
    pub fn for_intranet(client_id: &str, client_secret: SecretString, public_url: &Url) -> Self {
        let base = with_trailing_slash(public_url);
        let callback = base.join("callback").expect("callback is a relative URL");
        let mut client = Self::confidential(client_id, "", [callback.as_str()]);
        client.client_secret = Some(client_secret);
        client.client_name = Some("Fabrikam intranet".into());
        let backchannel = base
            .join("backchannel-logout")
            .expect("backchannel-logout is a relative URL");
        client.backchannel_logout_uri = Some(backchannel.into());
        client.backchannel_logout_session_required = true;
        let slash = base.to_string();
        client.post_logout_redirect_uris = vec![slash.clone(), slash.trim_end_matches('/').to_owned()];
        client
    }

    pub fn with_post_logout_redirect_uris<'a>(mut self, uris: impl IntoIterator<Item = &'a str>) -> Self {
        self.post_logout_redirect_uris = uris.into_iter().map(str::to_owned).collect();
        self
    }

    pub fn with_id_token_alg(mut self, alg: SigningAlg) -> Self {
        self.id_token_signed_response_alg = alg;
        self
    }

    pub fn with_name(mut self, name: &str) -> Self {
        self.client_name = Some(name.to_owned());
        self
    }

    /// Registers `uri` for back-channel logout (Back-Channel Logout 1.0 §2.2).
    pub fn with_backchannel_logout_uri(mut self, uri: &str) -> Self {
        self.backchannel_logout_uri = Some(uri.to_owned());
        self
    }

    pub fn with_token_endpoint_auth_method(mut self, method: TokenAuthMethod) -> Self {
        self.token_endpoint_auth_method = Some(method);
        self
    }

    /// The method the token endpoint accepts from this client: the registered one, or
    /// `client_secret_basic` when none is registered (Dynamic Client Registration 1.0 §2).
    ///
    /// ```
    /// use fabrikam::idp::{ClientRegistration, TokenAuthMethod};
    ///
    /// let app = ClientRegistration::confidential("app", "secret", ["http://127.0.0.1:3000/cb"]);
    /// assert_eq!(app.token_auth_method(), TokenAuthMethod::ClientSecretBasic);
    /// let app = app.with_token_endpoint_auth_method(TokenAuthMethod::ClientSecretPost);
    /// assert_eq!(app.token_auth_method(), TokenAuthMethod::ClientSecretPost);
    /// ```
    pub fn token_auth_method(&self) -> TokenAuthMethod {
        self.token_endpoint_auth_method
            .unwrap_or(TokenAuthMethod::ClientSecretBasic)
    }

    /// A public client authenticates with no secret.
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == Some(TokenAuthMethod::None)
    }

    /// The name the sign-in pages show.
    pub fn display_name(&self) -> &str {
        self.client_name.as_deref().unwrap_or(&self.client_id)
    }

    /// Whether `uri` is exactly a registered redirect URI.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u == uri)
    }

    /// Whether `uri` is exactly a registered post-logout redirect URI.
    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|u| u == uri)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let field = |name: &str, problem: String| Err((name.to_owned(), problem));
        if self.client_id.is_empty() {
            return field("client_id", "is missing".into());
        }
        // RFC 6749 Appendix A.1: client_id is VSCHAR; we also leave out the space.
        if self.client_id.len() > 128 || !self.client_id.bytes().all(|b| b.is_ascii_graphic()) {
            return field(
                "client_id",
                "must be 1 to 128 visible ASCII characters (no spaces)".into(),
            );
        }
        if let Some(name) = &self.client_name
            && (name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control))
        {
            return field("client_name", "must be 1 to 100 characters of text".into());
        }
        let secret = self.client_secret.as_ref().map(|s| s.expose_secret());
        match (self.token_endpoint_auth_method, secret) {
            (Some(TokenAuthMethod::None), Some(_)) => {
                return field(
                    "client_secret",
                    "a public client (token_endpoint_auth_method = \"none\") has no secret".into(),
                );
            }
            (Some(TokenAuthMethod::None), None) => {}
            (_, None) | (_, Some("")) => {
                return field(
                    "client_secret",
                    "is missing (a public client says token_endpoint_auth_method = \"none\")".into(),
                );
            }
            (_, Some(_)) => {}
        }
        if self.redirect_uris.is_empty() {
            return field("redirect_uris", "needs at least one URI".into());
        }
        for (i, uri) in self.redirect_uris.iter().enumerate() {
            check_uri(uri).or_else(|p| field(&format!("redirect_uris[{i}]"), p))?;
        }
        for (i, uri) in self.post_logout_redirect_uris.iter().enumerate() {
            check_uri(uri).or_else(|p| field(&format!("post_logout_redirect_uris[{i}]"), p))?;
        }
        match &self.backchannel_logout_uri {
            Some(uri) => check_uri(uri).or_else(|p| field("backchannel_logout_uri", p))?,
            None if self.backchannel_logout_session_required => {
                return field(
                    "backchannel_logout_session_required",
                    "needs a backchannel_logout_uri".into(),
                );
            }
            None => {}
        }
        Ok(())
    }
}

/// An absolute `http`/`https` URL without a fragment (OIDC Core §3.1.2.1, RFC 6749 §3.1.2).
fn check_uri(uri: &str) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|_| format!("{uri:?} is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{uri:?} must be an http or https URL"));
    }
    if url.fragment().is_some() {
        return Err(format!("{uri:?} must not have a fragment"));
    }
    Ok(())
}

/// A person Fabrikam ID can sign in.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// The sign-in name and the `sub` claim: letters, digits and `._@+-`, at most 64.
    #[serde(default)]
    pub username: String,
    /// The password, hashed with argon2 when loaded. Give it or `password_hash`.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    pub password: Option<SecretString>,
    /// An argon2 PHC string (`$argon2id$...`) instead of the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// The display name (the `name` claim); default: the user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The `email` claim (left out when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The `roles` claim.
    #[serde(default)]
    pub roles: Vec<String>,
    /// More claims for the ID token and userinfo, e.g. `{ department = "finance" }`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub claims: Map<String, Value>,
    /// A base32 TOTP secret (RFC 6238, SHA-1, 6 digits, 30 s) of at least 128 bits. Without
    /// one, the user enrols a TOTP at their first step-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
}

/// The precomputed hash of a demo user's documented password.
fn demo_password_hash(username: &str) -> Option<&'static str> {
    DEMO_PASSWORD_HASHES
        .iter()
        .find(|(user, _)| *user == username)
        .map(|(_, hash)| *hash)
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
pub fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn expose<S: serde::Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    secret.as_ref().map(|p| p.expose_secret()).serialize(s)
}

impl std::fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSpec")
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("totp", &self.totp_secret.is_some())
            .finish_non_exhaustive()
    }
}

impl UserSpec {
    /// A user with a password and no second factor yet (they enrol one at their first step-up).
    pub fn new(username: &str, password: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: Some(SecretString::from(password)),
            ..Self::default()
        }
    }

    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    pub fn with_email(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }

    pub fn with_roles<'a>(mut self, roles: impl IntoIterator<Item = &'a str>) -> Self {
        self.roles = roles.into_iter().map(str::to_owned).collect();
        self
    }

    pub fn with_claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.to_owned(), value);
        self
    }

    pub fn with_totp_secret(mut self, base32: &str) -> Self {
        self.totp_secret = Some(base32.to_owned());
        self
    }

    /// alice, bob and carol, as the README documents them (their passwords given as the
    /// [`DEMO_PASSWORD_HASHES`], so a start hashes nothing).
    pub fn demo_users() -> Vec<UserSpec> {
        let person = |username: &str, name: &str, role: &str, totp: Option<&str>| UserSpec {
            username: username.to_owned(),
            password_hash: demo_password_hash(username).map(str::to_owned),
            name: Some(name.to_owned()),
            email: Some(format!("{username}@fabrikam.example")),
            roles: vec![role.to_owned()],
            totp_secret: totp.map(str::to_owned),
            ..UserSpec::default()
        };
        vec![
            person("alice", "Alice Ashford", "hr", Some(ALICE_TOTP)),
            person("bob", "Bob Brennan", "sales", Some(BOB_TOTP)),
            person("carol", "Carol Castillo", "hr", None),
        ]
    }

    /// The password the README documents for this user (`<user>-password`), if it is still
    /// theirs: given as that password, or as its [`DEMO_PASSWORD_HASHES`] entry.
    pub fn documented_password(&self) -> Option<String> {
        let documented = format!("{}-password", self.username);
        let given = self
            .password
            .as_ref()
            .is_some_and(|p| p.expose_secret() == documented);
        let hashed = self.password.is_none()
            && self
                .password_hash
                .as_deref()
                .is_some_and(|h| demo_password_hash(&self.username) == Some(h));
        (given || hashed).then_some(documented)
    }

    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let field = |name: &str, problem: &str| Err((name.to_owned(), problem.to_owned()));
        if !is_username(&self.username) {
            return field("username", "must be 1 to 64 letters, digits or ._@+- characters");
        }
        match (&self.password, &self.password_hash) {
            (Some(_), Some(_)) => return field("password", "give password or password_hash, not both"),
            (None, None) => return field("password", "is missing (or give password_hash)"),
            (Some(p), None) if p.expose_secret().is_empty() => return field("password", "is empty"),
            (None, Some(hash)) => {
                if let Err(problem) = password_hash_problem(hash) {
                    return Err(("password_hash".into(), problem));
                }
            }
            _ => {}
        }
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control))
        {
            return field("name", "must be 1 to 100 characters of text");
        }
        if let Some(email) = &self.email
            && !is_email(email)
        {
            return field("email", "is not an email address");
        }
        for (i, role) in self.roles.iter().enumerate() {
            if role.is_empty() || role.len() > 64 || !role.bytes().all(|b| b.is_ascii_graphic()) {
                return field(&format!("roles[{i}]"), "must be 1 to 64 visible ASCII characters");
            }
        }
        for name in self.claims.keys() {
            if RESERVED_CLAIMS.contains(&name.as_str()) {
                return Err((
                    format!("claims.{name}"),
                    "is set by Fabrikam ID itself (use the user's own fields for name, email and roles)"
                        .into(),
                ));
            }
        }
        if let Some(secret) = &self.totp_secret {
            match totp_rs::Secret::try_from_base32(secret) {
                Err(_) => return field("totp_secret", "is not base32 (RFC 4648)"),
                // RFC 4226 §4 R6: a shared secret of at least 128 bits.
                Ok(bytes) if bytes.len() < 16 => {
                    return field("totp_secret", "is shorter than 128 bits (26 base32 characters)");
                }
                Ok(_) => {}
            }
        }
        Ok(())
    }
}

/// Why `hash` cannot be a configured `password_hash`: only argon2 PHC strings within
/// [`super::passwords::MAX_MEMORY_KIB`] are verified, so anything else would lock the user out
/// (or, were it compared as text, make the hash the password).
fn password_hash_problem(hash: &str) -> Result<(), String> {
    if super::passwords::check_phc(hash).is_ok() {
        return Ok(());
    }
    const WANTED: &str = "Fabrikam ID takes an argon2 PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash), \
                          or the password itself in password";
    let scheme = hash
        .strip_prefix('$')
        .and_then(|rest| rest.split('$').next())
        .filter(|s| !s.is_empty());
    Err(match scheme {
        Some(s) if s.starts_with("argon2") => format!(
            "is not a valid argon2 PHC string, or asks for more than {} MiB of memory",
            super::passwords::MAX_MEMORY_KIB / 1024
        ),
        Some("2a" | "2b" | "2x" | "2y") => format!("is a bcrypt hash; {WANTED}"),
        Some(s) if s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
            format!("is a {s:?} hash, not argon2; {WANTED}")
        }
        _ => format!("is not a PHC string; {WANTED}"),
    })
}

fn is_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'+' | b'-'))
}

fn is_email(email: &str) -> bool {
    email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A configuration that cannot be used: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {entry}: {field}: {problem}")]
pub struct ConfigError {
    /// The file (or `the configuration` when built in code).
    pub origin: String,
    /// The entry, e.g. `clients[1] (client_id "spa")`.
    pub entry: String,
    pub field: String,
    pub problem: String,
}

/// What Fabrikam ID needs to run.
#[derive(Debug, Clone)]
pub struct IdpConfig {
    /// The issuer URL; a path (`http://host/realms/fabrikam`) puts every endpoint under it.
    pub issuer: Url,
    /// The issuer identifier exactly as `iss` and discovery carry it: `IDP_ISSUER_URL` as
    /// written (`http://host:9090/` keeps its slash), or [`crate::config::issuer_id`] of
    /// `issuer`. It must name the same URL as `issuer` ([`Self::validate`] checks).
    pub issuer_id: String,
    pub clients: Vec<ClientRegistration>,
    pub users: Vec<UserSpec>,
    /// `IDP_MFA_AT_LOGIN`: every login asks the second factor unless the browser is remembered.
    pub mfa_at_login: bool,
    /// `IDP_TEST_CONTROL`: the JSON test-control API under `/test-control/`.
    pub test_control: bool,
    /// The `aud` of access tokens (RFC 9068).
    pub api_audience: String,
    /// The ES256 (P-256) key: `IDP_SIGNING_KEY`.
    pub signing_key: KeySource,
    /// The RS256 key: `IDP_RSA_SIGNING_KEY`.
    pub rsa_signing_key: KeySource,
    /// Where the clients and users came from, for error messages (`IDP_CONFIG`'s path).
    pub origin: Option<String>,
    /// `IDP_SESSION_LIFETIME_SECS`: how long a provider session lasts from its password
    /// sign-in, whatever the activity (default 12 h; see [`super::sessions`]).
    pub session_lifetime_secs: u64,
    /// `IDP_SESSION_IDLE_SECS`: how long a provider session lasts without a request (default
    /// 30 min).
    pub session_idle_secs: u64,
    /// Caps on the provider's tables.
    pub limits: IdpLimits,
    /// `IDP_PASSKEY_STORE`: the JSON file of registered passkeys (see [`super::passkeys`]);
    /// `None` keeps them in memory only (the default of [`IdpConfig::demo`], for tests).
    pub passkey_store: Option<std::path::PathBuf>,
}

// Provider sessions (`sessions.rs` enforces them; they live here, with the settings that
// override them, so the configuration depends on no server-side table).
/// The default absolute lifetime of a session: 12 hours.
pub const DEFAULT_LIFETIME_SECS: u64 = 12 * 3600;
/// The default idle timeout of a session: 30 minutes.
pub const DEFAULT_IDLE_SECS: u64 = 30 * 60;
/// The longest either may be configured: 30 days (NIST SP 800-63B-4's AAL1 bound).
pub const MAX_CONFIGURED_SECS: u64 = 30 * 24 * 3600;
/// Sessions in all.
pub const MAX_SESSIONS: usize = 10_000;
/// Sessions per user (browsers signed in at once).
pub const MAX_SESSIONS_PER_USER: usize = 100;

/// Caps on Fabrikam ID's server-side tables. The defaults are the values a real deployment
/// runs with; tests of floods lower them to reach a cap in a few requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdpLimits {
    /// Provider sessions in all ([`MAX_SESSIONS`]); a new one beyond it ends
    /// the least recently used.
    pub max_sessions: usize,
    /// Provider sessions per user ([`MAX_SESSIONS_PER_USER`]).
    pub max_sessions_per_user: usize,
    /// User names the password throttle keeps records for
    /// ([`super::throttle::MAX_THROTTLED_NAMES`]); when all are live, new names are refused.
    pub max_throttled_names: usize,
}

impl Default for IdpLimits {
    fn default() -> Self {
        Self {
            max_sessions: MAX_SESSIONS,
            max_sessions_per_user: MAX_SESSIONS_PER_USER,
            max_throttled_names: super::throttle::MAX_THROTTLED_NAMES,
        }
    }
}

impl IdpConfig {
    /// The demo: alice, bob and carol, and `client`.
    pub fn demo(issuer: Url, client: ClientRegistration) -> Self {
        Self {
            issuer_id: crate::config::issuer_id(&issuer),
            issuer,
            clients: vec![client],
            users: UserSpec::demo_users(),
            mfa_at_login: false,
            test_control: false,
            api_audience: "fabrikam-api".into(),
            signing_key: KeySource::Generate,
            rsa_signing_key: KeySource::Generate,
            origin: None,
            session_lifetime_secs: DEFAULT_LIFETIME_SECS,
            session_idle_secs: DEFAULT_IDLE_SECS,
            limits: IdpLimits::default(),
            passkey_store: None,
        }
    }

    /// From the settings: without `IDP_CONFIG` the demo users and one client, the intranet,
    /// registered from the same variables the intranet reads; with it, the file's clients
    /// and users (plus those defaults where the file asks for them).
    pub fn from_settings(
        s: &Settings,
        idp_bound: SocketAddr,
        intranet_public_url: &Url,
    ) -> anyhow::Result<Self> {
        let default_client = ClientRegistration::for_intranet(
            &s.oidc_client_id,
            s.oidc_client_secret.clone(),
            intranet_public_url,
        );
        let mut config = Self::demo(s.idp_issuer(idp_bound), default_client);
        config.issuer_id = s.idp_issuer_id(idp_bound);
        config.mfa_at_login = s.idp_mfa_at_login;
        config.test_control = s.test_control;
        config.api_audience = s.api_audience.clone();
        config.signing_key = s
            .idp_signing_key
            .clone()
            .map_or(KeySource::Generate, KeySource::File);
        config.rsa_signing_key = s
            .idp_rsa_signing_key
            .clone()
            .map_or(KeySource::Generate, KeySource::File);
        config.session_lifetime_secs = s.idp_session_lifetime_secs;
        config.session_idle_secs = s.idp_session_idle_secs;
        config.passkey_store = Some(s.idp_passkey_store.trim())
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from);
        if let Some(path) = &s.idp_config {
            ConfigFile::load(path)?.apply(&mut config, &path.display().to_string());
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every client and user, and that ids and user names are unique; the error names
    /// the entry and the field. [`super::build`] calls it before anything starts.
    ///
    /// ```
    /// use fabrikam::idp::{ClientRegistration, IdpConfig, UserSpec};
    /// use url::Url;
    ///
    /// let app = ClientRegistration::confidential("app", "secret", ["http://127.0.0.1:3000/cb"]);
    /// let mut config = IdpConfig::demo(Url::parse("http://127.0.0.1:9090").unwrap(), app);
    /// assert!(config.validate().is_ok());
    ///
    /// config.users.push(UserSpec::new("dave", "pw").with_email("not an address"));
    /// let error = config.validate().unwrap_err();
    /// assert_eq!(error.entry, r#"users[3] (username "dave")"#);
    /// assert_eq!(error.field, "email");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let origin = self.origin.clone().unwrap_or_else(|| "the configuration".into());
        let error = |entry: String, (field, problem): (String, String)| ConfigError {
            origin: origin.clone(),
            entry,
            field,
            problem,
        };
        if Url::parse(&self.issuer_id).ok().as_ref() != Some(&self.issuer) {
            return Err(ConfigError {
                origin: "the settings".into(),
                entry: "IDP_ISSUER_URL (--idp-issuer-url)".into(),
                field: "issuer_id".into(),
                problem: format!(
                    "{:?} does not name the issuer URL {}",
                    self.issuer_id, self.issuer
                ),
            });
        }
        let max = MAX_CONFIGURED_SECS;
        for (name, flag, value) in [
            (
                "IDP_SESSION_LIFETIME_SECS",
                "--idp-session-lifetime-secs",
                self.session_lifetime_secs,
            ),
            (
                "IDP_SESSION_IDLE_SECS",
                "--idp-session-idle-secs",
                self.session_idle_secs,
            ),
        ] {
            if !(1..=max).contains(&value) {
                return Err(ConfigError {
                    origin: "the settings".into(),
                    entry: format!("{name} ({flag})"),
                    field: "value".into(),
                    problem: format!("{value} is not between 1 and {max} seconds (30 days)"),
                });
            }
        }
        if self.clients.is_empty() {
            return Err(error(
                "clients".into(),
                ("clients".into(), "no client is registered".into()),
            ));
        }
        let mut ids = HashSet::new();
        for (i, client) in self.clients.iter().enumerate() {
            let entry = format!("clients[{i}] (client_id {:?})", client.client_id);
            client.validate().map_err(|e| error(entry.clone(), e))?;
            if !ids.insert(client.client_id.as_str()) {
                return Err(error(entry, ("client_id".into(), "is registered twice".into())));
            }
            // An access token's aud is the API (RFC 9068 §3); were it also a client id, that
            // client's access tokens would read as ID tokens issued to it (OIDC Core §2: aud is
            // the client), e.g. as an id_token_hint.
            if client.client_id == self.api_audience {
                return Err(error(
                    entry,
                    (
                        "client_id".into(),
                        format!(
                            "is the API audience (API_AUDIENCE = {:?}): access tokens would name this \
                             client as their audience; choose another client_id or API_AUDIENCE",
                            self.api_audience
                        ),
                    ),
                ));
            }
        }
        let mut names = HashSet::new();
        for (i, user) in self.users.iter().enumerate() {
            let entry = format!("users[{i}] (username {:?})", user.username);
            user.validate().map_err(|e| error(entry.clone(), e))?;
            if !names.insert(user.username.as_str()) {
                return Err(error(entry, ("username".into(), "is declared twice".into())));
            }
        }
        Ok(())
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientRegistration> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

/// An `IDP_CONFIG` file. Example (see `examples/fabrikam-id.toml` for a complete one):
///
/// ```toml
/// include_demo_users = true       # alice, bob and carol too
/// include_default_client = false  # the intranet's client (OIDC_CLIENT_ID, FABRIKAM_PUBLIC_URL)
///
/// [[clients]]
/// client_id = "spring-app"
/// client_secret = "spring-secret"
/// redirect_uris = ["http://localhost:8081/login/oauth2/code/fabrikam"]
///
/// [[users]]
/// username = "dave"
/// password = "dave-password"
/// roles = ["payroll"]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Also the demo users (alice, bob, carol).
    #[serde(default)]
    pub include_demo_users: bool,
    /// Also the intranet's client, as without a file (`OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET`,
    /// `FABRIKAM_PUBLIC_URL`): `fabrikam demo` needs it.
    #[serde(default)]
    pub include_default_client: bool,
    #[serde(default)]
    pub clients: Vec<ClientRegistration>,
    #[serde(default)]
    pub users: Vec<UserSpec>,
}

impl ConfigFile {
    /// Reads and parses `path`; errors name the file, the entry and the field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            entry: "the file".into(),
            field: "-".into(),
            problem: format!("cannot be read: {e}"),
        })?;
        Self::parse(&text, &origin)
    }

    /// Parses TOML `text`; `origin` names it in errors. Parsing checks the shape (unknown or
    /// missing fields, types); [`IdpConfig::validate`] checks the values.
    ///
    /// ```
    /// use fabrikam::idp::ConfigFile;
    ///
    /// let file = ConfigFile::parse(
    ///     r#"
    /// [[clients]]
    /// client_id = "app"
    /// client_secret = "app-secret"
    /// redirect_uris = ["http://127.0.0.1:3000/callback"]
    /// "#,
    ///     "inline",
    /// )
    /// .unwrap();
    /// assert_eq!(file.clients[0].client_id, "app");
    ///
    /// let bad = ConfigFile::parse("[[clients]]\nclient_id = \"b\"\ncolour = 1\n", "my.toml").unwrap_err();
    /// assert_eq!((bad.entry.as_str(), bad.field.as_str()), ("clients[0]", "colour"));
    /// assert!(bad.to_string().starts_with("my.toml:3:1: clients[0]: colour: unknown field"));
    /// ```
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let (entry, position, key) = match e.span() {
                Some(span) => locate(text, span.start),
                None => ("the file".to_owned(), String::new(), None),
            };
            let problem = e.message().trim().replace('\n', " ");
            ConfigError {
                origin: format!("{origin}{position}"),
                entry,
                field: key.or_else(|| field_of(&problem)).unwrap_or_else(|| "-".into()),
                problem,
            }
        })
    }

    /// Puts the file's clients and users into `config` (after the defaults it asks for).
    pub fn apply(self, config: &mut IdpConfig, origin: &str) {
        let default_client = config.clients.drain(..).next();
        if self.include_default_client {
            config.clients.extend(default_client);
        }
        config.clients.extend(self.clients);
        if !self.include_demo_users {
            config.users.clear();
        }
        config.users.extend(self.users);
        config.origin = Some(origin.to_owned());
    }
}

/// The `[[clients]]` / `[[users]]` entry byte `offset` falls in, `:line:column`, and the key
/// of its line when it is a `key = value` line.
fn locate(text: &str, offset: usize) -> (String, String, Option<String>) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let mut entry = "the file".to_owned();
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    // Up to the end of the error's line: a missing field is reported at its table's header.
    let line_end = text[before.len()..]
        .find('\n')
        .map_or(text.len(), |i| before.len() + i);
    for l in text[..line_end].lines() {
        let header = l.trim();
        if let Some(table) = header.strip_prefix("[[").and_then(|h| h.strip_suffix("]]")) {
            let table = table.trim();
            let n = counts.entry(table).or_default();
            entry = format!("{table}[{n}]");
            *n += 1;
        } else if header.starts_with('[') {
            entry = header.to_owned();
        }
    }
    let key = text[..line_end]
        .rsplit('\n')
        .next()
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    (entry, format!(":{line}:{column}"), key)
}

/// The field a serde message names (`unknown field `x``, `missing field `x``).
fn field_of(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(clients: Vec<ClientRegistration>, users: Vec<UserSpec>) -> IdpConfig {
        IdpConfig {
            clients,
            users,
            ..IdpConfig::demo(Url::parse("http://127.0.0.1:9090").unwrap(), client())
        }
    }

    fn client() -> ClientRegistration {
        ClientRegistration::confidential("app", "secret", ["http://127.0.0.1:3000/callback"])
    }

    fn problem(config: IdpConfig) -> (String, String, String) {
        let e = config.validate().unwrap_err();
        (e.entry, e.field, e.problem)
    }

    #[test]
    fn the_demo_validates_and_the_intranet_registers_both_post_logout_spellings() {
        let public = Url::parse("http://127.0.0.1:8080").unwrap();
        let c = ClientRegistration::for_intranet("c", SecretString::from("s"), &public);
        assert_eq!(c.redirect_uris, ["http://127.0.0.1:8080/callback"]);
        assert_eq!(
            c.post_logout_redirect_uris,
            ["http://127.0.0.1:8080/", "http://127.0.0.1:8080"]
        );
        assert_eq!(c.id_token_signed_response_alg, SigningAlg::RS256);
        assert_eq!(
            c.backchannel_logout_uri.as_deref(),
            Some("http://127.0.0.1:8080/backchannel-logout")
        );
        let app = ClientRegistration::for_intranet(
            "c",
            SecretString::from("s"),
            &Url::parse("http://h/app").unwrap(),
        );
        assert_eq!(app.redirect_uris, ["http://h/app/callback"]);
        assert_eq!(app.post_logout_redirect_uris, ["http://h/app/", "http://h/app"]);
        IdpConfig::demo(public, c).validate().unwrap();
    }

    #[test]
    fn bad_clients_are_named_with_the_field() {
        let cases: Vec<(ClientRegistration, &str)> = vec![
            (
                ClientRegistration::confidential("", "s", ["http://a/cb"]),
                "client_id",
            ),
            (
                ClientRegistration::confidential("a b", "s", ["http://a/cb"]),
                "client_id",
            ),
            (
                ClientRegistration::confidential("a", "", ["http://a/cb"]),
                "client_secret",
            ),
            (ClientRegistration::confidential("a", "s", []), "redirect_uris"),
            (
                ClientRegistration::confidential("a", "s", ["/relative"]),
                "redirect_uris[0]",
            ),
            (
                ClientRegistration::confidential("a", "s", ["http://a/cb", "javascript:alert(1)"]),
                "redirect_uris[1]",
            ),
            (
                ClientRegistration::confidential("a", "s", ["http://a/cb#frag"]),
                "redirect_uris[0]",
            ),
            (
                ClientRegistration::confidential("a", "s", ["http://a/cb"])
                    .with_post_logout_redirect_uris(["nope"]),
                "post_logout_redirect_uris[0]",
            ),
            (
                ClientRegistration {
                    client_secret: Some(SecretString::from("s")),
                    ..ClientRegistration::public("a", ["http://a/cb"])
                },
                "client_secret",
            ),
            (
                ClientRegistration::confidential("a", "s", ["http://a/cb"])
                    .with_backchannel_logout_uri("/bc"),
                "backchannel_logout_uri",
            ),
            (
                ClientRegistration {
                    backchannel_logout_session_required: true,
                    ..ClientRegistration::confidential("a", "s", ["http://a/cb"])
                },
                "backchannel_logout_session_required",
            ),
        ];
        for (client, expected) in cases {
            let (entry, field, _) = problem(config(vec![client.clone()], vec![]));
            assert_eq!(field, expected, "{client:?}");
            assert!(entry.starts_with("clients[0]"), "{entry}");
        }
        let (entry, field, _) = problem(config(vec![client(), client()], vec![]));
        assert_eq!(
            (entry.as_str(), field.as_str()),
            ("clients[1] (client_id \"app\")", "client_id")
        );
        assert_eq!(problem(config(vec![], vec![])).1, "clients");
        let api = ClientRegistration::confidential("fabrikam-api", "s", ["http://a/cb"]);
        let (entry, field, problem) = problem(config(vec![client(), api], vec![]));
        assert_eq!(
            (entry.as_str(), field.as_str()),
            ("clients[1] (client_id \"fabrikam-api\")", "client_id")
        );
        assert!(problem.contains("API_AUDIENCE = \"fabrikam-api\""), "{problem}");
        config(vec![ClientRegistration::public("spa", ["http://a/cb"])], vec![])
            .validate()
            .unwrap();
    }

    #[test]
    fn bad_users_are_named_with_the_field() {
        let ok = || UserSpec::new("dave", "pw");
        let cases: Vec<(UserSpec, &str)> = vec![
            (UserSpec::new("", "pw"), "username"),
            (UserSpec::new("da ve", "pw"), "username"),
            (UserSpec::new("dave/x", "pw"), "username"),
            (UserSpec::new("dave", ""), "password"),
            (
                UserSpec {
                    password: None,
                    ..ok()
                },
                "password",
            ),
            (
                UserSpec {
                    password_hash: Some("$argon2id$nonsense".into()),
                    password: None,
                    ..ok()
                },
                "password_hash",
            ),
            (ok().with_email("not-an-email"), "email"),
            (ok().with_roles([""]), "roles[0]"),
            (ok().with_claim("acr", Value::from("x")), "claims.acr"),
            (ok().with_claim("email", Value::from("x")), "claims.email"),
            (ok().with_totp_secret("not base32!"), "totp_secret"),
            (ok().with_totp_secret("JBSWY3DP"), "totp_secret"),
        ];
        for (user, expected) in cases {
            let (entry, field, _) = problem(config(vec![client()], vec![user.clone()]));
            assert_eq!(field, expected, "{user:?}");
            assert!(entry.starts_with("users[0]"), "{entry}");
        }
        let (entry, field, _) = problem(config(vec![client()], vec![ok(), ok()]));
        assert_eq!(
            (entry.as_str(), field.as_str()),
            ("users[1] (username \"dave\")", "username")
        );
        config(
            vec![client()],
            vec![
                ok().with_claim("department", Value::from("finance"))
                    .with_totp_secret(ALICE_TOTP),
            ],
        )
        .validate()
        .unwrap();
    }

    #[test]
    fn session_times_outside_one_second_to_thirty_days_are_refused() {
        let mut c = config(vec![client()], vec![]);
        c.session_idle_secs = 0;
        let e = c.validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "the settings: IDP_SESSION_IDLE_SECS (--idp-session-idle-secs): value: 0 is not between 1 \
             and 2592000 seconds (30 days)"
        );
        c.session_idle_secs = 1;
        c.session_lifetime_secs = 31 * 24 * 3600;
        assert_eq!(
            c.validate().unwrap_err().entry,
            "IDP_SESSION_LIFETIME_SECS (--idp-session-lifetime-secs)"
        );
        c.session_lifetime_secs = 30 * 24 * 3600;
        c.validate().unwrap();
    }

    #[test]
    fn toml_errors_name_the_file_line_entry_and_field() {
        let text = "[[clients]]\nclient_id = \"a\"\nclient_secret = \"s\"\nredirect_uris = [\"http://a/cb\"]\n\n\
                    [[clients]]\nclient_id = \"b\"\ncolour = \"red\"\n";
        let e = ConfigFile::parse(text, "idp.toml").unwrap_err();
        assert_eq!(e.origin, "idp.toml:8:1");
        assert_eq!(e.entry, "clients[1]");
        assert_eq!(e.field, "colour");
        assert!(
            e.to_string()
                .starts_with("idp.toml:8:1: clients[1]: colour: unknown field"),
            "{e}"
        );
        let e = ConfigFile::parse("[[users]]\nusername = \"x\"\nroles = \"hr\"\n", "f").unwrap_err();
        assert_eq!(e.entry, "users[0]");
        assert!(e.problem.contains("invalid type"), "{e}");
        let e = ConfigFile::parse("include_demo_users = yes\n", "f").unwrap_err();
        assert_eq!(e.origin, "f:1:22");
    }

    #[test]
    fn the_file_replaces_the_defaults_unless_it_asks_for_them() {
        let demo = || config(vec![client()], UserSpec::demo_users());
        let file = ConfigFile {
            clients: vec![ClientRegistration::public("spa", ["http://a/cb"])],
            users: vec![UserSpec::new("dave", "pw")],
            ..ConfigFile::default()
        };
        let mut only = demo();
        file.clone().apply(&mut only, "f.toml");
        assert_eq!(
            only.clients
                .iter()
                .map(|c| c.client_id.as_str())
                .collect::<Vec<_>>(),
            ["spa"]
        );
        assert_eq!(
            only.users.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(),
            ["dave"]
        );
        let mut both = demo();
        ConfigFile {
            include_demo_users: true,
            include_default_client: true,
            ..file
        }
        .apply(&mut both, "f.toml");
        assert_eq!(both.clients.len(), 2);
        assert_eq!(both.users.len(), 4);
        assert_eq!(both.origin.as_deref(), Some("f.toml"));
        let e = ConfigFile {
            users: vec![UserSpec::new("alice", "pw")],
            include_demo_users: true,
            include_default_client: true,
            ..ConfigFile::default()
        };
        let mut twice = demo();
        e.apply(&mut twice, "f.toml");
        let err = twice.validate().unwrap_err();
        assert_eq!(err.origin, "f.toml");
        assert_eq!(err.entry, "users[3] (username \"alice\")");
    }
}
