//! Playbook versions (P-1, E-3). The newest version is the active one; older versions are
//! kept unchanged for history, diff and the judgements that cite them.

use crate::audit::{self, Actor, Change};
use crate::{Db, Error, Result, Ts, on_db, on_tx};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Version {
    pub version: i64,
    pub document: String,
    pub note: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: Ts,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VersionInfo {
    pub version: i64,
    pub note: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: Ts,
}

pub async fn active(db: &Db) -> Result<Option<Version>> {
    let sql = "SELECT version, document, note, created_by, created_at FROM playbook_versions \
               ORDER BY version DESC LIMIT 1";
    Ok(on_db!(db, p => sqlx::query_as(sql).fetch_optional(p).await)?)
}

pub async fn get(db: &Db, version: i64) -> Result<Option<Version>> {
    let sql = "SELECT version, document, note, created_by, created_at FROM playbook_versions WHERE version = $1";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(version).fetch_optional(p).await)?)
}

pub async fn list(db: &Db) -> Result<Vec<VersionInfo>> {
    let sql = "SELECT version, note, created_by, created_at FROM playbook_versions ORDER BY version DESC";
    Ok(on_db!(db, p => sqlx::query_as(sql).fetch_all(p).await)?)
}

/// Stores an already validated document as the next version and makes it active.
///
/// `based_on` is the version the author started from: if another version was saved in the
/// meantime the save is refused (409) rather than silently overwriting that change.
pub async fn create(
    db: &Db,
    actor: &Actor,
    document: &str,
    note: Option<&str>,
    based_on: Option<i64>,
) -> Result<Version> {
    let mut tx = db.begin().await?;
    let current: Option<i64> =
        on_tx!(&mut tx, c => sqlx::query_scalar("SELECT MAX(version) FROM playbook_versions").fetch_one(c).await)?;
    if let Some(base) = based_on
        && current != Some(base)
    {
        return Err(Error::Conflict(format!(
            "the playbook changed since version {base} (now version {}); reload and apply your edit again",
            current.unwrap_or(0)
        )));
    }
    let next = current.unwrap_or(0) + 1;
    let sql =
        "INSERT INTO playbook_versions (version, document, note, created_by, created_at) VALUES ($1, $2, $3, $4, $5)";
    on_tx!(&mut tx, c => sqlx::query(sql)
        .bind(next).bind(document).bind(note).bind(actor.user_id).bind(actor.now).execute(c).await.map(|r| r.rows_affected()))
    .map_err(Error::from)
    .map_err(|e| {
        if e.is_unique_violation() {
            Error::Conflict("another playbook version was saved at the same moment; reload and try again".into())
        } else {
            e
        }
    })?;
    audit::record(
        &mut tx,
        actor,
        Change::new(
            "create",
            "playbook",
            Some(next.to_string()),
            current.map(|v| serde_json::json!({ "version": v })),
            Some(serde_json::json!({ "version": next, "note": note })),
        ),
    )
    .await?;
    tx.commit().await?;
    crate::rules::changed();
    get(db, next).await?.ok_or(Error::NotFound)
}
