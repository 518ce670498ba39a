//! Transactions on SQLite, and a connection kept by one task that writes all the time.
//!
//! A pooled connection goes back to the pool through a task the pool spawns, which pings the
//! connection's thread before the next checkout can have it: under load that task waits
//! behind the request handlers, and the capture writer (one transaction after another, every
//! capture waiting on each) waited a millisecond or more per transaction for its own
//! connection. A [`Writer`] keeps its connection between transactions instead. It is also
//! the writer's alone: no queueing behind request handlers for a pooled connection, and on
//! SQLite its page cache stays warm from one transaction to the next (a pooled writer came
//! to a connection whose cache another writer's commit had made stale, and read its index
//! pages again).

use crate::{Db, Result, Tx};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::LockedSqliteHandle;
use sqlx::{Sqlite, SqliteConnection};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

type Slot = Arc<Mutex<Option<Kept>>>;

/// The writer's connection with the statements it keeps prepared on it (`raw::StmtCache`),
/// and the connection's handle while the writer holds it (`Kept::hold`). The fields drop in
/// this order: the statements are finalized, then the handle goes back to the connection's
/// thread, then the connection goes.
struct Kept {
    stmts: crate::raw::StmtCache,
    held: Option<LockedSqliteHandle<'static>>,
    conn: PoolConnection<Sqlite>,
}

impl Kept {
    fn new(conn: PoolConnection<Sqlite>) -> Kept {
        Kept { stmts: crate::raw::StmtCache::default(), held: None, conn }
    }

    /// The connection's handle, taken from the connection's own thread on first use and then
    /// kept, between transactions too: each hand-over is a round trip to that thread, and the
    /// writer then waits to be scheduled again (half a dozen per batch, at most of a
    /// millisecond each on two busy cores). A statement through the driver gives it back
    /// (`DerefMut`), and the next use here takes it again.
    async fn hold(&mut self) -> Result<crate::raw::Conn> {
        if self.held.is_none() {
            // `Kept` drops the handle before the connection, and `driver` gives it back
            // before the connection is used through the driver (see `raw::keep_handle`).
            self.held = Some(crate::raw::keep_handle(self.conn.lock_handle().await?));
        }
        let h = self.held.as_mut().expect("held just above");
        Ok(crate::raw::Conn::lent(h.as_raw_handle().as_ptr(), &self.stmts))
    }

    /// The connection for a statement through the driver: the handle goes back first.
    fn driver(&mut self) -> &mut SqliteConnection {
        self.held = None;
        &mut self.conn
    }
}

/// An open SQLite transaction: sqlx's on a pooled connection, or one on a [`Writer`]'s kept
/// connection. Dropped without `commit`, it rolls back (the kept connection by closing it:
/// SQLite discards what a closing connection had not committed; the writer opens another).
pub struct SqliteTx(Inner);

enum Inner {
    Pooled(Option<sqlx::Transaction<'static, Sqlite>>),
    Kept {
        kept: Option<Kept>,
        slot: Slot,
    },
    /// A bulk write's own connection (`Db::begin_bulk`), closed afterwards; `left_wal` when
    /// the transaction runs with a rollback journal, the write-ahead log to come back after it.
    Bulk {
        conn: PoolConnection<Sqlite>,
        left_wal: bool,
    },
}

impl From<sqlx::Transaction<'static, Sqlite>> for SqliteTx {
    fn from(t: sqlx::Transaction<'static, Sqlite>) -> SqliteTx {
        SqliteTx(Inner::Pooled(Some(t)))
    }
}

impl std::ops::Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match &self.0 {
            Inner::Pooled(t) => t.as_ref().expect("an open transaction"),
            Inner::Kept { kept, .. } => &kept.as_ref().expect("an open transaction has its connection").conn,
            Inner::Bulk { conn, .. } => conn,
        }
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match &mut self.0 {
            Inner::Pooled(t) => t.as_mut().expect("an open transaction"),
            Inner::Kept { kept, .. } => kept.as_mut().expect("an open transaction has its connection").driver(),
            Inner::Bulk { conn, .. } => conn,
        }
    }
}

impl SqliteTx {
    /// Opens a bulk write's transaction on `conn` (closed when dropped); with a rollback
    /// journal when `try_journal` and no other connection has the database open. SQLite
    /// leaves the write-ahead log only when it can lock the database alone; asked without
    /// waiting, it says "locked" while any other connection is open, and the transaction
    /// then runs in the log as any other.
    pub(crate) async fn bulk(mut conn: PoolConnection<Sqlite>, try_journal: bool) -> Result<SqliteTx> {
        conn.close_on_drop();
        let mut left_wal = false;
        if try_journal {
            sqlx::query("PRAGMA busy_timeout = 0").execute(&mut *conn).await?;
            let mode = sqlx::query_scalar::<_, String>("PRAGMA journal_mode = DELETE").fetch_one(&mut *conn).await;
            left_wal = matches!(mode.as_deref(), Ok("delete"));
            let restore = format!("PRAGMA busy_timeout = {}", crate::SQLITE_BUSY_TIMEOUT.as_millis());
            sqlx::query(sqlx::AssertSqlSafe(restore)).execute(&mut *conn).await?;
        }
        tracing::debug!(left_wal, "bulk transaction");
        crate::raw::with_sqlite(&mut conn, |c| c.prepare("BEGIN IMMEDIATE")?.run()).await?;
        Ok(SqliteTx(Inner::Bulk { conn, left_wal }))
    }

    /// Runs `f` with the connection's handle (see `raw::with_conn`): on the writer's kept
    /// connection with the handle it holds and the statements kept on it.
    pub(crate) async fn with_raw<R>(&mut self, f: impl FnOnce(&crate::raw::Conn) -> Result<R>) -> Result<R> {
        match &mut self.0 {
            Inner::Pooled(t) => crate::raw::with_sqlite(t.as_mut().expect("an open transaction"), f).await,
            Inner::Kept { kept, .. } => {
                let conn = kept.as_mut().expect("an open transaction has its connection").hold().await?;
                crate::raw::run_here(|| f(&conn))
            }
            Inner::Bulk { conn, .. } => crate::raw::with_sqlite(conn, f).await,
        }
    }

    /// Whether this transaction writes with a rollback journal (tests).
    pub fn left_wal(&self) -> bool {
        matches!(self.0, Inner::Bulk { left_wal: true, .. })
    }

    pub(crate) async fn commit(mut self) -> Result<()> {
        match &mut self.0 {
            Inner::Pooled(t) => t.take().expect("an open transaction").commit().await?,
            Inner::Kept { kept, slot } => {
                let k = kept.as_mut().expect("an open transaction has its connection");
                exec(k, "COMMIT").await?;
                // Committed: the connection goes back to the writer, not closed on drop.
                *slot.lock().expect("writer slot") = kept.take();
            }
            Inner::Bulk { conn, left_wal } => {
                crate::raw::with_sqlite(conn, |c| c.prepare("COMMIT")?.run()).await?;
                if *left_wal {
                    // Committed either way: were the log not back here, the next connection
                    // to open the database puts it back (every connection asks for it).
                    let back =
                        sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL").fetch_one(&mut **conn).await;
                    if let Err(e) = back {
                        tracing::warn!("the write-ahead log is back only when the database is next opened: {e}");
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if let Inner::Kept { kept: Some(k), .. } = &mut self.0 {
            k.conn.close_on_drop();
        }
    }
}

/// A connection of its own for one task that writes all the time (the capture writer),
/// kept from one transaction to the next on SQLite; on PostgreSQL a pool of one connection.
/// The connection opens on first use.
pub struct Writer {
    db: Db,
    slot: Slot,
    upkeep: Option<Arc<WalUpkeep>>,
}

impl Writer {
    pub fn new(db: &Db) -> Writer {
        let upkeep = match db {
            Db::Sqlite(p) => Some(WalUpkeep::of(p.connect_options().get_filename())),
            Db::Postgres(_) => None,
        };
        Writer { db: db.dedicated(), slot: Slot::default(), upkeep }
    }

    /// A write transaction (`BEGIN IMMEDIATE` on SQLite, as `Db::begin`).
    pub async fn begin(&self) -> Result<Tx> {
        let Db::Sqlite(pool) = &self.db else { return self.db.begin().await };
        let kept = self.slot.lock().expect("writer slot").take();
        let mut k = match kept {
            Some(k) => k,
            None => {
                let mut k = Kept::new(pool.acquire().await?);
                let conn = k.hold().await?;
                conn.retry_busy_in_steps(crate::SQLITE_BUSY_TIMEOUT);
                conn.prepare(&format!("PRAGMA wal_autocheckpoint = {BACKSTOP}"))?.first_int()?;
                conn.prepare(&format!("PRAGMA cache_size = {WRITER_CACHE_KIB}"))?.run()?;
                k
            }
        };
        if self.upkeep.as_ref().is_some_and(|u| u.restart_asked()) {
            // Upkeep, not the captures' business: a checkpoint that fails is retried when the
            // upkeep asks again, and the batch goes on.
            let started = std::time::Instant::now();
            let conn = k.hold().await?;
            match conn.prepare("PRAGMA wal_checkpoint(PASSIVE)").and_then(|mut st| st.first_int()) {
                Ok(busy) => tracing::debug!(us = started.elapsed().as_micros() as u64, ?busy, "writer checkpoint"),
                Err(e) => tracing::warn!(error = %e, "the capture writer's checkpoint failed"),
            }
        }
        if let Err(e) = exec(&mut k, "BEGIN IMMEDIATE").await {
            k.conn.close_on_drop();
            return Err(e);
        }
        Ok(Tx::Sqlite(SqliteTx(Inner::Kept { kept: Some(k), slot: self.slot.clone() })))
    }
}

/// Runs `sql` on the writer's thread through the statement interface, with the handle the
/// writer holds (`Kept::hold`).
async fn exec(k: &mut Kept, sql: &str) -> Result<()> {
    let conn = k.hold().await?;
    conn.prepare(sql)?.run()
}

/// Pages in the write-ahead log past which the server's upkeep (`Db::checkpoint`) asks the
/// writer to let the log start over. The log is then some 40 MB; each start-over costs the
/// writer a checkpoint of what the upkeep has not copied yet (10–15 ms at 4,400 captures/s,
/// a few times a second), where SQLite's own at 1,000 pages, inside the commit, copied and
/// flushed twenty-five milliseconds of writing a dozen times a second (a stall of 15–45 ms
/// each, the captures of the batch and those queued behind it waiting).
pub(crate) const RESTART_AT: i64 = 10_000;

/// The page cache of the writer's connection (SQLite reads a negative size as KiB). Small on
/// purpose: when a B-tree page splits, SQLite renumbers the new pages through a temporary
/// number past the first gigabyte of the file, and every commit of a database smaller than
/// that then walks the whole cache to drop pages beyond the file's end (7 % of the writer's
/// time with the connections' 32 MiB). The writer reads the database through the memory
/// map and keeps in its cache mostly what it wrote; 4 MiB holds a large batch's pages.
const WRITER_CACHE_KIB: i64 = -4096;

/// The writer's own checkpoint inside a commit (SQLite's `wal_autocheckpoint`), for when no
/// upkeep runs (a server's upkeep task is what asks at `RESTART_AT`).
const BACKSTOP: i64 = 2 * RESTART_AT;

/// The log file beside database file `db`.
pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// What the server's upkeep and the capture writer of one database file share: the upkeep
/// asks for a start-over of the log, the writer checkpoints before its next transaction
/// (with the log fully copied when that transaction writes, SQLite starts the log over).
#[derive(Default)]
pub(crate) struct WalUpkeep {
    restart: AtomicBool,
    /// The log's pages and pages copied at the upkeep's last checkpoint.
    last: Mutex<(i64, i64)>,
}

impl WalUpkeep {
    /// The one for database file `path`, in this process.
    pub(crate) fn of(path: &Path) -> Arc<WalUpkeep> {
        static ALL: LazyLock<Mutex<HashMap<PathBuf, Arc<WalUpkeep>>>> = LazyLock::new(Default::default);
        ALL.lock().expect("upkeep registry").entry(path.to_path_buf()).or_default().clone()
    }

    /// Whether the log moved since the last call (so there is something to flush): an idle
    /// database is not flushed forty times a second.
    pub(crate) fn moved(&self, log: i64, copied: i64) -> bool {
        let mut last = self.last.lock().expect("upkeep state");
        let moved = *last != (log, copied) && log > 0;
        *last = (log, copied);
        moved
    }

    pub(crate) fn ask_restart(&self) {
        self.restart.store(true, Ordering::Relaxed);
    }

    /// Whether a start-over was asked for (once per asking).
    fn restart_asked(&self) -> bool {
        self.restart.swap(false, Ordering::Relaxed)
    }
}
