//! The HTML pages: home, customers, employees, salary, the audit trail, `/me` and the 404. Guards come from `stepup.rs` (`CurrentUser`) and the step-up crate
//! (`StepUp<P>` with the markers of `requirements.rs`); the layout's data from `view.rs`.

use crate::web::JsonLine;
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_stepup::{AuthState, Decision, Requirement, StepUp, evaluate};
use askama::Template;
use askama_web::WebTemplate;

use super::data::{AuditEvent, AuditFilter, Customer, Employee, Listing, SalaryEntry};
use super::errors::AppError;
use super::paths;
use super::requirements::{AuditAccess, SalaryAccess};
use super::session::TypedSession;
use super::state::{AppState, RequestMeta};
use super::stepup::CurrentUser;
use super::view::{Nav, ago, format_time};

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
    customers: Listing<Customer>,
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
    employees: Listing<Employee>,
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
    let user = access.user();
    let detail = format!("employee {} ({}); {user}", employee.id, employee.name);
    state
        .audit(&meta, Some(&user.subject), AuditEvent::SalaryViewed, detail)
        .await
        .map_err(|_| AppError::AuditUnavailable)?;
    // Like every page, sent with `Cache-Control: no-store` (web::security_headers).
    Ok(SalaryPage {
        nav,
        employee,
        history,
        valid_until: access.valid_until().map(format_time),
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
/// a requirement of its own (role hr and a multi-factor login at most 5 minutes old).
pub async fn audit(
    _: StepUp<AuditAccess>,
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

/// A registered requirement on `/me`: what it demands and whether the login meets it.
struct RequirementRow {
    title: &'static str,
    requirement: String,
    verdict: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "intranet/me.html")]
struct MePage {
    nav: Nav,
    claims: Vec<ClaimRow>,
    requirements: Vec<RequirementRow>,
    /// This sign-in's class in words ([`crate::intranet::view::sign_in_class`]).
    class: &'static str,
}

/// `/me`: the session's claims, explained, and whether each registered requirement holds.
pub async fn me(req: HttpRequest, user: CurrentUser, nav: Nav, state: web::Data<AppState>) -> impl Responder {
    let auth = user.0;
    let now = state.now();
    let dropped_roles = TypedSession::from_request(&req)
        .login()
        .map_or(0, |l| l.dropped_roles);
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
                      The multi-factor class is what salary pages ask for; the audit trail asks for phr, \
                      phishing-resistant (a passkey).",
        },
        ClaimRow {
            name: "amr",
            value: if auth.amr.is_empty() {
                "(none)".into()
            } else {
                auth.amr.join(", ")
            },
            meaning: "Authentication Methods References (RFC 8176): how you proved who you are. pwd = password, \
                      otp = one-time code, pop = proof of possession of a key (a passkey), user = the \
                      authenticator verified you (PIN or biometric), mfa = more than one factor.",
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
            value: match (auth.roles.is_empty(), dropped_roles) {
                (true, 0) => "(none)".into(),
                (_, 0) => auth.roles.join(", "),
                (_, n) => format!(
                    "{} (and {n} more that this site does not use)",
                    auth.roles.join(", ")
                ),
            },
            meaning: "Your roles: what you may see. Salary pages need the hr role.",
        },
    ];
    let rows = [
        (
            "Salary pages",
            state.requirements.of::<SalaryAccess>(),
            "a salary page",
        ),
        (
            "The audit trail",
            state.requirements.of::<AuditAccess>(),
            "the audit trail",
        ),
    ];
    let requirements = rows
        .into_iter()
        .filter_map(|(title, requirement, page)| {
            let requirement = requirement?;
            Some(RequirementRow {
                title,
                requirement: requirement.to_string(),
                verdict: verdict(&auth, requirement, page, now),
            })
        })
        .collect();
    let strong = state
        .requirements
        .of::<SalaryAccess>()
        .is_some_and(|r| r.is_strong(&auth));
    MePage {
        nav,
        claims,
        requirements,
        class: super::view::sign_in_class(&auth, strong),
    }
}

/// "Satisfied now, until …", "Not satisfied (too old): opening … will send you to the
/// provider with …", "Never: …".
fn verdict(auth: &AuthState, req: &Requirement, page: &str, now: i64) -> String {
    match evaluate(auth, req, now) {
        Decision::Allow { valid_until: Some(t) } => {
            format!(
                "Satisfied now, until {} (in {} min).",
                format_time(t),
                (t - now).max(0) / 60
            )
        }
        Decision::Allow { valid_until: None } => "Satisfied now.".to_owned(),
        Decision::StepUp { request, shortfall } => {
            format!(
                "Not satisfied ({shortfall}): opening {page} will send you to the provider with {request}."
            )
        }
        Decision::StepUpFailed { shortfall, .. } => {
            format!("Not satisfied ({shortfall}), and the last step-up did not fix it.")
        }
        Decision::Forbidden { missing_role } => {
            format!("Never: your account lacks the role {missing_role}, and no sign-in can change that.")
        }
    }
}

/// The 404 page for every unknown path.
/// One person of the demo guide.
struct GuideUser {
    username: String,
    name: String,
    roles: String,
    password: Option<String>,
    /// The secret four by four, and the code of this 30-second step.
    totp: Option<(String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "intranet/demo.html")]
struct DemoGuidePage {
    nav: Nav,
    users: Vec<GuideUser>,
    /// Seconds left in this TOTP step.
    remaining: u64,
}

/// The RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret at `unix` seconds.
fn totp_at(base32: &str, unix: u64) -> Option<String> {
    let secret = totp_rs::Secret::try_from_base32(base32).ok()?;
    let totp = totp_rs::Builder::new().with_secret(secret).build().ok()?;
    Some(totp.generate(unix).to_string())
}

/// The current moment for TOTP, and the seconds left in its step: real time, as the
/// person's authenticator app and Fabrikam ID count it (RFC 6238 §4), never a test's clock.
fn totp_now() -> (u64, u64) {
    let unix = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    (unix, 30 - unix % 30)
}

/// `GET /demo`: the demo's users, their factors and their live TOTP codes, so a visitor
/// without an authenticator app can follow along. Only `fabrikam demo` has it (404 else).
pub async fn demo_guide(nav: Nav, state: web::Data<AppState>) -> Result<impl Responder, AppError> {
    use secrecy::ExposeSecret;
    if state.demo_users.is_empty() {
        return Err(AppError::NotFound);
    }
    let (unix, remaining) = totp_now();
    let users = state
        .demo_users
        .iter()
        .map(|u| GuideUser {
            username: u.username.clone(),
            name: u.name.clone(),
            roles: if u.roles.is_empty() {
                "none".to_owned()
            } else {
                u.roles.join(", ")
            },
            password: u.documented_password.clone(),
            totp: u.totp_secret.as_ref().and_then(|s| {
                let b32 = s.expose_secret();
                let grouped = b32
                    .as_bytes()
                    .chunks(4)
                    .map(String::from_utf8_lossy)
                    .collect::<Vec<_>>()
                    .join(" ");
                Some((grouped, totp_at(b32, unix)?))
            }),
        })
        .collect();
    Ok(DemoGuidePage {
        nav,
        users,
        remaining,
    })
}

/// `GET /demo/codes`: `{"period": 30, "remaining": <s>, "codes": {"alice": "123456", ...}}`
/// for the demo guide's script. Only `fabrikam demo` has it (a JSON 404 else).
pub async fn demo_codes(state: web::Data<AppState>) -> HttpResponse {
    use secrecy::ExposeSecret;
    if state.demo_users.is_empty() {
        return HttpResponse::NotFound().json_line(serde_json::json!({"error": "not_found"}));
    }
    let (unix, remaining) = totp_now();
    let codes: serde_json::Map<String, serde_json::Value> = state
        .demo_users
        .iter()
        .filter_map(|u| {
            let code = totp_at(u.totp_secret.as_ref()?.expose_secret(), unix)?;
            Some((u.username.clone(), code.into()))
        })
        .collect();
    HttpResponse::Ok().json_line(serde_json::json!({"period": 30, "remaining": remaining, "codes": codes}))
}

/// `GET /docs/tutorial.md`: the tutorial of the version running, as plain text.
pub async fn tutorial() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(include_str!("../../docs/tutorial.md"))
}

pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}
