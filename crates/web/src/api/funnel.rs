//! C-5 funnel: event ingestion and the funnel per channel and campaign.

use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use domain::FieldErrors;
use domain::funnel::EventInput;
use domain::role::Action;
use serde::Serialize;
use store::funnel::ChannelFunnel;
use utoipa::ToSchema;

/// Most events one request may carry.
const MAX_BATCH: usize = 10_000;

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventIn {
    /// The user's id in the company's systems.
    user_id: String,
    channel: String,
    campaign: Option<String>,
    /// exposure | click | conversion | repurchase
    #[schema(rename = "type")]
    kind: String,
    /// RFC 3339, e.g. 2026-05-01T10:00:00+08:00
    ts: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventsIn {
    events: Vec<EventIn>,
}

#[derive(Serialize, ToSchema)]
pub struct EventsAdded {
    pub created: usize,
}

/// Adds a batch of funnel events (C-5). Every problem is a 422 naming `events[i].field`;
/// nothing is written then.
#[utoipa::path(post, path = "/events", tag = "customers", request_body = EventsIn,
    responses((status = 201, body = EventsAdded), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_events(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    super::JsonBody(f): super::JsonBody,
) -> ApiResult<(StatusCode, Json<EventsAdded>)> {
    u.require(Action::ManageOrders)?;
    let events = super::customers::parse_batch(&f, "events", MAX_BATCH, EventInput::parse)?;
    let created =
        store::funnel::add_events(&s.db, &u.actor(s.now()), &events, &format!("api:{}", events.len())).await?;
    Ok((StatusCode::CREATED, Json(EventsAdded { created })))
}

#[derive(Serialize, ToSchema)]
pub struct FunnelOut {
    /// First day, YYYY-MM-DD (company time zone).
    pub from: String,
    /// Last day, inclusive.
    pub to: String,
    pub funnels: Vec<ChannelFunnel>,
}

#[derive(utoipa::IntoParams)]
#[allow(dead_code)]
pub struct FunnelQuery {
    /// YYYY-MM-DD; default 30 days before `to`.
    from: Option<String>,
    /// YYYY-MM-DD, inclusive; default today.
    to: Option<String>,
}

/// The funnels for the days `from` to `to` (YYYY-MM-DD, company time zone; defaults: the 30
/// days up to today); bad dates are errors naming the parameter.
pub async fn funnel_for(
    s: &AppState,
    from: Option<&str>,
    to: Option<&str>,
) -> ApiResult<(jiff::civil::Date, jiff::civil::Date, Vec<ChannelFunnel>)> {
    let mut e = FieldErrors::new();
    let mut date = |k: &str, v: Option<&str>| {
        v.map(str::trim).filter(|v| !v.is_empty()).and_then(|v| {
            v.parse::<jiff::civil::Date>().map_err(|_| e.add(k, format!("`{v}` is not a date (YYYY-MM-DD)"))).ok()
        })
    };
    let (from, to) = (date("from", from), date("to", to));
    e.into_result(())?;
    let tz = s.rules.get(&s.db).await?.tz.clone();
    let to = match to {
        Some(d) => d,
        None => s.now().get().to_zoned(tz.clone()).date(),
    };
    let from = match from {
        Some(d) => d,
        None => to.checked_sub(jiff::Span::new().days(30)).map_err(|x| ApiError::field("to", x.to_string()))?,
    };
    if from > to {
        return Err(ApiError::field("from", "must not be after to"));
    }
    let start = |d: jiff::civil::Date| {
        d.to_zoned(tz.clone()).map(|z| store::Ts::new(z.timestamp())).map_err(|x| ApiError::field("to", x.to_string()))
    };
    let end = to.checked_add(jiff::Span::new().days(1)).map_err(|x| ApiError::field("to", x.to_string()))?;
    let (from_ts, to_ts) = (start(from)?, start(end)?);
    let key = (from_ts.get().as_second(), to_ts.get().as_second(), store::funnel::data_mark(&s.db).await?);
    if let Some(f) = s.funnels.get(&key) {
        return Ok((from, to, f.as_ref().clone()));
    }
    let funnels = store::funnel::report(&s.db, from_ts, to_ts).await?;
    s.funnels.put(key, std::sync::Arc::new(funnels.clone()));
    Ok((from, to, funnels))
}

/// Users at each step per channel and campaign for the days from `from` to `to` (C-5).
#[utoipa::path(get, path = "/analytics/funnel", tag = "customers", params(FunnelQuery),
    responses((status = 200, body = FunnelOut), (status = 422, body = ErrorBody)))]
pub async fn funnel(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<FunnelOut>> {
    u.require(Action::ViewCustomers)?;
    let (f, mut e) = super::customers::query_fields(q, &["from", "to"]);
    let (from, to) = (f.text(&mut e, "from"), f.text(&mut e, "to"));
    e.into_result(())?;
    let (from, to, funnels) = funnel_for(&s, from.as_deref(), to.as_deref()).await?;
    Ok(Json(FunnelOut { from: from.to_string(), to: to.to_string(), funnels }))
}

/// Funnels by (period start, period end, `store::funnel::data_mark`): over millions of
/// events one takes seconds, and the dashboard and the funnel page ask for the same period
/// again and again; a new event makes a new key.
pub type FunnelCache = super::customers::Recent<(i64, i64, i64), Vec<ChannelFunnel>>;

impl Default for FunnelCache {
    fn default() -> Self {
        super::customers::Recent::new(4)
    }
}
