//! The demo directory: alice, bob and carol, their argon2 password hashes, their TOTP secrets
//! (carol enrols hers at run time) and, per user, the last TOTP step accepted.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use totp_rs::{Builder, Secret, Totp};

/// The documented TOTP secrets (DESIGN.md), RFC 6238 defaults.
pub const ALICE_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
pub const BOB_TOTP: &str = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";
/// The issuer shown in authenticator apps.
pub const TOTP_ISSUER: &str = "Fabrikam ID";

/// A person in the directory.
#[derive(Debug, Clone)]
pub struct User {
    pub username: String,
    pub name: String,
    pub email: String,
    pub roles: Vec<String>,
}

struct Entry {
    user: User,
    password_hash: String,
    totp: Option<Secret>,
    /// RFC 6238 §5.2: a code is accepted at most once; only later steps pass.
    last_step: Option<u64>,
}

/// Why a TOTP code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpRefusal {
    /// Not a code of this secret within ±1 step.
    Wrong,
    /// A valid code whose step was already used (or an older one).
    Replayed,
    /// The user has no second factor yet.
    NotEnrolled,
}

pub struct Directory {
    entries: Mutex<HashMap<String, Entry>>,
    /// A hash to verify against when the user is unknown, so both paths cost the same.
    dummy_hash: String,
}

fn hash(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

/// An RFC 6238 TOTP with the defaults (SHA-1, 6 digits, 30 s) and ±1 step of skew.
pub fn totp(secret: &Secret, account: &str) -> Option<Totp> {
    Builder::new()
        .with_secret(secret.clone())
        .with_skew(1)
        .with_issuer(Some(TOTP_ISSUER))
        .with_account_name(account)
        .build()
        .ok()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Directory {
    /// The demo users; passwords are `<user>-password`, hashed at start.
    pub fn demo() -> anyhow::Result<Self> {
        let people = [
            ("alice", "Alice Ashford", &["hr"][..], Some(ALICE_TOTP)),
            ("bob", "Bob Brennan", &["sales"][..], Some(BOB_TOTP)),
            ("carol", "Carol Castillo", &["hr"][..], None),
        ];
        let mut entries = HashMap::new();
        for (username, name, roles, totp) in people {
            let totp = match totp {
                Some(b32) => Some(Secret::try_from_base32(b32).map_err(|e| anyhow::anyhow!("{e}"))?),
                None => None,
            };
            entries.insert(
                username.to_owned(),
                Entry {
                    user: User {
                        username: username.to_owned(),
                        name: name.to_owned(),
                        email: format!("{username}@fabrikam.example"),
                        roles: roles.iter().map(|r| r.to_string()).collect(),
                    },
                    password_hash: hash(&format!("{username}-password"))?,
                    totp,
                    last_step: None,
                },
            );
        }
        Ok(Self {
            entries: Mutex::new(entries),
            dummy_hash: hash("no such user")?,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn user(&self, username: &str) -> Option<User> {
        self.lock().get(username).map(|e| e.user.clone())
    }

    /// The user if `password` is theirs. Unknown users cost an argon2 verification too.
    pub fn check_password(&self, username: &str, password: &str) -> Option<User> {
        let found = self
            .lock()
            .get(username)
            .map(|e| (e.user.clone(), e.password_hash.clone()));
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, self.dummy_hash.clone()),
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        user.filter(|_| ok)
    }

    pub fn has_totp(&self, username: &str) -> bool {
        self.lock().get(username).is_some_and(|e| e.totp.is_some())
    }

    /// Checks a TOTP code against the real clock (RFC 6238 §5.2: ±1 step, each step once).
    pub fn check_totp(&self, username: &str, code: &str) -> Result<(), TotpRefusal> {
        self.check_totp_at(username, code, unix_now())
    }

    fn check_totp_at(&self, username: &str, code: &str, now: u64) -> Result<(), TotpRefusal> {
        let mut entries = self.lock();
        let entry = entries.get_mut(username).ok_or(TotpRefusal::NotEnrolled)?;
        let secret = entry.totp.as_ref().ok_or(TotpRefusal::NotEnrolled)?;
        let step = check_code(secret, username, code, now).ok_or(TotpRefusal::Wrong)?;
        if entry.last_step.is_some_and(|last| step <= last) {
            return Err(TotpRefusal::Replayed);
        }
        entry.last_step = Some(step);
        Ok(())
    }

    /// Enrols `secret` for a user without a second factor if `code` proves they hold it.
    pub fn enroll(&self, username: &str, secret: &Secret, code: &str) -> Result<(), TotpRefusal> {
        let mut entries = self.lock();
        let entry = entries.get_mut(username).ok_or(TotpRefusal::NotEnrolled)?;
        let step = check_code(secret, username, code, unix_now()).ok_or(TotpRefusal::Wrong)?;
        entry.totp = Some(secret.clone());
        entry.last_step = Some(step);
        Ok(())
    }
}

/// The matched step, if `code` is a valid code of `secret` at `now` ± 1 step.
fn check_code(secret: &Secret, account: &str, code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret, account)?.check(code, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_at(b32: &str, t: u64) -> String {
        let secret = Secret::try_from_base32(b32).unwrap();
        totp(&secret, "x").unwrap().generate(t).to_string()
    }

    #[test]
    fn passwords_are_checked_against_argon2_hashes() {
        let d = Directory::demo().unwrap();
        assert!(d.check_password("alice", "alice-password").is_some());
        assert!(d.check_password("alice", "bob-password").is_none());
        assert!(d.check_password("mallory", "mallory-password").is_none());
        assert!(d.lock()["alice"].password_hash.starts_with("$argon2"));
    }

    #[test]
    fn a_totp_step_is_accepted_once_and_older_steps_never() {
        let d = Directory::demo().unwrap();
        let t = 1_800_000_000;
        let now = code_at(ALICE_TOTP, t);
        let before = code_at(ALICE_TOTP, t - 30);
        assert_eq!(d.check_totp_at("alice", "000000x", t), Err(TotpRefusal::Wrong));
        assert_eq!(d.check_totp_at("alice", &now, t), Ok(()));
        assert_eq!(d.check_totp_at("alice", &now, t), Err(TotpRefusal::Replayed));
        assert_eq!(d.check_totp_at("alice", &before, t), Err(TotpRefusal::Replayed));
        assert_eq!(d.check_totp_at("alice", &code_at(ALICE_TOTP, t + 30), t), Ok(()));
        assert_eq!(
            d.check_totp_at("alice", &code_at(ALICE_TOTP, t + 90), t),
            Err(TotpRefusal::Wrong)
        );
        assert_eq!(d.check_totp_at("carol", &now, t), Err(TotpRefusal::NotEnrolled));
    }
}
