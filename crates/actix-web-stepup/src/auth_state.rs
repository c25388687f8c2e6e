//! [`AuthState`]: what the app knows about the current login, read from validated claims.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What the relying party knows about the current login, taken from a *validated* ID token
/// (OIDC Core §2) or RFC 9068 access token. Times are Unix seconds.
///
/// The app builds it once, when it accepts a token, and keeps it (typically in the session;
/// it is `Serialize`/`Deserialize`). [`evaluate`](crate::evaluate) reads it on every guarded
/// request without calling the provider.
///
/// # Security
///
/// Whatever stores it must be tamper-proof, since every decision trusts it: an encrypted or
/// signed session cookie, or a server-side session store. A client that could edit a plain
/// cookie would give itself `amr: ["mfa"]`, a fresh `auth_time` and any role.
///
/// ```
/// use actix_web_stepup::AuthState;
/// use serde_json::json;
///
/// let claims = json!({
///     "sub": "alice", "acr": "urn:fabrikam:acr:password", "amr": ["pwd"],
///     "auth_time": 1_800_000_000, "roles": ["hr"],
/// });
/// let login = AuthState::from_claims(claims.as_object().unwrap(), "roles", 1_800_000_005).unwrap();
/// assert_eq!(login.subject, "alice");
/// assert_eq!(login.to_string(), "acr=urn:fabrikam:acr:password amr=pwd auth_time=1800000000");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    /// `sub`: the provider's stable identifier of the user.
    pub subject: String,
    /// `name`, else `preferred_username`.
    pub name: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// Authentication Context Class Reference (OIDC Core §2).
    pub acr: Option<String>,
    /// Authentication Methods References (OIDC Core §2; values from RFC 8176).
    pub amr: Vec<String>,
    /// When the user last actively authenticated (OIDC Core §2), not when the token was issued.
    pub auth_time: Option<i64>,
    /// Microsoft Entra ID's satisfied authentication contexts (`acrs`, not a standard claim).
    #[serde(default)]
    pub acrs: Vec<String>,
    /// The user's roles, from the claim the app names.
    pub roles: Vec<String>,
    /// When the app accepted the token: the loop breaker judges a step-up's answer as it was
    /// on arrival.
    pub received_at: i64,
    /// The name of the requirement whose step-up produced this token, if it answered one.
    pub step_up_for: Option<String>,
}

impl AuthState {
    /// A login of `subject` accepted at `received_at`, with no other claims: fill in the
    /// fields from a typed token library (such as `openidconnect`'s ID-token claims).
    ///
    /// ```
    /// use actix_web_stepup::AuthState;
    ///
    /// let mut login = AuthState::new("alice", 1_800_000_000);
    /// login.amr = vec!["pwd".into(), "otp".into(), "mfa".into()];
    /// assert_eq!(login.display_name(), "alice");
    /// ```
    pub fn new(subject: impl Into<String>, received_at: i64) -> Self {
        Self {
            subject: subject.into(),
            name: None,
            email: None,
            acr: None,
            amr: Vec::new(),
            auth_time: None,
            acrs: Vec::new(),
            roles: Vec::new(),
            received_at,
            step_up_for: None,
        }
    }

    /// Reads a login from the claims of a token **the caller has already validated**
    /// (signature, `iss`, `aud`, `exp`, and for ID tokens `nonce`: this crate checks none of
    /// them). Tolerates what real providers send: `amr`, `acrs` and roles as an array of
    /// strings or as one space-separated string; `auth_time` as an integer or a float; any
    /// claim missing but `sub`.
    ///
    /// # Errors
    ///
    /// [`ClaimsError::MissingSubject`] when `sub` is absent or not a string.
    ///
    /// ```
    /// use actix_web_stepup::{AuthState, ClaimsError};
    /// use serde_json::json;
    ///
    /// let claims = json!({"sub": "a", "amr": "pwd mfa", "groups": "hr admin", "auth_time": 1.5e9});
    /// let login = AuthState::from_claims(claims.as_object().unwrap(), "groups", 0).unwrap();
    /// assert_eq!(login.amr, ["pwd", "mfa"]);
    /// assert_eq!(login.roles, ["hr", "admin"]);
    /// assert_eq!(login.auth_time, Some(1_500_000_000));
    ///
    /// let no_sub = json!({"acr": "x"});
    /// assert_eq!(
    ///     AuthState::from_claims(no_sub.as_object().unwrap(), "roles", 0),
    ///     Err(ClaimsError::MissingSubject)
    /// );
    /// ```
    pub fn from_claims(
        claims: &Map<String, Value>,
        roles_claim: &str,
        received_at: i64,
    ) -> Result<Self, ClaimsError> {
        let string = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(Self {
            subject: string("sub").ok_or(ClaimsError::MissingSubject)?,
            name: string("name").or_else(|| string("preferred_username")),
            email: string("email"),
            acr: string("acr"),
            amr: string_list(claims.get("amr")),
            acrs: string_list(claims.get("acrs")),
            // `as` saturates: a NaN or huge float cannot panic.
            auth_time: claims
                .get("auth_time")
                .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))),
            roles: string_list(claims.get(roles_claim)),
            received_at,
            step_up_for: None,
        })
    }

    /// Marks this login as the answer to a step-up for the requirement `name`. Call it when
    /// a login that the app started as a step-up comes back: without it the loop breaker
    /// cannot tell a weak answer from a first visit.
    ///
    /// ```
    /// use actix_web_stepup::AuthState;
    ///
    /// let login = AuthState::new("alice", 0).answering_step_up("salary");
    /// assert_eq!(login.step_up_for.as_deref(), Some("salary"));
    /// ```
    #[must_use]
    pub fn answering_step_up(mut self, name: impl Into<String>) -> Self {
        self.step_up_for = Some(name.into());
        self
    }

    /// The name to show: `name`, else the subject.
    ///
    /// ```
    /// use actix_web_stepup::AuthState;
    ///
    /// let mut login = AuthState::new("u-123", 0);
    /// assert_eq!(login.display_name(), "u-123");
    /// login.name = Some("Alice Ashford".into());
    /// assert_eq!(login.display_name(), "Alice Ashford");
    /// ```
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.subject)
    }
}

/// The login's assurance in claim terms, for logs and audit trails (never a token):
/// `acr=… amr=… auth_time=…`, with `-` for a missing claim.
impl fmt::Display for AuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "acr={} amr=", self.acr.as_deref().unwrap_or("-"))?;
        if self.amr.is_empty() {
            f.write_str("-")?;
        } else {
            f.write_str(&self.amr.join(" "))?;
        }
        match self.auth_time {
            Some(t) => write!(f, " auth_time={t}"),
            None => f.write_str(" auth_time=-"),
        }
    }
}

/// A claim's value as a list of strings: an array of strings (other items skipped), or one
/// string split at whitespace; anything else is an empty list. The reading
/// [`AuthState::from_claims`] applies to `amr`, `acrs` and roles, for apps that take the
/// other claims from a typed token library.
///
/// ```
/// use actix_web_stepup::string_list;
/// use serde_json::json;
///
/// assert_eq!(string_list(Some(&json!(["hr", 7, "sales"]))), ["hr", "sales"]);
/// assert_eq!(string_list(Some(&json!("pwd otp"))), ["pwd", "otp"]);
/// assert!(string_list(Some(&json!({"hr": true}))).is_empty());
/// assert!(string_list(None).is_empty());
/// ```
pub fn string_list(value: Option<&Value>) -> Vec<String> {
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

/// Why claims could not be read as an [`AuthState`].
///
/// ```
/// use actix_web_stepup::ClaimsError;
///
/// assert_eq!(ClaimsError::MissingSubject.to_string(), "the token has no sub claim");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimsError {
    /// No `sub`, or not a string.
    MissingSubject,
}

impl fmt::Display for ClaimsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimsError::MissingSubject => f.write_str("the token has no sub claim"),
        }
    }
}

impl std::error::Error for ClaimsError {}
