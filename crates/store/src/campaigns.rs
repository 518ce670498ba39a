//! Campaigns and their cost (L-1, L-9). Cost lives in one ledger, `spend_entries`, which the
//! budgets (B-2) extend rather than duplicate.

use crate::audit::{self, Actor, Change};
use crate::{Db, Error, Result, Ts, Tx, on_db, on_tx};
use domain::campaign::{CampaignInput, SpendInput};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    /// wechat | douyin | baidu_sem | xiaohongshu | trade_show | website_form | referral | email | webinar | other
    pub channel: String,
    /// YYYY-MM-DD
    pub starts_on: Option<String>,
    pub ends_on: Option<String>,
    /// Planned cost in fen (1 CNY = 100 fen).
    pub planned_cost_fen: i64,
    /// Spent so far in fen: the sum of the campaign's ledger entries.
    pub actual_cost_fen: i64,
    pub owner_id: Option<i64>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpendEntry {
    pub id: i64,
    pub campaign_id: Option<i64>,
    /// YYYY-MM-DD
    pub spent_on: String,
    pub amount_fen: i64,
    /// ads | kol | event | vendor | content | other
    pub category: String,
    pub note: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: Ts,
}

const COLS: &str = "c.id, c.name, c.channel, c.starts_on, c.ends_on, c.planned_cost_fen, \
                    CAST(COALESCE((SELECT SUM(s.amount_fen) FROM spend_entries s WHERE s.campaign_id = c.id), 0) AS BIGINT) AS actual_cost_fen, \
                    c.owner_id, c.created_at, c.updated_at";

fn q(tail: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM campaigns c {tail}"))
}

pub async fn list(db: &Db) -> Result<Vec<Campaign>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, Campaign>(q("ORDER BY c.starts_on DESC, c.id DESC")).fetch_all(p).await)?)
}

/// Every stored campaign's id, ascending: what an import file's rows may name (L-1).
pub async fn ids(db: &Db) -> Result<Vec<i64>> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT id FROM campaigns ORDER BY id").fetch_all(p).await)?)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Campaign>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, Campaign>(q("WHERE c.id = $1")).bind(id).fetch_optional(p).await)?)
}

async fn get_tx(tx: &mut Tx, id: i64) -> Result<Option<Campaign>> {
    Ok(on_tx!(tx, c => sqlx::query_as::<_, Campaign>(q("WHERE c.id = $1")).bind(id).fetch_optional(c).await)?)
}

fn audit_json(c: &Campaign) -> serde_json::Value {
    json!({"name": c.name, "channel": c.channel, "starts_on": c.starts_on, "ends_on": c.ends_on,
           "planned_cost_fen": c.planned_cost_fen, "owner_id": c.owner_id})
}

pub async fn create(db: &Db, actor: &Actor, c: &CampaignInput) -> Result<Campaign> {
    let mut tx = db.begin().await?;
    crate::org::check_user_ref(&mut tx, "owner_id", c.owner_id).await?;
    let sql = "INSERT INTO campaigns (name, channel, starts_on, ends_on, planned_cost_fen, owner_id, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id";
    let id: i64 = on_tx!(&mut tx, x => sqlx::query_scalar(sql)
        .bind(&c.name).bind(c.channel.code()).bind(c.starts_on.map(|d| d.to_string())).bind(c.ends_on.map(|d| d.to_string()))
        .bind(c.planned_cost.fen()).bind(c.owner_id).bind(actor.now).fetch_one(x).await)?;
    let created = get_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change::created("campaign", id, audit_json(&created))).await?;
    tx.commit().await?;
    Ok(created)
}

pub async fn update(db: &Db, actor: &Actor, id: i64, c: &CampaignInput) -> Result<Campaign> {
    let mut tx = db.begin().await?;
    let before = get_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    crate::org::check_user_ref(&mut tx, "owner_id", c.owner_id).await?;
    let sql = "UPDATE campaigns SET name = $1, channel = $2, starts_on = $3, ends_on = $4, planned_cost_fen = $5, \
               owner_id = $6, updated_at = $7 WHERE id = $8";
    on_tx!(&mut tx, x => sqlx::query(sql)
        .bind(&c.name).bind(c.channel.code()).bind(c.starts_on.map(|d| d.to_string())).bind(c.ends_on.map(|d| d.to_string()))
        .bind(c.planned_cost.fen()).bind(c.owner_id).bind(actor.now).bind(id).execute(x).await.map(|r| r.rows_affected()))?;
    let after = get_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change::updated("campaign", id, audit_json(&before), audit_json(&after))).await?;
    tx.commit().await?;
    Ok(after)
}

/// Records money spent on a campaign.
pub async fn add_spend(db: &Db, actor: &Actor, campaign_id: i64, x: &SpendInput) -> Result<SpendEntry> {
    let mut tx = db.begin().await?;
    get_tx(&mut tx, campaign_id).await?.ok_or(Error::NotFound)?;
    let sql = "INSERT INTO spend_entries (campaign_id, spent_on, amount_fen, category, note, created_by, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7) \
               RETURNING id, campaign_id, spent_on, amount_fen, category, note, created_by, created_at";
    let e: SpendEntry = on_tx!(&mut tx, c => sqlx::query_as(sql)
        .bind(campaign_id).bind(x.spent_on.to_string()).bind(x.amount.fen()).bind(x.category).bind(&x.note)
        .bind(actor.user_id).bind(actor.now).fetch_one(c).await)?;
    let after = json!({"campaign_id": campaign_id, "spent_on": e.spent_on, "amount_fen": e.amount_fen,
                       "category": e.category, "note": e.note});
    audit::record(&mut tx, actor, Change::created("spend_entry", e.id, after)).await?;
    tx.commit().await?;
    Ok(e)
}

pub async fn spend(db: &Db, campaign_id: i64) -> Result<Vec<SpendEntry>> {
    let sql = "SELECT id, campaign_id, spent_on, amount_fen, category, note, created_by, created_at FROM spend_entries \
               WHERE campaign_id = $1 ORDER BY spent_on, id";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(campaign_id).fetch_all(p).await)?)
}
