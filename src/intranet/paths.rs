//! Every URL path of the intranet, in one place: the router, the templates and the
//! redirects read them from here.

pub const HOME: &str = "/";
pub const LOGIN: &str = "/login";
pub const CALLBACK: &str = "/callback";
pub const LOGOUT: &str = "/logout";
pub const CUSTOMERS: &str = "/customers";
pub const CUSTOMER: &str = "/customers/{id}";
pub const EMPLOYEES: &str = "/employees";
pub const SALARY: &str = "/employees/{id}/salary";
pub const ME: &str = "/me";
pub const AUDIT: &str = "/audit";
/// The demo guide: the demo users, their factors and live TOTP codes (`fabrikam demo` only).
pub const DEMO: &str = "/demo";
/// The demo guide's codes as JSON, for its script.
pub const DEMO_CODES: &str = "/demo/codes";
/// The tutorial, served as plain text from the binary (the docs of the version running).
pub const TUTORIAL: &str = "/docs/tutorial.md";
pub const FAVICON: &str = "/favicon.ico";
/// Every path under it answers JSON, never a page.
pub const API: &str = "/api";
pub const API_SALARY: &str = "/api/employees/{id}/salary";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
/// OpenID Connect Back-Channel Logout 1.0: the provider posts `logout_token` here.
pub const BACKCHANNEL_LOGOUT: &str = "/backchannel-logout";
pub const STATIC: &str = "/static/{name}";
/// The intranet's stylesheet, served by [`STATIC`].
pub const STYLESHEET: &str = "/static/fabrikam.css";
pub const ICON: &str = "/static/favicon.svg";
/// The demo guide's script (live codes).
pub const DEMO_SCRIPT: &str = "/static/demo.js";

/// `/customers/7`
pub fn customer(id: i64) -> String {
    format!("{CUSTOMERS}/{id}")
}

/// `/employees/7/salary`
pub fn salary(id: i64) -> String {
    format!("{EMPLOYEES}/{id}/salary")
}

/// `/login?return_to=<path>`, percent-encoded.
pub fn login_to(return_to: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    format!("{LOGIN}?{query}")
}

/// `/login?return_to=<path>&step_up=<requirement>`: the Continue and Try-again buttons.
pub fn step_up_to(return_to: &str, requirement: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .append_pair("step_up", requirement)
        .finish();
    format!("{LOGIN}?{query}")
}

/// The longest `return_to` accepted.
pub const MAX_RETURN_TO: usize = 1024;

/// Accepts only a same-site relative path: `/x`, never `//host`, `/\host`, `http://host`,
/// nor anything with control characters or backslashes that browsers may "fix" into a host.
pub fn safe_return_to(candidate: &str) -> Option<&str> {
    let bytes = candidate.as_bytes();
    let ok = bytes.first() == Some(&b'/')
        && bytes.get(1) != Some(&b'/')
        && !candidate.contains('\\')
        && !candidate.chars().any(char::is_control)
        // Short enough to travel in the pending login inside a 4 KB session cookie.
        && candidate.len() <= MAX_RETURN_TO;
    if !ok {
        return None;
    }
    // Belt and braces: resolved against a base, it must stay on that base's origin.
    let base = url::Url::parse("http://fabrikam.invalid/").ok()?;
    let resolved = base.join(candidate).ok()?;
    (resolved.origin() == base.origin()).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_accepts_relative_paths_only() {
        for good in ["/", "/customers", "/employees/1/salary?x=1#y", "/a/../b", "/%0a"] {
            assert_eq!(safe_return_to(good), Some(good), "{good}");
        }
        for bad in [
            "",
            "customers",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "http://evil.example/",
            "https:evil.example",
            "javascript:alert(1)",
            "/\tevil",
            "/\n/evil.example",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn login_link_encodes_the_return_path() {
        assert_eq!(
            login_to("/employees/1/salary?a=b&c"),
            "/login?return_to=%2Femployees%2F1%2Fsalary%3Fa%3Db%26c"
        );
    }
}
