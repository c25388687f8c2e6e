//! `/logout`: RP-Initiated Logout 1.0. A valid `id_token_hint` and a registered
//! `post_logout_redirect_uri` send the browser back to the client; the OP session ends.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::authorize::redirect_to;
use super::errors::PageError;
use super::pages::signed_out;
use super::session::IdpSession;
use super::state::Idp;

#[derive(Debug, Default, serde::Deserialize)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
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
    logout(&idp, &session, params, StatusCode::FOUND)
}

/// `POST /logout` (RP-Initiated Logout 1.0 §2 allows form POST).
pub async fn post(
    idp: web::Data<Idp>,
    session: IdpSession,
    form: web::Form<LogoutParams>,
) -> Result<HttpResponse, PageError> {
    logout(&idp, &session, form.into_inner(), StatusCode::SEE_OTHER)
}

fn logout(
    idp: &Idp,
    session: &IdpSession,
    params: LogoutParams,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    // §2: the hint must be an ID token we issued; an expired one is still acceptable.
    let hinted_client = match params.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        None => None,
        Some(hint) => {
            let claims = idp.keys.verify(hint, &idp.issuer, None).map_err(|_| {
                tracing::info!("logout with an id_token_hint we did not issue");
                PageError::bad_request("The sign-out request carries a token Fabrikam ID did not issue.")
            })?;
            let aud = match claims.get("aud") {
                Some(Value::String(a)) => Some(a.clone()),
                Some(Value::Array(list)) => list.first().and_then(Value::as_str).map(str::to_owned),
                _ => None,
            };
            if let (Some(aud), Some(client_id)) = (&aud, &params.client_id)
                && aud != client_id
            {
                return Err(PageError::bad_request(
                    "The sign-out request names two different applications.",
                ));
            }
            aud
        }
    };
    let redirect = match params
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        None => None,
        Some(uri) => {
            // §3: only a URI registered for the client identified by the hint or client_id.
            let client = hinted_client
                .as_deref()
                .or(params.client_id.as_deref())
                .and_then(|c| idp.client(c));
            match client {
                Some(c) if c.post_logout_redirect_uris.iter().any(|u| u.as_str() == uri) => {
                    Some(uri.to_owned())
                }
                _ => {
                    tracing::info!("logout with an unregistered post_logout_redirect_uri");
                    return Err(PageError::bad_request(
                        "The address to return to after signing out is not registered for this application.",
                    ));
                }
            }
        }
    };
    if let Some(pending) = session.pending_id() {
        idp.take_pending(&pending);
    }
    session.log_out();
    match redirect {
        Some(uri) => {
            let state = params.state.unwrap_or_default();
            let pairs: Vec<(&str, &str)> = if state.is_empty() {
                vec![]
            } else {
                vec![("state", state.as_str())]
            };
            Ok(redirect_to(&uri, &pairs, status))
        }
        None => signed_out(),
    }
}
