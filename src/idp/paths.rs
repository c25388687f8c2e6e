//! Every URL path Fabrikam ID serves: the router, the templates and the discovery document
//! read them from here, so a path is spelled once.

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
pub const STATIC: &str = "/static/{name}";
pub const STYLESHEET: &str = "/static/idp.css";

/// The test-control API (only mounted with `IdpConfig::test_control`).
pub const TC_AUTHORIZE_REQUESTS: &str = "/test-control/authorize-requests";
pub const TC_CLOCK: &str = "/test-control/clock";
pub const TC_NEXT_TOKEN: &str = "/test-control/next-token";
pub const TC_RESET: &str = "/test-control/reset";

/// The absolute URL of `path` under the issuer (`path` starts with `/`).
pub fn absolute(issuer: &url::Url, path: &str) -> String {
    let base = crate::config::with_trailing_slash(issuer);
    base.join(path.trim_start_matches('/'))
        .map(String::from)
        .unwrap_or_else(|_| format!("{}{}", base.as_str().trim_end_matches('/'), path))
}
