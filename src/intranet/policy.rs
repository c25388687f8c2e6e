//! The step-up policy: a pure decision from what the session knows about the login
//! (`acr`, `amr`, `auth_time`, roles) and what a page requires. No I/O, no clock of its own.
//!
//! The extractors in [`super::extractors`] turn a [`Decision`] into a response; this module
//! only decides, so every branch is unit-tested here.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What the relying party knows about the current login, taken from a validated ID token
/// (or an RFC 9068 access token for the API). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Authentication Context Class Reference (OIDC Core §2).
    pub acr: Option<String>,
    /// Authentication Methods References (OIDC Core §2, values from RFC 8176).
    pub amr: Vec<String>,
    /// When the user last actively authenticated (OIDC Core §2), not when the token was issued.
    pub auth_time: Option<i64>,
    /// Microsoft Entra's authentication context ids satisfied (`acrs`, not a standard claim).
    #[serde(default)]
    pub acrs: Vec<String>,
    pub roles: Vec<String>,
    /// When this relying party accepted the token.
    pub received_at: i64,
    /// The requirement whose step-up produced this token, if it came back from one.
    pub step_up_for: Option<String>,
}

/// What a page demands of the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// A short stable name, e.g. `salary`; recorded with a step-up to detect a failed one.
    pub id: String,
    /// Any of these `acr` values satisfies the requirement (and they are requested on step-up).
    pub acr_values: Vec<String>,
    /// Further `acr` values that satisfy it without being requested (stronger classes, or a
    /// provider's other spelling of the same level, as Keycloak's level numbers).
    pub also_accept_acr: Vec<String>,
    /// An `amr` value that also satisfies it (Auth0 reports MFA as `amr: ["mfa"]`).
    pub accept_amr: Option<String>,
    /// An Entra authentication context id: requested through the `claims` parameter and
    /// satisfied when the token's `acrs` claim contains it.
    pub auth_context: Option<String>,
    /// How long ago the authentication may have happened; `None` = any age.
    pub max_age: Option<Duration>,
    /// Every one of these roles is needed.
    pub roles: Vec<String>,
    /// Tolerated difference between our clock and the provider's.
    pub clock_skew: Duration,
}

/// The parameters of a step-up request to the provider (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpRequest {
    pub acr_values: Vec<String>,
    pub max_age: Option<u64>,
    /// Entra: ask for this authentication context (`claims` → `acrs`).
    pub auth_context: Option<String>,
}

/// Why a login does not satisfy a requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// Neither an accepted `acr` nor the accepted `amr`.
    WeakAuthentication,
    /// Strong enough, but `auth_time` is older than `max_age`.
    Stale,
    /// A `max_age` applies and the token has no `auth_time` (OIDC Core §3.1.2.1 makes it
    /// REQUIRED when `max_age` was sent), so freshness cannot be shown.
    MissingAuthTime,
    /// `auth_time` lies in the future beyond the allowed skew: not believable.
    FutureAuthTime,
}

/// The policy's verdict. The extractor must act on it.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; the requirement holds until `valid_until` (Unix seconds), if it expires.
    Allow { valid_until: Option<i64> },
    /// Send the user to the provider for a stronger or fresher login.
    StepUp {
        request: StepUpRequest,
        shortfall: Shortfall,
    },
    /// A role is missing: no login, however strong, would help (authorization is not
    /// authentication), so do not step up.
    Forbidden { missing_role: String },
    /// This token is the provider's answer to a step-up for this requirement and it was not
    /// good enough even when it arrived. Stepping up again would loop.
    StepUpFailed {
        request: StepUpRequest,
        shortfall: Shortfall,
    },
}

impl Requirement {
    fn step_up_request(&self) -> StepUpRequest {
        StepUpRequest {
            acr_values: self.acr_values.clone(),
            max_age: self.max_age.map(|d| d.as_secs()),
            auth_context: self.auth_context.clone(),
        }
    }

    /// Whether `auth` meets the strength part (acr or amr), regardless of age.
    pub fn is_strong(&self, auth: &AuthState) -> bool {
        // acr: one of the accepted classes (OIDC Core §3.1.3.7 rule 12: the RP checks the acr
        // that came back; §5.5.1.1: the OP may have ignored acr_values).
        let acr_ok = auth.acr.as_ref().is_some_and(|acr| {
            self.acr_values
                .iter()
                .chain(&self.also_accept_acr)
                .any(|v| v == acr)
        });
        let acrs_ok = self
            .auth_context
            .as_ref()
            .is_some_and(|ctx| auth.acrs.contains(ctx));
        // amr: the accepted method must be *present*. (The seed's sample had this inverted and
        // refused tokens whose amr contained "mfa".) RFC 8176 §2: "mfa" = multiple factors.
        let amr_ok = self
            .accept_amr
            .as_ref()
            .is_some_and(|want| auth.amr.iter().any(|m| m == want));
        acr_ok || acrs_ok || amr_ok
    }

    /// Checks strength and freshness at `now`; `Ok(valid_until)` or the shortfall.
    fn check(&self, auth: &AuthState, now: i64) -> Result<Option<i64>, Shortfall> {
        if !self.is_strong(auth) {
            return Err(Shortfall::WeakAuthentication);
        }
        let Some(max_age) = self.max_age else {
            return Ok(None);
        };
        let auth_time = auth.auth_time.ok_or(Shortfall::MissingAuthTime)?;
        let skew = self.clock_skew.as_secs() as i64;
        if auth_time > now + skew {
            return Err(Shortfall::FutureAuthTime);
        }
        // OIDC Core §3.1.3.7 rule 13: with max_age, check auth_time and re-authenticate when
        // too much time has elapsed.
        let valid_until = auth_time
            .saturating_add(max_age.as_secs() as i64)
            .saturating_add(skew);
        if now > valid_until {
            return Err(Shortfall::Stale);
        }
        Ok(Some(valid_until))
    }
}

/// Decides whether `auth` may see a page that demands `req`, at time `now` (Unix seconds).
pub fn evaluate(auth: &AuthState, req: &Requirement, now: i64) -> Decision {
    if let Some(missing) = req.roles.iter().find(|r| !auth.roles.contains(r)) {
        return Decision::Forbidden {
            missing_role: missing.clone(),
        };
    }
    match req.check(auth, now) {
        Ok(valid_until) => Decision::Allow { valid_until },
        Err(shortfall) => {
            // If this very token answered a step-up for this requirement and fell short *on
            // arrival*, the provider did not (or could not) do what we asked: asking again
            // would loop. A token that was good on arrival and has merely aged is stepped up.
            let answered_step_up = auth.step_up_for.as_deref() == Some(req.id.as_str());
            if answered_step_up && req.check(auth, auth.received_at).is_err() {
                Decision::StepUpFailed {
                    request: req.step_up_request(),
                    shortfall,
                }
            } else {
                Decision::StepUp {
                    request: req.step_up_request(),
                    shortfall,
                }
            }
        }
    }
}

impl AuthState {
    /// Reads the login from validated token claims. Tolerates what real providers send:
    /// `amr` as an array (RFC 8176) or, wrongly, as one string; roles as an array or a string;
    /// a missing `auth_time`. Returns `None` without a `sub`.
    pub fn from_claims(claims: &Map<String, Value>, roles_claim: &str, received_at: i64) -> Option<Self> {
        let string = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            subject: string("sub")?,
            name: string("name").or_else(|| string("preferred_username")),
            email: string("email"),
            acr: string("acr"),
            amr: string_list(claims.get("amr")),
            acrs: string_list(claims.get("acrs")),
            auth_time: claims
                .get("auth_time")
                .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))),
            roles: string_list(claims.get(roles_claim)),
            received_at,
            step_up_for: None,
        })
    }

    /// A display name: the name claim, else the subject.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.subject)
    }
}

/// An array of strings, or one string, as a list; anything else as empty.
fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
    const PWD: &str = "urn:fabrikam:acr:password";
    const NOW: i64 = 1_800_000_000;

    fn salary() -> Requirement {
        Requirement {
            id: "salary".into(),
            acr_values: vec![MFA.into()],
            also_accept_acr: vec![],
            accept_amr: Some("mfa".into()),
            auth_context: None,
            max_age: Some(Duration::from_secs(600)),
            roles: vec!["hr".into()],
            clock_skew: Duration::from_secs(30),
        }
    }

    fn auth(claims: Value) -> AuthState {
        let Value::Object(map) = claims else {
            panic!("claims must be an object")
        };
        AuthState::from_claims(&map, "roles", NOW).expect("test claims have a sub")
    }

    fn alice(acr: &str, amr: Value, auth_time: i64) -> AuthState {
        auth(json!({"sub": "alice", "acr": acr, "amr": amr, "auth_time": auth_time, "roles": ["hr"]}))
    }

    fn step_up(shortfall: Shortfall) -> Decision {
        Decision::StepUp {
            request: StepUpRequest {
                acr_values: vec![MFA.into()],
                max_age: Some(600),
                auth_context: None,
            },
            shortfall,
        }
    }

    #[test]
    fn the_policy_table() {
        let req = salary();
        let cases: Vec<(&str, AuthState, Decision)> = vec![
            (
                "mfa acr, fresh",
                alice(MFA, json!(["pwd", "otp", "mfa"]), NOW - 60),
                Decision::Allow {
                    valid_until: Some(NOW - 60 + 600 + 30),
                },
            ),
            (
                "amr mfa alone satisfies (the seed's check inverted)",
                alice(PWD, json!(["pwd", "mfa"]), NOW),
                Decision::Allow {
                    valid_until: Some(NOW + 630),
                },
            ),
            (
                "password only",
                alice(PWD, json!(["pwd"]), NOW),
                step_up(Shortfall::WeakAuthentication),
            ),
            (
                "otp without mfa is not enough",
                alice(PWD, json!(["pwd", "otp"]), NOW),
                step_up(Shortfall::WeakAuthentication),
            ),
            (
                "no acr, no amr",
                auth(json!({"sub": "alice", "roles": ["hr"], "auth_time": NOW})),
                step_up(Shortfall::WeakAuthentication),
            ),
            (
                "mfa but stale",
                alice(MFA, json!(["mfa"]), NOW - 631),
                step_up(Shortfall::Stale),
            ),
            (
                "mfa at the edge of max_age + skew",
                alice(MFA, json!(["mfa"]), NOW - 630),
                Decision::Allow {
                    valid_until: Some(NOW),
                },
            ),
            (
                "mfa without auth_time",
                auth(json!({"sub": "a", "acr": MFA, "roles": ["hr"]})),
                step_up(Shortfall::MissingAuthTime),
            ),
            (
                "auth_time in the future beyond skew",
                alice(MFA, json!(["mfa"]), NOW + 31),
                step_up(Shortfall::FutureAuthTime),
            ),
            (
                "auth_time in the future within skew",
                alice(MFA, json!(["mfa"]), NOW + 30),
                Decision::Allow {
                    valid_until: Some(NOW + 660),
                },
            ),
            (
                "amr as a string instead of an array",
                alice(PWD, json!("pwd mfa"), NOW),
                Decision::Allow {
                    valid_until: Some(NOW + 630),
                },
            ),
            (
                "wrong role, even with fresh mfa",
                auth(json!({"sub": "bob", "acr": MFA, "amr": ["mfa"], "auth_time": NOW, "roles": ["sales"]})),
                Decision::Forbidden {
                    missing_role: "hr".into(),
                },
            ),
            (
                "no roles claim, weak: forbidden, not step-up",
                auth(json!({"sub": "x", "acr": PWD})),
                Decision::Forbidden {
                    missing_role: "hr".into(),
                },
            ),
        ];
        for (name, auth, want) in cases {
            assert_eq!(evaluate(&auth, &req, NOW), want, "case: {name}");
        }
    }

    #[test]
    fn acr_only_when_no_amr_is_accepted() {
        let req = Requirement {
            accept_amr: None,
            ..salary()
        };
        assert_eq!(
            evaluate(&alice(PWD, json!(["mfa"]), NOW), &req, NOW),
            step_up(Shortfall::WeakAuthentication)
        );
        assert!(matches!(
            evaluate(&alice(MFA, json!([]), NOW), &req, NOW),
            Decision::Allow { .. }
        ));
    }

    #[test]
    fn no_max_age_means_any_age_and_no_expiry() {
        let req = Requirement {
            max_age: None,
            ..salary()
        };
        let old = alice(MFA, json!(["mfa"]), NOW - 86_400 * 365);
        assert_eq!(evaluate(&old, &req, NOW), Decision::Allow { valid_until: None });
    }

    #[test]
    fn a_weak_answer_to_our_step_up_is_a_failure_not_another_step_up() {
        let mut weak = alice(PWD, json!(["pwd"]), NOW);
        weak.step_up_for = Some("salary".into());
        assert!(matches!(
            evaluate(&weak, &salary(), NOW),
            Decision::StepUpFailed {
                shortfall: Shortfall::WeakAuthentication,
                ..
            }
        ));
    }

    #[test]
    fn a_stale_answer_to_our_step_up_is_a_failure() {
        // The provider ignored max_age and returned an old multi-factor login.
        let mut stale = alice(MFA, json!(["mfa"]), NOW - 3600);
        stale.step_up_for = Some("salary".into());
        assert!(matches!(
            evaluate(&stale, &salary(), NOW),
            Decision::StepUpFailed {
                shortfall: Shortfall::Stale,
                ..
            }
        ));
    }

    #[test]
    fn a_good_step_up_that_later_ages_steps_up_again() {
        let mut good = alice(MFA, json!(["mfa"]), NOW);
        good.step_up_for = Some("salary".into());
        assert!(matches!(
            evaluate(&good, &salary(), NOW + 10),
            Decision::Allow { .. }
        ));
        assert_eq!(evaluate(&good, &salary(), NOW + 700), step_up(Shortfall::Stale));
    }

    #[test]
    fn a_step_up_for_another_requirement_does_not_count_as_failed() {
        let mut weak = alice(PWD, json!(["pwd"]), NOW);
        weak.step_up_for = Some("audit".into());
        assert_eq!(
            evaluate(&weak, &salary(), NOW),
            step_up(Shortfall::WeakAuthentication)
        );
    }

    #[test]
    fn claims_parsing_is_tolerant_and_requires_sub() {
        let Value::Object(no_sub) = json!({"acr": MFA}) else {
            unreachable!()
        };
        assert_eq!(AuthState::from_claims(&no_sub, "roles", NOW), None);
        let a = auth(json!({"sub": "a", "amr": 5, "roles": "hr admin", "auth_time": 1.5e9}));
        assert!(a.amr.is_empty());
        assert_eq!(a.roles, vec!["hr", "admin"]);
        assert_eq!(a.auth_time, Some(1_500_000_000));
        let Value::Object(custom) = json!({"sub": "a", "groups": ["hr"]}) else {
            unreachable!()
        };
        assert_eq!(
            AuthState::from_claims(&custom, "groups", NOW).unwrap().roles,
            vec!["hr"]
        );
    }
}
