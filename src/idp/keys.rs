//! Signing keys: one RS256 (RSA) and one ES256 (P-256) key current at a time, each published in
//! the JWKS (RFC 7517) under its RFC 7638 thumbprint as `kid`. A key rotated out stays published,
//! and is still accepted where Fabrikam ID verifies its own tokens, until its grace period ends.
//!
//! RS256 is the algorithm every OpenID Provider must offer (OIDC Core §15.1) and the default
//! `id_token_signed_response_alg` (OIDC Dynamic Client Registration §2); ES256 is the other.
//!
//! Keys come from PEM files (`IDP_SIGNING_KEY`, `IDP_RSA_SIGNING_KEY`) or are generated. A P-256
//! key is generated in microseconds; an RSA key takes 20–200 ms with the crates optimised and
//! seconds without, so the generated RSA key is made once per process on a background thread,
//! started with the first provider, and waited for only when a provider first needs it.
//!
//! That key is **shared**: every provider built in the process with [`KeySource::Generate`]
//! (the tests start many) signs RS256 with it and publishes it under the same `kid`, until it
//! rotates (a rotation always generates a new key, for that provider alone). So one such
//! provider's RS256 tokens verify against another's JWKS; only `iss` tells them apart.
//! [`KeySource::GenerateOwn`] gives a provider an RSA key of its own (generated the same way,
//! in the background, for it alone). P-256 keys are never shared.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::thread::JoinHandle;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::SecretKey;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rand::RngCore;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

/// The signature algorithms Fabrikam ID signs with (RFC 7518 §3.1 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: the default, which every OP must offer.
    #[default]
    RS256,
    /// ECDSA with P-256 and SHA-256.
    ES256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 2] = [SigningAlg::RS256, SigningAlg::ES256];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            Self::RS256 => Algorithm::RS256,
            Self::ES256 => Algorithm::ES256,
        }
    }
}

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the next token is signed (test control can pick a bad one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureMode {
    /// With the current key of the client's algorithm.
    #[default]
    Valid,
    /// With a key that is never published, under the current key's `kid`.
    WrongKey,
    /// Unsecured (`alg: none`, RFC 7515 Appendix A.5).
    None,
    /// The ID token MACed with HS256 under the client's own secret (OIDC Core §10.1's
    /// symmetric signing), the classic algorithm-confusion forgery: anyone who knows the
    /// secret could have made it, so an RP that expects an asymmetric signature must refuse
    /// it. The access token stays validly signed. Needs a client with a secret.
    Hs256ClientSecret,
}

/// Where a signing key comes from.
#[derive(Debug, Clone, Default)]
pub enum KeySource {
    /// Generated. The RSA key is generated once per process, in the background, and shared
    /// by every provider of the process that asks for it (see the module docs); a P-256 key
    /// is generated for each provider.
    #[default]
    Generate,
    /// Generated for this provider alone: for RS256 a new key, not the process's shared one
    /// (generated in the background, like it); for ES256 the same as [`Self::Generate`].
    GenerateOwn,
    /// A PEM file: PKCS#8 for P-256; PKCS#8 or PKCS#1 for RSA (at least 2048 bits).
    File(PathBuf),
    /// The same PEM, in memory.
    Pem(SecretString),
}

/// RSA keys shorter than this are refused (NIST SP 800-131A Rev. 2: 2048 bits at least).
pub const MIN_RSA_BITS: usize = 2048;
/// Keys rotated out that stay published at most, whatever their grace periods.
pub const MAX_RETIRED_KEYS: usize = 8;

/// One key pair, ready for jsonwebtoken, with its public JWK.
pub struct KeyPair {
    alg: SigningAlg,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    fn new(alg: SigningAlg, encoding: EncodingKey) -> anyhow::Result<Self> {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.jwt()).context("jsonwebtoken refused the key")?;
        // RFC 7638 §3: the thumbprint covers the required members only, so kid and use can
        // follow; it changes whenever the key does.
        let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk)?;
        Ok(Self {
            alg,
            kid,
            encoding,
            decoding,
            jwk,
        })
    }

    fn ec_from_secret(secret: &SecretKey) -> anyhow::Result<Self> {
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("cannot encode the P-256 key: {e}"))?;
        Self::new(SigningAlg::ES256, EncodingKey::from_ec_der(der.as_bytes()))
    }

    /// A fresh P-256 key.
    pub fn generate_ec() -> anyhow::Result<Self> {
        loop {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            // A random 256-bit string is a valid scalar except with negligible probability.
            if let Ok(secret) = SecretKey::from_slice(&bytes) {
                return Self::ec_from_secret(&secret);
            }
        }
    }

    fn ec_from_pem(pem: &str) -> anyhow::Result<Self> {
        let secret = SecretKey::from_pkcs8_pem(pem)
            .map_err(|e| anyhow::anyhow!("not a PKCS#8 PEM P-256 private key: {e}"))?;
        Self::ec_from_secret(&secret)
    }

    fn rsa_from_private(key: &rsa::PrivateKey) -> anyhow::Result<Self> {
        let der = key
            .to_pkcs1_der()
            .map_err(|e| anyhow::anyhow!("cannot encode the RSA key: {e}"))?;
        Self::new(SigningAlg::RS256, EncodingKey::from_rsa_der(der.as_bytes()))
    }

    /// A fresh 2048-bit RSA key (slow: see the module docs).
    pub fn generate_rsa() -> anyhow::Result<Self> {
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, MIN_RSA_BITS)
            .map_err(|e| anyhow::anyhow!("cannot generate an RSA key: {e}"))?;
        Self::rsa_from_private(&key)
    }

    fn rsa_from_pem(pem: &str) -> anyhow::Result<Self> {
        let key = rsa::PrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| rsa::PrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| {
                anyhow::anyhow!(
                    "not a PEM RSA private key (expected \"BEGIN PRIVATE KEY\" or \"BEGIN RSA PRIVATE KEY\")"
                )
            })?;
        let bits = key.size() * 8;
        anyhow::ensure!(
            bits >= MIN_RSA_BITS,
            "the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
        );
        Self::rsa_from_private(&key)
    }

    fn load(alg: SigningAlg, source: &KeySource) -> anyhow::Result<Option<Self>> {
        let (pem, origin) = match source {
            KeySource::Generate | KeySource::GenerateOwn => return Ok(None),
            KeySource::File(path) => (
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the {alg} signing key {}", path.display()))?,
                path.display().to_string(),
            ),
            KeySource::Pem(pem) => (pem.expose_secret().to_owned(), "the PEM given".to_owned()),
        };
        let pair = match alg {
            SigningAlg::ES256 => Self::ec_from_pem(&pem),
            SigningAlg::RS256 => Self::rsa_from_pem(&pem),
        };
        pair.map(Some)
            .with_context(|| format!("{origin} cannot be the {alg} signing key"))
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An RSA key generated on a background thread, once per process.
struct BackgroundRsa {
    thread: Mutex<Option<JoinHandle<anyhow::Result<KeyPair>>>>,
    key: OnceLock<Result<Arc<KeyPair>, String>>,
}

impl BackgroundRsa {
    const fn new() -> Self {
        Self {
            thread: Mutex::new(None),
            key: OnceLock::new(),
        }
    }

    /// Starts the generation unless it has started or finished.
    fn start(&self) {
        let mut thread = lock(&self.thread);
        if thread.is_none() && self.key.get().is_none() {
            *thread = std::thread::Builder::new()
                .name("fabrikam-rsa-keygen".into())
                .spawn(KeyPair::generate_rsa)
                .ok();
        }
    }

    fn is_ready(&self) -> bool {
        self.key.get().is_some()
    }

    /// The key, waiting for the thread if it still runs (or generating here if none started).
    fn wait(&self) -> anyhow::Result<Arc<KeyPair>> {
        let result = self.key.get_or_init(|| {
            let generated = match lock(&self.thread).take() {
                Some(thread) => thread
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the key generation thread panicked"))),
                None => KeyPair::generate_rsa(),
            };
            generated.map(Arc::new).map_err(|e| format!("{e:#}"))
        });
        result.clone().map_err(|e| anyhow::anyhow!(e))
    }
}

/// The RSA key every provider of this process starts with, unless given one.
static GENERATED_RSA: BackgroundRsa = BackgroundRsa::new();
/// The never-published RSA key that test control's `wrong-key` signs with.
static WRONG_RSA: BackgroundRsa = BackgroundRsa::new();

/// A key rotated out, published until `until` (provider time).
struct Retired {
    key: Arc<KeyPair>,
    until: i64,
}

/// The keys of one algorithm.
struct Slot {
    /// `None` only for RS256 while the process's generated key is not fetched yet.
    current: Option<Arc<KeyPair>>,
    retired: Vec<Retired>,
}

impl Slot {
    fn published(&self, now: i64) -> impl Iterator<Item = &Arc<KeyPair>> {
        self.current
            .iter()
            .chain(self.retired.iter().filter(move |r| r.until > now).map(|r| &r.key))
    }
}

/// What test control reports about the keys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyStatus {
    /// The `kid` that signs, per algorithm.
    pub current: std::collections::BTreeMap<SigningAlg, String>,
    /// Every published `kid` (current first), as in the JWKS.
    pub published: Vec<String>,
}

impl Ord for SigningAlg {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for SigningAlg {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Fabrikam ID's signing keys.
pub struct Keys {
    rs256: RwLock<Slot>,
    es256: RwLock<Slot>,
    /// Signs test control's `wrong-key` ES256 tokens; never published.
    wrong_ec: KeyPair,
    /// This provider's own generated RSA key ([`KeySource::GenerateOwn`]); `None`: the
    /// process's shared one, if generated.
    own_rsa: Option<BackgroundRsa>,
}

impl Keys {
    /// Loads the PEM keys given, and generates the others (the RSA key in the background).
    pub fn new(ec: &KeySource, rsa: &KeySource) -> anyhow::Result<Self> {
        let es256 = match KeyPair::load(SigningAlg::ES256, ec)? {
            Some(pair) => pair,
            None => KeyPair::generate_ec()?,
        };
        let rs256 = KeyPair::load(SigningAlg::RS256, rsa)?.map(Arc::new);
        let own_rsa = matches!(rsa, KeySource::GenerateOwn).then(BackgroundRsa::new);
        if rs256.is_none() {
            own_rsa.as_ref().unwrap_or(&GENERATED_RSA).start();
        }
        let slot = |current| {
            RwLock::new(Slot {
                current,
                retired: Vec::new(),
            })
        };
        Ok(Self {
            rs256: slot(rs256),
            es256: slot(Some(Arc::new(es256))),
            wrong_ec: KeyPair::generate_ec()?,
            own_rsa,
        })
    }

    /// Where this provider's generated RSA key comes from: its own, or the process's.
    fn generated_rsa(&self) -> &BackgroundRsa {
        self.own_rsa.as_ref().unwrap_or(&GENERATED_RSA)
    }

    fn slot(&self, alg: SigningAlg) -> &RwLock<Slot> {
        match alg {
            SigningAlg::RS256 => &self.rs256,
            SigningAlg::ES256 => &self.es256,
        }
    }

    fn read(&self, alg: SigningAlg) -> std::sync::RwLockReadGuard<'_, Slot> {
        self.slot(alg).read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, alg: SigningAlg) -> std::sync::RwLockWriteGuard<'_, Slot> {
        self.slot(alg).write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether every current key is at hand (signing and the JWKS will not wait).
    pub fn is_ready(&self) -> bool {
        self.read(SigningAlg::RS256).current.is_some() || self.generated_rsa().is_ready()
    }

    /// Blocks until every current key is at hand: call from a blocking thread (see
    /// [`Keys::ready`] for async code).
    pub fn wait_ready(&self) -> anyhow::Result<()> {
        self.current(SigningAlg::RS256).map(|_| ())
    }

    /// Waits, without blocking the async runtime, until every current key is at hand.
    pub async fn ready(self: &Arc<Self>) -> anyhow::Result<()> {
        if self.is_ready() {
            // Fetching a finished key is immediate.
            return self.wait_ready();
        }
        let keys = Arc::clone(self);
        tokio::task::spawn_blocking(move || keys.wait_ready()).await?
    }

    /// Readies what `mode` will sign with (the wrong RSA key is generated on first use).
    pub async fn prepare(self: &Arc<Self>, mode: SignatureMode) -> anyhow::Result<()> {
        self.ready().await?;
        if mode == SignatureMode::WrongKey && !WRONG_RSA.is_ready() {
            WRONG_RSA.start();
            tokio::task::spawn_blocking(|| WRONG_RSA.wait().map(|_| ())).await??;
        }
        Ok(())
    }

    /// The current key of `alg` (blocks while the generated RSA key is still being made).
    fn current(&self, alg: SigningAlg) -> anyhow::Result<Arc<KeyPair>> {
        if let Some(key) = &self.read(alg).current {
            return Ok(Arc::clone(key));
        }
        let generated = self.generated_rsa().wait()?;
        let mut slot = self.write(alg);
        Ok(Arc::clone(slot.current.get_or_insert(generated)))
    }

    /// The `kid` that signs `alg` now.
    pub fn kid(&self, alg: SigningAlg) -> anyhow::Result<String> {
        Ok(self.current(alg)?.kid.clone())
    }

    /// The JWKS (RFC 7517 §5): every published public key, current ones first, RS256 first.
    pub fn jwks(&self, now: i64) -> anyhow::Result<JwkSet> {
        self.wait_ready()?;
        let mut keys = Vec::new();
        for alg in SigningAlg::ALL {
            keys.extend(self.read(alg).current.iter().map(|k| k.jwk.clone()));
        }
        for alg in SigningAlg::ALL {
            let slot = self.read(alg);
            keys.extend(slot.published(now).skip(1).map(|k| k.jwk.clone()));
        }
        Ok(JwkSet { keys })
    }

    /// Which keys sign and which are published.
    pub fn status(&self, now: i64) -> anyhow::Result<KeyStatus> {
        let jwks = self.jwks(now)?;
        let mut current = std::collections::BTreeMap::new();
        for alg in SigningAlg::ALL {
            current.insert(alg, self.kid(alg)?);
        }
        Ok(KeyStatus {
            current,
            published: jwks.keys.iter().filter_map(|k| k.common.key_id.clone()).collect(),
        })
    }

    /// Makes a new key of `alg` current; the old one stays published for `grace_secs` (0: it
    /// is withdrawn at once). Blocking for RS256 (a new key is generated): call it from a
    /// blocking thread.
    pub fn rotate(&self, alg: SigningAlg, grace_secs: i64, now: i64) -> anyhow::Result<String> {
        let old = self.current(alg)?;
        let new = Arc::new(match alg {
            SigningAlg::RS256 => KeyPair::generate_rsa()?,
            SigningAlg::ES256 => KeyPair::generate_ec()?,
        });
        let kid = new.kid.clone();
        let mut slot = self.write(alg);
        slot.retired.retain(|r| r.until > now);
        if grace_secs > 0 {
            slot.retired.insert(
                0,
                Retired {
                    key: old,
                    until: now.saturating_add(grace_secs),
                },
            );
        }
        slot.retired.truncate(MAX_RETIRED_KEYS);
        slot.current = Some(new);
        tracing::info!(%alg, %kid, grace_secs, "signing key rotated");
        Ok(kid)
    }

    /// Signs `claims` with the current key of `alg`, as a JWS with header `typ` (none if
    /// `None`), honestly unless `mode` says otherwise.
    pub fn sign(
        &self,
        alg: SigningAlg,
        typ: Option<&str>,
        claims: &Map<String, Value>,
        mode: SignatureMode,
    ) -> anyhow::Result<String> {
        let key = self.current(alg)?;
        let mut header = Header::new(alg.jwt());
        header.typ = typ.map(str::to_owned);
        header.kid = Some(key.kid.clone());
        match mode {
            SignatureMode::Valid => Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?),
            SignatureMode::WrongKey => {
                let wrong = match alg {
                    SigningAlg::ES256 => self.wrong_ec.encoding.clone(),
                    SigningAlg::RS256 => {
                        WRONG_RSA.start();
                        WRONG_RSA.wait()?.encoding.clone()
                    }
                };
                Ok(jsonwebtoken::encode(&header, claims, &wrong)?)
            }
            SignatureMode::Hs256ClientSecret => {
                anyhow::bail!("hs256-client-secret is signed with the client's secret: see sign_hs256")
            }
            SignatureMode::None => {
                // An unsecured JWS (RFC 7515 Appendix A.5): a test of the RP's alg check.
                let mut header = json!({ "alg": "none", "kid": key.kid });
                if let Some(typ) = typ {
                    header["typ"] = json!(typ);
                }
                Ok(format!(
                    "{}.{}.",
                    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
                    URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
                ))
            }
        }
    }

    /// Signs `claims` with HS256 under `secret` (test control's `hs256-client-secret`), as
    /// OIDC Core §10.1 has a symmetric ID token keyed: the octets of the client secret. No
    /// `kid`: no published key made it.
    pub fn sign_hs256(
        typ: Option<&str>,
        claims: &Map<String, Value>,
        secret: &[u8],
    ) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = typ.map(str::to_owned);
        Ok(jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_secret(secret)?,
        )?)
    }

    /// Verifies a token signed with one of our published keys (RS256 or ES256, found by `kid`)
    /// and issued by `issuer`. `now` is the provider's clock; with `check_exp` an expired
    /// token is refused (RP-Initiated Logout 1.0 §2 accepts an expired `id_token_hint`, so
    /// logout passes `false`). What kind of token it is (its `typ`) and its audience are left
    /// to the caller: see [`Verified`].
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        now: i64,
        check_exp: bool,
    ) -> Result<Verified, jsonwebtoken::errors::Error> {
        use jsonwebtoken::errors::ErrorKind;
        let header = jsonwebtoken::decode_header(token)?;
        let alg = match header.alg {
            Algorithm::RS256 => SigningAlg::RS256,
            Algorithm::ES256 => SigningAlg::ES256,
            _ => return Err(ErrorKind::InvalidAlgorithm.into()),
        };
        if alg == SigningAlg::RS256 && self.wait_ready().is_err() {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        let key = {
            let slot = self.read(alg);
            let found = match header.kid.as_deref() {
                Some(kid) => slot.published(now).find(|k| k.kid == kid).cloned(),
                None => slot.current.clone(),
            };
            found.ok_or_else(|| jsonwebtoken::errors::Error::from(ErrorKind::InvalidSignature))?
        };
        let mut validation = Validation::new(alg.jwt());
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)?;
        if check_exp {
            let exp = data.claims.get("exp").and_then(Value::as_i64).unwrap_or(i64::MIN);
            if exp <= now {
                return Err(ErrorKind::ExpiredSignature.into());
            }
        }
        Ok(Verified {
            typ: data.header.typ,
            claims: data.claims,
        })
    }
}

/// A token [`Keys::verify`] found signed by Fabrikam ID: its JOSE `typ` and its claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub typ: Option<String>,
    pub claims: Map<String, Value>,
}

impl Verified {
    /// Whether it is an RFC 9068 access token: `typ` `at+jwt` (§2.1), which §4 has resource
    /// servers accept as `at+jwt` or `application/at+jwt` (media types are case-insensitive,
    /// RFC 7515 §4.1.9). ID tokens are `JWT`, and an ID token must never pass as an access
    /// token, nor an access token as an ID token.
    pub fn is_access_token(&self) -> bool {
        self.typ.as_deref().is_some_and(|typ| {
            let typ = typ.to_ascii_lowercase();
            typ == "at+jwt" || typ == "application/at+jwt"
        })
    }

    /// Its `aud`: one string, or each string of an array (OIDC Core §2).
    pub fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!("http://op/"));
        claims.insert("exp".into(), json!(2_000_000_000));
        claims
    }

    fn keys() -> Keys {
        Keys::new(&KeySource::Generate, &KeySource::Generate).unwrap()
    }

    #[test]
    fn both_algorithms_sign_and_verify_with_the_published_keys() {
        let keys = keys();
        let now = 1_000;
        for alg in SigningAlg::ALL {
            let token = keys
                .sign(alg, Some("JWT"), &claims(), SignatureMode::Valid)
                .unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.alg, alg.jwt());
            assert_eq!(header.kid.as_deref(), Some(keys.kid(alg).unwrap().as_str()));
            assert!(keys.verify(&token, "http://op/", now, true).is_ok(), "{alg}");
            assert!(keys.verify(&token, "http://other/", now, true).is_err());
            assert!(keys.verify(&token, "http://op/", 2_000_000_001, true).is_err());
            assert!(keys.verify(&token, "http://op/", 2_000_000_001, false).is_ok());
            let wrong = keys
                .sign(alg, Some("JWT"), &claims(), SignatureMode::WrongKey)
                .unwrap();
            assert!(keys.verify(&wrong, "http://op/", now, false).is_err(), "{alg}");
            let none = keys
                .sign(alg, Some("JWT"), &claims(), SignatureMode::None)
                .unwrap();
            assert!(none.ends_with('.'));
            assert!(keys.verify(&none, "http://op/", now, false).is_err());
        }
        let jwks = serde_json::to_value(keys.jwks(now).unwrap()).unwrap();
        let published = jwks["keys"].as_array().unwrap();
        assert_eq!(published.len(), 2);
        assert_eq!(published[0]["kty"], "RSA");
        assert_eq!(published[0]["alg"], "RS256");
        assert_eq!(published[0]["use"], "sig");
        assert_eq!(published[1]["crv"], "P-256");
        assert_ne!(published[0]["kid"], published[1]["kid"]);
        for key in published {
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(key.get(private).is_none(), "{private} is private");
            }
        }
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() {
        // RFC 7638 §3.1's example key and thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk: Jwk =
            serde_json::from_value(json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256"})).unwrap();
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let keys = keys();
        let jwks = keys.jwks(0).unwrap();
        for key in &jwks.keys {
            let mut bare = key.clone();
            bare.common = Default::default();
            assert_eq!(
                Some(bare.thumbprint(ThumbprintHash::SHA256).unwrap()),
                key.common.key_id
            );
        }
    }

    #[test]
    fn a_rotated_key_stays_published_and_accepted_for_its_grace_period_only() {
        let keys = keys();
        let old = keys
            .sign(SigningAlg::ES256, None, &claims(), SignatureMode::Valid)
            .unwrap();
        let old_kid = keys.kid(SigningAlg::ES256).unwrap();
        let rs_kid = keys.kid(SigningAlg::RS256).unwrap();
        let new_kid = keys.rotate(SigningAlg::ES256, 300, 1_000).unwrap();
        assert_ne!(new_kid, old_kid);
        assert_eq!(keys.kid(SigningAlg::ES256).unwrap(), new_kid);
        assert_eq!(keys.kid(SigningAlg::RS256).unwrap(), rs_kid, "RS256 unchanged");
        let status = keys.status(1_000).unwrap();
        assert_eq!(
            status.published,
            [rs_kid.clone(), new_kid.clone(), old_kid.clone()]
        );
        assert!(keys.verify(&old, "http://op/", 1_299, true).is_ok(), "in grace");
        assert!(
            keys.verify(&old, "http://op/", 1_300, true).is_err(),
            "grace over"
        );
        assert_eq!(keys.status(1_300).unwrap().published, [rs_kid, new_kid.clone()]);
        // Without grace the old key is withdrawn at once.
        let newer = keys.rotate(SigningAlg::ES256, 0, 1_000).unwrap();
        assert_eq!(
            keys.status(1_000).unwrap().published.len(),
            3,
            "only the first grace"
        );
        assert!(!keys.status(1_000).unwrap().published.contains(&new_kid));
        assert!(keys.status(1_000).unwrap().published.contains(&newer));
    }

    #[test]
    fn pem_keys_are_loaded_and_bad_ones_named() {
        let ec = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let pem = ec.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
        let loaded = Keys::new(
            &KeySource::Pem(SecretString::from(pem.to_string())),
            &KeySource::Generate,
        )
        .unwrap();
        let again = Keys::new(
            &KeySource::Pem(SecretString::from(pem.to_string())),
            &KeySource::Generate,
        )
        .unwrap();
        assert_eq!(
            loaded.kid(SigningAlg::ES256).unwrap(),
            again.kid(SigningAlg::ES256).unwrap(),
            "the same key, the same kid"
        );
        let err = Keys::new(
            &KeySource::Generate,
            &KeySource::Pem(SecretString::from(pem.to_string())),
        )
        .err()
        .unwrap();
        assert!(format!("{err:#}").contains("RS256"), "{err:#}");
        let missing = Keys::new(&KeySource::File("/no/such/key.pem".into()), &KeySource::Generate)
            .err()
            .unwrap();
        assert!(
            format!("{err:#} {missing:#}").contains("/no/such/key.pem"),
            "{missing:#}"
        );
    }
}
