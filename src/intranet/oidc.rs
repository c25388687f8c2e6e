//! The relying party's side of OpenID Connect, on the `openidconnect` crate: discovery (lazy,
//! so the site serves public pages while the provider is down; single-flight, so concurrent
//! sign-ins during an outage share one attempt and all fail within the timeout), the
//! authorization request with `state`, `nonce`, PKCE and step-up parameters, the code
//! exchange, full ID-token validation against the provider's keys (`keys.rs`), and the
//! RP-initiated logout URL. Every call to the provider goes through `fetch.rs` (timeout, body
//! cap, no redirects).
//!
//! It takes the time and the clock skew from its callers (`AppState::now`, `state::CLOCK_SKEW`)
//! rather than reading a clock of its own.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix_web_stepup::{AuthState, StepUpRequest, string_list};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim,
    CoreIdTokenVerifier, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EmptyExtraTokenFields, EndSessionUrl, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdTokenClaims, IssuerUrl, LogoutRequest, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use url::Url;

use super::fetch::{self, FetchError, error_chain};
use super::flight::Flight;
use super::keys::{KeySet, Keys, MAX_JWKS_BYTES};
use super::paths;
use crate::web::random_token;

/// The claims of an ID token that OpenID Connect does not name: the roles (under
/// `ROLES_CLAIM`) and Microsoft Entra's `acrs`. Decoded by `openidconnect` with the rest,
/// after the signature is verified.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl AdditionalClaims for ExtraClaims {}

type IdTokenFields = openidconnect::IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type IdToken = openidconnect::IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// `CoreClient`, with [`ExtraClaims`] in its ID tokens.
type Client = openidconnect::Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<IdTokenFields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The most bytes read for the discovery document (real ones are a few kilobytes).
pub const MAX_DISCOVERY_BYTES: usize = 256 * 1024;
/// The most bytes read for a token response (ID tokens with many groups run to tens of KB).
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a login could not be started or finished. Details are for the log, not the page.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider is unreachable or its discovery document is invalid: {0}")]
    Discovery(String),
    /// Discovery 1.0 §4.3: the document's `issuer` must be exactly the issuer configured.
    #[error(
        "OIDC_ISSUER_URL is `{configured}` but the provider's discovery document says its issuer is `{discovered}`"
    )]
    IssuerMismatch { configured: String, discovered: String },
    #[error("the identity provider refused the authorization code: {0}")]
    CodeExchange(String),
    #[error("the ID token is invalid: {0}")]
    InvalidIdToken(String),
}

/// A login started at the provider and not yet finished: everything the callback needs to
/// check the answer. Kept in the session and taken out exactly once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    /// Set when this login is a step-up for the named requirement.
    pub step_up_for: Option<String>,
    pub started_at: i64,
}

/// A login the provider confirmed and we validated.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub auth: AuthState,
    /// The ID token's `sid`: the provider's session, as a logout token names it.
    pub sid: Option<String>,
    /// The raw ID token, for `id_token_hint` at RP-initiated logout.
    pub id_token: String,
}

/// Where to go after login, and whether this login is a step-up.
#[derive(Debug, Clone)]
pub struct LoginIntent {
    pub return_to: String,
    /// The name of the requirement being stepped up to, and what to ask for.
    pub step_up: Option<(String, StepUpRequest)>,
}

/// What the provider told us at discovery, plus its keys, refreshable.
pub struct Provider {
    client: Client,
    issuer: IssuerUrl,
    allowed_algs: Vec<CoreJwsSigningAlgorithm>,
    claims_parameter_supported: bool,
    end_session_endpoint: Option<EndSessionUrl>,
    /// The provider's keys (refetched for an unknown `kid`, within limits).
    pub keys: KeySet,
}

impl Provider {
    /// The asymmetric algorithms the provider signs ID tokens with (never `none` or HMAC), as
    /// `jsonwebtoken` names them: the algorithms a logout token may use too (Back-Channel
    /// Logout 1.0 §2.6 step 2).
    pub fn jwt_algorithms(&self) -> Vec<jsonwebtoken::Algorithm> {
        self.allowed_algs
            .iter()
            .filter_map(|alg| serde_json::to_value(alg).ok()?.as_str()?.parse().ok())
            .collect()
    }
}

/// What discovery needs, shared with the discovery task.
struct Settings {
    issuer: String,
    client_id: String,
    client_secret: SecretString,
    redirect_uri: Url,
    timeout: Duration,
}

/// The relying party's OIDC settings and its lazily discovered provider.
pub struct Oidc {
    settings: Arc<Settings>,
    post_logout_redirect_uri: Url,
    roles_claim: String,
    clock_skew: Duration,
    http: reqwest::Client,
    /// Set once discovery succeeds (by the discovery task itself).
    provider: Arc<RwLock<Option<Arc<Provider>>>>,
    discovery: Flight<Result<Arc<Provider>, OidcError>>,
    /// The readiness probe, and its last answer.
    probe: Flight<Result<(), String>>,
    probed: Arc<Mutex<Option<Probed>>>,
}

/// A readiness probe's answer, and when it came.
type Probed = (Instant, Result<(), String>);

/// How long the readiness probe's answer is kept.
pub const PROBE_KEPT: Duration = Duration::from_secs(5);

impl Oidc {
    /// `timeout` bounds every call to the provider (`OIDC_TIMEOUT_SECS`).
    pub fn new(
        issuer: String,
        client_id: String,
        client_secret: SecretString,
        public_url: &Url,
        roles_claim: String,
        clock_skew: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let base = crate::config::with_trailing_slash(public_url);
        Ok(Self {
            settings: Arc::new(Settings {
                issuer,
                client_id,
                client_secret,
                redirect_uri: base.join(paths::CALLBACK.trim_start_matches('/'))?,
                timeout,
            }),
            post_logout_redirect_uri: base,
            roles_claim,
            clock_skew,
            http: fetch::client(timeout)?,
            provider: Arc::new(RwLock::new(None)),
            discovery: Flight::default(),
            probe: Flight::default(),
            probed: Arc::new(Mutex::new(None)),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    pub fn client_id(&self) -> &str {
        &self.settings.client_id
    }

    /// The clock skew every token check allows.
    pub fn clock_skew(&self) -> Duration {
        self.clock_skew
    }

    /// The provider if discovery has succeeded, without waiting.
    pub fn discovered(&self) -> Option<Arc<Provider>> {
        self.provider.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The provider, discovered on first need and then kept (OpenID Connect Discovery 1.0
    /// §4). Callers arriving while discovery runs wait for that same attempt, at most the
    /// timeout; a failed attempt is not kept, so the next caller tries again.
    pub async fn provider(&self) -> Result<Arc<Provider>, OidcError> {
        if let Some(p) = self.discovered() {
            return Ok(p);
        }
        let attempt = self.discovery.join_or_start(|| {
            let (settings, http, slot) = (self.settings.clone(), self.http.clone(), self.provider.clone());
            async move {
                let provider = Arc::new(discover(&settings, &http).await.inspect_err(|e| match e {
                    OidcError::IssuerMismatch {
                        configured,
                        discovered,
                    } => tracing::error!(
                        %configured, %discovered,
                        "issuer mismatch: set OIDC_ISSUER_URL to exactly the issuer the provider's discovery document names"
                    ),
                    other => tracing::warn!(error = %other, "discovery failed"),
                })?);
                tracing::info!(issuer = %settings.issuer, "discovered the identity provider");
                *slot.write().unwrap_or_else(|p| p.into_inner()) = Some(provider.clone());
                Ok(provider)
            }
        });
        let wait = self.settings.timeout * 2 + Duration::from_millis(500);
        match tokio::time::timeout(wait, attempt).await {
            Ok(Some(result)) => result,
            Ok(None) => Err(OidcError::Discovery("discovery was cancelled".into())),
            Err(_) => Err(OidcError::Discovery(format!("no answer within {wait:?}"))),
        }
    }

    /// Whether the provider answers: its discovery document, fetched within `timeout` (for
    /// `/readyz`). An answer is kept [`PROBE_KEPT`], and concurrent probes share one fetch,
    /// so a flood of `/readyz` does not become a flood at the provider.
    pub async fn probe(&self, timeout: Duration) -> Result<(), String> {
        if let Some((at, result)) = self.probed.lock().unwrap_or_else(|p| p.into_inner()).clone()
            && at.elapsed() < PROBE_KEPT
        {
            return result;
        }
        let attempt = self.probe.join_or_start(|| {
            let (http, url, probed) = (
                self.http.clone(),
                discovery_url(&self.settings.issuer),
                self.probed.clone(),
            );
            async move {
                let fetch = fetch::get_json(&http, &url, "the discovery document", MAX_DISCOVERY_BYTES);
                let result = match tokio::time::timeout(timeout, fetch).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.0),
                    Err(_) => Err(format!("no answer within {timeout:?}")),
                };
                *probed.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), result.clone()));
                result
            }
        });
        match tokio::time::timeout(timeout + Duration::from_millis(100), attempt).await {
            Ok(Some(result)) => result,
            Ok(None) => Err("the probe was cancelled".into()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }

    /// Builds the authorization request (OIDC Core §3.1.2.1) and the pending login that the
    /// callback will check it against.
    pub async fn authorization_request(
        &self,
        intent: LoginIntent,
        now: i64,
    ) -> Result<(Url, PendingLogin), OidcError> {
        let provider = self.provider().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        // 256-bit state and nonce (RFC 6749 §10.10: at most a 2^-128 chance to guess).
        let state = random_token(32);
        let nonce = random_token(32);
        let (state_for_url, nonce_for_url) = (state.clone(), nonce.clone());
        let mut request = provider
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state_for_url),
                move || Nonce::new(nonce_for_url),
            )
            .set_pkce_challenge(challenge);
        for scope in ["profile", "email"] {
            request = request.add_scope(openidconnect::Scope::new(scope.into()));
        }
        if let Some((_, step_up)) = &intent.step_up {
            for acr in &step_up.acr_values {
                request = request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
            }
            if let Some(max_age) = step_up.max_age {
                request = request.set_max_age(Duration::from_secs(max_age));
            }
            if let Some(context) = &step_up.auth_context {
                // Entra ID's authentication context: a `claims` request for `acrs` (Microsoft
                // identity platform, "Conditional Access authentication context").
                let claims = json!({"id_token": {"acrs": {"essential": true, "value": context}}});
                request = request.add_extra_param("claims", claims.to_string());
            } else if provider.claims_parameter_supported && !step_up.acr_values.is_empty() {
                // OIDC Core §5.5.1.1: an essential acr makes the provider fail the request
                // rather than quietly issue a weaker token.
                let claims = json!({"id_token": {"acr": {"essential": true, "values": step_up.acr_values}}});
                request = request.add_extra_param("claims", claims.to_string());
            }
            // Ask for the login again rather than reuse a weak provider session.
            if step_up.max_age.is_none() {
                request = request.add_prompt(CoreAuthPrompt::Login);
            }
        }
        let (url, _, _) = request.url();
        let pending = PendingLogin {
            state,
            nonce,
            pkce_verifier: verifier.into_secret(),
            return_to: intent.return_to,
            step_up_for: intent.step_up.map(|(name, _)| name),
            started_at: now,
        };
        Ok((url, pending))
    }

    /// Redeems the code and validates the ID token at `now`: the login (marked as the answer
    /// to its step-up, if it was one), the provider's session id and the raw ID token.
    pub async fn finish_login(
        &self,
        pending: &PendingLogin,
        code: String,
        now: i64,
    ) -> Result<SignedIn, OidcError> {
        let provider = self.provider().await?;
        let http = |request| fetch::send(&self.http, request, MAX_TOKEN_RESPONSE_BYTES);
        let response = provider
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::CodeExchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| OidcError::CodeExchange(error_chain(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::InvalidIdToken("the token response has no id_token".into()))?;
        let claims = self
            .validate_id_token(&provider, id_token, &pending.nonce, now)
            .await?;
        let auth = self.auth_state(&claims, now);
        let auth = match &pending.step_up_for {
            Some(name) => auth.answering_step_up(name.clone()),
            None => auth,
        };
        // Back-Channel Logout 1.0 §2.1: the provider's session id, which a logout token names.
        let sid = claims
            .additional_claims()
            .other
            .get("sid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(SignedIn {
            auth,
            sid,
            id_token: id_token.to_string(),
        })
    }

    /// The login, from claims `openidconnect` has validated and decoded.
    fn auth_state(&self, claims: &IdTokenClaims<ExtraClaims, CoreGenderClaim>, now: i64) -> AuthState {
        let extra = &claims.additional_claims().other;
        let mut auth = AuthState::new(claims.subject().as_str(), now);
        auth.name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned())
            .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()));
        auth.email = claims.email().map(|e| e.as_str().to_owned());
        auth.acr = claims.auth_context_ref().map(|acr| acr.as_str().to_owned());
        auth.amr = claims
            .auth_method_refs()
            .map(|amr| amr.iter().map(|m| m.as_str().to_owned()).collect())
            .unwrap_or_default();
        auth.auth_time = claims.auth_time().map(|t| t.timestamp());
        auth.acrs = string_list(extra.get("acrs"));
        auth.roles = string_list(extra.get(&self.roles_claim));
        auth
    }

    /// OIDC Core §3.1.3.7, all of it: signature with an allowed asymmetric `alg` (rules 6–8),
    /// `iss` (2), `aud` (3), `azp` (4–5), `exp` (9), `iat` (10), `nonce` (11), at `now`.
    /// `acr` and `auth_time` (12–13) are judged by the step-up policy on every request. A
    /// `kid` we do not know refetches the provider's keys first (within `keys.rs`'s limits).
    async fn validate_id_token(
        &self,
        provider: &Provider,
        id_token: &IdToken,
        nonce: &str,
        now: i64,
    ) -> Result<IdTokenClaims<ExtraClaims, CoreGenderClaim>, OidcError> {
        // The header is read only for its kid; openidconnect checks everything else.
        let kid = jsonwebtoken::decode_header(id_token.to_string())
            .ok()
            .and_then(|h| h.kid);
        let keys = match kid {
            Some(kid) => provider.keys.containing(&kid).await?,
            None => provider.keys.current(),
        };
        self.verify(provider, &keys, id_token, nonce, now)
            .map_err(|e| OidcError::InvalidIdToken(error_chain(&e)))
    }

    fn verify(
        &self,
        provider: &Provider,
        keys: &Keys,
        id_token: &IdToken,
        nonce: &str,
        now: i64,
    ) -> Result<IdTokenClaims<ExtraClaims, CoreGenderClaim>, ClaimsVerificationError> {
        let at = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
        let skew = chrono::Duration::from_std(self.clock_skew).unwrap_or_default();
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.settings.client_id.clone()),
            provider.issuer.clone(),
            keys.jwks.clone(),
        )
        .set_allowed_algs(provider.allowed_algs.clone())
        // Our one clock, not openidconnect's own, which it reads only for `exp` (rule 9):
        // read back by the skew, an ID token stays valid until `exp` + skew, as the access
        // and logout tokens do.
        .set_time_fn(move || at - skew)
        .set_issue_time_verifier_fn(move |iat| {
            // Rule 10: refuse tokens issued in the future.
            if iat > at + skew {
                Err(format!("issued in the future ({iat})"))
            } else {
                Ok(())
            }
        });
        let claims = id_token.claims(&verifier, &Nonce::new(nonce.to_owned()))?;
        // Rules 4–5, which openidconnect leaves to the client: with several audiences azp is
        // required, and when present it must be our client id.
        let client_id = self.settings.client_id.as_str();
        match claims.authorized_party() {
            Some(azp) if azp.as_str() != client_id => {
                return Err(ClaimsVerificationError::InvalidAudience(format!(
                    "azp is `{}`",
                    azp.as_str()
                )));
            }
            None if claims.audiences().len() > 1 => {
                return Err(ClaimsVerificationError::InvalidAudience(
                    "several audiences and no azp".into(),
                ));
            }
            _ => {}
        }
        Ok(claims.clone())
    }

    /// The provider's key `kid` for a JWT access or logout token (`jsonwebtoken`'s form); an
    /// unknown `kid` refetches the JWKS (within `keys.rs`'s limits). `None`: no such key.
    pub async fn jwt_key(&self, kid: &str) -> Result<Option<jsonwebtoken::DecodingKey>, OidcError> {
        let provider = self.provider().await?;
        let keys = provider.keys.containing(kid).await?;
        Ok(keys.by_kid.get(kid).cloned())
    }

    /// RP-Initiated Logout 1.0 §2: the URL at the provider that ends its session and comes
    /// back to our home page. `id_token_hint` is the one token the standard puts in a URL.
    pub async fn logout_url(&self, id_token: Option<String>) -> Option<Url> {
        let provider = self.provider().await.ok()?;
        let endpoint = provider.end_session_endpoint.clone()?;
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.settings.client_id.clone()))
            .set_post_logout_redirect_uri(PostLogoutRedirectUrl::from_url(
                self.post_logout_redirect_uri.clone(),
            ));
        if let Some(raw) = id_token
            && let Ok(token) = raw.parse::<IdToken>()
        {
            request = request.set_id_token_hint(&token);
        }
        Some(request.http_get_url())
    }
}

fn is_hmac(alg: &CoreJwsSigningAlgorithm) -> bool {
    matches!(
        alg,
        CoreJwsSigningAlgorithm::HmacSha256
            | CoreJwsSigningAlgorithm::HmacSha384
            | CoreJwsSigningAlgorithm::HmacSha512
    )
}

/// Discovery 1.0 §4: the document is at the issuer + `/.well-known/openid-configuration`.
fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Fetches and checks the discovery document, then the JWKS, and builds the client.
async fn discover(settings: &Settings, http: &reqwest::Client) -> Result<Provider, OidcError> {
    let url = discovery_url(&settings.issuer);
    let body = fetch::get_json(http, &url, "the discovery document", MAX_DISCOVERY_BYTES).await?;
    let metadata: ProviderMetadataWithLogout = serde_json::from_slice(&body)
        .map_err(|e| OidcError::Discovery(format!("the discovery document at {url}: {e}")))?;
    // Discovery 1.0 §4.3: the issuer in the document MUST be identical to the issuer the
    // document was fetched for; tokens are then checked against that same string.
    if metadata.issuer().as_str() != settings.issuer {
        return Err(OidcError::IssuerMismatch {
            configured: settings.issuer.clone(),
            discovered: metadata.issuer().as_str().to_owned(),
        });
    }
    let jwks_uri = metadata.jwks_uri().url().clone();
    let keys = Keys::parse(&fetch::get_json(http, jwks_uri.as_str(), "the JWKS", MAX_JWKS_BYTES).await?)?;
    // Only asymmetric algorithms: an ID token MACed with our own client secret proves
    // nothing about the provider, and `none` proves nothing at all.
    let mut allowed_algs: Vec<_> = metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|alg| !matches!(alg, CoreJwsSigningAlgorithm::None) && !is_hmac(alg))
        .cloned()
        .collect();
    if allowed_algs.is_empty() {
        allowed_algs.push(CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    }
    let claims_parameter_supported = metadata.claims_parameter_supported().unwrap_or(false);
    let end_session_endpoint = metadata.additional_metadata().end_session_endpoint.clone();
    let issuer = metadata.issuer().clone();
    let metadata = metadata.set_jwks(keys.jwks.clone());
    let client = Client::from_provider_metadata(
        metadata,
        ClientId::new(settings.client_id.clone()),
        Some(ClientSecret::new(
            settings.client_secret.expose_secret().to_owned(),
        )),
    )
    .set_redirect_uri(RedirectUrl::from_url(settings.redirect_uri.clone()));
    Ok(Provider {
        client,
        issuer,
        allowed_algs,
        claims_parameter_supported,
        end_session_endpoint,
        keys: KeySet::new(keys, http.clone(), jwks_uri, settings.timeout),
    })
}

impl From<FetchError> for OidcError {
    fn from(e: FetchError) -> Self {
        OidcError::Discovery(e.0)
    }
}
