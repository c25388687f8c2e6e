//! Fabrikam ID's server: [`build`] assembles the routes (every one under the issuer's path),
//! the middleware (sessions, security headers, request log) and the error handlers.

use crate::web::JsonLine;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::error::InternalError;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use super::config::IdpConfig;
use super::errors::{OAuthError, PageError};
use super::passwords::{Argon2Pool, DEFAULT_IDLE_RELEASE};
use super::state::Idp;
use super::{
    authorize, discovery, errors, logout, pages, passkey_pages, paths, session, test_control, token,
    userinfo, views,
};

/// Builds Fabrikam ID on an already-bound listener (port 0 works; read the port back from it).
/// The configuration is validated whole first: an error names the entry and field at fault.
/// Every endpoint is served under the issuer's path.
pub async fn build(config: IdpConfig, listener: TcpListener) -> anyhow::Result<Server> {
    let idp = web::Data::new(Idp::new(&config)?);
    // Argon2 memory is kept through a burst of sign-ins, given back after a quiet spell.
    tokio::spawn(Argon2Pool::release_when_idle(
        Arc::downgrade(&idp.passwords),
        DEFAULT_IDLE_RELEASE,
    ));
    let csp = content_security_policy(&config);
    let server = HttpServer::new(move || {
        let test_control = idp.test_control;
        let prefix = idp.links.prefix.clone();
        App::new()
            .app_data(idp.clone())
            .app_data(
                web::FormConfig::default()
                    .limit(16 * 1024)
                    .error_handler(form_error),
            )
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(
                web::JsonConfig::default()
                    .limit(64 * 1024)
                    .error_handler(json_error),
            )
            .wrap(from_fn(session::write_cookies))
            .wrap(from_fn(views::render_errors))
            .wrap(crate::web::security_headers(&csp))
            .wrap(from_fn(crate::web::request_log))
            .service(web::scope(&prefix).configure(|cfg| routes(cfg, test_control, !prefix.is_empty())))
            .default_service(web::to(not_found))
    })
    .listen(listener)?
    .run();
    Ok(server)
}

fn routes(cfg: &mut web::ServiceConfig, test_control: bool, under_path: bool) {
    use super::paths as p;
    use crate::web::get_or_head as get;
    use web::post;
    if under_path {
        // `/realms/fabrikam` as well as `/realms/fabrikam/`.
        cfg.service(resource("").route(get().to(pages::home)));
    }
    cfg.service(resource(p::HOME).route(get().to(pages::home)))
        .service(resource(p::DISCOVERY).route(get().to(discovery::configuration)))
        .service(resource(p::JWKS).route(get().to(discovery::jwks)))
        .service(
            resource(p::AUTHORIZE)
                .route(get().to(authorize::get))
                .route(post().to(authorize::post)),
        )
        .service(
            web::resource(p::TOKEN)
                .route(post().to(token::token))
                .default_service(web::to(token_method_not_allowed)),
        )
        .service(
            resource(p::USERINFO)
                .route(get().to(userinfo::userinfo))
                .route(post().to(userinfo::userinfo)),
        )
        .service(
            resource(p::LOGOUT)
                .route(get().to(logout::get))
                .route(post().to(logout::post)),
        )
        .service(
            resource(p::LOGIN)
                .route(get().to(pages::login_page))
                .route(post().to(pages::login)),
        )
        .service(
            resource(p::MFA)
                .route(get().to(pages::mfa_page))
                .route(post().to(pages::mfa)),
        )
        .service(
            resource(p::ENROLL)
                .route(get().to(pages::enroll_form))
                .route(post().to(pages::enroll)),
        )
        .service(resource(p::PASSKEY).route(get().to(passkey_pages::passkey_page)))
        .service(resource(p::ACCOUNT).route(get().to(passkey_pages::account)))
        .service(resource(p::ACCOUNT_VERIFY).route(post().to(passkey_pages::account_verify)))
        .service(resource(p::ACCOUNT_REMOVE_PASSKEY).route(post().to(passkey_pages::account_remove)))
        .service(resource(p::PASSKEY_REGISTER_OPTIONS).route(post().to(passkey_pages::register_options)))
        .service(resource(p::PASSKEY_REGISTER).route(post().to(passkey_pages::register)))
        .service(resource(p::PASSKEY_SIGN_IN_OPTIONS).route(post().to(passkey_pages::sign_in_options)))
        .service(resource(p::PASSKEY_SIGN_IN).route(post().to(passkey_pages::sign_in)))
        .service(resource(p::CANCEL).route(post().to(pages::cancel)))
        .service(resource(p::SWITCH_USER).route(post().to(pages::switch_user)))
        .service(resource(p::FAVICON).route(get().to(crate::web::favicon)))
        .service(resource(p::STATIC).route(get().to(crate::web::static_asset)));
    if test_control {
        test_control::routes(cfg);
    }
}

/// A resource whose unsupported methods get the error page (405), not an empty body.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> HttpResponse {
    errors::error_page(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "This address does not accept that kind of request.",
    )
}

async fn token_method_not_allowed() -> HttpResponse {
    let mut response = actix_web::ResponseError::error_response(&OAuthError::invalid_request("use POST"));
    *response.status_mut() = actix_web::http::StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// The CSP of every Fabrikam ID response: scripts and `fetch` only from its own files (the
/// passkey script, the copy button), nothing inline. `form-action` lists the clients' origins because
/// Chrome applies it to the redirect that follows a form POST.
fn content_security_policy(config: &IdpConfig) -> String {
    let mut origins: Vec<String> = config
        .clients
        .iter()
        .flat_map(|c| c.redirect_uris.iter().chain(&c.post_logout_redirect_uris))
        .filter_map(|u| url::Url::parse(u).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .collect();
    origins.sort();
    origins.dedup();
    let mut form_action = String::from("'self'");
    for o in origins {
        form_action.push(' ');
        form_action.push_str(&o);
    }
    format!(
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

async fn not_found() -> Result<HttpResponse, PageError> {
    Err(PageError::NotFound)
}

/// Form bodies that do not parse: JSON for `/token` (RFC 6749 §5.2), the error page elsewhere.
fn form_error(err: actix_web::error::UrlencodedError, req: &HttpRequest) -> actix_web::Error {
    tracing::info!(error = %err, path = req.path(), "unreadable form body");
    let prefix = req
        .app_data::<web::Data<Idp>>()
        .map(|idp| idp.links.prefix.clone())
        .unwrap_or_default();
    let response = if req.path().strip_prefix(prefix.as_str()) == Some(paths::TOKEN) {
        actix_web::ResponseError::error_response(&OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ))
    } else {
        actix_web::ResponseError::error_response(&PageError::bad_request("The form could not be read."))
    };
    InternalError::from_response(err, response).into()
}

fn query_error(err: actix_web::error::QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    tracing::info!(error = %err, path = req.path(), "unreadable query");
    let response = actix_web::ResponseError::error_response(&PageError::bad_request(
        "The request's parameters could not be read.",
    ));
    InternalError::from_response(err, response).into()
}

fn json_error(err: actix_web::error::JsonPayloadError, req: &HttpRequest) -> actix_web::Error {
    tracing::info!(error = %err, path = req.path(), "unreadable JSON body");
    let response = HttpResponse::BadRequest().json_line(serde_json::json!({
        "error": "invalid_request", "error_description": err.to_string(),
    }));
    InternalError::from_response(err, response).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csp_allows_forms_to_reach_the_clients_and_nothing_inline() {
        let config = crate::idp::state::tests::test_config("http://127.0.0.1:8080/app");
        assert_eq!(
            content_security_policy(&config),
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
             img-src 'self' data:; form-action 'self' http://127.0.0.1:8080; frame-ancestors 'none'; \
             base-uri 'none'"
        );
    }
}
