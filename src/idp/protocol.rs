//! The authorization request and the authorize decision, as pure functions apart from HTTP:
//! which client and redirect URI, what assurance is asked for, and whether to issue a code,
//! prompt for the password, prompt for the second factor, or fail.

use serde_json::Value;

use super::config::ClientRegistration;
pub use crate::config::PAPE_MULTI_FACTOR as ACR_MFA;

/// The class a password alone reaches.
pub const ACR_PASSWORD: &str = "urn:fabrikam:acr:password";
/// The scopes Fabrikam ID knows; others are dropped from the grant (RFC 6749 §3.3).
pub const SCOPES: &[&str] = &["openid", "profile", "email", "roles"];
/// `state` and `nonce` are kept while the person signs in: longer ones are refused, so a
/// pending sign-in stays small (a 128-bit random value needs 22–32 characters).
pub const MAX_STATE_LEN: usize = 512;

/// What the relying party asked for, reduced to what the decision needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Requirements {
    /// `acr_values` or the `claims` parameter ask for the multi-factor class.
    pub mfa: bool,
    /// An essential `acr` whose values are all classes this OP cannot reach (§5.5.1.1).
    pub unmet: bool,
    /// An essential `acr` that allows only the password class: report exactly that.
    pub password_only: bool,
    /// `prompt=login` or `max_age=0` (§3.1.2.1): check the password again.
    pub force_login: bool,
    pub max_age: Option<i64>,
    pub prompt_none: bool,
}

/// A validated authorization request (OIDC Core §3.1.2.1/§3.1.2.2). Serializable: it waits
/// in the browser's encrypted sign-in cookie while the person signs in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The granted scope, space-separated.
    pub scope: String,
    pub code_challenge: String,
    pub requirements: Requirements,
}

/// Why a request was refused, and where the answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The client or redirect URI cannot be trusted: an error page, never a redirect
    /// (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6).
    Page(String),
    /// The redirect URI is registered: the error goes back to it with `state`.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

/// Validates `/authorize` parameters against the registered clients. With `ignore_acr`
/// (test control) the request is treated as if it asked for no assurance.
pub fn parse_request(
    params: &[(String, String)],
    clients: &[ClientRegistration],
    ignore_acr: bool,
) -> Result<AuthorizeRequest, Rejection> {
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let duplicated = |name: &str| params.iter().filter(|(k, _)| k == name).count() > 1;
    // RFC 6749 §3.1: parameters must not be included more than once.
    if duplicated("client_id") || duplicated("redirect_uri") {
        return Err(Rejection::Page(
            "The request repeats client_id or redirect_uri.".into(),
        ));
    }
    let client_id = get("client_id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Rejection::Page("The request names no application (client_id is missing).".into()))?;
    let client = clients.iter().find(|c| c.client_id == client_id).ok_or_else(|| {
        Rejection::Page("The application asking to sign you in is not registered here.".into())
    })?;
    let redirect_uri =
        get("redirect_uri").ok_or_else(|| Rejection::Page("The request has no redirect_uri.".into()))?;
    // OIDC Core §3.1.2.1: redirect_uri must exactly match a registered one (string comparison).
    if !client.has_redirect_uri(redirect_uri) {
        return Err(Rejection::Page(
            "The address this application wants the answer sent to is not registered for it.".into(),
        ));
    }
    let state = get("state").map(str::to_owned);
    let fail = |error: &'static str, description: &str| Rejection::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        state: state.clone(),
        error,
        description: description.to_owned(),
    };
    for (name, _) in params {
        if duplicated(name) {
            return Err(fail("invalid_request", "a parameter is repeated"));
        }
    }
    // The redirect URI is trusted by now, so this error goes back to it (§3.1.2.6).
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN)
        || get("nonce").is_some_and(|n| n.len() > MAX_STATE_LEN)
    {
        return Err(fail(
            "invalid_request",
            "state and nonce may be at most 512 bytes long",
        ));
    }
    if get("request").is_some() {
        return Err(fail("request_not_supported", "request objects are not supported"));
    }
    if get("request_uri").is_some() {
        return Err(fail("request_uri_not_supported", "request_uri is not supported"));
    }
    match get("response_type") {
        Some("code") => {}
        None => return Err(fail("invalid_request", "response_type is missing")),
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only the code flow is supported",
            ));
        }
    }
    if let Some(mode) = get("response_mode")
        && mode != "query"
    {
        return Err(fail("invalid_request", "only response_mode=query is supported"));
    }
    let requested: Vec<&str> = get("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if !requested.contains(&"openid") {
        return Err(fail("invalid_scope", "the openid scope is required"));
    }
    let scope = SCOPES
        .iter()
        .filter(|s| requested.contains(s))
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    // RFC 7636 §4.4.1: PKCE is required here; S256 only (no `plain`).
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, _) => return Err(fail("invalid_request", "PKCE code_challenge is required")),
        (Some(c), Some("S256")) if is_pkce_value(c) => c.to_owned(),
        (Some(_), Some("S256")) => return Err(fail("invalid_request", "malformed code_challenge")),
        (Some(_), _) => return Err(fail("invalid_request", "code_challenge_method must be S256")),
    };
    let prompts: Vec<&str> = get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    let prompt_none = prompts.contains(&"none");
    // OIDC Core §3.1.2.1: `none` with any other value is an error.
    if prompt_none && prompts.len() > 1 {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match get("max_age") {
        None => None,
        Some(v) => match v.parse::<u32>() {
            Ok(n) => Some(i64::from(n)),
            Err(_) => return Err(fail("invalid_request", "max_age must be a non-negative integer")),
        },
    };
    let mut requirements = Requirements {
        force_login: prompts.contains(&"login") || max_age == Some(0),
        max_age,
        prompt_none,
        ..Requirements::default()
    };
    let claims_acr = match get("claims") {
        None => None,
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(claims)) => claims.get("id_token").and_then(|t| t.get("acr")).cloned(),
            _ => {
                return Err(fail(
                    "invalid_request",
                    "the claims parameter is not a JSON object",
                ));
            }
        },
    };
    if !ignore_acr {
        let acr_values: Vec<&str> = get("acr_values").unwrap_or("").split(' ').collect();
        // OIDC Core §3.1.2.1: acr_values are voluntary; unknown ones are ignored.
        requirements.mfa = acr_values.contains(&ACR_MFA);
        if let Some(acr) = claims_acr.as_ref().filter(|a| a.is_object()) {
            apply_claims_acr(acr, &mut requirements);
        }
    }
    Ok(AuthorizeRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        state,
        nonce: get("nonce").map(str::to_owned),
        scope,
        code_challenge,
        requirements,
    })
}

/// OIDC Core §5.5.1.1: `"acr": {"essential": true, "values": [...]}` must be met or fail.
fn apply_claims_acr(acr: &Value, req: &mut Requirements) {
    let essential = acr.get("essential").and_then(Value::as_bool).unwrap_or(false);
    let mut values: Vec<&str> = acr
        .get("values")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(v) = acr.get("value").and_then(Value::as_str) {
        values.push(v);
    }
    if values.is_empty() {
        return; // any acr will do, and every token carries one
    }
    if values.contains(&ACR_MFA) {
        req.mfa = true;
    } else if essential && values.contains(&ACR_PASSWORD) {
        req.password_only = !req.mfa;
    } else if essential {
        req.unmet = true;
    }
}

/// RFC 7636 §4.1/§4.2: 43–128 characters of `[A-Za-z0-9-._~]`.
pub fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// What the OP session knows about the signed-in user (times on the OP's clock).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthState {
    pub user: String,
    pub password_at: i64,
    pub mfa_at: Option<i64>,
    pub sid: String,
}

/// What has been done for the pending request on the login pages so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub password_done: bool,
    pub second_factor_done: bool,
}

/// Facts about this browser and moment.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub now: i64,
    /// `IDP_MFA_AT_LOGIN`: every login needs the second factor unless remembered.
    pub mfa_at_login: bool,
    /// The remember-browser cookie names the session's user.
    pub remembered: bool,
}

/// The next step for a pending authorization request.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Issue,
    PromptPassword,
    PromptSecondFactor,
    /// An error for the redirect (OIDC Core §3.1.2.6).
    Fail(Failure),
}

/// Why an authorization request ends in an error: each with its code (OIDC Core §3.1.2.6)
/// and its own `error_description`, so a relying party's log says what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `prompt=none` and nobody is signed in.
    NoSession,
    /// `prompt=none` and the sign-in is older than `max_age`.
    SessionTooOld,
    /// `prompt=none` with `max_age=0`, which asks for a new sign-in.
    FreshLoginRequested,
    /// `prompt=none` and the request asks for multi-factor authentication.
    SecondFactorRequested,
    /// `prompt=none` and `IDP_MFA_AT_LOGIN` wants a second factor from this browser.
    SecondFactorAtLogin,
    /// An essential `acr` (§5.5.1.1) that no class of this OP meets.
    UnmetAcr,
}

impl Failure {
    /// The error code.
    pub fn error(self) -> &'static str {
        match self {
            Self::NoSession | Self::SessionTooOld | Self::FreshLoginRequested => "login_required",
            Self::SecondFactorRequested | Self::SecondFactorAtLogin => "interaction_required",
            Self::UnmetAcr => "unmet_authentication_requirements",
        }
    }

    /// The `error_description`: RFC 6749 §4.1.2.1 allows printable ASCII but `"` and `\`.
    pub fn description(self) -> &'static str {
        match self {
            Self::NoSession => "prompt=none was requested, but no user is signed in at Fabrikam ID",
            Self::SessionTooOld => {
                "prompt=none was requested, but the sign-in at Fabrikam ID is older than max_age"
            }
            Self::FreshLoginRequested => {
                "prompt=none was requested with max_age=0, which needs a new sign-in"
            }
            Self::SecondFactorRequested => {
                "prompt=none was requested, but the requested acr needs the user to enter a second factor now"
            }
            Self::SecondFactorAtLogin => {
                "prompt=none was requested, but Fabrikam ID asks this browser for a second factor at sign-in (IDP_MFA_AT_LOGIN)"
            }
            Self::UnmetAcr => {
                "none of the essential acr values requested can be met; Fabrikam ID offers urn:fabrikam:acr:password and http://schemas.openid.net/pape/policies/2007/06/multi-factor"
            }
        }
    }
}

/// The authorize decision: reuse the session (SSO), re-check the password, ask the second
/// factor, or fail.
pub fn decide(req: &Requirements, session: Option<&AuthState>, progress: Progress, ctx: Context) -> Decision {
    if req.unmet {
        return Decision::Fail(Failure::UnmetAcr);
    }
    // OIDC Core §3.1.2.1: prompt=login and max_age=0 force a fresh password check. Any
    // other max_age counts from the last active authentication, the `auth_time` the tokens
    // would carry; when the request forces a second factor now, that factor is a fresh
    // authentication and meets max_age by itself, so only the code is asked (README, "How it
    // works", step 3).
    let fresh_enough = |s: &&AuthState| {
        progress.password_done
            || (!req.force_login
                && (req.mfa
                    || req
                        .max_age
                        .is_none_or(|max| ctx.now - authentication(s, req).auth_time <= max)))
    };
    let Some(session) = session.filter(fresh_enough) else {
        return match (req.prompt_none, session) {
            (false, _) => Decision::PromptPassword,
            (true, None) => Decision::Fail(Failure::NoSession),
            (true, Some(_)) if req.force_login => Decision::Fail(Failure::FreshLoginRequested),
            (true, Some(_)) => Decision::Fail(Failure::SessionTooOld),
        };
    };
    let second_factor = if progress.second_factor_done {
        false
    } else if req.mfa {
        // Asked for the multi-factor class: always prove it now, remembered browser or not.
        true
    } else {
        ctx.mfa_at_login && session.mfa_at.is_none() && !ctx.remembered
    };
    match (second_factor, req.prompt_none) {
        (false, _) => Decision::Issue,
        (true, true) if req.mfa => Decision::Fail(Failure::SecondFactorRequested),
        (true, true) => Decision::Fail(Failure::SecondFactorAtLogin),
        (true, false) => Decision::PromptSecondFactor,
    }
}

/// How the user authenticated, as the tokens say it (RFC 8176 `amr` values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    pub acr: &'static str,
    pub amr: Vec<&'static str>,
    pub auth_time: i64,
}

/// The honest account of the session: multi-factor only if a second factor was completed
/// after the password; `auth_time` is when the last factor was completed.
pub fn authentication(session: &AuthState, req: &Requirements) -> Authentication {
    match session.mfa_at {
        Some(at) if !req.password_only && at >= session.password_at => Authentication {
            acr: ACR_MFA,
            amr: vec!["pwd", "otp", "mfa"],
            auth_time: at,
        },
        _ => Authentication {
            acr: ACR_PASSWORD,
            amr: vec!["pwd"],
            auth_time: session.password_at,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use url::Url;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn clients() -> Vec<ClientRegistration> {
        vec![ClientRegistration::for_intranet(
            "app",
            SecretString::from("s"),
            &Url::parse("http://rp.example/").unwrap(),
        )]
    }

    #[test]
    fn each_failure_has_its_own_description_in_the_allowed_characters() {
        let all = [
            Failure::NoSession,
            Failure::SessionTooOld,
            Failure::FreshLoginRequested,
            Failure::SecondFactorRequested,
            Failure::SecondFactorAtLogin,
            Failure::UnmetAcr,
        ];
        let mut seen = std::collections::HashSet::new();
        for f in all {
            let d = f.description();
            assert!(seen.insert(d), "{f:?} shares its description");
            // RFC 6749 §4.1.2.1: %x20-21 / %x23-5B / %x5D-7E.
            assert!(
                d.bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
                "{d}"
            );
        }
        assert!(d_contains(Failure::UnmetAcr, ACR_MFA) && d_contains(Failure::UnmetAcr, ACR_PASSWORD));
    }

    fn d_contains(f: Failure, s: &str) -> bool {
        f.description().contains(s)
    }

    fn params(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = [
            ("client_id", "app"),
            ("redirect_uri", "http://rp.example/callback"),
            ("response_type", "code"),
            ("scope", "openid profile unknown"),
            ("state", "st"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            p.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                p.push((k.to_string(), v.to_string()));
            }
        }
        p
    }

    fn parse(extra: &[(&str, &str)]) -> Result<AuthorizeRequest, Rejection> {
        parse_request(&params(extra), &clients(), false)
    }

    fn redirect_error(r: Result<AuthorizeRequest, Rejection>) -> &'static str {
        match r {
            Err(Rejection::Redirect { error, state, .. }) => {
                assert_eq!(state.as_deref(), Some("st"));
                error
            }
            other => panic!("expected a redirect error, got {other:?}"),
        }
    }

    #[test]
    fn a_plain_request_parses_and_drops_unknown_scopes() {
        let r = parse(&[]).unwrap();
        assert_eq!(r.scope, "openid profile");
        assert_eq!(r.requirements, Requirements::default());
    }

    #[test]
    fn unknown_client_or_redirect_uri_gets_a_page_not_a_redirect() {
        assert!(matches!(parse(&[("client_id", "evil")]), Err(Rejection::Page(_))));
        assert!(matches!(parse(&[("client_id", "")]), Err(Rejection::Page(_))));
        assert!(matches!(
            parse(&[("redirect_uri", "http://rp.example/callback/")]),
            Err(Rejection::Page(_))
        ));
        assert!(matches!(parse(&[("redirect_uri", "")]), Err(Rejection::Page(_))));
    }

    #[test]
    fn pkce_is_required_and_plain_is_refused() {
        assert_eq!(
            redirect_error(parse(&[("code_challenge", "")])),
            "invalid_request"
        );
        assert_eq!(
            redirect_error(parse(&[("code_challenge_method", "plain")])),
            "invalid_request"
        );
        assert_eq!(
            redirect_error(parse(&[("code_challenge_method", "")])),
            "invalid_request"
        );
        assert_eq!(
            redirect_error(parse(&[("code_challenge", "short")])),
            "invalid_request"
        );
    }

    #[test]
    fn other_errors_go_back_to_the_redirect_uri() {
        assert_eq!(
            redirect_error(parse(&[("response_type", "token")])),
            "unsupported_response_type"
        );
        assert_eq!(redirect_error(parse(&[("scope", "profile")])), "invalid_scope");
        assert_eq!(
            redirect_error(parse(&[("prompt", "none login")])),
            "invalid_request"
        );
        assert_eq!(redirect_error(parse(&[("max_age", "-1")])), "invalid_request");
        assert_eq!(
            redirect_error(parse(&[("claims", "not json")])),
            "invalid_request"
        );
    }

    #[test]
    fn acr_values_and_claims_set_the_requirements() {
        assert!(parse(&[("acr_values", ACR_MFA)]).unwrap().requirements.mfa);
        assert!(!parse(&[("acr_values", "urn:other")]).unwrap().requirements.mfa);
        let essential =
            |values: &str| format!(r#"{{"id_token":{{"acr":{{"essential":true,"values":{values}}}}}}}"#);
        let met = parse(&[("claims", &essential(&format!(r#"["{ACR_MFA}"]"#)))]).unwrap();
        assert!(met.requirements.mfa && !met.requirements.unmet);
        let unmet = parse(&[("claims", &essential(r#"["urn:gold"]"#))]).unwrap();
        assert!(unmet.requirements.unmet);
        let pwd = parse(&[("claims", &essential(&format!(r#"["{ACR_PASSWORD}"]"#)))]).unwrap();
        assert!(pwd.requirements.password_only && !pwd.requirements.unmet);
        let voluntary = r#"{"id_token":{"acr":{"values":["urn:gold"]}}}"#;
        assert!(!parse(&[("claims", voluntary)]).unwrap().requirements.unmet);
        let ignored = parse_request(&params(&[("acr_values", ACR_MFA)]), &clients(), true).unwrap();
        assert!(!ignored.requirements.mfa);
    }

    #[test]
    fn a_state_or_nonce_over_512_bytes_is_an_invalid_request_sent_back() {
        let long = "s".repeat(MAX_STATE_LEN + 1);
        let ok = "s".repeat(MAX_STATE_LEN);
        assert!(parse(&[("nonce", &ok)]).is_ok());
        assert_eq!(redirect_error(parse(&[("nonce", &long)])), "invalid_request");
        match parse(&[("state", &long)]) {
            Err(Rejection::Redirect { error, state, .. }) => {
                assert_eq!(error, "invalid_request");
                assert_eq!(state, Some(long), "state goes back as sent (§3.1.2.6)");
            }
            other => panic!("expected a redirect error, got {other:?}"),
        }
        assert_eq!(parse(&[("state", &ok)]).unwrap().state, Some(ok));
    }

    #[test]
    fn max_age_zero_and_prompt_login_force_the_password() {
        assert!(parse(&[("max_age", "0")]).unwrap().requirements.force_login);
        assert!(parse(&[("prompt", "login")]).unwrap().requirements.force_login);
        assert_eq!(
            parse(&[("max_age", "60")]).unwrap().requirements.max_age,
            Some(60)
        );
    }

    fn session(password_at: i64, mfa_at: Option<i64>) -> AuthState {
        AuthState {
            user: "alice".into(),
            password_at,
            mfa_at,
            sid: "sid".into(),
        }
    }

    fn ctx(now: i64) -> Context {
        Context {
            now,
            mfa_at_login: false,
            remembered: false,
        }
    }

    #[test]
    fn the_decision_table() {
        use Decision::*;
        let none = Progress::default();
        let pw = Progress {
            password_done: true,
            second_factor_done: false,
        };
        let both = Progress {
            password_done: true,
            second_factor_done: true,
        };
        let plain = Requirements::default();
        let mfa = Requirements {
            mfa: true,
            ..Requirements::default()
        };
        let s = session(100, None);
        let s_mfa = session(100, Some(110));
        type Case<'a> = (
            &'a str,
            Requirements,
            Option<&'a AuthState>,
            Progress,
            Context,
            Decision,
        );
        let cases: Vec<Case> = vec![
            (
                "no session: password",
                plain.clone(),
                None,
                none,
                ctx(200),
                PromptPassword,
            ),
            ("SSO reuse", plain.clone(), Some(&s), none, ctx(200), Issue),
            (
                "step-up on SSO asks only the second factor",
                mfa.clone(),
                Some(&s),
                none,
                ctx(200),
                PromptSecondFactor,
            ),
            (
                "step-up always asks, even after MFA",
                mfa.clone(),
                Some(&s_mfa),
                none,
                ctx(200),
                PromptSecondFactor,
            ),
            ("step-up done", mfa.clone(), Some(&s), both, ctx(200), Issue),
            (
                "max_age exceeded",
                Requirements {
                    max_age: Some(50),
                    ..plain.clone()
                },
                Some(&s),
                none,
                ctx(200),
                PromptPassword,
            ),
            (
                "max_age met",
                Requirements {
                    max_age: Some(150),
                    ..plain.clone()
                },
                Some(&s),
                none,
                ctx(200),
                Issue,
            ),
            (
                "max_age after fresh password",
                Requirements {
                    max_age: Some(50),
                    ..plain.clone()
                },
                Some(&s),
                pw,
                ctx(200),
                Issue,
            ),
            (
                "step-up after an old password asks only the code: it meets max_age",
                Requirements {
                    max_age: Some(50),
                    ..mfa.clone()
                },
                Some(&s),
                none,
                ctx(200),
                PromptSecondFactor,
            ),
            (
                "step-up with max_age=0 or prompt=login still asks the password",
                Requirements {
                    force_login: true,
                    max_age: Some(0),
                    ..mfa.clone()
                },
                Some(&s),
                none,
                ctx(200),
                PromptPassword,
            ),
            (
                "max_age counts from the last factor (the auth_time reported)",
                Requirements {
                    max_age: Some(95),
                    ..plain.clone()
                },
                Some(&s_mfa),
                none,
                ctx(205),
                Issue,
            ),
            (
                "max_age past the last factor",
                Requirements {
                    max_age: Some(94),
                    ..plain.clone()
                },
                Some(&s_mfa),
                none,
                ctx(205),
                PromptPassword,
            ),
            (
                "max_age for the password class counts from the password",
                Requirements {
                    max_age: Some(95),
                    password_only: true,
                    ..plain.clone()
                },
                Some(&s_mfa),
                none,
                ctx(205),
                PromptPassword,
            ),
            (
                "prompt=login",
                Requirements {
                    force_login: true,
                    ..plain.clone()
                },
                Some(&s),
                none,
                ctx(200),
                PromptPassword,
            ),
            (
                "prompt=none, no session",
                Requirements {
                    prompt_none: true,
                    ..plain.clone()
                },
                None,
                none,
                ctx(200),
                Fail(Failure::NoSession),
            ),
            (
                "prompt=none, SSO",
                Requirements {
                    prompt_none: true,
                    ..plain.clone()
                },
                Some(&s),
                none,
                ctx(200),
                Issue,
            ),
            (
                "prompt=none, step-up",
                Requirements {
                    prompt_none: true,
                    ..mfa.clone()
                },
                Some(&s),
                none,
                ctx(200),
                Fail(Failure::SecondFactorRequested),
            ),
            (
                "unmet essential acr",
                Requirements {
                    unmet: true,
                    ..plain.clone()
                },
                Some(&s),
                none,
                ctx(200),
                Fail(Failure::UnmetAcr),
            ),
            (
                "prompt=none, session older than max_age",
                Requirements {
                    prompt_none: true,
                    max_age: Some(50),
                    ..plain.clone()
                },
                Some(&s),
                none,
                ctx(200),
                Fail(Failure::SessionTooOld),
            ),
            (
                "prompt=none, max_age=0",
                Requirements {
                    prompt_none: true,
                    max_age: Some(0),
                    force_login: true,
                    ..plain.clone()
                },
                Some(&s),
                none,
                ctx(200),
                Fail(Failure::FreshLoginRequested),
            ),
            (
                "prompt=none, MFA at login",
                Requirements {
                    prompt_none: true,
                    ..plain.clone()
                },
                Some(&s),
                none,
                Context {
                    mfa_at_login: true,
                    ..ctx(200)
                },
                Fail(Failure::SecondFactorAtLogin),
            ),
            (
                "MFA at login",
                plain.clone(),
                Some(&s),
                pw,
                Context {
                    mfa_at_login: true,
                    ..ctx(200)
                },
                PromptSecondFactor,
            ),
            (
                "MFA at login, remembered",
                plain.clone(),
                Some(&s),
                pw,
                Context {
                    mfa_at_login: true,
                    remembered: true,
                    ..ctx(200)
                },
                Issue,
            ),
            (
                "MFA at login, session did MFA",
                plain.clone(),
                Some(&s_mfa),
                none,
                Context {
                    mfa_at_login: true,
                    ..ctx(200)
                },
                Issue,
            ),
            (
                "MFA at login, remembered, step-up",
                mfa.clone(),
                Some(&s),
                pw,
                Context {
                    mfa_at_login: true,
                    remembered: true,
                    ..ctx(200)
                },
                PromptSecondFactor,
            ),
        ];
        for (name, req, session, progress, ctx, expected) in cases {
            assert_eq!(decide(&req, session, progress, ctx), expected, "{name}");
        }
    }

    #[test]
    fn authentication_is_reported_honestly() {
        let plain = Requirements::default();
        let pwd = authentication(&session(100, None), &plain);
        assert_eq!(
            (pwd.acr, pwd.amr.clone(), pwd.auth_time),
            (ACR_PASSWORD, vec!["pwd"], 100)
        );
        let mfa = authentication(&session(100, Some(130)), &plain);
        assert_eq!(
            (mfa.acr, mfa.amr.clone(), mfa.auth_time),
            (ACR_MFA, vec!["pwd", "otp", "mfa"], 130)
        );
        let stale = authentication(&session(200, Some(130)), &plain);
        assert_eq!(stale.acr, ACR_PASSWORD);
        let only_pwd = Requirements {
            password_only: true,
            ..plain
        };
        assert_eq!(
            authentication(&session(100, Some(130)), &only_pwd).acr,
            ACR_PASSWORD
        );
    }
}
