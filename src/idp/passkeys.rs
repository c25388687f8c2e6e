//! Passkeys (WebAuthn Level 3, through `webauthn-rs`): the relying-party object for the
//! issuer's host, and the store of every user's registered passkeys, kept in a small JSON file
//! (`IDP_PASSKEY_STORE`) so they survive a restart.
//!
//! WebAuthn needs a host name: an IP address cannot be an RP ID (WebAuthn §5.1.4.1 and the
//! HTML "valid domain" rule), so with an issuer at `http://127.0.0.1:9090` Fabrikam ID offers
//! no passkeys, and no `phr` either ([`super::protocol::Level::offered`]).
//!
//! **What is verified, and what is not.** Registration requests no attestation
//! (`webauthn-rs`' passkey API asks for `none`), so Fabrikam ID cannot tell a hardware-bound key
//! from a synced or software one: its tokens say `pop` (EAP ACR Values 1.0: proof of possession,
//! protection unknown), never RFC 8176's `hwk` or `swk`, and `acr` `phr`, never `phrh`. User
//! verification (PIN or biometric) is required at every ceremony; its flag is reported as
//! `user`. The signature counter and backup state are updated after each use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use url::Url;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, CredentialID, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Uuid,
    Webauthn, WebauthnBuilder,
};

/// Passkeys a user may register; one more is refused (a store file stays small).
pub const MAX_PASSKEYS_PER_USER: usize = 10;
/// The longest name a passkey may be given.
pub const MAX_NAME_LEN: usize = 64;
/// How long a ceremony may take, between its options and its answer.
pub const CEREMONY_TTL_SECS: i64 = 5 * 60;

/// Whether `issuer` can be a WebAuthn relying party: its host is a name, not an IP address.
pub fn supported(issuer: &Url) -> bool {
    matches!(issuer.host(), Some(url::Host::Domain(_)))
}

/// One registered passkey, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPasskey {
    /// The name the person gave it ("Laptop"), shown on the account page.
    pub name: String,
    /// When it was registered (real clock, Unix seconds).
    pub created_at: i64,
    /// When it last signed in (real clock).
    #[serde(default)]
    pub last_used_at: Option<i64>,
    /// The credential: its id, public key, counter and flags (`webauthn-rs`' own format).
    pub passkey: Passkey,
}

impl StoredPasskey {
    /// The credential id as base64url, the way the account page names it in a form.
    pub fn id(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.passkey.cred_id())
    }
}

/// A user's WebAuthn handle (the random `user.id` every authenticator stores, never the name)
/// and passkeys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UserPasskeys {
    handle: Option<Uuid>,
    passkeys: Vec<StoredPasskey>,
}

/// The store file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoreFile {
    /// Bumped if the format changes.
    version: u32,
    users: BTreeMap<String, UserPasskeys>,
}

/// Why a passkey could not be stored or used.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("the passkey was not accepted: {0}")]
    Rejected(#[from] webauthn_rs::prelude::WebauthnError),
    #[error("this passkey is already registered")]
    Duplicate,
    #[error("at most {MAX_PASSKEYS_PER_USER} passkeys can be registered")]
    TooMany,
    #[error("the passkey store {path} cannot be written: {source}")]
    Store { path: String, source: std::io::Error },
}

/// The relying party and the store.
pub struct Passkeys {
    webauthn: Webauthn,
    path: Option<PathBuf>,
    users: Mutex<StoreFile>,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Passkeys {
    /// The relying party for `issuer` (its host is the RP ID, its origin the only one allowed),
    /// with the passkeys of `path` (read now; a missing file is an empty store, written at the
    /// first registration). `None` for `path` keeps them in memory only (tests).
    pub fn new(issuer: &Url, path: Option<&Path>) -> anyhow::Result<Self> {
        let rp_id = issuer
            .host_str()
            .filter(|_| supported(issuer))
            .ok_or_else(|| anyhow::anyhow!("passkeys need an issuer with a host name, not {issuer}"))?;
        let origin = Url::parse(&issuer.origin().ascii_serialization())?;
        let webauthn = WebauthnBuilder::new(rp_id, &origin)?
            .rp_name("Fabrikam ID")
            .build()?;
        let users = match path {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("IDP_PASSKEY_STORE {}: {e}", path.display()))?;
                serde_json::from_str(&text).map_err(|e| {
                    anyhow::anyhow!("IDP_PASSKEY_STORE {} is not a passkey store: {e}", path.display())
                })?
            }
            _ => StoreFile::default(),
        };
        Ok(Self {
            webauthn,
            path: path.map(Path::to_owned),
            users: Mutex::new(users),
        })
    }

    fn lock(&self) -> MutexGuard<'_, StoreFile> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// `user`'s passkeys, oldest first.
    pub fn list(&self, user: &str) -> Vec<StoredPasskey> {
        self.lock()
            .users
            .get(user)
            .map(|u| u.passkeys.clone())
            .unwrap_or_default()
    }

    /// Whether `user` has a passkey.
    pub fn has_any(&self, user: &str) -> bool {
        self.lock()
            .users
            .get(user)
            .is_some_and(|u| !u.passkeys.is_empty())
    }

    /// Starts registering a passkey for `user` (display name `display`): the options for
    /// `navigator.credentials.create` and the state to keep server-side until the answer.
    /// The user's passkeys are excluded, so an authenticator cannot register twice.
    pub fn start_registration(
        &self,
        user: &str,
        display: &str,
    ) -> Result<(CreationChallengeResponse, PasskeyRegistration), PasskeyError> {
        let (handle, exclude) = {
            let mut store = self.lock();
            let entry = store.users.entry(user.to_owned()).or_default();
            let handle = *entry.handle.get_or_insert_with(Uuid::new_v4);
            let exclude: Vec<CredentialID> = entry
                .passkeys
                .iter()
                .map(|p| p.passkey.cred_id().clone())
                .collect();
            (handle, exclude)
        };
        Ok(self
            .webauthn
            .start_passkey_registration(handle, user, display, Some(exclude))?)
    }

    /// Verifies the authenticator's answer (challenge, origin, RP ID hash, user presence and
    /// verification, the signature of a `none` attestation's self-signed data) and stores the
    /// new passkey under `name`.
    pub fn finish_registration(
        &self,
        user: &str,
        name: &str,
        answer: &RegisterPublicKeyCredential,
        state: &PasskeyRegistration,
        now: i64,
    ) -> Result<StoredPasskey, PasskeyError> {
        let passkey = self.webauthn.finish_passkey_registration(answer, state)?;
        let stored = StoredPasskey {
            name: clean_name(name),
            created_at: now,
            last_used_at: None,
            passkey,
        };
        self.change(|store| {
            let entry = store.users.entry(user.to_owned()).or_default();
            if entry.passkeys.len() >= MAX_PASSKEYS_PER_USER {
                return Err(PasskeyError::TooMany);
            }
            // A credential id names one key everywhere: refuse it twice, for anyone.
            let id = stored.passkey.cred_id();
            if store
                .users
                .values()
                .flat_map(|u| &u.passkeys)
                .any(|p| p.passkey.cred_id() == id)
            {
                return Err(PasskeyError::Duplicate);
            }
            let entry = store.users.entry(user.to_owned()).or_default();
            entry.passkeys.push(stored.clone());
            Ok(())
        })?;
        Ok(stored)
    }

    /// Starts a sign-in with one of `user`'s passkeys; `None` when they have none.
    pub fn start_authentication(
        &self,
        user: &str,
    ) -> Result<Option<(RequestChallengeResponse, PasskeyAuthentication)>, PasskeyError> {
        let keys: Vec<Passkey> = self.list(user).into_iter().map(|p| p.passkey).collect();
        if keys.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.webauthn.start_passkey_authentication(&keys)?))
    }

    /// Verifies a sign-in answer against the state [`Self::start_authentication`] kept
    /// (challenge, origin, RP ID hash, an allowed credential, its signature, user
    /// verification), then records the use (counter, backup state, time).
    pub fn finish_authentication(
        &self,
        user: &str,
        answer: &PublicKeyCredential,
        state: &PasskeyAuthentication,
        now: i64,
    ) -> Result<AuthenticationResult, PasskeyError> {
        let result = self.webauthn.finish_passkey_authentication(answer, state)?;
        self.change(|store| {
            if let Some(entry) = store.users.get_mut(user) {
                for stored in &mut entry.passkeys {
                    if stored.passkey.cred_id() == result.cred_id() {
                        stored.passkey.update_credential(&result);
                        stored.last_used_at = Some(now);
                    }
                }
            }
            Ok(())
        })?;
        Ok(result)
    }

    /// Removes `user`'s passkey whose id (base64url) is `id`; whether one was removed.
    pub fn remove(&self, user: &str, id: &str) -> Result<bool, PasskeyError> {
        let mut removed = false;
        self.change(|store| {
            if let Some(entry) = store.users.get_mut(user) {
                let before = entry.passkeys.len();
                entry.passkeys.retain(|p| p.id() != id);
                removed = entry.passkeys.len() < before;
            }
            Ok(())
        })?;
        Ok(removed)
    }

    /// Applies `f` and writes the store: a change that cannot be written is undone, so memory
    /// and file never disagree.
    fn change(&self, f: impl FnOnce(&mut StoreFile) -> Result<(), PasskeyError>) -> Result<(), PasskeyError> {
        let mut store = self.lock();
        let before = serde_json::to_string(&*store).ok();
        f(&mut store)?;
        store.version = 1;
        if let Some(path) = &self.path
            && let Err(source) = write_atomically(path, &store)
        {
            if let Some(before) = before.and_then(|b| serde_json::from_str(&b).ok()) {
                *store = before;
            }
            return Err(PasskeyError::Store {
                path: path.display().to_string(),
                source,
            });
        }
        Ok(())
    }
}

/// Writes the store beside its final name, then renames it over: a crash leaves the old file
/// or the new one, never half of either. Owner-only on Unix (it names the users).
fn write_atomically(path: &Path, store: &StoreFile) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(store).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        std::io::Write::write_all(&mut file, &json)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// A passkey's name: trimmed, control characters dropped, at most [`MAX_NAME_LEN`]
/// characters, "Passkey" when empty.
pub fn clean_name(name: &str) -> String {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_LEN)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        "Passkey".into()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_host_names_can_be_relying_parties() {
        assert!(supported(&Url::parse("http://localhost:9090").unwrap()));
        assert!(supported(&Url::parse("https://id.example/realms/x").unwrap()));
        assert!(!supported(&Url::parse("http://127.0.0.1:9090").unwrap()));
        assert!(!supported(&Url::parse("http://[::1]:9090").unwrap()));
        assert!(Passkeys::new(&Url::parse("http://127.0.0.1:9090").unwrap(), None).is_err());
        assert!(Passkeys::new(&Url::parse("http://localhost:9090").unwrap(), None).is_ok());
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("  Laptop\n"), "Laptop");
        assert_eq!(clean_name(""), "Passkey");
        assert_eq!(clean_name(&"x".repeat(100)).len(), MAX_NAME_LEN);
    }

    #[test]
    fn a_store_that_is_not_json_is_refused_with_its_path() {
        let dir = std::env::temp_dir().join(format!("fabrikam-passkeys-{}", crate::web::random_token(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.json");
        std::fs::write(&path, "not json").unwrap();
        let err = Passkeys::new(&Url::parse("http://localhost:9090").unwrap(), Some(&path)).unwrap_err();
        assert!(err.to_string().contains("store.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_registration_starts_with_a_random_handle_that_stays() {
        let keys = Passkeys::new(&Url::parse("http://localhost:9090").unwrap(), None).unwrap();
        let (a, _) = keys.start_registration("alice", "Alice").unwrap();
        let (b, _) = keys.start_registration("alice", "Alice").unwrap();
        assert_eq!(a.public_key.user.id, b.public_key.user.id);
        assert_ne!(a.public_key.challenge, b.public_key.challenge);
        assert_ne!(AsRef::<[u8]>::as_ref(&a.public_key.user.id), b"alice".as_slice());
        assert_eq!(a.public_key.rp.id, "localhost");
        assert!(
            keys.start_authentication("alice").unwrap().is_none(),
            "no passkey yet"
        );
    }
}
