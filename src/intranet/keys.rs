//! The provider's signing keys (its JWKS), for ID tokens as `openidconnect` reads them and for
//! access and logout tokens as `jsonwebtoken` decoding keys by `kid`.
//!
//! A token with a `kid` we do not know may mean the provider rotated its keys (every provider
//! does), so the JWKS is fetched again *at once* — or may be forged with a random `kid`, so
//! refetches are bounded: each unknown `kid` is looked for at most once per minute, and all
//! of them together cause at most [`REFETCHES_PER_WINDOW`] fetches a minute. Requests with a
//! known `kid` never wait for a refetch: the key set is swapped in whole when it arrives, and
//! no lock is held across the fetch (it is single-flight, see `flight.rs`).
//!
//! Keys also age: once the set is older than [`KEYS_MAX_AGE`], the next token checked starts a
//! refetch in the background (tried at most once a minute), so a key the provider withdrew —
//! say, after a compromise — stops verifying tokens without a restart.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::JsonWebKey;
use openidconnect::core::CoreJsonWebKeySet;
use url::Url;

use super::fetch::{self, FetchError};
use super::flight::{Attempt, Flight};

/// The most bytes read for the JWKS.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// An unknown `kid` is looked for again at most once per this window...
pub const KID_RETRY_WINDOW: Duration = Duration::from_secs(60);
/// ... and all unknown `kid`s together cause at most this many refetches per window.
pub const REFETCHES_PER_WINDOW: usize = 10;
/// Key ids remembered for the window at most (more distinct ones count as over the limit).
const MAX_TRACKED_KIDS: usize = 1024;
/// A `kid` longer than this is no provider's: never looked for.
const MAX_KID_LEN: usize = 256;
/// Keys older than this are refreshed in the background.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);

/// One fetch of the JWKS, in both forms.
pub struct Keys {
    /// For `openidconnect`'s ID-token verifier.
    pub jwks: CoreJsonWebKeySet,
    /// For `jsonwebtoken` (access and logout tokens), by `kid`. Keys it cannot use (an unknown
    /// `kty`, no `kid`) are left out: they only disable those tokens for that key.
    pub by_kid: HashMap<String, jsonwebtoken::DecodingKey>,
    /// Every `kid` in the set.
    kids: HashSet<String>,
    /// When the set was fetched.
    fetched: Instant,
}

impl Keys {
    pub fn parse(body: &[u8]) -> Result<Self, FetchError> {
        let jwks: CoreJsonWebKeySet =
            serde_json::from_slice(body).map_err(|e| FetchError(format!("the JWKS: {e}")))?;
        let by_kid: HashMap<_, _> = serde_json::from_slice::<jsonwebtoken::jwk::JwkSet>(body)
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
        let kids = jwks
            .keys()
            .iter()
            .filter_map(|k| k.key_id().map(|kid| kid.as_str().to_owned()))
            .chain(by_kid.keys().cloned())
            .collect();
        Ok(Self {
            jwks,
            by_kid,
            kids,
            fetched: Instant::now(),
        })
    }

    pub fn has(&self, kid: &str) -> bool {
        self.kids.contains(kid)
    }

    /// How many keys the set has.
    pub fn count(&self) -> usize {
        self.jwks.keys().len()
    }
}

/// Which unknown `kid`s may cause a refetch now (see the module docs).
#[derive(Default)]
struct RefetchLimit {
    tried: HashMap<String, Instant>,
    recent: VecDeque<Instant>,
}

impl RefetchLimit {
    /// Whether `kid` may be looked for now; if so, it counts.
    fn allow(&mut self, kid: &str, now: Instant) -> bool {
        let live = |t: &Instant| now.saturating_duration_since(*t) < KID_RETRY_WINDOW;
        self.recent.retain(live);
        if self.tried.get(kid).is_some_and(live) || self.recent.len() >= REFETCHES_PER_WINDOW {
            return false;
        }
        if self.tried.len() >= MAX_TRACKED_KIDS {
            self.tried.retain(|_, t| live(t));
            if self.tried.len() >= MAX_TRACKED_KIDS {
                return false;
            }
        }
        self.tried.insert(kid.to_owned(), now);
        self.recent.push_back(now);
        true
    }
}

/// The provider's current keys, refetched on demand.
pub struct KeySet {
    current: Arc<RwLock<Arc<Keys>>>,
    refetch: Flight<Result<Arc<Keys>, FetchError>>,
    limit: Mutex<RefetchLimit>,
    http: reqwest::Client,
    jwks_uri: Url,
    /// How long a caller waits for a refetch (the HTTP timeout, and a little).
    wait: Duration,
    /// Keys older than this are refreshed ([`KEYS_MAX_AGE`]).
    max_age: Duration,
    /// The last background refresh started, so a provider that is down is asked once a
    /// minute, not on every request.
    last_refresh: Mutex<Option<Instant>>,
}

impl KeySet {
    pub fn new(keys: Keys, http: reqwest::Client, jwks_uri: Url, timeout: Duration) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(keys))),
            refetch: Flight::default(),
            limit: Mutex::new(RefetchLimit::default()),
            http,
            jwks_uri,
            wait: timeout + Duration::from_millis(500),
            max_age: KEYS_MAX_AGE,
            last_refresh: Mutex::new(None),
        }
    }

    /// The keys as last fetched.
    pub fn current(&self) -> Arc<Keys> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Keys that contain `kid` if the provider publishes it: the current ones, or — for an
    /// unknown `kid`, within the limits — freshly fetched ones. The answer may still lack
    /// `kid` (unknown, or over the limit): the token is then refused by the caller.
    ///
    /// # Errors
    ///
    /// The refetch failed (the provider is unreachable, slow or answers garbage).
    pub async fn containing(&self, kid: &str) -> Result<Arc<Keys>, FetchError> {
        let keys = self.current();
        if keys.fetched.elapsed() > self.max_age {
            self.refresh_in_background();
        }
        if keys.has(kid) || kid.len() > MAX_KID_LEN {
            return Ok(keys);
        }
        // A refetch already under way (another new kid after a rotation, say): wait for it.
        if let Some(attempt) = self.refetch.in_flight() {
            let keys = self.wait_for(attempt).await?;
            if keys.has(kid) {
                return Ok(keys);
            }
        }
        let allowed = self
            .limit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allow(kid, Instant::now());
        if !allowed {
            tracing::info!(
                kid,
                "a token names an unknown kid; the JWKS was refetched for it recently"
            );
            return Ok(self.current());
        }
        let attempt = self.refetch("refetched the provider's JWKS for an unknown kid");
        self.wait_for(attempt).await
    }

    /// Starts a refetch nobody waits for, unless one is running or one started within the
    /// last minute.
    fn refresh_in_background(&self) {
        let now = Instant::now();
        {
            let mut last = self.last_refresh.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| now.saturating_duration_since(t) < KID_RETRY_WINDOW) {
                return;
            }
            *last = Some(now);
        }
        drop(self.refetch("refreshed the provider's JWKS (the keys had aged)"));
    }

    /// Joins the refetch under way or starts one, which swaps the key set in whole when it
    /// arrives (and logs `done`).
    fn refetch(&self, done: &'static str) -> Attempt<Result<Arc<Keys>, FetchError>> {
        self.refetch.join_or_start(|| {
            let (http, uri, current) = (self.http.clone(), self.jwks_uri.clone(), self.current.clone());
            async move {
                let body = fetch::get_json(&http, uri.as_str(), "the JWKS", MAX_JWKS_BYTES).await?;
                let keys = Arc::new(Keys::parse(&body)?);
                *current.write().unwrap_or_else(|p| p.into_inner()) = keys.clone();
                tracing::info!(keys = keys.count(), "{done}");
                Ok(keys)
            }
        })
    }

    async fn wait_for(
        &self,
        attempt: Attempt<Result<Arc<Keys>, FetchError>>,
    ) -> Result<Arc<Keys>, FetchError> {
        match tokio::time::timeout(self.wait, attempt).await {
            Ok(Some(result)) => result,
            Ok(None) => Err(FetchError("the JWKS refetch was cancelled".into())),
            Err(_) => Err(FetchError(format!(
                "the JWKS did not arrive within {:?}",
                self.wait
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unknown_kid_is_looked_for_once_a_window_and_all_of_them_a_few_times() {
        let mut limit = RefetchLimit::default();
        let t0 = Instant::now();
        assert!(limit.allow("new", t0), "a new kid at once");
        assert!(
            !limit.allow("new", t0 + Duration::from_secs(59)),
            "not again within the window"
        );
        assert!(limit.allow("new", t0 + KID_RETRY_WINDOW), "again after it");
        let mut limit = RefetchLimit::default();
        let allowed = (0..100)
            .filter(|i| limit.allow(&format!("forged-{i}"), t0))
            .count();
        assert_eq!(
            allowed, REFETCHES_PER_WINDOW,
            "random kids cost a few fetches a minute"
        );
        assert!(
            limit.allow("real", t0 + KID_RETRY_WINDOW),
            "and the budget comes back"
        );
    }

    /// A JWKS with one EC key `kid`, served by a one-request-at-a-time HTTP server that
    /// counts the requests it answered.
    fn jwks(kid: &str) -> String {
        format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"{kid}","use":"sig","alg":"ES256",
            "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}]}}"#
        )
    }

    #[tokio::test]
    async fn aged_keys_are_refreshed_in_the_background_and_a_withdrawn_key_goes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = Url::parse(&format!("http://{}/jwks", listener.local_addr().unwrap())).unwrap();
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        tokio::spawn({
            let served = served.clone();
            async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    let body = jwks("new");
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                    served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        let mut set = KeySet::new(
            Keys::parse(jwks("old").as_bytes()).unwrap(),
            reqwest::Client::new(),
            uri,
            Duration::from_secs(2),
        );
        // Fresh keys: a known kid asks nothing of the provider.
        assert!(set.containing("old").await.unwrap().has("old"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 0);
        // Aged keys: the same call answers at once from what it has, and refreshes behind.
        set.max_age = Duration::ZERO;
        assert!(set.containing("old").await.unwrap().has("old"), "no wait");
        for _ in 0..50 {
            if !set.current().has("old") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let keys = set.current();
        assert!(keys.has("new") && !keys.has("old"), "the withdrawn key is gone");
        // Asked again at once: no second refresh within the minute.
        set.containing("new").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn the_kid_table_stays_bounded() {
        let mut limit = RefetchLimit::default();
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED_KIDS * 3) {
            let at = t0 + KID_RETRY_WINDOW * (i as u32 / REFETCHES_PER_WINDOW as u32);
            limit.allow(&format!("kid-{i}"), at);
        }
        assert!(limit.tried.len() <= MAX_TRACKED_KIDS);
        assert!(limit.recent.len() <= REFETCHES_PER_WINDOW);
    }
}
