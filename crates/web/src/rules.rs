//! The rules a request decides by: the active playbook version and the company's working
//! calendar in its time zone (P-1: domain code reads rules only from the active version).

use crate::AppState;
use domain::calendar::WorkingCalendar;
use domain::playbook::Playbook;

pub struct Loaded {
    pub playbook: Playbook,
    pub version: i64,
    pub calendar: WorkingCalendar,
    pub tz: jiff::tz::TimeZone,
}

impl Loaded {
    pub fn rules(&self) -> store::leads::Rules<'_> {
        store::leads::Rules { playbook: &self.playbook, version: self.version, calendar: &self.calendar, tz: &self.tz }
    }
}

pub async fn load(state: &AppState) -> Result<Loaded, store::Error> {
    let active = store::playbook::active(&state.db).await?.ok_or(store::Error::NotFound)?;
    let playbook = Playbook::parse(&active.document)
        .map_err(|e| store::Error::Other(format!("the active playbook v{} does not parse: {e}", active.version)))?;
    let company = store::company::get(&state.db)
        .await?
        .ok_or_else(|| store::Error::Other("fill in the company profile first (time zone and working hours)".into()))?;
    let tz = jiff::tz::TimeZone::get(&company.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let calendar = store::calendar::working_calendar(&state.db, &company).await?;
    Ok(Loaded { playbook, version: active.version, calendar, tz })
}

/// The leads an account sees.
pub fn lead_scope(u: &crate::auth::CurrentUser) -> store::leads::Scope {
    use domain::role::LeadScope;
    match u.role().lead_scope() {
        LeadScope::All => store::leads::Scope::All,
        LeadScope::Own => store::leads::Scope::Owner(u.user.id),
        LeadScope::Team => u.user.team_id.map_or(store::leads::Scope::Nothing, store::leads::Scope::Team),
    }
}
