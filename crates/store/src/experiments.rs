//! C-6 experiments: definitions, assignments and conversions, and the observed counts per
//! variant that `domain::experiment::analyse` judges.

use crate::audit::{self, Actor, Change};
use crate::{Db, Error, Result, Ts, Tx, on_db, on_tx};
use domain::experiment::{Definition, assign as hash_variant};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize)]
pub struct Experiment {
    pub id: i64,
    pub key: String,
    pub name: String,
    pub definition: Definition,
    /// draft | running | stopped
    pub status: String,
    pub created_at: Ts,
    pub started_at: Option<Ts>,
    pub stopped_at: Option<Ts>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    key: String,
    name: String,
    definition: Value,
    status: String,
    created_at: Ts,
    started_at: Option<Ts>,
    stopped_at: Option<Ts>,
}

impl Row {
    fn into_experiment(self) -> Result<Experiment> {
        let f = domain::Fields::from_json(self.definition).map_err(|e| Error::Other(e.to_string()))?;
        let definition =
            Definition::parse(&f).map_err(|e| Error::Other(format!("stored experiment {}: {e}", self.key)))?;
        Ok(Experiment {
            id: self.id,
            key: self.key,
            name: self.name,
            definition,
            status: self.status,
            created_at: self.created_at,
            started_at: self.started_at,
            stopped_at: self.stopped_at,
        })
    }
}

const COLS: &str = "id, key, name, definition, status, created_at, started_at, stopped_at";

fn definition_json(d: &Definition) -> Value {
    json!({"key": d.key, "name": d.name, "hypothesis": d.hypothesis, "variants": d.variants, "weights": d.weights,
        "baseline_pct": d.baseline_pct.to_string(), "min_lift_pct": d.min_lift_pct.to_string()})
}

/// Creates a draft experiment; 409 when the key is taken.
pub async fn create(db: &Db, actor: &Actor, d: &Definition) -> Result<Experiment> {
    let mut tx = db.begin().await?;
    let sql = format!(
        "INSERT INTO experiments (key, name, definition, status, created_by, created_at) \
         VALUES ($1, $2, $3, 'draft', $4, $5) RETURNING {COLS}"
    );
    let row: Row = on_tx!(&mut tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(&d.key).bind(&d.name)
        .bind(definition_json(d)).bind(actor.user_id).bind(actor.now).fetch_one(c).await)
    .map_err(Error::from)
    .map_err(|e| {
        if e.is_unique_violation() { Error::Conflict(format!("an experiment with key {} exists", d.key)) } else { e }
    })?;
    audit::record(&mut tx, actor, Change::created("experiment", &d.key, definition_json(d))).await?;
    tx.commit().await?;
    row.into_experiment()
}

pub async fn list(db: &Db) -> Result<Vec<Experiment>> {
    let sql = format!("SELECT {COLS} FROM experiments ORDER BY id DESC");
    let rows: Vec<Row> = on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).fetch_all(p).await)?;
    rows.into_iter().map(Row::into_experiment).collect()
}

pub async fn get(db: &Db, key: &str) -> Result<Option<Experiment>> {
    let sql = format!("SELECT {COLS} FROM experiments WHERE key = $1");
    let row: Option<Row> =
        on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(key).fetch_optional(p).await)?;
    row.map(Row::into_experiment).transpose()
}

/// Starts a draft or stops a running experiment (audited); any other move is a conflict.
pub async fn set_status(db: &Db, actor: &Actor, key: &str, to: &str) -> Result<Experiment> {
    let mut tx = db.begin().await?;
    let (from, column) = match to {
        "running" => ("draft", "started_at"),
        "stopped" => ("running", "stopped_at"),
        other => return Err(Error::Other(format!("unknown experiment status {other}"))),
    };
    let sql =
        format!("UPDATE experiments SET status = $1, {column} = $2 WHERE key = $3 AND status = $4 RETURNING {COLS}");
    let row: Option<Row> = on_tx!(&mut tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(to).bind(actor.now)
        .bind(key).bind(from).fetch_optional(c).await)?;
    let Some(row) = row else {
        return Err(Error::Conflict(format!("experiment {key} is not {from}")));
    };
    audit::record(&mut tx, actor, Change::updated("experiment", key, json!({"status": from}), json!({"status": to})))
        .await?;
    tx.commit().await?;
    row.into_experiment()
}

/// Rows per multi-row INSERT (at most 4 columns).
const CHUNK: usize = 1000;

/// The variant of each user (C-6): by the hash, stored the first time a user is asked for
/// so results count exactly the users who were shown a variant. Asking again returns the
/// same variant and stores nothing.
pub async fn assign(db: &Db, e: &Experiment, users: &[String], now: Ts) -> Result<Vec<usize>> {
    let variants: Vec<usize> = users.iter().map(|u| hash_variant(&e.key, u, &e.definition.weights)).collect();
    let mut tx = db.begin().await?;
    let pairs: Vec<(&String, usize)> = users.iter().zip(variants.iter().copied()).collect();
    for chunk in pairs.chunks(CHUNK) {
        on_tx!(&mut tx, c => {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO experiment_assignments (experiment_id, user_key, variant, assigned_at) ");
            qb.push_values(chunk, |mut b, (u, v)| {
                b.push_bind(e.id).push_bind((*u).clone()).push_bind(*v as i64).push_bind(now);
            });
            qb.push(" ON CONFLICT (experiment_id, user_key) DO NOTHING");
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    tx.commit().await?;
    Ok(variants)
}

/// Records conversions of assigned users (once per user; the first time counts). Returns
/// how many users were recorded now and how many were never assigned (ignored: they saw no
/// variant).
pub async fn convert(db: &Db, e: &Experiment, users: &[(String, Ts)]) -> Result<(usize, usize)> {
    let mut tx = db.begin().await?;
    let out = convert_tx(&mut tx, e.id, users).await?;
    tx.commit().await?;
    Ok(out)
}

async fn convert_tx(tx: &mut Tx, experiment_id: i64, users: &[(String, Ts)]) -> Result<(usize, usize)> {
    // The users' assignment instants in a few lookups (not one per user: a batch holds up to
    // 10,000), then one multi-row insert per chunk.
    let keys: Vec<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
    let prefix = format!(
        "SELECT user_key, assigned_at FROM experiment_assignments WHERE experiment_id = {experiment_id} AND user_key"
    );
    let rows: Vec<(String, Ts)> = crate::select_in!(tx, sqlx::query_as, prefix, keys);
    let assigned: std::collections::HashMap<String, Ts> = rows.into_iter().collect();
    let mut unassigned = 0;
    let mut seen = std::collections::HashSet::new();
    let mut fresh: Vec<(&str, Ts)> = Vec::new();
    for (user, at) in users {
        let Some(first) = assigned.get(user) else {
            unassigned += 1;
            continue;
        };
        // A conversion before the user saw the variant is not the variant's doing; within a
        // batch the first conversion of a user counts.
        if at.get() >= first.get() && seen.insert(user.as_str()) {
            fresh.push((user.as_str(), *at));
        }
    }
    let mut recorded = 0;
    for chunk in fresh.chunks(CHUNK) {
        recorded += on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO experiment_conversions (experiment_id, user_key, converted_at) ");
            qb.push_values(chunk, |mut b, (u, at)| {
                b.push_bind(experiment_id).push_bind(u.to_string()).push_bind(*at);
            });
            qb.push(" ON CONFLICT (experiment_id, user_key) DO NOTHING");
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })? as usize;
    }
    Ok((recorded, unassigned))
}

/// Conversion events (C-5) whose campaign is a running experiment's key count as that
/// experiment's outcomes, in the same transaction as the events.
pub(crate) async fn record_batch_tx(tx: &mut Tx, batch: &domain::event_batch::EventBatch) -> Result<()> {
    if !batch.rows.iter().any(|r| r.step == domain::funnel::Step::Conversion) {
        return Ok(());
    }
    let running: Vec<(i64, String)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT id, key FROM experiments WHERE status = 'running'").fetch_all(c).await)?;
    for (id, key) in running {
        let users: Vec<(String, Ts)> = batch
            .conversions_in(&key)
            .into_iter()
            .filter_map(|(u, at)| Some((u.to_string(), Ts::new(jiff::Timestamp::from_microsecond(at).ok()?))))
            .collect();
        if !users.is_empty() {
            convert_tx(tx, id, &users).await?;
        }
    }
    Ok(())
}

/// (users, conversions) per variant, in the definition's order.
pub async fn observed(db: &Db, e: &Experiment) -> Result<Vec<(u64, u64)>> {
    let rows: Vec<(i64, i64, i64)> = on_db!(db, p => sqlx::query_as(
        "SELECT a.variant, count(*), count(c.user_key) FROM experiment_assignments a \
         LEFT JOIN experiment_conversions c ON c.experiment_id = a.experiment_id AND c.user_key = a.user_key \
         WHERE a.experiment_id = $1 GROUP BY a.variant")
        .bind(e.id).fetch_all(p).await)?;
    let mut out = vec![(0u64, 0u64); e.definition.variants.len()];
    for (v, n, k) in rows {
        if let Some(slot) = out.get_mut(v as usize) {
            *slot = (n as u64, k as u64);
        }
    }
    Ok(out)
}
