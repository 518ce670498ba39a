//! The append-only audit log (SPEC P-3): who, when, what, before and after.
//!
//! Rows are only ever inserted, in the same transaction as the change they describe.

use crate::{Db, Result, Ts, Tx, on_db, on_tx};
use serde::Serialize;
use serde_json::Value;

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Ui,
    Api,
    Cli,
    System,
    /// A public lead form (no account).
    Form,
}

impl Via {
    pub const ALL: &'static [Via] = &[Via::Ui, Via::Api, Via::Cli, Via::System, Via::Form];
    pub fn code(self) -> &'static str {
        match self {
            Via::Ui => "ui",
            Via::Api => "api",
            Via::Cli => "cli",
            Via::System => "system",
            Via::Form => "form",
        }
    }
}

/// Who is making a change, and through which interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<i64>,
    /// A readable name kept with the entry, so it survives the account being deleted.
    pub label: String,
    pub via: Via,
    pub now: Ts,
}

impl Actor {
    pub fn system(now: Ts) -> Actor {
        Actor { user_id: None, label: "system".into(), via: Via::System, now }
    }

    pub fn cli(now: Ts) -> Actor {
        Actor { user_id: None, label: "cli".into(), via: Via::Cli, now }
    }
}

/// One change to record.
pub struct Change<'a> {
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl<'a> Change<'a> {
    pub fn new(
        action: &'a str,
        entity: &'a str,
        entity_id: Option<String>,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Change<'a> {
        Change { action, entity, entity_id, before, after }
    }

    pub fn created(entity: &'a str, id: impl ToString, after: Value) -> Change<'a> {
        Change::new("create", entity, Some(id.to_string()), None, Some(after))
    }

    pub fn updated(entity: &'a str, id: impl ToString, before: Value, after: Value) -> Change<'a> {
        Change::new("update", entity, Some(id.to_string()), Some(before), Some(after))
    }

    pub fn deleted(entity: &'a str, id: impl ToString, before: Value) -> Change<'a> {
        Change::new("delete", entity, Some(id.to_string()), Some(before), None)
    }
}

pub async fn record(tx: &mut Tx, actor: &Actor, change: Change<'_>) -> Result<()> {
    let sql = "INSERT INTO audit_log (at, actor_id, actor_label, via, action, entity, entity_id, before, after) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    on_tx!(tx, c => sqlx::query(sql)
        .bind(actor.now)
        .bind(actor.user_id)
        .bind(&actor.label)
        .bind(actor.via.code())
        .bind(change.action)
        .bind(change.entity)
        .bind(&change.entity_id)
        .bind(&change.before)
        .bind(&change.after)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Several changes in one statement (a batch of captures).
pub async fn record_many(tx: &mut Tx, changes: &[(&Actor, Change<'_>)]) -> Result<()> {
    // 9 columns × 300 rows stays under SQLite's bind limit.
    for chunk in changes.chunks(300) {
        on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO audit_log (at, actor_id, actor_label, via, action, entity, entity_id, before, after) ",
            );
            qb.push_values(chunk, |mut b, (actor, change)| {
                b.push_bind(actor.now).push_bind(actor.user_id).push_bind(actor.label.clone()).push_bind(actor.via.code())
                    .push_bind(change.action).push_bind(change.entity).push_bind(change.entity_id.clone())
                    .push_bind(change.before.clone()).push_bind(change.after.clone());
            });
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// `record_many` through SQLite's statement interface on the caller's thread (the capture
/// writer records its batch's entries with its other last writes in one hand-off).
pub(crate) fn record_many_raw(c: &crate::raw::Conn, changes: &[(&Actor, Change<'_>)]) -> Result<()> {
    let mut st = c.prepare(
        "INSERT INTO audit_log (at, actor_id, actor_label, via, action, entity, entity_id, before, after) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (actor, change) in changes {
        st.text_copy(1, &actor.now.to_text())?;
        st.opt_int(2, actor.user_id)?;
        st.text_copy(3, &actor.label)?;
        st.text_copy(4, actor.via.code())?;
        st.text_copy(5, change.action)?;
        st.text_copy(6, change.entity)?;
        st.opt_text_copy(7, change.entity_id.as_deref())?;
        st.opt_text_copy(8, change.before.as_ref().map(Value::to_string).as_deref())?;
        st.opt_text_copy(9, change.after.as_ref().map(Value::to_string).as_deref())?;
        st.run()?;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    pub id: i64,
    pub at: Ts,
    pub actor_id: Option<i64>,
    pub actor_label: String,
    /// ui | api | cli | system
    pub via: String,
    /// create | update | delete | login | logout
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl Entry {
    pub fn changed_fields(&self) -> Vec<String> {
        domain::diff::changed_fields(self.before.as_ref(), self.after.as_ref())
    }
}

/// Filters for the audit view; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor_id: Option<i64>,
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub action: Option<String>,
    pub via: Option<String>,
    pub from: Option<Ts>,
    pub until: Option<Ts>,
    /// Keyset pagination: entries with an id below this one.
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Newest first. The WHERE clause uses `($n IS NULL OR col = $n)` so one statement text
/// serves every combination of filters on both backends.
pub async fn list(db: &Db, f: &Filter) -> Result<Vec<Entry>> {
    let sql = "SELECT id, at, actor_id, actor_label, via, action, entity, entity_id, before, after FROM audit_log \
               WHERE ($1 IS NULL OR actor_id = $1) AND ($2 IS NULL OR entity = $2) AND ($3 IS NULL OR entity_id = $3) \
               AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR via = $5) AND ($6 IS NULL OR at >= $6) \
               AND ($7 IS NULL OR at < $7) AND ($8 IS NULL OR id < $8) ORDER BY id DESC LIMIT $9";
    let limit = f.limit.clamp(1, 500);
    Ok(on_db!(db, p => sqlx::query_as::<_, Entry>(sql)
        .bind(f.actor_id)
        .bind(&f.entity)
        .bind(&f.entity_id)
        .bind(&f.action)
        .bind(&f.via)
        .bind(f.from)
        .bind(f.until)
        .bind(f.before_id)
        .bind(limit)
        .fetch_all(p)
        .await)?)
}

/// Distinct entity names present in the log (for the filter's drop-down).
pub async fn entities(db: &Db) -> Result<Vec<String>> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT DISTINCT entity FROM audit_log ORDER BY entity").fetch_all(p).await)?)
}

pub async fn count(db: &Db) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(p).await)?)
}
