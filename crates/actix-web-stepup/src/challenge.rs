//! RFC 9470 both ways: building the `WWW-Authenticate` challenge an API answers a weak token
//! with, and reading the step-up a downstream API's challenge asks for. The parser follows
//! the auth-param grammar of RFC 9110 §11 (formerly RFC 7235 §2), quoted strings included.

use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use crate::requirement::{StepUpRequest, acrs_claims_request};

/// The `error` of an RFC 9470 §3 challenge.
///
/// ```
/// use actix_web_stepup::{Challenge, INSUFFICIENT_USER_AUTHENTICATION};
///
/// let c = &Challenge::parse_all(r#"Bearer error="insufficient_user_authentication""#).unwrap()[0];
/// assert_eq!(c.param("error"), Some(INSUFFICIENT_USER_AUTHENTICATION));
/// ```
pub const INSUFFICIENT_USER_AUTHENTICATION: &str = "insufficient_user_authentication";

/// One challenge of a `WWW-Authenticate` header: a scheme and either a `token68` or
/// name=value parameters (RFC 9110 §11.2–11.3). Its `Display` is the header syntax: integer
/// values bare, every other value a quoted string.
///
/// Only valid challenges can be built, so every one can be written: the scheme and parameter
/// names are RFC 9110 tokens, a token68 is one and excludes parameters, a parameter name
/// occurs once (compared case-insensitively, §11.2), and no value has a control character
/// other than a tab (a quoted-string cannot carry one). The constructors return a
/// [`ChallengeError`] for anything else, so hostile names cannot inject a parameter, a second
/// challenge or a header line.
///
/// ```
/// use actix_web_stepup::Challenge;
///
/// let c = Challenge::bearer()
///     .with_param("error", "insufficient_user_authentication")?
///     .with_param("max_age", "600")?;
/// assert_eq!(c.to_string(), r#"Bearer error="insufficient_user_authentication", max_age=600"#);
/// assert_eq!(c.param("MAX_AGE"), Some("600"), "parameter names are case-insensitive");
///
/// assert!(Challenge::bearer().with_param("realm=x, evil", "1").is_err());
/// assert!(c.with_param("Max_Age", "5").is_err(), "each name at most once");
/// # Ok::<(), actix_web_stepup::ChallengeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    token68: Option<String>,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// A challenge of `scheme` with no parameters.
    ///
    /// # Errors
    ///
    /// [`ChallengeError::InvalidToken`] when `scheme` is not an RFC 9110 token (§11.1:
    /// `auth-scheme = token`): empty, or with a space, `=`, `,`, `"`, a control or a
    /// non-ASCII character.
    ///
    /// ```
    /// use actix_web_stepup::Challenge;
    ///
    /// assert_eq!(Challenge::new("DPoP")?.to_string(), "DPoP");
    /// assert!(Challenge::new("Bearer realm=x").is_err());
    /// assert!(Challenge::new("Bearer\r\nSet-Cookie: a=b").is_err());
    /// # Ok::<(), actix_web_stepup::ChallengeError>(())
    /// ```
    pub fn new(scheme: impl Into<String>) -> Result<Self, ChallengeError> {
        let scheme = scheme.into();
        if !is_token(&scheme) {
            return Err(ChallengeError::InvalidToken {
                what: "auth-scheme",
                value: scheme,
            });
        }
        Ok(Self {
            scheme,
            token68: None,
            params: Vec::new(),
        })
    }

    /// A `Bearer` challenge with no parameters (RFC 6750 §3), the one this crate writes.
    ///
    /// ```
    /// use actix_web_stepup::Challenge;
    ///
    /// assert_eq!(Challenge::bearer().to_string(), "Bearer");
    /// ```
    pub fn bearer() -> Self {
        Self {
            scheme: "Bearer".to_owned(),
            token68: None,
            params: Vec::new(),
        }
    }

    /// A challenge of `scheme` carrying a `token68` instead of parameters (RFC 9110 §11.2),
    /// such as `Negotiate` data.
    ///
    /// # Errors
    ///
    /// [`ChallengeError::InvalidToken`] when `scheme` is not a token or `token68` is not a
    /// token68 (`1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`).
    ///
    /// ```
    /// use actix_web_stepup::Challenge;
    ///
    /// let c = Challenge::new_token68("Negotiate", "YIIB+w==")?;
    /// assert_eq!(c.to_string(), "Negotiate YIIB+w==");
    /// assert_eq!(c.token68(), Some("YIIB+w=="));
    /// assert!(Challenge::new_token68("Negotiate", "a b").is_err());
    /// assert!(c.with_param("realm", "x").is_err(), "a token68 or parameters, not both");
    /// # Ok::<(), actix_web_stepup::ChallengeError>(())
    /// ```
    pub fn new_token68(
        scheme: impl Into<String>,
        token68: impl Into<String>,
    ) -> Result<Self, ChallengeError> {
        let mut challenge = Self::new(scheme)?;
        let token68 = token68.into();
        if !is_token68(&token68) {
            return Err(ChallengeError::InvalidToken {
                what: "token68",
                value: token68,
            });
        }
        challenge.token68 = Some(token68);
        Ok(challenge)
    }

    /// Adds a parameter. Its value is written as a quoted string (with `"` and `\` escaped)
    /// unless it is an integer.
    ///
    /// # Errors
    ///
    /// - [`ChallengeError::InvalidToken`]: `name` is not an RFC 9110 token;
    /// - [`ChallengeError::DuplicateParam`]: the challenge already has `name` (compared
    ///   case-insensitively; RFC 9110 §11.2: each name MUST occur at most once);
    /// - [`ChallengeError::InvalidValue`]: `value` has a control character other than a tab,
    ///   which no quoted-string can carry;
    /// - [`ChallengeError::Token68WithParams`]: the challenge carries a token68.
    ///
    /// ```
    /// use actix_web_stepup::{Challenge, ChallengeError};
    ///
    /// let c = Challenge::bearer().with_param("error_description", r#"say "hi""#)?;
    /// assert_eq!(c.to_string(), r#"Bearer error_description="say \"hi\"""#);
    /// assert_eq!(
    ///     Challenge::bearer().with_param("error_description", "a\r\nb"),
    ///     Err(ChallengeError::InvalidValue { name: "error_description".into() })
    /// );
    /// # Ok::<(), ChallengeError>(())
    /// ```
    pub fn with_param(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, ChallengeError> {
        let (name, value) = (name.into(), value.into());
        if self.token68.is_some() {
            return Err(ChallengeError::Token68WithParams);
        }
        if !is_token(&name) {
            return Err(ChallengeError::InvalidToken {
                what: "parameter name",
                value: name,
            });
        }
        if self.param(&name).is_some() {
            return Err(ChallengeError::DuplicateParam(name));
        }
        if !is_quotable(&value) {
            return Err(ChallengeError::InvalidValue { name });
        }
        self.params.push((name, value));
        Ok(self)
    }

    /// Adds a parameter this crate names, with control characters dropped from its value:
    /// for values that come from elsewhere (a description, a hand-built [`StepUpRequest`])
    /// in a writer that must not fail. `name` is a token and not yet present.
    pub(crate) fn with_known_param(mut self, name: &'static str, value: &str) -> Self {
        debug_assert!(is_token(name) && self.param(name).is_none() && self.token68.is_none());
        let value = value
            .chars()
            .filter(|c| *c == '\t' || !c.is_ascii_control())
            .collect();
        self.params.push((name.to_owned(), value));
        self
    }

    /// The authentication scheme, as written or received (compare it case-insensitively).
    ///
    /// ```
    /// use actix_web_stepup::Challenge;
    ///
    /// let c = &Challenge::parse_all("bearer realm=api")?[0];
    /// assert!(c.scheme().eq_ignore_ascii_case("Bearer"));
    /// # Ok::<(), actix_web_stepup::ChallengeError>(())
    /// ```
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The `token68`, if the challenge carries one instead of parameters.
    ///
    /// ```
    /// use actix_web_stepup::Challenge;
    ///
    /// assert_eq!(Challenge::parse_all("Negotiate abc=")?[0].token68(), Some("abc="));
    /// assert_eq!(Challenge::bearer().token68(), None);
    /// # Ok::<(), actix_web_stepup::ChallengeError>(())
    /// ```
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The parameters in order, names as spelled and values unquoted.
    ///
    /// ```
    /// use actix_web_stepup::Challenge;
    ///
    /// let c = &Challenge::parse_all(r#"Bearer realm="api", error=invalid_token"#)?[0];
    /// assert_eq!(c.params().collect::<Vec<_>>(), [("realm", "api"), ("error", "invalid_token")]);
    /// # Ok::<(), actix_web_stepup::ChallengeError>(())
    /// ```
    pub fn params(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.params.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The value of parameter `name` (case-insensitive), if present.
    ///
    /// ```
    /// use actix_web_stepup::Challenge;
    ///
    /// let c = &Challenge::parse_all(r#"Bearer realm="api""#).unwrap()[0];
    /// assert_eq!(c.param("Realm"), Some("api"));
    /// assert_eq!(c.param("error"), None);
    /// ```
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses a `WWW-Authenticate` field value into its challenges (RFC 9110 §11.6.1:
    /// `#challenge`). Scheme and parameter names keep their spelling (compare them
    /// case-insensitively); quoted values are unescaped. Linear in the input; never panics.
    ///
    /// # Errors
    ///
    /// [`ChallengeError::Syntax`] with the byte position where the grammar breaks, or
    /// [`ChallengeError::DuplicateParam`] when a challenge repeats a parameter (§11.2: each
    /// name MUST occur once).
    ///
    /// ```
    /// use actix_web_stepup::Challenge;
    ///
    /// let all = Challenge::parse_all(
    ///     r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
    /// )
    /// .unwrap();
    /// assert_eq!(all.len(), 2);
    /// assert_eq!(all[0].param("title"), Some(r#"Login to "apps""#));
    /// assert_eq!(all[1].scheme(), "Basic");
    /// assert!(Challenge::parse_all(r#"Bearer error="unterminated"#).is_err());
    /// ```
    pub fn parse_all(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
        Parser {
            s: header.as_bytes(),
            pos: 0,
        }
        .challenges()
    }
}

/// The challenge in header syntax: `scheme token68` or `scheme name=value, name="quoted"`.
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The constructors and the parser keep the scheme, names and token68 tokens and the
        // values free of control characters: nothing here needs checking again.
        f.write_str(&self.scheme)?;
        if let Some(token68) = &self.token68 {
            return write!(f, " {token68}");
        }
        for (i, (name, value)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write!(f, "{name}=")?;
            // Integers (`max_age=600`) bare, everything else quoted, as RFC 6750 §3 and
            // RFC 9470 §3 write their examples: strict clients compare that spelling.
            if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
                f.write_str(value)?;
            } else {
                f.write_str("\"")?;
                for c in value.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")?;
            }
        }
        Ok(())
    }
}

impl StepUpRequest {
    /// The RFC 9470 §3 challenge asking for this step-up:
    /// `Bearer error="insufficient_user_authentication", error_description="…",
    /// acr_values="…", max_age=N`, and for an Entra authentication context Microsoft's
    /// `claims="…"`: the base64 of `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`,
    /// which MSAL passes on to the next authorization request. Add further parameters (a `realm`) with
    /// [`Challenge::with_param`]; send it in `WWW-Authenticate` with status 401. Control
    /// characters in the description or a hand-built `acr_values` are dropped (a header
    /// cannot carry them), so this never fails.
    ///
    /// ```
    /// use actix_web_stepup::StepUpRequest;
    ///
    /// let request = StepUpRequest {
    ///     acr_values: vec!["urn:example:mfa".into(), "urn:example:hwk".into()],
    ///     max_age: Some(300),
    ///     auth_context: None,
    /// };
    /// assert_eq!(
    ///     request.challenge(Some("a multi-factor authentication is required")).to_string(),
    ///     "Bearer error=\"insufficient_user_authentication\", \
    ///      error_description=\"a multi-factor authentication is required\", \
    ///      acr_values=\"urn:example:mfa urn:example:hwk\", max_age=300"
    /// );
    ///
    /// let entra = StepUpRequest { auth_context: Some("c1".into()), ..Default::default() };
    /// assert_eq!(
    ///     entra.challenge(None).to_string(),
    ///     "Bearer error=\"insufficient_user_authentication\", \
    ///      claims=\"eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19\""
    /// );
    /// ```
    pub fn challenge(&self, description: Option<&str>) -> Challenge {
        let mut c = Challenge::bearer().with_known_param("error", INSUFFICIENT_USER_AUTHENTICATION);
        if let Some(description) = description {
            c = c.with_known_param("error_description", description);
        }
        if !self.acr_values.is_empty() {
            c = c.with_known_param("acr_values", &self.acr_values.join(" "));
        }
        if let Some(max_age) = self.max_age {
            c = c.with_known_param("max_age", &max_age.to_string());
        }
        if let Some(context) = &self.auth_context {
            // Entra's claims challenge: base64 of the claims request for the access token
            // ("Claims challenges, claims requests and client capabilities"), which MSAL
            // hands to the next authorization request.
            let claims = acrs_claims_request("access_token", context).to_string();
            c = c.with_known_param("claims", &CLAIMS_BASE64[0].encode(claims));
        }
        c
    }

    /// Reads the step-up an RFC 9470 challenge asks for: `Some` for a `Bearer` challenge with
    /// `error="insufficient_user_authentication"` (its `acr_values` split at spaces, its
    /// `max_age` as seconds, and the Entra authentication context of its `claims`: the
    /// `acrs` asked for in the access-token or ID-token member, its `value` or first of
    /// `values`), `None` for any other challenge.
    ///
    /// # Errors
    ///
    /// [`ChallengeError::InvalidMaxAge`] when `max_age` is not a non-negative integer;
    /// [`ChallengeError::InvalidClaims`] when `claims` is not base64 of a JSON object.
    ///
    /// ```
    /// use actix_web_stepup::{Challenge, StepUpRequest};
    ///
    /// let c = &Challenge::parse_all(r#"Bearer error="insufficient_user_authentication", max_age=5"#).unwrap()[0];
    /// let request = StepUpRequest::from_challenge(c).unwrap().unwrap();
    /// assert_eq!(request.max_age, Some(5));
    /// assert!(request.acr_values.is_empty());
    /// let other = &Challenge::parse_all(r#"Bearer error="invalid_token""#).unwrap()[0];
    /// assert_eq!(StepUpRequest::from_challenge(other), Ok(None));
    /// ```
    pub fn from_challenge(challenge: &Challenge) -> Result<Option<StepUpRequest>, ChallengeError> {
        let is_step_up = challenge.scheme.eq_ignore_ascii_case("Bearer")
            && challenge.param("error") == Some(INSUFFICIENT_USER_AUTHENTICATION);
        if !is_step_up {
            return Ok(None);
        }
        let max_age = match challenge.param("max_age") {
            None => None,
            Some(v) => {
                let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
                Some(
                    v.parse::<u64>()
                        .ok()
                        .filter(|_| digits)
                        .ok_or_else(|| ChallengeError::InvalidMaxAge(v.to_owned()))?,
                )
            }
        };
        let acr_values = challenge
            .param("acr_values")
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let auth_context = match challenge.param("claims") {
            None => None,
            Some(claims) => {
                requested_acrs(claims).ok_or_else(|| ChallengeError::InvalidClaims(claims.to_owned()))?
            }
        };
        Ok(Some(StepUpRequest {
            acr_values,
            max_age,
            auth_context,
        }))
    }

    /// Reads the step-up a `WWW-Authenticate` field value asks for (the first RFC 9470
    /// challenge in it), as a client of an API does on a `401`: then start a new
    /// authorization request with these `acr_values` and `max_age`, and retry with the new
    /// token. Challenges are read in order and reading stops at the first RFC 9470 one, so a
    /// malformed challenge *after* it does not matter; one before it does, since the list
    /// cannot be followed past a syntax error. A response may carry several
    /// `WWW-Authenticate` field lines (RFC 9110 §11.6.1): read them all with
    /// [`from_www_authenticate_values`](Self::from_www_authenticate_values).
    ///
    /// # Errors
    ///
    /// When no RFC 9470 challenge was found: the first [`ChallengeError`] met on the way,
    /// from the grammar ([`Challenge::parse_all`]) or an RFC 9470 challenge's own values
    /// ([`StepUpRequest::from_challenge`]).
    ///
    /// ```
    /// use actix_web_stepup::StepUpRequest;
    ///
    /// let header = r#"Basic realm="x", Bearer error="insufficient_user_authentication", acr_values="urn:example:mfa", max_age=600, Broken ""#;
    /// let request = StepUpRequest::from_www_authenticate(header).unwrap().unwrap();
    /// assert_eq!(request.acr_values, ["urn:example:mfa"]);
    /// assert_eq!(request.max_age, Some(600));
    /// assert_eq!(StepUpRequest::from_www_authenticate("Bearer").unwrap(), None);
    /// assert!(StepUpRequest::from_www_authenticate("Bearer error=\"insufficient_user_authentication\", max_age=-1").is_err());
    /// ```
    pub fn from_www_authenticate(header: &str) -> Result<Option<StepUpRequest>, ChallengeError> {
        Self::from_www_authenticate_values([header])
    }

    /// [`from_www_authenticate`](Self::from_www_authenticate) over every `WWW-Authenticate`
    /// field line of a response (RFC 9110 §5.3 and §11.6.1: a recipient may get the list of
    /// challenges in several lines), such as `headers.get_all("www-authenticate")` of
    /// actix-web's or the `http` crate's `HeaderMap`, or plain strings. Each line is read on
    /// its own, so a malformed line does not hide an RFC 9470 challenge in another; bytes
    /// that are not UTF-8 (obs-text) are read like any other.
    ///
    /// # Errors
    ///
    /// When no line has an RFC 9470 challenge: the first [`ChallengeError`] met.
    ///
    /// ```
    /// use actix_web::http::header::WWW_AUTHENTICATE;
    /// use actix_web::HttpResponse;
    /// use actix_web_stepup::StepUpRequest;
    ///
    /// let res = HttpResponse::Unauthorized()
    ///     .append_header((WWW_AUTHENTICATE, r#"Broken ""#))
    ///     .append_header((WWW_AUTHENTICATE, r#"Bearer error="insufficient_user_authentication", max_age=60"#))
    ///     .finish();
    /// let request = StepUpRequest::from_www_authenticate_values(res.headers().get_all(WWW_AUTHENTICATE))?;
    /// assert_eq!(request.unwrap().max_age, Some(60));
    /// assert_eq!(StepUpRequest::from_www_authenticate_values(["Basic realm=x", "DPoP"])?, None);
    /// assert!(StepUpRequest::from_www_authenticate_values([r#"Broken ""#]).is_err());
    /// # Ok::<(), actix_web_stepup::ChallengeError>(())
    /// ```
    pub fn from_www_authenticate_values<I>(values: I) -> Result<Option<StepUpRequest>, ChallengeError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut first_error = None;
        for value in values {
            let mut parser = Parser {
                s: value.as_ref(),
                pos: 0,
            };
            while let Some(next) = parser.next_challenge() {
                let challenge = match next {
                    Ok(challenge) => challenge,
                    Err(e) => {
                        // The rest of this line cannot be split into challenges.
                        first_error.get_or_insert(e);
                        break;
                    }
                };
                match Self::from_challenge(&challenge) {
                    Ok(Some(request)) => return Ok(Some(request)),
                    Ok(None) => {}
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        first_error.map_or(Ok(None), Err)
    }
}

/// Base64 as Entra writes `claims` (the standard alphabet, padded), and read with or without
/// padding, in either alphabet.
const CLAIMS_BASE64: [GeneralPurpose; 2] = {
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    [
        GeneralPurpose::new(&alphabet::STANDARD, config),
        GeneralPurpose::new(&alphabet::URL_SAFE, config),
    ]
};

/// The authentication context a `claims` challenge parameter asks for: `None` when it is not
/// base64 of a JSON object, `Some(None)` when that object asks for no `acrs`.
fn requested_acrs(claims: &str) -> Option<Option<String>> {
    let json = CLAIMS_BASE64
        .iter()
        .find_map(|engine| engine.decode(claims.trim()).ok())?;
    let request: Value = serde_json::from_slice(&json).ok().filter(Value::is_object)?;
    // OIDC Core §5.5.1: `value` asks for one value, `values` for any one of several.
    let context = ["access_token", "id_token"].iter().find_map(|member| {
        let acrs = &request[member]["acrs"];
        acrs["value"]
            .as_str()
            .or_else(|| acrs["values"].get(0).and_then(Value::as_str))
    });
    Some(context.map(str::to_owned))
}

/// Why a challenge could not be built, or a `WWW-Authenticate` value could not be read.
///
/// ```
/// use actix_web_stepup::{Challenge, ChallengeError};
///
/// let err = Challenge::parse_all("Bearer a=1, a=2").unwrap_err();
/// assert_eq!(err, ChallengeError::DuplicateParam("a".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The grammar breaks at byte `position`, where `expected` was expected.
    Syntax {
        /// Byte offset into the field value.
        position: usize,
        /// What the grammar needed there.
        expected: &'static str,
    },
    /// A parameter occurs twice in one challenge.
    DuplicateParam(String),
    /// `max_age` is not a non-negative integer that fits 64 bits.
    InvalidMaxAge(String),
    /// A scheme or parameter name that is not an RFC 9110 token, or a token68 that is not
    /// one.
    InvalidToken {
        /// `auth-scheme`, `parameter name` or `token68`.
        what: &'static str,
        /// The value as given.
        value: String,
    },
    /// The value of parameter `name` has a control character other than a tab.
    InvalidValue {
        /// The parameter.
        name: String,
    },
    /// Parameters for a challenge that carries a token68: RFC 9110 §11.2 allows one or the
    /// other.
    Token68WithParams,
    /// The `claims` parameter is not base64 of a JSON object.
    InvalidClaims(String),
}

impl fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChallengeError::Syntax { position, expected } => {
                write!(f, "malformed challenge at byte {position}: expected {expected}")
            }
            ChallengeError::DuplicateParam(name) => write!(f, "parameter {name:?} occurs twice"),
            ChallengeError::InvalidMaxAge(v) => write!(f, "max_age {v:?} is not a non-negative integer"),
            ChallengeError::InvalidToken { what, value } => {
                write!(f, "{what} {value:?} is not a valid RFC 9110 {what}")
            }
            ChallengeError::InvalidValue { name } => {
                write!(f, "the value of parameter {name:?} has a control character")
            }
            ChallengeError::Token68WithParams => {
                f.write_str("a challenge carries either a token68 or parameters, not both")
            }
            ChallengeError::InvalidClaims(v) => write!(f, "claims {v:?} is not base64 of a JSON object"),
        }
    }
}

impl std::error::Error for ChallengeError {}

/// RFC 9110 §5.6.2: `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 §5.6.2: `token = 1*tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// RFC 9110 §11.2: the characters of `token68` before its trailing `=`s.
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

/// RFC 9110 §11.2: `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(is_token68_char)
}

/// RFC 9110 §5.6.4: whether a quoted-string can carry `s` (qdtext and quoted-pair: any byte
/// but the ASCII controls, HTAB excepted).
fn is_quotable(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || !b.is_ascii_control())
}

/// A recursive-descent parser over bytes. Every slice it takes ends at an ASCII byte, so it
/// never splits a UTF-8 character.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn error(&self, expected: &'static str) -> ChallengeError {
        ChallengeError::Syntax {
            position: self.pos,
            expected,
        }
    }

    /// OWS / BWS: `*( SP / HTAB )`. Returns whether any was skipped.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Skips whitespace and empty list elements (RFC 9110 §5.6.1 lets a recipient accept
    /// them).
    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        (self.pos > start).then(|| String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn challenges(mut self) -> Result<Vec<Challenge>, ChallengeError> {
        let mut out = Vec::new();
        while let Some(challenge) = self.next_challenge() {
            out.push(challenge?);
        }
        Ok(out)
    }

    /// The next challenge of the list, `None` at its end. After an error the position is
    /// where the grammar broke: the caller stops there.
    fn next_challenge(&mut self) -> Option<Result<Challenge, ChallengeError>> {
        self.skip_list_separators();
        (!self.at_end()).then(|| self.challenge())
    }

    /// `auth-scheme [ 1*SP ( token68 / #auth-param ) ]`, leaving the position at the end
    /// or at the comma before the next challenge.
    fn challenge(&mut self) -> Result<Challenge, ChallengeError> {
        let scheme = self.token().ok_or_else(|| self.error("an auth-scheme"))?;
        // Built field by field: the grammar below admits only what the constructors would.
        let mut challenge = Challenge {
            scheme,
            token68: None,
            params: Vec::new(),
        };
        // Lower-cased names seen so far: a duplicate check that stays linear.
        let mut seen = std::collections::HashSet::new();
        let spaced = self.skip_ws();
        if self.at_end() || self.peek() == Some(b',') {
            return Ok(challenge);
        }
        if !spaced {
            return Err(self.error("a space after the auth-scheme"));
        }
        if let Some(token68) = self.token68() {
            challenge.token68 = Some(token68);
            return Ok(challenge);
        }
        loop {
            let (name, value) = self.auth_param()?;
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(ChallengeError::DuplicateParam(name));
            }
            challenge.params.push((name, value));
            self.skip_ws();
            if self.at_end() {
                return Ok(challenge);
            }
            if self.peek() != Some(b',') {
                return Err(self.error("a comma or the end"));
            }
            // After the comma: another parameter of this challenge (`token BWS "="`), or the
            // next challenge, which is left for the caller.
            let comma = self.pos;
            self.skip_list_separators();
            if self.at_end() {
                return Ok(challenge);
            }
            let next = self.pos;
            let is_param = self.token().is_some() && {
                self.skip_ws();
                self.peek() == Some(b'=')
            };
            self.pos = if is_param { next } else { comma };
            if !is_param {
                return Ok(challenge);
            }
        }
    }

    /// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`, only when it
    /// is the whole rest of the challenge (else this is an auth-param list).
    fn token68(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_token68_char) {
            self.pos += 1;
        }
        if self.pos == start {
            return None;
        }
        while self.peek() == Some(b'=') {
            self.pos += 1;
        }
        let end = self.pos;
        self.skip_ws();
        if self.at_end() || self.peek() == Some(b',') {
            Some(String::from_utf8_lossy(&self.s[start..end]).into_owned())
        } else {
            self.pos = start;
            None
        }
    }

    /// `auth-param = token BWS "=" BWS ( token / quoted-string )`.
    fn auth_param(&mut self) -> Result<(String, String), ChallengeError> {
        let name = self.token().ok_or_else(|| self.error("a parameter name"))?;
        self.skip_ws();
        if self.peek() != Some(b'=') {
            return Err(self.error("\"=\""));
        }
        self.pos += 1;
        self.skip_ws();
        let value = if self.peek() == Some(b'"') {
            self.quoted_string()?
        } else {
            self.token()
                .ok_or_else(|| self.error("a token or a quoted string"))?
        };
        Ok((name, value))
    }

    /// `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE` (RFC 9110 §5.6.4).
    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        self.pos += 1; // the opening quote
        let mut value = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error("a closing quote"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    // Only ASCII backslashes were removed from valid UTF-8: still valid.
                    return Ok(String::from_utf8(value)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()));
                }
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some(escaped) if escaped == b'\t' || escaped >= 0x20 && escaped != 0x7f => {
                            value.push(escaped);
                            self.pos += 1;
                        }
                        _ => return Err(self.error("a character after the backslash")),
                    }
                }
                b'\t' => {
                    value.push(b);
                    self.pos += 1;
                }
                0x00..=0x1f | 0x7f => return Err(self.error("no control character")),
                _ => {
                    value.push(b);
                    self.pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Vec<Challenge> {
        Challenge::parse_all(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    /// A valid challenge from literals.
    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        params
            .iter()
            .try_fold(Challenge::new(scheme).unwrap(), |c, (n, v)| c.with_param(*n, *v))
            .unwrap()
    }

    #[test]
    fn the_grammar_table() {
        let cases: Vec<(&str, Vec<Challenge>)> = vec![
            ("Bearer", vec![ch("Bearer", &[])]),
            ("  bearer  ", vec![ch("bearer", &[])]),
            ("Bearer realm=api", vec![ch("Bearer", &[("realm", "api")])]),
            (
                "Bearer realm = \"a b\" ,error=x",
                vec![ch("Bearer", &[("realm", "a b"), ("error", "x")])],
            ),
            (
                r#"Bearer d="q\"uote\\back\slash""#,
                vec![ch("Bearer", &[("d", r#"q"uote\backslash"#)])],
            ),
            (
                "Negotiate abc+/==, Basic realm=x",
                vec![
                    Challenge::new_token68("Negotiate", "abc+/==").unwrap(),
                    ch("Basic", &[("realm", "x")]),
                ],
            ),
            ("Basic, Bearer", vec![ch("Basic", &[]), ch("Bearer", &[])]),
            (
                ", ,Bearer a=1,, b=2 ,",
                vec![ch("Bearer", &[("a", "1"), ("b", "2")])],
            ),
            (
                "Bearer a=\"\", b=\"é ü\"",
                vec![ch("Bearer", &[("a", ""), ("b", "é ü")])],
            ),
            ("", vec![]),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), want, "{input:?}");
        }
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        for bad in [
            "=",
            "Bearer a=\"x",
            "Bearer a=\"x\\",
            "Bearer a=\"x\u{1}\"",
            "Bearer a=b c=d",
            "Bearer \"x\"",
            "Bearer=",
            "Bearer a=1, A=2",
            "\"Bearer\"",
            "Bearer\u{7f}",
        ] {
            assert!(Challenge::parse_all(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn rfc_9470_challenges_round_trip() {
        let request = StepUpRequest {
            acr_values: vec!["myACR".into(), "urn:x:y".into()],
            max_age: Some(5),
            auth_context: None,
        };
        let header = request.challenge(Some("A \"weak\" login")).to_string();
        assert_eq!(StepUpRequest::from_www_authenticate(&header), Ok(Some(request)));
        // RFC 9470 §3's own example.
        let example = r#"Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR""#;
        let parsed = StepUpRequest::from_www_authenticate(example).unwrap().unwrap();
        assert_eq!(parsed.acr_values, ["myACR"]);
        assert_eq!(parsed.max_age, None);
        for bad_max_age in ["-1", "1.5", "99999999999999999999", "\"\"", "+3"] {
            let h = format!("Bearer error=insufficient_user_authentication, max_age={bad_max_age}");
            assert!(
                StepUpRequest::from_www_authenticate(&h).is_err(),
                "max_age={bad_max_age}"
            );
        }
        assert_eq!(
            StepUpRequest::from_www_authenticate(r#"Bearer error="invalid_token""#),
            Ok(None)
        );
    }

    #[test]
    fn entra_authentication_contexts_round_trip_through_claims() {
        let request = StepUpRequest {
            acr_values: vec![],
            max_age: Some(600),
            auth_context: Some("c1".into()),
        };
        let header = request
            .challenge(Some("a stronger authentication is required"))
            .to_string();
        // Microsoft's documented claims challenge for context c1, after our RFC 9470 ones.
        assert!(
            header.ends_with(
                r#"max_age=600, claims="eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19""#
            ),
            "{header}"
        );
        assert_eq!(StepUpRequest::from_www_authenticate(&header), Ok(Some(request)));

        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let read = |claims: String| {
            let h = format!("Bearer error=insufficient_user_authentication, claims=\"{claims}\"");
            StepUpRequest::from_www_authenticate(&h).map(|r| r.unwrap().auth_context)
        };
        type Context = Result<Option<String>, ChallengeError>;
        let cases: Vec<(&str, String, Context)> = vec![
            (
                "the ID-token member, padded",
                STANDARD.encode(r#"{"id_token":{"acrs":{"essential":true,"value":"c2"}}}"#),
                Ok(Some("c2".into())),
            ),
            (
                "values: any one of them",
                URL_SAFE_NO_PAD.encode(r#"{"access_token":{"acrs":{"values":["c3","c4"]}}}"#),
                Ok(Some("c3".into())),
            ),
            (
                "a claims challenge without acrs (Entra's CAE) asks for no context",
                STANDARD.encode(r#"{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}"#),
                Ok(None),
            ),
            (
                "not base64",
                "*not base64*".into(),
                Err(ChallengeError::InvalidClaims("*not base64*".into())),
            ),
            (
                "base64 of no JSON object",
                STANDARD.encode("[1]"),
                Err(ChallengeError::InvalidClaims(STANDARD.encode("[1]"))),
            ),
        ];
        for (what, claims, want) in cases {
            assert_eq!(read(claims), want, "{what}");
        }
    }

    #[test]
    fn an_rfc_9470_challenge_is_read_before_a_malformed_one_and_from_any_field_line() {
        const STEP_UP: &str = "Bearer error=insufficient_user_authentication, max_age=5";
        let found = Ok(Some(StepUpRequest {
            acr_values: vec![],
            max_age: Some(5),
            auth_context: None,
        }));
        let line = |s: &str| s.as_bytes().to_vec();
        let cases: Vec<(&str, Vec<Vec<u8>>, bool)> = vec![
            (
                "a broken challenge after it",
                vec![line(&format!("{STEP_UP}, Broken \"x"))],
                true,
            ),
            (
                "a duplicate parameter in a later challenge",
                vec![line(&format!("{STEP_UP}, Basic a=1, a=2"))],
                true,
            ),
            (
                "a broken line before the line with it",
                vec![line("Broken \"x"), line(STEP_UP)],
                true,
            ),
            (
                "a line of other challenges first",
                vec![line("Basic realm=x, DPoP algs=ES256"), line(STEP_UP)],
                true,
            ),
            (
                "obs-text in an unrelated challenge",
                vec![[&b"Basic realm=\"caf\xe9\", "[..], STEP_UP.as_bytes()].concat()],
                true,
            ),
            (
                "a broken challenge before it, in its line: the list cannot be followed",
                vec![line(&format!("Broken \"x, {STEP_UP}"))],
                false,
            ),
        ];
        for (what, lines, readable) in cases {
            let got = StepUpRequest::from_www_authenticate_values(lines);
            if readable {
                assert_eq!(got, found, "{what}");
            } else {
                assert!(got.is_err(), "{what}: {got:?}");
            }
        }
        assert_eq!(
            StepUpRequest::from_www_authenticate_values(Vec::<&str>::new()),
            Ok(None)
        );
        assert!(
            StepUpRequest::from_www_authenticate_values(["Basic realm=x", "Bearer max_age=1, max_age=2"])
                .is_err(),
            "nothing found: the error is reported"
        );
    }

    #[test]
    fn control_characters_never_reach_the_header() {
        // The strict constructor refuses them ...
        assert_eq!(
            Challenge::bearer().with_param("error_description", "line\r\nInjected: yes"),
            Err(ChallengeError::InvalidValue {
                name: "error_description".into()
            })
        );
        // ... and the RFC 9470 writer, which must not fail, drops them.
        let request = StepUpRequest {
            acr_values: vec!["a\r\nSet-Cookie:".into()],
            max_age: None,
            auth_context: None,
        };
        let c = request.challenge(Some("line\r\nInjected: yes"));
        assert_eq!(
            c.to_string(),
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"lineInjected: yes\", acr_values=\"aSet-Cookie:\""
        );
    }

    /// xorshift64*: deterministic pseudo-random input without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// A random string of up to 8 characters from `alphabet`.
    fn hostile(rng: &mut Rng, alphabet: &[char]) -> String {
        let len = (rng.next() % 9) as usize;
        (0..len)
            .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
            .collect()
    }

    /// Builds challenges from hostile schemes, names, values and token68s. Whatever a
    /// constructor accepts is exactly what the grammar allows, writes as a header value that
    /// actix-web accepts, and parses back to one and the same challenge: no name or value can
    /// add a parameter, a challenge or a header line.
    #[test]
    fn hostile_names_never_inject_and_what_builds_round_trips() {
        use actix_web::http::header::{HeaderValue, WWW_AUTHENTICATE};

        let alphabet: Vec<char> = "aZ9-_.~+/=\",; \t\r\n\\é\u{0}\u{7f}!#|".chars().collect();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let (mut built, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let scheme = hostile(&mut rng, &alphabet);
            let mut challenge = match Challenge::new(scheme.clone()) {
                Ok(c) => {
                    assert!(is_token(&scheme), "{scheme:?} accepted");
                    c
                }
                Err(e) => {
                    assert!(!is_token(&scheme), "{scheme:?} refused: {e}");
                    refused += 1;
                    continue;
                }
            };
            if rng.next().is_multiple_of(4) {
                let token68 = hostile(&mut rng, &alphabet);
                match Challenge::new_token68(scheme.clone(), token68.clone()) {
                    Ok(c) => {
                        assert!(is_token68(&token68), "{token68:?} accepted");
                        assert_eq!(
                            c.clone().with_param("a", "b"),
                            Err(ChallengeError::Token68WithParams)
                        );
                        challenge = c;
                    }
                    Err(_) => assert!(!is_token68(&token68), "{token68:?} refused"),
                }
            } else {
                for _ in 0..rng.next() % 4 {
                    let (name, value) = (hostile(&mut rng, &alphabet), hostile(&mut rng, &alphabet));
                    let duplicate = challenge.param(&name).is_some();
                    match challenge.clone().with_param(name.clone(), value.clone()) {
                        Ok(c) => {
                            assert!(is_token(&name) && !duplicate && is_quotable(&value));
                            challenge = c;
                        }
                        Err(e) => {
                            let why = !is_token(&name) || duplicate || !is_quotable(&value);
                            assert!(why, "{name:?}={value:?} refused: {e}");
                        }
                    }
                }
            }
            built += 1;
            let written = challenge.to_string();
            assert!(HeaderValue::from_str(&written).is_ok(), "{written:?}");
            let res = actix_web::HttpResponse::Unauthorized()
                .insert_header((WWW_AUTHENTICATE, written.clone()))
                .finish();
            assert_eq!(res.status(), 401, "{written:?}");
            assert_eq!(res.headers().get_all(WWW_AUTHENTICATE).count(), 1);
            assert_eq!(
                Challenge::parse_all(&written),
                Ok(vec![challenge.clone()]),
                "{written:?}"
            );
        }
        assert!(
            built > 1_000 && refused > 1_000,
            "{built} built, {refused} refused"
        );
        // The named cases of the review.
        for name in ["a=b", "a\"", "a,b", "a\r\nX-Evil: 1", "a b", "", "é"] {
            assert!(Challenge::bearer().with_param(name, "v").is_err(), "{name:?}");
            assert!(Challenge::new(name).is_err(), "{name:?}");
        }
        assert_eq!(
            Challenge::bearer()
                .with_param("realm", "a")
                .unwrap()
                .with_param("REALM", "b"),
            Err(ChallengeError::DuplicateParam("REALM".into()))
        );
    }

    #[test]
    fn hostile_input_never_panics_and_what_parses_round_trips() {
        let alphabet: Vec<char> = "Bb e=\",\\\t aZ09-.~+/=é\u{1}\u{7f}\u{ffff}".chars().collect();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut parsed = 0;
        for _ in 0..20_000 {
            let len = (rng.next() % 40) as usize;
            let input: String = (0..len)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect();
            let Ok(challenges) = Challenge::parse_all(&input) else {
                continue;
            };
            parsed += 1;
            let written = challenges
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            assert_eq!(
                Challenge::parse_all(&written).as_ref(),
                Ok(&challenges),
                "{input:?} → {written:?}"
            );
            let _ = StepUpRequest::from_www_authenticate(&input);
        }
        assert!(parsed > 100, "the generator exercises valid input too ({parsed})");
        // Deep and long input: linear, no recursion.
        let long = format!("Bearer {}", "x".repeat(1_000_000));
        assert_eq!(parse(&long)[0].token68.as_ref().map(String::len), Some(1_000_000));
        let many: String = (0..10_000).map(|i| format!("p{i}=\"v\", ")).collect();
        assert_eq!(parse(&format!("Bearer {many}"))[0].params.len(), 10_000);
    }
}
