//! Bulk writes on SQLite: rows first, indexes after.
//!
//! Putting rows one by one into secondary B-trees costs far more than building each tree
//! once, sorted, after the rows are in (1 M leads in SQLite alone: 36 s → 28 s; an orders
//! import: the random index pages touched by each multi-row statement must also be copied
//! to its statement journal). Done when the new rows are many and at least half as many as
//! the table holds, inside the writer's transaction: other connections keep seeing the
//! indexes (their snapshot predates the change), unique constraints stay in force (their
//! indexes are never dropped), and a failed write rolls the schema back with the rows. With
//! the write-ahead log the page cache grows for the duration so the writes do not spill to
//! the log before the commit; with a rollback journal it stays small. PostgreSQL keeps its
//! indexes (it has no such cliff at these sizes).

use crate::{Result, Tx};

/// Rows from which a write sets the indexes aside.
pub(crate) const BULK_MIN: usize = 5_000;

/// A bulk transaction's page cache (KiB, as `PRAGMA cache_size` takes it when negative) with
/// a rollback journal and with the write-ahead log.
const BULK_CACHE_JOURNAL: i64 = -131_072;
const BULK_CACHE_WAL: i64 = -2_097_152;

/// Indexes of a table set aside for a bulk write.
#[must_use = "the indexes must be built again before the commit"]
pub(crate) struct Deferred {
    /// Their `CREATE` statements, as the schema holds them, to run again afterwards.
    ddl: Vec<String>,
}

/// Drops `table`'s secondary indexes when `new_rows` is at least `BULK_MIN` and half of
/// `existing_rows`; `None` otherwise.
pub(crate) async fn defer_indexes(
    tx: &mut Tx,
    table: &str,
    new_rows: usize,
    existing_rows: i64,
) -> Result<Option<Deferred>> {
    let Tx::Sqlite(c) = tx else { return Ok(None) };
    if new_rows < BULK_MIN || (new_rows as i64) < existing_rows / 2 {
        return Ok(None);
    }
    // Automatic indexes (unique constraints) have no SQL and stay.
    let objects: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE tbl_name = $1 AND sql IS NOT NULL AND type = 'index'",
    )
    .bind(table)
    .fetch_all(&mut **c)
    .await?;
    let mut ddl = Vec::with_capacity(objects.len());
    for (name, sql) in objects {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX \"{name}\""))).execute(&mut **c).await?;
        ddl.push(sql);
    }
    // How many of the transaction's pages stay in SQLite's cache; a page it has no room for
    // is written out early. Set again, as the spill threshold, where the cache is made small
    // for the index builds (`rebuild`), and ended with the connection (`Db::begin_bulk`).
    let cache = if c.left_wal() {
        // A rollback journal: a page written out goes into the database file, where the
        // commit would have put it, and the index builds read the table back through the
        // memory map. Keeping the whole transaction in the cache instead (1.2 GB for a
        // million leads) cost more in fresh memory than it saved: 1 M leads 26.8 → 24.7 s
        // with 256 MiB (medians of three, alternated; 128 MiB as fast), 2.5 → 1.7 GB peak.
        BULK_CACHE_JOURNAL
    } else {
        // The write-ahead log: pages written out before the commit are found again through
        // its index, one table per 4,096 frames searched newest first, on every touch (ten
        // million orders: 66 s with 512 MiB, 45 s with 2 GiB). Up to 2 GiB, allocated only
        // as used.
        BULK_CACHE_WAL
    };
    sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA cache_size = {cache}"))).execute(&mut **c).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA cache_spill = {cache}"))).execute(&mut **c).await?;
    // The index builds sort with helper threads.
    sqlx::query("PRAGMA threads = 4").execute(&mut **c).await?;
    Ok(Some(Deferred { ddl }))
}

impl Deferred {
    /// Builds the indexes again, and the page cache and sorter threads back
    /// to their defaults (the spill threshold stays the transaction's, whose pages are still
    /// to be written).
    pub(crate) async fn rebuild(self, tx: &mut Tx) -> Result<()> {
        let Tx::Sqlite(c) = tx else { return Ok(()) };
        // The builds sort through temporary files in runs the size of a small page cache:
        // with temporary storage in memory SQLite's sorter sorts everything as one linked
        // list, and a large list is all cache misses (an index on 10 M orders: 30 s in
        // memory or with 512 MB runs, 7 s with 8 MB runs merged from files; runs that fit a
        // core's cache sort faster still: 8 MB runs 4.9–6.2 s, 512 KiB runs 3.9–4.1 s).
        // SQLite refuses to change the setting inside a transaction once the connection has
        // opened its temporary database; a bulk connection (`Db::begin_bulk`) is set before
        // its transaction, and any other keeps its setting (the build is slower, not wrong).
        let _ = sqlx::query("PRAGMA temp_store = FILE").execute(&mut **c).await;
        sqlx::query("PRAGMA cache_size = -512").execute(&mut **c).await?;
        for ddl in self.ddl {
            sqlx::query(sqlx::AssertSqlSafe(ddl)).execute(&mut **c).await?;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA cache_size = {}", crate::SQLITE_CACHE_SIZE)))
            .execute(&mut **c)
            .await?;
        sqlx::query("PRAGMA threads = 0").execute(&mut **c).await?;
        let _ = sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut **c).await;
        Ok(())
    }
}
