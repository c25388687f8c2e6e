//! A software passkey for the end-to-end tests: a P-256 key (the `p256` crate Fabrikam ID
//! already signs ES256 with) that answers WebAuthn ceremonies the way an authenticator and a
//! browser would, with the CBOR, authenticator data and client data packed by hand (WebAuthn
//! Level 3 §6.1, §6.5, §5.8.1; a `none` attestation, §8.7). No browser, no OpenSSL.

#![allow(dead_code)] // not every test uses every helper

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Authenticator data flags (WebAuthn §6.1).
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

/// One passkey on a software authenticator.
pub struct SoftPasskey {
    key: SigningKey,
    pub credential_id: Vec<u8>,
    /// The `user.id` the relying party gave at registration.
    pub user_handle: Vec<u8>,
    counter: u32,
    /// Whether it reports user verification (UV).
    pub verifies_user: bool,
    /// The origin the "browser" puts in the client data (a phishing site would put its own).
    pub origin: String,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .expect("base64url from the relying party")
}

// ---- a minimal CBOR encoder (RFC 8949 §3), enough for a COSE key and an attestation ----

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
    }
}

fn int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        head(out, 0, v as u64);
    } else {
        head(out, 1, (-1 - v) as u64);
    }
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, 2, b.len() as u64);
    out.extend(b);
}

fn text(out: &mut Vec<u8>, t: &str) {
    head(out, 3, t.len() as u64);
    out.extend(t.as_bytes());
}

impl SoftPasskey {
    /// A new key; `seed` makes it distinct and repeatable.
    pub fn new(seed: u8, origin: &str) -> Self {
        let mut secret = [0x42u8; 32];
        secret[0] = seed.max(1);
        Self {
            key: SigningKey::from_slice(&secret).expect("a valid P-256 scalar"),
            credential_id: Sha256::digest([seed, 0xc0, 0xde]).to_vec(),
            user_handle: Vec::new(),
            counter: 0,
            verifies_user: true,
            origin: origin.trim_end_matches('/').to_owned(),
        }
    }

    /// The COSE_Key of the public key (RFC 9053 §7.1.1: EC2, ES256, P-256).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_sec1_point(false);
        let xy = point.as_bytes();
        let mut out = Vec::new();
        head(&mut out, 5, 5);
        int(&mut out, 1);
        int(&mut out, 2); // kty: EC2
        int(&mut out, 3);
        int(&mut out, -7); // alg: ES256
        int(&mut out, -1);
        int(&mut out, 1); // crv: P-256
        int(&mut out, -2);
        bytes(&mut out, &xy[1..33]);
        int(&mut out, -3);
        bytes(&mut out, &xy[33..65]);
        out
    }

    fn flags(&self) -> u8 {
        if self.verifies_user { UP | UV } else { UP }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    /// Answers `navigator.credentials.create` with `options` (the JSON Fabrikam ID sent):
    /// the body of `POST /passkeys/register`'s `credential`.
    pub fn register(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().expect("rp.id");
        self.user_handle = unb64(pk["user"]["id"].as_str().expect("user.id"));
        let challenge = pk["challenge"].as_str().expect("a challenge");
        let client_data = self.client_data("webauthn.create", challenge);
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags() | AT);
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend([0u8; 16]); // AAGUID: none
        auth_data.extend((self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(self.cose_key());
        let mut attestation = Vec::new();
        head(&mut attestation, 5, 3);
        text(&mut attestation, "fmt");
        text(&mut attestation, "none");
        text(&mut attestation, "attStmt");
        head(&mut attestation, 5, 0);
        text(&mut attestation, "authData");
        bytes(&mut attestation, &auth_data);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(&client_data),
                "transports": ["internal"],
            },
            "extensions": {},
        })
    }

    /// Answers `navigator.credentials.get` with `options`: the body of
    /// `POST /passkeys/sign-in`'s `credential`. The signature covers the authenticator data
    /// and the client data's hash (WebAuthn §6.3.3 step 11).
    pub fn sign_in(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        let rp_id = pk["rpId"].as_str().expect("rpId");
        let challenge = pk["challenge"].as_str().expect("a challenge");
        let client_data = self.client_data("webauthn.get", challenge);
        self.counter += 1;
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags());
        auth_data.extend(self.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(signature.to_der().as_bytes()),
                "userHandle": b64(&self.user_handle),
            },
            "extensions": {},
        })
    }
}
