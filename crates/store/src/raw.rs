//! Bulk inserts through SQLite's own statement interface, for imports of millions of rows.
//!
//! Through the driver every row's values are boxed into an argument list, sent to the
//! connection's thread and bound there, and the rows of a multi-row statement are parsed
//! as one long statement: for ten million orders that is most of the time. Here one
//! prepared single-row statement is bound and stepped per row, on the connection the
//! transaction holds (the driver's thread is locked out meanwhile), which is how SQLite
//! itself loads data fastest. The only unsafe code of the project lives in this module:
//! each call is the C interface used as documented, on a handle the driver lends for the
//! duration (and one call to the C library's allocator, `release_free_heap`).
#![allow(unsafe_code)]

use crate::{Error, Result, Tx};
use libsqlite3_sys as ffi;
use std::ffi::{CStr, c_int};
use std::marker::PhantomData;

/// A prepared statement; `'d` is the lifetime of the text bound to it (bound without a
/// copy, so it must outlive the statement). One taken from a `StmtCache` goes back to it,
/// reset and with its bindings cleared, instead of being finalized.
pub(crate) struct Stmt<'d> {
    db: *mut ffi::sqlite3,
    st: *mut ffi::sqlite3_stmt,
    kept: Option<(*const StmtCache, String)>,
    _data: PhantomData<&'d str>,
}

/// The connection's handle, lent by the driver, with the statements kept prepared on it if
/// it has any (null: none).
pub(crate) struct Conn {
    db: *mut ffi::sqlite3,
    cache: *const StmtCache,
}

impl Conn {
    /// A connection's handle `db` with the statements kept on it: the caller holds the
    /// handle (`LockedSqliteHandle`) and keeps `cache` alive for as long as this lives.
    pub(crate) fn lent(db: *mut ffi::sqlite3, cache: &StmtCache) -> Conn {
        Conn { db, cache }
    }
}

/// Statements kept prepared on a connection that runs the same few again and again: the
/// capture writer's (some twenty per batch). Preparing them anew each batch — parsing and
/// planning, the lead insert with its dozen indexes most of all — was a fixed cost of every
/// transaction, so a batch of a few captures paid nearly as much of it as a batch of two
/// hundred. Owned next to its connection and dropped before it: a connection closes only
/// when no statement of it is left (the driver panics otherwise).
#[derive(Default)]
pub(crate) struct StmtCache(std::sync::Mutex<std::collections::HashMap<String, Idle>>);

/// A statement in a `StmtCache`, not in use.
struct Idle(*mut ffi::sqlite3_stmt);

/// Kept statements per connection at most; a statement whose text is made per call (none
/// of the writer's is) would otherwise fill the cache.
const CACHE_MAX: usize = 64;

// SAFETY: a kept statement belongs to its cache alone (a `Stmt` taken from it gives it back
// or finalizes it); it moves between threads with its connection and is used only by the
// thread that holds that connection's handle.
unsafe impl Send for Idle {}

impl StmtCache {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Idle>> {
        // The map stays whole whatever panicked while it was held: each entry is inserted or
        // removed in one step.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for StmtCache {
    fn drop(&mut self) {
        for (_, Idle(st)) in self.map().drain() {
            // SAFETY: each statement came from prepare, is not in use (a taken one is not in
            // the map) and is finalized once.
            unsafe { ffi::sqlite3_finalize(st) };
        }
    }
}

// SAFETY: SQLite (built thread-safe) lets a connection be used from any thread as long as
// no two threads use it at once; a `Conn` lives inside one `with_*` call, which holds the
// driver's lock on the handle, and is used by one thread.
unsafe impl Send for Conn {}

fn error(db: *mut ffi::sqlite3, what: &str) -> Error {
    // SAFETY: `db` is the open handle; errmsg returns a NUL-terminated string owned by it.
    let (code, msg) = unsafe {
        (ffi::sqlite3_extended_errcode(db), CStr::from_ptr(ffi::sqlite3_errmsg(db)).to_string_lossy().into_owned())
    };
    if code == ffi::SQLITE_CONSTRAINT_UNIQUE || code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY {
        Error::Conflict(msg)
    } else if matches!(code & 0xff, ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED) {
        // Another writer (an import in another process, say) held the database past the
        // busy timeout: nothing was written, and a later try can succeed.
        Error::Unavailable(format!("{what}: the database is busy with another writer ({msg})"))
    } else {
        Error::Other(format!("{what}: {msg} (SQLite code {code})"))
    }
}

/// Waits of the writer's busy handler: 200 µs.
const BUSY_STEP: std::time::Duration = std::time::Duration::from_micros(200);

thread_local! {
    /// When the busy handler's current wait began, on the thread running the statement.
    static BUSY_SINCE: std::cell::Cell<std::time::Instant> = std::cell::Cell::new(std::time::Instant::now());
}

/// A busy handler that retries every `BUSY_STEP` until `arg` microseconds have passed since
/// the wait's first try (the pointer-sized argument is the limit, not an address). By the
/// clock, not by a count of tries: a sleep of 200 µs takes longer on a loaded machine (a
/// "10 s" limit counted in tries waited 20 s).
extern "C" fn busy_in_steps(arg: *mut std::ffi::c_void, tries: c_int) -> c_int {
    let limit = std::time::Duration::from_micros(arg as u64);
    let now = std::time::Instant::now();
    if tries == 0 {
        BUSY_SINCE.with(|s| s.set(now));
    }
    if now.duration_since(BUSY_SINCE.with(|s| s.get())) < limit {
        std::thread::sleep(BUSY_STEP);
        1
    } else {
        0
    }
}

impl Conn {
    /// Replaces the connection's busy handler (the driver's `busy_timeout`) by one that
    /// retries every 200 µs for up to `limit`. SQLite's own sleeps 1, 2, 5, 10, 15, 20, 25,
    /// 25, 25, 50, 50, 100 ms between tries: a write lock another connection (a background
    /// job) held for 3 ms cost the capture writer up to 8 ms, and a batch of captures waited
    /// behind it (`BEGIN IMMEDIATE` up to 22 ms at 4,600 captures/s).
    pub(crate) fn retry_busy_in_steps(&self, limit: std::time::Duration) {
        let micros = usize::try_from(limit.as_micros()).unwrap_or(usize::MAX).max(1);
        // SAFETY: `db` is the open handle; the handler is a plain function that neither
        // unwinds nor touches the connection, and its argument is a number, not a pointer
        // that could dangle.
        unsafe {
            ffi::sqlite3_busy_handler(self.db, Some(busy_in_steps), micros as *mut std::ffi::c_void);
        }
    }

    /// A statement for `sql`: the one kept prepared on this connection if it has a cache and
    /// that statement is free, else a new one (kept afterwards if the connection has a cache).
    pub(crate) fn prepare<'d>(&self, sql: &str) -> Result<Stmt<'d>> {
        // SAFETY: a non-null `cache` outlives this `Conn` (see `Conn::lent`).
        let cache = unsafe { self.cache.as_ref() };
        if let Some((key, Idle(st))) = cache.and_then(|c| c.map().remove_entry(sql)) {
            return Ok(Stmt { db: self.db, st, kept: Some((self.cache, key)), _data: PhantomData });
        }
        let mut st = std::ptr::null_mut();
        let len = c_int::try_from(sql.len()).map_err(|_| Error::Other("statement too long".into()))?;
        let flags = if cache.is_some() { ffi::SQLITE_PREPARE_PERSISTENT as std::ffi::c_uint } else { 0 };
        // SAFETY: `sql` is valid for `len` bytes; `st` receives the statement or null.
        let rc =
            unsafe { ffi::sqlite3_prepare_v3(self.db, sql.as_ptr().cast(), len, flags, &mut st, std::ptr::null_mut()) };
        if rc != ffi::SQLITE_OK || st.is_null() {
            return Err(error(self.db, "prepare"));
        }
        let kept = cache.map(|_| (self.cache, sql.to_string()));
        Ok(Stmt { db: self.db, st, kept, _data: PhantomData })
    }

    /// Rows changed by the last statement on this connection.
    pub(crate) fn changes(&self) -> i64 {
        // SAFETY: `db` is the open handle.
        unsafe { ffi::sqlite3_changes64(self.db) }
    }

    /// The rowid the last insert on this connection gave.
    pub(crate) fn last_rowid(&self) -> i64 {
        // SAFETY: `db` is the open handle.
        unsafe { ffi::sqlite3_last_insert_rowid(self.db) }
    }
}

impl<'d> Stmt<'d> {
    /// Binds parameter `i` (from 1).
    pub(crate) fn int(&mut self, i: c_int, v: i64) -> Result<()> {
        // SAFETY: `st` is a live statement.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.st, i, v) };
        if rc == ffi::SQLITE_OK { Ok(()) } else { Err(error(self.db, "bind")) }
    }

    /// Binds parameter `i` to text that outlives the statement (no copy is made).
    pub(crate) fn text(&mut self, i: c_int, v: &'d str) -> Result<()> {
        let len = c_int::try_from(v.len()).map_err(|_| Error::Other("value too long".into()))?;
        // SAFETY: `v` is valid UTF-8 for `len` bytes and, by `'d`, outlives the statement, so
        // SQLite may keep the pointer (SQLITE_STATIC) until it is rebound or finalized.
        let rc = unsafe { ffi::sqlite3_bind_text(self.st, i, v.as_ptr().cast(), len, ffi::SQLITE_STATIC()) };
        if rc == ffi::SQLITE_OK { Ok(()) } else { Err(error(self.db, "bind")) }
    }

    /// Binds parameter `i` to a copy of `v` (for values built per row).
    pub(crate) fn text_copy(&mut self, i: c_int, v: &str) -> Result<()> {
        let len = c_int::try_from(v.len()).map_err(|_| Error::Other("value too long".into()))?;
        // SAFETY: `v` is valid for `len` bytes during the call; SQLITE_TRANSIENT makes SQLite
        // copy it before returning.
        let rc = unsafe { ffi::sqlite3_bind_text(self.st, i, v.as_ptr().cast(), len, ffi::SQLITE_TRANSIENT()) };
        if rc == ffi::SQLITE_OK { Ok(()) } else { Err(error(self.db, "bind")) }
    }

    /// Binds NULL or a copy of the text.
    pub(crate) fn opt_text_copy(&mut self, i: c_int, v: Option<&str>) -> Result<()> {
        match v {
            Some(v) => self.text_copy(i, v),
            None => self.null(i),
        }
    }

    /// Binds NULL or an integer.
    pub(crate) fn opt_int(&mut self, i: c_int, v: Option<i64>) -> Result<()> {
        match v {
            Some(v) => self.int(i, v),
            None => self.null(i),
        }
    }

    fn null(&mut self, i: c_int) -> Result<()> {
        // SAFETY: `st` is a live statement.
        match unsafe { ffi::sqlite3_bind_null(self.st, i) } {
            ffi::SQLITE_OK => Ok(()),
            _ => Err(error(self.db, "bind")),
        }
    }

    /// Binds NULL or text.
    pub(crate) fn opt_text(&mut self, i: c_int, v: Option<&'d str>) -> Result<()> {
        match v {
            Some(v) => self.text(i, v),
            None => self.null(i),
        }
    }

    /// Runs the statement (one that returns no rows) and makes it ready for the next row.
    pub(crate) fn run(&mut self) -> Result<()> {
        // SAFETY: `st` is a live statement with every parameter bound.
        let rc = unsafe { ffi::sqlite3_step(self.st) };
        if rc != ffi::SQLITE_DONE {
            let e = error(self.db, "insert");
            // SAFETY: as above; reset after a failed step keeps the statement usable.
            unsafe { ffi::sqlite3_reset(self.st) };
            return Err(e);
        }
        // SAFETY: as above.
        unsafe { ffi::sqlite3_reset(self.st) };
        Ok(())
    }

    /// Steps a query: `true` with a row to read (`column`), `false` when done (the statement
    /// is then ready to run again).
    pub(crate) fn next_row(&mut self) -> Result<bool> {
        // SAFETY: `st` is a live statement with every parameter bound.
        match unsafe { ffi::sqlite3_step(self.st) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => {
                // SAFETY: as above.
                unsafe { ffi::sqlite3_reset(self.st) };
                Ok(false)
            }
            _ => {
                let e = error(self.db, "query");
                // SAFETY: as above.
                unsafe { ffi::sqlite3_reset(self.st) };
                Err(e)
            }
        }
    }

    /// Column `i` (from 0) of the current row as an integer.
    pub(crate) fn column(&self, i: c_int) -> i64 {
        // SAFETY: `st` is a live statement positioned on a row (after `next_row` gave true).
        unsafe { ffi::sqlite3_column_int64(self.st, i) }
    }

    /// Column `i` (from 0) of the current row as text (NULL reads as empty).
    pub(crate) fn column_text(&self, i: c_int) -> Result<String> {
        // SAFETY: `st` is positioned on a row; the text pointer (or null for NULL) stays valid
        // until the next step, and `bytes` gives its length; it is copied out at once.
        let bytes = unsafe {
            let p = ffi::sqlite3_column_text(self.st, i);
            if p.is_null() {
                return Ok(String::new());
            }
            let n = ffi::sqlite3_column_bytes(self.st, i);
            std::slice::from_raw_parts(p, usize::try_from(n).unwrap_or(0))
        };
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::Other("stored text is not UTF-8".into()))
    }

    /// The first column of the first row, if any (the statement is reset afterwards).
    pub(crate) fn first_int(&mut self) -> Result<Option<i64>> {
        let v = if self.next_row()? { Some(self.column(0)) } else { None };
        // SAFETY: `st` is a live statement.
        unsafe { ffi::sqlite3_reset(self.st) };
        Ok(v)
    }
}

impl Drop for Stmt<'_> {
    fn drop(&mut self) {
        if let Some((cache, sql)) = self.kept.take() {
            // SAFETY: the cache outlives the `Conn` this statement came from, and so this
            // statement (used only inside the `with_*` call that lent the handle).
            let mut map = unsafe { &*cache }.map();
            if map.len() < CACHE_MAX && !map.contains_key(&sql) {
                // SAFETY: `st` is live; reset ends its run (a statement left mid-run would
                // hold a read snapshot) and the bindings go with the text they pointed to.
                unsafe {
                    ffi::sqlite3_reset(self.st);
                    ffi::sqlite3_clear_bindings(self.st);
                }
                map.insert(sql, Idle(self.st));
                return;
            }
        }
        // SAFETY: `st` came from prepare and is finalized once.
        unsafe { ffi::sqlite3_finalize(self.st) };
    }
}

/// Rows a bulk write binds to one multi-row statement: every run of a statement opens its
/// tables' and indexes' cursors and resets its program, about the cost of writing a small
/// row (10 M orders one row per run: 11.4 s; 64 rows per run: see BENCHMARKS.md).
pub(crate) const ROWS_PER_RUN: usize = 64;

/// `insert` followed by `VALUES` with `rows` groups of `cols` numbered parameters: row `r`'s
/// column `c` (from 0) is parameter `r * cols + c + 1`.
pub(crate) fn multi_values(insert: &str, cols: usize, rows: usize) -> String {
    let mut sql = format!("{insert} VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("?{}", r * cols + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// Writes `rows` rows through `insert` (`INSERT OR FAIL INTO table (columns)` or `INSERT OR
/// IGNORE …`), `ROWS_PER_RUN` to a statement run (the last run shorter): `bind(st, row,
/// first)` binds row `row`'s `cols` values from parameter `first`; `ran(rows_so_far)`
/// follows every run.
///
/// Not a plain `INSERT`: a multi-row statement that may abort on a conflict first copies
/// every page it changes to a statement journal (to undo its own rows), and rows going into
/// an index in random order change a page each (800,000 customers in random key order, 64
/// to a statement: 4.3–4.9 s with the journal, 2.0–2.4 s without). `OR FAIL` stops at a
/// conflict without undoing the statement's earlier rows: a bulk write's caller rolls the
/// whole transaction back on any error.
pub(crate) fn write_runs<'d>(
    conn: &Conn,
    insert: &str,
    cols: usize,
    rows: usize,
    mut bind: impl FnMut(&mut Stmt<'d>, usize, c_int) -> Result<()>,
    mut ran: impl FnMut(usize),
) -> Result<()> {
    debug_assert!(insert.starts_with("INSERT OR FAIL ") || insert.starts_with("INSERT OR IGNORE "));
    let mut full =
        if rows >= ROWS_PER_RUN { Some(conn.prepare(&multi_values(insert, cols, ROWS_PER_RUN))?) } else { None };
    let mut start = 0;
    while start < rows {
        let n = ROWS_PER_RUN.min(rows - start);
        let mut tail;
        let st = match &mut full {
            Some(st) if n == ROWS_PER_RUN => st,
            _ => {
                tail = conn.prepare(&multi_values(insert, cols, n))?;
                &mut tail
            }
        };
        for i in 0..n {
            bind(st, start + i, (cols * i) as c_int + 1)?;
        }
        st.run()?;
        start += n;
        ran(start);
    }
    Ok(())
}

/// Runs `f` with the handle of the transaction's connection (SQLite only), off the async
/// scheduler's worker when the runtime has others to run its tasks meanwhile.
pub(crate) async fn with_conn<R>(tx: &mut Tx, f: impl FnOnce(&Conn) -> Result<R>) -> Result<R> {
    let Tx::Sqlite(t) = tx else { return Err(Error::Other("not an SQLite store".into())) };
    t.with_raw(f).await
}

/// Reads in `parts` pieces at once, each on a pooled connection of its own and a thread of
/// its own (`read(conn, part)`), the pieces' rows concatenated in part order. For scans of
/// millions of rows on a machine with cores to spare. Only one connection is waited for;
/// the others are taken if free at once, and with fewer connections a thread reads several
/// pieces in turn (so concurrent readers never wait on each other's second connection).
pub(crate) async fn read_parts<T: Send>(
    pool: &sqlx::SqlitePool,
    parts: usize,
    read: impl Fn(&Conn, usize) -> Result<Vec<T>> + Sync,
) -> Result<Vec<T>> {
    let mut conns = vec![pool.acquire().await?];
    while conns.len() < parts {
        match pool.try_acquire() {
            Some(c) => conns.push(c),
            None => break,
        }
    }
    let mut handles = Vec::with_capacity(conns.len());
    for c in &mut conns {
        handles.push(c.lock_handle().await?);
    }
    let lent: Vec<Conn> =
        handles.iter_mut().map(|h| Conn { db: h.as_raw_handle().as_ptr(), cache: std::ptr::null() }).collect();
    let threads = lent.len();
    let run = || {
        std::thread::scope(|s| {
            let read = &read;
            let workers: Vec<_> = lent
                .into_iter()
                .enumerate()
                .map(|(t, conn)| {
                    s.spawn(move || {
                        (t..parts).step_by(threads).map(|part| read(&conn, part)).collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut pieces: Vec<Option<Vec<T>>> = (0..parts).map(|_| None).collect();
            for (t, w) in workers.into_iter().enumerate() {
                let done = w.join().map_err(|_| Error::Other("a reading thread failed".into()))??;
                for (k, rows) in done.into_iter().enumerate() {
                    pieces[t + k * threads] = Some(rows);
                }
            }
            Ok(pieces.into_iter().flatten().flatten().collect())
        })
    };
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi { tokio::task::block_in_place(run) } else { run() }
}

/// `with_conn` on any SQLite connection (a pooled one, for reads).
pub(crate) async fn with_sqlite<R>(c: &mut sqlx::SqliteConnection, f: impl FnOnce(&Conn) -> Result<R>) -> Result<R> {
    let mut handle = c.lock_handle().await?;
    let conn = Conn { db: handle.as_raw_handle().as_ptr(), cache: std::ptr::null() };
    run_here(|| f(&conn))
}

/// `h` with its borrow of the connection forgotten, for a connection that keeps its own
/// handle between uses (the capture writer's, `writer::Kept`). The caller must drop the
/// handle before the connection, and must not use the connection through the driver while
/// it holds the handle (the driver's statements would wait for it forever).
pub(crate) fn keep_handle(h: sqlx::sqlite::LockedSqliteHandle<'_>) -> sqlx::sqlite::LockedSqliteHandle<'static> {
    // SAFETY: the handle is a guard on a mutex in the connection's shared state, an `Arc`
    // allocation that stays where it is when the connection moves and lives as long as the
    // connection; the caller drops the guard before the connection (above).
    unsafe { std::mem::transmute::<sqlx::sqlite::LockedSqliteHandle<'_>, sqlx::sqlite::LockedSqliteHandle<'static>>(h) }
}

/// Runs `f`, off the async scheduler's worker when the runtime has others to run its tasks
/// meanwhile.
pub(crate) fn run_here<R>(f: impl FnOnce() -> R) -> R {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi { tokio::task::block_in_place(f) } else { f() }
}

/// Hands the heap's free pages back to the operating system (glibc's `malloc_trim`); a no-op
/// elsewhere.
pub(crate) fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> c_int;
        }
        // SAFETY: glibc's documented call; it only walks the allocator's own free lists.
        unsafe {
            malloc_trim(0);
        }
    }
}
