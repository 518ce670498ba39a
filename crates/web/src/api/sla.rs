//! L-5 through the API: activities on leads, notifications, webhooks and breach counts.

use super::{ApiPath, JsonBody};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use domain::errors::Source as _;
use domain::notify::Format;
use domain::role::Action;
use domain::{FieldErrors, Fields};
use serde::Serialize;
use store::sla::{ACTIVITY_KINDS, Activity, Delivery, Notification, Webhook, WebhookInput};
use utoipa::{IntoParams, ToSchema};

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ActivityIn {
    /// call | wechat | email | meeting | visit | note
    kind: String,
    note: Option<String>,
}

pub fn parse_activity(f: &Fields) -> Result<(&'static str, Option<String>), FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["kind", "note"]);
    let kind = f.choice(&mut e, "kind", ACTIVITY_KINDS, |x| x);
    let note = f.optional(&mut e, "note", 2000);
    match kind {
        Some(k) if e.is_empty() => Ok((k, note)),
        _ => Err(e),
    }
}

/// Records a contact with the lead. The first one answers the first-response SLA; each one
/// restarts the follow-up clock (L-5).
#[utoipa::path(post, path = "/leads/{id}/activities", tag = "leads", params(("id" = i64, Path)), request_body = ActivityIn,
    responses((status = 201, body = Activity), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_activity(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<Activity>)> {
    u.require(Action::EditLeads)?;
    crate::api::leads::visible(&s, &u, id).await?;
    let (kind, note) = parse_activity(&f)?;
    let rules = crate::rules::load(&s).await?;
    let hours = rules.playbook.leads.sla.follow_up_max_hours;
    let a = store::sla::record_activity(&s.db, &u.actor(s.now()), id, kind, note.as_deref(), hours).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

#[utoipa::path(get, path = "/leads/{id}/activities", tag = "leads", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Activity>), (status = 404, body = ErrorBody)))]
pub async fn list_activities(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<Activity>>> {
    crate::api::leads::visible(&s, &u, id).await?;
    Ok(Json(store::sla::activities(&s.db, id).await?))
}

/// The caller's notifications, newest first (SLA breaches of their teams' leads).
#[utoipa::path(get, path = "/notifications", tag = "notifications", responses((status = 200, body = Vec<Notification>)))]
pub async fn list_notifications(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<Notification>>> {
    Ok(Json(store::sla::notifications(&s.db, u.user.id, 100).await?))
}

#[derive(Serialize, ToSchema)]
pub struct MarkedOut {
    pub marked: u64,
}

#[utoipa::path(post, path = "/notifications/read", tag = "notifications", responses((status = 200, body = MarkedOut)))]
pub async fn mark_read(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<MarkedOut>> {
    Ok(Json(MarkedOut { marked: store::sla::mark_read(&s.db, u.user.id, s.now()).await? }))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct WebhookIn {
    name: String,
    /// http(s) URL of the receiver (a WeCom, DingTalk or Feishu group-bot URL, or your own).
    url: String,
    /// generic | wecom | dingtalk | feishu
    format: String,
    /// Events to send: sla_breach.
    events: Option<Vec<String>>,
    active: Option<bool>,
}

pub fn parse_webhook(f: &Fields) -> Result<WebhookInput, FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["name", "url", "format", "events", "active"]);
    let name = f.required(&mut e, "name", 80);
    let url = f.required(&mut e, "url", 500);
    if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
        e.add("url", "must start with https:// or http://");
    }
    let format = f.choice(&mut e, "format", Format::ALL, Format::code);
    let events = f.list(&mut e, "events").unwrap_or_else(|| vec!["sla_breach".into()]);
    for ev in &events {
        if !store::sla::EVENTS.contains(&ev.as_str()) {
            e.add("events", format!("unknown value `{ev}`; expected one of: {}", store::sla::EVENTS.join(", ")));
        }
    }
    let active = match f.0.get("active") {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(v)) => !matches!(v.as_str(), "false" | "off" | "0"),
        Some(_) => {
            e.add("active", "must be true or false");
            true
        }
    };
    match format {
        Some(format) if e.is_empty() => Ok(WebhookInput { name, url, format, events, active }),
        _ => Err(e),
    }
}

#[utoipa::path(get, path = "/webhooks", tag = "webhooks", responses((status = 200, body = Vec<Webhook>), (status = 403, body = ErrorBody)))]
pub async fn list_webhooks(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<Webhook>>> {
    u.require(Action::ManageIntegrations)?;
    Ok(Json(store::sla::list_webhooks(&s.db).await?))
}

#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = WebhookIn,
    responses((status = 201, body = Webhook), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_webhook(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<Webhook>)> {
    u.require(Action::ManageIntegrations)?;
    let w = parse_webhook(&f)?;
    Ok((StatusCode::CREATED, Json(store::sla::create_webhook(&s.db, &u.actor(s.now()), &w).await?)))
}

#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_webhook(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    u.require(Action::ManageIntegrations)?;
    store::sla::delete_webhook(&s.db, &u.actor(s.now()), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Recent deliveries with their status, attempts and last error (failed ones are retried
/// with back-off before they are marked failed).
#[utoipa::path(get, path = "/webhooks/deliveries", tag = "webhooks", responses((status = 200, body = Vec<Delivery>), (status = 403, body = ErrorBody)))]
pub async fn list_deliveries(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<Delivery>>> {
    u.require(Action::ManageIntegrations)?;
    Ok(Json(store::sla::deliveries(&s.db, None, 200).await?))
}

#[derive(serde::Deserialize, IntoParams)]
#[allow(dead_code)]
pub struct PeriodQuery {
    /// First day (YYYY-MM-DD, company time zone); default: the first of this month.
    from: Option<String>,
    /// Last day, inclusive; default: today.
    until: Option<String>,
}

#[derive(Serialize, ToSchema, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BreachCount {
    /// YYYY-MM in the company time zone.
    pub month: String,
    pub owner_id: Option<i64>,
    pub team_id: Option<i64>,
    /// first_response | follow_up
    pub kind: String,
    pub count: i64,
}

/// Parses a from/until day range into instants; default the current month up to now.
pub fn period(f: &Fields, tz: &jiff::tz::TimeZone, now: store::Ts) -> Result<(store::Ts, store::Ts), FieldErrors> {
    period_days(f, tz, now, &[]).map(|p| (p.from, p.until))
}

/// The same, with the civil days too, allowing `extra` fields for the caller to read.
pub fn period_days(
    f: &Fields,
    tz: &jiff::tz::TimeZone,
    now: store::Ts,
    extra: &[&str],
) -> Result<store::reports::Period, FieldErrors> {
    let mut e = FieldErrors::new();
    let mut allowed = vec!["from", "until"];
    allowed.extend_from_slice(extra);
    f.reject_unknown(&mut e, &allowed);
    let today = now.get().to_zoned(tz.clone()).date();
    let from = domain::campaign::date_field(f, &mut e, "from").unwrap_or_else(|| today.first_of_month());
    let until = domain::campaign::date_field(f, &mut e, "until").unwrap_or(today);
    if until < from {
        e.add("until", "must not be before from");
    }
    if !e.is_empty() {
        return Err(e);
    }
    let at = |d: jiff::civil::Date| tz.to_timestamp(d.to_datetime(jiff::civil::Time::MIN)).map(store::Ts::new);
    let next = until.tomorrow().ok();
    match (at(from).ok(), next.and_then(|d| at(d).ok()), next) {
        (Some(a), Some(b), Some(n)) => {
            Ok(store::reports::Period { from: a, until: b, from_day: from.to_string(), until_day: n.to_string() })
        }
        _ => Err(FieldErrors::single("from", "is out of range")),
    }
}

/// L-5: breaches counted per rep, team, month and kind.
pub fn count_breaches(rows: &[store::sla::BreachRow], tz: &jiff::tz::TimeZone) -> Vec<BreachCount> {
    let mut map: std::collections::BTreeMap<(String, Option<i64>, Option<i64>, String), i64> = Default::default();
    for r in rows {
        let month = r.detected_at.get().to_zoned(tz.clone()).strftime("%Y-%m").to_string();
        *map.entry((month, r.owner_id, r.team_id, r.kind.clone())).or_default() += 1;
    }
    map.into_iter()
        .map(|((month, owner_id, team_id, kind), count)| BreachCount { month, owner_id, team_id, kind, count })
        .collect()
}

#[utoipa::path(get, path = "/reports/sla", tag = "reports", params(PeriodQuery),
    responses((status = 200, body = Vec<BreachCount>), (status = 422, body = ErrorBody)))]
pub async fn sla_report(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Vec<BreachCount>>> {
    u.require(Action::ViewLeads)?;
    let tz = crate::api::audit::company_tz(&s).await?;
    let (from, until) = period(&Fields::from_pairs(q), &tz, s.now())?;
    let rows = store::sla::breaches(&s.db, from, until).await?;
    // Sales reps see their own counts; managers their team's (the same scope as leads).
    let scope = crate::rules::lead_scope(&u);
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| match scope {
            store::leads::Scope::All => true,
            store::leads::Scope::Team(t) => r.team_id == Some(t),
            store::leads::Scope::Owner(o) => r.owner_id == Some(o),
            store::leads::Scope::Nothing => false,
        })
        .collect();
    Ok(Json(count_breaches(&rows, &tz)))
}
