//! The rules a decision is made by: the active playbook version and the company's working
//! calendar in its time zone (P-1: domain code reads rules only from the active version),
//! parsed once and reused while none of their sources changes.

use crate::leads::Rules;
use crate::{Db, Error, Result, Ts, on_db};
use domain::calendar::WorkingCalendar;
use domain::playbook::Playbook;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Loaded {
    pub playbook: Playbook,
    pub version: i64,
    pub calendar: WorkingCalendar,
    pub tz: jiff::tz::TimeZone,
}

impl Loaded {
    pub fn rules(&self) -> Rules<'_> {
        Rules { playbook: &self.playbook, version: self.version, calendar: &self.calendar, tz: &self.tz }
    }
}

pub async fn load(db: &Db) -> Result<Loaded> {
    let active = crate::playbook::active(db).await?.ok_or(Error::NotFound)?;
    let playbook = Playbook::parse(&active.document)
        .map_err(|e| Error::Other(format!("the active playbook v{} does not parse: {e}", active.version)))?;
    let company = crate::company::get(db)
        .await?
        .ok_or_else(|| Error::Other("fill in the company profile first (time zone and working hours)".into()))?;
    let tz = jiff::tz::TimeZone::get(&company.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let calendar = crate::calendar::working_calendar(db, &company).await?;
    Ok(Loaded { playbook, version: active.version, calendar, tz })
}

/// What the loaded rules depend on: the newest playbook version, the company profile's last
/// change, and the calendar days' count and last change. One cheap query tells whether the
/// cached rules are still the rules — also after another server instance changed them.
type Fingerprint = (Option<i64>, Option<Ts>, i64, Option<Ts>);

/// Bumped by every write in this process to the playbook, the company profile or the
/// calendar: such a change is seen at once.
static GENERATION: AtomicU64 = AtomicU64::new(0);

pub(crate) fn changed() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// How long cached rules are used without asking the database again: the longest a change
/// made by another server instance takes to reach this one.
const RECHECK: Duration = Duration::from_secs(1);

struct Cached {
    fingerprint: Fingerprint,
    generation: u64,
    checked: Instant,
    loaded: Arc<Loaded>,
}

#[derive(Default)]
pub struct Cache(Mutex<Option<Cached>>);

impl Cache {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<Cached>>> {
        self.0.lock().map_err(|_| Error::Other("rules cache poisoned".into()))
    }

    pub async fn get(&self, db: &Db) -> Result<Arc<Loaded>> {
        let generation = GENERATION.load(Ordering::SeqCst);
        if let Some(c) = self.lock()?.as_ref()
            && c.generation == generation
            && c.checked.elapsed() < RECHECK
        {
            return Ok(c.loaded.clone());
        }
        let sql = "SELECT (SELECT MAX(version) FROM playbook_versions), (SELECT updated_at FROM company WHERE id = 1), \
                   (SELECT COUNT(*) FROM calendar_days), (SELECT MAX(updated_at) FROM calendar_days)";
        let fingerprint: Fingerprint = on_db!(db, p => sqlx::query_as(sql).fetch_one(p).await)?;
        if let Some(c) = self.lock()?.as_mut()
            && c.fingerprint == fingerprint
        {
            c.generation = generation;
            c.checked = Instant::now();
            return Ok(c.loaded.clone());
        }
        let loaded = Arc::new(load(db).await?);
        *self.lock()? = Some(Cached { fingerprint, generation, checked: Instant::now(), loaded: loaded.clone() });
        Ok(loaded)
    }
}
