//! How Fabrikam ID answers a browser: a rendered page, a redirect (to one of its own pages or
//! to a client's registered URI), and the HTML error page, rendered with the request in hand
//! ([`render_errors`]) so that its links follow the issuer's path.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use askama::Template;
use url::Url;

use super::errors::{ErrorView, PageError};
use super::paths::Links;
use super::state::Idp;

/// Renders `body` as an HTML page with `status`.
pub fn page(body: impl Template, status: StatusCode) -> Result<HttpResponse, PageError> {
    let html = body.render().map_err(|e| PageError::Unexpected(e.into()))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// A redirect to `location` with `status` (302 after a GET, 303 after a POST).
pub fn see(location: &str, status: StatusCode) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A redirect to a registered URI with `pairs` appended to its query.
pub fn redirect_to(uri: &str, pairs: &[(&str, &str)], status: StatusCode) -> HttpResponse {
    let location = match Url::parse(uri) {
        // No pairs, no `?`: a registered URI comes back exactly as registered.
        Ok(mut url) if !pairs.is_empty() => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.to_string()
        }
        _ => uri.to_owned(),
    };
    see(&location, status)
}

/// OIDC Core §3.1.2.6: the error, its description and `state` go back to the (validated)
/// redirect URI.
pub fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
    status: StatusCode,
) -> HttpResponse {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    redirect_to(redirect_uri, &pairs, status)
}

#[derive(Template)]
#[template(path = "idp/error.html")]
struct ErrorPage<'a> {
    links: &'a Links,
    title: &'a str,
    message: &'a str,
}

/// Middleware: a response carrying an [`ErrorView`] gets the HTML error page as its body.
pub async fn render_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let links = req.app_data::<web::Data<Idp>>().map(|idp| idp.links.clone());
    let res = next.call(req).await?.map_into_boxed_body();
    let Some(view) = res.response().extensions().get::<ErrorView>().cloned() else {
        return Ok(res);
    };
    let Some(links) = links else {
        return Ok(res);
    };
    let html = ErrorPage {
        links: &links,
        title: &view.title,
        message: &view.message,
    }
    .render();
    let Ok(html) = html else {
        return Ok(res);
    };
    Ok(res.map_body(|head, _| {
        head.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        BoxBody::new(html)
    }))
}
