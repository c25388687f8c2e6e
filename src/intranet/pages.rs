//! The HTML pages: home, customers, employees, salary, `/me`, and the navigation every page
//! shares.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, Responder, web};
use askama::Template;
use askama_web::WebTemplate;
use futures_util::future::{Ready, ready};

use super::AppState;
use super::data::{AuditEvent, AuditFilter, Customer, Employee, SalaryEntry};
use super::errors::{AppError, describe_request};
use super::extractors::{CurrentUser, RequestMeta, SalaryAccess, StepUp, now};
use super::paths;
use super::policy::{AuthState, Decision, Requirement, evaluate};
use super::session::TypedSession;

/// What the layout shows on every page: who is signed in, how strongly, the CSRF token for
/// the logout form, and a one-time message.
#[derive(Clone, Default)]
pub struct Nav {
    pub user: Option<NavUser>,
    pub csrf: String,
    /// Read by `flash()` while the page renders: actix builds every extractor of a handler
    /// even when a guard before it refuses, so taking the message earlier could lose it.
    session: Option<actix_session::Session>,
}

impl std::fmt::Debug for Nav {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nav")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct NavUser {
    pub name: String,
    /// "password" or "multi-factor, 4 min ago".
    pub assurance: String,
    pub strong: bool,
    /// Has the roles the salary pages need (shows the Audit link).
    pub hr: bool,
}

impl Nav {
    /// For error pages, which render without the request.
    pub fn anonymous() -> Self {
        Self::default()
    }
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
        let user = match (auth, req.app_data::<web::Data<AppState>>()) {
            (Some(auth), Some(state)) => {
                let strong = state.salary_requirement.is_strong(&auth);
                Some(NavUser {
                    name: auth.display_name().to_owned(),
                    assurance: assurance(&auth, strong, now()),
                    strong,
                    hr: state
                        .salary_requirement
                        .roles
                        .iter()
                        .all(|r| auth.roles.contains(r)),
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
            session: Some(session.0),
        }
    }

    /// The one-time message, taken out of the session as the page that shows it renders.
    pub fn flash(&self) -> Option<String> {
        self.session
            .as_ref()
            .and_then(|s| TypedSession(s.clone()).take_flash())
    }
}

fn assurance(auth: &AuthState, strong: bool, now: i64) -> String {
    match (strong, auth.auth_time) {
        (true, Some(t)) => format!("multi-factor, {}", ago(now - t)),
        (true, None) => "multi-factor".to_owned(),
        (false, _) => "password".to_owned(),
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
pub fn money(amount: &i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if *amount < 0 { format!("-{out}") } else { out }
}

#[derive(Template, WebTemplate)]
#[template(path = "intranet/home.html")]
struct HomePage {
    nav: Nav,
}

pub async fn home(nav: Nav) -> impl Responder {
    HomePage { nav }
}

#[derive(Template, WebTemplate)]
#[template(path = "intranet/customers.html")]
struct CustomersPage {
    nav: Nav,
    customers: Vec<Customer>,
}

pub async fn customers(
    _: CurrentUser,
    nav: Nav,
    state: web::Data<AppState>,
) -> Result<impl Responder, AppError> {
    Ok(CustomersPage {
        nav,
        customers: state.db.customers().await?,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "intranet/customer.html")]
struct CustomerPage {
    nav: Nav,
    customer: Customer,
}

pub async fn customer(
    _: CurrentUser,
    nav: Nav,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<impl Responder, AppError> {
    let customer = state.db.customer(*id).await?.ok_or(AppError::NotFound)?;
    Ok(CustomerPage { nav, customer })
}

#[derive(Template, WebTemplate)]
#[template(path = "intranet/employees.html")]
struct EmployeesPage {
    nav: Nav,
    employees: Vec<Employee>,
}

pub async fn employees(
    _: CurrentUser,
    nav: Nav,
    state: web::Data<AppState>,
) -> Result<impl Responder, AppError> {
    Ok(EmployeesPage {
        nav,
        employees: state.db.employees().await?,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "intranet/salary.html")]
struct SalaryPage {
    nav: Nav,
    employee: Employee,
    history: Vec<SalaryEntry>,
    valid_until: Option<String>,
}

/// Salary pages: the handler only runs when `StepUp<SalaryAccess>` allowed it, and shows
/// nothing unless the view is in the audit trail first.
pub async fn salary(
    access: StepUp<SalaryAccess>,
    nav: Nav,
    meta: RequestMeta,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<impl Responder, AppError> {
    let employee = state.db.employee(*id).await?.ok_or(AppError::NotFound)?;
    let history = state.db.salary_history(employee.id).await?;
    let user = &access.user;
    let detail = format!(
        "employee {} ({}); acr={} amr={}",
        employee.id,
        employee.name,
        user.acr.as_deref().unwrap_or("-"),
        user.amr.join(" ")
    );
    state
        .audit(&meta, Some(&user.subject), AuditEvent::SalaryViewed, detail)
        .await
        .map_err(|_| AppError::AuditUnavailable)?;
    // Like every page, sent with `Cache-Control: no-store` (web::security_headers).
    Ok(SalaryPage {
        nav,
        employee,
        history,
        valid_until: access.valid_until.map(format_time),
    })
}

/// Rows per page of `/audit`.
const AUDIT_PAGE_SIZE: i64 = 25;

#[derive(Debug, serde::Deserialize)]
pub struct AuditQuery {
    user: Option<String>,
    event: Option<String>,
    page: Option<i64>,
}

struct AuditLine {
    at: String,
    subject: String,
    event: String,
    detail: String,
    request_id: String,
    client_addr: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "intranet/audit.html")]
struct AuditPage {
    nav: Nav,
    rows: Vec<AuditLine>,
    user: String,
    event: String,
    events: Vec<&'static str>,
    page: i64,
    pages: i64,
    total: i64,
    prev: Option<String>,
    next: Option<String>,
}

/// `/audit`: the audit trail, newest first, filterable by user and event, paginated. Behind
/// the same requirement as the salaries it records.
pub async fn audit(
    _: StepUp<SalaryAccess>,
    nav: Nav,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<impl Responder, AppError> {
    let query = query.into_inner();
    let user = query.user.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty());
    let event = match query.event.as_deref().filter(|e| !e.is_empty()) {
        None => None,
        Some(name) => {
            Some(AuditEvent::parse(name).ok_or_else(|| AppError::BadRequest("Unknown event type.".into()))?)
        }
    };
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let filter = AuditFilter {
        subject: user.clone(),
        event,
    };
    let (rows, total) = state
        .db
        .audit(&filter, (page - 1) * AUDIT_PAGE_SIZE, AUDIT_PAGE_SIZE)
        .await?;
    let pages = ((total + AUDIT_PAGE_SIZE - 1) / AUDIT_PAGE_SIZE).max(1);
    let link = |p: i64| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(u) = &user {
            q.append_pair("user", u);
        }
        if let Some(e) = event {
            q.append_pair("event", e.as_str());
        }
        q.append_pair("page", &p.to_string());
        format!("{}?{}", paths::AUDIT, q.finish())
    };
    let rows = rows
        .into_iter()
        .map(|r| AuditLine {
            at: format_time(r.at),
            subject: r.subject.unwrap_or_else(|| "—".into()),
            event: r.event,
            detail: r.detail,
            request_id: r.request_id.unwrap_or_default(),
            client_addr: r.client_addr.unwrap_or_default(),
        })
        .collect();
    Ok(AuditPage {
        nav,
        rows,
        user: user.clone().unwrap_or_default(),
        event: event.map(AuditEvent::as_str).unwrap_or_default().to_owned(),
        events: AuditEvent::ALL.iter().map(|e| e.as_str()).collect(),
        page,
        pages,
        total,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
    })
}

/// One claim with its value and what it means.
struct ClaimRow {
    name: &'static str,
    value: String,
    meaning: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "intranet/me.html")]
struct MePage {
    nav: Nav,
    claims: Vec<ClaimRow>,
    verdict: String,
    requirement: String,
}

/// `/me`: the session's claims, explained, and whether the salary requirement holds.
pub async fn me(user: CurrentUser, nav: Nav, state: web::Data<AppState>) -> impl Responder {
    let auth = user.0;
    let now = now();
    let req = &state.salary_requirement;
    let claims = vec![
        ClaimRow {
            name: "sub",
            value: auth.subject.clone(),
            meaning: "Subject: the provider's stable identifier for you.",
        },
        ClaimRow {
            name: "acr",
            value: auth.acr.clone().unwrap_or_else(|| "(none)".into()),
            meaning: "Authentication Context Class Reference: the kind of sign-in the provider says it performed. \
                      The multi-factor class is what salary pages ask for.",
        },
        ClaimRow {
            name: "amr",
            value: if auth.amr.is_empty() {
                "(none)".into()
            } else {
                auth.amr.join(", ")
            },
            meaning: "Authentication Methods References (RFC 8176): how you proved who you are. pwd = password, \
                      otp = one-time code, mfa = more than one factor.",
        },
        ClaimRow {
            name: "auth_time",
            value: auth.auth_time.map_or_else(
                || "(none)".into(),
                |t| format!("{} ({})", format_time(t), ago(now - t)),
            ),
            meaning: "When you last actually authenticated at the provider, not when this token was issued. \
                      Salary pages need it to be recent.",
        },
        ClaimRow {
            name: state.roles_claim_name(),
            value: if auth.roles.is_empty() {
                "(none)".into()
            } else {
                auth.roles.join(", ")
            },
            meaning: "Your roles: what you may see. Salary pages need the hr role.",
        },
    ];
    MePage {
        nav,
        claims,
        verdict: verdict(&auth, req, now),
        requirement: describe_requirement(req),
    }
}

fn describe_requirement(req: &Requirement) -> String {
    let mut ways = Vec::new();
    let accepted: Vec<&str> = req
        .acr_values
        .iter()
        .chain(&req.also_accept_acr)
        .map(String::as_str)
        .collect();
    if !accepted.is_empty() {
        ways.push(format!("acr one of [{}]", accepted.join(" ")));
    }
    if let Some(context) = &req.auth_context {
        ways.push(format!("acrs containing the authentication context “{context}”"));
    }
    let mut s = format!("role {} and {}", req.roles.join(", "), ways.join(" or "));
    if let Some(amr) = &req.accept_amr {
        s.push_str(&format!(" or amr containing “{amr}”"));
    }
    if let Some(max_age) = req.max_age {
        s.push_str(&format!(", at most {} s old", max_age.as_secs()));
    }
    s
}

fn verdict(auth: &AuthState, req: &Requirement, now: i64) -> String {
    match evaluate(auth, req, now) {
        Decision::Allow { valid_until: Some(t) } => {
            format!(
                "Satisfied now, until {} (in {} min).",
                format_time(t),
                (t - now).max(0) / 60
            )
        }
        Decision::Allow { valid_until: None } => "Satisfied now.".to_owned(),
        Decision::StepUp { request, shortfall } => format!(
            "Not satisfied ({shortfall:?}): opening a salary page will send you to the provider with {}.",
            describe_request(&request)
        ),
        Decision::StepUpFailed { shortfall, .. } => {
            format!("Not satisfied ({shortfall:?}), and the last step-up did not fix it.")
        }
        Decision::Forbidden { missing_role } => {
            format!("Never: your account lacks the role {missing_role}, and no sign-in can change that.")
        }
    }
}

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
}

/// `/healthz`: liveness. Does not call the provider.
pub async fn healthz() -> impl Responder {
    web::Json(Health { status: "ok" })
}

/// The 404 page for every unknown path.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

// Links and formatting used by the templates.
impl Customer {
    pub fn href(&self) -> String {
        paths::customer(self.id)
    }
}

impl Employee {
    pub fn salary_href(&self) -> String {
        paths::salary(self.id)
    }
}

impl SalaryEntry {
    pub fn display(&self) -> String {
        format!("{} {}", money(&self.amount), self.currency)
    }
}

impl Employee {
    pub fn manager_name(&self) -> &str {
        self.manager.as_deref().unwrap_or("—")
    }
}
