//! The relying party's side of OpenID Connect, on the `openidconnect` crate: discovery (lazy,
//! so the site serves public pages while the provider is down), the authorization request
//! with `state`, `nonce`, PKCE and step-up parameters, the code exchange, full ID-token
//! validation, the provider's keys (typed, cached, refetched on an unknown `kid`) for ID and
//! access tokens, and the RP-initiated logout URL.
//!
//! It takes the time and the clock skew from its callers (`state::now`, `state::CLOCK_SKEW`)
//! rather than reading a clock of its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web_stepup::{AuthState, StepUpRequest, string_list};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim,
    CoreIdTokenVerifier, CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse,
    CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EmptyExtraTokenFields, EndSessionUrl, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdTokenClaims, IssuerUrl, LogoutRequest, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, SignatureVerificationError,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::RwLock;
use url::Url;

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

/// A JWKS refetch for an unknown `kid` happens at most this often (forged tokens with random
/// key ids must not turn the RP into a JWKS-fetching amplifier).
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Why a login could not be started or finished. Details are for the log, not the page.
#[derive(Debug, thiserror::Error)]
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

/// Where to go after login, and whether this login is a step-up.
#[derive(Debug, Clone)]
pub struct LoginIntent {
    pub return_to: String,
    /// The name of the requirement being stepped up to, and what to ask for.
    pub step_up: Option<(String, StepUpRequest)>,
}

/// The provider's signing keys, fetched once per change: for ID tokens as `openidconnect`
/// reads them, for access tokens as `jsonwebtoken` decoding keys by `kid`.
struct Keys {
    id_tokens: CoreJsonWebKeySet,
    access_tokens: HashMap<String, jsonwebtoken::DecodingKey>,
    fetched_at: Instant,
}

impl Keys {
    fn parse(body: &[u8]) -> Result<Self, OidcError> {
        let id_tokens: CoreJsonWebKeySet =
            serde_json::from_slice(body).map_err(|e| OidcError::Discovery(format!("the JWKS: {e}")))?;
        // Keys jsonwebtoken cannot use (an unknown kty, no kid) only disable the API for them.
        let access_tokens = serde_json::from_slice::<jsonwebtoken::jwk::JwkSet>(body)
            .map(|set| {
                set.keys
                    .iter()
                    .filter_map(|jwk| {
                        let kid = jwk.common.key_id.clone()?;
                        Some((kid, jsonwebtoken::DecodingKey::from_jwk(jwk).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the provider's JWKS cannot be used for access tokens");
                HashMap::new()
            });
        Ok(Self {
            id_tokens,
            access_tokens,
            fetched_at: Instant::now(),
        })
    }
}

/// What the provider told us at discovery, plus its keys, refreshable.
pub struct Provider {
    client: Client,
    issuer: IssuerUrl,
    allowed_algs: Vec<CoreJwsSigningAlgorithm>,
    claims_parameter_supported: bool,
    end_session_endpoint: Option<EndSessionUrl>,
    jwks_uri: Url,
    keys: RwLock<Keys>,
}

/// The relying party's OIDC settings and its lazily discovered provider.
pub struct Oidc {
    issuer: String,
    client_id: String,
    client_secret: SecretString,
    redirect_uri: Url,
    post_logout_redirect_uri: Url,
    roles_claim: String,
    clock_skew: Duration,
    http: reqwest::Client,
    provider: RwLock<Option<Arc<Provider>>>,
}

impl Oidc {
    pub fn new(
        issuer: String,
        client_id: String,
        client_secret: SecretString,
        public_url: &Url,
        roles_claim: String,
        clock_skew: Duration,
    ) -> anyhow::Result<Self> {
        let base = crate::config::with_trailing_slash(public_url);
        let http = reqwest::Client::builder()
            // The OIDC client must not follow redirects (SSRF; openidconnect's advice).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            issuer,
            client_id,
            client_secret,
            redirect_uri: base.join(paths::CALLBACK.trim_start_matches('/'))?,
            post_logout_redirect_uri: base,
            roles_claim,
            clock_skew,
            http,
            provider: RwLock::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The provider, discovered on first need and then kept (OpenID Connect Discovery 1.0 §4).
    pub async fn provider(&self) -> Result<Arc<Provider>, OidcError> {
        if let Some(p) = self.provider.read().await.as_ref() {
            return Ok(p.clone());
        }
        let mut slot = self.provider.write().await;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let provider = Arc::new(self.discover().await.inspect_err(|e| match e {
            OidcError::IssuerMismatch {
                configured,
                discovered,
            } => tracing::error!(
                %configured, %discovered,
                "issuer mismatch: set OIDC_ISSUER_URL to exactly the issuer the provider's discovery document names"
            ),
            other => tracing::warn!(error = %other, "discovery failed"),
        })?);
        tracing::info!(issuer = %self.issuer, "discovered the identity provider");
        *slot = Some(provider.clone());
        Ok(provider)
    }

    async fn get(&self, url: &str, what: &str) -> Result<Vec<u8>, OidcError> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Discovery(format!("{what} at {url}: {}", error_chain(&e))))?;
        if !response.status().is_success() {
            return Err(OidcError::Discovery(format!(
                "{what} at {url} answered {}",
                response.status()
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| OidcError::Discovery(format!("{what} at {url}: {}", error_chain(&e))))?;
        Ok(body.to_vec())
    }

    async fn discover(&self) -> Result<Provider, OidcError> {
        // Discovery 1.0 §4: the document is at the issuer + /.well-known/openid-configuration.
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let body = self.get(&url, "the discovery document").await?;
        let metadata: ProviderMetadataWithLogout = serde_json::from_slice(&body)
            .map_err(|e| OidcError::Discovery(format!("the discovery document at {url}: {e}")))?;
        // Discovery 1.0 §4.3: the issuer in the document MUST be identical to the issuer the
        // document was fetched for; tokens are then checked against that same string.
        if metadata.issuer().as_str() != self.issuer {
            return Err(OidcError::IssuerMismatch {
                configured: self.issuer.clone(),
                discovered: metadata.issuer().as_str().to_owned(),
            });
        }
        let jwks_uri = metadata.jwks_uri().url().clone();
        let keys = Keys::parse(&self.get(jwks_uri.as_str(), "the JWKS").await?)?;
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
        let metadata = metadata.set_jwks(keys.id_tokens.clone());
        let client = Client::from_provider_metadata(
            metadata,
            ClientId::new(self.client_id.clone()),
            Some(ClientSecret::new(self.client_secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::from_url(self.redirect_uri.clone()));
        Ok(Provider {
            client,
            issuer,
            allowed_algs,
            claims_parameter_supported,
            end_session_endpoint,
            jwks_uri,
            keys: RwLock::new(keys),
        })
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

    /// Redeems the code and validates the ID token at `now`; returns the login (marked as
    /// the answer to its step-up, if it was one) and the raw ID token.
    pub async fn finish_login(
        &self,
        pending: &PendingLogin,
        code: String,
        now: i64,
    ) -> Result<(AuthState, String), OidcError> {
        let provider = self.provider().await?;
        let response = provider
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::CodeExchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
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
        Ok((auth, id_token.to_string()))
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
    /// `acr` and `auth_time` (12–13) are judged by the step-up policy on every request.
    async fn validate_id_token(
        &self,
        provider: &Provider,
        id_token: &IdToken,
        nonce: &str,
        now: i64,
    ) -> Result<IdTokenClaims<ExtraClaims, CoreGenderClaim>, OidcError> {
        match self
            .verify_with_current_keys(provider, id_token, nonce, now)
            .await
        {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // An unknown kid may mean the provider rotated its keys: refetch the JWKS once.
                if self.refetch_keys(provider).await? {
                    self.verify_with_current_keys(provider, id_token, nonce, now)
                        .await
                        .map_err(|e| OidcError::InvalidIdToken(error_chain(&e)))
                } else {
                    Err(OidcError::InvalidIdToken("no key matches the token's kid".into()))
                }
            }
            other => other.map_err(|e| OidcError::InvalidIdToken(error_chain(&e))),
        }
    }

    async fn verify_with_current_keys(
        &self,
        provider: &Provider,
        id_token: &IdToken,
        nonce: &str,
        now: i64,
    ) -> Result<IdTokenClaims<ExtraClaims, CoreGenderClaim>, ClaimsVerificationError> {
        let jwks = provider.keys.read().await.id_tokens.clone();
        let at = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
        let skew = chrono::Duration::from_std(self.clock_skew).unwrap_or_default();
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.client_id.clone()),
            provider.issuer.clone(),
            jwks,
        )
        .set_allowed_algs(provider.allowed_algs.clone())
        // Our one clock, not openidconnect's own.
        .set_time_fn(move || at)
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
        let client_id = self.client_id.as_str();
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

    /// Refetches the JWKS unless that happened moments ago. Returns whether it did.
    async fn refetch_keys(&self, provider: &Provider) -> Result<bool, OidcError> {
        let mut keys = provider.keys.write().await;
        if keys.fetched_at.elapsed() < JWKS_REFETCH_INTERVAL {
            return Ok(false);
        }
        *keys = Keys::parse(&self.get(provider.jwks_uri.as_str(), "the JWKS").await?)?;
        tracing::info!(
            keys = keys.id_tokens.keys().len(),
            "refetched the provider's JWKS for an unknown kid"
        );
        Ok(true)
    }

    /// The provider's key `kid` for validating an access token (RFC 9068 §4); an unknown
    /// `kid` refetches the JWKS once (rate-limited).
    pub async fn access_token_key(&self, kid: &str) -> Result<Option<jsonwebtoken::DecodingKey>, OidcError> {
        let provider = self.provider().await?;
        if let Some(key) = provider.keys.read().await.access_tokens.get(kid) {
            return Ok(Some(key.clone()));
        }
        if !self.refetch_keys(&provider).await? {
            return Ok(None);
        }
        Ok(provider.keys.read().await.access_tokens.get(kid).cloned())
    }

    /// RP-Initiated Logout 1.0 §2: the URL at the provider that ends its session and comes
    /// back to our home page. `id_token_hint` is the one token the standard puts in a URL.
    pub async fn logout_url(&self, id_token: Option<String>) -> Option<Url> {
        let provider = self.provider().await.ok()?;
        let endpoint = provider.end_session_endpoint.clone()?;
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.client_id.clone()))
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

/// An error and its sources on one line, for the log.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
