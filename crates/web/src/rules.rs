//! The rules a request decides by: the active playbook version and the company's working
//! calendar in its time zone (P-1), from the shared cache (see `store::rules`).

use crate::AppState;
use std::sync::Arc;

pub use store::rules::Loaded;

pub async fn load(state: &AppState) -> Result<Arc<Loaded>, store::Error> {
    state.rules.get(&state.db).await
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
