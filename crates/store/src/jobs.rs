//! The background job queue: a table with leases.
//!
//! A worker claims a job by writing its name and a lease expiry in one statement; it holds
//! no transaction while the job runs. A worker that dies simply lets its lease run out and
//! another worker takes the job again. On PostgreSQL the claim skips rows other workers are
//! claiming at that instant (`FOR UPDATE SKIP LOCKED`); SQLite serialises writers, so the
//! same statement without that clause is already atomic.
//!
//! Periodic work is enqueued with a dedup key naming its time slot (`session-sweep:<slot>`):
//! the unique index lets exactly one instance's insert win, so each slot runs once however
//! many instances schedule it. Finished jobs are kept (status `done`) until pruned, so a
//! slot's key keeps blocking late duplicates.

use crate::{Db, Result, Ts, on_db};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub payload: Value,
    pub priority: i64,
    pub run_at: Ts,
    pub max_attempts: i64,
    pub dedup_key: Option<String>,
}

impl NewJob {
    pub fn new(kind: &str, payload: Value, run_at: Ts) -> NewJob {
        NewJob { kind: kind.to_string(), payload, priority: 0, run_at, max_attempts: 5, dedup_key: None }
    }

    pub fn dedup(mut self, key: impl Into<String>) -> NewJob {
        self.dedup_key = Some(key.into());
        self
    }
}

const ENQUEUE: &str = "INSERT INTO jobs (kind, payload, priority, status, run_at, attempts, max_attempts, dedup_key, \
    created_at) VALUES ($1, $2, $3, 'queued', $4, 0, $5, $6, $7) ON CONFLICT (dedup_key) DO NOTHING RETURNING id";

/// Adds a job inside a transaction, so it exists exactly when the change that needs it commits.
pub async fn enqueue_tx(tx: &mut crate::Tx, job: &NewJob, now: Ts) -> Result<Option<i64>> {
    Ok(crate::on_tx!(tx, c => sqlx::query_scalar(ENQUEUE)
        .bind(&job.kind)
        .bind(&job.payload)
        .bind(job.priority)
        .bind(job.run_at)
        .bind(job.max_attempts)
        .bind(&job.dedup_key)
        .bind(now)
        .fetch_optional(c)
        .await)?)
}

/// Adds a job; `None` if a job with the same dedup key already exists.
pub async fn enqueue(db: &Db, job: &NewJob, now: Ts) -> Result<Option<i64>> {
    let sql = ENQUEUE;
    Ok(on_db!(db, p => sqlx::query_scalar(sql)
        .bind(&job.kind)
        .bind(&job.payload)
        .bind(job.priority)
        .bind(job.run_at)
        .bind(job.max_attempts)
        .bind(&job.dedup_key)
        .bind(now)
        .fetch_optional(p)
        .await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub kind: String,
    pub payload: Value,
    /// Including this run.
    pub attempts: i64,
    pub max_attempts: i64,
}

/// Claims the most urgent runnable job for `worker` for `lease_secs`.
pub async fn claim(db: &Db, worker: &str, now: Ts, lease_secs: i64) -> Result<Option<Claimed>> {
    let pick = "SELECT id FROM jobs WHERE status = 'queued' AND run_at <= $2 \
                AND (locked_until IS NULL OR locked_until < $2) ORDER BY priority DESC, run_at, id LIMIT 1";
    let update = "UPDATE jobs SET locked_by = $1, locked_until = $3, attempts = attempts + 1 WHERE id = ";
    let returning = " RETURNING id, kind, payload, attempts, max_attempts";
    let lease = now.add_secs(lease_secs);
    // PostgreSQL skips rows another worker is claiming this instant; SQLite has one writer.
    let lock = if db.backend() == crate::Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!("{update}({pick}{lock}){returning}");
    let row = on_db!(db, p => sqlx::query_as::<_, Claimed>(sqlx::AssertSqlSafe(sql.clone()))
        .bind(worker)
        .bind(now)
        .bind(lease)
        .fetch_optional(p)
        .await)?;
    Ok(row)
}

/// Marks a claimed job done. Only the lease holder may, so a worker whose lease expired and
/// whose job was taken over cannot overwrite the new holder's result.
pub async fn complete(db: &Db, id: i64, worker: &str, now: Ts) -> Result<bool> {
    let sql = "UPDATE jobs SET status = 'done', finished_at = $1, locked_by = NULL, locked_until = NULL, \
               last_error = NULL WHERE id = $2 AND locked_by = $3";
    let r =
        on_db!(db, p => sqlx::query(sql).bind(now).bind(id).bind(worker).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

/// Records a failure: retried after `base_secs × 2^(attempts-1)`, or marked `failed` once
/// `max_attempts` is reached.
pub async fn fail(db: &Db, job: &Claimed, worker: &str, now: Ts, error: &str, base_secs: i64) -> Result<()> {
    let error: String = error.chars().take(2000).collect();
    let give_up = job.attempts >= job.max_attempts;
    let shift = u32::try_from(job.attempts.clamp(1, 20) - 1).unwrap_or(0);
    let retry_at = now.add_secs(base_secs.saturating_mul(1i64 << shift));
    let (status, finished_at) = if give_up { ("failed", Some(now)) } else { ("queued", None) };
    let sql = "UPDATE jobs SET status = $1, run_at = $2, finished_at = $3, locked_by = NULL, locked_until = NULL, \
               last_error = $4 WHERE id = $5 AND locked_by = $6";
    on_db!(db, p => sqlx::query(sql)
        .bind(status)
        .bind(if give_up { now } else { retry_at })
        .bind(finished_at)
        .bind(&error)
        .bind(job.id)
        .bind(worker)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Jobs waiting to run (including ones scheduled for later).
pub async fn queue_depth(db: &Db) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetch_one(p).await)?)
}

/// Deletes finished jobs that finished before `before`.
pub async fn prune(db: &Db, before: Ts) -> Result<u64> {
    let sql = "DELETE FROM jobs WHERE status IN ('done', 'failed') AND finished_at < $1";
    Ok(on_db!(db, p => sqlx::query(sql).bind(before).execute(p).await.map(|r| r.rows_affected()))?)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub dedup_key: Option<String>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub run_at: Ts,
}

pub async fn list(db: &Db, kind: Option<&str>) -> Result<Vec<JobRow>> {
    let sql = "SELECT id, kind, status, attempts, dedup_key, locked_by, last_error, run_at FROM jobs \
               WHERE ($1 IS NULL OR kind = $1) ORDER BY id";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(kind).fetch_all(p).await)?)
}
