//! Every URL path Fabrikam ID serves: the router, the templates and the discovery document
//! read them from here, so a path is spelled once. The paths are relative to the issuer: with
//! `IDP_ISSUER_URL=http://host/realms/fabrikam` every one of them is served under
//! `/realms/fabrikam` ([`Links`] holds them as the browser sees them), as OpenID Connect
//! Discovery 1.0 §4 places the configuration under the issuer's path.

use url::Url;

pub const HOME: &str = "/";
pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const JWKS: &str = "/jwks";
pub const AUTHORIZE: &str = "/authorize";
pub const TOKEN: &str = "/token";
pub const USERINFO: &str = "/userinfo";
pub const LOGOUT: &str = "/logout";
pub const LOGIN: &str = "/login";
pub const MFA: &str = "/mfa";
pub const ENROLL: &str = "/enroll";
pub const PASSKEY: &str = "/passkey";
pub const ACCOUNT: &str = "/account";
pub const ACCOUNT_VERIFY: &str = "/account/verify";
pub const ACCOUNT_REMOVE_PASSKEY: &str = "/account/passkeys/remove";
pub const PASSKEY_REGISTER_OPTIONS: &str = "/passkeys/register/options";
pub const PASSKEY_REGISTER: &str = "/passkeys/register";
pub const PASSKEY_SIGN_IN_OPTIONS: &str = "/passkeys/sign-in/options";
pub const PASSKEY_SIGN_IN: &str = "/passkeys/sign-in";
/// `POST`: abandons the pending sign-in; the client gets `error=access_denied`.
pub const CANCEL: &str = "/cancel";
/// `POST`: "Not alice?" — signs out of Fabrikam ID and starts the pending sign-in over.
pub const SWITCH_USER: &str = "/switch-user";
pub const FAVICON: &str = "/favicon.ico";
pub const STATIC: &str = "/static/{name}";
pub const SCRIPT: &str = "/static/passkey.js";
pub const STYLESHEET: &str = "/static/idp.css";
/// The copy button of the enrolment page.
pub const COPY_SCRIPT: &str = "/static/copy.js";
pub const ICON: &str = "/static/favicon.svg";

/// The test-control API (only mounted with `IdpConfig::test_control`).
pub const TC_AUTHORIZE_REQUESTS: &str = "/test-control/authorize-requests";
pub const TC_CLOCK: &str = "/test-control/clock";
pub const TC_NEXT_TOKEN: &str = "/test-control/next-token";
pub const TC_RESET: &str = "/test-control/reset";
pub const TC_USERS: &str = "/test-control/users";
pub const TC_USER: &str = "/test-control/users/{username}";
pub const TC_KEYS: &str = "/test-control/keys";
pub const TC_ROTATE_KEYS: &str = "/test-control/keys/rotate";
pub const TC_SESSIONS: &str = "/test-control/sessions";
pub const TC_BACKCHANNEL_LOGOUTS: &str = "/test-control/backchannel-logouts";
pub const TC_SESSION: &str = "/test-control/sessions/{sid}";

/// The absolute URL of `path` under the issuer (`path` starts with `/`).
pub fn absolute(issuer: &Url, path: &str) -> String {
    let base = crate::config::with_trailing_slash(issuer);
    base.join(path.trim_start_matches('/'))
        .map(String::from)
        .unwrap_or_else(|_| format!("{}{}", base.as_str().trim_end_matches('/'), path))
}

/// Fabrikam ID's own pages as the browser addresses them: the issuer's path, then the path.
/// Templates, redirects between the pages and cookies read them from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// The issuer's path without its trailing slash: `""` at the root, `/realms/fabrikam`.
    pub prefix: String,
    pub home: String,
    pub discovery: String,
    pub login: String,
    pub mfa: String,
    pub enroll: String,
    pub logout: String,
    pub cancel: String,
    pub switch_user: String,
    pub stylesheet: String,
    pub passkey: String,
    pub account: String,
    pub account_verify: String,
    pub account_remove_passkey: String,
    pub passkey_register_options: String,
    pub passkey_register: String,
    pub passkey_sign_in_options: String,
    pub passkey_sign_in: String,
    pub script: String,
    pub copy_script: String,
    pub icon: String,
}

impl Links {
    pub fn new(issuer: &Url) -> Self {
        let prefix = issuer.path().trim_end_matches('/').to_owned();
        let at = |path: &str| format!("{prefix}{path}");
        Self {
            home: at(HOME),
            discovery: at(DISCOVERY),
            login: at(LOGIN),
            mfa: at(MFA),
            enroll: at(ENROLL),
            logout: at(LOGOUT),
            cancel: at(CANCEL),
            switch_user: at(SWITCH_USER),
            stylesheet: at(STYLESHEET),
            passkey: at(PASSKEY),
            account: at(ACCOUNT),
            account_verify: at(ACCOUNT_VERIFY),
            account_remove_passkey: at(ACCOUNT_REMOVE_PASSKEY),
            passkey_register_options: at(PASSKEY_REGISTER_OPTIONS),
            passkey_register: at(PASSKEY_REGISTER),
            passkey_sign_in_options: at(PASSKEY_SIGN_IN_OPTIONS),
            passkey_sign_in: at(PASSKEY_SIGN_IN),
            script: at(SCRIPT),
            copy_script: at(COPY_SCRIPT),
            icon: at(ICON),
            prefix,
        }
    }

    /// The `Path` of Fabrikam ID's cookies: the issuer's path, so they go nowhere else.
    pub fn cookie_path(&self) -> &str {
        if self.prefix.is_empty() { "/" } else { &self.prefix }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_the_issuers_path() {
        let root = Links::new(&Url::parse("http://127.0.0.1:9090").unwrap());
        assert_eq!(
            (root.login.as_str(), root.home.as_str(), root.cookie_path()),
            ("/login", "/", "/")
        );
        for issuer in ["http://h/realms/fabrikam", "http://h/realms/fabrikam/"] {
            let realm = Links::new(&Url::parse(issuer).unwrap());
            assert_eq!(realm.login, "/realms/fabrikam/login");
            assert_eq!(realm.home, "/realms/fabrikam/");
            assert_eq!(realm.stylesheet, "/realms/fabrikam/static/idp.css");
            assert_eq!(realm.cookie_path(), "/realms/fabrikam");
            assert_eq!(
                absolute(&Url::parse(issuer).unwrap(), DISCOVERY),
                "http://h/realms/fabrikam/.well-known/openid-configuration"
            );
        }
    }
}
