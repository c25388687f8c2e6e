//! How long an intranet session lives ([`SessionPolicy`] over the [`SessionLogin`] each
//! session carries) and the intranet's record of sign-ins, so that ending one works in either
//! session store: a
//! cookie session cannot be deleted, and a Redis session cannot be found by the provider's
//! `sid` or `sub`. Each session carries a random login id; the database keeps each login
//! (subject, the provider's `sid`, the ID token for the provider's logout) and marks it ended
//! at sign-out or on a back-channel logout; every request checks its login id against the
//! ended ones, kept **in memory** (a hash-set lookup: no database read per request).
//!
//! Several intranet processes sharing a database learn each other's ended logins within
//! [`SYNC_INTERVAL`] (a background task reads the ones ended since its last look). A login
//! that cannot be recorded is refused (its session could not be ended later), and a session
//! older than the database itself is void (were the file lost, its ended logins would be too).

use std::collections::HashMap;
use std::sync::{Mutex, RwLock, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::data::{Database, LoginRow};
use crate::clock::Clock;
use crate::web::random_token;

/// The most a cookie may hold, name, value and attributes together (RFC 6265 §6.1's minimum,
/// and what browsers keep: a larger cookie is dropped, and the browser would sign in forever).
pub const MAX_COOKIE_BYTES: usize = 4096;

/// How often ended logins are read from the database (for other processes' sign-outs).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(2);
/// Logins that expired this long ago are deleted from the database.
const PURGE_AFTER_SECS: i64 = 3600;
/// How far before its last successful look each sync reads again. A sign-out's `ended_at` is
/// stamped before its write commits (which may wait seconds on a busy database, or behind a
/// back-channel logout's key fetch), and other hosts' clocks differ from ours; re-reading
/// costs nothing (the map holds each login once).
const SYNC_OVERLAP_SECS: i64 = 60;
/// The longest ID token kept for the provider's logout (a larger one is sent without it).
const MAX_KEPT_ID_TOKEN: usize = 64 * 1024;

/// How long sessions last: the absolute lifetime from the first sign-in (not renewed by
/// step-ups or later sign-ins in the same session) and the idle timeout.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// `SESSION_LIFETIME_SECS`.
    pub lifetime: i64,
    /// `SESSION_IDLE_TIMEOUT_SECS`.
    pub idle: i64,
}

/// What [`SessionPolicy::judge`] says of a session's login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Current,
    /// Current, and its last-seen stamp is old enough to be written again.
    Touch,
    Ended(&'static str),
}

impl SessionPolicy {
    /// The last-seen stamp is written again only when it is this old, so reading pages does
    /// not rewrite the session on every request (a sixth of the idle timeout, 1 s to 5 min:
    /// the idle timeout then holds to within that).
    pub fn touch_after(&self) -> i64 {
        (self.idle / 6).clamp(1, 300)
    }

    /// Judges a login at `now`; `void`: ended by a sign-out or back-channel logout.
    pub fn judge(&self, login: &SessionLogin, void: bool, now: i64) -> Verdict {
        if void {
            Verdict::Ended("signed out")
        } else if now.saturating_sub(login.started_at) > self.lifetime {
            Verdict::Ended("lifetime reached")
        } else if now.saturating_sub(login.last_seen) > self.idle {
            Verdict::Ended("idle timeout")
        } else if now.saturating_sub(login.last_seen) >= self.touch_after() {
            Verdict::Touch
        } else {
            Verdict::Current
        }
    }
}

/// The session's login: which sign-in it is (for sign-out and back-channel logout) and its
/// times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLogin {
    /// Random, 128 bits; the `logins` table's key.
    pub id: String,
    /// The first sign-in of this session (the absolute lifetime counts from here).
    pub started_at: i64,
    /// The last request, to within [`SessionPolicy::touch_after`].
    pub last_seen: i64,
    /// Roles the provider sent that were not kept (`session::for_session`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_roles: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl SessionLogin {
    /// A new login at `now`.
    pub fn new(now: i64) -> Self {
        Self {
            id: random_token(16),
            started_at: now,
            last_seen: now,
            dropped_roles: 0,
        }
    }

    /// When its session expires whatever happens.
    pub fn expires_at(&self, policy: &SessionPolicy) -> i64 {
        self.started_at.saturating_add(policy.lifetime)
    }
}

/// Ended logins, and the database behind them.
pub struct Logins {
    db: Database,
    /// Sessions that started before this are void.
    since: i64,
    /// Ended login ids, with when their sessions would have expired anyway (then forgotten).
    ended: RwLock<HashMap<String, i64>>,
    /// The last time ended logins were read from the database.
    synced_at: Mutex<i64>,
}

/// A sign-in to record.
#[derive(Debug, Clone)]
pub struct NewLogin<'a> {
    pub login_id: &'a str,
    pub subject: &'a str,
    pub sid: Option<&'a str>,
    pub started_at: i64,
    pub expires_at: i64,
    pub id_token: &'a str,
}

impl Logins {
    /// Reads when the database began and which logins have ended.
    pub async fn load(db: Database, now: i64) -> sqlx::Result<Self> {
        let since = db.logins_since().await?;
        let ended = db.ended_logins(i64::MIN, now).await?.into_iter().collect();
        Ok(Self {
            db,
            since,
            ended: RwLock::new(ended),
            synced_at: Mutex::new(now),
        })
    }

    /// Whether a session that started at `started_at` with login `login_id` has been ended
    /// (or predates the database). The per-request check: memory only.
    pub fn is_void(&self, login_id: &str, started_at: i64) -> bool {
        started_at < self.since
            || self
                .ended
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(login_id)
    }

    /// Records a new sign-in.
    ///
    /// # Errors
    ///
    /// The database cannot record it: the caller refuses the sign-in.
    pub async fn begin(&self, login: NewLogin<'_>) -> sqlx::Result<()> {
        self.db
            .insert_login(&LoginRow {
                login_id: login.login_id.to_owned(),
                subject: login.subject.to_owned(),
                sid: login.sid.map(str::to_owned),
                started_at: login.started_at,
                expires_at: login.expires_at,
                id_token: kept(login.id_token),
            })
            .await
    }

    /// A step-up (or another sign-in) within a login: its latest provider session and ID
    /// token. `false`: the login has ended meanwhile.
    pub async fn renew(&self, login_id: &str, sid: Option<&str>, id_token: &str) -> sqlx::Result<bool> {
        self.db
            .renew_login(login_id, sid, kept(id_token).as_deref())
            .await
    }

    /// Ends a login (a sign-out): at once in this process, then in the database. Returns the
    /// ID token kept for the provider's logout. A database failure is logged: the login stays
    /// ended here, but other processes (and this one after a restart) do not learn of it.
    pub async fn end(&self, login_id: &str, expires_at: i64, now: i64) -> Option<String> {
        self.mark_ended([(login_id.to_owned(), expires_at)]);
        self.db
            .end_login(login_id, now)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "cannot record a sign-out in the database"))
            .ok()
            .flatten()
    }

    /// Ends every live login of the provider's session `sid` (of `subject` too, if given),
    /// or without a `sid` every live login of `subject` (Back-Channel Logout 1.0 §2.7), that
    /// started by `started_by` (the logout token's `iat` plus the skew: a replayed token
    /// cannot end a sign-in made after it). Returns how many ended.
    pub async fn end_matching(
        &self,
        subject: Option<&str>,
        sid: Option<&str>,
        started_by: i64,
        now: i64,
    ) -> sqlx::Result<usize> {
        let ended = self.db.end_logins_matching(subject, sid, started_by, now).await?;
        let count = ended.len();
        self.mark_ended(ended);
        Ok(count)
    }

    fn mark_ended(&self, logins: impl IntoIterator<Item = (String, i64)>) {
        self.ended
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .extend(logins);
    }

    /// Reads the logins other processes ended since the last look, and forgets expired ones.
    /// A failed read moves nothing on: the next sync reads the same span again.
    pub async fn sync(&self, now: i64) -> sqlx::Result<()> {
        let since = self
            .synced_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .saturating_sub(SYNC_OVERLAP_SECS);
        let ended = self.db.ended_logins(since, now).await?;
        {
            let mut map = self.ended.write().unwrap_or_else(|p| p.into_inner());
            map.extend(ended);
            map.retain(|_, expires_at| *expires_at > now);
        }
        *self.synced_at.lock().unwrap_or_else(|p| p.into_inner()) = now;
        Ok(())
    }

    /// Syncs every [`SYNC_INTERVAL`] (and purges long-expired rows every minute or so) for as
    /// long as `logins` is alive; spawn it on the runtime.
    pub async fn keep_in_sync(logins: Weak<Self>, clock: Clock) {
        let mut rounds = 0u32;
        loop {
            tokio::time::sleep(SYNC_INTERVAL).await;
            let Some(logins) = logins.upgrade() else {
                return;
            };
            let now = clock.now();
            if let Err(e) = logins.sync(now).await {
                tracing::warn!(error = %e, "cannot read ended logins from the database");
            }
            rounds = rounds.wrapping_add(1);
            if rounds.is_multiple_of(30)
                && let Err(e) = logins.db.purge_logins(now - PURGE_AFTER_SECS).await
            {
                tracing::warn!(error = %e, "cannot purge expired logins");
            }
        }
    }
}

/// The ID token to keep, unless it is too long to be worth it.
fn kept(id_token: &str) -> Option<String> {
    (id_token.len() <= MAX_KEPT_ID_TOKEN).then(|| id_token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: SessionPolicy = SessionPolicy {
        lifetime: 8 * 3600,
        idle: 1800,
    };

    fn record(started_at: i64, last_seen: i64) -> SessionLogin {
        SessionLogin {
            id: "id".into(),
            started_at,
            last_seen,
            dropped_roles: 0,
        }
    }

    #[test]
    fn a_session_ends_at_its_lifetime_when_idle_and_when_signed_out() {
        let t = 1_000_000;
        assert_eq!(POLICY.judge(&record(t, t), false, t + 10), Verdict::Current);
        assert_eq!(POLICY.touch_after(), 300, "a few minutes");
        assert_eq!(POLICY.judge(&record(t, t), false, t + 300), Verdict::Touch);
        assert_eq!(POLICY.judge(&record(t, t), false, t + 1800), Verdict::Touch);
        assert_eq!(
            POLICY.judge(&record(t, t), false, t + 1801),
            Verdict::Ended("idle timeout")
        );
        let active = record(t, t + 8 * 3600);
        assert_eq!(POLICY.judge(&active, false, t + 8 * 3600), Verdict::Current);
        assert_eq!(
            POLICY.judge(&active, false, t + 8 * 3600 + 1),
            Verdict::Ended("lifetime reached")
        );
        assert_eq!(POLICY.judge(&record(t, t), true, t), Verdict::Ended("signed out"));
        assert_eq!(
            POLICY.judge(&record(i64::MIN, i64::MIN), false, i64::MAX),
            Verdict::Ended("lifetime reached"),
            "no overflow"
        );
        let short = SessionPolicy {
            lifetime: 60,
            idle: 3,
        };
        assert_eq!(short.touch_after(), 1);
    }

    async fn logins() -> Logins {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        Logins::load(db, 1_000).await.unwrap()
    }

    fn login<'a>(id: &'a str, subject: &'a str, sid: Option<&'a str>) -> NewLogin<'a> {
        NewLogin {
            login_id: id,
            subject,
            sid,
            started_at: 2_000_000_000,
            expires_at: 2_000_003_600,
            id_token: "header.payload.signature",
        }
    }

    #[tokio::test]
    async fn a_sign_out_voids_the_login_and_hands_back_its_id_token() {
        let logins = logins().await;
        logins.begin(login("a", "alice", Some("s1"))).await.unwrap();
        assert!(!logins.is_void("a", 2_000_000_000));
        let token = logins.end("a", 2_000_003_600, 2_000_000_100).await;
        assert_eq!(token.as_deref(), Some("header.payload.signature"));
        assert!(logins.is_void("a", 2_000_000_000));
        assert_eq!(
            logins.end("a", 2_000_003_600, 2_000_000_200).await,
            None,
            "kept once"
        );
    }

    #[tokio::test]
    async fn back_channel_logouts_end_by_sid_or_by_subject() {
        let logins = logins().await;
        for (id, sub, sid) in [
            ("a1", "alice", Some("s1")),
            ("a2", "alice", Some("s2")),
            ("b1", "bob", Some("s1")),
        ] {
            logins.begin(login(id, sub, sid)).await.unwrap();
        }
        let now = 2_000_000_100;
        assert_eq!(
            logins
                .end_matching(Some("alice"), Some("s1"), now, now)
                .await
                .unwrap(),
            1
        );
        assert!(logins.is_void("a1", 2_000_000_000) && !logins.is_void("b1", 2_000_000_000));
        assert_eq!(
            logins.end_matching(Some("alice"), None, now, now).await.unwrap(),
            1,
            "a2"
        );
        assert_eq!(
            logins.end_matching(None, Some("s1"), now, now).await.unwrap(),
            1,
            "b1"
        );
        assert_eq!(
            logins.end_matching(None, None, now, now).await.unwrap(),
            0,
            "never all"
        );
        assert!(logins.is_void("b1", 2_000_000_000));
        // A logout token issued before a sign-in (a replay, or a late one) leaves it alone.
        logins.begin(login("a3", "alice", Some("s3"))).await.unwrap();
        assert_eq!(
            logins
                .end_matching(Some("alice"), None, 1_999_999_000, now)
                .await
                .unwrap(),
            0
        );
        assert!(!logins.is_void("a3", 2_000_000_000));
    }

    #[tokio::test]
    async fn other_processes_learn_of_ended_logins_and_old_sessions_are_void() {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        let one = Logins::load(db.clone(), 1_000).await.unwrap();
        let two = Logins::load(db, 1_000).await.unwrap();
        one.begin(login("a", "alice", None)).await.unwrap();
        one.end("a", 2_000_003_600, 2_000_000_100).await;
        assert!(!two.is_void("a", 2_000_000_000), "not yet");
        two.sync(2_000_000_101).await.unwrap();
        assert!(two.is_void("a", 2_000_000_000), "after a sync");
        // A sign-out whose write was stamped well before another process's last look (a slow
        // write, or a clock behind) is still seen by that process's next look.
        one.begin(login("b", "bob", None)).await.unwrap();
        two.sync(2_000_000_200).await.unwrap();
        one.end("b", 2_000_003_600, 2_000_000_150).await;
        two.sync(2_000_000_202).await.unwrap();
        assert!(two.is_void("b", 2_000_000_000), "a late-stamped sign-out");
        two.sync(2_000_003_601).await.unwrap();
        assert!(
            !two.ended.read().unwrap().contains_key("a"),
            "forgotten once expired"
        );
        assert!(two.is_void("x", two.since - 1), "older than the database");
    }
}
