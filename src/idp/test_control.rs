//! The test-control API (`--test-control`, never in the demo): read the last authorization
//! requests, shift the OP's clock, and make the next tokens deviate, so relying parties can
//! prove they refuse bad tokens.
//!
//! - `GET /test-control/authorize-requests`: `[{"params": {...}}]`, the last 50, oldest first.
//! - `PUT /test-control/clock` `{"offset_secs": i64}`: shifts what the OP issues.
//! - `PUT /test-control/next-token` (every field optional; unknown fields are refused; each
//!   deviation is used once, by the next `/authorize` or successful `/token`):
//!   - `"ignore_acr_values": true`: the next authorization request is treated as asking for
//!     no assurance (the tokens honestly say password);
//!   - `"id_token_claims": {...}` / `"access_token_claims": {...}`: claims to set; `null`
//!     removes one;
//!   - `"signature": "valid" | "wrong-key" | "none"`: how both tokens are signed;
//!   - `"access_token_typ": "JWT"`: the access token's JOSE header `typ` instead of
//!     `at+jwt` (RFC 9068 §2.1), so a resource server can prove it refuses other types
//!     (§4); `"access_token_typ": null` leaves `typ` out.
//! - `DELETE /test-control/next-token`: drops deviations not yet used.
//! - `POST /test-control/reset`: no deviation, no clock offset (the request log stays).

use std::collections::VecDeque;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::keys::SignatureMode;
use super::state::Idp;

/// How many authorization requests are kept.
pub const KEPT_REQUESTS: usize = 50;

/// Deviations for the next `/authorize` (`ignore_acr_values`) and the next `/token`
/// (claims and signature).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextToken {
    #[serde(default)]
    pub ignore_acr_values: bool,
    #[serde(default)]
    pub id_token_claims: Map<String, Value>,
    #[serde(default)]
    pub access_token_claims: Map<String, Value>,
    #[serde(default)]
    pub signature: Option<SignatureMode>,
    /// Absent: `at+jwt`; a string: that `typ`; `null`: no `typ` at all.
    #[serde(default, deserialize_with = "present")]
    pub access_token_typ: Option<Option<String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// What the next tokens from `/token` should look like.
#[derive(Debug, Clone, Default)]
pub struct TokenDeviation {
    pub id_token_claims: Map<String, Value>,
    pub access_token_claims: Map<String, Value>,
    pub signature: SignatureMode,
    /// `None`: the honest `at+jwt`; `Some(None)`: no `typ`.
    pub access_token_typ: Option<Option<String>>,
}

#[derive(Debug, Default)]
pub struct TestControl {
    requests: VecDeque<Map<String, Value>>,
    pub offset_secs: i64,
    next: NextToken,
}

impl TestControl {
    /// Records an authorization request's parameters (oldest first, the last 50).
    pub fn record(&mut self, params: &[(String, String)]) {
        let map = params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        self.requests.push_back(map);
        while self.requests.len() > KEPT_REQUESTS {
            self.requests.pop_front();
        }
    }

    /// Consumed by the next `/authorize`.
    pub fn take_ignore_acr_values(&mut self) -> bool {
        std::mem::take(&mut self.next.ignore_acr_values)
    }

    /// Consumed by the next successful `/token`.
    pub fn take_token_deviation(&mut self) -> TokenDeviation {
        TokenDeviation {
            id_token_claims: std::mem::take(&mut self.next.id_token_claims),
            access_token_claims: std::mem::take(&mut self.next.access_token_claims),
            signature: self.next.signature.take().unwrap_or_default(),
            access_token_typ: self.next.access_token_typ.take(),
        }
    }
}

/// Merges `overrides` into `claims`; a JSON `null` removes the claim.
pub fn merge_claims(claims: &mut Map<String, Value>, overrides: &Map<String, Value>) {
    for (k, v) in overrides {
        if v.is_null() {
            claims.remove(k);
        } else {
            claims.insert(k.clone(), v.clone());
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    use super::paths;
    cfg.route(paths::TC_AUTHORIZE_REQUESTS, web::get().to(authorize_requests))
        .route(paths::TC_CLOCK, web::put().to(set_clock))
        .route(paths::TC_NEXT_TOKEN, web::put().to(set_next_token))
        .route(paths::TC_NEXT_TOKEN, web::delete().to(clear_next_token))
        .route(paths::TC_RESET, web::post().to(reset));
}

/// `GET /test-control/authorize-requests`: `[{"params": {...}}]`, oldest first.
async fn authorize_requests(idp: web::Data<Idp>) -> HttpResponse {
    let list: Vec<Value> = idp
        .control()
        .requests
        .iter()
        .map(|p| json!({ "params": p }))
        .collect();
    HttpResponse::Ok().json(list)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Clock {
    offset_secs: i64,
}

/// Offsets beyond a century are refused, so no time arithmetic can overflow.
const MAX_OFFSET_SECS: i64 = 100 * 366 * 24 * 3600;

/// `PUT /test-control/clock` `{"offset_secs": i64}`.
async fn set_clock(idp: web::Data<Idp>, body: web::Json<Clock>) -> HttpResponse {
    if body.offset_secs.abs() > MAX_OFFSET_SECS {
        return HttpResponse::BadRequest().json(json!({
            "error": "invalid_request", "error_description": "offset_secs must be within ±100 years",
        }));
    }
    idp.control().offset_secs = body.offset_secs;
    HttpResponse::NoContent().finish()
}

/// `PUT /test-control/next-token`: replaces the pending deviations.
async fn set_next_token(idp: web::Data<Idp>, body: web::Json<NextToken>) -> HttpResponse {
    idp.control().next = body.into_inner();
    HttpResponse::NoContent().finish()
}

async fn clear_next_token(idp: web::Data<Idp>) -> HttpResponse {
    idp.control().next = NextToken::default();
    HttpResponse::NoContent().finish()
}

/// `POST /test-control/reset`: no deviation, no clock offset (the request log stays).
async fn reset(idp: web::Data<Idp>) -> HttpResponse {
    let mut control = idp.control();
    control.next = NextToken::default();
    control.offset_secs = 0;
    HttpResponse::NoContent().finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_removes_and_values_override() {
        let mut claims = Map::new();
        claims.insert("aud".into(), json!("a"));
        claims.insert("nonce".into(), json!("n"));
        let overrides = json!({"aud": "evil", "nonce": null, "extra": 1});
        merge_claims(&mut claims, overrides.as_object().unwrap());
        assert_eq!(Value::Object(claims), json!({"aud": "evil", "extra": 1}));
    }

    #[test]
    fn only_the_last_fifty_requests_are_kept_and_deviations_are_used_once() {
        let mut tc = TestControl::default();
        for i in 0..60 {
            tc.record(&[("n".into(), i.to_string())]);
        }
        assert_eq!(tc.requests.len(), 50);
        assert_eq!(tc.requests[0]["n"], "10");
        tc.next.ignore_acr_values = true;
        tc.next.signature = Some(SignatureMode::None);
        assert!(tc.take_ignore_acr_values());
        assert!(!tc.take_ignore_acr_values());
        assert_eq!(tc.take_token_deviation().signature, SignatureMode::None);
        assert_eq!(tc.take_token_deviation().signature, SignatureMode::Valid);
    }

    #[test]
    fn access_token_typ_tells_null_from_absent() {
        let parse = |v: Value| serde_json::from_value::<NextToken>(v).unwrap().access_token_typ;
        assert_eq!(parse(json!({})), None);
        assert_eq!(
            parse(json!({"access_token_typ": "JWT"})),
            Some(Some("JWT".into()))
        );
        assert_eq!(parse(json!({"access_token_typ": null})), Some(None));
        assert!(serde_json::from_value::<NextToken>(json!({"access_token_typ": 1})).is_err());
    }
}
