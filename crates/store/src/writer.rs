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
use sqlx::{Sqlite, SqliteConnection};
use std::sync::{Arc, Mutex};

type Slot = Arc<Mutex<Option<Kept>>>;

/// The writer's connection with the statements it keeps prepared on it (`raw::StmtCache`).
/// The fields drop in this order: the statements are finalized before the connection goes.
struct Kept {
    stmts: crate::raw::StmtCache,
    conn: PoolConnection<Sqlite>,
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
            Inner::Kept { kept, .. } => &mut kept.as_mut().expect("an open transaction has its connection").conn,
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
        exec(&mut conn, None, "BEGIN IMMEDIATE").await?;
        Ok(SqliteTx(Inner::Bulk { conn, left_wal }))
    }

    /// The connection and, on the writer's kept connection, the statements kept on it.
    pub(crate) fn parts(&mut self) -> (&mut SqliteConnection, Option<&crate::raw::StmtCache>) {
        match &mut self.0 {
            Inner::Pooled(t) => (t.as_mut().expect("an open transaction"), None),
            Inner::Kept { kept, .. } => {
                let k = kept.as_mut().expect("an open transaction has its connection");
                (&mut k.conn, Some(&k.stmts))
            }
            Inner::Bulk { conn, .. } => (conn, None),
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
                exec(&mut k.conn, Some(&k.stmts), "COMMIT").await?;
                // Committed: the connection goes back to the writer, not closed on drop.
                *slot.lock().expect("writer slot") = kept.take();
            }
            Inner::Bulk { conn, left_wal } => {
                exec(conn, None, "COMMIT").await?;
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
}

impl Writer {
    pub fn new(db: &Db) -> Writer {
        Writer { db: db.dedicated(), slot: Slot::default() }
    }

    /// A write transaction (`BEGIN IMMEDIATE` on SQLite, as `Db::begin`).
    pub async fn begin(&self) -> Result<Tx> {
        let Db::Sqlite(pool) = &self.db else { return self.db.begin().await };
        let kept = self.slot.lock().expect("writer slot").take();
        let mut k = match kept {
            Some(k) => k,
            None => {
                let mut c = pool.acquire().await?;
                crate::raw::with_sqlite(&mut c, |h| {
                    h.retry_busy_in_steps(crate::SQLITE_BUSY_TIMEOUT);
                    Ok(())
                })
                .await?;
                Kept { stmts: crate::raw::StmtCache::default(), conn: c }
            }
        };
        if let Err(e) = exec(&mut k.conn, Some(&k.stmts), "BEGIN IMMEDIATE").await {
            k.conn.close_on_drop();
            return Err(e);
        }
        Ok(Tx::Sqlite(SqliteTx(Inner::Kept { kept: Some(k), slot: self.slot.clone() })))
    }
}

/// Runs `sql` on this thread through the statement interface: through the driver, each
/// statement is a round trip to the connection's own thread, and the writer's thread then
/// waits to be scheduled again (most of a millisecond on two busy cores).
async fn exec(c: &mut SqliteConnection, stmts: Option<&crate::raw::StmtCache>, sql: &str) -> Result<()> {
    crate::raw::with_sqlite_kept(c, stmts, |c| c.prepare(sql)?.run()).await
}
