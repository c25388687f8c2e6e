//! Neutral web plumbing shared by both servers: security headers, request logging that never
//! records a query string, random values, PKCE, and the embedded static files (stylesheets, scripts, icons).
//!
//! The intranet and Fabrikam ID never import each other; both may import this module.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{HttpMessage, HttpResponse};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh random value of `bytes` bytes, base64url without padding. 32 bytes (256 bits)
/// is used for `state`, `nonce`, codes and CSRF tokens: above RFC 6749 §10.10's bound (a
/// guess succeeds with probability at most 2^-128, and SHOULD at most 2^-160).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// RFC 7636 §4.2: `code_challenge = BASE64URL(SHA256(ASCII(code_verifier)))`.
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Constant-time comparison of two secrets (client secrets, CSRF tokens).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The security headers every response carries. `csp` is the server's
/// Content-Security-Policy; it never allows inline script or style. Responses are not cached
/// unless a handler says otherwise (the stylesheets do): pages carry personal data.
pub fn security_headers(csp: &str) -> DefaultHeaders {
    SecurityHeaders::new(csp, false).middleware()
}

/// The security headers as a list: as middleware for every response, and for a response that
/// leaves through an error (which `DefaultHeaders` does not touch). With `hsts`, also
/// `Strict-Transport-Security` (a site served over https).
#[derive(Debug, Clone)]
pub struct SecurityHeaders(Vec<(header::HeaderName, header::HeaderValue)>);

impl SecurityHeaders {
    pub fn new(csp: &str, hsts: bool) -> Self {
        let mut list = vec![
            (NO_STORE.0, NO_STORE.1.to_owned()),
            (header::CONTENT_SECURITY_POLICY, csp.to_owned()),
            (header::X_FRAME_OPTIONS, "DENY".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
            (
                header::HeaderName::from_static("cross-origin-opener-policy"),
                "same-origin".to_owned(),
            ),
            (
                header::HeaderName::from_static("permissions-policy"),
                "camera=(), microphone=(), geolocation=()".to_owned(),
            ),
        ];
        if hsts {
            list.push((HSTS.0, HSTS.1.to_owned()));
        }
        Self(
            list.into_iter()
                .filter_map(|(name, value)| Some((name, header::HeaderValue::from_str(&value).ok()?)))
                .collect(),
        )
    }

    /// Adds each header a response does not set itself.
    pub fn middleware(&self) -> DefaultHeaders {
        self.0.iter().fold(DefaultHeaders::new(), |m, (name, value)| {
            m.add((name.clone(), value.clone()))
        })
    }

    /// Sets each header on `res` (those it sets itself are kept).
    pub fn apply(&self, res: &mut HttpResponse) {
        for (name, value) in &self.0 {
            if !res.headers().contains_key(name) {
                res.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
}

/// The request id given to each request, readable from its extensions (and logged).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Logs one line per request: method, *path only* (queries of `/authorize`, `/callback` and
/// `/logout` carry codes and tokens, so no query is ever logged), status and time taken.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = random_token(9);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.path().to_owned();
    let res = next.call(req).await;
    let micros = started.elapsed().as_micros();
    match &res {
        Ok(res) => {
            let status = res.status().as_u16();
            if status >= 500 {
                tracing::warn!(request_id = %id, %method, %path, status, micros, "request");
            } else {
                tracing::info!(request_id = %id, %method, %path, status, micros, "request");
            }
        }
        Err(e) => tracing::warn!(request_id = %id, %method, %path, micros, error = %e, "request failed"),
    }
    res
}

/// JSON answers that end with a newline, so `curl` output does not run into the prompt.
pub trait JsonLine {
    /// Like `HttpResponseBuilder::json`, plus a trailing `\n`.
    fn json_line(&mut self, value: impl serde::Serialize) -> HttpResponse;
}

impl JsonLine for actix_web::HttpResponseBuilder {
    fn json_line(&mut self, value: impl serde::Serialize) -> HttpResponse {
        match serde_json::to_string(&value) {
            Ok(mut body) => {
                body.push('\n');
                self.content_type("application/json").body(body)
            }
            Err(e) => HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body(format!("cannot write JSON: {e}\n")),
        }
    }
}

/// A route for GET and HEAD alike: RFC 9110 §9.3.2 asks that HEAD answer wherever GET does,
/// with the same status and headers and no body (actix-web leaves the body out for HEAD).
pub fn get_or_head() -> actix_web::Route {
    use actix_web::guard;
    actix_web::web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The static files (stylesheets, scripts, icons), compiled into the binary so it runs from
/// any directory: the content type and the bytes.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    let css = "text/css; charset=utf-8";
    let js = "text/javascript; charset=utf-8";
    match name {
        "fabrikam.css" => Some((css, include_bytes!("../static/fabrikam.css"))),
        "idp.css" => Some((css, include_bytes!("../static/idp.css"))),
        "copy.js" => Some((js, include_bytes!("../static/copy.js"))),
        "demo.js" => Some((js, include_bytes!("../static/demo.js"))),
        "favicon.svg" => Some(("image/svg+xml", include_bytes!("../static/favicon.svg"))),
        "favicon.ico" => Some(("image/x-icon", include_bytes!("../static/favicon.ico"))),
        // A file, not inline: the CSP's `script-src 'self'` allows it and nothing inline.
        "passkey.js" => Some((js, include_bytes!("../static/passkey.js"))),
        _ => None,
    }
}

/// `GET /static/{name}`: an embedded file, or 404.
pub async fn static_asset(name: actix_web::web::Path<String>) -> HttpResponse {
    asset_response(&name)
}

/// `GET /favicon.ico`, which browsers ask for on their own (a 404 would be a console error).
pub async fn favicon() -> HttpResponse {
    asset_response("favicon.ico")
}

fn asset_response(name: &str) -> HttpResponse {
    match asset(name) {
        Some((content_type, body)) => HttpResponse::Ok()
            .content_type(content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .body(body),
        None => HttpResponse::NotFound()
            .content_type("text/plain")
            .body("not found"),
    }
}

/// `Strict-Transport-Security` for a site served over https (RFC 6797): a year.
pub const HSTS: (header::HeaderName, &str) = (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");

/// `Cache-Control: no-store` for pages and JSON that carry personal data or tokens.
pub const NO_STORE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-store");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token(32);
        let b = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn json_answers_end_with_a_newline() {
        let res = HttpResponse::BadRequest().json_line(serde_json::json!({"error": "x"}));
        let body = actix_web::body::to_bytes(res.into_body());
        let body = futures_util::FutureExt::now_or_never(body).unwrap().unwrap();
        assert_eq!(&body[..], b"{\"error\":\"x\"}\n");
    }

    #[test]
    fn secrets_equal_compares_content() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
