//! C-6 experiments: define a test, assign users to variants by hash, record conversions,
//! and read each variant's conversion with intervals, the test, the plan and the
//! recommendation.

use super::JsonBody;
use super::customers::batch;
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::experiment::{Analysis, Definition, Settings, analyse};
use domain::role::Action;
use domain::{FieldErrors, Fields};
use serde::Serialize;
use store::Ts;
use store::experiments::Experiment;
use utoipa::ToSchema;

/// Users one assignment or conversion request may carry.
const MAX_USERS: usize = 10_000;

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ExperimentIn {
    /// Lowercase letters, digits, `-` and `_`; also the campaign of conversion events that
    /// count for it.
    key: String,
    name: String,
    hypothesis: Option<String>,
    /// 2 to 10 names, the control first (a list, or comma-separated text).
    variants: Vec<String>,
    /// Percent per variant, summing to 100 (default: equal).
    weights: Option<Vec<u32>>,
    /// The control's expected conversion rate, percent (default 5).
    baseline_pct: Option<f64>,
    /// Smallest relative lift worth detecting, percent (default 20).
    min_lift_pct: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct ExperimentOut {
    pub key: String,
    pub name: String,
    /// draft | running | stopped
    pub status: String,
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    pub created_at: Ts,
    pub started_at: Option<Ts>,
    pub stopped_at: Option<Ts>,
    /// Per variant users, conversions, rate and interval; the test; the users planned per
    /// variant; the recommendation (scale_winner | keep_running | stop) with its reason.
    #[schema(value_type = Object)]
    pub analysis: serde_json::Value,
    pub playbook_version: i64,
}

/// An experiment with its analysis under the active playbook.
pub async fn with_analysis(s: &AppState, e: Experiment) -> ApiResult<(Experiment, Analysis, i64)> {
    let rules = s.rules.get(&s.db).await?;
    let observed = store::experiments::observed(&s.db, &e).await?;
    let analysis = analyse(&e.definition, &observed, &Settings::from_playbook(&rules.playbook));
    Ok((e, analysis, rules.version))
}

fn out(e: Experiment, a: Analysis, version: i64) -> ApiResult<ExperimentOut> {
    let json = |v: serde_json::Result<serde_json::Value>| v.map_err(|err| ApiError::Internal(err.to_string()));
    Ok(ExperimentOut {
        definition: json(serde_json::to_value(&e.definition))?,
        analysis: json(serde_json::to_value(&a))?,
        key: e.key,
        name: e.name,
        status: e.status,
        created_at: e.created_at,
        started_at: e.started_at,
        stopped_at: e.stopped_at,
        playbook_version: version,
    })
}

async fn load(s: &AppState, key: &str) -> ApiResult<Experiment> {
    store::experiments::get(&s.db, key).await?.ok_or(ApiError::NotFound)
}

/// Defines an experiment (a draft until started).
#[utoipa::path(post, path = "/experiments", tag = "experiments", request_body = ExperimentIn,
    responses((status = 201, body = ExperimentOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<ExperimentOut>)> {
    u.require(Action::ManageExperiments)?;
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["key", "name", "hypothesis", "variants", "weights", "baseline_pct", "min_lift_pct"]);
    e.into_result(())?;
    let d = Definition::parse(&f)?;
    let created = store::experiments::create(&s.db, &u.actor(s.now()), &d).await?;
    let (x, a, v) = with_analysis(&s, created).await?;
    Ok((StatusCode::CREATED, Json(out(x, a, v)?)))
}

#[derive(Serialize, ToSchema)]
pub struct ExperimentList {
    pub experiments: Vec<ExperimentOut>,
}

/// Every experiment, newest first, each with its analysis.
#[utoipa::path(get, path = "/experiments", tag = "experiments", responses((status = 200, body = ExperimentList)))]
pub async fn list(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<ExperimentList>> {
    u.require(Action::ViewCustomers)?;
    let mut experiments = Vec::new();
    for x in store::experiments::list(&s.db).await? {
        let (x, a, v) = with_analysis(&s, x).await?;
        experiments.push(out(x, a, v)?);
    }
    Ok(Json(ExperimentList { experiments }))
}

#[utoipa::path(get, path = "/experiments/{key}", tag = "experiments", params(("key" = String, Path)),
    responses((status = 200, body = ExperimentOut), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    super::ApiPath(key): super::ApiPath<String>,
) -> ApiResult<Json<ExperimentOut>> {
    u.require(Action::ViewCustomers)?;
    let (x, a, v) = with_analysis(&s, load(&s, &key).await?).await?;
    Ok(Json(out(x, a, v)?))
}

/// Starts a draft: from now on users can be assigned and conversions recorded.
#[utoipa::path(post, path = "/experiments/{key}/start", tag = "experiments", params(("key" = String, Path)),
    responses((status = 200, body = ExperimentOut), (status = 409, body = ErrorBody)))]
pub async fn start(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    super::ApiPath(key): super::ApiPath<String>,
) -> ApiResult<Json<ExperimentOut>> {
    set_status(&s, &u, &key, "running").await
}

/// Stops a running experiment: its figures stay as they are.
#[utoipa::path(post, path = "/experiments/{key}/stop", tag = "experiments", params(("key" = String, Path)),
    responses((status = 200, body = ExperimentOut), (status = 409, body = ErrorBody)))]
pub async fn stop(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    super::ApiPath(key): super::ApiPath<String>,
) -> ApiResult<Json<ExperimentOut>> {
    set_status(&s, &u, &key, "stopped").await
}

pub async fn set_status(
    s: &AppState,
    u: &crate::auth::CurrentUser,
    key: &str,
    to: &str,
) -> ApiResult<Json<ExperimentOut>> {
    u.require(Action::ManageExperiments)?;
    load(s, key).await?;
    let x = store::experiments::set_status(&s.db, &u.actor(s.now()), key, to).await?;
    let (x, a, v) = with_analysis(s, x).await?;
    Ok(Json(out(x, a, v)?))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UsersIn {
    /// User ids (the company's own), 1 to 10,000.
    users: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Assignment {
    pub user_id: String,
    pub variant: String,
}

#[derive(Serialize, ToSchema)]
pub struct Assignments {
    pub assignments: Vec<Assignment>,
}

/// User ids of a `users` batch: texts (or numbers) of 1 to 200 characters.
fn user_ids(f: &Fields) -> ApiResult<Vec<String>> {
    let items = batch(f, "users", MAX_USERS)?;
    let mut e = FieldErrors::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let id = match item {
            serde_json::Value::String(s) => s.trim().to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        if id.is_empty() || id.chars().count() > 200 {
            e.add(format!("users[{i}]"), "must be a user id of 1 to 200 characters");
        }
        out.push(id);
    }
    e.into_result(out).map_err(ApiError::Invalid)
}

async fn running(s: &AppState, key: &str) -> ApiResult<Experiment> {
    let x = load(s, key).await?;
    if x.status != "running" {
        return Err(ApiError::Conflict(format!("experiment {key} is {}, not running", x.status)));
    }
    Ok(x)
}

/// The variant each user sees (C-6): deterministic by hash, and stored so the results
/// count exactly the users shown a variant. Asking again gives the same answer.
#[utoipa::path(post, path = "/experiments/{key}/assignments", tag = "experiments", params(("key" = String, Path)),
    request_body = UsersIn,
    responses((status = 200, body = Assignments), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn assign(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    super::ApiPath(key): super::ApiPath<String>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<Assignments>> {
    u.require(Action::ManageExperiments)?;
    let users = user_ids(&f)?;
    let x = running(&s, &key).await?;
    let variants = store::experiments::assign(&s.db, &x, &users, s.now()).await?;
    let assignments = users
        .into_iter()
        .zip(variants)
        .map(|(user_id, v)| Assignment { user_id, variant: x.definition.variants[v].clone() })
        .collect();
    Ok(Json(Assignments { assignments }))
}

#[derive(Serialize, ToSchema)]
pub struct Conversions {
    /// Users whose conversion was recorded now (a user converts once).
    pub recorded: usize,
    /// Users never assigned to a variant: ignored.
    pub unassigned: usize,
}

/// Records conversions of assigned users now (conversion events of the experiment's key
/// as campaign, `POST /api/v1/events`, are recorded the same way).
#[utoipa::path(post, path = "/experiments/{key}/conversions", tag = "experiments", params(("key" = String, Path)),
    request_body = UsersIn,
    responses((status = 200, body = Conversions), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn convert(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    super::ApiPath(key): super::ApiPath<String>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<Conversions>> {
    u.require(Action::ManageExperiments)?;
    let users = user_ids(&f)?;
    let x = running(&s, &key).await?;
    let now = s.now();
    let users: Vec<(String, Ts)> = users.into_iter().map(|u| (u, now)).collect();
    let (recorded, unassigned) = store::experiments::convert(&s.db, &x, &users).await?;
    Ok(Json(Conversions { recorded, unassigned }))
}

#[derive(Serialize, ToSchema)]
pub struct PlanOut {
    pub baseline_pct: f64,
    pub min_lift_pct: f64,
    pub significance_pct: f64,
    pub power_pct: f64,
    pub users_per_variant: u64,
}

#[derive(utoipa::IntoParams)]
#[allow(dead_code)]
pub struct PlanQuery {
    /// The control's conversion rate, percent.
    baseline_pct: f64,
    /// Smallest relative lift worth detecting, percent.
    min_lift_pct: f64,
}

/// The sample-size planner (C-6): users per variant for a baseline and a lift, at the
/// playbook's significance and power.
pub async fn plan_for(s: &AppState, q: Vec<(String, String)>) -> ApiResult<PlanOut> {
    let (f, e) = super::customers::query_fields(q, &["baseline_pct", "min_lift_pct"]);
    e.into_result(())?;
    let rules = s.rules.get(&s.db).await?;
    let settings = Settings::from_playbook(&rules.playbook);
    let (users, baseline, lift) = domain::experiment::planner(&f, &settings)?;
    Ok(PlanOut {
        baseline_pct: baseline,
        min_lift_pct: lift,
        significance_pct: settings.significance_pct,
        power_pct: settings.power_pct,
        users_per_variant: users,
    })
}

#[utoipa::path(get, path = "/experiments/plan", tag = "experiments", params(PlanQuery),
    responses((status = 200, body = PlanOut), (status = 422, body = ErrorBody)))]
pub async fn plan(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
) -> ApiResult<Json<PlanOut>> {
    u.require(Action::ViewCustomers)?;
    Ok(Json(plan_for(&s, q).await?))
}
