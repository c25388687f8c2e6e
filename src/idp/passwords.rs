//! Argon2 with bounded memory: [`Argon2Pool`] hashes and verifies passwords with memory it
//! owns and reuses, one block buffer per permit.
//!
//! Why: argon2id with the OWASP parameters fills 19 MiB per hash. Left to `Argon2::default()`,
//! every check allocates its 19 MiB anew on whichever blocking thread runs it; glibc raises its
//! mmap threshold after the first free, so later buffers come from per-thread arenas and stay
//! there. The attack run of issue 11 took `fabrikam idp` from 38 MB to 1,030 MB with 100–200
//! wrong passwords, never returned. Here at most [`Argon2Pool::slots`] checks run at once
//! (OWASP ASVS 4.0 V2.4.3, CWE-400), each on a buffer taken from the pool and put back, so
//! the memory argon2 holds is at most `slots` buffers, whatever the load (measured with
//! `scripts/idp-password-memory.py`; figures in README, "Performance").
//!
//! Kept buffers are dropped once no password has been checked for a while
//! ([`Argon2Pool::release_when_idle`]): a burst of sign-ins reuses them, a quiet provider
//! does not hold 19 MiB per core for good. For the memory to go back to the system rather than
//! to glibc's arenas, the `fabrikam` binary fixes glibc's mmap threshold at start (`main.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// The largest argon2 memory cost accepted in a configured `password_hash`, in KiB (64 MiB):
/// every buffer may grow to it, so it bounds what the pool can hold.
pub const MAX_MEMORY_KIB: u32 = 64 * 1024;

/// The PHC string an unknown user name is checked against, so that a wrong name costs the
/// same argon2 work as a wrong password (the same parameters as [`Argon2Pool::hash`]). No
/// password is ever accepted with it: the caller has no user to sign in.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$3juEtuMgmHTZbnvuTdb3ag$huntksBNZTg4Fyzg+Yxb9GGWyRc+pdfQC/virqQ+DSc";

/// How long the pool keeps its buffers after the last check by default.
pub const DEFAULT_IDLE_RELEASE: Duration = Duration::from_secs(10);

/// How many checks may run at once by default: one per core the process may use.
pub fn default_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Hashes and verifies argon2 PHC strings with reused memory; see the module documentation.
#[derive(Debug)]
pub struct Argon2Pool {
    permits: Arc<Semaphore>,
    slots: usize,
    /// Buffers not in use, and when the last hash ended. A buffer is taken for one hash and
    /// put back; at most `slots` are kept (one per permit).
    free: Mutex<Free>,
    /// Buffers ever allocated (for tests and the memory figures).
    allocated: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// A PHC string that is not an argon2 hash this pool can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an argon2 PHC string within the accepted parameters")]
pub struct Unusable;

#[derive(Debug)]
struct Free {
    buffers: Vec<Vec<Block>>,
    last_used: Instant,
}

impl Argon2Pool {
    /// A pool of `slots` permits (at least one).
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        Self {
            permits: Arc::new(Semaphore::new(slots)),
            slots,
            free: Mutex::new(Free {
                buffers: Vec::with_capacity(slots),
                last_used: Instant::now(),
            }),
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

    /// Buffers kept for the next checks (not counting those in use).
    pub fn buffers_kept(&self) -> usize {
        lock(&self.free).buffers.len()
    }

    /// Drops the kept buffers if no hash is running and none ended within `idle`; returns how
    /// many were dropped.
    pub fn release_idle(&self, idle: Duration) -> usize {
        let mut free = lock(&self.free);
        if self.in_flight.load(Ordering::SeqCst) > 0 || free.last_used.elapsed() < idle {
            return 0;
        }
        std::mem::take(&mut free.buffers).len()
    }

    /// Calls [`Self::release_idle`] every `idle / 2` for as long as the pool lives (spawn it
    /// on the runtime that serves the provider).
    pub async fn release_when_idle(pool: Weak<Self>, idle: Duration) {
        let mut tick = tokio::time::interval((idle / 2).max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(pool) = pool.upgrade() else { return };
            let dropped = pool.release_idle(idle);
            if dropped > 0 {
                tracing::debug!(buffers = dropped, "argon2 memory released after an idle spell");
            }
        }
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
        let taken = lock(&self.free).buffers.pop();
        let mut blocks = taken.unwrap_or_else(|| {
            self.allocated.fetch_add(1, Ordering::SeqCst);
            Vec::new()
        });
        let needed = argon.params().block_count();
        if blocks.len() < needed {
            blocks.resize(needed, Block::new());
        }
        let result = f(argon, &mut blocks);
        let mut free = lock(&self.free);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        free.last_used = Instant::now();
        if free.buffers.len() < self.slots {
            free.buffers.push(blocks);
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
    fn the_prepared_hashes_match_their_passwords() {
        let pool = Argon2Pool::new(1);
        // The same work as a hash made now: the pool's own algorithm and parameters.
        let params = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        let made_now = params(&pool.hash("x").unwrap());
        for (user, phc) in crate::idp::config::DEMO_PASSWORD_HASHES {
            assert_eq!(check_phc(phc), Ok(()), "{user}");
            assert_eq!(params(phc), made_now, "{user}");
            assert!(pool.verify_now(phc, &format!("{user}-password")), "{user}");
            assert!(!pool.verify_now(phc, user), "{user}");
        }
        assert_eq!(check_phc(DUMMY_HASH), Ok(()));
        assert_eq!(params(DUMMY_HASH), made_now);
    }

    #[test]
    fn kept_buffers_are_dropped_only_after_an_idle_spell() {
        let pool = Argon2Pool::new(2);
        assert!(pool.verify_now(DUMMY_HASH, "no such user"));
        assert_eq!(pool.buffers_kept(), 1);
        assert_eq!(pool.release_idle(Duration::from_secs(60)), 0, "used just now");
        assert_eq!(pool.buffers_kept(), 1);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(pool.release_idle(Duration::from_millis(20)), 1);
        assert_eq!(pool.buffers_kept(), 0);
        // The next check allocates again and still works.
        assert!(!pool.verify_now(DUMMY_HASH, "guess"));
        assert_eq!((pool.buffers_kept(), pool.buffers_allocated()), (1, 2));
    }

    #[tokio::test]
    async fn the_release_task_drops_buffers_and_ends_with_the_pool() {
        let pool = Arc::new(Argon2Pool::new(1));
        assert!(!pool.verify_now(DUMMY_HASH, "guess"));
        let task = tokio::spawn(Argon2Pool::release_when_idle(
            Arc::downgrade(&pool),
            Duration::from_millis(40),
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.buffers_kept() > 0 {
            assert!(Instant::now() < deadline, "the buffer was never released");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(pool);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the task ends once the pool is gone")
            .unwrap();
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
