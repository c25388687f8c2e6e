//! `/logout`: RP-Initiated Logout 1.0. A valid `id_token_hint` for the signed-in user (or no
//! OP session at all) ends the session at once and, with a registered
//! `post_logout_redirect_uri`, sends the browser back to the client. Any other request only
//! asks the person: the session ends when they confirm with the page's CSRF-protected form.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::Value;

use super::authorize::redirect_to;
use super::errors::PageError;
use super::pages::{page, signed_out};
use super::session::IdpSession;
use super::state::Idp;

#[derive(Debug, Default, serde::Deserialize)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
    /// Present only on the confirmation form.
    csrf_token: Option<String>,
}

/// A logout request whose hint and return address were checked.
#[derive(Debug, Default)]
struct Checked {
    /// The `sub` of a valid `id_token_hint`.
    hinted_user: Option<String>,
    /// The client named by the hint's `aud` or by `client_id`, if registered.
    client_id: Option<String>,
    /// A `post_logout_redirect_uri` registered for that client.
    redirect: Option<String>,
    state: Option<String>,
}

/// `GET /logout`.
pub async fn get(
    req: HttpRequest,
    idp: web::Data<Idp>,
    session: IdpSession,
) -> Result<HttpResponse, PageError> {
    if req.query_string().len() > super::authorize::MAX_QUERY_LEN {
        return Err(PageError::bad_request("The sign-out request is too large."));
    }
    let params = web::Query::<LogoutParams>::from_query(req.query_string())
        .map_err(|_| PageError::bad_request("The sign-out request is malformed."))?
        .into_inner();
    if params.csrf_token.is_some() {
        // The confirmation is a POST; a token in a URL would leak into logs and history.
        return Err(PageError::bad_request("The sign-out request is malformed."));
    }
    request(&idp, &session, params, StatusCode::FOUND)
}

/// `POST /logout`: the confirmation form when it carries `csrf_token` (which must then be
/// this session's), else a client's logout request sent by POST (§2: OPs must support both
/// methods), handled exactly like a GET, so it too only asks unless its hint names the user.
pub async fn post(
    idp: web::Data<Idp>,
    session: IdpSession,
    form: web::Form<LogoutParams>,
) -> Result<HttpResponse, PageError> {
    let params = form.into_inner();
    if params.csrf_token.is_none() {
        return request(&idp, &session, params, StatusCode::SEE_OTHER);
    }
    if !session.csrf_ok(params.csrf_token.as_deref()) {
        tracing::info!("logout confirmation without a valid CSRF token");
        return Err(PageError::csrf());
    }
    let checked = check(&idp, &params)?;
    end_session(&idp, &session, checked, StatusCode::SEE_OTHER)
}

/// RP-Initiated Logout 1.0 §2: "the OP MUST ask the End-User whether to log out" unless the
/// hint shows the request comes for the user signed in here.
fn request(
    idp: &Idp,
    session: &IdpSession,
    params: LogoutParams,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let checked = check(idp, &params)?;
    match session.auth() {
        Some(auth) if checked.hinted_user.as_deref() != Some(auth.user.as_str()) => {
            tracing::info!("logout without a hint for the signed-in user: asking");
            confirmation_page(idp, session, auth.user, checked)
        }
        _ => end_session(idp, session, checked, status),
    }
}

fn check(idp: &Idp, params: &LogoutParams) -> Result<Checked, PageError> {
    // §2: the hint must be an ID token we issued; an expired one is still acceptable.
    let hint = match params.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        None => None,
        Some(hint) => Some(idp.keys.verify(hint, &idp.issuer, None).map_err(|_| {
            tracing::info!("logout with an id_token_hint we did not issue");
            PageError::bad_request("The sign-out request carries a token Fabrikam ID did not issue.")
        })?),
    };
    let hinted_client = hint.as_ref().and_then(|claims| match claims.get("aud") {
        Some(Value::String(a)) => Some(a.clone()),
        Some(Value::Array(list)) => list.first().and_then(Value::as_str).map(str::to_owned),
        _ => None,
    });
    let client_id = params.client_id.as_deref().filter(|c| !c.is_empty());
    if let (Some(aud), Some(client_id)) = (&hinted_client, client_id)
        && aud != client_id
    {
        return Err(PageError::bad_request(
            "The sign-out request names two different applications.",
        ));
    }
    let client = hinted_client.as_deref().or(client_id).and_then(|c| idp.client(c));
    let redirect = match params
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        None => None,
        // §3: only a URI registered for the client identified by the hint or client_id.
        Some(uri) => match client {
            Some(c) if c.post_logout_redirect_uris.iter().any(|u| u.as_str() == uri) => Some(uri.to_owned()),
            _ => {
                tracing::info!("logout with an unregistered post_logout_redirect_uri");
                return Err(PageError::bad_request(
                    "The address to return to after signing out is not registered for this application.",
                ));
            }
        },
    };
    Ok(Checked {
        hinted_user: hint
            .as_ref()
            .and_then(|claims| claims.get("sub"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        client_id: client.map(|c| c.client_id.clone()),
        state: params.state.clone().filter(|s| !s.is_empty()),
        redirect,
    })
}

fn end_session(
    idp: &Idp,
    session: &IdpSession,
    checked: Checked,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    if let Some(pending) = session.pending_id() {
        idp.take_pending(&pending);
    }
    session.log_out();
    match checked.redirect {
        Some(uri) => {
            let pairs: Vec<(&str, &str)> = match checked.state.as_deref() {
                Some(state) => vec![("state", state)],
                None => vec![],
            };
            Ok(redirect_to(&uri, &pairs, status))
        }
        None => signed_out(),
    }
}

#[derive(Template)]
#[template(path = "idp/logout.html")]
struct ConfirmPage {
    user: String,
    client_id: Option<String>,
    redirect: Option<String>,
    state: Option<String>,
    csrf: String,
}

/// The question, with the validated return address carried in hidden inputs.
fn confirmation_page(
    idp: &Idp,
    session: &IdpSession,
    user: String,
    checked: Checked,
) -> Result<HttpResponse, PageError> {
    let user = idp.directory.user(&user).map_or(user, |u| u.name);
    page(
        ConfirmPage {
            user,
            // Only with a return address does the client need naming again.
            client_id: checked.redirect.as_ref().and(checked.client_id),
            redirect: checked.redirect,
            state: checked.state,
            csrf: session.csrf_token()?,
        },
        StatusCode::OK,
    )
}
