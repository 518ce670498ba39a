//! The audit log (P-3), for admins and executives.

use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Query, State};
use domain::role::Action;
use domain::{FieldErrors, Fields};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct AuditEntryOut {
    #[serde(flatten)]
    pub entry: store::audit::Entry,
    /// Top-level fields whose values differ between before and after.
    pub changed: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryOut>,
    /// Pass as `before_id` to get the next (older) page; absent on the last page.
    pub next_before_id: Option<i64>,
}

#[derive(serde::Deserialize, IntoParams)]
#[allow(dead_code)]
pub struct AuditQuery {
    actor_id: Option<i64>,
    entity: Option<String>,
    entity_id: Option<String>,
    action: Option<String>,
    via: Option<String>,
    /// Inclusive lower bound: a date (YYYY-MM-DD, company time zone) or an RFC 3339 instant.
    from: Option<String>,
    /// Exclusive upper bound: a date (the whole day is included) or an RFC 3339 instant.
    until: Option<String>,
    before_id: Option<i64>,
    /// 1–500, default 100.
    limit: Option<i64>,
}

const ACTIONS: &[&str] = &["create", "update", "delete", "login", "logout"];

/// Parses the audit filter from query fields; shared by the API and the UI.
pub fn parse_filter(f: &Fields, tz: &jiff::tz::TimeZone) -> Result<store::audit::Filter, FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(
        &mut e,
        &["actor_id", "entity", "entity_id", "action", "via", "from", "until", "before_id", "limit"],
    );
    let actor_id = f.int(&mut e, "actor_id");
    let entity = f.optional(&mut e, "entity", 40);
    let entity_id = f.optional(&mut e, "entity_id", 80);
    let action = f
        .text(&mut e, "action")
        .and_then(|a| domain::errors::parse_choice(&mut e, "action", &a, ACTIONS, |x| x).map(str::to_string));
    let via = f.text(&mut e, "via").and_then(|v| {
        domain::errors::parse_choice(&mut e, "via", &v, store::Via::ALL, store::Via::code).map(|v| v.code().to_string())
    });
    let mut bound = |field: &str, end: bool| -> Option<store::Ts> {
        let v = f.text(&mut e, field)?;
        if let Ok(t) = v.parse::<jiff::Timestamp>() {
            return Some(store::Ts::new(t));
        }
        match v.parse::<jiff::civil::Date>() {
            Ok(d) => {
                let d = if end { d.tomorrow().ok()? } else { d };
                tz.to_timestamp(d.to_datetime(jiff::civil::Time::MIN)).ok().map(store::Ts::new)
            }
            Err(_) => {
                e.add(field, "must be a date like 2026-11-01 or an RFC 3339 instant");
                None
            }
        }
    };
    let from = bound("from", false);
    let until = bound("until", true);
    let before_id = f.int(&mut e, "before_id");
    let limit = f.int(&mut e, "limit").unwrap_or(100);
    if !(1..=500).contains(&limit) {
        e.add("limit", "must be between 1 and 500");
    }
    e.into_result(store::audit::Filter { actor_id, entity, entity_id, action, via, from, until, before_id, limit })
}

pub fn entry_out(entry: store::audit::Entry) -> AuditEntryOut {
    AuditEntryOut { changed: entry.changed_fields(), entry }
}

/// Newest first, filtered; paginate with `before_id`.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_audit(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<AuditPage>> {
    u.require(Action::ViewAudit)?;
    let tz = company_tz(&s).await?;
    let filter = parse_filter(&Fields::from_pairs(q), &tz)?;
    let entries = store::audit::list(&s.db, &filter).await?;
    let next_before_id = (entries.len() as i64 == filter.limit).then(|| entries.last().map(|x| x.id)).flatten();
    Ok(Json(AuditPage { entries: entries.into_iter().map(entry_out).collect(), next_before_id }))
}

pub async fn company_tz(s: &AppState) -> ApiResult<jiff::tz::TimeZone> {
    let zone = store::company::get(&s.db).await?.map_or_else(|| "Asia/Shanghai".to_string(), |c| c.time_zone);
    Ok(jiff::tz::TimeZone::get(&zone).unwrap_or(jiff::tz::TimeZone::UTC))
}
