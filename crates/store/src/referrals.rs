//! C-4 referral codes and referrals; the report's inputs (each referral with the referred
//! customer's orders inside the qualifying window and in all).

use crate::audit::{self, Actor, Change};
use crate::{Db, Error, Result, on_db, on_tx};
use domain::FieldErrors;
use domain::referral::{Referral, code as make_code};
use serde::Serialize;
use serde_json::json;

/// A customer's referral code, created the first time it is asked for; `None` when no
/// customer has that id.
pub async fn code_of(db: &Db, actor: &Actor, customer: &str) -> Result<Option<String>> {
    let Some(c) = crate::customers::get(db, customer).await? else { return Ok(None) };
    let existing: Option<String> = on_db!(db, p => sqlx::query_scalar("SELECT code FROM referral_codes WHERE customer_id = $1")
        .bind(c.id).fetch_optional(p).await)?;
    if existing.is_some() {
        return Ok(existing);
    }
    for attempt in 0..16 {
        let code = make_code(customer, attempt);
        let mut tx = db.begin().await?;
        let inserted = on_tx!(&mut tx, x => sqlx::query(
            "INSERT INTO referral_codes (customer_id, code, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(c.id).bind(&code).bind(actor.now).execute(x).await.map(|r| r.rows_affected()))?;
        if inserted == 1 {
            audit::record(&mut tx, actor, Change::created("referral_code", customer, json!({"code": code}))).await?;
            tx.commit().await?;
            return Ok(Some(code));
        }
        drop(tx);
        // Either this customer got a code meanwhile, or another customer holds this one.
        let now: Option<String> = on_db!(db, p => sqlx::query_scalar("SELECT code FROM referral_codes WHERE customer_id = $1")
            .bind(c.id).fetch_optional(p).await)?;
        if now.is_some() {
            return Ok(now);
        }
    }
    Err(Error::Other(format!("no free referral code for customer {customer}")))
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recorded {
    pub referrer: String,
    pub referred: String,
    /// YYYY-MM-DD
    pub referred_on: String,
}

/// Records that the owner of `code` referred `referred` (created when new) on `day`.
/// Unknown codes and self-referrals are errors naming the field; a customer already
/// referred by anyone is a conflict.
pub async fn refer(
    db: &Db,
    actor: &Actor,
    code: &str,
    referred: &str,
    name: Option<&str>,
    day: i64,
) -> Result<Recorded> {
    let code = domain::referral::normalise(code);
    let mut tx = db.begin().await?;
    let referrer: Option<(i64, String)> = on_tx!(&mut tx, c => sqlx::query_as(
        "SELECT c.id, c.external_id FROM referral_codes r JOIN customers c ON c.id = r.customer_id WHERE r.code = $1")
        .bind(&code).fetch_optional(c).await)?;
    let Some((referrer_id, referrer)) = referrer else {
        return Err(Error::Invalid(FieldErrors::single("code", format!("no customer has the referral code {code}"))));
    };
    if referrer == referred {
        return Err(Error::Invalid(FieldErrors::single("customer_id", "a customer cannot refer themselves")));
    }
    let existing: Option<i64> = on_tx!(&mut tx, c => sqlx::query_scalar("SELECT id FROM customers WHERE external_id = $1")
        .bind(referred).fetch_optional(c).await)?;
    let referred_id = match existing {
        Some(id) => id,
        None => on_tx!(&mut tx, c => sqlx::query_scalar(
            "INSERT INTO customers (external_id, name, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING id")
            .bind(referred).bind(name).bind(actor.now).fetch_one(c).await)?,
    };
    // A referred customer was acquired by the referral unless its orders named a channel.
    on_tx!(&mut tx, c => sqlx::query("UPDATE customers SET channel = 'referral' WHERE id = $1 AND channel IS NULL")
        .bind(referred_id).execute(c).await.map(|r| r.rows_affected()))?;
    let inserted = on_tx!(&mut tx, c => sqlx::query(
        "INSERT INTO referrals (referrer_id, referred_id, referred_day, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(referrer_id).bind(referred_id).bind(day).bind(actor.now).execute(c).await.map(|r| r.rows_affected()))?;
    if inserted == 0 {
        return Err(Error::Conflict(format!("customer {referred} was already referred")));
    }
    let out = Recorded {
        referrer: referrer.clone(),
        referred: referred.to_string(),
        referred_on: domain::order::date_of(day).to_string(),
    };
    audit::record(
        &mut tx,
        actor,
        Change::created("referral", referred, json!({"referrer": referrer, "code": code, "day": out.referred_on})),
    )
    .await?;
    tx.commit().await?;
    Ok(out)
}

/// Changes whenever a referral is recorded (a referral can set a customer's acquisition
/// channel without adding an order): the largest id.
pub async fn data_mark(db: &Db) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM referrals").fetch_one(p).await)?)
}

/// Whether any referral is stored.
pub async fn any(db: &Db) -> Result<bool> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM referrals)").fetch_one(p).await)?)
}

/// Every referral with the referred customer's orders within `qualify_days` of it and in all.
pub async fn all(db: &Db, qualify_days: i64) -> Result<Vec<Referral>> {
    let rows: Vec<(String, String, i64, i64, i64)> = on_db!(db, p => sqlx::query_as(
        "SELECT a.external_id, b.external_id, r.referred_day, \
           CAST(coalesce((SELECT sum(o.amount_fen) FROM orders o WHERE o.customer_id = r.referred_id \
             AND o.order_day >= r.referred_day AND o.order_day <= r.referred_day + $1), 0) AS BIGINT), \
           CAST(coalesce((SELECT sum(o.amount_fen) FROM orders o WHERE o.customer_id = r.referred_id), 0) AS BIGINT) \
         FROM referrals r JOIN customers a ON a.id = r.referrer_id JOIN customers b ON b.id = r.referred_id ORDER BY r.id")
        .bind(qualify_days).fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .map(|(referrer, referred, day, window_fen, total_fen)| Referral {
            referrer,
            referred,
            day,
            window_fen,
            total_fen,
        })
        .collect())
}

/// A customer's code (if it has one), who referred it, and whom it referred.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfCustomer {
    pub code: Option<String>,
    pub referred_by: Option<String>,
    pub referred: Vec<String>,
}

pub async fn of_customer(db: &Db, customer_id: i64) -> Result<OfCustomer> {
    let code: Option<String> = on_db!(db, p => sqlx::query_scalar("SELECT code FROM referral_codes WHERE customer_id = $1")
        .bind(customer_id).fetch_optional(p).await)?;
    let referred_by: Option<String> = on_db!(db, p => sqlx::query_scalar(
        "SELECT c.external_id FROM referrals r JOIN customers c ON c.id = r.referrer_id WHERE r.referred_id = $1")
        .bind(customer_id).fetch_optional(p).await)?;
    let referred: Vec<String> = on_db!(db, p => sqlx::query_scalar(
        "SELECT c.external_id FROM referrals r JOIN customers c ON c.id = r.referred_id WHERE r.referrer_id = $1 ORDER BY r.id")
        .bind(customer_id).fetch_all(p).await)?;
    Ok(OfCustomer { code, referred_by, referred })
}
