//! Test control's state: the recorded authorization requests, the back-channel logout tokens
//! sent, and the deviations waiting for the next `/authorize` or `/token`, each either for any client or scoped to one `client_id`
//! (so suites testing different applications against one provider do not take each other's).
//! The HTTP API over it is the `test_control` module, one layer up.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::config::present;
use super::keys::SignatureMode;

/// How many authorization requests are kept.
pub const KEPT_REQUESTS: usize = 50;
/// How many back-channel logouts are kept.
pub const KEPT_LOGOUTS: usize = 50;

/// A back-channel logout Fabrikam ID sent (or is sending): what test control shows, so a
/// relying party's suite can check what its receiver was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackchannelLogout {
    pub client_id: String,
    /// The client's `backchannel_logout_uri`, where the token was posted.
    pub uri: String,
    /// The logout token itself (test control only: it never appears in a log).
    pub logout_token: String,
    pub jti: String,
    pub sub: String,
    pub sid: String,
    /// When it was sent (Unix seconds, the provider's clock, as its `iat`).
    pub sent_at: i64,
    /// The receiver's HTTP status, once it answered.
    pub status: Option<u16>,
    /// Why it was not delivered (a timeout, a refused connection), once that is known.
    pub error: Option<String>,
}

/// Deviations for the next `/authorize` (`ignore_acr_values`) and the next successful `/token`
/// (claims, signature, access-token `typ`): the body of `PUT /test-control/next-token`. Each
/// is used once. With `client_id`, only that client's next request uses them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextToken {
    /// Only this client's next requests use the deviations (default: any client's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The next authorization request is treated as asking for no assurance (the tokens then
    /// honestly say password): an OP that ignores `acr_values`, as OIDC Core §3.1.2.1 allows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_acr_values: bool,
    /// Claims to set in the next ID token; `null` removes one.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub id_token_claims: Map<String, Value>,
    /// Claims to set in the next access token; `null` removes one.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub access_token_claims: Map<String, Value>,
    /// How the tokens are signed: `valid`, `wrong-key` or `none` (both tokens), or
    /// `hs256-client-secret` (the ID token MACed with the client secret; see
    /// [`SignatureMode::Hs256ClientSecret`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureMode>,
    /// The access token's JOSE `typ` instead of `at+jwt` (RFC 9068 §2.1); `null` leaves it
    /// out. Absent: `at+jwt`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_token_typ: Option<Option<String>>,
}

impl NextToken {
    fn has_token_deviation(&self) -> bool {
        !self.id_token_claims.is_empty()
            || !self.access_token_claims.is_empty()
            || self.signature.is_some()
            || self.access_token_typ.is_some()
    }

    fn is_empty(&self) -> bool {
        !self.ignore_acr_values && !self.has_token_deviation()
    }
}

/// What the next tokens from `/token` should look like.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenDeviation {
    pub id_token_claims: Map<String, Value>,
    pub access_token_claims: Map<String, Value>,
    pub signature: SignatureMode,
    /// `None`: the honest `at+jwt`; `Some(None)`: no `typ`.
    pub access_token_typ: Option<Option<String>>,
}

/// The recorded requests and the waiting deviations.
#[derive(Debug, Default)]
pub struct TestControl {
    requests: VecDeque<Map<String, Value>>,
    /// For any client.
    any: NextToken,
    /// Per `client_id`; these win over `any` for their client.
    scoped: HashMap<String, NextToken>,
    logouts: VecDeque<BackchannelLogout>,
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

    /// The recorded requests, oldest first; only `client_id`'s if given.
    pub fn requests(&self, client_id: Option<&str>) -> Vec<Map<String, Value>> {
        self.requests
            .iter()
            .filter(|p| client_id.is_none_or(|c| p.get("client_id").and_then(Value::as_str) == Some(c)))
            .cloned()
            .collect()
    }

    /// Records a back-channel logout being sent (the last 50 are kept).
    pub fn record_logout(&mut self, logout: BackchannelLogout) {
        self.logouts.push_back(logout);
        while self.logouts.len() > KEPT_LOGOUTS {
            self.logouts.pop_front();
        }
    }

    /// Records the outcome of the logout whose token has `jti`.
    pub fn logout_done(&mut self, jti: &str, status: Option<u16>, error: Option<String>) {
        if let Some(logout) = self.logouts.iter_mut().find(|l| l.jti == jti) {
            logout.status = status;
            logout.error = error;
        }
    }

    /// The back-channel logouts sent, oldest first; only `client_id`'s if given.
    pub fn logouts(&self, client_id: Option<&str>) -> Vec<BackchannelLogout> {
        self.logouts
            .iter()
            .filter(|l| client_id.is_none_or(|c| l.client_id == c))
            .cloned()
            .collect()
    }

    /// Replaces the deviations for `next.client_id` (or for any client).
    pub fn set(&mut self, next: NextToken) {
        match next.client_id.clone() {
            Some(client) => {
                self.scoped.insert(client, next);
            }
            None => self.any = next,
        }
    }

    /// Drops the deviations not yet used: `client_id`'s, or all of them.
    pub fn clear(&mut self, client_id: Option<&str>) {
        match client_id {
            Some(client) => {
                self.scoped.remove(client);
            }
            None => {
                self.any = NextToken::default();
                self.scoped.clear();
            }
        }
    }

    /// The deviations `client_id`'s next request uses: its own if set, else those for any.
    fn next_for(&mut self, client_id: &str) -> &mut NextToken {
        match self.scoped.get(client_id) {
            Some(_) => self.scoped.get_mut(client_id).expect("just found"),
            None => &mut self.any,
        }
    }

    fn tidy(&mut self, client_id: &str) {
        if self.scoped.get(client_id).is_some_and(NextToken::is_empty) {
            self.scoped.remove(client_id);
        }
    }

    /// Consumed by `client_id`'s next `/authorize`.
    pub fn take_ignore_acr_values(&mut self, client_id: &str) -> bool {
        let taken = std::mem::take(&mut self.next_for(client_id).ignore_acr_values);
        self.tidy(client_id);
        taken
    }

    /// Consumed by `client_id`'s next successful `/token`.
    pub fn take_token_deviation(&mut self, client_id: &str) -> TokenDeviation {
        let next = self.next_for(client_id);
        let taken = TokenDeviation {
            id_token_claims: std::mem::take(&mut next.id_token_claims),
            access_token_claims: std::mem::take(&mut next.access_token_claims),
            signature: next.signature.take().unwrap_or_default(),
            access_token_typ: next.access_token_typ.take(),
        };
        self.tidy(client_id);
        taken
    }

    /// The signature mode `client_id`'s next tokens will use (to ready its key first).
    pub fn next_signature(&self, client_id: &str) -> SignatureMode {
        self.scoped
            .get(client_id)
            .unwrap_or(&self.any)
            .signature
            .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert_eq!(tc.requests(None).len(), 50);
        assert_eq!(tc.requests(None)[0]["n"], "10");
        tc.set(NextToken {
            ignore_acr_values: true,
            signature: Some(SignatureMode::None),
            ..NextToken::default()
        });
        assert!(tc.take_ignore_acr_values("a"));
        assert!(!tc.take_ignore_acr_values("a"));
        assert_eq!(tc.take_token_deviation("b").signature, SignatureMode::None);
        assert_eq!(tc.take_token_deviation("b").signature, SignatureMode::Valid);
    }

    #[test]
    fn scoped_deviations_go_to_their_client_only_and_win_over_unscoped_ones() {
        let mut tc = TestControl::default();
        tc.set(NextToken {
            client_id: Some("a".into()),
            signature: Some(SignatureMode::WrongKey),
            ..NextToken::default()
        });
        tc.set(NextToken {
            signature: Some(SignatureMode::None),
            ..NextToken::default()
        });
        assert_eq!(tc.next_signature("a"), SignatureMode::WrongKey);
        assert_eq!(tc.take_token_deviation("a").signature, SignatureMode::WrongKey);
        // a's own is used up: a now shares the unscoped one, which b may take first.
        assert_eq!(tc.take_token_deviation("b").signature, SignatureMode::None);
        assert_eq!(tc.take_token_deviation("a").signature, SignatureMode::Valid);
        tc.set(NextToken {
            client_id: Some("a".into()),
            ignore_acr_values: true,
            ..NextToken::default()
        });
        tc.clear(Some("b"));
        assert!(tc.take_ignore_acr_values("a"), "clearing b leaves a's");
        tc.set(NextToken {
            client_id: Some("a".into()),
            ignore_acr_values: true,
            ..NextToken::default()
        });
        tc.clear(None);
        assert!(!tc.take_ignore_acr_values("a"), "clearing all clears scoped ones");
        tc.record(&[("client_id".into(), "a".into())]);
        tc.record(&[("client_id".into(), "b".into())]);
        assert_eq!(tc.requests(Some("b")).len(), 1);
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
        // And it survives a round trip (the Rust API sends it as JSON).
        let next = NextToken {
            access_token_typ: Some(None),
            ..NextToken::default()
        };
        let back: NextToken = serde_json::from_value(serde_json::to_value(&next).unwrap()).unwrap();
        assert_eq!(back, next);
    }
}
