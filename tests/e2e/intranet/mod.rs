//! The intranet against Fabrikam ID, over HTTP, as a browser (and as an API client): one file
//! per journey or endpoint. Hostile cases are driven through Fabrikam ID's test-control API.

mod api;
mod backchannel;
mod cancel;
mod database;
mod demo_guide;
mod hostile_tokens;
mod login;
mod logout;
mod methods;
mod pages;
mod provider;
pub mod readiness;
mod sessions;
mod step_up;

/// The multi-factor class the intranet asks for by default.
const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
