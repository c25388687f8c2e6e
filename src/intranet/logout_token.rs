//! Logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4), validated as §2.6 says: a JWS
//! signed with one of the provider's keys in an algorithm it signs ID tokens with (never
//! `none` or HMAC), `typ` `logout+jwt` when present, `iss` the issuer, `aud` our client id,
//! `iat` (and `exp`, when present) with the one clock skew, a `jti`, the back-channel-logout
//! member in `events`, a `sub` or a `sid`, and **no** `nonce` (§4.1: so an ID token can never
//! pass for one). A `jti` is accepted once ([`SeenTokens`]).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::oidc::{Oidc, OidcError};

/// The `events` member that makes a JWT a logout token (§2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// A logout token older than this (by its `iat`) is refused, so a `jti` need be remembered
/// only this long (§2.6 step 8; the spec recommends lifetimes of two minutes or less).
pub const MAX_AGE_SECS: i64 = 600;
/// `jti`s remembered at most; the oldest is forgotten first (a replay of it is then refused
/// by its age within the window anyway, unless the provider sends more than this per window).
const MAX_SEEN: usize = 10_000;
/// Longest `sub`, `sid` or `jti` accepted.
const MAX_CLAIM_LEN: usize = 255;

/// What a valid logout token asks for: end the sessions of `sid` (of `sub` too, if given), or
/// with no `sid` all of `sub`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub jti: String,
    pub iat: i64,
}

/// Why a logout token was refused (each answered `400`, §2.8).
#[derive(Debug, thiserror::Error)]
pub enum LogoutTokenError {
    #[error("invalid logout token: {0}")]
    Invalid(String),
    /// The provider's keys could not be fetched to check it.
    #[error("cannot check the logout token: {0}")]
    Unavailable(#[from] OidcError),
}

fn invalid(why: impl Into<String>) -> LogoutTokenError {
    LogoutTokenError::Invalid(why.into())
}

/// Validates `token` at `now` (see the module docs; the `jti` is the caller's, through
/// [`SeenTokens`]).
pub async fn validate(oidc: &Oidc, token: &str, now: i64) -> Result<LogoutRequest, LogoutTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(format!("header: {e}")))?;
    if let Some(typ) = header.typ.as_deref() {
        let typ = typ.to_ascii_lowercase();
        if typ != "logout+jwt" && typ != "application/logout+jwt" {
            return Err(invalid(format!("typ is {typ:?}, not logout+jwt")));
        }
    }
    let provider = oidc.provider().await?;
    // §2.6 step 2: the algorithms the provider signs ID tokens with (discovery), asymmetric.
    if !provider.jwt_algorithms().contains(&header.alg) || is_symmetric(header.alg) {
        return Err(invalid(format!(
            "alg {:?} is not one the provider signs with",
            header.alg
        )));
    }
    let keys = match header.kid.as_deref() {
        Some(kid) => match oidc.jwt_key(kid).await? {
            Some(key) => vec![key],
            None => return Err(invalid("no key of the provider has its kid")),
        },
        // No kid: any of the provider's keys may have signed it.
        None => provider.keys.current().by_kid.values().cloned().collect(),
    };
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[oidc.issuer()]);
    validation.set_audience(&[oidc.client_id()]);
    validation.set_required_spec_claims(&["iss", "aud"]);
    // Times are checked below against the intranet's one clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let claims = keys
        .iter()
        .find_map(|key| jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation).ok())
        .ok_or_else(|| invalid("signature, iss or aud"))?
        .claims;
    check_claims(
        &claims,
        now,
        i64::try_from(oidc.clock_skew().as_secs()).unwrap_or(0),
    )
}

fn is_symmetric(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// §2.4 and §2.6 steps 3–7 on signed, addressed claims.
fn check_claims(claims: &Map<String, Value>, now: i64, skew: i64) -> Result<LogoutRequest, LogoutTokenError> {
    let number = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| invalid(format!("{name} is not a number"))),
    };
    let text = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_CLAIM_LEN => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{name} is not a short string"))),
    };
    let iat = number("iat")?.ok_or_else(|| invalid("no iat"))?;
    if iat > now.saturating_add(skew) {
        return Err(invalid("issued in the future"));
    }
    if iat < now.saturating_sub(MAX_AGE_SECS + skew) {
        return Err(invalid("issued too long ago"));
    }
    if let Some(exp) = number("exp")?
        && now > exp.saturating_add(skew)
    {
        return Err(invalid("expired"));
    }
    let jti = text("jti")?.ok_or_else(|| invalid("no jti"))?;
    // §2.4: events has the back-channel-logout member, whose value is a JSON object.
    let is_logout = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT))
        .is_some_and(Value::is_object);
    if !is_logout {
        return Err(invalid("events has no back-channel logout member"));
    }
    // §2.4: a nonce MUST NOT be present (an ID token is never a logout token).
    if claims.contains_key("nonce") {
        return Err(invalid("a logout token has no nonce"));
    }
    let (sub, sid) = (text("sub")?, text("sid")?);
    if sub.is_none() && sid.is_none() {
        return Err(invalid("neither sub nor sid"));
    }
    Ok(LogoutRequest { sub, sid, jti, iat })
}

/// The `jti`s of logout tokens already accepted (§2.6 step 8), for [`MAX_AGE_SECS`] and a
/// skew, bounded in number.
#[derive(Default)]
pub struct SeenTokens {
    seen: Mutex<Seen>,
}

/// The `jti`s, and the same in the order they came, with when.
type Seen = (HashSet<String>, VecDeque<(String, i64)>);

impl SeenTokens {
    /// Claims `jti` for one use at `now`: `false` if it was used before.
    pub fn claim(&self, jti: &str, now: i64) -> bool {
        let mut guard = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *guard;
        let horizon = now - 2 * MAX_AGE_SECS;
        while let Some((old, at)) = order.front()
            && (*at < horizon || order.len() >= MAX_SEEN)
        {
            map.remove(old);
            order.pop_front();
        }
        if !map.insert(jti.to_owned()) {
            return false;
        }
        order.push_back((jti.to_owned(), now));
        true
    }

    /// Gives `jti` back (the logout it asked for could not be done: the provider may retry).
    pub fn release(&self, jti: &str) {
        let mut guard = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.remove(jti);
        guard.1.retain(|(j, _)| j != jti);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 2_000_000_000;

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({
            "iss": "https://op", "aud": "rp", "iat": NOW, "jti": "j1", "sid": "s1",
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base.as_object().unwrap().clone()
    }

    #[test]
    fn the_claims_of_a_logout_token_are_checked_as_section_2_6_says() {
        let ok = check_claims(&claims(json!({})), NOW, 30).unwrap();
        assert_eq!(
            (ok.sid.as_deref(), ok.sub, ok.jti.as_str()),
            (Some("s1"), None, "j1")
        );
        assert!(check_claims(&claims(json!({"sid": null, "sub": "alice"})), NOW, 30).is_ok());
        assert!(
            check_claims(&claims(json!({"iat": NOW + 30, "exp": NOW - 30})), NOW, 30).is_ok(),
            "within skew"
        );
        for (bad, why) in [
            (json!({"iat": null}), "no iat"),
            (json!({"iat": NOW + 31}), "future"),
            (json!({"iat": NOW - MAX_AGE_SECS - 31}), "too old"),
            (json!({"exp": NOW - 31}), "expired"),
            (json!({"jti": null}), "no jti"),
            (json!({"jti": ""}), "empty jti"),
            (json!({"events": null}), "no events"),
            (json!({"events": {"other": {}}}), "no member"),
            (
                json!({"events": {BACKCHANNEL_LOGOUT_EVENT: true}}),
                "member not an object",
            ),
            (json!({"nonce": "n"}), "nonce"),
            (json!({"sid": null}), "neither sub nor sid"),
            (json!({"sid": 7}), "sid not a string"),
            (json!({"sub": "x".repeat(300)}), "sub too long"),
        ] {
            assert!(check_claims(&claims(bad), NOW, 30).is_err(), "{why}");
        }
    }

    #[test]
    fn a_jti_is_accepted_once_and_the_table_stays_bounded() {
        let seen = SeenTokens::default();
        assert!(seen.claim("a", NOW));
        assert!(!seen.claim("a", NOW + 1), "replayed");
        seen.release("a");
        assert!(seen.claim("a", NOW + 2), "released after a failed logout");
        for i in 0..(MAX_SEEN + 10) {
            seen.claim(&format!("j{i}"), NOW);
        }
        let guard = seen.seen.lock().unwrap();
        assert!(guard.0.len() <= MAX_SEEN && guard.1.len() <= MAX_SEEN);
    }
}
