//! The intranet's database: demo business data (customers, employees, salaries) and the
//! audit trail, on SQLite through `sqlx`. Every query lives here; handlers call methods.
//!
//! The schema and the demo data are `sqlx` migrations under `migrations/`, applied at start.
//!
//! Audit rows are written by group commit ([`Database::record`]): concurrent callers' rows go
//! to the database in one transaction, and each caller is answered only once the transaction
//! that carries its row has committed (durability: `docs/architecture.md`, "The audit trail").

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Customer {
    pub id: i64,
    pub company: String,
    pub contact: String,
    pub region: String,
    pub open_orders: i64,
    pub account_manager: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Employee {
    pub id: i64,
    pub name: String,
    pub title: String,
    pub department: String,
    pub manager: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SalaryEntry {
    pub effective_date: String,
    pub amount: i64,
    pub currency: String,
}

/// The kinds of audit events. Stored as their `as_str` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    Login,
    Logout,
    StepUpRequested,
    StepUpSucceeded,
    StepUpFailed,
    /// The person cancelled the step-up at the provider (`error=access_denied`).
    StepUpCancelled,
    Forbidden,
    SalaryViewed,
    SalaryViewedApi,
    /// The provider ended a session (back-channel logout).
    LogoutByProvider,
}

impl AuditEvent {
    pub const ALL: [AuditEvent; 10] = [
        AuditEvent::Login,
        AuditEvent::Logout,
        AuditEvent::StepUpRequested,
        AuditEvent::StepUpSucceeded,
        AuditEvent::StepUpFailed,
        AuditEvent::StepUpCancelled,
        AuditEvent::Forbidden,
        AuditEvent::SalaryViewed,
        AuditEvent::SalaryViewedApi,
        AuditEvent::LogoutByProvider,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::Login => "login",
            AuditEvent::Logout => "logout",
            AuditEvent::StepUpRequested => "step_up_requested",
            AuditEvent::StepUpSucceeded => "step_up_succeeded",
            AuditEvent::StepUpFailed => "step_up_failed",
            AuditEvent::StepUpCancelled => "step_up_cancelled",
            AuditEvent::Forbidden => "forbidden",
            AuditEvent::SalaryViewed => "salary_viewed",
            AuditEvent::SalaryViewedApi => "salary_viewed_api",
            AuditEvent::LogoutByProvider => "logout_by_provider",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// One audit row to write.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: i64,
    pub subject: Option<String>,
    pub event: AuditEvent,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    /// Short and free of secrets: acr/amr values, what was asked, which page.
    pub detail: String,
}

/// One audit row read back.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub subject: Option<String>,
    pub event: String,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub detail: String,
}

/// A sign-in as the `logins` table keeps it.
#[derive(Debug, Clone)]
pub struct LoginRow {
    pub login_id: String,
    pub subject: String,
    pub sid: Option<String>,
    pub started_at: i64,
    pub expires_at: i64,
    pub id_token: Option<String>,
}

/// Which audit rows to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub subject: Option<String>,
    pub event: Option<AuditEvent>,
}

/// Employees with their manager's name (a literal, as sqlx wants its SQL).
macro_rules! employee_select {
    () => {
        "SELECT e.id, e.name, e.title, e.department, m.name AS manager \
         FROM employees e LEFT JOIN employees m ON m.id = e.manager_id"
    };
}

#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
    /// The file, as it was when opened (`None` in memory).
    file: Option<Arc<DbFile>>,
    /// The group-commit writer of audit rows (one task per database opened).
    audit: mpsc::Sender<PendingRow>,
    /// Customers, employees and salaries as last read (the intranet never writes them).
    directory: Arc<Cached>,
}

/// How old the cached customers, employees and salaries may get before a page reads them
/// again: a change made to the file by hand shows within this long.
pub const DIRECTORY_REFRESH: Duration = Duration::from_secs(2);

/// The read-mostly business data, read in one go, and when.
#[derive(Debug)]
struct Cached {
    current: RwLock<(Instant, Arc<Directory>)>,
    /// Whether a page is reading it again now (the others keep using the copy they have).
    refreshing: AtomicBool,
}

/// Clears [`Cached::refreshing`] when the read ends, finished or not (a page whose client
/// went away drops its future mid-read).
struct Refreshing<'a>(&'a AtomicBool);

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Customers by company, employees by name, salary histories oldest first: what the pages show.
#[derive(Debug, Default)]
struct Directory {
    customers: Vec<Customer>,
    employees: Vec<Employee>,
    salaries: HashMap<i64, Vec<SalaryEntry>>,
}

/// A list of the cached directory, shared rather than copied: a page iterates it while the
/// directory may be read again for later pages. (Copying the 25 customers cost a listing
/// page an eighth of its instructions; BENCHMARKS.md.)
#[derive(Clone)]
pub struct Listing<T: 'static> {
    directory: Arc<Directory>,
    pick: fn(&Directory) -> &[T],
}

impl<T: std::fmt::Debug> std::fmt::Debug for Listing<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T> std::ops::Deref for Listing<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        (self.pick)(&self.directory)
    }
}

impl<'a, T> IntoIterator for &'a Listing<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// An audit row waiting for its transaction, and who to tell when it has committed.
type PendingRow = (AuditEntry, oneshot::Sender<sqlx::Result<()>>);

/// The most rows one audit transaction carries. Rows queue while a transaction commits; the
/// next one takes up to this many of them.
const MAX_AUDIT_BATCH: usize = 512;
/// Batches of up to this many rows keep their INSERT prepared (sqlx's statement cache holds
/// 100 statements per connection by default).
const CACHED_BATCH_SIZES: usize = 48;
// One statement binds 6 values a row: within SQLite's limit of 32,766 variables.
const _: () = assert!(MAX_AUDIT_BATCH * 6 <= 32_766);

/// Rows that may wait for the writer before callers wait to queue theirs (backpressure).
const AUDIT_QUEUE: usize = 4096;

/// The database file as opened: SQLite keeps writing to an open file that was deleted or
/// replaced (the rows then vanish with it), and chmod does not stop an open connection, so
/// writes that must last check the path still leads to this file, and that it is writable.
#[derive(Debug)]
struct DbFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

/// Why the database file cannot be trusted with a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileProblem {
    /// Nothing at the path any more.
    Removed,
    /// Another file at the path (the one written to is gone).
    Replaced,
    /// Made read-only by someone: not written to.
    ReadOnly,
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileProblem::Removed => "the database file was removed",
            FileProblem::Replaced => "the database file was replaced",
            FileProblem::ReadOnly => "the database file is read-only",
        })
    }
}

impl std::error::Error for FileProblem {}

impl DbFile {
    fn open(path: &Path) -> std::io::Result<Self> {
        let metadata = std::fs::metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            identity: identity(&metadata),
        })
    }

    fn check(&self) -> Result<(), FileProblem> {
        let metadata = std::fs::metadata(&self.path).map_err(|_| FileProblem::Removed)?;
        if identity(&metadata) != self.identity {
            return Err(FileProblem::Replaced);
        }
        if metadata.permissions().readonly() {
            return Err(FileProblem::ReadOnly);
        }
        Ok(())
    }
}

/// The device and inode of a file (where there are such things).
fn identity(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((metadata.dev(), metadata.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

impl Database {
    /// Opens (creating the file if needed) and migrates the database at `url`, e.g.
    /// `sqlite:fabrikam.db` or `sqlite::memory:`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("DATABASE_URL is not a SQLite URL: {url}"))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // Each in-memory connection is its own database: keep exactly one, forever.
        let pool = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(4)
        };
        // WAL with synchronous=FULL: a commit returns once the WAL is synced to the disk, so
        // a committed row survives a process kill and a power loss (docs/architecture.md).
        let options = if in_memory {
            options
        } else {
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
        };
        let path = (!in_memory).then(|| options.get_filename().to_owned());
        let options = if in_memory {
            options
        } else {
            // Create the file once, here; a connection opened later (the pool replaces them)
            // must fail if the file is gone rather than quietly start an empty database.
            use sqlx::Connection;
            sqlx::SqliteConnection::connect_with(&options)
                .await
                .with_context(|| format!("cannot open the database {url}"))?
                .close()
                .await?;
            options.create_if_missing(false)
        };
        let pool = pool
            // A pool that cannot hand out a connection soon answers an error, not a hang.
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        let migrator = sqlx::migrate!("./migrations");
        if let Err(first) = migrator.run(&pool).await {
            // sqlx takes no lock on SQLite: another process starting on the same new file
            // may be creating the same tables ("table customers already exists"). Each
            // migration is one transaction, so ours rolled back; once the other has committed,
            // a second run finds the migrations applied. A real fault fails again.
            tracing::info!(error = %first, "applying the database migrations failed; trying once more");
            tokio::time::sleep(Duration::from_millis(200)).await;
            migrator
                .run(&pool)
                .await
                .context("cannot apply the database migrations")?;
        }
        let file = match path {
            Some(path) => Some(Arc::new(
                DbFile::open(&path).with_context(|| format!("cannot read {}", path.display()))?,
            )),
            None => None,
        };
        let (audit, queue) = mpsc::channel(AUDIT_QUEUE);
        tokio::spawn(write_audit_rows(pool.clone(), file.clone(), queue));
        let directory = Arc::new(Cached {
            current: RwLock::new((Instant::now(), Arc::new(read_directory(&pool).await?))),
            refreshing: AtomicBool::new(false),
        });
        Ok(Self {
            pool,
            file,
            audit,
            directory,
        })
    }

    /// Whether the file still is the one opened, and writable (always, in memory).
    pub fn check_file(&self) -> Result<(), FileProblem> {
        self.file.as_ref().map_or(Ok(()), |f| f.check())
    }

    /// Runs a write that must last (an audit row, a sign-in, a sign-out): refused if the file
    /// is gone, replaced or read-only, and failed if it turned out so by the time the write
    /// was done — then it went to a file nobody will read again.
    async fn durably<T>(&self, write: impl Future<Output = sqlx::Result<T>>) -> sqlx::Result<T> {
        durably(self.file.as_deref(), write).await
    }

    /// Whether the database answers within `timeout` and its file can be written.
    pub async fn probe(&self, timeout: Duration) -> Result<(), String> {
        self.check_file().map_err(|p| p.to_string())?;
        let query = sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&self.pool);
        match tokio::time::timeout(timeout, query).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("the database failed: {e}")),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }

    /// The customers, employees and salaries, read again if older than [`DIRECTORY_REFRESH`]
    /// (by one caller; the others meanwhile use the copy they have). A failed read is an
    /// error for the caller that tried, and the next caller tries again.
    async fn directory(&self) -> sqlx::Result<Arc<Directory>> {
        let (read_at, current) = {
            let guard = self.directory.current.read().unwrap_or_else(|e| e.into_inner());
            (guard.0, guard.1.clone())
        };
        if read_at.elapsed() < DIRECTORY_REFRESH || self.directory.refreshing.swap(true, Ordering::AcqRel) {
            return Ok(current);
        }
        let _refreshing = Refreshing(&self.directory.refreshing);
        let fresh = Arc::new(read_directory(&self.pool).await?);
        *self.directory.current.write().unwrap_or_else(|e| e.into_inner()) = (Instant::now(), fresh.clone());
        Ok(fresh)
    }

    /// Every customer, by company name.
    pub async fn customers(&self) -> sqlx::Result<Listing<Customer>> {
        Ok(Listing {
            directory: self.directory().await?,
            pick: |d| &d.customers,
        })
    }

    pub async fn customer(&self, id: i64) -> sqlx::Result<Option<Customer>> {
        let directory = self.directory().await?;
        Ok(directory.customers.iter().find(|c| c.id == id).cloned())
    }

    /// Every employee with their manager's name, by name.
    pub async fn employees(&self) -> sqlx::Result<Listing<Employee>> {
        Ok(Listing {
            directory: self.directory().await?,
            pick: |d| &d.employees,
        })
    }

    pub async fn employee(&self, id: i64) -> sqlx::Result<Option<Employee>> {
        let directory = self.directory().await?;
        Ok(directory.employees.iter().find(|e| e.id == id).cloned())
    }

    /// Salary history, oldest first.
    pub async fn salary_history(&self, employee_id: i64) -> sqlx::Result<Vec<SalaryEntry>> {
        let directory = self.directory().await?;
        Ok(directory.salaries.get(&employee_id).cloned().unwrap_or_default())
    }

    /// Appends one audit row, and returns once it is committed to the file opened (refused when
    /// that file was removed, replaced or made read-only).
    /// Concurrent calls share a transaction (group commit): a caller waits for at most the
    /// transaction under way and its own, however many callers there are.
    pub async fn record(&self, entry: &AuditEntry) -> sqlx::Result<()> {
        let stopped = || sqlx::Error::Io(std::io::Error::other("the audit writer has stopped"));
        let (done, committed) = oneshot::channel();
        self.audit
            .send((entry.clone(), done))
            .await
            .map_err(|_| stopped())?;
        committed.await.map_err(|_| stopped())?
    }

    /// A page of audit rows, newest first, and how many rows match in all.
    pub async fn audit(
        &self,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> sqlx::Result<(Vec<AuditRow>, i64)> {
        // `?1 IS NULL OR column = ?1`: one statement for every combination of filters.
        let rows = sqlx::query_as(
            "SELECT id, at, subject, event, request_id, client_addr, detail FROM audit_log \
             WHERE (?1 IS NULL OR subject = ?1) AND (?2 IS NULL OR event = ?2) \
             ORDER BY id DESC LIMIT ?3 OFFSET ?4",
        )
        .bind(&filter.subject)
        .bind(filter.event.map(AuditEvent::as_str))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE (?1 IS NULL OR subject = ?1) AND (?2 IS NULL OR event = ?2)",
        )
        .bind(&filter.subject)
        .bind(filter.event.map(AuditEvent::as_str))
        .fetch_one(&self.pool)
        .await?;
        Ok((rows, total))
    }

    /// Records a new sign-in.
    pub async fn insert_login(&self, login: &LoginRow) -> sqlx::Result<()> {
        self.durably(async {
            sqlx::query(
                "INSERT INTO logins (login_id, subject, sid, started_at, expires_at, id_token) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&login.login_id)
            .bind(&login.subject)
            .bind(&login.sid)
            .bind(login.started_at)
            .bind(login.expires_at)
            .bind(&login.id_token)
            .execute(&self.pool)
            .await
            .map(|_| ())
        })
        .await
    }

    /// A new sign-in (a step-up) within the login `login_id`: the provider's latest session
    /// and ID token. Affects nothing if the login has ended.
    pub async fn renew_login(
        &self,
        login_id: &str,
        sid: Option<&str>,
        id_token: Option<&str>,
    ) -> sqlx::Result<bool> {
        self.durably(async {
            sqlx::query("UPDATE logins SET sid = ?, id_token = ? WHERE login_id = ? AND ended_at IS NULL")
                .bind(sid)
                .bind(id_token)
                .bind(login_id)
                .execute(&self.pool)
                .await
                .map(|r| r.rows_affected() == 1)
        })
        .await
    }

    /// Ends the login `login_id` at `now`; returns its ID token, if one was kept (for the
    /// provider's logout), and forgets it.
    pub async fn end_login(&self, login_id: &str, now: i64) -> sqlx::Result<Option<String>> {
        self.durably(async {
            let mut tx = self.pool.begin().await?;
            let token: Option<Option<String>> =
                sqlx::query_scalar("SELECT id_token FROM logins WHERE login_id = ?")
                    .bind(login_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            sqlx::query(
                "UPDATE logins SET ended_at = COALESCE(ended_at, ?), id_token = NULL WHERE login_id = ?",
            )
            .bind(now)
            .bind(login_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(token.flatten())
        })
        .await
    }

    /// Ends, at `now`, every live login of the provider's session `sid` (of `subject` too, if
    /// given), or with no `sid` every live login of `subject`: Back-Channel Logout 1.0 §2.7.
    /// Only logins started by `started_by`. Returns the logins ended, with their expiry.
    pub async fn end_logins_matching(
        &self,
        subject: Option<&str>,
        sid: Option<&str>,
        started_by: i64,
        now: i64,
    ) -> sqlx::Result<Vec<(String, i64)>> {
        self.durably(async {
            sqlx::query_as(
                "UPDATE logins SET ended_at = ?1, id_token = NULL \
                 WHERE ended_at IS NULL AND expires_at > ?1 AND started_at <= ?4 \
                 AND (?2 IS NULL OR subject = ?2) AND (?3 IS NULL OR sid = ?3) AND (?2 IS NOT NULL OR ?3 IS NOT NULL) \
                 RETURNING login_id, expires_at",
            )
            .bind(now)
            .bind(subject)
            .bind(sid)
            .bind(started_by)
            .fetch_all(&self.pool)
            .await
        })
        .await
    }

    /// Logins ended at or after `since` that have not expired by `now`, with their expiry.
    pub async fn ended_logins(&self, since: i64, now: i64) -> sqlx::Result<Vec<(String, i64)>> {
        sqlx::query_as("SELECT login_id, expires_at FROM logins WHERE ended_at >= ? AND expires_at > ?")
            .bind(since)
            .bind(now)
            .fetch_all(&self.pool)
            .await
    }

    /// Forgets logins that expired before `before` (ended or not: their sessions are dead).
    pub async fn purge_logins(&self, before: i64) -> sqlx::Result<u64> {
        sqlx::query("DELETE FROM logins WHERE expires_at < ?")
            .bind(before)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
    }

    /// When this database began recording logins: sessions that started before are void.
    pub async fn logins_since(&self) -> sqlx::Result<i64> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'logins_since'")
            .fetch_one(&self.pool)
            .await
    }

    /// Runs a statement directly: for tests that need to break the database on purpose.
    #[doc(hidden)]
    pub async fn execute_for_tests(&self, sql: &str) -> sqlx::Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// Reads customers, employees and salaries in one transaction (one consistent snapshot).
async fn read_directory(pool: &SqlitePool) -> sqlx::Result<Directory> {
    let mut tx = pool.begin().await?;
    let customers = sqlx::query_as(
        "SELECT id, company, contact, region, open_orders, account_manager FROM customers ORDER BY company",
    )
    .fetch_all(&mut *tx)
    .await?;
    let employees = sqlx::query_as(concat!(employee_select!(), " ORDER BY e.name"))
        .fetch_all(&mut *tx)
        .await?;
    let rows: Vec<(i64, String, i64, String)> = sqlx::query_as(
        "SELECT employee_id, effective_date, amount, currency FROM salaries ORDER BY employee_id, effective_date",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut salaries: HashMap<i64, Vec<SalaryEntry>> = HashMap::new();
    for (employee_id, effective_date, amount, currency) in rows {
        salaries.entry(employee_id).or_default().push(SalaryEntry {
            effective_date,
            amount,
            currency,
        });
    }
    Ok(Directory {
        customers,
        employees,
        salaries,
    })
}

/// A write that must last: refused if the file is gone, replaced or read-only, and failed if
/// it turned out so by the time the write was done — then it went to a file nobody will read
/// again.
async fn durably<T>(file: Option<&DbFile>, write: impl Future<Output = sqlx::Result<T>>) -> sqlx::Result<T> {
    let check = || file.map_or(Ok(()), DbFile::check);
    let unusable = |problem: FileProblem| sqlx::Error::Io(std::io::Error::other(problem));
    check().map_err(unusable)?;
    let done = write.await?;
    check().map_err(unusable)?;
    Ok(done)
}

/// The audit writer: takes every row queued (up to [`MAX_AUDIT_BATCH`]), writes them in one
/// transaction, answers their callers, and starts again. While a transaction commits, the
/// next rows queue up: the busier the site, the more rows a commit carries. A transaction
/// that fails is retried row by row, so each caller gets its own row's outcome. Ends when
/// every `Database` handle is gone.
async fn write_audit_rows(
    pool: SqlitePool,
    file: Option<Arc<DbFile>>,
    mut queue: mpsc::Receiver<PendingRow>,
) {
    let mut batch = Vec::with_capacity(MAX_AUDIT_BATCH);
    // A file's writer keeps one connection between batches (no pool hand-out and liveness
    // ping per batch); it is closed after an error, and the next batch takes another. An
    // in-memory database has one connection in all: the writer borrows it per batch.
    let mut own: Option<PoolConnection<Sqlite>> = None;
    while queue.recv_many(&mut batch, MAX_AUDIT_BATCH).await > 0 {
        let rows: Vec<&AuditEntry> = batch.iter().map(|(entry, _)| entry).collect();
        let outcome = match (&mut own, file.is_some()) {
            (Some(conn), _) => durably(file.as_deref(), insert_audit_rows(&mut **conn, &rows)).await,
            (None, true) => match pool.acquire().await {
                Ok(conn) => {
                    let conn = own.insert(conn);
                    durably(file.as_deref(), insert_audit_rows(&mut **conn, &rows)).await
                }
                Err(e) => Err(e),
            },
            (None, false) => durably(file.as_deref(), insert_audit_rows(&pool, &rows)).await,
        };
        if outcome.is_err()
            && let Some(mut conn) = own.take()
        {
            // Closed, not handed back to the pool: the next batch opens a fresh connection.
            conn.close_on_drop();
        }
        match outcome {
            Ok(()) => {
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                let (_, done) = batch.pop().expect("one row");
                let _ = done.send(Err(e));
            }
            Err(_) => {
                for (entry, done) in batch.drain(..) {
                    let one = durably(file.as_deref(), insert_audit_rows(&pool, &[&entry])).await;
                    let _ = done.send(one);
                }
            }
        }
    }
}

/// Inserts `rows` with one statement (atomic: all or none), so a batch costs one round trip
/// to SQLite's thread and one commit, however many rows it carries.
async fn insert_audit_rows<'c>(db: impl sqlx::SqliteExecutor<'c>, rows: &[&AuditEntry]) -> sqlx::Result<()> {
    let mut insert = sqlx::QueryBuilder::new(
        "INSERT INTO audit_log (at, subject, event, request_id, client_addr, detail) ",
    );
    insert.push_values(rows, |mut row, entry| {
        row.push_bind(entry.at)
            .push_bind(&entry.subject)
            .push_bind(entry.event.as_str())
            .push_bind(&entry.request_id)
            .push_bind(&entry.client_addr)
            .push_bind(&entry.detail);
    });
    // One statement per batch size. The sizes a busy site sees most (up to the connections a
    // server holds open, give or take) stay prepared on the writer's connection: parsing a
    // statement cost as much as inserting its row (callgrind, BENCHMARKS.md). Larger batches
    // are rare and prepared each time, so the cache holds at most CACHED_BATCH_SIZES of them.
    let cached = rows.len() <= CACHED_BATCH_SIZES;
    insert.build().persistent(cached).execute(db).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> Database {
        Database::connect("sqlite::memory:")
            .await
            .expect("an in-memory database")
    }

    #[tokio::test]
    async fn the_demo_data_is_seeded_with_ids_from_one() {
        let db = db().await;
        assert_eq!(db.customers().await.unwrap().len(), 25);
        assert_eq!(
            db.customer(1).await.unwrap().unwrap().company,
            "Northwind Traders"
        );
        assert!(db.customer(0).await.unwrap().is_none());
        assert!(db.customer(i64::MAX).await.unwrap().is_none());
        let employees = db.employees().await.unwrap();
        assert_eq!(employees.len(), 15);
        let alice = db.employee(1).await.unwrap().unwrap();
        assert_eq!((alice.name.as_str(), alice.manager), ("Alice Ashford", None));
        assert_eq!(
            db.employee(3).await.unwrap().unwrap().manager.as_deref(),
            Some("Alice Ashford")
        );
        let history = db.salary_history(1).await.unwrap();
        assert_eq!(history.len(), 3);
        assert!(
            history
                .windows(2)
                .all(|w| w[0].effective_date < w[1].effective_date),
            "oldest first"
        );
        assert_eq!(history.last().unwrap().amount, 104_000);
        assert!(db.salary_history(99).await.unwrap().is_empty());
    }

    fn entry(subject: &str, event: AuditEvent, at: i64) -> AuditEntry {
        AuditEntry {
            at,
            subject: Some(subject.into()),
            event,
            request_id: Some("req".into()),
            client_addr: Some("127.0.0.1".into()),
            detail: format!("{} at {at}", event.as_str()),
        }
    }

    #[tokio::test]
    async fn audit_rows_come_back_newest_first_filtered_and_paged() {
        let db = db().await;
        for i in 0..30 {
            let who = if i % 3 == 0 { "bob" } else { "alice" };
            let event = if i % 2 == 0 {
                AuditEvent::Login
            } else {
                AuditEvent::SalaryViewed
            };
            db.record(&entry(who, event, 1_000 + i)).await.unwrap();
        }
        let (all, total) = db.audit(&AuditFilter::default(), 0, 10).await.unwrap();
        assert_eq!((all.len(), total), (10, 30));
        assert_eq!(all[0].at, 1_029, "newest first");
        let (rest, _) = db.audit(&AuditFilter::default(), 28, 10).await.unwrap();
        assert_eq!(rest.len(), 2);
        let bob = AuditFilter {
            subject: Some("bob".into()),
            event: None,
        };
        let (rows, total) = db.audit(&bob, 0, 100).await.unwrap();
        assert_eq!(total, 10);
        assert!(rows.iter().all(|r| r.subject.as_deref() == Some("bob")));
        let alice_views = AuditFilter {
            subject: Some("alice".into()),
            event: Some(AuditEvent::SalaryViewed),
        };
        let (rows, total) = db.audit(&alice_views, 0, 100).await.unwrap();
        assert_eq!(total as usize, rows.len());
        assert!(
            rows.iter()
                .all(|r| r.event == "salary_viewed" && r.subject.as_deref() == Some("alice"))
        );
    }

    #[tokio::test]
    async fn concurrent_rows_beyond_one_batch_are_each_written_once() {
        let db = db().await;
        let n = MAX_AUDIT_BATCH + 88;
        let writes = (0..n).map(|i| {
            let db = db.clone();
            async move {
                db.record(&entry("alice", AuditEvent::SalaryViewed, i as i64))
                    .await
            }
        });
        for outcome in futures_util::future::join_all(writes).await {
            outcome.unwrap();
        }
        let (rows, total) = db.audit(&AuditFilter::default(), 0, n as i64).await.unwrap();
        assert_eq!(total as usize, n);
        let mut at: Vec<i64> = rows.iter().map(|r| r.at).collect();
        at.sort_unstable();
        assert_eq!(at, (0..n as i64).collect::<Vec<_>>(), "each row once");
    }

    #[tokio::test]
    async fn the_database_survives_a_reopen() {
        let dir = std::env::temp_dir().join(format!("fabrikam-test-{}", crate::web::random_token(8)));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite:{}", dir.join("audit.db").display());
        Database::connect(&url)
            .await
            .unwrap()
            .record(&entry("alice", AuditEvent::Login, 1))
            .await
            .unwrap();
        let reopened = Database::connect(&url).await.unwrap();
        let (rows, total) = reopened.audit(&AuditFilter::default(), 0, 10).await.unwrap();
        assert_eq!((total, rows[0].subject.as_deref()), (1, Some("alice")));
        assert_eq!(
            reopened.customers().await.unwrap().len(),
            25,
            "seeded once, not twice"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn event_names_round_trip() {
        for e in AuditEvent::ALL {
            assert_eq!(AuditEvent::parse(e.as_str()), Some(e));
        }
        assert_eq!(AuditEvent::parse("nope"), None);
    }
}
