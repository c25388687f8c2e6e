//! `/logout`: RP-Initiated Logout 1.0. A request with a valid `id_token_hint` for the
//! signed-in user (or made with no provider session at all) ends the session at once; any
//! other asks the person, and the session ends when they confirm with the page's
//! CSRF-protected form. The browser goes back to the client only to a
//! `post_logout_redirect_uri` registered for it (§3); otherwise it stays on Fabrikam ID's
//! signed-out page, which says why.
//!
//! No problem with the request — a hint Fabrikam ID did not issue, an unregistered return
//! address, an unreadable query, an expired form — leaves the session alive silently: the
//! person is either signed out or asked, and told what was wrong.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::Value;

use super::backchannel;
use super::errors::PageError;
use super::paths::Links;
use super::session::IdpSession;
use super::state::Idp;
use super::views::{page, redirect_to};

#[derive(Debug, Default, serde::Deserialize)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
    /// Present only on the confirmation form.
    csrf_token: Option<String>,
}

/// What was wrong with a logout request, as the page tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    Unreadable,
    HintNotOurs,
    HintNotIdToken,
    ClientMismatch,
    UnregisteredReturn,
    UnknownReturnClient,
    FormExpired,
}

impl Notice {
    fn message(self) -> &'static str {
        match self {
            Self::Unreadable => {
                "The sign-out request could not be read, so Fabrikam ID will not send you back to the application."
            }
            Self::HintNotOurs => {
                "The sign-out request carries a token Fabrikam ID did not issue, so it cannot tell which \
                 application sent it or send you back to it."
            }
            Self::HintNotIdToken => {
                "The sign-out request carries a token that is not an ID token issued to an application \
                 (an access token, perhaps), so Fabrikam ID cannot tell which application sent it or send \
                 you back to it."
            }
            Self::ClientMismatch => {
                "The sign-out request names two different applications, so Fabrikam ID will not send you back to either."
            }
            Self::UnregisteredReturn => {
                "The application asked to send you to an address it has not registered for after sign-out, \
                 so you stay here."
            }
            Self::UnknownReturnClient => {
                "The sign-out request asks to send you to an address but does not say which application it \
                 is for, so you stay here."
            }
            Self::FormExpired => "That sign-out form had expired. Confirm again to sign out.",
        }
    }
}

/// A logout request whose hint and return address were checked.
#[derive(Debug, Default)]
struct Checked {
    /// The `sub` of a valid `id_token_hint` (whose client agrees with `client_id`).
    hinted_user: Option<String>,
    /// The client named by the hint's `aud` or by `client_id`, if registered.
    client_id: Option<String>,
    /// A `post_logout_redirect_uri` registered for that client.
    redirect: Option<String>,
    state: Option<String>,
    notice: Option<Notice>,
}

/// `GET /logout`.
pub async fn get(
    req: HttpRequest,
    idp: web::Data<Idp>,
    session: IdpSession,
) -> Result<HttpResponse, PageError> {
    // A hint may be RS256: do not block a worker on the RSA key still being generated.
    idp.keys.ready().await?;
    let parsed = (req.query_string().len() <= super::authorize::MAX_QUERY_LEN)
        .then(|| web::Query::<LogoutParams>::from_query(req.query_string()).ok())
        .flatten()
        .map(web::Query::into_inner)
        // The confirmation is a POST; a CSRF token in a URL would leak into logs and history.
        .filter(|p| p.csrf_token.is_none());
    let checked = match parsed {
        Some(params) => check(&idp, &params),
        None => unreadable(),
    };
    request(&idp, &session, checked, StatusCode::FOUND)
}

/// `POST /logout`: the confirmation form when it carries `csrf_token` (which must then be
/// this session's), else a client's logout request sent by POST (§2: OPs must support both
/// methods), handled exactly like a GET, so it too only asks unless its hint names the user.
pub async fn post(
    idp: web::Data<Idp>,
    session: IdpSession,
    form: Result<web::Form<LogoutParams>, actix_web::Error>,
) -> Result<HttpResponse, PageError> {
    idp.keys.ready().await?;
    let Ok(form) = form else {
        return request(&idp, &session, unreadable(), StatusCode::SEE_OTHER);
    };
    let params = form.into_inner();
    if params.csrf_token.is_none() {
        return request(&idp, &session, check(&idp, &params), StatusCode::SEE_OTHER);
    }
    let mut checked = check(&idp, &params);
    match session.auth() {
        Some(auth) if !session.csrf_ok(params.csrf_token.as_deref()) => {
            tracing::info!("logout confirmation without a valid CSRF token: asking again");
            checked.notice = Some(Notice::FormExpired);
            confirmation_page(&idp, &session, auth.user, checked, StatusCode::FORBIDDEN)
        }
        _ => end_session(&idp, &session, checked, StatusCode::SEE_OTHER),
    }
}

fn unreadable() -> Checked {
    tracing::info!("unreadable logout request");
    Checked {
        notice: Some(Notice::Unreadable),
        ..Checked::default()
    }
}

/// RP-Initiated Logout 1.0 §2: "the OP MUST ask the End-User whether to log out" unless the
/// hint shows the request comes for the user signed in here.
fn request(
    idp: &web::Data<Idp>,
    session: &IdpSession,
    checked: Checked,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    match session.auth() {
        Some(auth) if checked.hinted_user.as_deref() != Some(auth.user.as_str()) => {
            tracing::info!(notice = ?checked.notice, "logout without a hint for the signed-in user: asking");
            confirmation_page(idp, session, auth.user, checked, StatusCode::OK)
        }
        _ => end_session(idp, session, checked, status),
    }
}

fn check(idp: &Idp, params: &LogoutParams) -> Checked {
    let mut notice = None;
    // §2: the hint must be an ID token we issued; an expired one is still acceptable. An ID
    // token: not an RFC 9068 access token (typ at+jwt), and issued to a registered client
    // (its aud; the API audience is never a client id, see IdpConfig::validate).
    let hint = params
        .id_token_hint
        .as_deref()
        .filter(|h| !h.is_empty())
        .and_then(
            |hint| match idp.keys.verify(hint, &idp.issuer, idp.now(), false) {
                Ok(token) if token.is_access_token() => {
                    tracing::info!("logout with an access token as id_token_hint");
                    notice = Some(Notice::HintNotIdToken);
                    None
                }
                Ok(token) => match token.audiences().into_iter().find(|a| idp.client(a).is_some()) {
                    Some(client) => Some((client.to_owned(), token.claims)),
                    None => {
                        tracing::info!("logout with an id_token_hint for no registered client");
                        notice = Some(Notice::HintNotIdToken);
                        None
                    }
                },
                Err(_) => {
                    tracing::info!("logout with an id_token_hint we did not issue");
                    notice = Some(Notice::HintNotOurs);
                    None
                }
            },
        );
    let hinted_client = hint.as_ref().map(|(client, _)| client.clone());
    let client_id = params.client_id.as_deref().filter(|c| !c.is_empty());
    // §2: with both, the client_id must be the hint's audience; otherwise trust neither.
    if let (Some(aud), Some(client_id)) = (&hinted_client, client_id)
        && aud != client_id
    {
        tracing::info!("logout whose client_id is not the hint's audience");
        return Checked {
            notice: Some(Notice::ClientMismatch),
            ..Checked::default()
        };
    }
    let client = hinted_client.as_deref().or(client_id).and_then(|c| idp.client(c));
    let requested = params
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty());
    let redirect = match (requested, client) {
        (None, _) => None,
        // §3: only a URI registered for the client identified by the hint or client_id,
        // compared exactly.
        (Some(uri), Some(c)) if c.has_post_logout_redirect_uri(uri) => Some(uri.to_owned()),
        (Some(_), Some(_)) => {
            tracing::info!("logout with an unregistered post_logout_redirect_uri");
            notice = notice.or(Some(Notice::UnregisteredReturn));
            None
        }
        (Some(_), None) => {
            notice = notice.or(Some(Notice::UnknownReturnClient));
            None
        }
    };
    Checked {
        hinted_user: hint
            .as_ref()
            .and_then(|(_, claims)| claims.get("sub"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        client_id: client.map(|c| c.client_id.clone()),
        state: params.state.clone().filter(|s| !s.is_empty()),
        // Any doubt about the request: no redirect at all.
        redirect: redirect.filter(|_| notice.is_none()),
        notice,
    }
}

fn end_session(
    idp: &web::Data<Idp>,
    session: &IdpSession,
    checked: Checked,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    if let Some(ended) = session.log_out() {
        tracing::info!(user = %ended.user, "signed out");
        // Back-Channel Logout 1.0: the applications of this session hear of it (without
        // delaying the person, whose answer follows at once).
        backchannel::notify(idp, ended);
    }
    match checked.redirect {
        Some(uri) => {
            let pairs: Vec<(&str, &str)> = match checked.state.as_deref() {
                Some(state) => vec![("state", state)],
                None => vec![],
            };
            Ok(redirect_to(&uri, &pairs, status))
        }
        None => page(
            SignedOutPage {
                links: &idp.links,
                notice: checked.notice.map(Notice::message),
            },
            StatusCode::OK,
        ),
    }
}

#[derive(Template)]
#[template(path = "idp/signed_out.html")]
struct SignedOutPage<'a> {
    links: &'a Links,
    notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "idp/logout.html")]
struct ConfirmPage<'a> {
    links: &'a Links,
    user: String,
    /// The application asking, by its registered name.
    app: Option<String>,
    client_id: Option<String>,
    redirect: Option<String>,
    state: Option<String>,
    notice: Option<&'static str>,
    csrf: String,
}

/// The question, with the validated return address carried in hidden inputs.
fn confirmation_page(
    idp: &Idp,
    session: &IdpSession,
    user: String,
    checked: Checked,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let user = idp.directory.user(&user).map_or(user, |u| u.name);
    let app = checked
        .client_id
        .as_deref()
        .and_then(|c| idp.client(c))
        .map(|c| c.display_name().to_owned());
    page(
        ConfirmPage {
            links: &idp.links,
            user,
            app,
            // Only with a return address does the client need naming again.
            client_id: checked.redirect.as_ref().and(checked.client_id),
            redirect: checked.redirect,
            state: checked.state,
            notice: checked.notice.map(Notice::message),
            csrf: session.csrf_token(),
        },
        status,
    )
}
