//! Assurance profiles: how each provider is asked for a multi-factor sign-in and how its
//! tokens say they had one. `STEPUP_PROFILE` picks one; `STEPUP_ACR_VALUES` and
//! `STEPUP_ACCEPT_AMR` override its values. What each provider must be set up to do is in
//! `docs/tutorial.md` ("Pointing the intranet at a real provider").

use std::time::Duration;

use super::policy::Requirement;
use crate::config::{PAPE_MULTI_FACTOR, StepUpConfig, StepUpProfile};

/// A profile's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// Requested with `acr_values` (and an essential `acr` claim where supported), accepted.
    pub acr_values: Vec<&'static str>,
    /// Accepted too, never requested.
    pub also_accept_acr: Vec<&'static str>,
    pub accept_amr: Option<&'static str>,
    /// Entra's authentication context id.
    pub auth_context: Option<&'static str>,
}

/// The defaults of each profile.
pub fn preset(profile: StepUpProfile) -> Preset {
    match profile {
        // Auth0 issues the PAPE URI as acr when `acr_values` asks for it and MFA ran, and
        // `amr: ["mfa"]` whenever MFA ran (also from a rule or Action).
        StepUpProfile::Auth0 | StepUpProfile::Custom => Preset {
            acr_values: vec![PAPE_MULTI_FACTOR],
            also_accept_acr: vec![],
            accept_amr: Some("mfa"),
            auth_context: None,
        },
        // Okta's levels of assurance: two factors of any kind; the phishing-resistant
        // classes (`phr`, `phrh`) are stronger and also accepted.
        StepUpProfile::Okta => Preset {
            acr_values: vec!["urn:okta:loa:2fa:any"],
            also_accept_acr: vec!["phr", "phrh"],
            accept_amr: Some("mfa"),
            auth_context: None,
        },
        // Keycloak's "ACR to LoA mapping" (client or realm setting): silver = 1, gold = 2.
        // Keycloak answers with the acr name when the mapping exists, else the level number;
        // its amr values (pwd, otp) never say "mfa", so acr alone decides.
        StepUpProfile::Keycloak => Preset {
            acr_values: vec!["gold"],
            also_accept_acr: vec!["2"],
            accept_amr: None,
            auth_context: None,
        },
        // Entra ID: a Conditional Access authentication context (c1 = "require MFA"),
        // asked for with `claims={"id_token":{"acrs":{"essential":true,"value":"c1"}}}` and
        // reported in the `acrs` claim. `amr: ["mfa"]` alone is not taken as the context:
        // the context's policy may demand more than MFA.
        StepUpProfile::Entra => Preset {
            acr_values: vec![],
            also_accept_acr: vec![],
            accept_amr: None,
            auth_context: Some("c1"),
        },
    }
}

/// The salary pages' requirement: the profile's defaults, the configured overrides, the
/// configured maximum age, and role `hr`.
pub fn salary_requirement(config: &StepUpConfig) -> Requirement {
    let preset = preset(config.profile);
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // With Entra, STEPUP_ACR_VALUES names the authentication context instead.
    let (acr_values, auth_context) = match (config.profile, &config.acr_values) {
        (StepUpProfile::Entra, Some(values)) => (vec![], values.first().cloned()),
        (_, Some(values)) => (values.clone(), preset.auth_context.map(str::to_owned)),
        (_, None) => (owned(&preset.acr_values), preset.auth_context.map(str::to_owned)),
    };
    Requirement {
        id: "salary".into(),
        acr_values,
        also_accept_acr: owned(&preset.also_accept_acr),
        accept_amr: match &config.accept_amr {
            Some(explicit) => explicit.clone(),
            None => preset.accept_amr.map(str::to_owned),
        },
        auth_context,
        max_age: Some(config.max_age),
        roles: vec!["hr".into()],
        clock_skew: Duration::from_secs(30),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::intranet::policy::{AuthState, Decision, evaluate};

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
        let req = salary_requirement(&config(profile));
        matches!(evaluate(&login(claims), &req, NOW), Decision::Allow { .. })
    }

    #[test]
    fn custom_is_the_contract_default() {
        let req = salary_requirement(&config(StepUpProfile::Custom));
        assert_eq!(req.acr_values, vec![PAPE_MULTI_FACTOR]);
        assert_eq!(req.accept_amr.as_deref(), Some("mfa"));
        assert_eq!(req.max_age, Some(Duration::from_secs(600)));
        assert_eq!(req.roles, vec!["hr"]);
    }

    #[test]
    fn auth0_accepts_the_pape_acr_or_amr_mfa() {
        use StepUpProfile::Auth0;
        assert!(allowed(Auth0, json!({"acr": PAPE_MULTI_FACTOR})));
        assert!(allowed(Auth0, json!({"amr": ["mfa"]})));
        assert!(!allowed(Auth0, json!({"amr": ["pwd"]})));
    }

    #[test]
    fn okta_asks_for_2fa_and_accepts_stronger_classes() {
        use StepUpProfile::Okta;
        let req = salary_requirement(&config(Okta));
        assert_eq!(req.acr_values, vec!["urn:okta:loa:2fa:any"]);
        assert!(allowed(Okta, json!({"acr": "urn:okta:loa:2fa:any"})));
        assert!(allowed(Okta, json!({"acr": "phrh"})));
        assert!(!allowed(
            Okta,
            json!({"acr": "urn:okta:loa:1fa:any", "amr": ["pwd"]})
        ));
        assert!(!allowed(Okta, json!({"acr": "urn:okta:loa:2fa:any:ifpossible"})));
    }

    #[test]
    fn keycloak_accepts_the_name_or_the_level_and_ignores_amr() {
        use StepUpProfile::Keycloak;
        let req = salary_requirement(&config(Keycloak));
        assert_eq!(req.acr_values, vec!["gold"]);
        assert!(allowed(Keycloak, json!({"acr": "gold"})));
        assert!(allowed(Keycloak, json!({"acr": "2"})));
        assert!(!allowed(Keycloak, json!({"acr": "1"})));
        assert!(!allowed(
            Keycloak,
            json!({"acr": "silver", "amr": ["pwd", "otp", "mfa"]})
        ));
    }

    #[test]
    fn entra_asks_for_an_auth_context_and_reads_acrs() {
        use StepUpProfile::Entra;
        let req = salary_requirement(&config(Entra));
        assert!(req.acr_values.is_empty());
        assert_eq!(req.auth_context.as_deref(), Some("c1"));
        assert!(allowed(Entra, json!({"acrs": ["c1"]})));
        assert!(!allowed(Entra, json!({"acrs": ["c2"], "amr": ["pwd", "mfa"]})));
        let mut custom = config(Entra);
        custom.acr_values = Some(vec!["c7".into()]);
        assert_eq!(salary_requirement(&custom).auth_context.as_deref(), Some("c7"));
    }

    #[test]
    fn explicit_settings_override_the_preset() {
        let mut c = config(StepUpProfile::Okta);
        c.acr_values = Some(vec!["urn:example:strong".into()]);
        c.accept_amr = Some(None);
        let req = salary_requirement(&c);
        assert_eq!(req.acr_values, vec!["urn:example:strong"]);
        assert_eq!(req.accept_amr, None, "empty STEPUP_ACCEPT_AMR means acr only");
        let mut c = config(StepUpProfile::Keycloak);
        c.accept_amr = Some(Some("hwk".into()));
        assert_eq!(salary_requirement(&c).accept_amr.as_deref(), Some("hwk"));
    }
}
