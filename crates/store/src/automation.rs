//! L-10: automation rules, their runs and follow-up tasks.
//!
//! An event on a lead queues one job per matching rule, to run after the rule's delay (the
//! job's dedup key makes it once per rule, lead and event). When the job runs, the rule's
//! conditions are checked against the lead as it is then — "no sign-up after 3 days" means
//! no sign-up by the time the 3 days are over — and the action is taken and logged.

use crate::audit::{self, Actor, Change};
use crate::jobs::{self, NewJob};
use crate::leads::{Rules, event};
use crate::{Db, Error, Result, Ts, Tx, on_db, on_tx};
use domain::automation::{Conditions, DelayUnit, Facts, Rule, RuleAction, Trigger};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleRow {
    pub id: i64,
    pub name: String,
    /// lead_created | grade_changed | stage_changed | form_submitted | trial_started | trial_finished | no_activity
    pub event: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub conditions: Value,
    pub delay_amount: Option<i64>,
    /// minutes | hours | days | working_hours | working_days
    pub delay_unit: String,
    /// A playbook key the delay is read from.
    pub delay_key: Option<String>,
    /// create_task | move_stage | notify | send_content | send_webhook
    pub action: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Value,
    pub enabled: bool,
    /// Who made the rule; gets the tasks of leads that have no owner or team.
    pub owner_id: Option<i64>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

impl RuleRow {
    pub fn to_rule(&self) -> Option<Rule> {
        Some(Rule {
            name: self.name.clone(),
            event: Trigger::parse(&self.event)?,
            conditions: serde_json::from_value::<Conditions>(self.conditions.clone()).unwrap_or_default(),
            delay_amount: self.delay_amount,
            delay_unit: DelayUnit::parse(&self.delay_unit)?,
            delay_key: self.delay_key.clone(),
            action: RuleAction::parse(&self.action)?,
            params: self.params.clone(),
            enabled: self.enabled,
        })
    }
}

const RULE_COLS: &str = "id, name, event, conditions, delay_amount, delay_unit, delay_key, action, params, enabled, owner_id, \
    created_at, updated_at";

pub async fn list_rules(db: &Db) -> Result<Vec<RuleRow>> {
    let sql = format!("SELECT {RULE_COLS} FROM automation_rules ORDER BY id");
    Ok(on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).fetch_all(p).await)?)
}

async fn rule_tx(tx: &mut Tx, id: i64) -> Result<Option<RuleRow>> {
    let sql = format!("SELECT {RULE_COLS} FROM automation_rules WHERE id = $1");
    Ok(on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(c).await)?)
}

pub async fn create_rule(db: &Db, actor: &Actor, r: &Rule) -> Result<RuleRow> {
    let mut tx = db.begin().await?;
    let sql = format!(
        "INSERT INTO automation_rules (name, event, conditions, delay_amount, delay_unit, delay_key, action, params, enabled, owner_id, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $10, $10) RETURNING {RULE_COLS}"
    );
    let conditions = serde_json::to_value(&r.conditions).map_err(|e| Error::Other(e.to_string()))?;
    let row: RuleRow = on_tx!(&mut tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(&r.name).bind(r.event.code()).bind(&conditions).bind(r.delay_amount).bind(r.delay_unit.code()).bind(&r.delay_key)
        .bind(r.action.code()).bind(&r.params).bind(r.enabled).bind(actor.now).bind(actor.user_id).fetch_one(c).await)?;
    audit::record(
        &mut tx,
        actor,
        Change::created(
            "automation_rule",
            row.id,
            json!({"name": r.name, "event": r.event.code(), "action": r.action.code()}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn set_enabled(db: &Db, actor: &Actor, id: i64, enabled: bool) -> Result<RuleRow> {
    let mut tx = db.begin().await?;
    let before = rule_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    on_tx!(&mut tx, c => sqlx::query("UPDATE automation_rules SET enabled = $1, updated_at = $2 WHERE id = $3")
        .bind(enabled).bind(actor.now).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    audit::record(
        &mut tx,
        actor,
        Change::updated("automation_rule", id, json!({"enabled": before.enabled}), json!({"enabled": enabled})),
    )
    .await?;
    let after = rule_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok(after)
}

pub async fn delete_rule(db: &Db, actor: &Actor, id: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    let before = rule_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    on_tx!(&mut tx, c => sqlx::query("DELETE FROM automation_rules WHERE id = $1").bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    audit::record(&mut tx, actor, Change::deleted("automation_rule", id, json!({"name": before.name}))).await?;
    tx.commit().await
}

/// Whether any enabled rule reacts to `trigger` (bulk imports skip the per-lead check otherwise).
pub async fn has_rules(tx: &mut Tx, trigger: Trigger) -> Result<bool> {
    let n: i64 = on_tx!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM automation_rules WHERE enabled AND event = $1")
        .bind(trigger.code()).fetch_one(c).await)?;
    Ok(n > 0)
}

/// Queues the enabled rules reacting to `trigger` for this lead, each to run after its delay.
pub async fn fire(tx: &mut Tx, trigger: Trigger, lead_id: i64, at: Ts, rules: &Rules<'_>) -> Result<usize> {
    let sql = format!("SELECT {RULE_COLS} FROM automation_rules WHERE enabled AND event = $1");
    let matching: Vec<RuleRow> =
        on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(trigger.code()).fetch_all(c).await)?;
    let mut n = 0;
    for row in matching {
        let Some(rule) = row.to_rule() else { continue };
        let due = Ts::new(rule.due(rules.playbook, rules.calendar, rules.tz, at.get()));
        let job = NewJob::new("automation_run", json!({"rule_id": row.id, "lead_id": lead_id, "trigger_at": at}), due)
            .dedup(format!("auto:{}:{}:{}", row.id, lead_id, at.get().as_microsecond()));
        if jobs::enqueue_tx(tx, &job, at).await?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    pub id: i64,
    pub rule_id: i64,
    pub lead_id: i64,
    pub at: Ts,
    /// done | skipped
    pub status: String,
    /// For a done run, the action taken (create_task | move_stage | notify | send_content |
    /// send_webhook); for a skipped one, why: rule_disabled | lead_closed | conditions_unmet.
    pub detail: String,
}

pub async fn runs(db: &Db, lead_id: i64) -> Result<Vec<Run>> {
    let sql =
        "SELECT id, rule_id, lead_id, at, status, detail FROM automation_runs WHERE lead_id = $1 ORDER BY id DESC";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(lead_id).fetch_all(p).await)?)
}

pub async fn count_runs(db: &Db) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM automation_runs").fetch_one(p).await)?)
}

pub async fn runs_of_rule(db: &Db, rule_id: i64, limit: i64) -> Result<Vec<Run>> {
    let sql = "SELECT id, rule_id, lead_id, at, status, detail FROM automation_runs WHERE rule_id = $1 ORDER BY id DESC LIMIT $2";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(rule_id).bind(limit).fetch_all(p).await)?)
}

async fn record_run(tx: &mut Tx, rule_id: i64, lead_id: i64, now: Ts, status: &str, detail: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("INSERT INTO automation_runs (rule_id, lead_id, at, status, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(rule_id).bind(lead_id).bind(now).bind(status).bind(detail).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Runs a queued rule for a lead: checks its conditions now, takes its action, logs the run.
pub async fn run(db: &Db, rule_id: i64, lead_id: i64, trigger_at: Ts, now: Ts) -> Result<String> {
    let mut tx = db.begin().await?;
    let Some(row) = rule_tx(&mut tx, rule_id).await? else { return Ok("the rule was deleted".into()) };
    let Some(lead) = crate::leads::get_tx(&mut tx, lead_id).await? else { return Ok("the lead was deleted".into()) };
    let Some(rule) = row.to_rule() else { return Err(Error::Other(format!("rule {rule_id} is not valid"))) };
    let signal = match &rule.conditions.without {
        Some(sig) => {
            let n: i64 = on_tx!(&mut tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM lead_events WHERE lead_id = $1 AND kind = $2 AND at >= $3")
                .bind(lead_id).bind(sig).bind(trigger_at).fetch_one(c).await)?;
            n > 0
        }
        None => false,
    };
    let facts = Facts { grade: &lead.grade, channel: &lead.channel, route: &lead.route, signal_since_trigger: signal };
    // The detail is a code (the UI words it in the reader's language); the summary is for the log.
    let (status, detail, summary) = if !rule.enabled {
        ("skipped", "rule_disabled", "the rule is disabled".to_string())
    } else if matches!(lead.status.as_str(), "converted" | "lost") {
        ("skipped", "lead_closed", format!("the lead is {}", lead.status))
    } else if !rule.conditions.hold(&facts) {
        ("skipped", "conditions_unmet", "the conditions no longer hold".to_string())
    } else {
        ("done", rule.action.code(), act(&mut tx, &rule, (rule_id, row.owner_id), &lead, now).await?)
    };
    record_run(&mut tx, rule_id, lead_id, now, status, detail).await?;
    let system = Actor::system(now);
    event(
        &mut tx,
        &system,
        lead_id,
        "automation",
        json!({"rule_id": rule_id, "rule": rule.name, "status": status, "detail": detail, "summary": summary}),
    )
    .await?;
    tx.commit().await?;
    Ok(format!("{status}: {summary}"))
}

async fn act(
    tx: &mut Tx,
    rule: &Rule,
    (rule_id, rule_owner): (i64, Option<i64>),
    lead: &crate::leads::Lead,
    now: Ts,
) -> Result<String> {
    let p = |k: &str| rule.params.get(k).and_then(Value::as_str).map(str::to_string);
    let team: Option<(Option<i64>, Option<i64>)> = match lead.team_id {
        Some(t) => {
            on_tx!(tx, c => sqlx::query_as("SELECT lead_user_id, interface_user_id FROM teams WHERE id = $1").bind(t).fetch_optional(c).await)?
        }
        None => None,
    };
    let (manager, interface) = team.unwrap_or_default();
    match rule.action {
        RuleAction::CreateTask => {
            let assignee = lead.owner_id.or(interface).or(rule_owner);
            let title = p("title").unwrap_or_else(|| rule.name.clone());
            on_tx!(tx, c => sqlx::query("INSERT INTO tasks (lead_id, assignee_id, title, script, due_at, rule_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(lead.id).bind(assignee).bind(&title).bind(p("script")).bind(now.add_secs(86_400)).bind(rule_id).bind(now)
                .execute(c).await.map(|r| r.rows_affected()))?;
            Ok(format!("task «{title}» for user {}", assignee.map_or_else(|| "-".into(), |a| a.to_string())))
        }
        RuleAction::MoveStage => {
            let stage = p("stage").unwrap_or_else(|| "awareness".into());
            on_tx!(tx, c => sqlx::query("UPDATE leads SET nurture_stage = $1, updated_at = $2 WHERE id = $3")
                .bind(&stage).bind(now).bind(lead.id).execute(c).await.map(|r| r.rows_affected()))?;
            Ok(format!("stage {} → {stage}", lead.nurture_stage.clone().unwrap_or_default()))
        }
        RuleAction::Notify => {
            let mut to: Vec<i64> = [lead.owner_id, manager, interface].into_iter().flatten().collect();
            to.sort_unstable();
            to.dedup();
            let data = json!({"kind": "automation", "rule": rule.name, "message": p("message"), "lead": lead.name.clone().or_else(|| lead.company.clone()), "grade": lead.grade});
            for u in &to {
                on_tx!(tx, c => sqlx::query("INSERT INTO notifications (user_id, at, kind, lead_id, data) VALUES ($1, $2, 'automation', $3, $4)")
                    .bind(*u).bind(now).bind(lead.id).bind(&data).execute(c).await.map(|r| r.rows_affected()))?;
            }
            Ok(format!("notified {} people", to.len()))
        }
        RuleAction::SendContent => {
            let title = p("title").unwrap_or_else(|| rule.name.clone());
            on_tx!(tx, c => sqlx::query("INSERT INTO lead_touches (lead_id, at, kind, stage, title, user_id) VALUES ($1, $2, 'content', $3, $4, NULL)")
                .bind(lead.id).bind(now).bind(lead.nurture_stage.clone().unwrap_or_else(|| "awareness".into())).bind(&title)
                .execute(c).await.map(|r| r.rows_affected()))?;
            on_tx!(tx, c => sqlx::query("UPDATE leads SET last_activity_at = $1 WHERE id = $2").bind(now).bind(lead.id).execute(c).await.map(|r| r.rows_affected()))?;
            Ok(format!("content «{title}» sent"))
        }
        RuleAction::SendWebhook => {
            let n = crate::sla::queue_generic(
                tx,
                "automation",
                json!({"event": "automation", "rule": rule.name, "lead_id": lead.id,
                "lead": lead.name.clone().or_else(|| lead.company.clone()), "grade": lead.grade}),
                &format!("【自动化】{}：{}", rule.name, lead.name.clone().unwrap_or_default()),
                now,
            )
            .await?;
            Ok(format!("{n} webhook(s) queued"))
        }
    }
}

/// The daily dormancy check: leads without activity for a `no_activity` rule's delay get its
/// action, once per quiet spell (a later activity starts a new spell; content the rule sends
/// is activity too, so a run at the same instant as the last activity begins the next spell).
pub async fn dormant_scan(db: &Db, now: Ts, pb: &domain::playbook::Playbook) -> Result<usize> {
    let rules: Vec<RuleRow> =
        list_rules(db).await?.into_iter().filter(|r| r.enabled && r.event == Trigger::NoActivity.code()).collect();
    let mut n = 0;
    for row in rules {
        let Some(rule) = row.to_rule() else { continue };
        let cutoff = now.add_secs(-rule.dormant_secs(pb));
        let sql = "SELECT id, last_activity_at FROM leads WHERE status IN ('open', 'accepted', 'rejected') AND last_activity_at <= $1 \
                   AND NOT EXISTS (SELECT 1 FROM automation_runs r WHERE r.rule_id = $2 AND r.lead_id = leads.id AND r.at > leads.last_activity_at) \
                   ORDER BY id LIMIT 5000";
        let quiet: Vec<(i64, Ts)> = on_db!(db, p => sqlx::query_as(sql).bind(cutoff).bind(row.id).fetch_all(p).await)?;
        for (lead_id, since) in quiet {
            run(db, row.id, lead_id, since, now).await?;
            n += 1;
        }
    }
    Ok(n)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: i64,
    pub lead_id: i64,
    pub assignee_id: Option<i64>,
    pub title: String,
    /// The script (话术) to use.
    pub script: Option<String>,
    pub due_at: Option<Ts>,
    pub done_at: Option<Ts>,
    pub rule_id: Option<i64>,
    pub created_at: Ts,
}

pub async fn tasks_of_lead(db: &Db, lead_id: i64) -> Result<Vec<Task>> {
    let sql = "SELECT id, lead_id, assignee_id, title, script, due_at, done_at, rule_id, created_at FROM tasks WHERE lead_id = $1 ORDER BY id DESC";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(lead_id).fetch_all(p).await)?)
}

pub async fn open_tasks(db: &Db, user_id: i64) -> Result<Vec<Task>> {
    let sql = "SELECT id, lead_id, assignee_id, title, script, due_at, done_at, rule_id, created_at FROM tasks \
               WHERE assignee_id = $1 AND done_at IS NULL ORDER BY due_at, id";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(user_id).fetch_all(p).await)?)
}

pub async fn complete_task(db: &Db, actor: &Actor, id: i64) -> Result<Task> {
    let mut tx = db.begin().await?;
    let n = on_tx!(&mut tx, c => sqlx::query("UPDATE tasks SET done_at = $1 WHERE id = $2 AND done_at IS NULL").bind(actor.now).bind(id)
        .execute(c).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    let t: Task = on_tx!(&mut tx, c => sqlx::query_as("SELECT id, lead_id, assignee_id, title, script, due_at, done_at, rule_id, created_at FROM tasks WHERE id = $1")
        .bind(id).fetch_one(c).await)?;
    audit::record(
        &mut tx,
        actor,
        Change::updated("task", id, json!({"done": false}), json!({"done": true, "title": t.title})),
    )
    .await?;
    tx.commit().await?;
    Ok(t)
}

/// Records a lead signal (trial started or finished, signed up) and fires the rules that
/// react to it.
pub async fn signal(db: &Db, actor: &Actor, lead_id: i64, signal: &str, rules: &Rules<'_>) -> Result<()> {
    let mut tx = db.begin().await?;
    crate::leads::get_tx(&mut tx, lead_id).await?.ok_or(Error::NotFound)?;
    event(&mut tx, actor, lead_id, signal, json!({})).await?;
    on_tx!(&mut tx, c => sqlx::query("UPDATE leads SET last_activity_at = $1, updated_at = $1 WHERE id = $2").bind(actor.now).bind(lead_id)
        .execute(c).await.map(|r| r.rows_affected()))?;
    if let Some(t) = Trigger::parse(signal) {
        fire(&mut tx, t, lead_id, actor.now, rules).await?;
    }
    audit::record(&mut tx, actor, Change::created("lead_signal", lead_id, json!({"signal": signal}))).await?;
    tx.commit().await
}
