//! Sessions in Redis (`REDIS_URL`): actix-session's `SessionStore` on a `redis`
//! `ConnectionManager`, with a deadline on every call (`REDIS_TIMEOUT_MS`) so that a Redis that
//! is down, stopped or unreachable costs each request that deadline and no more: the request
//! gets a `503` page (`errors::session_failures`), and the next one tries again, so service
//! resumes by itself when Redis does. The first connection is made lazily if Redis is down
//! at start (single-flight: concurrent requests share one attempt, no lock held across it).
//!
//! Keys are `fabrikam:session:<random>`; values are the session's JSON, with the session's
//! lifetime as their TTL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration as CookieDuration;
use anyhow::{Context, anyhow};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, Value};

use super::flight::Flight;
use crate::web::random_token;

const KEY_PREFIX: &str = "fabrikam:session:";

/// The session store (cheap to clone: one connection, shared).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    timeout: Duration,
    connection: RwLock<Option<ConnectionManager>>,
    connecting: Flight<Result<ConnectionManager, String>>,
}

impl RedisStore {
    /// A store for `url` with `timeout` on every call. Connects now if Redis answers (and
    /// warns if not: the intranet starts anyway, and connects when Redis is back).
    ///
    /// # Errors
    ///
    /// `url` is not a Redis URL.
    pub async fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        // The URL may hold a password: it is never printed.
        let client = redis::Client::open(url).map_err(|_| anyhow!("REDIS_URL is not a Redis URL"))?;
        let store = Self {
            inner: Arc::new(Inner {
                client,
                timeout,
                connection: RwLock::new(None),
                connecting: Flight::default(),
            }),
        };
        match store.connection().await {
            Ok(_) => tracing::info!("sessions are kept in Redis"),
            Err(e) => tracing::warn!(
                error = %e,
                "Redis (REDIS_URL) does not answer: signed-in pages answer 503 until it does"
            ),
        }
        Ok(store)
    }

    /// The connection, made on first need. Once made, the `ConnectionManager` reconnects by
    /// itself after Redis comes back; every command still has the deadline.
    async fn connection(&self) -> anyhow::Result<ConnectionManager> {
        if let Some(connection) = self
            .inner
            .connection
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(connection);
        }
        let attempt = self.inner.connecting.join_or_start(|| {
            let inner = self.inner.clone();
            async move {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(inner.timeout)
                    .set_response_timeout(inner.timeout)
                    // One try per (re)connection, no backoff: the next command tries again,
                    // so nothing waits out a backoff once Redis is back (the 30 s hangs after
                    // it returned; the redis crate's default backs off from a second upwards).
                    .set_number_of_retries(0)
                    .set_max_delay(100);
                let connection = ConnectionManager::new_with_config(inner.client.clone(), config)
                    .await
                    .map_err(|e| format!("cannot connect to Redis: {e}"))?;
                *inner.connection.write().unwrap_or_else(|p| p.into_inner()) = Some(connection.clone());
                Ok(connection)
            }
        });
        match tokio::time::timeout(self.inner.timeout, attempt).await {
            Ok(Some(Ok(connection))) => Ok(connection),
            Ok(Some(Err(e))) => Err(anyhow!(e)),
            Ok(None) => Err(anyhow!("the connection attempt was cancelled")),
            Err(_) => Err(anyhow!("Redis did not answer within {:?}", self.inner.timeout)),
        }
    }

    /// Runs `cmd` within the deadline.
    async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> anyhow::Result<T> {
        let timeout = self.inner.timeout;
        let call = async {
            let mut connection = self.connection().await?;
            cmd.query_async::<T>(&mut connection)
                .await
                .map_err(|e| anyhow!("Redis failed: {e}"))
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| anyhow!("Redis did not answer within {timeout:?}"))?
    }

    /// Whether Redis answers `PING` within `timeout` (for `/readyz`).
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        match tokio::time::timeout(timeout, self.run::<String>(&redis::cmd("PING"))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}

fn cache_key(key: &SessionKey) -> String {
    format!("{KEY_PREFIX}{}", key.as_ref())
}

impl SessionStore for RedisStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let value: Option<String> = self
            .run(redis::cmd("GET").arg(cache_key(key)))
            .await
            .map_err(LoadError::Other)?;
        value
            .map(|v| serde_json::from_str(&v).map_err(|e| LoadError::Deserialization(e.into())))
            .transpose()
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let body = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let key: SessionKey = random_token(32)
            .try_into()
            .map_err(|e| SaveError::Other(anyhow!("{e}")))?;
        let set: Value = self
            .run(
                redis::cmd("SET")
                    .arg(cache_key(&key))
                    .arg(body)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl.whole_seconds().max(1)),
            )
            .await
            .map_err(SaveError::Other)?;
        match set {
            Value::Nil => Err(SaveError::Other(anyhow!("a session id was drawn twice"))),
            _ => Ok(key),
        }
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let body = serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let set: Value = self
            .run(
                redis::cmd("SET")
                    .arg(cache_key(&key))
                    .arg(body)
                    .arg("XX")
                    .arg("EX")
                    .arg(ttl.whole_seconds().max(1)),
            )
            .await
            .map_err(UpdateError::Other)?;
        match set {
            // Expired meanwhile: store it under a new id.
            Value::Nil => self.save(state, ttl).await.map_err(|e| match e {
                SaveError::Serialization(e) => UpdateError::Serialization(e),
                SaveError::Other(e) => UpdateError::Other(e),
            }),
            _ => Ok(key),
        }
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &CookieDuration) -> anyhow::Result<()> {
        self.run::<Value>(
            redis::cmd("EXPIRE")
                .arg(cache_key(key))
                .arg(ttl.whole_seconds().max(1)),
        )
        .await
        .map(|_| ())
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        self.run::<Value>(redis::cmd("DEL").arg(cache_key(key)))
            .await
            .map(|_| ())
            .context("cannot delete a session")
    }
}
