//! Working-calendar exceptions (O-1): holidays and make-up working days by date.

use crate::audit::{self, Actor, Change};
use crate::{Db, Error, Result, Tx, on_db, on_tx};
use domain::calendar::{CalendarDay, DayKind, WorkingCalendar};
use domain::company::CompanyProfile;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DayRow {
    pub day: String,
    pub kind: String,
    pub name: String,
}

impl DayRow {
    pub fn to_domain(&self) -> Result<CalendarDay> {
        let date =
            self.day.parse().map_err(|_| Error::Other(format!("stored calendar day `{}` is not a date", self.day)))?;
        let kind = DayKind::ALL
            .iter()
            .copied()
            .find(|k| k.code() == self.kind)
            .ok_or_else(|| Error::Other(format!("stored calendar kind `{}` is unknown", self.kind)))?;
        Ok(CalendarDay { date, kind, name: self.name.clone() })
    }
}

/// All days, or the days of one year.
pub async fn list(db: &Db, year: Option<i16>) -> Result<Vec<DayRow>> {
    let (from, to) = match year {
        Some(y) => (format!("{y:04}-01-01"), format!("{y:04}-12-31")),
        None => ("0000-01-01".to_string(), "9999-12-31".to_string()),
    };
    let sql = "SELECT day, kind, name FROM calendar_days WHERE day >= $1 AND day <= $2 ORDER BY day";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(from).bind(to).fetch_all(p).await)?)
}

/// Years that have at least one entry, newest first.
pub async fn years(db: &Db) -> Result<Vec<i16>> {
    let days: Vec<String> =
        on_db!(db, p => sqlx::query_scalar("SELECT day FROM calendar_days ORDER BY day").fetch_all(p).await)?;
    let mut ys: Vec<i16> = days.iter().filter_map(|d| d.get(..4)?.parse().ok()).collect();
    ys.dedup();
    ys.reverse();
    Ok(ys)
}

async fn get_tx(tx: &mut Tx, day: &str) -> Result<Option<DayRow>> {
    Ok(on_tx!(tx, c => sqlx::query_as("SELECT day, kind, name FROM calendar_days WHERE day = $1")
        .bind(day).fetch_optional(c).await)?)
}

async fn upsert_tx(tx: &mut Tx, actor: &Actor, d: &CalendarDay) -> Result<bool> {
    let day = d.date.to_string();
    let before = get_tx(tx, &day).await?;
    if before.as_ref().is_some_and(|b| b.kind == d.kind.code() && b.name == d.name) {
        return Ok(false);
    }
    let sql = "INSERT INTO calendar_days (day, kind, name, updated_at) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (day) DO UPDATE SET kind = excluded.kind, name = excluded.name, updated_at = excluded.updated_at";
    on_tx!(tx, c => sqlx::query(sql).bind(&day).bind(d.kind.code()).bind(&d.name).bind(actor.now).execute(c).await.map(|r| r.rows_affected()))?;
    audit::record(
        tx,
        actor,
        Change::new(
            if before.is_some() { "update" } else { "create" },
            "calendar_day",
            Some(day.clone()),
            before.map(|b| serde_json::json!({"kind": b.kind, "name": b.name})),
            Some(serde_json::json!({"kind": d.kind.code(), "name": d.name})),
        ),
    )
    .await?;
    Ok(true)
}

pub async fn upsert(db: &Db, actor: &Actor, d: &CalendarDay) -> Result<()> {
    let mut tx = db.begin().await?;
    upsert_tx(&mut tx, actor, d).await?;
    tx.commit().await?;
    crate::rules::changed();
    Ok(())
}

/// Loads many days in one transaction (a shipped year, or an import); returns how many changed.
pub async fn upsert_many(db: &Db, actor: &Actor, days: &[CalendarDay]) -> Result<usize> {
    let mut tx = db.begin().await?;
    let mut changed = 0;
    for d in days {
        if upsert_tx(&mut tx, actor, d).await? {
            changed += 1;
        }
    }
    tx.commit().await?;
    crate::rules::changed();
    Ok(changed)
}

pub async fn delete(db: &Db, actor: &Actor, day: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    let before = get_tx(&mut tx, day).await?.ok_or(Error::NotFound)?;
    on_tx!(&mut tx, c => sqlx::query("DELETE FROM calendar_days WHERE day = $1").bind(day).execute(c).await.map(|r| r.rows_affected()))?;
    audit::record(
        &mut tx,
        actor,
        Change::deleted("calendar_day", day, serde_json::json!({"kind": before.kind, "name": before.name})),
    )
    .await?;
    tx.commit().await?;
    crate::rules::changed();
    Ok(())
}

/// The company's working calendar: its weekly pattern and hours with every stored exception.
pub async fn working_calendar(db: &Db, company: &CompanyProfile) -> Result<WorkingCalendar> {
    let days = list(db, None).await?.iter().map(DayRow::to_domain).collect::<Result<Vec<_>>>()?;
    Ok(WorkingCalendar::new(company.weekend_days.clone(), company.working_hours.clone(), &days))
}
