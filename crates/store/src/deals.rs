//! The lead's life after routing: reassignment (L-4), acceptance or rejection by sales
//! (L-7), nurture touches and stages (L-6), conversion to a deal and its close (L-8).

use crate::audit::{self, Actor, Change};
use crate::leads::{Lead, Rules, event, get_tx};
use crate::{Db, Error, Result, Ts, Tx, on_db, on_tx};
use domain::deal::{DealInput, DealStage, NurtureStage, StageInput, TouchKind};
use serde::Serialize;
use serde_json::{Value, json};

async fn lead_or_404(tx: &mut Tx, id: i64) -> Result<Lead> {
    get_tx(tx, id).await?.ok_or(Error::NotFound)
}

async fn finish(mut tx: Tx, actor: &Actor, id: i64, before: Value, after: Value) -> Result<Lead> {
    audit::record(&mut tx, actor, Change::updated("lead", id, before, after)).await?;
    let lead = lead_or_404(&mut tx, id).await?;
    tx.commit().await?;
    Ok(lead)
}

/// L-4: a manager moves a lead to another sales owner, with a reason. The SLA clocks start
/// again for the new owner if the lead has not been answered yet.
pub async fn reassign(db: &Db, actor: &Actor, id: i64, owner_id: i64, reason: &str, rules: &Rules<'_>) -> Result<Lead> {
    let mut tx = db.begin().await?;
    let before = lead_or_404(&mut tx, id).await?;
    let owner: Option<(Option<i64>, bool, String)> = on_tx!(&mut tx, c => sqlx::query_as(
        "SELECT team_id, active, role FROM users WHERE id = $1").bind(owner_id).fetch_optional(c).await)?;
    let Some((team_id, active, role)) = owner else {
        return Err(Error::field("owner_id", format!("no user with id {owner_id}")));
    };
    if !active || !matches!(role.as_str(), "sales_rep" | "sales_manager") {
        return Err(Error::field("owner_id", "must be an active sales rep or sales manager"));
    }
    let now = actor.now;
    let (first_due, follow_due) = if before.first_response_at.is_none() {
        let due = domain::lead::sla_due(rules.playbook, rules.calendar, rules.tz, now.get())
            .map_err(|e| Error::Other(format!("cannot compute the SLA: {e}")))?;
        (Some(Ts::new(due.first_response)), Some(Ts::new(due.follow_up)))
    } else {
        (before.first_response_due, before.follow_up_due)
    };
    let sql = "UPDATE leads SET owner_id = $1, team_id = $2, route = 'sales', assigned_at = $3, first_response_due = $4, \
               follow_up_due = $5, route_reason = $6, updated_at = $3 WHERE id = $7";
    on_tx!(&mut tx, c => sqlx::query(sql).bind(owner_id).bind(team_id).bind(now).bind(first_due).bind(follow_due)
        .bind(format!("reassigned: {reason}")).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    event(&mut tx, actor, id, "reassigned", json!({"from": before.owner_id, "to": owner_id, "reason": reason})).await?;
    finish(
        tx,
        actor,
        id,
        json!({"owner_id": before.owner_id, "team_id": before.team_id}),
        json!({"owner_id": owner_id, "team_id": team_id, "reason": reason}),
    )
    .await
}

/// L-7: sales accepts a handed-off lead.
pub async fn accept(db: &Db, actor: &Actor, id: i64) -> Result<Lead> {
    let mut tx = db.begin().await?;
    let before = lead_or_404(&mut tx, id).await?;
    if before.route != "sales" || before.status != "open" {
        return Err(Error::Conflict("only an open lead handed to sales can be accepted".into()));
    }
    on_tx!(&mut tx, c => sqlx::query("UPDATE leads SET status = 'accepted', updated_at = $1 WHERE id = $2")
        .bind(actor.now).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    event(&mut tx, actor, id, "accepted", json!({"grade": before.grade, "total": before.total})).await?;
    finish(tx, actor, id, json!({"status": before.status}), json!({"status": "accepted"})).await
}

/// L-7: sales rejects a handed-off lead with a reason; it goes back to marketing to nurture,
/// and the reason feeds the monthly lead-quality review.
pub async fn reject(db: &Db, actor: &Actor, id: i64, reason: &str) -> Result<Lead> {
    let mut tx = db.begin().await?;
    let before = lead_or_404(&mut tx, id).await?;
    if before.route != "sales" || !matches!(before.status.as_str(), "open" | "accepted") {
        return Err(Error::Conflict("only a lead with sales can be rejected".into()));
    }
    let sql = "UPDATE leads SET status = 'rejected', route = 'nurture', nurture_stage = COALESCE(nurture_stage, 'awareness'), \
               updated_at = $1 WHERE id = $2";
    on_tx!(&mut tx, c => sqlx::query(sql).bind(actor.now).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    let data = json!({"reason": reason, "grade": before.grade, "total": before.total, "owner_id": before.owner_id,
        "parts": {"budget": before.budget_points, "authority": before.authority_points, "need": before.need_points, "timeline": before.timeline_points}});
    event(&mut tx, actor, id, "rejected", data).await?;
    finish(
        tx,
        actor,
        id,
        json!({"status": before.status, "route": before.route}),
        json!({"status": "rejected", "route": "nurture", "reason": reason}),
    )
    .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Touch {
    pub id: i64,
    pub lead_id: i64,
    pub at: Ts,
    pub kind: String,
    /// awareness | consideration | decision
    pub stage: String,
    pub title: Option<String>,
    pub user_id: Option<i64>,
}

/// L-6: records what a lead received; the lead moves forward to the touch's stage (never
/// back), and the move is in its history.
pub async fn touch(
    db: &Db,
    actor: &Actor,
    id: i64,
    kind: TouchKind,
    title: Option<&str>,
    rules: &Rules<'_>,
) -> Result<Touch> {
    let mut tx = db.begin().await?;
    let before = lead_or_404(&mut tx, id).await?;
    let stage = kind.stage();
    let sql = "INSERT INTO lead_touches (lead_id, at, kind, stage, title, user_id) VALUES ($1, $2, $3, $4, $5, $6) \
               RETURNING id, lead_id, at, kind, stage, title, user_id";
    let t: Touch = on_tx!(&mut tx, c => sqlx::query_as(sql)
        .bind(id).bind(actor.now).bind(kind.code()).bind(stage.code()).bind(title).bind(actor.user_id).fetch_one(c).await)?;
    let current = before.nurture_stage.as_deref().and_then(NurtureStage::parse);
    let order = |s: NurtureStage| NurtureStage::ALL.iter().position(|x| *x == s).unwrap_or(0);
    if current.is_none_or(|c| order(stage) > order(c)) {
        on_tx!(&mut tx, c => sqlx::query("UPDATE leads SET nurture_stage = $1, last_activity_at = $2, updated_at = $2 WHERE id = $3")
            .bind(stage.code()).bind(actor.now).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        event(
            &mut tx,
            actor,
            id,
            "stage",
            json!({"from": before.nurture_stage, "to": stage.code(), "touch": kind.code()}),
        )
        .await?;
        crate::automation::fire(&mut tx, domain::automation::Trigger::StageChanged, id, actor.now, rules).await?;
    } else {
        on_tx!(&mut tx, c => sqlx::query("UPDATE leads SET last_activity_at = $1 WHERE id = $2")
            .bind(actor.now).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    }
    event(&mut tx, actor, id, "touched", json!({"kind": kind.code(), "title": title})).await?;
    audit::record(
        &mut tx,
        actor,
        Change::created("lead_touch", t.id, json!({"lead_id": id, "kind": kind.code(), "title": title})),
    )
    .await?;
    tx.commit().await?;
    Ok(t)
}

pub async fn touches(db: &Db, lead_id: i64) -> Result<Vec<Touch>> {
    let sql = "SELECT id, lead_id, at, kind, stage, title, user_id FROM lead_touches WHERE lead_id = $1 ORDER BY at DESC, id DESC";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(lead_id).fetch_all(p).await)?)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deal {
    pub id: i64,
    pub lead_id: i64,
    pub name: String,
    pub amount_fen: i64,
    /// qualification | proposal | negotiation | closed_won | closed_lost
    pub stage: String,
    pub lost_reason: Option<String>,
    pub owner_id: Option<i64>,
    pub team_id: Option<i64>,
    pub company_size: Option<String>,
    /// First-touch attribution: the channel and campaign of the lead's first capture.
    pub first_channel: String,
    pub first_campaign_id: Option<i64>,
    /// Last-touch attribution: its most recent capture.
    pub last_channel: String,
    pub last_campaign_id: Option<i64>,
    pub opened_at: Ts,
    pub closed_at: Option<Ts>,
    /// Days from the lead's first capture to closed-won.
    pub cycle_days: Option<i64>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

const DEAL_COLS: &str = "id, lead_id, name, amount_fen, stage, lost_reason, owner_id, team_id, company_size, first_channel, \
    first_campaign_id, last_channel, last_campaign_id, opened_at, closed_at, cycle_days, created_at, updated_at";

fn deal_sql(tail: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("SELECT {DEAL_COLS} FROM deals {tail}"))
}

pub async fn get_deal(db: &Db, id: i64) -> Result<Option<Deal>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, Deal>(deal_sql("WHERE id = $1")).bind(id).fetch_optional(p).await)?)
}

pub async fn deal_of_lead(db: &Db, lead_id: i64) -> Result<Option<Deal>> {
    Ok(
        on_db!(db, p => sqlx::query_as::<_, Deal>(deal_sql("WHERE lead_id = $1")).bind(lead_id).fetch_optional(p).await)?,
    )
}

pub async fn list_deals(db: &Db, scope: crate::leads::Scope, limit: i64) -> Result<Vec<Deal>> {
    let (clause, v) = match scope {
        crate::leads::Scope::All => ("$1 IS NULL", None),
        crate::leads::Scope::Team(t) => ("team_id = $1", Some(t)),
        crate::leads::Scope::Owner(o) => ("owner_id = $1", Some(o)),
        crate::leads::Scope::Nothing => ("$1 IS NULL AND 1 = 0", None),
    };
    let tail = format!("WHERE {clause} ORDER BY id DESC LIMIT $2");
    Ok(on_db!(db, p => sqlx::query_as::<_, Deal>(deal_sql(&tail)).bind(v).bind(limit).fetch_all(p).await)?)
}

async fn deal_tx(tx: &mut Tx, id: i64) -> Result<Option<Deal>> {
    Ok(on_tx!(tx, c => sqlx::query_as::<_, Deal>(deal_sql("WHERE id = $1")).bind(id).fetch_optional(c).await)?)
}

/// L-8: a lead becomes a deal. Its channel and campaign are kept both as first touch (the
/// first capture) and last touch (the latest).
pub async fn convert(db: &Db, actor: &Actor, lead_id: i64, d: &DealInput) -> Result<Deal> {
    let mut tx = db.begin().await?;
    let lead = lead_or_404(&mut tx, lead_id).await?;
    if lead.status == "converted" {
        return Err(Error::Conflict("the lead is already a deal".into()));
    }
    let sources = lead.sources.as_array().cloned().unwrap_or_default();
    let pick = |s: Option<&Value>| {
        s.map_or((lead.channel.clone(), lead.campaign_id), |v| {
            (v["channel"].as_str().unwrap_or(&lead.channel).to_string(), v["campaign_id"].as_i64())
        })
    };
    let (first_channel, first_campaign) = pick(sources.first());
    let (last_channel, last_campaign) = pick(sources.last());
    let sql = format!(
        "INSERT INTO deals (lead_id, name, amount_fen, stage, owner_id, team_id, company_size, first_channel, first_campaign_id, \
         last_channel, last_campaign_id, opened_at, created_at, updated_at) VALUES ($1, $2, $3, 'qualification', $4, $5, $6, $7, \
         $8, $9, $10, $11, $11, $11) RETURNING {DEAL_COLS}"
    );
    let deal: Deal = on_tx!(&mut tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(lead_id).bind(&d.name).bind(d.amount.fen()).bind(lead.owner_id).bind(lead.team_id).bind(&lead.company_size)
        .bind(&first_channel).bind(first_campaign).bind(&last_channel).bind(last_campaign).bind(actor.now)
        .fetch_one(c).await)?;
    on_tx!(&mut tx, c => sqlx::query("UPDATE leads SET status = 'converted', updated_at = $1 WHERE id = $2")
        .bind(actor.now).bind(lead_id).execute(c).await.map(|r| r.rows_affected()))?;
    event(&mut tx, actor, lead_id, "converted", json!({"deal_id": deal.id, "amount_fen": d.amount.fen()})).await?;
    audit::record(
        &mut tx,
        actor,
        Change::created("deal", deal.id, json!({"lead_id": lead_id, "name": d.name, "amount_fen": d.amount.fen()})),
    )
    .await?;
    tx.commit().await?;
    Ok(deal)
}

/// L-8: moves a deal; closing it won records the sales cycle from the lead's first capture.
pub async fn set_stage(db: &Db, actor: &Actor, id: i64, s: &StageInput, rules: &Rules<'_>) -> Result<Deal> {
    let mut tx = db.begin().await?;
    let before = deal_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    if DealStage::parse(&before.stage).is_some_and(DealStage::is_closed) {
        return Err(Error::Conflict("the deal is closed".into()));
    }
    let lead = lead_or_404(&mut tx, before.lead_id).await?;
    let (closed_at, cycle) = match s.stage {
        DealStage::ClosedWon => {
            let c = domain::deal::sales_cycle(
                rules.playbook,
                lead.company_size.as_deref() == Some("enterprise"),
                lead.created_at.get(),
                actor.now.get(),
                rules.tz,
            );
            (Some(actor.now), Some(c))
        }
        DealStage::ClosedLost => (Some(actor.now), None),
        _ => (None, None),
    };
    let amount = s.amount.map_or(before.amount_fen, |m| m.fen());
    let sql = "UPDATE deals SET stage = $1, lost_reason = $2, amount_fen = $3, closed_at = $4, cycle_days = $5, updated_at = $6 WHERE id = $7";
    on_tx!(&mut tx, c => sqlx::query(sql).bind(s.stage.code()).bind(&s.lost_reason).bind(amount).bind(closed_at)
        .bind(cycle.as_ref().map(|c| c.days)).bind(actor.now).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    if s.stage == DealStage::ClosedLost {
        on_tx!(&mut tx, c => sqlx::query("UPDATE leads SET status = 'lost', updated_at = $1 WHERE id = $2")
            .bind(actor.now).bind(before.lead_id).execute(c).await.map(|r| r.rows_affected()))?;
    }
    event(
        &mut tx,
        actor,
        before.lead_id,
        "deal_stage",
        json!({"deal_id": id, "from": before.stage, "to": s.stage.code(),
        "lost_reason": s.lost_reason, "cycle": cycle}),
    )
    .await?;
    audit::record(
        &mut tx,
        actor,
        Change::updated(
            "deal",
            id,
            json!({"stage": before.stage, "amount_fen": before.amount_fen}),
            json!({"stage": s.stage.code(), "amount_fen": amount, "lost_reason": s.lost_reason}),
        ),
    )
    .await?;
    let after = deal_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok(after)
}
