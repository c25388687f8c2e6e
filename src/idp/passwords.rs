//! Argon2 with bounded memory: [`Argon2Pool`] hashes and verifies passwords with memory it
//! owns and reuses, one block buffer per permit.
//!
//! Why: argon2id with the OWASP parameters fills 19 MiB per hash. Left to `Argon2::default()`,
//! every check allocates its 19 MiB anew on whichever blocking thread runs it; glibc raises its
//! mmap threshold after the first free, so later buffers come from per-thread arenas and stay
//! there. The attack run of issue 11 took `fabrikam idp` from 38 MB to 1,030 MB with 100–200
//! wrong passwords, never returned. Here at most [`Argon2Pool::slots`] checks run at once
//! (OWASP ASVS 4.0 V2.4.3, CWE-400), each on a buffer taken from the pool and put back, so
//! the memory argon2 holds is `slots` buffers for the life of the process, whatever the load
//! (measured with `scripts/idp-password-memory.py`; figures in README, "Performance").

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// The largest argon2 memory cost accepted in a configured `password_hash`, in KiB (64 MiB):
/// every buffer may grow to it, so it bounds what the pool can hold.
pub const MAX_MEMORY_KIB: u32 = 64 * 1024;

/// How many checks may run at once by default: one per core the process may use.
pub fn default_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Hashes and verifies argon2 PHC strings with reused memory; see the module documentation.
#[derive(Debug)]
pub struct Argon2Pool {
    permits: Arc<Semaphore>,
    slots: usize,
    /// Buffers not in use. A buffer is taken for one hash and put back; at most `slots` are
    /// kept (one per permit).
    free: Mutex<Vec<Vec<Block>>>,
    /// Buffers ever allocated (for tests and the memory figures).
    allocated: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// A PHC string that is not an argon2 hash this pool can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an argon2 PHC string within the accepted parameters")]
pub struct Unusable;

impl Argon2Pool {
    /// A pool of `slots` permits (at least one).
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        Self {
            permits: Arc::new(Semaphore::new(slots)),
            slots,
            free: Mutex::new(Vec::with_capacity(slots)),
            allocated: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Buffers allocated so far: never more than [`Self::slots`] while only
    /// [`Self::verify`] runs.
    pub fn buffers_allocated(&self) -> usize {
        self.allocated.load(Ordering::SeqCst)
    }

    /// The most hashes that ever ran at the same time.
    pub fn peak_concurrent(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Whether `password` matches the PHC string `phc`, compared in constant time. Waits for a
    /// permit before any memory is used, then runs on a blocking thread; the permit moves into
    /// that thread, so a client that disconnects does not free its slot while its hash runs.
    pub async fn verify(self: Arc<Self>, phc: String, password: String) -> anyhow::Result<bool> {
        let permit = Arc::clone(&self.permits).acquire_owned().await?;
        let verified = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            self.verify_now(&phc, &password)
        })
        .await?;
        Ok(verified)
    }

    /// [`Self::verify`] on the calling thread, without waiting for a permit (for tests and
    /// start-up; a buffer beyond [`Self::slots`] is allocated if all are in use).
    pub fn verify_now(&self, phc: &str, password: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
            return false;
        };
        let Ok(argon) = hasher(&hash) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let computed = self.with_buffer(&argon, |argon, blocks| {
            argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
        });
        computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
    }

    /// A new argon2id PHC string for `password` (OWASP parameters: 19 MiB, 2 passes, 1 lane),
    /// with a random 128-bit salt. Blocking: call it off the async runtime.
    pub fn hash(&self, password: &str) -> anyhow::Result<String> {
        let params = Params::default();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let salt = Salt::generate();
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.with_buffer(&argon, |argon, blocks| {
            argon.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
        })
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("argon2: {e}"))?,
            salt: Some(salt),
            hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2: {e}"))?),
        };
        Ok(phc.to_string())
    }

    /// Runs `f` with a buffer of at least `argon`'s block count, taken from the pool (or newly
    /// allocated) and put back afterwards if the pool has room for it.
    fn with_buffer<T>(&self, argon: &Argon2<'_>, f: impl FnOnce(&Argon2<'_>, &mut [Block]) -> T) -> T {
        let running = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(running, Ordering::SeqCst);
        let taken = lock(&self.free).pop();
        let mut blocks = taken.unwrap_or_else(|| {
            self.allocated.fetch_add(1, Ordering::SeqCst);
            Vec::new()
        });
        let needed = argon.params().block_count();
        if blocks.len() < needed {
            blocks.resize(needed, Block::new());
        }
        let result = f(argon, &mut blocks);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut free = lock(&self.free);
        if free.len() < self.slots {
            free.push(blocks);
        }
        result
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The argon2 instance a PHC string was made with (algorithm, version, parameters), as the
/// `argon2` crate's own verifier builds it; refused beyond [`MAX_MEMORY_KIB`].
fn hasher(hash: &PasswordHash) -> Result<Argon2<'static>, Unusable> {
    let algorithm = Algorithm::try_from(hash.algorithm.as_str()).map_err(|_| Unusable)?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|_| Unusable)?
        .unwrap_or_default();
    let params = Params::try_from(hash).map_err(|_| Unusable)?;
    if params.m_cost() > MAX_MEMORY_KIB {
        return Err(Unusable);
    }
    Ok(Argon2::new(algorithm, version, params))
}

/// Checks that `phc` is an argon2 PHC string the pool accepts (for configuration).
pub fn check_phc(phc: &str) -> Result<(), Unusable> {
    let hash = PasswordHash::new(phc).map_err(|_| Unusable)?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(Unusable);
    }
    hasher(&hash).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_agree_with_the_argon2_crates_own_hasher_and_verifier() {
        let pool = Argon2Pool::new(1);
        let ours = pool.hash("correct horse").unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &PasswordHash::new(&ours).unwrap())
                .is_ok()
        );
        let theirs = Argon2::default()
            .hash_password(b"battery staple")
            .unwrap()
            .to_string();
        assert!(pool.verify_now(&theirs, "battery staple"));
        assert!(!pool.verify_now(&theirs, "battery stapler"));
        assert!(!pool.verify_now(&ours, ""));
        // Other parameters and algorithms, as an IDP_CONFIG password_hash may carry them.
        let small = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(64, 3, 2, Some(16)).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap()
        .to_string();
        assert!(pool.verify_now(&small, "pw") && !pool.verify_now(&small, "pW"));
        assert!(!pool.verify_now("$argon2id$nonsense", "pw"));
        assert!(!pool.verify_now("", "pw"));
    }

    #[test]
    fn memory_beyond_the_limit_is_refused() {
        let huge = "$argon2id$v=19$m=1048576,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
                    MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE";
        assert_eq!(check_phc(huge), Err(Unusable));
        assert!(!Argon2Pool::new(1).verify_now(huge, "pw"));
        assert_eq!(check_phc(&Argon2Pool::new(1).hash("pw").unwrap()), Ok(()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_checks_reuse_one_buffer_per_permit() {
        let pool = Arc::new(Argon2Pool::new(2));
        let phc = pool.hash("pw").unwrap();
        let checks: Vec<_> = (0..24)
            .map(|i| tokio::spawn(Arc::clone(&pool).verify(phc.clone(), format!("guess-{i}"))))
            .collect();
        for check in checks {
            assert!(!check.await.unwrap().unwrap());
        }
        assert!(Arc::clone(&pool).verify(phc, "pw".into()).await.unwrap());
        assert!(
            (1..=2).contains(&pool.peak_concurrent()),
            "{}",
            pool.peak_concurrent()
        );
        assert!(pool.buffers_allocated() <= 2, "{}", pool.buffers_allocated());
    }
}
