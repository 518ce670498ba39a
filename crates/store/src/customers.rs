//! C-1 customers and orders; C-2 each customer's RFM aggregates (first and last order day,
//! order count, amount) kept current in the same transaction as every order write, so
//! scoring reads one row per customer and never rescans the orders.

use crate::audit::{self, Actor, Change};
use crate::{Db, Error, Result, Ts, Tx, on_db, on_tx};
use domain::clv::Purchases;
use domain::ltv::{Acquired, Active, Spent};
use domain::order::OrderInput;
use domain::order_batch::{Batch, Sums};
use domain::rfm::Values;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddOutcome {
    /// Orders written now.
    pub created: usize,
    /// Orders already stored with the same values (a retry): left as they are.
    pub unchanged: usize,
    /// Customers seen for the first time.
    pub new_customers: usize,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Customer {
    pub id: i64,
    /// The id the customer has in the company's own systems (files and API).
    pub external_id: String,
    pub name: Option<String>,
    /// Days since 1970-01-01.
    pub first_order_day: Option<i64>,
    pub last_order_day: Option<i64>,
    pub order_count: i64,
    pub monetary_fen: i64,
    pub created_at: Ts,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    pub external_id: String,
    pub order_day: i64,
    pub amount_fen: i64,
}

/// Rows per multi-row INSERT (orders: 4 values; customers: 9).
const CHUNK: usize = 1000;

/// Adds orders idempotently by order id (C-1), in one transaction: an order already stored
/// with the same customer, date and amount is left alone (a retried batch changes nothing);
/// with other values it is a conflict and nothing is written. New customers are created;
/// each customer's aggregates move with its orders (C-2). `label` names the batch in the
/// audit log (one entry per batch, with its size).
pub async fn add_orders(
    db: &Db,
    actor: &Actor,
    orders: &[OrderInput],
    label: &str,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<AddOutcome> {
    let (batch, repeats) = Batch::from_inputs(orders).map_err(|id| conflict(&id))?;
    let mut out = add_batch(db, actor, &batch, label, progress).await?;
    out.unchanged += repeats;
    Ok(out)
}

/// `add_orders` for a checked batch (an imported file: ids already distinct).
pub async fn add_batch(
    db: &Db,
    actor: &Actor,
    batch: &Batch,
    label: &str,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<AddOutcome> {
    let mut tx = if bulk(db, batch) { db.begin_bulk(false).await? } else { db.begin().await? };
    let out = add_batch_tx(&mut tx, batch, actor.now, progress).await?;
    if out.created > 0 {
        let after = json!({"batch": label, "orders": out.created, "unchanged": out.unchanged, "new_customers": out.new_customers});
        audit::record(&mut tx, actor, Change::created("order_batch", label, after)).await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// Whether a batch is written in bulk (many orders into SQLite).
fn bulk(db: &Db, batch: &Batch) -> bool {
    matches!(db, Db::Sqlite(_)) && batch.len() >= crate::bulk::BULK_MIN
}

async fn is_empty(tx: &mut Tx, table: &str) -> Result<bool> {
    let sql = format!("SELECT NOT EXISTS (SELECT 1 FROM {table})");
    Ok(on_tx!(tx, c => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(c).await)?)
}

/// The orders of `batch` not stored yet (all of them when the table is empty); an order
/// stored with other values is a conflict.
async fn fresh_orders(tx: &mut Tx, batch: &Batch, out: &mut AddOutcome) -> Result<Option<Batch>> {
    if is_empty(tx, "orders").await? {
        return Ok(None);
    }
    let ids: Vec<&str> = batch.rows().iter().map(|r| batch.order_id(r)).collect();
    let stored: Vec<(String, String, i64, i64)> = crate::select_in!(
        tx,
        sqlx::query_as,
        "SELECT o.external_id, c.external_id, o.order_day, o.amount_fen FROM orders o \
         JOIN customers c ON c.id = o.customer_id WHERE o.external_id",
        ids
    );
    if stored.is_empty() {
        return Ok(None);
    }
    let index: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut keep = vec![true; batch.len()];
    for (order, customer, day, fen) in &stored {
        let i = index[order.as_str()];
        let r = &batch.rows()[i];
        if (batch.customer_id(r.customer), i64::from(r.day), r.fen) != (customer.as_str(), *day, *fen) {
            return Err(conflict(order));
        }
        keep[i] = false;
        out.unchanged += 1;
    }
    Ok(Some(batch.filtered(&keep)))
}

async fn add_batch_tx(tx: &mut Tx, batch: &Batch, now: Ts, progress: &(dyn Fn(usize) + Sync)) -> Result<AddOutcome> {
    let mut out = AddOutcome::default();
    let started = std::time::Instant::now();
    let phase = |what: &str| tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "orders batch: {what}");
    let filtered = fresh_orders(tx, batch, &mut out).await?;
    let batch = filtered.as_ref().unwrap_or(batch);
    let sums = batch.sums();
    phase("summed");
    // Customers of the batch by number: their stored id, 0 while unknown.
    let mut ids = vec![0i64; batch.customers()];
    let numbers: Vec<u32> = (0..batch.customers() as u32).filter(|c| sums[*c as usize].count > 0).collect();
    if !is_empty(tx, "customers").await? {
        let keys: Vec<&str> = numbers.iter().map(|c| batch.customer_id(*c)).collect();
        let rows: Vec<(String, i64)> =
            crate::select_in!(tx, sqlx::query_as, "SELECT external_id, id FROM customers WHERE external_id", keys);
        let by_key: HashMap<&str, u32> = numbers.iter().map(|c| (batch.customer_id(*c), *c)).collect();
        for (ext, id) in rows {
            ids[by_key[ext.as_str()] as usize] = id;
        }
    }
    let (known, new): (Vec<u32>, Vec<u32>) = numbers.iter().partition(|c| ids[**c as usize] != 0);
    out.new_customers = new.len();
    // Through SQLite's statement interface (`raw`), on a connection without foreign-key
    // checks (`Db::begin_bulk`): the new customers get their ids here, after the largest
    // stored one.
    let bulk = matches!(tx, Tx::Sqlite(_)) && batch.len() >= crate::bulk::BULK_MIN;
    if bulk {
        let last = last_id(tx, "customers").await?;
        for (k, c) in new.iter().enumerate() {
            ids[*c as usize] = last + 1 + k as i64;
        }
    }
    let customers = Customers { batch, sums: &sums, known: &known, new: &new, now };
    customers.write(tx, &mut ids, bulk).await?;
    phase("customers written");
    let stored_orders = last_id(tx, "orders").await?;
    let deferred = crate::bulk::defer_indexes(tx, "orders", batch.len(), stored_orders).await?;
    if bulk {
        crate::raw::with_conn(tx, |conn| {
            let rows = batch.rows();
            write_orders(
                conn,
                "INSERT OR FAIL",
                rows.len(),
                |i| (batch.order_id(&rows[i]), &rows[i]),
                customer_id_of(&ids, is_sequential(&ids)),
                |n| {
                    if n % (1 << 16) == 0 {
                        progress(out.unchanged + n);
                    }
                },
            )
        })
        .await
        .map_err(race)?;
    } else {
        for chunk in batch.rows().chunks(CHUNK) {
            on_tx!(tx, c => {
                let mut qb = sqlx::QueryBuilder::new("INSERT INTO orders (external_id, customer_id, order_day, amount_fen) ");
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(batch.order_id(r)).push_bind(ids[r.customer as usize]).push_bind(i64::from(r.day))
                        .push_bind(r.fen);
                });
                qb.build().execute(c).await.map(|r| r.rows_affected())
            })
            .map_err(Error::from)
            .map_err(race)?;
        }
    }
    progress(out.unchanged + batch.len());
    phase("orders written");
    if let Some(d) = deferred {
        d.rebuild(tx).await?;
        phase("indexes built");
    }
    customers.known_purchase_days(tx, &ids).await?;
    out.created = batch.len();
    Ok(out)
}

/// The largest id of `table` (0 when empty): its size without a count over millions of rows.
async fn last_id(tx: &mut Tx, table: &str) -> Result<i64> {
    let sql = format!("SELECT coalesce(max(id), 0) FROM {table}");
    Ok(on_tx!(tx, c => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(c).await)?)
}

/// An order's customer id from the customer's number: `ids[number]`, or computed when every
/// id is the first plus the number (customers all new to the store). Ten million orders
/// reading an 800,000-id table at random places missed the processor's caches on almost
/// every read: 1.5 s of the orders' write.
fn customer_id_of(ids: &[i64], sequential: bool) -> impl Fn(u32) -> i64 + '_ {
    let first = ids.first().copied().unwrap_or(0);
    move |n| if sequential { first + i64::from(n) } else { ids[n as usize] }
}

fn is_sequential(ids: &[i64]) -> bool {
    ids.iter().enumerate().all(|(n, id)| *id == ids[0] + n as i64)
}

/// Writes orders through SQLite's statement interface, many to a statement: order `i` is
/// `order(i)`, its customer's id `id_of(row.customer)`. `verb` is `INSERT OR FAIL` or
/// `INSERT OR IGNORE` (see `raw::write_runs`).
fn write_orders<'d>(
    conn: &crate::raw::Conn,
    verb: &str,
    n: usize,
    order: impl Fn(usize) -> (&'d str, &'d domain::order_batch::Row),
    id_of: impl Fn(u32) -> i64,
    ran: impl FnMut(usize),
) -> Result<()> {
    let insert = format!("{verb} INTO orders (external_id, customer_id, order_day, amount_fen)");
    crate::raw::write_runs(
        conn,
        &insert,
        4,
        n,
        |st, i, at| {
            let (id, r) = order(i);
            st.text(at, id)?;
            st.int(at + 1, id_of(r.customer))?;
            st.int(at + 2, r.day.into())?;
            st.int(at + 3, r.fen)
        },
        ran,
    )
}

/// A batch's customers with orders in it: the stored ones (`known`) and the new ones, by
/// number, with their sums over the batch.
struct Customers<'a> {
    batch: &'a Batch,
    sums: &'a [Sums],
    known: &'a [u32],
    new: &'a [u32],
    now: Ts,
}

const CUSTOMER_COLUMNS: &str = "external_id, name, first_order_day, last_order_day, order_count, monetary_fen, \
                                purchase_days, first_day_fen, channel, created_at, updated_at";

impl Customers<'_> {
    fn channel(&self, s: &Sums) -> Option<&str> {
        s.channel_row.and_then(|r| self.batch.channel(&self.batch.rows()[r as usize]))
    }

    /// Known customers move their aggregates; new ones are inserted with them (`bulk`:
    /// with the ids already in `ids`, through SQLite's statement interface; otherwise
    /// their ids are put in `ids`).
    async fn write(&self, tx: &mut Tx, ids: &mut [i64], bulk: bool) -> Result<()> {
        let (batch, now) = (self.batch, self.now);
        for &n in self.known {
            let s = &self.sums[n as usize];
            let sql = "UPDATE customers SET order_count = order_count + $1, monetary_fen = monetary_fen + $2, \
                       first_order_day = CASE WHEN first_order_day IS NULL OR first_order_day > $3 THEN $3 ELSE first_order_day END, \
                       last_order_day = CASE WHEN last_order_day IS NULL OR last_order_day < $4 THEN $4 ELSE last_order_day END, \
                       name = coalesce(name, $5), channel = coalesce(channel, $6), updated_at = $7 WHERE id = $8";
            on_tx!(tx, c => sqlx::query(sql).bind(s.count).bind(s.fen).bind(s.first_day).bind(s.last_day)
                .bind(batch.customer_name(n)).bind(self.channel(s)).bind(now).bind(ids[n as usize])
                .execute(c).await.map(|r| r.rows_affected()))?;
        }
        if bulk {
            let now_text = now.to_text();
            let insert = format!("INSERT OR FAIL INTO customers (id, {CUSTOMER_COLUMNS})");
            let ids = &*ids;
            return crate::raw::with_conn(tx, |conn| {
                crate::raw::write_runs(
                    conn,
                    &insert,
                    12,
                    self.new.len(),
                    |st, k, at| {
                        let c = self.new[k];
                        let s = &self.sums[c as usize];
                        st.int(at, ids[c as usize])?;
                        st.text(at + 1, batch.customer_id(c))?;
                        st.opt_text(at + 2, batch.customer_name(c))?;
                        let values = [s.first_day, s.last_day, s.count, s.fen, s.purchase_days, s.first_day_fen];
                        for (i, v) in values.into_iter().enumerate() {
                            st.int(at + 3 + i as i32, v)?;
                        }
                        st.opt_text(at + 9, self.channel(s))?;
                        st.text(at + 10, &now_text)?;
                        st.text(at + 11, &now_text)
                    },
                    |_| {},
                )
            })
            .await
            .map_err(race);
        }
        for chunk in self.new.chunks(CHUNK) {
            let rows: Vec<(String, i64)> = on_tx!(tx, c => {
                let mut qb = sqlx::QueryBuilder::new(format!("INSERT INTO customers ({CUSTOMER_COLUMNS}) "));
                qb.push_values(chunk, |mut b, n| {
                    let s = &self.sums[*n as usize];
                    b.push_bind(batch.customer_id(*n)).push_bind(batch.customer_name(*n)).push_bind(s.first_day)
                        .push_bind(s.last_day).push_bind(s.count).push_bind(s.fen).push_bind(s.purchase_days)
                        .push_bind(s.first_day_fen).push_bind(self.channel(s)).push_bind(now).push_bind(now);
                });
                qb.push(" RETURNING external_id, id");
                qb.build_query_as().fetch_all(c).await
            })
            .map_err(Error::from)
            .map_err(race)?;
            let by_key: HashMap<&str, u32> = chunk.iter().map(|c| (batch.customer_id(*c), *c)).collect();
            for (ext, id) in rows {
                ids[by_key[ext.as_str()] as usize] = id;
            }
        }
        Ok(())
    }

    /// Known customers: their purchase days and first day's amount from their own orders
    /// (a few rows each, by the (customer, day) index), once the batch's orders are in.
    async fn known_purchase_days(&self, tx: &mut Tx, ids: &[i64]) -> Result<()> {
        let known: Vec<i64> = self.known.iter().map(|c| ids[*c as usize]).collect();
        for chunk in known.chunks(CHUNK) {
            on_tx!(tx, c => {
                let mut qb = sqlx::QueryBuilder::new(
                    "UPDATE customers SET \
                     purchase_days = (SELECT count(DISTINCT o.order_day) FROM orders o WHERE o.customer_id = customers.id), \
                     first_day_fen = coalesce((SELECT sum(o.amount_fen) FROM orders o \
                         WHERE o.customer_id = customers.id AND o.order_day = customers.first_order_day), 0) \
                     WHERE id IN (",
                );
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                qb.push(")");
                qb.build().execute(c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }
}

/// C-1 a large orders file written while it is still being checked: its orders go in as
/// each part of the file is checked (`order_batch::Checker::part`), its customers and their
/// aggregates once the whole file is (`finish`); nothing is committed before then, and a
/// stream dropped unfinished (a rejected file) rolls everything back. Used on SQLite when
/// the store holds no orders yet, so that no order of the file can meet a stored one (those
/// are compared once the whole file is checked: `add_batch`). The check of ten million
/// orders (2.5–3.5 s) then runs beside their writing instead of before it.
pub struct OrderStream {
    tx: Tx,
    deferred: Option<crate::bulk::Deferred>,
    /// Customers by number: their stored id, or the id they are given.
    ids: Vec<i64>,
    /// The first id given to a new customer (stored customers have smaller ones), and the
    /// next one to give.
    fresh_from: i64,
    next: i64,
    /// The store held customers when the stream began: new numbers are looked up first.
    lookup: bool,
    /// Every id so far is `fresh_from` plus the number (see `customer_id_of`).
    sequential: bool,
    started: std::time::Instant,
}

impl OrderStream {
    /// A stream for a file of about `expected_orders` orders, or `None` when the batch is
    /// to be checked whole first (not SQLite, a small file, or orders already stored).
    pub async fn begin(db: &Db, expected_orders: usize) -> Result<Option<OrderStream>> {
        if !matches!(db, Db::Sqlite(_)) || expected_orders < crate::bulk::BULK_MIN {
            return Ok(None);
        }
        let mut tx = db.begin_bulk(false).await?;
        if !is_empty(&mut tx, "orders").await? {
            return Ok(None);
        }
        let lookup = !is_empty(&mut tx, "customers").await?;
        let fresh_from = last_id(&mut tx, "customers").await? + 1;
        let deferred = crate::bulk::defer_indexes(&mut tx, "orders", expected_orders, 0).await?;
        Ok(Some(OrderStream {
            tx,
            deferred,
            ids: Vec::new(),
            fresh_from,
            next: fresh_from,
            lookup,
            sequential: true,
            started: std::time::Instant::now(),
        }))
    }

    /// Writes a checked part's orders. Of orders with one id the first stays (as in the
    /// checked batch); its new customers get their ids.
    pub async fn write(&mut self, part: &domain::order_batch::Part) -> Result<()> {
        let OrderStream { tx, ids, fresh_from, next, lookup, sequential, .. } = self;
        crate::raw::with_conn(tx, |conn| {
            let mut find =
                if *lookup { Some(conn.prepare("SELECT id FROM customers WHERE external_id = ?1")?) } else { None };
            for (n, external) in part.new_customers() {
                debug_assert_eq!(n as usize, ids.len(), "parts come in order");
                let stored = match &mut find {
                    Some(st) => {
                        st.text_copy(1, external)?;
                        st.first_int()?
                    }
                    None => None,
                };
                let id = stored.unwrap_or_else(|| {
                    *next += 1;
                    *next - 1
                });
                *sequential &= id == *fresh_from + i64::from(n);
                ids.push(id);
            }
            let id_of = customer_id_of(ids, *sequential);
            write_orders(conn, "INSERT OR IGNORE", part.len(), |i| part.order(i), id_of, |_| {})
        })
        .await
    }

    /// The checked file's batch (every part written) in: customers written or moved, the
    /// orders' indexes built, the audit entry, the commit.
    pub async fn finish(mut self, actor: &Actor, batch: &Batch, label: &str) -> Result<AddOutcome> {
        let phase = |what: &str| {
            tracing::debug!(elapsed_ms = self.started.elapsed().as_millis() as u64, "orders stream: {what}")
        };
        phase("orders written");
        let sums = batch.sums();
        let numbers = (0..batch.customers() as u32).filter(|c| sums[*c as usize].count > 0);
        let (known, new): (Vec<u32>, Vec<u32>) = numbers.partition(|c| self.ids[*c as usize] < self.fresh_from);
        let customers = Customers { batch, sums: &sums, known: &known, new: &new, now: actor.now };
        customers.write(&mut self.tx, &mut self.ids, true).await?;
        phase("customers written");
        if let Some(d) = self.deferred.take() {
            d.rebuild(&mut self.tx).await?;
            phase("indexes built");
        }
        customers.known_purchase_days(&mut self.tx, &self.ids).await?;
        let out = AddOutcome { created: batch.len(), unchanged: 0, new_customers: new.len() };
        let after = json!({"batch": label, "orders": out.created, "unchanged": 0, "new_customers": out.new_customers});
        audit::record(&mut self.tx, actor, Change::created("order_batch", label, after)).await?;
        self.tx.commit().await?;
        Ok(out)
    }
}

/// A unique key refused by the database here means another writer got there first.
fn race(e: Error) -> Error {
    if e.is_unique_violation() || matches!(e, Error::Conflict(_)) { Error::Conflict(RACE.into()) } else { e }
}

const RACE: &str = "another request wrote some of these orders or customers at the same moment; send them again";

fn conflict(order_id: &str) -> Error {
    Error::Conflict(format!("order {order_id} already exists with another customer, date or amount"))
}

/// C-2 inputs as of `as_of` (a day number): recency in days, order count and amount per
/// customer with an order on or before that day. From the kept aggregates when no order is
/// later than the day; otherwise the orders up to it are summed.
///
/// The driver hands each result row from its database thread to ours, and for 800,000
/// customers those hand-offs cost more than the query: SQLite's rows are read through its
/// statement interface instead, PostgreSQL's come back packed into one text value (fields
/// split by U+001F, customers by line breaks; ids cannot hold control characters).
pub async fn rfm_values(db: &Db, as_of: i64) -> Result<Vec<Values>> {
    let latest = latest_order_day(db).await?;
    // SQLite: the orders read in table order (`NOT INDEXED`) and summed by the integer
    // customer key before the join; through the day index each order was a random read,
    // and grouping by the text id sorted ten million keys (10 M orders: 56 s → 16 s).
    let scan = if matches!(db, Db::Sqlite(_)) { "NOT INDEXED" } else { "" };
    let from_aggregates = latest.is_none_or(|l| l <= as_of);
    // A day shortly before the latest order (the moves "since 30 days" of the customers
    // page): the kept aggregates less the few orders after the day, each such customer's
    // last day up to it found through the (customer, day) index, instead of summing every
    // order (10 M orders: 20 s).
    let few_later = !from_aggregates && {
        let total: i64 =
            on_db!(db, p => sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM orders").fetch_one(p).await)?;
        later_orders(db, as_of).await? * 4 < total
    };
    let from = if from_aggregates {
        "(SELECT external_id AS c, last_order_day AS last, order_count AS n, monetary_fen AS amount \
         FROM customers WHERE order_count > 0)"
            .to_string()
    } else if few_later {
        "(SELECT c.external_id AS c, \
                 CASE WHEN l.customer_id IS NULL THEN c.last_order_day ELSE \
                     (SELECT max(o.order_day) FROM orders o WHERE o.customer_id = c.id AND o.order_day <= $1) END AS last, \
                 c.order_count - coalesce(l.n, 0) AS n, c.monetary_fen - coalesce(l.amount, 0) AS amount \
          FROM customers c LEFT JOIN \
              (SELECT o.customer_id, count(*) AS n, sum(o.amount_fen) AS amount FROM customers k \
               JOIN orders o ON o.customer_id = k.id AND o.order_day > $1 \
               WHERE k.last_order_day > $1 GROUP BY o.customer_id) l ON l.customer_id = c.id \
          WHERE c.order_count > coalesce(l.n, 0))"
            .to_string()
    } else {
        format!(
            "(SELECT c.external_id AS c, t.last, t.n, t.amount FROM \
              (SELECT customer_id, max(order_day) AS last, count(*) AS n, sum(amount_fen) AS amount \
               FROM orders {scan} WHERE order_day <= $1 GROUP BY customer_id) t \
             JOIN customers c ON c.id = t.customer_id)"
        )
    };
    // SQLite: read row by row through the statement interface on the reader's own
    // connection (no driver thread, no packed text); summing the orders groups millions of
    // rows, sorted through temporary files as the index builds are (`bulk`), not as one list
    // in memory (10 M orders: 33 s and 1.6 GB in memory).
    if let Db::Sqlite(p) = db {
        let read = |conn: &crate::raw::Conn, sql: &str, binds: &[i64]| {
            let mut st = conn.prepare(sql)?;
            for (i, v) in binds.iter().enumerate() {
                st.int(i as i32 + 1, *v)?;
            }
            let mut out = Vec::new();
            while st.next_row()? {
                out.push(Values {
                    customer: st.column_text(0)?,
                    recency_days: as_of - st.column(1),
                    frequency: st.column(2),
                    monetary: st.column(3),
                });
            }
            Ok(out)
        };
        if from_aggregates {
            // Two halves of the table by key, on two connections and threads.
            let (lo, hi): (i64, i64) =
                sqlx::query_as("SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM customers").fetch_one(p).await?;
            let mid = lo + (hi - lo) / 2;
            let sql = "SELECT external_id, last_order_day, order_count, monetary_fen FROM customers \
                       WHERE order_count > 0 AND id >= ?1 AND id <= ?2";
            let halves = [[lo, mid], [mid + 1, hi]];
            return crate::raw::read_parts(p, 2, |conn, part| read(conn, sql, &halves[part])).await;
        }
        let mut c = p.acquire().await?;
        sqlx::query("PRAGMA temp_store = FILE").execute(&mut *c).await?;
        let sql = format!("SELECT c, last, n, amount FROM {} AS t", from.replace("$1", "?1"));
        let rows = crate::raw::with_sqlite(&mut c, |conn| read(conn, &sql, &[as_of])).await;
        sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut *c).await?;
        return rows;
    }
    // PostgreSQL: the rows packed into one text value (one round trip instead of 800,000).
    let sql = format!(
        "SELECT string_agg(c || chr(31) || last || chr(31) || n || chr(31) || amount, chr(10)) FROM {from} AS t"
    );
    let packed: Option<String> =
        on_db!(db, p => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(as_of).fetch_one(p).await)?;
    let mut out = Vec::new();
    for line in packed.as_deref().unwrap_or("").split('\n').filter(|l| !l.is_empty()) {
        let mut f = line.split('\u{1f}');
        let (Some(customer), Some(last), Some(n), Some(amount)) = (f.next(), f.next(), f.next(), f.next()) else {
            return Err(Error::Other(format!("unreadable RFM row `{line}`")));
        };
        let num = |v: &str| v.parse::<i64>().map_err(|_| Error::Other(format!("unreadable RFM row `{line}`")));
        out.push(Values {
            customer: customer.to_string(),
            recency_days: as_of - num(last)?,
            frequency: num(n)?,
            monetary: num(amount)?,
        });
    }
    Ok(out)
}

/// How many orders are dated after `day`: those of the customers whose last order is, read
/// through the (customer, day) index.
async fn later_orders(db: &Db, day: i64) -> Result<i64> {
    let sql = "SELECT count(*) FROM customers c JOIN orders o ON o.customer_id = c.id AND o.order_day > $1 \
               WHERE c.last_order_day > $1";
    Ok(on_db!(db, p => sqlx::query_scalar(sql).bind(day).fetch_one(p).await)?)
}

/// C-3 inputs as of `as_of`: per customer with an order on or before the day, its first and
/// last order day, the number of distinct order days, the total and the first day's amount
/// (a transaction is a purchase day). From the kept aggregates when no order is later than
/// the day; otherwise from the orders up to it. Packed into one text value like `rfm_values`.
pub async fn clv_purchases(db: &Db, as_of: i64) -> Result<Vec<Purchases>> {
    let (concat, sep, nl) = match db {
        Db::Sqlite(_) => ("group_concat", "char(31)", "char(10)"),
        Db::Postgres(_) => ("string_agg", "chr(31)", "chr(10)"),
    };
    let latest = latest_order_day(db).await?;
    let sql = if latest.is_none_or(|l| l <= as_of) {
        format!(
            "SELECT {concat}(external_id || {sep} || first_order_day || {sep} || last_order_day || {sep} || purchase_days \
                    || {sep} || monetary_fen || {sep} || first_day_fen, {nl}) \
             FROM customers WHERE order_count > 0"
        )
    } else {
        format!(
            "WITH d AS (SELECT customer_id AS c, order_day AS day, sum(amount_fen) AS fen FROM orders \
                        WHERE order_day <= $1 GROUP BY customer_id, order_day), \
                  s AS (SELECT c, min(day) AS first, max(day) AS last, count(*) AS n, sum(fen) AS total FROM d GROUP BY c) \
             SELECT {concat}(cu.external_id || {sep} || s.first || {sep} || s.last || {sep} || s.n || {sep} || s.total \
                    || {sep} || d.fen, {nl}) \
             FROM s JOIN d ON d.c = s.c AND d.day = s.first JOIN customers cu ON cu.id = s.c"
        )
    };
    let packed: Option<String> =
        on_db!(db, p => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(as_of).fetch_one(p).await)?;
    let mut out = Vec::new();
    for line in packed.as_deref().unwrap_or("").split('\n').filter(|l| !l.is_empty()) {
        let bad = || Error::Other(format!("unreadable CLV row `{line}`"));
        let mut f = line.split('\u{1f}');
        let customer = f.next().ok_or_else(bad)?.to_string();
        let mut num = || f.next().and_then(|v| v.parse::<i64>().ok()).ok_or_else(bad);
        let (first_day, last_day, days, total_fen, first_day_fen) = (num()?, num()?, num()?, num()?, num()?);
        out.push(Purchases { customer, first_day, last_day, days, total_fen, first_day_fen });
    }
    Ok(out)
}

/// C-3 historical value inputs: customers by (first order day, channel), and their
/// revenue by (first order day, channel, month after the first order), summed in the
/// database so a few thousand rows come back however many orders there are.
pub async fn ltv_inputs(db: &Db) -> Result<(Vec<Acquired>, Vec<Spent>)> {
    let acquired: Vec<(i64, String, i64)> = on_db!(db, p => sqlx::query_as(
        "SELECT first_order_day, coalesce(channel, ''), count(*) FROM customers WHERE order_count > 0 \
         GROUP BY first_order_day, coalesce(channel, '')")
        .fetch_all(p).await)?;
    let spent: Vec<(i64, String, i64, i64)> = on_db!(db, p => sqlx::query_as(
        "SELECT c.first_order_day, coalesce(c.channel, ''), (o.order_day - c.first_order_day) / 30, \
                CAST(sum(o.amount_fen) AS BIGINT) \
         FROM orders o JOIN customers c ON c.id = o.customer_id \
         GROUP BY c.first_order_day, coalesce(c.channel, ''), (o.order_day - c.first_order_day) / 30")
        .fetch_all(p).await)?;
    Ok((
        acquired
            .into_iter()
            .map(|(first_day, channel, customers)| Acquired { first_day, channel, customers })
            .collect(),
        spent.into_iter().map(|(first_day, channel, month, fen)| Spent { first_day, channel, month, fen }).collect(),
    ))
}

/// C-3 subscription inputs: per first order day and month after it (0–12), the customers
/// with an order and their revenue; per first order day, the customers with an order in
/// months 12–23 (renewed).
pub async fn retention_inputs(db: &Db) -> Result<(Vec<Active>, Vec<(i64, i64)>)> {
    let active: Vec<(i64, i64, i64, i64)> = on_db!(db, p => sqlx::query_as(
        "SELECT c.first_order_day, (o.order_day - c.first_order_day) / 30 AS m, count(DISTINCT o.customer_id), \
                CAST(sum(o.amount_fen) AS BIGINT) \
         FROM orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.order_day - c.first_order_day < 390 \
         GROUP BY c.first_order_day, (o.order_day - c.first_order_day) / 30")
        .fetch_all(p).await)?;
    let renewed: Vec<(i64, i64)> = on_db!(db, p => sqlx::query_as(
        "SELECT c.first_order_day, count(DISTINCT o.customer_id) FROM orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.order_day - c.first_order_day >= 360 AND o.order_day - c.first_order_day < 720 \
         GROUP BY c.first_order_day")
        .fetch_all(p).await)?;
    Ok((
        active
            .into_iter()
            .map(|(first_day, month, customers, fen)| Active { first_day, month, customers, fen })
            .collect(),
        renewed,
    ))
}

/// Changes whenever an order or a customer is added (orders are never changed in place): the
/// largest ids, read from the end of each table's index.
pub async fn data_mark(db: &Db) -> Result<(i64, i64)> {
    let sql = "SELECT (SELECT coalesce(max(id), 0) FROM orders), (SELECT coalesce(max(id), 0) FROM customers)";
    Ok(on_db!(db, p => sqlx::query_as(sql).fetch_one(p).await)?)
}

/// The latest order day stored (the default "as of" for reports), if any order exists.
pub async fn latest_order_day(db: &Db) -> Result<Option<i64>> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT max(last_order_day) FROM customers").fetch_one(p).await)?)
}

const COLS: &str = "id, external_id, name, first_order_day, last_order_day, order_count, monetary_fen, created_at";

/// A customer by the id it has in the company's systems.
pub async fn get(db: &Db, external_id: &str) -> Result<Option<Customer>> {
    let sql = format!("SELECT {COLS} FROM customers WHERE external_id = $1");
    Ok(on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(external_id).fetch_optional(p).await)?)
}

/// Customers by id, newest first, `limit` after `before_id` (keyset pages).
pub async fn list(db: &Db, before_id: Option<i64>, limit: i64) -> Result<Vec<Customer>> {
    let sql = format!("SELECT {COLS} FROM customers WHERE id < $1 ORDER BY id DESC LIMIT $2");
    Ok(on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(before_id.unwrap_or(i64::MAX)).bind(limit).fetch_all(p).await)?)
}

/// A customer's orders, newest first.
pub async fn orders_of(db: &Db, customer_id: i64, limit: i64) -> Result<Vec<Order>> {
    let sql = "SELECT external_id, order_day, amount_fen FROM orders WHERE customer_id = $1 \
               ORDER BY order_day DESC, id DESC LIMIT $2";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(customer_id).bind(limit).fetch_all(p).await)?)
}

pub async fn count(db: &Db) -> Result<(i64, i64)> {
    let sql = "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders)";
    Ok(on_db!(db, p => sqlx::query_as(sql).fetch_one(p).await)?)
}
