//! The step-up decision: [`evaluate`], pure (no I/O, no clock of its own), its verdict
//! [`Decision`] and the [`Shortfall`] it names.

use std::fmt;

use crate::auth_state::AuthState;
use crate::requirement::{Requirement, StepUpRequest};

/// Why a login does not satisfy a requirement. `#[non_exhaustive]`, like the crate's other
/// reasons and errors: a later version may tell more reasons apart, so a `match` on it needs a
/// wildcard arm (a message for "another shortfall" is harmless; compare [`Decision`]).
///
/// ```
/// use actix_web_stepup::Shortfall;
///
/// assert_eq!(Shortfall::Stale.to_string(), "too old");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Shortfall {
    /// Neither an accepted `acr`, nor the `acrs` context, nor the accepted `amr`.
    WeakAuthentication,
    /// Strong enough, but `auth_time` is older than `max_age` (plus the clock skew).
    Stale,
    /// A `max_age` applies and the token has no `auth_time` (OIDC Core §3.1.2.1 makes it
    /// REQUIRED when `max_age` was sent), so freshness cannot be shown.
    MissingAuthTime,
    /// `auth_time` lies more than the clock skew after the token arrived
    /// ([`AuthState::received_at`]): not believable (the provider's clock runs fast), and it
    /// stays refused however much later the login is used.
    FutureAuthTime,
}

/// "not strong enough", "too old", "without auth_time", "from the future".
impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shortfall::WeakAuthentication => "not strong enough",
            Shortfall::Stale => "too old",
            Shortfall::MissingAuthTime => "without auth_time",
            Shortfall::FutureAuthTime => "from the future",
        })
    }
}

/// The verdict of [`evaluate`]. A guard must act on it.
///
/// Deliberately *not* `#[non_exhaustive]`, unlike [`Shortfall`] and the crate's errors: a
/// new kind of verdict would be a breaking change, so that every guard decides what it means
/// instead of letting it fall into a wildcard arm that might allow.
///
/// ```
/// use actix_web_stepup::{Decision, Shortfall, StepUpRequest};
///
/// let d = Decision::Forbidden { missing_role: "hr".into() };
/// assert_eq!(d.to_string(), "forbidden: role hr missing");
/// assert!(!d.is_allowed());
/// ```
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; the requirement holds until `valid_until` (Unix seconds), if it expires.
    Allow {
        /// `auth_time` + `max_age` + clock skew, where an `auth_time` later than
        /// `received_at` counts as `received_at`; `None` without a `max_age`.
        valid_until: Option<i64>,
    },
    /// Send the user to the provider for a stronger or fresher login.
    StepUp {
        /// What to ask for.
        request: StepUpRequest,
        /// What is wrong with the current login.
        shortfall: Shortfall,
    },
    /// A role is missing: no login, however strong, would help (authorization is not
    /// authentication), so do not step up.
    Forbidden {
        /// The first role the requirement needs and the login lacks.
        missing_role: String,
    },
    /// This token is the provider's answer to a step-up for this requirement and it was not
    /// good enough even when it arrived. Stepping up again would loop.
    StepUpFailed {
        /// What the step-up asked for (and a retry would ask for).
        request: StepUpRequest,
        /// What is wrong with the answer.
        shortfall: Shortfall,
    },
}

impl Decision {
    /// Whether the decision is [`Decision::Allow`].
    ///
    /// ```
    /// use actix_web_stepup::Decision;
    ///
    /// assert!(Decision::Allow { valid_until: None }.is_allowed());
    /// ```
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// "allowed until 1800000630", "step up (too old): acr_values = …", "forbidden: role hr
/// missing", "step-up failed (not strong enough): asked acr_values = …".
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow { valid_until: Some(t) } => write!(f, "allowed until {t}"),
            Decision::Allow { valid_until: None } => f.write_str("allowed"),
            Decision::StepUp { request, shortfall } => write!(f, "step up ({shortfall}): {request}"),
            Decision::Forbidden { missing_role } => write!(f, "forbidden: role {missing_role} missing"),
            Decision::StepUpFailed { request, shortfall } => {
                write!(f, "step-up failed ({shortfall}): asked {request}")
            }
        }
    }
}

/// Decides whether the login `auth` may use a route that demands `req`, at time `now` (Unix
/// seconds, from the app's one clock).
///
/// In order:
/// 1. a role of `req` missing → [`Decision::Forbidden`] (never a step-up);
/// 2. strong (an accepted `acr`, `acrs` context or `amr`) and, with a `max_age`, an
///    `auth_time` that is no later than `received_at` + skew and whose age at `now` is at
///    most `max_age` + skew (OIDC Core §3.1.3.7 rule 13) → [`Decision::Allow`]. The age is
///    real elapsed time: an `auth_time` after `received_at` (a provider clock that runs
///    fast, within the skew) counts from `received_at`, so `valid_until` is never later than
///    `received_at` + `max_age` + skew, and one beyond the skew is
///    [`Shortfall::FutureAuthTime`] for good;
/// 3. otherwise, if `auth` answered a step-up *for this requirement* and already fell short
///    when it arrived (`received_at`) → [`Decision::StepUpFailed`]: the provider did not or
///    could not do what was asked, and asking again would loop;
/// 4. otherwise → [`Decision::StepUp`]. A token that was good on arrival and has merely aged
///    steps up again.
///
/// ```
/// use std::time::Duration;
/// use actix_web_stepup::{evaluate, AuthState, Decision, Profile, Requirement, Shortfall};
///
/// const NOW: i64 = 1_800_000_000;
/// let salary = Requirement::builder("salary")
///     .profile(Profile::Custom)
///     .role("hr")
///     .max_age(Duration::from_secs(600))
///     .build()
///     .unwrap();
///
/// let mut alice = AuthState::new("alice", NOW);
/// alice.roles = vec!["hr".into()];
/// alice.amr = vec!["pwd".into()];
/// alice.auth_time = Some(NOW);
/// assert!(matches!(
///     evaluate(&alice, &salary, NOW),
///     Decision::StepUp { shortfall: Shortfall::WeakAuthentication, .. }
/// ));
///
/// // The provider answered our step-up with a password-only login again: no loop.
/// let answer = alice.clone().answering_step_up("salary");
/// assert!(matches!(evaluate(&answer, &salary, NOW), Decision::StepUpFailed { .. }));
///
/// alice.amr.push("mfa".into());
/// assert_eq!(evaluate(&alice, &salary, NOW), Decision::Allow { valid_until: Some(NOW + 630) });
/// ```
pub fn evaluate(auth: &AuthState, req: &Requirement, now: i64) -> Decision {
    if let Some(missing) = req.missing_role(auth) {
        return Decision::Forbidden {
            missing_role: missing.clone(),
        };
    }
    match check(auth, req, now) {
        Ok(valid_until) => Decision::Allow { valid_until },
        Err(shortfall) => {
            // If this very token answered a step-up for this requirement and fell short *on
            // arrival*, the provider did not (or could not) do what was asked: asking again
            // would loop. A token that was good on arrival and has merely aged steps up again.
            let answered = auth.step_up_for.as_deref() == Some(req.name());
            if answered && check(auth, req, auth.received_at).is_err() {
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

/// Strength and freshness at `now`: `Ok(valid_until)` or the shortfall.
fn check(auth: &AuthState, req: &Requirement, now: i64) -> Result<Option<i64>, Shortfall> {
    if !req.is_strong(auth) {
        return Err(Shortfall::WeakAuthentication);
    }
    let Some(max_age) = req.max_age() else {
        return Ok(None);
    };
    let auth_time = auth.auth_time.ok_or(Shortfall::MissingAuthTime)?;
    let skew = secs(req.clock_skew().as_secs());
    // `auth_time` is on the provider's clock, `received_at` and `now` on ours. Nobody
    // authenticates after we received the token, so an `auth_time` beyond the skew past
    // `received_at` is not believable, and stays so however late we look at it.
    if auth_time > auth.received_at.saturating_add(skew) {
        return Err(Shortfall::FutureAuthTime);
    }
    // OIDC Core §3.1.3.7 rule 13: with max_age, check auth_time and re-authenticate when too
    // much time has elapsed. Elapsed time is real time: the authentication happened no later
    // than `received_at`, so a fast provider clock (within the skew) cannot push the deadline
    // past `received_at` + max_age + skew, while an older `auth_time` keeps its earlier one.
    let valid_until = auth_time
        .min(auth.received_at)
        .saturating_add(secs(max_age.as_secs()))
        .saturating_add(skew);
    if now > valid_until {
        return Err(Shortfall::Stale);
    }
    Ok(Some(valid_until))
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::requirement::{PAPE_MULTI_FACTOR as MFA, Profile};

    const PWD: &str = "urn:fabrikam:acr:password";
    const NOW: i64 = 1_800_000_000;

    fn salary() -> Requirement {
        Requirement::builder("salary")
            .profile(Profile::Custom)
            .role("hr")
            .max_age(Duration::from_secs(600))
            .build()
            .unwrap()
    }

    fn auth(claims: Value) -> AuthState {
        AuthState::from_claims(claims.as_object().unwrap(), "roles", NOW).unwrap()
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
                "amr mfa alone satisfies (the inverted sample's mistake)",
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
                "auth_time in the future within skew: the window starts on arrival",
                alice(MFA, json!(["mfa"]), NOW + 30),
                Decision::Allow {
                    valid_until: Some(NOW + 630),
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
            (
                "auth_time at the far past does not overflow",
                alice(MFA, json!(["mfa"]), i64::MIN),
                step_up(Shortfall::Stale),
            ),
            (
                "auth_time at the far future does not overflow",
                alice(MFA, json!(["mfa"]), i64::MAX),
                step_up(Shortfall::FutureAuthTime),
            ),
        ];
        for (name, auth, want) in cases {
            assert_eq!(evaluate(&auth, &req, NOW), want, "case: {name}");
        }
    }

    /// The provider's clock against ours (OIDC Core §3.1.3.7 rule 13 is about real elapsed
    /// time): the login arrived at `NOW` (`received_at`), its `auth_time` is on the provider's
    /// clock, and the table asks at several later times. A fast provider clock must neither
    /// lengthen the window nor turn a refusal into an Allow as time passes.
    #[test]
    fn the_clock_table() {
        let req = salary();
        let future = |answered| {
            if answered {
                Decision::StepUpFailed {
                    request: req.step_up_request(),
                    shortfall: Shortfall::FutureAuthTime,
                }
            } else {
                step_up(Shortfall::FutureAuthTime)
            }
        };
        // (case, auth_time, answered our step-up, now, decision)
        let cases: Vec<(&str, i64, bool, i64, Decision)> = vec![
            (
                "provider 5 min ahead, on arrival",
                NOW + 300,
                true,
                NOW,
                future(true),
            ),
            (
                "provider 5 min ahead, 5 min later: still refused, never Allow",
                NOW + 300,
                true,
                NOW + 300,
                future(true),
            ),
            (
                "provider 5 min ahead, 10 min later",
                NOW + 300,
                true,
                NOW + 600,
                future(true),
            ),
            (
                "provider 5 min ahead, not an answer: step up, also later",
                NOW + 300,
                false,
                NOW + 400,
                future(false),
            ),
            (
                "provider ahead within the skew: the window starts on arrival",
                NOW + 30,
                true,
                NOW,
                Decision::Allow {
                    valid_until: Some(NOW + 630),
                },
            ),
            (
                "provider ahead within the skew: stale after max_age + skew of real time",
                NOW + 30,
                true,
                NOW + 631,
                step_up(Shortfall::Stale),
            ),
            (
                "a genuinely old auth_time keeps its own, earlier deadline",
                NOW - 500,
                false,
                NOW,
                Decision::Allow {
                    valid_until: Some(NOW + 130),
                },
            ),
            (
                "a genuinely old auth_time goes stale at its own deadline",
                NOW - 500,
                false,
                NOW + 131,
                step_up(Shortfall::Stale),
            ),
            (
                "provider 5 min behind: a shorter window, never a longer one",
                NOW - 300,
                true,
                NOW + 331,
                step_up(Shortfall::Stale),
            ),
        ];
        for (name, auth_time, answered, now, want) in cases {
            let mut login = alice(MFA, json!(["mfa"]), auth_time);
            if answered {
                login = login.answering_step_up("salary");
            }
            assert_eq!(evaluate(&login, &req, now), want, "case: {name}");
        }
    }

    /// However far the app's clock runs, a future `auth_time` (beyond the skew, on arrival)
    /// never turns into an Allow, and no Allow outlasts `received_at` + `max_age` + skew.
    #[test]
    fn no_later_time_allows_a_future_auth_time_or_outlasts_the_real_window() {
        let req = salary();
        for ahead in [31, 60, 299, 300, 3600] {
            for answered in [false, true] {
                let mut login = alice(MFA, json!(["mfa"]), NOW + ahead);
                if answered {
                    login = login.answering_step_up("salary");
                }
                for later in (0..=4000).step_by(7) {
                    assert!(
                        !evaluate(&login, &req, NOW + later).is_allowed(),
                        "{ahead} s ahead, answered {answered}, {later} s later"
                    );
                }
            }
        }
        for ahead in -700..=30 {
            let login = alice(MFA, json!(["mfa"]), NOW + ahead);
            if let Decision::Allow { valid_until: Some(t) } = evaluate(&login, &req, NOW) {
                assert!(t <= NOW + 630, "{ahead} s: valid until {t}");
            }
        }
    }

    #[test]
    fn acr_only_when_no_amr_is_accepted() {
        let req = Requirement::builder("salary")
            .profile(Profile::Custom)
            .acr_only()
            .role("hr")
            .max_age(Duration::from_secs(600))
            .build()
            .unwrap();
        assert_eq!(
            evaluate(&alice(PWD, json!(["mfa"]), NOW), &req, NOW),
            step_up(Shortfall::WeakAuthentication)
        );
        assert!(evaluate(&alice(MFA, json!([]), NOW), &req, NOW).is_allowed());
    }

    #[test]
    fn a_role_with_a_space_is_one_role() {
        let req = Requirement::builder("payroll")
            .profile(Profile::Custom)
            .role("HR Team")
            .build()
            .unwrap();
        let member = auth(json!({"sub": "a", "amr": ["mfa"], "roles": ["HR Team", "sales"]}));
        assert_eq!(
            evaluate(&member, &req, NOW),
            Decision::Allow { valid_until: None }
        );
        // A roles claim that is one space-separated string lists "HR" and "Team".
        let split = auth(json!({"sub": "a", "amr": ["mfa"], "roles": "HR Team"}));
        assert_eq!(
            evaluate(&split, &req, NOW),
            Decision::Forbidden {
                missing_role: "HR Team".into()
            }
        );
        assert_eq!(
            req.to_string(),
            "role HR Team and acr one of [http://schemas.openid.net/pape/policies/2007/06/multi-factor] or amr containing “mfa”"
        );
    }

    #[test]
    fn any_of_several_accepted_amr_values_is_strong_enough() {
        let req = Requirement::builder("x")
            .accept_any_amr(["mfa", "hwk"])
            .build()
            .unwrap();
        let with = |amr: Value| auth(json!({"sub": "a", "amr": amr}));
        assert!(evaluate(&with(json!(["hwk"])), &req, NOW).is_allowed());
        assert!(evaluate(&with(json!(["pwd", "mfa"])), &req, NOW).is_allowed());
        assert!(!evaluate(&with(json!(["pwd", "otp"])), &req, NOW).is_allowed());
        assert_eq!(req.to_string(), "amr containing “mfa” or “hwk”");
        // The single-value method replaces the set, as before.
        let one = Requirement::builder("x")
            .accept_any_amr(["mfa", "hwk"])
            .accept_amr("hwk")
            .build()
            .unwrap();
        assert!(!evaluate(&with(json!(["mfa"])), &one, NOW).is_allowed());
    }

    #[test]
    fn no_max_age_means_any_age_and_no_expiry() {
        let req = Requirement::builder("x")
            .profile(Profile::Custom)
            .role("hr")
            .build()
            .unwrap();
        let old = alice(MFA, json!(["mfa"]), NOW - 86_400 * 365);
        assert_eq!(evaluate(&old, &req, NOW), Decision::Allow { valid_until: None });
    }

    #[test]
    fn a_weak_answer_to_our_step_up_is_a_failure_not_another_step_up() {
        let weak = alice(PWD, json!(["pwd"]), NOW).answering_step_up("salary");
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
        let stale = alice(MFA, json!(["mfa"]), NOW - 3600).answering_step_up("salary");
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
        let good = alice(MFA, json!(["mfa"]), NOW).answering_step_up("salary");
        assert!(evaluate(&good, &salary(), NOW + 10).is_allowed());
        assert_eq!(evaluate(&good, &salary(), NOW + 700), step_up(Shortfall::Stale));
    }

    #[test]
    fn a_step_up_for_another_requirement_does_not_count_as_failed() {
        let weak = alice(PWD, json!(["pwd"]), NOW).answering_step_up("audit");
        assert_eq!(
            evaluate(&weak, &salary(), NOW),
            step_up(Shortfall::WeakAuthentication)
        );
    }

    #[test]
    fn a_shorter_window_steps_up_where_a_longer_one_allows() {
        let audit = Requirement::builder("audit")
            .profile(Profile::Custom)
            .role("hr")
            .max_age(Duration::from_secs(300))
            .build()
            .unwrap();
        // A salary step-up 400 s ago: good for salary, stale for audit, and not a failed
        // audit step-up (it answered salary's).
        let login = alice(MFA, json!(["mfa"]), NOW - 400).answering_step_up("salary");
        assert!(evaluate(&login, &salary(), NOW).is_allowed());
        assert!(matches!(
            evaluate(&login, &audit, NOW),
            Decision::StepUp {
                shortfall: Shortfall::Stale,
                ..
            }
        ));
    }

    #[test]
    fn entra_contexts_are_read_from_acrs() {
        let req = Requirement::builder("x").profile(Profile::Entra).build().unwrap();
        let ok = auth(json!({"sub": "a", "acrs": ["c1"]}));
        let other = auth(json!({"sub": "a", "acrs": "c2", "amr": ["mfa"]}));
        assert!(evaluate(&ok, &req, NOW).is_allowed());
        assert!(!evaluate(&other, &req, NOW).is_allowed());
    }

    #[test]
    fn decisions_read_as_words() {
        assert_eq!(
            step_up(Shortfall::Stale).to_string(),
            format!("step up (too old): acr_values = {MFA}, max_age = 600 s")
        );
        assert_eq!(
            Decision::Allow { valid_until: Some(5) }.to_string(),
            "allowed until 5"
        );
        assert_eq!(StepUpRequest::default().to_string(), "a new authentication");
    }
}
