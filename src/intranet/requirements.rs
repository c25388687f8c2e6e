//! The intranet's named step-up requirements, built from the settings with the
//! `actix-web-stepup` crate: `salary` (salary pages and the salary API) and `audit` (the
//! audit trail), and the marker types that name them in `StepUp<P>`.
//!
//! `STEPUP_PROFILE` picks a provider preset; `STEPUP_ACR_VALUES` and `STEPUP_ACCEPT_AMR`
//! override its values. What each provider must be set up to do is in `docs/tutorial.md`
//! ("Pointing the intranet at a real provider").

use std::time::Duration;

use actix_web_stepup::{Profile, Protected, Requirement, RequirementBuilder, Requirements};

use super::state::CLOCK_SKEW;
use crate::config::{StepUpConfig, StepUpProfile};

/// Salary pages and `GET /api/employees/{id}/salary`: role `hr` and a multi-factor login at
/// most `STEPUP_MAX_AGE_SECS` old.
pub struct SalaryAccess;

impl Protected for SalaryAccess {
    const NAME: &'static str = "salary";
}

/// The audit trail: role `hr` and a *phishing-resistant* login (`acr` `phr` or `phrh`, EAP ACR
/// Values 1.0: a passkey at Fabrikam ID) at most [`AUDIT_MAX_AGE`] old (or
/// `STEPUP_MAX_AGE_SECS`, if that is shorter). A session that stepped up with a code for the
/// salary pages is stepped up again here. With a profile whose provider issues no such class
/// (Auth0, Keycloak, Entra ID) it falls back to multi-factor, with a warning at start.
pub struct AuditAccess;

impl Protected for AuditAccess {
    const NAME: &'static str = "audit";
}

/// How fresh the multi-factor login behind `/audit` must be.
pub const AUDIT_MAX_AGE: Duration = Duration::from_secs(300);

/// The configured profile, as the crate's.
pub fn profile(profile: StepUpProfile) -> Profile {
    match profile {
        StepUpProfile::Auth0 => Profile::Auth0,
        StepUpProfile::Okta => Profile::Okta,
        StepUpProfile::Keycloak => Profile::Keycloak,
        StepUpProfile::Entra => Profile::Entra,
        StepUpProfile::Custom => Profile::Custom,
    }
}

/// "Multi-factor" as configured: the profile's preset, then `STEPUP_ACR_VALUES` (with the
/// Entra profile: the authentication context id) and `STEPUP_ACCEPT_AMR`.
fn multi_factor(name: &str, config: &StepUpConfig) -> RequirementBuilder {
    let mut builder = Requirement::builder(name)
        .profile(profile(config.profile))
        .clock_skew(CLOCK_SKEW);
    builder = match (config.profile, &config.acr_values) {
        (StepUpProfile::Entra, Some(values)) => match values.first() {
            Some(context) => builder.auth_context(context.clone()),
            None => builder,
        },
        (_, Some(values)) => builder.acr_values(values.clone()),
        (_, None) => builder,
    };
    match &config.accept_amr {
        Some(Some(amr)) => builder.accept_amr(amr.clone()),
        Some(None) => builder.acr_only(),
        None => builder,
    }
}

/// Every requirement of the intranet.
///
/// # Errors
///
/// An `actix_web_stepup::RequirementError` when the settings leave nothing that satisfies
/// a requirement (`STEPUP_ACR_VALUES` and `STEPUP_ACCEPT_AMR` both empty) or give a value
/// that cannot be sent.
pub fn build(config: &StepUpConfig) -> anyhow::Result<Requirements> {
    let salary = multi_factor(SalaryAccess::NAME, config)
        .role("hr")
        .max_age(config.max_age)
        .build()?;
    let audit_max_age = config.max_age.min(AUDIT_MAX_AGE);
    let audit = if profile(config.profile).offers_phishing_resistant() {
        Requirement::builder(AuditAccess::NAME)
            .profile(profile(config.profile))
            .phishing_resistant()
            .clock_skew(CLOCK_SKEW)
            .role("hr")
            .max_age(audit_max_age)
            .build()?
    } else {
        tracing::warn!(
            profile = ?config.profile,
            "the provider issues no phishing-resistant class (acr phr): the audit trail asks for multi-factor only"
        );
        multi_factor(AuditAccess::NAME, config)
            .role("hr")
            .max_age(audit_max_age)
            .build()?
    };
    Ok(Requirements::new().with(salary)?.with(audit)?)
}

#[cfg(test)]
mod tests {
    use actix_web_stepup::{AuthState, PAPE_MULTI_FACTOR, RequirementError, evaluate};
    use serde_json::{Value, json};

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn config(profile: StepUpProfile) -> StepUpConfig {
        StepUpConfig {
            profile,
            acr_values: None,
            accept_amr: None,
            max_age: Duration::from_secs(600),
            interstitial: false,
        }
    }

    fn salary(config: &StepUpConfig) -> Requirement {
        build(config).unwrap().of::<SalaryAccess>().unwrap().clone()
    }

    fn login(claims: Value) -> AuthState {
        let Value::Object(mut map) = claims else {
            unreachable!()
        };
        map.insert("sub".into(), json!("alice"));
        map.insert("roles".into(), json!(["hr"]));
        map.insert("auth_time".into(), json!(NOW - 5));
        AuthState::from_claims(&map, "roles", NOW).unwrap()
    }

    fn allowed(profile: StepUpProfile, claims: Value) -> bool {
        evaluate(&login(claims), &salary(&config(profile)), NOW).is_allowed()
    }

    #[test]
    fn custom_is_the_documented_default() {
        let req = salary(&config(StepUpProfile::Custom));
        assert_eq!(req.acr_values(), [PAPE_MULTI_FACTOR]);
        assert_eq!(req.accept_amr(), ["mfa"]);
        assert_eq!(req.max_age(), Some(Duration::from_secs(600)));
        assert_eq!(req.roles(), ["hr"]);
        assert_eq!(req.clock_skew(), CLOCK_SKEW);
    }

    #[test]
    fn the_audit_trail_has_its_own_shorter_window() {
        let requirements = build(&config(StepUpProfile::Custom)).unwrap();
        let audit = requirements.of::<AuditAccess>().unwrap();
        assert_eq!(audit.max_age(), Some(AUDIT_MAX_AGE));
        assert_eq!(audit.acr_values(), ["phr"]);
        assert_eq!(audit.also_accept_acr(), ["phrh"]);
        assert!(audit.accept_amr().is_empty(), "amr mfa is said of codes too");
        assert_eq!(audit.roles(), ["hr"]);
        let mut short = config(StepUpProfile::Custom);
        short.max_age = Duration::from_secs(120);
        let requirements = build(&short).unwrap();
        assert_eq!(
            requirements.of::<AuditAccess>().unwrap().max_age(),
            Some(Duration::from_secs(120)),
            "never laxer than the salary pages"
        );
    }

    #[test]
    fn every_profile_maps_to_the_crates() {
        use StepUpProfile::*;
        assert!(allowed(Auth0, json!({"acr": PAPE_MULTI_FACTOR})));
        assert!(allowed(Auth0, json!({"amr": ["mfa"]})));
        assert!(!allowed(Auth0, json!({"amr": ["pwd"]})));
        assert!(allowed(Okta, json!({"acr": "phrh"})));
        assert!(!allowed(
            Okta,
            json!({"acr": "urn:okta:loa:1fa:any", "amr": ["pwd"]})
        ));
        assert!(allowed(Keycloak, json!({"acr": "2"})));
        assert!(!allowed(
            Keycloak,
            json!({"acr": "silver", "amr": ["pwd", "otp", "mfa"]})
        ));
        assert!(allowed(Entra, json!({"acrs": ["c1"]})));
        assert!(!allowed(Entra, json!({"acrs": ["c2"], "amr": ["pwd", "mfa"]})));
    }

    #[test]
    fn a_totp_login_never_opens_the_audit_trail_and_profiles_without_phr_fall_back() {
        let audit = |p| build(&config(p)).unwrap().of::<AuditAccess>().unwrap().clone();
        let totp = login(json!({"acr": PAPE_MULTI_FACTOR, "amr": ["pwd", "otp", "mfa"]}));
        let phr = login(json!({"acr": "phr", "amr": ["pwd", "pop", "user", "mfa"]}));
        for p in [StepUpProfile::Custom, StepUpProfile::Okta] {
            assert!(!evaluate(&totp, &audit(p), NOW).is_allowed(), "{p:?}");
            assert!(evaluate(&phr, &audit(p), NOW).is_allowed(), "{p:?}");
        }
        assert_eq!(audit(StepUpProfile::Auth0).acr_values(), [PAPE_MULTI_FACTOR]);
        assert_eq!(audit(StepUpProfile::Entra).auth_context(), Some("c1"));
    }

    #[test]
    fn explicit_settings_override_the_preset() {
        let mut c = config(StepUpProfile::Okta);
        c.acr_values = Some(vec!["urn:example:strong".into()]);
        c.accept_amr = Some(None);
        let req = salary(&c);
        assert_eq!(req.acr_values(), ["urn:example:strong"]);
        assert!(
            req.accept_amr().is_empty(),
            "empty STEPUP_ACCEPT_AMR means acr only"
        );
        let mut c = config(StepUpProfile::Keycloak);
        c.accept_amr = Some(Some("hwk".into()));
        assert_eq!(salary(&c).accept_amr(), ["hwk"]);
        let mut c = config(StepUpProfile::Entra);
        c.acr_values = Some(vec!["c7".into()]);
        assert_eq!(salary(&c).auth_context(), Some("c7"));
    }

    #[test]
    fn settings_that_nothing_could_satisfy_stop_the_start() {
        let mut c = config(StepUpProfile::Custom);
        c.acr_values = Some(vec![]);
        c.accept_amr = Some(None);
        let err = build(&c).unwrap_err();
        assert!(
            matches!(err.downcast_ref(), Some(RequirementError::NoStrength(_))),
            "{err}"
        );
        let mut c = config(StepUpProfile::Custom);
        c.acr_values = Some(vec!["a\"b".into()]);
        let err = build(&c).unwrap_err();
        assert!(
            matches!(err.downcast_ref(), Some(RequirementError::InvalidValue { .. })),
            "{err}"
        );
    }
}
