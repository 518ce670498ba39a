//! C-3 subscriptions of subscription businesses, stored idempotently by subscription id:
//! resending one with the same values changes nothing, resending it with an end date it did
//! not have records its end (a cancellation), any other change is a conflict. The cohort
//! figures read them back as `domain::subscription::Sub`.

use crate::audit::{self, Actor, Change};
use crate::{Db, Error, Result, on_db, on_tx};
use domain::subscription::{Sub, SubscriptionInput};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubsOutcome {
    /// Subscriptions written now.
    pub created: usize,
    /// Subscriptions stored without an end that now have one.
    pub ended: usize,
    /// Already stored with the same values: left as they are.
    pub unchanged: usize,
    /// Customers seen for the first time.
    pub new_customers: usize,
}

/// A stored subscription as a customer's page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stored {
    pub subscription_id: String,
    pub plan: String,
    pub start_day: i64,
    pub end_day: Option<i64>,
    pub mrr_fen: i64,
}

/// Stores a batch in one transaction: all of it, or nothing when one subscription conflicts
/// with what is stored (or with another of the batch).
pub async fn add(db: &Db, actor: &Actor, subs: &[SubscriptionInput]) -> Result<SubsOutcome> {
    let mut out = SubsOutcome::default();
    let mut seen: std::collections::HashMap<&str, &SubscriptionInput> = Default::default();
    let mut tx = db.begin().await?;
    for s in subs {
        if let Some(prev) = seen.insert(&s.subscription_id, s) {
            if prev != s {
                return Err(conflict(&s.subscription_id));
            }
            out.unchanged += 1;
            continue;
        }
        let customer: Option<i64> = on_tx!(&mut tx, c => sqlx::query_scalar("SELECT id FROM customers WHERE external_id = $1")
            .bind(&s.customer_id).fetch_optional(c).await)?;
        let customer = match customer {
            Some(id) => id,
            None => {
                out.new_customers += 1;
                on_tx!(&mut tx, c => sqlx::query_scalar(
                    "INSERT INTO customers (external_id, created_at, updated_at) VALUES ($1, $2, $2) RETURNING id")
                    .bind(&s.customer_id).bind(actor.now).fetch_one(c).await)?
            }
        };
        let stored: Option<(i64, i64, String, i64, Option<i64>, i64)> = on_tx!(&mut tx, c => sqlx::query_as(
            "SELECT id, customer_id, plan, start_day, end_day, mrr_fen FROM subscriptions WHERE external_id = $1")
            .bind(&s.subscription_id).fetch_optional(c).await)?;
        let mine = (customer, s.plan.as_str(), s.start_day(), s.mrr.fen());
        match stored {
            None => {
                let n = on_tx!(&mut tx, c => sqlx::query(
                    "INSERT INTO subscriptions (external_id, customer_id, plan, start_day, end_day, mrr_fen, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING")
                    .bind(&s.subscription_id).bind(customer).bind(&s.plan).bind(s.start_day()).bind(s.end_day())
                    .bind(s.mrr.fen()).bind(actor.now).execute(c).await.map(|r| r.rows_affected()))?;
                if n == 0 {
                    return Err(conflict(&s.subscription_id));
                }
                out.created += 1;
            }
            Some((id, cu, plan, start, end, mrr)) if (cu, plan.as_str(), start, mrr) == mine => {
                if end == s.end_day() {
                    out.unchanged += 1;
                } else if end.is_none() {
                    on_tx!(&mut tx, c => sqlx::query("UPDATE subscriptions SET end_day = $1, updated_at = $2 WHERE id = $3")
                        .bind(s.end_day()).bind(actor.now).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
                    out.ended += 1;
                } else {
                    return Err(conflict(&s.subscription_id));
                }
            }
            Some(_) => return Err(conflict(&s.subscription_id)),
        }
    }
    if out.created + out.ended > 0 {
        let label = format!("api:{}", subs.len());
        let after = json!({"created": out.created, "ended": out.ended, "unchanged": out.unchanged,
            "new_customers": out.new_customers});
        audit::record(&mut tx, actor, Change::created("subscription_batch", &label, after)).await?;
    }
    tx.commit().await?;
    Ok(out)
}

fn conflict(id: &str) -> Error {
    Error::Conflict(format!(
        "subscription {id} is stored with other values (only an end date may be added to a running one)"
    ))
}

/// Every subscription, for the cohort figures.
pub async fn all(db: &Db) -> Result<Vec<Sub>> {
    let rows: Vec<(i64, i64, Option<i64>, i64)> = on_db!(db, p => sqlx::query_as(
        "SELECT customer_id, start_day, end_day, mrr_fen FROM subscriptions ORDER BY id").fetch_all(p).await)?;
    Ok(rows.into_iter().map(|(customer, start, end, mrr_fen)| Sub { customer, start, end, mrr_fen }).collect())
}

/// A customer's subscriptions, newest first.
pub async fn of_customer(db: &Db, customer_id: i64) -> Result<Vec<Stored>> {
    Ok(on_db!(db, p => sqlx::query_as(
        "SELECT external_id AS subscription_id, plan, start_day, end_day, mrr_fen FROM subscriptions \
         WHERE customer_id = $1 ORDER BY start_day DESC, id DESC").bind(customer_id).fetch_all(p).await)?)
}

/// Changes whenever a subscription is added or ended.
pub async fn data_mark(db: &Db) -> Result<(i64, i64)> {
    Ok(on_db!(db, p => sqlx::query_as(
        "SELECT coalesce(max(id), 0), count(end_day) FROM subscriptions").fetch_one(p).await)?)
}
