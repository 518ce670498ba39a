//! Persistence for MarketOps on SQLite or PostgreSQL, chosen at runtime from the URL.
//!
//! One [`Db`] value wraps either pool. SQL is written once where both dialects agree (sqlx
//! maps `$1` placeholders on SQLite too) and per backend where they do not; the [`on_db!`]
//! and [`on_tx!`] macros expand a body once per backend, so each query is type-checked
//! against the concrete driver without generic bounds.
//!
//! Every write that changes company data goes through a [`Tx`] together with its audit
//! record (P-3), so a change and its audit entry commit or roll back together.

pub mod audit;
pub mod auth;
pub mod automation;
pub mod backup;
mod bulk;
pub mod calendar;
pub mod campaigns;
pub mod capture;
pub mod company;
pub mod customers;
pub mod deals;
pub mod experiments;
pub mod funnel;
pub mod import;
pub mod jobs;
pub mod leads;
pub mod org;
pub mod playbook;
mod raw;
pub mod referrals;
pub mod reports;
pub mod rules;
pub mod schema;
pub mod search;
pub mod sla;
pub mod subscriptions;
mod ts;
pub mod writer;

pub use audit::{Actor, Via};
pub use ts::Ts;

use domain::FieldErrors;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// Expands `$body` once per backend with `$p` bound to the pool.
#[macro_export]
macro_rules! on_db {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($p) => $body,
            $crate::Db::Postgres($p) => $body,
        }
    };
}

/// Expands `$body` once per backend with `$c` bound to the transaction's connection.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

/// `SELECT … WHERE col IN (…)` over any number of keys: `$prefix` ends before `IN`; the keys
/// go in chunks of 500 binds (far below either backend's limit); `$query` is `sqlx::query_as`
/// or `sqlx::query_scalar` (with its turbofish where the row type is not inferred). `?` on
/// a failed query.
#[doc(hidden)]
#[macro_export]
macro_rules! select_in {
    ($tx:expr, $query:expr, $prefix:expr, $keys:expr) => {{
        let mut out = Vec::new();
        for chunk in $keys.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("{} IN ({})", $prefix, marks.join(", "));
            let rows: Vec<_> = $crate::on_tx!($tx, c => {
                let mut q = $query(sqlx::AssertSqlSafe(sql.clone()));
                for k in chunk {
                    q = q.bind(k);
                }
                q.fetch_all(c).await
            })?;
            out.extend(rows);
        }
        out
    }};
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    /// Input that is well-formed but contradicts stored data (unknown reference, taken name).
    #[error("invalid input: {0}")]
    Invalid(FieldErrors),
    /// The write lost a race or would break a uniqueness rule.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database could not take the write now (L-1): it did not answer within the
    /// capture writer's timeout (the write may still happen, so a client retries with the
    /// same idempotency key), or SQLite was busy with another writer past its busy timeout
    /// (nothing was written).
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

impl From<sqlx::Error> for Error {
    /// SQLite's "busy" and "locked" (another writer held the database past the busy
    /// timeout: nothing was written, and a later try can succeed) become `Unavailable`, as
    /// they do through the statement interface (`raw`).
    fn from(e: sqlx::Error) -> Error {
        if let sqlx::Error::Database(d) = &e
            && d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
            && d.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6))
        {
            return Error::Unavailable(format!("the database is busy with another writer ({d})"));
        }
        Error::Db(e)
    }
}

impl Error {
    pub fn field(field: &str, message: impl Into<String>) -> Error {
        Error::Invalid(FieldErrors::single(field, message))
    }

    /// True when the underlying database refused a duplicate value of a unique column.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// SQLite's page cache per connection (negative: KiB), 32 MiB.
/// How long a connection waits for another's write lock before giving up.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) const SQLITE_CACHE_SIZE: &str = "-32768";

/// An open transaction on either backend (dropped without `commit`, it rolls back).
pub enum Tx {
    Sqlite(writer::SqliteTx),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Describes a database URL without its password, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

impl Db {
    /// Connects to `sqlite://path` (created if missing) or `postgres://…`. A bare path is
    /// taken as a SQLite file.
    pub async fn connect(url: &str) -> Result<Db> {
        Db::connect_with(url, 8).await
    }

    /// `connect` for a one-off command that writes in bulk (an import from the command
    /// line): on SQLite a pool of one connection, so that while no other process has the
    /// database open its bulk transaction can leave the write-ahead log (`begin_bulk`).
    pub async fn connect_alone(url: &str) -> Result<Db> {
        Db::connect_with(url, 1).await
    }

    async fn connect_with(url: &str, sqlite_connections: u32) -> Result<Db> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            return Ok(Db::Postgres(pool));
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.is_empty() {
            return Err(Error::Other("the database URL names no file".into()));
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // WAL lets readers work while one writer commits; NORMAL sync keeps every
            // committed transaction through a process crash (the WAL is in the OS cache).
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            // Pages through memory maps and a 32 MiB page cache per connection, instead of a
            // read() copy per page from the OS cache: the lead tables outgrow the 2 MiB default.
            .pragma("mmap_size", "1073741824")
            .pragma("cache_size", SQLITE_CACHE_SIZE)
            // A large import leaves a log of its size; cut the file back when it starts over.
            .pragma("journal_size_limit", "67108864")
            // Statement journals (kept so one failing multi-row INSERT can be undone inside
            // its transaction) in memory, not in temporary files: they were a fifth of an
            // orders import, one pwrite per page touched.
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(sqlite_connections)
            // An embedded file cannot drop a connection: no ping before every checkout.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        Ok(Db::Sqlite(pool))
    }

    /// A pool of one connection to the same database (opened on first use), for
    /// `writer::Writer`.
    pub(crate) fn dedicated(&self) -> Db {
        match self {
            Db::Sqlite(p) => Db::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy_with((*p.connect_options()).clone()),
            ),
            Db::Postgres(p) => Db::Postgres(
                PgPoolOptions::new()
                    .max_connections(1)
                    .idle_timeout(None)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy_with((*p.connect_options()).clone()),
            ),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads and then writes can fail with "database is locked"
    /// when another writer got in between; waiting for the lock up front cannot.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?.into()),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A transaction for a bulk write (thousands of rows). On SQLite:
    /// - `check_references: false` is for a writer whose references it made itself (orders
    ///   of customers it looked up or created in the same transaction): the connection checks
    ///   no foreign keys (a lookup of the parent row per inserted row, a third of an import
    ///   of ten million orders);
    /// - index builds sort through temporary files (`bulk`), set outside the transaction,
    ///   where SQLite always allows it;
    /// - on a store of one connection (`connect_alone`) while no other process has the
    ///   database open, the transaction runs with a rollback journal instead of the
    ///   write-ahead log: new pages are written once, into the database file, where the
    ///   log takes each page, indexes it in shared memory, and then a checkpoint copies it
    ///   into the file (1.3 GB of new rows: commit 12–17 s → 2.4 s, plus the checkpoint).
    ///   The log comes back with the commit. A connection opened meanwhile (it asks for the
    ///   log, which needs the database to itself) waits for the import to end, up to the
    ///   busy timeout;
    ///
    /// and the connection is closed afterwards rather than returned to the pool with these
    /// settings. PostgreSQL: a plain transaction.
    pub async fn begin_bulk(&self, check_references: bool) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(p) => {
                let mut c = p.acquire().await?;
                c.close_on_drop();
                if !check_references {
                    sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut *c).await?;
                }
                sqlx::query("PRAGMA temp_store = FILE").execute(&mut *c).await?;
                // In a larger pool other connections may be open (a server's readers, which
                // would wait out the whole import to open another): the log stays.
                let alone = p.options().get_max_connections() == 1;
                Tx::Sqlite(writer::SqliteTx::bulk(c, alone).await?)
            }
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// SQLite: copies committed pages from the write-ahead log into the database file
    /// beside the writers (PASSIVE: it takes no lock a writer waits for), then flushes the
    /// file and the log to disk, here rather than in the capture writer's checkpoint. Run
    /// every `checkpoint_ms` (25 ms) from a task of its own (the server's upkeep). The log
    /// can only start over when a write begins with every page of it copied, which under
    /// steady writing only the writer itself can arrange: once the log is past
    /// `writer::RESTART_AT` pages, the capture writer is asked to checkpoint before its next
    /// transaction, with little left to copy or flush (see `writer::WalUpkeep`).
    /// PostgreSQL: nothing to do.
    pub async fn checkpoint(&self) -> Result<()> {
        let Db::Sqlite(p) = self else { return Ok(()) };
        let (_busy, log, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(p).await?;
        let options = p.connect_options();
        let path = options.get_filename();
        let upkeep = writer::WalUpkeep::of(path);
        if upkeep.moved(log, copied) {
            let files = [path.to_path_buf(), writer::wal_path(path)];
            let flushing = |e: &dyn std::fmt::Display| Error::Other(format!("flushing the database: {e}"));
            tokio::task::spawn_blocking(move || {
                files.iter().try_for_each(|f| match std::fs::File::open(f) {
                    Ok(f) => f.sync_data(),
                    // The log is gone when the last connection closed.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e),
                })
            })
            .await
            .map_err(|e| flushing(&e))?
            .map_err(|e| flushing(&e))?;
        }
        if log >= writer::RESTART_AT {
            upkeep.ask_restart();
        }
        Ok(())
    }

    /// Applies pending migrations. On PostgreSQL sqlx holds an advisory lock meanwhile, so
    /// instances starting together do not race.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(p) => SQLITE_MIGRATOR.run(p).await?,
            Db::Postgres(p) => POSTGRES_MIGRATOR.run(p).await?,
        }
        Ok(())
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self {
            Db::Sqlite(_) => &SQLITE_MIGRATOR,
            Db::Postgres(_) => &POSTGRES_MIGRATOR,
        }
    }

    /// The newest migration this binary knows.
    pub fn latest_migration(&self) -> i64 {
        self.migrator().iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Versions applied successfully, read from sqlx's bookkeeping table (empty before the
    /// first migration).
    pub async fn applied_migrations(&self) -> Result<Vec<i64>> {
        let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
        let r: std::result::Result<Vec<i64>, sqlx::Error> =
            on_db!(self, p => sqlx::query_scalar(sql).fetch_all(p).await);
        match r {
            Ok(v) => Ok(v),
            Err(sqlx::Error::Database(e)) if e.message().contains("_sqlx_migrations") => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Readiness: the database answers and every migration of this binary is applied.
    pub async fn ready(&self) -> Result<bool> {
        let applied = self.applied_migrations().await?;
        Ok(self.migrator().iter().all(|m| applied.contains(&m.version)))
    }

    pub async fn ping(&self) -> Result<()> {
        on_db!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_db!(self, p => p.close().await)
    }
}

/// Random bytes from the operating system, hex-encoded (session ids, API tokens).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source is unavailable");
    hex(&buf)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SHA-256 of a secret, hex-encoded: what we store instead of session ids and tokens, so a
/// copy of the database does not hand out live credentials.
pub fn secret_hash(secret: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(secret.as_bytes()))
}
