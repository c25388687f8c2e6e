//! The relying party's side of OpenID Connect, on the `openidconnect` crate: discovery (lazy,
//! so the site serves public pages while the provider is down), the authorization request
//! with `state`, `nonce`, PKCE and step-up parameters, the code exchange, full ID-token
//! validation, and the RP-initiated logout URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, LogoutRequest, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl,
    SignatureVerificationError, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use tokio::sync::RwLock;
use url::Url;

use super::policy::{AuthState, StepUpRequest};
use super::session::PendingLogin;
use crate::web::random_token;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How far the provider's clock may be ahead of ours for `iat`.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// A JWKS refetch for an unknown `kid` happens at most this often (forged tokens with random
/// key ids must not turn the RP into a JWKS-fetching amplifier).
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Why a login could not be started or finished. Details are for the log, not the page.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider is unreachable or its discovery document is invalid: {0}")]
    Discovery(String),
    #[error("the identity provider refused the authorization code: {0}")]
    CodeExchange(String),
    #[error("the ID token is invalid: {0}")]
    InvalidIdToken(String),
}

/// What the provider told us at discovery, plus the keys, refreshable.
pub struct Provider {
    client: Client,
    issuer: IssuerUrl,
    allowed_algs: Vec<CoreJwsSigningAlgorithm>,
    pub claims_parameter_supported: bool,
    end_session_endpoint: Option<EndSessionUrl>,
    pub jwks_uri: Url,
    jwks: RwLock<(CoreJsonWebKeySet, Instant)>,
}

/// Where to go after login, and whether this login is a step-up.
#[derive(Debug, Clone)]
pub struct LoginIntent {
    pub return_to: String,
    /// The requirement being stepped up to, and what to ask for.
    pub step_up: Option<(String, StepUpRequest)>,
}

/// The relying party's OIDC settings and its lazily discovered provider.
pub struct Oidc {
    issuer: String,
    client_id: String,
    client_secret: SecretString,
    redirect_uri: Url,
    post_logout_redirect_uri: Url,
    roles_claim: String,
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
            redirect_uri: base.join(super::paths::CALLBACK.trim_start_matches('/'))?,
            post_logout_redirect_uri: base,
            roles_claim,
            http,
            provider: RwLock::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
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
        let provider = Arc::new(self.discover().await?);
        tracing::info!(issuer = %self.issuer, "discovered the identity provider");
        *slot = Some(provider.clone());
        Ok(provider)
    }

    async fn discover(&self) -> Result<Provider, OidcError> {
        let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| OidcError::Discovery(e.to_string()))?;
        // Discovery 1.0 §4.3: the issuer in the document must equal the one we asked
        // (openidconnect checks it).
        let metadata = ProviderMetadataWithLogout::discover_async(issuer.clone(), &self.http)
            .await
            .map_err(|e| OidcError::Discovery(error_chain(&e)))?;
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
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.client_id.clone()),
            Some(ClientSecret::new(self.client_secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::from_url(self.redirect_uri.clone()));
        Ok(Provider {
            client,
            issuer,
            allowed_algs,
            claims_parameter_supported: metadata.claims_parameter_supported().unwrap_or(false),
            end_session_endpoint: metadata.additional_metadata().end_session_endpoint.clone(),
            jwks_uri: metadata.jwks_uri().url().clone(),
            jwks: RwLock::new((metadata.jwks().clone(), Instant::now())),
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
        // 256-bit state and nonce (the contract asks for at least 128).
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
            step_up_for: intent.step_up.map(|(id, _)| id),
            started_at: now,
        };
        Ok((url, pending))
    }

    /// Redeems the code and validates the ID token; returns the login and the raw ID token.
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
            .validate_id_token(&provider, id_token, &pending.nonce)
            .await?;
        let mut auth = AuthState::from_claims(&claims, &self.roles_claim, now)
            .ok_or_else(|| OidcError::InvalidIdToken("no sub".into()))?;
        auth.step_up_for = pending.step_up_for.clone();
        Ok((auth, id_token.to_string()))
    }

    /// OIDC Core §3.1.3.7, all of it: signature with an allowed asymmetric `alg` (rules 6–8),
    /// `iss` (2), `aud` (3), `azp` (4–5), `exp` (9), `iat` (10), `nonce` (11). `acr` and
    /// `auth_time` (12–13) are judged by the step-up policy on every request, not here.
    async fn validate_id_token(
        &self,
        provider: &Provider,
        id_token: &CoreIdToken,
        nonce: &str,
    ) -> Result<Map<String, Value>, OidcError> {
        match self.verify_with_current_keys(provider, id_token, nonce).await {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // An unknown kid may mean the provider rotated its keys: refetch the JWKS once.
                if self.refetch_jwks(provider).await? {
                    self.verify_with_current_keys(provider, id_token, nonce)
                        .await
                        .map_err(|e| OidcError::InvalidIdToken(error_chain(&e)))?;
                } else {
                    return Err(OidcError::InvalidIdToken("no key matches the token's kid".into()));
                }
            }
            other => other.map_err(|e| OidcError::InvalidIdToken(error_chain(&e)))?,
        }
        // The signature is valid over exactly these bytes, so the payload can be read as JSON
        // for the claims openidconnect does not model (roles, and amr as a string).
        let raw = id_token.to_string();
        let payload = raw.split('.').nth(1).unwrap_or_default();
        let claims: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| OidcError::InvalidIdToken("unreadable payload".into()))?;
        Ok(claims)
    }

    async fn verify_with_current_keys(
        &self,
        provider: &Provider,
        id_token: &CoreIdToken,
        nonce: &str,
    ) -> Result<(), ClaimsVerificationError> {
        let jwks = provider.jwks.read().await.0.clone();
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.client_id.clone()),
            provider.issuer.clone(),
            jwks,
        )
        .set_allowed_algs(provider.allowed_algs.clone())
        .set_issue_time_verifier_fn(|iat| {
            // Rule 10: refuse tokens issued in the future.
            if iat > chrono::Utc::now() + CLOCK_SKEW {
                Err(format!("issued in the future ({iat})"))
            } else {
                Ok(())
            }
        });
        let nonce = Nonce::new(nonce.to_owned());
        let claims = id_token.claims(&verifier, &nonce)?;
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
        Ok(())
    }

    /// Refetches the JWKS unless that happened moments ago. Returns whether keys changed hands.
    async fn refetch_jwks(&self, provider: &Provider) -> Result<bool, OidcError> {
        let mut guard = provider.jwks.write().await;
        if guard.1.elapsed() < JWKS_REFETCH_INTERVAL {
            return Ok(false);
        }
        let url = openidconnect::JsonWebKeySetUrl::from_url(provider.jwks_uri.clone());
        let jwks = CoreJsonWebKeySet::fetch_async(&url, &self.http)
            .await
            .map_err(|e| OidcError::Discovery(error_chain(&e)))?;
        tracing::info!(
            keys = jwks.keys().len(),
            "refetched the provider's JWKS for an unknown kid"
        );
        *guard = (jwks, Instant::now());
        Ok(true)
    }

    /// The provider's public keys as JSON, for validating access tokens with `jsonwebtoken`.
    pub async fn jwks_json(&self, refetch: bool) -> Result<Value, OidcError> {
        let provider = self.provider().await?;
        if refetch {
            self.refetch_jwks(&provider).await?;
        }
        let guard = provider.jwks.read().await;
        serde_json::to_value(&guard.0).map_err(|e| OidcError::Discovery(e.to_string()))
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
            && let Ok(token) = raw.parse::<CoreIdToken>()
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
