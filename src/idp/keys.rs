//! Signing keys: the ES256 (P-256) key that signs ID and access tokens, its JWKS entry, and
//! the deliberately wrong key that test control can sign with under the same `kid`.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::SecretKey;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand::RngCore;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// How the next token is signed (test control can pick a bad one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureMode {
    #[default]
    Valid,
    WrongKey,
    None,
}

/// One P-256 key pair, ready for jsonwebtoken.
struct EcKey {
    encoding: EncodingKey,
    x: String,
    y: String,
}

impl EcKey {
    fn from_secret(secret: &SecretKey) -> anyhow::Result<Self> {
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("cannot encode the signing key: {e}"))?;
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).context("jsonwebtoken refused the key")?;
        let point = secret.public_key().to_sec1_point(false);
        let x = point.x().context("the public key has no x coordinate")?;
        let y = point.y().context("the public key has no y coordinate")?;
        Ok(Self {
            encoding,
            x: URL_SAFE_NO_PAD.encode(x),
            y: URL_SAFE_NO_PAD.encode(y),
        })
    }

    fn generate() -> anyhow::Result<Self> {
        Self::from_secret(&random_secret())
    }
}

fn random_secret() -> SecretKey {
    loop {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        // A random 256-bit string is a valid scalar except with negligible probability.
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return key;
        }
    }
}

/// Fabrikam ID's signing keys.
pub struct Keys {
    kid: String,
    current: EcKey,
    wrong: EcKey,
    decoding: DecodingKey,
}

impl Keys {
    /// Loads the PKCS#8 PEM at `pem` if given, else generates a fresh key.
    pub fn load_or_generate(pem: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let current = match pem {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the signing key {}", path.display()))?;
                let secret = SecretKey::from_pkcs8_pem(&text)
                    .map_err(|e| anyhow::anyhow!("{} is not a PKCS#8 P-256 key: {e}", path.display()))?;
                EcKey::from_secret(&secret)?
            }
            None => EcKey::generate()?,
        };
        let wrong = EcKey::generate()?;
        let decoding = DecodingKey::from_ec_components(&current.x, &current.y)?;
        // RFC 7638 thumbprint, so the kid changes whenever the key does.
        let thumbprint = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            current.x, current.y
        );
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint.as_bytes()));
        Ok(Self {
            kid,
            current,
            wrong,
            decoding,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document (RFC 7517): the public half only.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "x": self.current.x, "y": self.current.y,
            "use": "sig", "alg": "ES256", "kid": self.kid,
        }]})
    }

    /// Signs `claims` as a JWS with header `typ` (none if `None`), honestly unless `mode` says
    /// otherwise.
    pub fn sign(
        &self,
        typ: Option<&str>,
        claims: &Map<String, Value>,
        mode: SignatureMode,
    ) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = typ.map(str::to_owned);
        header.kid = Some(self.kid.clone());
        match mode {
            SignatureMode::Valid => Ok(jsonwebtoken::encode(&header, claims, &self.current.encoding)?),
            SignatureMode::WrongKey => Ok(jsonwebtoken::encode(&header, claims, &self.wrong.encoding)?),
            SignatureMode::None => {
                // An unsecured JWS (RFC 7515 Appendix A.5): a test of the RP's alg check.
                let mut header = json!({ "alg": "none", "kid": self.kid });
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

    /// Verifies a token we signed. `check_exp_at` is the OP's clock; `None` accepts an expired
    /// token (RP-Initiated Logout 1.0 §2: an expired `id_token_hint` is still a hint).
    /// The audience is left to the caller.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        check_exp_at: Option<i64>,
    ) -> Result<Map<String, Value>, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &validation)?;
        if let Some(now) = check_exp_at {
            let exp = data.claims.get("exp").and_then(Value::as_i64).unwrap_or(i64::MIN);
            if exp <= now {
                return Err(jsonwebtoken::errors::ErrorKind::ExpiredSignature.into());
            }
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_with_the_published_key() {
        let keys = Keys::load_or_generate(None).unwrap();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!("http://op/"));
        claims.insert("exp".into(), json!(2_000_000_000));
        let token = keys.sign(Some("JWT"), &claims, SignatureMode::Valid).unwrap();
        assert!(keys.verify(&token, "http://op/", Some(1_000)).is_ok());
        assert!(keys.verify(&token, "http://other/", Some(1_000)).is_err());
        assert!(keys.verify(&token, "http://op/", Some(2_000_000_001)).is_err());
        let wrong = keys.sign(Some("JWT"), &claims, SignatureMode::WrongKey).unwrap();
        assert!(keys.verify(&wrong, "http://op/", None).is_err());
        let none = keys.sign(Some("JWT"), &claims, SignatureMode::None).unwrap();
        assert!(none.ends_with('.'));
        assert!(keys.verify(&none, "http://op/", None).is_err());
        let jwks = keys.jwks();
        assert_eq!(jwks["keys"][0]["kid"], keys.kid());
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
    }
}
