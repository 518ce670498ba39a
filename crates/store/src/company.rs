//! The company profile (O-1): a single row.

use crate::audit::{self, Actor, Change};
use crate::{Db, Error, Result, Ts, Tx, on_db, on_tx};
use domain::calendar::WorkingHours;
use domain::company::{BusinessType, CompanyProfile, Size, Stage, WEEKDAYS, weekday_code};

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    industry: Option<String>,
    business_type: String,
    stage: String,
    size: String,
    currency: String,
    time_zone: String,
    weekend_days: String,
    working_hours: String,
}

impl Row {
    fn into_profile(self) -> Result<CompanyProfile> {
        let bad = |what: &str| Error::Other(format!("stored company profile has an invalid {what}"));
        Ok(CompanyProfile {
            name: self.name,
            industry: self.industry,
            business_type: BusinessType::parse(&self.business_type).ok_or_else(|| bad("business_type"))?,
            stage: Stage::parse(&self.stage).ok_or_else(|| bad("stage"))?,
            size: Size::parse(&self.size).ok_or_else(|| bad("size"))?,
            currency: self.currency,
            time_zone: self.time_zone,
            weekend_days: self
                .weekend_days
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|c| WEEKDAYS.into_iter().find(|d| weekday_code(*d) == c).ok_or_else(|| bad("weekend day")))
                .collect::<Result<Vec<_>>>()?,
            working_hours: WorkingHours::parse(&self.working_hours).map_err(|_| bad("working_hours"))?,
        })
    }
}

pub async fn get(db: &Db) -> Result<Option<CompanyProfile>> {
    let sql = "SELECT name, industry, business_type, stage, size, currency, time_zone, weekend_days, working_hours \
               FROM company WHERE id = 1";
    let row: Option<Row> = on_db!(db, p => sqlx::query_as(sql).fetch_optional(p).await)?;
    row.map(Row::into_profile).transpose()
}

async fn get_tx(tx: &mut Tx) -> Result<Option<CompanyProfile>> {
    let sql = "SELECT name, industry, business_type, stage, size, currency, time_zone, weekend_days, working_hours \
               FROM company WHERE id = 1";
    let row: Option<Row> = on_tx!(tx, c => sqlx::query_as(sql).fetch_optional(c).await)?;
    row.map(Row::into_profile).transpose()
}

/// Creates or replaces the profile, recording the before and after.
pub async fn save(db: &Db, actor: &Actor, p: &CompanyProfile) -> Result<()> {
    let mut tx = db.begin().await?;
    let before = get_tx(&mut tx).await?;
    if before.as_ref() == Some(p) {
        return Ok(());
    }
    let sql = "INSERT INTO company (id, name, industry, business_type, stage, size, currency, time_zone, weekend_days, \
               working_hours, updated_at) VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
               ON CONFLICT (id) DO UPDATE SET name = excluded.name, industry = excluded.industry, \
               business_type = excluded.business_type, stage = excluded.stage, size = excluded.size, \
               currency = excluded.currency, time_zone = excluded.time_zone, weekend_days = excluded.weekend_days, \
               working_hours = excluded.working_hours, updated_at = excluded.updated_at";
    on_tx!(&mut tx, c => sqlx::query(sql)
        .bind(&p.name)
        .bind(&p.industry)
        .bind(p.business_type.code())
        .bind(p.stage.code())
        .bind(p.size.code())
        .bind(&p.currency)
        .bind(&p.time_zone)
        .bind(p.weekend_codes())
        .bind(p.working_hours.to_string())
        .bind(actor.now)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    audit::record(
        &mut tx,
        actor,
        Change::new(
            if before.is_some() { "update" } else { "create" },
            "company",
            Some("1".into()),
            before.map(|b| b.to_json()),
            Some(p.to_json()),
        ),
    )
    .await?;
    tx.commit().await?;
    crate::rules::changed();
    Ok(())
}

pub async fn updated_at(db: &Db) -> Result<Option<Ts>> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT updated_at FROM company WHERE id = 1").fetch_optional(p).await)?)
}
