//! The intranet's HTTP client for the provider: no redirects (SSRF; openidconnect's advice),
//! a timeout on every call (`OIDC_TIMEOUT_SECS`, connection included), and a cap on every
//! body it reads, so a provider that never answers or answers without end (or whoever answers
//! in its name) costs a bounded wait and bounded memory.

use std::time::Duration;

use openidconnect::{HttpRequest, HttpResponse};

/// Why a call to the provider failed, in words for the log (never a secret: URLs here are
/// the provider's public endpoints).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// The client: redirects off, `timeout` for the whole exchange (body included), connecting
/// within `timeout` too (at most 5 s).
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .build()
}

/// `GET url` for JSON, refusing an answer that is not 2xx or longer than `cap` bytes.
/// `what` names the document in errors ("the JWKS").
pub async fn get_json(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    cap: usize,
) -> Result<Vec<u8>, FetchError> {
    let fail = |why: String| FetchError(format!("{what} at {url}: {why}"));
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| fail(error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(fail(format!("answered {}", response.status())));
    }
    read_capped(response, cap).await.map_err(fail)
}

/// Reads a body, stopping as soon as it passes `cap` bytes (a `Content-Length` over it is
/// refused before reading anything).
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    let too_large = || format!("the answer is larger than {} KiB", cap / 1024);
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Sends an `oauth2`/`openidconnect` request (the token endpoint's) with `http`, reading at
/// most `cap` bytes of the answer: use it as the `AsyncHttpClient` of `request_async`.
pub async fn send(
    http: &reqwest::Client,
    request: HttpRequest,
    cap: usize,
) -> Result<HttpResponse, FetchError> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| FetchError(error_chain(&e)))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_capped(response, cap).await.map_err(FetchError)?;
    let mut answer = HttpResponse::new(body);
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

/// An error and its sources on one line, for the log.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
