//! Working calendar (O-1): dated exceptions and the due-time calculator.

use super::{ApiPath, JsonBody};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use domain::FieldErrors;
use domain::calendar::{CalendarDay, DayKind, shipped_days};
use domain::errors::Source as _;
use domain::role::Action;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct DayOut {
    /// YYYY-MM-DD
    pub date: String,
    /// holiday | workday (a make-up working day, 调休上班)
    pub kind: String,
    pub name: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DayIn {
    kind: String,
    name: String,
}

#[derive(Deserialize, IntoParams)]
pub struct YearQuery {
    /// Only this year's days.
    year: Option<String>,
}

fn parse_year(e: &mut FieldErrors, field: &str, v: Option<&str>) -> Option<i16> {
    let v = v?.trim();
    match v.parse::<i16>() {
        Ok(y) if (1900..=2200).contains(&y) => Some(y),
        _ => {
            e.add(field, "must be a year between 1900 and 2200");
            None
        }
    }
}

#[utoipa::path(get, path = "/calendar", tag = "calendar", params(YearQuery),
    responses((status = 200, body = Vec<DayOut>), (status = 422, body = ErrorBody)))]
pub async fn list_days(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    Query(q): Query<YearQuery>,
) -> ApiResult<Json<Vec<DayOut>>> {
    u.require(Action::ViewCalendar)?;
    let mut e = FieldErrors::new();
    let year = parse_year(&mut e, "year", q.year.as_deref());
    if !e.is_empty() {
        return Err(e.into());
    }
    let days = store::calendar::list(&s.db, year).await?;
    Ok(Json(days.into_iter().map(|d| DayOut { date: d.day, kind: d.kind, name: d.name }).collect()))
}

/// Parses a calendar entry from a date and fields `kind` and `name`.
pub fn parse_day(date: &str, f: &domain::Fields) -> Result<CalendarDay, FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["date", "kind", "name"]);
    let date = match date.trim().parse::<jiff::civil::Date>() {
        Ok(d) => Some(d),
        Err(_) => {
            e.add("date", "must be a date like 2026-10-01");
            None
        }
    };
    let kind = f.choice(&mut e, "kind", DayKind::ALL, DayKind::code);
    let name = f.required(&mut e, "name", 60);
    match (date, kind) {
        (Some(date), Some(kind)) if e.is_empty() => Ok(CalendarDay { date, kind, name }),
        _ => Err(e),
    }
}

#[utoipa::path(put, path = "/calendar/{date}", tag = "calendar", params(("date" = String, Path, description = "YYYY-MM-DD")),
    request_body = DayIn,
    responses((status = 200, body = DayOut), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_day(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(date): ApiPath<String>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<DayOut>> {
    u.require(Action::EditCalendar)?;
    let day = parse_day(&date, &f)?;
    store::calendar::upsert(&s.db, &u.actor(s.now()), &day).await?;
    Ok(Json(DayOut { date: day.date.to_string(), kind: day.kind.code().into(), name: day.name }))
}

#[utoipa::path(delete, path = "/calendar/{date}", tag = "calendar", params(("date" = String, Path, description = "YYYY-MM-DD")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_day(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(date): ApiPath<String>,
) -> ApiResult<StatusCode> {
    u.require(Action::EditCalendar)?;
    if date.parse::<jiff::civil::Date>().is_err() {
        return Err(ApiError::field("date", "must be a date like 2026-10-01"));
    }
    store::calendar::delete(&s.db, &u.actor(s.now()), &date).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LoadIn {
    /// Only `CN` (mainland China) is shipped.
    region: String,
    year: i64,
}

#[derive(Serialize, ToSchema)]
pub struct LoadOut {
    /// Entries added or changed.
    pub changed: usize,
}

/// Loads the official holiday arrangement MarketOps ships for a year (mainland China 2026).
#[utoipa::path(post, path = "/calendar/load", tag = "calendar", request_body = LoadIn,
    responses((status = 200, body = LoadOut), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn load_shipped(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<LoadOut>> {
    u.require(Action::EditCalendar)?;
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["region", "year"]);
    let region = f.required(&mut e, "region", 8);
    let year = f.int(&mut e, "year");
    if year.is_none() && !e.0.contains_key("year") {
        e.add("year", "is required");
    }
    if !e.is_empty() {
        return Err(e.into());
    }
    let year = i16::try_from(year.unwrap_or_default()).unwrap_or(0);
    let Some(days) = shipped_days(&region, year) else {
        let shipped: Vec<String> = domain::calendar::SHIPPED.iter().map(|(r, y, _)| format!("{r} {y}")).collect();
        return Err(ApiError::field(
            "year",
            format!("no shipped calendar for {region} {year}; shipped: {}", shipped.join(", ")),
        ));
    };
    let changed = store::calendar::upsert_many(&s.db, &u.actor(s.now()), &days).await?;
    Ok(Json(LoadOut { changed }))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DueIn {
    /// RFC 3339 instant, e.g. `2026-09-30T15:00:00+08:00`.
    start: String,
    /// Give exactly one of working_hours and working_days.
    working_hours: Option<i64>,
    working_days: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SkippedOut {
    pub date: String,
    /// `weekend` or the holiday's name.
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct DueOut {
    /// The due instant in UTC.
    pub due: String,
    /// The due time in the company's time zone.
    pub due_local: String,
    pub time_zone: String,
    pub skipped: Vec<SkippedOut>,
}

/// Due time of N working hours or days from an instant, in the company's calendar and zone.
#[utoipa::path(post, path = "/calendar/due", tag = "calendar", request_body = DueIn,
    responses((status = 200, body = DueOut), (status = 422, body = ErrorBody)))]
pub async fn due(State(s): State<AppState>, ApiUser(u): ApiUser, JsonBody(f): JsonBody) -> ApiResult<Json<DueOut>> {
    u.require(Action::ViewCalendar)?;
    let company = store::company::get(&s.db).await?.ok_or(ApiError::NotFound)?;
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["start", "working_hours", "working_days"]);
    let start = f.text(&mut e, "start");
    let start = match start.as_deref().map(str::parse::<jiff::Timestamp>) {
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            e.add("start", "must be an RFC 3339 instant like 2026-09-30T15:00:00+08:00");
            None
        }
        None => {
            if !e.0.contains_key("start") {
                e.add("start", "is required");
            }
            None
        }
    };
    let hours = f.int(&mut e, "working_hours");
    let days = f.int(&mut e, "working_days");
    let amount = match (hours, days) {
        (Some(h), None) if (0..=100_000).contains(&h) => Some((h, true)),
        (None, Some(d)) if (0..=10_000).contains(&d) => Some((d, false)),
        (Some(_), Some(_)) => {
            e.add("working_days", "give either working_hours or working_days, not both");
            None
        }
        (None, None) => {
            if !e.0.contains_key("working_hours") && !e.0.contains_key("working_days") {
                e.add("working_hours", "give working_hours or working_days");
            }
            None
        }
        (Some(_), None) => {
            e.add("working_hours", "must be between 0 and 100000");
            None
        }
        (None, Some(_)) => {
            e.add("working_days", "must be between 0 and 10000");
            None
        }
    };
    let (Some(start), Some((n, is_hours))) = (start, amount) else {
        return Err(e.into());
    };
    if !e.is_empty() {
        return Err(e.into());
    }
    let tz = jiff::tz::TimeZone::get(&company.time_zone).map_err(|err| ApiError::Internal(err.to_string()))?;
    let cal = store::calendar::working_calendar(&s.db, &company).await?;
    let result = if is_hours { cal.add_working_hours(start, &tz, n) } else { cal.add_working_days(start, &tz, n) };
    let d = result
        .map_err(|err| ApiError::field(if is_hours { "working_hours" } else { "working_days" }, err.to_string()))?;
    Ok(Json(DueOut {
        due: store::Ts::new(d.at).to_text(),
        due_local: d.at.to_zoned(tz).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        time_zone: company.time_zone,
        skipped: d.skipped.into_iter().map(|k| SkippedOut { date: k.date.to_string(), reason: k.reason }).collect(),
    }))
}
