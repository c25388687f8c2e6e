//! What a route demands of the login ([`Requirement`], built with [`RequirementBuilder`]),
//! what a step-up to it asks the provider for ([`StepUpRequest`]), the provider presets
//! ([`Profile`]) and the registry of named requirements ([`Requirements`]) that the
//! [`StepUp`](crate::StepUp) extractor reads from app data.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::auth_state::AuthState;

/// The multi-factor class of the OpenID Provider Authentication Policy Extension (PAPE),
/// which Auth0 issues as `acr` after multi-factor authentication.
///
/// ```
/// use actix_web_stepup::{PAPE_MULTI_FACTOR, Profile, Requirement};
///
/// let r = Requirement::builder("x").profile(Profile::Auth0).build().unwrap();
/// assert_eq!(r.acr_values(), [PAPE_MULTI_FACTOR]);
/// ```
pub const PAPE_MULTI_FACTOR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// The phishing-resistant class of OpenID Connect Extended Authentication Profile (EAP) ACR
/// Values 1.0: the authentication used a method a look-alike site cannot replay, such as a
/// passkey (WebAuthn) bound to the provider's origin. A TOTP or SMS code is not phishing
/// resistant, whatever `amr` says.
///
/// ```
/// use actix_web_stepup::{ACR_PHR, ACR_PHRH, Profile, Requirement};
///
/// let r = Requirement::builder("x").profile(Profile::Okta).phishing_resistant().build().unwrap();
/// assert_eq!(r.acr_values(), [ACR_PHR]);
/// assert_eq!(r.also_accept_acr(), [ACR_PHRH]);
/// ```
pub const ACR_PHR: &str = "phr";

/// EAP ACR Values 1.0's phishing-resistant *and hardware-protected* class: as [`ACR_PHR`],
/// with a key the provider knows (from attestation) to be bound to hardware.
///
/// ```
/// assert_eq!(actix_web_stepup::ACR_PHRH, "phrh");
/// ```
pub const ACR_PHRH: &str = "phrh";

/// The clock difference a [`Requirement`] tolerates unless told otherwise
/// ([`RequirementBuilder::clock_skew`]): 30 seconds.
///
/// ```
/// use std::time::Duration;
/// use actix_web_stepup::DEFAULT_CLOCK_SKEW;
///
/// assert_eq!(DEFAULT_CLOCK_SKEW, Duration::from_secs(30));
/// ```
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// What a route demands of the login: roles (authorization), how strong the authentication
/// must be (`acr`, `amr` or Entra's `acrs`) and how fresh (`auth_time`, `max_age`).
///
/// Built with [`Requirement::builder`]; immutable afterwards. The name travels with a
/// step-up (in the app's pending login) so that a weak answer is recognised as the answer to
/// *this* requirement (see [`evaluate`](crate::evaluate)).
///
/// ```
/// use std::time::Duration;
/// use actix_web_stepup::{Profile, Requirement};
///
/// let salary = Requirement::builder("salary")
///     .profile(Profile::Auth0)
///     .role("hr")
///     .max_age(Duration::from_secs(600))
///     .build()
///     .unwrap();
/// assert_eq!(salary.name(), "salary");
/// assert_eq!(salary.accept_amr(), ["mfa"]);
/// assert_eq!(
///     salary.to_string(),
///     "role hr and acr one of [http://schemas.openid.net/pape/policies/2007/06/multi-factor] \
///      or amr containing “mfa”, at most 600 s old"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    name: String,
    acr_values: Vec<String>,
    also_accept_acr: Vec<String>,
    accept_amr: Vec<String>,
    auth_context: Option<String>,
    max_age: Option<Duration>,
    roles: Vec<String>,
    clock_skew: Duration,
}

impl Requirement {
    /// Starts a requirement called `name`: 1 to 64 characters of `A-Z a-z 0-9 - _ .` (it
    /// travels in URLs such as `/login?step_up=<name>` and in the session).
    ///
    /// ```
    /// use actix_web_stepup::Requirement;
    ///
    /// let fresh_mfa = Requirement::builder("payroll-export").accept_amr("mfa").build().unwrap();
    /// assert_eq!(fresh_mfa.max_age(), None, "no max_age: any age");
    /// assert!(Requirement::builder("no spaces").accept_amr("mfa").build().is_err());
    /// ```
    pub fn builder(name: impl Into<String>) -> RequirementBuilder {
        RequirementBuilder {
            name: name.into(),
            acr_values: Vec::new(),
            also_accept_acr: Vec::new(),
            accept_amr: Vec::new(),
            auth_context: None,
            max_age: None,
            roles: Vec::new(),
            clock_skew: DEFAULT_CLOCK_SKEW,
            profile: None,
            unoffered_class: false,
        }
    }

    /// The requirement's name, unique in its [`Requirements`].
    ///
    /// ```
    /// # use actix_web_stepup::Requirement;
    /// let r = Requirement::builder("audit").accept_amr("mfa").build().unwrap();
    /// assert_eq!(r.name(), "audit");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `acr` values requested on step-up (`acr_values`, OIDC Core §3.1.2.1); each of them
    /// also satisfies the requirement.
    ///
    /// ```
    /// # use actix_web_stepup::{Profile, Requirement};
    /// let r = Requirement::builder("x").profile(Profile::Okta).build().unwrap();
    /// assert_eq!(r.acr_values(), ["urn:okta:loa:2fa:any"]);
    /// ```
    pub fn acr_values(&self) -> &[String] {
        &self.acr_values
    }

    /// Further `acr` values that satisfy the requirement without being requested: stronger
    /// classes, or a provider's other spelling of the same level.
    ///
    /// ```
    /// # use actix_web_stepup::{Profile, Requirement};
    /// let r = Requirement::builder("x").profile(Profile::Keycloak).build().unwrap();
    /// assert_eq!(r.also_accept_acr(), ["2"]);
    /// ```
    pub fn also_accept_acr(&self) -> &[String] {
        &self.also_accept_acr
    }

    /// The `amr` values (RFC 8176 §2) any one of which, present in the login's `amr`, also
    /// satisfies the requirement; empty when `acr` (or `acrs`) alone decides.
    ///
    /// ```
    /// # use actix_web_stepup::{Profile, Requirement};
    /// let r = Requirement::builder("x").profile(Profile::Keycloak).build().unwrap();
    /// assert!(r.accept_amr().is_empty(), "Keycloak: acr alone decides");
    /// let r = Requirement::builder("x").accept_any_amr(["mfa", "hwk"]).build().unwrap();
    /// assert_eq!(r.accept_amr(), ["mfa", "hwk"]);
    /// ```
    pub fn accept_amr(&self) -> &[String] {
        &self.accept_amr
    }

    /// Microsoft Entra ID's authentication context id: requested with the `claims` parameter
    /// and satisfied when the token's `acrs` claim contains it.
    ///
    /// ```
    /// # use actix_web_stepup::{Profile, Requirement};
    /// let r = Requirement::builder("x").profile(Profile::Entra).build().unwrap();
    /// assert_eq!(r.auth_context(), Some("c1"));
    /// ```
    pub fn auth_context(&self) -> Option<&str> {
        self.auth_context.as_deref()
    }

    /// How long ago the authentication may have happened (`auth_time`); `None` = any age.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use actix_web_stepup::Requirement;
    /// let r = Requirement::builder("x").accept_amr("mfa").max_age(Duration::from_secs(300)).build().unwrap();
    /// assert_eq!(r.max_age(), Some(Duration::from_secs(300)));
    /// ```
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// The roles a login must all carry. Checked first: a missing role is never a reason to
    /// step up.
    ///
    /// ```
    /// # use actix_web_stepup::Requirement;
    /// let r = Requirement::builder("x").accept_amr("mfa").roles(["hr", "audit"]).build().unwrap();
    /// assert_eq!(r.roles(), ["hr", "audit"]);
    /// ```
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// The tolerated difference between the app's clock and the provider's.
    ///
    /// ```
    /// # use actix_web_stepup::{DEFAULT_CLOCK_SKEW, Requirement};
    /// let r = Requirement::builder("x").accept_amr("mfa").build().unwrap();
    /// assert_eq!(r.clock_skew(), DEFAULT_CLOCK_SKEW);
    /// ```
    pub fn clock_skew(&self) -> Duration {
        self.clock_skew
    }

    /// Whether `auth` has every role this requirement needs.
    ///
    /// ```
    /// # use actix_web_stepup::{AuthState, Requirement};
    /// let r = Requirement::builder("x").accept_amr("mfa").role("hr").build().unwrap();
    /// let mut alice = AuthState::new("alice", 0);
    /// assert!(!r.has_roles(&alice));
    /// alice.roles.push("hr".into());
    /// assert!(r.has_roles(&alice));
    /// ```
    pub fn has_roles(&self, auth: &AuthState) -> bool {
        self.missing_role(auth).is_none()
    }

    /// The first role this requirement needs and `auth` lacks.
    pub(crate) fn missing_role(&self, auth: &AuthState) -> Option<&String> {
        self.roles.iter().find(|r| !auth.roles.contains(r))
    }

    /// Whether `auth` meets the strength part (an accepted `acr`, `acrs` context or `amr`),
    /// whatever its age.
    ///
    /// ```
    /// # use actix_web_stepup::{AuthState, Profile, Requirement, PAPE_MULTI_FACTOR};
    /// let r = Requirement::builder("x").profile(Profile::Auth0).build().unwrap();
    /// let mut login = AuthState::new("alice", 0);
    /// login.amr = vec!["pwd".into()];
    /// assert!(!r.is_strong(&login));
    /// login.amr.push("mfa".into());
    /// assert!(r.is_strong(&login), "amr contains mfa");
    /// ```
    pub fn is_strong(&self, auth: &AuthState) -> bool {
        // acr: one of the accepted classes. OIDC Core §3.1.3.7 rule 12: the client checks the
        // acr that came back; §5.5.1.1: the OP may have ignored acr_values.
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
        // amr: an accepted method must be *present* (RFC 8176 §2: "mfa" = multiple factors).
        // A well-known sample of this check is inverted and refuses tokens whose amr has mfa.
        let amr_ok = self
            .accept_amr
            .iter()
            .any(|want| auth.amr.iter().any(|m| m == want));
        acr_ok || acrs_ok || amr_ok
    }

    /// The parameters of the authorization request a step-up to this requirement sends.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use actix_web_stepup::{Profile, Requirement, PAPE_MULTI_FACTOR};
    /// let r = Requirement::builder("x")
    ///     .profile(Profile::Custom)
    ///     .max_age(Duration::from_secs(600))
    ///     .build()
    ///     .unwrap();
    /// let request = r.step_up_request();
    /// assert_eq!(request.acr_values, [PAPE_MULTI_FACTOR]);
    /// assert_eq!(request.max_age, Some(600));
    /// ```
    pub fn step_up_request(&self) -> StepUpRequest {
        StepUpRequest {
            acr_values: self.acr_values.clone(),
            max_age: self.max_age.map(|d| d.as_secs()),
            auth_context: self.auth_context.clone(),
        }
    }
}

/// "role hr and acr one of \[X\] or amr containing “mfa”, at most 600 s old".
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ways = Vec::new();
        let accepted: Vec<&str> = self
            .acr_values
            .iter()
            .chain(&self.also_accept_acr)
            .map(String::as_str)
            .collect();
        if !accepted.is_empty() {
            ways.push(format!("acr one of [{}]", accepted.join(" ")));
        }
        if let Some(context) = &self.auth_context {
            ways.push(format!("acrs containing the authentication context “{context}”"));
        }
        if !self.accept_amr.is_empty() {
            let any: Vec<String> = self.accept_amr.iter().map(|m| format!("“{m}”")).collect();
            ways.push(format!("amr containing {}", any.join(" or ")));
        }
        if !self.roles.is_empty() {
            write!(f, "role {} and ", self.roles.join(", "))?;
        }
        f.write_str(&ways.join(" or "))?;
        if let Some(max_age) = self.max_age {
            write!(f, ", at most {} s old", max_age.as_secs())?;
        }
        Ok(())
    }
}

/// The parameters of a step-up: what to ask the provider for in a new authorization request
/// (OIDC Core §3.1.2.1), or what a resource server's RFC 9470 challenge asks for.
///
/// ```
/// use actix_web_stepup::StepUpRequest;
///
/// let request = StepUpRequest {
///     acr_values: vec!["urn:example:mfa".into()],
///     max_age: Some(600),
///     auth_context: None,
/// };
/// assert_eq!(request.to_string(), "acr_values = urn:example:mfa, max_age = 600 s");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StepUpRequest {
    /// `acr_values`: the classes to ask for, most preferred first.
    pub acr_values: Vec<String>,
    /// `max_age` in seconds: how recent the authentication must be.
    pub max_age: Option<u64>,
    /// Microsoft Entra ID: the authentication context to ask for with the `claims`
    /// parameter ([`StepUpRequest::id_token_claims`] for the authorization request; an API's
    /// [`challenge`](StepUpRequest::challenge) carries it too).
    pub auth_context: Option<String>,
}

impl StepUpRequest {
    /// The `claims` parameter (OIDC Core §5.5) for the authorization request of this step-up,
    /// as JSON; the caller URL-encodes it with the other parameters.
    ///
    /// - with an Entra authentication context: `{"id_token":{"acrs":{"essential":true,
    ///   "value":"c1"}}}`, the only way to ask Entra ID for one (send it always);
    /// - otherwise, with `acr_values`: the essential `acr` claim, `{"id_token":{"acr":
    ///   {"essential":true,"values":[…]}}}`, with which a provider fails the request rather
    ///   than quietly issue a weaker token (§5.5.1.1). Send it only to a provider whose
    ///   discovery document says `claims_parameter_supported: true`;
    /// - `None` with neither.
    ///
    /// An API's challenge carries the access-token form instead
    /// ([`StepUpRequest::challenge`]).
    ///
    /// ```
    /// use actix_web_stepup::StepUpRequest;
    ///
    /// let entra = StepUpRequest { auth_context: Some("c1".into()), ..Default::default() };
    /// assert_eq!(
    ///     entra.id_token_claims().unwrap(),
    ///     r#"{"id_token":{"acrs":{"essential":true,"value":"c1"}}}"#
    /// );
    /// let okta = StepUpRequest { acr_values: vec!["urn:okta:loa:2fa:any".into()], ..Default::default() };
    /// assert_eq!(
    ///     okta.id_token_claims().unwrap(),
    ///     r#"{"id_token":{"acr":{"essential":true,"values":["urn:okta:loa:2fa:any"]}}}"#
    /// );
    /// assert_eq!(StepUpRequest::default().id_token_claims(), None);
    /// ```
    pub fn id_token_claims(&self) -> Option<String> {
        if let Some(context) = &self.auth_context {
            return Some(acrs_claims_request("id_token", context).to_string());
        }
        (!self.acr_values.is_empty())
            .then(|| json!({"id_token": {"acr": {"essential": true, "values": self.acr_values}}}).to_string())
    }
}

/// An essential `acrs` claim of `value` in the `member` (`id_token` or `access_token`) of an
/// OIDC Core §5.5 claims request: how Microsoft Entra ID is asked for an authentication
/// context ("Developer guide to Conditional Access authentication context").
pub(crate) fn acrs_claims_request(member: &str, value: &str) -> Value {
    json!({member: {"acrs": {"essential": true, "value": value}}})
}

/// "acr_values = X Y, authentication context c1, max_age = 600 s".
impl fmt::Display for StepUpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.acr_values.is_empty() {
            parts.push(format!("acr_values = {}", self.acr_values.join(" ")));
        }
        if let Some(context) = &self.auth_context {
            parts.push(format!("authentication context {context}"));
        }
        if let Some(max_age) = self.max_age {
            parts.push(format!("max_age = {max_age} s"));
        }
        if parts.is_empty() {
            f.write_str("a new authentication")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Builds a [`Requirement`]; see [`Requirement::builder`]. Later calls override earlier
/// ones, so apply a [`profile`](Self::profile) first and your overrides after it.
///
/// ```
/// use actix_web_stepup::{Profile, Requirement};
///
/// let r = Requirement::builder("x")
///     .accept_amr("hwk")
///     .profile(Profile::Okta) // replaces the amr set above
///     .build()
///     .unwrap();
/// assert_eq!(r.accept_amr(), ["mfa"]);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RequirementBuilder {
    name: String,
    acr_values: Vec<String>,
    also_accept_acr: Vec<String>,
    accept_amr: Vec<String>,
    auth_context: Option<String>,
    max_age: Option<Duration>,
    roles: Vec<String>,
    clock_skew: Duration,
    profile: Option<Profile>,
    unoffered_class: bool,
}

impl RequirementBuilder {
    /// Takes how multi-factor is requested and recognised from a provider preset: its
    /// `acr_values`, further accepted `acr` values, accepted `amr` and auth context.
    ///
    /// ```
    /// # use actix_web_stepup::{Profile, Requirement};
    /// let r = Requirement::builder("x").profile(Profile::Keycloak).build().unwrap();
    /// assert_eq!(r.acr_values(), ["gold"]);
    /// ```
    pub fn profile(mut self, profile: Profile) -> Self {
        let preset = profile.preset();
        self.acr_values = owned(preset.acr_values);
        self.also_accept_acr = owned(preset.also_accept_acr);
        self.accept_amr = owned(preset.accept_amr);
        self.auth_context = preset.auth_context.map(str::to_owned);
        self.profile = Some(profile);
        self
    }

    /// Demands the phishing-resistant class instead of multi-factor: requests
    /// [`ACR_PHR`], accepts it or [`ACR_PHRH`] (stronger), and nothing else — no `amr` value
    /// (`mfa` is also said of a phishable TOTP code; `hwk` of keys a look-alike site may still
    /// relay) and no auth context. Call it after [`Self::profile`], whose multi-factor values
    /// it replaces; [`Self::acr_values`] afterwards can still rename the class.
    ///
    /// Only providers that issue the class can meet it: with a profile that does not
    /// ([`Profile::offers_phishing_resistant`]: Auth0, Keycloak, Entra ID) the build fails
    /// with [`RequirementError::ClassNotOffered`] rather than send every user to a 403.
    ///
    /// # Security
    ///
    /// What is checked is the `acr` the provider returns (OIDC Core §3.1.3.7 rule 12): the
    /// relying party cannot verify that the method really resisted phishing, nor how the
    /// provider let the user register the passkey. It trusts the provider for both.
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_web_stepup::{AuthState, Profile, Requirement, RequirementError, evaluate};
    ///
    /// let audit = Requirement::builder("audit")
    ///     .profile(Profile::Custom)
    ///     .phishing_resistant()
    ///     .max_age(Duration::from_secs(300))
    ///     .build()
    ///     .unwrap();
    /// let mut login = AuthState::new("alice", 1_000);
    /// login.auth_time = Some(1_000);
    /// login.acr = Some("http://schemas.openid.net/pape/policies/2007/06/multi-factor".into());
    /// login.amr = vec!["pwd".into(), "otp".into(), "mfa".into()];
    /// assert!(!evaluate(&login, &audit, 1_010).is_allowed(), "a TOTP login is not enough");
    /// login.acr = Some("phr".into());
    /// assert!(evaluate(&login, &audit, 1_010).is_allowed());
    ///
    /// let err = Requirement::builder("audit").profile(Profile::Auth0).phishing_resistant().build();
    /// assert!(matches!(err, Err(RequirementError::ClassNotOffered { .. })));
    /// ```
    pub fn phishing_resistant(mut self) -> Self {
        self.acr_values = vec![ACR_PHR.to_owned()];
        self.also_accept_acr = vec![ACR_PHRH.to_owned()];
        self.accept_amr.clear();
        self.auth_context = None;
        self.unoffered_class = self.profile.is_some_and(|p| !p.offers_phishing_resistant());
        self
    }

    /// Replaces the `acr` values requested on step-up (and accepted).
    ///
    /// ```
    /// # use actix_web_stepup::{Profile, Requirement};
    /// let r = Requirement::builder("x")
    ///     .profile(Profile::Custom)
    ///     .acr_values(["urn:example:strong"])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(r.acr_values(), ["urn:example:strong"]);
    /// ```
    pub fn acr_values<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.acr_values = values.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the `acr` values accepted without being requested.
    ///
    /// ```
    /// # use actix_web_stepup::Requirement;
    /// let r = Requirement::builder("x").acr_values(["silver"]).also_accept_acr(["gold"]).build().unwrap();
    /// assert_eq!(r.also_accept_acr(), ["gold"]);
    /// ```
    pub fn also_accept_acr<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.also_accept_acr = values.into_iter().map(Into::into).collect();
        self
    }

    /// Accepts a login whose `amr` contains `method` (RFC 8176 §2, e.g. `mfa`, `hwk`), in
    /// place of the `amr` values accepted so far.
    ///
    /// ```
    /// # use actix_web_stepup::Requirement;
    /// let r = Requirement::builder("x").accept_amr("hwk").build().unwrap();
    /// assert_eq!(r.accept_amr(), ["hwk"]);
    /// ```
    pub fn accept_amr(mut self, method: impl Into<String>) -> Self {
        self.accept_amr = vec![method.into()];
        self
    }

    /// Accepts a login whose `amr` contains any one of `methods` ("`mfa` or `hwk`"), in place
    /// of the `amr` values accepted so far. No methods at all is [`acr_only`](Self::acr_only).
    ///
    /// ```
    /// # use actix_web_stepup::{AuthState, Requirement};
    /// let r = Requirement::builder("x").accept_any_amr(["mfa", "hwk"]).build().unwrap();
    /// let mut login = AuthState::new("alice", 0);
    /// login.amr = vec!["hwk".into()];
    /// assert!(r.is_strong(&login), "a hardware key alone is enough here");
    /// ```
    pub fn accept_any_amr<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.accept_amr = methods.into_iter().map(Into::into).collect();
        self
    }

    /// Accepts no `amr` value: `acr` (or `acrs`) alone decides.
    ///
    /// ```
    /// # use actix_web_stepup::{Profile, Requirement};
    /// let r = Requirement::builder("x").profile(Profile::Auth0).acr_only().build().unwrap();
    /// assert!(r.accept_amr().is_empty());
    /// ```
    pub fn acr_only(mut self) -> Self {
        self.accept_amr.clear();
        self
    }

    /// Requests and accepts a Microsoft Entra ID authentication context (`acrs` claim).
    ///
    /// ```
    /// # use actix_web_stepup::{Profile, Requirement};
    /// let r = Requirement::builder("x").profile(Profile::Entra).auth_context("c7").build().unwrap();
    /// assert_eq!(r.auth_context(), Some("c7"));
    /// ```
    pub fn auth_context(mut self, id: impl Into<String>) -> Self {
        self.auth_context = Some(id.into());
        self
    }

    /// How recent `auth_time` must be; sent as `max_age` on step-up.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use actix_web_stepup::Requirement;
    /// let r = Requirement::builder("x").accept_amr("mfa").max_age(Duration::from_secs(300)).build().unwrap();
    /// assert_eq!(r.step_up_request().max_age, Some(300));
    /// ```
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Adds a role the login must carry.
    ///
    /// ```
    /// # use actix_web_stepup::Requirement;
    /// let r = Requirement::builder("x").accept_amr("mfa").role("hr").role("audit").build().unwrap();
    /// assert_eq!(r.roles(), ["hr", "audit"]);
    /// ```
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Replaces the roles the login must carry.
    ///
    /// ```
    /// # use actix_web_stepup::Requirement;
    /// let r = Requirement::builder("x").accept_amr("mfa").roles(["hr"]).build().unwrap();
    /// assert_eq!(r.roles(), ["hr"]);
    /// ```
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// The tolerated clock difference (default [`DEFAULT_CLOCK_SKEW`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use actix_web_stepup::Requirement;
    /// let r = Requirement::builder("x").accept_amr("mfa").clock_skew(Duration::from_secs(60)).build().unwrap();
    /// assert_eq!(r.clock_skew(), Duration::from_secs(60));
    /// ```
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// Checks and builds the requirement.
    ///
    /// # Errors
    ///
    /// - [`RequirementError::InvalidName`]: the name is empty, longer than 64 characters or
    ///   has characters other than `A-Z a-z 0-9 - _ .`;
    /// - [`RequirementError::InvalidValue`]: an `acr`, `amr` or auth-context value is empty
    ///   or has a character outside visible ASCII, a space, `"` or `\` (they are sent
    ///   space-separated and inside quoted strings, RFC 9470 §3); or a role is empty, has a
    ///   control character or starts or ends with whitespace. Roles are only compared, never
    ///   sent, so `HR Team` is fine (a roles claim that is one space-separated string cannot
    ///   carry it, an array can).
    /// - [`RequirementError::NoStrength`]: nothing would ever satisfy it (no `acr`, `amr` or
    ///   auth context accepted). An empty setting must not silently mean "any login".
    ///
    /// ```
    /// use actix_web_stepup::{Requirement, RequirementError};
    ///
    /// let err = Requirement::builder("salary").role("hr").build().unwrap_err();
    /// assert_eq!(err, RequirementError::NoStrength("salary".into()));
    /// let err = Requirement::builder("x").acr_values(["a\"b"]).build().unwrap_err();
    /// assert!(matches!(err, RequirementError::InvalidValue { .. }));
    /// assert!(Requirement::builder("x").accept_amr("mfa").role("HR Team").build().is_ok());
    /// assert!(Requirement::builder("x").accept_amr("mfa").role("hr\n").build().is_err());
    /// ```
    pub fn build(self) -> Result<Requirement, RequirementError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !name_ok {
            return Err(RequirementError::InvalidName(self.name));
        }
        if self.unoffered_class
            && let Some(profile) = self.profile
        {
            return Err(RequirementError::ClassNotOffered {
                name: self.name,
                profile,
            });
        }
        let values = self
            .acr_values
            .iter()
            .chain(&self.also_accept_acr)
            .map(|v| ("acr", v))
            .chain(self.accept_amr.iter().map(|v| ("amr", v)))
            .chain(self.auth_context.iter().map(|v| ("auth context", v)))
            .chain(self.roles.iter().map(|v| ("role", v)));
        for (what, value) in values {
            let ok = if what == "role" {
                !value.is_empty() && value.trim() == value && !value.chars().any(char::is_control)
            } else {
                !value.is_empty()
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            };
            if !ok {
                return Err(RequirementError::InvalidValue {
                    what,
                    value: value.clone(),
                });
            }
        }
        if self.acr_values.is_empty()
            && self.also_accept_acr.is_empty()
            && self.accept_amr.is_empty()
            && self.auth_context.is_none()
        {
            return Err(RequirementError::NoStrength(self.name));
        }
        Ok(Requirement {
            name: self.name,
            acr_values: self.acr_values,
            also_accept_acr: self.also_accept_acr,
            accept_amr: self.accept_amr,
            auth_context: self.auth_context,
            max_age: self.max_age,
            roles: self.roles,
            clock_skew: self.clock_skew,
        })
    }
}

fn owned(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

/// Why a [`RequirementBuilder`] refused to build.
///
/// ```
/// use actix_web_stepup::{Requirement, RequirementError};
///
/// let err = Requirement::builder("").accept_amr("mfa").build().unwrap_err();
/// assert_eq!(err, RequirementError::InvalidName(String::new()));
/// assert!(err.to_string().contains("1 to 64 characters"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequirementError {
    /// The name is empty, too long or has characters outside `A-Z a-z 0-9 - _ .`.
    InvalidName(String),
    /// A value cannot be sent or compared safely.
    InvalidValue {
        /// `acr`, `amr`, `auth context` or `role`.
        what: &'static str,
        /// The value as given.
        value: String,
    },
    /// The named requirement accepts no `acr`, `amr` or auth context: nothing satisfies it.
    NoStrength(String),
    /// The requirement demands the phishing-resistant class
    /// ([`RequirementBuilder::phishing_resistant`]) of a provider whose profile does not issue
    /// it.
    ClassNotOffered {
        /// The requirement's name.
        name: String,
        /// The provider's profile.
        profile: Profile,
    },
}

impl fmt::Display for RequirementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequirementError::InvalidName(name) => write!(
                f,
                "requirement name {name:?} must be 1 to 64 characters of A-Z a-z 0-9 - _ ."
            ),
            RequirementError::InvalidValue { what: "role", value } => write!(
                f,
                "role {value:?} must be non-empty, without control characters or surrounding spaces"
            ),
            RequirementError::InvalidValue { what, value } => write!(
                f,
                "{what} value {value:?} must be non-empty visible ASCII without spaces, quotes or backslashes"
            ),
            RequirementError::NoStrength(name) => write!(
                f,
                "requirement {name:?} accepts no acr, amr or authentication context, so nothing could satisfy it"
            ),
            RequirementError::ClassNotOffered { name, profile } => write!(
                f,
                "requirement {name:?} demands the phishing-resistant class (acr phr), which the {profile:?} \
                 profile's provider does not issue"
            ),
        }
    }
}

impl std::error::Error for RequirementError {}

/// How a provider is asked for a multi-factor sign-in and how its tokens say they had one.
/// Applied with [`RequirementBuilder::profile`].
///
/// | profile | requests | accepts |
/// | --- | --- | --- |
/// | `Auth0`, `Custom` | `acr_values` = [`PAPE_MULTI_FACTOR`] | that `acr`, or `amr` containing `mfa` |
/// | `Okta` | `urn:okta:loa:2fa:any` | that, `phr`, `phrh`, or `amr` containing `mfa` |
/// | `Keycloak` | `gold` (ACR-to-LoA mapping: gold = 2) | `acr` `gold` or `2`; `amr` ignored |
/// | `Entra` | auth context `c1` (`claims` parameter) | `acrs` containing `c1`; `amr` ignored |
///
/// The phishing-resistant class ([`RequirementBuilder::phishing_resistant`], `acr` `phr`) is
/// issued by Okta (and by Fabrikam ID, under `Custom`). Auth0, Keycloak and Entra ID issue
/// no such `acr`: with Entra ID, require an authentication context whose Conditional Access
/// policy demands the "phishing-resistant MFA" authentication strength
/// ([`RequirementBuilder::auth_context`]); with Keycloak, map a LoA to a WebAuthn-passwordless
/// step and request that (`acr_values`).
///
/// ```
/// use actix_web_stepup::{Profile, Requirement};
///
/// let r = Requirement::builder("x").profile(Profile::Entra).build().unwrap();
/// assert!(r.acr_values().is_empty());
/// assert_eq!(r.auth_context(), Some("c1"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// Auth0 issues the PAPE URI as `acr` when `acr_values` asks for it and MFA ran, and
    /// `amr: ["mfa"]` whenever MFA ran (also from a rule or Action).
    Auth0,
    /// Okta's levels of assurance: two factors of any kind; the phishing-resistant classes
    /// (`phr`, `phrh`) are stronger and also accepted.
    Okta,
    /// Keycloak's "ACR to LoA mapping" (silver = 1, gold = 2): it answers with the acr name
    /// when the mapping exists, else the level number; its `amr` values never say `mfa`.
    Keycloak,
    /// Microsoft Entra ID: a Conditional Access authentication context, asked for with
    /// `claims={"id_token":{"acrs":{"essential":true,"value":"c1"}}}` and reported in `acrs`.
    /// `amr: ["mfa"]` alone is not taken as the context: its policy may demand more.
    Entra,
    /// Anything else (and Fabrikam ID): the same values as [`Profile::Auth0`], meant to be
    /// overridden.
    Custom,
}

/// The values a [`Profile`] applies.
struct Preset {
    acr_values: &'static [&'static str],
    also_accept_acr: &'static [&'static str],
    accept_amr: &'static [&'static str],
    auth_context: Option<&'static str>,
}

impl Profile {
    /// Whether the provider issues the phishing-resistant class `phr` (EAP ACR Values 1.0):
    /// Okta does, and `Custom` is assumed to (Fabrikam ID does); Auth0, Keycloak and Entra ID
    /// do not issue that `acr`.
    ///
    /// ```
    /// use actix_web_stepup::Profile;
    ///
    /// assert!(Profile::Okta.offers_phishing_resistant());
    /// assert!(!Profile::Auth0.offers_phishing_resistant());
    /// ```
    pub fn offers_phishing_resistant(self) -> bool {
        matches!(self, Profile::Okta | Profile::Custom)
    }

    fn preset(self) -> Preset {
        match self {
            Profile::Auth0 | Profile::Custom => Preset {
                acr_values: &[PAPE_MULTI_FACTOR],
                also_accept_acr: &[],
                accept_amr: &["mfa"],
                auth_context: None,
            },
            Profile::Okta => Preset {
                acr_values: &["urn:okta:loa:2fa:any"],
                also_accept_acr: &["phr", "phrh"],
                accept_amr: &["mfa"],
                auth_context: None,
            },
            Profile::Keycloak => Preset {
                acr_values: &["gold"],
                also_accept_acr: &["2"],
                accept_amr: &[],
                auth_context: None,
            },
            Profile::Entra => Preset {
                acr_values: &[],
                also_accept_acr: &[],
                accept_amr: &[],
                auth_context: Some("c1"),
            },
        }
    }
}

/// Names a registered [`Requirement`] at the type level, for
/// [`StepUp<P>`](crate::StepUp).
///
/// ```
/// use actix_web_stepup::Protected;
///
/// /// Salary pages: role hr and a fresh multi-factor login.
/// pub struct SalaryAccess;
///
/// impl Protected for SalaryAccess {
///     const NAME: &'static str = "salary";
/// }
/// ```
pub trait Protected: 'static {
    /// The [`Requirement::name`] looked up in the app's [`Requirements`].
    const NAME: &'static str;
}

/// The registry of named requirements. Register it as app data
/// (`App::new().app_data(web::Data::new(requirements))`): the
/// [`StepUp`](crate::StepUp) extractor and the app's own handlers (such as a
/// `/login?step_up=<name>` route) look requirements up by name.
///
/// ```
/// use std::time::Duration;
/// use actix_web_stepup::{Profile, Requirement, Requirements};
///
/// let mfa = Requirement::builder("salary").profile(Profile::Custom).role("hr");
/// let requirements = Requirements::new()
///     .with(mfa.clone().max_age(Duration::from_secs(600)).build().unwrap())
///     .unwrap()
///     .with(Requirement::builder("audit").profile(Profile::Custom).role("hr")
///         .max_age(Duration::from_secs(300)).build().unwrap())
///     .unwrap();
/// assert_eq!(requirements.get("audit").unwrap().max_age(), Some(Duration::from_secs(300)));
/// assert!(requirements.get("payroll").is_none());
/// let again = mfa.build().unwrap();
/// assert!(requirements.with(again).is_err(), "names are unique");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    by_name: BTreeMap<String, Requirement>,
}

impl Requirements {
    /// An empty registry.
    ///
    /// ```
    /// # use actix_web_stepup::Requirements;
    /// assert_eq!(Requirements::new().iter().count(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `requirement`.
    ///
    /// # Errors
    ///
    /// [`DuplicateRequirement`] if one of that name is already registered.
    ///
    /// ```
    /// # use actix_web_stepup::{Requirement, Requirements};
    /// let mut requirements = Requirements::new();
    /// requirements.register(Requirement::builder("a").accept_amr("mfa").build().unwrap()).unwrap();
    /// assert!(requirements.get("a").is_some());
    /// ```
    pub fn register(&mut self, requirement: Requirement) -> Result<(), DuplicateRequirement> {
        if self.by_name.contains_key(requirement.name()) {
            return Err(DuplicateRequirement(requirement.name));
        }
        self.by_name.insert(requirement.name.clone(), requirement);
        Ok(())
    }

    /// [`register`](Self::register), by value, for chaining.
    ///
    /// # Errors
    ///
    /// [`DuplicateRequirement`] if one of that name is already registered.
    ///
    /// ```
    /// # use actix_web_stepup::{Requirement, Requirements};
    /// let r = Requirements::new().with(Requirement::builder("a").accept_amr("mfa").build().unwrap()).unwrap();
    /// assert_eq!(r.iter().count(), 1);
    /// ```
    pub fn with(mut self, requirement: Requirement) -> Result<Self, DuplicateRequirement> {
        self.register(requirement)?;
        Ok(self)
    }

    /// The requirement called `name`.
    ///
    /// ```
    /// # use actix_web_stepup::{Requirement, Requirements};
    /// let r = Requirements::new().with(Requirement::builder("a").accept_amr("mfa").build().unwrap()).unwrap();
    /// assert_eq!(r.get("a").map(|r| r.name()), Some("a"));
    /// ```
    pub fn get(&self, name: &str) -> Option<&Requirement> {
        self.by_name.get(name)
    }

    /// The requirement that marker type `P` names.
    ///
    /// ```
    /// # use actix_web_stepup::{Protected, Requirement, Requirements};
    /// struct Audit;
    /// impl Protected for Audit { const NAME: &'static str = "audit"; }
    /// let r = Requirements::new().with(Requirement::builder("audit").accept_amr("mfa").build().unwrap()).unwrap();
    /// assert!(r.of::<Audit>().is_some());
    /// ```
    pub fn of<P: Protected>(&self) -> Option<&Requirement> {
        self.get(P::NAME)
    }

    /// Every requirement, by name.
    ///
    /// ```
    /// # use actix_web_stepup::{Requirement, Requirements};
    /// let r = Requirements::new()
    ///     .with(Requirement::builder("b").accept_amr("mfa").build().unwrap()).unwrap()
    ///     .with(Requirement::builder("a").accept_amr("mfa").build().unwrap()).unwrap();
    /// assert_eq!(r.iter().map(|r| r.name()).collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &Requirement> {
        self.by_name.values()
    }
}

/// A requirement of this name is already registered.
///
/// ```
/// # use actix_web_stepup::{DuplicateRequirement, Requirement, Requirements};
/// let a = Requirement::builder("a").accept_amr("mfa").build().unwrap();
/// let err = Requirements::new().with(a.clone()).unwrap().with(a).unwrap_err();
/// assert_eq!(err, DuplicateRequirement("a".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRequirement(pub String);

impl fmt::Display for DuplicateRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a requirement named {:?} is already registered", self.0)
    }
}

impl std::error::Error for DuplicateRequirement {}
