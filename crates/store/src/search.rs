//! L-1 search on SQLite: the full-text index of the leads' search text in a file of its own.
//!
//! SQLite lets one writer at a time into a file. With the index in the database file, new
//! leads' text had to be moved into it by the capture writer (15–30 ms, up to 90 ms with
//! FTS5's merges, every thousand captures), and every capture waited behind the move. The
//! index now lives beside the database (`<file>-search`, attached as `search`) and one
//! indexer ([`Indexer`], the server's upkeep) writes it on a connection of its own, beside
//! the capture writer rather than in its way.
//!
//! The index lags the leads by a step, and a search stays exact all the same:
//! - the search file records the newest lead id it has indexed (`upto`); a search takes
//!   leads past it by their stored text (`leads.search_text`, matched token by token as
//!   FTS5 would);
//! - a lead whose text changes, or that is deleted, is listed in the database
//!   (`leads_fts_dirty`, by a trigger, in the writer's transaction); the search file records
//!   up to which entry it has applied the list (`done`), and until then a search takes the
//!   lead by its stored text and ignores what the index holds for it;
//! - the index records which database it was made for (`epoch`, from `leads_fts_epoch`): a
//!   restore gives the database a new epoch, and an index of another epoch — or one that
//!   has applied changes the database no longer lists, as after a crash that lost the
//!   database's last commits — is made again; one past the newest lead forgets the leads
//!   past it, whose ids a new lead may take again.
//!
//! The search file also indexes the leads' weak keys (L-2's company + name, looked up on a
//! lead's page, [`push_weak_match`]) by the same rules: an index written with each capture
//! took a page of the database at random per lead. They are in an FTS5 table too (by the
//! tokens of `domain::search::weak_key_tokens`), not in a B-tree of the keys: each step
//! appends a segment, where the B-tree had a page at random to write for nearly every new
//! lead, four fifths of a step's time (26 of 34 ms per thousand leads).
//!
//! PostgreSQL: the GIN index is written with the row; nothing here applies.

use crate::{Db, Result};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// The search file's tables: the index (contentless: the text is in `leads`; rows deleted
/// by rowid), the one row of its state, and the index of the leads' weak keys (the same).
const TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS search.leads_fts_state (k INTEGER PRIMARY KEY CHECK (k = 0), \
     epoch INTEGER NOT NULL, upto INTEGER NOT NULL, done INTEGER NOT NULL)",
    // The application's tokens (`domain::search`), space-separated: the `ascii` tokenizer
    // splits them as they are; matches are by token prefix, so no positions are kept.
    "CREATE VIRTUAL TABLE IF NOT EXISTS search.leads_fts USING fts5(search_text, content = '', \
     contentless_delete = 1, tokenize = 'ascii', detail = none)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS search.leads_weak_fts USING fts5(weak_key, content = '', \
     contentless_delete = 1, tokenize = 'ascii', detail = none)",
];

/// The search file beside a database file.
fn file_of(options: &SqliteConnectOptions) -> String {
    format!("{}-search", options.get_filename().display())
}

/// Attaches the search file to `c` as `search`, making it if missing.
async fn attach(c: &mut SqliteConnection, file: &str) -> sqlx::Result<()> {
    sqlx::query("ATTACH DATABASE $1 AS search").bind(file).execute(&mut *c).await?;
    sqlx::query("PRAGMA search.journal_mode = WAL").execute(&mut *c).await?;
    // Nothing in the file that the database cannot give again: no flush per commit. A
    // crash may lose its last steps, state and index together, and they are done again.
    sqlx::query("PRAGMA search.synchronous = NORMAL").execute(&mut *c).await?;
    // A catch-up step after a large import leaves a log of its size; cut it back on restart,
    // as the database's own (the connection's pragmas were set before the attach).
    sqlx::query("PRAGMA search.journal_size_limit = 67108864").execute(&mut *c).await?;
    for sql in TABLES {
        sqlx::query(sql).execute(&mut *c).await?;
    }
    Ok(())
}

/// Connections for searching, per database file, each with the search file attached. Not
/// the database's own pool: `BEGIN IMMEDIATE` takes the write lock of every attached file,
/// so a writer with the search file attached would wait for the indexer and hold it up.
static READERS: LazyLock<Mutex<HashMap<PathBuf, SqlitePool>>> = LazyLock::new(Default::default);

/// The searching connections of the database `p` is a pool of (made on first use).
pub(crate) fn readers(p: &SqlitePool) -> SqlitePool {
    let options = p.connect_options();
    let mut all = READERS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = all.get(options.get_filename()) {
        return pool.clone();
    }
    all.entry(options.get_filename().to_path_buf())
        .or_insert_with(|| {
            let file = file_of(&options);
            let options = (*options).clone();
            SqlitePoolOptions::new()
                .max_connections(4)
                .min_connections(0)
                .idle_timeout(Duration::from_secs(60))
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(move |c, _| {
                    let file = file.clone();
                    Box::pin(async move { attach(c, &file).await })
                })
                .connect_lazy_with(options)
        })
        .clone()
}

/// The search file's state as a search reads it (`s`): whether it was made for this
/// database (`fresh`), the newest lead it holds (`upto`, -1 when not fresh) and the last
/// entry of `leads_fts_dirty` it has applied (`done`).
const STATE: &str = "WITH s AS (SELECT coalesce(st.epoch = e.n, 0) AS fresh, \
    CASE WHEN st.epoch = e.n THEN st.upto ELSE -1 END AS upto, coalesce(st.done, 0) AS done \
    FROM leads_fts_epoch e LEFT JOIN search.leads_fts_state st)";

/// Pushes onto `qb` a condition that keeps the leads whose weak key is `key` (SQLite; `qb`
/// selects from `leads`, on a connection of [`readers`]): the search file for the leads it
/// holds, the stored key for leads past it or changed since (see the module comment).
pub(crate) fn push_weak_match(qb: &mut sqlx::QueryBuilder<sqlx::Sqlite>, key: &str) {
    // The key is checked on the lead itself: the index gives every lead whose key has the
    // same tokens (`domain::search::weak_key_fts5`), and a changed lead listed below whose
    // key is now another one drops out here.
    qb.push(" AND weak_key = ").push_bind(key.to_string());
    qb.push(" AND id IN (").push(STATE);
    match domain::search::weak_key_fts5(key) {
        Some(expr) => {
            qb.push(" SELECT rowid FROM search.leads_weak_fts WHERE leads_weak_fts MATCH ").push_bind(expr).push(
                " AND (SELECT fresh FROM s) \
                   AND rowid NOT IN (SELECT d.id FROM leads_fts_dirty d WHERE d.seq > (SELECT done FROM s))",
            )
        }
        // Nothing but punctuation: no tokens, and no entry in the index either.
        None => qb.push(" SELECT NULL WHERE 0"),
    };
    qb.push(" UNION ALL SELECT l.id FROM leads l WHERE l.id > (SELECT upto FROM s) AND l.weak_key = ")
        .push_bind(key.to_string())
        .push(
            " UNION ALL SELECT d.id FROM leads_fts_dirty d \
           WHERE d.seq > (SELECT done FROM s) AND d.id <= (SELECT upto FROM s))",
        );
}

/// Pushes onto `qb` a condition that keeps the leads whose search text matches `q`
/// (SQLite; `qb` selects from `leads`): the index for what it holds, the stored text for
/// leads past it or changed since (see the module comment).
pub(crate) fn push_match(qb: &mut sqlx::QueryBuilder<sqlx::Sqlite>, q: &domain::search::Query) {
    // `fresh`: the index was made for this database. Read in the same statement as the
    // rest, so the state and the index are of one moment of the search file.
    qb.push(" AND id IN (")
        .push(STATE)
        .push(" SELECT rowid FROM search.leads_fts WHERE leads_fts MATCH ")
        .push_bind(q.fts5())
        .push(
            " AND (SELECT fresh FROM s) \
           AND rowid NOT IN (SELECT d.id FROM leads_fts_dirty d WHERE d.seq > (SELECT done FROM s)) \
         UNION ALL SELECT l.id FROM leads l WHERE l.id > (SELECT upto FROM s) AND ",
        );
    push_text_match(qb, q);
    qb.push(
        " UNION ALL SELECT l.id FROM leads_fts_dirty d JOIN leads l ON l.id = d.id \
           WHERE d.seq > (SELECT done FROM s) AND l.id <= (SELECT upto FROM s) AND ",
    );
    push_text_match(qb, q);
    qb.push(")");
}

/// `q` over `l.search_text` as the index matches it: each query token a prefix of one of
/// the text's space-separated tokens (`' ' || text` holds `' ' || token`).
fn push_text_match(qb: &mut sqlx::QueryBuilder<sqlx::Sqlite>, q: &domain::search::Query) {
    qb.push("(");
    for (g, alts) in q.groups().iter().enumerate() {
        qb.push(if g == 0 { "(" } else { " AND (" });
        for (a, words) in alts.iter().enumerate() {
            qb.push(if a == 0 { "(" } else { " OR (" });
            for (w, word) in words.iter().enumerate() {
                qb.push(if w == 0 { "" } else { " AND " });
                qb.push("instr(' ' || l.search_text, ").push_bind(format!(" {word}")).push(") > 0");
            }
            qb.push(")");
        }
        qb.push(")");
    }
    qb.push(")");
}

/// What one indexing step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    /// Leads indexed for the first time.
    pub indexed: u64,
    /// Changed or deleted leads whose entries were made again.
    pub changed: u64,
    /// The index was emptied first (made for another epoch, or ahead of the database).
    pub rebuilt: bool,
    /// Leads remain past the index after this step.
    pub behind: bool,
    /// How many (by id: the newest lead's id less the newest indexed).
    pub left: i64,
}

/// The one writer of a database's search file (SQLite), on a connection of its own.
pub struct Indexer {
    conn: SqliteConnection,
    /// Entries of `leads_fts_dirty` up to this `seq` are removed from it.
    cleaned: i64,
}

/// Most leads one step indexes: a step is one transaction of the search file, and FTS5
/// keeps a step's entries in memory until its commit.
pub const STEP_MOST: i64 = 50_000;

/// Most leads a step takes while captures are coming in ([`pace`]): a step is one
/// statement on one core, and a step of 50,000 leads after a burst of captures held a core
/// for most of a second while the captures behind it waited for the other.
pub const STEP_BUSY: i64 = 1_000;

/// While captures are coming in, the indexer rests this many times as long as its last
/// step took ([`pace`]): it indexes at most a fifth of the time.
pub const BUSY_REST: u32 = 4;

/// How long after the last capture the indexer still counts captures as coming in
/// ([`pace`]): a pause between two bursts (a client's retry, a form's campaign going out
/// in waves) is no time for a step of [`STEP_MOST`] leads, most of a second on one core.
pub const BUSY_HOLD: Duration = Duration::from_secs(2);

/// Leads past the index beyond which the indexer rests less while captures come in
/// ([`pace`]), and at four times this many not at all: a search reads the leads past the
/// index by their stored text, so under captures that never stop the lag must not grow
/// without end. A search's scan of 100,000 such leads took 45–80 ms. Resting less as the
/// lag grows rather than not at all past one line: with a line at 100,000, a closed loop's
/// 130,000 captures put the indexer past it at once, and it took a core from the captures
/// that came next.
pub const BUSY_LAG_MOST: i64 = 250_000;

/// The indexer's next step: at most `most` leads, after resting `rest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub most: i64,
    pub rest: Duration,
}

/// How the indexer goes on after a step `last` that took `took` (L-1: captures first, the
/// index after them). `busy`: captures came in within [`BUSY_HOLD`] (the capture writer's
/// count moved). Caught up, it rests `caught_up` (`search_index_ms`). Behind and no capture
/// coming in (after an import, or once a burst is over), it steps again at once, in steps of
/// [`STEP_MOST`]. Behind while captures come in, it takes [`STEP_BUSY`] leads a step and
/// rests [`BUSY_REST`] times as long as the step took, so it uses at most a fifth of a
/// core and in short turns: a capture never waits behind a step of seconds. Should it fall
/// more than [`BUSY_LAG_MOST`] leads behind all the same (captures at the peak for
/// minutes), its rests shrink in proportion (half as long at twice that many), and at four
/// times that many it stops resting, still in short steps. A search stays exact meanwhile
/// (see the module comment).
pub fn pace(last: &Step, took: Duration, busy: bool, caught_up: Duration) -> Pace {
    let most = if busy { STEP_BUSY } else { STEP_MOST };
    let rest = match (last.behind, busy) {
        (false, _) => caught_up,
        (true, false) => Duration::ZERO,
        (true, true) if last.left > 4 * BUSY_LAG_MOST => Duration::ZERO,
        (true, true) if last.left > BUSY_LAG_MOST => {
            (took * BUSY_REST).mul_f64(BUSY_LAG_MOST as f64 / last.left as f64)
        }
        (true, true) => took * BUSY_REST,
    };
    Pace { most, rest }
}

/// Whether captures are coming in, for [`pace`]: the capture writer's count
/// (`capture::Queue::taken`) moved within [`BUSY_HOLD`].
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    seen: u64,
    moved: Option<std::time::Instant>,
}

impl Traffic {
    /// From the writer's count now; quiet until it moves.
    pub fn new(taken: u64) -> Traffic {
        Traffic { seen: taken, moved: None }
    }

    /// Busy at `now`, the writer's count being `taken`.
    pub fn busy(&mut self, taken: u64, now: std::time::Instant) -> bool {
        if taken != self.seen {
            (self.seen, self.moved) = (taken, Some(now));
        }
        self.moved.is_some_and(|t| now.saturating_duration_since(t) < BUSY_HOLD)
    }
}

/// Applied entries of `leads_fts_dirty` left in it before they are removed (a write to the
/// database; rare enough to be nothing beside the capture writer's).
const CLEAN_AT: i64 = 10_000;

impl Indexer {
    /// `None` on PostgreSQL.
    pub async fn open(db: &Db) -> Result<Option<Indexer>> {
        let Db::Sqlite(p) = db else { return Ok(None) };
        let options = (*p.connect_options()).clone();
        let mut conn = options.connect().await?;
        attach(&mut conn, &file_of(&options)).await?;
        // FTS5 writes out its in-memory entries as a segment when they pass this size: a
        // step's entries in one segment, not in 1 MiB ones merged again (a catch-up after a
        // large import indexes `STEP_MOST` leads a step).
        for table in ["leads_fts", "leads_weak_fts"] {
            let sql = format!("INSERT INTO search.{table} ({table}, rank) VALUES ('hashsize', 33554432)");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await?;
        }
        // The weak keys' B-tree of a search file made before (migration 0031 has the file
        // made again, with their FTS5 table).
        sqlx::query("DROP TABLE IF EXISTS search.leads_weak").execute(&mut conn).await?;
        // FTS5's merges read back the segments they merge (allocated only as used).
        sqlx::query("PRAGMA search.cache_size = -65536").execute(&mut conn).await?;
        Ok(Some(Indexer { conn, cleaned: 0 }))
    }

    /// Brings the index up to date with changed and deleted leads and indexes up to `most`
    /// new ones, in one transaction of the search file (the database is only read).
    pub async fn step(&mut self, most: i64) -> Result<Step> {
        let c = &mut self.conn;
        // Deferred, then a write to the search file first: its write lock only (an immediate
        // transaction would take the database's as well, and wait for the capture writer).
        sqlx::query("BEGIN").execute(&mut *c).await?;
        let result = step_in(c, most).await;
        match result {
            Ok((step, done)) => {
                sqlx::query("COMMIT").execute(&mut *c).await?;
                if done - self.cleaned >= CLEAN_AT {
                    self.clean(done).await?;
                }
                Ok(step)
            }
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *c).await;
                Err(e)
            }
        }
    }

    /// Removes applied entries from `leads_fts_dirty` (a search ignores them already).
    async fn clean(&mut self, done: i64) -> Result<()> {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut self.conn).await?;
        let r =
            sqlx::query("DELETE FROM main.leads_fts_dirty WHERE seq <= $1").bind(done).execute(&mut self.conn).await;
        sqlx::query(if r.is_ok() { "COMMIT" } else { "ROLLBACK" }).execute(&mut self.conn).await?;
        r?;
        self.cleaned = done;
        Ok(())
    }

    /// Steps until no lead is left past the index and every change is applied, telling
    /// `each` of every step; returns the steps' sums.
    pub async fn catch_up(&mut self, mut each: impl FnMut(&Step)) -> Result<Step> {
        let mut all = Step::default();
        loop {
            let s = self.step(STEP_MOST).await?;
            each(&s);
            all.indexed += s.indexed;
            all.changed += s.changed;
            all.rebuilt |= s.rebuilt;
            if !s.behind {
                return Ok(all);
            }
        }
    }
}

/// Brings the index of `db` up to date (SQLite; nothing to do on PostgreSQL): for a
/// command or a test that needs it now rather than at the server's next step.
pub async fn catch_up(db: &Db) -> Result<Step> {
    match Indexer::open(db).await? {
        Some(mut i) => i.catch_up(|_| {}).await,
        None => Ok(Step::default()),
    }
}

/// The state row: (epoch, upto, done).
type State = (i64, i64, i64);

/// A step inside its transaction; returns it and the `seq` of `leads_fts_dirty` applied.
async fn step_in(c: &mut SqliteConnection, most: i64) -> Result<(Step, i64)> {
    sqlx::query("INSERT OR IGNORE INTO search.leads_fts_state (k, epoch, upto, done) VALUES (0, -1, 0, 0)")
        .execute(&mut *c)
        .await?;
    let ((epoch, mut upto, mut done), now, last_id, last_seq): (State, i64, i64, i64) = {
        let row: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT st.epoch, st.upto, st.done, e.n, \
               coalesce((SELECT max(id) FROM main.leads), 0), \
               coalesce((SELECT seq FROM main.sqlite_sequence WHERE name = 'leads_fts_dirty'), 0) \
             FROM search.leads_fts_state st, main.leads_fts_epoch e",
        )
        .fetch_one(&mut *c)
        .await?;
        ((row.0, row.1, row.2), row.3, row.4, row.5)
    };
    let mut step = Step::default();
    if epoch != now || done > last_seq {
        sqlx::query("INSERT INTO search.leads_fts (leads_fts) VALUES ('delete-all')").execute(&mut *c).await?;
        sqlx::query("INSERT INTO search.leads_weak_fts (leads_weak_fts) VALUES ('delete-all')")
            .execute(&mut *c)
            .await?;
        (upto, done, step.rebuilt) = (0, last_seq, true);
    }
    if upto > last_id {
        // The newest leads are gone: deleted (their entries go anyway), or lost with the
        // database's last commits in a crash. A new lead may take such an id again, and
        // must not be taken for indexed.
        for sql in [
            "DELETE FROM search.leads_fts WHERE rowid > $1 AND rowid <= $2",
            "DELETE FROM search.leads_weak_fts WHERE rowid > $1 AND rowid <= $2",
        ] {
            sqlx::query(sql).bind(last_id).bind(upto).execute(&mut *c).await?;
        }
        upto = last_id;
    }
    if last_seq > done {
        // Entries for leads past `upto` need nothing: those leads are indexed as they are
        // when their turn comes.
        const CHANGED: &str = "(SELECT id FROM main.leads_fts_dirty WHERE seq > $1 AND seq <= $2 AND id <= $3)";
        // Their entries out, then their stored text and key in again (a deleted lead has
        // neither); `changed` counts the leads put back.
        let statements = [
            format!("DELETE FROM search.leads_weak_fts WHERE rowid IN {CHANGED}"),
            format!(
                "INSERT INTO search.leads_weak_fts (rowid, weak_key) SELECT id, weak_key FROM main.leads \
                 WHERE id IN {CHANGED} AND weak_key IS NOT NULL"
            ),
            format!("DELETE FROM search.leads_fts WHERE rowid IN {CHANGED}"),
            format!(
                "INSERT INTO search.leads_fts (rowid, search_text) SELECT id, search_text FROM main.leads WHERE id IN {CHANGED}"
            ),
        ];
        for sql in statements {
            let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(done).bind(last_seq).bind(upto);
            step.changed = q.execute(&mut *c).await?.rows_affected();
        }
        done = last_seq;
    }
    let to = last_id.min(upto.saturating_add(most.max(1)));
    if to > upto {
        sqlx::query(
            "INSERT INTO search.leads_weak_fts (rowid, weak_key) SELECT id, weak_key FROM main.leads \
             WHERE id > $1 AND id <= $2 AND weak_key IS NOT NULL ORDER BY id",
        )
        .bind(upto)
        .bind(to)
        .execute(&mut *c)
        .await?;
        step.indexed = sqlx::query(
            "INSERT INTO search.leads_fts (rowid, search_text) SELECT id, search_text FROM main.leads \
             WHERE id > $1 AND id <= $2 ORDER BY id",
        )
        .bind(upto)
        .bind(to)
        .execute(&mut *c)
        .await?
        .rows_affected();
        upto = to;
    }
    step.behind = upto < last_id;
    step.left = last_id - upto;
    sqlx::query("UPDATE search.leads_fts_state SET epoch = $1, upto = $2, done = $3")
        .bind(now)
        .bind(upto)
        .bind(done)
        .execute(&mut *c)
        .await?;
    Ok((step, done))
}

/// How far the index is behind the database (SQLite; `None` on PostgreSQL): leads past it,
/// and changed or deleted leads it has still to apply. (0, 0) when it has caught up.
pub async fn lag(db: &Db) -> Result<Option<(i64, i64)>> {
    let Db::Sqlite(p) = db else { return Ok(None) };
    let row: (i64, i64) = sqlx::query_as(
        "WITH s AS (SELECT CASE WHEN st.epoch = e.n THEN st.upto ELSE 0 END AS upto, coalesce(st.done, 0) AS done \
           FROM leads_fts_epoch e LEFT JOIN search.leads_fts_state st) \
         SELECT (SELECT count(*) FROM leads WHERE id > (SELECT upto FROM s)), \
           (SELECT count(DISTINCT id) FROM leads_fts_dirty WHERE seq > (SELECT done FROM s))",
    )
    .fetch_one(&readers(p))
    .await?;
    Ok(Some(row))
}

/// FTS5's own check of the indexes' structure (SQLite; nothing on PostgreSQL): an error
/// when one is damaged.
pub async fn check(db: &Db) -> Result<()> {
    let Db::Sqlite(p) = db else { return Ok(()) };
    for table in ["leads_fts", "leads_weak_fts"] {
        let sql = format!("INSERT INTO search.{table} ({table}, rank) VALUES ('integrity-check', 0)");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&readers(p)).await?;
    }
    Ok(())
}

/// The leads the index alone gives for `q` (SQLite; `None` on PostgreSQL): for checking the
/// index against the leads' stored text.
pub async fn indexed(db: &Db, q: &domain::search::Query) -> Result<Option<Vec<i64>>> {
    let Db::Sqlite(p) = db else { return Ok(None) };
    let ids = sqlx::query_scalar("SELECT rowid FROM search.leads_fts WHERE leads_fts MATCH $1 ORDER BY rowid")
        .bind(q.fts5())
        .fetch_all(&readers(p))
        .await?;
    Ok(Some(ids))
}

/// The leads the index of weak keys alone gives for `key`: those whose key has every one of
/// its tokens (SQLite; `None` on PostgreSQL; empty for a key without tokens): for checking
/// the index against the leads' stored keys.
pub async fn indexed_weak(db: &Db, key: &str) -> Result<Option<Vec<i64>>> {
    let Db::Sqlite(p) = db else { return Ok(None) };
    let Some(expr) = domain::search::weak_key_fts5(key) else { return Ok(Some(Vec::new())) };
    let ids =
        sqlx::query_scalar("SELECT rowid FROM search.leads_weak_fts WHERE leads_weak_fts MATCH $1 ORDER BY rowid")
            .bind(expr)
            .fetch_all(&readers(p))
            .await?;
    Ok(Some(ids))
}
