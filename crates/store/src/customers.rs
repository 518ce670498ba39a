//! C-1 customers and orders; C-2 each customer's RFM aggregates (first and last order day,
//! order count, amount) kept current in the same transaction as every order write, so
//! scoring reads one row per customer and never rescans the orders.

use crate::audit::{self, Actor, Change};
use crate::{Db, Error, Result, Ts, Tx, on_db, on_tx};
use domain::clv::Purchases;
use domain::ltv::{Acquired, Active, Spent};
use domain::order::{OrderInput, day_number};
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

/// Rows per multi-row INSERT (orders: 5 columns; customers: 8).
const CHUNK: usize = 1000;

/// Sums of one customer's new orders.
#[derive(Default)]
struct Agg {
    name: Option<String>,
    count: i64,
    amount: i64,
    first: i64,
    last: i64,
    /// Amount of the orders on `first` (C-3).
    first_fen: i64,
    /// Every order's day, to count distinct purchase days (C-3).
    days: Vec<i64>,
    /// The acquisition channel: the earliest order in the batch that names one (C-3).
    channel: Option<(i64, String)>,
}

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
    let mut tx = db.begin().await?;
    let out = add_orders_tx(&mut tx, orders, actor.now, progress).await?;
    if out.created > 0 {
        let after = json!({"batch": label, "orders": out.created, "unchanged": out.unchanged, "new_customers": out.new_customers});
        audit::record(&mut tx, actor, Change::created("order_batch", label, after)).await?;
    }
    tx.commit().await?;
    Ok(out)
}

async fn is_empty(tx: &mut Tx, table: &str) -> Result<bool> {
    let sql = format!("SELECT NOT EXISTS (SELECT 1 FROM {table})");
    Ok(on_tx!(tx, c => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(c).await)?)
}

async fn add_orders_tx(
    tx: &mut Tx,
    orders: &[OrderInput],
    now: Ts,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<AddOutcome> {
    let mut out = AddOutcome::default();
    // Orders already stored, by id (skipped when there are none: a first import).
    let mut stored: HashMap<String, (String, i64, i64)> = HashMap::new();
    if !is_empty(tx, "orders").await? {
        let ids: Vec<&str> = orders.iter().map(|o| o.order_id.as_str()).collect();
        let rows: Vec<(String, String, i64, i64)> = crate::select_in!(
            tx,
            sqlx::query_as,
            "SELECT o.external_id, c.external_id, o.order_day, o.amount_fen FROM orders o \
             JOIN customers c ON c.id = o.customer_id WHERE o.external_id",
            ids
        );
        stored = rows.into_iter().map(|(o, c, d, a)| (o, (c, d, a))).collect();
    }
    let mut fresh: Vec<&OrderInput> = Vec::with_capacity(orders.len());
    let mut in_batch: HashMap<&str, &OrderInput> = HashMap::with_capacity(orders.len());
    for o in orders {
        let values = (o.customer_id.clone(), day_number(o.order_date), o.amount.fen());
        if let Some(s) = stored.get(&o.order_id) {
            if *s != values {
                return Err(conflict(&o.order_id));
            }
            out.unchanged += 1;
        } else if let Some(first) = in_batch.get(o.order_id.as_str()) {
            if **first != *o {
                return Err(conflict(&o.order_id));
            }
            out.unchanged += 1;
        } else {
            in_batch.insert(&o.order_id, o);
            fresh.push(o);
        }
    }
    let mut aggs: HashMap<&str, Agg> = HashMap::new();
    for o in &fresh {
        let day = day_number(o.order_date);
        let a = aggs.entry(o.customer_id.as_str()).or_insert(Agg { first: day, last: day, ..Agg::default() });
        a.count += 1;
        a.amount += o.amount.fen();
        if day < a.first {
            a.first_fen = 0;
        }
        if day <= a.first {
            a.first_fen += o.amount.fen();
        }
        a.first = a.first.min(day);
        a.last = a.last.max(day);
        a.days.push(day);
        if let Some(c) = &o.channel
            && a.channel.as_ref().is_none_or(|(d, _)| day < *d)
        {
            a.channel = Some((day, c.clone()));
        }
        if a.name.is_none() {
            a.name.clone_from(&o.customer_name);
        }
    }
    // Customers: the known ones move their aggregates, the new ones start with them.
    let mut ids: HashMap<String, i64> = HashMap::new();
    if !is_empty(tx, "customers").await? {
        let keys: Vec<&str> = aggs.keys().copied().collect();
        let rows: Vec<(String, i64)> =
            crate::select_in!(tx, sqlx::query_as, "SELECT external_id, id FROM customers WHERE external_id", keys);
        ids = rows.into_iter().collect();
    }
    for (ext, a) in aggs.iter().filter(|(ext, _)| ids.contains_key(**ext)) {
        let sql = "UPDATE customers SET order_count = order_count + $1, monetary_fen = monetary_fen + $2, \
                   first_order_day = CASE WHEN first_order_day IS NULL OR first_order_day > $3 THEN $3 ELSE first_order_day END, \
                   last_order_day = CASE WHEN last_order_day IS NULL OR last_order_day < $4 THEN $4 ELSE last_order_day END, \
                   name = coalesce(name, $5), channel = coalesce(channel, $6), updated_at = $7 WHERE id = $8";
        on_tx!(tx, c => sqlx::query(sql).bind(a.count).bind(a.amount).bind(a.first).bind(a.last)
            .bind(&a.name).bind(a.channel.as_ref().map(|c| c.1.clone())).bind(now).bind(ids[*ext])
            .execute(c).await.map(|r| r.rows_affected()))?;
    }
    let new: Vec<(&str, &Agg)> =
        aggs.iter().filter(|(ext, _)| !ids.contains_key(**ext)).map(|(k, v)| (*k, v)).collect();
    out.new_customers = new.len();
    let mut new_ids: std::collections::HashSet<i64> = std::collections::HashSet::with_capacity(new.len());
    for chunk in new.chunks(CHUNK) {
        let rows: Vec<(String, i64)> = on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO customers (external_id, name, first_order_day, last_order_day, order_count, monetary_fen, \
                 purchase_days, first_day_fen, channel, created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, (ext, a)| {
                b.push_bind(ext.to_string()).push_bind(a.name.clone()).push_bind(a.first).push_bind(a.last)
                    .push_bind(a.count).push_bind(a.amount).push_bind(distinct_days(&a.days)).push_bind(a.first_fen)
                    .push_bind(a.channel.as_ref().map(|c| c.1.clone())).push_bind(now).push_bind(now);
            });
            qb.push(" RETURNING external_id, id");
            qb.build_query_as().fetch_all(c).await
        })
        .map_err(Error::from)
        .map_err(|e| if e.is_unique_violation() { Error::Conflict(RACE.into()) } else { e })?;
        new_ids.extend(rows.iter().map(|r| r.1));
        ids.extend(rows);
    }
    // The table's size from its largest id (a lookup, not a count over millions of rows).
    let existing: i64 =
        on_tx!(tx, c => sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM orders").fetch_one(c).await)?;
    let deferred = crate::bulk::defer_indexes(tx, "orders", None, fresh.len(), existing).await?;
    for (n, chunk) in fresh.chunks(CHUNK).enumerate() {
        on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO orders (external_id, customer_id, order_day, amount_fen, created_at) ");
            qb.push_values(chunk, |mut b, o| {
                b.push_bind(o.order_id.clone()).push_bind(ids[&o.customer_id]).push_bind(day_number(o.order_date))
                    .push_bind(o.amount.fen()).push_bind(now);
            });
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })
        .map_err(Error::from)
        .map_err(|e| if e.is_unique_violation() { Error::Conflict(RACE.into()) } else { e })?;
        progress(out.unchanged + (n * CHUNK + chunk.len()));
    }
    if let Some(d) = deferred {
        d.rebuild(tx).await?;
    }
    // Known customers: their purchase days and first day's amount from their own orders
    // (a few rows each, by the (customer, day) index), now that the new ones are in.
    let known: Vec<i64> =
        aggs.keys().filter_map(|ext| ids.get(*ext)).copied().filter(|id| !new_ids.contains(id)).collect();
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
    out.created = fresh.len();
    Ok(out)
}

fn distinct_days(days: &[i64]) -> i64 {
    let mut d = days.to_vec();
    d.sort_unstable();
    d.dedup();
    d.len() as i64
}

const RACE: &str = "another request wrote some of these orders or customers at the same moment; send them again";

fn conflict(order_id: &str) -> Error {
    Error::Conflict(format!("order {order_id} already exists with another customer, date or amount"))
}

/// C-2 inputs as of `as_of` (a day number): recency in days, order count and amount per
/// customer with an order on or before that day. From the kept aggregates when no order is
/// later than the day; otherwise the orders up to it are summed.
///
/// The rows come back packed into one text value (fields split by U+001F, customers by
/// line breaks; ids cannot hold control characters): the driver hands each result row
/// from its database thread to ours, and for 800,000 customers those hand-offs cost more
/// than the query.
pub async fn rfm_values(db: &Db, as_of: i64) -> Result<Vec<Values>> {
    let latest = latest_order_day(db).await?;
    let (concat, sep, nl) = match db {
        Db::Sqlite(_) => ("group_concat", "char(31)", "char(10)"),
        Db::Postgres(_) => ("string_agg", "chr(31)", "chr(10)"),
    };
    let from = if latest.is_none_or(|l| l <= as_of) {
        "(SELECT external_id AS c, last_order_day AS last, order_count AS n, monetary_fen AS amount \
         FROM customers WHERE order_count > 0)"
    } else {
        "(SELECT c.external_id AS c, max(o.order_day) AS last, count(*) AS n, sum(o.amount_fen) AS amount \
         FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.order_day <= $1 GROUP BY c.external_id)"
    };
    let sql = format!("SELECT {concat}(c || {sep} || last || {sep} || n || {sep} || amount, {nl}) FROM {from} AS t");
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
