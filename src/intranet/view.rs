//! What every page shares: the navigation ([`Nav`]: who is signed in, how strongly, the
//! logout form's CSRF token, the provider's name, a one-time message) and the formatting of
//! times, ages and money. The words for a login and a requirement are the `Display` of the
//! step-up crate's types (`AuthState`, `Requirement`, `StepUpRequest`, `Shortfall`); this
//! module adds the human touches (a badge, a date).

use actix_web::FromRequest;
use actix_web::HttpRequest;
use actix_web::dev::Payload;
use actix_web_stepup::AuthState;
use futures_util::future::{Ready, ready};

use super::data::{Customer, Employee, SalaryEntry};
use super::paths;
use super::requirements::{AuditAccess, SalaryAccess};
use super::session::TypedSession;
use super::state::AppState;

/// What the layout shows on every page, built from the request (so error pages too).
#[derive(Clone, Default)]
pub struct Nav {
    pub user: Option<NavUser>,
    pub csrf: String,
    /// The provider's name (`OIDC_PROVIDER_NAME`), e.g. "Fabrikam ID".
    pub provider: String,
    /// The request's path, for marking the current page in the menu.
    pub path: String,
    /// The demo guide exists (`fabrikam demo`): the home page and the footer link to it.
    pub demo_guide: bool,
    /// Read by `flash()` while the page renders: actix builds every extractor of a handler
    /// even when a guard before it refuses, so taking the message earlier could lose it.
    session: Option<TypedSession>,
}

impl std::fmt::Debug for Nav {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nav")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The signed-in user as the header shows them.
#[derive(Debug, Clone)]
pub struct NavUser {
    pub name: String,
    /// "password" or "multi-factor, 4 min ago".
    pub assurance: String,
    /// Meets the salary requirement's strength (the badge's colour).
    pub strong: bool,
    /// Has the roles of the audit trail (shows the Audit link).
    pub auditor: bool,
}

impl FromRequest for Nav {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Nav::of(req)))
    }
}

impl Nav {
    /// The navigation for this request's session.
    pub fn of(req: &HttpRequest) -> Self {
        let session = TypedSession::from_request(req);
        let auth = session.auth().ok().flatten();
        let state = AppState::of(req);
        let user = match (auth, &state) {
            (Some(auth), Some(state)) => {
                let strong = state
                    .requirements
                    .of::<SalaryAccess>()
                    .is_some_and(|r| r.is_strong(&auth));
                let auditor = state
                    .requirements
                    .of::<AuditAccess>()
                    .is_some_and(|r| r.has_roles(&auth));
                Some(NavUser {
                    name: auth.display_name().to_owned(),
                    assurance: assurance(&auth, strong, state.now()),
                    strong,
                    auditor,
                })
            }
            _ => None,
        };
        // Anonymous pages have no form, so they create no CSRF token (nor a session for it).
        let csrf = if user.is_some() {
            session.csrf_token()
        } else {
            String::new()
        };
        Nav {
            user,
            csrf,
            demo_guide: state.as_ref().is_some_and(|s| !s.demo_users.is_empty()),
            provider: state.map_or_else(|| "the identity provider".to_owned(), |s| s.provider_name.clone()),
            path: req.path().to_owned(),
            session: Some(session),
        }
    }

    /// The navigation of a page that cannot trust the session (it failed to load or to be
    /// kept): nobody signed in.
    pub fn anonymous(state: Option<&AppState>) -> Self {
        Nav {
            provider: state.map_or_else(|| "the identity provider".to_owned(), |s| s.provider_name.clone()),
            ..Nav::default()
        }
    }

    /// `aria-current` for the menu's link to `section`: `"page"` on that very page, `"true"`
    /// on a page below it (a customer under Customers), `None` elsewhere.
    pub fn current(&self, section: &str) -> Option<&'static str> {
        current(&self.path, section)
    }

    /// The one-time message, taken out of the session as the page that shows it renders.
    pub fn flash(&self) -> Option<String> {
        self.session.as_ref().and_then(TypedSession::take_flash)
    }
}

fn current(path: &str, section: &str) -> Option<&'static str> {
    if path == section {
        Some("page")
    } else if section != paths::HOME
        && path
            .strip_prefix(section)
            .is_some_and(|rest| rest.starts_with('/'))
    {
        Some("true")
    } else {
        None
    }
}

/// The header's badge: "password", "multi-factor" or "multi-factor, 4 min ago".
fn assurance(auth: &AuthState, strong: bool, now: i64) -> String {
    let class = sign_in_class(auth, strong);
    match (strong, auth.auth_time) {
        (true, Some(t)) => format!("{class}, {}", ago(now - t)),
        _ => class.to_owned(),
    }
}

/// The class of a sign-in in words: "phishing-resistant" when the provider says `phr` or
/// `phrh` (EAP ACR Values 1.0), "multi-factor" when it meets the salary pages' requirement
/// (`strong`), else "password".
pub fn sign_in_class(auth: &AuthState, strong: bool) -> &'static str {
    let acr = auth.acr.as_deref();
    if acr == Some(actix_web_stepup::ACR_PHR) || acr == Some(actix_web_stepup::ACR_PHRH) {
        "phishing-resistant"
    } else if strong {
        "multi-factor"
    } else {
        "password"
    }
}

/// "just now", "4 min ago", "3 h ago", "2 days ago".
pub fn ago(secs: i64) -> String {
    match secs {
        ..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// `2026-11-28 17:40:12 UTC`
pub fn format_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(
        || unix.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `104000` → `104,000`
pub fn money(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if amount < 0 { format!("-{out}") } else { out }
}

// Links and formatting the templates use.
impl Customer {
    pub fn href(&self) -> String {
        paths::customer(self.id)
    }
}

impl Employee {
    pub fn salary_href(&self) -> String {
        paths::salary(self.id)
    }

    pub fn manager_name(&self) -> &str {
        self.manager.as_deref().unwrap_or("—")
    }
}

impl SalaryEntry {
    pub fn display(&self) -> String {
        format!("{} {}", money(self.amount), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands() {
        assert_eq!(money(104_000), "104,000");
        assert_eq!(money(-1_234_567), "-1,234,567");
        assert_eq!(money(999), "999");
        assert_eq!(money(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn the_menu_marks_the_current_page_and_its_section() {
        assert_eq!(current("/customers", paths::CUSTOMERS), Some("page"));
        assert_eq!(current("/customers/3", paths::CUSTOMERS), Some("true"));
        assert_eq!(current("/employees/1/salary", paths::EMPLOYEES), Some("true"));
        assert_eq!(current("/customersx", paths::CUSTOMERS), None);
        assert_eq!(current("/me", paths::CUSTOMERS), None);
        assert_eq!(current("/", paths::HOME), Some("page"));
        assert_eq!(current("/me", paths::HOME), None);
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(-5), "just now");
        assert_eq!(ago(59), "just now");
        assert_eq!(ago(240), "4 min ago");
        assert_eq!(ago(3 * 3600), "3 h ago");
        assert_eq!(ago(2 * 86_400), "2 days ago");
    }

    #[test]
    fn the_badge_says_how_strong_and_how_recent() {
        let mut login = AuthState::new("alice", 0);
        assert_eq!(assurance(&login, false, 100), "password");
        assert_eq!(assurance(&login, true, 100), "multi-factor");
        login.auth_time = Some(100 - 240);
        assert_eq!(assurance(&login, true, 100), "multi-factor, 4 min ago");
        login.acr = Some("phr".into());
        assert_eq!(assurance(&login, true, 100), "phishing-resistant, 4 min ago");
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(i64::MAX), i64::MAX.to_string());
    }
}
