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

/// Each referral with the referred customer's orders within `qualify_days` of it and in
/// all, and the rewards paid on it; `$2` narrows to one referral when not 0.
const REFERRALS: &str = "SELECT r.id, a.external_id, b.external_id, r.referred_day, \
       CAST(coalesce((SELECT sum(o.amount_fen) FROM orders o WHERE o.customer_id = r.referred_id \
         AND o.order_day >= r.referred_day AND o.order_day <= r.referred_day + $1), 0) AS BIGINT), \
       CAST(coalesce((SELECT sum(o.amount_fen) FROM orders o WHERE o.customer_id = r.referred_id), 0) AS BIGINT), \
       r.paid_referrer_fen, r.paid_referred_fen \
     FROM referrals r JOIN customers a ON a.id = r.referrer_id JOIN customers b ON b.id = r.referred_id \
     WHERE $2 = 0 OR r.id = $2 ORDER BY r.id";

type ReferralRow = (i64, String, String, i64, i64, i64, i64, i64);

fn referral(
    (id, referrer, referred, day, window_fen, total_fen, paid_referrer_fen, paid_referred_fen): ReferralRow,
) -> Referral {
    Referral { id, referrer, referred, day, window_fen, total_fen, paid_referrer_fen, paid_referred_fen }
}

/// Every referral with the referred customer's orders within `qualify_days` of it and in
/// all, and what was paid on it.
pub async fn all(db: &Db, qualify_days: i64) -> Result<Vec<Referral>> {
    let rows: Vec<ReferralRow> =
        on_db!(db, p => sqlx::query_as(REFERRALS).bind(qualify_days).bind(0i64).fetch_all(p).await)?;
    Ok(rows.into_iter().map(referral).collect())
}

/// A payout recorded (C-4).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payout {
    pub referral_id: i64,
    pub referrer: String,
    pub referred: String,
    /// Paid now to the referrer and to the referred customer (fen).
    pub referrer_fen: i64,
    pub referred_fen: i64,
    pub reference: Option<String>,
    /// The playbook version whose rule decided the amounts.
    pub playbook_version: i64,
}

/// Pays what the rule says is owed on referral `id` as of `today` (a day number): the
/// amounts are decided by `domain::referral::payout` on the referral as stored in this
/// transaction, recorded with the rule's playbook version, and the referral's running
/// totals moved only if no other payout moved them first. `NotFound` for an unknown
/// referral, `Conflict` (with the reason) when nothing is owed.
pub async fn pay(
    db: &Db,
    actor: &Actor,
    id: i64,
    rule: &domain::referral::Rule,
    playbook_version: i64,
    today: i64,
    reference: Option<&str>,
) -> Result<Payout> {
    use domain::referral::{Refused, payout};
    let mut tx = db.begin().await?;
    let row: Option<ReferralRow> =
        on_tx!(&mut tx, c => sqlx::query_as(REFERRALS).bind(rule.qualify_days).bind(id).fetch_optional(c).await)?;
    let r = referral(row.ok_or(Error::NotFound)?);
    let (referrer_fen, referred_fen) = payout(rule, &r, today).map_err(|e| {
        Error::Conflict(match e {
            Refused::NotQualified("window_open") => {
                "the referral has not qualified yet: the referred customer's orders are below the minimum and the window is open".into()
            }
            Refused::NotQualified(_) => "the referral did not qualify: the referred customer's orders in the window stayed below the minimum".into(),
            Refused::PaidInFull => "every reward of this referral has been paid".into(),
        })
    })?;
    let moved = on_tx!(&mut tx, c => sqlx::query(
        "UPDATE referrals SET paid_referrer_fen = paid_referrer_fen + $1, paid_referred_fen = paid_referred_fen + $2 \
         WHERE id = $3 AND paid_referrer_fen = $4 AND paid_referred_fen = $5")
        .bind(referrer_fen).bind(referred_fen).bind(id).bind(r.paid_referrer_fen).bind(r.paid_referred_fen)
        .execute(c).await.map(|x| x.rows_affected()))?;
    if moved == 0 {
        return Err(Error::Conflict(
            "another payout of this referral was recorded meanwhile; reload and check what is owed".into(),
        ));
    }
    on_tx!(&mut tx, c => sqlx::query(
        "INSERT INTO referral_payouts (referral_id, referrer_fen, referred_fen, reference, playbook_version, paid_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(id).bind(referrer_fen).bind(referred_fen).bind(reference).bind(playbook_version).bind(&actor.label).bind(actor.now)
        .execute(c).await.map(|x| x.rows_affected()))?;
    let out = Payout {
        referral_id: id,
        referrer: r.referrer,
        referred: r.referred,
        referrer_fen,
        referred_fen,
        reference: reference.map(str::to_string),
        playbook_version,
    };
    audit::record(
        &mut tx,
        actor,
        Change::created("referral_payout", &out.referred, serde_json::to_value(&out).unwrap_or_default()),
    )
    .await?;
    tx.commit().await?;
    Ok(out)
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
