//! L-10 through the API: rules, their runs per lead, lead signals (trials, sign-ups) and tasks.

use super::{ApiPath, JsonBody};
use crate::AppState;
use crate::api::leads::visible;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::automation::{LEAD_SIGNALS, Rule};
use domain::errors::Source as _;
use domain::role::Action;
use domain::{FieldErrors, Fields};
use store::automation::{RuleRow, Run, Task};
use utoipa::ToSchema;

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RuleIn {
    name: String,
    /// lead_created | grade_changed | stage_changed | form_submitted | trial_started | trial_finished | no_activity
    event: String,
    /// Only leads of these grades (A, B, C); empty: any.
    grades: Option<Vec<String>>,
    channels: Option<Vec<String>>,
    routes: Option<Vec<String>>,
    /// Only if this signal did not happen since the event: trial_started | trial_finished | signed_up.
    without: Option<String>,
    delay_amount: Option<i64>,
    /// minutes | hours | days | working_hours | working_days
    delay_unit: Option<String>,
    /// Read the delay from the playbook instead: leads.automation.trial_no_signup_days | leads.automation.dormant_days | leads.sla.follow_up_max_hours
    delay_key: Option<String>,
    /// create_task | move_stage | notify | send_content | send_webhook
    action: String,
    /// Task or content title.
    title: Option<String>,
    /// The task's script (话术).
    script: Option<String>,
    /// For move_stage: awareness | consideration | decision
    stage: Option<String>,
    message: Option<String>,
    enabled: Option<bool>,
}

#[utoipa::path(get, path = "/automation/rules", tag = "automation", responses((status = 200, body = Vec<RuleRow>)))]
pub async fn list_rules(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<RuleRow>>> {
    u.require(Action::ViewLeads)?;
    Ok(Json(store::automation::list_rules(&s.db).await?))
}

#[utoipa::path(post, path = "/automation/rules", tag = "automation", request_body = RuleIn,
    responses((status = 201, body = RuleRow), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_rule(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<RuleRow>)> {
    u.require(Action::ManageCampaigns)?;
    let rule = Rule::parse(&f)?;
    Ok((StatusCode::CREATED, Json(store::automation::create_rule(&s.db, &u.actor(s.now()), &rule).await?)))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EnabledIn {
    enabled: bool,
}

#[utoipa::path(put, path = "/automation/rules/{id}/enabled", tag = "automation", params(("id" = i64, Path)), request_body = EnabledIn,
    responses((status = 200, body = RuleRow), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_rule_enabled(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<RuleRow>> {
    u.require(Action::ManageCampaigns)?;
    let enabled = match f.0.get("enabled") {
        Some(serde_json::Value::Bool(b)) => *b,
        _ => return Err(ApiError::field("enabled", "must be true or false")),
    };
    Ok(Json(store::automation::set_enabled(&s.db, &u.actor(s.now()), id, enabled).await?))
}

#[utoipa::path(delete, path = "/automation/rules/{id}", tag = "automation", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_rule(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    u.require(Action::ManageCampaigns)?;
    store::automation::delete_rule(&s.db, &u.actor(s.now()), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rule runs for a lead: what ran, when, and what it did or why it was skipped.
#[utoipa::path(get, path = "/leads/{id}/automation", tag = "automation", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Run>), (status = 404, body = ErrorBody)))]
pub async fn lead_runs(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<Run>>> {
    visible(&s, &u, id).await?;
    Ok(Json(store::automation::runs(&s.db, id).await?))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SignalIn {
    /// trial_started | trial_finished | signed_up
    signal: String,
}

pub fn parse_signal(f: &Fields) -> Result<&'static str, FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["signal"]);
    let s = f.choice(&mut e, "signal", LEAD_SIGNALS, |c| c);
    match s {
        Some(s) if e.is_empty() => Ok(s),
        _ => Err(e),
    }
}

/// Records a product signal for the lead (a trial started or finished, a sign-up); rules
/// waiting for it fire.
#[utoipa::path(post, path = "/leads/{id}/signals", tag = "automation", params(("id" = i64, Path)), request_body = SignalIn,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_signal(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<StatusCode> {
    u.require(Action::EditLeads)?;
    visible(&s, &u, id).await?;
    let signal = parse_signal(&f)?;
    let rules = crate::rules::load(&s).await?;
    store::automation::signal(&s.db, &u.actor(s.now()), id, signal, &rules.rules()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's open tasks.
#[utoipa::path(get, path = "/tasks", tag = "automation", responses((status = 200, body = Vec<Task>)))]
pub async fn my_tasks(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<Task>>> {
    Ok(Json(store::automation::open_tasks(&s.db, u.user.id).await?))
}

#[utoipa::path(post, path = "/tasks/{id}/done", tag = "automation", params(("id" = i64, Path)),
    responses((status = 200, body = Task), (status = 404, body = ErrorBody)))]
pub async fn task_done(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Task>> {
    let mine = store::automation::open_tasks(&s.db, u.user.id).await?.iter().any(|t| t.id == id);
    if !mine {
        return Err(ApiError::NotFound);
    }
    Ok(Json(store::automation::complete_task(&s.db, &u.actor(s.now()), id).await?))
}
