//! L-9: the channel report.

use crate::AppState;
use crate::api::sla::period_days;
use crate::auth::ApiUser;
use crate::error::{ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Query, State};
use domain::role::Action;
use domain::{FieldErrors, Fields};
use serde::Serialize;
use store::reports::Attribution;
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct ChannelReportOut {
    /// YYYY-MM-DD, first day.
    pub from: String,
    /// YYYY-MM-DD, last day.
    pub until: String,
    /// first | last
    pub attribution: String,
    /// Rows per channel and per campaign: leads, grade mix, conversion_pct, cost_fen, cost_per_lead_fen,
    /// avg_cycle_days, revenue_fen, roi, top (among the top channels by ROI), versus_industry.
    #[schema(value_type = Object)]
    pub report: domain::report::Report,
}

#[derive(serde::Deserialize, IntoParams)]
#[allow(dead_code)]
pub struct ChannelQuery {
    /// First day (default: 90 days ago).
    from: Option<String>,
    /// Last day, inclusive (default: today).
    until: Option<String>,
    /// Credit won revenue to the first touch (default) or the last touch.
    attribution: Option<String>,
}

/// Builds the report for the query fields; shared by the API, the page and the export.
pub async fn build(s: &AppState, f: &Fields) -> Result<ChannelReportOut, crate::error::ApiError> {
    let tz = crate::api::audit::company_tz(s).await?;
    let mut f = f.clone();
    let today = s.now().get().to_zoned(tz.clone()).date();
    if !f.has("from") {
        f.set("from", today.checked_sub(jiff::Span::new().days(89)).unwrap_or(today).to_string());
    }
    let period = period_days(&f, &tz, s.now(), &["attribution"])?;
    let mut e = FieldErrors::new();
    let attribution = match f.text(&mut e, "attribution").as_deref() {
        None | Some("first") => Attribution::FirstTouch,
        Some("last") => Attribution::LastTouch,
        Some(other) => {
            e.add("attribution", format!("unknown value `{other}`; expected one of: first, last"));
            Attribution::FirstTouch
        }
    };
    e.into_result(())?;
    let rules = crate::rules::load(s).await?;
    let figures = store::reports::channel_figures(&s.db, &period, attribution).await?;
    let until = period
        .until_day
        .parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.yesterday().ok())
        .map(|d| d.to_string())
        .unwrap_or_default();
    Ok(ChannelReportOut {
        from: period.from_day.clone(),
        until,
        attribution: if attribution == Attribution::FirstTouch { "first" } else { "last" }.into(),
        report: domain::report::channel_report(&rules.playbook, &figures),
    })
}

/// Leads, grade mix, conversion (with the industry band), cost per lead, sales cycle,
/// revenue and ROI per channel and campaign; the top channels by ROI are marked.
#[utoipa::path(get, path = "/reports/channels", tag = "reports", params(ChannelQuery),
    responses((status = 200, body = ChannelReportOut), (status = 422, body = ErrorBody)))]
pub async fn channel_report(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<ChannelReportOut>> {
    u.require(Action::ViewLeads)?;
    let q: Vec<(String, String)> = q.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    Ok(Json(build(&s, &Fields::from_pairs(q)).await?))
}

#[derive(Serialize, ToSchema)]
pub struct QualityOut {
    /// YYYY-MM
    pub month: String,
    /// Handed-off, won and rejected leads: grade mix and average part scores; rejection
    /// reasons; the A threshold tried two points either side with its effect; a proposal.
    #[schema(value_type = Object)]
    pub review: domain::report::QualityReview,
}

/// Parses `month=YYYY-MM` (default: the current month) into its period.
pub fn month_period(
    f: &Fields,
    tz: &jiff::tz::TimeZone,
    now: store::Ts,
) -> Result<(String, store::reports::Period), FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["month"]);
    let today = now.get().to_zoned(tz.clone()).date();
    let first = match f.text(&mut e, "month") {
        None => today.first_of_month(),
        Some(m) => match format!("{m}-01").parse::<jiff::civil::Date>() {
            Ok(d) => d,
            Err(_) => {
                e.add("month", "must be a month like 2026-11");
                today
            }
        },
    };
    e.into_result(())?;
    let next = first.last_of_month().tomorrow().map_err(|_| FieldErrors::single("month", "is out of range"))?;
    let at = |d: jiff::civil::Date| tz.to_timestamp(d.to_datetime(jiff::civil::Time::MIN)).map(store::Ts::new);
    match (at(first), at(next)) {
        (Ok(a), Ok(b)) => Ok((
            first.strftime("%Y-%m").to_string(),
            store::reports::Period { from: a, until: b, from_day: first.to_string(), until_day: next.to_string() },
        )),
        _ => Err(FieldErrors::single("month", "is out of range")),
    }
}

pub async fn quality(s: &AppState, f: &Fields) -> Result<QualityOut, crate::error::ApiError> {
    let tz = crate::api::audit::company_tz(s).await?;
    let (month, period) = month_period(f, &tz, s.now())?;
    let rules = crate::rules::load(s).await?;
    let leads = store::reports::review_leads(&s.db, &period).await?;
    Ok(QualityOut { month, review: domain::report::quality_review(&rules.playbook, &leads) })
}

/// L-7: the monthly lead-quality review.
#[utoipa::path(get, path = "/reports/lead-quality", tag = "reports", params(("month" = Option<String>, Query, description = "YYYY-MM")),
    responses((status = 200, body = QualityOut), (status = 422, body = ErrorBody)))]
pub async fn lead_quality(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<QualityOut>> {
    u.require(Action::ViewLeads)?;
    let q: Vec<(String, String)> = q.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    Ok(Json(quality(&s, &Fields::from_pairs(q)).await?))
}
