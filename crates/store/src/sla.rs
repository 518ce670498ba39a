//! L-5: lead activities, breach detection, notifications and webhooks.

use crate::audit::{self, Actor, Change};
use crate::jobs::{self, NewJob};
use crate::{Db, Error, Result, Ts, Tx, on_db, on_tx};
use domain::notify::{BreachKind, BreachNotice, Format};
use serde::Serialize;
use serde_json::{Value, json};

pub const ACTIVITY_KINDS: &[&str] = &["call", "wechat", "email", "meeting", "visit", "note"];

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activity {
    pub id: i64,
    pub lead_id: i64,
    pub at: Ts,
    /// call | wechat | email | meeting | visit | note
    pub kind: String,
    pub note: Option<String>,
    pub user_id: Option<i64>,
}

/// Records a contact with a lead: the first one is the first response (L-5); each one
/// restarts the follow-up clock (`follow_up_hours` from now).
pub async fn record_activity(
    db: &Db,
    actor: &Actor,
    lead_id: i64,
    kind: &str,
    note: Option<&str>,
    follow_up_hours: i64,
) -> Result<Activity> {
    let mut tx = db.begin().await?;
    let sql = "INSERT INTO lead_activities (lead_id, at, kind, note, user_id) VALUES ($1, $2, $3, $4, $5) \
               RETURNING id, lead_id, at, kind, note, user_id";
    let a: Activity = on_tx!(&mut tx, c => sqlx::query_as(sql)
        .bind(lead_id).bind(actor.now).bind(kind).bind(note).bind(actor.user_id).fetch_one(c).await)?;
    let follow_up = actor.now.add_secs(follow_up_hours * 3600);
    let sql = "UPDATE leads SET first_response_at = COALESCE(first_response_at, $1), last_activity_at = $1, \
               follow_up_due = CASE WHEN route = 'sales' AND status IN ('open', 'accepted') THEN $2 ELSE follow_up_due END, \
               updated_at = $1 WHERE id = $3";
    on_tx!(&mut tx, c => sqlx::query(sql).bind(actor.now).bind(follow_up).bind(lead_id).execute(c).await.map(|r| r.rows_affected()))?;
    let ev = "INSERT INTO lead_events (lead_id, at, kind, actor_id, actor_label, data) VALUES ($1, $2, 'activity', $3, $4, $5)";
    on_tx!(&mut tx, c => sqlx::query(ev).bind(lead_id).bind(actor.now).bind(actor.user_id).bind(&actor.label)
        .bind(json!({"kind": kind, "note": note})).execute(c).await.map(|r| r.rows_affected()))?;
    audit::record(
        &mut tx,
        actor,
        Change::created("lead_activity", a.id, json!({"lead_id": lead_id, "kind": kind, "note": note})),
    )
    .await?;
    tx.commit().await?;
    Ok(a)
}

pub async fn activities(db: &Db, lead_id: i64) -> Result<Vec<Activity>> {
    let sql =
        "SELECT id, lead_id, at, kind, note, user_id FROM lead_activities WHERE lead_id = $1 ORDER BY at DESC, id DESC";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(lead_id).fetch_all(p).await)?)
}

#[derive(sqlx::FromRow)]
struct Candidate {
    id: i64,
    name: Option<String>,
    company: Option<String>,
    grade: String,
    owner_id: Option<i64>,
    team_id: Option<i64>,
    first_response_due: Option<Ts>,
    first_response_at: Option<Ts>,
    follow_up_due: Option<Ts>,
}

/// Everything a scan needs to word its notices.
pub struct ScanContext<'a> {
    pub now: Ts,
    pub playbook_version: i64,
    pub tz: &'a jiff::tz::TimeZone,
    /// The base of links in notices, e.g. `https://mkt.example.com`.
    pub link_base: &'a str,
}

/// L-5: finds leads whose first response or follow-up is overdue and records each breach
/// once (the unique key on lead, kind and due time makes a second scanner's insert a no-op);
/// for a new breach it notifies the sales manager and the marketing interface person of the
/// lead's team in the app, and queues the webhooks. Returns the number of new breaches.
pub async fn scan(db: &Db, ctx: &ScanContext<'_>) -> Result<usize> {
    // Each deadline read through its partial index (migration 0021) up to now; the OR of
    // both in one WHERE read every lead.
    let sql = "SELECT id, name, company, grade, owner_id, team_id, first_response_due, first_response_at, follow_up_due \
               FROM leads WHERE id IN ( \
                 SELECT id FROM leads WHERE route = 'sales' AND status IN ('open', 'accepted') \
                   AND first_response_at IS NULL AND first_response_due <= $1 \
                 UNION \
                 SELECT id FROM leads WHERE route = 'sales' AND status IN ('open', 'accepted') AND follow_up_due <= $1) \
               AND NOT EXISTS (SELECT 1 FROM sla_breaches b WHERE b.lead_id = leads.id AND \
                 ((b.kind = 'first_response' AND b.due_at = leads.first_response_due) OR \
                  (b.kind = 'follow_up' AND b.due_at = leads.follow_up_due))) \
               ORDER BY id LIMIT 1000";
    let candidates: Vec<Candidate> = on_db!(db, p => sqlx::query_as(sql).bind(ctx.now).fetch_all(p).await)?;
    let mut n = 0;
    for c in &candidates {
        if c.first_response_at.is_none()
            && let Some(due) = c.first_response_due.filter(|d| *d <= ctx.now)
            && record_breach(db, ctx, c, BreachKind::FirstResponse, due).await?
        {
            n += 1;
        }
        if let Some(due) = c.follow_up_due.filter(|d| *d <= ctx.now)
            && record_breach(db, ctx, c, BreachKind::FollowUp, due).await?
        {
            n += 1;
        }
    }
    Ok(n)
}

async fn name_of(tx: &mut Tx, user: Option<i64>) -> Result<String> {
    let Some(id) = user else { return Ok(String::new()) };
    let n: Option<String> = on_tx!(tx, c => sqlx::query_scalar("SELECT display_name FROM users WHERE id = $1")
        .bind(id).fetch_optional(c).await)?;
    Ok(n.unwrap_or_default())
}

async fn record_breach(db: &Db, ctx: &ScanContext<'_>, c: &Candidate, kind: BreachKind, due: Ts) -> Result<bool> {
    let mut tx = db.begin().await?;
    let sql = "INSERT INTO sla_breaches (lead_id, kind, due_at, detected_at, owner_id, team_id, playbook_version) \
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (lead_id, kind, due_at) DO NOTHING RETURNING id";
    let id: Option<i64> = on_tx!(&mut tx, x => sqlx::query_scalar(sql)
        .bind(c.id).bind(kind.code()).bind(due).bind(ctx.now).bind(c.owner_id).bind(c.team_id).bind(ctx.playbook_version)
        .fetch_optional(x).await)?;
    let Some(breach_id) = id else { return Ok(false) };
    let team: Option<(String, Option<i64>, Option<i64>)> = match c.team_id {
        Some(t) => {
            on_tx!(&mut tx, x => sqlx::query_as("SELECT name, lead_user_id, interface_user_id FROM teams WHERE id = $1")
            .bind(t).fetch_optional(x).await)?
        }
        None => None,
    };
    let (team_name, manager, interface) = team.unwrap_or_default();
    let notice = BreachNotice {
        breach_id,
        kind,
        lead_id: c.id,
        lead: [c.name.clone(), c.company.clone()].into_iter().flatten().collect::<Vec<_>>().join(" · "),
        grade: c.grade.clone(),
        owner: name_of(&mut tx, c.owner_id).await?,
        team: team_name,
        due: due.get().to_zoned(ctx.tz.clone()).strftime("%Y-%m-%d %H:%M").to_string(),
        link: format!("{}/leads/{}", ctx.link_base.trim_end_matches('/'), c.id),
    };
    let data = serde_json::to_value(&notice).map_err(|e| Error::Other(e.to_string()))?;
    let mut recipients: Vec<i64> = [manager, interface].into_iter().flatten().collect();
    recipients.dedup();
    for user in recipients {
        on_tx!(&mut tx, x => sqlx::query(
            "INSERT INTO notifications (user_id, at, kind, lead_id, data) VALUES ($1, $2, 'sla_breach', $3, $4)"
        ).bind(user).bind(ctx.now).bind(c.id).bind(&data).execute(x).await.map(|r| r.rows_affected()))?;
    }
    on_tx!(&mut tx, x => sqlx::query(
        "INSERT INTO lead_events (lead_id, at, kind, actor_id, actor_label, data) VALUES ($1, $2, 'breach', NULL, 'system', $3)"
    ).bind(c.id).bind(ctx.now).bind(&data).execute(x).await.map(|r| r.rows_affected()))?;
    queue_webhooks(&mut tx, "sla_breach", &notice, ctx.now).await?;
    tx.commit().await?;
    Ok(true)
}

// ---- webhooks ----------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: i64,
    pub name: String,
    pub url: String,
    /// generic | wecom | dingtalk | feishu
    pub format: String,
    /// Comma-separated event names; `sla_breach` for now.
    pub events: String,
    pub active: bool,
    pub created_at: Ts,
    pub updated_at: Ts,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub body: Value,
    /// pending | delivered | failed
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub response_status: Option<i64>,
    pub created_at: Ts,
    pub delivered_at: Option<Ts>,
}

pub const EVENTS: &[&str] = &["sla_breach", "automation"];

/// Queues webhooks for an event with a generic body and a one-line text for the chat bots.
pub(crate) async fn queue_generic(tx: &mut Tx, event: &str, generic: Value, text: &str, now: Ts) -> Result<usize> {
    let hooks: Vec<(i64, String, String)> = on_tx!(tx, c => sqlx::query_as("SELECT id, format, events FROM webhooks WHERE active")
        .fetch_all(c).await)?;
    let mut n = 0;
    for (hook, format, events) in hooks {
        if !events.split(',').any(|e| e.trim() == event) {
            continue;
        }
        let body = match Format::parse(&format).unwrap_or(Format::Generic) {
            Format::Generic => generic.clone(),
            Format::Wecom => json!({"msgtype": "markdown", "markdown": {"content": text}}),
            Format::Dingtalk => json!({"msgtype": "markdown", "markdown": {"title": "MarketOps", "text": text}}),
            Format::Feishu => json!({"msg_type": "text", "content": {"text": text}}),
        };
        let sql = "INSERT INTO webhook_deliveries (webhook_id, event, body, status, attempts, created_at) \
                   VALUES ($1, $2, $3, 'pending', 0, $4) RETURNING id";
        let id: i64 =
            on_tx!(tx, c => sqlx::query_scalar(sql).bind(hook).bind(event).bind(&body).bind(now).fetch_one(c).await)?;
        let mut job = NewJob::new("webhook_delivery", json!({"delivery_id": id}), now);
        job.max_attempts = 6;
        jobs::enqueue_tx(tx, &job, now).await?;
        n += 1;
    }
    Ok(n)
}

async fn queue_webhooks(tx: &mut Tx, event: &str, notice: &BreachNotice, now: Ts) -> Result<()> {
    queue_generic(tx, event, notice.body(Format::Generic), &notice.text(), now).await.map(|_| ())
}

pub async fn list_webhooks(db: &Db) -> Result<Vec<Webhook>> {
    let sql = "SELECT id, name, url, format, events, active, created_at, updated_at FROM webhooks ORDER BY id";
    Ok(on_db!(db, p => sqlx::query_as(sql).fetch_all(p).await)?)
}

/// A validated webhook.
pub struct WebhookInput {
    pub name: String,
    pub url: String,
    pub format: Format,
    pub events: Vec<String>,
    pub active: bool,
}

pub async fn create_webhook(db: &Db, actor: &Actor, w: &WebhookInput) -> Result<Webhook> {
    let mut tx = db.begin().await?;
    let sql = "INSERT INTO webhooks (name, url, format, events, active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
               RETURNING id, name, url, format, events, active, created_at, updated_at";
    let hook: Webhook = on_tx!(&mut tx, c => sqlx::query_as(sql)
        .bind(&w.name).bind(&w.url).bind(w.format.code()).bind(w.events.join(",")).bind(w.active).bind(actor.now)
        .fetch_one(c).await)?;
    audit::record(
        &mut tx,
        actor,
        Change::created("webhook", hook.id, json!({"name": hook.name, "format": hook.format, "events": hook.events})),
    )
    .await?;
    tx.commit().await?;
    Ok(hook)
}

pub async fn delete_webhook(db: &Db, actor: &Actor, id: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    let n = on_tx!(&mut tx, c => sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    audit::record(&mut tx, actor, Change::deleted("webhook", id, json!({}))).await?;
    tx.commit().await
}

pub async fn deliveries(db: &Db, webhook_id: Option<i64>, limit: i64) -> Result<Vec<Delivery>> {
    let sql = "SELECT id, webhook_id, event, body, status, attempts, last_error, response_status, created_at, delivered_at \
               FROM webhook_deliveries WHERE ($1 IS NULL OR webhook_id = $1) ORDER BY id DESC LIMIT $2";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(webhook_id).bind(limit).fetch_all(p).await)?)
}

/// The URL and body of a delivery, for the sender.
pub async fn delivery_target(db: &Db, id: i64) -> Result<Option<(String, Value)>> {
    let sql = "SELECT w.url, d.body FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?)
}

/// Records an attempt: delivered, or failed with the error (and `final_attempt` marks it
/// failed for good; otherwise the job queue retries with back-off).
pub async fn record_attempt(
    db: &Db,
    id: i64,
    now: Ts,
    result: std::result::Result<u16, (Option<u16>, String)>,
    final_attempt: bool,
) -> Result<()> {
    let (status, code, err, delivered) = match &result {
        Ok(code) => ("delivered", Some(i64::from(*code)), None, Some(now)),
        Err((code, e)) => {
            (if final_attempt { "failed" } else { "pending" }, code.map(i64::from), Some(e.clone()), None)
        }
    };
    let sql = "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, response_status = $2, last_error = $3, \
               delivered_at = $4 WHERE id = $5";
    on_db!(db, p => sqlx::query(sql).bind(status).bind(code).bind(err).bind(delivered).bind(id).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

// ---- notifications and reports -----------------------------------------------------------

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    pub id: i64,
    pub at: Ts,
    pub kind: String,
    pub lead_id: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
    pub read_at: Option<Ts>,
}

pub async fn notifications(db: &Db, user_id: i64, limit: i64) -> Result<Vec<Notification>> {
    let sql =
        "SELECT id, at, kind, lead_id, data, read_at FROM notifications WHERE user_id = $1 ORDER BY id DESC LIMIT $2";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(user_id).bind(limit).fetch_all(p).await)?)
}

pub async fn unread_count(db: &Db, user_id: i64) -> Result<i64> {
    let sql = "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL";
    Ok(on_db!(db, p => sqlx::query_scalar(sql).bind(user_id).fetch_one(p).await)?)
}

pub async fn mark_read(db: &Db, user_id: i64, now: Ts) -> Result<u64> {
    let sql = "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL";
    Ok(on_db!(db, p => sqlx::query(sql).bind(now).bind(user_id).execute(p).await.map(|r| r.rows_affected()))?)
}

/// Marks everyone's notices from before `before` as read (loaded history: old news is seen).
pub async fn mark_read_before(db: &Db, before: Ts) -> Result<u64> {
    let sql = "UPDATE notifications SET read_at = at WHERE at < $1 AND read_at IS NULL";
    Ok(on_db!(db, p => sqlx::query(sql).bind(before).execute(p).await.map(|r| r.rows_affected()))?)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BreachRow {
    pub id: i64,
    pub lead_id: i64,
    /// first_response | follow_up
    pub kind: String,
    pub due_at: Ts,
    pub detected_at: Ts,
    pub owner_id: Option<i64>,
    pub team_id: Option<i64>,
    pub playbook_version: i64,
}

/// Breaches detected in `[from, until)`, for the per rep / team / month counts.
pub async fn breaches(db: &Db, from: Ts, until: Ts) -> Result<Vec<BreachRow>> {
    let sql = "SELECT id, lead_id, kind, due_at, detected_at, owner_id, team_id, playbook_version FROM sla_breaches \
               WHERE detected_at >= $1 AND detected_at < $2 ORDER BY detected_at";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(from).bind(until).fetch_all(p).await)?)
}
